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
pub mod config;
pub mod data;
pub mod eval;
pub mod metrics;
pub mod plots;
pub mod run;
pub mod train;
