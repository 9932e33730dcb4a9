//! The input contract: what one classifier input is, and how pixels are scaled.
//!
//! An input is a 28x28 single-channel image, row-major, **white ink on a black
//! background** (MNIST polarity), 8-bit pixels `v` in `0..=255`. The model sees
//! `x = (v / 255 - MEAN) / STD`, with the MNIST training-set statistics below.
//! The same constants are written into every exported manifest.

use serde::{Deserialize, Serialize};

/// Mean of MNIST training pixels on the `[0, 1]` scale.
pub const MEAN: f32 = 0.1307;
/// Standard deviation of MNIST training pixels on the `[0, 1]` scale.
pub const STD: f32 = 0.3081;
/// Pixel scale: raw 8-bit value times this gives the `[0, 1]` scale.
pub const PIXEL_SCALE: f32 = 1.0 / 255.0;

/// Normalise a pixel already on the `[0, 1]` scale.
#[inline]
pub fn normalize_unit(v: f32) -> f32 {
    (v - MEAN) / STD
}

/// Normalise a raw 8-bit pixel.
#[inline]
pub fn normalize_u8(v: u8) -> f32 {
    normalize_unit(f32::from(v) * PIXEL_SCALE)
}

/// Inverse of [`normalize_unit`]: model space back to the `[0, 1]` scale.
#[inline]
pub fn denormalize(x: f32) -> f32 {
    x * STD + MEAN
}

/// The offsets `(dx, dy)` of the shift average: the image itself and its
/// four shifts by `r` whole pixels (right, left, down, up). A model exported
/// with a shift average answers with the mean of its logits over these
/// copies, each filled with the background where it moved away from the edge.
pub fn cross_shifts(r: i32) -> [(i32, i32); 5] {
    [(0, 0), (r, 0), (-r, 0), (0, r), (0, -r)]
}

/// The input contract as data, for manifests and reports.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct InputContract {
    /// Image height and width in pixels.
    pub side: u32,
    /// Number of channels (1: grayscale).
    pub channels: u32,
    /// Scale from raw pixel values to `[0, 1]`.
    pub pixel_scale: f32,
    /// Mean subtracted on the `[0, 1]` scale.
    pub mean: f32,
    /// Standard deviation divided by on the `[0, 1]` scale.
    pub std: f32,
    /// Whether digits are light on dark (MNIST polarity).
    pub light_on_dark: bool,
}

impl Default for InputContract {
    fn default() -> Self {
        Self {
            side: crate::IMG_SIDE as u32,
            channels: 1,
            pixel_scale: PIXEL_SCALE,
            mean: MEAN,
            std: STD,
            light_on_dark: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Round-trip through f32 arithmetic: a few ulps of values up to ~3.
    const ROUNDTRIP_TOL: f32 = 1e-6;

    #[test]
    fn cross_shifts_are_the_image_and_four_moves_by_r() {
        let s = cross_shifts(2);
        assert_eq!(s[0], (0, 0));
        for (k, &(dx, dy)) in s.iter().enumerate().skip(1) {
            assert_eq!(dx.abs() + dy.abs(), 2, "{k}: one axis, two pixels");
            assert!(!s[..k].contains(&(dx, dy)), "{k}: distinct");
        }
        let sum = s.iter().fold((0, 0), |a, &(dx, dy)| (a.0 + dx, a.1 + dy));
        assert_eq!(sum, (0, 0), "balanced: the mean does not drift");
    }

    #[test]
    fn normalise_round_trips() {
        for v in [0u8, 1, 127, 128, 255] {
            let unit = f32::from(v) * PIXEL_SCALE;
            assert!((denormalize(normalize_u8(v)) - unit).abs() < ROUNDTRIP_TOL);
        }
        assert!(normalize_u8(0) < 0.0 && normalize_u8(255) > 2.8);
    }
}
