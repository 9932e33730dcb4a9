//! The classifier's forward and backward passes written out by hand for the
//! CPU: no autograd graph, no per-op tensors, buffers reused from step to
//! step, and the batch cut into shards that run on all cores.
//!
//! Same maths as the candle graph in [`super::classifier`] (which stays the
//! path for CUDA and the reference the tests compare against): valid 5x5
//! convolutions as patch matrix x weight, 2x2 max pooling then ReLU,
//! the dense layers, inverted dropout on the features' ReLU, and the
//! sample-weighted cross-entropy.
//!
//! Determinism: the batch is cut into shards of [`SHARD`] samples, each
//! shard's gradients are computed on their own, and the shard gradients are
//! summed in shard order. Which thread runs a shard changes nothing, so the
//! same seed gives the same bytes whatever [`threads`] returns.

pub mod gemm;
pub mod generator;
pub mod kernels;

use kernels::PoolOut;
use ood_core::{IMG_PIXELS, IMG_SIDE, NUM_CLASSES};

/// Convolution kernel side.
const K: usize = 5;
/// Sides: input 28 -> conv1 24 -> pool 12 -> conv2 8 -> pool 4.
const S1: usize = IMG_SIDE + 1 - K;
const P1: usize = S1 / 2;
const S2: usize = P1 + 1 - K;
const P2: usize = S2 / 2;

/// Samples per shard (see the module docs). 16 keeps every product large
/// enough for the gemm kernels and gives a 64-sample batch four shards.
pub const SHARD: usize = 16;

/// The samples of shard `i` of a batch of `n`.
fn shard(i: usize, n: usize) -> std::ops::Range<usize> {
    i * SHARD..((i + 1) * SHARD).min(n)
}

/// Index of each parameter in [`Weights::p`] and [`Grads`] (the order of
/// [`super::layers::PARAM_NAMES`]).
const W1: usize = 0;
const B1: usize = 1;
const W2: usize = 2;
const B2: usize = 3;
const W3: usize = 4;
const B3: usize = 5;
const W4: usize = 6;
const B4: usize = 7;

/// One gradient per parameter, in [`super::layers::PARAM_NAMES`] order and
/// PyTorch layouts.
pub type Grads = [Vec<f32>; 8];

/// Threads for the CPU step: `TRAINER_THREADS` if set, else every core.
/// The results do not depend on it (see the module docs).
pub fn threads() -> usize {
    std::env::var("TRAINER_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
}

/// The layer widths: `conv1` and `conv2` filters, `hidden` features.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    /// Filters of the first convolution.
    pub c1: usize,
    /// Filters of the second convolution.
    pub c2: usize,
    /// Width of the feature layer.
    pub hidden: usize,
}

impl Dims {
    fn flat(&self) -> usize {
        self.c2 * P2 * P2
    }
}

/// A `[o, c, k, k]` convolution weight reordered to `[o, k, k, c]` (the
/// column order of [`kernels::im2col`]), or back when `!to_patches`.
fn reorder(w: &[f32], c: usize, to_patches: bool) -> Vec<f32> {
    let kk = K * K;
    let mut out = vec![0f32; w.len()];
    for (dst, src) in out.chunks_exact_mut(kk * c).zip(w.chunks_exact(kk * c)) {
        for ci in 0..c {
            for t in 0..kk {
                let (torch, patch) = (ci * kk + t, t * c + ci);
                if to_patches {
                    dst[patch] = src[torch];
                } else {
                    dst[torch] = src[patch];
                }
            }
        }
    }
    out
}

/// The classifier's parameters as plain values, convolution weights in
/// patch order.
#[derive(Debug, Clone)]
pub struct Weights {
    dims: Dims,
    p: [Vec<f32>; 8],
}

impl Weights {
    /// From the eight parameters in [`super::layers::PARAM_NAMES`] order and
    /// PyTorch layouts.
    ///
    /// # Panics
    /// When a parameter's length does not fit `dims` (a bug in the caller).
    pub fn new(dims: Dims, params: [Vec<f32>; 8]) -> Self {
        let flat = dims.flat();
        let want = [
            dims.c1 * K * K,
            dims.c1,
            dims.c2 * dims.c1 * K * K,
            dims.c2,
            dims.hidden * flat,
            dims.hidden,
            NUM_CLASSES * dims.hidden,
            NUM_CLASSES,
        ];
        for (i, (p, n)) in params.iter().zip(want).enumerate() {
            assert_eq!(p.len(), n, "parameter {i}: {} values, the dims need {n}", p.len());
        }
        let mut p = params;
        p[W1] = reorder(&p[W1], 1, true);
        p[W2] = reorder(&p[W2], dims.c1, true);
        Self { dims, p }
    }

    /// Width of the feature layer.
    pub fn hidden(&self) -> usize {
        self.dims.hidden
    }
}

/// Every intermediate of one shard, kept for the backward pass and reused
/// from call to call (resized, never shrunk).
#[derive(Debug, Default)]
pub struct Scratch {
    cols1: Vec<f32>,
    y1: Vec<f32>,
    h1: Vec<f32>,
    arg1: Vec<u32>,
    cols2: Vec<f32>,
    y2: Vec<f32>,
    h2: Vec<f32>,
    arg2: Vec<u32>,
    feat: Vec<f32>,
    act: Vec<f32>,
    logits: Vec<f32>,
    dlogits: Vec<f32>,
    dfeat: Vec<f32>,
    dh2: Vec<f32>,
    dy2: Vec<f32>,
    dcols2: Vec<f32>,
    dh1: Vec<f32>,
    dy1: Vec<f32>,
    dcols1: Vec<f32>,
    dx: Vec<f32>,
    grads: Grads,
    loss: f32,
    rows: usize,
}

/// The (weight, bias) gradients of the layer whose weight is `g[i]`.
fn layer(g: &mut Grads, i: usize) -> (&mut [f32], &mut [f32]) {
    let (w, b) = g[i..i + 2].split_at_mut(1);
    (&mut w[0][..], &mut b[0][..])
}

fn sized<T: Copy + Default>(v: &mut Vec<T>, n: usize) -> &mut [T] {
    if v.len() < n {
        v.resize(n, T::default());
    }
    &mut v[..n]
}

impl Scratch {
    /// Eval or training forward of `ns` normalised images `x` (`[ns, 784]`);
    /// `drop` is the dropout multiplier per feature (`[ns, hidden]`) or `None`.
    fn forward(&mut self, w: &Weights, x: &[f32], ns: usize, drop: Option<&[f32]>) {
        let d = w.dims;
        self.rows = ns;
        let (r1, r2) = (ns * S1 * S1, ns * S2 * S2);
        kernels::im2col(x, ns, IMG_SIDE, 1, K, sized(&mut self.cols1, r1 * K * K));
        kernels::affine(
            &self.cols1,
            r1,
            &w.p[W1],
            &w.p[B1],
            sized(&mut self.y1, r1 * d.c1),
        );
        kernels::pool_relu(
            &self.y1,
            (ns, S1, d.c1),
            PoolOut::Nhwc,
            sized(&mut self.h1, ns * P1 * P1 * d.c1),
            sized(&mut self.arg1, ns * P1 * P1 * d.c1),
        );
        let row2 = K * K * d.c1;
        kernels::im2col(&self.h1, ns, P1, d.c1, K, sized(&mut self.cols2, r2 * row2));
        kernels::affine(
            &self.cols2,
            r2,
            &w.p[W2],
            &w.p[B2],
            sized(&mut self.y2, r2 * d.c2),
        );
        kernels::pool_relu(
            &self.y2,
            (ns, S2, d.c2),
            PoolOut::Nchw,
            sized(&mut self.h2, ns * d.flat()),
            sized(&mut self.arg2, ns * d.flat()),
        );
        kernels::affine(
            &self.h2,
            ns,
            &w.p[W3],
            &w.p[B3],
            sized(&mut self.feat, ns * d.hidden),
        );
        let act = sized(&mut self.act, ns * d.hidden);
        for (i, (a, &f)) in act.iter_mut().zip(&self.feat).enumerate() {
            *a = f.max(0.0) * drop.map_or(1.0, |m| m[i]);
        }
        kernels::affine(
            &self.act,
            ns,
            &w.p[W4],
            &w.p[B4],
            sized(&mut self.logits, ns * NUM_CLASSES),
        );
    }

    /// The backward pass from `self.dlogits` (`[ns, 11]`) plus, if given, a
    /// gradient on the features (`[ns, hidden]`). Fills `self.grads` when
    /// `weights` and `self.dx` (`[ns, 784]`) when `input`.
    fn backward(
        &mut self,
        w: &Weights,
        drop: Option<&[f32]>,
        feat_grad: Option<&[f32]>,
        weights: bool,
        input: bool,
    ) {
        let d = w.dims;
        let ns = self.rows;
        let (r1, r2) = (ns * S1 * S1, ns * S2 * S2);
        let g = &mut self.grads;
        if weights {
            for (v, p) in g.iter_mut().zip(&w.p) {
                sized(v, p.len());
            }
            kernels::affine_grads(&self.dlogits, &self.act, ns, layer(g, W4));
        }
        let dfeat = sized(&mut self.dfeat, ns * d.hidden);
        kernels::affine_input_grad(&self.dlogits, ns, &w.p[W4], NUM_CLASSES, dfeat);
        for (i, (df, &f)) in dfeat.iter_mut().zip(&self.feat).enumerate() {
            let pass = if f > 0.0 { drop.map_or(1.0, |m| m[i]) } else { 0.0 };
            *df *= pass;
            if let Some(extra) = feat_grad {
                *df += extra[i];
            }
        }
        if weights {
            kernels::affine_grads(&self.dfeat, &self.h2, ns, layer(g, W3));
        }
        let dh2 = sized(&mut self.dh2, ns * d.flat());
        kernels::affine_input_grad(&self.dfeat, ns, &w.p[W3], d.hidden, dh2);
        // buffers may be longer than this shard (sized for an earlier, larger one)
        let n2 = ns * d.flat();
        kernels::unpool_relu(
            &self.dh2[..n2],
            &self.h2[..n2],
            &self.arg2[..n2],
            sized(&mut self.dy2, r2 * d.c2),
        );
        if weights {
            kernels::affine_grads(&self.dy2, &self.cols2, r2, layer(g, W2));
        }
        let dcols2 = sized(&mut self.dcols2, r2 * K * K * d.c1);
        kernels::affine_input_grad(&self.dy2, r2, &w.p[W2], d.c2, dcols2);
        kernels::col2im(
            &self.dcols2,
            ns,
            P1,
            d.c1,
            K,
            sized(&mut self.dh1, ns * P1 * P1 * d.c1),
        );
        let n1 = ns * P1 * P1 * d.c1;
        kernels::unpool_relu(
            &self.dh1[..n1],
            &self.h1[..n1],
            &self.arg1[..n1],
            sized(&mut self.dy1, r1 * d.c1),
        );
        if weights {
            kernels::affine_grads(&self.dy1, &self.cols1, r1, layer(g, W1));
        }
        if input {
            let dcols1 = sized(&mut self.dcols1, r1 * K * K);
            kernels::affine_input_grad(&self.dy1, r1, &w.p[W1], d.c1, dcols1);
            kernels::col2im(
                &self.dcols1,
                ns,
                IMG_SIDE,
                1,
                K,
                sized(&mut self.dx, ns * IMG_PIXELS),
            );
        }
    }

    /// `-sum_i w_i log softmax(z_i)[y_i]` over the shard into `self.loss`,
    /// and its gradient divided by `total_weight` into `self.dlogits`.
    fn cross_entropy(&mut self, labels: &[u8], weights: &[f32], total_weight: f32) {
        let dl = sized(&mut self.dlogits, labels.len() * NUM_CLASSES);
        let mut loss = 0f32;
        for ((z, g), (&y, &wi)) in self
            .logits
            .chunks_exact(NUM_CLASSES)
            .zip(dl.chunks_exact_mut(NUM_CLASSES))
            .zip(labels.iter().zip(weights))
        {
            let m = z.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            let lse = m + z.iter().map(|&v| (v - m).exp()).sum::<f32>().ln();
            let y = usize::from(y);
            loss -= wi * (z[y] - lse);
            for (i, (gi, &zi)) in g.iter_mut().zip(z).enumerate() {
                let target = if i == y { 1.0 } else { 0.0 };
                *gi = ((zi - lse).exp() - target) * wi / total_weight;
            }
        }
        self.loss = loss;
    }
}

/// Runs `f(shard, scratch)` for shards `0..n` (scratch `i` serves shard `i`)
/// on up to `threads` threads, each taking a contiguous run of shards.
pub(crate) fn for_each_shard<S: Send>(
    scratch: &mut [S],
    n: usize,
    threads: usize,
    f: &(dyn Fn(usize, &mut S) + Sync),
) {
    let scratch = &mut scratch[..n];
    let t = threads.clamp(1, n.max(1));
    if t == 1 {
        scratch.iter_mut().enumerate().for_each(|(i, s)| f(i, s));
        return;
    }
    let per = n.div_ceil(t);
    std::thread::scope(|sc| {
        for (c, chunk) in scratch.chunks_mut(per).enumerate() {
            sc.spawn(move || {
                for (j, s) in chunk.iter_mut().enumerate() {
                    f(c * per + j, s);
                }
            });
        }
    });
}

fn ensure(scratch: &mut Vec<Scratch>, n: usize) {
    if scratch.len() < n {
        scratch.resize_with(n, Scratch::default);
    }
}

/// The sum of the shards' gradients, in shard order (so independent of
/// which thread ran which shard); takes the first shard's buffers.
fn sum_in_order<'a>(mut shards: impl Iterator<Item = &'a mut Grads>) -> Grads {
    let mut total = shards.next().map(std::mem::take).unwrap_or_default();
    for g in shards {
        for (acc, v) in total.iter_mut().zip(g.iter()) {
            for (a, x) in acc.iter_mut().zip(v) {
                *a += x;
            }
        }
    }
    total
}

/// The result of [`train_step`].
#[derive(Debug)]
pub struct StepOutput {
    /// The batch loss (sample-weighted mean cross-entropy).
    pub loss: f32,
    /// Its gradient for every parameter.
    pub grads: Grads,
}

/// Loss and gradients of one training step: normalised images `x`
/// (`[b, 784]`), labels, one loss weight per sample, and the dropout
/// multipliers (`[b, hidden]`, or `None` for no dropout).
///
/// # Panics
/// When the slices do not agree on the batch size.
pub fn train_step(
    w: &Weights,
    scratch: &mut Vec<Scratch>,
    x: &[f32],
    labels: &[u8],
    sample_weights: &[f32],
    drop: Option<&[f32]>,
    threads: usize,
) -> StepOutput {
    let b = labels.len();
    let hid = w.dims.hidden;
    assert_eq!(x.len(), b * IMG_PIXELS, "train_step: images vs labels");
    assert_eq!(sample_weights.len(), b, "train_step: weights vs labels");
    let total_weight: f32 = sample_weights.iter().sum();
    let shards = b.div_ceil(SHARD);
    ensure(scratch, shards);
    for_each_shard(scratch, shards, threads, &|i, s| {
        let r = shard(i, b);
        let drop = drop.map(|m| &m[r.start * hid..r.end * hid]);
        s.forward(w, &x[r.start * IMG_PIXELS..r.end * IMG_PIXELS], r.len(), drop);
        s.cross_entropy(&labels[r.clone()], &sample_weights[r], total_weight);
        s.backward(w, drop, None, true, false);
    });
    let loss = scratch[..shards].iter().fold(0.0, |a, s| a + s.loss);
    let mut grads = sum_in_order(scratch[..shards].iter_mut().map(|s| &mut s.grads));
    let c1 = w.dims.c1;
    grads[W1] = reorder(&grads[W1], 1, false);
    grads[W2] = reorder(&grads[W2], c1, false);
    StepOutput {
        loss: loss / total_weight,
        grads,
    }
}

/// Eval-mode logits and features of `n` normalised images, as two row-major
/// blocks `[n, 11]` and `[n, hidden]`. The intermediates stay in
/// `scratch[..ceil(n / SHARD)]` for [`input_grad`].
pub fn forward(w: &Weights, scratch: &mut Vec<Scratch>, x: &[f32], threads: usize) -> (Vec<f32>, Vec<f32>) {
    let n = x.len() / IMG_PIXELS;
    let hid = w.dims.hidden;
    let shards = forward_shards(w, scratch, x, threads);
    let mut logits = Vec::with_capacity(n * NUM_CLASSES);
    let mut feats = Vec::with_capacity(n * hid);
    for s in &scratch[..shards] {
        logits.extend_from_slice(&s.logits[..s.rows * NUM_CLASSES]);
        feats.extend_from_slice(&s.feat[..s.rows * hid]);
    }
    (logits, feats)
}

/// Eval-mode forward of the normalised images `x`, one shard per scratch;
/// returns the number of shards.
fn forward_shards(w: &Weights, scratch: &mut Vec<Scratch>, x: &[f32], threads: usize) -> usize {
    let n = x.len() / IMG_PIXELS;
    let shards = n.div_ceil(SHARD);
    ensure(scratch, shards);
    for_each_shard(scratch, shards, threads, &|i, s| {
        let r = shard(i, n);
        s.forward(w, &x[r.start * IMG_PIXELS..r.end * IMG_PIXELS], r.len(), None);
    });
    shards
}

/// Eval-mode forward of many images, `threads * SHARD` at a time (so the
/// scratch stays small); `each` sees the shards of every block in order.
fn in_blocks(
    w: &Weights,
    scratch: &mut Vec<Scratch>,
    x: &[f32],
    threads: usize,
    mut each: impl FnMut(&Scratch),
) {
    let block = threads.max(1) * SHARD;
    for chunk in x.chunks(block * IMG_PIXELS) {
        let shards = forward_shards(w, scratch, chunk, threads);
        scratch[..shards].iter().for_each(&mut each);
    }
}

/// Eval-mode logits (`[n, 11]`) of many normalised images.
pub fn logits(w: &Weights, scratch: &mut Vec<Scratch>, x: &[f32], threads: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len() / IMG_PIXELS * NUM_CLASSES);
    in_blocks(w, scratch, x, threads, |s| {
        out.extend_from_slice(&s.logits[..s.rows * NUM_CLASSES])
    });
    out
}

/// Largest value over many normalised images of `relu(pool(conv1))`,
/// `relu(pool(conv2))` and `relu(fc1)` (the activations the int8 export
/// quantises after the input).
pub fn activation_maxima(w: &Weights, scratch: &mut Vec<Scratch>, x: &[f32], threads: usize) -> [f32; 3] {
    let d = w.dims;
    let mut m = [0f32; 3];
    let max = |v: &[f32]| v.iter().fold(0f32, |a, &b| a.max(b));
    in_blocks(w, scratch, x, threads, |s| {
        let n = s.rows;
        for (slot, v) in m.iter_mut().zip([
            max(&s.h1[..n * P1 * P1 * d.c1]),
            max(&s.h2[..n * d.flat()]),
            max(&s.feat[..n * d.hidden]),
        ]) {
            *slot = slot.max(v);
        }
    });
    m
}

/// The gradient of the input of the last [`forward`] (eval mode, same `w`,
/// same `scratch`) given gradients on its logits (`[n, 11]`) and features
/// (`[n, hidden]`): `[n, 784]`.
///
/// # Panics
/// When the gradients do not match the last forward's batch.
pub fn input_grad(
    w: &Weights,
    scratch: &mut [Scratch],
    dlogits: &[f32],
    dfeat: &[f32],
    threads: usize,
) -> Vec<f32> {
    let hid = w.dims.hidden;
    let n = dlogits.len() / NUM_CLASSES;
    assert_eq!(dfeat.len(), n * hid, "input_grad: logits vs features");
    let shards = n.div_ceil(SHARD);
    assert!(scratch.len() >= shards, "input_grad: no forward pass kept");
    for_each_shard(scratch, shards, threads, &|i, s| {
        let r = shard(i, n);
        assert_eq!(s.rows, r.len(), "input_grad: the last forward had another batch");
        sized(&mut s.dlogits, r.len() * NUM_CLASSES)
            .copy_from_slice(&dlogits[r.start * NUM_CLASSES..r.end * NUM_CLASSES]);
        s.backward(w, None, Some(&dfeat[r.start * hid..r.end * hid]), false, true);
    });
    let mut dx = Vec::with_capacity(n * IMG_PIXELS);
    for s in &scratch[..shards] {
        dx.extend_from_slice(&s.dx[..s.rows * IMG_PIXELS]);
    }
    dx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_order_round_trips() {
        let w: Vec<f32> = (0..2 * 3 * 25).map(|i| i as f32).collect();
        let p = reorder(&w, 3, true);
        // filter 1, channel 2, (ky, kx) = (1, 3): torch index vs patch index
        assert_eq!(p[75 + (8) * 3 + 2], w[75 + 2 * 25 + 8]);
        assert_eq!(reorder(&p, 3, false), w);
    }

    #[test]
    fn threads_defaults_to_at_least_one() {
        assert!(threads() >= 1);
    }
}
