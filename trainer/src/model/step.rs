//! A classifier with its optimiser: one call = one training step of the
//! class-weighted cross-entropy.

use super::optim::{Adam, AdamParams};
use super::{cpu, Classifier};
use crate::error::{Error, Result, TensorContext};
use candle_core::Tensor;
use ood_core::IMG_PIXELS;
use ood_core::NUM_CLASSES;
use rand::rngs::StdRng;
use std::collections::HashMap;
use std::path::Path;

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
        super::params_to_tensors(&self.model.layers.named(), &self.opt, "cls")
    }

    /// Restores what [`ClassifierTrainer::tensors`] wrote.
    pub fn load_tensors(&mut self, m: &HashMap<String, Tensor>, origin: &Path) -> Result<()> {
        super::params_from_tensors(&self.model.layers.named(), &mut self.opt, "cls", m, origin)
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
        if self.model.uses_cpu_path() {
            return self.cpu_step(pixels, labels, sample_weights, rng);
        }
        let dev = self.model.device().clone();
        let x = super::images_to_tensor(pixels, &dev)?;
        let y: Vec<u32> = labels.iter().map(|&l| u32::from(l)).collect();
        let y = Tensor::from_vec(y, labels.len(), &dev).op("labels to tensor")?;
        let w = Tensor::from_slice(sample_weights, labels.len(), &dev).op("sample weights")?;
        let (logits, _) = self.model.forward(&x, Some(rng)).op("classifier forward")?;
        let loss = super::sample_weighted_cross_entropy(&logits, &y, &w).op("weighted cross-entropy")?;
        self.opt.backward_step(&loss).op("classifier backward")?;
        loss.to_scalar::<f32>().op("read loss")
    }

    /// [`ClassifierTrainer::step_weighted`] on the hand-written CPU path:
    /// the same loss, dropout mask (same draws from `rng`) and update.
    fn cpu_step(
        &mut self,
        pixels: &[u8],
        labels: &[u8],
        sample_weights: &[f32],
        rng: &mut StdRng,
    ) -> Result<f32> {
        if pixels.len() != labels.len() * IMG_PIXELS || sample_weights.len() != labels.len() {
            return Err(Error::Config(format!(
                "training batch: {} pixels, {} labels and {} weights do not agree",
                pixels.len(),
                labels.len(),
                sample_weights.len()
            )));
        }
        let x = super::normalized(pixels);
        let cfg = &self.model.config;
        let drop =
            (cfg.dropout > 0.0).then(|| super::dropout_mask(labels.len() * cfg.hidden, cfg.dropout, rng));
        let w = self.model.cpu_weights()?;
        let out = {
            let (mut scratch, threads) = self.model.cpu_scratch();
            cpu::train_step(
                &w,
                &mut scratch,
                &x,
                labels,
                sample_weights,
                drop.as_deref(),
                threads,
            )
        };
        self.opt.step_values(&out.grads).op("classifier update")?;
        Ok(out.loss)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::layers::PARAM_NAMES;
    use crate::model::{ClassifierConfig, Device};
    use rand::SeedableRng;

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

    /// Values of one parameter's gradient from the two paths: f32 sums in
    /// different orders over up to ~37k products.
    const PATH_TOL: f32 = 2e-4;

    /// Loss and gradients (PARAM_NAMES order) of the candle graph.
    fn graph_grads(
        m: &Classifier,
        pixels: &[u8],
        labels: &[u8],
        w: &[f32],
        rng: &mut StdRng,
    ) -> Result<(f32, Vec<Vec<f32>>)> {
        let dev = Device::Cpu;
        let x = crate::model::images_to_tensor(pixels, &dev)?;
        let y: Vec<u32> = labels.iter().map(|&l| u32::from(l)).collect();
        let y = Tensor::from_vec(y, labels.len(), &dev).op("y")?;
        let wt = Tensor::from_slice(w, labels.len(), &dev).op("w")?;
        let (z, _) = m.forward(&x, Some(rng)).op("forward")?;
        let loss = crate::model::sample_weighted_cross_entropy(&z, &y, &wt).op("ce")?;
        let g = loss.backward().op("backward")?;
        let grads = m
            .vars()
            .iter()
            .map(|v| {
                g.get(v.as_tensor())
                    .expect("gradient")
                    .flatten_all()
                    .and_then(|t| t.to_vec1::<f32>())
                    .op("grad")
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((loss.to_scalar::<f32>().op("loss")?, grads))
    }

    #[test]
    fn cpu_step_matches_the_candle_graph_and_ignores_the_thread_count() -> Result<()> {
        // 37 samples: two full shards and a short one; every class, varied weights
        let cfg = ClassifierConfig::default();
        let mut m = Classifier::new(&cfg, &mut StdRng::seed_from_u64(5), &Device::Cpu)?;
        m.set_native_ops(true);
        let n = 37;
        let pixels: Vec<u8> = (0..n * IMG_PIXELS).map(|i| ((i * 7919) % 256) as u8).collect();
        let labels: Vec<u8> = (0..n).map(|i| (i % NUM_CLASSES) as u8).collect();
        let w: Vec<f32> = (0..n).map(|i| 0.5 + (i % 3) as f32).collect();
        let (want_loss, want) = graph_grads(&m, &pixels, &labels, &w, &mut StdRng::seed_from_u64(9))?;
        // the same dropout draws from the same seed
        let mask = crate::model::dropout_mask(n * cfg.hidden, cfg.dropout, &mut StdRng::seed_from_u64(9));
        let x = crate::model::normalized(&pixels);
        let cw = m.cpu_weights()?;
        let mut runs = Vec::new();
        for threads in [1, 2, 5] {
            // buffers left longer by a larger batch first (as eval leaves them)
            let mut scratch = Vec::new();
            let big: Vec<f32> = x.iter().chain(&x).copied().collect();
            cpu::logits(&cw, &mut scratch, &big, 3);
            runs.push(cpu::train_step(
                &cw,
                &mut scratch,
                &x,
                &labels,
                &w,
                Some(&mask),
                threads,
            ));
        }
        let got = &runs[0];
        assert!(
            (got.loss - want_loss).abs() < 1e-5 * want_loss.abs().max(1.0),
            "loss {} vs {want_loss}",
            got.loss
        );
        for (i, (g, r)) in got.grads.iter().zip(&want).enumerate() {
            let scale = r.iter().fold(0f32, |a, v| a.max(v.abs())).max(1e-3);
            let worst = g.iter().zip(r).fold(0f32, |a, (x, y)| a.max((x - y).abs()));
            assert!(
                worst < PATH_TOL * scale,
                "{}: differs by {worst} (scale {scale})",
                PARAM_NAMES[i]
            );
        }
        for other in &runs[1..] {
            assert_eq!(other.loss.to_bits(), got.loss.to_bits());
            assert_eq!(other.grads, got.grads, "thread count changed the gradients");
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
