//! `trainer export`: a finished run folder -> the device's files beside it.
//!
//! The trainer's side of the bridge: it loads the trained classifier
//! (candle), calibrates the int8 activation ranges on the run's held-out
//! validation digits plus training-style noise, and hands plain weights,
//! ranges and data to `ood-export`, which writes the ONNX files, the
//! manifest with its thresholds and the golden file, and measures them
//! through the device runtime. No OOD set is used to choose anything.

use crate::config::TrainConfig;
use crate::data::{fetch::Sources, synth, Dataset};
use crate::error::Result;
use crate::model::{Classifier, Device};
use crate::run::{data, dir, dir::RunDir, provenance};
use crate::seeds::Stream;
use ood_core::manifest::Provenance;
use ood_export::{ActivationQuant, ExportInput, Weights};
use std::path::Path;

pub use ood_export::{
    ExportSummary, Golden, GoldenCase, DECISION_SCORE, F32_FILE, GOLDEN_FILE, INT8_FILE, INT8_INTEGER_FILE,
    INT8_QLINEAR_FILE, KEEPS,
};

/// Images used to calibrate int8 activation ranges: validation digits plus
/// this many training-style noise images (so garbage inputs do not saturate).
pub const CALIBRATION_NOISE: usize = 1000;

/// Activation maxima and the logit range of `model` on the validation
/// digits plus [`CALIBRATION_NOISE`] training-style noise images.
pub fn activation_ranges(model: &Classifier, cfg: &TrainConfig, val: &Dataset) -> Result<ActivationQuant> {
    let mut calib = val.clone();
    let noise = synth::gaussian(
        "calibration-noise",
        CALIBRATION_NOISE,
        cfg.data.noise_mean,
        cfg.data.noise_std,
        &mut Stream::Export.rng(cfg.seed, 0),
    );
    calib.append(&noise);
    let maxima = model.activation_maxima(&calib.images, cfg.eval.batch_size)?;
    let logits = model.logits(&calib.images, cfg.eval.batch_size)?;
    let (lo, hi) = logits
        .iter()
        .flatten()
        .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    Ok(ActivationQuant::from_maxima(maxima).with_logit_range(lo, hi))
}

/// Exports the finished run in `run_dir` (see the module docs).
pub fn export(run_dir: &Path, sources: &Sources, device: &Device) -> Result<ExportSummary> {
    let run = RunDir::at(run_dir);
    let cfg = run.config()?;
    let model = Classifier::load(&cfg.model, &run.file(dir::CLASSIFIER), device)?;
    tracing::info!("export: calibrating on the MNIST validation split");
    let (mnist_train, mnist_test) = sources.mnist()?;
    let (_, val) = data::validation_split(&cfg, &mnist_train)?;
    let quant = activation_ranges(&model, &cfg, &val)?;
    let sets = data::eval_sets(&cfg, sources, mnist_test, Vec::new())?;
    let shift = cfg.calibration.shift_average;
    let reference = |px: &[u8]| Ok(crate::run::deployed::decision_logits(&model, px, shift, 1)?);
    let input = ExportInput {
        dir: run_dir,
        weights: Weights::from_named(model.weights()?)?,
        quant,
        validation: &val,
        sets: &sets,
        reference: &reference,
        shift,
        provenance: Provenance {
            tool: format!("trainer {}", env!("CARGO_PKG_VERSION")),
            git_revision: provenance::git_revision(),
            run_name: cfg.name.clone(),
            seed: cfg.seed,
            config_toml: cfg.to_toml(),
        },
    };
    Ok(ood_export::package(&input)?)
}
