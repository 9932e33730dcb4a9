//! `trainer`: data, the n+1 classifier, its training and evaluation.
//!
//! - **Purpose**: turn MNIST (plus a garbage class) into a classifier that
//!   rejects what is not a digit, and measure how well it does.
//! - **Inputs**: IDX files (raw or gzipped), image folders, CIFAR-10 binary,
//!   SVHN `.mat`; a [`config::TrainConfig`].
//! - **Outputs**: a run folder with safetensors weights, the resolved config
//!   and an evaluation report (JSON + Markdown).
//! - **Never**: a dependency of another crate; candle outside [`model`].

pub mod error;
pub mod model;

pub use error::{Error, Result};
/// Datasets, evaluation and metrics live in `ood-data`, shared with `edge`.
pub use ood_data::{self as data, eval, metrics};
pub mod config;
pub mod export;
pub mod package;
pub mod plots;
pub mod run;
pub mod train;
