//! The only module that touches tract: load an ONNX file, optimise it,
//! run normalised 28x28 images to logits.
//!
//! Two plans per file, both optimised once at load:
//! - one for a single image (the input fact fixed to `[1, 1, 28, 28]`, so
//!   tract plans every shape at load time), with one tract state spawned
//!   once and reused on every call: the streaming path of `edge classify`,
//!   `stream`, `camera` and the simulator;
//! - one with the file's free batch dimension for batches (`edge eval`, the
//!   export's calibration), its state reused too.
//!
//! Measured on the shipped files (2026-12-03, x86, one thread, side by side
//! in one run): the single-image plan with a reused state took 112-140 us per
//! image where the free-batch plan with a new state per call (the way this
//! module ran before) took 173-208 us; with the graph form the export now
//! writes (no `MaxPool`, see `ood_export::onnx`) the f32 file takes 82-102 us
//! (`scripts/latency.sh`).

use crate::error::{Error, Result};
use ood_core::{IMG_PIXELS, IMG_SIDE, NUM_CLASSES};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use tract_onnx::prelude::*;

/// A plan and the state that runs it, spawned on first use and kept.
#[derive(Debug)]
struct Runner {
    plan: Arc<TypedRunnableModel>,
    state: Mutex<Option<TypedSimpleState>>,
}

impl Runner {
    fn new(plan: Arc<TypedRunnableModel>) -> Self {
        Self {
            plan,
            state: Mutex::new(None),
        }
    }

    fn run(&self, input: Tensor) -> TractResult<TVec<TValue>> {
        // a state left by a panicking caller is dropped, not reused
        let mut slot = self.state.lock().unwrap_or_else(|p: PoisonError<_>| {
            let mut g = p.into_inner();
            *g = None;
            g
        });
        let state = match slot.as_mut() {
            Some(s) => s,
            None => slot.insert(self.plan.spawn()?),
        };
        let out = state.run(tvec!(input.into()));
        if out.is_err() {
            // a run that failed half-way may leave values behind: start afresh
            *slot = None;
        }
        out
    }
}

impl Clone for Runner {
    /// The plan is shared; the clone gets its own state (no contention
    /// between threads that each hold a clone).
    fn clone(&self) -> Self {
        Self::new(self.plan.clone())
    }
}

/// An optimised, runnable ONNX classifier (see the module docs).
#[derive(Debug, Clone)]
pub struct Network {
    single: Runner,
    batch: Runner,
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
        // an op tract does not know (or that the vendored tract-onnx leaves
        // out, vendor/README.md) parses as "Unimplemented(<op>)": name it
        if let Some((node, op)) = model.nodes().iter().find_map(|n| {
            let name = n.op.name();
            let op = name
                .strip_prefix("Unimplemented(")?
                .strip_suffix(')')?
                .to_string();
            Some((n.name.clone(), op))
        }) {
            return Err(err(format!(
                "node {node:?} is an ONNX {op}, an op this runtime does not run (it runs the ops of this project's exports); re-export the model with `trainer export`"
            )));
        }
        let typed = model
            .clone()
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
        let expected = [1, IMG_SIDE as i64, IMG_SIDE as i64];
        if input_shape.len() != 4 || input_shape[1..] != expected {
            return Err(err(format!(
                "input shape {input_shape:?} is not [N, 1, {IMG_SIDE}, {IMG_SIDE}]: not a model of this project"
            )));
        }
        let one = model
            .with_input_fact(0, f32::fact([1, 1, IMG_SIDE, IMG_SIDE]).into())
            .and_then(|m| m.into_typed())
            .map_err(|e| err(format!("cannot type the graph for one image: {e:#}")))?;
        let optimise = |m: TypedModel| {
            m.into_optimized()
                .and_then(|m| m.into_runnable())
                .map_err(|e| err(format!("cannot optimise the graph: {e:#}")))
        };
        Ok(Self {
            single: Runner::new(optimise(one)?),
            batch: Runner::new(optimise(typed)?),
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
        let runner = if n == 1 { &self.single } else { &self.batch };
        let out = runner
            .run(input)
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

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use tract_onnx::pb;

    /// The shipped f32 model's bytes with its first Relu node turned into an
    /// `op` node; returns them and that node's name.
    fn shipped_with_op(op: &str) -> (Vec<u8>, String) {
        let path = crate::model::default_dir().join("classifier.onnx");
        let bytes = std::fs::read(&path).expect("the shipped model");
        let mut m = pb::ModelProto::decode(bytes.as_slice()).expect("an ONNX file");
        let g = m.graph.as_mut().expect("a graph");
        let node = g
            .node
            .iter_mut()
            .find(|n| n.op_type == "Relu")
            .expect("a Relu node");
        node.op_type = op.into();
        let name = node.name.clone();
        (m.encode_to_vec(), name)
    }

    #[test]
    fn an_op_family_left_out_of_the_vendored_tract_is_refused_by_name() {
        // vendor/README.md: tract-onnx without `all-ops` drops the FFT,
        // RNN, ML, ... families; a file that uses one fails to load and says
        // which op (never a panic, never a silent wrong answer)
        for op in ["DFT", "LSTM", "Resize", "Where"] {
            let (bytes, node) = shipped_with_op(op);
            let e = Network::load(&bytes, Path::new("m.onnx"))
                .err()
                .unwrap_or_else(|| panic!("{op} loaded"));
            assert_eq!(
                e.to_string(),
                format!("m.onnx: node {node:?} is an ONNX {op}, an op this runtime does not run (it runs the ops of this project's exports); re-export the model with `trainer export`"),
            );
        }
        // the same round trip with the node left a Relu loads (so the
        // refusals above are about the op, not about the rewritten file)
        let (bytes, _) = shipped_with_op("Relu");
        let net = Network::load(&bytes, Path::new("m.onnx")).expect("Relu loads");
        assert_eq!(net.input_shape()[1..], [1, IMG_SIDE as i64, IMG_SIDE as i64]);
    }

    #[test]
    fn a_graph_output_that_no_node_produces_is_an_error_not_a_panic() {
        // found by the fuzz smoke test (2026-12-05; the input is kept in
        // fuzz/regressions/onnx): tract-onnx indexed its map of tensors by the
        // output's name and panicked; the vendored copy now returns an error
        let path = crate::model::default_dir().join("classifier.onnx");
        let bytes = std::fs::read(&path).expect("the shipped model");
        let mut m = pb::ModelProto::decode(bytes.as_slice()).expect("an ONNX file");
        let g = m.graph.as_mut().expect("a graph");
        g.output[0].name = "nowhere".into();
        let e = Network::load(&m.encode_to_vec(), Path::new("m.onnx"))
            .map(|_| ())
            .expect_err("an output without a producer does not load");
        assert!(
            e.to_string()
                .contains("\"nowhere\" is produced by no node or input"),
            "{e}"
        );
    }
}
