//! Measuring a [`Model`] through tract with the same evaluation code as the
//! trainer (`ood_data::eval`), plus what its verdicts do to each set.

use crate::error::{Error, Result};
use crate::model::Model;
use ood_core::Verdict;
use ood_data::eval::{evaluate_logits, logits_of, Evaluation, VerdictShares};
use ood_data::Dataset;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// An evaluation of one exported file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeReport {
    /// The model file measured.
    pub file: String,
    /// The acceptance score and threshold used for the verdicts.
    pub policy: ood_core::Policy,
    /// Accuracy, garbage shares and AUROC/AUPR/FPR95 per score.
    pub evaluation: Evaluation,
    /// Verdict shares per set at the policy's threshold (ID set first).
    pub verdicts: Vec<VerdictShares>,
    /// Every verdict, per set (ID set first), for agreement checks.
    #[serde(skip)]
    pub all_verdicts: Vec<Vec<Verdict>>,
}

impl EdgeReport {
    /// Markdown: the verdict table, then the trainer's evaluation tables.
    pub fn to_markdown(&self) -> String {
        format!(
            "Model `{}`: reject the garbage class, then accept a digit when the in-distribution score of `{}` is >= {:.6}\n\n{}\n{}",
            self.file,
            self.policy.score.name(),
            self.policy.threshold,
            VerdictShares::markdown(&self.verdicts),
            self.evaluation.to_markdown()
        )
    }

    /// Share of images (all sets) with the same verdict kind and digit as `other`.
    pub fn agreement(&self, other: &EdgeReport) -> f64 {
        let same = |a: &Verdict, b: &Verdict| match (a, b) {
            (Verdict::Accept { digit: x, .. }, Verdict::Accept { digit: y, .. }) => x == y,
            (Verdict::Reject { reason: x, .. }, Verdict::Reject { reason: y, .. }) => x == y,
            _ => false,
        };
        let (mut n, mut agree) = (0usize, 0usize);
        for (a, b) in self.all_verdicts.iter().zip(&other.all_verdicts) {
            for (x, y) in a.iter().zip(b) {
                n += 1;
                agree += usize::from(same(x, y));
            }
        }
        agree as f64 / n.max(1) as f64
    }
}

/// Evaluates `model` on `id` (digit labels) and the `ood` sets, adding
/// their images to `bar`'s length (one bar can follow several calls, also
/// from several threads).
pub fn evaluate(
    model: &Model,
    id: &Dataset,
    ood: &[Dataset],
    bar: &indicatif::ProgressBar,
) -> Result<EdgeReport> {
    bar.inc_length((id.len() + ood.iter().map(Dataset::len).sum::<usize>()) as u64);
    let f = |px: &[u8]| {
        model
            .logits(px)
            .map_err(|e| ood_data::Error::Model(e.to_string()))
    };
    let zid = logits_of(&f, id, bar)?;
    let zood = ood
        .iter()
        .map(|d| logits_of(&f, d, bar))
        .collect::<ood_data::Result<Vec<_>>>()?;
    let evaluation = evaluate_logits(id, &zid, ood, &zood);
    let decide = |z: &[[f32; ood_core::NUM_CLASSES]]| -> Vec<Verdict> {
        z.iter().map(|l| model.policy.decide(l)).collect()
    };
    let mut all_verdicts = vec![decide(&zid)];
    all_verdicts.extend(zood.iter().map(|z| decide(z)));
    let mut verdicts = vec![VerdictShares::of(id, &all_verdicts[0], true)];
    verdicts.extend(
        ood.iter()
            .zip(&all_verdicts[1..])
            .map(|(d, v)| VerdictShares::of(d, v, false)),
    );
    Ok(EdgeReport {
        file: model.file.file.clone(),
        policy: model.policy,
        evaluation,
        verdicts,
        all_verdicts,
    })
}

/// Whether `p` has a PNG or JPEG extension (case-insensitive).
pub fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
}

/// The image files named by `paths`: files as given (whatever their
/// extension, so that a bad file is reported, not skipped), folders searched
/// recursively for `.png`/`.jpg`/`.jpeg`, in sorted order.
pub fn collect_images(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| Error::io(p, e))?;
        if meta.is_dir() {
            let mut stack = vec![p.clone()];
            let mut found = Vec::new();
            while let Some(d) = stack.pop() {
                for entry in std::fs::read_dir(&d).map_err(|e| Error::io(&d, e))? {
                    let path = entry.map_err(|e| Error::io(&d, e))?.path();
                    if path.is_dir() {
                        stack.push(path);
                    } else if is_image(&path) {
                        found.push(path);
                    }
                }
            }
            if found.is_empty() {
                return Err(Error::Image {
                    path: p.clone(),
                    what: "folder holds no .png/.jpg/.jpeg images".into(),
                });
            }
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}
