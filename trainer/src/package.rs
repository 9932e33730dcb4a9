//! `trainer export`: a finished run folder -> a deployable model next to it.
//!
//! Writes into the run folder: `classifier.onnx` (f32), `classifier.int8.onnx`
//! (QDQ int8, the default), `classifier.int8-integer.onnx` (the same int8
//! model with integer kernels) and `classifier.int8-qlinear.onnx` (in
//! QLinear form), both measured for comparison, `manifest.json`
//! (schema `ood_core::manifest`) and `golden.json` (inputs with the expected
//! outputs of every backend).
//!
//! - Activation ranges for int8 and the rejection thresholds are calibrated on
//!   the run's held-out MNIST validation split (the same split training
//!   withheld), never on an OOD set.
//! - Thresholds are computed on the logits of the int8 file through tract,
//!   the very model and engine that run on the device.
//! - Both files are then loaded back through the edge runtime (sha256 and
//!   shape checks included) and measured on MNIST test and the OOD sets;
//!   those numbers are reported in the manifest, not used to choose anything.

use crate::config::TrainConfig;
use crate::data::fetch::Sources;
use crate::data::{synth, Dataset};
use crate::error::{Error, Result};
use crate::export::{self, ActivationQuant, Precision};
use crate::model::{Classifier, Device};
use crate::run;
use edge::model::{sha256_hex, Model};
use edge::runtime::Network;
use ood_core::labels::CLASS_NAMES;
use ood_core::manifest::{
    Decision, Manifest, ModelFile, ModelMetrics, Provenance, SetMetrics, Threshold, MANIFEST_VERSION,
};
use ood_core::{calibrate, input, Score, GARBAGE, IMG_PIXELS, IMG_SIDE, NUM_CLASSES};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// f32 ONNX file name.
pub const F32_FILE: &str = "classifier.onnx";
/// int8 ONNX file name (the default model).
pub const INT8_FILE: &str = "classifier.int8.onnx";
/// The int8 model in integer-kernel form (measured, not the default).
pub const INT8_INTEGER_FILE: &str = "classifier.int8-integer.onnx";
/// The int8 model in QLinear form (measured, not the default).
pub const INT8_QLINEAR_FILE: &str = "classifier.int8-qlinear.onnx";
/// Golden inputs and outputs.
pub const GOLDEN_FILE: &str = "golden.json";
/// Shares of validation digits the thresholds keep; the last is the default.
pub const KEEPS: [f32; 2] = [0.95, 0.99];
/// The acceptance score of the shipped decision (the product's `U(x)`).
pub const DECISION_SCORE: Score = Score::Uncertainty;
/// Images used to calibrate int8 activation ranges: validation digits plus
/// this many training-style noise images (so garbage inputs do not saturate).
pub const CALIBRATION_NOISE: usize = 1000;

/// Inputs with the expected outputs of each backend, for parity tests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Golden {
    /// What the file is and how it was made.
    pub about: String,
    /// One entry per input.
    pub cases: Vec<GoldenCase>,
}

/// One golden input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GoldenCase {
    /// Where the input came from.
    pub source: String,
    /// 784 raw pixels as hex (the input contract).
    pub pixels_hex: String,
    /// Logits of the candle model the files were exported from.
    pub candle_logits: Vec<f32>,
    /// Logits of the f32 ONNX file through tract.
    pub f32_logits: Vec<f32>,
    /// Logits of the int8 ONNX file through tract.
    pub int8_logits: Vec<f32>,
    /// Verdict of the int8 file at the default threshold.
    pub int8_verdict: ood_core::Verdict,
}

impl GoldenCase {
    /// The 784 pixels.
    pub fn pixels(&self) -> Option<Vec<u8>> {
        if self.pixels_hex.len() != 2 * IMG_PIXELS {
            return None;
        }
        (0..IMG_PIXELS)
            .map(|i| u8::from_str_radix(&self.pixels_hex[2 * i..2 * i + 2], 16).ok())
            .collect()
    }
}

fn hex(p: &[u8]) -> String {
    p.iter().map(|b| format!("{b:02x}")).collect()
}

fn model_file(name: &str, precision: Precision, bytes: &[u8]) -> ModelFile {
    ModelFile {
        file: name.into(),
        precision: precision.precision_name().into(),
        format: precision.format_name().into(),
        sha256: sha256_hex(bytes),
        bytes: bytes.len() as u64,
        input_shape: vec![-1, 1, IMG_SIDE as i64, IMG_SIDE as i64],
        output_shape: vec![-1, NUM_CLASSES as i64],
        input_name: export::INPUT_NAME.into(),
        output_name: export::OUTPUT_NAME.into(),
    }
}

fn normalized(pixels: &[u8]) -> Vec<f32> {
    pixels.iter().map(|&v| input::normalize_u8(v)).collect()
}

fn tract_logits(net: &Network, ds: &Dataset) -> Result<Vec<[f32; NUM_CLASSES]>> {
    let mut out = Vec::with_capacity(ds.len());
    for chunk in ds.images.chunks(500 * IMG_PIXELS) {
        out.extend(
            net.logits(&normalized(chunk))
                .map_err(|e| Error::Config(format!("export: {e}")))?,
        );
    }
    Ok(out)
}

/// What `export` measured, for the caller to print.
#[derive(Debug, Clone)]
pub struct ExportSummary {
    /// The manifest written.
    pub manifest: Manifest,
    /// Markdown report of both files.
    pub markdown: String,
}

/// Exports the finished run in `run_dir` (see the module docs).
pub fn export(run_dir: &Path, sources: &Sources, device: &Device) -> Result<ExportSummary> {
    let cfg_path = run_dir.join("config.toml");
    let text = std::fs::read_to_string(&cfg_path).map_err(|e| Error::io(&cfg_path, e))?;
    let cfg = TrainConfig::from_toml(&text, &cfg_path.display().to_string())?;
    let model = Classifier::load(&cfg.model, &run_dir.join(run::CLASSIFIER), device)?;

    tracing::info!("export: calibrating on the MNIST validation split");
    let (mnist_train, mnist_test) = sources.mnist()?;
    let (_, val) = run::validation_split(&cfg, &mnist_train)?;
    let mut calib = val.clone();
    let noise = synth::gaussian(
        "calibration-noise",
        CALIBRATION_NOISE,
        cfg.data.noise_mean,
        cfg.data.noise_std,
        &mut run::rng_for(cfg.seed, run::RNG_EXPORT, 0),
    );
    calib.images.extend_from_slice(&noise.images);
    calib.labels.extend_from_slice(&noise.labels);
    let maxima = model.activation_maxima(&calib.images, cfg.eval.batch_size)?;
    let calib_logits = model.logits(&calib.images, cfg.eval.batch_size)?;
    let (lo, hi) = calib_logits
        .iter()
        .flatten()
        .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let quant = ActivationQuant::from_maxima(maxima).with_logit_range(lo, hi);

    let weights = model.weights()?;
    let doc = format!(
        "n+1 MNIST classifier (class {GARBAGE} = garbage) from run {:?}, seed {}; input: normalised 28x28 (mean {}, std {}); output: logits",
        cfg.name,
        cfg.seed,
        input::MEAN,
        input::STD
    );
    let f32_bytes = export::onnx_model(&cfg.model, &weights, Precision::F32, None, &doc)?;
    let int8_bytes = export::onnx_model(&cfg.model, &weights, Precision::Int8Qdq, Some(&quant), &doc)?;
    let integer_bytes = export::onnx_model(&cfg.model, &weights, Precision::Int8Integer, Some(&quant), &doc)?;
    run::write_file(run_dir, F32_FILE, &f32_bytes)?;
    run::write_file(run_dir, INT8_FILE, &int8_bytes)?;
    run::write_file(run_dir, INT8_INTEGER_FILE, &integer_bytes)?;
    let qlinear_bytes = export::onnx_model(&cfg.model, &weights, Precision::Int8QLinear, Some(&quant), &doc)?;
    run::write_file(run_dir, INT8_QLINEAR_FILE, &qlinear_bytes)?;

    // thresholds from the int8 file through tract, on validation digits
    let int8_net = Network::load(&int8_bytes, &run_dir.join(INT8_FILE))
        .map_err(|e| Error::Config(format!("export: {e}")))?;
    let zval = tract_logits(&int8_net, &val)?;
    let mut thresholds = Vec::new();
    for keep in KEEPS {
        let mut s: Vec<f32> = zval.iter().map(|z| DECISION_SCORE.id_score(z)).collect();
        let value =
            calibrate(&mut s, keep).ok_or_else(|| Error::Config("export: empty validation split".into()))?;
        thresholds.push(Threshold { keep, value });
    }
    let default_keep = KEEPS[KEEPS.len() - 1];
    let mut manifest = Manifest {
        version: MANIFEST_VERSION,
        name: cfg.name.clone(),
        input: input::InputContract::default(),
        labels: CLASS_NAMES.iter().map(|s| s.to_string()).collect(),
        garbage_index: GARBAGE,
        decision: Decision {
            score: DECISION_SCORE,
            thresholds,
            default_keep,
            calibration: format!(
                "Reject if the arg-max is the garbage class, else reject if 1 - U(x) is below the threshold. Thresholds keep {} of the {} held-out MNIST validation digits (never trained on), measured on {INT8_FILE} through tract. No OOD set was used.",
                KEEPS.map(|k| format!("{:.0}%", 100.0 * k)).join(" / "),
                val.len()
            ),
        },
        models: vec![
            model_file(INT8_FILE, Precision::Int8Qdq, &int8_bytes),
            model_file(F32_FILE, Precision::F32, &f32_bytes),
            model_file(INT8_INTEGER_FILE, Precision::Int8Integer, &integer_bytes),
            model_file(INT8_QLINEAR_FILE, Precision::Int8QLinear, &qlinear_bytes),
        ],
        default_model: INT8_FILE.into(),
        provenance: Provenance {
            tool: format!("trainer {}", env!("CARGO_PKG_VERSION")),
            git_revision: run::git_revision(),
            run_name: cfg.name.clone(),
            seed: cfg.seed,
            config_toml: cfg.to_toml(),
        },
        metrics: Vec::new(),
    };
    run::write_file(run_dir, "manifest.json", run::json(&manifest))?;

    // measure both files through the edge runtime, as the device loads them
    tracing::info!("export: measuring both files through tract");
    let sets = run::load_eval_sets(sources, mnist_test, &cfg, Vec::new())?;
    let ood: Vec<Dataset> = sets
        .ood
        .iter()
        .filter(|d| !d.name.ends_with("noise"))
        .cloned()
        .collect();
    let bar = indicatif::ProgressBar::new(0);
    let mut reports = Vec::new();
    for file in [F32_FILE, INT8_FILE, INT8_INTEGER_FILE, INT8_QLINEAR_FILE] {
        let m = Model::load(run_dir, Some(file), None).map_err(|e| Error::Config(format!("export: {e}")))?;
        let r = edge::report::evaluate(&m, &sets.id, &ood, &bar)
            .map_err(|e| Error::Config(format!("export: {e}")))?;
        reports.push(r);
    }
    bar.finish_and_clear();
    let agreement = reports[1].agreement(&reports[0]);
    let mut markdown = format!(
        "int8 ({INT8_FILE}, {} bytes) vs f32 ({F32_FILE}, {} bytes): verdict agreement {:.3}% over {} images; integer-kernel int8 ({INT8_INTEGER_FILE}, {} bytes): {:.3}%; QLinear int8 ({INT8_QLINEAR_FILE}, {} bytes): {:.3}%\n\n",
        int8_bytes.len(),
        f32_bytes.len(),
        100.0 * agreement,
        reports[0].all_verdicts.iter().map(Vec::len).sum::<usize>(),
        integer_bytes.len(),
        100.0 * reports[2].agreement(&reports[0]),
        qlinear_bytes.len(),
        100.0 * reports[3].agreement(&reports[0]),
    );
    for r in &reports {
        markdown.push_str(&r.to_markdown());
        markdown.push('\n');
        manifest.metrics.push(ModelMetrics {
            file: r.file.clone(),
            mnist_accuracy: r.evaluation.id.accuracy,
            sets: r
                .verdicts
                .iter()
                .enumerate()
                .map(|(i, v)| SetMetrics {
                    set: v.name.clone(),
                    n: v.n,
                    accepted: if i == 0 { v.accepted_correct } else { v.accepted },
                    garbage_share: v.rejected_garbage,
                    auroc: (i > 0).then(|| {
                        r.evaluation.ood[i - 1]
                            .scores
                            .iter()
                            .find(|s| s.score == DECISION_SCORE.name())
                            .map_or(f64::NAN, |s| s.auroc)
                    }),
                })
                .collect(),
            verdict_agreement_with_f32: r.agreement(&reports[0]),
        });
    }
    run::write_file(run_dir, "manifest.json", run::json(&manifest))?;

    // golden inputs: the first digits of MNIST test, and the first images of each OOD set
    let mut golden = Golden {
        about: format!(
            "Inputs with the logits of candle, of {F32_FILE} and of {INT8_FILE} (tract) and the int8 verdict at keep = {default_keep}; written by `trainer export` only."
        ),
        cases: Vec::new(),
    };
    let f32_net = Network::load(&f32_bytes, &run_dir.join(F32_FILE))
        .map_err(|e| Error::Config(format!("export: {e}")))?;
    let policy = manifest
        .decision
        .policy(None)
        .ok_or_else(|| Error::Config("export: no default threshold".into()))?;
    let mut picks: Vec<(String, Vec<u8>)> = (0..10.min(sets.id.len()))
        .map(|i| (format!("{} #{i}", sets.id.name), sets.id.image(i).to_vec()))
        .collect();
    for d in &sets.ood {
        picks.extend((0..3.min(d.len())).map(|i| (format!("{} #{i}", d.name), d.image(i).to_vec())));
    }
    for (source, px) in picks {
        let c = model.logits(&px, 1)?[0];
        let f = f32_net
            .logits(&normalized(&px))
            .map_err(|e| Error::Config(format!("export: {e}")))?[0];
        let q = int8_net
            .logits(&normalized(&px))
            .map_err(|e| Error::Config(format!("export: {e}")))?[0];
        golden.cases.push(GoldenCase {
            source,
            pixels_hex: hex(&px),
            candle_logits: c.to_vec(),
            f32_logits: f.to_vec(),
            int8_logits: q.to_vec(),
            int8_verdict: policy.decide(&q),
        });
    }
    run::write_file(run_dir, GOLDEN_FILE, run::json(&golden))?;
    run::write_file(run_dir, "export.md", &markdown)?;
    Ok(ExportSummary { manifest, markdown })
}
