//! `trainer ablate`: the same config with and without inversion (and
//! without each extra garbage source) over several seeds, at equal
//! classifier epochs, in one table with each figure's range over seeds.
//!
//! Each (variant, seed) is an ordinary run folder `OUT/<variant>-s<seed>`;
//! one that already holds a finished report is read, not run again, so an
//! interrupted ablation continues where it stopped.

use super::{deployed::Deployed, dir, dir::RunDir, RunInfo};
use crate::config::TrainConfig;
use crate::error::{Error, Result};
use crate::report::Report;
use ood_core::Score;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// What a variant changes in the base config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    /// The base config as it is.
    Inversion,
    /// No inversion; its epochs become classifier epochs (same total), the
    /// other garbage sources unchanged.
    NoInversion,
    /// The base config without the smooth-noise garbage source.
    NoSmooth,
    /// The base config without the scribble garbage source.
    NoScribbles,
    /// The base config without the turned-digit garbage source.
    NoTurned,
    /// The base config with its digits turned by quarters and mirrors only,
    /// not by eighths of a turn (`data.turned_diagonal = false`).
    NoDiagonal,
    /// No inversion (as [`Variant::NoInversion`]) and 6,000 random pen
    /// scribbles in its place (`data.scribble_count`): does inverting the
    /// classifier find more than random drawings do?
    ScribblesNoInversion,
}

/// Scribbles of [`Variant::ScribblesNoInversion`]: the count the presets
/// before `strokes` used.
pub const SCRIBBLES: usize = 6000;

impl Variant {
    /// Every variant, in table order.
    pub const ALL: [Variant; 7] = [
        Variant::Inversion,
        Variant::NoInversion,
        Variant::NoSmooth,
        Variant::NoScribbles,
        Variant::NoTurned,
        Variant::NoDiagonal,
        Variant::ScribblesNoInversion,
    ];

    /// The name used in folders, tables and `--variants`.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Inversion => "inversion",
            Variant::NoInversion => "no-inversion",
            Variant::NoSmooth => "no-smooth",
            Variant::NoScribbles => "no-scribbles",
            Variant::NoTurned => "no-turned",
            Variant::NoDiagonal => "no-diagonal",
            Variant::ScribblesNoInversion => "scribbles-no-inversion",
        }
    }

    /// Parses a name of [`Variant::name`].
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        Self::ALL.into_iter().find(|v| v.name() == s).ok_or_else(|| {
            format!(
                "unknown variant {s:?} (known: inversion, no-inversion, no-smooth, no-scribbles, no-turned, no-diagonal, scribbles-no-inversion)"
            )
        })
    }

    /// `base` changed as this variant says, with `seed`.
    pub fn config(self, base: &TrainConfig, seed: u64) -> TrainConfig {
        let mut c = base.clone();
        c.seed = seed;
        c.name = format!("{}-{}", base.name, self.name());
        match self {
            Variant::Inversion => {}
            Variant::NoInversion => no_inversion(&mut c),
            Variant::ScribblesNoInversion => {
                no_inversion(&mut c);
                c.data.scribble_count = SCRIBBLES;
            }
            Variant::NoSmooth => c.data.smooth_noise_count = 0,
            Variant::NoScribbles => c.data.scribble_count = 0,
            Variant::NoTurned => c.data.turned_count = 0,
            Variant::NoDiagonal => c.data.turned_diagonal = false,
        }
        c
    }
}

/// Inversion's epochs become classifier epochs (the same total).
fn no_inversion(c: &mut TrainConfig) {
    c.train.epochs += c.inversion.epochs;
    c.inversion.epochs = 0;
}

/// One finished run's figures (shares in `[0, 1]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Variant name.
    pub variant: String,
    /// Seed.
    pub seed: u64,
    /// (figure, value) in table order.
    pub figures: Vec<(String, f64)>,
}

/// The figures of a finished run folder.
pub fn row(variant: Variant, seed: u64, dir: &Path) -> Result<Row> {
    let run = RunDir::at(dir);
    let report: Report = run.read_json(dir::REPORT_JSON)?;
    let info: RunInfo = run.read_json(dir::RUN_JSON)?;
    let d: &Deployed = report.deployed.as_ref().ok_or_else(|| {
        Error::Config(format!(
            "{} has no deployed-decision measurements (made by an older trainer); delete it to run it again",
            dir.display()
        ))
    })?;
    let after = &report.after.with_offset;
    let mut f = vec![
        ("MNIST test accuracy".to_string(), after.id.accuracy),
        ("MNIST accepted and correct".into(), d.mnist.accepted_correct),
    ];
    for (s, r) in d.ood.iter().zip(&after.ood) {
        f.push((format!("{} rejected", s.name), 1.0 - s.accepted));
        // the garbage probability: the score the decision's first tier acts
        // on (U(x) ranks garbage-confident inputs as confident: see README)
        if let Some(m) = r.scores.iter().find(|m| m.score == Score::GarbageProb.name()) {
            f.push((format!("{} AUROC (garbage_prob)", s.name), m.auroc));
            f.push((format!("{} FPR95 (garbage_prob)", s.name), m.fpr95));
        }
    }
    for s in &d.near_ood {
        f.push((format!("{} rejected", s.name), 1.0 - s.accepted));
    }
    f.push(("near-OOD rejected, mean".into(), d.near_ood_rejected()));
    for s in &d.near_ood_device {
        f.push((format!("{} rejected", s.name), 1.0 - s.accepted));
    }
    if let Some(m) = d.near_ood_device_rejected() {
        f.push(("near-OOD as the device sees it, mean".into(), m));
    }
    if let Some(v) = &d.val_scanned {
        f.push((
            "validation digits scanned, accepted and correct".into(),
            v.accepted_correct,
        ));
    }
    if let Some(v) = &d.pen_digits {
        f.push((
            "pen-drawn digits, accepted and correct".into(),
            v.accepted_correct,
        ));
    }
    if let Some(v) = &d.val_photographed {
        f.push((
            "validation digits photographed, accepted and correct".into(),
            v.accepted_correct,
        ));
    }
    if let Some(c) = &d.counterfeits {
        f.push(("counterfeit acceptance".into(), c.accepted));
    }
    f.push(("wall time, s".into(), info.wall_seconds));
    Ok(Row {
        variant: variant.name().into(),
        seed,
        figures: f,
    })
}

fn fmt(name: &str, v: f64) -> String {
    if name.ends_with(", s") {
        format!("{v:.0}")
    } else if name.contains("AUROC") {
        format!("{v:.4}")
    } else {
        format!("{:.2}%", 100.0 * v)
    }
}

/// The variants of `rows`, in their first appearance's order.
pub fn variants(rows: &[Row]) -> Vec<&str> {
    let mut variants: Vec<&str> = Vec::new();
    for r in rows {
        if !variants.contains(&r.variant.as_str()) {
            variants.push(&r.variant);
        }
    }
    variants
}

/// The figures of `rows`, in their first appearance's order.
pub fn figures(rows: &[Row]) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for r in rows {
        for (n, _) in &r.figures {
            if !names.contains(&n.as_str()) {
                names.push(n);
            }
        }
    }
    names
}

/// One figure of one variant over its seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct Spread {
    /// Each seed's value, in row order.
    pub values: Vec<f64>,
    /// Their mean.
    pub mean: f64,
    /// The least.
    pub lo: f64,
    /// The largest.
    pub hi: f64,
}

/// `figure` of `variant` over its seeds (`None` when no row has it).
pub fn spread(rows: &[Row], variant: &str, figure: &str) -> Option<Spread> {
    let values: Vec<f64> = rows
        .iter()
        .filter(|r| r.variant == variant)
        .filter_map(|r| r.figures.iter().find(|(m, _)| m == figure).map(|p| p.1))
        .collect();
    if values.is_empty() {
        return None;
    }
    Some(Spread {
        mean: values.iter().sum::<f64>() / values.len() as f64,
        lo: values.iter().copied().fold(f64::INFINITY, f64::min),
        hi: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        values,
    })
}

/// The table: one row per figure, one column per variant, each cell the
/// mean over seeds with its `[min, max]`.
pub fn table(rows: &[Row]) -> String {
    let variants = variants(rows);
    let mut s = String::from("| figure |");
    for v in &variants {
        let seeds: Vec<String> = rows
            .iter()
            .filter(|r| r.variant == *v)
            .map(|r| r.seed.to_string())
            .collect();
        s.push_str(&format!(" {v} (seeds {}) |", seeds.join(", ")));
    }
    s.push_str(&format!("\n|---|{}\n", "---|".repeat(variants.len())));
    for n in figures(rows) {
        s.push_str(&format!("| {n} |"));
        for v in &variants {
            match spread(rows, v, n) {
                None => s.push_str(" - |"),
                Some(x) => s.push_str(&format!(
                    " {} [{}, {}] |",
                    fmt(n, x.mean),
                    fmt(n, x.lo),
                    fmt(n, x.hi)
                )),
            }
        }
        s.push('\n');
    }
    s
}

/// Whether `dir` holds a finished run (its report and provenance) of `cfg`.
/// A finished run of another config is an error, never a silent reuse (the
/// preset changed since, or `--out` names another ablation's folder).
pub fn finished(dir: &Path, cfg: &TrainConfig) -> Result<bool> {
    if !(dir.join(dir::REPORT_JSON).is_file() && dir.join(dir::RUN_JSON).is_file()) {
        return Ok(false);
    }
    if RunDir::at(dir).config()? != *cfg {
        return Err(Error::Config(format!(
            "{} holds a finished run of another config than this ablation's (compare its config.toml with `trainer presets`); remove the folder or pick another --out",
            dir.display()
        )));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_run_of_another_config_is_refused_not_reused() -> Result<()> {
        let tmp = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let cfg = Variant::NoInversion.config(&TrainConfig::default(), 5);
        let run = RunDir::at(tmp.path());
        assert!(!finished(tmp.path(), &cfg)?, "empty folder");
        run.write(dir::CONFIG, cfg.to_toml())?;
        run.write(dir::REPORT_JSON, "{}")?;
        assert!(!finished(tmp.path(), &cfg)?, "no run.json yet: not finished");
        run.write(dir::RUN_JSON, "{}")?;
        assert!(finished(tmp.path(), &cfg)?);
        let mut other = cfg.clone();
        other.train.generated_share = 0.5;
        let e = finished(tmp.path(), &other).expect_err("another config");
        assert!(e.to_string().contains("another config"), "{e}");
        Ok(())
    }

    #[test]
    fn variants_change_only_what_they_name() {
        let base = TrainConfig::default();
        let same = Variant::Inversion.config(&base, 7);
        assert_eq!((same.seed, &same.inversion), (7, &base.inversion));
        let off = Variant::NoInversion.config(&base, 7);
        assert_eq!(off.inversion.epochs, 0);
        assert_eq!(off.total_epochs(), base.total_epochs(), "equal classifier epochs");
        assert_eq!(off.data, base.data);
        let ns = Variant::NoSmooth.config(&base, 7);
        assert_eq!(ns.data.smooth_noise_count, 0);
        assert_eq!(ns.inversion, base.inversion);
        let nk = Variant::NoScribbles.config(&base, 7);
        assert_eq!(
            (nk.data.scribble_count, nk.data.smooth_noise_count),
            (0, base.data.smooth_noise_count)
        );
        let nt = Variant::NoTurned.config(&base, 7);
        assert_eq!(
            (nt.data.turned_count, nt.data.scribble_count),
            (0, base.data.scribble_count)
        );
        let tilted = TrainConfig::preset("tilted").expect("preset");
        assert!(tilted.data.turned_diagonal, "tilted turns by eighths too");
        let nd = Variant::NoDiagonal.config(&tilted, 7);
        assert_eq!(
            (nd.data.turned_diagonal, nd.data.turned_count),
            (false, tilted.data.turned_count)
        );
        let strokes = TrainConfig::preset("strokes").expect("preset");
        assert_eq!(
            strokes.data.scribble_count, 0,
            "strokes: inversion in place of scribbles"
        );
        let sn = Variant::ScribblesNoInversion.config(&strokes, 7);
        assert_eq!((sn.inversion.epochs, sn.data.scribble_count), (0, SCRIBBLES));
        assert_eq!(
            sn.total_epochs(),
            strokes.total_epochs(),
            "equal classifier epochs"
        );
        assert_eq!(sn.data.turned_count, strokes.data.turned_count);
        assert_eq!(Variant::parse("no-inversion"), Ok(Variant::NoInversion));
        assert_eq!(Variant::parse("no-diagonal"), Ok(Variant::NoDiagonal));
        assert_eq!(
            Variant::parse("scribbles-no-inversion"),
            Ok(Variant::ScribblesNoInversion)
        );
        assert!(Variant::parse("nope").is_err());
    }

    #[test]
    fn table_shows_mean_and_range_per_variant() {
        let r = |v: &str, seed, a: f64, t: f64| Row {
            variant: v.into(),
            seed,
            figures: vec![("x rejected".into(), a), ("wall time, s".into(), t)],
        };
        let rows = [
            r("inversion", 1, 0.5, 100.0),
            r("inversion", 2, 0.7, 120.0),
            r("no-inversion", 1, 0.2, 90.0),
        ];
        let t = table(&rows);
        assert!(
            t.contains("| figure | inversion (seeds 1, 2) | no-inversion (seeds 1) |"),
            "{t}"
        );
        assert!(
            t.contains("| x rejected | 60.00% [50.00%, 70.00%] | 20.00% [20.00%, 20.00%] |"),
            "{t}"
        );
        assert!(
            t.contains("| wall time, s | 110 [100, 120] | 90 [90, 90] |"),
            "{t}"
        );
    }
}
