//! Fast CPU building blocks as candle custom ops (NHWC layout).
//!
//! candle 0.11's CPU `conv2d` backward is slow and its `max_pool2d` backward
//! scales gradients by the pooling window's mean of the argmax mask (1/4 of the
//! true value for 2x2), so the classifier uses these instead on the CPU:
//!
//! - [`Im2Col`]: `[b, h, w, c]` -> `[b*ho*wo, c*k*k]` patches (column order
//!   `c, ky, kx`, matching a `[o, c, k, k]` weight reshaped to `[o, c*k*k]`), so a
//!   convolution is one matmul; its backward is `col2im`.
//! - [`MaxPool2`]: 2x2 max pooling with stride 2; its backward routes each
//!   output gradient whole to the first maximum of its window.
//!
//! Both support f32 and f64 (f64 for finite-difference gradient tests). On other
//! devices the model uses candle's own ops ([`conv2d_nhwc_native`],
//! [`max_pool2_native`]), and tests check the two paths agree.

use candle_core::{backend::BackendStorage, CpuStorage, CustomOp1, Layout, Result, Shape, Storage, Tensor};

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

/// Patch gathering (im2col) for a valid (no padding), stride-1, `k x k` convolution.
#[derive(Debug, Clone, Copy)]
pub struct Im2Col {
    /// Kernel side.
    pub k: usize,
}

impl Im2Col {
    fn out_dims(&self, h: usize, w: usize) -> Result<(usize, usize)> {
        if h < self.k || w < self.k {
            candle_core::bail!("im2col: input {h}x{w} smaller than kernel {}", self.k)
        }
        Ok((h - self.k + 1, w - self.k + 1))
    }

    /// Patches in output order (no zero-fill pass): row `(b, oy, ox)`,
    /// column `(ci, ky, kx)`.
    fn fwd<T: Copy>(&self, x: &[T], b: usize, h: usize, w: usize, c: usize) -> Vec<T> {
        let k = self.k;
        let (ho, wo) = (h - k + 1, w - k + 1);
        let mut out = Vec::with_capacity(b * ho * wo * c * k * k);
        for bi in 0..b {
            for oy in 0..ho {
                for ox in 0..wo {
                    for ci in 0..c {
                        for ky in 0..k {
                            let src = (bi * h + oy + ky) * w + ox;
                            out.extend((src..src + k).map(|p| x[p * c + ci]));
                        }
                    }
                }
            }
        }
        out
    }

    fn bwd<T: Copy + Default + std::ops::AddAssign>(
        &self,
        g: &[T],
        b: usize,
        h: usize,
        w: usize,
        c: usize,
    ) -> Vec<T> {
        let k = self.k;
        let (ho, wo) = (h - k + 1, w - k + 1);
        let cols = c * k * k;
        let mut out = vec![T::default(); b * h * w * c];
        for bi in 0..b {
            for oy in 0..ho {
                for ox in 0..wo {
                    let row = ((bi * ho + oy) * wo + ox) * cols;
                    let src = &g[row..row + cols];
                    for ky in 0..k {
                        for kx in 0..k {
                            let dst = ((bi * h + oy + ky) * w + ox + kx) * c;
                            for ci in 0..c {
                                out[dst + ci] += src[(ci * k + ky) * k + kx];
                            }
                        }
                    }
                }
            }
        }
        out
    }
}

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "im2col-nhwc"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, h, w, c) = dims4(layout.shape(), self.name())?;
        let (ho, wo) = self.out_dims(h, w)?;
        let shape = Shape::from((b * ho * wo, c * self.k * self.k));
        let out = match storage {
            CpuStorage::F32(d) => {
                CpuStorage::F32(self.fwd(contiguous_slice(d, layout, self.name())?, b, h, w, c))
            }
            CpuStorage::F64(d) => {
                CpuStorage::F64(self.fwd(contiguous_slice(d, layout, self.name())?, b, h, w, c))
            }
            s => candle_core::bail!("im2col: unsupported dtype {:?}", s.dtype()),
        };
        Ok((out, shape))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let (b, h, w, c) = arg.dims4()?;
        let dev = arg.device();
        let out = with_cpu_data(
            grad_res,
            "col2im",
            |g| Tensor::from_vec(self.bwd(g, b, h, w, c), (b, h, w, c), dev),
            |g| Tensor::from_vec(self.bwd(g, b, h, w, c), (b, h, w, c), dev),
        )??;
        Ok(Some(out))
    }
}

/// 2x2 max pooling, stride 2, NHWC; odd trailing rows/columns are dropped.
#[derive(Debug, Clone, Copy)]
pub struct MaxPool2;

impl MaxPool2 {
    /// Calls `f` with the offsets (into the input) of the four corners of
    /// each output cell's window, in output order; channel `ci` of corner
    /// `j` is at `corners[j] + ci`.
    fn windows(b: usize, h: usize, w: usize, c: usize, mut f: impl FnMut([usize; 4])) {
        let (ho, wo) = (h / 2, w / 2);
        for bi in 0..b {
            for oy in 0..ho {
                let r0 = (bi * h + 2 * oy) * w * c; // start of input row 2*oy
                let r1 = r0 + w * c; // start of input row 2*oy + 1
                for ox in 0..wo {
                    let (p, q) = (2 * ox * c, (2 * ox + 1) * c);
                    f([r0 + p, r0 + q, r1 + p, r1 + q]);
                }
            }
        }
    }

    /// The maximum of each output cell's window (the value at [`Self::argmax`]).
    fn max<T: Copy + PartialOrd>(x: &[T], b: usize, h: usize, w: usize, c: usize) -> Vec<T> {
        let mut out = Vec::with_capacity(b * (h / 2) * (w / 2) * c);
        Self::windows(b, h, w, c, |corners| {
            let cands = corners.map(|o| &x[o..o + c]);
            out.extend((0..c).map(|ci| {
                // the first maximum, compared as `argmax` does
                let mut best = cands[0][ci];
                for cand in &cands[1..] {
                    if cand[ci] > best {
                        best = cand[ci];
                    }
                }
                best
            }));
        });
        out
    }

    /// The gradient of the input: each output gradient routed whole to the
    /// first maximum of its window.
    fn route<T: Copy + Default + PartialOrd + std::ops::AddAssign>(
        x: &[T],
        g: &[T],
        (b, h, w, c): (usize, usize, usize, usize),
    ) -> Vec<T> {
        let mut out = vec![T::default(); b * h * w * c];
        for (i, &gv) in Self::argmax(x, b, h, w, c).iter().zip(g) {
            out[*i] += gv;
        }
        out
    }

    /// Index (into the input) of the first maximum of each output cell's window.
    fn argmax<T: Copy + PartialOrd>(x: &[T], b: usize, h: usize, w: usize, c: usize) -> Vec<usize> {
        let mut idx = Vec::with_capacity(b * (h / 2) * (w / 2) * c);
        Self::windows(b, h, w, c, |cands| {
            for ci in 0..c {
                let mut best = cands[0] + ci;
                for &base in &cands[1..] {
                    if x[base + ci] > x[best] {
                        best = base + ci;
                    }
                }
                idx.push(best);
            }
        });
        idx
    }
}

impl CustomOp1 for MaxPool2 {
    fn name(&self) -> &'static str {
        "maxpool2-nhwc"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, h, w, c) = dims4(layout.shape(), self.name())?;
        let shape = Shape::from((b, h / 2, w / 2, c));
        let out = match storage {
            CpuStorage::F32(d) => {
                CpuStorage::F32(Self::max(contiguous_slice(d, layout, self.name())?, b, h, w, c))
            }
            CpuStorage::F64(d) => {
                CpuStorage::F64(Self::max(contiguous_slice(d, layout, self.name())?, b, h, w, c))
            }
            s => candle_core::bail!("maxpool2: unsupported dtype {:?}", s.dtype()),
        };
        Ok((out, shape))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let dims = arg.dims4()?;
        let dev = arg.device();
        let grad = grad_res.to_dtype(arg.dtype())?;
        let out = with_cpu_data(
            arg,
            "maxpool2 backward",
            |x| {
                with_cpu_data(
                    &grad,
                    "maxpool2 backward",
                    |g: &[f32]| Tensor::from_vec(Self::route(x, g, dims), dims, dev),
                    |_: &[f64]| candle_core::bail!("maxpool2 backward: mixed dtypes"),
                )
            },
            |x| {
                with_cpu_data(
                    &grad,
                    "maxpool2 backward",
                    |_: &[f32]| candle_core::bail!("maxpool2 backward: mixed dtypes"),
                    |g: &[f64]| Tensor::from_vec(Self::route(x, g, dims), dims, dev),
                )
            },
        )???;
        Ok(Some(out))
    }
}

/// Valid stride-1 convolution of an NHWC input with a `[o, c, k, k]` weight and
/// `[o]` bias, as im2col + one matmul (CPU fast path). Output `[b, ho, wo, o]`.
pub fn conv2d_nhwc_im2col(x: &Tensor, w: &Tensor, bias: &Tensor) -> Result<Tensor> {
    let (b, h, wd, _c) = x.dims4()?;
    let (o, c, k, _) = w.dims4()?;
    let cols = x.contiguous()?.apply_op1(Im2Col { k })?; // [b*ho*wo, c*k*k]
    let wm = w.reshape((o, c * k * k))?; // [o, c*k*k]
    let y = cols.matmul(&wm.t()?)?.broadcast_add(bias)?; // [b*ho*wo, o]
    y.reshape((b, h - k + 1, wd - k + 1, o)) // [b, ho, wo, o]
}

/// The same convolution with candle's native `conv2d` (any device).
pub fn conv2d_nhwc_native(x: &Tensor, w: &Tensor, bias: &Tensor) -> Result<Tensor> {
    let o = w.dim(0)?;
    let y = x.permute((0, 3, 1, 2))?.contiguous()?.conv2d(w, 0, 1, 1, 1)?; // [b, o, ho, wo]
    let y = y.broadcast_add(&bias.reshape((1, o, 1, 1))?)?;
    y.permute((0, 2, 3, 1))?.contiguous() // [b, ho, wo, o]
}

/// 2x2 max pooling with the custom op (CPU fast path).
pub fn max_pool2_custom(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(MaxPool2)
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
    use candle_core::{DType, Device, Var};

    /// Central differences in f64 with step 1e-5 on O(1) values: truncation
    /// error ~1e-10 and rounding ~1e-11, so 1e-6 leaves a wide margin.
    const FD_TOL: f64 = 1e-6;
    const FD_EPS: f64 = 1e-5;
    /// f32 forward of the two conv paths: different summation orders over at
    /// most 400 products of O(1) terms.
    const PATH_TOL: f32 = 1e-4;

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
    fn im2col_gradient_matches_finite_differences() -> Result<()> {
        check_grad(|x| x.apply_op1(Im2Col { k: 3 }), &[2, 5, 4, 3])
    }

    #[test]
    fn maxpool_gradient_matches_finite_differences() -> Result<()> {
        // odd sizes exercise the dropped trailing row/column
        check_grad(max_pool2_custom, &[2, 5, 6, 3])
    }

    #[test]
    fn conv_gradients_match_finite_differences_for_input_weight_and_bias() -> Result<()> {
        let dev = Device::Cpu;
        let w = Tensor::from_vec(seeded(&[4, 3, 3, 3], 7), (4, 3, 3, 3), &dev)?;
        let b = Tensor::from_vec(seeded(&[4], 8), 4, &dev)?;
        let x = Tensor::from_vec(seeded(&[2, 6, 5, 3], 9), (2, 6, 5, 3), &dev)?;
        check_grad(|x| conv2d_nhwc_im2col(x, &w, &b), &[2, 6, 5, 3])?;
        check_grad(|w| conv2d_nhwc_im2col(&x, w, &b), &[4, 3, 3, 3])?;
        check_grad(|b| conv2d_nhwc_im2col(&x, &w, b), &[4])
    }

    #[test]
    fn fast_paths_match_candle_native_ops() -> Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::from_vec(seeded(&[3, 12, 12, 4], 3), (3, 12, 12, 4), &dev)?.to_dtype(DType::F32)?;
        let w = Tensor::from_vec(seeded(&[8, 4, 5, 5], 4), (8, 4, 5, 5), &dev)?.to_dtype(DType::F32)?;
        let b = Tensor::from_vec(seeded(&[8], 5), 8, &dev)?.to_dtype(DType::F32)?;
        let fast = conv2d_nhwc_im2col(&x, &w, &b)?;
        let native = conv2d_nhwc_native(&x, &w, &b)?;
        let diff = (fast - native)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < PATH_TOL, "conv paths differ by {diff}");
        let diff = (max_pool2_custom(&x)? - max_pool2_native(&x)?)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        assert_eq!(diff, 0.0);
        Ok(())
    }

    #[test]
    fn native_pool_gradient_is_exact() -> Result<()> {
        // the fallback path used on CUDA must route gradients whole, too
        check_grad(max_pool2_native, &[1, 4, 4, 2])
    }

    #[test]
    fn bad_shapes_are_errors_not_panics() {
        let t = Tensor::zeros((1, 2, 2, 1), DType::F32, &Device::Cpu).expect("zeros");
        assert!(t.apply_op1(Im2Col { k: 3 }).is_err());
        let t3 = Tensor::zeros((2, 2, 1), DType::F32, &Device::Cpu).expect("zeros");
        assert!(t3.apply_op1(MaxPool2).is_err());
    }
}
