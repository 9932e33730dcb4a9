//! Evaluation: MNIST accuracy and confusion matrix; for each OOD set the share
//! sent to the garbage class (the seed report's metric) and AUROC / AUPR /
//! FPR at 95% TPR for every score in `ood_core::Score` (in-distribution =
//! positive). Model-agnostic: it takes a function from raw images to logits,
//! so the same code measures any backend.

use crate::error::Result;
use crate::metrics;
use crate::Dataset;
use ood_core::{score::argmax, RejectReason, Score, Verdict, GARBAGE, IMG_PIXELS, NUM_CLASSES};
use serde::{Deserialize, Serialize};

/// Raw 28x28 images (concatenated bytes) -> one logit row per image.
pub type LogitsFn<'a> = dyn Fn(&[u8]) -> Result<Vec<[f32; NUM_CLASSES]>> + 'a;

/// Detection metrics of one score on one OOD set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreMetrics {
    /// Score name (`ood_core::Score::name`).
    pub score: String,
    /// Area under ROC, ID positive.
    pub auroc: f64,
    /// Area under precision-recall (average precision), ID positive.
    pub aupr: f64,
    /// Share of OOD accepted at the threshold keeping 95% of ID.
    pub fpr95: f64,
}

/// Results on one OOD set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OodReport {
    /// Set name.
    pub name: String,
    /// Number of images.
    pub n: usize,
    /// Share whose arg-max is the garbage class.
    pub garbage_share: f64,
    /// Mean `U(x)`.
    pub mean_uncertainty: f64,
    /// One entry per score.
    pub scores: Vec<ScoreMetrics>,
}

/// Results on the in-distribution test set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdReport {
    /// Set name.
    pub name: String,
    /// Number of images.
    pub n: usize,
    /// 11-way accuracy (a digit sent to garbage counts as an error).
    pub accuracy: f64,
    /// Share of digits sent to the garbage class.
    pub garbage_share: f64,
    /// Mean `U(x)`.
    pub mean_uncertainty: f64,
    /// `confusion[true][predicted]`, 11x11.
    pub confusion: Vec<Vec<usize>>,
}

/// A whole evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Statement of the convention used.
    pub convention: String,
    /// In-distribution results.
    pub id: IdReport,
    /// One entry per OOD set.
    pub ood: Vec<OodReport>,
}

/// Logits of a dataset in chunks, advancing `bar` by images done.
pub fn logits_of(
    f: &LogitsFn,
    ds: &Dataset,
    bar: &indicatif::ProgressBar,
) -> Result<Vec<[f32; NUM_CLASSES]>> {
    let mut out = Vec::with_capacity(ds.len());
    for chunk in ds.images.chunks(1000 * IMG_PIXELS) {
        out.extend(f(chunk)?);
        bar.inc((chunk.len() / IMG_PIXELS) as u64);
    }
    Ok(out)
}

fn mean_u(z: &[[f32; NUM_CLASSES]]) -> f64 {
    z.iter()
        .map(|l| f64::from(Score::Uncertainty.raw(l)))
        .sum::<f64>()
        / z.len().max(1) as f64
}

fn garbage_share(z: &[[f32; NUM_CLASSES]]) -> f64 {
    z.iter().filter(|l| argmax(&l[..]) == GARBAGE).count() as f64 / z.len().max(1) as f64
}

/// Evaluates `f` on the ID test set and each OOD set.
pub fn evaluate(
    f: &LogitsFn,
    id: &Dataset,
    ood: &[Dataset],
    bar: &indicatif::ProgressBar,
) -> Result<Evaluation> {
    bar.set_length((id.len() + ood.iter().map(Dataset::len).sum::<usize>()) as u64);
    let zid = logits_of(f, id, bar)?;
    let zood = ood
        .iter()
        .map(|set| logits_of(f, set, bar))
        .collect::<Result<Vec<_>>>()?;
    Ok(evaluate_logits(id, &zid, ood, &zood))
}

/// [`evaluate`] from logits already computed (`zid` for `id`, `zood[i]` for
/// `ood[i]`).
pub fn evaluate_logits(
    id: &Dataset,
    zid: &[[f32; NUM_CLASSES]],
    ood: &[Dataset],
    zood: &[Vec<[f32; NUM_CLASSES]>],
) -> Evaluation {
    let mut confusion = vec![vec![0usize; NUM_CLASSES]; NUM_CLASSES];
    let mut correct = 0;
    for (z, &y) in zid.iter().zip(&id.labels) {
        let p = argmax(&z[..]);
        confusion[(y as usize).min(GARBAGE)][p] += 1;
        correct += usize::from(p == y as usize);
    }
    let id_scores: Vec<Vec<f32>> = Score::ALL
        .iter()
        .map(|s| zid.iter().map(|z| s.id_score(z)).collect())
        .collect();
    let mut reports = Vec::new();
    for (set, z) in ood.iter().zip(zood) {
        let scores = Score::ALL
            .iter()
            .zip(&id_scores)
            .map(|(s, ids)| {
                let os: Vec<f32> = z.iter().map(|l| s.id_score(l)).collect();
                ScoreMetrics {
                    score: s.name().into(),
                    auroc: metrics::auroc(ids, &os),
                    aupr: metrics::aupr(ids, &os),
                    fpr95: metrics::fpr_at_tpr(ids, &os, 0.95),
                }
            })
            .collect();
        reports.push(OodReport {
            name: set.name.clone(),
            n: set.len(),
            garbage_share: garbage_share(z),
            mean_uncertainty: mean_u(z),
            scores,
        });
    }
    Evaluation {
        convention: format!(
            "in-distribution ({}) = positive; scores oriented higher = more in-distribution; FPR95 = share of OOD accepted at the threshold keeping 95% of {}",
            id.name, id.name
        ),
        id: IdReport {
            name: id.name.clone(),
            n: id.len(),
            accuracy: correct as f64 / id.len().max(1) as f64,
            garbage_share: garbage_share(zid),
            mean_uncertainty: mean_u(zid),
            confusion,
        },
        ood: reports,
    }
}

/// What a decision policy does to one set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerdictShares {
    /// Set name.
    pub name: String,
    /// Images.
    pub n: usize,
    /// Share accepted as a digit.
    pub accepted: f64,
    /// Share accepted as the right digit (ID sets with digit labels; else 0).
    pub accepted_correct: f64,
    /// Share rejected because the arg-max is the garbage class.
    pub rejected_garbage: f64,
    /// Share rejected because the score is beyond the threshold.
    pub rejected_uncertain: f64,
}

impl VerdictShares {
    /// Counts `verdicts` of `set` (labels are digits for the ID set).
    pub fn of(set: &Dataset, verdicts: &[Verdict], labels_are_digits: bool) -> Self {
        let n = verdicts.len().max(1) as f64;
        let mut s = Self {
            name: set.name.clone(),
            n: verdicts.len(),
            accepted: 0.0,
            accepted_correct: 0.0,
            rejected_garbage: 0.0,
            rejected_uncertain: 0.0,
        };
        for (v, &y) in verdicts.iter().zip(&set.labels) {
            match *v {
                Verdict::Accept { digit, .. } => {
                    s.accepted += 1.0;
                    if labels_are_digits && digit == y {
                        s.accepted_correct += 1.0;
                    }
                }
                Verdict::Reject {
                    reason: RejectReason::Garbage,
                    ..
                } => s.rejected_garbage += 1.0,
                Verdict::Reject {
                    reason: RejectReason::Uncertain,
                    ..
                } => s.rejected_uncertain += 1.0,
            }
        }
        s.accepted /= n;
        s.accepted_correct /= n;
        s.rejected_garbage /= n;
        s.rejected_uncertain /= n;
        s
    }

    /// A Markdown table of several sets.
    pub fn markdown(rows: &[VerdictShares]) -> String {
        let mut s = String::from(
            "| set | images | accepted | accepted and correct | rejected: garbage | rejected: uncertain |\n|---|---|---|---|---|---|\n",
        );
        for r in rows {
            s.push_str(&format!(
                "| {} | {} | {:.2}% | {:.2}% | {:.2}% | {:.2}% |\n",
                r.name,
                r.n,
                100.0 * r.accepted,
                100.0 * r.accepted_correct,
                100.0 * r.rejected_garbage,
                100.0 * r.rejected_uncertain
            ));
        }
        s
    }
}

impl Evaluation {
    /// The best AUROC over the scores for the set called `name`.
    pub fn best_auroc(&self, name: &str) -> Option<f64> {
        self.ood
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.scores.iter().map(|s| s.auroc).fold(f64::NAN, f64::max))
    }

    /// The report as Markdown tables.
    pub fn to_markdown(&self) -> String {
        self.to_markdown_with_missing(&[])
    }

    /// The report as Markdown tables, with a "not evaluated" row in each
    /// table for every set in `missing` (entries `name` or `name: reason`,
    /// as [`crate::sets::EvalSets::skipped`] lists them), so that a set that
    /// could not be found reads as missing where its numbers would be.
    pub fn to_markdown_with_missing(&self, missing: &[String]) -> String {
        // both OOD tables have five columns: the same rows close each
        let missing_rows: String = missing
            .iter()
            .map(|m| {
                let name = crate::sets::skipped_name(m);
                format!("| {name} | - | not evaluated | - | - |\n")
            })
            .collect();
        let mut s = String::new();
        s.push_str(&format!(
            "**{}**: accuracy {:.2}% on {} images, {:.2}% sent to garbage, mean U {:.4}\n\n",
            self.id.name,
            100.0 * self.id.accuracy,
            self.id.n,
            100.0 * self.id.garbage_share,
            self.id.mean_uncertainty
        ));
        s.push_str(&format!("Convention: {}.\n\n", self.convention));
        s.push_str(
            "| OOD set | n | sent to garbage | mean U | best AUROC (score) |\n|---|---|---|---|---|\n",
        );
        for r in &self.ood {
            let best = r.scores.iter().max_by(|a, b| a.auroc.total_cmp(&b.auroc));
            s.push_str(&format!(
                "| {} | {} | {:.2}% | {:.4} | {} |\n",
                r.name,
                r.n,
                100.0 * r.garbage_share,
                r.mean_uncertainty,
                best.map_or("-".into(), |m| format!("{:.4} ({})", m.auroc, m.score))
            ));
        }
        s.push_str(&missing_rows);
        s.push_str("\n| OOD set | score | AUROC | AUPR | FPR95 |\n|---|---|---|---|---|\n");
        for r in &self.ood {
            for m in &r.scores {
                s.push_str(&format!(
                    "| {} | {} | {:.4} | {:.4} | {:.4} |\n",
                    r.name, m.score, m.auroc, m.aupr, m.fpr95
                ));
            }
        }
        s.push_str(&missing_rows);
        s.push_str("\nConfusion matrix (rows: true class, columns: predicted; 10 = garbage)\n\n|   |");
        for c in 0..NUM_CLASSES {
            s.push_str(&format!(" {c} |"));
        }
        s.push_str("\n|---|");
        s.push_str(&"---|".repeat(NUM_CLASSES));
        s.push('\n');
        for (t, row) in self.id.confusion.iter().enumerate().take(ood_core::NUM_DIGITS) {
            s.push_str(&format!("| **{t}** |"));
            for v in row {
                s.push_str(&format!(" {v} |"));
            }
            s.push('\n');
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluation_of_a_fake_model_that_knows_the_answer() -> Result<()> {
        // images with first pixel 0..=9 are digits of that class, 200 = garbage
        let mut id = Dataset {
            name: "id".into(),
            ..Default::default()
        };
        for d in 0..10u8 {
            let mut img = [0u8; IMG_PIXELS];
            img[0] = d;
            id.push(&img, d);
        }
        let mut ood = Dataset {
            name: "ood".into(),
            ..Default::default()
        };
        for _ in 0..4 {
            let mut img = [0u8; IMG_PIXELS];
            img[0] = 200;
            ood.push(&img, 0);
        }
        let f = |px: &[u8]| -> Result<Vec<[f32; NUM_CLASSES]>> {
            Ok(px
                .chunks(IMG_PIXELS)
                .map(|img| {
                    // confident digits; OOD gets a mild garbage logit
                    let mut z = [0f32; NUM_CLASSES];
                    let c = (img[0] as usize).min(GARBAGE);
                    z[c] = if c == GARBAGE { 3.0 } else { 10.0 };
                    z
                })
                .collect())
        };
        let e = evaluate(&f, &id, &[ood], &indicatif::ProgressBar::hidden())?;
        assert_eq!(e.id.accuracy, 1.0);
        assert_eq!(e.id.confusion[3][3], 1);
        assert_eq!(e.ood[0].garbage_share, 1.0);
        for m in &e.ood[0].scores {
            assert_eq!(m.auroc, 1.0, "{}", m.score);
            assert_eq!(m.fpr95, 0.0, "{}", m.score);
        }
        assert_eq!(e.best_auroc("ood"), Some(1.0));
        let md = e.to_markdown();
        assert!(md.contains("| ood | 4 | 100.00% |"), "{md}");
        assert!(md.contains("| ood | energy | 1.0000 | 1.0000 | 0.0000 |"), "{md}");
        assert!(!md.contains("not evaluated"), "{md}");
        // a set that could not be found reads as such in both OOD tables
        let md = e.to_markdown_with_missing(&["fashion-mnist: not found in /x".into()]);
        assert_eq!(
            md.matches("| fashion-mnist | - | not evaluated | - | - |")
                .count(),
            2,
            "{md}"
        );
        Ok(())
    }
}
