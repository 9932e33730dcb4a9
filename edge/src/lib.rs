//! `edge`: the runtime that decides, on a Raspberry Pi, whether what a camera
//! sees is a digit or garbage.
//!
//! - **Purpose**: image or camera frame -> 28x28 in the input contract
//!   ([`preprocess`]) -> tract ([`runtime`], the only module that uses tract)
//!   -> `ood_core` score -> `ood_core::Verdict`.
//! - **Inputs**: a model folder (`manifest.json` + ONNX files written by the
//!   trainer's export), image files or folders, raw frames on stdin, a V4L2
//!   camera.
//! - **Outputs**: verdicts (table or JSON lines), `ood_core::wire` frames for
//!   the display ([`link`]), evaluation reports.
//! - **Never**: candle, the trainer.

pub mod error;
pub mod frame;
pub mod link;
pub mod model;
pub mod preprocess;
pub mod report;
pub mod runtime;

pub use error::{Error, Result};
