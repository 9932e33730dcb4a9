//! `ood-export`: the one bridge from training to the device.
//!
//! - **Purpose**: turn a trained classifier, handed over as plain weights,
//!   into the files the device runs, and measure them as the device will.
//! - **Inputs**: [`Weights`] (named layers, no candle), calibrated
//!   [`ActivationQuant`] ranges, the validation digits, the evaluation sets
//!   and the trained model's reference logits ([`ExportInput`]).
//! - **Outputs**: ONNX files ([`onnx`]: f32 and three int8 forms, written
//!   with `tract_onnx::pb` + prost, no protoc), `manifest.json` with the
//!   calibrated thresholds, `golden.json` and `export.md` ([`package()`]).
//! - **Never**: candle or the trainer (the trainer depends on this crate,
//!   not the other way round).

pub mod error;
pub mod golden;
pub mod onnx;
pub mod package;
pub mod quant;
pub mod weights;

pub use error::{Error, Result};
pub use golden::{Golden, GoldenCase};
pub use onnx::{onnx_model, Precision};
pub use package::{
    package, ExportInput, ExportSummary, DECISION_SCORE, EXPORT_MD, F32_FILE, FILES, GOLDEN_FILE, INT8_FILE,
    INT8_INTEGER_FILE, INT8_QLINEAR_FILE, KEEPS, MANIFEST_FILE,
};
pub use quant::{ActivationQuant, QParams};
pub use weights::Weights;
