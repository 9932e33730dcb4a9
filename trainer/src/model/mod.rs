//! Everything that touches candle: layers, the classifier, losses, the optimiser
//! and one training step. The rest of the trainer sees only our own types
//! (`&[u8]` pixel batches, `[f32; 11]` logits, `f32` losses).

pub mod average;
pub mod classifier;
pub mod cpu;
pub mod generator;
pub mod inversion;
pub mod layers;
pub mod ops;
pub mod optim;
pub mod step;
pub mod strokes;
pub mod warp;

pub use candle_core::Device;
pub use classifier::{Classifier, ClassifierConfig};
pub use step::ClassifierTrainer;

use crate::data::Dataset;
use crate::error::{Error, Result, TensorContext};
use candle_core::{Tensor, Var};
use ood_core::{input, IMG_PIXELS, IMG_SIDE};
use rand::rngs::StdRng;
use rand::Rng;
use std::collections::HashMap;
use std::path::Path;

/// The compute device: the CPU, or CUDA device 0 when `cuda` is true and the
/// crate was built with the `cuda` feature.
pub fn select_device(cuda: bool) -> Result<Device> {
    if cuda {
        Device::new_cuda(0).op("opening CUDA device 0 (build with --features cuda)")
    } else {
        Ok(Device::Cpu)
    }
}

/// Tensor holding the run's progress (JSON bytes) inside a checkpoint.
const PROGRESS_TENSOR: &str = "progress.json";

/// Writes a training checkpoint (classifier + optimiser, generator +
/// optimiser, the generated garbage set, the running sums of the weight
/// mean when it has any, and `progress`, the run's progress
/// as JSON, so that weights and the epoch they belong to are one file,
/// replaced in one rename) as one safetensors file, atomically.
pub fn save_checkpoint(
    path: &Path,
    cls: &ClassifierTrainer,
    gen: Option<&generator::Generator>,
    garbage: &Dataset,
    mean: &average::WeightMean,
    progress: &[u8],
) -> Result<()> {
    let mut m = cls.tensors()?;
    if let Some(g) = gen {
        m.extend(g.tensors()?);
    }
    m.extend(mean.tensors()?);
    let n = garbage.len();
    let dev = Device::Cpu;
    m.insert(
        "garbage.images".into(),
        Tensor::from_vec(garbage.images.clone(), (n, IMG_PIXELS), &dev).op("garbage images")?,
    );
    m.insert(
        "garbage.labels".into(),
        Tensor::from_vec(garbage.labels.clone(), n, &dev).op("garbage labels")?,
    );
    m.insert(
        PROGRESS_TENSOR.into(),
        Tensor::from_vec(progress.to_vec(), progress.len(), &dev).op("progress")?,
    );
    save_safetensors(&m, path)
}

/// Writes named tensors as one safetensors file, atomically (temp file +
/// rename; a failed write leaves the old file and no part).
pub(crate) fn save_safetensors(tensors: &HashMap<String, Tensor>, path: &Path) -> Result<()> {
    ood_data::write_atomic_with(path, |tmp| {
        candle_core::safetensors::save(tensors, tmp)
            .map_err(|e| Error::io(tmp, std::io::Error::other(e.to_string())))
    })
}

/// What a checkpoint holds besides the weights it restores in place.
#[derive(Debug)]
pub struct Restored {
    /// The generated garbage set.
    pub garbage: Dataset,
    /// The progress saved with the weights (`None` in checkpoints of
    /// versions that kept it only in `progress.json`).
    pub progress: Option<Vec<u8>>,
    /// The running sums of the weight mean (empty when none were saved).
    pub mean: average::WeightMean,
}

/// Restores a checkpoint written by [`save_checkpoint`] into `cls` and
/// `gen`, and returns the rest of it.
pub fn load_checkpoint(
    path: &Path,
    cls: &mut ClassifierTrainer,
    gen: Option<&mut generator::Generator>,
) -> Result<Restored> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let dev = cls.model.device().clone();
    let m = candle_core::safetensors::load_buffer(&bytes, &dev)
        .map_err(|e| Error::format(path, format!("not a checkpoint: {e}")))?;
    cls.load_tensors(&m, path)?;
    if let Some(g) = gen {
        g.load_tensors(&m, path)?;
    }
    let get = |k: &str| {
        m.get(k)
            .ok_or_else(|| Error::format(path, format!("missing {k}")))
            .and_then(|t| t.flatten_all().and_then(|t| t.to_vec1::<u8>()).op("read garbage"))
    };
    let garbage = Dataset {
        name: "generated".into(),
        images: get("garbage.images")?,
        labels: get("garbage.labels")?,
    };
    let progress = match m.contains_key(PROGRESS_TENSOR) {
        true => Some(get(PROGRESS_TENSOR)?),
        false => None,
    };
    let mean = average::WeightMean::from_tensors(&m, &cls.model, path)?;
    Ok(Restored {
        garbage,
        progress,
        mean,
    })
}

/// Fresh parameters for `shapes`: He-uniform weights (bound `sqrt(6 / fan_in)`,
/// `fan_in` = product of all but the first dimension) and zero biases, drawn
/// from `rng` in order so that runs repeat.
pub(crate) fn init_params(
    shapes: Vec<(&'static str, Vec<usize>)>,
    rng: &mut StdRng,
    device: &Device,
) -> Result<Vec<(&'static str, Var)>> {
    let mut params = Vec::with_capacity(shapes.len());
    for (name, shape) in shapes {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = if name.ends_with("bias") {
            vec![0.0; n]
        } else {
            let fan_in: usize = shape[1..].iter().product();
            let bound = (6.0 / fan_in as f32).sqrt();
            (0..n).map(|_| rng.random_range(-bound..bound)).collect()
        };
        let t = Tensor::from_vec(data, shape, device).op("init parameter")?;
        params.push((name, Var::from_tensor(&t).op("init parameter")?));
    }
    Ok(params)
}

/// Inverted dropout with a mask drawn from `rng` (so runs repeat exactly);
/// identity when `rng` is `None` (eval mode) or `p` is 0.
pub(crate) fn dropout(x: &Tensor, p: f32, rng: Option<&mut StdRng>) -> candle_core::Result<Tensor> {
    match rng {
        Some(rng) if p > 0.0 => {
            x * Tensor::from_vec(dropout_mask(x.elem_count(), p, rng), x.shape(), x.device())?
        }
        _ => Ok(x.clone()),
    }
}

/// The multipliers of [`dropout`]: `1 / (1 - p)` where kept, 0 where dropped,
/// drawn from `rng` in order.
pub(crate) fn dropout_mask(n: usize, p: f32, rng: &mut StdRng) -> Vec<f32> {
    let keep = 1.0 - p;
    (0..n)
        .map(|_| {
            if rng.random::<f32>() < keep {
                1.0 / keep
            } else {
                0.0
            }
        })
        .collect()
}

/// Named parameters and their optimiser state as tensors (`<prefix>.adam.*`).
pub(crate) fn params_to_tensors(
    params: &[(&'static str, Var)],
    opt: &optim::Adam,
    prefix: &str,
) -> Result<HashMap<String, Tensor>> {
    let mut m: HashMap<String, Tensor> = params
        .iter()
        .map(|(n, v)| (n.to_string(), v.as_tensor().clone()))
        .collect();
    for (k, t) in opt.state().op("optimiser state")? {
        m.insert(format!("{prefix}.adam.{k}"), t);
    }
    Ok(m)
}

/// Restores what [`params_to_tensors`] wrote, checking every name and shape.
pub(crate) fn params_from_tensors(
    params: &[(&'static str, Var)],
    opt: &mut optim::Adam,
    prefix: &str,
    m: &HashMap<String, Tensor>,
    origin: &Path,
) -> Result<()> {
    for (name, var) in params {
        let t = m
            .get(*name)
            .ok_or_else(|| Error::format(origin, format!("missing tensor {name:?}")))?;
        if t.dims() != var.dims() {
            return Err(Error::format(
                origin,
                format!(
                    "tensor {name:?} has shape {:?}, expected {:?}",
                    t.dims(),
                    var.dims()
                ),
            ));
        }
        var.set(&t.to_dtype(candle_core::DType::F32).op("load parameter")?)
            .op("load parameter")?;
    }
    opt.load_state(|k| m.get(&format!("{prefix}.adam.{k}")).cloned())
        .map_err(|e| Error::format(origin, format!("{prefix} optimiser state: {e}")))
}

/// Whether the fast custom CPU ops can be used on this device.
pub(crate) fn uses_cpu_ops(dev: &Device) -> bool {
    matches!(dev, Device::Cpu)
}

/// Raw pixels -> the classifier's normalised input values, in order.
pub(crate) fn normalized(pixels: &[u8]) -> Vec<f32> {
    pixels.iter().map(|&p| input::normalize_u8(p)).collect()
}

/// `n` raw 28x28 images (row-major bytes) -> normalised `[n, 28, 28, 1]` f32.
pub fn images_to_tensor(pixels: &[u8], dev: &Device) -> Result<Tensor> {
    let n = pixels.len() / IMG_PIXELS;
    let v = normalized(pixels);
    Tensor::from_vec(v, (n, IMG_SIDE, IMG_SIDE, 1), dev).op("images to tensor") // [n, 28, 28, 1]
}

/// Cross-entropy with one weight per sample (`w` is `[b]`; the class-weighted
/// loss passes `w_i = w[y_i]`), averaged PyTorch-style:
/// `-sum_i w_i log softmax(z_i)[y_i] / sum_i w_i`.
pub fn sample_weighted_cross_entropy(
    logits: &Tensor,
    targets: &Tensor,
    w: &Tensor,
) -> candle_core::Result<Tensor> {
    let logp = candle_nn::ops::log_softmax(logits, 1)?; // [b, k]
    let picked = logp.gather(&targets.unsqueeze(1)?, 1)?.squeeze(1)?; // [b]
    (picked * w)?.sum_all()?.neg()? / w.sum_all()?.to_scalar::<f32>()? as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;

    /// f32 log-softmax of small logits: a few ulps.
    const TOL: f32 = 1e-5;

    #[test]
    fn weighted_ce_by_hand() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        // two samples, two classes; logits 0 -> log p = ln 0.5 for both
        let z = Tensor::zeros((2, 2), DType::F32, &dev)?;
        let y = Tensor::new(&[0u32, 1], &dev)?;
        // class weights 1 and 3; the samples are of classes 0 and 1
        let w = Tensor::new(&[1.0f32, 3.0], &dev)?;
        let l = sample_weighted_cross_entropy(&z, &y, &w)?.to_scalar::<f32>()?;
        assert!((l - std::f32::consts::LN_2).abs() < TOL);
        // sample 0 certain and right, sample 1 at ln 2: (1*0 + 3*ln2)/4
        let z = Tensor::new(&[[20.0f32, -20.0], [0.0, 0.0]], &dev)?;
        let l = sample_weighted_cross_entropy(&z, &y, &w)?.to_scalar::<f32>()?;
        assert!((l - 0.75 * std::f32::consts::LN_2).abs() < TOL);
        Ok(())
    }
}
