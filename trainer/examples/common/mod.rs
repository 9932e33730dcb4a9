//! What the study examples share (not an example itself: cargo builds only
//! `examples/*.rs` and `examples/*/main.rs`): a finished run loaded with its
//! data, the sets a study judges, and one share per set in a JSON line.
#![allow(dead_code)] // each study uses what it needs

use ood_core::Verdict;
use std::path::Path;
use trainer::config::TrainConfig;
use trainer::data::{fetch::Sources, Dataset};
use trainer::eval::VerdictShares;
use trainer::model::{Classifier, Device};
use trainer::run::{data::TrainingData, dir::RunDir};

/// The finished run in `dir`: its config, its data (offline) and its
/// shipped classifier on the CPU.
pub fn load_run(dir: &str) -> anyhow::Result<(TrainConfig, TrainingData, Classifier)> {
    let cfg = RunDir::at(Path::new(dir)).config()?;
    let data = TrainingData::load(&cfg, &Sources::new(None).offline(), &[])?;
    let model = Classifier::load(
        &cfg.model,
        &Path::new(dir).join("classifier.safetensors"),
        &Device::Cpu,
    )?;
    Ok((cfg, data, model))
}

/// A set a study judges: the set, whether its labels are digits, its kind.
pub type StudySet<'a> = (&'a Dataset, bool, &'static str);

/// MNIST test, the OOD test sets when `ood`, the near-OOD families as drawn
/// and as the device sees them, and the validation digits on the three
/// device paths.
pub fn study_sets(data: &TrainingData, ood: bool) -> Vec<StudySet<'_>> {
    let mut sets: Vec<StudySet> = vec![(&data.sets.id, true, "mnist")];
    if ood {
        sets.extend(data.sets.ood.iter().map(|d| (d, false, "ood")));
    }
    sets.extend(data.near_ood.iter().map(|d| (d, false, "near")));
    sets.extend(data.near_ood_device.iter().map(|d| (d, false, "device")));
    sets.push((&data.val_scanned, true, "digits"));
    sets.push((&data.pen_digits, true, "digits"));
    sets.push((&data.val_photographed, true, "digits"));
    sets
}

/// Adds `kind:name` to `out`: the share of a digit set accepted as the
/// right digit, or of any other set rejected, under `verdicts`.
pub fn insert_share(
    out: &mut serde_json::Map<String, serde_json::Value>,
    &(d, digits, kind): &StudySet,
    verdicts: &[Verdict],
) {
    let v = VerdictShares::of(d, verdicts, digits);
    let value = if digits {
        v.accepted_correct
    } else {
        1.0 - v.accepted
    };
    out.insert(format!("{kind}:{}", d.name), value.into());
}
