//! Counterfeits that sit among the real digits (`inversion.digit_like`).
//!
//! Late in a run the classifier is good, and what inverting it yields is
//! more and more often a digit: drawn with the pen, but as near to a training
//! digit as real digits are to each other. Labelling those garbage teaches
//! the classifier to distrust digits drawn a little differently (a scan, a
//! pen, a camera). This judge of "is a digit" does not ask the classifier:
//! it is the pixel distance (images on the `[0, 1]` scale) from an image to
//! its nearest training digit, against the same distance for training
//! digits that are not in the reference.
//!
//! The reference is the first [`REFERENCE`] training digits, the threshold
//! the given quantile of the next [`PROBE`] digits' distances to it (fewer
//! of each when there are fewer digits: ten to one). No validation digit is
//! used. Both are fixed for a run: they depend on the data only.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::cpu::{
    self,
    gemm::{gemm, Mat},
};
use ood_core::IMG_PIXELS;

/// Training digits the distances are measured to.
pub const REFERENCE: usize = 10_000;
/// The training digits after them whose distances set the threshold.
pub const PROBE: usize = 1_000;
/// Images compared per matrix product.
const CHUNK: usize = 256;

/// The reference digits and the distance under which an image is taken for
/// a digit.
#[derive(Debug, Clone)]
pub struct DigitLike {
    /// `n x 784` reference pixels on the `[0, 1]` scale.
    reference: Vec<f32>,
    /// Squared norm of each reference row.
    norms: Vec<f32>,
    /// Distances under this are a digit's (the quantile of the probe digits').
    pub threshold: f32,
}

/// Pixels of `images` (u8 rows) on the `[0, 1]` scale.
fn unit(images: &[u8]) -> Vec<f32> {
    images.iter().map(|&p| f32::from(p) / 255.0).collect()
}

fn squared_norms(rows: &[f32]) -> Vec<f32> {
    rows.chunks_exact(IMG_PIXELS)
        .map(|r| r.iter().map(|v| v * v).sum())
        .collect()
}

impl DigitLike {
    /// The reference and threshold from the training `digits` at
    /// `quantile` (in `(0, 1)`): at most [`REFERENCE`] digits for the
    /// reference and the next [`PROBE`] for the threshold.
    ///
    /// # Errors
    /// Fewer than 2 digits, or a quantile outside `(0, 1)`.
    pub fn of(digits: &Dataset, quantile: f64) -> Result<Self> {
        if !(quantile > 0.0 && quantile < 1.0) {
            return Err(Error::Config(format!(
                "inversion.digit_like must lie in (0, 1) when on, got {quantile}"
            )));
        }
        let n = digits.len();
        let n_ref = REFERENCE.min(n * 10 / 11);
        let n_probe = PROBE.min(n - n_ref);
        if n_ref == 0 || n_probe == 0 {
            return Err(Error::Config(format!(
                "inversion.digit_like needs at least 2 training digits, got {n}"
            )));
        }
        let reference = unit(&digits.images[..n_ref * IMG_PIXELS]);
        let norms = squared_norms(&reference);
        let mut me = Self {
            reference,
            norms,
            threshold: 0.0,
        };
        let probe = &digits.images[n_ref * IMG_PIXELS..(n_ref + n_probe) * IMG_PIXELS];
        let mut d = me.nearest(probe);
        d.sort_by(f32::total_cmp);
        me.threshold = d[((n_probe - 1) as f64 * quantile).round() as usize];
        Ok(me)
    }

    /// Each image's (u8 rows of `images`) pixel distance to its nearest
    /// reference digit.
    pub fn nearest(&self, images: &[u8]) -> Vec<f32> {
        let n = images.len() / IMG_PIXELS;
        let chunks = n.div_ceil(CHUNK);
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); chunks];
        cpu::for_each_shard(&mut out, chunks, cpu::threads(), &|c, dst: &mut Vec<f32>| {
            let rows = &images[c * CHUNK * IMG_PIXELS..((c + 1) * CHUNK).min(n) * IMG_PIXELS];
            *dst = self.nearest_chunk(rows);
        });
        out.concat()
    }

    /// [`Self::nearest`] on one chunk: `|a|^2 + |r|^2 - 2 a.r`, smallest
    /// over the reference.
    fn nearest_chunk(&self, images: &[u8]) -> Vec<f32> {
        let a = unit(images);
        let m = a.len() / IMG_PIXELS;
        let k = self.norms.len();
        let mut dots = vec![0f32; m * k];
        gemm(
            m,
            k,
            IMG_PIXELS,
            &mut dots,
            false,
            Mat::rows(&a, IMG_PIXELS),
            Mat::t(&self.reference, IMG_PIXELS),
        );
        squared_norms(&a)
            .iter()
            .zip(dots.chunks_exact(k))
            .map(|(na, row)| {
                let d2 = row
                    .iter()
                    .zip(&self.norms)
                    .map(|(dot, nr)| na + nr - 2.0 * dot)
                    .fold(f32::INFINITY, f32::min);
                d2.max(0.0).sqrt()
            })
            .collect()
    }

    /// The images of `set` that are not taken for digits (distance at or
    /// above the threshold), by index in order.
    pub fn not_digits(&self, set: &Dataset) -> Vec<usize> {
        self.nearest(&set.images)
            .iter()
            .enumerate()
            .filter(|(_, &d)| d >= self.threshold)
            .map(|(i, _)| i)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(images: Vec<u8>) -> Dataset {
        let n = images.len() / IMG_PIXELS;
        Dataset {
            name: "t".into(),
            images,
            labels: vec![0; n],
        }
    }

    /// An image whose first `ink` pixels are full ink.
    fn inked(ink: usize) -> Vec<u8> {
        (0..IMG_PIXELS).map(|i| if i < ink { 255 } else { 0 }).collect()
    }

    #[test]
    fn nearest_is_the_exact_distance_to_the_closest_reference_digit() -> Result<()> {
        // reference: 0, 10, 20, ..., 90 inked pixels (10 of 11 digits); probe: 100
        let digits = set((0..11).flat_map(|i| inked(10 * i)).collect());
        let like = DigitLike::of(&digits, 0.5)?;
        // 23 inked pixels: nearest is 20, distance sqrt(3); over 300 images
        // (two chunks), each row measured alone
        let many: Vec<u8> = (0..300).flat_map(|i| inked(i % 100)).collect();
        let d = like.nearest(&many);
        assert_eq!(d.len(), 300);
        for (i, &di) in d.iter().enumerate() {
            let ink = (i % 100) as i64;
            let off = (0..10).map(|k| (ink - 10 * k).abs()).min().unwrap_or(0);
            assert!((di - (off as f32).sqrt()).abs() < 1e-3, "{ink}: {di}");
        }
        // the one probe digit (100 pixels) is 10 pixels from 90: its
        // distance is the threshold at any quantile
        assert!((like.threshold - 10f32.sqrt()).abs() < 1e-3, "{}", like.threshold);
        Ok(())
    }

    #[test]
    fn counterfeits_nearer_a_digit_than_the_quantile_are_taken_for_digits() -> Result<()> {
        // 2000 reference digits at 0..2000 % 200 inked pixels in 4-pixel steps
        // and 200 probe digits at 1..=200 steps of one pixel off a reference
        let reference: Vec<u8> = (0..2000).flat_map(|i| inked(4 * (i % 50))).collect();
        let probe: Vec<u8> = (0..200).flat_map(|i| inked(4 * (i % 50) + 1 + i % 2)).collect();
        let digits = set([reference, probe].concat());
        let like = DigitLike::of(&digits, 0.9)?;
        // probe distances: 1 (half) and sqrt 2 (half): the 0.9 quantile is sqrt 2
        assert!((like.threshold - 2f32.sqrt()).abs() < 1e-3, "{}", like.threshold);
        // a copy of a digit and one a pixel off are digits; two pixels off is
        // at the threshold (kept as garbage), three (past the last digit, 196)
        // and more are garbage
        let fakes = set([inked(8), inked(9), inked(10), inked(199), inked(250)].concat());
        assert_eq!(like.not_digits(&fakes), vec![2, 3, 4]);
        Ok(())
    }

    #[test]
    fn bad_quantiles_and_too_few_digits_are_refused() {
        let digits = set((0..11).flat_map(inked).collect());
        for q in [0.0, 1.0, f64::NAN] {
            let e = DigitLike::of(&digits, q).expect_err("quantile");
            assert!(e.to_string().contains("inversion.digit_like"), "{e}");
        }
        let e = DigitLike::of(&set(inked(1)), 0.5).expect_err("one digit");
        assert!(e.to_string().contains("at least 2"), "{e}");
    }
}
