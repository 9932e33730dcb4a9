//! The inversion loss and one generator step against a frozen classifier.
//!
//! `L = alpha*KL(P || Q) + beta*CE(Q, y) + gamma*L_cos + delta*L_ortho` where
//! `P` is the conditioning distribution, `Q` the classifier's softmax on the
//! generated batch, `y = argmax P`, `L_cos` the mean pairwise cosine similarity
//! (`i != j`) of the classifier's penultimate features, and
//! `L_ortho = ||G - I||_F^2 / N^2` with `G` the Gram matrix of the
//! L2-normalised features. Each term is a batch mean.
//!
//! With `mode_seeking > 0` a fifth term keeps the generator from collapsing
//! (MSGAN, Mao et al. 2019): the batch is drawn in pairs that share their
//! condition and differ in their latent, and
//! `L_ms = mean over pairs of 1 / (d(x1, x2) / d(z1, z2) + eps)` with `d` the
//! mean absolute difference (pixels on the `[0, 1]` scale, latents as drawn).
//! A generator that ignores its latent has `d(x1, x2) ~ 0`, where this term
//! and its gradient are largest.
//!
//! With `ink > 0` a sixth term keeps the samples in MNIST's ink regime (pen
//! strokes on a dark page, not bright clutter):
//! `L_ink = mean over images of max(0, ink(x) - MEAN)` with `ink(x)` the
//! image's mean pixel value on the `[0, 1]` scale and `MEAN` MNIST's own
//! (0.1307). Without it the generator fools the classifier with images
//! half-covered in ink, a region no camera over paper shows.
//!
//! With `typicality > 0` a seventh term keeps the search away from where
//! real digits sit in the classifier's features (a negative weight pulls
//! toward them): `L_typ = mean over images of cos(f, a_y)`, `f` an image's
//! penultimate features and `a_y` the mean direction of real training
//! digits' features of its asked digit ([`class_anchors`], measured by the
//! caller with the frozen classifier).

use super::generator::{is_zero, over_digit, to_model_space, Generator, GeneratorConfig};
use super::{cpu, warp, Classifier};
use crate::error::{Result, TensorContext};
use candle_core::{Device, Tensor, Var};
use ood_core::{input, NUM_CLASSES, NUM_DIGITS};
use rand::rngs::StdRng;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

/// Weights of the four loss terms (seed: 500, 500, 6000, 10).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LossWeights {
    /// KL(P || Q).
    pub alpha: f64,
    /// CE(Q, y).
    pub beta: f64,
    /// Mean pairwise cosine similarity of features.
    pub gamma: f64,
    /// Feature orthogonality.
    pub delta: f64,
    /// Mode seeking over pairs of latents under one condition (0: off, the seed).
    pub mode_seeking: f64,
    /// Ink above MNIST's mean pixel value (0: off, the seed).
    #[serde(default)]
    pub ink: f64,
    /// Feature cosine to real digits of the asked digit ([`typicality_term`];
    /// 0: off, the seed; negative: a pull toward them).
    #[serde(default)]
    pub typicality: f64,
}

impl LossWeights {
    /// Whether generator batches are drawn in condition-sharing pairs (the
    /// mode-seeking term is on).
    pub fn paired(&self) -> bool {
        self.mode_seeking > 0.0
    }
}

/// The value of each term (unweighted) and the weighted total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LossParts {
    /// KL(P || Q).
    pub kl: f64,
    /// CE(Q, y).
    pub ce: f64,
    /// Mean pairwise cosine similarity.
    pub cos: f64,
    /// ||G - I||^2 / N^2.
    pub ortho: f64,
    /// The mode-seeking term (0 when off).
    #[serde(default)]
    pub ms: f64,
    /// The ink term (0 when off).
    #[serde(default)]
    pub ink: f64,
    /// The typicality term (0 when off; not written then).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub typ: f64,
    /// Weighted sum.
    pub total: f64,
}

impl LossParts {
    /// The mean of the parts of `a` batches of `self` and `b` of `other`,
    /// weighted by those counts (`self` when both are 0).
    pub fn mix(&self, a: usize, other: &Self, b: usize) -> Self {
        let n = (a + b) as f64;
        if n == 0.0 {
            return *self;
        }
        let (wa, wb) = (a as f64 / n, b as f64 / n);
        self.zip_with(other, |x, y| wa * x + wb * y)
    }

    /// `f` of each part of `self` and the same part of `other`.
    pub fn zip_with(&self, other: &Self, f: impl Fn(f64, f64) -> f64) -> Self {
        Self {
            kl: f(self.kl, other.kl),
            ce: f(self.ce, other.ce),
            cos: f(self.cos, other.cos),
            ortho: f(self.ortho, other.ortho),
            ms: f(self.ms, other.ms),
            ink: f(self.ink, other.ink),
            typ: f(self.typ, other.typ),
            total: f(self.total, other.total),
        }
    }
}

/// Smallest probability used inside logarithms.
const P_FLOOR: f64 = 1e-12;
/// Added to feature norms so all-zero (dead ReLU) rows stay finite.
const NORM_EPS: f64 = 1e-8;
/// MSGAN's `eps` in `1 / (ratio + eps)`.
const MS_EPS: f64 = 1e-5;

/// Rows of a batch of `n` that form mode-seeking pairs: row `i` and row
/// `pair_offset(n) + i` for `i < n / 2` (an odd last row has no partner).
pub fn pair_offset(n: usize) -> usize {
    n - n / 2
}

/// The mode-seeking term of a paired batch: pixels `[n, ...]` (any shape
/// after the first dimension) and latents `[n, latent]`, pairs as in
/// [`pair_offset`]. `0` for fewer than two rows.
pub fn mode_seeking_term(px: &Tensor, z: &Tensor) -> candle_core::Result<Tensor> {
    let n = px.dim(0)?;
    let h = n / 2;
    if h == 0 {
        return Tensor::zeros((), px.dtype(), px.device());
    }
    let o = pair_offset(n);
    let x = px.flatten_from(1)?;
    let mean_abs = |t: &Tensor| -> candle_core::Result<Tensor> {
        (t.narrow(0, 0, h)? - t.narrow(0, o, h)?)?.abs()?.mean(1)
    };
    let ratio = (mean_abs(&x)? / mean_abs(&z.to_dtype(px.dtype())?)?)?; // [h]
    (ratio + MS_EPS)?.recip()?.mean_all()
}

/// The ink term of pixels `[n, ...]` on the `[0, 1]` scale: the mean over
/// images of how far each image's mean pixel value lies above MNIST's
/// ([`input::MEAN`]); `0` for images with no more ink than that.
pub fn ink_term(px: &Tensor) -> candle_core::Result<Tensor> {
    let ink = px.flatten_from(1)?.mean(1)?; // [n]
    (ink - f64::from(input::MEAN))?.relu()?.mean_all()
}

/// The Gram matrix of L2-normalised rows of `feats` `[n, d]` -> `[n, n]`.
fn gram(feats: &Tensor) -> candle_core::Result<Tensor> {
    let norm = (feats.sqr()?.sum_keepdim(1)?.sqrt()? + NORM_EPS)?; // [n, 1]
    let f = feats.broadcast_div(&norm)?; // [n, d]
    f.matmul(&f.t()?) // [n, n]
}

/// The seed's batch terms of features `[n, d]`: their mean pairwise cosine
/// similarity and the orthogonality `||G - I||^2 / n^2`.
fn batch_terms(feats: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
    let n = feats.dim(0)?;
    let g = gram(feats)?;
    let eye = Tensor::eye(n, g.dtype(), g.device())?;
    let diag_sum = g.mul(&eye)?.sum_all()?;
    let pairs = (n * n.saturating_sub(1)).max(1) as f64;
    let cos = ((g.sum_all()? - diag_sum)? / pairs)?;
    let ortho = ((g - eye)?.sqr()?.sum_all()? / (n * n) as f64)?;
    Ok((cos, ortho))
}

/// The seed's batch terms (cosine and orthogonality) within each group of
/// rows (row indices into `feats`), averaged over the groups; over the
/// whole batch for `None` (the seed).
pub fn grouped_batch_terms(
    feats: &Tensor,
    groups: Option<&[Vec<u32>]>,
) -> candle_core::Result<(Tensor, Tensor)> {
    let groups = match groups {
        Some(g) if !g.is_empty() => g,
        _ => return batch_terms(feats),
    };
    let mut sums: Option<(Tensor, Tensor)> = None;
    for rows in groups {
        let idx = Tensor::new(rows.as_slice(), feats.device())?;
        let (c, o) = batch_terms(&feats.index_select(&idx, 0)?)?;
        sums = Some(match sums {
            None => (c, o),
            Some((sc, so)) => ((sc + c)?, (so + o)?),
        });
    }
    let (c, o) = sums.expect("at least one group");
    let k = groups.len() as f64;
    Ok(((c / k)?, (o / k)?))
}

/// All four terms as tensors (for backprop) in the order kl, ce, cos, ortho;
/// the batch terms within `groups` ([`grouped_batch_terms`]).
pub fn loss_terms(
    logits: &Tensor,
    feats: &Tensor,
    p: &Tensor,
    y: &Tensor,
    groups: Option<&[Vec<u32>]>,
) -> candle_core::Result<[Tensor; 4]> {
    let n = logits.dim(0)?;
    let logq = candle_nn::ops::log_softmax(logits, 1)?; // [n, k]
    let plogp = (p * p.clamp(P_FLOOR, 1.0)?.log()?)?; // 0 log 0 = 0
    let kl = ((plogp - (p * &logq)?)?.sum_all()? / n as f64)?;
    let ce = (logq.gather(&y.unsqueeze(1)?, 1)?.sum_all()?.neg()? / n as f64)?;
    let (cos, ortho) = grouped_batch_terms(feats, groups)?;
    Ok([kl, ce, cos, ortho])
}

/// The weighted inversion loss and its parts; the batch terms within
/// `groups` (`None`: the whole batch).
pub fn inversion_loss(
    logits: &Tensor,
    feats: &Tensor,
    p: &Tensor,
    y: &Tensor,
    w: &LossWeights,
    groups: Option<&[Vec<u32>]>,
) -> candle_core::Result<(Tensor, LossParts)> {
    let [kl, ce, cos, ortho] = loss_terms(logits, feats, p, y, groups)?;
    let total = ((((&kl * w.alpha)? + (&ce * w.beta)?)? + (&cos * w.gamma)?)? + (&ortho * w.delta)?)?;
    let v = |t: &Tensor| t.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>();
    let parts = LossParts {
        kl: v(&kl)?,
        ce: v(&ce)?,
        cos: v(&cos)?,
        ortho: v(&ortho)?,
        ms: 0.0,
        ink: 0.0,
        typ: 0.0,
        total: v(&total)?,
    };
    Ok((total, parts))
}

/// The typicality term of features `feats` (`[n, d]`) asked for digits `y`
/// (`[n]`): the mean over rows of the cosine between a row and its digit's
/// anchor (`anchors`, `[10, d]`: the mean direction of real training digits'
/// features, [`class_anchors`]). Counterfeits that sit where real digits of
/// their digit sit score near 1; a term that lowers it sends the search to
/// inputs the classifier trusts for other reasons than a digit's shape.
pub fn typicality_term(feats: &Tensor, y: &Tensor, anchors: &Tensor) -> candle_core::Result<Tensor> {
    let norm = (feats.sqr()?.sum_keepdim(1)?.sqrt()? + NORM_EPS)?; // [n, 1]
    let f = feats.broadcast_div(&norm)?;
    let a = anchors.index_select(y, 0)?; // [n, d]
    (f * a)?.sum(1)?.mean_all()
}

/// Each digit's anchor from features `feats` (`[n, hidden]`, row-major) of
/// real digits labelled `labels`: the L2-normalised mean of their
/// L2-normalised rows, `[10 * hidden]` row-major; zeros for a digit with
/// no rows (its term is then 0).
pub fn class_anchors(feats: &[f32], labels: &[u8], hidden: usize) -> Vec<f32> {
    let mut sum = vec![0f64; NUM_DIGITS * hidden];
    for (row, &l) in feats.chunks_exact(hidden).zip(labels) {
        let Some(acc) = sum.chunks_exact_mut(hidden).nth(usize::from(l)) else {
            continue;
        };
        let norm = row.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt() + NORM_EPS;
        for (a, &v) in acc.iter_mut().zip(row) {
            *a += f64::from(v) / norm;
        }
    }
    let mut out = Vec::with_capacity(sum.len());
    for acc in sum.chunks_exact(hidden) {
        let norm = acc.iter().map(|v| v * v).sum::<f64>().sqrt();
        let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
        out.extend(acc.iter().map(|&v| (v * scale) as f32));
    }
    out
}

/// Adds the weighted typicality term of `(feats, y)` against `anchors` to
/// `(loss, parts)` when its weight is not 0 and the anchors are given.
fn with_typicality(
    (loss, mut parts): (Tensor, LossParts),
    feats: &Tensor,
    y: &Tensor,
    anchors: Option<&Tensor>,
    w: &LossWeights,
) -> candle_core::Result<(Tensor, LossParts)> {
    let Some(anchors) = anchors.filter(|_| w.typicality != 0.0) else {
        return Ok((loss, parts));
    };
    let typ = typicality_term(feats, y, &anchors.to_dtype(feats.dtype())?)?;
    let loss = (loss + (&typ * w.typicality)?)?;
    parts.typ = typ.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
    parts.total += w.typicality * parts.typ;
    Ok((loss, parts))
}

/// Adds the weighted terms that act on the pixels themselves (mode seeking
/// of `(px, z)`, ink of `px`, or with `ink_base` of the ink above it:
/// `px - ink_base`, [`GeneratorConfig::ink_base`]) to `(loss, parts)`, each
/// when its weight is on.
fn with_pixel_terms(
    (mut loss, mut parts): (Tensor, LossParts),
    px: &Tensor,
    ink_base: Option<&Tensor>,
    z: &Tensor,
    w: &LossWeights,
) -> candle_core::Result<(Tensor, LossParts)> {
    let scalar = |t: &Tensor| t.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>();
    if w.paired() {
        let ms = mode_seeking_term(px, z)?;
        loss = (loss + (&ms * w.mode_seeking)?.to_dtype(px.dtype())?)?;
        parts.ms = scalar(&ms)?;
        parts.total += w.mode_seeking * parts.ms;
    }
    if w.ink > 0.0 {
        let ink = match ink_base {
            Some(base) => ink_term(&(px.flatten_from(1)? - base)?)?,
            None => ink_term(px)?,
        };
        loss = (loss + (&ink * w.ink)?.to_dtype(px.dtype())?)?;
        parts.ink = scalar(&ink)?;
        parts.total += w.ink * parts.ink;
    }
    Ok((loss, parts))
}

/// [`sample_conditions`] for a generator batch: with `paired`, the rows from
/// [`pair_offset`] on repeat the first rows' conditions, so each pair differs
/// only in its latent (drawn afterwards for all `n` rows).
pub fn batch_conditions(
    n: usize,
    paired: bool,
    two_digit_share: f64,
    rng: &mut StdRng,
) -> (Vec<f32>, Vec<u32>) {
    if !paired {
        return sample_conditions(n, two_digit_share, rng);
    }
    let (mut p, mut y) = sample_conditions(pair_offset(n), two_digit_share, rng);
    let h = n / 2;
    p.extend_from_within(..h * NUM_CLASSES);
    y.extend_from_within(..h);
    (p, y)
}

/// Samples `n` conditioning distributions over the 11 classes and their
/// labels: `y` uniform over the digits, `P = softmax(r)` over the digits with
/// `r_i ~ N(0, 1)` and `r_y += 5` (so `P_y` is about 0.9 and the rest is spread
/// randomly), `P_garbage = 0`. A `two_digit_share` of the rows also asks for
/// a second digit `y2 != y` (uniform among the other nine), with
/// `r_y2 += `[`SECOND_DIGIT_BOOST`] (`P_y` about 0.7, `P_y2` about 0.25 on
/// average); `y` stays the argmax. With a share of 0 nothing more is drawn
/// from `rng` than without the option. Returns row-major `[n, 11]` and `[n]`.
pub fn sample_conditions(n: usize, two_digit_share: f64, rng: &mut StdRng) -> (Vec<f32>, Vec<u32>) {
    let mut p = vec![0f32; n * NUM_CLASSES];
    let mut y = Vec::with_capacity(n);
    for row in p.chunks_mut(NUM_CLASSES) {
        let label = rng.random_range(0..NUM_DIGITS);
        let second = (two_digit_share > 0.0 && rng.random::<f64>() < two_digit_share)
            .then(|| (label + rng.random_range(1..NUM_DIGITS)) % NUM_DIGITS);
        let mut r = [0f32; NUM_DIGITS];
        for v in r.iter_mut() {
            *v = StandardNormal.sample(rng);
        }
        r[label] += 5.0;
        if let Some(s) = second {
            r[s] += SECOND_DIGIT_BOOST;
        }
        let mut q = [0f32; NUM_DIGITS];
        ood_core::softmax(&r, &mut q);
        let best = ood_core::score::argmax(&q);
        q.swap(best, label); // keep argmax P = y
        row[..NUM_DIGITS].copy_from_slice(&q);
        y.push(label as u32);
    }
    (p, y)
}

/// What a two-digit condition adds to its second digit's logit (the asked
/// digit gets 5): [`sample_conditions`].
pub const SECOND_DIGIT_BOOST: f32 = 4.5;

/// Latent vectors `[n, latent]` of standard normals.
pub fn sample_latent(n: usize, latent: usize, rng: &mut StdRng) -> Vec<f32> {
    (0..n * latent).map(|_| StandardNormal.sample(rng)).collect()
}

fn cond_tensors(
    n: usize,
    latent: usize,
    paired: bool,
    two_digit_share: f64,
    rng: &mut StdRng,
    dev: &Device,
) -> Result<(Tensor, Tensor, Tensor)> {
    let (p, y) = batch_conditions(n, paired, two_digit_share, rng);
    let z = Tensor::from_vec(sample_latent(n, latent, rng), (n, latent), dev).op("latent")?;
    let p = Tensor::from_vec(p, (n, NUM_CLASSES), dev).op("conditions")?;
    let y = Tensor::from_vec(y, n, dev).op("labels")?;
    Ok((z, p, y))
}

/// What a generator step asks of its batch beside the loss weights.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ask<'a> {
    /// Share of conditions that ask for two digits ([`sample_conditions`]).
    pub two_digit_share: f64,
    /// The typicality term's anchors (`[10, hidden]`, [`class_anchors`]);
    /// without them the term is off whatever its weight.
    pub anchors: Option<&'a Tensor>,
}

impl<'a> Ask<'a> {
    /// One-digit conditions, the typicality term against `anchors`.
    pub fn anchored(anchors: &'a Tensor) -> Self {
        Self {
            two_digit_share: 0.0,
            anchors: Some(anchors),
        }
    }
}

/// One generator update against the frozen `classifier` (eval mode, its
/// weights detached from the graph), on conditions drawn with
/// `ask.two_digit_share` ([`sample_conditions`]), the typicality term
/// against `ask.anchors` when given and weighted. Returns the loss parts. A
/// pair of generators (`two_generators`) shares the batch: the pen-alone
/// partner steps on its rows first, then this generator on the rest, each
/// on its own loss; the parts are their mean weighted by rows.
pub fn generator_step(
    gen: &mut Generator,
    classifier: &Classifier,
    batch: usize,
    w: &LossWeights,
    ask: Ask<'_>,
    rng: &mut StdRng,
) -> Result<LossParts> {
    let Some(pair) = gen.pair.as_mut() else {
        return one_generator_step(gen, classifier, batch, w, ask, rng);
    };
    let k = pair.pen_rows(batch);
    let pen = one_generator_step(&mut pair.pen, classifier, k, w, ask, rng)?;
    let over = one_generator_step(gen, classifier, batch - k, w, ask, rng)?;
    Ok(pen.mix(k, &over, batch - k))
}

/// [`generator_step`] for one generator (a pair's partner not included).
fn one_generator_step(
    gen: &mut Generator,
    classifier: &Classifier,
    batch: usize,
    w: &LossWeights,
    ask: Ask<'_>,
    rng: &mut StdRng,
) -> Result<LossParts> {
    if classifier.uses_cpu_path() && gen.has_cpu_path() {
        let (parts, grads) = cpu_generator_grads(gen, classifier, batch, w, ask, rng)?;
        gen.optimizer().step_values(&grads).op("generator update")?;
        return Ok(parts);
    }
    if classifier.uses_cpu_path() && gen.device().is_cpu() {
        let (parts, grads) = hybrid_generator_grads(gen, classifier, batch, w, ask, rng)?;
        gen.optimizer().step_grads(&grads).op("generator update")?;
        return Ok(parts);
    }
    let Drawn {
        z,
        p,
        y,
        px,
        ink_base,
    } = draw(gen, batch, w, ask, rng)?;
    let x = to_model_space(&px).op("normalise generated")?;
    let (logits, feats) = classifier.forward_frozen(&x).op("frozen classifier forward")?;
    let groups = gen.config.row_groups(batch);
    let (loss, parts) = inversion_loss(&logits, &feats, &p, &y, w, groups.as_deref())
        .and_then(|lp| with_typicality(lp, &feats, &y, ask.anchors, w))
        .and_then(|lp| with_pixel_terms(lp, &px, ink_base.as_ref(), &z, w))
        .op("inversion loss")?;
    let grads = loss.backward().op("inversion backward")?;
    gen.optimizer().step_grads(&grads).op("generator update")?;
    Ok(parts)
}

/// A batch drawn by a generator as a candle graph: latents, conditions,
/// labels, pixels and the pages under them (the over-digits kind's ink base).
struct Drawn {
    z: Tensor,
    p: Tensor,
    y: Tensor,
    px: Tensor,
    ink_base: Option<Tensor>,
}

/// Draws a batch of `batch` on the generator's device: conditions (paired
/// as `w` asks, two-digit as `ask` asks) and latents, then the forward pass
/// with its own draws from `rng` (the graph paths' shared first half).
fn draw(gen: &Generator, batch: usize, w: &LossWeights, ask: Ask<'_>, rng: &mut StdRng) -> Result<Drawn> {
    let dev = gen.device().clone();
    let (z, p, y) = cond_tensors(
        batch,
        gen.config.latent,
        w.paired(),
        ask.two_digit_share,
        rng,
        &dev,
    )?;
    let (px, ink_base) = gen
        .forward_with_ink_base(&z, &p, Some(rng))
        .op("generator forward")?;
    Ok(Drawn {
        z,
        p,
        y,
        px,
        ink_base,
    })
}

/// [`generator_step`] on the hand-written CPU path, without the update:
/// the loss parts and the generator's gradients. The same draws from `rng`
/// and the same maths; only the losses (on the `[b, 11]` logits and
/// `[b, hidden]` features; the pixel terms on the pixels) run as small
/// candle graphs.
fn cpu_generator_grads(
    gen: &mut Generator,
    classifier: &Classifier,
    batch: usize,
    w: &LossWeights,
    ask: Ask<'_>,
    rng: &mut StdRng,
) -> Result<(LossParts, Vec<Vec<f32>>)> {
    let dev = Device::Cpu;
    let (p, y) = batch_conditions(batch, w.paired(), ask.two_digit_share, rng);
    let z = sample_latent(batch, gen.config.latent, rng);
    // the over-digits kind: each row's page, drawn before the dropout (as
    // the graph draws it), its pooled copy beside the condition
    let pages = gen.digits_for(&p, Some(rng)).op("pages")?;
    let c = match &pages {
        Some(pages) => warp::condition_with_pooled(&p, pages),
        None => p.clone(),
    };
    let masks = gen.dropout_masks(batch, rng);
    let masks = cpu::generator::GenMasks {
        first: masks[0].as_deref(),
        second: masks[1].as_deref(),
    };
    let gw = gen.cpu_weights()?;
    let drawn = cpu::generator::forward(&gw, &mut gen.scratch, &z, &c, masks, classifier.cpu_threads());
    let px = match &pages {
        Some(pages) => over_digit(&drawn, pages),
        None => drawn,
    };
    let p = Tensor::from_vec(p, (batch, NUM_CLASSES), &dev).op("conditions")?;
    let y = Tensor::from_vec(y, batch, &dev).op("labels")?;
    let (parts, dx) = classifier_pixel_grad(classifier, &px, (&p, &y, ask.anchors), w, &gen.config)?;
    // the mode-seeking and ink terms act on the pixels: a leaf of their own
    let px_var = Var::from_vec(px, (batch, ood_core::IMG_PIXELS), &dev).op("pixels")?;
    let z_t = Tensor::from_vec(z, (batch, gen.config.latent), &dev).op("latent")?;
    let zero = Tensor::zeros((), candle_core::DType::F32, &dev).op("zero")?;
    let ink_base = gen
        .config
        .ink_base(pages.as_deref())
        .map(|pages| Tensor::from_slice(pages, (batch, ood_core::IMG_PIXELS), &dev))
        .transpose()
        .op("pages")?;
    let (pixel_loss, parts) =
        with_pixel_terms((zero, parts), px_var.as_tensor(), ink_base.as_ref(), &z_t, w).op("pixel terms")?;
    let dpix = grad_values(&pixel_loss.backward().op("pixel terms backward")?, &px_var)?;
    let mut dpx: Vec<f32> = dx.iter().zip(&dpix).map(|(&d, &m)| d + m).collect();
    if let Some(pages) = &pages {
        // through 1 - (1 - pen)(1 - page): times 1 - page
        for (d, &q) in dpx.iter_mut().zip(pages) {
            *d *= 1.0 - q;
        }
    }
    let grads = cpu::generator::backward(&gw, &mut gen.scratch, &dpx, masks, classifier.cpu_threads());
    // the stroke head has fewer parameters than the pixel head: the rest are empty
    Ok((parts, grads.into_iter().take(gw.param_count()).collect()))
}

/// The classifier's part of the inversion loss on pixels `px` (`[b, 784]`
/// on the `[0, 1]` scale) through the hand-written CPU path, its batch terms
/// within the row groups of the generator `gen`: the loss parts (classifier
/// terms only) and `dL/dpx`. Only the loss itself (on the
/// `[b, 11]` logits and `[b, hidden]` features) runs as a small candle graph.
fn classifier_pixel_grad(
    classifier: &Classifier,
    px: &[f32],
    (p, y, anchors): (&Tensor, &Tensor, Option<&Tensor>),
    w: &LossWeights,
    gen: &GeneratorConfig,
) -> Result<(LossParts, Vec<f32>)> {
    let dev = Device::Cpu;
    let batch = px.len() / ood_core::IMG_PIXELS;
    let groups = gen.row_groups(batch);
    let x: Vec<f32> = px.iter().map(|&v| input::normalize_unit(v)).collect();
    let cw = classifier.cpu_weights()?;
    let (mut cls_scratch, threads) = classifier.cpu_scratch();
    let (logits, feats) = cpu::forward(&cw, &mut cls_scratch, &x, threads);
    let hidden = cw.hidden();
    let logits = Var::from_vec(logits, (batch, NUM_CLASSES), &dev).op("logits")?;
    let feats = Var::from_vec(feats, (batch, hidden), &dev).op("features")?;
    let (loss, parts) = inversion_loss(logits.as_tensor(), feats.as_tensor(), p, y, w, groups.as_deref())
        .and_then(|lp| with_typicality(lp, feats.as_tensor(), y, anchors, w))
        .op("inversion loss")?;
    let g = loss.backward().op("inversion backward")?;
    let (dlogits, dfeats) = (grad_values(&g, &logits)?, grad_values(&g, &feats)?);
    let dx = cpu::input_grad(&cw, &mut cls_scratch, &dlogits, &dfeats, threads);
    // x = (px - MEAN) / STD
    Ok((parts, dx.iter().map(|&d| d / input::STD).collect()))
}

/// The gradient of `v` in `g` as plain values; zeros when the loss did not
/// reach `v`.
fn grad_values(g: &candle_core::backprop::GradStore, v: &Var) -> Result<Vec<f32>> {
    match g.get(v.as_tensor()) {
        Some(t) => t
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .op("loss gradient"),
        None => Ok(vec![0.0; v.elem_count()]),
    }
}

/// [`generator_step`] for a generator without a hand-written CPU path (the
/// stroke kind) against a classifier with one: the generator runs as a
/// candle graph, the classifier's forward and input gradient on the CPU path
/// ([`classifier_pixel_grad`]). The same draws and maths as the all-candle
/// step; the classifier's part of the gradient enters the generator's graph
/// as `sum(px * dL/dpx)`.
fn hybrid_generator_grads(
    gen: &mut Generator,
    classifier: &Classifier,
    batch: usize,
    w: &LossWeights,
    ask: Ask<'_>,
    rng: &mut StdRng,
) -> Result<(LossParts, candle_core::backprop::GradStore)> {
    let dev = Device::Cpu;
    let Drawn {
        z,
        p,
        y,
        px,
        ink_base,
    } = draw(gen, batch, w, ask, rng)?;
    let px = px.reshape((batch, ood_core::IMG_PIXELS)).op("flatten pixels")?;
    let values = px.to_vec2::<f32>().op("read pixels")?.concat();
    let (parts, dpx) = classifier_pixel_grad(classifier, &values, (&p, &y, ask.anchors), w, &gen.config)?;
    let dpx = Tensor::from_vec(dpx, (batch, ood_core::IMG_PIXELS), &dev).op("pixel gradient")?;
    let zero = Tensor::zeros((), px.dtype(), &dev).op("zero")?;
    let (pixel_loss, parts) =
        with_pixel_terms((zero, parts), &px, ink_base.as_ref(), &z, w).op("pixel terms")?;
    let surrogate = (pixel_loss + (&px * &dpx).and_then(|t| t.sum_all()).op("chain")?).op("surrogate")?;
    let grads = surrogate.backward().op("generator backward")?;
    Ok((parts, grads))
}

/// `n` generated images as raw bytes (pixel * 255, rounded) with the labels
/// they were conditioned on (drawn with `two_digit_share`, as in training);
/// dropout stays on for diversity. A pair of generators draws its share as
/// in training: the pen-alone partner's images first, then this one's.
pub fn generate(
    gen: &Generator,
    n: usize,
    batch: usize,
    two_digit_share: f64,
    rng: &mut StdRng,
) -> Result<(Vec<u8>, Vec<u8>)> {
    if let Some(pair) = &gen.pair {
        let k = pair.pen_rows(n);
        let (mut images, mut labels) = generate_one(&pair.pen, k, batch, two_digit_share, rng)?;
        let (i, l) = generate_one(gen, n - k, batch, two_digit_share, rng)?;
        images.extend(i);
        labels.extend(l);
        return Ok((images, labels));
    }
    generate_one(gen, n, batch, two_digit_share, rng)
}

/// [`generate`] with one generator (a pair's partner not included).
fn generate_one(
    gen: &Generator,
    n: usize,
    batch: usize,
    two_digit_share: f64,
    rng: &mut StdRng,
) -> Result<(Vec<u8>, Vec<u8>)> {
    let dev = gen.device().clone();
    let mut images = Vec::with_capacity(n * ood_core::IMG_PIXELS);
    let mut labels = Vec::with_capacity(n);
    let mut left = n;
    while left > 0 {
        let b = left.min(batch.max(1));
        let (z, p, y) = cond_tensors(b, gen.config.latent, false, two_digit_share, rng, &dev)?;
        let px = gen.forward(&z, &p, Some(rng)).op("generate")?;
        let v = px
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .op("read generated")?;
        images.extend(v.iter().map(|&q| (q.clamp(0.0, 1.0) * 255.0).round() as u8));
        labels.extend(y.to_vec1::<u32>().op("labels")?.into_iter().map(|l| l as u8));
        left -= b;
    }
    Ok((images, labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Var};
    use rand::SeedableRng;

    /// Hand-computed values are exact fractions or logs: f64 rounding only.
    const TOL: f64 = 1e-9;
    /// Central differences in f64, step 1e-6 on O(1) values.
    const FD_TOL: f64 = 1e-5;

    fn t(v: &[f64], shape: (usize, usize)) -> Tensor {
        Tensor::from_vec(v.to_vec(), shape, &Device::Cpu).expect("tensor")
    }

    fn scalars(ts: &[Tensor; 4]) -> Vec<f64> {
        ts.iter().map(|x| x.to_scalar::<f64>().expect("scalar")).collect()
    }

    #[test]
    fn terms_by_hand() -> candle_core::Result<()> {
        // 2 samples, 2 classes, logits 0 -> Q = (1/2, 1/2)
        let logits = t(&[0.0, 0.0, 0.0, 0.0], (2, 2));
        let p = t(&[1.0, 0.0, 0.5, 0.5], (2, 2));
        let y = Tensor::new(&[0u32, 1], &Device::Cpu)?;
        // orthogonal features: cos 0, G = I -> ortho 0
        let f = t(&[3.0, 0.0, 0.0, 2.0], (2, 2));
        let v = scalars(&loss_terms(&logits, &f, &p, &y, None)?);
        let ln2 = std::f64::consts::LN_2;
        // KL: sample 0: 1*ln(1/0.5) = ln2; sample 1: 0 -> mean ln2/2
        assert!((v[0] - ln2 / 2.0).abs() < TOL, "kl {}", v[0]);
        assert!((v[1] - ln2).abs() < TOL, "ce {}", v[1]);
        assert!(v[2].abs() < TOL && v[3].abs() < TOL, "{v:?}");
        // identical features: cos 1; G all ones -> (G - I) has 2 ones -> 2/4
        let f = t(&[1.0, 1.0, 2.0, 2.0], (2, 2));
        let v = scalars(&loss_terms(&logits, &f, &p, &y, None)?);
        assert!((v[2] - 1.0).abs() < 1e-7 && (v[3] - 0.5).abs() < 1e-7, "{v:?}");
        // opposite features: cos -1, ortho (1+1)/4
        let f = t(&[1.0, 0.0, -1.0, 0.0], (2, 2));
        let v = scalars(&loss_terms(&logits, &f, &p, &y, None)?);
        assert!((v[2] + 1.0).abs() < 1e-7 && (v[3] - 0.5).abs() < 1e-7, "{v:?}");
        Ok(())
    }

    #[test]
    fn weighted_total_combines_the_terms() -> candle_core::Result<()> {
        let logits = t(&[0.3, -0.2, 1.0, 0.5, 0.1, -0.7], (2, 3));
        let p = t(&[0.7, 0.2, 0.1, 0.1, 0.8, 0.1], (2, 3));
        let y = Tensor::new(&[0u32, 1], &Device::Cpu)?;
        let f = t(&[1.0, 2.0, 0.5, 0.3, 0.2, 0.9], (2, 3));
        let w = LossWeights {
            alpha: 500.0,
            beta: 500.0,
            gamma: 6000.0,
            delta: 10.0,
            mode_seeking: 0.0,
            ink: 0.0,
            typicality: 0.0,
        };
        let (_, parts) = inversion_loss(&logits, &f, &p, &y, &w, None)?;
        let expect = 500.0 * parts.kl + 500.0 * parts.ce + 6000.0 * parts.cos + 10.0 * parts.ortho;
        assert!((parts.total - expect).abs() < 1e-6 * expect.abs().max(1.0));
        Ok(())
    }

    #[test]
    fn gradients_match_finite_differences() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let l0 = vec![0.3, -0.2, 1.0, 0.5, 0.1, -0.7, 0.0, 0.4, -0.3];
        let f0 = vec![1.0, 2.0, 0.5, 0.3, 0.2, 0.9, -0.4, 0.8, 0.1, 0.6, 0.7, -0.2];
        let p = t(&[0.7, 0.2, 0.1, 0.1, 0.8, 0.1, 0.0, 0.3, 0.7], (3, 3));
        let y = Tensor::new(&[0u32, 1, 2], &dev)?;
        let w = LossWeights {
            alpha: 1.0,
            beta: 2.0,
            gamma: 3.0,
            delta: 4.0,
            mode_seeking: 0.0,
            ink: 0.0,
            typicality: 0.0,
        };
        let lv = Var::from_vec(l0.clone(), (3, 3), &dev)?;
        let fv = Var::from_vec(f0.clone(), (3, 4), &dev)?;
        let (loss, _) = inversion_loss(lv.as_tensor(), fv.as_tensor(), &p, &y, &w, None)?;
        let g = loss.backward()?;
        let gl = g
            .get(lv.as_tensor())
            .expect("grad")
            .flatten_all()?
            .to_vec1::<f64>()?;
        let gf = g
            .get(fv.as_tensor())
            .expect("grad")
            .flatten_all()?
            .to_vec1::<f64>()?;
        let eval = |l: &[f64], f: &[f64]| -> candle_core::Result<f64> {
            Ok(inversion_loss(&t(l, (3, 3)), &t(f, (3, 4)), &p, &y, &w, None)?
                .1
                .total)
        };
        let eps = 1e-6;
        for i in 0..l0.len() {
            let (mut a, mut b) = (l0.clone(), l0.clone());
            a[i] += eps;
            b[i] -= eps;
            let num = (eval(&a, &f0)? - eval(&b, &f0)?) / (2.0 * eps);
            assert!((num - gl[i]).abs() < FD_TOL, "d/dlogit[{i}]: {} vs {num}", gl[i]);
        }
        for i in 0..f0.len() {
            let (mut a, mut b) = (f0.clone(), f0.clone());
            a[i] += eps;
            b[i] -= eps;
            let num = (eval(&l0, &a)? - eval(&l0, &b)?) / (2.0 * eps);
            assert!((num - gf[i]).abs() < FD_TOL, "d/dfeat[{i}]: {} vs {num}", gf[i]);
        }
        Ok(())
    }

    /// The all-candle generator step (the classifier's graph, not its CPU
    /// path) with the draws of `StdRng::seed_from_u64(seed)`: the loss parts,
    /// the gradients and the generated pixels.
    fn reference_step(
        gen: &Generator,
        cls: &mut Classifier,
        batch: usize,
        (w, anchors): (&LossWeights, Option<&Tensor>),
        seed: u64,
    ) -> Result<(LossParts, candle_core::backprop::GradStore, Tensor)> {
        cls.set_native_ops(true);
        let mut r = StdRng::seed_from_u64(seed);
        let (z, p, y) = cond_tensors(batch, gen.config.latent, w.paired(), 0.0, &mut r, &Device::Cpu)?;
        let (px, ink_base) = gen.forward_with_ink_base(&z, &p, Some(&mut r)).op("forward")?;
        let (logits, feats) = cls.forward_frozen(&to_model_space(&px).op("x")?).op("frozen")?;
        let groups = gen.config.row_groups(batch);
        let (loss, parts) = inversion_loss(&logits, &feats, &p, &y, w, groups.as_deref())
            .and_then(|lp| with_typicality(lp, &feats, &y, anchors, w))
            .and_then(|lp| with_pixel_terms(lp, &px, ink_base.as_ref(), &z, w))
            .op("loss")?;
        let g = loss.backward().op("backward")?;
        cls.set_native_ops(false);
        Ok((parts, g, px))
    }

    /// Anchors `[10, hidden]` from random features (standard normals: the
    /// features are taken before their ReLU), two rows per digit, drawn
    /// from `seed`.
    fn test_anchors(hidden: usize, seed: u64) -> Result<Tensor> {
        let mut r = StdRng::seed_from_u64(seed);
        let feats: Vec<f32> = (0..20 * hidden).map(|_| StandardNormal.sample(&mut r)).collect();
        let labels: Vec<u8> = (0..20u8).map(|i| i % 10).collect();
        let a = class_anchors(&feats, &labels, hidden);
        Tensor::from_vec(a, (NUM_DIGITS, hidden), &Device::Cpu).op("anchors")
    }

    #[test]
    fn typicality_by_hand_and_by_finite_differences() -> candle_core::Result<()> {
        // anchors: digit 0 along the first axis, digit 1 along the second
        let mut a = vec![0.0; NUM_DIGITS * 2];
        a[0] = 1.0;
        a[3] = 1.0;
        let anchors = t(&a, (NUM_DIGITS, 2));
        let y = Tensor::new(&[0u32, 1, 1], &Device::Cpu)?;
        // row 0 on its anchor (1), row 1 at 45 degrees (1/sqrt 2), row 2 across (0)
        let f = [3.0, 0.0, 1.0, 1.0, 2.0, 0.0];
        let v = |f: &[f64]| typicality_term(&t(f, (3, 2)), &y, &anchors)?.to_scalar::<f64>();
        let want = (1.0 + 0.5f64.sqrt() + 0.0) / 3.0;
        // the norms' guard against all-zero rows moves the value by ~1e-9
        let tol = 1e-7;
        assert!((v(&f)? - want).abs() < tol, "{} vs {want}", v(&f)?);
        let fv = Var::from_tensor(&t(&f, (3, 2)))?;
        let g = typicality_term(fv.as_tensor(), &y, &anchors)?.backward()?;
        let gf = g
            .get(fv.as_tensor())
            .expect("gradient")
            .flatten_all()?
            .to_vec1::<f64>()?;
        let eps = 1e-6;
        for i in 0..f.len() {
            let (mut up, mut down) = (f, f);
            up[i] += eps;
            down[i] -= eps;
            let num = (v(&up)? - v(&down)?) / (2.0 * eps);
            assert!((num - gf[i]).abs() < FD_TOL, "d/df[{i}]: {} vs {num}", gf[i]);
        }
        // the term: on when weighted and anchored, nothing otherwise
        let w = LossWeights {
            typicality: 10.0,
            ..crate::config::InversionConfig::default().weights()
        };
        let base = || {
            (
                Tensor::new(1.0f64, &Device::Cpu).expect("scalar"),
                LossParts::default(),
            )
        };
        let fs = t(&f, (3, 2));
        let (loss, parts) = with_typicality(base(), &fs, &y, Some(&anchors), &w)?;
        assert!((loss.to_scalar::<f64>()? - (1.0 + 10.0 * want)).abs() < 10.0 * tol);
        assert!((parts.typ - want).abs() < tol && (parts.total - 10.0 * want).abs() < 10.0 * tol);
        // a negative weight: the same term, subtracted (a pull toward the anchors)
        let pull = LossWeights {
            typicality: -10.0,
            ..w
        };
        let (loss, parts) = with_typicality(base(), &fs, &y, Some(&anchors), &pull)?;
        assert!((loss.to_scalar::<f64>()? - (1.0 - 10.0 * want)).abs() < 10.0 * tol);
        assert!((parts.typ - want).abs() < tol && (parts.total + 10.0 * want).abs() < 10.0 * tol);
        for (w, anchors) in [(LossWeights { typicality: 0.0, ..w }, Some(&anchors)), (w, None)] {
            let (loss, parts) = with_typicality(base(), &fs, &y, anchors, &w)?;
            assert_eq!((loss.to_scalar::<f64>()?, parts), (1.0, LossParts::default()));
        }
        Ok(())
    }

    #[test]
    fn anchors_are_the_unit_mean_of_unit_rows_per_digit() {
        // digit 3: (2, 0) and (0, 5) -> unit rows (1, 0), (0, 1) -> mean (0.5, 0.5)
        // -> (1/sqrt 2, 1/sqrt 2); digit 7: (0, 4) -> (0, 1); others: zeros;
        // a label past the digits (garbage) is left out
        let a = class_anchors(&[2.0, 0.0, 0.0, 5.0, 0.0, 4.0, 9.0, 9.0], &[3, 3, 7, 10], 2);
        assert_eq!(a.len(), NUM_DIGITS * 2);
        let h = 0.5f32.sqrt();
        for (d, row) in a.chunks(2).enumerate() {
            let want = match d {
                3 => [h, h],
                7 => [0.0, 1.0],
                _ => [0.0, 0.0],
            };
            assert!(
                row.iter().zip(want).all(|(x, y)| (x - y).abs() < 1e-6),
                "digit {d}: {row:?}"
            );
        }
    }

    #[test]
    fn cpu_generator_step_matches_the_candle_graph() -> Result<()> {
        let dev = Device::Cpu;
        let mut rng = StdRng::seed_from_u64(12);
        let mut cls = Classifier::new(&crate::model::ClassifierConfig::default(), &mut rng, &dev)?;
        let cfg = crate::model::generator::GeneratorConfig::default();
        let anchors = test_anchors(cls.config.hidden, 7)?;
        for (every, ms, ink, typ) in [
            (true, 0.0, 0.0, 0.0),
            (false, 0.0, 0.0, 0.0),
            (true, 20.0, 0.0, 0.0),
            (true, 20.0, 300.0, 0.0),
            (false, 20.0, 300.0, 3000.0),
            (true, 0.0, 0.0, -3000.0),
        ] {
            let cfg = crate::model::generator::GeneratorConfig {
                latent_every_layer: every,
                ..cfg.clone()
            };
            let mut gen = Generator::new(&cfg, 1e-3, &mut rng, &dev)?;
            let w = LossWeights {
                mode_seeking: ms,
                ink,
                typicality: typ,
                ..crate::config::InversionConfig::default().weights()
            };
            let batch = 23; // a short last shard, and an odd row without a pair
            let ask = Ask::anchored(&anchors);
            let (parts, got) =
                cpu_generator_grads(&mut gen, &cls, batch, &w, ask, &mut StdRng::seed_from_u64(3))?;
            // the graph, with the same draws
            let (want_parts, g, _) = reference_step(&gen, &mut cls, batch, (&w, Some(&anchors)), 3)?;
            assert_eq!(want_parts.ms > 0.0, ms > 0.0, "{want_parts:?}");
            // the anchors are given in every case: the weight alone turns the term on
            assert_eq!(want_parts.typ != 0.0, typ != 0.0, "{want_parts:?}");
            // a fresh generator's images are about half ink: the term is active
            assert_eq!(want_parts.ink > 0.0, ink > 0.0, "{want_parts:?}");
            assert!(
                (parts.total - want_parts.total).abs() < 1e-3 * want_parts.total.abs(),
                "{parts:?} vs {want_parts:?}"
            );
            let vars = gen.tensors()?;
            let names = cfg.param_shapes();
            for ((name, _), got) in names.iter().zip(&got) {
                let want = g
                    .get(&vars[*name])
                    .expect("gradient")
                    .flatten_all()
                    .and_then(|t| t.to_vec1::<f32>())
                    .op("grad")?;
                let scale = want.iter().fold(0f32, |a, v| a.max(v.abs()));
                let worst = got.iter().zip(&want).fold(0f32, |a, (x, y)| a.max((x - y).abs()));
                assert!(
                    scale > 0.0 && worst < 1e-3 * scale,
                    "every {every}, ms {ms}, ink {ink}: {name} differs by {worst} (scale {scale})"
                );
            }
        }
        Ok(())
    }

    /// Digits for the kinds that take them: digit `d` a bar of ink in rows
    /// `2d..2d + 6` (a fifth of the page), four of each. The ink varies from
    /// pixel to pixel (at least 40/255): on flat ink the classifier's max
    /// pooling meets exact ties, which the two paths may break differently.
    fn bar_digits() -> std::sync::Arc<crate::model::warp::SourceDigits> {
        let mut set = crate::data::Dataset::default();
        for i in 0..40u8 {
            let d = usize::from(i % 10);
            let mut img = [0u8; ood_core::IMG_PIXELS];
            for (k, v) in img[2 * d * 28..(2 * d + 6) * 28].iter_mut().enumerate() {
                *v = 40 + ((k * 37 + usize::from(i) * 11) % 211) as u8;
            }
            set.push(&img, i % 10);
        }
        std::sync::Arc::new(crate::model::warp::SourceDigits::new(&set))
    }

    #[test]
    fn a_pair_of_generators_steps_and_draws_each_on_its_own_rows() -> Result<()> {
        use crate::model::generator::GeneratorConfig;
        let dev = Device::Cpu;
        let cls = Classifier::new(
            &crate::model::ClassifierConfig::default(),
            &mut StdRng::seed_from_u64(21),
            &dev,
        )?;
        let w = LossWeights {
            ink: 300.0,
            mode_seeking: 20.0,
            ..crate::config::InversionConfig::default().weights()
        };
        let cfg = GeneratorConfig::test_pair(0.25);
        let mut pair = Generator::new(&cfg, 1e-3, &mut StdRng::seed_from_u64(5), &dev)?;
        pair.set_sources(&bar_digits());
        // the same two generators, apart
        let mut init = StdRng::seed_from_u64(5);
        let mut over = Generator::new(&cfg.over_digits_alone(), 1e-3, &mut init, &dev)?;
        let mut pen = Generator::new(&cfg.pen_alone(), 1e-3, &mut init, &dev)?;
        over.set_sources(&bar_digits());
        let before = over.tensors()?;
        // of 16 rows at a quarter, 12 with the pen alone
        let batch = 16;
        let k = pair.pen_alone_rows(batch).expect("a pair");
        assert_eq!(k, 12);
        let (mut a, mut b) = (StdRng::seed_from_u64(8), StdRng::seed_from_u64(8));
        for _ in 0..2 {
            let parts = generator_step(&mut pair, &cls, batch, &w, Ask::default(), &mut a)?;
            let p = one_generator_step(&mut pen, &cls, k, &w, Ask::default(), &mut b)?;
            let o = one_generator_step(&mut over, &cls, batch - k, &w, Ask::default(), &mut b)?;
            assert_eq!(parts, p.mix(k, &o, batch - k));
            assert!(p.ink > 0.0 && o.ink >= 0.0 && p != o, "{p:?} {o:?}");
        }
        let values = |m: &std::collections::HashMap<String, Tensor>| -> Result<Vec<(String, Vec<f64>)>> {
            let mut v: Vec<_> = m
                .iter()
                .map(|(k, t)| {
                    let t = t.flatten_all().and_then(|t| t.to_dtype(DType::F64));
                    Ok((k.clone(), t.and_then(|t| t.to_vec1::<f64>()).op("read")?))
                })
                .collect::<Result<_>>()?;
            v.sort_by(|x, y| x.0.cmp(&y.0));
            Ok(v)
        };
        // each stepped on its own rows: the pair's weights are the two apart's, and moved
        let mut apart = over.tensors()?;
        apart.extend(
            pen.tensors()?
                .into_iter()
                .map(|(k, t)| (format!("{}{k}", crate::model::generator::PARTNER), t)),
        );
        assert_eq!(values(&pair.tensors()?)?, values(&apart)?);
        assert_ne!(values(&over.tensors()?)?, values(&before)?);
        // a checkpoint of the stepped pair (weights and both optimisers' states) restores it
        let mut restored = Generator::new(&cfg, 1e-3, &mut StdRng::seed_from_u64(6), &dev)?;
        restored.load_tensors(&pair.tensors()?, std::path::Path::new("checkpoint"))?;
        assert_eq!(values(&restored.tensors()?)?, values(&pair.tensors()?)?);
        // drawing: the partner's share first (as in training), then the rest over digits
        let (images, labels) = generate(&pair, 10, 4, 0.0, &mut StdRng::seed_from_u64(9))?;
        let n_pen = pair.pen_alone_rows(10).expect("a pair");
        assert_eq!(n_pen, 8);
        let mut r = StdRng::seed_from_u64(9);
        let (mut want, mut want_labels) = generate_one(&pen, n_pen, 4, 0.0, &mut r)?;
        let (i, l) = generate_one(&over, 10 - n_pen, 4, 0.0, &mut r)?;
        want.extend(i);
        want_labels.extend(l);
        assert_eq!((images, labels), (want, want_labels));
        Ok(())
    }

    #[test]
    fn mixed_loss_parts_are_their_mean_weighted_by_rows() {
        let a = LossParts {
            kl: 1.0,
            ce: 2.0,
            cos: 0.5,
            ortho: 0.25,
            ms: 4.0,
            ink: 0.0,
            typ: 0.5,
            total: 10.0,
        };
        let b = LossParts {
            kl: 5.0,
            ce: 6.0,
            cos: 0.25,
            ortho: 0.75,
            ms: 0.0,
            ink: 1.0,
            typ: 0.0,
            total: 30.0,
        };
        let m = a.mix(3, &b, 1);
        assert_eq!(
            m,
            LossParts {
                kl: 2.0,
                ce: 3.0,
                cos: 0.4375,
                ortho: 0.375,
                ms: 3.0,
                ink: 0.25,
                typ: 0.375,
                total: 15.0,
            }
        );
        assert_eq!(a.mix(0, &b, 0), a);
        assert_eq!(a.mix(2, &b, 0), a);
    }

    #[test]
    fn stroke_generator_step_on_the_cpu_path_matches_the_candle_graph() -> Result<()> {
        use crate::model::generator::{GeneratorConfig, GeneratorKind};
        let dev = Device::Cpu;
        let mut rng = StdRng::seed_from_u64(13);
        let mut cls = Classifier::new(&crate::model::ClassifierConfig::default(), &mut rng, &dev)?;
        let w = LossWeights {
            ink: 300.0,
            mode_seeking: 20.0,
            typicality: 3000.0,
            ..crate::config::InversionConfig::default().weights()
        };
        let anchors = test_anchors(cls.config.hidden, 8)?;
        let read = |g: &candle_core::backprop::GradStore, v: &Tensor| -> Result<Vec<f32>> {
            g.get(v)
                .expect("gradient")
                .flatten_all()
                .and_then(|t| t.to_vec1::<f32>())
                .op("grad")
        };
        // 0.1% of the largest for the pen alone; 1% over digits: a drawing's
        // blank parts put the classifier's max pooling on exact ties, and the
        // two paths' roundings of a stroke's faint edge can break one
        // differently (the pixel gradients move by a fifth when the inputs
        // move 1e-7; measured up to 0.4% on the generator's weights, for one
        // over-digits draw in eight); a wrong chain rule moves them by far more
        let close = |what: &str, tol: f32, a: &[f32], b: &[f32]| {
            let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
            let worst = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
            assert!(
                a.len() == b.len() && scale > 0.0 && worst < tol * scale,
                "{what} differs by {worst} (scale {scale})"
            );
        };
        // the hand-written path (both heads of latent wiring, a short last
        // shard); with a radius cap, the hybrid path (generator as a graph);
        // the pen alone and over digits
        let over = GeneratorKind::StrokesOverDigits;
        // (and the ink term on the ink added to the pages only; and the
        // batch terms within each kind of row)
        // (and strokes with sharp corners, on both paths)
        for (kind, every, radius, batch, share, added, per_kind, sharp) in [
            (GeneratorKind::Strokes, true, 0.0, 23, 0.5, false, false, false),
            (GeneratorKind::Strokes, false, 0.0, 9, 0.5, false, false, false),
            (GeneratorKind::Strokes, true, 4.0, 9, 0.5, false, false, false),
            (GeneratorKind::Strokes, true, 0.0, 23, 0.5, false, false, true),
            (GeneratorKind::Strokes, false, 4.0, 9, 0.5, false, false, true),
            (over, true, 0.0, 23, 0.5, false, false, false),
            (over, false, 0.0, 9, 0.25, false, false, false),
            (over, true, 4.0, 9, 1.0, false, false, false),
            (over, true, 0.0, 23, 0.5, true, false, false),
            (over, true, 4.0, 9, 1.0, true, false, false),
            (over, true, 0.0, 23, 0.5, true, true, false),
            (over, false, 4.0, 9, 0.5, false, true, false),
            (over, true, 0.0, 9, 0.5, false, false, true),
        ] {
            let cfg = GeneratorConfig {
                kind,
                latent_every_layer: every,
                stroke_radius: radius,
                over_digits_share: share,
                added_ink_only: added,
                batch_terms_per_kind: per_kind,
                sharp_corners: sharp,
                ..GeneratorConfig::default()
            };
            let mut gen = Generator::new(&cfg, 1e-3, &mut rng, &dev)?;
            gen.set_sources(&bar_digits());
            assert_eq!(gen.sources().is_some(), kind == over);
            assert_eq!(gen.has_cpu_path(), radius == 0.0);
            let (want_parts, want, px) = reference_step(&gen, &mut cls, batch, (&w, Some(&anchors)), 3)?;
            assert!(want_parts.ms > 0.0 && want_parts.typ != 0.0, "{want_parts:?}");
            if per_kind {
                // the groups change the batch terms, nothing else
                gen.config.batch_terms_per_kind = false;
                let (whole, _, _) = reference_step(&gen, &mut cls, batch, (&w, Some(&anchors)), 3)?;
                gen.config.batch_terms_per_kind = true;
                assert!(
                    (whole.cos - want_parts.cos).abs() > 1e-4,
                    "{whole:?} vs {want_parts:?}"
                );
                assert!(
                    (whole.ortho - want_parts.ortho).abs() > 1e-6,
                    "{whole:?} vs {want_parts:?}"
                );
                assert_eq!(
                    (whole.kl, whole.ce, whole.ms, whole.ink),
                    (want_parts.kl, want_parts.ce, want_parts.ms, want_parts.ink)
                );
            }
            let vars = gen.tensors()?;
            let names = cfg.param_shapes();
            let parts = if gen.has_cpu_path() {
                let ask = Ask::anchored(&anchors);
                let (parts, got) =
                    cpu_generator_grads(&mut gen, &cls, batch, &w, ask, &mut StdRng::seed_from_u64(3))?;
                assert_eq!(got.len(), names.len());
                for ((name, _), got) in names.iter().zip(&got) {
                    close(
                        &format!("{kind:?}, every {every}: {name}"),
                        if kind == over { 1e-2 } else { 1e-3 },
                        got,
                        &read(&want, &vars[*name])?,
                    );
                }
                parts
            } else {
                let ask = Ask::anchored(&anchors);
                let (parts, got) =
                    hybrid_generator_grads(&mut gen, &cls, batch, &w, ask, &mut StdRng::seed_from_u64(3))?;
                for (name, _) in &names {
                    let name = *name;
                    close(
                        &format!("{kind:?}, radius {radius}: {name}"),
                        1e-3,
                        &read(&got, &vars[name])?,
                        &read(&want, &vars[name])?,
                    );
                }
                parts
            };
            assert!(
                (parts.total - want_parts.total).abs() < 1e-3 * want_parts.total.abs(),
                "{parts:?} vs {want_parts:?}"
            );
            // strokes: ink only near the pen's path, much of the page blank (a fresh
            // pixel generator leaves no pixel under 0.01)
            let v = px.flatten_all().and_then(|t| t.to_vec1::<f32>()).op("px")?;
            let blank = v.iter().filter(|&&q| q < 0.01).count() as f64 / v.len() as f64;
            assert!(blank > 0.3, "blank share {blank}");
            // over digits: the rows drawn over a digit keep their bar's ink
            // (six rows of at least 40/255) under the drawing
            let rows = crate::model::generator::over_rows(batch, cfg.over_digits_share);
            for (r, img) in v.chunks(ood_core::IMG_PIXELS).enumerate() {
                let inked = img.iter().filter(|&&q| q >= 40.0 / 255.0 - 1e-6).count();
                if kind == over && rows[r] {
                    assert!(inked >= 6 * 28, "row {r}: {inked} inked pixels");
                }
            }
        }
        Ok(())
    }

    #[test]
    fn batch_terms_within_groups_by_hand() -> candle_core::Result<()> {
        // rows 0 and 2 along one axis, rows 1 and 3 along the other
        let f = t(&[1.0, 0.0, 0.0, 2.0, 3.0, 0.0, 0.0, 0.5], (4, 2));
        let v = |g: Option<&[Vec<u32>]>| -> candle_core::Result<(f64, f64)> {
            let (c, o) = grouped_batch_terms(&f, g)?;
            Ok((c.to_scalar::<f64>()?, o.to_scalar::<f64>()?))
        };
        // whole batch: 4 of the 12 ordered pairs alike -> cos 1/3; 4 ones off the diagonal -> 4/16
        let (c, o) = v(None)?;
        assert!((c - 1.0 / 3.0).abs() < 1e-7 && (o - 0.25).abs() < 1e-7, "{c} {o}");
        // within the two axes: each group alike -> cos 1; each 2x2 of ones -> 2/4, averaged
        let (c, o) = v(Some(&[vec![0, 2], vec![1, 3]]))?;
        assert!((c - 1.0).abs() < 1e-7 && (o - 0.5).abs() < 1e-7, "{c} {o}");
        // across the axes: orthogonal pairs -> cos 0, G = I -> 0
        let (c, o) = v(Some(&[vec![0, 1], vec![2, 3]]))?;
        assert!(c.abs() < 1e-7 && o.abs() < 1e-7, "{c} {o}");
        // no groups: the whole batch
        assert_eq!(v(Some(&[]))?, v(None)?);
        Ok(())
    }

    #[test]
    fn the_ink_added_to_a_page_is_what_the_page_does_not_hold() -> candle_core::Result<()> {
        let w = LossWeights {
            ink: 1.0,
            mode_seeking: 0.0,
            ..crate::config::InversionConfig::default().weights()
        };
        // two images of two pixels: a page of 0.3 ink under both
        let px = t(&[0.5, 0.3, 0.3, 0.3], (2, 2));
        let page = t(&[0.3, 0.3, 0.3, 0.3], (2, 2));
        let z = t(&[0.0, 1.0], (2, 1));
        let zero = || Tensor::zeros((), DType::F64, &Device::Cpu);
        let parts = |page: Option<&Tensor>| -> candle_core::Result<LossParts> {
            Ok(with_pixel_terms((zero()?, LossParts::default()), &px, page, &z, &w)?.1)
        };
        // everything: means 0.4 and 0.3, each above MNIST's mean
        let m = f64::from(input::MEAN);
        assert!((parts(None)?.ink - ((0.4 - m) + (0.3 - m)) / 2.0).abs() < 1e-7);
        // added only: means 0.1 and 0, under it
        assert_eq!(parts(Some(&page))?.ink, 0.0);
        Ok(())
    }

    #[test]
    fn mode_seeking_by_hand_and_by_finite_differences() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        // 5 rows: pairs (0, 3), (1, 4); row 2 has no partner
        let x0: Vec<f64> = vec![0.1, 0.5, 0.9, 0.3, 0.2, 0.8, 0.6, 0.4, 0.7, 0.05];
        let z = t(&[1.0, 0.0, 5.0, 5.0, 2.0, 2.0, 0.0, 2.0, 4.0, 6.0], (5, 2));
        let term = |x: &[f64]| -> candle_core::Result<f64> {
            mode_seeking_term(&t(x, (5, 2)), &z)?.to_scalar::<f64>()
        };
        // pair (0, 3): d_x = (|0.1-0.6| + |0.5-0.4|)/2 = 0.3, d_z = (1 + 2)/2 = 1.5
        // pair (1, 4): d_x = (|0.9-0.7| + |0.3-0.05|)/2 = 0.225, d_z = (1 + 1)/2 = 1
        let want = (1.0 / (0.3 / 1.5 + MS_EPS) + 1.0 / (0.225 + MS_EPS)) / 2.0;
        assert!((term(&x0)? - want).abs() < TOL, "{} vs {want}", term(&x0)?);
        // identical pairs give the largest value, spread-out ones a smaller one
        let same = [0.5; 10];
        assert!(term(&same)? > 1e4);
        let xv = Var::from_vec(x0.clone(), (5, 2), &dev)?;
        let g = mode_seeking_term(xv.as_tensor(), &z)?.backward()?;
        let g = g
            .get(xv.as_tensor())
            .expect("grad")
            .flatten_all()?
            .to_vec1::<f64>()?;
        assert_eq!(&g[4..6], &[0.0, 0.0], "the unpaired row gets no gradient");
        for i in 0..x0.len() {
            let (mut a, mut b) = (x0.clone(), x0.clone());
            a[i] += 1e-6;
            b[i] -= 1e-6;
            let num = (term(&a)? - term(&b)?) / 2e-6;
            assert!(
                (num - g[i]).abs() < 1e-4 * num.abs().max(1.0),
                "d/dx[{i}]: {} vs {num}",
                g[i]
            );
        }
        Ok(())
    }

    #[test]
    fn ink_by_hand_and_by_finite_differences() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let m = f64::from(input::MEAN);
        // 3 images of 4 pixels: ink 0.5, 0.05 (under MNIST's mean: no term), 0.25
        let x0: Vec<f64> = vec![0.2, 0.8, 0.5, 0.5, 0.0, 0.1, 0.1, 0.0, 0.25, 0.25, 0.0, 0.5];
        let term = |x: &[f64]| -> candle_core::Result<f64> { ink_term(&t(x, (3, 4)))?.to_scalar::<f64>() };
        let want = ((0.5 - m) + 0.0 + (0.25 - m)) / 3.0;
        assert!((term(&x0)? - want).abs() < 1e-6, "{} vs {want}", term(&x0)?);
        assert_eq!(term(&[0.0; 12])?, 0.0, "a blank page has no excess ink");
        let xv = Var::from_vec(x0.clone(), (3, 4), &dev)?;
        let g = ink_term(xv.as_tensor())?.backward()?;
        let g = g
            .get(xv.as_tensor())
            .expect("grad")
            .flatten_all()?
            .to_vec1::<f64>()?;
        for (i, &gi) in g.iter().enumerate() {
            // d/dx of (mean(x_row) - m) / 3 is 1 / (4 * 3) where the row is over the mean
            let want = if (4..8).contains(&i) { 0.0 } else { 1.0 / 12.0 };
            assert!((gi - want).abs() < 1e-9, "d/dx[{i}] = {gi}, want {want}");
            let (mut a, mut b) = (x0.clone(), x0.clone());
            a[i] += 1e-6;
            b[i] -= 1e-6;
            let num = (term(&a)? - term(&b)?) / 2e-6;
            assert!((num - gi).abs() < 1e-4, "d/dx[{i}]: {gi} vs {num}");
        }
        Ok(())
    }

    #[test]
    fn paired_conditions_repeat_the_first_half() {
        let mut rng = StdRng::seed_from_u64(4);
        let (p, y) = batch_conditions(7, true, 0.0, &mut rng);
        assert_eq!((p.len(), y.len()), (7 * NUM_CLASSES, 7));
        let o = pair_offset(7);
        assert_eq!(o, 4);
        for i in 0..3 {
            assert_eq!(y[i], y[o + i]);
            assert_eq!(
                p[i * NUM_CLASSES..(i + 1) * NUM_CLASSES],
                p[(o + i) * NUM_CLASSES..(o + i + 1) * NUM_CLASSES]
            );
        }
        // unpaired: the seed's draws, row for row
        let (q, _) = batch_conditions(7, false, 0.0, &mut StdRng::seed_from_u64(4));
        assert_eq!(q, sample_conditions(7, 0.0, &mut StdRng::seed_from_u64(4)).0);
    }

    #[test]
    fn conditions_are_distributions_with_the_label_on_top() {
        let (p, y) = sample_conditions(50, 0.0, &mut StdRng::seed_from_u64(4));
        for (row, &label) in p.chunks(NUM_CLASSES).zip(&y) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            assert_eq!(ood_core::score::argmax(row), label as usize);
            assert_eq!(row[ood_core::GARBAGE], 0.0);
        }
    }

    /// The runner-up's probability of a condition row.
    fn second_largest(row: &[f32]) -> f32 {
        let mut v = row.to_vec();
        v.sort_by(|a, b| b.total_cmp(a));
        v[1]
    }

    #[test]
    fn two_digit_conditions_ask_for_a_second_digit_in_their_share_of_rows() {
        let n = 4000;
        // every row: the label on top, a second digit with about a quarter of the mass
        let (p, y) = sample_conditions(n, 1.0, &mut StdRng::seed_from_u64(4));
        for (row, &label) in p.chunks(NUM_CLASSES).zip(&y) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            assert_eq!(ood_core::score::argmax(row), label as usize);
            assert_eq!(row[ood_core::GARBAGE], 0.0);
        }
        let mean_top = p
            .chunks(NUM_CLASSES)
            .zip(&y)
            .map(|(r, &l)| r[l as usize])
            .sum::<f32>()
            / n as f32;
        let mean_second = p.chunks(NUM_CLASSES).map(second_largest).sum::<f32>() / n as f32;
        // (a simulation of the same draws: 0.70 and 0.25; one-digit rows 0.9 and 0.03)
        assert!((0.65..0.75).contains(&mean_top), "asked digit {mean_top}");
        assert!((0.2..0.3).contains(&mean_second), "second digit {mean_second}");
        // the second digit is any of the other nine
        let mut seconds = [0usize; NUM_DIGITS];
        for (row, &label) in p.chunks(NUM_CLASSES).zip(&y) {
            let s = (0..NUM_DIGITS)
                .filter(|&d| d != label as usize)
                .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                .expect("nine other digits");
            seconds[s] += 1;
        }
        assert!(seconds.iter().all(|&c| c > n / 20), "{seconds:?}");
        // share of rows whose runner-up holds over 0.15: 3.7% of one-digit
        // rows, 73.5% of two-digit ones (the same simulation)
        let runner_up = |share: f64| {
            let (p, _) = sample_conditions(n, share, &mut StdRng::seed_from_u64(9));
            p.chunks(NUM_CLASSES).filter(|r| second_largest(r) > 0.15).count() as f64 / n as f64
        };
        let (none, half, all) = (runner_up(0.0), runner_up(0.5), runner_up(1.0));
        assert!(none < 0.06, "{none}");
        assert!((0.33..0.44).contains(&half), "{half}");
        assert!((0.69..0.78).contains(&all), "{all}");
    }

    #[test]
    fn generator_steps_lower_the_loss_against_a_fixed_classifier() -> Result<()> {
        let dev = Device::Cpu;
        let mut rng = StdRng::seed_from_u64(5);
        let cls = Classifier::new(&super::super::ClassifierConfig::default(), &mut rng, &dev)?;
        let before: Vec<f32> = cls.vars()[0]
            .as_tensor()
            .flatten_all()
            .and_then(|t| t.to_vec1())
            .op("w")?;
        let mut gen = Generator::new(
            &super::super::generator::GeneratorConfig::default(),
            1e-3,
            &mut rng,
            &dev,
        )?;
        let w = LossWeights {
            alpha: 1.0,
            beta: 1.0,
            gamma: 0.0,
            delta: 0.0,
            mode_seeking: 0.0,
            ink: 0.0,
            typicality: 0.0,
        };
        let first = generator_step(&mut gen, &cls, 32, &w, Ask::default(), &mut rng)?;
        let mut last = first;
        for _ in 0..40 {
            last = generator_step(&mut gen, &cls, 32, &w, Ask::default(), &mut rng)?;
        }
        assert!(last.ce < first.ce, "ce {} -> {}", first.ce, last.ce);
        let after: Vec<f32> = cls.vars()[0]
            .as_tensor()
            .flatten_all()
            .and_then(|t| t.to_vec1())
            .op("w")?;
        assert_eq!(before, after, "the classifier stays frozen");
        let (imgs, labels) = generate(&gen, 10, 4, 0.0, &mut rng)?;
        assert_eq!((imgs.len(), labels.len()), (10 * ood_core::IMG_PIXELS, 10));
        let _ = DType::F32;
        Ok(())
    }
}
