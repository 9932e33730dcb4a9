//! One training run end to end: find the data, train, evaluate, and write the
//! run folder. Everything is located and checked **before** the run folder is
//! created, so a bad input leaves nothing behind, and an existing folder is
//! never overwritten.
//!
//! Run folder contents: `config.toml` (resolved config), `classifier.safetensors`,
//! `train_log.json` (per epoch), `eval.json` + `eval.md` (evaluation),
//! `run.json` (what made it: seed, git revision, sha256 of the weights, timings).

use crate::config::TrainConfig;
use crate::data::{fetch::Sources, synth, Dataset};
use crate::error::{Error, Result};
use crate::eval::{self, Evaluation};
use crate::model::generator::Generator;
use crate::model::inversion::{self, LossParts};
use crate::model::{self, optim::AdamParams, Classifier, ClassifierTrainer};
use crate::plots;
use crate::train::{self, ClassifierEpoch};
use ood_core::{score::argmax, Score, GARBAGE, IMG_PIXELS};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Provenance and summary of a run, written as `run.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    /// Config name.
    pub name: String,
    /// Seed.
    pub seed: u64,
    /// `git describe`-style revision of the source tree, or "unknown".
    pub git_revision: String,
    /// Start time, UTC, RFC 3339.
    pub started_utc: String,
    /// Wall time of the whole run, in seconds.
    pub wall_seconds: f64,
    /// Compute device.
    pub device: String,
    /// Number of classifier parameters.
    pub num_params: usize,
    /// sha256 of `classifier.safetensors`.
    pub weights_sha256: String,
    /// Training-set class counts (digits 0..9, garbage).
    pub train_class_counts: Vec<usize>,
    /// Evaluation sets that could not be found and were skipped.
    pub skipped_sets: Vec<String>,
}

/// The evaluation sets: MNIST test plus OOD sets.
#[derive(Debug)]
pub struct EvalSets {
    /// In-distribution test set.
    pub id: Dataset,
    /// OOD sets, in report order.
    pub ood: Vec<Dataset>,
    /// Standard sets that were not found (with the reason).
    pub skipped: Vec<String>,
}

/// Loads every `--ood NAME=PATH` set (any error is fatal). Called first, so a
/// mistake in what the user named is reported before any long work.
pub fn load_extra_sets(extra: &[(String, PathBuf)]) -> Result<Vec<Dataset>> {
    extra
        .iter()
        .map(|(name, path)| Ok(crate::data::load_any(name, path)?))
        .collect()
}

/// Loads Fashion-MNIST and CIFAR-10 test (skipped with a warning if absent),
/// uniform and Gaussian noise, then appends the `extra` sets.
pub fn load_eval_sets(
    sources: &Sources,
    mnist_test: Dataset,
    cfg: &TrainConfig,
    extra: Vec<Dataset>,
) -> Result<EvalSets> {
    let mut ood = Vec::new();
    let mut skipped = Vec::new();
    for (name, r) in [
        ("fashion-mnist", sources.fashion_test()),
        ("cifar10", sources.cifar10_test()),
    ] {
        match r {
            Ok(ds) => ood.push(ds),
            Err(e @ ood_data::Error::NotFound { .. }) => {
                tracing::warn!("skipping {name}: {e}");
                skipped.push(format!("{name}: {e}"));
            }
            Err(e) => return Err(e.into()),
        }
    }
    // Evaluation noise differs from the training garbage noise (N(0.5, 0.3)):
    // uniform pixels, and darker, lower-contrast Gaussian pixels N(0.3, 0.15).
    let mut rng = rng_for(cfg.seed, 0x0e5a_1000, 0);
    ood.push(synth::uniform("uniform-noise", cfg.eval.noise_sets, &mut rng));
    ood.push(synth::gaussian(
        "gaussian-noise",
        cfg.eval.noise_sets,
        0.3,
        0.15,
        &mut rng,
    ));
    ood.extend(extra);
    Ok(EvalSets {
        id: mnist_test,
        ood,
        skipped,
    })
}

/// Parses `NAME=PATH`.
pub fn parse_ood_arg(s: &str) -> std::result::Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((n, p)) if !n.is_empty() && !p.is_empty() => Ok((n.to_string(), PathBuf::from(p))),
        _ => Err(format!(
            "expected NAME=PATH (e.g. svhn=test_32x32.mat), got {s:?}"
        )),
    }
}

/// Refuses an existing non-empty run folder (checked before any work starts).
pub fn check_new_run_dir(dir: &Path) -> Result<()> {
    if dir.exists()
        && std::fs::read_dir(dir)
            .map_err(|e| Error::io(dir, e))?
            .next()
            .is_some()
    {
        return Err(Error::Config(format!(
            "run folder {} already exists and is not empty; choose another --out (nothing was overwritten)",
            dir.display()
        )));
    }
    Ok(())
}

/// Creates `dir`, refusing to reuse an existing non-empty folder.
pub fn create_run_dir(dir: &Path) -> Result<()> {
    check_new_run_dir(dir)?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
}

/// Writes `text` to `dir/name` atomically.
pub fn write_file(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let dest = dir.join(name);
    std::fs::write(&tmp, contents).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, &dest).map_err(|e| Error::io(&dest, e))
}

/// Pretty JSON of a report value (an error message in place if it cannot be).
pub fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// MNIST train split into (training digits, held-out validation digits),
/// exactly as the run with `cfg` split it.
pub fn validation_split(cfg: &TrainConfig, mnist_train: &Dataset) -> Result<(Dataset, Dataset)> {
    let (digits, val, _) = split_with_rng(cfg, mnist_train)?;
    Ok((digits, val))
}

fn split_with_rng(cfg: &TrainConfig, mnist_train: &Dataset) -> Result<(Dataset, Dataset, StdRng)> {
    let mut data_rng = rng_for(cfg.seed, RNG_DATA, 0);
    let (digits, val) = mnist_train.split(cfg.data.validation, &mut data_rng)?;
    Ok((digits, val, data_rng))
}

/// The source revision (`git describe --always --dirty`), or "unknown".
pub fn git_revision() -> String {
    std::process::Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=12"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// UTC time as RFC 3339, from the system clock.
pub fn now_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // civil-from-days (H. Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// What one epoch of the run did (pre-training or inversion).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochLog {
    /// 1-based epoch over the whole run (pre-training, then inversion).
    pub epoch: usize,
    /// "pretrain" or "inversion".
    pub phase: String,
    /// The classifier's epoch.
    pub classifier: ClassifierEpoch,
    /// The inversion part (inversion epochs only).
    pub inversion: Option<InversionLog>,
    /// Quick evaluation on the first `eval.per_epoch` images of each set
    /// (inversion epochs only), with this epoch's garbage offset applied.
    pub quick_eval: Option<Evaluation>,
    /// The garbage-logit offset calibrated on the validation split after this
    /// epoch (`None`: calibration off, or a pre-training epoch).
    #[serde(default)]
    pub garbage_offset: Option<f32>,
    /// The quick evaluation of the trained weights as they are (no offset;
    /// only stored when calibration is on).
    #[serde(default)]
    pub quick_eval_uncalibrated: Option<Evaluation>,
}

/// The inversion part of an epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InversionLog {
    /// Mean loss parts over the epoch's generator steps.
    pub loss: LossParts,
    /// Wall time of the generator steps, in seconds.
    pub generator_seconds: f64,
    /// Mean `U(x)` of the new samples under the classifier that was inverted
    /// (the seed report's per-epoch table).
    pub new_samples_mean_u: f64,
    /// Share of the new samples that classifier already sends to garbage.
    pub new_samples_to_garbage: f64,
    /// Within-class diversity of the new samples: per conditioning digit, the
    /// mean over pixels of the pixel standard deviation (0-1 scale), averaged
    /// over digits. 0 = every sample of a digit is the same image.
    #[serde(default)]
    pub new_samples_diversity: f64,
    /// Generated images in the garbage class after adding the new ones.
    pub garbage_size: usize,
}

/// Derives an independent, reproducible RNG for one purpose of one epoch, so
/// that a resumed run draws exactly what an uninterrupted one would.
pub fn rng_for(seed: u64, purpose: u64, epoch: usize) -> StdRng {
    // splitmix64 over the three inputs
    let mut x = seed
        ^ purpose.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (epoch as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    StdRng::seed_from_u64(x ^ (x >> 31))
}

const RNG_DATA: u64 = 1;
/// RNG purpose of the export's calibration noise.
pub const RNG_EXPORT: u64 = 6;
/// The classifier weights' file name in a run folder.
pub const CLASSIFIER: &str = "classifier.safetensors";
const RNG_INIT: u64 = 2;
const RNG_EPOCH: u64 = 3;
const RNG_INVERT: u64 = 4;
const RNG_GARBAGE: u64 = 5;

/// Within-class pixel diversity of generated samples (see
/// [`InversionLog::new_samples_diversity`]); labels are the conditioning digits.
pub fn within_class_diversity(ds: &Dataset) -> f64 {
    let mut per_class = Vec::new();
    for d in 0..ood_core::NUM_DIGITS as u8 {
        let idx: Vec<usize> = (0..ds.len()).filter(|&i| ds.labels[i] == d).collect();
        if idx.len() < 2 {
            continue;
        }
        let n = idx.len() as f64;
        let mut total = 0.0;
        for p in 0..IMG_PIXELS {
            let (mut s1, mut s2) = (0.0f64, 0.0f64);
            for &i in &idx {
                let v = f64::from(ds.images[i * IMG_PIXELS + p]) / 255.0;
                s1 += v;
                s2 += v * v;
            }
            let var = (s2 / n - (s1 / n).powi(2)).max(0.0);
            total += var.sqrt();
        }
        per_class.push(total / IMG_PIXELS as f64);
    }
    per_class.iter().sum::<f64>() / per_class.len().max(1) as f64
}

/// Adds `new` to the bounded garbage set by reservoir sampling: the set always
/// holds a uniform random sample (at most `cap`) of everything generated so far.
pub fn reservoir_add(garbage: &mut Dataset, new: &Dataset, seen: &mut u64, cap: usize, rng: &mut StdRng) {
    for i in 0..new.len() {
        *seen += 1;
        if garbage.len() < cap {
            garbage.push(new.image(i), GARBAGE as u8);
        } else {
            let j = rng.random_range(0..*seen) as usize;
            if j < cap {
                garbage.images[j * IMG_PIXELS..(j + 1) * IMG_PIXELS].copy_from_slice(new.image(i));
            }
        }
    }
}

/// The resumable part of a run, saved after every epoch.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Progress {
    /// Epochs finished (pre-training and inversion together).
    pub epochs_done: usize,
    /// Generated images produced so far (for reservoir sampling).
    pub generated_seen: u64,
    /// Per-epoch logs so far.
    pub log: Vec<EpochLog>,
    /// Full evaluation after pre-training ("before inversion"), with the
    /// garbage offset calibrated then.
    pub before: Option<Evaluation>,
    /// The same without the offset (only when calibration is on).
    #[serde(default)]
    pub before_uncalibrated: Option<Evaluation>,
    /// The garbage offset used for `before`.
    #[serde(default)]
    pub before_offset: Option<f32>,
    /// Wall seconds spent so far, across resumes.
    pub wall_seconds: f64,
}

const CHECKPOINT: &str = "checkpoint.safetensors";
const PROGRESS: &str = "progress.json";

/// Everything a finished run produced.
#[derive(Debug)]
pub struct RunOutput {
    /// Where it was written.
    pub dir: PathBuf,
    /// Per-epoch log.
    pub epochs: Vec<EpochLog>,
    /// Evaluation after pre-training (before inversion).
    pub before: Option<Evaluation>,
    /// Final evaluation.
    pub eval: Evaluation,
    /// Provenance.
    pub info: RunInfo,
}

fn eval_bar(msg: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template("{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} images")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(msg.to_string());
    bar
}

fn head(ds: &Dataset, n: usize) -> Dataset {
    let n = n.min(ds.len());
    Dataset {
        name: ds.name.clone(),
        images: ds.images[..n * IMG_PIXELS].to_vec(),
        labels: ds.labels[..n].to_vec(),
    }
}

/// The garbage-logit offset that sends at most `budget` of the validation
/// digits to the garbage class (`ood_core::verdict::garbage_offset`), or
/// `None` when `budget` is 0 (calibration off).
pub fn calibrate_garbage_offset(
    model: &Classifier,
    val: &Dataset,
    budget: f64,
    batch: usize,
) -> Result<Option<f32>> {
    if budget <= 0.0 {
        return Ok(None);
    }
    let z = model.logits(&val.images, batch)?;
    let mut margins: Vec<f32> = z.iter().map(ood_core::verdict::garbage_margin).collect();
    ood_core::verdict::garbage_offset(&mut margins, budget as f32)
        .map(Some)
        .ok_or_else(|| {
            Error::Config(format!(
                "cannot calibrate a garbage offset on {} validation images with budget {budget}",
                val.len()
            ))
        })
}

/// Evaluates `model` with `offset` added to the garbage logit, and (when
/// there is an offset) without it: `(with, without)`.
fn evaluate_both(
    model: &Classifier,
    offset: Option<f32>,
    batch: usize,
    id: &Dataset,
    ood: &[Dataset],
    bar: &indicatif::ProgressBar,
) -> Result<(Evaluation, Option<Evaluation>)> {
    let at = |offset: Option<f32>| -> Result<Evaluation> {
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
    };
    let with = at(offset)?;
    let without = match offset {
        Some(_) => Some(at(None)?),
        None => None,
    };
    Ok((with, without))
}

/// Trains (pre-training, then inversion epochs), evaluates and writes `out_dir`.
/// With `resume`, continues the run saved in `out_dir` from its last finished
/// epoch; the caller checks the config is the run's own.
pub fn run(
    cfg: &TrainConfig,
    sources: &Sources,
    out_dir: &Path,
    extra_ood: &[(String, PathBuf)],
    device: &model::Device,
    resume: bool,
) -> Result<RunOutput> {
    cfg.validate()?;
    let started = Instant::now();
    let started_utc = now_utc();
    if resume {
        let p = out_dir.join(PROGRESS);
        if !p.is_file() {
            return Err(Error::Config(format!(
                "{} has no {PROGRESS}: not a run folder with a checkpoint (nothing to resume)",
                out_dir.display()
            )));
        }
    } else {
        check_new_run_dir(out_dir)?;
    }

    tracing::info!("locating data");
    let extra = load_extra_sets(extra_ood)?;
    let (mnist_train, mnist_test) = sources.mnist()?;
    let (digits, val, mut data_rng) = split_with_rng(cfg, &mnist_train)?;
    let sets = load_eval_sets(sources, mnist_test, cfg, extra)?;
    // the two noise families stay separate sources (per-source balancing)
    let noise = synth::gaussian(
        "garbage-noise",
        cfg.data.noise_count,
        cfg.data.noise_mean,
        cfg.data.noise_std,
        &mut data_rng,
    );
    let smooth = synth::smooth("garbage-smooth", cfg.data.smooth_noise_count, &mut data_rng);
    tracing::info!(
        "train: {} digits + {} noise garbage (+ up to {} generated), validation: {}, OOD sets: {}",
        digits.len(),
        noise.len() + smooth.len(),
        if cfg.inversion.epochs > 0 {
            cfg.inversion.garbage_cap
        } else {
            0
        },
        val.len(),
        sets.ood
            .iter()
            .map(|d| format!("{} ({})", d.name, d.len()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let quick_id = head(&sets.id, cfg.eval.per_epoch);
    let quick_ood: Vec<Dataset> = sets.ood.iter().map(|d| head(d, cfg.eval.per_epoch)).collect();

    let mut init_rng = rng_for(cfg.seed, RNG_INIT, 0);
    let model = Classifier::new(&cfg.model, &mut init_rng, device)?;
    let params = AdamParams {
        lr: cfg.train.lr,
        weight_decay: cfg.train.weight_decay,
        ..Default::default()
    };
    let mut trainer = ClassifierTrainer::new(model, params)?;
    let inv = &cfg.inversion;
    let mut gen = if inv.epochs > 0 {
        Some(Generator::new(
            &inv.generator,
            inv.generator_lr,
            &mut init_rng,
            device,
        )?)
    } else {
        None
    };
    let mut garbage = Dataset {
        name: "generated".into(),
        ..Default::default()
    };
    let mut progress = Progress::default();
    if resume {
        let text = std::fs::read_to_string(out_dir.join(PROGRESS))
            .map_err(|e| Error::io(out_dir.join(PROGRESS), e))?;
        progress = serde_json::from_str(&text)
            .map_err(|e| Error::format(out_dir.join(PROGRESS), format!("corrupt progress file: {e}")))?;
        if progress.epochs_done > 0 {
            garbage = model::load_checkpoint(&out_dir.join(CHECKPOINT), &mut trainer, gen.as_mut())?;
        }
        tracing::info!(
            "resuming {} after epoch {}",
            out_dir.display(),
            progress.epochs_done
        );
    } else {
        create_run_dir(out_dir)?;
        write_file(out_dir, "config.toml", cfg.to_toml())?;
    }
    let base_wall = progress.wall_seconds;
    let save = |progress: &Progress,
                trainer: &ClassifierTrainer,
                gen: Option<&Generator>,
                garbage: &Dataset|
     -> Result<()> {
        // weights first, then the progress file that points at them: a kill
        // between the two replays the epoch from the previous state
        model::save_checkpoint(&out_dir.join(CHECKPOINT), trainer, gen, garbage)?;
        write_file(out_dir, PROGRESS, json(progress))
    };

    let pre = cfg.train.epochs;
    let total = pre + inv.epochs;
    let batch = cfg.eval.batch_size;
    while progress.epochs_done < total {
        let e = progress.epochs_done; // 0-based epoch index
        let mut rng = rng_for(cfg.seed, RNG_EPOCH, e);
        let label = format!("epoch {}/{total}", e + 1);
        let log = if e < pre {
            let c = train::train_epoch(
                &mut trainer,
                &[&digits, &noise, &smooth],
                &val,
                cfg,
                e,
                total,
                &label,
                &mut rng,
            )?;
            tracing::info!(
                "epoch {}/{total} (pre-training): loss {:.4}, validation accuracy {:.2}%, {:.0} samples/s",
                e + 1,
                c.loss,
                100.0 * c.val_accuracy,
                c.samples_per_sec
            );
            EpochLog {
                epoch: e + 1,
                phase: "pretrain".into(),
                classifier: c,
                inversion: None,
                quick_eval: None,
                garbage_offset: None,
                quick_eval_uncalibrated: None,
            }
        } else {
            let Some(g) = gen.as_mut() else {
                return Err(Error::Config("inversion epochs without a generator".into()));
            };
            // (a) classifier epoch on digits + noise + generated garbage
            let c = train::train_epoch(
                &mut trainer,
                &[&digits, &noise, &smooth, &garbage],
                &val,
                cfg,
                e,
                total,
                &label,
                &mut rng,
            )?;
            // (b) invert the frozen classifier
            let mut irng = rng_for(cfg.seed, RNG_INVERT, e);
            let t0 = Instant::now();
            let bar = indicatif::ProgressBar::new(inv.generator_steps as u64).with_style(
                indicatif::ProgressStyle::with_template(
                    "inverting [{elapsed_precise}] {wide_bar} {pos}/{len} generator steps",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let mut sum = LossParts::default();
            for _ in 0..inv.generator_steps {
                let p =
                    inversion::generator_step(g, &trainer.model, inv.batch_size, &inv.weights(), &mut irng)?;
                sum.kl += p.kl;
                sum.ce += p.ce;
                sum.cos += p.cos;
                sum.ortho += p.ortho;
                sum.total += p.total;
                bar.inc(1);
            }
            bar.finish_and_clear();
            let k = inv.generator_steps as f64;
            let loss = LossParts {
                kl: sum.kl / k,
                ce: sum.ce / k,
                cos: sum.cos / k,
                ortho: sum.ortho / k,
                total: sum.total / k,
            };
            let generator_seconds = t0.elapsed().as_secs_f64();
            // (c) generate, score with the inverted classifier, add to garbage
            let (images, cond) =
                inversion::generate(g, inv.samples_per_epoch, inv.batch_size.max(64), &mut irng)?;
            let new = Dataset {
                name: format!("generated-{}", e + 1),
                images,
                labels: cond,
            };
            if is_sample_epoch(e + 1 - pre, inv.epochs) {
                plots::sample_grid(
                    &new,
                    &out_dir.join(format!("samples_epoch{:03}.png", e + 1 - pre)),
                )?;
            }
            let z = trainer.model.logits(&new.images, batch)?;
            let new_u = z
                .iter()
                .map(|l| f64::from(Score::Uncertainty.raw(l)))
                .sum::<f64>()
                / z.len().max(1) as f64;
            let new_g = z.iter().filter(|l| argmax(&l[..]) == GARBAGE).count() as f64 / z.len().max(1) as f64;
            let diversity = within_class_diversity(&new);
            let mut grng = rng_for(cfg.seed, RNG_GARBAGE, e);
            reservoir_add(
                &mut garbage,
                &new,
                &mut progress.generated_seen,
                inv.garbage_cap,
                &mut grng,
            );
            // (d) quick evaluation for the per-epoch curves, at this epoch's
            // calibrated garbage offset (and without it)
            let offset =
                calibrate_garbage_offset(&trainer.model, &val, cfg.calibration.garbage_budget, batch)?;
            let (quick, quick_raw) = evaluate_both(
                &trainer.model,
                offset,
                batch,
                &quick_id,
                &quick_ood,
                &indicatif::ProgressBar::hidden(),
            )?;
            tracing::info!(
                "epoch {}/{total} (inversion {}): val acc {:.2}%, gen loss {:.1} (ce {:.3}, cos {:.3}), new samples U {:.3} / to garbage {:.1}% / diversity {:.4}, {}",
                e + 1,
                e + 1 - pre,
                100.0 * c.val_accuracy,
                loss.total,
                loss.ce,
                loss.cos,
                new_u,
                100.0 * new_g,
                diversity,
                quick
                    .ood
                    .iter()
                    .map(|r| format!("{} {:.1}%", r.name, 100.0 * r.garbage_share))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            EpochLog {
                epoch: e + 1,
                phase: "inversion".into(),
                classifier: c,
                inversion: Some(InversionLog {
                    loss,
                    generator_seconds,
                    new_samples_mean_u: new_u,
                    new_samples_to_garbage: new_g,
                    new_samples_diversity: diversity,
                    garbage_size: garbage.len(),
                }),
                quick_eval: Some(quick),
                garbage_offset: offset,
                quick_eval_uncalibrated: quick_raw,
            }
        };
        progress.log.push(log);
        progress.epochs_done += 1;
        if progress.epochs_done == pre && inv.epochs > 0 {
            let offset =
                calibrate_garbage_offset(&trainer.model, &val, cfg.calibration.garbage_budget, batch)?;
            let bar = eval_bar("evaluating before inversion");
            let (cal, raw) = evaluate_both(&trainer.model, offset, batch, &sets.id, &sets.ood, &bar)?;
            bar.finish_and_clear();
            progress.before = Some(cal);
            progress.before_uncalibrated = raw;
            progress.before_offset = offset;
        }
        progress.wall_seconds = base_wall + started.elapsed().as_secs_f64();
        save(&progress, &trainer, gen.as_ref(), &garbage)?;
    }

    // the shipped model: the last epoch's weights with the garbage offset
    // calibrated on the validation split folded into the garbage bias
    let offset = calibrate_garbage_offset(&trainer.model, &val, cfg.calibration.garbage_budget, batch)?;
    let bar = eval_bar("final evaluation");
    // the weights as trained, when an offset is about to change them
    let after_uncalibrated = match offset {
        Some(_) => Some(evaluate_both(&trainer.model, None, batch, &sets.id, &sets.ood, &bar)?.0),
        None => None,
    };
    if let Some(b) = offset {
        trainer.model.shift_garbage_bias(b)?;
        tracing::info!("garbage bias raised by {b:.3} (calibrated on the validation digits)");
    }
    let f = |px: &[u8]| Ok(trainer.model.logits(px, batch)?);
    let evaluation = eval::evaluate(&f, &sets.id, &sets.ood, &bar)?;
    bar.finish_and_clear();
    let weights = out_dir.join(CLASSIFIER);
    trainer.model.save(&weights)?;
    let report = Report {
        name: cfg.name.clone(),
        selection: SELECTION.into(),
        epochs: progress.log.clone(),
        before: progress.before.clone(),
        after: evaluation.clone(),
        calibration: offset.map(|after_offset| Calibration {
            budget: cfg.calibration.garbage_budget,
            before_offset: progress.before_offset,
            after_offset,
            before_uncalibrated: progress.before_uncalibrated.clone(),
            after_uncalibrated: after_uncalibrated.clone(),
        }),
    };
    write_file(out_dir, "report.json", json(&report))?;
    write_file(out_dir, "report.md", report.to_markdown())?;
    write_file(out_dir, "eval.json", json(&evaluation))?;
    plots::all(&report, &f, &sets, out_dir)?;

    let weights_bytes = std::fs::read(&weights).map_err(|e| Error::io(&weights, e))?;
    let mut counts = digits.counts(ood_core::NUM_CLASSES);
    counts[GARBAGE] = noise.len() + smooth.len() + garbage.len();
    let info = RunInfo {
        name: cfg.name.clone(),
        seed: cfg.seed,
        git_revision: git_revision(),
        started_utc,
        wall_seconds: base_wall + started.elapsed().as_secs_f64(),
        device: format!("{device:?}"),
        num_params: cfg.model.num_params(),
        weights_sha256: crate::data::fetch::sha256_hex(&weights_bytes),
        train_class_counts: counts,
        skipped_sets: sets.skipped.clone(),
    };
    write_file(out_dir, "run.json", json(&info))?;
    Ok(RunOutput {
        dir: out_dir.to_path_buf(),
        epochs: progress.log,
        before: progress.before,
        eval: evaluation,
        info,
    })
}

/// Files of a finished run that [`publish`] copies (no checkpoint, which is
/// only for resuming).
pub const PUBLISHED: [&str; 7] = [
    "config.toml",
    "classifier.safetensors",
    "report.json",
    "report.md",
    "eval.json",
    "run.json",
    "curves.png",
];

/// Files of the export that [`publish`] copies when present.
pub const PUBLISHED_EXPORT: [&str; 7] = [
    "classifier.onnx",
    "classifier.int8.onnx",
    "classifier.int8-integer.onnx",
    "classifier.int8-qlinear.onnx",
    "manifest.json",
    "golden.json",
    "export.md",
];

/// Copies a finished run's model, report and plots into `dest` (e.g.
/// `models/default`), refusing to overwrite a non-empty folder.
pub fn publish(run_dir: &Path, dest: &Path) -> Result<Vec<PathBuf>> {
    if !run_dir.join("report.json").is_file() {
        return Err(Error::Config(format!(
            "{} has no report.json: not a finished run (resume it first)",
            run_dir.display()
        )));
    }
    create_run_dir(dest)?;
    let mut names: Vec<String> = PUBLISHED.iter().map(|s| s.to_string()).collect();
    names.extend(
        PUBLISHED_EXPORT
            .iter()
            .filter(|n| run_dir.join(n).is_file())
            .map(|s| s.to_string()),
    );
    for entry in std::fs::read_dir(run_dir).map_err(|e| Error::io(run_dir, e))? {
        let name = entry
            .map_err(|e| Error::io(run_dir, e))?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name.ends_with(".png") && !names.contains(&name) {
            names.push(name);
        }
    }
    names.sort();
    let mut out = Vec::new();
    for n in names {
        let (src, dst) = (run_dir.join(&n), dest.join(&n));
        std::fs::copy(&src, &dst).map_err(|e| Error::io(&src, e))?;
        out.push(dst);
    }
    Ok(out)
}

/// How the shipped model is chosen (stated in every report).
pub const SELECTION: &str = "No checkpoint selection: the model is the one after the last epoch, with the learning rate annealed by one cosine decay over all epochs and the garbage set a reservoir sample of every generated image; when calibration is on, its garbage bias is raised by the offset that sends the budgeted share of the MNIST validation digits to garbage. No OOD test set influenced any choice; they are reported only.";

/// Epochs (1-based, inversion only) whose generated samples are saved as a grid.
pub fn is_sample_epoch(k: usize, total: usize) -> bool {
    k == 1 || k == total || k == total.div_ceil(2) || k == total.div_ceil(4)
}

/// A whole run's report (`report.json` / `report.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Config name.
    pub name: String,
    /// How the model was chosen.
    pub selection: String,
    /// Per-epoch logs.
    pub epochs: Vec<EpochLog>,
    /// Full evaluation after pre-training.
    pub before: Option<Evaluation>,
    /// Full evaluation of the final model.
    pub after: Evaluation,
    /// The garbage offset and the evaluations without it (when calibration
    /// is on; `before` and `after` then include the offset).
    #[serde(default)]
    pub calibration: Option<Calibration>,
}

/// What the garbage-offset calibration did to a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Share of validation digits the offset may send to the garbage class.
    pub budget: f64,
    /// Offset calibrated after pre-training (used for `before`).
    pub before_offset: Option<f32>,
    /// Offset folded into the shipped weights.
    pub after_offset: f32,
    /// Evaluation after pre-training without the offset.
    pub before_uncalibrated: Option<Evaluation>,
    /// Evaluation of the final weights without the offset.
    pub after_uncalibrated: Option<Evaluation>,
}

impl Report {
    /// The report as Markdown: the seed's two tables, then the full metrics.
    pub fn to_markdown(&self) -> String {
        let mut s = format!("# Run `{}`\n\n{}\n\n", self.name, self.selection);
        let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.2}%", 100.0 * v));
        let share = |e: Option<&Evaluation>, name: &str| {
            e.and_then(|e| e.ood.iter().find(|x| x.name == name))
                .map(|x| x.garbage_share)
        };
        let cal = self.calibration.as_ref();
        if let Some(before) = &self.before {
            s.push_str("## Share of each OOD set sent to the garbage class\n\n");
            match cal {
                Some(c) => {
                    s.push_str(&format!(
                        "With the garbage offset calibrated on the validation digits (budget {:.2}% of them to garbage; offset {} after pre-training, {:.3} after inversion), and without it (the trained weights as they are).\n\n| OOD set | before inversion | after inversion | before, no offset | after, no offset |\n|---|---|---|---|---|\n",
                        100.0 * c.budget,
                        c.before_offset.map_or("-".into(), |b| format!("{b:.3}")),
                        c.after_offset
                    ));
                }
                None => s.push_str("| OOD set | before inversion | after inversion |\n|---|---|---|\n"),
            }
            for r in &self.after.ood {
                s.push_str(&format!(
                    "| {} | {} | {:.2}% |",
                    r.name,
                    pct(share(Some(before), &r.name)),
                    100.0 * r.garbage_share
                ));
                if let Some(c) = cal {
                    s.push_str(&format!(
                        " {} | {} |",
                        pct(share(c.before_uncalibrated.as_ref(), &r.name)),
                        pct(share(c.after_uncalibrated.as_ref(), &r.name))
                    ));
                }
                s.push('\n');
            }
            s.push_str(&format!(
                "| MNIST test accuracy | {:.2}% | {:.2}% |",
                100.0 * before.id.accuracy,
                100.0 * self.after.id.accuracy
            ));
            if let Some(c) = cal {
                s.push_str(&format!(
                    " {} | {} |",
                    pct(c.before_uncalibrated.as_ref().map(|e| e.id.accuracy)),
                    pct(c.after_uncalibrated.as_ref().map(|e| e.id.accuracy))
                ));
            }
            s.push_str("\n\n");
        }
        let inv: Vec<&EpochLog> = self.epochs.iter().filter(|e| e.inversion.is_some()).collect();
        if !inv.is_empty() {
            let names: Vec<String> = inv[0]
                .quick_eval
                .as_ref()
                .map(|q| q.ood.iter().map(|r| r.name.clone()).collect())
                .unwrap_or_default();
            let offsets = inv.iter().any(|e| e.garbage_offset.is_some());
            s.push_str("## Per inversion epoch\n\nAverage U of the newly inverted samples (the seed's table), their share already sent to garbage, MNIST validation accuracy, ");
            if offsets {
                s.push_str("the garbage offset calibrated on the validation digits after the epoch, ");
            }
            s.push_str("and the quick evaluation (first images of each set) share sent to garbage");
            if offsets {
                s.push_str(" at that offset");
            }
            s.push_str(".\n\n| epoch | avg U of inverted | inverted to garbage | val acc |");
            if offsets {
                s.push_str(" garbage offset |");
            }
            for n in &names {
                s.push_str(&format!(" {n} to garbage |"));
            }
            s.push_str("\n|---|---|---|---|");
            s.push_str(&"---|".repeat(names.len() + usize::from(offsets)));
            s.push('\n');
            for (k, e) in inv.iter().enumerate() {
                let i = e
                    .inversion
                    .as_ref()
                    .map(|i| (i.new_samples_mean_u, i.new_samples_to_garbage))
                    .unwrap_or_default();
                s.push_str(&format!(
                    "| {} | {:.4} | {:.1}% | {:.2}% |",
                    k + 1,
                    i.0,
                    100.0 * i.1,
                    100.0 * e.classifier.val_accuracy
                ));
                if offsets {
                    s.push_str(&format!(
                        " {} |",
                        e.garbage_offset.map_or("-".into(), |b| format!("{b:.3}"))
                    ));
                }
                if let Some(q) = &e.quick_eval {
                    for r in &q.ood {
                        s.push_str(&format!(" {:.1}% |", 100.0 * r.garbage_share));
                    }
                }
                s.push('\n');
            }
            s.push('\n');
        }
        s.push_str("## Final model\n\n");
        if let Some(c) = cal {
            s.push_str(&format!(
                "The garbage bias carries the offset {:.3}, calibrated on the validation digits (budget {:.2}%).\n\n",
                c.after_offset,
                100.0 * c.budget
            ));
        }
        s.push_str(&self.after.to_markdown());
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diversity_is_zero_for_copies_and_positive_for_variety() {
        let mut ds = Dataset::default();
        for _ in 0..3 {
            ds.push(&[100; IMG_PIXELS], 4);
        }
        assert_eq!(within_class_diversity(&ds), 0.0);
        ds.push(&[0; IMG_PIXELS], 4);
        ds.push(&[255; IMG_PIXELS], 4);
        // values {100,100,100,0,255}/255: population std over 5 samples
        let v: Vec<f64> = [100.0, 100.0, 100.0, 0.0, 255.0]
            .iter()
            .map(|x| x / 255.0)
            .collect();
        let m = v.iter().sum::<f64>() / 5.0;
        let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 5.0).sqrt();
        assert!((within_class_diversity(&ds) - sd).abs() < 1e-9);
    }

    #[test]
    fn reservoir_keeps_the_cap_and_counts_everything() {
        let mut g = Dataset::default();
        let mut new = Dataset::default();
        for i in 0..10u8 {
            new.push(&[i; IMG_PIXELS], 3);
        }
        let mut seen = 0;
        let mut rng = StdRng::seed_from_u64(1);
        reservoir_add(&mut g, &new, &mut seen, 4, &mut rng);
        reservoir_add(&mut g, &new, &mut seen, 4, &mut rng);
        assert_eq!((g.len(), seen), (4, 20));
        assert!(
            g.labels.iter().all(|&l| l == GARBAGE as u8),
            "relabelled as garbage"
        );
    }

    #[test]
    fn ood_args_and_time_format() {
        assert_eq!(
            parse_ood_arg("svhn=/x/t.mat"),
            Ok(("svhn".into(), PathBuf::from("/x/t.mat")))
        );
        assert!(parse_ood_arg("svhn").is_err());
        assert!(parse_ood_arg("=x").is_err());
        let t = now_utc();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'));
    }

    #[test]
    fn existing_run_folder_is_never_reused() -> Result<()> {
        let d = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        std::fs::write(d.path().join("keep.txt"), "precious").map_err(|e| Error::io(d.path(), e))?;
        let e = create_run_dir(d.path()).expect_err("non-empty");
        assert!(e.to_string().contains("nothing was overwritten"));
        let fresh = d.path().join("new");
        create_run_dir(&fresh)?;
        assert!(fresh.is_dir());
        Ok(())
    }
}
