//! The conditional generator that inverts the classifier.
//!
//! ```text
//! z [b, latent] ++ c [b, 11]            (c: the conditioning distribution P)
//!  -> fc1 -> LeakyReLU(0.2) -> dropout  [b, h1]
//!  ++ c -> fc2 -> LeakyReLU(0.2) -> dropout  [b, h2]
//!  ++ c -> fc7  -> [b, 7x7]   -> bilinear up-sampling to 28x28 --+
//!  ++ c -> fc14 -> [b, 14x14] -> bilinear up-sampling to 28x28 --+-> sum -> sigmoid
//!  -> reshape                           [b, 28, 28, 1] pixels in [0, 1]
//! ```
//!
//! The label is fed into every layer (the conditioning vector is concatenated
//! to each layer's input; with `latent_every_layer`, the default, `z` too, which
//! measurably raised the within-class diversity of the samples), and dropout stays on while sampling so the same
//! `(z, c)` gives varied images. The image is built at 7x7 and 14x14 and
//! up-sampled (fixed bilinear matrices, so the up-sampling is one matmul with
//! an exact backward), which plays the role of the seed's up-convolutions: it
//! gives the samples spatially coherent strokes and blobs. A first version
//! that wrote all 784 pixels directly produced pixel-level speckle (see the
//! README), which is why the output has no full-resolution head. The output is
//! in pixel space; [`to_model_space`] normalises it exactly like real inputs.

use super::cpu;
use super::layers::Layer;
use super::optim::{Adam, AdamParams};
use crate::error::{Error, Result, TensorContext};
use candle_core::{Device, Tensor, Var};
use ood_core::{input, IMG_PIXELS, IMG_SIDE, NUM_CLASSES};
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// Generator architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeneratorConfig {
    /// Latent dimension (seed: 100).
    pub latent: usize,
    /// Width of the first hidden layer.
    pub hidden1: usize,
    /// Width of the second hidden layer.
    pub hidden2: usize,
    /// Dropout probability on the hidden layers (training and sampling).
    pub dropout: f32,
    /// Feed the latent `z` (not only the condition) into every layer.
    pub latent_every_layer: bool,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        Self {
            latent: 100,
            hidden1: 256,
            hidden2: 512,
            dropout: 0.2,
            latent_every_layer: true,
        }
    }
}

impl GeneratorConfig {
    /// Names and shapes of all parameters.
    pub fn param_shapes(&self) -> Vec<(&'static str, Vec<usize>)> {
        let c = NUM_CLASSES + if self.latent_every_layer { self.latent } else { 0 };
        vec![
            ("gen.fc1.weight", vec![self.hidden1, self.latent + NUM_CLASSES]),
            ("gen.fc1.bias", vec![self.hidden1]),
            ("gen.fc2.weight", vec![self.hidden2, self.hidden1 + c]),
            ("gen.fc2.bias", vec![self.hidden2]),
            ("gen.fc7.weight", vec![7 * 7, self.hidden2 + c]),
            ("gen.fc7.bias", vec![7 * 7]),
            ("gen.fc14.weight", vec![14 * 14, self.hidden2 + c]),
            ("gen.fc14.bias", vec![14 * 14]),
        ]
    }

    /// Checks the values are usable.
    pub fn validate(&self) -> Result<()> {
        if self.latent == 0 || self.hidden1 == 0 || self.hidden2 == 0 {
            return Err(Error::Config("generator sizes must be > 0".into()));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::Config(format!(
                "generator.dropout must be in [0, 1), got {}",
                self.dropout
            )));
        }
        Ok(())
    }
}

/// Pixel-space images `[b, 28, 28, 1]` in `[0, 1]` -> the classifier's input space.
pub fn to_model_space(pixels: &Tensor) -> candle_core::Result<Tensor> {
    (pixels - f64::from(input::MEAN))? / f64::from(input::STD)
}

/// The `[784, s*s]` matrix of bilinear up-sampling from `s x s` to 28x28
/// (pixel centres aligned, borders clamped): `up = m @ small`.
pub fn bilinear_matrix(s: usize) -> Vec<f32> {
    let mut m = vec![0f32; IMG_PIXELS * s * s];
    let coord = |o: usize| -> (usize, usize, f32) {
        let src = ((o as f32 + 0.5) * s as f32 / IMG_SIDE as f32 - 0.5).clamp(0.0, (s - 1) as f32);
        let i0 = src.floor() as usize;
        let i1 = (i0 + 1).min(s - 1);
        (i0, i1, src - i0 as f32)
    };
    for y in 0..IMG_SIDE {
        let (y0, y1, fy) = coord(y);
        for x in 0..IMG_SIDE {
            let (x0, x1, fx) = coord(x);
            let row = &mut m[(y * IMG_SIDE + x) * s * s..(y * IMG_SIDE + x + 1) * s * s];
            row[y0 * s + x0] += (1.0 - fy) * (1.0 - fx);
            row[y0 * s + x1] += (1.0 - fy) * fx;
            row[y1 * s + x0] += fy * (1.0 - fx);
            row[y1 * s + x1] += fy * fx;
        }
    }
    m
}

/// The generator's parameters and its optimiser.
#[derive(Debug)]
pub struct Generator {
    /// Architecture.
    pub config: GeneratorConfig,
    /// Every parameter with its name, in [`GeneratorConfig::param_shapes`]
    /// order (the optimiser's and the checkpoint's view).
    params: Vec<(&'static str, Var)>,
    /// The same parameters by layer: latent + condition -> `fc1` -> `fc2`
    /// -> `fc7` (7x7 head) and `fc14` (14x14 head).
    fc1: Layer,
    fc2: Layer,
    fc7: Layer,
    fc14: Layer,
    device: Device,
    opt: Adam,
    /// Bilinear up-sampling matrices `[784, 49]` and `[784, 196]`.
    up: [Tensor; 2],
    /// The same as plain values, for the CPU path.
    up_values: [Vec<f32>; 2],
    /// Buffers of the hand-written CPU path, reused from step to step.
    pub(crate) scratch: Vec<cpu::generator::GenScratch>,
}

impl Generator {
    /// Fresh weights (He-uniform, zero bias) from `rng`, with an Adam optimiser.
    pub fn new(config: &GeneratorConfig, lr: f64, rng: &mut StdRng, device: &Device) -> Result<Self> {
        config.validate()?;
        let params = super::init_params(config.param_shapes(), rng, device)?;
        let vars = params.iter().map(|(_, v)| v.clone()).collect();
        let opt = Adam::new(
            vars,
            AdamParams {
                lr,
                beta1: 0.5,
                ..Default::default()
            },
        )
        .op("generator optimiser")?;
        let up_values = [bilinear_matrix(7), bilinear_matrix(14)];
        let up = [
            Tensor::from_slice(&up_values[0], (IMG_PIXELS, 49), device).op("up-sampling matrix")?,
            Tensor::from_slice(&up_values[1], (IMG_PIXELS, 196), device).op("up-sampling matrix")?,
        ];
        Ok(Self {
            config: config.clone(),
            fc1: Layer::find(&params, "gen.fc1")?,
            fc2: Layer::find(&params, "gen.fc2")?,
            fc7: Layer::find(&params, "gen.fc7")?,
            fc14: Layer::find(&params, "gen.fc14")?,
            params,
            device: device.clone(),
            opt,
            up,
            up_values,
            scratch: Vec::new(),
        })
    }

    /// The weights as plain values for the CPU path.
    pub(crate) fn cpu_weights(&self) -> Result<cpu::generator::GenWeights> {
        let mut values = Vec::with_capacity(self.params.len());
        for (_, v) in &self.params {
            let t = v.as_tensor();
            values.push(
                t.flatten_all()
                    .and_then(|t| t.to_vec1::<f32>())
                    .op("read generator weights")?,
            );
        }
        let mut it = values.into_iter();
        let p = std::array::from_fn(|_| it.next().unwrap_or_default());
        let c = &self.config;
        let dims = cpu::generator::GenDims {
            latent: c.latent,
            hidden1: c.hidden1,
            hidden2: c.hidden2,
            latent_every_layer: c.latent_every_layer,
        };
        Ok(cpu::generator::GenWeights::new(dims, p, self.up_values.clone()))
    }

    /// The dropout multipliers of both hidden layers for a batch of `b`,
    /// drawn from `rng` in the order [`Generator::forward`] draws them.
    pub(crate) fn dropout_masks(&self, b: usize, rng: &mut StdRng) -> [Option<Vec<f32>>; 2] {
        let c = &self.config;
        [c.hidden1, c.hidden2].map(|h| (c.dropout > 0.0).then(|| super::dropout_mask(b * h, c.dropout, rng)))
    }

    /// The optimiser (for steps and checkpoints).
    pub fn optimizer(&mut self) -> &mut Adam {
        &mut self.opt
    }

    /// Pixel-space images `[b, 28, 28, 1]` from latents `[b, latent]` and
    /// conditioning vectors `[b, 11]`; dropout on when `rng` is given.
    pub fn forward(
        &self,
        z: &Tensor,
        c: &Tensor,
        mut rng: Option<&mut StdRng>,
    ) -> candle_core::Result<Tensor> {
        let b = z.dim(0)?;
        let lrelu = |x: Tensor| x.maximum(&(&x * 0.2)?);
        let h = lrelu(self.fc1.dense(&Tensor::cat(&[z, c], 1)?)?)?; // [b, h1]
                                                                    // what every later layer sees besides its input: c, or z ++ c
        let zc = Tensor::cat(&[z, c], 1)?;
        let c = if self.config.latent_every_layer { &zc } else { c };
        let h = super::dropout(&h, self.config.dropout, rng.as_deref_mut())?;
        let h = lrelu(self.fc2.dense(&Tensor::cat(&[&h, c], 1)?)?)?; // [b, h2]
        let h = super::dropout(&h, self.config.dropout, rng)?;
        let hc = Tensor::cat(&[&h, c], 1)?;
        let o7 = self.fc7.dense(&hc)?.matmul(&self.up[0].t()?)?; // [b, 49] -> [b, 784]
        let o14 = self.fc14.dense(&hc)?.matmul(&self.up[1].t()?)?; // [b, 196] -> [b, 784]
        let o = (o7 + o14)?; // [b, 784]
        let px = (o.neg()?.exp()? + 1.0)?.recip()?; // sigmoid
        px.reshape((b, IMG_SIDE, IMG_SIDE, 1)) // [b, 28, 28, 1]
    }

    /// Weights (and optimiser state) as named tensors.
    pub fn tensors(&self) -> Result<HashMap<String, Tensor>> {
        super::params_to_tensors(&self.params, &self.opt, "gen")
    }

    /// Restores weights and optimiser state written by [`Generator::tensors`].
    pub fn load_tensors(&mut self, m: &HashMap<String, Tensor>, origin: &Path) -> Result<()> {
        super::params_from_tensors(&self.params, &mut self.opt, "gen", m, origin)
    }

    /// The device.
    pub fn device(&self) -> &Device {
        &self.device
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;
    use rand::SeedableRng;

    #[test]
    fn bilinear_up_sampling_preserves_constants_and_interpolates() {
        for s in [7, 14] {
            let m = bilinear_matrix(s);
            // rows sum to 1: a constant image stays constant
            for row in m.chunks(s * s) {
                assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            }
        }
        // 14 -> 28 doubles: output pixel (0, 0) comes from source (0, 0) only (clamped border)
        let m = bilinear_matrix(14);
        assert!((m[0] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn output_is_an_image_batch_in_the_unit_interval() -> Result<()> {
        let dev = Device::Cpu;
        let mut rng = StdRng::seed_from_u64(1);
        let g = Generator::new(&GeneratorConfig::default(), 1e-3, &mut rng, &dev)?;
        let z = Tensor::randn(0f32, 1.0, (3, 100), &dev).op("z")?;
        let c = Tensor::zeros((3, NUM_CLASSES), DType::F32, &dev).op("c")?;
        let px = g.forward(&z, &c, Some(&mut rng)).op("forward")?;
        assert_eq!(px.dims(), &[3, 28, 28, 1]);
        let v = px.flatten_all().and_then(|t| t.to_vec1::<f32>()).op("read")?;
        assert!(v.iter().all(|p| (0.0..=1.0).contains(p)));
        // model space is the real-input normalisation
        let m = to_model_space(&px)
            .op("norm")?
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .op("r")?;
        assert!((m[0] - input::normalize_unit(v[0])).abs() < 1e-6);
        Ok(())
    }
}
