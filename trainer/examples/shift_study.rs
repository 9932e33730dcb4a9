//! Study (not shipped): the deployed decision of finished runs with the
//! classifier's logits averaged over each image and its four shifts by 1 or
//! 2 pixels (`calibration.shift_average`, `run::deployed::decision_logits`)
//! and without, the threshold recalibrated to keep 99% of the validation
//! digits under the same averaging each time. Prints one JSON
//! line per (run, shift set): the near-OOD families as drawn and as the
//! device sees them (share rejected), the validation digits on the three
//! device paths and MNIST test (share accepted as the right digit). The OOD
//! test sets are not scored.
//!
//! `cargo run --release -p trainer --example shift_study -- RUN_DIR...`
mod common;

use ood_core::{calibrate, Policy};
use trainer::data::Dataset;
use trainer::package::DECISION_SCORE;
use trainer::run::deployed::{decision_logits, KEEP};

fn main() -> anyhow::Result<()> {
    let dirs: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(!dirs.is_empty(), "usage: shift_study RUN_DIR... (finished runs)");
    for dir in dirs {
        let (_, data, model) = common::load_run(&dir)?;
        let sets = common::study_sets(&data, false);
        for shift in [0, 1, 2] {
            let logits = |d: &Dataset| decision_logits(&model, &d.images, shift, 500);
            let mut s: Vec<f32> = logits(&data.val)?
                .iter()
                .map(|z| DECISION_SCORE.id_score(z))
                .collect();
            let threshold = calibrate(&mut s, KEEP).expect("validation digits");
            let policy = Policy {
                score: DECISION_SCORE,
                threshold,
            };
            let mut out = serde_json::Map::new();
            out.insert("run".into(), dir.clone().into());
            out.insert("shift".into(), shift.into());
            out.insert("threshold".into(), f64::from(threshold).into());
            for set in &sets {
                let verdicts: Vec<_> = logits(set.0)?.iter().map(|z| policy.decide(z)).collect();
                common::insert_share(&mut out, set, &verdicts);
            }
            println!("{}", serde_json::Value::Object(out));
        }
    }
    Ok(())
}
