//! `ood-core`: the facts every part of the OOD rejection system must agree on.
//!
//! - **Purpose**: one definition of the label space ([`labels`]), the input
//!   contract ([`input`]), the out-of-distribution scores ([`score`]), the
//!   two-tier decision ([`verdict`]) and, with `std`, the exported model's
//!   `manifest` schema, so that training, calibration, evaluation and the edge
//!   runtime compute the same numbers with the same code.
//! - **Inputs**: logits or probabilities as `&[f32]`, raw 8-bit pixels.
//! - **Outputs**: plain numbers and small `Copy` types; no allocation.
//! - **Never**: depends on candle, tract, image, embedded-graphics or anyhow;
//!   never allocates outside `manifest`; builds with `#![no_std]` (the `std`
//!   feature adds the manifest and serde's std support).
#![no_std]

#[cfg(feature = "std")]
extern crate std;

#[cfg(feature = "std")]
pub mod golden;
pub mod input;
pub mod labels;
#[cfg(feature = "std")]
pub mod manifest;
pub mod score;
pub mod verdict;
pub mod wire;

pub use labels::{GARBAGE, IMG_PIXELS, IMG_SIDE, NUM_CLASSES, NUM_DIGITS};
pub use score::{energy, garbage_prob, max_digit_prob, softmax, uncertainty, Score};
pub use verdict::{calibrate, Policy, RejectReason, Verdict};
