//! int8 quantisation parameters: uint8 activations with a calibrated range,
//! int8 weights with one symmetric scale per output channel.

use ood_core::input;

/// Quantisation of a tensor: `q = clamp(round(x / scale) + zero_point)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QParams {
    /// Step between two quantised levels.
    pub scale: f32,
    /// Quantised value of real 0.
    pub zero_point: u8,
}

impl QParams {
    /// uint8 parameters for a tensor whose values lie in `[lo, hi]` (0 is
    /// always representable exactly, as ONNX requires).
    pub fn for_range(lo: f32, hi: f32) -> Self {
        let (lo, hi) = (lo.min(0.0), hi.max(0.0));
        let scale = if hi > lo { (hi - lo) / 255.0 } else { 1.0 };
        let zero_point = (-lo / scale).round().clamp(0.0, 255.0) as u8;
        Self { scale, zero_point }
    }

    /// Quantise then dequantise one value (what a QDQ pair computes).
    pub fn fake_quant(self, x: f32) -> f32 {
        let q = ((x / self.scale).round() + f32::from(self.zero_point)).clamp(0.0, 255.0);
        (q - f32::from(self.zero_point)) * self.scale
    }
}

/// Activation quantisation for the four quantised inputs of the int8 graph.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActivationQuant {
    /// The normalised input image.
    pub input: QParams,
    /// `relu(pool(conv1))`, input of conv2.
    pub pool1: QParams,
    /// `relu(pool(conv2))` flattened, input of fc1.
    pub pool2: QParams,
    /// `relu(fc1)`, input of fc2.
    pub hidden: QParams,
    /// The logits (only the QLinear form quantises its output).
    pub logits: Option<QParams>,
}

impl ActivationQuant {
    /// From the calibrated maxima of the three non-negative activations
    /// (`Classifier::activation_maxima`); the input range is exact (the
    /// normalisation of pixel 0 and 255).
    pub fn from_maxima(maxima: [f32; 3]) -> Self {
        Self {
            input: QParams::for_range(input::normalize_u8(0), input::normalize_u8(255)),
            pool1: QParams::for_range(0.0, maxima[0]),
            pool2: QParams::for_range(0.0, maxima[1]),
            hidden: QParams::for_range(0.0, maxima[2]),
            logits: None,
        }
    }

    /// Adds the calibrated range of the logits.
    pub fn with_logit_range(mut self, lo: f32, hi: f32) -> Self {
        self.logits = Some(QParams::for_range(lo, hi));
        self
    }
}

/// Symmetric int8 quantisation of a weight `[out, ...]` with one scale per
/// output channel: `w ~= q * scale[o]`, `q` in `-127..=127`.
pub fn quantize_per_channel(w: &[f32], out_channels: usize) -> (Vec<i8>, Vec<f32>) {
    let per = w.len() / out_channels.max(1);
    let mut q = Vec::with_capacity(w.len());
    let mut scales = Vec::with_capacity(out_channels);
    for row in w.chunks(per.max(1)) {
        let m = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        let s = if m > 0.0 { m / 127.0 } else { 1.0 };
        scales.push(s);
        q.extend(row.iter().map(|v| (v / s).round().clamp(-127.0, 127.0) as i8));
    }
    (q, scales)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn input_range_is_exactly_representable_at_the_ends() {
        let q = ActivationQuant::from_maxima([1.0, 2.0, 3.0]).input;
        let (lo, hi) = (input::normalize_u8(0), input::normalize_u8(255));
        // zero_point rounding moves the ends by at most half a step
        assert!((q.fake_quant(lo) - lo).abs() <= q.scale * 0.5 + 1e-6);
        assert!((q.fake_quant(hi) - hi).abs() <= q.scale * 0.5 + 1e-6);
        assert_eq!(q.fake_quant(0.0), 0.0);
    }

    proptest! {
        /// House style: quantise -> dequantise stays within scale / 2.
        #[test]
        fn per_channel_quantisation_is_within_half_a_step(
            w in proptest::collection::vec(-3.0f32..3.0, 12),
        ) {
            let (q, s) = quantize_per_channel(&w, 3);
            for (i, (&qi, &wi)) in q.iter().zip(&w).enumerate() {
                let back = f32::from(qi) * s[i / 4];
                prop_assert!((back - wi).abs() <= s[i / 4] * 0.5 + 1e-6);
            }
        }

        #[test]
        fn activation_quantisation_is_within_half_a_step(x in 0.0f32..5.0, max in 5.0f32..10.0) {
            let q = QParams::for_range(0.0, max);
            prop_assert!((q.fake_quant(x) - x).abs() <= q.scale * 0.5 + 1e-6);
        }
    }
}
