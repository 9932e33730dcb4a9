//! Adam with decoupled weight decay, written out so that its state (step count
//! and both moments) can be saved and restored exactly.
//!
//! f32 variables on the CPU keep their moments as plain values and are
//! updated in place (no tensor is read back or built per step); others
//! (CUDA) keep tensors and take the same arithmetic as tensor ops.

use candle_core::{backprop::GradStore, CpuStorage, DType, InplaceOp1, Layout, Result, Tensor, Var};

/// The bias corrections of one step.
struct Coefficients {
    c1: f64,
    c2: f64,
}

/// Adam hyper-parameters.
#[derive(Debug, Clone, Copy)]
pub struct AdamParams {
    /// Learning rate.
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator epsilon.
    pub eps: f64,
    /// Decoupled weight decay (AdamW); 0 disables it.
    pub weight_decay: f64,
}

impl Default for AdamParams {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// One variable's first and second moments.
#[derive(Debug, Clone)]
enum Moments {
    /// Plain values, for an f32 variable on the CPU (updated in place).
    Plain(Vec<f32>, Vec<f32>),
    /// Tensors on the variable's device.
    Tensors(Tensor, Tensor),
}

impl Moments {
    /// Zero moments for `var`.
    fn zeros(var: &Var) -> Result<Self> {
        Ok(if plain(var) {
            Self::Plain(vec![0.0; var.elem_count()], vec![0.0; var.elem_count()])
        } else {
            let z = var.zeros_like()?;
            Self::Tensors(z.clone(), z)
        })
    }

    /// Both moments as tensors on `var`'s device and in its shape.
    fn tensors(&self, var: &Var) -> Result<(Tensor, Tensor)> {
        Ok(match self {
            Self::Plain(m, v) => (
                Tensor::from_slice(m, var.shape(), var.device())?,
                Tensor::from_slice(v, var.shape(), var.device())?,
            ),
            Self::Tensors(m, v) => (m.clone(), v.clone()),
        })
    }

    /// Moments read from checkpoint tensors, kept the way `var` keeps them.
    fn from_tensors(var: &Var, m: Tensor, v: Tensor) -> Result<Self> {
        Ok(if plain(var) {
            let read = |t: &Tensor| t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>();
            Self::Plain(read(&m)?, read(&v)?)
        } else {
            Self::Tensors(m, v)
        })
    }
}

/// Whether `var` takes the in-place update of plain values.
fn plain(var: &Var) -> bool {
    var.device().is_cpu() && var.dtype() == DType::F32
}

/// `w = w * decay - update * lr` in place on an f32 CPU variable (the last
/// step of [`Adam::fused`]).
struct ApplyUpdate<'a> {
    update: &'a [f32],
    decay: Option<f32>,
    lr: f32,
}

impl InplaceOp1 for ApplyUpdate<'_> {
    fn name(&self) -> &'static str {
        "adam-apply-update"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> Result<()> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("adam: in-place update of a variable that is not f32")
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("adam: in-place update of a strided variable")
        };
        let w = &mut data[start..end];
        if w.len() != self.update.len() {
            candle_core::bail!("adam: {} updates for {} values", self.update.len(), w.len())
        }
        for (wi, &u) in w.iter_mut().zip(self.update) {
            if let Some(d) = self.decay {
                *wi *= d;
            }
            *wi -= u * self.lr;
        }
        Ok(())
    }
}

/// The optimiser and its state.
#[derive(Debug)]
pub struct Adam {
    vars: Vec<Var>,
    moments: Vec<Moments>,
    /// The last in-place update's values, reused from step to step.
    update: Vec<f32>,
    step: u64,
    /// Hyper-parameters; `lr` may be changed between steps (schedules).
    pub params: AdamParams,
}

impl Adam {
    /// A fresh optimiser over `vars`.
    pub fn new(vars: Vec<Var>, params: AdamParams) -> Result<Self> {
        let moments = vars.iter().map(Moments::zeros).collect::<Result<Vec<_>>>()?;
        Ok(Self {
            vars,
            moments,
            update: Vec::new(),
            step: 0,
            params,
        })
    }

    /// Number of steps taken.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// One update from the gradients of `loss`.
    pub fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        let grads = loss.backward()?;
        self.step_grads(&grads)
    }

    /// One update from precomputed gradients; variables without a gradient
    /// are left as they are. f32 variables on the CPU take the fused update
    /// of [`Adam::step_values`]; others (CUDA) the same arithmetic as tensor ops.
    pub fn step_grads(&mut self, grads: &GradStore) -> Result<()> {
        self.step += 1;
        let k = self.coefficients();
        for i in 0..self.vars.len() {
            let Some(g) = grads.get(self.vars[i].as_tensor()) else {
                continue;
            };
            // a gradient can still carry the backward graph (and through it
            // the step's activations); the moments would then chain every
            // step's graph to the next (candle's stock conv backward does this:
            // 11 MB a step kept, measured). Keep values only.
            let g = g.detach();
            if matches!(self.moments[i], Moments::Plain(..)) && g.dtype() == DType::F32 {
                let g = g.flatten_all()?.to_vec1::<f32>()?;
                self.fused(i, &g, &k)?;
            } else {
                self.tensor_update(i, &g, &k)?;
            }
        }
        Ok(())
    }

    /// One update from gradients given as plain values, one per variable in
    /// order (the CPU path, [`super::cpu`]).
    pub fn step_values(&mut self, grads: &[Vec<f32>]) -> Result<()> {
        if grads.len() != self.vars.len() {
            candle_core::bail!("{} gradients for {} variables", grads.len(), self.vars.len())
        }
        self.step += 1;
        let k = self.coefficients();
        for (i, g) in grads.iter().enumerate() {
            self.fused(i, g, &k)?;
        }
        Ok(())
    }

    /// This step's bias corrections.
    fn coefficients(&self) -> Coefficients {
        let t = self.step as i32;
        Coefficients {
            c1: 1.0 / (1.0 - self.params.beta1.powi(t)),
            c2: 1.0 / (1.0 - self.params.beta2.powi(t)),
        }
    }

    /// The update of variable `i` as tensor ops (any device).
    fn tensor_update(&mut self, i: usize, g: &Tensor, k: &Coefficients) -> Result<()> {
        let p = self.params;
        let var = &self.vars[i];
        let (m, v) = self.moments[i].tensors(var)?;
        let m = ((m * p.beta1)? + (g * (1.0 - p.beta1))?)?;
        let v = ((v * p.beta2)? + (g.sqr()? * (1.0 - p.beta2))?)?;
        let update = ((&m * k.c1)? / ((&v * k.c2)?.sqrt()? + p.eps)?)?;
        self.moments[i] = Moments::Tensors(m, v);
        let mut w = var.as_tensor().clone();
        if p.weight_decay > 0.0 {
            w = (&w * (1.0 - p.lr * p.weight_decay))?;
        }
        var.set(&(w - (update * p.lr)?)?)
    }

    /// The update of f32 CPU variable `i` in one pass over plain values
    /// (the arithmetic of [`Adam::tensor_update`]): the moments in place,
    /// then the weights in place.
    fn fused(&mut self, i: usize, g: &[f32], k: &Coefficients) -> Result<()> {
        let p = self.params;
        let (c1, c2) = (k.c1 as f32, k.c2 as f32);
        let (b1, b2, eps, lr) = (p.beta1 as f32, p.beta2 as f32, p.eps as f32, p.lr as f32);
        let (g1, g2) = ((1.0 - p.beta1) as f32, (1.0 - p.beta2) as f32);
        let decay = (p.weight_decay > 0.0).then_some((1.0 - p.lr * p.weight_decay) as f32);
        let var = &self.vars[i];
        let Moments::Plain(mv, vv) = &mut self.moments[i] else {
            candle_core::bail!("adam: variable {i} keeps its moments as tensors")
        };
        if g.len() != mv.len() {
            candle_core::bail!(
                "gradient of {} values for a variable of shape {:?}",
                g.len(),
                var.shape()
            )
        }
        self.update.resize(g.len(), 0.0);
        for (((mi, vi), u), &gi) in mv.iter_mut().zip(vv.iter_mut()).zip(&mut self.update).zip(g) {
            *mi = *mi * b1 + gi * g1;
            *vi = *vi * b2 + gi * gi * g2;
            *u = (*mi * c1) / ((*vi * c2).sqrt() + eps);
        }
        var.as_tensor().inplace_op1(&ApplyUpdate {
            update: &self.update,
            decay,
            lr,
        })
    }

    /// The state as named tensors (`m.i`, `v.i`, `step`), for checkpoints.
    pub fn state(&self) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::with_capacity(2 * self.moments.len() + 1);
        for (i, (moments, var)) in self.moments.iter().zip(&self.vars).enumerate() {
            let (m, v) = moments.tensors(var)?;
            out.push((format!("m.{i}"), m));
            out.push((format!("v.{i}"), v));
        }
        let dev = self
            .vars
            .first()
            .map(|v| v.device().clone())
            .unwrap_or(candle_core::Device::Cpu);
        out.push(("step".into(), Tensor::new(&[self.step as f64], &dev)?));
        Ok(out)
    }

    /// Restores a state written by [`Adam::state`].
    pub fn load_state(&mut self, get: impl Fn(&str) -> Option<Tensor>) -> Result<()> {
        for (i, var) in self.vars.iter().enumerate() {
            let (Some(m), Some(v)) = (get(&format!("m.{i}")), get(&format!("v.{i}"))) else {
                candle_core::bail!("optimiser state lacks moment {i}")
            };
            if m.dims() != var.dims() || v.dims() != var.dims() {
                candle_core::bail!(
                    "optimiser moment {i} has shape {:?}, expected {:?}",
                    m.dims(),
                    var.dims()
                )
            }
            self.moments[i] = Moments::from_tensors(var, m, v)?;
        }
        let Some(step) = get("step") else {
            candle_core::bail!("optimiser state lacks its step count")
        };
        self.step = step
            .flatten_all()?
            .to_vec1::<f64>()?
            .first()
            .copied()
            .unwrap_or(0.0) as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn adam_minimises_a_quadratic() -> Result<()> {
        let x = Var::new(&[3.0f32, -2.0], &Device::Cpu)?;
        let mut opt = Adam::new(
            vec![x.clone()],
            AdamParams {
                lr: 0.1,
                ..Default::default()
            },
        )?;
        for _ in 0..300 {
            let loss = x.as_tensor().sqr()?.sum_all()?;
            opt.backward_step(&loss)?;
        }
        let v = x.as_tensor().to_vec1::<f32>()?;
        assert!(v.iter().all(|a| a.abs() < 0.05), "not minimised: {v:?}");
        assert_eq!(opt.steps(), 300);
        Ok(())
    }

    #[test]
    fn fused_update_matches_the_tensor_update() -> Result<()> {
        let params = AdamParams {
            lr: 0.05,
            weight_decay: 0.01,
            ..Default::default()
        };
        let (a, b) = (
            Var::new(&[0.5f32, -1.5, 2.0], &Device::Cpu)?,
            Var::new(&[0.5f32, -1.5, 2.0], &Device::Cpu)?,
        );
        let (mut oa, mut ob) = (
            Adam::new(vec![a.clone()], params)?,
            Adam::new(vec![b.clone()], params)?,
        );
        for _ in 0..5 {
            // the tensor ops, as CUDA runs them
            let g = a.as_tensor().affine(2.0, 0.0)?;
            oa.step += 1;
            let k = oa.coefficients();
            oa.tensor_update(0, &g, &k)?;
            let g: Vec<f32> = b.as_tensor().to_vec1::<f32>()?.iter().map(|x| 2.0 * x).collect();
            ob.step_values(&[g])?;
        }
        for (x, y) in a
            .as_tensor()
            .to_vec1::<f32>()?
            .iter()
            .zip(b.as_tensor().to_vec1::<f32>()?)
        {
            assert!((x - y).abs() < 1e-6, "{x} vs {y}");
        }
        assert!(ob.step_values(&[vec![0.0; 2]]).is_err(), "wrong length refused");
        Ok(())
    }

    #[test]
    fn first_step_moves_each_weight_by_lr() -> Result<()> {
        // bias-corrected first step: m_hat/sqrt(v_hat) = sign(g)
        let x = Var::new(&[1.0f32, -1.0], &Device::Cpu)?;
        let mut opt = Adam::new(
            vec![x.clone()],
            AdamParams {
                lr: 0.01,
                ..Default::default()
            },
        )?;
        opt.backward_step(&x.as_tensor().sqr()?.sum_all()?)?;
        let v = x.as_tensor().to_vec1::<f32>()?;
        assert!((v[0] - 0.99).abs() < 1e-6 && (v[1] + 0.99).abs() < 1e-6, "{v:?}");
        Ok(())
    }
}
