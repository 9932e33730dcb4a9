//! The end of a run: the shipped model is the last epoch's weights (or their
//! mean over the last epochs, `train.average_epochs`) with the garbage
//! offset calibrated on the validation digits folded into its garbage bias.
//! It is evaluated once on every set (those logits feed the report and the
//! plots), saved, reported, and its provenance written.

use super::{calibrate, deployed, dir, eval_bar, provenance, Run, RunInfo, RunOutput, SELECTION};
use crate::data::Dataset;
use crate::error::Result;
use crate::eval;
use crate::report::{plots, Averaged, Calibrated, Report};
use ood_core::{GARBAGE, NUM_CLASSES};

impl Run<'_> {
    /// The shipped model: the last epoch's weights with the garbage offset
    /// calibrated on the validation split folded into the garbage bias;
    /// evaluated, saved and reported.
    pub fn finish(mut self) -> Result<RunOutput> {
        let cfg = self.cfg;
        let batch = cfg.eval.batch_size;
        let bar = eval_bar("final evaluation");
        let sets = &self.data.sets;
        let model = &mut self.trainer.model;
        // the validation digits' logits, once: the averaged weights'
        // accuracy and the garbage offset
        let zval = model.logits(&self.data.val.images, batch)?;
        let averaged = match cfg.train.average_epochs {
            0 => None,
            n => Some(Averaged {
                epochs: n,
                val_accuracy: super::train::accuracy_of(&zval, &self.data.val.labels),
            }),
        };
        let offset = calibrate::offset_of(&zval, cfg.calibration.garbage_budget)?;
        // the weights as trained, when an offset is about to change them
        let without_offset = match offset {
            Some(_) => Some(calibrate::evaluate_at(
                model, None, batch, &sets.id, &sets.ood, &bar,
            )?),
            None => None,
        };
        if let Some(b) = offset {
            model.shift_garbage_bias(b)?;
            tracing::info!("garbage bias raised by {b:.3} (calibrated on the validation digits)");
        }
        // the final logits, computed once for the evaluation and the plots
        let f = |px: &[u8]| Ok(model.logits(px, batch)?);
        bar.set_length((sets.id.len() + sets.ood.iter().map(Dataset::len).sum::<usize>()) as u64);
        let zid = eval::logits_of(&f, &sets.id, &bar)?;
        let zood: Vec<Vec<[f32; NUM_CLASSES]>> = sets
            .ood
            .iter()
            .map(|d| eval::logits_of(&f, d, &bar))
            .collect::<ood_data::Result<_>>()?;
        bar.finish_and_clear();
        let evaluation = eval::evaluate_logits(&sets.id, &zid, &sets.ood, &zood);
        model.save(&self.dir.file(dir::CLASSIFIER))?;
        tracing::info!("deployed decision: near-OOD validation sets and a fresh generator's counterfeits");
        let sources = self.gen.as_ref().and_then(|g| g.sources());
        let deployed = deployed::measure(model, cfg, &self.data, (&zid, &zood), sources, &self.device)?;
        log_deployed(&deployed);
        let report = Report {
            name: cfg.name.clone(),
            selection: match &averaged {
                None => SELECTION.into(),
                Some(a) => format!(
                    "{SELECTION} With `train.average_epochs = {}` the weights are the mean of those at the end of the last {} epochs, not the last epoch's alone.",
                    a.epochs, a.epochs
                ),
            },
            calibration_budget: cfg.calibration.garbage_budget,
            epochs: self.progress.log.clone(),
            before: self.progress.before.clone(),
            after: Calibrated {
                offset,
                with_offset: evaluation.clone(),
                without_offset,
            },
            not_evaluated: sets.skipped.clone(),
            deployed: Some(deployed),
            averaged,
        };
        self.dir.write_json(dir::REPORT_JSON, &report)?;
        self.dir.write(dir::REPORT_MD, report.to_markdown())?;
        self.dir.write_json(dir::EVAL_JSON, &evaluation)?;
        let logits = plots::FinalLogits {
            id: &sets.id,
            zid: &zid,
            ood: &sets.ood,
            zood: &zood,
        };
        plots::all(&report, &logits, self.dir.path())?;
        let info = self.info()?;
        self.dir.write_json(dir::RUN_JSON, &info)?;
        Ok(RunOutput {
            dir: self.dir.path().to_path_buf(),
            epochs: self.progress.log,
            before: self.progress.before,
            eval: evaluation,
            info,
        })
    }

    fn info(&self) -> Result<RunInfo> {
        let cfg = self.cfg;
        let weights = self.dir.file(dir::CLASSIFIER);
        let bytes = std::fs::read(&weights).map_err(|e| crate::Error::io(&weights, e))?;
        let digits: Vec<Vec<usize>> = self
            .data
            .digit_sources()
            .iter()
            .map(|d| d.counts(NUM_CLASSES))
            .collect();
        let mut counts = super::train::total_counts(&digits);
        counts[GARBAGE] = self.data.garbage_seed_images() + self.garbage.set.len();
        Ok(RunInfo {
            name: cfg.name.clone(),
            seed: cfg.seed,
            git_revision: provenance::git_revision(),
            started_utc: self.started_utc.clone(),
            wall_seconds: self.base_wall + self.started.elapsed().as_secs_f64(),
            device: format!("{:?}", self.device),
            num_params: cfg.model.num_params(),
            weights_sha256: ood_data::sha256_hex(&bytes),
            train_class_counts: counts,
            skipped_sets: self.data.sets.skipped.clone(),
        })
    }
}

/// One line per set of the deployed decision, for the log.
fn log_deployed(d: &deployed::Deployed) {
    let pct = |v: f64| format!("{:.2}%", 100.0 * v);
    tracing::info!(
        "deployed decision (threshold {:.4}, keeps {:.0}% of validation digits): MNIST test accepted and correct {}",
        d.threshold,
        100.0 * d.keep,
        pct(d.mnist.accepted_correct)
    );
    let rejected: Vec<String> = d
        .ood
        .iter()
        .chain(&d.near_ood)
        .chain(&d.near_ood_device)
        .map(|s| format!("{} {}", s.name, pct(1.0 - s.accepted)))
        .collect();
    tracing::info!("rejected: {}", rejected.join(", "));
    if let Some(v) = &d.val_scanned {
        tracing::info!(
            "validation digits as a scan delivers them, accepted and correct: {}",
            pct(v.accepted_correct)
        );
    }
    if let Some(v) = &d.pen_digits {
        tracing::info!(
            "pen-drawn digits accepted and correct: {}",
            pct(v.accepted_correct)
        );
    }
    if let Some(v) = &d.val_photographed {
        tracing::info!(
            "validation digits photographed, accepted and correct: {}",
            pct(v.accepted_correct)
        );
    }
    if let Some(c) = &d.counterfeits {
        tracing::info!(
            "a fresh generator's counterfeits accepted as digits: {}",
            pct(c.accepted)
        );
    }
}
