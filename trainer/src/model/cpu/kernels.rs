//! The data-movement kernels of the CPU step, on NHWC f32 slices: patch
//! gathering for a valid stride-1 `k x k` convolution and its adjoint, 2x2
//! max pooling fused with the ReLU that follows it and its adjoint, and the
//! dense layer's bias + product.

use super::gemm::{gemm, Mat};

/// Patches of `x` (`[n, side, side, c]`) in output order: row
/// `(s, oy, ox)`, columns `(ky, kx, ci)`, so that each patch row is `k`
/// contiguous copies of `k * c` values. `cols` holds `n * o * o * k * k * c`
/// values, `o = side - k + 1`.
pub fn im2col(x: &[f32], n: usize, side: usize, c: usize, k: usize, cols: &mut [f32]) {
    let o = side + 1 - k;
    let seg = k * c;
    let mut rows = cols.chunks_exact_mut(k * seg);
    for s in 0..n {
        for oy in 0..o {
            for ox in 0..o {
                let Some(row) = rows.next() else { return };
                for (ky, dst) in row.chunks_exact_mut(seg).enumerate() {
                    let src = ((s * side + oy + ky) * side + ox) * c;
                    dst.copy_from_slice(&x[src..src + seg]);
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: sums each patch value back onto the input
/// position it was copied from. `dx` (`[n, side, side, c]`) is overwritten.
pub fn col2im(dcols: &[f32], n: usize, side: usize, c: usize, k: usize, dx: &mut [f32]) {
    let o = side + 1 - k;
    let seg = k * c;
    dx.fill(0.0);
    let mut rows = dcols.chunks_exact(k * seg);
    for s in 0..n {
        for oy in 0..o {
            for ox in 0..o {
                let Some(row) = rows.next() else { return };
                for (ky, src) in row.chunks_exact(seg).enumerate() {
                    let at = ((s * side + oy + ky) * side + ox) * c;
                    for (d, v) in dx[at..at + seg].iter_mut().zip(src) {
                        *d += v;
                    }
                }
            }
        }
    }
}

/// Where [`pool_relu`] writes output cell `(s, oy, ox, ci)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolOut {
    /// `[n, side/2, side/2, c]`.
    Nhwc,
    /// `[n, c, side/2, side/2]` (the flattening order of the dense layer).
    Nchw,
}

/// 2x2 max pooling with stride 2 of `y` (`[n, side, side, c]`, `side` even)
/// followed by ReLU. Writes `max(window, 0)` to `out` and the index (into
/// `y`) of the window's first maximum to `arg`, both in `layout` order.
pub fn pool_relu(
    y: &[f32],
    (n, side, c): (usize, usize, usize),
    layout: PoolOut,
    out: &mut [f32],
    arg: &mut [u32],
) {
    let p = side / 2;
    // the stride between channels in the output
    let step = match layout {
        PoolOut::Nhwc => 1,
        PoolOut::Nchw => p * p,
    };
    for s in 0..n {
        for oy in 0..p {
            for ox in 0..p {
                let r0 = ((s * side + 2 * oy) * side + 2 * ox) * c;
                let corners = [r0, r0 + c, r0 + side * c, r0 + side * c + c];
                let [a, b, d, e] = corners.map(|at| &y[at..at + c]);
                let base = match layout {
                    PoolOut::Nhwc => ((s * p + oy) * p + ox) * c,
                    PoolOut::Nchw => s * c * p * p + oy * p + ox,
                };
                for ci in 0..c {
                    // the first maximum, in corner order
                    let (mut best, mut at) = (a[ci], corners[0]);
                    for (v, corner) in [(b[ci], corners[1]), (d[ci], corners[2]), (e[ci], corners[3])] {
                        if v > best {
                            (best, at) = (v, corner);
                        }
                    }
                    let o = base + ci * step;
                    out[o] = best.max(0.0);
                    arg[o] = (at + ci) as u32;
                }
            }
        }
    }
}

/// The adjoint of [`pool_relu`]: each output gradient goes whole to its
/// window's maximum where the ReLU passed it (`out > 0`). `dy` is overwritten.
pub fn unpool_relu(dout: &[f32], out: &[f32], arg: &[u32], dy: &mut [f32]) {
    dy.fill(0.0);
    for ((&g, &o), &a) in dout.iter().zip(out).zip(arg) {
        if o > 0.0 {
            dy[a as usize] += g;
        }
    }
}

/// `out = input * w^T + b` for `rows` rows: `input` `[rows, nin]`, `w`
/// `[nout, nin]` (PyTorch layout), `b` `[nout]`, `out` `[rows, nout]`.
pub fn affine(input: &[f32], rows: usize, w: &[f32], b: &[f32], out: &mut [f32]) {
    let nout = b.len();
    let nin = w.len() / nout.max(1);
    for row in out[..rows * nout].chunks_exact_mut(nout) {
        row.copy_from_slice(b);
    }
    gemm(rows, nout, nin, out, true, Mat::rows(input, nin), Mat::t(w, nin));
}

/// The weight and bias gradients of [`affine`] given `dout` `[rows, nout]`:
/// `gw = dout^T * input` (`[nout, nin]`), `gb` = column sums of `dout`.
pub fn affine_grads(dout: &[f32], input: &[f32], rows: usize, (gw, gb): (&mut [f32], &mut [f32])) {
    let nout = gb.len();
    let nin = gw.len() / nout.max(1);
    gemm(
        nout,
        nin,
        rows,
        gw,
        false,
        Mat::t(dout, nout),
        Mat::rows(input, nin),
    );
    gb.fill(0.0);
    for row in dout[..rows * nout].chunks_exact(nout) {
        for (g, d) in gb.iter_mut().zip(row) {
            *g += d;
        }
    }
}

/// The input gradient of [`affine`]: `din = dout * w` (`[rows, nin]`).
pub fn affine_input_grad(dout: &[f32], rows: usize, w: &[f32], nout: usize, din: &mut [f32]) {
    let nin = w.len() / nout.max(1);
    gemm(
        rows,
        nin,
        nout,
        din,
        false,
        Mat::rows(dout, nout),
        Mat::rows(w, nin),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn col2im_is_the_adjoint_of_im2col() {
        // <im2col(x), g> == <x, col2im(g)> for any x, g
        let (n, side, c, k) = (2, 6, 3, 3);
        let o = side + 1 - k;
        let x: Vec<f32> = (0..n * side * side * c)
            .map(|i| ((i * 7 % 13) as f32) - 6.0)
            .collect();
        let g: Vec<f32> = (0..n * o * o * k * k * c)
            .map(|i| ((i * 5 % 11) as f32) - 5.0)
            .collect();
        let mut cols = vec![0f32; g.len()];
        im2col(&x, n, side, c, k, &mut cols);
        let mut dx = vec![1f32; x.len()];
        col2im(&g, n, side, c, k, &mut dx);
        let lhs: f32 = cols.iter().zip(&g).map(|(a, b)| a * b).sum();
        let rhs: f32 = x.iter().zip(&dx).map(|(a, b)| a * b).sum();
        assert_eq!(lhs, rhs);
        // one patch by hand: row (s=0, oy=1, ox=2), column (ky=2, kx=1, ci=0)
        let row = o + 2;
        let col = (2 * k + 1) * c;
        assert_eq!(cols[row * k * k * c + col], x[((1 + 2) * side + 2 + 1) * c]);
    }

    #[test]
    fn pooling_takes_the_first_maximum_then_relu_and_routes_back() {
        // one 4x4 single-channel image: windows hold a tie and a negative max
        #[rustfmt::skip]
        let y = [
            1.0, 3.0,   -4.0, -2.0,
            3.0, 0.0,   -3.0, -5.0,
            0.5, 0.5,    7.0, 1.0,
            0.5, 0.5,    2.0, 9.0,
        ];
        let (mut out, mut arg) = ([0f32; 4], [0u32; 4]);
        pool_relu(&y, (1, 4, 1), PoolOut::Nhwc, &mut out, &mut arg);
        assert_eq!(out, [3.0, 0.0, 0.5, 9.0]);
        assert_eq!(arg, [1, 3, 8, 15]);
        let mut dy = [0f32; 16];
        unpool_relu(&[1.0, 2.0, 3.0, 4.0], &out, &arg, &mut dy);
        // the negative window gets nothing (ReLU), the others at their argmax
        let mut want = [0f32; 16];
        (want[1], want[8], want[15]) = (1.0, 3.0, 4.0);
        assert_eq!(dy, want);
    }

    #[test]
    fn nchw_pooling_transposes_channels_first() {
        // [1, 2, 2, 2]: one window, two channels
        let y = [1.0, -1.0, 2.0, 5.0, 0.0, 0.0, 0.0, 0.0];
        let (mut a, mut b) = ([0f32; 2], [0u32; 2]);
        pool_relu(&y, (1, 2, 2), PoolOut::Nchw, &mut a, &mut b);
        assert_eq!((a, b), ([2.0, 5.0], [2, 3]));
    }

    #[test]
    fn affine_and_its_gradients_by_hand() {
        // 2 rows, 3 inputs, 2 outputs
        let x = [1.0, 2.0, 3.0, -1.0, 0.0, 1.0];
        let w = [1.0, 0.0, -1.0, 2.0, 1.0, 0.0];
        let b = [0.5, -0.5];
        let mut out = [0f32; 4];
        affine(&x, 2, &w, &b, &mut out);
        assert_eq!(out, [-1.5, 3.5, -1.5, -2.5]);
        let dout = [1.0, 2.0, -1.0, 0.5];
        let (mut gw, mut gb) = ([0f32; 6], [0f32; 2]);
        affine_grads(&dout, &x, 2, (&mut gw, &mut gb));
        assert_eq!(gw, [2.0, 2.0, 2.0, 1.5, 4.0, 6.5]);
        assert_eq!(gb, [0.0, 2.5]);
        let mut din = [0f32; 6];
        affine_input_grad(&dout, 2, &w, 2, &mut din);
        assert_eq!(din, [5.0, 2.0, -1.0, 0.0, 0.5, 1.0]);
    }
}
