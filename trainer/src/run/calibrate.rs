//! The garbage-logit offset, calibrated on the held-out validation digits
//! (`ood_core::verdict::garbage_offset`), and evaluations at that offset.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::eval::{self, Evaluation};
use crate::model::Classifier;
use crate::report::Calibrated;
use ood_core::GARBAGE;

/// The garbage-logit offset that sends at most `budget` of the validation
/// digits to the garbage class, or `None` when `budget` is 0 (calibration off).
pub fn garbage_offset(model: &Classifier, val: &Dataset, budget: f64, batch: usize) -> Result<Option<f32>> {
    if budget <= 0.0 {
        return Ok(None);
    }
    let z = model.logits(&val.images, batch)?;
    let mut margins: Vec<f32> = z.iter().map(ood_core::verdict::garbage_margin).collect();
    ood_core::verdict::garbage_offset(&mut margins, budget as f32)
        .map(Some)
        .ok_or(Error::Calibration { n: val.len(), budget })
}

/// Evaluates `model` with `offset` added to the garbage logit.
pub fn evaluate_at(
    model: &Classifier,
    offset: Option<f32>,
    batch: usize,
    id: &Dataset,
    ood: &[Dataset],
    bar: &indicatif::ProgressBar,
) -> Result<Evaluation> {
    let f = |px: &[u8]| {
        let mut z = model.logits(px, batch)?;
        if let Some(b) = offset {
            for row in &mut z {
                row[GARBAGE] += b;
            }
        }
        Ok(z)
    };
    Ok(eval::evaluate(&f, id, ood, bar)?)
}

/// Calibrates the offset on `val`, then evaluates `model` on `id` and `ood`
/// with it and (when there is one) without it.
pub fn calibrated_evaluation(
    model: &Classifier,
    val: &Dataset,
    budget: f64,
    batch: usize,
    (id, ood): (&Dataset, &[Dataset]),
    bar: &indicatif::ProgressBar,
) -> Result<Calibrated> {
    let offset = garbage_offset(model, val, budget, batch)?;
    let with_offset = evaluate_at(model, offset, batch, id, ood, bar)?;
    let without_offset = match offset {
        Some(_) => Some(evaluate_at(model, None, batch, id, ood, bar)?),
        None => None,
    };
    Ok(Calibrated {
        offset,
        with_offset,
        without_offset,
    })
}
