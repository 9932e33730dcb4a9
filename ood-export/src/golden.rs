//! `golden.json`: inputs with the expected outputs of every backend, for
//! parity tests (candle as trained, the f32 file and the int8 file through
//! tract, and the int8 verdict).

use ood_core::IMG_PIXELS;
use serde::{Deserialize, Serialize};

/// Inputs with the expected outputs of each backend, for parity tests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Golden {
    /// What the file is and how it was made.
    pub about: String,
    /// One entry per input.
    pub cases: Vec<GoldenCase>,
}

/// One golden input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GoldenCase {
    /// Where the input came from.
    pub source: String,
    /// 784 raw pixels as hex (the input contract).
    pub pixels_hex: String,
    /// Logits of the candle model the files were exported from.
    pub candle_logits: Vec<f32>,
    /// Logits of the f32 ONNX file through tract.
    pub f32_logits: Vec<f32>,
    /// Logits of the int8 ONNX file through tract.
    pub int8_logits: Vec<f32>,
    /// Verdict of the int8 file at the default threshold.
    pub int8_verdict: ood_core::Verdict,
    /// The f32 file's verdict at the default `keep` (its own thresholds).
    pub f32_verdict: ood_core::Verdict,
}

impl GoldenCase {
    /// The 784 pixels.
    pub fn pixels(&self) -> Option<Vec<u8>> {
        if self.pixels_hex.len() != 2 * IMG_PIXELS {
            return None;
        }
        (0..IMG_PIXELS)
            .map(|i| u8::from_str_radix(&self.pixels_hex[2 * i..2 * i + 2], 16).ok())
            .collect()
    }
}

/// The 784 pixels as lowercase hex (the inverse of [`GoldenCase::pixels`]).
pub fn hex(p: &[u8]) -> String {
    p.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixels_round_trip_through_hex() {
        let px: Vec<u8> = (0..IMG_PIXELS).map(|i| (i * 7 % 256) as u8).collect();
        let case = GoldenCase {
            source: "t".into(),
            pixels_hex: hex(&px),
            candle_logits: vec![],
            f32_logits: vec![],
            int8_logits: vec![],
            int8_verdict: ood_core::Verdict::Reject {
                reason: ood_core::RejectReason::Garbage,
                uncertainty: 0.0,
            },
            f32_verdict: ood_core::Verdict::Reject {
                reason: ood_core::RejectReason::Garbage,
                uncertainty: 0.0,
            },
        };
        assert_eq!(case.pixels(), Some(px));
        let short = GoldenCase {
            pixels_hex: "00".into(),
            ..case
        };
        assert_eq!(short.pixels(), None);
    }
}
