//! Study (not shipped): which of the near-OOD validation symbols a model
//! accepts, template by template.
//!
//! `cargo run --release -p edge --example symbol_study -- [--n N]
//! MODEL_DIR...`: N symbols of the trainer's `symbols` family
//! (`ood_data::nearood::symbol_drawing`, seed 99; default 5,200, about 200
//! a template), each drawn at MNIST's pen width both as a 28x28 image (the
//! model's own input) and as a 105x105 dark-on-light page through the
//! device's preprocessing (`edge::preprocess`, as the edge tests draw
//! them), judged by each model directory's int8 file at its deployed
//! decision. Prints one Markdown table: per template and model, the share
//! accepted on each path and the digits it is taken for (those taking at
//! least 5% of its drawings, over both paths).
use anyhow::{bail, Context};
use edge::model::Model;
use ood_core::Verdict;
use ood_data::nearood::{symbol_drawing, SYMBOL_NAMES};
use ood_data::pen::{draw_with, page, PEN};
use rand::SeedableRng;
use std::path::Path;

/// Page side and enlargement of the device-path drawings (the edge tests').
const SIDE: u32 = 105;
const SCALE: f32 = 3.75;

/// Per template: drawings, accepted on the 28x28 path and on the device
/// path, and the digits taken (both paths).
#[derive(Clone, Default)]
struct Tally {
    n: usize,
    accepted: [usize; 2],
    digits: [usize; 10],
}

fn study(dir: &str, n: usize) -> anyhow::Result<Vec<Tally>> {
    let model = Model::load(Path::new(dir), Some("classifier.int8.onnx"), None)
        .with_context(|| format!("loading the int8 model of {dir}"))?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    let mut tally = vec![Tally::default(); SYMBOL_NAMES.len()];
    for _ in 0..n {
        let (t, paths) = symbol_drawing(&mut rng);
        let small = draw_with(&paths, PEN);
        let device = edge::preprocess::to_input(&page(&paths, SIDE, SCALE, PEN * SCALE), None)?;
        tally[t].n += 1;
        for (k, x) in [small, device].iter().enumerate() {
            if let Verdict::Accept { digit, .. } = model.classify(x)?[0].verdict {
                tally[t].accepted[k] += 1;
                tally[t].digits[usize::from(digit)] += 1;
            }
        }
    }
    Ok(tally)
}

fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut n = 5200;
    if let Some(i) = args.iter().position(|a| a == "--n") {
        let v = args.get(i + 1).context("--n needs a number")?;
        n = v.parse().with_context(|| format!("--n: not a count: {v}"))?;
        args.drain(i..i + 2);
    }
    if args.is_empty() || n == 0 {
        bail!("usage: symbol_study [--n N] MODEL_DIR... (N > 0)");
    }
    let studies = args
        .iter()
        .map(|d| study(d, n))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let pct = |a: usize, b: usize| 100.0 * a as f64 / b.max(1) as f64;
    print!("| template |");
    for d in &args {
        print!(" {d}: accepted 28x28 / device, taken for |");
    }
    println!("\n|---|{}", "---|".repeat(args.len()));
    for (t, name) in SYMBOL_NAMES.iter().enumerate() {
        print!("| {name} |");
        for s in &studies {
            let c = &s[t];
            let taken: Vec<String> = (0..10)
                .filter(|&d| c.digits[d] * 20 >= 2 * c.n && c.digits[d] > 0)
                .map(|d| format!("{d} ({:.0}%)", pct(c.digits[d], 2 * c.n)))
                .collect();
            let taken = if taken.is_empty() {
                String::new()
            } else {
                format!(", {}", taken.join(", "))
            };
            print!(
                " {:.1}% / {:.1}%{taken} |",
                pct(c.accepted[0], c.n),
                pct(c.accepted[1], c.n)
            );
        }
        println!();
    }
    for (d, s) in args.iter().zip(&studies) {
        let (all, acc) = s.iter().fold((0, [0, 0]), |(n, a), c| {
            (n + c.n, [a[0] + c.accepted[0], a[1] + c.accepted[1]])
        });
        println!(
            "\n{d}: {all} symbols, rejected {:.1}% as 28x28 images, {:.1}% through the device path",
            100.0 - pct(acc[0], all),
            100.0 - pct(acc[1], all)
        );
    }
    Ok(())
}
