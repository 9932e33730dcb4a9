//! `golden.json` (with `std`): inputs with the expected outputs of every
//! backend, for parity tests (candle as trained, the f32 file and the int8
//! file through tract, and their verdicts). Written by the export, read by
//! the edge (`edge check`) and the tests.

use crate::IMG_PIXELS;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::format;
use std::string::String;
use std::vec::Vec;

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
    /// Logits through tract of the other int8 forms written for comparison
    /// (file name -> logits), whose activations are quantised as the int8
    /// file's are not; empty in golden files written before them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub other_logits: BTreeMap<String, Vec<f32>>,
    /// Verdict of the int8 file at the default threshold.
    pub int8_verdict: crate::Verdict,
    /// The f32 file's verdict at the default `keep` (its own thresholds).
    pub f32_verdict: crate::Verdict,
}

impl GoldenCase {
    /// The 784 pixels; `None` unless `pixels_hex` is exactly 784 hex pairs
    /// (any other text, multi-byte characters included, is refused, never
    /// split).
    pub fn pixels(&self) -> Option<Vec<u8>> {
        let hex = self.pixels_hex.as_bytes();
        if hex.len() != 2 * IMG_PIXELS {
            return None;
        }
        hex.chunks(2)
            .map(|p| {
                core::str::from_utf8(p)
                    .ok()
                    .and_then(|s| u8::from_str_radix(s, 16).ok())
            })
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

    use std::vec;

    #[test]
    fn pixels_round_trip_through_hex() {
        let px: Vec<u8> = (0..IMG_PIXELS).map(|i| (i * 7 % 256) as u8).collect();
        let case = GoldenCase {
            source: "t".into(),
            pixels_hex: hex(&px),
            candle_logits: vec![],
            f32_logits: vec![],
            int8_logits: vec![],
            other_logits: BTreeMap::new(),
            int8_verdict: crate::Verdict::Reject {
                reason: crate::RejectReason::Garbage,
                uncertainty: 0.0,
            },
            f32_verdict: crate::Verdict::Reject {
                reason: crate::RejectReason::Garbage,
                uncertainty: 0.0,
            },
        };
        assert_eq!(case.pixels(), Some(px));
        let short = GoldenCase {
            pixels_hex: "00".into(),
            ..case
        };
        assert_eq!(short.pixels(), None);
        // the right length in bytes, but not hex pairs: refused, no panic
        let odd = GoldenCase {
            pixels_hex: std::format!("a{}a", "é".repeat(IMG_PIXELS - 1)),
            ..short.clone()
        };
        assert_eq!(odd.pixels(), None);
        let not_hex = GoldenCase {
            pixels_hex: "zz".repeat(IMG_PIXELS),
            ..short
        };
        assert_eq!(not_hex.pixels(), None);
    }
}
