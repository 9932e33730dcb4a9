//! How different the generated samples of one digit are from each other,
//! with real MNIST digits of that digit measured the same way for scale.
//!
//! Two measures per conditioning digit, over the first [`PER_CLASS`] samples
//! of that digit: the mean pairwise Euclidean distance of the images (pixels
//! on the `[0, 1]` scale) and the mean pairwise cosine distance (`1 - cos`)
//! of the classifier's penultimate features (the space the inversion's
//! feature terms act in). A generator that ignores its latent scores 0 on
//! both; real digits of one class score about 9-10 in pixels.

use crate::data::Dataset;
use crate::error::Result;
use crate::model::Classifier;
use ood_core::{IMG_PIXELS, NUM_DIGITS};
use serde::{Deserialize, Serialize};

/// Samples per digit that are compared pairwise.
pub const PER_CLASS: usize = 100;

/// Per-digit diversity (index = digit) of generated samples and of real ones.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassDiversity {
    /// Mean pairwise pixel distance of the generated images of each digit.
    pub generated_pixel: Vec<f64>,
    /// The same on real MNIST digits (validation split).
    pub real_pixel: Vec<f64>,
    /// Mean pairwise feature cosine distance of the generated images.
    pub generated_feature: Vec<f64>,
    /// The same on the real digits.
    pub real_feature: Vec<f64>,
}

/// Generated / real per digit; 1 where the real digits do not vary (or are
/// missing): there is no scale to fall short of.
fn ratios(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter()
        .zip(b)
        .map(|(&g, &r)| if r > 0.0 { g / r } else { 1.0 })
        .collect()
}

fn min_of(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min).min(f64::MAX)
}

fn mean_of(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

impl ClassDiversity {
    /// Generated / real pixel diversity per digit.
    pub fn pixel_ratios(&self) -> Vec<f64> {
        ratios(&self.generated_pixel, &self.real_pixel)
    }

    /// Generated / real feature diversity per digit.
    pub fn feature_ratios(&self) -> Vec<f64> {
        ratios(&self.generated_feature, &self.real_feature)
    }

    /// The least diverse digit's pixel ratio, and its digit.
    pub fn min_pixel_ratio(&self) -> (f64, usize) {
        let r = self.pixel_ratios();
        let m = min_of(&r);
        (m, r.iter().position(|&v| v == m).unwrap_or(0))
    }

    /// Mean over digits of the pixel ratio.
    pub fn mean_pixel_ratio(&self) -> f64 {
        mean_of(&self.pixel_ratios())
    }

    /// Mean over digits of the feature ratio.
    pub fn mean_feature_ratio(&self) -> f64 {
        mean_of(&self.feature_ratios())
    }

    /// The least diverse digit's feature ratio.
    pub fn min_feature_ratio(&self) -> f64 {
        min_of(&self.feature_ratios())
    }
}

/// Indices of the first [`PER_CLASS`] images of each digit in `ds`.
fn per_digit(ds: &Dataset) -> Vec<Vec<usize>> {
    let mut idx = vec![Vec::new(); NUM_DIGITS];
    for (i, &l) in ds.labels.iter().enumerate() {
        if let Some(v) = idx.get_mut(l as usize) {
            if v.len() < PER_CLASS {
                v.push(i);
            }
        }
    }
    idx
}

/// The first [`PER_CLASS`] images of each digit of a set, digit by digit,
/// with their penultimate features under one classifier.
pub(crate) struct PerDigit {
    /// Indices into the set, per digit ([`per_digit`]).
    pub idx: Vec<Vec<usize>>,
    /// Their pixels, in that order (raw bytes, `[n * 784]`).
    pub pixels: Vec<u8>,
    /// Their features, in that order (`[n * hidden]`).
    pub feats: Vec<f32>,
    /// The feature width.
    pub hidden: usize,
}

impl PerDigit {
    /// The images of `ds` ([`per_digit`]) and their features under `model`,
    /// in batches of `batch`.
    pub fn of(model: &Classifier, ds: &Dataset, batch: usize) -> Result<Self> {
        let idx = per_digit(ds);
        let mut pixels = Vec::new();
        for &i in idx.iter().flatten() {
            pixels.extend_from_slice(ds.image(i));
        }
        let feats = model.features(&pixels, batch)?;
        let hidden = feats.len() / (pixels.len() / IMG_PIXELS).max(1);
        Ok(Self {
            idx,
            pixels,
            feats,
            hidden,
        })
    }

    /// The digit of each image, in order.
    pub fn labels(&self) -> Vec<u8> {
        self.idx
            .iter()
            .enumerate()
            .flat_map(|(d, v)| std::iter::repeat_n(d as u8, v.len()))
            .collect()
    }
}

/// Mean over pairs of `dist(rows[i], rows[j])`, `i < j` (0 for < 2 rows).
fn mean_pairwise(rows: &[Vec<f32>], dist: impl Fn(&[f32], &[f32]) -> f64) -> f64 {
    let (mut sum, mut pairs) = (0.0, 0usize);
    for (i, a) in rows.iter().enumerate() {
        for b in &rows[i + 1..] {
            sum += dist(a, b);
            pairs += 1;
        }
    }
    if pairs == 0 {
        0.0
    } else {
        sum / pairs as f64
    }
}

/// Euclidean distance.
pub fn l2(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x - y).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// `1 - cos(a, b)`; 1 when either is all zeros.
pub fn cosine_distance(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        1.0
    } else {
        1.0 - ab / (aa.sqrt() * bb.sqrt())
    }
}

/// Per-digit pixel and feature diversity of `ds` (labels = digits) under `model`.
fn of_set(model: &Classifier, ds: &Dataset, batch: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    let PerDigit {
        idx,
        pixels,
        feats,
        hidden,
    } = PerDigit::of(model, ds, batch)?;
    let (mut pix, mut feat) = (Vec::new(), Vec::new());
    let mut row = 0;
    for class in &idx {
        let n = class.len();
        let imgs: Vec<Vec<f32>> = (row..row + n)
            .map(|r| {
                pixels[r * IMG_PIXELS..(r + 1) * IMG_PIXELS]
                    .iter()
                    .map(|&p| f32::from(p) / 255.0)
                    .collect()
            })
            .collect();
        let fs: Vec<Vec<f32>> = (row..row + n)
            .map(|r| feats[r * hidden..(r + 1) * hidden].to_vec())
            .collect();
        pix.push(mean_pairwise(&imgs, l2));
        feat.push(mean_pairwise(&fs, cosine_distance));
        row += n;
    }
    Ok((pix, feat))
}

/// The per-digit pixel and feature diversity of the real digits under one
/// classifier: the scale every generated set of that classifier is measured
/// against ([`Reference::against`]), computed once.
#[derive(Debug, Clone)]
pub struct Reference {
    pixel: Vec<f64>,
    feature: Vec<f64>,
}

impl Reference {
    /// The diversity of the `real` digits, features under `model`.
    pub fn of(model: &Classifier, real: &Dataset, batch: usize) -> Result<Self> {
        let (pixel, feature) = of_set(model, real, batch)?;
        Ok(Self { pixel, feature })
    }

    /// The diversity of `generated` (labels = conditioning digits) next to
    /// the real digits', features under `model` (the classifier this
    /// reference was measured with).
    pub fn against(&self, model: &Classifier, generated: &Dataset, batch: usize) -> Result<ClassDiversity> {
        let (generated_pixel, generated_feature) = of_set(model, generated, batch)?;
        Ok(ClassDiversity {
            generated_pixel,
            real_pixel: self.pixel.clone(),
            generated_feature,
            real_feature: self.feature.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ClassifierConfig, Device};
    use rand::SeedableRng;

    /// `generated` against `real`, both under `model`.
    fn measure(
        model: &Classifier,
        generated: &Dataset,
        real: &Dataset,
        batch: usize,
    ) -> Result<ClassDiversity> {
        Reference::of(model, real, batch)?.against(model, generated, batch)
    }

    #[test]
    fn distances_by_hand() {
        assert!((l2(&[0.0, 3.0], &[4.0, 0.0]) - 5.0).abs() < 1e-12);
        assert!(cosine_distance(&[1.0, 0.0], &[2.0, 0.0]).abs() < 1e-12);
        assert!((cosine_distance(&[1.0, 0.0], &[0.0, 5.0]) - 1.0).abs() < 1e-12);
        assert!((cosine_distance(&[1.0, 0.0], &[-1.0, 0.0]) - 2.0).abs() < 1e-12);
        assert_eq!(cosine_distance(&[0.0, 0.0], &[1.0, 0.0]), 1.0);
        // three rows: pairs (0,1) 1, (0,2) 2, (1,2) 1 -> mean 4/3
        let rows = vec![vec![0.0], vec![1.0], vec![2.0]];
        assert!((mean_pairwise(&rows, l2) - 4.0 / 3.0).abs() < 1e-12);
        assert_eq!(mean_pairwise(&rows[..1], l2), 0.0);
    }

    #[test]
    fn copies_score_zero_and_variety_scores_against_real() -> Result<()> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let model = Classifier::new(&ClassifierConfig::default(), &mut rng, &Device::Cpu)?;
        let (mut copies, mut varied) = (Dataset::default(), Dataset::default());
        for d in 0..NUM_DIGITS as u8 {
            for k in 0..4u8 {
                copies.push(&[100 + d; IMG_PIXELS], d);
                let mut img = [0u8; IMG_PIXELS];
                img[(k as usize) * 100..(k as usize) * 100 + 50].fill(255);
                varied.push(&img, d);
            }
        }
        let div = measure(&model, &copies, &varied, 7)?;
        assert!(div.generated_pixel.iter().all(|&v| v == 0.0));
        assert!(div.generated_feature.iter().all(|&v| v.abs() < 1e-6));
        // disjoint 50-pixel bars: every pair is sqrt(100) apart
        assert!(
            div.real_pixel.iter().all(|&v| (v - 10.0).abs() < 1e-9),
            "{:?}",
            div.real_pixel
        );
        assert!(div.real_feature.iter().all(|&v| v > 0.0));
        assert_eq!(div.min_pixel_ratio().0, 0.0);
        // real digits that do not vary give no scale: ratio 1, never "collapsed"
        let flat = measure(&model, &varied, &copies, 500)?;
        assert_eq!(flat.pixel_ratios(), vec![1.0; NUM_DIGITS]);
        let same = measure(&model, &varied, &varied, 500)?;
        assert!((same.mean_pixel_ratio() - 1.0).abs() < 1e-12);
        assert!((same.min_feature_ratio() - 1.0).abs() < 1e-12);
        Ok(())
    }
}
