//! The garbage-logit offset, calibrated on the held-out validation digits
//! (`ood_core::verdict::garbage_offset`), and evaluations at that offset.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::eval::{self, Evaluation};
use crate::model::Classifier;
use crate::report::Calibrated;
use ood_core::{GARBAGE, NUM_CLASSES};

/// The garbage-logit offset that sends at most `budget` of the validation
/// digits to the garbage class, or `None` when `budget` is 0 (calibration off).
pub fn garbage_offset(model: &Classifier, val: &Dataset, budget: f64, batch: usize) -> Result<Option<f32>> {
    if budget <= 0.0 {
        return Ok(None);
    }
    offset_of(&model.logits(&val.images, batch)?, budget)
}

/// [`garbage_offset`] from the validation digits' logits `z`.
pub fn offset_of(z: &[[f32; NUM_CLASSES]], budget: f64) -> Result<Option<f32>> {
    if budget <= 0.0 {
        return Ok(None);
    }
    let mut margins: Vec<f32> = z.iter().map(ood_core::verdict::garbage_margin).collect();
    ood_core::verdict::garbage_offset(&mut margins, budget as f32)
        .map(Some)
        .ok_or(Error::Calibration { n: z.len(), budget })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Logits whose garbage margin (best digit minus garbage) is `m`.
    fn with_margin(m: f32) -> [f32; NUM_CLASSES] {
        let mut z = [0.0f32; NUM_CLASSES];
        z[4] = m;
        z
    }

    #[test]
    fn the_offset_of_logits_flips_the_budgeted_share_and_no_more() -> Result<()> {
        let z: Vec<_> = [0.5f32, 1.0, 2.0, 4.0].iter().map(|&m| with_margin(m)).collect();
        assert_eq!(offset_of(&z, 0.0)?, None, "calibration off");
        // a quarter of four: the smallest margin flips, midway to the next
        assert_eq!(offset_of(&z, 0.25)?, Some(0.75));
        // under one input's share: nothing flips, midway between 0 and the smallest
        assert_eq!(offset_of(&z, 0.2)?, Some(0.25));
        assert!(matches!(
            offset_of(&[], 0.1),
            Err(Error::Calibration { n: 0, .. })
        ));
        Ok(())
    }
}
