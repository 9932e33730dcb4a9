//! The classifier's candle building blocks beyond candle's own layers (NHWC).
//!
//! - [`FrozenClassifier`]: on the CPU, the whole frozen classifier as one
//!   graph node whose forward and input gradient are the hand-written
//!   [`super::cpu`] passes (the generator step backpropagates through it).
//! - [`conv2d_nhwc_native`] and [`max_pool2_native`]: the candle graph of the
//!   same layers on any device (CUDA, and the reference the CPU path is
//!   tested against). candle 0.11's `max_pool2d` backward scales gradients by
//!   the window's mean of the argmax mask (1/4 of the true value for 2x2), so
//!   pooling is written from reshapes and `max` reductions, whose backward is
//!   exact.

use super::cpu;
use candle_core::{backend::BackendStorage, CpuStorage, CustomOp1, Layout, Result, Shape, Storage, Tensor};
use ood_core::{IMG_SIDE, NUM_CLASSES};
use std::sync::{Arc, Mutex};

fn contiguous_slice<'a, T>(data: &'a [T], layout: &Layout, op: &str) -> Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{op}: input must be contiguous"),
    }
}

/// Runs `on_f32` or `on_f64` on the contiguous CPU data of `t`, read in
/// place (no copy when `t` is already contiguous).
fn with_cpu_data<R>(
    t: &Tensor,
    op: &str,
    on_f32: impl FnOnce(&[f32]) -> R,
    on_f64: impl FnOnce(&[f64]) -> R,
) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(CpuStorage::F32(d)) => Ok(on_f32(contiguous_slice(d, layout, op)?)),
        Storage::Cpu(CpuStorage::F64(d)) => Ok(on_f64(contiguous_slice(d, layout, op)?)),
        _ => candle_core::bail!("{op}: needs f32 or f64 data on the CPU"),
    }
}

fn dims4(shape: &Shape, op: &str) -> Result<(usize, usize, usize, usize)> {
    match shape.dims() {
        &[b, h, w, c] => Ok((b, h, w, c)),
        d => candle_core::bail!("{op}: expected a [b, h, w, c] tensor, got {d:?}"),
    }
}

/// The whole frozen classifier as one graph node (CPU, f32): input
/// `[b, 28, 28, 1]` (normalised) -> `[b, 11 + hidden]`, each row the logits
/// then the features; its backward gives the input's gradient only (the
/// weights are constants here). Forward and backward are [`super::cpu`]'s;
/// the forward's intermediates wait in `scratch` for the backward.
#[derive(Debug, Clone)]
pub struct FrozenClassifier {
    /// The weights.
    pub weights: Arc<cpu::Weights>,
    /// Intermediates of the last forward.
    pub scratch: Arc<Mutex<Vec<cpu::Scratch>>>,
    /// Threads to run on.
    pub threads: usize,
}

impl FrozenClassifier {
    fn scratch(&self) -> std::sync::MutexGuard<'_, Vec<cpu::Scratch>> {
        // a poisoned lock only means another thread panicked; the buffers
        // are overwritten by each forward
        self.scratch.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl CustomOp1 for FrozenClassifier {
    fn name(&self) -> &'static str {
        "frozen-classifier"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, h, w, c) = dims4(layout.shape(), self.name())?;
        if (h, w, c) != (IMG_SIDE, IMG_SIDE, 1) {
            candle_core::bail!(
                "frozen classifier: expected [b, 28, 28, 1], got {:?}",
                layout.dims()
            )
        }
        let CpuStorage::F32(d) = storage else {
            candle_core::bail!("frozen classifier: needs f32, got {:?}", storage.dtype())
        };
        let x = contiguous_slice(d, layout, self.name())?;
        let hid = self.weights.hidden();
        let (logits, feats) = cpu::forward(&self.weights, &mut self.scratch(), x, self.threads);
        let mut out = Vec::with_capacity(b * (NUM_CLASSES + hid));
        for (z, f) in logits.chunks_exact(NUM_CLASSES).zip(feats.chunks_exact(hid)) {
            out.extend_from_slice(z);
            out.extend_from_slice(f);
        }
        Ok((CpuStorage::F32(out), Shape::from((b, NUM_CLASSES + hid))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let dims = arg.dims4()?;
        let hid = self.weights.hidden();
        let grad = grad_res.to_dtype(candle_core::DType::F32)?;
        let dx = with_cpu_data(
            &grad,
            "frozen classifier backward",
            |g| {
                let mut dl = Vec::with_capacity(dims.0 * NUM_CLASSES);
                let mut df = Vec::with_capacity(dims.0 * hid);
                for row in g.chunks_exact(NUM_CLASSES + hid) {
                    dl.extend_from_slice(&row[..NUM_CLASSES]);
                    df.extend_from_slice(&row[NUM_CLASSES..]);
                }
                Ok(cpu::input_grad(
                    &self.weights,
                    &mut self.scratch(),
                    &dl,
                    &df,
                    self.threads,
                ))
            },
            |_| candle_core::bail!("frozen classifier backward: f64 gradient"),
        )??;
        Ok(Some(Tensor::from_vec(dx, dims, arg.device())?))
    }
}

/// Valid stride-1 convolution of an NHWC input with a `[o, c, k, k]` weight
/// and `[o]` bias, with candle's `conv2d` (any device). Output `[b, ho, wo, o]`.
pub fn conv2d_nhwc_native(x: &Tensor, w: &Tensor, bias: &Tensor) -> Result<Tensor> {
    let o = w.dim(0)?;
    let y = x.permute((0, 3, 1, 2))?.contiguous()?.conv2d(w, 0, 1, 1, 1)?; // [b, o, ho, wo]
    let y = y.broadcast_add(&bias.reshape((1, o, 1, 1))?)?;
    y.permute((0, 2, 3, 1))?.contiguous() // [b, ho, wo, o]
}

/// 2x2 max pooling from reshapes and `max` reductions (any device). Its
/// backward is exact, unlike candle 0.11's `max_pool2d` backward.
pub fn max_pool2_native(x: &Tensor) -> Result<Tensor> {
    let (b, h, w, c) = x.dims4()?;
    let (ho, wo) = (h / 2, w / 2);
    let x = x.narrow(1, 0, 2 * ho)?.narrow(2, 0, 2 * wo)?.contiguous()?;
    x.reshape((b, ho, 2, wo, 2, c))? // [b, ho, 2, wo, 2, c]
        .max(4)? // [b, ho, 2, wo, c]
        .max(2) // [b, ho, wo, c]
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Central differences in f64 with step 1e-5 on O(1) values: truncation
    /// error ~1e-10 and rounding ~1e-11, so 1e-6 leaves a wide margin.
    const FD_TOL: f64 = 1e-6;
    const FD_EPS: f64 = 1e-5;

    fn seeded(shape: &[usize], seed: u64) -> Vec<f64> {
        let n: usize = shape.iter().product();
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
            })
            .collect()
    }

    /// Checks d(sum(f(x) * r))/dx from backprop against central differences.
    fn check_grad(f: impl Fn(&Tensor) -> Result<Tensor>, shape: &[usize]) -> Result<()> {
        let dev = Device::Cpu;
        let x0 = seeded(shape, 1);
        let x = Var::from_vec(x0.clone(), shape, &dev)?;
        let y = f(x.as_tensor())?;
        let r = Tensor::from_vec(seeded(y.dims(), 2), y.dims(), &dev)?;
        let loss = (y * &r)?.sum_all()?;
        let g = loss.backward()?;
        let analytic = g
            .get(x.as_tensor())
            .expect("gradient")
            .flatten_all()?
            .to_vec1::<f64>()?;
        let eval = |v: Vec<f64>| -> Result<f64> {
            let t = Tensor::from_vec(v, shape, &dev)?;
            (f(&t)? * &r)?.sum_all()?.to_scalar::<f64>()
        };
        for i in 0..x0.len() {
            let (mut p, mut m) = (x0.clone(), x0.clone());
            p[i] += FD_EPS;
            m[i] -= FD_EPS;
            let numeric = (eval(p)? - eval(m)?) / (2.0 * FD_EPS);
            assert!(
                (numeric - analytic[i]).abs() < FD_TOL,
                "grad[{i}]: backprop {} vs finite difference {numeric}",
                analytic[i]
            );
        }
        Ok(())
    }

    #[test]
    fn maxpool_gradient_matches_finite_differences() -> Result<()> {
        // odd sizes exercise the dropped trailing row/column
        check_grad(max_pool2_native, &[2, 5, 6, 3])
    }

    #[test]
    fn conv_gradients_match_finite_differences_for_input_weight_and_bias() -> Result<()> {
        let dev = Device::Cpu;
        let w = Tensor::from_vec(seeded(&[4, 3, 3, 3], 7), (4, 3, 3, 3), &dev)?;
        let b = Tensor::from_vec(seeded(&[4], 8), 4, &dev)?;
        let x = Tensor::from_vec(seeded(&[2, 6, 5, 3], 9), (2, 6, 5, 3), &dev)?;
        check_grad(|x| conv2d_nhwc_native(x, &w, &b), &[2, 6, 5, 3])?;
        check_grad(|w| conv2d_nhwc_native(&x, w, &b), &[4, 3, 3, 3])?;
        check_grad(|b| conv2d_nhwc_native(&x, &w, b), &[4])
    }
}
