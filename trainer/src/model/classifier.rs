//! The n+1 classifier: a small CNN with 10 digit outputs plus the garbage class.
//!
//! ```text
//! x [b, 28, 28, 1] (NHWC, normalised)
//!  -> conv1 5x5, c1 filters, ReLU, maxpool 2   [b, 12, 12, c1]
//!  -> conv2 5x5, c2 filters, ReLU, maxpool 2   [b, 4, 4, c2]
//!  -> flatten in NCHW order                    [b, c2*16]
//!  -> fc1 = penultimate features (pre-ReLU)    [b, hidden]
//!  -> ReLU
//!  -> dropout (training only) -> fc2 = logits  [b, 11]
//! ```
//!
//! Weights use the PyTorch/ONNX layouts (`conv*.weight` `[o, c, k, k]`,
//! `fc*.weight` `[out, in]`); their names are the safetensors keys and, later,
//! the ONNX initializer names. With the defaults (16, 32, 128) the net has
//! 80,331 parameters.

use super::ops;
use super::optim::{Adam, AdamParams};
use crate::error::{Error, Result, TensorContext};
use candle_core::{DType, Device, Tensor, Var};
use ood_core::{IMG_PIXELS, IMG_SIDE, NUM_CLASSES};
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// One parameter as plain data: name, shape, row-major values.
pub type NamedWeight = (String, Vec<usize>, Vec<f32>);

/// Architecture of the classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClassifierConfig {
    /// Filters of the first 5x5 convolution.
    pub conv1: usize,
    /// Filters of the second 5x5 convolution.
    pub conv2: usize,
    /// Width of the penultimate (feature) layer.
    pub hidden: usize,
    /// Dropout probability on the features during training.
    pub dropout: f32,
}

impl Default for ClassifierConfig {
    fn default() -> Self {
        Self {
            conv1: 16,
            conv2: 32,
            hidden: 128,
            dropout: 0.25,
        }
    }
}

const K: usize = 5;
/// Side after a valid KxK convolution then 2x2 pooling (odd sizes floored).
const fn conv_pool(side: usize) -> usize {
    let conv = side + 1 - K;
    conv / 2
}
/// Spatial side after both conv+pool stages: 28 -> 12 -> 4.
const FINAL_SIDE: usize = conv_pool(conv_pool(IMG_SIDE));

impl ClassifierConfig {
    /// Names and shapes of all parameters, in a fixed order.
    pub fn param_shapes(&self) -> Vec<(&'static str, Vec<usize>)> {
        vec![
            ("conv1.weight", vec![self.conv1, 1, K, K]),
            ("conv1.bias", vec![self.conv1]),
            ("conv2.weight", vec![self.conv2, self.conv1, K, K]),
            ("conv2.bias", vec![self.conv2]),
            (
                "fc1.weight",
                vec![self.hidden, self.conv2 * FINAL_SIDE * FINAL_SIDE],
            ),
            ("fc1.bias", vec![self.hidden]),
            ("fc2.weight", vec![NUM_CLASSES, self.hidden]),
            ("fc2.bias", vec![NUM_CLASSES]),
        ]
    }

    /// Total number of parameters.
    pub fn num_params(&self) -> usize {
        self.param_shapes()
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum()
    }

    /// Checks the values are usable.
    pub fn validate(&self) -> Result<()> {
        if self.conv1 == 0 || self.conv2 == 0 || self.hidden == 0 {
            return Err(Error::Config(
                "model.conv1, model.conv2 and model.hidden must be > 0".into(),
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::Config(format!(
                "model.dropout must be in [0, 1), got {}",
                self.dropout
            )));
        }
        Ok(())
    }
}

/// The classifier's parameters on one device.
#[derive(Debug)]
pub struct Classifier {
    /// Architecture.
    pub config: ClassifierConfig,
    params: Vec<(&'static str, Var)>,
    device: Device,
    native_ops: bool,
    frozen: bool,
}

impl Classifier {
    /// He-uniform weights and zero biases drawn from `rng` (so runs repeat).
    pub fn new(config: &ClassifierConfig, rng: &mut StdRng, device: &Device) -> Result<Self> {
        config.validate()?;
        let params = super::init_params(config.param_shapes(), rng, device)?;
        Ok(Self {
            config: config.clone(),
            params,
            device: device.clone(),
            native_ops: false,
            frozen: false,
        })
    }

    /// Loads weights saved by [`Classifier::save`], checking every name and shape.
    pub fn load(config: &ClassifierConfig, path: &Path, device: &Device) -> Result<Self> {
        config.validate()?;
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let tensors = candle_core::safetensors::load_buffer(&bytes, device)
            .map_err(|e| Error::format(path, format!("not a safetensors file: {e}")))?;
        let mut params = Vec::new();
        for (name, shape) in config.param_shapes() {
            let t = tensors
                .get(name)
                .ok_or_else(|| Error::format(path, format!("missing tensor {name:?}")))?;
            if t.dims() != shape.as_slice() {
                return Err(Error::format(
                    path,
                    format!("tensor {name:?} has shape {:?}, the config expects {shape:?} (wrong --config for these weights?)", t.dims()),
                ));
            }
            let t = t.to_dtype(DType::F32).op("load parameter")?;
            params.push((name, Var::from_tensor(&t).op("load parameter")?));
        }
        Ok(Self {
            config: config.clone(),
            params,
            device: device.clone(),
            native_ops: false,
            frozen: false,
        })
    }

    /// Writes the weights as safetensors, atomically (temp file + rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let map: HashMap<String, Tensor> = self
            .params
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_tensor().clone()))
            .collect();
        let tmp = path.with_extension("safetensors.tmp");
        candle_core::safetensors::save(&map, &tmp)
            .map_err(|e| Error::io(&tmp, std::io::Error::other(e.to_string())))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    }

    /// Adds `delta` to the garbage logit's bias (`fc2.bias[GARBAGE]`): every
    /// garbage logit moves by `delta`, nothing else changes.
    pub fn shift_garbage_bias(&mut self, delta: f32) -> Result<()> {
        let (_, var) = self
            .params
            .iter()
            .find(|(n, _)| *n == "fc2.bias")
            .ok_or_else(|| Error::Config("the classifier has no fc2.bias".into()))?;
        let mut b = var.as_tensor().to_vec1::<f32>().op("read fc2.bias")?;
        b[ood_core::GARBAGE] += delta;
        let t = Tensor::from_vec(b, NUM_CLASSES, &self.device).op("shifted fc2.bias")?;
        var.set(&t).op("write fc2.bias")
    }

    /// The trainable variables, in [`ClassifierConfig::param_shapes`] order.
    pub fn vars(&self) -> Vec<Var> {
        self.params.iter().map(|(_, v)| v.clone()).collect()
    }

    /// Use candle's stock conv/pool ops even on the CPU (benchmark baseline
    /// and cross-checks; the default is the fast custom path on the CPU).
    pub fn set_native_ops(&mut self, native: bool) {
        self.native_ops = native;
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    fn p(&self, i: usize) -> Tensor {
        let t = self.params[i].1.as_tensor();
        if self.frozen {
            t.detach()
        } else {
            t.clone()
        }
    }

    /// Eval-mode forward with the weights detached from the graph: gradients
    /// flow to the input (the generator) but never into the classifier.
    pub fn forward_frozen(&self, x: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let frozen = Classifier {
            config: self.config.clone(),
            params: self.params.clone(),
            device: self.device.clone(),
            native_ops: self.native_ops,
            frozen: true,
        };
        frozen.forward(x, None)
    }

    /// Logits `[b, 11]` and penultimate features `[b, hidden]` (fc1 before its
    /// ReLU) of a normalised
    /// NHWC batch. `dropout_rng`: `Some` in training (dropout on), `None` in eval.
    pub fn forward(
        &self,
        x: &Tensor,
        dropout_rng: Option<&mut StdRng>,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let (_, _, feat) = self.stages(x)?;
        let act = feat.relu()?;
        let h = super::dropout(&act, self.config.dropout, dropout_rng)?;
        let logits = h.matmul(&self.p(6).t()?)?.broadcast_add(&self.p(7))?; // [b, 11]
        Ok((logits, feat))
    }

    /// The trunk: `relu(pool(conv1))` `[b, 12, 12, c1]`, `relu(pool(conv2))`
    /// flattened in NCHW order `[b, c2*16]`, and the features (fc1 before
    /// its ReLU) `[b, hidden]`.
    fn stages(&self, x: &Tensor) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
        let cpu = super::uses_cpu_ops(&self.device) && !self.native_ops;
        let conv = |x: &Tensor, w: Tensor, b: Tensor| {
            if cpu {
                ops::conv2d_nhwc_im2col(x, &w, &b)
            } else {
                ops::conv2d_nhwc_native(x, &w, &b)
            }
        };
        let pool = |x: &Tensor| {
            if cpu {
                ops::max_pool2_custom(x)
            } else {
                ops::max_pool2_native(x)
            }
        };
        let b = x.dim(0)?;
        // relu(maxpool(.)) == maxpool(relu(.)) (relu is monotonic): pooling
        // first runs the relu on 4x fewer values.
        let h1 = pool(&conv(x, self.p(0), self.p(1))?)?.relu()?; // [b, 12, 12, c1]
        let h = pool(&conv(&h1, self.p(2), self.p(3))?)?.relu()?; // [b, 4, 4, c2]
        let h2 = h.permute((0, 3, 1, 2))?.contiguous()?.reshape((b, ()))?; // [b, c2*16]
                                                                           // features = fc1 pre-activation: signed, so the inversion's cosine and
                                                                           // orthogonality terms cannot be gamed by driving them to all-zero ReLUs
        let feat = h2.matmul(&self.p(4).t()?)?.broadcast_add(&self.p(5))?; // [b, hidden]
        Ok((h1, h2, feat))
    }

    /// Largest value, over raw 28x28 images, of each input that the int8
    /// export quantises after the first: `relu(pool(conv1))`,
    /// `relu(pool(conv2))` and `relu(fc1)` (all non-negative).
    pub fn activation_maxima(&self, pixels: &[u8], batch: usize) -> Result<[f32; 3]> {
        let mut m = [0f32; 3];
        for chunk in pixels.chunks(batch.max(1) * IMG_PIXELS) {
            let x = super::images_to_tensor(chunk, &self.device)?;
            let (h1, h2, feat) = self.stages(&x).op("classifier stages")?;
            for (slot, t) in m.iter_mut().zip([h1, h2, feat.relu().op("relu")?]) {
                let v = t
                    .flatten_all()
                    .and_then(|t| t.max(0))
                    .and_then(|t| t.to_dtype(DType::F32))
                    .and_then(|t| t.to_scalar::<f32>())
                    .op("activation maximum")?;
                *slot = slot.max(v);
            }
        }
        Ok(m)
    }

    /// Every parameter as `(name, shape, values)` in the PyTorch/ONNX layouts,
    /// in [`ClassifierConfig::param_shapes`] order.
    pub fn weights(&self) -> Result<Vec<NamedWeight>> {
        self.params
            .iter()
            .map(|(name, v)| {
                let t = v.as_tensor();
                let values = t
                    .flatten_all()
                    .and_then(|t| t.to_dtype(DType::F32))
                    .and_then(|t| t.to_vec1::<f32>())
                    .op("read weights")?;
                Ok((name.to_string(), t.dims().to_vec(), values))
            })
            .collect()
    }

    /// Eval-mode logits of raw 28x28 images (row-major bytes), in batches.
    pub fn logits(&self, pixels: &[u8], batch: usize) -> Result<Vec<[f32; NUM_CLASSES]>> {
        let mut out = Vec::with_capacity(pixels.len() / IMG_PIXELS);
        for chunk in pixels.chunks(batch.max(1) * IMG_PIXELS) {
            let x = super::images_to_tensor(chunk, &self.device)?;
            let (z, _) = self.forward(&x, None).op("classifier forward")?;
            let z = z
                .to_dtype(DType::F32)
                .and_then(|z| z.to_vec2::<f32>())
                .op("read logits")?;
            out.extend(z.into_iter().map(|row| {
                let mut a = [0f32; NUM_CLASSES];
                a.copy_from_slice(&row);
                a
            }));
        }
        Ok(out)
    }
}

/// A classifier with its optimiser: one call = one training step.
#[derive(Debug)]
pub struct ClassifierTrainer {
    /// The model being trained.
    pub model: Classifier,
    opt: Adam,
}

impl ClassifierTrainer {
    /// Wraps `model` with a fresh Adam optimiser.
    pub fn new(model: Classifier, params: AdamParams) -> Result<Self> {
        let opt = Adam::new(model.vars(), params).op("create optimiser")?;
        Ok(Self { model, opt })
    }

    /// Weights and optimiser state as named tensors (for checkpoints).
    pub fn tensors(&self) -> Result<HashMap<String, Tensor>> {
        super::params_to_tensors(&self.model.params, &self.opt, "cls")
    }

    /// Restores what [`ClassifierTrainer::tensors`] wrote.
    pub fn load_tensors(&mut self, m: &HashMap<String, Tensor>, origin: &Path) -> Result<()> {
        super::params_from_tensors(&self.model.params, &mut self.opt, "cls", m, origin)
    }

    /// Sets the learning rate for the next steps.
    pub fn set_lr(&mut self, lr: f64) {
        self.opt.params.lr = lr;
    }

    /// One step on a batch of raw images with labels `0..=10`, weighting the
    /// cross-entropy by `class_weights`. Returns the batch loss.
    pub fn step(
        &mut self,
        pixels: &[u8],
        labels: &[u8],
        class_weights: &[f32; NUM_CLASSES],
        rng: &mut StdRng,
    ) -> Result<f32> {
        let w: Vec<f32> = labels.iter().map(|&l| class_weights[usize::from(l)]).collect();
        self.step_weighted(pixels, labels, &w, rng)
    }

    /// One step like [`ClassifierTrainer::step`] with one cross-entropy weight
    /// per image (`sample_weights.len() == labels.len()`).
    pub fn step_weighted(
        &mut self,
        pixels: &[u8],
        labels: &[u8],
        sample_weights: &[f32],
        rng: &mut StdRng,
    ) -> Result<f32> {
        let dev = self.model.device.clone();
        let x = super::images_to_tensor(pixels, &dev)?;
        let y: Vec<u32> = labels.iter().map(|&l| u32::from(l)).collect();
        let y = Tensor::from_vec(y, labels.len(), &dev).op("labels to tensor")?;
        let w = Tensor::from_slice(sample_weights, labels.len(), &dev).op("sample weights")?;
        let (logits, _) = self.model.forward(&x, Some(rng)).op("classifier forward")?;
        let loss = super::sample_weighted_cross_entropy(&logits, &y, &w).op("weighted cross-entropy")?;
        self.opt.backward_step(&loss).op("classifier backward")?;
        loss.to_scalar::<f32>().op("read loss")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn default_net_is_small_enough_for_a_100kb_int8_export() {
        let n = ClassifierConfig::default().num_params();
        assert_eq!(n, 80_331);
        assert!(n <= 100_000);
    }

    #[test]
    fn forward_shapes_and_save_load_round_trip() -> Result<()> {
        let dev = Device::Cpu;
        let cfg = ClassifierConfig::default();
        let m = Classifier::new(&cfg, &mut StdRng::seed_from_u64(1), &dev)?;
        let pixels: Vec<u8> = (0..3 * IMG_PIXELS).map(|i| (i % 251) as u8).collect();
        let x = crate::model::images_to_tensor(&pixels, &dev)?;
        let (z, f) = m.forward(&x, None).op("forward")?;
        assert_eq!(z.dims(), &[3, NUM_CLASSES]);
        assert_eq!(f.dims(), &[3, cfg.hidden]);
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let path = dir.path().join("c.safetensors");
        m.save(&path)?;
        let m2 = Classifier::load(&cfg, &path, &dev)?;
        assert_eq!(m.logits(&pixels, 2)?, m2.logits(&pixels, 2)?);
        // shifting the garbage bias moves the garbage logit alone
        let mut m3 = Classifier::load(&cfg, &path, &dev)?;
        m3.shift_garbage_bias(1.5)?;
        for (a, b) in m.logits(&pixels, 2)?.iter().zip(m3.logits(&pixels, 2)?) {
            for k in 0..NUM_CLASSES {
                let want = if k == ood_core::GARBAGE { a[k] + 1.5 } else { a[k] };
                assert!((b[k] - want).abs() < 1e-5, "class {k}: {} vs {want}", b[k]);
            }
        }
        // a config that does not fit the weights is a clear error
        let other = ClassifierConfig { hidden: 64, ..cfg };
        let err = Classifier::load(&other, &path, &dev).expect_err("shape mismatch");
        assert!(err.to_string().contains("fc1.weight"), "{err}");
        Ok(())
    }

    #[test]
    fn optimiser_state_keeps_no_graph_on_either_path() -> Result<()> {
        // candle's stock conv backward returns gradients that still track the
        // step's graph; if the Adam moments kept it, every step's activations
        // would stay alive (this leaked 16 MB a step on CUDA)
        for native in [false, true] {
            let mut rng = StdRng::seed_from_u64(8);
            let mut m = Classifier::new(&ClassifierConfig::default(), &mut rng, &Device::Cpu)?;
            m.set_native_ops(native);
            let mut t = ClassifierTrainer::new(m, AdamParams::default())?;
            let pixels: Vec<u8> = (0..4 * IMG_PIXELS).map(|i| (i % 253) as u8).collect();
            for _ in 0..2 {
                t.step(&pixels, &[1, 2, 3, 10], &[1.0; NUM_CLASSES], &mut rng)?;
            }
            let state: Vec<_> = t
                .tensors()?
                .into_iter()
                .filter(|(n, _)| n.contains(".adam."))
                .collect();
            assert!(state.len() > 2, "moments missing: {}", state.len());
            for (name, tensor) in state {
                assert!(!tensor.track_op(), "native {native}: {name} keeps a graph");
            }
        }
        Ok(())
    }

    #[test]
    fn training_steps_reduce_the_loss_on_a_tiny_problem() -> Result<()> {
        // two classes of constant images: a linearly separable toy problem
        let dev = Device::Cpu;
        let mut rng = StdRng::seed_from_u64(3);
        let m = Classifier::new(&ClassifierConfig::default(), &mut rng, &dev)?;
        let mut t = ClassifierTrainer::new(m, AdamParams::default())?;
        let mut pixels = vec![0u8; 8 * IMG_PIXELS];
        let labels: Vec<u8> = (0..8)
            .map(|i| if i % 2 == 0 { 3 } else { ood_core::GARBAGE as u8 })
            .collect();
        for (i, img) in pixels.chunks_mut(IMG_PIXELS).enumerate() {
            if i % 2 == 0 {
                img[300..500].fill(255);
            }
        }
        let w = [1.0f32; NUM_CLASSES];
        let first = t.step(&pixels, &labels, &w, &mut rng)?;
        let mut last = first;
        for _ in 0..30 {
            last = t.step(&pixels, &labels, &w, &mut rng)?;
        }
        assert!(last < first * 0.2, "loss {first} -> {last}");
        let pred = t.model.logits(&pixels, 8)?;
        for (z, &l) in pred.iter().zip(&labels) {
            assert_eq!(ood_core::score::argmax(z), l as usize);
        }
        Ok(())
    }
}
