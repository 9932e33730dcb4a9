//! The conditional generator that inverts the classifier.
//!
//! ```text
//! z [b, latent] ++ c [b, 11]            (c: the conditioning distribution P)
//!  -> fc1 -> LeakyReLU(0.2) -> dropout  [b, h1]
//!  ++ c -> fc2 -> LeakyReLU(0.2) -> dropout  [b, h2]
//!  ++ c -> fc7  -> [b, 7x7]   -> bilinear up-sampling to 28x28 --+
//!  ++ c -> fc14 -> [b, 14x14] -> bilinear up-sampling to 28x28 --+-> sum -> sigmoid
//!  -> reshape                           [b, 28, 28, 1] pixels in [0, 1]
//! ```
//!
//! The label is fed into every layer (the conditioning vector is concatenated
//! to each layer's input; with `latent_every_layer`, the default, `z` too, which
//! measurably raised the within-class diversity of the samples), and dropout stays on while sampling so the same
//! `(z, c)` gives varied images. The image is built at 7x7 and 14x14 and
//! up-sampled (fixed bilinear matrices, so the up-sampling is one matmul with
//! an exact backward), which plays the role of the seed's up-convolutions: it
//! gives the samples spatially coherent strokes and blobs. A first version
//! that wrote all 784 pixels directly produced pixel-level speckle (see the
//! README), which is why the output has no full-resolution head. The output is
//! in pixel space; [`to_model_space`] normalises it exactly like real inputs.
//!
//! With `kind = "strokes"` the last layer writes pen strokes instead:
//!
//! ```text
//!  ... fc2 ++ c -> pen -> [b, strokes x (2 x points + 1)]
//!  -> each stroke's control points (5 pixels per unit, the image's mean
//!     point moved to the page's centre; with `stroke_radius`, shrunk to at
//!     most that size) and half-width (sigmoid, 0.8..1.6; `thinnest_stroke`
//!     moves the 0.8)
//!  -> two rounds of corner cutting (a fixed matrix): smooth curves
//!     (none with `sharp_corners`: polylines)
//!  -> the differentiable pen (`super::strokes`) -> [b, 28, 28, 1]
//! ```
//!
//! so inversion searches the space of drawings: whatever the classifier
//! trusts as a digit there is something a pen can put on paper.
//!
//! With `kind = "warp"` it deforms real handwriting instead
//! ([`super::warp`]): each condition comes with a training digit of another
//! class than the one asked for, which the layers see (pooled to 14x14,
//! beside the condition), and the last layer writes a displacement field:
//!
//! ```text
//!  ... fc2 ++ c -> warp -> [b, 2 x 7x7] -> tanh * warp_shift pixels
//!  -> bilinear up-sampling to 28x28 per axis
//!  -> the source digit sampled at the moved pixels   -> [b, 28, 28, 1]
//! ```
//!
//! With `kind = "strokes-and-warp"` both heads share the trunk: half of each
//! batch is drawn by the pen, half bent ([`mixed_rows`]).
//!
//! With `kind = "strokes-over-digits"` every row is a pen drawing, and a
//! share of each batch (`over_digits_share`, [`over_rows`]) is drawn over a training digit
//! of another class than the one asked for ([`over_digit`]: the two inks
//! combined as `1 - (1 - pen)(1 - digit)`), which the layers see pooled to
//! 14x14 beside the condition (zeros on the blank pages). Inversion then
//! searches strokes that, added to real handwriting, make the classifier
//! read the asked digit. With `turned_pages` the pages are the run's turned
//! digits instead (no digit at all); with `half_pages` each keeps one half
//! of its digit (both measured, neither the default: README, "drawings over
//! other pages").

use super::cpu;
use super::layers::Layer;
use super::optim::{Adam, AdamParams};
use super::strokes::{draw_tensor, Pen};
use super::warp::{self, SourceDigits};
use crate::error::{Error, Result, TensorContext};
use candle_core::{Device, Tensor, Var};
use ood_core::{input, IMG_PIXELS, IMG_SIDE, NUM_CLASSES};
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// Generator architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeneratorConfig {
    /// Latent dimension (seed: 100).
    pub latent: usize,
    /// Width of the first hidden layer.
    pub hidden1: usize,
    /// Width of the second hidden layer.
    pub hidden2: usize,
    /// Dropout probability on the hidden layers (training and sampling).
    pub dropout: f32,
    /// Feed the latent `z` (not only the condition) into every layer.
    pub latent_every_layer: bool,
    /// What the last layer writes: pixels (the default), pen strokes, a
    /// displacement field that bends a training digit (`"warp"`), both
    /// of the last two (`"strokes-and-warp"`), or pen strokes of which a
    /// share is drawn over training digits (`"strokes-over-digits"`).
    #[serde(skip_serializing_if = "GeneratorKind::is_pixels")]
    pub kind: GeneratorKind,
    /// Strokes per image (`kind = "strokes"` only).
    #[serde(skip_serializing_if = "is_default_strokes")]
    pub strokes: usize,
    /// Control points per stroke (`kind = "strokes"` only).
    #[serde(skip_serializing_if = "is_default_stroke_points")]
    pub stroke_points: usize,
    /// Draw each stroke as the polyline of its control points, with sharp
    /// corners, instead of smoothing it by corner cutting into a curve
    /// ([`chaikin_matrix`]; the pen kinds only; default false). A smoothed
    /// stroke rounds every corner (an L with 20-pixel sides keeps under 0.6
    /// of full ink in its corner pixel), so inversion searches triangles,
    /// squares, arrow heads and the corners of letters like W, V, Z only
    /// rounded. Measured over three seeds (README, "a pen that draws
    /// corners"): fewer symbols rejected, not the default. Not written to a
    /// config when false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sharp_corners: bool,
    /// Largest root-mean-square distance of a drawing's points from their
    /// mean, in pixels; a drawing that spreads further is shrunk to it
    /// (`kind = "strokes"` only; 0 = no limit, the default). MNIST scales
    /// its digits into a 20x20 box: the points of a stroke across that box
    /// lie about 6 pixels from their mean. Measured at 7 (README, "Inversion
    /// in the space of drawings"): the generator lost less often, and the
    /// classifier rejected fewer symbols.
    #[serde(skip_serializing_if = "is_zero")]
    pub stroke_radius: f64,
    /// Smallest half-width of a stroke, in pixels (the pen kinds only;
    /// default 0.8, MNIST's thinnest strokes; the widest is 1.6). A fine
    /// pen's line, fitted into MNIST's 20x20 box as the device path fits
    /// a page, is about 0.3-0.4 pixels: with a smaller value, inversion
    /// also searches drawings as thin as that. Not written to a config at
    /// its default.
    #[serde(skip_serializing_if = "is_default_thinnest_stroke")]
    pub thinnest_stroke: f64,
    /// Largest displacement of the warp generator's field, in pixels
    /// (the kinds with a warp only; default 3).
    #[serde(skip_serializing_if = "is_default_warp_shift")]
    pub warp_shift: f64,
    /// Share of each batch's rows that the pen draws over a training digit
    /// (`kind = "strokes-over-digits"` only; default 0.5, in (0, 1]).
    #[serde(skip_serializing_if = "is_default_over_digits_share")]
    pub over_digits_share: f64,
    /// The inversion's ink term counts only the ink the pen adds to a page
    /// (what the classifier sees minus the page), not the page's own
    /// (`kind = "strokes-over-digits"` only; default false: everything the
    /// classifier sees).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub added_ink_only: bool,
    /// The seed's batch terms (the features' mean pairwise cosine and
    /// orthogonality) act within each kind of row, the pen-alone rows among
    /// themselves and the rows over digits among themselves, and are
    /// averaged ([`GeneratorConfig::row_groups`]): drawings over digits of
    /// other classes, already spread by their pages, no longer meet the
    /// terms for the pen-alone drawings (`kind = "strokes-over-digits"`
    /// only; default false: the whole batch, as the seed).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub batch_terms_per_kind: bool,
    /// Two generators, each with its own weights and optimiser, share each
    /// batch: a pen-alone (stroke-kind) generator draws the pen-alone rows,
    /// and an over-digits generator draws every other row over a digit
    /// ([`Generator::new`]); each learns from its own rows' loss alone, so
    /// the pen-alone drawings are not shaped by the drawings over digits
    /// (`kind = "strokes-over-digits"` only, with a share under 1; default
    /// false: one generator draws both kinds).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub two_generators: bool,
    /// The pages under the rows drawn over digits are the run's turned
    /// digits (the garbage seed source of training digits turned or
    /// mirrored into no digit, `data.turned_count`), drawn whatever the
    /// asked digit, instead of upright training digits of another class:
    /// inversion then searches strokes that make real handwriting that is no
    /// digit read as one (`kind = "strokes-over-digits"` only; default
    /// false). Not written to a config when false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub turned_pages: bool,
    /// Each page under a row drawn over digits keeps one half of its digit
    /// (top, bottom, left or right, drawn at random; the rest blank,
    /// [`SourceDigits::draw_halves`]): inversion then searches strokes that
    /// complete half of a real digit into one the classifier trusts
    /// (`kind = "strokes-over-digits"` only; default false). Not written to
    /// a config when false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub half_pages: bool,
}

/// Default share of rows drawn over digits.
const OVER_DIGITS_SHARE: f64 = 0.5;

fn is_default_over_digits_share(v: &f64) -> bool {
    *v == OVER_DIGITS_SHARE
}

pub(crate) fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

/// What the generator's last layer writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GeneratorKind {
    /// 7x7 and 14x14 pixel maps, up-sampled and summed (the seed's kind of
    /// generator: anything a classifier responds to, strokes or not).
    #[default]
    Pixels,
    /// The points and widths of a few pen strokes, drawn by a differentiable
    /// pen ([`super::strokes`]): inversion searches the space of drawings.
    Strokes,
    /// A smooth displacement field that deforms a training digit of another
    /// class ([`super::warp`]): inversion searches bent real handwriting.
    Warp,
    /// Both heads on one trunk: half the rows pen drawings, half bent
    /// training digits ([`mixed_rows`]).
    #[serde(rename = "strokes-and-warp")]
    StrokesAndWarp,
    /// Pen strokes, a share of the rows drawn over a training digit of
    /// another class ([`over_rows`], [`over_digit`]).
    #[serde(rename = "strokes-over-digits")]
    StrokesOverDigits,
}

impl GeneratorKind {
    fn is_pixels(&self) -> bool {
        *self == Self::Pixels
    }

    /// Whether this kind draws pen strokes (alone, beside warps or over digits).
    fn draws_strokes(&self) -> bool {
        matches!(
            self,
            Self::Strokes | Self::StrokesAndWarp | Self::StrokesOverDigits
        )
    }

    /// Whether this kind deforms training digits (alone or beside strokes).
    pub fn warps(&self) -> bool {
        matches!(self, Self::Warp | Self::StrokesAndWarp)
    }

    /// Whether this kind takes training digits (to bend or to draw over),
    /// which its layers see pooled beside the condition.
    pub fn takes_digits(&self) -> bool {
        self.warps() || *self == Self::StrokesOverDigits
    }
}

/// The rows of a batch of `b` that the two-headed kind
/// ([`GeneratorKind::StrokesAndWarp`]) draws with the pen: 1.0 for those,
/// 0.0 for the warped ones; even rows counted within each half of the batch,
/// so a mode-seeking pair (rows `i` and `b - b / 2 + i`) is of one kind.
pub fn mixed_rows(b: usize) -> Vec<f32> {
    let half = b - b / 2;
    (0..b)
        .map(|r| if (r % half.max(1)) % 2 == 0 { 1.0 } else { 0.0 })
        .collect()
}

/// The rows of a batch of `b` that the over-digits kind draws over a digit:
/// `share` of them, spread evenly within each half of the batch, so a
/// mode-seeking pair (rows `i` and `b - b / 2 + i`) is drawn on one kind of
/// page. At 0.5 these are the rows [`mixed_rows`] bends.
pub fn over_rows(b: usize, share: f64) -> Vec<bool> {
    let half = (b - b / 2).max(1);
    (0..b)
        .map(|r| {
            let i = (r % half) as f64;
            ((i + 1.0) * share).floor() > (i * share).floor()
        })
        .collect()
}

/// The pages under a batch of the over-digits kind (`[b, 784]`): the
/// training digits `src` drawn for its rows ([`SourceDigits::draw`]), blank
/// on the rows [`over_rows`] leaves to the pen alone.
pub fn pages(src: &[f32], share: f64) -> Vec<f32> {
    let over = over_rows(src.len() / IMG_PIXELS, share);
    src.chunks_exact(IMG_PIXELS)
        .zip(over)
        .flat_map(|(img, o)| img.iter().map(move |&v| if o { v } else { 0.0 }))
        .collect()
}

/// A pen drawing `pen` over a `page` (both `[0, 1]`, the same length): the
/// inks combined as `1 - (1 - pen)(1 - page)`, which is the drawing on a
/// blank page and never darker than either. Its gradient in `pen` is
/// `1 - page`.
pub fn over_digit(pen: &[f32], page: &[f32]) -> Vec<f32> {
    pen.iter().zip(page).map(|(&a, &b)| a + b - a * b).collect()
}

/// Default strokes per image of the stroke generator.
const STROKES: usize = 3;
/// Default control points per stroke.
const STROKE_POINTS: usize = 5;
/// Corner-cutting rounds that smooth a stroke's control polygon into a curve.
const SMOOTHING: usize = 2;
/// A stroke's points are `SPREAD * o` pixels for the head's outputs `o`
/// (about standard normal at the start: most points inside MNIST's 20x20
/// digit box), shifted so that the mean of an image's points is `CENTRE`
/// (MNIST centres its digits; a drawing cannot differ from another by its
/// place alone). Linear, so that no point gets stuck where a squashing
/// function saturates; ink off the page is lost, which the classifier's
/// loss corrects.
const CENTRE: f64 = 14.0;
const SPREAD: f64 = 5.0;

/// A stroke's half-width ranges over these pixels by default (MNIST's
/// strokes are about 1.5 to 3.5 pixels wide); `thinnest_stroke` moves the
/// lower end.
const HALF_WIDTH: (f64, f64) = (0.8, 1.6);

fn is_default_thinnest_stroke(v: &f64) -> bool {
    *v == HALF_WIDTH.0
}

fn is_default_strokes(n: &usize) -> bool {
    *n == STROKES
}

fn is_default_stroke_points(n: &usize) -> bool {
    *n == STROKE_POINTS
}

/// `1 / (1 + e^-o)`, element-wise (the pixel head's output and the stroke
/// head's widths).
fn sigmoid(o: Tensor) -> candle_core::Result<Tensor> {
    (o.neg()?.exp()? + 1.0)?.recip()
}

/// Default largest displacement of the warp generator, in pixels.
const WARP_SHIFT: f64 = 3.0;

fn is_default_warp_shift(v: &f64) -> bool {
    *v == WARP_SHIFT
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        Self {
            latent: 100,
            hidden1: 256,
            hidden2: 512,
            dropout: 0.2,
            latent_every_layer: true,
            kind: GeneratorKind::Pixels,
            strokes: STROKES,
            stroke_points: STROKE_POINTS,
            sharp_corners: false,
            stroke_radius: 0.0,
            thinnest_stroke: HALF_WIDTH.0,
            warp_shift: WARP_SHIFT,
            over_digits_share: OVER_DIGITS_SHARE,
            added_ink_only: false,
            batch_terms_per_kind: false,
            two_generators: false,
            turned_pages: false,
            half_pages: false,
        }
    }
}

impl GeneratorConfig {
    /// The groups of a batch of `b` rows within which the batch terms act:
    /// with `batch_terms_per_kind`, the pen-alone rows and the rows over
    /// digits ([`over_rows`]), each in row order, leaving out a group of
    /// fewer than two rows; `None` for the whole batch (the seed).
    pub fn row_groups(&self, b: usize) -> Option<Vec<Vec<u32>>> {
        if !self.batch_terms_per_kind || self.kind != GeneratorKind::StrokesOverDigits {
            return None;
        }
        let over = over_rows(b, self.over_digits_share);
        let rows = |want: bool| -> Vec<u32> { (0..b as u32).filter(|&r| over[r as usize] == want).collect() };
        let groups: Vec<Vec<u32>> = [rows(false), rows(true)]
            .into_iter()
            .filter(|g| g.len() >= 2)
            .collect();
        (!groups.is_empty()).then_some(groups)
    }

    /// What the inversion's ink term counts the ink above, given the pages
    /// under a batch's drawings: the pages when only the ink the pen adds
    /// counts (`added_ink_only`), else `None` (everything the classifier
    /// sees). One rule for the graph and the hand-written path.
    pub fn ink_base<T>(&self, pages: Option<T>) -> Option<T> {
        pages.filter(|_| self.added_ink_only)
    }

    /// The same generator drawing with its pen alone: the over-digits kind
    /// becomes the stroke kind, and the keys of the over-digits kind alone
    /// (`added_ink_only`, `batch_terms_per_kind`, `two_generators`,
    /// `turned_pages`, `half_pages`, which a stroke generator refuses) are
    /// turned off; any other kind is returned as it is.
    pub fn pen_alone(&self) -> Self {
        if self.kind != GeneratorKind::StrokesOverDigits {
            return self.clone();
        }
        Self {
            kind: GeneratorKind::Strokes,
            added_ink_only: false,
            batch_terms_per_kind: false,
            two_generators: false,
            turned_pages: false,
            half_pages: false,
            ..self.clone()
        }
    }

    /// The over-digits generator of a pair (`two_generators`): the same
    /// generator drawing every row over a digit, alone.
    pub(crate) fn over_digits_alone(&self) -> Self {
        Self {
            over_digits_share: 1.0,
            two_generators: false,
            ..self.clone()
        }
    }

    /// Names and shapes of all parameters.
    pub fn param_shapes(&self) -> Vec<(&'static str, Vec<usize>)> {
        let cond = self.condition_width();
        let c = cond + if self.latent_every_layer { self.latent } else { 0 };
        let mut v = vec![
            ("gen.fc1.weight", vec![self.hidden1, self.latent + cond]),
            ("gen.fc1.bias", vec![self.hidden1]),
            ("gen.fc2.weight", vec![self.hidden2, self.hidden1 + c]),
            ("gen.fc2.bias", vec![self.hidden2]),
        ];
        if self.kind == GeneratorKind::Pixels {
            v.extend([
                ("gen.fc7.weight", vec![7 * 7, self.hidden2 + c]),
                ("gen.fc7.bias", vec![7 * 7]),
                ("gen.fc14.weight", vec![14 * 14, self.hidden2 + c]),
                ("gen.fc14.bias", vec![14 * 14]),
            ]);
        }
        if self.kind.draws_strokes() {
            let n = self.strokes * (2 * self.stroke_points + 1);
            v.extend([
                ("gen.pen.weight", vec![n, self.hidden2 + c]),
                ("gen.pen.bias", vec![n]),
            ]);
        }
        if self.kind.warps() {
            v.extend([
                ("gen.warp.weight", vec![warp::HEAD_OUTPUTS, self.hidden2 + c]),
                ("gen.warp.bias", vec![warp::HEAD_OUTPUTS]),
            ]);
        }
        v
    }

    /// What the layers see besides the latent: the condition, and for the
    /// kinds that take digits the pooled digit (or page).
    pub(crate) fn condition_width(&self) -> usize {
        if self.kind.takes_digits() {
            NUM_CLASSES + warp::POOLED_SIDE * warp::POOLED_SIDE
        } else {
            NUM_CLASSES
        }
    }

    /// The pen that draws the smoothed strokes (`kind = "strokes"`).
    pub fn pen(&self) -> Pen {
        Pen {
            strokes: self.strokes,
            points: smoothed_points(self.stroke_points, self.corner_cutting()),
        }
    }

    /// The range of a stroke's half-width in pixels: `thinnest_stroke` to
    /// the widest (1.6).
    pub fn half_width(&self) -> (f64, f64) {
        (self.thinnest_stroke, HALF_WIDTH.1)
    }

    /// Rounds of corner cutting on each stroke: two, or none
    /// with `sharp_corners`.
    pub fn corner_cutting(&self) -> usize {
        if self.sharp_corners {
            0
        } else {
            SMOOTHING
        }
    }

    /// The smoothing matrix of one stroke (`[points drawn, control points]`,
    /// [`chaikin_matrix`]) and its number of rows.
    fn smoothing(&self) -> (usize, Vec<f32>) {
        chaikin_matrix(self.stroke_points, self.corner_cutting())
    }

    /// Checks the values are usable.
    pub fn validate(&self) -> Result<()> {
        if self.latent == 0 || self.hidden1 == 0 || self.hidden2 == 0 {
            return Err(Error::Config("generator sizes must be > 0".into()));
        }
        if !(self.stroke_radius >= 0.0 && self.stroke_radius.is_finite()) {
            return Err(Error::Config(format!(
                "generator.stroke_radius must be >= 0 (0 = no limit), got {}",
                self.stroke_radius
            )));
        }
        if !(self.thinnest_stroke > 0.0 && self.thinnest_stroke <= HALF_WIDTH.1) {
            return Err(Error::Config(format!(
                "generator.thinnest_stroke must be in (0, {}] pixels (a stroke's half-width), got {}",
                HALF_WIDTH.1, self.thinnest_stroke
            )));
        }
        if !self.kind.draws_strokes() && self.thinnest_stroke != HALF_WIDTH.0 {
            return Err(Error::Config(format!(
                "generator.thinnest_stroke is about pen strokes: a kind that draws them only, not {:?}",
                self.kind
            )));
        }
        if self.kind.draws_strokes() && (self.strokes == 0 || self.stroke_points < 2) {
            return Err(Error::Config(format!(
                "a stroke generator needs at least 1 stroke of at least 2 points, got {} of {}",
                self.strokes, self.stroke_points
            )));
        }
        if self.kind.draws_strokes() && self.pen().per_image() > super::strokes::MAX_PARAMS {
            return Err(Error::Config(format!(
                "{} strokes of {} points are {} pen parameters an image, more than the pen's {}",
                self.strokes,
                self.stroke_points,
                self.pen().per_image(),
                super::strokes::MAX_PARAMS
            )));
        }
        if !(self.warp_shift > 0.0 && self.warp_shift.is_finite()) {
            return Err(Error::Config(format!(
                "generator.warp_shift must be > 0 pixels, got {}",
                self.warp_shift
            )));
        }
        if !(self.over_digits_share > 0.0 && self.over_digits_share <= 1.0) {
            return Err(Error::Config(format!(
                "generator.over_digits_share must be in (0, 1], got {}",
                self.over_digits_share
            )));
        }
        // the keys of the over-digits kind alone, each with what it is about
        for (on, key, about) in [
            (
                self.added_ink_only,
                "added_ink_only",
                "counts the ink a pen adds to a page",
            ),
            (
                self.batch_terms_per_kind,
                "batch_terms_per_kind",
                "splits a batch into pen-alone rows and rows over digits",
            ),
            (
                self.turned_pages,
                "turned_pages",
                "is about the pages under the drawings",
            ),
            (
                self.half_pages,
                "half_pages",
                "is about the pages under the drawings",
            ),
        ] {
            if on && self.kind != GeneratorKind::StrokesOverDigits {
                return Err(Error::Config(format!(
                    "generator.{key} {about}: kind \"strokes-over-digits\" only, not {:?}",
                    self.kind
                )));
            }
        }
        if self.two_generators
            && (self.kind != GeneratorKind::StrokesOverDigits
                || self.over_digits_share >= 1.0
                || self.batch_terms_per_kind)
        {
            return Err(Error::Config(format!(
                "generator.two_generators splits a batch between a pen-alone generator and one over digits: kind \"strokes-over-digits\" with over_digits_share under 1 and without batch_terms_per_kind (each generator's batch is one kind already), not {:?} with share {} and batch_terms_per_kind {}",
                self.kind, self.over_digits_share, self.batch_terms_per_kind
            )));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::Config(format!(
                "generator.dropout must be in [0, 1), got {}",
                self.dropout
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
impl GeneratorConfig {
    /// The tests' pair of generators (`two_generators`): over digits at
    /// `share`, its ink counted over the page only.
    pub(crate) fn test_pair(share: f64) -> Self {
        Self {
            kind: GeneratorKind::StrokesOverDigits,
            two_generators: true,
            added_ink_only: true,
            over_digits_share: share,
            ..Self::default()
        }
    }
}

/// Pixel-space images `[b, 28, 28, 1]` in `[0, 1]` -> the classifier's input space.
pub fn to_model_space(pixels: &Tensor) -> candle_core::Result<Tensor> {
    (pixels - f64::from(input::MEAN))? / f64::from(input::STD)
}

/// The `[784, s*s]` matrix of bilinear up-sampling from `s x s` to 28x28
/// (pixel centres aligned, borders clamped): `up = m @ small`.
pub fn bilinear_matrix(s: usize) -> Vec<f32> {
    let mut m = vec![0f32; IMG_PIXELS * s * s];
    let coord = |o: usize| -> (usize, usize, f32) {
        let src = ((o as f32 + 0.5) * s as f32 / IMG_SIDE as f32 - 0.5).clamp(0.0, (s - 1) as f32);
        let i0 = src.floor() as usize;
        let i1 = (i0 + 1).min(s - 1);
        (i0, i1, src - i0 as f32)
    };
    for y in 0..IMG_SIDE {
        let (y0, y1, fy) = coord(y);
        for x in 0..IMG_SIDE {
            let (x0, x1, fx) = coord(x);
            let row = &mut m[(y * IMG_SIDE + x) * s * s..(y * IMG_SIDE + x + 1) * s * s];
            row[y0 * s + x0] += (1.0 - fy) * (1.0 - fx);
            row[y0 * s + x1] += (1.0 - fy) * fx;
            row[y1 * s + x0] += fy * (1.0 - fx);
            row[y1 * s + x1] += fy * fx;
        }
    }
    m
}

/// Points of a stroke of `n` control points after `rounds` rounds of
/// corner cutting.
fn smoothed_points(n: usize, rounds: usize) -> usize {
    (0..rounds).fold(n, |n, _| 2 * (n - 1))
}

/// The `[m, n]` matrix of Chaikin's corner cutting, `rounds` rounds
/// (two for the pen by default; 0: the identity, the polygon itself), on an
/// open polygon of `n` points: each side `p q` becomes the two points at a
/// quarter and three quarters along it, except that the ends stay where they
/// are. The result is a smooth curve from the first point to the last that
/// follows the polygon (a quadratic B-spline); `smooth = m @ points`.
pub fn chaikin_matrix(n: usize, rounds: usize) -> (usize, Vec<f32>) {
    let mut m: Vec<Vec<f32>> = (0..n)
        .map(|i| (0..n).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
        .collect();
    for _ in 0..rounds {
        let k = m.len();
        let mut next = Vec::with_capacity(2 * (k - 1));
        for i in 0..k - 1 {
            let mix = |a: f32| -> Vec<f32> {
                m[i].iter()
                    .zip(&m[i + 1])
                    .map(|(p, q)| a * p + (1.0 - a) * q)
                    .collect()
            };
            next.push(if i == 0 { m[0].clone() } else { mix(0.75) });
            next.push(if i == k - 2 { m[k - 1].clone() } else { mix(0.25) });
        }
        m = next;
    }
    (m.len(), m.concat())
}

/// The generator's last layer.
#[derive(Debug)]
enum Head {
    /// `fc7` (7x7 map) and `fc14` (14x14 map), with their bilinear
    /// up-sampling matrices `[784, 49]` and `[784, 196]`.
    Pixels {
        fc7: Layer,
        fc14: Layer,
        up: [Tensor; 2],
    },
    /// `pen`: control points and half-widths of the strokes, and the
    /// smoothing matrix `[smoothed, control]` of one stroke.
    Strokes { pen: Layer, smooth: Tensor },
    /// `warp`: the 7x7 displacement field per axis and its up-sampling
    /// matrix `[784, 49]`.
    /// With `pen` (the two-headed kind): the stroke head's `pen` layer and
    /// smoothing matrix too.
    Warp {
        warp: Layer,
        up: Tensor,
        pen: Option<(Layer, Tensor)>,
    },
}

/// The generator's parameters and its optimiser.
#[derive(Debug)]
pub struct Generator {
    /// Architecture.
    pub config: GeneratorConfig,
    /// Every parameter with its name, in [`GeneratorConfig::param_shapes`]
    /// order (the optimiser's and the checkpoint's view).
    params: Vec<(&'static str, Var)>,
    /// The same parameters by layer: latent + condition -> `fc1` -> `fc2`
    /// -> the head.
    fc1: Layer,
    fc2: Layer,
    head: Head,
    /// The training digits the kinds that take digits bend or draw over
    /// (set by [`Generator::set_sources`]).
    sources: Option<Arc<SourceDigits>>,
    device: Device,
    opt: Adam,
    /// The head's fixed parts as plain values (up-sampling or smoothing
    /// matrices), for the CPU path; shared with every step's weights (none
    /// for the warp kind, which runs as a candle graph).
    cpu_head: Option<Arc<cpu::generator::GenHead>>,
    /// Buffers of the hand-written CPU path, reused from step to step.
    pub(crate) scratch: Vec<cpu::generator::GenScratch>,
    /// The pen-alone partner of a pair (`two_generators`).
    pub(crate) pair: Option<Pair>,
}

/// The pen-alone half of a pair of generators (`two_generators`).
#[derive(Debug)]
pub(crate) struct Pair {
    /// The pen-alone generator: it draws the pen-alone rows of every batch
    /// ([`Pair::pen_rows`]), the generator holding it every other row over
    /// a digit.
    pub(crate) pen: Box<Generator>,
    /// The pair's `over_digits_share` (its split of the rows; the
    /// over-digits generator's own config has share 1).
    share: f64,
}

impl Pair {
    /// How many of a batch of `b` rows the pen-alone generator draws: the
    /// rows [`over_rows`] leaves to the pen alone, as one generator would
    /// split them.
    pub(crate) fn pen_rows(&self, b: usize) -> usize {
        over_rows(b, self.share).iter().filter(|&&o| !o).count()
    }
}

/// Prefix of the pen-alone partner's names in a checkpoint.
pub(crate) const PARTNER: &str = "pen-partner.";

impl Generator {
    /// Fresh weights (He-uniform, zero bias) from `rng`, with an Adam
    /// optimiser. With `two_generators`, a pair: this generator draws over
    /// digits alone (its `config` has share 1), then its pen-alone partner
    /// ([`GeneratorConfig::pen_alone`]) draws its weights from `rng`.
    pub fn new(config: &GeneratorConfig, lr: f64, rng: &mut StdRng, device: &Device) -> Result<Self> {
        config.validate()?;
        if config.two_generators {
            let mut over = Self::new(&config.over_digits_alone(), lr, rng, device)?;
            let pen = Self::new(&config.pen_alone(), lr, rng, device)?;
            over.pair = Some(Pair {
                pen: Box::new(pen),
                share: config.over_digits_share,
            });
            return Ok(over);
        }
        let params = super::init_params(config.param_shapes(), rng, device)?;
        let vars = params.iter().map(|(_, v)| v.clone()).collect();
        let opt = Adam::new(
            vars,
            AdamParams {
                lr,
                beta1: 0.5,
                ..Default::default()
            },
        )
        .op("generator optimiser")?;
        let (head, cpu_head) = match config.kind {
            GeneratorKind::Pixels => {
                let up = [bilinear_matrix(7), bilinear_matrix(14)];
                let head = Head::Pixels {
                    fc7: Layer::find(&params, "gen.fc7")?,
                    fc14: Layer::find(&params, "gen.fc14")?,
                    up: [
                        Tensor::from_slice(&up[0], (IMG_PIXELS, 49), device).op("up-sampling matrix")?,
                        Tensor::from_slice(&up[1], (IMG_PIXELS, 196), device).op("up-sampling matrix")?,
                    ],
                };
                (head, Some(cpu::generator::GenHead::Pixels { up }))
            }
            GeneratorKind::Strokes | GeneratorKind::StrokesOverDigits => {
                let (m, smooth) = config.smoothing();
                let head = Head::Strokes {
                    pen: Layer::find(&params, "gen.pen")?,
                    smooth: Tensor::from_slice(&smooth, (m, config.stroke_points), device)
                        .op("smoothing matrix")?,
                };
                let cpu_head = cpu::generator::GenHead::Strokes(cpu::generator::StrokeHead {
                    pen: config.pen(),
                    control: config.stroke_points,
                    smooth,
                    spread: SPREAD as f32,
                    centre: CENTRE as f32,
                    half_width: {
                        let (lo, hi) = config.half_width();
                        (lo as f32, hi as f32)
                    },
                });
                (head, Some(cpu_head))
            }
            GeneratorKind::Warp | GeneratorKind::StrokesAndWarp => {
                let pen = match config.kind {
                    GeneratorKind::StrokesAndWarp => {
                        let (m, smooth) = config.smoothing();
                        let smooth = Tensor::from_slice(&smooth, (m, config.stroke_points), device)
                            .op("smoothing matrix")?;
                        Some((Layer::find(&params, "gen.pen")?, smooth))
                    }
                    _ => None,
                };
                let head = Head::Warp {
                    warp: Layer::find(&params, "gen.warp")?,
                    up: Tensor::from_slice(&bilinear_matrix(7), (IMG_PIXELS, 49), device)
                        .op("up-sampling matrix")?,
                    pen,
                };
                (head, None)
            }
        };
        Ok(Self {
            config: config.clone(),
            fc1: Layer::find(&params, "gen.fc1")?,
            fc2: Layer::find(&params, "gen.fc2")?,
            head,
            sources: None,
            params,
            device: device.clone(),
            opt,
            cpu_head: cpu_head.map(Arc::new),
            scratch: Vec::new(),
            pair: None,
        })
    }

    /// Whether the hand-written CPU path can run this generator: on the
    /// CPU, the pixel and stroke heads (over digits too); a stroke head with
    /// a `stroke_radius` cap and the warp head run as a candle graph instead.
    pub(crate) fn has_cpu_path(&self) -> bool {
        self.device.is_cpu()
            && match self.config.kind {
                GeneratorKind::Pixels => true,
                GeneratorKind::Strokes | GeneratorKind::StrokesOverDigits => self.config.stroke_radius <= 0.0,
                GeneratorKind::Warp | GeneratorKind::StrokesAndWarp => false,
            }
    }

    /// Gives a generator of a kind that takes digits the training digits it
    /// bends or draws over (shared, not copied); other kinds ignore them.
    pub fn set_sources(&mut self, digits: &Arc<SourceDigits>) {
        if let Some(pair) = &mut self.pair {
            pair.pen.set_sources(digits);
        }
        if self.config.kind.takes_digits() {
            self.sources = Some(Arc::clone(digits));
        }
    }

    /// For a kind that takes digits, the training digits of `digits`
    /// ([`Generator::set_sources`]; an error when some digit has none); other
    /// kinds need nothing and take nothing.
    pub fn give_sources(&mut self, digits: &crate::data::Dataset) -> Result<()> {
        if !self.config.kind.takes_digits() {
            return Ok(());
        }
        let sources = SourceDigits::new(digits);
        if !sources.covers_every_digit() {
            return Err(Error::Config(format!(
                "a generator of kind {:?} takes training digits of every class; {} has none of some digit",
                self.config.kind, digits.name
            )));
        }
        self.set_sources(&Arc::new(sources));
        Ok(())
    }

    /// The digits a kind that takes digits bends or draws over, when it has them.
    pub fn sources(&self) -> Option<&Arc<SourceDigits>> {
        self.sources.as_ref()
    }

    /// For a kind that takes digits, what row `r` of conditions `c`
    /// (`[b, 11]`, row-major) gets (`[b, 784]`, `[0, 1]`): the digit to bend
    /// ([`SourceDigits::draw`], from `rng`), or for the over-digits kind the
    /// page to draw on ([`pages`]); `None` for the other kinds. Drawn before
    /// anything else of a forward pass.
    pub(crate) fn digits_for(
        &self,
        c: &[f32],
        rng: Option<&mut StdRng>,
    ) -> candle_core::Result<Option<Vec<f32>>> {
        if !self.config.kind.takes_digits() {
            return Ok(None);
        }
        let Some(sources) = &self.sources else {
            candle_core::bail!(
                "a generator of kind {:?} needs the training digits it takes (set_sources)",
                self.config.kind
            )
        };
        let src = if self.config.half_pages {
            sources.draw_halves(c, rng)
        } else {
            sources.draw(c, rng)
        };
        Ok(Some(match self.config.kind {
            GeneratorKind::StrokesOverDigits => pages(&src, self.config.over_digits_share),
            _ => src,
        }))
    }

    /// The weights as plain values for the CPU path.
    pub(crate) fn cpu_weights(&self) -> Result<cpu::generator::GenWeights> {
        if !self.has_cpu_path() {
            return Err(Error::Config(
                "the CPU path runs the generator on the CPU only, and strokes without a radius cap".into(),
            ));
        }
        let mut p = Vec::with_capacity(self.params.len());
        for (_, v) in &self.params {
            let t = v.as_tensor();
            p.push(
                t.flatten_all()
                    .and_then(|t| t.to_vec1::<f32>())
                    .op("read generator weights")?,
            );
        }
        let c = &self.config;
        let dims = cpu::generator::GenDims {
            latent: c.latent,
            hidden1: c.hidden1,
            hidden2: c.hidden2,
            latent_every_layer: c.latent_every_layer,
            cond: c.condition_width(),
        };
        let head = self
            .cpu_head
            .as_ref()
            .ok_or_else(|| Error::Config("this generator has no CPU path".into()))?;
        Ok(cpu::generator::GenWeights::new(dims, p, Arc::clone(head)))
    }

    /// The dropout multipliers of both hidden layers for a batch of `b`,
    /// drawn from `rng` in the order [`Generator::forward`] draws them.
    pub(crate) fn dropout_masks(&self, b: usize, rng: &mut StdRng) -> [Option<Vec<f32>>; 2] {
        let c = &self.config;
        [c.hidden1, c.hidden2].map(|h| (c.dropout > 0.0).then(|| super::dropout_mask(b * h, c.dropout, rng)))
    }

    /// The optimiser (for steps and checkpoints).
    pub fn optimizer(&mut self) -> &mut Adam {
        &mut self.opt
    }

    /// Pixel-space images `[b, 28, 28, 1]` from latents `[b, latent]` and
    /// conditioning vectors `[b, 11]`; dropout on when `rng` is given.
    pub fn forward(&self, z: &Tensor, c: &Tensor, rng: Option<&mut StdRng>) -> candle_core::Result<Tensor> {
        Ok(self.forward_with_ink_base(z, c, rng)?.0)
    }

    /// [`Generator::forward`], and what the ink term counts the ink above
    /// (`[b, 784]`): the pages under the drawings when the over-digits kind
    /// counts only the ink its pen adds (`added_ink_only`), else `None`
    /// (the ink term acts on the images themselves).
    pub(crate) fn forward_with_ink_base(
        &self,
        z: &Tensor,
        c: &Tensor,
        mut rng: Option<&mut StdRng>,
    ) -> candle_core::Result<(Tensor, Option<Tensor>)> {
        let b = z.dim(0)?;
        // the kinds that take digits: each row's digit (or page), drawn
        // first, and the pooled copy the layers see beside the condition
        let mut source = None;
        let with_source;
        let c = if self.config.kind.takes_digits() {
            let rows = c
                .to_dtype(candle_core::DType::F32)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            source = self.digits_for(&rows, rng.as_deref_mut())?;
            match &source {
                Some(src) => {
                    let wide = warp::condition_with_pooled(&rows, src);
                    let width = wide.len() / b;
                    with_source = Tensor::from_vec(wide, (b, width), c.device())?.to_dtype(c.dtype())?;
                    &with_source
                }
                None => c,
            }
        } else {
            c
        };
        let lrelu = |x: Tensor| x.maximum(&(&x * 0.2)?);
        let h = lrelu(self.fc1.dense(&Tensor::cat(&[z, c], 1)?)?)?; // [b, h1]
                                                                    // what every later layer sees besides its input: c, or z ++ c
        let zc = Tensor::cat(&[z, c], 1)?;
        let c = if self.config.latent_every_layer { &zc } else { c };
        let h = super::dropout(&h, self.config.dropout, rng.as_deref_mut())?;
        let h = lrelu(self.fc2.dense(&Tensor::cat(&[&h, c], 1)?)?)?; // [b, h2]
        let h = super::dropout(&h, self.config.dropout, rng)?;
        let hc = Tensor::cat(&[&h, c], 1)?;
        let px = match &self.head {
            Head::Pixels { fc7, fc14, up } => {
                let o7 = fc7.dense(&hc)?.matmul(&up[0].t()?)?; // [b, 49] -> [b, 784]
                let o14 = fc14.dense(&hc)?.matmul(&up[1].t()?)?; // [b, 196] -> [b, 784]
                sigmoid((o7 + o14)?)? // [b, 784]
            }
            Head::Strokes { pen, smooth } => {
                let drawn = self.draw_strokes(pen, smooth, &hc)?;
                match &source {
                    // over the pages: 1 - (1 - pen)(1 - page)
                    Some(page) => {
                        let page = Tensor::from_slice(page, (b, IMG_PIXELS), hc.device())?
                            .to_dtype(drawn.dtype())?;
                        let px = ((&drawn + &page)? - (&drawn * &page)?)?;
                        let base = self.config.ink_base(Some(page));
                        return Ok((px.reshape((b, IMG_SIDE, IMG_SIDE, 1))?, base));
                    }
                    None => drawn,
                }
            }
            Head::Warp { warp: layer, up, pen } => {
                let (dx, dy) = warp::fields(&layer.dense(&hc)?, up, self.config.warp_shift)?;
                let src = source.as_deref().unwrap_or_default();
                let bent = warp::warp_tensor(src, &dx, &dy)?;
                match pen {
                    None => bent,
                    Some((pen, smooth)) => {
                        let drawn = self.draw_strokes(pen, smooth, &hc)?;
                        let m = Tensor::from_vec(mixed_rows(b), (b, 1), hc.device())?.to_dtype(hc.dtype())?;
                        (drawn.broadcast_mul(&m)? + bent.broadcast_mul(&m.affine(-1.0, 1.0)?)?)?
                    }
                }
            }
        };
        Ok((px.reshape((b, IMG_SIDE, IMG_SIDE, 1))?, None)) // [b, 28, 28, 1]
    }

    /// The stroke head: the pen's drawings `[b, 784]` from the trunk's
    /// output `hc` (`[b, h2 + c]`).
    fn draw_strokes(&self, pen: &Layer, smooth: &Tensor, hc: &Tensor) -> candle_core::Result<Tensor> {
        let b = hc.dim(0)?;
        let (s, k) = (self.config.strokes, self.config.stroke_points);
        let o = pen.dense(hc)?.reshape((b, s, 2 * k + 1))?;
        // control points [b, s*k, 2], their mean moved to the page's
        // centre (as MNIST centres its digits), then [b*s, 2, k]
        let pts = (o.narrow(2, 0, 2 * k)?.contiguous()? * SPREAD)?.reshape((b, s * k, 2))?;
        let mut pts = pts.broadcast_sub(&pts.mean_keepdim(1)?)?;
        let cap = self.config.stroke_radius;
        if cap > 0.0 {
            // points farther out than `cap` (root mean square about
            // their mean) are shrunk to it
            let r = pts.sqr()?.sum_keepdim(2)?.mean_keepdim(1)?.sqrt()?; // [b, 1, 1]
            let shrink = (r.clamp(cap, f64::INFINITY)?.recip()? * cap)?;
            pts = pts.broadcast_mul(&shrink)?;
        }
        let pts = (pts + CENTRE)?;
        let pts = pts.reshape((b * s, k, 2))?.transpose(1, 2)?;
        // smoothed: [b*s, 2, k] @ [k, m] -> [b*s, 2, m] -> [b, s, 2m]
        let m = smooth.dim(0)?;
        let curve = pts
            .reshape((b * s * 2, k))?
            .matmul(&smooth.t()?)?
            .reshape((b * s, 2, m))?
            .transpose(1, 2)?
            .reshape((b, s, 2 * m))?;
        let (lo, hi) = self.config.half_width();
        let w = ((sigmoid(o.narrow(2, 2 * k, 1)?)? * (hi - lo))? + lo)?; // [b, s, 1]
        let params = Tensor::cat(&[&curve, &w], 2)?.reshape((b, s * (2 * m + 1)))?;
        draw_tensor(self.config.pen(), &params)
    }

    /// How many rows of a batch of `b` the pen-alone partner of a pair
    /// draws; `None` without one.
    pub fn pen_alone_rows(&self, b: usize) -> Option<usize> {
        self.pair.as_ref().map(|p| p.pen_rows(b))
    }

    /// Swaps the pen-alone partners of two pairs (so one of them restarts
    /// alone); nothing when either is one generator.
    pub fn swap_partner(&mut self, other: &mut Generator) {
        if let (Some(a), Some(b)) = (&mut self.pair, &mut other.pair) {
            std::mem::swap(&mut a.pen, &mut b.pen);
        }
    }

    /// Weights (and optimiser state) as named tensors; a pair's pen-alone
    /// partner's under its own prefix.
    pub fn tensors(&self) -> Result<HashMap<String, Tensor>> {
        let mut m = super::params_to_tensors(&self.params, &self.opt, "gen")?;
        if let Some(pair) = &self.pair {
            m.extend(
                pair.pen
                    .tensors()?
                    .into_iter()
                    .map(|(k, t)| (format!("{PARTNER}{k}"), t)),
            );
        }
        Ok(m)
    }

    /// Restores weights and optimiser state written by [`Generator::tensors`].
    pub fn load_tensors(&mut self, m: &HashMap<String, Tensor>, origin: &Path) -> Result<()> {
        super::params_from_tensors(&self.params, &mut self.opt, "gen", m, origin)?;
        if let Some(pair) = &mut self.pair {
            let own: HashMap<String, Tensor> = m
                .iter()
                .filter_map(|(k, t)| k.strip_prefix(PARTNER).map(|k| (k.to_string(), t.clone())))
                .collect();
            pair.pen.load_tensors(&own, origin)?;
        }
        Ok(())
    }

    /// The device.
    pub fn device(&self) -> &Device {
        &self.device
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;
    use rand::{Rng, SeedableRng};

    #[test]
    fn bilinear_up_sampling_preserves_constants_and_interpolates() {
        for s in [7, 14] {
            let m = bilinear_matrix(s);
            // rows sum to 1: a constant image stays constant
            for row in m.chunks(s * s) {
                assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            }
        }
        // 14 -> 28 doubles: output pixel (0, 0) comes from source (0, 0) only (clamped border)
        let m = bilinear_matrix(14);
        assert!((m[0] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn corner_cutting_keeps_the_ends_and_averages_the_control_points() {
        let (m, mat) = chaikin_matrix(5, SMOOTHING);
        assert_eq!(m, smoothed_points(5, SMOOTHING));
        assert_eq!(m, 14);
        for row in mat.chunks(5) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6, "{row:?}");
            assert!(row.iter().all(|&w| w >= 0.0));
        }
        assert_eq!(&mat[..5], &[1.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(&mat[(m - 1) * 5..], &[0.0, 0.0, 0.0, 0.0, 1.0]);
        // a straight, evenly spaced polygon stays on its line, in order
        let xs: Vec<f32> = mat
            .chunks(5)
            .map(|r| r.iter().enumerate().map(|(j, w)| w * j as f32).sum())
            .collect();
        assert!(xs.windows(2).all(|w| w[1] > w[0]), "{xs:?}");
        // no rounds: the polygon itself
        let (m, mat) = chaikin_matrix(5, 0);
        assert_eq!((m, smoothed_points(5, 0)), (5, 5));
        for (i, row) in mat.chunks(5).enumerate() {
            assert!(row
                .iter()
                .enumerate()
                .all(|(j, &w)| w == if i == j { 1.0 } else { 0.0 }));
        }
    }

    #[test]
    fn sharp_corners_ink_the_corner_that_smoothing_cuts() {
        // an L through pixel centres, sides of 20 pixels: down the left
        // side, then along the bottom; the corner in pixel (4, 24)
        let control = [
            (4.5f32, 4.5f32),
            (4.5, 14.5),
            (4.5, 24.5),
            (14.5, 24.5),
            (24.5, 24.5),
        ];
        let corner_ink = |sharp: bool| -> f32 {
            let cfg = GeneratorConfig {
                kind: GeneratorKind::Strokes,
                strokes: 1,
                sharp_corners: sharp,
                ..GeneratorConfig::default()
            };
            let (m, mat) = cfg.smoothing();
            let pen = cfg.pen();
            assert_eq!(pen.points, m);
            let mut p: Vec<f32> = mat
                .chunks(5)
                .flat_map(|row| {
                    let x: f32 = row.iter().zip(&control).map(|(w, c)| w * c.0).sum();
                    let y: f32 = row.iter().zip(&control).map(|(w, c)| w * c.1).sum();
                    [x, y]
                })
                .collect();
            p.push(1.2); // half-width
            let mut px = vec![0f32; IMG_PIXELS];
            super::super::strokes::draw(&pen, &p, &mut px);
            // both draw the far ends of the L alike
            assert!(
                px[8 * IMG_SIDE + 4] > 0.9 && px[24 * IMG_SIDE + 20] > 0.9,
                "sharp {sharp}"
            );
            px[24 * IMG_SIDE + 4]
        };
        let (sharp, smooth) = (corner_ink(true), corner_ink(false));
        assert!(
            sharp > 0.9 && smooth < 0.6,
            "corner pixel: sharp {sharp}, smoothed {smooth}"
        );
        // written only when on
        let on = GeneratorConfig {
            kind: GeneratorKind::Strokes,
            sharp_corners: true,
            ..GeneratorConfig::default()
        };
        let text = toml::to_string(&on).expect("toml");
        assert!(text.contains("sharp_corners = true"), "{text}");
        assert_eq!(toml::from_str::<GeneratorConfig>(&text).expect("read"), on);
        let off = toml::to_string(&GeneratorConfig::default()).expect("toml");
        assert!(!off.contains("sharp_corners"), "{off}");
    }

    #[test]
    fn page_keys_are_written_only_when_on_and_only_over_digits() {
        for key in ["turned_pages", "half_pages"] {
            let on = GeneratorConfig {
                kind: GeneratorKind::StrokesOverDigits,
                turned_pages: key == "turned_pages",
                half_pages: key == "half_pages",
                ..GeneratorConfig::default()
            };
            on.validate().expect("over digits");
            let text = toml::to_string(&on).expect("toml");
            assert!(text.contains(&format!("{key} = true")), "{text}");
            assert!(
                !text.contains(if key == "half_pages" {
                    "turned_pages"
                } else {
                    "half_pages"
                }),
                "{text}"
            );
            assert_eq!(toml::from_str::<GeneratorConfig>(&text).expect("read"), on);
            let err = GeneratorConfig {
                kind: GeneratorKind::Strokes,
                ..on.clone()
            }
            .validate()
            .expect_err("a pen alone has no pages");
            assert!(err.to_string().contains(key), "{err}");
            // the pen alone (the counterfeit check) takes no pages
            let alone = on.pen_alone();
            assert!(!alone.turned_pages && !alone.half_pages && alone.kind == GeneratorKind::Strokes);
            alone.validate().expect("pen alone");
        }
        let off = toml::to_string(&GeneratorConfig {
            kind: GeneratorKind::StrokesOverDigits,
            ..GeneratorConfig::default()
        })
        .expect("toml");
        assert!(!off.contains("pages"), "{off}");
    }

    #[test]
    fn the_pixel_kind_writes_no_new_keys_and_the_stroke_kind_round_trips() -> Result<()> {
        let text = toml::to_string(&GeneratorConfig::default()).map_err(|e| Error::Config(e.to_string()))?;
        assert!(!text.contains("kind") && !text.contains("stroke"), "{text}");
        let strokes = GeneratorConfig {
            kind: GeneratorKind::Strokes,
            strokes: 4,
            thinnest_stroke: 0.4,
            ..GeneratorConfig::default()
        };
        let text = toml::to_string(&strokes).map_err(|e| Error::Config(e.to_string()))?;
        assert!(
            text.contains("kind = \"strokes\"")
                && text.contains("strokes = 4")
                && text.contains("thinnest_stroke = 0.4"),
            "{text}"
        );
        let back: GeneratorConfig = toml::from_str(&text).map_err(|e| Error::Config(e.to_string()))?;
        assert_eq!(back, strokes);
        let bad = GeneratorConfig {
            stroke_points: 1,
            ..strokes.clone()
        };
        assert!(bad.validate().is_err());
        let bad = GeneratorConfig {
            stroke_radius: -1.0,
            ..strokes.clone()
        };
        assert!(bad.validate().is_err());
        // 700 strokes of 30 points: 700 x (2 x 114 + 1) = 160,300 parameters
        let bad = GeneratorConfig {
            strokes: 700,
            stroke_points: 30,
            ..strokes
        };
        let err = bad.validate().expect_err("too many pen parameters");
        assert!(err.to_string().contains("pen parameters"), "{err}");
        Ok(())
    }

    /// Digit `d` of the set: every pixel `10 * (d + 1)`.
    fn flat_digits() -> crate::data::Dataset {
        let mut digits = crate::data::Dataset::default();
        for d in 0..10u8 {
            digits.push(&[10 * (d + 1); IMG_PIXELS], d);
        }
        digits
    }

    /// `g`'s images of `(z, c)` without dropout, as plain values.
    fn pixels_without_dropout(g: &Generator, z: &Tensor, c: &Tensor) -> Result<Vec<f32>> {
        g.forward(z, c, None)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .op("forward")
    }

    /// Four latents and one-hot conditions: row `r` asks for digit `r`.
    fn asking_for_0_to_3(dev: &Device) -> Result<(Tensor, Tensor)> {
        let z = Tensor::randn(0f32, 1.0, (4, 100), dev).op("z")?;
        let mut c = vec![0f32; 4 * NUM_CLASSES];
        for (r, row) in c.chunks_mut(NUM_CLASSES).enumerate() {
            row[r] = 1.0;
        }
        Ok((z, Tensor::from_vec(c, (4, NUM_CLASSES), dev).op("c")?))
    }

    #[test]
    fn a_warp_generator_with_a_still_field_returns_its_source_digits() -> Result<()> {
        let dev = Device::Cpu;
        let cfg = GeneratorConfig {
            kind: GeneratorKind::Warp,
            warp_shift: 2.5,
            ..GeneratorConfig::default()
        };
        let text = toml::to_string(&cfg).map_err(|e| Error::Config(e.to_string()))?;
        assert!(
            text.contains("kind = \"warp\"") && text.contains("warp_shift = 2.5"),
            "{text}"
        );
        let bad = GeneratorConfig {
            warp_shift: 0.0,
            ..cfg.clone()
        };
        assert!(bad.validate().is_err(), "no shift");
        let digits = flat_digits();
        for kind in [GeneratorKind::Warp, GeneratorKind::StrokesAndWarp] {
            let mut rng = StdRng::seed_from_u64(1);
            let mut g = Generator::new(&GeneratorConfig { kind, ..cfg.clone() }, 1e-3, &mut rng, &dev)?;
            let (z, c) = asking_for_0_to_3(&dev)?;
            let err = g.forward(&z, &c, None).expect_err("no sources");
            assert!(err.to_string().contains("set_sources"), "{err}");
            g.give_sources(&digits)?;
            let px = g.forward(&z, &c, Some(&mut rng)).op("forward")?;
            assert_eq!(px.dims(), &[4, 28, 28, 1]);
            // a still field: zero head weights and bias
            let Head::Warp { warp: head, .. } = &g.head else {
                panic!("a warp head")
            };
            head.weight
                .set(&head.weight.zeros_like().op("zeros")?)
                .op("still")?;
            head.bias.set(&head.bias.zeros_like().op("zeros")?).op("still")?;
            let px = pixels_without_dropout(&g, &z, &c)?;
            let pen = match kind {
                GeneratorKind::StrokesAndWarp => mixed_rows(4),
                _ => vec![0.0; 4],
            };
            for (r, img) in px.chunks(IMG_PIXELS).enumerate() {
                // without rng, row r (asking for digit r) deforms the first digit r + 1
                let want = f32::from(10 * (r as u8 + 2)) / 255.0;
                let same = img.iter().all(|&v| (v - want).abs() < 1e-6);
                assert_eq!(same, pen[r] == 0.0, "{kind:?} row {r}: bent digit, or a drawing");
            }
        }
        Ok(())
    }

    #[test]
    fn a_drawing_over_a_digit_keeps_both_inks() {
        // 1 - (1 - a)(1 - b): either alone on a blank other, never darker than either
        assert_eq!(
            over_digit(&[0.0, 0.3, 0.5, 1.0], &[0.6, 0.0, 0.5, 0.2]),
            vec![0.6, 0.3, 0.75, 1.0]
        );
        // the pen-alone rows of a batch get a blank page, the others their digit
        let src: Vec<f32> = (0..4)
            .flat_map(|r| vec![0.1 * (r + 1) as f32; IMG_PIXELS])
            .collect();
        let p = pages(&src, 0.5);
        for (r, (page, over)) in p.chunks(IMG_PIXELS).zip(over_rows(4, 0.5)).enumerate() {
            let want = if over { 0.1 * (r + 1) as f32 } else { 0.0 };
            assert!(page.iter().all(|&v| v == want), "row {r}");
        }
        // the share, spread over each half; pairs on one kind of page; at
        // 0.5 the rows the two-headed kind bends
        for b in [2, 7, 64] {
            for share in [0.25, 0.5, 1.0] {
                let o = over_rows(b, share);
                let half = b - b / 2;
                for i in 0..b / 2 {
                    assert_eq!(o[i], o[half + i], "batch {b}, share {share}: pair {i}");
                }
                let n = o[..half].iter().filter(|&&v| v).count();
                assert_eq!(
                    n,
                    (half as f64 * share).floor() as usize,
                    "batch {b}, share {share}"
                );
            }
            let bent: Vec<bool> = mixed_rows(b).iter().map(|&v| v == 0.0).collect();
            assert_eq!(over_rows(b, 0.5), bent, "batch {b}");
        }
        assert_eq!(
            over_rows(8, 0.25),
            vec![false, false, false, true, false, false, false, true]
        );
        let bad = GeneratorConfig {
            over_digits_share: 0.0,
            ..GeneratorConfig::default()
        };
        assert!(bad.validate().is_err(), "no rows over digits");
        // the keys of the over-digits kind alone (the ink added to a page,
        // the batch terms per kind of row): refused on another kind,
        // written when on and read back, not written when off
        let off = toml::to_string(&GeneratorConfig::default()).expect("toml");
        type TurnOn = fn(&mut GeneratorConfig);
        let keys: [(&str, TurnOn); 3] = [
            ("added_ink_only", |c| c.added_ink_only = true),
            ("batch_terms_per_kind", |c| c.batch_terms_per_kind = true),
            ("two_generators", |c| c.two_generators = true),
        ];
        for (key, on) in keys {
            let mut cfg = GeneratorConfig::default();
            on(&mut cfg);
            assert!(cfg.validate().is_err(), "{key}: no pages, no such key");
            cfg.kind = GeneratorKind::StrokesOverDigits;
            cfg.validate().expect("over digits");
            let text = toml::to_string(&cfg).expect("toml");
            assert!(text.contains(&format!("{key} = true")), "{text}");
            let back: GeneratorConfig = toml::from_str(&text).expect("read back");
            assert_eq!(back, cfg);
            assert!(!off.contains(key), "not written when off: {off}");
        }
        // a pair needs pen-alone rows, and its batches are one kind each
        let pair = GeneratorConfig {
            kind: GeneratorKind::StrokesOverDigits,
            two_generators: true,
            ..GeneratorConfig::default()
        };
        for bad in [
            GeneratorConfig {
                over_digits_share: 1.0,
                ..pair.clone()
            },
            GeneratorConfig {
                batch_terms_per_kind: true,
                ..pair.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_pair_of_generators_is_a_generator_over_digits_with_a_pen_alone_partner() -> Result<()> {
        let dev = Device::Cpu;
        let cfg = GeneratorConfig::test_pair(0.25);
        let g = Generator::new(&cfg, 1e-3, &mut StdRng::seed_from_u64(3), &dev)?;
        // every row of its own over a digit; the partner draws with the pen alone
        assert_eq!(g.config, cfg.over_digits_alone());
        assert_eq!(g.config.over_digits_share, 1.0);
        let pair = g.pair.as_ref().expect("a partner");
        assert_eq!(pair.pen.config, cfg.pen_alone());
        assert_eq!(pair.pen.config.kind, GeneratorKind::Strokes);
        assert!(pair.pen.pair.is_none());
        // the rows one generator would leave to the pen alone: of 8 at a quarter, 6
        assert_eq!(g.pen_alone_rows(8), Some(6));
        assert_eq!(g.pen_alone_rows(64), Some(48));
        assert_eq!(pair.pen.pen_alone_rows(8), None);
        // the weights: the over-digits generator's first, then the partner's, from one stream
        let mut rng = StdRng::seed_from_u64(3);
        let over = Generator::new(&cfg.over_digits_alone(), 1e-3, &mut rng, &dev)?;
        let pen = Generator::new(&cfg.pen_alone(), 1e-3, &mut rng, &dev)?;
        let values = |g: &Generator| -> Result<Vec<Vec<f32>>> {
            g.params
                .iter()
                .map(|(_, v)| {
                    v.as_tensor()
                        .flatten_all()
                        .and_then(|t| t.to_vec1::<f32>())
                        .op("read")
                })
                .collect()
        };
        assert_eq!(values(&g)?, values(&over)?);
        assert_eq!(values(&pair.pen)?, values(&pen)?);
        // a checkpoint holds both, the partner's under its prefix, and restores both
        let saved = g.tensors()?;
        assert_eq!(saved.len(), over.tensors()?.len() + pen.tensors()?.len());
        assert!(saved.keys().any(|k| k.starts_with(PARTNER)));
        let mut other = Generator::new(&cfg, 1e-3, &mut StdRng::seed_from_u64(4), &dev)?;
        assert_ne!(values(&other)?, values(&g)?);
        other.load_tensors(&saved, Path::new("saved"))?;
        assert_eq!(values(&other)?, values(&g)?);
        let partner = |g: &Generator| g.pair.as_ref().map(|p| values(&p.pen)).transpose();
        assert_eq!(partner(&other)?, partner(&g)?);
        // one generator's checkpoint lacks the partner: an error, not half a pair
        assert!(other.load_tensors(&over.tensors()?, Path::new("one")).is_err());
        Ok(())
    }

    #[test]
    fn the_row_groups_are_the_pen_alone_rows_and_the_rows_over_digits() {
        let cfg = GeneratorConfig {
            kind: GeneratorKind::StrokesOverDigits,
            batch_terms_per_kind: true,
            ..GeneratorConfig::default()
        };
        // share 0.5: every other row of each half over a digit
        assert_eq!(cfg.row_groups(8), Some(vec![vec![0, 2, 4, 6], vec![1, 3, 5, 7]]));
        // every row over a digit: one group, the whole batch
        let all = GeneratorConfig {
            over_digits_share: 1.0,
            ..cfg.clone()
        };
        assert_eq!(all.row_groups(4), Some(vec![vec![0, 1, 2, 3]]));
        // a quarter: of 8 rows, 3 and 7 over digits; of 4, none (one group)
        let quarter = GeneratorConfig {
            over_digits_share: 0.25,
            ..cfg.clone()
        };
        assert_eq!(
            quarter.row_groups(8),
            Some(vec![vec![0, 1, 2, 4, 5, 6], vec![3, 7]])
        );
        assert_eq!(quarter.row_groups(4), Some(vec![vec![0, 1, 2, 3]]));
        // off, or another kind: the whole batch, as the seed
        let pen = GeneratorConfig {
            kind: GeneratorKind::Strokes,
            ..cfg.clone()
        };
        assert_eq!(pen.row_groups(8), None);
        let off = GeneratorConfig {
            batch_terms_per_kind: false,
            ..cfg
        };
        assert_eq!(off.row_groups(8), None);
    }

    #[test]
    fn the_pen_alone_of_an_over_digits_generator_is_a_valid_stroke_generator() {
        let over = GeneratorConfig {
            kind: GeneratorKind::StrokesOverDigits,
            added_ink_only: true,
            batch_terms_per_kind: true,
            over_digits_share: 0.25,
            strokes: 4,
            ..GeneratorConfig::default()
        };
        over.validate().expect("over digits");
        let pen = over.pen_alone();
        pen.validate().expect("a stroke generator");
        assert_eq!(
            pen,
            GeneratorConfig {
                kind: GeneratorKind::Strokes,
                added_ink_only: false,
                batch_terms_per_kind: false,
                ..over.clone()
            }
        );
        // the ink term's base: the pages only with the added ink counted
        assert_eq!(over.ink_base(Some(3)), Some(3));
        assert_eq!(pen.ink_base(Some(3)), None);
        // any other kind as it is
        for kind in [GeneratorKind::Pixels, GeneratorKind::Strokes, GeneratorKind::Warp] {
            let cfg = GeneratorConfig {
                kind,
                ..GeneratorConfig::default()
            };
            assert_eq!(cfg.pen_alone(), cfg);
        }
    }

    #[test]
    fn the_over_digits_kind_draws_over_the_digits_of_half_the_rows() -> Result<()> {
        let dev = Device::Cpu;
        let cfg = GeneratorConfig {
            kind: GeneratorKind::StrokesOverDigits,
            ..GeneratorConfig::default()
        };
        let text = toml::to_string(&cfg).map_err(|e| Error::Config(e.to_string()))?;
        assert!(text.contains("kind = \"strokes-over-digits\""), "{text}");
        let back: GeneratorConfig = toml::from_str(&text).map_err(|e| Error::Config(e.to_string()))?;
        assert_eq!(back, cfg);
        // the layers see the condition and the pooled page
        let fc1 = &cfg.param_shapes()[0].1;
        assert_eq!(fc1[1], 100 + NUM_CLASSES + warp::POOLED_SIDE * warp::POOLED_SIDE);
        let digits = flat_digits();
        let mut rng = StdRng::seed_from_u64(1);
        let mut g = Generator::new(&cfg, 1e-3, &mut rng, &dev)?;
        let (z, c) = asking_for_0_to_3(&dev)?;
        let err = g.forward(&z, &c, None).expect_err("no sources");
        assert!(err.to_string().contains("set_sources"), "{err}");
        let mut one = crate::data::Dataset::default();
        one.push(&[9; IMG_PIXELS], 0);
        assert!(g.give_sources(&one).is_err(), "digits of every class");
        g.give_sources(&digits)?;
        let px = pixels_without_dropout(&g, &z, &c)?;
        for (r, (img, over)) in px.chunks(IMG_PIXELS).zip(over_rows(4, 0.5)).enumerate() {
            // without rng, row r (asking for digit r) is drawn over the first digit r + 1
            let page = f32::from(10 * (r as u8 + 2)) / 255.0;
            let under = img.iter().filter(|&&v| v < page - 1e-6).count();
            if !over {
                assert!(
                    under > IMG_PIXELS / 4,
                    "row {r}: a drawing on a blank page ({under} light pixels)"
                );
            } else {
                assert_eq!(under, 0, "row {r}: the digit's ink everywhere under the drawing");
                assert!(
                    img.iter().any(|&v| v > page + 0.1),
                    "row {r}: and the drawing on it"
                );
            }
        }
        Ok(())
    }

    #[test]
    fn the_two_headed_kind_draws_half_the_rows_and_keeps_pairs_together() {
        for b in [2, 7, 64] {
            let m = mixed_rows(b);
            let half = b - b / 2;
            for i in 0..b / 2 {
                assert_eq!(m[i], m[half + i], "batch {b}: pair {i}");
            }
            let drawn = m.iter().filter(|&&v| v == 1.0).count();
            assert!(drawn.abs_diff(b - drawn) <= 2, "batch {b}: {drawn} drawn");
        }
        assert_eq!(mixed_rows(4), vec![1.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn stroke_drawings_are_centred_and_the_radius_cap_shrinks_them() -> Result<()> {
        let dev = Device::Cpu;
        // ink-weighted centre and root-mean-square radius of a batch's images
        let spread = |radius: f64| -> Result<((f32, f32), f32)> {
            let cfg = GeneratorConfig {
                kind: GeneratorKind::Strokes,
                stroke_radius: radius,
                ..GeneratorConfig::default()
            };
            // the same seed: the same weights and latents for both configs
            let mut rng = StdRng::seed_from_u64(9);
            let g = Generator::new(&cfg, 1e-3, &mut rng, &dev)?;
            let z: Vec<f32> = (0..16 * 100)
                .map(|i| ((i * 37 % 29) as f32 - 14.0) / 7.0)
                .collect();
            let z = Tensor::from_vec(z, (16, 100), &dev).op("z")?;
            let c = Tensor::zeros((16, NUM_CLASSES), DType::F32, &dev).op("c")?;
            let px = g.forward(&z, &c, None).op("forward")?;
            let v = px.flatten_all().and_then(|t| t.to_vec1::<f32>()).op("read")?;
            let (mut m, mut cx, mut cy) = (0f32, 0f32, 0f32);
            for (i, &p) in v.iter().enumerate() {
                let q = i % IMG_PIXELS;
                m += p;
                cx += p * ((q % IMG_SIDE) as f32 + 0.5);
                cy += p * ((q / IMG_SIDE) as f32 + 0.5);
            }
            let (cx, cy) = (cx / m, cy / m);
            let r2: f32 = v
                .iter()
                .enumerate()
                .map(|(i, &p)| {
                    let q = i % IMG_PIXELS;
                    let (x, y) = ((q % IMG_SIDE) as f32 + 0.5 - cx, (q / IMG_SIDE) as f32 + 0.5 - cy);
                    p * (x * x + y * y)
                })
                .sum();
            Ok(((cx, cy), (r2 / m).sqrt()))
        };
        let ((cx, cy), free) = spread(0.0)?;
        assert!(
            (cx - 14.0).abs() < 2.0 && (cy - 14.0).abs() < 2.0,
            "centre ({cx}, {cy})"
        );
        let (_, capped) = spread(3.0)?;
        assert!(
            capped < 0.8 * free,
            "radius {capped} with the cap, {free} without"
        );
        Ok(())
    }

    #[test]
    fn a_thinner_pen_draws_every_drawing_with_less_ink_on_both_paths() -> Result<()> {
        let dev = Device::Cpu;
        // ink of each image of a batch, same seed (weights, latents) for
        // every config; radius 0 runs the CPU path, a cap too wide to
        // shrink anything the graph path
        let ink = |thinnest: f64, radius: f64| -> Result<Vec<f32>> {
            let cfg = GeneratorConfig {
                kind: GeneratorKind::Strokes,
                thinnest_stroke: thinnest,
                stroke_radius: radius,
                ..GeneratorConfig::default()
            };
            cfg.validate()?;
            let mut rng = StdRng::seed_from_u64(4);
            let g = Generator::new(&cfg, 1e-3, &mut rng, &dev)?;
            assert_eq!(g.has_cpu_path(), radius == 0.0);
            let mut zr = StdRng::seed_from_u64(5);
            let z: Vec<f32> = (0..8 * 100).map(|_| zr.random_range(-2f32..2.0)).collect();
            let z = Tensor::from_vec(z, (8, 100), &dev).op("z")?;
            let c = Tensor::zeros((8, NUM_CLASSES), DType::F32, &dev).op("c")?;
            let px = g.forward(&z, &c, None).op("forward")?;
            let v = px
                .flatten_from(1)
                .and_then(|t| t.sum(1))
                .and_then(|t| t.to_vec1::<f32>())
                .op("read")?;
            Ok(v)
        };
        for radius in [0.0, 1000.0] {
            let (wide, thin) = (ink(0.8, radius)?, ink(0.3, radius)?);
            assert_eq!(wide.len(), 8);
            for (w, t) in wide.iter().zip(&thin) {
                assert!(
                    *t > 0.0 && t < w,
                    "radius cap {radius}: ink {t} thin, {w} default"
                );
            }
        }
        // out of range, or on a kind without a pen
        for (kind, thinnest) in [
            (GeneratorKind::Strokes, 0.0),
            (GeneratorKind::Strokes, 1.7),
            (GeneratorKind::Strokes, f64::NAN),
            (GeneratorKind::Pixels, 0.4),
            (GeneratorKind::Warp, 0.4),
        ] {
            let cfg = GeneratorConfig {
                kind,
                thinnest_stroke: thinnest,
                ..GeneratorConfig::default()
            };
            let e = cfg.validate().expect_err("refused").to_string();
            assert!(e.contains("thinnest_stroke"), "{e}");
        }
        Ok(())
    }

    #[test]
    fn output_is_an_image_batch_in_the_unit_interval() -> Result<()> {
        let dev = Device::Cpu;
        let mut rng = StdRng::seed_from_u64(1);
        let g = Generator::new(&GeneratorConfig::default(), 1e-3, &mut rng, &dev)?;
        let z = Tensor::randn(0f32, 1.0, (3, 100), &dev).op("z")?;
        let c = Tensor::zeros((3, NUM_CLASSES), DType::F32, &dev).op("c")?;
        let px = g.forward(&z, &c, Some(&mut rng)).op("forward")?;
        assert_eq!(px.dims(), &[3, 28, 28, 1]);
        let v = px.flatten_all().and_then(|t| t.to_vec1::<f32>()).op("read")?;
        assert!(v.iter().all(|p| (0.0..=1.0).contains(p)));
        // model space is the real-input normalisation
        let m = to_model_space(&px)
            .op("norm")?
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .op("r")?;
        assert!((m[0] - input::normalize_unit(v[0])).abs() < 1e-6);
        Ok(())
    }
}
