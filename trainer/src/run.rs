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
use crate::model::{self, optim::AdamParams, Classifier, ClassifierTrainer};
use crate::train::{self, EpochLog};
use rand::rngs::StdRng;
use rand::SeedableRng;
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
        .map(|(name, path)| crate::data::load_any(name, path))
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
            Err(e @ Error::NotFound { .. }) => {
                tracing::warn!("skipping {name}: {e}");
                skipped.push(format!("{name}: {e}"));
            }
            Err(e) => return Err(e),
        }
    }
    // Evaluation noise differs from the training garbage noise (N(0.5, 0.3)):
    // uniform pixels, and darker, lower-contrast Gaussian pixels N(0.3, 0.15).
    let mut rng = StdRng::seed_from_u64(cfg.seed ^ 0x0e5a_1000);
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
pub fn write_file(dir: &Path, name: &str, text: &str) -> Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let dest = dir.join(name);
    std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, &dest).map_err(|e| Error::io(&dest, e))
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
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

/// Everything a finished run produced.
#[derive(Debug)]
pub struct RunOutput {
    /// Where it was written.
    pub dir: PathBuf,
    /// Per-epoch log.
    pub epochs: Vec<EpochLog>,
    /// Final evaluation.
    pub eval: Evaluation,
    /// Provenance.
    pub info: RunInfo,
}

/// Trains the baseline classifier and evaluates it, writing `out_dir`.
pub fn run(
    cfg: &TrainConfig,
    sources: &Sources,
    out_dir: &Path,
    extra_ood: &[(String, PathBuf)],
    device: &model::Device,
) -> Result<RunOutput> {
    cfg.validate()?;
    let started = Instant::now();
    let started_utc = now_utc();
    let mut rng = StdRng::seed_from_u64(cfg.seed);

    check_new_run_dir(out_dir)?;
    tracing::info!("locating data");
    let extra = load_extra_sets(extra_ood)?;
    let (mnist_train, mnist_test) = sources.mnist()?;
    let (digits, val) = mnist_train.split(cfg.data.validation, &mut rng)?;
    let sets = load_eval_sets(sources, mnist_test, cfg, extra)?;
    let noise = synth::gaussian(
        "garbage-noise",
        cfg.data.noise_count,
        cfg.data.noise_mean,
        cfg.data.noise_std,
        &mut rng,
    );
    let mut train_set = digits;
    train_set.name = "train".into();
    train_set.images.extend_from_slice(&noise.images);
    train_set.labels.extend_from_slice(&noise.labels);
    tracing::info!(
        "train: {} images ({} digits + {} noise garbage), validation: {}, OOD sets: {}",
        train_set.len(),
        train_set.len() - noise.len(),
        noise.len(),
        val.len(),
        sets.ood
            .iter()
            .map(|d| format!("{} ({})", d.name, d.len()))
            .collect::<Vec<_>>()
            .join(", ")
    );

    create_run_dir(out_dir)?;
    write_file(out_dir, "config.toml", &cfg.to_toml())?;

    let model = Classifier::new(&cfg.model, &mut rng, device)?;
    let params = AdamParams {
        lr: cfg.train.lr,
        weight_decay: cfg.train.weight_decay,
        ..Default::default()
    };
    let mut trainer = ClassifierTrainer::new(model, params)?;
    let epochs = train::fit(
        &mut trainer,
        &train_set,
        &val,
        cfg,
        &mut rng,
        &mut |e: &EpochLog| {
            tracing::info!(
                "epoch {}: loss {:.4}, validation accuracy {:.2}%, {:.0} samples/s, {:.1}s",
                e.epoch,
                e.loss,
                100.0 * e.val_accuracy,
                e.samples_per_sec,
                e.seconds
            );
        },
    )?;
    write_file(out_dir, "train_log.json", &json(&epochs))?;
    let weights = out_dir.join("classifier.safetensors");
    trainer.model.save(&weights)?;

    tracing::info!("evaluating");
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template(
            "evaluating [{elapsed_precise}] {wide_bar} {pos}/{len} images",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let model = &trainer.model;
    let batch = cfg.eval.batch_size;
    let f = |px: &[u8]| model.logits(px, batch);
    let evaluation = eval::evaluate(&f, &sets.id, &sets.ood, &bar)?;
    bar.finish_and_clear();
    write_file(out_dir, "eval.json", &json(&evaluation))?;
    let md = format!(
        "# Evaluation of run `{}`\n\nModel and threshold choices use only the MNIST validation split; the OOD sets below are for reporting.\n\n{}",
        cfg.name,
        evaluation.to_markdown()
    );
    write_file(out_dir, "eval.md", &md)?;

    let weights_bytes = std::fs::read(&weights).map_err(|e| Error::io(&weights, e))?;
    let info = RunInfo {
        name: cfg.name.clone(),
        seed: cfg.seed,
        git_revision: git_revision(),
        started_utc,
        wall_seconds: started.elapsed().as_secs_f64(),
        device: format!("{device:?}"),
        num_params: cfg.model.num_params(),
        weights_sha256: crate::data::fetch::sha256_hex(&weights_bytes),
        train_class_counts: train_set.counts(ood_core::NUM_CLASSES),
        skipped_sets: sets.skipped.clone(),
    };
    write_file(out_dir, "run.json", &json(&info))?;
    Ok(RunOutput {
        dir: out_dir.to_path_buf(),
        epochs,
        eval: evaluation,
        info,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
