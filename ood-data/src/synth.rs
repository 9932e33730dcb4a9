//! Synthetic noise images: the initial garbage class and two OOD test sets.
//!
//! Two garbage families seed the garbage class before any inversion:
//! i.i.d. Gaussian pixels (the seed report's choice) and, optionally,
//! [`smooth`] noise: random fields with the low-frequency structure that
//! natural images have (power falling with spatial frequency), half of them
//! pushed through a steep threshold into solid blobs. Both are generic "not a
//! digit" inputs fixed by design; no OOD test set was looked at to make them.

use super::Dataset;
use ood_core::{GARBAGE, IMG_PIXELS};
use rand::rngs::StdRng;
use rand::Rng;
use rand_distr::{Distribution, Normal};

/// `n` images of i.i.d. Gaussian pixels `N(mean, std)` on the `[0, 1]` scale,
/// clamped to `[0, 1]`, labelled garbage.
pub fn gaussian(name: &str, n: usize, mean: f32, std: f32, rng: &mut StdRng) -> Dataset {
    // std is validated > 0 by the config; fall back to a point mass otherwise
    let normal = Normal::new(mean, std.max(f32::MIN_POSITIVE)).ok();
    let mut ds = Dataset {
        name: name.into(),
        images: Vec::with_capacity(n * IMG_PIXELS),
        labels: vec![GARBAGE as u8; n],
    };
    for _ in 0..n * IMG_PIXELS {
        let v = normal.map_or(mean, |d| d.sample(rng));
        ds.images.push((v.clamp(0.0, 1.0) * 255.0).round() as u8);
    }
    ds
}

/// `n` images of i.i.d. uniform pixels in `0..=255`, labelled garbage.
pub fn uniform(name: &str, n: usize, rng: &mut StdRng) -> Dataset {
    Dataset {
        name: name.into(),
        images: (0..n * IMG_PIXELS).map(|_| rng.random::<u8>()).collect(),
        labels: vec![GARBAGE as u8; n],
    }
}

/// Bilinear up-sampling of a `g x g` grid (corners aligned) to 28x28.
fn upsample(grid: &[f32], g: usize, out: &mut [f32; IMG_PIXELS]) {
    let side = ood_core::IMG_SIDE;
    let scale = (g - 1) as f32 / (side - 1) as f32;
    for y in 0..side {
        let fy = y as f32 * scale;
        let y0 = (fy as usize).min(g - 1);
        let y1 = (y0 + 1).min(g - 1);
        let wy = fy - y0 as f32;
        for x in 0..side {
            let fx = x as f32 * scale;
            let x0 = (fx as usize).min(g - 1);
            let x1 = (x0 + 1).min(g - 1);
            let wx = fx - x0 as f32;
            let top = grid[y0 * g + x0] * (1.0 - wx) + grid[y0 * g + x1] * wx;
            let bottom = grid[y1 * g + x0] * (1.0 - wx) + grid[y1 * g + x1] * wx;
            out[y * side + x] += top * (1.0 - wy) + bottom * wy;
        }
    }
}

/// `n` images of smooth multi-scale noise, labelled garbage.
///
/// Each image sums Gaussian grids of 2x2, 4x4, 7x7 and 14x14 cells,
/// bilinearly up-sampled, with amplitude halving per octave (a spectrum that
/// falls with frequency, like natural images), starting at a random octave.
/// The field is stretched to `[0, 1]`; half of the images are then
/// thresholded at a random level by a steep sigmoid (solid blobs, dark or
/// light), the rest get a random contrast and brightness.
pub fn smooth(name: &str, n: usize, rng: &mut StdRng) -> Dataset {
    const GRIDS: [usize; 4] = [2, 4, 7, 14];
    let std_normal = Normal::new(0.0f32, 1.0).ok();
    let mut ds = Dataset {
        name: name.into(),
        images: Vec::with_capacity(n * IMG_PIXELS),
        labels: vec![GARBAGE as u8; n],
    };
    let mut grid = [0f32; 14 * 14];
    for _ in 0..n {
        let mut field = [0f32; IMG_PIXELS];
        let first = rng.random_range(0..GRIDS.len() - 1);
        let mut amp = 1.0f32;
        for &g in &GRIDS[first..] {
            for v in grid.iter_mut().take(g * g) {
                *v = amp * std_normal.map_or(0.0, |d| d.sample(rng));
            }
            upsample(&grid[..g * g], g, &mut field);
            amp *= 0.5;
        }
        let (lo, hi) = field
            .iter()
            .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        let range = (hi - lo).max(1e-6);
        let blobs = rng.random_bool(0.5);
        let (t, contrast, offset) = (
            rng.random_range(0.3f32..0.7),
            rng.random_range(0.3f32..1.0),
            rng.random_range(0.0f32..1.0),
        );
        let invert = rng.random_bool(0.5);
        for v in field {
            let mut p = (v - lo) / range;
            if blobs {
                p = 1.0 / (1.0 + (-(p - t) * 25.0).exp());
            } else {
                p = offset * (1.0 - contrast) + p * contrast;
            }
            if invert {
                p = 1.0 - p;
            }
            ds.images.push((p.clamp(0.0, 1.0) * 255.0).round() as u8);
        }
    }
    ds
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn noise_has_the_requested_statistics() {
        let ds = gaussian("g", 50, 0.5, 0.1, &mut StdRng::seed_from_u64(1));
        let mean = ds.images.iter().map(|&v| f64::from(v)).sum::<f64>() / ds.images.len() as f64;
        // 39,200 samples: the standard error of the mean is ~0.15 grey levels
        assert!((mean - 127.5).abs() < 2.0, "{mean}");
        assert_eq!(ds.len(), 50);
        let u = uniform("u", 10, &mut StdRng::seed_from_u64(1));
        assert_eq!(u.images.len(), 10 * IMG_PIXELS);
        assert_eq!(
            gaussian("g", 3, 0.5, 0.1, &mut StdRng::seed_from_u64(9)),
            gaussian("g", 3, 0.5, 0.1, &mut StdRng::seed_from_u64(9))
        );
    }

    #[test]
    fn smooth_noise_is_smooth_varied_and_deterministic() {
        let ds = smooth("s", 200, &mut StdRng::seed_from_u64(3));
        assert_eq!(ds.images.len(), 200 * IMG_PIXELS);
        assert!(ds.labels.iter().all(|&l| usize::from(l) == GARBAGE));
        // neighbouring pixels differ far less than in i.i.d. noise of the same
        // range (mean |diff| of uniform pixels is 85 grey levels)
        let mut diff = 0f64;
        let mut count = 0f64;
        for i in 0..ds.len() {
            let im = ds.image(i);
            for p in 0..IMG_PIXELS - 1 {
                if (p + 1) % 28 != 0 {
                    diff += (f64::from(im[p]) - f64::from(im[p + 1])).abs();
                    count += 1.0;
                }
            }
        }
        assert!(diff / count < 25.0, "mean neighbour difference {}", diff / count);
        // images differ from each other and span the grey range
        assert_ne!(ds.image(0), ds.image(1));
        let means: Vec<f64> = (0..ds.len())
            .map(|i| ds.image(i).iter().map(|&v| f64::from(v)).sum::<f64>() / IMG_PIXELS as f64)
            .collect();
        let lo = means.iter().cloned().fold(f64::MAX, f64::min);
        let hi = means.iter().cloned().fold(f64::MIN, f64::max);
        assert!(hi - lo > 100.0, "mean brightness spans only {lo}..{hi}");
        assert_eq!(ds, smooth("s", 200, &mut StdRng::seed_from_u64(3)));
    }
}
