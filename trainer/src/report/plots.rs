//! PNG plots of a run (plotters, bitmap backend, embedded DejaVu Sans font):
//!
//! - `curves.png`: per inversion epoch, average U of the new inverted samples,
//!   MNIST validation accuracy, and the quick-evaluation share of each OOD set
//!   sent to garbage;
//! - `roc.png`: final ROC curve of each OOD set (its best score);
//! - `hist_uncertainty.png`, `hist_garbage_prob.png`: MNIST test vs OOD score
//!   histograms;
//! - `samples_epochNNN.png` (written during the run): inverted samples, one
//!   row per conditioning digit;
//! - `ablation.png` (written by `trainer ablate`): every share of the
//!   ablation table, one band per figure, one colour per variant, each seed
//!   a dot.

use super::Report;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::metrics;
use crate::run::ablate::{self, Row};
use ood_core::{Score, IMG_SIDE, NUM_CLASSES, NUM_DIGITS};
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

static FONT: Once = Once::new();

fn init_font() {
    FONT.call_once(|| {
        // the bytes are a valid TTF shipped with the crate; registration only
        // fails for unparsable fonts
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            include_bytes!("../../assets/DejaVuSans.ttf"),
        );
    });
}

fn plot_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::io(path, std::io::Error::other(format!("drawing plot: {e}")))
}

const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Where a chart's legend goes.
#[derive(Debug, Clone)]
enum Legend {
    /// Over the chart, at this corner or side (for few series).
    Inside(SeriesLabelPosition),
    /// In a column of its own right of the chart, covering no curve.
    Beside,
}

/// Width of the legend column of [`Legend::Beside`], in pixels.
const LEGEND_WIDTH: u32 = 520;

/// Draws `series` (name, points) as lines on one chart.
#[allow(clippy::too_many_arguments)]
fn line_chart(
    path: &Path,
    legend: Legend,
    title: &str,
    x_label: &str,
    y_label: &str,
    x_range: (f64, f64),
    y_range: (f64, f64),
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<()> {
    init_font();
    let (chart_w, h) = (900u32, 600u32);
    let w = match legend {
        Legend::Inside(_) => chart_w,
        Legend::Beside => chart_w + LEGEND_WIDTH,
    };
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
    let (plot_area, legend_area) = root.split_horizontally(chart_w);
    let mut chart = ChartBuilder::on(&plot_area)
        .caption(title, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(x_range.0..x_range.1, y_range.0..y_range.1)
        .map_err(|e| plot_err(path, e))?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .label_style(("sans-serif", 16))
        .draw()
        .map_err(|e| plot_err(path, e))?;
    for (i, (name, pts)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
            .map_err(|e| plot_err(path, e))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    match legend {
        Legend::Inside(position) => chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 15))
            .position(position)
            .draw()
            .map_err(|e| plot_err(path, e))?,
        Legend::Beside => {
            // one line per series, top-aligned with the chart's plotting area
            for (i, (name, _)) in series.iter().enumerate() {
                let color = COLORS[i % COLORS.len()];
                let y = 60 + 24 * i as i32;
                legend_area
                    .draw(&PathElement::new(vec![(8, y), (36, y)], color.stroke_width(3)))
                    .map_err(|e| plot_err(path, e))?;
                legend_area
                    .draw(&Text::new(
                        name.as_str(),
                        (44, y - 8),
                        ("sans-serif", 15).into_font().color(&BLACK),
                    ))
                    .map_err(|e| plot_err(path, e))?;
            }
        }
    }
    root.present().map_err(|e| plot_err(path, e))?;
    drop(chart);
    drop(plot_area);
    drop(legend_area);
    drop(root);
    let img = image::RgbImage::from_raw(w, h, rgb).ok_or_else(|| plot_err(path, "buffer size"))?;
    save_png(path, img)
}

/// Writes a PNG atomically: a full disk or a read-only folder leaves no
/// half-written picture behind.
fn save_png(path: &Path, img: impl Into<image::DynamicImage>) -> Result<()> {
    let img = img.into();
    ood_data::write_atomic_with(path, |tmp| {
        img.save_with_format(tmp, image::ImageFormat::Png)
            .map_err(|e| plot_err(path, e))
    })
}

/// Per-epoch curves from the report.
pub fn curves(report: &Report, path: &Path) -> Result<()> {
    let inv: Vec<_> = report.epochs.iter().filter(|e| e.inversion.is_some()).collect();
    if inv.is_empty() {
        return Ok(());
    }
    let x = |k: usize| (k + 1) as f64;
    let mut series = vec![
        (
            "avg U of new inverted samples".to_string(),
            inv.iter()
                .enumerate()
                .map(|(k, e)| (x(k), e.inversion.as_ref().map_or(0.0, |i| i.new_samples_mean_u)))
                .collect::<Vec<_>>(),
        ),
        (
            "MNIST validation accuracy".to_string(),
            inv.iter()
                .enumerate()
                .map(|(k, e)| (x(k), e.classifier.val_accuracy))
                .collect(),
        ),
    ];
    type Measure = fn(&crate::report::ClassDiversity) -> f64;
    let measures: [(&str, Measure); 3] = [
        ("generated/real pixel diversity, mean over digits", |d| {
            d.mean_pixel_ratio()
        }),
        ("generated/real pixel diversity, least diverse digit", |d| {
            d.min_pixel_ratio().0
        }),
        (
            "generated/real feature diversity, mean over digits (clipped at 2)",
            |d| d.mean_feature_ratio(),
        ),
    ];
    for (name, f) in measures {
        let pts: Vec<(f64, f64)> = inv
            .iter()
            .enumerate()
            .filter_map(|(k, e)| e.inversion.as_ref()?.diversity.as_ref().map(|d| (x(k), f(d))))
            .collect();
        if !pts.is_empty() {
            series.push((name.to_string(), pts));
        }
    }
    if let Some(q) = &inv[0].quick_eval {
        for (j, r) in q.with_offset.ood.iter().enumerate() {
            series.push((
                format!("{} sent to garbage", r.name),
                inv.iter()
                    .enumerate()
                    .map(|(k, e)| {
                        (
                            x(k),
                            e.quick_eval
                                .as_ref()
                                .map_or(0.0, |q| q.with_offset.ood[j].garbage_share),
                        )
                    })
                    .collect(),
            ));
        }
    }
    // diversity ratios above 1 (more varied than real digits) matter less
    // than the shares in [0, 1]: the axis stops at 2, higher points are clipped
    const TOP: f64 = 2.0;
    let top = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|v| v.1))
        .fold(1.02f64, |a, v| if v.is_finite() { a.max(v + 0.02) } else { a })
        .min(TOP);
    for (_, pts) in &mut series {
        for p in pts.iter_mut() {
            p.1 = p.1.min(top);
        }
    }
    line_chart(
        path,
        Legend::Beside,
        &format!("{}: per inversion epoch", report.name),
        "inversion epoch",
        "share / accuracy / U / diversity ratio",
        (1.0, inv.len().max(2) as f64),
        (0.0, top),
        &series,
    )
}

/// Whether an ablation figure is a share of a set (drawn by [`ablation`]),
/// not an AUROC, an FPR95 or a time.
pub fn is_share_figure(name: &str) -> bool {
    !(name.contains("AUROC") || name.contains("FPR95") || name.ends_with(", s"))
}

/// File name of [`ablation`]'s plot in an ablation's folder.
pub const ABLATION: &str = "ablation.png";

/// Height of one figure's band in [`ablation`], in pixels.
const BAND: u32 = 30;

/// `ablation.png`: each share figure of an ablation (in the table's order),
/// one horizontal band per figure on a 0-100% axis, one colour per variant
/// (in its own line of the band): every seed's value a dot, the range over
/// seeds a line, the mean a tick, and the means as numbers in a column on the
/// right. Nothing is written when no row holds a share.
pub fn ablation(title: &str, rows: &[Row], path: &Path) -> Result<()> {
    let variants = ablate::variants(rows);
    let figures: Vec<&str> = ablate::figures(rows)
        .into_iter()
        .filter(|n| is_share_figure(n))
        .collect();
    if figures.is_empty() {
        return Ok(());
    }
    init_font();
    let n = figures.len();
    // a column per variant on the right, wide enough for its name
    let col_w = variants
        .iter()
        .map(|v| 8 * v.len() as u32)
        .max()
        .unwrap_or(0)
        .max(70);
    let (label_w, chart_w, means_w) = (420u32, 720u32, col_w * variants.len() as u32 + 20);
    let (top, bottom) = (80u32, 60u32);
    let (w, h) = (label_w + chart_w + means_w, top + bottom + BAND * n as u32);
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    draw_ablation(
        &mut rgb,
        (w, h),
        (label_w, chart_w, col_w, top, bottom),
        (title, rows, &variants, &figures),
        path,
    )?;
    let img = image::RgbImage::from_raw(w, h, rgb).ok_or_else(|| plot_err(path, "buffer size"))?;
    save_png(path, img)
}

/// [`ablation`]'s drawing into an RGB buffer of `w` x `h` pixels: the
/// figures' names, the chart, then a column of `col_w` pixels per variant.
fn draw_ablation(
    rgb: &mut [u8],
    (w, h): (u32, u32),
    (label_w, chart_w, col_w, top, bottom): (u32, u32, u32, u32, u32),
    (title, rows, variants, figures): (&str, &[Row], &[&str], &[&str]),
    path: &Path,
) -> Result<()> {
    let n = figures.len();
    let root = BitMapBackend::with_buffer(rgb, (w, h)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
    let font = |size: i32, color: &RGBColor| ("sans-serif", size).into_font().color(color);
    root.draw(&Text::new(title, (10, 10), font(22, &BLACK)))
        .map_err(|e| plot_err(path, e))?;
    let (_, rest) = root.split_vertically(top - 10);
    let (_, rest) = rest.split_horizontally(label_w);
    let (plot_area, _) = rest.split_horizontally(chart_w);
    let mut chart = ChartBuilder::on(&plot_area)
        .margin_top(10)
        .margin_right(10)
        .x_label_area_size(bottom - 10)
        .build_cartesian_2d(0f64..100f64, 0f64..n as f64)
        .map_err(|e| plot_err(path, e))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .disable_y_axis()
        .x_desc("% of the set (rejected, or accepted and correct; the figure says which)")
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| plot_err(path, e))?;
    let lanes = variants.len() as f64;
    // the band of figure i, top first; variant v's line inside it
    let y = |i: usize, v: usize| (n - i) as f64 - 0.1 - 0.8 * (v as f64 + 0.5) / lanes;
    for i in 1..n {
        let edge = i as f64;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(0.0, edge), (100.0, edge)],
                RGBColor(220, 220, 220).stroke_width(1),
            )))
            .map_err(|e| plot_err(path, e))?;
    }
    let means_x = (label_w + chart_w + 10) as i32;
    for (v, name) in variants.iter().enumerate() {
        let color = COLORS[v % COLORS.len()];
        // the column header names the variant in its colour
        root.draw(&Text::new(
            name.to_string(),
            (means_x + (col_w * v as u32) as i32, top as i32 - 28),
            font(13, &color),
        ))
        .map_err(|e| plot_err(path, e))?;
        for (i, fig) in figures.iter().enumerate() {
            let Some(x) = ablate::spread(rows, name, fig) else {
                continue;
            };
            let yv = y(i, v);
            // a share as a percentage on the axis
            let pct = |v: f64| (100.0 * v).clamp(0.0, 100.0);
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(pct(x.lo), yv), (pct(x.hi), yv)],
                    color.stroke_width(2),
                )))
                .map_err(|e| plot_err(path, e))?;
            chart
                .draw_series(
                    x.values
                        .iter()
                        .map(|&v| Circle::new((pct(v), yv), 3, color.filled())),
                )
                .map_err(|e| plot_err(path, e))?;
            let tick = 0.35 / lanes;
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(pct(x.mean), yv - tick), (pct(x.mean), yv + tick)],
                    BLACK.stroke_width(2),
                )))
                .map_err(|e| plot_err(path, e))?;
            let (_, py) = chart.backend_coord(&(0.0, yv));
            root.draw(&Text::new(
                format!("{:.1}", 100.0 * x.mean),
                (means_x + (col_w * v as u32) as i32, py - 7),
                font(13, &color),
            ))
            .map_err(|e| plot_err(path, e))?;
        }
    }
    for (i, fig) in figures.iter().enumerate() {
        let (_, py) = chart.backend_coord(&(0.0, (n - i) as f64 - 0.5));
        root.draw(&Text::new(fig.to_string(), (10, py - 8), font(14, &BLACK)))
            .map_err(|e| plot_err(path, e))?;
    }
    root.present().map_err(|e| plot_err(path, e))
}

/// Normalised histogram of `v` over `[lo, hi]` as a polyline.
fn histogram(v: &[f32], lo: f64, hi: f64, bins: usize) -> Vec<(f64, f64)> {
    let mut h = vec![0usize; bins];
    for &x in v {
        let t = ((f64::from(x) - lo) / (hi - lo) * bins as f64).floor();
        h[(t.max(0.0) as usize).min(bins - 1)] += 1;
    }
    let n = v.len().max(1) as f64;
    h.iter()
        .enumerate()
        .flat_map(|(i, &c)| {
            let (a, b) = (
                lo + (hi - lo) * i as f64 / bins as f64,
                lo + (hi - lo) * (i + 1) as f64 / bins as f64,
            );
            [(a, c as f64 / n), (b, c as f64 / n)]
        })
        .collect()
}

/// File names of the plots [`all`] writes into a run folder.
pub const CURVES: &str = "curves.png";
/// ROC curves of the final model.
pub const ROC: &str = "roc.png";

/// A sample grid's file name for inversion epoch `k` (1-based).
pub fn sample_grid_name(k: usize) -> String {
    format!("samples_epoch{k:03}.png")
}

/// The final model's logits on the evaluation sets, computed once by the
/// caller: `id` for the in-distribution set, `ood[i]` for each OOD set.
pub struct FinalLogits<'a> {
    /// The in-distribution test set.
    pub id: &'a Dataset,
    /// Its logits.
    pub zid: &'a [[f32; NUM_CLASSES]],
    /// The OOD sets.
    pub ood: &'a [Dataset],
    /// Their logits.
    pub zood: &'a [Vec<[f32; NUM_CLASSES]>],
}

/// `curves.png`, the ROC curves and the score histograms of the final model.
pub fn all(report: &Report, logits: &FinalLogits, dir: &Path) -> Result<()> {
    curves(report, &dir.join(CURVES))?;
    roc(logits, &dir.join(ROC))?;
    histograms(logits, dir)
}

/// ROC: each OOD set with its best score.
fn roc(l: &FinalLogits, path: &Path) -> Result<()> {
    let (zid, sets) = (l.zid, l.ood);
    let zood = l.zood;
    let mut series = Vec::new();
    for (d, z) in sets.iter().zip(zood) {
        let (score, auc) = Score::ALL
            .iter()
            .map(|s| {
                let a: Vec<f32> = zid.iter().map(|l| s.id_score(l)).collect();
                let b: Vec<f32> = z.iter().map(|l| s.id_score(l)).collect();
                (*s, metrics::auroc(&a, &b))
            })
            .fold((Score::Uncertainty, f64::NEG_INFINITY), |acc, x| {
                if x.1 > acc.1 {
                    x
                } else {
                    acc
                }
            });
        let a: Vec<f32> = zid.iter().map(|l| score.id_score(l)).collect();
        let b: Vec<f32> = z.iter().map(|l| score.id_score(l)).collect();
        series.push((
            format!("{} ({}, AUROC {:.4})", d.name, score.name(), auc),
            metrics::roc_curve(&a, &b),
        ));
    }
    line_chart(
        path,
        Legend::Inside(SeriesLabelPosition::LowerRight),
        "ROC (MNIST test = positive)",
        "false positive rate (OOD accepted)",
        "true positive rate (MNIST accepted)",
        (0.0, 1.0),
        (0.0, 1.01),
        &series,
    )
}

/// Histograms of U(x) and of the garbage probability, MNIST test vs each OOD set.
fn histograms(l: &FinalLogits, dir: &Path) -> Result<()> {
    let (zid, zood) = (l.zid, l.zood);
    for score in [Score::Uncertainty, Score::GarbageProb] {
        let mut series = vec![(
            format!("{} (in-distribution)", l.id.name),
            histogram(
                &zid.iter().map(|l| score.raw(l)).collect::<Vec<_>>(),
                0.0,
                1.0,
                50,
            ),
        )];
        for (d, z) in l.ood.iter().zip(zood) {
            series.push((
                d.name.clone(),
                histogram(&z.iter().map(|l| score.raw(l)).collect::<Vec<_>>(), 0.0, 1.0, 50),
            ));
        }
        let ymax = series
            .iter()
            .flat_map(|(_, p)| p.iter().map(|q| q.1))
            .fold(0.0, f64::max);
        line_chart(
            &dir.join(format!("hist_{}.png", score.name())),
            Legend::Inside(SeriesLabelPosition::UpperRight),
            &format!("{} of the final model (share of each set per bin)", score.name()),
            score.name(),
            "share of images",
            (0.0, 1.0),
            (0.0, (ymax * 1.05).max(0.01)),
            &series,
        )?;
    }
    Ok(())
}

/// A grid of generated images: one row per conditioning digit (labels of
/// `ds`), up to 12 per row, each enlarged 3x with a 2-pixel gap.
pub fn sample_grid(ds: &Dataset, path: &Path) -> Result<()> {
    const PER_ROW: usize = 12;
    const SCALE: usize = 3;
    let cell = IMG_SIDE * SCALE + 2;
    let mut img = image::GrayImage::from_pixel(
        (PER_ROW * cell) as u32,
        (NUM_DIGITS * cell) as u32,
        image::Luma([64]),
    );
    let mut used = [0usize; NUM_DIGITS];
    for i in 0..ds.len() {
        let d = ds.labels[i] as usize;
        if d >= NUM_DIGITS || used[d] >= PER_ROW {
            continue;
        }
        let (x0, y0) = (used[d] * cell, d * cell);
        used[d] += 1;
        for (p, &v) in ds.image(i).iter().enumerate() {
            let (r, c) = (p / IMG_SIDE, p % IMG_SIDE);
            for dy in 0..SCALE {
                for dx in 0..SCALE {
                    img.put_pixel(
                        (x0 + c * SCALE + dx) as u32,
                        (y0 + r * SCALE + dy) as u32,
                        image::Luma([v]),
                    );
                }
            }
        }
    }
    save_png(path, img)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_normalised_and_clamps() {
        let h = histogram(&[0.0, 0.5, 1.0, 2.0], 0.0, 1.0, 4);
        let total: f64 = h.iter().step_by(2).map(|p| p.1).sum();
        assert!((total - 1.0).abs() < 1e-12);
        assert_eq!(h.len(), 8);
    }

    #[test]
    fn the_ablation_plot_draws_every_share_in_a_band_with_each_variants_colour() -> Result<()> {
        let row = |variant: &str, seed: u64, shift: f64| Row {
            variant: variant.into(),
            seed,
            figures: vec![
                ("near-OOD rejected, mean".into(), 0.6 + shift),
                ("fashion-mnist AUROC (garbage_prob)".into(), 0.99),
                ("counterfeit acceptance".into(), 0.1 + shift),
                ("wall time, s".into(), 200.0),
            ],
        };
        assert!(is_share_figure("near-OOD rejected, mean"));
        assert!(!is_share_figure("fashion-mnist FPR95 (garbage_prob)"));
        assert!(!is_share_figure("wall time, s"));
        let rows = [
            row("on", 1, 0.0),
            row("on", 2, 0.1),
            row("off", 1, -0.2),
            row("off", 2, -0.3),
        ];
        let d = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let p = d.path().join(ABLATION);
        ablation("t", &rows, &p)?;
        let img = image::open(&p).map_err(|e| plot_err(&p, e))?.to_rgb8();
        // two shares: two bands; the AUROC and the time are not drawn
        assert_eq!(img.height(), 80 + 60 + 2 * BAND);
        // the variants' columns as wide as the longest name needs (70 at least)
        assert_eq!(img.width(), 420 + 720 + 2 * 70 + 20);
        for (v, c) in COLORS[..2].iter().enumerate() {
            let n = img.pixels().filter(|px| px.0 == [c.0, c.1, c.2]).count();
            assert!(n > 100, "variant {v}'s colour: {n} pixels");
        }
        assert!(
            img.pixels()
                .all(|px| px.0 != [COLORS[2].0, COLORS[2].1, COLORS[2].2]),
            "two variants, two colours"
        );
        // no share at all: no picture
        let none = [Row {
            variant: "on".into(),
            seed: 1,
            figures: vec![("wall time, s".into(), 1.0)],
        }];
        let q = d.path().join("none.png");
        ablation("t", &none, &q)?;
        assert!(!q.exists());
        Ok(())
    }

    #[test]
    fn charts_and_grids_are_written_as_png() -> Result<()> {
        let d = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let p = d.path().join("c.png");
        line_chart(
            &p,
            Legend::Inside(SeriesLabelPosition::LowerRight),
            "t",
            "x",
            "y",
            (0.0, 1.0),
            (0.0, 1.0),
            &[("a".into(), vec![(0.0, 0.0), (1.0, 1.0)])],
        )?;
        let img = image::open(&p).map_err(|e| plot_err(&p, e))?;
        assert_eq!((img.width(), img.height()), (900, 600));
        // a legend beside the chart: its own column, with each series' colour in it
        let b = d.path().join("b.png");
        let series: Vec<(String, Vec<(f64, f64)>)> = (0..10)
            .map(|i| (format!("series {i}"), vec![(0.0, 0.5), (1.0, 0.5)]))
            .collect();
        line_chart(&b, Legend::Beside, "t", "x", "y", (0.0, 1.0), (0.0, 1.0), &series)?;
        let img = image::open(&b).map_err(|e| plot_err(&b, e))?.to_rgb8();
        assert_eq!((img.width(), img.height()), (900 + LEGEND_WIDTH, 600));
        for (i, color) in COLORS.iter().enumerate() {
            let key = img.get_pixel(900 + 20, 60 + 24 * i as u32).0;
            assert_eq!(key, [color.0, color.1, color.2], "legend key of series {i}");
        }
        let mut ds = Dataset::default();
        ds.push(&[255; ood_core::IMG_PIXELS], 3);
        let g = d.path().join("g.png");
        sample_grid(&ds, &g)?;
        let img = image::open(&g).map_err(|e| plot_err(&g, e))?.to_luma8();
        assert_eq!(img.get_pixel(0, (3 * (IMG_SIDE * 3 + 2)) as u32).0[0], 255);
        Ok(())
    }
}
