//! A differentiable pen: strokes given by their points and widths, drawn as
//! a 28x28 image, with the exact gradient of the image with respect to every
//! point and width (a candle custom op, so the generator that predicts the
//! strokes trains through it).
//!
//! The image is the union of soft segments. For a pixel centre `q` and a
//! segment `ab` of a stroke with half-width `w`, the segment's ink is
//! `sigmoid((w - d) / SOFT)` with `d` the distance from `q` to the segment;
//! the segments combine as independent layers of ink,
//! `px = 1 - prod (1 - ink)`, so overlapping strokes saturate at 1 instead of
//! adding up. `SOFT` gives the edges MNIST's roughly one-pixel ramp.
//!
//! Layout of one image's parameters (one row of the op's input): for each of
//! `strokes` strokes, its `points` points as `x0, y0, x1, y1, ...` in pixel
//! units (`0..28`, pixel `(c, r)` covers `[c, c+1) x [r, r+1)`), then the
//! stroke's half-width in pixels. Consecutive points are joined by segments.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use ood_core::{IMG_PIXELS, IMG_SIDE};

/// Edge softness of a stroke, in pixels.
pub const SOFT: f32 = 0.4;
/// Pixels farther than this many `SOFT`s outside a stroke get no ink from
/// it (`sigmoid(-9)` = 1.2e-4): the renderer only visits the pixels near
/// each segment.
const REACH: f32 = 9.0;
/// The most parameters one image may have (a [`Touch`] holds indices into
/// them as `u16`).
pub const MAX_PARAMS: usize = u16::MAX as usize;
/// Keeps the distance differentiable on the segment itself.
const DIST_EPS: f32 = 1e-4;

/// The shape of one image's strokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pen {
    /// Strokes per image.
    pub strokes: usize,
    /// Points per stroke (at least 2).
    pub points: usize,
}

impl Pen {
    /// Parameters per stroke: its points' coordinates and its half-width.
    pub fn per_stroke(&self) -> usize {
        2 * self.points + 1
    }

    /// Parameters per image.
    pub fn per_image(&self) -> usize {
        self.strokes * self.per_stroke()
    }

    /// Each segment of one image's parameters `p` as `(ax, ay, bx, by, w)`,
    /// with the index of its first point's x in `p` and of its width.
    fn segments(self, p: &[f32]) -> impl Iterator<Item = Segment> + '_ {
        (0..self.strokes).flat_map(move |s| {
            let base = s * self.per_stroke();
            let wi = base + 2 * self.points;
            (0..self.points - 1).map(move |k| {
                let i = base + 2 * k;
                Segment {
                    a: [p[i], p[i + 1]],
                    b: [p[i + 2], p[i + 3]],
                    w: p[wi],
                    ai: i,
                    wi,
                }
            })
        })
    }
}

struct Segment {
    a: [f32; 2],
    b: [f32; 2],
    w: f32,
    /// Index of `a`'s x in the image's parameters (`b` follows at `ai + 2`).
    ai: usize,
    /// Index of the width.
    wi: usize,
}

/// What one pixel sees of one segment: all the backward pass needs, so that
/// a forward pass can keep it ([`draw_kept`]) instead of the backward pass
/// measuring every distance again.
#[derive(Debug, Clone, Copy, Default)]
pub struct Touch {
    /// Pixel index.
    q: u16,
    /// Index of the segment's first point's x in the image's parameters.
    ai: u16,
    /// Index of the segment's width.
    wi: u16,
    /// Ink of the segment there.
    ink: f32,
    /// Closest point of the segment minus the pixel centre, over the distance.
    dir: [f32; 2],
    /// Position of the closest point along the segment (0 = a, 1 = b).
    t: f32,
}

impl Segment {
    /// Calls `f` for every pixel within reach of the segment.
    fn touch(&self, mut f: impl FnMut(Touch)) {
        let reach = self.w.max(0.0) + REACH * SOFT;
        let lo = |u: f32, v: f32| ((u.min(v) - reach).floor().max(0.0)) as usize;
        let hi = |u: f32, v: f32| ((u.max(v) + reach).ceil().clamp(0.0, IMG_SIDE as f32)) as usize;
        let (x0, x1) = (lo(self.a[0], self.b[0]), hi(self.a[0], self.b[0]));
        let (y0, y1) = (lo(self.a[1], self.b[1]), hi(self.a[1], self.b[1]));
        let e = [self.b[0] - self.a[0], self.b[1] - self.a[1]];
        let len2 = e[0] * e[0] + e[1] * e[1];
        for r in y0..y1 {
            for c in x0..x1 {
                let q = [c as f32 + 0.5, r as f32 + 0.5];
                let t = if len2 > 0.0 {
                    (((q[0] - self.a[0]) * e[0] + (q[1] - self.a[1]) * e[1]) / len2).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let p = [self.a[0] + t * e[0] - q[0], self.a[1] + t * e[1] - q[1]];
                let d = (p[0] * p[0] + p[1] * p[1] + DIST_EPS * DIST_EPS).sqrt();
                let u = (self.w - d) / SOFT;
                if u < -REACH {
                    continue;
                }
                f(Touch {
                    q: (r * IMG_SIDE + c) as u16,
                    ai: self.ai as u16,
                    wi: self.wi as u16,
                    ink: 1.0 / (1.0 + (-u).exp()),
                    dir: [p[0] / d, p[1] / d],
                    t,
                });
            }
        }
    }
}

/// Draws one image from its parameters into `px` (784 values in `[0, 1)`),
/// handing every touch to `keep`.
fn render(pen: &Pen, p: &[f32], px: &mut [f32], mut keep: impl FnMut(Touch)) {
    debug_assert!(pen.per_image() <= MAX_PARAMS, "checked by the generator's config");
    // the share of each pixel left blank: the product over segments of (1 - ink)
    let mut blank = [1f32; IMG_PIXELS];
    for s in pen.segments(p) {
        s.touch(|t| {
            blank[usize::from(t.q)] *= 1.0 - t.ink;
            keep(t);
        });
    }
    for (o, b) in px.iter_mut().zip(blank) {
        *o = 1.0 - b;
    }
}

/// Draws one image from its parameters into `px` (784 values in `[0, 1)`).
pub fn draw(pen: &Pen, p: &[f32], px: &mut [f32]) {
    render(pen, p, px, |_| ());
}

/// [`draw`], keeping every touch in `touches` (cleared first) for
/// [`draw_backward_kept`].
pub fn draw_kept(pen: &Pen, p: &[f32], px: &mut [f32], touches: &mut Vec<Touch>) {
    touches.clear();
    render(pen, p, px, |t| touches.push(t));
}

/// One touch's share of the gradient of the image's parameters, added into `dp`.
fn touch_backward(t: &Touch, px: &[f32], g: &[f32], dp: &mut [f32]) {
    let q = usize::from(t.q);
    // px = 1 - prod(1 - ink): d px / d ink = (1 - px) / (1 - ink);
    // ink = sigmoid(u): d ink / d u = ink (1 - ink); so
    // d px / d u = (1 - px) ink, and u = (w - d) / SOFT
    let du = g[q] * (1.0 - px[q]) * t.ink / SOFT;
    let (ai, wi) = (usize::from(t.ai), usize::from(t.wi));
    dp[wi] += du;
    // d d / d a = (1 - t) dir, d d / d b = t dir (the closest point
    // moves with the ends; t's own change does not move d to first order)
    for k in 0..2 {
        dp[ai + k] -= du * (1.0 - t.t) * t.dir[k];
        dp[ai + 2 + k] -= du * t.t * t.dir[k];
    }
}

/// The gradient of one image's parameters `p` given the image `px` it drew
/// and the loss gradient `g` on its pixels, added into `dp`.
pub fn draw_backward(pen: &Pen, p: &[f32], px: &[f32], g: &[f32], dp: &mut [f32]) {
    for s in pen.segments(p) {
        s.touch(|t| touch_backward(&t, px, g, dp));
    }
}

/// [`draw_backward`] from the touches [`draw_kept`] kept when it drew `px`
/// (the same gradient, no distance measured again).
pub fn draw_backward_kept(touches: &[Touch], px: &[f32], g: &[f32], dp: &mut [f32]) {
    for t in touches {
        touch_backward(t, px, g, dp);
    }
}

/// Runs `f(i, out_i)` for every image `i` of `out` (`len` values each) on
/// up to `threads` threads (the CPU path's shards, one image each). Every
/// image is computed on its own, so the result is the same for any thread
/// count.
fn for_each_image(out: &mut [f32], len: usize, threads: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    let mut images: Vec<&mut [f32]> = out.chunks_mut(len).collect();
    let n = images.len();
    super::cpu::for_each_shard(&mut images, n, threads, &|i, o| f(i, o));
}

/// The pen as a candle op: `[b, pen.per_image()]` -> `[b, 784]`, its
/// images drawn (and their gradients taken) on `threads` threads.
#[derive(Debug, Clone, Copy)]
pub struct DrawOp {
    /// The shape of one image's strokes.
    pub pen: Pen,
    /// Threads to draw on (the result does not depend on it).
    pub threads: usize,
}

fn contiguous_f32<'a>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        _ => candle_core::bail!("the pen draws from contiguous f32 parameters"),
    }
}

impl CustomOp1 for DrawOp {
    fn name(&self) -> &'static str {
        "pen-draw"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let pen = self.pen;
        let (b, n) = l.shape().dims2()?;
        if n != pen.per_image() {
            candle_core::bail!("pen: {n} parameters per image, expected {}", pen.per_image());
        }
        let p = contiguous_f32(s, l)?;
        let mut px = vec![0f32; b * IMG_PIXELS];
        for_each_image(&mut px, IMG_PIXELS, self.threads, |i, out| {
            draw(&pen, &p[i * n..(i + 1) * n], out)
        });
        Ok((CpuStorage::F32(px), Shape::from((b, IMG_PIXELS))))
    }

    fn bwd(&self, arg: &Tensor, res: &Tensor, grad_res: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let pen = self.pen;
        let (b, n) = arg.dims2()?;
        let p = arg.flatten_all()?.to_vec1::<f32>()?;
        let px = res.flatten_all()?.to_vec1::<f32>()?;
        let g = grad_res.flatten_all()?.to_vec1::<f32>()?;
        let mut dp = vec![0f32; b * n];
        for_each_image(&mut dp, n, self.threads, |i, d| {
            let img = i * IMG_PIXELS..(i + 1) * IMG_PIXELS;
            draw_backward(&pen, &p[i * n..(i + 1) * n], &px[img.clone()], &g[img], d);
        });
        Ok(Some(Tensor::from_vec(dp, (b, n), arg.device())?))
    }
}

/// Draws `[b, pen.per_image()]` parameters as pixels `[b, 784]`, on any
/// device (the drawing itself runs on the CPU, on
/// [`super::cpu::threads`] threads), with its gradient.
pub fn draw_tensor(pen: Pen, params: &Tensor) -> candle_core::Result<Tensor> {
    draw_tensor_on(pen, params, super::cpu::threads())
}

/// [`draw_tensor`] on `threads` threads.
fn draw_tensor_on(pen: Pen, params: &Tensor, threads: usize) -> candle_core::Result<Tensor> {
    let dev = params.device().clone();
    let p = params.to_device(&candle_core::Device::Cpu)?.contiguous()?;
    p.apply_op1(DrawOp { pen, threads })?.to_device(&dev)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    const PEN: Pen = Pen {
        strokes: 2,
        points: 3,
    };

    /// Two strokes: an L in the upper left, a slanted line lower right.
    fn params() -> Vec<f32> {
        vec![
            6.2, 5.1, 6.0, 14.3, 13.7, 14.6, 1.1, //
            15.4, 17.2, 19.6, 20.3, 23.1, 24.8, 1.4,
        ]
    }

    #[test]
    fn a_stroke_is_ink_along_its_path_and_blank_far_from_it() {
        let p = params();
        let mut px = vec![0f32; IMG_PIXELS];
        draw(&PEN, &p, &mut px);
        let at = |x: usize, y: usize| px[y * IMG_SIDE + x];
        // on the L's vertical bar (x = 6, y from 5 to 14) and its foot
        assert!(at(6, 9) > 0.8, "{}", at(6, 9));
        assert!(at(10, 14) > 0.9, "{}", at(10, 14));
        // far from both strokes, and in the corner
        assert!(at(20, 5) < 1e-3 && at(0, 27) < 1e-3);
        // a stroke about two pixels wide: ink falls off within two pixels of the path
        assert!(at(9, 9) < 0.05, "{}", at(9, 9));
        assert!(px.iter().all(|v| (0.0..1.0).contains(v)));
        // wider pen, more ink
        let mut wide = p.clone();
        wide[6] = 2.0;
        let mut px2 = vec![0f32; IMG_PIXELS];
        draw(&PEN, &wide, &mut px2);
        assert!(px2.iter().sum::<f32>() > px.iter().sum::<f32>() + 5.0);
    }

    #[test]
    fn overlapping_strokes_saturate_instead_of_adding_up() {
        // the same stroke twice is darker than once but never above 1
        let one = [4.0, 14.0, 24.0, 14.0, 1.2];
        let pen1 = Pen {
            strokes: 1,
            points: 2,
        };
        let pen2 = Pen {
            strokes: 2,
            points: 2,
        };
        let two: Vec<f32> = one.iter().chain(&one).copied().collect();
        let (mut a, mut b) = (vec![0f32; IMG_PIXELS], vec![0f32; IMG_PIXELS]);
        draw(&pen1, &one, &mut a);
        draw(&pen2, &two, &mut b);
        let q = 14 * IMG_SIDE + 14;
        assert!(b[q] > a[q] && b[q] < 1.0);
        // 1 - (1 - i)^2 where a single stroke gives i
        assert!((b[q] - (1.0 - (1.0 - a[q]).powi(2))).abs() < 1e-5);
    }

    #[test]
    fn the_gradient_matches_finite_differences() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let p0 = params();
        // a loss that weights every pixel differently
        let wts: Vec<f32> = (0..IMG_PIXELS)
            .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
            .collect();
        let wt = Tensor::from_vec(wts.clone(), (1, IMG_PIXELS), &dev)?;
        let v = Var::from_vec(p0.clone(), (1, p0.len()), &dev)?;
        let loss = (draw_tensor(PEN, v.as_tensor())? * &wt)?.sum_all()?;
        let g = loss.backward()?;
        let got = g
            .get(v.as_tensor())
            .expect("gradient")
            .flatten_all()?
            .to_vec1::<f32>()?;
        let eval = |p: &[f64]| -> f64 {
            let pf: Vec<f32> = p.iter().map(|&x| x as f32).collect();
            let mut px = vec![0f32; IMG_PIXELS];
            draw(&PEN, &pf, &mut px);
            px.iter()
                .zip(&wts)
                .map(|(&a, &b)| f64::from(a) * f64::from(b))
                .sum()
        };
        let pd: Vec<f64> = p0.iter().map(|&x| f64::from(x)).collect();
        for i in 0..pd.len() {
            let (mut a, mut b) = (pd.clone(), pd.clone());
            a[i] += 1e-2;
            b[i] -= 1e-2;
            let num = (eval(&a) - eval(&b)) / 2e-2;
            let tol = 2e-2 * num.abs().max(1.0);
            assert!(
                (f64::from(got[i]) - num).abs() < tol,
                "d/dp[{i}]: {} vs {num}",
                got[i]
            );
        }
        Ok(())
    }

    #[test]
    fn kept_touches_give_the_same_image_and_gradient_bit_for_bit() {
        let p = params();
        let g: Vec<f32> = (0..IMG_PIXELS).map(|i| (i % 7) as f32 - 3.0).collect();
        let (mut a, mut b) = (vec![0f32; IMG_PIXELS], vec![0f32; IMG_PIXELS]);
        draw(&PEN, &p, &mut a);
        // a vector that held another image's touches is cleared first
        let mut touches = vec![Touch::default(); 5];
        draw_kept(&PEN, &p, &mut b, &mut touches);
        assert_eq!(a, b);
        assert!(touches.len() > 100, "{} touches", touches.len());
        let (mut da, mut db) = (vec![0f32; p.len()], vec![0f32; p.len()]);
        draw_backward(&PEN, &p, &a, &g, &mut da);
        draw_backward_kept(&touches, &b, &g, &mut db);
        assert!(da.iter().any(|&v| v != 0.0));
        assert_eq!(
            da.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            db.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn drawing_and_its_gradient_do_not_depend_on_the_thread_count() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        // seven images (an odd count, so the threads get runs of different length)
        let p: Vec<f32> = (0..7)
            .flat_map(|i| params().into_iter().map(move |v| v + 0.37 * i as f32))
            .collect();
        let wts: Vec<f32> = (0..7 * IMG_PIXELS).map(|i| (i % 13) as f32 - 6.0).collect();
        let wt = Tensor::from_vec(wts, (7, IMG_PIXELS), &dev)?;
        let run = |threads: usize| -> candle_core::Result<(Vec<f32>, Vec<f32>)> {
            let v = Var::from_vec(p.clone(), (7, PEN.per_image()), &dev)?;
            let px = draw_tensor_on(PEN, v.as_tensor(), threads)?;
            let g = (&px * &wt)?.sum_all()?.backward()?;
            let dp = g
                .get(v.as_tensor())
                .expect("gradient")
                .flatten_all()?
                .to_vec1::<f32>()?;
            Ok((px.flatten_all()?.to_vec1::<f32>()?, dp))
        };
        let one = run(1)?;
        assert!(one.0.iter().any(|&v| v > 0.5) && one.1.iter().any(|&v| v != 0.0));
        for threads in [2, 3, 16] {
            let many = run(threads)?;
            // bit for bit
            assert_eq!(
                one.0.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                many.0.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "{threads} threads"
            );
            assert_eq!(
                one.1.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                many.1.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "{threads} threads"
            );
        }
        Ok(())
    }

    #[test]
    fn the_op_refuses_the_wrong_number_of_parameters() {
        let t = Tensor::zeros((2, 5), candle_core::DType::F32, &Device::Cpu).expect("zeros");
        let err = draw_tensor(PEN, &t).expect_err("5 is not 14");
        assert!(err.to_string().contains("parameters per image"), "{err}");
    }
}
