//! `dst (+)= lhs * rhs` on f32 slices: a bounds-checked wrapper over the
//! `gemm` crate (the kernels candle's CPU matmul calls), always
//! single-threaded, because the caller parallelises over batch shards.
//!
//! This is the crate's one `unsafe` block (the workspace denies `unsafe_code`
//! and this module allows it): `gemm::gemm` takes raw pointers and strides.
//! Every index it can touch is checked against the slices first.
#![allow(unsafe_code)]

/// A read-only matrix view: element `(r, c)` is `data[r * rs + c * cs]`.
#[derive(Debug, Clone, Copy)]
pub struct Mat<'a> {
    /// The values.
    pub data: &'a [f32],
    /// Row stride.
    pub rs: usize,
    /// Column stride.
    pub cs: usize,
}

impl<'a> Mat<'a> {
    /// A row-major matrix with `cols` columns.
    pub fn rows(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose of a row-major matrix with `cols` columns.
    pub fn t(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            rs: 1,
            cs: cols,
        }
    }

    fn check(&self, rows: usize, cols: usize, what: &str) {
        if rows > 0 && cols > 0 {
            let last = (rows - 1) * self.rs + (cols - 1) * self.cs;
            assert!(
                last < self.data.len(),
                "gemm: {what} {rows}x{cols} (strides {}, {}) needs {} values, has {}",
                self.rs,
                self.cs,
                last + 1,
                self.data.len()
            );
        }
        assert!(
            isize::try_from(self.rs).is_ok() && isize::try_from(self.cs).is_ok(),
            "gemm: {what} strides overflow"
        );
    }
}

/// `dst = lhs * rhs` (or `dst += lhs * rhs` when `accumulate`), with `lhs`
/// `m x k`, `rhs` `k x n` and `dst` row-major `m x n`.
///
/// # Panics
/// When a view is too short for its shape (a bug in the caller).
pub fn gemm(m: usize, n: usize, k: usize, dst: &mut [f32], accumulate: bool, lhs: Mat<'_>, rhs: Mat<'_>) {
    assert!(dst.len() >= m * n, "gemm: dst {m}x{n} has {} values", dst.len());
    lhs.check(m, k, "lhs");
    rhs.check(k, n, "rhs");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst[..m * n].fill(0.0);
        }
        return;
    }
    // SAFETY: `check` proved that every (row, col) the kernel reads, at
    // `ptr + row * rs + col * cs` with row < rows and col < cols, lies inside
    // its slice, and `dst` holds m * n values written at `row * n + col`.
    // The strides fit in isize (checked). `dst` is a unique borrow, so it
    // aliases neither input. `Parallelism::None`: no threads are spawned.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr(),
            rhs.cs as isize,
            rhs.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, lhs: Mat<'_>, rhs: Mat<'_>) -> Vec<f32> {
        let mut out = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                for p in 0..k {
                    out[i * n + j] += lhs.data[i * lhs.rs + p * lhs.cs] * rhs.data[p * rhs.rs + j * rhs.cs];
                }
            }
        }
        out
    }

    #[test]
    fn products_match_the_naive_triple_loop_for_every_layout() {
        let (m, n, k) = (7, 5, 9);
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 37 % 11) as f32 - 5.0) / 4.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 13 % 7) as f32 - 3.0) / 2.0).collect();
        for (lhs, rhs) in [
            (Mat::rows(&a, k), Mat::rows(&b, n)),
            (Mat::t(&a, m), Mat::rows(&b, n)),
            (Mat::rows(&a, k), Mat::t(&b, k)),
            (Mat::t(&a, m), Mat::t(&b, k)),
        ] {
            let want = naive(m, n, k, lhs, rhs);
            let mut got = vec![1f32; m * n];
            gemm(m, n, k, &mut got, false, lhs, rhs);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-4, "{g} vs {w}");
            }
            // accumulate adds to what is there
            gemm(m, n, k, &mut got, true, lhs, rhs);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - 2.0 * w).abs() < 1e-4, "{g} vs {}", 2.0 * w);
            }
        }
    }

    #[test]
    #[should_panic(expected = "needs")]
    fn a_short_view_is_refused_before_any_read() {
        let a = vec![0f32; 10];
        let mut d = vec![0f32; 4];
        gemm(2, 2, 6, &mut d, false, Mat::rows(&a, 6), Mat::rows(&a, 2));
    }
}
