//! `ood-core`: the facts every part of the OOD rejection system must agree on.
//!
//! - **Purpose**: one definition of the label space ([`labels`]), the input
//!   contract ([`input`]) and the out-of-distribution scores ([`score`]), so that
//!   training, calibration, evaluation and the edge runtime compute the same
//!   numbers with the same code.
//! - **Inputs**: logits or probabilities as `&[f32]`, raw 8-bit pixels.
//! - **Outputs**: plain numbers and small `Copy` types; no allocation.
//! - **Never**: depends on candle, tract, image, embedded-graphics or anyhow;
//!   never allocates; builds with `#![no_std]` (the `std` feature only forwards
//!   to serde).
#![no_std]

#[cfg(feature = "std")]
extern crate std;

pub mod input;
pub mod labels;
pub mod score;

pub use labels::{GARBAGE, IMG_PIXELS, IMG_SIDE, NUM_CLASSES, NUM_DIGITS};
pub use score::{energy, garbage_prob, max_digit_prob, softmax, uncertainty, Score};
