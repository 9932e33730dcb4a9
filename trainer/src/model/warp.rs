//! The warp generator's parts: the training digits it deforms, and a
//! differentiable bilinear warp.
//!
//! A warp generator (`kind = "warp"`, [`super::generator`]) is given, for each
//! condition asking for digit `y`, a training digit of another class, and
//! writes a smooth displacement field (7x7 per axis, up-sampled to 28x28,
//! at most `warp_shift` pixels) that deforms it. Inversion then searches
//! real handwriting, bent until the classifier reads it as `y`: what the
//! classifier wrongly trusts there lies between digits, where stitched or
//! overlaid halves of real digits lie too, and no pen drawing does.

use crate::data::Dataset;
use candle_core::Tensor;
use ood_core::{IMG_PIXELS, IMG_SIDE, NUM_CLASSES, NUM_DIGITS};
use rand::rngs::StdRng;
use rand::Rng;

/// Training digits by class, for the warp generator to deform (and the
/// over-digits kind to draw over).
#[derive(Debug, Clone, Default)]
pub struct SourceDigits {
    /// `n * 784` bytes.
    pixels: Vec<u8>,
    /// Indices of each digit's images.
    by_class: [Vec<usize>; NUM_DIGITS],
}

impl SourceDigits {
    /// The digits of `set` (labels 0-9; other labels are left out).
    pub fn new(set: &Dataset) -> Self {
        let mut by_class: [Vec<usize>; NUM_DIGITS] = Default::default();
        for (i, &l) in set.labels.iter().enumerate() {
            if let Some(c) = by_class.get_mut(usize::from(l)) {
                c.push(i);
            }
        }
        Self {
            pixels: set.images.clone(),
            by_class,
        }
    }

    /// Every image of `set` whatever its label, drawn for any asked digit
    /// ([`SourceDigits::draw`] then picks among all of them: pages that are
    /// no digit, such as turned digits, have no class to avoid).
    pub fn any_class(set: &Dataset) -> Self {
        let all: Vec<usize> = (0..set.len()).collect();
        Self {
            pixels: set.images.clone(),
            by_class: std::array::from_fn(|_| all.clone()),
        }
    }

    /// Whether every digit has at least one image.
    pub fn covers_every_digit(&self) -> bool {
        self.by_class.iter().all(|c| !c.is_empty())
    }

    /// Pixels of image `i` on the `[0, 1]` scale.
    fn image(&self, i: usize) -> impl Iterator<Item = f32> + '_ {
        self.pixels[i * IMG_PIXELS..(i + 1) * IMG_PIXELS]
            .iter()
            .map(|&b| f32::from(b) / 255.0)
    }

    /// For each row of conditions `c` (`[n, 11]`, row-major), the pixels of a
    /// digit to deform (`[n, 784]` on the `[0, 1]` scale): one of another
    /// class than the row's asked digit (its largest entry), both drawn
    /// uniformly from `rng`. Rows with the same condition as an earlier row
    /// (the pairs of the mode-seeking term) get that row's digit, so a pair
    /// differs by its latent only. Without `rng` every row takes the first
    /// image of the next digit's class.
    pub fn draw(&self, c: &[f32], rng: Option<&mut StdRng>) -> Vec<f32> {
        self.pick(c, rng, false)
            .into_iter()
            .flat_map(|(i, _)| self.image(i))
            .collect()
    }

    /// [`SourceDigits::draw`], each row's digit cut to one half ([`Half`],
    /// drawn uniformly from `rng` after the digit; a pair shares its half;
    /// without `rng` the top half): the rest of the page blank.
    pub fn draw_halves(&self, c: &[f32], rng: Option<&mut StdRng>) -> Vec<f32> {
        self.pick(c, rng, true)
            .into_iter()
            .flat_map(|(i, half)| {
                let half = half.unwrap_or(Half::Top);
                self.image(i)
                    .enumerate()
                    .map(move |(p, v)| if half.keeps(p) { v } else { 0.0 })
            })
            .collect()
    }

    /// The image each row of `c` gets ([`SourceDigits::draw`]) and, with
    /// `halves`, the half of it kept.
    fn pick(&self, c: &[f32], mut rng: Option<&mut StdRng>, halves: bool) -> Vec<(usize, Option<Half>)> {
        let rows: Vec<&[f32]> = c.chunks_exact(NUM_CLASSES).collect();
        let mut picked: Vec<(usize, Option<Half>)> = Vec::with_capacity(rows.len());
        for (r, row) in rows.iter().enumerate() {
            if let Some(same) = rows[..r].iter().position(|earlier| earlier == row) {
                picked.push(picked[same]);
                continue;
            }
            let asked = ood_core::score::argmax(&row[..NUM_DIGITS]);
            let (offset, k) = match rng.as_deref_mut() {
                Some(rng) => (rng.random_range(1..NUM_DIGITS), Some(rng.random::<u64>())),
                None => (1, None),
            };
            let class = &self.by_class[(asked + offset) % NUM_DIGITS];
            let i = k.map_or(0, |k| (k % class.len() as u64) as usize);
            let half = match (halves, rng.as_deref_mut()) {
                (false, _) => None,
                (true, Some(rng)) => Some(Half::ALL[rng.random_range(0..Half::ALL.len())]),
                (true, None) => Some(Half::Top),
            };
            picked.push((class[i], half));
        }
        picked
    }
}

/// The half of a page that [`SourceDigits::draw_halves`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Half {
    /// Rows 0-13.
    Top,
    /// Rows 14-27.
    Bottom,
    /// Columns 0-13.
    Left,
    /// Columns 14-27.
    Right,
}

impl Half {
    /// Every half, in the order they are drawn.
    pub const ALL: [Half; 4] = [Half::Top, Half::Bottom, Half::Left, Half::Right];

    /// Whether pixel `p` (row-major on the 28x28 page) lies in this half.
    pub fn keeps(self, p: usize) -> bool {
        let (y, x) = (p / IMG_SIDE, p % IMG_SIDE);
        let mid = IMG_SIDE / 2;
        match self {
            Half::Top => y < mid,
            Half::Bottom => y >= mid,
            Half::Left => x < mid,
            Half::Right => x >= mid,
        }
    }
}

/// Side of the pooled copy of a source digit that the generator sees.
pub const POOLED_SIDE: usize = 14;

/// Source digits `[n, 784]` averaged over 2x2 blocks: `[n, 196]`, what the
/// generator's layers see of the digit they deform.
pub fn pooled(src: &[f32]) -> Vec<f32> {
    let mut out = Vec::with_capacity(src.len() / 4);
    for img in src.chunks_exact(IMG_PIXELS) {
        for y in 0..POOLED_SIDE {
            for x in 0..POOLED_SIDE {
                let at = |dy: usize, dx: usize| img[(2 * y + dy) * IMG_SIDE + 2 * x + dx];
                out.push((at(0, 0) + at(0, 1) + at(1, 0) + at(1, 1)) / 4.0);
            }
        }
    }
    out
}

/// Each row of `cond` (`[n, c]`) followed by its digit's [`pooled`] copy
/// (`src`, `[n, 784]`): `[n, c + 196]`, the condition that the layers of a
/// generator taking digits see (the same on its graph and its CPU path).
pub fn condition_with_pooled(cond: &[f32], src: &[f32]) -> Vec<f32> {
    let n = src.len() / IMG_PIXELS;
    let pooled = pooled(src);
    if n == 0 {
        return Vec::new();
    }
    let (cw, pw) = (cond.len() / n, pooled.len() / n);
    cond.chunks_exact(cw)
        .zip(pooled.chunks_exact(pw))
        .flat_map(|(a, b)| a.iter().chain(b).copied())
        .collect()
}

/// `src` (`[n, 784]` values) sampled at every pixel `(x, y)` moved by
/// `(dx, dy)` (`[n, 784]` tensors, pixels): bilinear, zero outside the page.
/// Differentiable in `dx` and `dy` (the corners' weights carry the gradient;
/// which four pixels are the corners is read off the values and held fixed,
/// exact except where a displacement crosses a whole pixel).
pub fn warp_tensor(src: &[f32], dx: &Tensor, dy: &Tensor) -> candle_core::Result<Tensor> {
    let n = dx.dim(0)?;
    let dev = dx.device();
    let (xs, ys) = (dx.to_vec2::<f32>()?, dy.to_vec2::<f32>()?);
    // the page with one zero pixel after it, where every corner off the page reads
    let off = IMG_PIXELS as u32;
    let mut padded = Vec::with_capacity(n * (IMG_PIXELS + 1));
    for img in src.chunks_exact(IMG_PIXELS) {
        padded.extend_from_slice(img);
        padded.push(0.0);
    }
    let mut corner: Vec<Vec<u32>> = (0..4).map(|_| Vec::with_capacity(n * IMG_PIXELS)).collect();
    // each pixel's own coordinate minus the floor of where it moves: the
    // fractional part is the displacement plus it, the floor held fixed
    let (mut ox, mut oy) = (
        Vec::with_capacity(n * IMG_PIXELS),
        Vec::with_capacity(n * IMG_PIXELS),
    );
    for (xr, yr) in xs.iter().zip(&ys) {
        for (p, (&ddx, &ddy)) in xr.iter().zip(yr).enumerate() {
            let (px, py) = ((p % IMG_SIDE) as f32, (p / IMG_SIDE) as f32);
            let (x0, y0) = ((px + ddx).floor(), (py + ddy).floor());
            ox.push(px - x0);
            oy.push(py - y0);
            let at = |cx: f32, cy: f32| -> u32 {
                let side = IMG_SIDE as f32;
                if (0.0..side).contains(&cx) && (0.0..side).contains(&cy) {
                    cy as u32 * IMG_SIDE as u32 + cx as u32
                } else {
                    off
                }
            };
            corner[0].push(at(x0, y0));
            corner[1].push(at(x0 + 1.0, y0));
            corner[2].push(at(x0, y0 + 1.0));
            corner[3].push(at(x0 + 1.0, y0 + 1.0));
        }
    }
    let padded = Tensor::from_vec(padded, (n, IMG_PIXELS + 1), dev)?;
    let value = |idx: Vec<u32>| -> candle_core::Result<Tensor> {
        padded.gather(&Tensor::from_vec(idx, (n, IMG_PIXELS), dev)?, 1)
    };
    let v = corner
        .into_iter()
        .map(value)
        .collect::<candle_core::Result<Vec<_>>>()?;
    let [v00, v10, v01, v11]: [Tensor; 4] = v
        .try_into()
        .map_err(|_| candle_core::Error::Msg("four corners".into()))?;
    let grid = |g: Vec<f32>| Tensor::from_vec(g, (n, IMG_PIXELS), dev);
    let (fx, fy) = ((dx + grid(ox)?)?, (dy + grid(oy)?)?);
    let (gx, gy) = (fx.affine(-1.0, 1.0)?, fy.affine(-1.0, 1.0)?);
    let top = ((v00 * &gx)? + (v10 * &fx)?)?;
    let bottom = ((v01 * &gx)? + (v11 * &fx)?)?;
    (top * gy)? + (bottom * fy)?
}

/// The displacement fields `(dx, dy)` (`[n, 784]` each, pixels) from the
/// head's outputs `o` (`[n, 98]`: 7x7 per axis), squashed to at most `shift`
/// pixels and up-sampled by `up` (`[784, 49]`, bilinear).
pub fn fields(o: &Tensor, up: &Tensor, shift: f64) -> candle_core::Result<(Tensor, Tensor)> {
    let o = (o.tanh()? * shift)?;
    let half = o.dim(1)? / 2;
    let dx = o.narrow(1, 0, half)?.matmul(&up.t()?)?;
    let dy = o.narrow(1, half, half)?.matmul(&up.t()?)?;
    Ok((dx, dy))
}

/// Outputs of the warp head: 7x7 displacements per axis.
pub const HEAD_OUTPUTS: usize = 2 * 7 * 7;

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use rand::SeedableRng;

    fn digits() -> Dataset {
        let mut d = Dataset::default();
        for i in 0..40u8 {
            d.push(&[i * 6; IMG_PIXELS], i % 10);
        }
        d
    }

    fn condition(asked: usize) -> Vec<f32> {
        let mut row = vec![0.01f32; NUM_CLASSES];
        row[asked] = 0.9;
        row
    }

    #[test]
    fn sources_are_other_digits_and_pairs_share_theirs() {
        let d = digits();
        let s = SourceDigits::new(&d);
        assert!(s.covers_every_digit());
        let mut rng = StdRng::seed_from_u64(1);
        // rows 0..30 ask for digit r % 10, then rows 30..60 repeat them
        let mut c = Vec::new();
        for r in 0..30 {
            c.extend(condition(r % 10));
        }
        let first = c.clone();
        c.extend(first);
        let px = s.draw(&c, Some(&mut rng));
        assert_eq!(px.len(), 60 * IMG_PIXELS);
        for r in 0..30 {
            let img = &px[r * IMG_PIXELS..(r + 1) * IMG_PIXELS];
            // image i of `digits` is constant 6i/255, label i % 10
            let i = (img[0] * 255.0 / 6.0).round() as usize;
            assert_ne!(i % 10, r % 10, "row {r}: a digit of another class");
            assert_eq!(img, &px[(r + 30) * IMG_PIXELS..(r + 31) * IMG_PIXELS], "pair {r}");
        }
        // without rng: the first image of the next class
        let px = s.draw(&condition(3), None);
        assert_eq!(px[0], 24.0 / 255.0, "image 4, the first 4");
    }

    #[test]
    fn any_class_pages_come_from_every_image_whatever_the_asked_digit() {
        // 12 garbage images (label 10), image i constant 6i/255
        let mut d = Dataset::default();
        for i in 0..12u8 {
            d.push(&[i * 6; IMG_PIXELS], ood_core::GARBAGE as u8);
        }
        assert!(!SourceDigits::new(&d).covers_every_digit(), "no digit label");
        let s = SourceDigits::any_class(&d);
        assert!(s.covers_every_digit());
        let mut rng = StdRng::seed_from_u64(3);
        // rows of one condition share a page (the mode-seeking pairs): make
        // each row's condition its own
        let row = |r: usize, asked: usize| {
            let mut c = condition(asked);
            c[NUM_DIGITS] = r as f32 * 1e-4;
            c
        };
        let c: Vec<f32> = (0..400).flat_map(|r| row(r, r % 10)).collect();
        let px = s.draw(&c, Some(&mut rng));
        let mut seen = [false; 12];
        for img in px.chunks_exact(IMG_PIXELS) {
            let i = (img[0] * 255.0 / 6.0).round() as usize;
            assert!(img.iter().all(|&v| v == img[0]), "whole images");
            seen[i] = true;
        }
        assert!(
            seen.iter().all(|&s| s),
            "every image drawn over 400 rows: {seen:?}"
        );
        // asked for digit 0, image 0 (label garbage) may come back
        let zeros: Vec<f32> = (0..200).flat_map(|r| row(r, 0)).collect();
        let px = s.draw(&zeros, Some(&mut rng));
        assert!(
            px.chunks_exact(IMG_PIXELS).any(|img| img[0] == 0.0),
            "no class is avoided"
        );
    }

    #[test]
    fn half_pages_keep_one_half_of_the_drawn_digit_and_pairs_share_it() {
        let d = digits();
        let s = SourceDigits::new(&d);
        // rows 0..40 ask for digit r % 10 (each its own condition), then
        // rows 40..80 repeat them
        let mut c: Vec<f32> = (0..40)
            .flat_map(|r| {
                let mut row = condition(r % 10);
                row[NUM_DIGITS] = r as f32 * 1e-4;
                row
            })
            .collect();
        let first = c.clone();
        c.extend(first);
        let mut r1 = StdRng::seed_from_u64(5);
        let mut r2 = StdRng::seed_from_u64(5);
        let whole = s.draw(&c, Some(&mut r1));
        let halves = s.draw_halves(&c, Some(&mut r2));
        let mut kept = [0usize; 4];
        for r in 0..40 {
            let (w, h) = (
                &whole[r * IMG_PIXELS..(r + 1) * IMG_PIXELS],
                &halves[r * IMG_PIXELS..(r + 1) * IMG_PIXELS],
            );
            // image i of `digits` is constant 6i/255 (never 0 past image 0)
            let v = h.iter().copied().fold(0.0f32, f32::max);
            let i = (v * 255.0 / 6.0).round() as usize;
            assert_ne!(i % 10, r % 10, "row {r}: a digit of another class");
            let half = Half::ALL
                .into_iter()
                .position(|half| (0..IMG_PIXELS).all(|p| h[p] == if half.keeps(p) { v } else { 0.0 }))
                .unwrap_or_else(|| panic!("row {r}: exactly one half of image {i} kept"));
            kept[half] += 1;
            assert_eq!(
                h,
                &halves[(r + 40) * IMG_PIXELS..(r + 41) * IMG_PIXELS],
                "pair {r}"
            );
            // the same digit as the whole draw's for the first row (the
            // halves' draws come after each row's digit, so later rows differ)
            if r == 0 {
                assert!(w.iter().all(|&x| x == v), "row 0: the whole draw's digit");
            }
        }
        assert!(
            kept.iter().all(|&k| k > 0),
            "every half drawn over 40 rows: {kept:?}"
        );
        // each half is half the page, the four cover it twice
        for half in Half::ALL {
            assert_eq!((0..IMG_PIXELS).filter(|&p| half.keeps(p)).count(), IMG_PIXELS / 2);
        }
        // without rng: the top half of the first image of the next class
        let h = s.draw_halves(&condition(3), None);
        assert_eq!(h[0], 24.0 / 255.0);
        assert_eq!(h[IMG_PIXELS - 1], 0.0);
    }

    #[test]
    fn pooling_averages_two_by_two_blocks() {
        let src: Vec<f32> = (0..IMG_PIXELS).map(|p| (p % 2) as f32).collect();
        let p = pooled(&src);
        assert_eq!(p.len(), POOLED_SIDE * POOLED_SIDE);
        assert!(p.iter().all(|&v| v == 0.5));
    }

    #[test]
    fn each_condition_row_is_followed_by_its_own_pooled_digit() {
        // two digits: all 0.25 and all 1.0; conditions of width 3
        let src: Vec<f32> = [0.25f32, 1.0].iter().flat_map(|&v| vec![v; IMG_PIXELS]).collect();
        let cond = [1.0, 0.0, 0.0, 0.0, 0.5, 0.5];
        let c = condition_with_pooled(&cond, &src);
        let w = 3 + POOLED_SIDE * POOLED_SIDE;
        assert_eq!(c.len(), 2 * w);
        assert_eq!(&c[..3], &cond[..3]);
        assert!(c[3..w].iter().all(|&v| v == 0.25), "row 0's digit");
        assert_eq!(&c[w..w + 3], &cond[3..]);
        assert!(c[w + 3..].iter().all(|&v| v == 1.0), "row 1's digit");
        assert!(condition_with_pooled(&[], &[]).is_empty());
    }

    fn field(n: usize, v: f32) -> Tensor {
        Tensor::full(v, (n, IMG_PIXELS), &Device::Cpu).expect("field")
    }

    #[test]
    fn no_displacement_is_the_source_and_whole_pixels_shift_it() -> candle_core::Result<()> {
        let src: Vec<f32> = (0..IMG_PIXELS).map(|p| (p as f32 * 0.37).sin().abs()).collect();
        let same = warp_tensor(&src, &field(1, 0.0), &field(1, 0.0))?
            .flatten_all()?
            .to_vec1::<f32>()?;
        assert!(same.iter().zip(&src).all(|(a, b)| (a - b).abs() < 1e-6));
        // dx = +1: each pixel reads its right neighbour; the last column reads off the page
        let moved = warp_tensor(&src, &field(1, 1.0), &field(1, 0.0))?
            .flatten_all()?
            .to_vec1::<f32>()?;
        for p in 0..IMG_PIXELS {
            let want = if p % IMG_SIDE == IMG_SIDE - 1 {
                0.0
            } else {
                src[p + 1]
            };
            assert!((moved[p] - want).abs() < 1e-6, "pixel {p}");
        }
        // half a pixel down: the mean of a pixel and the one below it
        let half = warp_tensor(&src, &field(1, 0.0), &field(1, 0.5))?
            .flatten_all()?
            .to_vec1::<f32>()?;
        assert!((half[30] - (src[30] + src[58]) / 2.0).abs() < 1e-6);
        Ok(())
    }

    #[test]
    fn the_gradient_in_the_displacements_matches_finite_differences() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let src: Vec<f32> = (0..2 * IMG_PIXELS)
            .map(|p| (p as f32 * 0.11).sin().abs())
            .collect();
        let mut rng = StdRng::seed_from_u64(4);
        let d0: Vec<f32> = (0..2 * IMG_PIXELS)
            .map(|_| rng.random_range(-2.3f32..2.3))
            .collect();
        let weights: Vec<f32> = (0..2 * IMG_PIXELS)
            .map(|_| rng.random_range(-1f32..1.0))
            .collect();
        let w = Tensor::from_vec(weights.clone(), (2, IMG_PIXELS), &dev)?;
        let dx = Var::from_vec(d0.clone(), (2, IMG_PIXELS), &dev)?;
        let dy = Tensor::from_vec(
            d0.iter().rev().copied().collect::<Vec<_>>(),
            (2, IMG_PIXELS),
            &dev,
        )?;
        let loss = (warp_tensor(&src, dx.as_tensor(), &dy)? * &w)?.sum_all()?;
        let g = loss.backward()?;
        let grad = g
            .get(dx.as_tensor())
            .expect("gradient")
            .flatten_all()?
            .to_vec1::<f32>()?;
        let value = |d: &[f32]| -> candle_core::Result<f32> {
            let t = Tensor::from_slice(d, (2, IMG_PIXELS), &dev)?;
            (warp_tensor(&src, &t, &dy)? * &w)?.sum_all()?.to_scalar::<f32>()
        };
        let h = 1e-3f32;
        let mut checked = 0;
        for p in (0..2 * IMG_PIXELS).step_by(37) {
            let frac = d0[p] - d0[p].floor();
            if !(0.01..0.99).contains(&frac) {
                continue; // a whole pixel within reach of the step: the corners change
            }
            let (mut up, mut down) = (d0.clone(), d0.clone());
            up[p] += h;
            down[p] -= h;
            let fd = (value(&up)? - value(&down)?) / (2.0 * h);
            assert!(
                (fd - grad[p]).abs() < 2e-2 * (1.0 + fd.abs()),
                "pixel {p}: {fd} vs {}",
                grad[p]
            );
            checked += 1;
        }
        assert!(checked > 30, "{checked}");
        Ok(())
    }

    #[test]
    fn fields_stay_within_the_shift() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let up = Tensor::from_vec(
            super::super::generator::bilinear_matrix(7),
            (IMG_PIXELS, 49),
            &dev,
        )?;
        let o = Tensor::full(50f32, (3, HEAD_OUTPUTS), &dev)?;
        let (dx, dy) = fields(&o, &up, 2.5)?;
        for f in [dx, dy] {
            let v = f.flatten_all()?.to_vec1::<f32>()?;
            assert!(v.iter().all(|&d| (d - 2.5).abs() < 1e-4), "saturated: the shift");
        }
        Ok(())
    }
}
