//! Study (not shipped): the deployed decision of finished runs with their
//! logits divided by a temperature T (`budget` absent), or with the garbage
//! offset recalibrated to another budget of validation digits (`t` = 1), the
//! threshold recomputed to keep 99% of the validation digits each time.
//! Prints one JSON line per (run, T or budget).
mod common;

use ood_core::{calibrate, Policy, NUM_CLASSES};
use trainer::data::Dataset;
use trainer::package::DECISION_SCORE;
use trainer::run::deployed::KEEP;

fn main() -> anyhow::Result<()> {
    let temps = [0.5f32, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0];
    // offsets are recalibrated on the folded model (its own 0.002 offset already in
    // the garbage bias), so 0.002 lands a little above the runs' own offset and
    // 0.001 adds nothing (an offset is never negative): the runs' own figures
    // are the rows with t = 1 and no budget
    let budgets = [0.002f32, 0.001, 0.003, 0.004, 0.005, 0.0075, 0.01];
    for dir in std::env::args().skip(1) {
        let (_, data, model) = common::load_run(&dir)?;
        let z = |d: &Dataset| model.logits(&d.images, 500);
        let zval = z(&data.val)?;
        let sets = common::study_sets(&data, true);
        let zs: Vec<Vec<[f32; NUM_CLASSES]>> = sets.iter().map(|(d, _, _)| z(d)).collect::<Result<_, _>>()?;
        let mut margins: Vec<f32> = zval.iter().map(ood_core::verdict::garbage_margin).collect();
        let mut cases: Vec<(f32, Option<f32>, f32)> = temps.iter().map(|&t| (t, None, 0.0)).collect();
        for b in budgets {
            let delta = ood_core::verdict::garbage_offset(&mut margins, b).expect("offset");
            cases.push((1.0, Some(b), delta));
        }
        for (t, budget, delta) in cases {
            let scale = |l: &[f32; NUM_CLASSES]| {
                let mut o = *l;
                o[ood_core::GARBAGE] += delta;
                for v in &mut o {
                    *v /= t;
                }
                o
            };
            let mut s: Vec<f32> = zval.iter().map(|l| DECISION_SCORE.id_score(&scale(l))).collect();
            let threshold = calibrate(&mut s, KEEP).expect("threshold");
            let policy = Policy {
                score: DECISION_SCORE,
                threshold,
            };
            let mut out = serde_json::Map::new();
            out.insert("run".into(), dir.clone().into());
            out.insert("t".into(), f64::from(t).into());
            if let Some(b) = budget {
                out.insert("budget".into(), f64::from(b).into());
                out.insert("delta".into(), f64::from(delta).into());
            }
            for (set, zz) in sets.iter().zip(&zs) {
                let verdicts: Vec<_> = zz.iter().map(|l| policy.decide(&scale(l))).collect();
                common::insert_share(&mut out, set, &verdicts);
            }
            println!("{}", serde_json::Value::Object(out));
        }
    }
    Ok(())
}
