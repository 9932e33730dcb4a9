//! The only module that touches tract: load an ONNX file, optimise it once,
//! run batches of normalised 28x28 images to logits.

use crate::error::{Error, Result};
use ood_core::{IMG_PIXELS, IMG_SIDE, NUM_CLASSES};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tract_onnx::prelude::*;

/// An optimised, runnable ONNX classifier with a free batch dimension.
#[derive(Debug, Clone)]
pub struct Network {
    plan: Arc<TypedRunnableModel>,
    path: PathBuf,
    input_shape: Vec<i64>,
    output_shape: Vec<i64>,
}

/// A dimension as the manifest writes it: a number, or -1 when symbolic.
fn dim_i64(d: &TDim) -> i64 {
    d.to_i64().unwrap_or(-1)
}

impl Network {
    /// Parses and optimises the ONNX `bytes` (read from `path`, named in errors).
    pub fn load(bytes: &[u8], path: &Path) -> Result<Self> {
        let err = |what: String| Error::Model {
            path: path.into(),
            what,
        };
        let model = tract_onnx::onnx()
            .model_for_read(&mut std::io::Cursor::new(bytes))
            .map_err(|e| {
                err(format!(
                    "not a loadable ONNX model ({e:#}); re-export it with `trainer export`"
                ))
            })?;
        let typed = model
            .into_typed()
            .map_err(|e| err(format!("cannot type the ONNX graph: {e:#}")))?;
        let shape = |f: TractResult<&TypedFact>| -> Result<Vec<i64>> {
            let f = f.map_err(|e| err(format!("{e:#}")))?;
            Ok(f.shape.iter().map(dim_i64).collect())
        };
        if typed.inputs.len() != 1 || typed.outputs.len() != 1 {
            return Err(err(format!(
                "expected one input and one output, found {} and {}",
                typed.inputs.len(),
                typed.outputs.len()
            )));
        }
        let input_shape = shape(typed.input_fact(0))?;
        let output_shape = shape(typed.output_fact(0))?;
        let plan = typed
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(|e| err(format!("cannot optimise the graph: {e:#}")))?;
        Ok(Self {
            plan,
            path: path.into(),
            input_shape,
            output_shape,
        })
    }

    /// Input shape as declared by the file (`-1` = free batch).
    pub fn input_shape(&self) -> &[i64] {
        &self.input_shape
    }

    /// Output shape as declared by the file (`-1` = free batch).
    pub fn output_shape(&self) -> &[i64] {
        &self.output_shape
    }

    /// Logits for `x`, a batch of normalised images (`n * 784` values).
    pub fn logits(&self, x: &[f32]) -> Result<Vec<[f32; NUM_CLASSES]>> {
        let err = |what: String| Error::Model {
            path: self.path.clone(),
            what,
        };
        if x.is_empty() || x.len() % IMG_PIXELS != 0 {
            return Err(err(format!(
                "input of {} values is not a whole number of 28x28 images",
                x.len()
            )));
        }
        let n = x.len() / IMG_PIXELS;
        let input = Tensor::from_shape(&[n, 1, IMG_SIDE, IMG_SIDE], x).map_err(|e| err(format!("{e:#}")))?;
        let out = self
            .plan
            .run(tvec!(input.into()))
            .map_err(|e| err(format!("inference failed: {e:#}")))?;
        let view = out[0]
            .to_plain_array_view::<f32>()
            .map_err(|e| err(format!("output is not f32: {e:#}")))?;
        let flat: Vec<f32> = view.iter().copied().collect();
        if flat.len() != n * NUM_CLASSES {
            return Err(err(format!(
                "output has {} values for {n} images, expected {}",
                flat.len(),
                n * NUM_CLASSES
            )));
        }
        Ok(flat
            .chunks(NUM_CLASSES)
            .map(|r| {
                let mut a = [0f32; NUM_CLASSES];
                a.copy_from_slice(r);
                a
            })
            .collect())
    }
}
