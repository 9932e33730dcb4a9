//! `edge check`: a model folder on this machine against its `golden.json`.
//!
//! The exporter records, for a set of real inputs (MNIST digits and OOD
//! images), the logits and verdicts of the f32 and int8 (QDQ) files as tract
//! computed them on the exporting machine. Running the same inputs here
//! shows that this binary, this CPU's kernels and these files give the same
//! decisions: the check to run after copying a model to a Raspberry Pi, and
//! the smoke test of the size-optimised Pi binary under qemu.

use std::path::Path;

use ood_core::golden::Golden;
use ood_core::{Verdict, IMG_PIXELS};

use crate::error::{Error, Result};
use crate::model::{read_manifest, Model};

/// f32 logits here vs the exporter's: the same graph summed in another order
/// on another CPU (aarch64 under qemu: ~1e-5). 1e-3 keeps a wide margin and
/// still catches real errors, which move logits by O(1).
pub const F32_TOLERANCE: f32 = 1e-3;
/// int8 (QDQ) logits: the weight-only file (v10 on) runs as f32 once tract
/// has folded its weights, so it differs across CPUs like f32; files with
/// quantised activations (earlier exports) can see a rounding flip in one
/// QuantizeLinear, which moves a logit by about one activation step times a
/// weight (< 0.1 here); 0.5 is well below the logit margins that decide the
/// golden verdicts.
pub const INT8_TOLERANCE: f32 = 0.5;

/// Reads `dir/golden.json`.
pub fn read_golden(dir: &Path) -> Result<Golden> {
    let path = dir.join("golden.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::Manifest {
        path,
        what: format!("not a golden file ({e}); re-export the model with `trainer export`"),
    })
}

/// The result for one model file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileCheck {
    /// The file, as the manifest names it.
    pub file: String,
    /// Golden cases run.
    pub cases: usize,
    /// Cases whose verdict (accept with the same digit, or reject for the
    /// same reason) equals the golden one.
    pub same_verdict: usize,
    /// The largest logit difference to the golden logits.
    pub max_logit_diff: f32,
    /// The tolerance for that difference.
    pub tolerance: f32,
    /// One line per case that differs.
    pub differences: Vec<String>,
}

impl FileCheck {
    /// Every verdict equal and every logit within tolerance.
    pub fn passed(&self) -> bool {
        self.same_verdict == self.cases && self.max_logit_diff <= self.tolerance
    }
}

/// Whether two verdicts make the same decision (their confidence and
/// uncertainty may differ in the last bits from CPU to CPU).
pub fn same_decision(a: &Verdict, b: &Verdict) -> bool {
    match (a, b) {
        (Verdict::Accept { digit: x, .. }, Verdict::Accept { digit: y, .. }) => x == y,
        (Verdict::Reject { reason: x, .. }, Verdict::Reject { reason: y, .. }) => x == y,
        _ => false,
    }
}

/// The files of the model folder that the golden file covers: the f32 file
/// and the int8 QDQ file, with which golden column each is checked against.
fn covered(dir: &Path) -> Result<Vec<(String, bool)>> {
    let (manifest, _) = read_manifest(dir)?;
    Ok(manifest
        .models
        .iter()
        .filter_map(|m| match (m.precision.as_str(), m.format.as_str()) {
            ("f32", _) => Some((m.file.clone(), false)),
            ("int8", "qdq") => Some((m.file.clone(), true)),
            _ => None,
        })
        .collect())
}

/// Runs every golden case through each covered file of `dir` (the manifest's
/// decision at its default threshold, as the exporter recorded it).
pub fn check_dir(dir: &Path) -> Result<Vec<FileCheck>> {
    let golden = read_golden(dir)?;
    if golden.cases.is_empty() {
        return Err(Error::Manifest {
            path: dir.join("golden.json"),
            what: "has no cases; re-export the model with `trainer export`".into(),
        });
    }
    let inputs: Vec<Vec<u8>> = golden
        .cases
        .iter()
        .map(|c| {
            c.pixels().ok_or_else(|| Error::Manifest {
                path: dir.join("golden.json"),
                what: format!(
                    "case {}: pixels_hex is not {IMG_PIXELS} hex bytes; re-export the model",
                    c.source
                ),
            })
        })
        .collect::<Result<_>>()?;
    let mut out = Vec::new();
    for (file, int8) in covered(dir)? {
        let model = Model::load(dir, Some(&file), None)?;
        let tolerance = if int8 { INT8_TOLERANCE } else { F32_TOLERANCE };
        let mut check = FileCheck {
            file: file.clone(),
            cases: golden.cases.len(),
            same_verdict: 0,
            max_logit_diff: 0.0,
            tolerance,
            differences: Vec::new(),
        };
        for (case, px) in golden.cases.iter().zip(&inputs) {
            let got = model.classify(px)?[0];
            let (logits, verdict) = if int8 {
                (&case.int8_logits, &case.int8_verdict)
            } else {
                (&case.f32_logits, &case.f32_verdict)
            };
            if logits.len() != got.logits.len() {
                return Err(Error::Manifest {
                    path: dir.join("golden.json"),
                    what: format!(
                        "case {} has {} logits, the model {}",
                        case.source,
                        logits.len(),
                        got.logits.len()
                    ),
                });
            }
            let diff = got
                .logits
                .iter()
                .zip(logits)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            check.max_logit_diff = check.max_logit_diff.max(diff);
            let same = same_decision(&got.verdict, verdict);
            check.same_verdict += usize::from(same);
            if !same || diff > tolerance {
                check.differences.push(format!(
                    "{}: {:?} here, {:?} at export; logits differ by up to {diff:.4}",
                    case.source, got.verdict, verdict
                ));
            }
        }
        out.push(check);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ood_core::RejectReason;

    fn accept(digit: u8, confidence: f32) -> Verdict {
        Verdict::Accept {
            digit,
            confidence,
            uncertainty: 0.0,
        }
    }

    #[test]
    fn decisions_compare_by_digit_or_reason_not_by_the_last_bits() {
        assert!(same_decision(&accept(7, 0.99), &accept(7, 0.98)));
        assert!(!same_decision(&accept(7, 0.99), &accept(1, 0.99)));
        let garbage = Verdict::Reject {
            reason: RejectReason::Garbage,
            uncertainty: 0.1,
        };
        let unsure = Verdict::Reject {
            reason: RejectReason::Uncertain,
            uncertainty: 0.1,
        };
        assert!(same_decision(
            &garbage,
            &Verdict::Reject {
                reason: RejectReason::Garbage,
                uncertainty: 0.3
            }
        ));
        assert!(!same_decision(&garbage, &unsure));
        assert!(!same_decision(&garbage, &accept(7, 0.99)));
    }
}
