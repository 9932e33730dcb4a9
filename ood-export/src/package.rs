//! Packaging a trained classifier for the device, into its run folder:
//! `classifier.onnx` (f32), `classifier.int8.onnx` (QDQ int8, the default),
//! `classifier.int8-integer.onnx` and `classifier.int8-qlinear.onnx` (the
//! same int8 model in the two other forms tract runs, measured for
//! comparison), `manifest.json` (schema `ood_core::manifest`), `golden.json`
//! and `export.md`.
//!
//! - The rejection thresholds are calibrated on the held-out MNIST
//!   validation digits, for each file on its own logits through tract: the
//!   very model and engine that run on the device. Never on an OOD set.
//! - The manifest names the file to run per CPU architecture ([`TARGETS`]):
//!   f32 on x86-64, where tract runs it fastest; the int8 QDQ file elsewhere.
//! - Every file is then loaded back through the edge runtime (sha256 and
//!   shape checks included) and measured on MNIST test and the real OOD
//!   sets; those numbers are reported in the manifest, never used to choose.

use crate::error::{Error, Result};
use crate::golden::{hex, Golden, GoldenCase};
use crate::onnx::{self, Precision};
use crate::quant::ActivationQuant;
use crate::weights::Weights;
use edge::model::{sha256_hex, Model};
use edge::report::EdgeReport;
use edge::runtime::Network;
use ood_core::labels::CLASS_NAMES;
use ood_core::manifest::{
    Decision, Manifest, ModelFile, ModelMetrics, Provenance, SetMetrics, Target, Threshold, MANIFEST_VERSION,
};
use ood_core::{calibrate, input, Score, GARBAGE, IMG_PIXELS, IMG_SIDE, NUM_CLASSES};
use ood_data::eval::LogitsFn;
use ood_data::{Dataset, EvalSets};
use std::path::Path;

/// f32 ONNX file name.
pub const F32_FILE: &str = "classifier.onnx";
/// int8 ONNX file name (the default model).
pub const INT8_FILE: &str = "classifier.int8.onnx";
/// The int8 model in integer-kernel form (measured, not the default).
pub const INT8_INTEGER_FILE: &str = "classifier.int8-integer.onnx";
/// The int8 model in QLinear form (measured, not the default).
pub const INT8_QLINEAR_FILE: &str = "classifier.int8-qlinear.onnx";
/// The manifest the edge runtime loads.
pub const MANIFEST_FILE: &str = edge::model::MANIFEST;
/// Golden inputs and outputs.
pub const GOLDEN_FILE: &str = "golden.json";
/// The export's measurements as Markdown.
pub const EXPORT_MD: &str = "export.md";
/// Every file [`package`] writes, in the order it writes them.
pub const FILES: [&str; 7] = [
    INT8_FILE,
    F32_FILE,
    INT8_INTEGER_FILE,
    INT8_QLINEAR_FILE,
    MANIFEST_FILE,
    GOLDEN_FILE,
    EXPORT_MD,
];
/// Shares of validation digits the thresholds keep; the last is the default.
pub const KEEPS: [f32; 2] = [0.95, 0.99];
/// The file the edge runs per CPU architecture where measurement chose one
/// other than the default ([`INT8_FILE`]): `(arch, file, why)`.
pub const TARGETS: [(&str, &str, &str); 1] = [(
    "x86_64",
    F32_FILE,
    "tract folds the QDQ file's int8 weights back to f32 at load and runs the f32 file's kernels: the same batch-1 time on x86-64 (1.01x the f32 file's, median over 5 rounds, scripts/latency.sh, 2026-12-04), so x86-64 runs the f32 file, whose verdicts are the reference; no Raspberry Pi was measured, so aarch64 keeps the 4x smaller int8 file",
)];
/// The acceptance score of the shipped decision (the product's `U(x)`).
pub const DECISION_SCORE: Score = Score::Uncertainty;

/// What the trainer hands over: plain weights and data, no candle.
pub struct ExportInput<'a> {
    /// The run folder the files are written into.
    pub dir: &'a Path,
    /// The trained classifier's parameters.
    pub weights: Weights,
    /// Activation ranges calibrated on validation digits and training-style
    /// noise, with the logit range (for the QLinear form).
    pub quant: ActivationQuant,
    /// The held-out MNIST validation digits (thresholds are set on them).
    pub validation: &'a Dataset,
    /// MNIST test and the OOD sets: measured and reported, never used to choose.
    pub sets: &'a EvalSets,
    /// Logits of the model as trained (candle), recorded in `golden.json`:
    /// with a shift average, that same mean over the shifted copies.
    pub reference: &'a LogitsFn<'a>,
    /// The shift average written into every graph (`onnx::onnx_model`; 0 =
    /// none: the classifier's logits as they are).
    pub shift: usize,
    /// What made the model (run name, seed, config, source revision).
    pub provenance: Provenance,
}

/// What [`package`] measured, for the caller to print.
#[derive(Debug, Clone)]
pub struct ExportSummary {
    /// The manifest written.
    pub manifest: Manifest,
    /// Markdown report of every file.
    pub markdown: String,
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> Result<()> {
    Ok(ood_data::write_atomic(&dir.join(name), bytes)?)
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

fn model_file(name: &str, precision: Precision, bytes: &[u8], thresholds: Vec<Threshold>) -> ModelFile {
    ModelFile {
        file: name.into(),
        precision: precision.precision_name().into(),
        format: precision.format_name().into(),
        sha256: sha256_hex(bytes),
        bytes: bytes.len() as u64,
        input_shape: vec![-1, 1, IMG_SIDE as i64, IMG_SIDE as i64],
        output_shape: vec![-1, NUM_CLASSES as i64],
        input_name: onnx::INPUT_NAME.into(),
        output_name: onnx::OUTPUT_NAME.into(),
        thresholds,
    }
}

fn normalized(pixels: &[u8]) -> Vec<f32> {
    pixels.iter().map(|&v| input::normalize_u8(v)).collect()
}

fn tract_logits(net: &Network, ds: &Dataset) -> Result<Vec<[f32; NUM_CLASSES]>> {
    let mut out = Vec::with_capacity(ds.len());
    for chunk in ds.images.chunks(500 * IMG_PIXELS) {
        out.extend(net.logits(&normalized(chunk))?);
    }
    Ok(out)
}

/// The four files, written: `(name, form, bytes)`, the default first.
type Written = Vec<(&'static str, Precision, Vec<u8>)>;

/// The bytes written for `name` (empty if it was not written).
fn bytes_of<'a>(files: &'a Written, name: &str) -> &'a [u8] {
    files.iter().find(|f| f.0 == name).map_or(&[], |f| f.2.as_slice())
}

fn write_models(input: &ExportInput) -> Result<Written> {
    let p = &input.provenance;
    let mut doc = format!(
        "n+1 MNIST classifier (class {GARBAGE} = garbage) from run {:?}, seed {}; input: normalised 28x28 (mean {}, std {}); output: logits",
        p.run_name,
        p.seed,
        input::MEAN,
        input::STD
    );
    if input.shift > 0 {
        doc.push_str(&format!(
            ", the mean over the input and its four shifts by {} pixels",
            input.shift
        ));
    }
    let mut files = Vec::new();
    // the default (int8 QDQ) first, as the manifest lists them
    for (name, precision) in [
        (INT8_FILE, Precision::Int8Qdq),
        (F32_FILE, Precision::F32),
        (INT8_INTEGER_FILE, Precision::Int8Integer),
        (INT8_QLINEAR_FILE, Precision::Int8QLinear),
    ] {
        let quant = (precision != Precision::F32).then_some(&input.quant);
        let bytes = onnx::onnx_model(&input.weights, precision, quant, input.shift, &doc)?;
        write(input.dir, name, &bytes)?;
        files.push((name, precision, bytes));
    }
    Ok(files)
}

/// The thresholds keeping each of [`KEEPS`] of the validation digits, on a
/// file's logits through tract.
fn thresholds(net: &Network, val: &Dataset) -> Result<Vec<Threshold>> {
    let zval = tract_logits(net, val)?;
    KEEPS
        .iter()
        .map(|&keep| {
            let mut s: Vec<f32> = zval.iter().map(|z| DECISION_SCORE.id_score(z)).collect();
            let value = calibrate(&mut s, keep).ok_or(Error::EmptyCalibration("validation split"))?;
            Ok(Threshold { keep, value })
        })
        .collect()
}

/// The manifest of the written `files`, each with its thresholds, in order.
fn manifest(input: &ExportInput, files: &Written, thresholds: Vec<Vec<Threshold>>) -> Manifest {
    Manifest {
        version: MANIFEST_VERSION,
        name: input.provenance.run_name.clone(),
        input: input::InputContract::default(),
        labels: CLASS_NAMES.iter().map(|s| s.to_string()).collect(),
        garbage_index: GARBAGE,
        decision: Decision {
            score: DECISION_SCORE,
            default_keep: KEEPS[KEEPS.len() - 1],
            calibration: format!(
                "Reject if the arg-max is the garbage class, else reject if 1 - U(x) is below the threshold. Thresholds keep {} of the {} held-out MNIST validation digits (never trained on), measured for each file on its own logits through tract. No OOD set was used.{}",
                KEEPS.map(|k| format!("{:.0}%", 100.0 * k)).join(" / "),
                input.validation.len(),
                if input.shift > 0 {
                    format!(" Each file's logits are the mean over the input and its four shifts by {} pixels, inside the graph.", input.shift)
                } else {
                    String::new()
                }
            ),
        },
        models: files
            .iter()
            .zip(thresholds)
            .map(|((name, precision, bytes), t)| model_file(name, *precision, bytes, t))
            .collect(),
        default_model: INT8_FILE.into(),
        targets: TARGETS
            .iter()
            .map(|(arch, file, why)| Target {
                arch: arch.to_string(),
                file: file.to_string(),
                why: why.to_string(),
            })
            .collect(),
        provenance: input.provenance.clone(),
        metrics: Vec::new(),
    }
}

/// One manifest metrics entry from an edge measurement.
fn metrics(r: &EdgeReport, f32_report: &EdgeReport) -> ModelMetrics {
    ModelMetrics {
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
        verdict_agreement_with_f32: r.agreement(f32_report),
    }
}

/// Measures every file through the edge runtime as the device loads it;
/// returns the reports in [`F32_FILE`], [`INT8_FILE`], [`INT8_INTEGER_FILE`],
/// [`INT8_QLINEAR_FILE`] order and their Markdown.
fn measure(dir: &Path, sets: &EvalSets, files: &Written) -> Result<(Vec<EdgeReport>, String)> {
    tracing::info!("export: measuring every file through tract");
    let ood = sets.real_ood();
    let bar = indicatif::ProgressBar::new(0);
    let order = [F32_FILE, INT8_FILE, INT8_INTEGER_FILE, INT8_QLINEAR_FILE];
    let reports = per_file(&order, |i| -> Result<EdgeReport> {
        let m = Model::load(dir, Some(order[i]), None)?;
        Ok(edge::report::evaluate(&m, &sets.id, &ood, &bar)?)
    })
    .into_iter()
    .collect::<Result<Vec<_>>>()?;
    bar.finish_and_clear();
    let size = |name: &str| bytes_of(files, name).len();
    let mut markdown = format!(
        "int8 ({INT8_FILE}, {} bytes) vs f32 ({F32_FILE}, {} bytes): verdict agreement {:.3}% over {} images; integer-kernel int8 ({INT8_INTEGER_FILE}, {} bytes): {:.3}%; QLinear int8 ({INT8_QLINEAR_FILE}, {} bytes): {:.3}%\n\n",
        size(INT8_FILE),
        size(F32_FILE),
        100.0 * reports[1].agreement(&reports[0]),
        reports[0].all_verdicts.iter().map(Vec::len).sum::<usize>(),
        size(INT8_INTEGER_FILE),
        100.0 * reports[2].agreement(&reports[0]),
        size(INT8_QLINEAR_FILE),
        100.0 * reports[3].agreement(&reports[0]),
    );
    for r in &reports {
        markdown.push_str(&r.to_markdown());
        markdown.push('\n');
    }
    Ok((reports, markdown))
}

/// `f(i)` for each file `names[i]`, one file per core at a time (tract runs
/// a plan on one thread), the files tract runs slowest taken first (QLinear,
/// then the integer kernels: 4.3x and 1.8x the f32 file's time in "Edge
/// latency") so that the cores finish together; the results in the order of
/// `names`. Each result depends only on its file, so the order of work is
/// free.
fn per_file<T: Send>(names: &[&str], f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let rank = |name: &str| match name {
        INT8_QLINEAR_FILE => 0,
        INT8_INTEGER_FILE => 1,
        _ => 2,
    };
    let mut work: Vec<usize> = (0..names.len()).collect();
    work.sort_by_key(|&i| rank(names[i]));
    let done = ood_data::map_in_parallel(work.len(), |k| f(work[k]));
    let mut out: Vec<(usize, T)> = work.into_iter().zip(done).collect();
    out.sort_unstable_by_key(|&(i, _)| i);
    out.into_iter().map(|(_, v)| v).collect()
}

/// Golden inputs: the first ten MNIST test digits and the first three images
/// of each OOD set, with every backend's logits and the int8 verdict.
fn golden(
    input: &ExportInput,
    manifest: &Manifest,
    f32_net: &Network,
    int8_net: &Network,
    others: &[(&str, &Network)],
) -> Result<Golden> {
    let policy = |file: &str| {
        manifest
            .model(file)
            .and_then(|f| manifest.decision.policy(f, None))
            .ok_or(Error::EmptyCalibration("threshold list"))
    };
    let (policy, f32_policy) = (policy(INT8_FILE)?, policy(F32_FILE)?);
    let sets = input.sets;
    let mut picks: Vec<(String, Vec<u8>)> = (0..10.min(sets.id.len()))
        .map(|i| (format!("{} #{i}", sets.id.name), sets.id.image(i).to_vec()))
        .collect();
    for d in &sets.ood {
        picks.extend((0..3.min(d.len())).map(|i| (format!("{} #{i}", d.name), d.image(i).to_vec())));
    }
    let mut cases = Vec::new();
    for (source, px) in picks {
        let c = (input.reference)(&px)?[0];
        let x = normalized(&px);
        let f = f32_net.logits(&x)?[0];
        let q = int8_net.logits(&x)?[0];
        let mut other_logits = std::collections::BTreeMap::new();
        for (name, net) in others {
            other_logits.insert(name.to_string(), net.logits(&x)?[0].to_vec());
        }
        cases.push(GoldenCase {
            source,
            pixels_hex: hex(&px),
            candle_logits: c.to_vec(),
            f32_logits: f.to_vec(),
            int8_logits: q.to_vec(),
            other_logits,
            int8_verdict: policy.decide(&q),
            f32_verdict: f32_policy.decide(&f),
        });
    }
    Ok(Golden {
        about: format!(
            "Inputs with the logits of candle, of {F32_FILE} and of {INT8_FILE} (tract) and both files' verdicts at keep = {}; written by `trainer export` only.",
            manifest.decision.default_keep
        ),
        cases,
    })
}

/// Writes and measures the export (see the module docs).
pub fn package(input: &ExportInput) -> Result<ExportSummary> {
    let dir = input.dir;
    let files = write_models(input)?;
    let mut nets = Vec::new();
    for (name, _, bytes) in &files {
        nets.push(Network::load(bytes, &dir.join(name))?);
    }
    let names: Vec<&str> = files.iter().map(|f| f.0).collect();
    let calibrated = per_file(&names, |i| thresholds(&nets[i], input.validation))
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
    let mut manifest = manifest(input, &files, calibrated);
    write(dir, MANIFEST_FILE, json(&manifest))?;

    let (reports, markdown) = measure(dir, input.sets, &files)?;
    manifest.metrics = reports.iter().map(|r| metrics(r, &reports[0])).collect();
    write(dir, MANIFEST_FILE, json(&manifest))?;

    let net = |name: &'static str| {
        files
            .iter()
            .zip(&nets)
            .find(|((n, _, _), _)| *n == name)
            .map(|(_, net)| net)
            .ok_or(Error::NotWritten(name))
    };
    let others = [
        (INT8_INTEGER_FILE, net(INT8_INTEGER_FILE)?),
        (INT8_QLINEAR_FILE, net(INT8_QLINEAR_FILE)?),
    ];
    let golden = golden(input, &manifest, net(F32_FILE)?, net(INT8_FILE)?, &others)?;
    write(dir, GOLDEN_FILE, json(&golden))?;
    write(dir, EXPORT_MD, &markdown)?;
    Ok(ExportSummary { manifest, markdown })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_file_answers_in_the_files_order_whatever_order_they_ran() {
        let names = [F32_FILE, INT8_FILE, INT8_INTEGER_FILE, INT8_QLINEAR_FILE];
        let calls = std::sync::Mutex::new(Vec::new());
        let got = per_file(&names, |i| {
            calls.lock().map(|mut c| c.push(names[i])).ok();
            format!("{}!", names[i])
        });
        assert_eq!(got, names.map(|n| format!("{n}!")));
        let mut calls = calls.into_inner().expect("calls");
        calls.sort_unstable();
        let mut want = names.to_vec();
        want.sort_unstable();
        assert_eq!(calls, want, "each file once");
    }
}
