//! `trainer`: the n+1 classifier, its inversion loop, and the reports.
//!
//! - **Purpose**: turn MNIST (plus a garbage class) into a classifier that
//!   rejects what is not a digit, and measure how well it does.
//! - **Inputs**: datasets found or fetched by `ood-data`; a
//!   [`config::TrainConfig`].
//! - **Outputs**: a run folder ([`run::dir`]) with safetensors weights, the
//!   resolved config, an evaluation report and plots ([`report`]); the
//!   device's files through `ood-export` ([`package`]).
//! - **Never**: a dependency of another crate; candle outside [`model`];
//!   the ONNX runtime or the device crate (both live behind `ood-export`).
//!
//! The data's path, one module each: [`config`] -> [`run::data`] ->
//! [`run::train`] and [`run::invert`] (over [`model`]) -> [`run::calibrate`]
//! -> [`report`] -> [`package`].

pub mod error;
pub mod model;

pub use error::{Error, Result};
/// Datasets, evaluation and metrics live in `ood-data`, shared with the device runtime.
pub use ood_data::{self as data, eval, metrics};
pub mod config;
pub mod package;
pub mod report;
pub mod run;
pub mod seeds;
