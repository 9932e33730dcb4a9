//! Synthetic noise images: the initial garbage class and two OOD test sets.

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
}
