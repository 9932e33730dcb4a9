//! The deployed decision, measured in the trainer on the final f32 model:
//! reject when the arg-max is the garbage class, else when `1 - U(x)` is
//! below the threshold that keeps 99% of the held-out validation digits
//! (the export's default threshold, there measured on the int8 file).
//!
//! Besides MNIST test and the OOD test sets (reported only), it measures the
//! run's own validation signals, which may guide choices:
//! - the synthetic near-OOD families ([`ood_data::nearood`]), as drawn and
//!   as the device sees them;
//! - the validation digits as a scan delivers them to the device, accepted
//!   as the right digit (`TrainingData::val_scanned`), and digits drawn by
//!   the pen of the `symbols` family (`TrainingData::pen_digits`), and the
//!   validation digits photographed on a lit page and normalised by the
//!   device's own code (`TrainingData::val_photographed`);
//! - counterfeit acceptance: a *fresh* generator, trained from scratch to
//!   invert the final classifier for `eval.counterfeit_steps` steps with the
//!   run's inversion loss, and the share of its samples the decision accepts
//!   as digits (the method's own robustness test; lower is better).
//!
//! With `calibration.shift_average` the decision reads the mean of the
//! logits over each image and its four shifted copies ([`decision_logits`]),
//! as the exported graph does, the threshold included. The counterfeit
//! check's generator still inverts the classifier on single images; its
//! samples are then judged by the shifted decision.

use super::{data::TrainingData, invert};
use crate::config::{InversionConfig, TrainConfig};
use crate::data::Dataset;
use crate::error::Result;
use crate::eval::VerdictShares;
use crate::model::generator::Generator;
use crate::model::warp::SourceDigits;
use crate::model::{Classifier, Device};
use crate::package::{DECISION_SCORE, KEEPS};
use crate::seeds::Stream;
use ood_core::{calibrate, Policy, IMG_PIXELS, NUM_CLASSES};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Share of validation digits the deployed threshold keeps: the export's
/// default, the last of its [`KEEPS`].
pub const KEEP: f32 = KEEPS[KEEPS.len() - 1];

/// What the deployed decision does to every set of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployed {
    /// Share of validation digits the threshold keeps.
    pub keep: f32,
    /// The threshold on `1 - U(x)`.
    pub threshold: f32,
    /// MNIST test.
    pub mnist: VerdictShares,
    /// The OOD test sets (reported only).
    pub ood: Vec<VerdictShares>,
    /// The synthetic near-OOD validation families.
    pub near_ood: Vec<VerdictShares>,
    /// The same families through the device's normalisation (empty in
    /// reports written before it was measured).
    #[serde(default)]
    pub near_ood_device: Vec<VerdictShares>,
    /// The validation digits as a scan delivers them to the device (absent
    /// in reports written before it was measured).
    #[serde(default)]
    pub val_scanned: Option<VerdictShares>,
    /// Digits drawn by the pen of the `symbols` family (absent in reports
    /// written before it was measured).
    #[serde(default)]
    pub pen_digits: Option<VerdictShares>,
    /// The validation digits photographed and normalised by the device
    /// (absent in reports written before it was measured).
    #[serde(default)]
    pub val_photographed: Option<VerdictShares>,
    /// The fresh generator's counterfeits (absent when the check is off).
    pub counterfeits: Option<VerdictShares>,
}

impl Deployed {
    /// Mean rejection over the near-OOD families.
    pub fn near_ood_rejected(&self) -> f64 {
        mean_rejected(&self.near_ood)
    }

    /// Mean rejection over the near-OOD families as the device sees them
    /// (`None` when they were not measured).
    pub fn near_ood_device_rejected(&self) -> Option<f64> {
        (!self.near_ood_device.is_empty()).then(|| mean_rejected(&self.near_ood_device))
    }
}

fn mean_rejected(sets: &[VerdictShares]) -> f64 {
    let n = sets.len().max(1) as f64;
    sets.iter().map(|s| 1.0 - s.accepted).sum::<f64>() / n
}

/// A fresh generator's samples after `eval.counterfeit_steps` steps against
/// `model` (`None` when the check is off); a warp generator deforms the
/// training `digits`, or `shared`, the same digits as the run's generator
/// holds them (no copy). A run whose pen draws over digits is checked with
/// the pen alone on blank pages, the same test as a stroke generator's.
pub fn counterfeits(
    model: &Classifier,
    cfg: &TrainConfig,
    (digits, shared): (&Dataset, Option<&Arc<SourceDigits>>),
    device: &Device,
) -> Result<Option<Dataset>> {
    let steps = cfg.eval.counterfeit_steps;
    if steps == 0 {
        return Ok(None);
    }
    // one-digit conditions and no typicality anchors (`None` below): the
    // same plain inversion whatever the run's generator was asked
    let mut inv = InversionConfig {
        generator_steps: steps,
        two_digit_share: 0.0,
        ..cfg.inversion.clone()
    };
    // a pen over digits is checked as the pen alone
    inv.generator = inv.generator.pen_alone();
    let mut rng = Stream::Counterfeit.rng(cfg.seed, 0);
    let mut g = Generator::new(&inv.generator, inv.generator_lr, &mut rng, device)?;
    match shared {
        Some(sources) => g.set_sources(sources),
        None => g.give_sources(digits)?,
    }
    // every sample kept, whatever the run's `candidates`: the same test in every arm
    let (_, _, mut ds) =
        invert::train_and_generate(&mut g, model, (&inv, None), (inv.samples_per_epoch, 0), &mut rng)?;
    ds.name = "counterfeits".into();
    Ok(Some(ds))
}

fn shares(policy: &Policy, set: &Dataset, z: &[[f32; NUM_CLASSES]], digits: bool) -> VerdictShares {
    let verdicts: Vec<_> = z.iter().map(|l| policy.decide(l)).collect();
    VerdictShares::of(set, &verdicts, digits)
}

/// The logits the deployed decision reads (what the exported graph answers):
/// `model`'s, or with `shift > 0` (`calibration.shift_average`) their mean
/// over each image and its four shifts by `shift` pixels, background where
/// a copy moved off the edge.
pub fn decision_logits(
    model: &Classifier,
    pixels: &[u8],
    shift: usize,
    batch: usize,
) -> Result<Vec<[f32; NUM_CLASSES]>> {
    if shift == 0 {
        return model.logits(pixels, batch);
    }
    let shifts = ood_core::input::cross_shifts(shift as i32);
    let mut mean = vec![[0f32; NUM_CLASSES]; pixels.len() / IMG_PIXELS];
    let mut moved = vec![0u8; mean.len() * IMG_PIXELS];
    for &(dx, dy) in &shifts {
        for (src, out) in pixels
            .chunks_exact(IMG_PIXELS)
            .zip(moved.chunks_exact_mut(IMG_PIXELS))
        {
            super::train::shift_image(src, dx, dy, out);
        }
        for (acc, z) in mean.iter_mut().zip(model.logits(&moved, batch)?) {
            for (a, v) in acc.iter_mut().zip(z) {
                *a += v;
            }
        }
    }
    for z in &mut mean {
        for v in z.iter_mut() {
            *v /= shifts.len() as f32;
        }
    }
    Ok(mean)
}

/// The deployed decision of `model` (the final one, offset folded in) on
/// every set; `zid` / `zood` are its logits on MNIST test and the OOD sets
/// (computed again through [`decision_logits`] when the decision averages
/// shifts);
/// `sources`: the training digits the run's generator holds (the kinds that
/// take digits), which the counterfeit check's generator then shares
/// ([`counterfeits`]).
pub fn measure(
    model: &Classifier,
    cfg: &TrainConfig,
    data: &TrainingData,
    (zid, zood): (&[[f32; NUM_CLASSES]], &[Vec<[f32; NUM_CLASSES]>]),
    sources: Option<&Arc<SourceDigits>>,
    device: &Device,
) -> Result<Deployed> {
    let batch = cfg.eval.batch_size;
    let shift = cfg.calibration.shift_average;
    let logits = |set: &Dataset| decision_logits(model, &set.images, shift, batch);
    let shifted;
    let (zid, zood) = if shift == 0 {
        (zid, zood)
    } else {
        shifted = (
            logits(&data.sets.id)?,
            data.sets.ood.iter().map(logits).collect::<Result<Vec<_>>>()?,
        );
        (shifted.0.as_slice(), shifted.1.as_slice())
    };
    let mut s: Vec<f32> = logits(&data.val)?
        .iter()
        .map(|z| DECISION_SCORE.id_score(z))
        .collect();
    let threshold = calibrate(&mut s, KEEP).ok_or(crate::Error::Config(
        "no validation digits to set the deployed threshold on".into(),
    ))?;
    let policy = Policy {
        score: DECISION_SCORE,
        threshold,
    };
    let ood = data
        .sets
        .ood
        .iter()
        .zip(zood)
        .map(|(set, z)| shares(&policy, set, z, false))
        .collect();
    // the decision on a set the model has not scored yet; `digits`: its
    // labels are digits, accepted as the right digit or not
    let verdicts = |set: &Dataset, digits: bool| -> Result<VerdictShares> {
        Ok(shares(&policy, set, &logits(set)?, digits))
    };
    let decide = |set: &Dataset| verdicts(set, false);
    let near_ood = data.near_ood.iter().map(decide).collect::<Result<_>>()?;
    let near_ood_device = data.near_ood_device.iter().map(decide).collect::<Result<_>>()?;
    let val_scanned = Some(verdicts(&data.val_scanned, true)?);
    let pen_digits = Some(verdicts(&data.pen_digits, true)?);
    let val_photographed = Some(verdicts(&data.val_photographed, true)?);
    let counterfeits = counterfeits(model, cfg, (&data.digits, sources), device)?
        .as_ref()
        .map(decide)
        .transpose()?;
    Ok(Deployed {
        keep: KEEP,
        threshold,
        mnist: shares(&policy, &data.sets.id, zid, true),
        ood,
        near_ood,
        near_ood_device,
        val_scanned,
        pen_digits,
        val_photographed,
        counterfeits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::generator::GeneratorKind;

    fn accepted(name: &str, accepted: f64) -> VerdictShares {
        VerdictShares {
            name: name.into(),
            n: 100,
            accepted,
            accepted_correct: 0.0,
            rejected_garbage: 1.0 - accepted,
            rejected_uncertain: 0.0,
        }
    }

    #[test]
    fn the_counterfeit_check_shares_a_warp_runs_digits_and_checks_a_pen_over_digits_alone() {
        use crate::model::ClassifierConfig;
        use rand::SeedableRng;
        let mut digits = Dataset::default();
        for i in 0..40u8 {
            let mut img = [0u8; ood_core::IMG_PIXELS];
            img[usize::from(i) * 7..usize::from(i) * 7 + 60].fill(200);
            digits.push(&img, i % 10);
        }
        let mut cfg = TrainConfig::default();
        cfg.eval.counterfeit_steps = 2;
        let inv = &mut cfg.inversion;
        inv.generator.kind = GeneratorKind::Warp;
        (inv.generator.hidden1, inv.generator.hidden2) = (8, 16);
        (inv.batch_size, inv.samples_per_epoch) = (4, 12);
        let tiny = ClassifierConfig {
            conv1: 2,
            conv2: 3,
            hidden: 4,
            dropout: 0.0,
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let model = Classifier::new(&tiny, &mut rng, &Device::Cpu).expect("classifier");
        let own = counterfeits(&model, &cfg, (&digits, None), &Device::Cpu)
            .expect("own copy")
            .expect("on");
        let shared = Arc::new(SourceDigits::new(&digits));
        let with_shared = counterfeits(&model, &cfg, (&Dataset::default(), Some(&shared)), &Device::Cpu)
            .expect("shared")
            .expect("on");
        assert_eq!(own.len(), 12);
        assert_eq!(own, with_shared, "the same digits, the same counterfeits");
        // without either, a warp generator has nothing to deform
        assert!(counterfeits(&model, &cfg, (&Dataset::default(), None), &Device::Cpu).is_err());
        // a pen that draws over digits is checked as the pen alone: the same
        // counterfeits as a stroke run's, and no digits needed
        let mut pen = cfg.clone();
        pen.inversion.generator.kind = GeneratorKind::Strokes;
        let mut over = cfg.clone();
        over.inversion.generator.kind = GeneratorKind::StrokesOverDigits;
        let check = |c: &TrainConfig| {
            counterfeits(&model, c, (&Dataset::default(), None), &Device::Cpu)
                .expect("pen")
                .expect("on")
        };
        assert_eq!(check(&over), check(&pen), "the same test as the pen's");
        // with its ink counted over the page only too (a pen alone has no page)
        over.inversion.generator.added_ink_only = true;
        assert_eq!(check(&over), check(&pen), "the same test as the pen's");
        // and with its batch terms per kind of row (a pen alone has one kind)
        over.inversion.generator.batch_terms_per_kind = true;
        assert_eq!(check(&over), check(&pen), "the same test as the pen's");
        // and as a pair of generators (a pen alone is one generator)
        over.inversion.generator.batch_terms_per_kind = false;
        over.inversion.generator.two_generators = true;
        assert_eq!(check(&over), check(&pen), "the same test as the pen's");
    }

    #[test]
    fn near_ood_means_as_drawn_and_as_the_device_sees_them() {
        let mut d = Deployed {
            keep: KEEP,
            threshold: 0.6,
            mnist: accepted("mnist-test", 0.99),
            ood: vec![],
            near_ood: vec![accepted("val-symbols", 0.3), accepted("val-strokes", 0.1)],
            near_ood_device: vec![],
            val_scanned: None,
            pen_digits: None,
            val_photographed: None,
            counterfeits: None,
        };
        assert!((d.near_ood_rejected() - 0.8).abs() < 1e-12);
        assert_eq!(d.near_ood_device_rejected(), None, "not measured");
        // a report written before the device rows existed still reads
        let mut old = serde_json::to_value(&d).expect("json");
        let fields = old.as_object_mut().expect("object");
        fields.remove("near_ood_device");
        fields.remove("val_scanned");
        fields.remove("pen_digits");
        fields.remove("val_photographed");
        let back: Deployed = serde_json::from_value(old).expect("old report");
        assert_eq!(back, d);
        d.near_ood_device = vec![accepted("device-symbols", 0.5), accepted("device-strokes", 0.3)];
        assert!((d.near_ood_device_rejected().expect("measured") - 0.6).abs() < 1e-12);
    }
}
