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

use super::layers::{Layer, Layers, PARAM_NAMES};
use super::{cpu, ops};
use crate::error::{Error, Result, TensorContext};
use candle_core::{DType, Device, Tensor, Var};
use ood_core::{IMG_PIXELS, IMG_SIDE, NUM_CLASSES};
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

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
    /// Names and shapes of all parameters, in [`PARAM_NAMES`] order.
    pub fn param_shapes(&self) -> Vec<(&'static str, Vec<usize>)> {
        let shapes = [
            vec![self.conv1, 1, K, K],
            vec![self.conv1],
            vec![self.conv2, self.conv1, K, K],
            vec![self.conv2],
            vec![self.hidden, self.conv2 * FINAL_SIDE * FINAL_SIDE],
            vec![self.hidden],
            vec![NUM_CLASSES, self.hidden],
            vec![NUM_CLASSES],
        ];
        PARAM_NAMES.into_iter().zip(shapes).collect()
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
    /// The parameters, layer by layer.
    pub(crate) layers: Layers,
    device: Device,
    native_ops: bool,
    frozen: bool,
    /// Buffers of the hand-written CPU path ([`super::cpu`]), reused.
    scratch: Arc<Mutex<Vec<cpu::Scratch>>>,
    threads: usize,
}

impl Classifier {
    /// He-uniform weights and zero biases drawn from `rng` (so runs repeat).
    pub fn new(config: &ClassifierConfig, rng: &mut StdRng, device: &Device) -> Result<Self> {
        config.validate()?;
        let params = super::init_params(config.param_shapes(), rng, device)?;
        Self::from_params(config, params, device)
    }

    fn from_params(
        config: &ClassifierConfig,
        params: Vec<(&'static str, Var)>,
        device: &Device,
    ) -> Result<Self> {
        Ok(Self {
            config: config.clone(),
            layers: Layers::from_named(params)?,
            device: device.clone(),
            native_ops: false,
            frozen: false,
            scratch: Arc::default(),
            threads: cpu::threads(),
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
        Self::from_params(config, params, device)
    }

    /// Writes the weights as safetensors, atomically (temp file + rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let map: HashMap<String, Tensor> = self
            .layers
            .named()
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_tensor().clone()))
            .collect();
        super::save_safetensors(&map, path)
    }

    /// Adds `delta` to the garbage logit's bias (`fc2.bias[GARBAGE]`): every
    /// garbage logit moves by `delta`, nothing else changes.
    pub fn shift_garbage_bias(&mut self, delta: f32) -> Result<()> {
        let var = &self.layers.fc2.bias;
        let mut b = var.as_tensor().to_vec1::<f32>().op("read fc2.bias")?;
        b[ood_core::GARBAGE] += delta;
        let t = Tensor::from_vec(b, NUM_CLASSES, &self.device).op("shifted fc2.bias")?;
        var.set(&t).op("write fc2.bias")
    }

    /// The trainable variables, in [`ClassifierConfig::param_shapes`] order.
    pub fn vars(&self) -> Vec<Var> {
        self.layers.named().into_iter().map(|(_, v)| v).collect()
    }

    /// Run the candle graph (stock conv, reshape pooling) even on the CPU,
    /// instead of the hand-written CPU path (benchmark baseline and the
    /// reference in tests; CUDA always runs the graph).
    pub fn set_native_ops(&mut self, native: bool) {
        self.native_ops = native;
    }

    /// Whether training and inference take the hand-written CPU path
    /// ([`super::cpu`]): on the CPU unless [`Classifier::set_native_ops`].
    pub fn uses_cpu_path(&self) -> bool {
        super::uses_cpu_ops(&self.device) && !self.native_ops
    }

    /// Threads of the CPU path (see [`cpu::threads`]); results do not depend on it.
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = threads.max(1);
    }

    /// The weights as plain values for the CPU path.
    pub(crate) fn cpu_weights(&self) -> Result<cpu::Weights> {
        let mut it = self.weights()?.into_iter().map(|(_, _, v)| v);
        let params = std::array::from_fn(|_| it.next().unwrap_or_default());
        let c = &self.config;
        Ok(cpu::Weights::new(
            cpu::Dims {
                c1: c.conv1,
                c2: c.conv2,
                hidden: c.hidden,
            },
            params,
        ))
    }

    /// The CPU path's reused buffers (locked), and its thread count.
    pub(crate) fn cpu_scratch(&self) -> (MutexGuard<'_, Vec<cpu::Scratch>>, usize) {
        // every buffer is overwritten before it is read: a panic elsewhere
        // that poisoned the lock leaves nothing to recover
        let guard = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        (guard, self.threads)
    }

    /// The threads of the CPU path.
    pub(crate) fn cpu_threads(&self) -> usize {
        self.threads
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// A parameter as the forward pass reads it (detached when frozen).
    fn t(&self, v: &Var) -> Tensor {
        let t = v.as_tensor();
        if self.frozen {
            t.detach()
        } else {
            t.clone()
        }
    }

    /// Eval-mode forward with the weights detached from the graph: gradients
    /// flow to the input (the generator) but never into the classifier.
    pub fn forward_frozen(&self, x: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        if self.uses_cpu_path() && x.dtype() == DType::F32 {
            let weights = self
                .cpu_weights()
                .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
            let out = x.contiguous()?.apply_op1(ops::FrozenClassifier {
                weights: Arc::new(weights),
                scratch: Arc::clone(&self.scratch),
                threads: self.threads,
            })?; // [b, 11 + hidden]
            let logits = out.narrow(1, 0, NUM_CLASSES)?;
            let feats = out.narrow(1, NUM_CLASSES, self.config.hidden)?;
            return Ok((logits, feats));
        }
        let frozen = Classifier {
            config: self.config.clone(),
            layers: self.layers.clone(),
            device: self.device.clone(),
            native_ops: self.native_ops,
            frozen: true,
            scratch: Arc::clone(&self.scratch),
            threads: self.threads,
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
        let fc2 = &self.layers.fc2;
        let logits = h
            .matmul(&self.t(&fc2.weight).t()?)?
            .broadcast_add(&self.t(&fc2.bias))?; // [b, 11]
        Ok((logits, feat))
    }

    /// The trunk: `relu(pool(conv1))` `[b, 12, 12, c1]`, `relu(pool(conv2))`
    /// flattened in NCHW order `[b, c2*16]`, and the features (fc1 before
    /// its ReLU) `[b, hidden]`.
    fn stages(&self, x: &Tensor) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
        let conv = |x: &Tensor, l: &Layer| ops::conv2d_nhwc_native(x, &self.t(&l.weight), &self.t(&l.bias));
        let pool = ops::max_pool2_native;
        let b = x.dim(0)?;
        // relu(maxpool(.)) == maxpool(relu(.)) (relu is monotonic): pooling
        // first runs the relu on 4x fewer values.
        let h1 = pool(&conv(x, &self.layers.conv1)?)?.relu()?; // [b, 12, 12, c1]
        let h = pool(&conv(&h1, &self.layers.conv2)?)?.relu()?; // [b, 4, 4, c2]
        let h2 = h.permute((0, 3, 1, 2))?.contiguous()?.reshape((b, ()))?; // [b, c2*16]
                                                                           // features = fc1 pre-activation: signed, so the inversion's cosine and
                                                                           // orthogonality terms cannot be gamed by driving them to all-zero ReLUs
        let fc1 = &self.layers.fc1;
        let feat = h2
            .matmul(&self.t(&fc1.weight).t()?)?
            .broadcast_add(&self.t(&fc1.bias))?; // [b, hidden]
        Ok((h1, h2, feat))
    }

    /// Largest value, over raw 28x28 images, of each input that the int8
    /// export quantises after the first: `relu(pool(conv1))`,
    /// `relu(pool(conv2))` and `relu(fc1)` (all non-negative).
    pub fn activation_maxima(&self, pixels: &[u8], batch: usize) -> Result<[f32; 3]> {
        if self.uses_cpu_path() {
            let w = self.cpu_weights()?;
            let (mut scratch, threads) = self.cpu_scratch();
            return Ok(cpu::activation_maxima(
                &w,
                &mut scratch,
                &super::normalized(pixels),
                threads,
            ));
        }
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
        self.layers
            .named()
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

    /// Eval-mode penultimate features (fc1 before its ReLU, what the
    /// inversion's feature terms see) of raw 28x28 images, row-major
    /// `[n, hidden]`, in batches.
    pub fn features(&self, pixels: &[u8], batch: usize) -> Result<Vec<f32>> {
        if self.uses_cpu_path() {
            let w = self.cpu_weights()?;
            let (mut scratch, threads) = self.cpu_scratch();
            return Ok(cpu::forward(&w, &mut scratch, &super::normalized(pixels), threads).1);
        }
        let mut out = Vec::with_capacity(pixels.len() / IMG_PIXELS * self.config.hidden);
        for chunk in pixels.chunks(batch.max(1) * IMG_PIXELS) {
            let x = super::images_to_tensor(chunk, &self.device)?;
            let (_, f) = self.forward(&x, None).op("classifier forward")?;
            out.extend(
                f.to_dtype(DType::F32)
                    .and_then(|f| f.flatten_all()?.to_vec1::<f32>())
                    .op("read features")?,
            );
        }
        Ok(out)
    }

    /// Eval-mode logits of raw 28x28 images (row-major bytes), in batches.
    pub fn logits(&self, pixels: &[u8], batch: usize) -> Result<Vec<[f32; NUM_CLASSES]>> {
        if self.uses_cpu_path() {
            let w = self.cpu_weights()?;
            let (mut scratch, threads) = self.cpu_scratch();
            let z = cpu::logits(&w, &mut scratch, &super::normalized(pixels), threads);
            return Ok(z
                .chunks_exact(NUM_CLASSES)
                .map(|row| {
                    let mut a = [0f32; NUM_CLASSES];
                    a.copy_from_slice(row);
                    a
                })
                .collect());
        }
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
    fn frozen_cpu_op_matches_the_candle_graph_in_value_and_input_gradient() -> Result<()> {
        // loss = sum(logits * r) + sum(features * s): both outputs feed the gradient
        let dev = Device::Cpu;
        let cfg = ClassifierConfig::default();
        let mut m = Classifier::new(&cfg, &mut StdRng::seed_from_u64(4), &dev)?;
        let n = 21;
        let pixels: Vec<u8> = (0..n * IMG_PIXELS).map(|i| ((i * 31) % 256) as u8).collect();
        let r = Tensor::from_vec(
            (0..n * NUM_CLASSES).map(|i| (i % 7) as f32 - 3.0).collect(),
            (n, NUM_CLASSES),
            &dev,
        )
        .op("r")?;
        let s = Tensor::from_vec(
            (0..n * cfg.hidden).map(|i| (i % 5) as f32 * 0.1).collect(),
            (n, cfg.hidden),
            &dev,
        )
        .op("s")?;
        let mut run = |native: bool| -> Result<(Vec<f32>, Vec<f32>)> {
            m.set_native_ops(native);
            let x = Var::from_tensor(&crate::model::images_to_tensor(&pixels, &dev)?).op("x")?;
            let (z, f) = m.forward_frozen(x.as_tensor()).op("frozen")?;
            let loss = ((z * &r).op("zr")?.sum_all().op("sum")? + (f * &s).op("fs")?.sum_all().op("sum")?)
                .op("add")?;
            let g = loss.backward().op("backward")?;
            assert!(
                g.get(m.layers.fc1.weight.as_tensor()).is_none(),
                "native {native}: weights got a gradient"
            );
            let dx = g
                .get(x.as_tensor())
                .expect("input gradient")
                .flatten_all()
                .and_then(|t| t.to_vec1::<f32>());
            Ok((vec![loss.to_scalar::<f32>().op("loss")?], dx.op("dx")?))
        };
        let (want_loss, want) = run(true)?;
        let (got_loss, got) = run(false)?;
        assert!(
            (got_loss[0] - want_loss[0]).abs() < 1e-4 * want_loss[0].abs().max(1.0),
            "{got_loss:?} vs {want_loss:?}"
        );
        let scale = want.iter().fold(0f32, |a, v| a.max(v.abs()));
        let worst = got.iter().zip(&want).fold(0f32, |a, (x, y)| a.max((x - y).abs()));
        assert!(
            scale > 0.0 && worst < 2e-4 * scale,
            "input gradient differs by {worst} (scale {scale})"
        );
        // eval logits: the CPU path and the graph agree
        m.set_native_ops(true);
        let graph = m.logits(&pixels, 8)?;
        m.set_native_ops(false);
        for (a, b) in m.logits(&pixels, 8)?.iter().zip(&graph) {
            for k in 0..NUM_CLASSES {
                assert!((a[k] - b[k]).abs() < 1e-4, "{a:?} vs {b:?}");
            }
        }
        Ok(())
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
}
