//! One training run, end to end, as the README tells it:
//!
//! 1. [`Run::start`]: find and check all the data (before the run folder is
//!    created, so a bad input leaves nothing behind; an existing folder is
//!    never overwritten), draw the initial weights.
//! 2. [`Run::epoch`], until [`Run::done`]: a pre-training epoch trains the
//!    classifier on digits + noise garbage ([`train`]); an inversion epoch
//!    trains it on digits + noise + generated garbage, then inverts the
//!    frozen classifier into new garbage ([`invert`]) and evaluates quickly
//!    at the garbage offset calibrated on the validation digits
//!    ([`calibrate`]). After each epoch a checkpoint is written, so
//!    [`Run::resume`] continues exactly where a killed run stopped.
//! 3. [`Run::finish`]: fold the calibrated offset into the garbage bias,
//!    evaluate on every set, write the weights, the report and the plots.
//!
//! Run folder ([`dir`]): `config.toml`, `classifier.safetensors`,
//! `checkpoint.safetensors` + `progress.json` (for resuming), `report.json`,
//! `report.md`, `eval.json`, `run.json`, `curves.png`, `roc.png`,
//! `hist_*.png`, `samples_epochNNN.png`; the export adds its files.

pub mod ablate;
pub mod calibrate;
pub mod data;
pub mod deployed;
pub mod digit_like;
pub mod dir;
pub mod diversity;
pub mod finish;
pub mod invert;
pub mod provenance;
pub mod train;

use crate::config::TrainConfig;
use crate::data::{fetch::Sources, Dataset};
use crate::error::{Error, Result};
use crate::eval::Evaluation;
use crate::model::average::WeightMean;
use crate::model::generator::Generator;
use crate::model::warp::SourceDigits;
use crate::model::{self, optim::AdamParams, Classifier, ClassifierTrainer};
use crate::report::{plots, Calibrated, EpochLog};
use crate::seeds::Stream;
use data::TrainingData;
use digit_like::DigitLike;
use dir::RunDir;
use invert::GarbageReservoir;
pub use provenance::RunInfo;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// How the shipped model is chosen (stated in every report).
pub const SELECTION: &str = "No checkpoint selection: the model is the one after the last epoch, with the learning rate annealed by one cosine decay over all epochs and the garbage set a reservoir sample of every generated image; when calibration is on, its garbage bias is raised by the offset that sends the budgeted share of the MNIST validation digits to garbage. No OOD test set influenced any choice; they are reported only.";

/// The resumable part of a run, saved after every epoch (`progress.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Progress {
    /// Epochs finished (pre-training and inversion together).
    pub epochs_done: usize,
    /// Generated images produced so far (for reservoir sampling).
    pub generated_seen: u64,
    /// Per-epoch logs so far.
    pub log: Vec<EpochLog>,
    /// Full evaluation after pre-training ("before inversion").
    pub before: Option<Calibrated>,
    /// Wall seconds spent so far, across resumes.
    pub wall_seconds: f64,
}

impl Progress {
    /// Parses `progress.json` text of a run of `total_epochs` epochs and
    /// checks that it can be resumed: no more epochs done than the run has,
    /// one log entry per epoch done, a finite non-negative wall time. A
    /// hand-edited or foreign file is refused here, not halfway through a
    /// resumed epoch. `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path, total_epochs: usize) -> Result<Self> {
        let bad = |what: String| {
            Error::format(
                path,
                format!("{what}; the run folder is inconsistent: start a new run (`--out` elsewhere) or restore the folder"),
            )
        };
        let p: Progress =
            serde_json::from_str(text).map_err(|e| bad(format!("corrupt progress.json: {e}")))?;
        if p.epochs_done > total_epochs {
            return Err(bad(format!(
                "{} epochs done, but the run has {total_epochs}",
                p.epochs_done
            )));
        }
        if p.log.len() != p.epochs_done {
            return Err(bad(format!(
                "{} epoch log entries for {} epochs done",
                p.log.len(),
                p.epochs_done
            )));
        }
        if !(p.wall_seconds.is_finite() && p.wall_seconds >= 0.0) {
            return Err(bad(format!("wall_seconds is {}", p.wall_seconds)));
        }
        Ok(p)
    }
}

/// Everything a finished run produced.
#[derive(Debug)]
pub struct RunOutput {
    /// Where it was written.
    pub dir: PathBuf,
    /// Per-epoch log.
    pub epochs: Vec<EpochLog>,
    /// Evaluation after pre-training (before inversion).
    pub before: Option<Calibrated>,
    /// Final evaluation of the shipped model.
    pub eval: Evaluation,
    /// Provenance.
    pub info: RunInfo,
}

/// What a run is made of.
#[derive(Debug, Clone, Copy)]
pub struct RunInputs<'a> {
    /// The resolved config.
    pub cfg: &'a TrainConfig,
    /// Where the datasets are found (or fetched).
    pub sources: &'a Sources,
    /// The run folder.
    pub out_dir: &'a Path,
    /// Extra OOD sets (`--ood NAME=PATH`), evaluated and reported.
    pub extra: &'a [(String, PathBuf)],
    /// The compute device.
    pub device: &'a model::Device,
}

/// A run in progress.
pub struct Run<'a> {
    cfg: &'a TrainConfig,
    dir: RunDir,
    data: TrainingData,
    trainer: ClassifierTrainer,
    gen: Option<Generator>,
    garbage: GarbageReservoir,
    /// With `inversion.digit_like`: the reference digits and threshold
    /// (fixed for the run).
    digit_like: Option<DigitLike>,
    /// Running sums of the weights over the last `train.average_epochs`
    /// epochs (empty until the first of them ends).
    mean: WeightMean,
    progress: Progress,
    device: model::Device,
    started: Instant,
    started_utc: String,
    base_wall: f64,
}

/// Epochs (1-based, inversion only) whose generated samples are saved as a grid.
pub fn is_sample_epoch(k: usize, total: usize) -> bool {
    k == 1 || k == total || k == total.div_ceil(2) || k == total.div_ceil(4)
}

fn eval_bar(msg: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template("{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} images")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(msg.to_string());
    bar
}

impl<'a> Run<'a> {
    /// Checks and loads everything, then creates the run folder (refused if
    /// it holds files) with the resolved config.
    pub fn start(inputs: &RunInputs<'a>) -> Result<Self> {
        inputs.cfg.validate()?;
        dir::check_new(inputs.out_dir)?;
        let run = Self::prepare(inputs, RunDir::at(inputs.out_dir))?;
        RunDir::create(inputs.out_dir)?.write(dir::CONFIG, inputs.cfg.to_toml())?;
        Ok(run)
    }

    /// Reopens the run saved in the run folder after its last finished
    /// epoch; the caller checks the config is the run's own.
    pub fn resume(inputs: &RunInputs<'a>) -> Result<Self> {
        inputs.cfg.validate()?;
        let out_dir = inputs.out_dir;
        let run_dir = RunDir::resumable(out_dir)?;
        let mut run = Self::prepare(inputs, run_dir)?;
        let path = run.dir.file(dir::PROGRESS);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let listed = Progress::parse(&text, &path, run.total_epochs())?;
        let ckpt = run.dir.file(dir::CHECKPOINT);
        run.progress = if ckpt.is_file() {
            let model::Restored {
                garbage,
                progress: saved,
                mean,
            } = model::load_checkpoint(&ckpt, &mut run.trainer, run.gen.as_mut())?;
            run.garbage.set = garbage;
            run.mean = mean;
            // the checkpoint's own copy is the one that matches its weights
            let progress = match saved {
                Some(bytes) => {
                    let text = String::from_utf8(bytes).map_err(|_| {
                        Error::format(&ckpt, "its progress is not UTF-8 (the file is damaged)")
                    })?;
                    Progress::parse(&text, &ckpt, run.total_epochs())?
                }
                None => listed.clone(),
            };
            if progress.epochs_done != listed.epochs_done {
                // the disk filled (or the machine stopped) between the
                // checkpoint's rename and progress.json's
                tracing::warn!(
                    "{} lists {} epochs but the checkpoint holds {}: a write was cut; going on from the checkpoint",
                    path.display(),
                    listed.epochs_done,
                    progress.epochs_done
                );
                run.dir.write_json(dir::PROGRESS, &progress)?;
            }
            progress
        } else if listed.epochs_done > 0 {
            return Err(Error::NotARun {
                dir: out_dir.to_path_buf(),
                missing: dir::CHECKPOINT,
                hint: "progress.json lists finished epochs but their weights are gone; start a new run",
            });
        } else {
            listed
        };
        run.garbage.seen = run.progress.generated_seen;
        run.base_wall = run.progress.wall_seconds;
        tracing::info!(
            "resuming {} after epoch {}",
            out_dir.display(),
            run.progress.epochs_done
        );
        Ok(run)
    }

    /// Loads the data and draws the initial weights (classifier, then
    /// generator, from the `Init` stream).
    fn prepare(inputs: &RunInputs<'a>, dir: RunDir) -> Result<Self> {
        let (cfg, device) = (inputs.cfg, inputs.device);
        let started = Instant::now();
        let started_utc = provenance::now_utc();
        tracing::info!("locating data");
        let data = TrainingData::load(cfg, inputs.sources, inputs.extra)?;
        let mut init_rng = Stream::Init.rng(cfg.seed, 0);
        let classifier = Classifier::new(&cfg.model, &mut init_rng, device)?;
        let params = AdamParams {
            lr: cfg.train.lr,
            weight_decay: cfg.train.weight_decay,
            ..Default::default()
        };
        let trainer = ClassifierTrainer::new(classifier, params)?;
        let inv = &cfg.inversion;
        let gen = match inv.epochs {
            0 => None,
            _ => {
                let mut g = Generator::new(&inv.generator, inv.generator_lr, &mut init_rng, device)?;
                if inv.generator.turned_pages {
                    // data.turned_count > 0: checked with the config
                    g.set_sources(&Arc::new(SourceDigits::any_class(&data.turned)));
                } else {
                    g.give_sources(&data.digits)?;
                }
                Some(g)
            }
        };
        let garbage = GarbageReservoir {
            set: Dataset {
                name: "generated".into(),
                ..Default::default()
            },
            seen: 0,
        };
        let digit_like = (inv.epochs > 0 && inv.digit_like > 0.0)
            .then(|| DigitLike::of(&data.digits, inv.digit_like))
            .transpose()?;
        if let Some(d) = &digit_like {
            tracing::info!(
                "counterfeits nearer a training digit than {:.3} (the {:.0}th percentile of held-out training digits) are taken for digits",
                d.threshold,
                100.0 * inv.digit_like
            );
        }
        Ok(Self {
            cfg,
            dir,
            data,
            trainer,
            gen,
            garbage,
            digit_like,
            mean: WeightMean::default(),
            progress: Progress::default(),
            device: device.clone(),
            started,
            started_utc,
            base_wall: 0.0,
        })
    }

    /// Epochs in the whole run (pre-training, then inversion).
    pub fn total_epochs(&self) -> usize {
        self.cfg.total_epochs()
    }

    /// Whether every epoch is done.
    pub fn done(&self) -> bool {
        self.progress.epochs_done >= self.total_epochs()
    }

    /// Runs the next epoch, evaluates before inversion when pre-training has
    /// just ended, and writes the checkpoint.
    pub fn epoch(&mut self) -> Result<()> {
        let e = self.progress.epochs_done; // 0-based epoch index
        let log = if e < self.cfg.train.epochs {
            self.pretrain_epoch(e)?
        } else {
            self.inversion_epoch(e)?
        };
        self.progress.log.push(log);
        self.progress.epochs_done += 1;
        self.average_weights()?;
        if self.progress.epochs_done == self.cfg.train.epochs && self.gen.is_some() {
            let bar = eval_bar("evaluating before inversion");
            let sets = &self.data.sets;
            self.progress.before = Some(self.calibrated((&sets.id, &sets.ood), &bar)?);
            bar.finish_and_clear();
        }
        self.progress.wall_seconds = self.base_wall + self.started.elapsed().as_secs_f64();
        self.save_checkpoint()
    }

    /// Adds the weights to the mean in the run's last `train.average_epochs`
    /// epochs, and after the last one makes the classifier that mean (the
    /// checkpoint written next holds it).
    fn average_weights(&mut self) -> Result<()> {
        let (n, total, done) = (
            self.cfg.train.average_epochs,
            self.total_epochs(),
            self.progress.epochs_done,
        );
        if n == 0 || done + n <= total {
            return Ok(());
        }
        self.mean.add(&self.trainer.model)?;
        let expected = done + n - total;
        if self.mean.count() != expected {
            return Err(Error::Config(format!(
                "the weight mean holds {} epochs after epoch {done}, expected {expected} (a checkpoint from another config?)",
                self.mean.count()
            )));
        }
        if done == total {
            self.mean.apply(&mut self.trainer.model)?;
            tracing::info!("the classifier is the mean of the weights at the end of the last {n} epochs");
        }
        Ok(())
    }

    /// A classifier epoch on digits and noise garbage, plus the generated
    /// garbage in inversion epochs.
    fn train_classifier(&mut self, e: usize, with_generated: bool) -> Result<crate::report::ClassifierEpoch> {
        let total = self.total_epochs();
        let mut rng = Stream::Epoch.rng(self.cfg.seed, e);
        let label = format!("epoch {}/{total}", e + 1);
        let d = &self.data;
        let mut sources = d.digit_sources().to_vec();
        sources.extend(d.garbage_seeds());
        if with_generated {
            sources.push(&self.garbage.set);
        }
        let cfg = self.cfg;
        let generated = with_generated.then(|| sources.len() - 1);
        let turned = sources.iter().position(|s| std::ptr::eq(*s, &d.turned));
        train::train_epoch(
            &mut self.trainer,
            &sources,
            (generated, turned),
            &d.val,
            cfg,
            e,
            total,
            &label,
            &mut rng,
        )
    }

    fn pretrain_epoch(&mut self, e: usize) -> Result<EpochLog> {
        let c = self.train_classifier(e, false)?;
        tracing::info!(
            "epoch {}/{} (pre-training): loss {:.4}, validation accuracy {:.2}%, {:.0} samples/s",
            e + 1,
            self.total_epochs(),
            c.loss,
            100.0 * c.val_accuracy,
            c.samples_per_sec
        );
        Ok(EpochLog {
            epoch: e + 1,
            phase: "pretrain".into(),
            classifier: c,
            inversion: None,
            quick_eval: None,
        })
    }

    /// (a) a classifier epoch with the generated garbage, (b) inversion of
    /// the frozen classifier into new garbage, (c) a quick evaluation at the
    /// calibrated offset for the per-epoch curves.
    fn inversion_epoch(&mut self, e: usize) -> Result<EpochLog> {
        let c = self.train_classifier(e, true)?;
        let cfg = self.cfg;
        let batch = cfg.eval.batch_size;
        let Some(g) = self.gen.as_mut() else {
            return Err(crate::Error::Config(
                "inversion epochs without a generator".into(),
            ));
        };
        let (inv, new) = invert::invert(
            g,
            &self.trainer.model,
            &cfg.inversion,
            (cfg.seed, e, batch),
            (&self.data.val, &self.data.digits, self.digit_like.as_ref()),
            &mut self.garbage,
        )?;
        let k = e + 1 - cfg.train.epochs;
        if is_sample_epoch(k, cfg.inversion.epochs) {
            plots::sample_grid(&new, &self.dir.file(&plots::sample_grid_name(k)))?;
        }
        let quick = self.calibrated(
            (&self.data.quick_id, &self.data.quick_ood),
            &indicatif::ProgressBar::hidden(),
        )?;
        let shares: Vec<String> = quick
            .with_offset
            .ood
            .iter()
            .map(|r| format!("{} {:.1}%", r.name, 100.0 * r.garbage_share))
            .collect();
        tracing::info!(
            "epoch {}/{} (inversion {k}): val acc {:.2}%, gen loss {:.1} (ce {:.3}, cos {:.3}, ms {:.2}, ink {:.3}{}), new samples U {:.3} / to garbage {:.1}%{} / diversity vs real digits: pixels {} features {}{}, {}",
            e + 1,
            self.total_epochs(),
            100.0 * c.val_accuracy,
            inv.loss.total,
            inv.loss.ce,
            inv.loss.cos,
            inv.loss.ms,
            inv.loss.ink,
            if cfg.inversion.typicality != 0.0 {
                format!(", typicality {:.3}", inv.loss.typ)
            } else {
                String::new()
            },
            inv.new_samples_mean_u,
            100.0 * inv.new_samples_to_garbage,
            inv.candidates_to_garbage
                .map_or(String::new(), |c| format!(" (of all drawn {:.1}%)", 100.0 * c))
                + &inv.taken_for_digits.map_or(String::new(), |n| format!(", {n} taken for digits")),
            inv.diversity.as_ref().map_or("-".into(), |d| format!("{:.2} (min {:.2})", d.mean_pixel_ratio(), d.min_pixel_ratio().0)),
            inv.diversity.as_ref().map_or("-".into(), |d| format!("{:.2} (min {:.2})", d.mean_feature_ratio(), d.min_feature_ratio())),
            inv.restart_note()
                .map_or(String::new(), |n| format!(", generator restarted{n}")),
            shares.join(", ")
        );
        Ok(EpochLog {
            epoch: e + 1,
            phase: "inversion".into(),
            classifier: c,
            inversion: Some(inv),
            quick_eval: Some(quick),
        })
    }

    /// The classifier as it is, evaluated at the garbage offset calibrated
    /// on the validation digits now, and without it.
    fn calibrated(&self, sets: (&Dataset, &[Dataset]), bar: &indicatif::ProgressBar) -> Result<Calibrated> {
        let (budget, batch) = (self.cfg.calibration.garbage_budget, self.cfg.eval.batch_size);
        calibrate::calibrated_evaluation(&self.trainer.model, &self.data.val, budget, batch, sets, bar)
    }

    /// The checkpoint holds the weights and the progress they belong to
    /// (one file, one atomic rename); `progress.json` is then its readable
    /// copy. A kill or a full disk at any point leaves a checkpoint that
    /// resumes exactly, and a resume repairs a `progress.json` left behind.
    fn save_checkpoint(&mut self) -> Result<()> {
        self.progress.generated_seen = self.garbage.seen;
        let path = self.dir.file(dir::CHECKPOINT);
        let progress = serde_json::to_vec(&self.progress)
            .map_err(|e| Error::format(&path, format!("cannot serialise the progress: {e}")))?;
        model::save_checkpoint(
            &path,
            &self.trainer,
            self.gen.as_ref(),
            &self.garbage.set,
            &self.mean,
            &progress,
        )?;
        self.dir.write_json(dir::PROGRESS, &self.progress)
    }
}

/// Trains (pre-training, then inversion epochs), evaluates and writes
/// `out_dir`. With `resume`, continues the run saved in `out_dir` from its
/// last finished epoch; the caller checks the config is the run's own.
pub fn run(
    cfg: &TrainConfig,
    sources: &Sources,
    out_dir: &Path,
    extra: &[(String, PathBuf)],
    device: &model::Device,
    resume: bool,
) -> Result<RunOutput> {
    let inputs = RunInputs {
        cfg,
        sources,
        out_dir,
        extra,
        device,
    };
    let mut run = if resume {
        Run::resume(&inputs)?
    } else {
        Run::start(&inputs)?
    };
    while !run.done() {
        run.epoch()?;
    }
    run.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `progress.json` text with `log` copies of the shipped run's first epoch log.
    fn text(epochs_done: usize, log: usize, wall: &str) -> String {
        let report: serde_json::Value =
            serde_json::from_str(include_str!("../../../models/default/report.json")).expect("report.json");
        let first: EpochLog = serde_json::from_value(report["epochs"][0].clone()).expect("an epoch log");
        let log = vec![serde_json::to_value(first).expect("log"); log];
        format!(
            r#"{{"epochs_done": {epochs_done}, "generated_seen": 5, "log": {}, "before": null, "wall_seconds": {wall}}}"#,
            serde_json::Value::Array(log)
        )
    }

    #[test]
    fn progress_is_checked_against_the_run_before_resuming() {
        let p = Path::new("run/progress.json");
        let ok = Progress::parse(&text(2, 2, "12.5"), p, 23).expect("a consistent file");
        assert_eq!((ok.epochs_done, ok.generated_seen, ok.wall_seconds), (2, 5, 12.5));
        let refused = |t: &str, total: usize, needle: &str| {
            let e = Progress::parse(t, p, total).expect_err("refused").to_string();
            assert!(
                e.contains(needle) && e.contains("progress.json") && e.contains("start a new run"),
                "{e}"
            );
        };
        refused(&text(24, 24, "1"), 23, "24 epochs done, but the run has 23");
        refused(&text(3, 2, "1"), 23, "2 epoch log entries for 3 epochs done");
        refused(&text(1, 1, "-1"), 23, "wall_seconds is -1");
        refused(&text(1, 1, "1e999"), 23, "corrupt progress.json");
        refused("{", 23, "corrupt progress.json");
    }

    #[test]
    fn progress_reads_back_every_float_bit_for_bit() {
        // serde_json's default float parsing can miss by one ulp (this value
        // came back as ...636e-7 from a checkpoint before `float_roundtrip`,
        // and a resumed run's report differed from an uninterrupted one's)
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(3);
        let mut values = vec![1.4702479044596358e-7, 0.1 + 0.2, f64::MIN_POSITIVE, 1e300];
        values.extend((0..2000).map(|_| {
            let v: f64 = rand::Rng::random(&mut rng);
            v * 10f64.powi(rand::Rng::random_range(&mut rng, -12..12))
        }));
        for v in values {
            let p = Progress {
                wall_seconds: v,
                ..Default::default()
            };
            let back =
                Progress::parse(&serde_json::to_string(&p).expect("json"), Path::new("p"), 1).expect("parse");
            assert_eq!(back.wall_seconds.to_bits(), v.to_bits(), "{v:e}");
        }
    }
}
