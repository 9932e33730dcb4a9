//! The generator's forward and backward passes written out by hand (the
//! layers of [`crate::model::generator`], same maths), sharded over the
//! batch like the classifier's: every sample's pass is independent, the
//! weight gradients of each shard are summed in shard order. Both heads:
//! pixels (two maps, up-sampled) and pen strokes (control points centred
//! and smoothed, widths squashed, drawn by [`crate::model::strokes`]).

use super::gemm::{gemm, Mat};
use super::{for_each_shard, kernels, layer, shard, sized, sum_in_order, Grads, SHARD};
use crate::model::strokes::{draw_backward_kept, draw_kept, Pen, Touch};
use ood_core::IMG_PIXELS;
use std::sync::Arc;

/// Slope of the LeakyReLU for negative inputs.
const SLOPE: f32 = 0.2;
const W1: usize = 0;
const W2: usize = 2;
/// The head's first layer (`fc7`, or the stroke head's `pen`).
const W7: usize = 4;
const W14: usize = 6;

/// The generator's sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenDims {
    /// Latent width.
    pub latent: usize,
    /// First hidden layer.
    pub hidden1: usize,
    /// Second hidden layer.
    pub hidden2: usize,
    /// Whether every layer sees `z ++ c` (else only `c`).
    pub latent_every_layer: bool,
    /// Width of a row of `c`: the 11 classes' condition, and for the
    /// over-digits kind its pooled page beside it.
    pub cond: usize,
}

impl GenDims {
    /// Width of what every layer after the first sees besides its input.
    fn extra(&self) -> usize {
        self.cond + if self.latent_every_layer { self.latent } else { 0 }
    }
}

/// The stroke head's fixed parts (see `Head::Strokes` in
/// [`crate::model::generator`]): an image's control points are
/// `spread * o`, moved so that their mean is `centre`, each stroke's
/// smoothed by `smooth`; a width is `lo + (hi - lo) * sigmoid(o)`.
#[derive(Debug, Clone)]
pub struct StrokeHead {
    /// The pen that draws the smoothed strokes.
    pub pen: Pen,
    /// Control points per stroke.
    pub control: usize,
    /// The smoothing matrix `[pen.points, control]`.
    pub smooth: Vec<f32>,
    /// Pixels per unit of the head's output.
    pub spread: f32,
    /// Where the mean of an image's points goes (both coordinates).
    pub centre: f32,
    /// The range of a stroke's half-width.
    pub half_width: (f32, f32),
}

impl StrokeHead {
    /// The head's outputs per image: per stroke its control points and width.
    fn outputs(&self) -> usize {
        self.pen.strokes * (2 * self.control + 1)
    }
}

/// What the generator's last layer writes.
#[derive(Debug, Clone)]
pub enum GenHead {
    /// A 7x7 and a 14x14 map, up-sampled by `[784, 49]` and `[784, 196]`.
    Pixels {
        /// The up-sampling matrices.
        up: [Vec<f32>; 2],
    },
    /// Pen strokes.
    Strokes(StrokeHead),
}

/// The generator's parameters (PyTorch layouts, the order of
/// [`crate::model::generator::GeneratorConfig::param_shapes`]: eight for
/// the pixel head, six for the stroke head) and its head's fixed parts
/// (shared, not copied, from step to step).
#[derive(Debug, Clone)]
pub struct GenWeights {
    dims: GenDims,
    p: Vec<Vec<f32>>,
    head: Arc<GenHead>,
}

impl GenWeights {
    /// # Panics
    /// When a parameter's length does not fit `dims` and `head` (a bug in
    /// the caller).
    pub fn new(dims: GenDims, p: Vec<Vec<f32>>, head: Arc<GenHead>) -> Self {
        let (e, h1, h2) = (dims.extra(), dims.hidden1, dims.hidden2);
        let mut want = vec![h1 * (dims.latent + dims.cond), h1, h2 * (h1 + e), h2];
        match &*head {
            GenHead::Pixels { up } => {
                want.extend([49 * (h2 + e), 49, 196 * (h2 + e), 196]);
                assert_eq!(up[0].len(), IMG_PIXELS * 49, "7x7 up-sampling matrix");
                assert_eq!(up[1].len(), IMG_PIXELS * 196, "14x14 up-sampling matrix");
            }
            GenHead::Strokes(s) => {
                let n = s.outputs();
                want.extend([n * (h2 + e), n]);
                assert_eq!(s.smooth.len(), s.pen.points * s.control, "smoothing matrix");
            }
        }
        assert_eq!(p.len(), want.len(), "generator parameters");
        for (i, (v, n)) in p.iter().zip(want).enumerate() {
            assert_eq!(
                v.len(),
                n,
                "generator parameter {i}: {} values, the dims need {n}",
                v.len()
            );
        }
        Self { dims, p, head }
    }

    /// The number of parameters (the gradients past it in a [`Grads`] stay empty).
    pub fn param_count(&self) -> usize {
        self.p.len()
    }
}

/// One shard's intermediates, reused from call to call.
#[derive(Debug, Default)]
pub struct GenScratch {
    in1: Vec<f32>,
    a1: Vec<f32>,
    in2: Vec<f32>,
    a2: Vec<f32>,
    in3: Vec<f32>,
    /// The head's first output: `fc7`'s map, or the stroke head's values.
    o7: Vec<f32>,
    o14: Vec<f32>,
    /// One image's control points, and its strokes as the pen draws them
    /// (stroke head; the backward pass reads the kept touches instead).
    pts: Vec<f32>,
    strokes: Vec<f32>,
    /// What each image's pixels saw of its strokes (stroke head).
    touches: Vec<Vec<Touch>>,
    /// The strokes' gradient, and the control points' (stroke head).
    dstrokes: Vec<f32>,
    dpts: Vec<f32>,
    px: Vec<f32>,
    dout: Vec<f32>,
    do7: Vec<f32>,
    do14: Vec<f32>,
    din3: Vec<f32>,
    da2: Vec<f32>,
    din2: Vec<f32>,
    da1: Vec<f32>,
    grads: Grads,
    rows: usize,
}

/// Writes rows `[head_i ++ extra_i]` into `out`.
fn concat_rows(out: &mut [f32], head: &[f32], hw: usize, extra: &[f32], ew: usize) {
    for ((row, h), e) in out
        .chunks_exact_mut(hw + ew)
        .zip(head.chunks_exact(hw))
        .zip(extra.chunks_exact(ew))
    {
        row[..hw].copy_from_slice(h);
        row[hw..].copy_from_slice(e);
    }
}

/// `LeakyReLU(a) * mask` into the first `width` columns of each row of `out`
/// (rows of `stride` values).
fn lrelu_into(out: &mut [f32], stride: usize, a: &[f32], width: usize, mask: Option<&[f32]>) {
    for (r, (row, ar)) in out
        .chunks_exact_mut(stride)
        .zip(a.chunks_exact(width))
        .enumerate()
    {
        for (j, (o, &v)) in row[..width].iter_mut().zip(ar).enumerate() {
            let m = mask.map_or(1.0, |m| m[r * width + j]);
            *o = if v > 0.0 { v } else { v * SLOPE } * m;
        }
    }
}

/// The gradient through `LeakyReLU(a) * mask`, reading the first `width`
/// columns of each row of `din` (rows of `stride` values).
fn lrelu_back(out: &mut [f32], din: &[f32], stride: usize, a: &[f32], width: usize, mask: Option<&[f32]>) {
    for (r, (row, ar)) in din.chunks_exact(stride).zip(a.chunks_exact(width)).enumerate() {
        for (j, (&g, &v)) in row[..width].iter().zip(ar).enumerate() {
            let m = mask.map_or(1.0, |m| m[r * width + j]);
            out[r * width + j] = g * m * if v > 0.0 { 1.0 } else { SLOPE };
        }
    }
}

impl GenScratch {
    /// Pixel-space images `[ns, 784]` from latents `[ns, latent]` and
    /// conditions `[ns, cond]`, with dropout multipliers for both hidden layers.
    fn forward(&mut self, w: &GenWeights, z: &[f32], c: &[f32], ns: usize, masks: [Option<&[f32]>; 2]) {
        let d = w.dims;
        let (e, h1, h2) = (d.extra(), d.hidden1, d.hidden2);
        self.rows = ns;
        let in1 = sized(&mut self.in1, ns * (d.latent + d.cond));
        concat_rows(in1, z, d.latent, c, d.cond);
        // what every later layer sees besides its input: z ++ c, or c
        let extra: &[f32] = if d.latent_every_layer { &self.in1 } else { c };
        kernels::affine(
            &self.in1,
            ns,
            &w.p[W1],
            &w.p[W1 + 1],
            sized(&mut self.a1, ns * h1),
        );
        let in2 = sized(&mut self.in2, ns * (h1 + e));
        concat_rows(in2, &self.a1, h1, extra, e);
        lrelu_into(in2, h1 + e, &self.a1, h1, masks[0]);
        kernels::affine(
            &self.in2,
            ns,
            &w.p[W2],
            &w.p[W2 + 1],
            sized(&mut self.a2, ns * h2),
        );
        let in3 = sized(&mut self.in3, ns * (h2 + e));
        concat_rows(in3, &self.a2, h2, extra, e);
        lrelu_into(in3, h2 + e, &self.a2, h2, masks[1]);
        match &*w.head {
            GenHead::Pixels { up } => self.pixel_head(w, up, ns),
            GenHead::Strokes(head) => self.stroke_head(w, head, ns),
        }
    }

    fn pixel_head(&mut self, w: &GenWeights, up: &[Vec<f32>; 2], ns: usize) {
        kernels::affine(
            &self.in3,
            ns,
            &w.p[W7],
            &w.p[W7 + 1],
            sized(&mut self.o7, ns * 49),
        );
        kernels::affine(
            &self.in3,
            ns,
            &w.p[W14],
            &w.p[W14 + 1],
            sized(&mut self.o14, ns * 196),
        );
        let px = sized(&mut self.px, ns * IMG_PIXELS);
        gemm(
            ns,
            IMG_PIXELS,
            49,
            px,
            false,
            Mat::rows(&self.o7, 49),
            Mat::t(&up[0], 49),
        );
        gemm(
            ns,
            IMG_PIXELS,
            196,
            px,
            true,
            Mat::rows(&self.o14, 196),
            Mat::t(&up[1], 196),
        );
        for v in px.iter_mut() {
            *v = 1.0 / ((-*v).exp() + 1.0);
        }
    }

    /// The stroke head: outputs, then each image's strokes, then its pixels.
    fn stroke_head(&mut self, w: &GenWeights, head: &StrokeHead, ns: usize) {
        let (n, k, pen) = (head.outputs(), head.control, head.pen);
        let per = pen.per_image();
        kernels::affine(&self.in3, ns, &w.p[W7], &w.p[W7 + 1], sized(&mut self.o7, ns * n));
        let pts = sized(&mut self.pts, pen.strokes * k * 2);
        let st = sized(&mut self.strokes, per);
        let px = sized(&mut self.px, ns * IMG_PIXELS);
        if self.touches.len() < ns {
            self.touches.resize_with(ns, Vec::new);
        }
        for ((o, img), touches) in self
            .o7
            .chunks_exact(n)
            .zip(px.chunks_exact_mut(IMG_PIXELS))
            .zip(&mut self.touches)
        {
            stroke_points(head, o, pts);
            for (j, (st, o)) in st
                .chunks_exact_mut(pen.per_stroke())
                .zip(o.chunks_exact(2 * k + 1))
                .enumerate()
            {
                let p = &pts[j * 2 * k..(j + 1) * 2 * k];
                for (i, row) in head.smooth.chunks_exact(k).enumerate() {
                    for xy in 0..2 {
                        st[2 * i + xy] = row.iter().enumerate().map(|(q, &m)| m * p[2 * q + xy]).sum();
                    }
                }
                let (lo, hi) = head.half_width;
                st[2 * pen.points] = sigmoid(o[2 * k]) * (hi - lo) + lo;
            }
            draw_kept(&pen, st, img, touches);
        }
    }

    /// Weight gradients into `self.grads` from the pixels' gradient `[ns, 784]`.
    fn backward(&mut self, w: &GenWeights, dpx: &[f32], masks: [Option<&[f32]>; 2]) {
        let d = w.dims;
        let (e, h1, h2) = (d.extra(), d.hidden1, d.hidden2);
        let ns = self.rows;
        for (v, p) in self.grads.iter_mut().zip(&w.p) {
            sized(v, p.len());
        }
        match &*w.head {
            GenHead::Pixels { up } => self.pixel_head_back(w, up, dpx),
            GenHead::Strokes(head) => self.stroke_head_back(w, head, dpx),
        }
        let g = &mut self.grads;
        lrelu_back(
            sized(&mut self.da2, ns * h2),
            &self.din3,
            h2 + e,
            &self.a2,
            h2,
            masks[1],
        );
        kernels::affine_grads(&self.da2, &self.in2, ns, layer(g, W2));
        let din2 = sized(&mut self.din2, ns * (h1 + e));
        kernels::affine_input_grad(&self.da2, ns, &w.p[W2], h2, din2);
        lrelu_back(
            sized(&mut self.da1, ns * h1),
            &self.din2,
            h1 + e,
            &self.a1,
            h1,
            masks[0],
        );
        kernels::affine_grads(&self.da1, &self.in1, ns, layer(g, W1));
    }

    /// The pixel head's weight gradients and `din3`.
    fn pixel_head_back(&mut self, w: &GenWeights, up: &[Vec<f32>; 2], dpx: &[f32]) {
        let d = w.dims;
        let (e, h2) = (d.extra(), d.hidden2);
        let ns = self.rows;
        let g = &mut self.grads;
        let dout = sized(&mut self.dout, ns * IMG_PIXELS);
        for ((o, &gp), &p) in dout.iter_mut().zip(dpx).zip(&self.px) {
            *o = gp * p * (1.0 - p); // sigmoid'
        }
        let do7 = sized(&mut self.do7, ns * 49);
        gemm(
            ns,
            49,
            IMG_PIXELS,
            do7,
            false,
            Mat::rows(&self.dout, IMG_PIXELS),
            Mat::rows(&up[0], 49),
        );
        let do14 = sized(&mut self.do14, ns * 196);
        gemm(
            ns,
            196,
            IMG_PIXELS,
            do14,
            false,
            Mat::rows(&self.dout, IMG_PIXELS),
            Mat::rows(&up[1], 196),
        );
        kernels::affine_grads(&self.do7, &self.in3, ns, layer(g, W7));
        kernels::affine_grads(&self.do14, &self.in3, ns, layer(g, W14));
        let din3 = sized(&mut self.din3, ns * (h2 + e));
        kernels::affine_input_grad(&self.do7, ns, &w.p[W7], 49, din3);
        gemm(
            ns,
            h2 + e,
            196,
            din3,
            true,
            Mat::rows(&self.do14, 196),
            Mat::rows(&w.p[W14], h2 + e),
        );
    }

    /// The stroke head's weight gradients and `din3`: through the pen, the
    /// smoothing, the centring and the widths' sigmoid.
    fn stroke_head_back(&mut self, w: &GenWeights, head: &StrokeHead, dpx: &[f32]) {
        let d = w.dims;
        let (e, h2) = (d.extra(), d.hidden2);
        let ns = self.rows;
        let (n, k, pen) = (head.outputs(), head.control, head.pen);
        let per = pen.per_image();
        let dst = sized(&mut self.dstrokes, per);
        let dpts = sized(&mut self.dpts, pen.strokes * k * 2);
        let dout = sized(&mut self.do7, ns * n);
        for (((dout, o), (touches, img)), g) in dout
            .chunks_exact_mut(n)
            .zip(self.o7.chunks_exact(n))
            .zip(self.touches.iter().zip(self.px.chunks_exact(IMG_PIXELS)))
            .zip(dpx.chunks_exact(IMG_PIXELS))
        {
            dst.fill(0.0);
            draw_backward_kept(touches, img, g, dst);
            let (lo, hi) = head.half_width;
            for (j, (ds, dout)) in dst
                .chunks_exact(pen.per_stroke())
                .zip(dout.chunks_exact_mut(2 * k + 1))
                .enumerate()
            {
                // smooth = m @ points: d points = m^T @ d smooth
                let dp = &mut dpts[j * 2 * k..(j + 1) * 2 * k];
                dp.fill(0.0);
                for (i, row) in head.smooth.chunks_exact(k).enumerate() {
                    for (q, &m) in row.iter().enumerate() {
                        dp[2 * q] += m * ds[2 * i];
                        dp[2 * q + 1] += m * ds[2 * i + 1];
                    }
                }
                let s = sigmoid(o[j * (2 * k + 1) + 2 * k]);
                dout[2 * k] = ds[2 * pen.points] * (hi - lo) * s * (1.0 - s);
            }
            // points - mean(points): the mean of the gradient comes off
            centre_xy(dpts, 0.0);
            for (dout, dp) in dout.chunks_exact_mut(2 * k + 1).zip(dpts.chunks_exact(2 * k)) {
                for (o, &g) in dout[..2 * k].iter_mut().zip(dp) {
                    *o = g * head.spread;
                }
            }
        }
        kernels::affine_grads(&self.do7, &self.in3, ns, layer(&mut self.grads, W7));
        let din3 = sized(&mut self.din3, ns * (h2 + e));
        kernels::affine_input_grad(&self.do7, ns, &w.p[W7], n, din3);
    }
}

fn sigmoid(v: f32) -> f32 {
    1.0 / ((-v).exp() + 1.0)
}

/// One image's control points from its head outputs `o`: `spread * o`,
/// moved so that their mean is `centre`, into `pts` (per stroke its
/// points as `x0, y0, x1, y1, ...`).
fn stroke_points(head: &StrokeHead, o: &[f32], pts: &mut [f32]) {
    let k = head.control;
    for (p, o) in pts.chunks_exact_mut(2 * k).zip(o.chunks_exact(2 * k + 1)) {
        for (p, &o) in p.iter_mut().zip(&o[..2 * k]) {
            *p = o * head.spread;
        }
    }
    centre_xy(pts, head.centre);
}

/// Moves interleaved points `x0, y0, x1, y1, ...` so that the mean of each
/// coordinate is `to` (the centring, and with `to = 0` its backward pass).
fn centre_xy(pts: &mut [f32], to: f32) {
    let count = (pts.len() / 2) as f32;
    for xy in 0..2 {
        let mean = pts.iter().skip(xy).step_by(2).sum::<f32>() / count;
        for v in pts.iter_mut().skip(xy).step_by(2) {
            *v = *v - mean + to;
        }
    }
}

/// The dropout multipliers of the two hidden layers for a batch of `b`.
#[derive(Debug, Clone, Copy)]
pub struct GenMasks<'a> {
    /// `[b, hidden1]`, or `None` for no dropout.
    pub first: Option<&'a [f32]>,
    /// `[b, hidden2]`, or `None`.
    pub second: Option<&'a [f32]>,
}

impl GenMasks<'_> {
    fn rows(&self, d: &GenDims, r: &std::ops::Range<usize>) -> [Option<&[f32]>; 2] {
        [
            self.first.map(|m| &m[r.start * d.hidden1..r.end * d.hidden1]),
            self.second.map(|m| &m[r.start * d.hidden2..r.end * d.hidden2]),
        ]
    }
}

fn ensure(scratch: &mut Vec<GenScratch>, n: usize) {
    if scratch.len() < n {
        scratch.resize_with(n, GenScratch::default);
    }
}

/// Pixel-space images `[b, 784]` of latents `z` (`[b, latent]`) and
/// conditions `c` (`[b, cond]`: the 11 classes, and a pooled page where the
/// kind takes one); the intermediates stay in `scratch` for
/// [`backward`].
///
/// # Panics
/// When `z` and `c` disagree on the batch size.
pub fn forward(
    w: &GenWeights,
    scratch: &mut Vec<GenScratch>,
    z: &[f32],
    c: &[f32],
    masks: GenMasks<'_>,
    threads: usize,
) -> Vec<f32> {
    let d = w.dims;
    let b = c.len() / d.cond;
    assert_eq!(z.len(), b * d.latent, "generator: latents vs conditions");
    let shards = b.div_ceil(SHARD);
    ensure(scratch, shards);
    for_each_shard(scratch, shards, threads, &|i, s| {
        let r = shard(i, b);
        let zr = &z[r.start * d.latent..r.end * d.latent];
        let cr = &c[r.start * d.cond..r.end * d.cond];
        s.forward(w, zr, cr, r.len(), masks.rows(&d, &r));
    });
    let mut px = Vec::with_capacity(b * IMG_PIXELS);
    for s in &scratch[..shards] {
        px.extend_from_slice(&s.px[..s.rows * IMG_PIXELS]);
    }
    px
}

/// The weight gradients of the last [`forward`] (same `w`, `scratch` and
/// masks) given the gradient of its pixels `[b, 784]`, summed in shard order.
///
/// # Panics
/// When `dpx` does not match the last forward's batch.
pub fn backward(
    w: &GenWeights,
    scratch: &mut [GenScratch],
    dpx: &[f32],
    masks: GenMasks<'_>,
    threads: usize,
) -> Grads {
    let d = w.dims;
    let b = dpx.len() / IMG_PIXELS;
    let shards = b.div_ceil(SHARD);
    assert!(
        scratch.len() >= shards,
        "generator backward: no forward pass kept"
    );
    for_each_shard(scratch, shards, threads, &|i, s| {
        let r = shard(i, b);
        assert_eq!(
            s.rows,
            r.len(),
            "generator backward: the last forward had another batch"
        );
        s.backward(
            w,
            &dpx[r.start * IMG_PIXELS..r.end * IMG_PIXELS],
            masks.rows(&d, &r),
        );
    });
    sum_in_order(scratch[..shards].iter_mut().map(|s| &mut s.grads))
}
