//! The schema of `manifest.json`, the file that travels with every exported
//! model: what the model expects, how to decide, what made it, how it scored.
//!
//! Versioned: a reader refuses a manifest whose `version` is not
//! [`MANIFEST_VERSION`] (see [`Manifest::check_version`]), so a newer
//! exporter and an older runtime fail clearly instead of misreading fields.

use crate::input::InputContract;
use crate::verdict::Policy;
use crate::Score;
use serde::{Deserialize, Serialize};
use std::string::String;
use std::vec::Vec;

/// The manifest version this build writes and reads.
///
/// 2 (2026-12-03): thresholds per model file (each calibrated on its own
/// logits) and a per-architecture choice of the file to run (`targets`).
pub const MANIFEST_VERSION: u32 = 2;

/// One exported ONNX file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    /// File name, relative to the manifest's folder.
    pub file: String,
    /// `"f32"` or `"int8"`.
    pub precision: String,
    /// How it is quantised (`"none"`, `"qdq"`, ...).
    pub format: String,
    /// sha256 of the file's bytes (hex).
    pub sha256: String,
    /// File size in bytes.
    pub bytes: u64,
    /// Input shape; `-1` marks the free batch dimension.
    pub input_shape: Vec<i64>,
    /// Output (logits) shape; `-1` marks the free batch dimension.
    pub output_shape: Vec<i64>,
    /// Input tensor name.
    pub input_name: String,
    /// Output tensor name.
    pub output_name: String,
    /// Rejection thresholds per `keep` share, calibrated on this file's
    /// logits through the edge runtime (files differ in their last digits).
    pub thresholds: Vec<Threshold>,
}

/// The file to run on one CPU architecture, and the measurement behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// CPU architecture as Rust names it (`std::env::consts::ARCH`:
    /// `"x86_64"`, `"aarch64"`, ...).
    pub arch: String,
    /// [`ModelFile::file`] to run there.
    pub file: String,
    /// Why, in words (what was measured, where).
    pub why: String,
}

/// A rejection threshold calibrated to keep a share of validation digits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// Share of MNIST validation digits whose score passes (e.g. 0.99).
    pub keep: f32,
    /// The threshold on the in-distribution score.
    pub value: f32,
}

/// How the runtime decides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// The acceptance score.
    pub score: Score,
    /// The `keep` share used by default (each file lists its thresholds).
    pub default_keep: f32,
    /// Where the thresholds come from, in words.
    pub calibration: String,
}

impl Decision {
    /// The policy of `file` at a `keep` share (the default when `None`);
    /// `None` when no threshold was calibrated for it.
    pub fn policy(&self, file: &ModelFile, keep: Option<f32>) -> Option<Policy> {
        let keep = keep.unwrap_or(self.default_keep);
        file.thresholds
            .iter()
            .find(|t| (t.keep - keep).abs() < 1e-6)
            .map(|t| Policy {
                score: self.score,
                threshold: t.value,
            })
    }
}

/// What made the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// The tool and its version.
    pub tool: String,
    /// `git describe --always --dirty` of the source tree, or `"unknown"`.
    pub git_revision: String,
    /// Run name (the preset's `name`).
    pub run_name: String,
    /// Training seed.
    pub seed: u64,
    /// The resolved training config, as TOML.
    pub config_toml: String,
}

/// One measured number of one model on one set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetMetrics {
    /// Set name (`mnist-test`, `fashion-mnist`, ...).
    pub set: String,
    /// Images.
    pub n: usize,
    /// Share accepted at the default threshold (digits: accepted and correct).
    pub accepted: f64,
    /// Share sent to the garbage class.
    pub garbage_share: f64,
    /// AUROC of the acceptance score against MNIST test (absent for MNIST).
    pub auroc: Option<f64>,
}

/// Evaluation of one exported file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelMetrics {
    /// The [`ModelFile::file`] measured.
    pub file: String,
    /// 11-way MNIST test accuracy (no threshold).
    pub mnist_accuracy: f64,
    /// Per set.
    pub sets: Vec<SetMetrics>,
    /// Share of all evaluated images with the same verdict as the f32 model.
    pub verdict_agreement_with_f32: f64,
}

/// The whole manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Schema version, [`MANIFEST_VERSION`].
    pub version: u32,
    /// Model name.
    pub name: String,
    /// Input contract and normalisation.
    pub input: InputContract,
    /// Class names, index = class.
    pub labels: Vec<String>,
    /// Index of the garbage class.
    pub garbage_index: usize,
    /// The decision rule.
    pub decision: Decision,
    /// Exported files; `default_model` names the one to run.
    pub models: Vec<ModelFile>,
    /// [`ModelFile::file`] of the model to run by default (the portable
    /// choice, on architectures `targets` does not list).
    pub default_model: String,
    /// The file to run per CPU architecture, where measurement chose one
    /// other than `default_model` ([`Manifest::file_for`]).
    pub targets: Vec<Target>,
    /// What made it.
    pub provenance: Provenance,
    /// Measured metrics of each exported file.
    pub metrics: Vec<ModelMetrics>,
}

/// A manifest this build cannot read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionMismatch {
    /// Version found in the file.
    pub found: u32,
}

impl core::fmt::Display for VersionMismatch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.found > MANIFEST_VERSION {
            write!(
                f,
                "manifest version {} is newer than this runtime understands ({}): update the edge runtime",
                self.found, MANIFEST_VERSION
            )
        } else {
            write!(
                f,
                "manifest version {} is older than this runtime understands ({}): re-export the model with `trainer export`",
                self.found, MANIFEST_VERSION
            )
        }
    }
}

/// `Ok` when this build reads manifests of `version` (check it before
/// parsing the rest: other versions have other fields).
pub fn check_version(version: u32) -> Result<(), VersionMismatch> {
    if version == MANIFEST_VERSION {
        Ok(())
    } else {
        Err(VersionMismatch { found: version })
    }
}

impl Manifest {
    /// `Ok` when this build reads this version.
    pub fn check_version(&self) -> Result<(), VersionMismatch> {
        check_version(self.version)
    }

    /// The file to run on CPU architecture `arch` (see `targets`).
    pub fn file_for(&self, arch: &str) -> &str {
        self.targets
            .iter()
            .find(|t| t.arch == arch)
            .map_or(&self.default_model, |t| &t.file)
    }

    /// The entry of `file`, if listed.
    pub fn model(&self, file: &str) -> Option<&ModelFile> {
        self.models.iter().find(|m| m.file == file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    fn file(name: &str, thresholds: Vec<Threshold>) -> ModelFile {
        ModelFile {
            file: name.into(),
            precision: "int8".into(),
            format: "qdq".into(),
            sha256: String::new(),
            bytes: 0,
            input_shape: std::vec![-1, 1, 28, 28],
            output_shape: std::vec![-1, 11],
            input_name: "input".into(),
            output_name: "logits".into(),
            thresholds,
        }
    }

    #[test]
    fn decision_finds_thresholds_and_versions_are_checked() {
        let d = Decision {
            score: Score::Uncertainty,
            default_keep: 0.99,
            calibration: "test".into(),
        };
        let t = |keep, value| Threshold { keep, value };
        let f = file("a.onnx", std::vec![t(0.95, 0.9), t(0.99, 0.5)]);
        assert_eq!(d.policy(&f, None).map(|p| p.threshold), Some(0.5));
        assert_eq!(d.policy(&f, Some(0.95)).map(|p| p.threshold), Some(0.9));
        assert_eq!(d.policy(&f, Some(0.5)), None);
        // each file decides with its own thresholds
        let g = file("b.onnx", std::vec![t(0.99, 0.25)]);
        assert_eq!(d.policy(&g, None).map(|p| p.threshold), Some(0.25));
        let newer = VersionMismatch {
            found: MANIFEST_VERSION + 1,
        }
        .to_string();
        assert!(newer.contains("newer") && newer.contains("update"), "{newer}");
    }

    #[test]
    fn the_file_to_run_follows_the_architecture() {
        let m = Manifest {
            version: MANIFEST_VERSION,
            name: "t".into(),
            input: InputContract::default(),
            labels: Vec::new(),
            garbage_index: 10,
            decision: Decision {
                score: Score::Uncertainty,
                default_keep: 0.99,
                calibration: String::new(),
            },
            models: std::vec![file("f32.onnx", Vec::new()), file("int8.onnx", Vec::new())],
            default_model: "int8.onnx".into(),
            targets: std::vec![Target {
                arch: "x86_64".into(),
                file: "f32.onnx".into(),
                why: "measured".into(),
            }],
            provenance: Provenance {
                tool: String::new(),
                git_revision: String::new(),
                run_name: String::new(),
                seed: 0,
                config_toml: String::new(),
            },
            metrics: Vec::new(),
        };
        assert_eq!(m.file_for("x86_64"), "f32.onnx");
        assert_eq!(m.file_for("aarch64"), "int8.onnx");
        assert!(m.model(m.file_for("riscv64")).is_some());
    }
}
