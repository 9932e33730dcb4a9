//! Study (not shipped): one validation set judged image by image by two
//! groups of finished runs, paired by seed (the near-OOD sets are drawn
//! from each run's seed, so only runs of one seed see the same images).
//!
//! `cargo run --release -p trainer --example verdict_study -- SET OUT.png
//! A_RUN... -- B_RUN...`: for each seed present in both groups, the images
//! of `SET` (a near-OOD set such as `device-symbols` or `val-symbols`, or
//! `val-pen-digits`, by its full name) that A's run judges right and B's run wrong ("lost" by B)
//! and the other way ("gained"), with the digits B takes its lost garbage
//! images for; OUT.png shows up to 120 lost images (12 a row). Each run's
//! decision is its deployed one: the garbage offset folded into its
//! weights, the threshold keeping 99% of its validation digits.
mod common;

use anyhow::{bail, Context};
use ood_core::verdict::Verdict;
use ood_core::{calibrate, Policy, GARBAGE, IMG_PIXELS};
use std::collections::BTreeMap;
use std::path::Path;
use trainer::data::Dataset;
use trainer::package::DECISION_SCORE;
use trainer::run::deployed::KEEP;

/// One run's verdicts on the set: per image, `Some(digit)` when accepted.
struct Judged {
    seed: u64,
    set: Dataset,
    accepted: Vec<Option<u8>>,
}

fn judge(dir: &str, set: &str) -> anyhow::Result<Judged> {
    let (cfg, data, model) = common::load_run(dir)?;
    let z = |d: &Dataset| model.logits(&d.images, 500);
    let mut s: Vec<f32> = z(&data.val)?.iter().map(|l| DECISION_SCORE.id_score(l)).collect();
    let threshold = calibrate(&mut s, KEEP).context("threshold")?;
    let policy = Policy {
        score: DECISION_SCORE,
        threshold,
    };
    let d = data
        .near_ood
        .iter()
        .chain(&data.near_ood_device)
        .chain(std::iter::once(&data.pen_digits))
        .find(|d| d.name == set)
        .with_context(|| format!("{dir}: no set named {set}"))?
        .clone();
    let accepted = z(&d)?
        .iter()
        .map(|l| match policy.decide(l) {
            Verdict::Accept { digit, .. } => Some(digit),
            _ => None,
        })
        .collect();
    Ok(Judged {
        seed: cfg.seed,
        set: d,
        accepted,
    })
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(set), Some(out)) = (args.first(), args.get(1)) else {
        bail!("usage: verdict_study SET OUT.png A_RUN... -- B_RUN...");
    };
    let rest = &args[2..];
    let Some(split) = rest.iter().position(|a| a == "--") else {
        bail!("the two groups of runs are separated by --");
    };
    let group = |runs: &[String]| -> anyhow::Result<BTreeMap<u64, Judged>> {
        runs.iter().map(|r| judge(r, set).map(|j| (j.seed, j))).collect()
    };
    let (a, b) = (group(&rest[..split])?, group(&rest[split + 1..])?);
    let right = |j: &Judged, i: usize| -> bool {
        let label = j.set.labels[i];
        match j.accepted[i] {
            Some(d) => usize::from(label) != GARBAGE && d == label,
            None => usize::from(label) == GARBAGE,
        }
    };
    let mut lost = Dataset::default();
    let (mut total_lost, mut total_gained) = (0, 0);
    let mut taken_as = [0usize; 10];
    for (seed, ja) in &a {
        let Some(jb) = b.get(seed) else { continue };
        let n = ja.set.len();
        let (mut l, mut g) = (0, 0);
        for i in 0..n {
            match (right(ja, i), right(jb, i)) {
                (true, false) => {
                    l += 1;
                    if let Some(d) = jb.accepted[i] {
                        taken_as[usize::from(d)] += 1;
                    }
                    if lost.len() < 120 {
                        lost.images
                            .extend_from_slice(&jb.set.images[i * IMG_PIXELS..(i + 1) * IMG_PIXELS]);
                        lost.labels.push((lost.len() / 12) as u8);
                    }
                }
                (false, true) => g += 1,
                _ => {}
            }
        }
        let share = |j: &Judged| (0..n).filter(|&i| right(j, i)).count() as f64 / n as f64;
        println!(
            "seed {seed}: A right on {:.2}%, B {:.2}% of {n}; lost by B {l}, gained {g}",
            100.0 * share(ja),
            100.0 * share(jb)
        );
        total_lost += l;
        total_gained += g;
    }
    println!("all seeds: lost by B {total_lost}, gained {total_gained}; B takes its lost garbage images for the digits {taken_as:?}");
    trainer::report::plots::sample_grid(&lost, Path::new(out))?;
    println!("{out}: {} lost images", lost.len());
    Ok(())
}
