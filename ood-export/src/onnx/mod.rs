//! ONNX writing for the classifier, written from Rust with the protobuf types
//! of `tract_onnx::pb` (prost): no Python, no protoc.
//!
//! The graph (opset 13), NCHW like the weights' layout:
//!
//! ```text
//! input [N, 1, 28, 28] (normalised, see ood_core::input)
//!  -> Conv 5x5 (conv1) -> MaxPool 2 -> Relu        [N, c1, 12, 12]
//!  -> Conv 5x5 (conv2) -> MaxPool 2 -> Relu        [N, c2, 4, 4]
//!  -> Flatten                                      [N, c2*16]
//!  -> Gemm (fc1, transB) -> Relu -> Gemm (fc2)     [N, 11] = logits
//! ```
//!
//! Each "Conv -> MaxPool 2x2" is written in the form tract runs fastest
//! (`Graph::conv_pool`): four stride-2 convolutions of the input shifted by
//! (0 or 1, 0 or 1) pixels, sharing one weight tensor, and the elementwise
//! `Max` of the four. It computes the same numbers (each pooled value is the
//! maximum of the same four convolution outputs) and the file is the same
//! size, but tract 0.23.9's `MaxPool` took 45-50 us of the 115-140 us of a
//! batch-1 inference on the 16x24x24 map, its `Max` takes 7 us (measured per
//! op, 2026-12-03).
//!
//! With a shift average (`calibration.shift_average = r`, the default run's
//! since v15) the graph above is wrapped: the input is padded by `r`
//! pixels of background, five windows of it (the image and its shifts by `r`
//! right, left, down and up) each go through the classifier, and the logits
//! are averaged over the five
//! (`Pad`, five `Slice` windows, the classifier's nodes once per window
//! sharing the weights, `Mean`): the same input and output contract, five
//! times the work.
//!
//! No Softmax in the graph: the runtime computes probabilities and scores with
//! `ood_core`, so calibration and deployment share one score function and no
//! quantisation ever wraps a Softmax (tract 0.23.9 miscomputes
//! DequantizeLinear -> Softmax -> QuantizeLinear).
//!
//! [`Precision::Int8Qdq`] writes the int8 "QDQ" form: every Conv/Gemm weight is
//! stored as int8 with one symmetric scale per output channel and read through
//! `DequantizeLinear`; activations and biases stay f32 (weight-only: the
//! file is about 4x smaller than f32, and its verdicts agree with f32's
//! better than with uint8 activations too, which the integer and QLinear
//! forms keep). Until 2026-12-04 every Conv/Gemm input of this form also
//! passed `QuantizeLinear` -> `DequantizeLinear` with a uint8 scale
//! calibrated on images: measured on the validation signals of one run
//! (validation digits, the near-OOD families as drawn and as the device sees
//! them, 1,000 images of each training garbage kind), its verdicts agreed
//! with f32's on 99.23% of them, the weight-only form's on 99.49%.

mod float;
mod integer;
mod qlinear;

use crate::error::{Error, Result};
use crate::quant::{quantize_per_channel, ActivationQuant, QParams};
use crate::weights::Weights;
use ood_core::{IMG_SIDE, NUM_CLASSES};
use prost::Message;
use tract_onnx::pb;

/// Input tensor name in every exported graph.
pub const INPUT_NAME: &str = "input";
/// Output (logits) tensor name in every exported graph.
pub const OUTPUT_NAME: &str = "logits";
/// The ONNX opset the graphs use (per-axis DequantizeLinear needs 13).
pub const OPSET: i64 = 13;
/// Symbolic batch dimension name.
pub const BATCH_DIM: &str = "N";

/// Which form of the model to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// Plain f32 weights and arithmetic.
    F32,
    /// int8 weights (per-channel) in QDQ form, f32 activations
    /// (weight-only).
    Int8Qdq,
    /// int8 weights and uint8 activations with integer kernels: `ConvInteger` /
    /// `MatMulInteger` on uint8 activations and int8 weights, the int32
    /// result scaled back to f32 (`Cast`, `Mul` by `s_x * s_w`, `Add` bias).
    Int8Integer,
    /// Quantised end to end with `QLinearConv` (the fully connected layers
    /// as 1x1 convolutions, int32 biases, ReLU by uint8 saturation), the
    /// logits dequantised at the end.
    Int8QLinear,
}

impl Precision {
    /// Manifest `precision` field.
    pub fn precision_name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Int8Qdq | Precision::Int8Integer | Precision::Int8QLinear => "int8",
        }
    }

    /// Manifest `format` field.
    pub fn format_name(self) -> &'static str {
        match self {
            Precision::F32 => "none",
            Precision::Int8Qdq => "qdq",
            Precision::Int8Integer => "integer",
            Precision::Int8QLinear => "qlinear",
        }
    }
}

fn dims_i64(dims: &[usize]) -> Vec<i64> {
    dims.iter().map(|&d| d as i64).collect()
}

pub(crate) fn tensor(
    name: &str,
    dims: &[usize],
    data_type: pb::tensor_proto::DataType,
    raw: Vec<u8>,
) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims_i64(dims),
        data_type: data_type as i32,
        raw_data: raw,
        ..Default::default()
    }
}

pub(crate) fn tensor_f32(name: &str, dims: &[usize], v: &[f32]) -> pb::TensorProto {
    let raw = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    tensor(name, dims, pb::tensor_proto::DataType::Float, raw)
}

pub(crate) fn attr_int(name: &str, v: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Int as i32,
        i: v,
        ..Default::default()
    }
}

pub(crate) fn attr_ints(name: &str, v: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Ints as i32,
        ints: v.to_vec(),
        ..Default::default()
    }
}

pub(crate) fn value_info(name: &str, dims: &[Option<usize>]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{dimension::Value, Dimension};
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Some(n) => Value::DimValue(*n as i64),
                None => Value::DimParam(BATCH_DIM.into()),
            }),
            ..Default::default()
        })
        .collect();
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: pb::tensor_proto::DataType::Float as i32,
                shape: Some(pb::TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Builds a graph node by node.
pub(crate) struct Graph {
    pub(crate) nodes: Vec<pb::NodeProto>,
    pub(crate) inits: Vec<pb::TensorProto>,
    pub(crate) precision: Precision,
}

impl Graph {
    pub(crate) fn node(&mut self, op: &str, inputs: &[&str], output: &str, attrs: Vec<pb::AttributeProto>) {
        self.nodes.push(pb::NodeProto {
            op_type: op.into(),
            name: format!("{op}_{}", self.nodes.len()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            attribute: attrs,
            ..Default::default()
        });
    }

    /// The weight tensor name to feed an op: the f32 initializer, or an int8
    /// initializer read through a per-channel DequantizeLinear.
    pub(crate) fn weight(&mut self, name: &str, dims: &[usize], w: &[f32]) -> String {
        match self.precision {
            Precision::F32 => {
                self.inits.push(tensor_f32(name, dims, w));
                name.into()
            }
            Precision::Int8Qdq | Precision::Int8Integer | Precision::Int8QLinear => {
                let (q, scales) = quantize_per_channel(w, dims[0]);
                let raw = q.iter().map(|&v| v as u8).collect();
                self.inits.push(tensor(
                    &format!("{name}_quantized"),
                    dims,
                    pb::tensor_proto::DataType::Int8,
                    raw,
                ));
                self.inits
                    .push(tensor_f32(&format!("{name}_scale"), &[dims[0]], &scales));
                self.inits.push(tensor(
                    &format!("{name}_zero_point"),
                    &[dims[0]],
                    pb::tensor_proto::DataType::Int8,
                    vec![0; dims[0]],
                ));
                let out = name.to_string();
                self.node(
                    "DequantizeLinear",
                    &[
                        &format!("{name}_quantized"),
                        &format!("{name}_scale"),
                        &format!("{name}_zero_point"),
                    ],
                    &out,
                    vec![attr_int("axis", 0)],
                );
                out
            }
        }
    }

    /// A convolution with a `kernel` x `kernel` kernel on the square map `x`
    /// of side `side`, then a 2x2 stride-2 max-pool, as four stride-2
    /// convolutions of `x` shifted by `(dy, dx)` in {0, 1}^2 and their
    /// elementwise `Max`, written to `out` (see the module docs). `inputs`
    /// are the convolution's inputs after `x` (weights, biases, quantisation
    /// parameters: shared by the four). Returns the pooled side.
    pub(crate) fn conv_pool(
        &mut self,
        op: &str,
        x: &str,
        inputs: &[&str],
        kernel: usize,
        side: usize,
        out: &str,
    ) -> usize {
        let pooled = (side + 1 - kernel) / 2;
        // the rows and columns one shifted convolution reads: to the end
        // when the convolution's output side is even (the unshifted input
        // then needs no Slice, and tract keeps the Max whole: with a Slice on
        // every branch it split the Max into 25 pieces and a Concat)
        let even = (side + 1 - kernel) % 2 == 0;
        let len = 2 * pooled + kernel - 2;
        let mut branches = Vec::new();
        for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            let shifted = if (dy, dx) == (0, 0) && even {
                x.to_string()
            } else {
                let name = format!("{out}_in{dy}{dx}");
                for (what, v) in [
                    ("starts", [dy, dx]),
                    ("ends", if even { [side, side] } else { [dy + len, dx + len] }),
                    ("axes", [2, 3]),
                ] {
                    self.inits.push(tensor(
                        &format!("{name}_{what}"),
                        &[2],
                        pb::tensor_proto::DataType::Int64,
                        v.iter().flat_map(|&d| (d as i64).to_le_bytes()).collect(),
                    ));
                }
                let (s, e, a) = (
                    format!("{name}_starts"),
                    format!("{name}_ends"),
                    format!("{name}_axes"),
                );
                self.node("Slice", &[x, &s, &e, &a], &name, vec![]);
                name
            };
            let branch = format!("{out}_{dy}{dx}");
            let mut all = vec![shifted.as_str()];
            all.extend_from_slice(inputs);
            self.node(
                op,
                &all,
                &branch,
                vec![
                    attr_ints("kernel_shape", &[kernel as i64, kernel as i64]),
                    attr_ints("strides", &[2, 2]),
                ],
            );
            branches.push(branch);
        }
        let refs: Vec<&str> = branches.iter().map(String::as_str).collect();
        self.node("Max", &refs, out, vec![]);
        pooled
    }

    /// The uint8 quantisation parameters of tensor `name` as initializers
    /// `<name>_scale` and `<name>_zero_point`.
    pub(crate) fn qparams(&mut self, name: &str, q: QParams) {
        self.inits
            .push(tensor_f32(&format!("{name}_scale"), &[], &[q.scale]));
        self.inits.push(tensor(
            &format!("{name}_zero_point"),
            &[],
            pb::tensor_proto::DataType::Uint8,
            vec![q.zero_point],
        ));
    }

    /// `x` through QuantizeLinear with `q` (parameters added): `<x>_quantized`.
    pub(crate) fn quantize(&mut self, x: &str, q: QParams) -> String {
        self.qparams(x, q);
        let (s, z) = (format!("{x}_scale"), format!("{x}_zero_point"));
        let xq = format!("{x}_quantized");
        self.node("QuantizeLinear", &[x, &s, &z], &xq, vec![]);
        xq
    }
}

/// Wraps the classifier graph in `g` (from [`INPUT_NAME`] to [`OUTPUT_NAME`])
/// in a shift average: the input padded by `r` pixels of background (the
/// normalised value of a 0 pixel), five 28x28 windows of it (the input and
/// its shifts by `r` right, left, down and up,
/// `ood_core::input::cross_shifts`), the classifier once per window (five
/// copies of its nodes sharing one set of weights) and the `Mean` of the
/// five logits. Five branches of one image each rather than one batch of
/// five: tract runs the f32 file's branches in 334 us at batch 1, the five
/// stacked along the batch (`Concat`, `Reshape`, `ReduceMean`) in 383 us,
/// 1.30x and 2.11x onnxruntime's time (`scripts/latency.sh`, 2026-12-06).
/// Every node is copied, those that read weights only (the QDQ form's
/// `DequantizeLinear`) too, which tract folds at load: the files are 8-17
/// KB larger than without the average.
fn shift_average(g: &mut Graph, r: usize) {
    let body = std::mem::take(&mut g.nodes);
    let weights: std::collections::HashSet<String> = g.inits.iter().map(|t| t.name.clone()).collect();
    let int64 = |v: &[i64]| v.iter().flat_map(|d| d.to_le_bytes()).collect::<Vec<u8>>();
    let ri = r as i64;
    g.inits.push(tensor(
        "shift_pads",
        &[8],
        pb::tensor_proto::DataType::Int64,
        int64(&[0, 0, ri, ri, 0, 0, ri, ri]),
    ));
    g.inits.push(tensor_f32(
        "shift_background",
        &[],
        &[ood_core::input::normalize_u8(0)],
    ));
    g.node(
        "Pad",
        &[INPUT_NAME, "shift_pads", "shift_background"],
        "shift_padded",
        vec![],
    );
    let side = IMG_SIDE as i64;
    let mut outputs = Vec::new();
    for (k, (dx, dy)) in ood_core::input::cross_shifts(r as i32).into_iter().enumerate() {
        // a copy moved by (dx, dy) reads the padded input from (r - dy, r - dx)
        let (y0, x0) = (ri - i64::from(dy), ri - i64::from(dx));
        let window = format!("shift_window{k}");
        for (what, v) in [
            ("starts", [y0, x0]),
            ("ends", [y0 + side, x0 + side]),
            ("axes", [2, 3]),
        ] {
            g.inits.push(tensor(
                &format!("{window}_{what}"),
                &[2],
                pb::tensor_proto::DataType::Int64,
                int64(&v),
            ));
        }
        let (st, en, ax) = (
            format!("{window}_starts"),
            format!("{window}_ends"),
            format!("{window}_axes"),
        );
        g.node("Slice", &["shift_padded", &st, &en, &ax], &window, vec![]);
        // the body again, its own tensors renamed for this window, the
        // weights (initializers) shared
        let rename = |name: &String| {
            if name == INPUT_NAME {
                window.clone()
            } else if weights.contains(name) {
                name.clone()
            } else {
                format!("{name}_s{k}")
            }
        };
        for node in &body {
            let mut copy = node.clone();
            copy.name = format!("{}_s{k}", node.name);
            copy.input = node.input.iter().map(rename).collect();
            copy.output = node.output.iter().map(rename).collect();
            g.nodes.push(copy);
        }
        outputs.push(format!("{OUTPUT_NAME}_s{k}"));
    }
    let refs: Vec<&str> = outputs.iter().map(String::as_str).collect();
    g.node("Mean", &refs, OUTPUT_NAME, vec![]);
}

/// Serialises the classifier as ONNX in the given form; `quant` is required
/// for the forms with quantised activations (integer and QLinear; its logit
/// range for QLinear). With `shift > 0` the graph answers with the mean of
/// the classifier's logits over the input and its four shifts by `shift`
/// pixels (five branches of the classifier and their `Mean`; see the module docs).
pub fn onnx_model(
    weights: &Weights,
    precision: Precision,
    quant: Option<&ActivationQuant>,
    shift: usize,
    doc: &str,
) -> Result<Vec<u8>> {
    let missing = |what: &'static str| Error::MissingQuantisation {
        form: precision.format_name(),
        missing: what,
    };
    let mut g = Graph {
        nodes: Vec::new(),
        inits: Vec::new(),
        precision,
    };
    match (precision, quant) {
        (Precision::F32 | Precision::Int8Qdq, _) => float::float_or_qdq_graph(&mut g, weights),
        (Precision::Int8Integer | Precision::Int8QLinear, None) => {
            return Err(missing("activation quantisation parameters"))
        }
        (Precision::Int8QLinear, Some(q)) if q.logits.is_none() => {
            return Err(missing("the calibrated logit range"))
        }
        (Precision::Int8Integer, Some(q)) => integer::integer_graph(&mut g, weights, q),
        (Precision::Int8QLinear, Some(q)) => qlinear::qlinear_graph(&mut g, weights, q),
    }
    if shift > 0 {
        shift_average(&mut g, shift);
    }
    let model = pb::ModelProto {
        ir_version: 7,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "ood trainer".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: doc.into(),
        graph: Some(pb::GraphProto {
            name: format!("mnist_n_plus_1_{}", precision.precision_name()),
            node: g.nodes,
            initializer: g.inits,
            input: vec![value_info(
                INPUT_NAME,
                &[None, Some(1), Some(IMG_SIDE), Some(IMG_SIDE)],
            )],
            output: vec![value_info(OUTPUT_NAME, &[None, Some(NUM_CLASSES)])],
            ..Default::default()
        }),
        ..Default::default()
    };
    Ok(model.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_refuses_missing_quantisation() {
        let w = Weights::from_named(crate::weights::tests::named(0.1)).expect("weights");
        assert!(onnx_model(&w, Precision::F32, None, 0, "").is_ok());
        assert!(onnx_model(&w, Precision::Int8Integer, None, 0, "").is_err());
        assert!(onnx_model(&w, Precision::Int8QLinear, None, 0, "").is_err());
        // weight-only: no activation is quantised, so none is calibrated
        let qdq = onnx_model(&w, Precision::Int8Qdq, None, 0, "").expect("weight-only QDQ");
        let m = pb::ModelProto::decode(qdq.as_slice()).expect("decode");
        let ops: Vec<&str> = m
            .graph
            .as_ref()
            .expect("graph")
            .node
            .iter()
            .map(|n| n.op_type.as_str())
            .collect();
        assert!(!ops.contains(&"QuantizeLinear"), "{ops:?}");
        assert_eq!(
            ops.iter().filter(|o| **o == "DequantizeLinear").count(),
            4,
            "one per weight: {ops:?}"
        );
        let q = ActivationQuant::from_maxima([1.0; 3]);
        let e = onnx_model(&w, Precision::Int8QLinear, Some(&q), 0, "").expect_err("no logit range");
        assert!(e.to_string().contains("logit range"), "{e}");
        let q = q.with_logit_range(-5.0, 5.0);
        for p in [Precision::Int8Qdq, Precision::Int8Integer, Precision::Int8QLinear] {
            assert!(onnx_model(&w, p, Some(&q), 0, "").is_ok(), "{p:?}");
        }
    }

    #[test]
    fn a_shift_average_answers_the_mean_of_the_shifted_copies_in_every_form() {
        use edge::runtime::Network;
        use ood_core::IMG_PIXELS;
        // weights that vary, so that a shifted image gets other logits
        let mut named = crate::weights::tests::named(0.0);
        for (k, (_, _, v)) in named.iter_mut().enumerate() {
            for (i, x) in v.iter_mut().enumerate() {
                *x = (((i * 7919 + k * 104_729) % 1000) as f32 / 1000.0 - 0.5) * 0.3;
            }
        }
        let w = Weights::from_named(named).expect("weights");
        let q = ActivationQuant::from_maxima([6.0; 3]).with_logit_range(-30.0, 30.0);
        // three images with ink off the centre, one touching an edge
        let mut images = vec![0u8; 3 * IMG_PIXELS];
        for (n, img) in images.chunks_mut(IMG_PIXELS).enumerate() {
            for (i, px) in img.iter_mut().enumerate() {
                let (y, x) = (i / IMG_SIDE, i % IMG_SIDE);
                if (y + 2 * n) % 5 < 2 && x > 3 * n && x < 20 + 3 * n {
                    *px = (40 + (i * 13 + n * 50) % 215) as u8;
                }
            }
        }
        let norm = |px: &[u8]| {
            px.iter()
                .map(|&v| ood_core::input::normalize_u8(v))
                .collect::<Vec<f32>>()
        };
        let moved = |src: &[u8], dx: i32, dy: i32| {
            let mut out = vec![0u8; IMG_PIXELS];
            for y in 0..IMG_SIDE as i32 {
                for x in 0..IMG_SIDE as i32 {
                    let (sy, sx) = (y - dy, x - dx);
                    if (0..IMG_SIDE as i32).contains(&sy) && (0..IMG_SIDE as i32).contains(&sx) {
                        out[(y * IMG_SIDE as i32 + x) as usize] = src[(sy * IMG_SIDE as i32 + sx) as usize];
                    }
                }
            }
            out
        };
        let path = std::path::Path::new("test.onnx");
        for p in [
            Precision::F32,
            Precision::Int8Qdq,
            Precision::Int8Integer,
            Precision::Int8QLinear,
        ] {
            let quant = (p != Precision::F32).then_some(&q);
            let plain = Network::load(&onnx_model(&w, p, quant, 0, "").expect("plain"), path).expect("load");
            let net = Network::load(&onnx_model(&w, p, quant, 2, "").expect("shifted"), path).expect("load");
            let got = net.logits(&norm(&images)).expect("shifted logits");
            assert_eq!(got.len(), 3, "{p:?}: one answer per image");
            let mut moved_any = false;
            for (img, z) in images.chunks(IMG_PIXELS).zip(&got) {
                let mut want = [0f32; NUM_CLASSES];
                let alone = plain.logits(&norm(img)).expect("plain logits")[0];
                for (dx, dy) in ood_core::input::cross_shifts(2) {
                    let zc = plain.logits(&norm(&moved(img, dx, dy))).expect("copy")[0];
                    for (a, v) in want.iter_mut().zip(zc) {
                        *a += v / 5.0;
                    }
                }
                let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
                for (a, b) in z.iter().zip(&want) {
                    assert!((a - b).abs() <= 1e-4 * scale, "{p:?}: {z:?} vs {want:?}");
                }
                moved_any |= alone.iter().zip(&want).any(|(a, b)| (a - b).abs() > 1e-3 * scale);
            }
            assert!(
                moved_any,
                "{p:?}: the shifts change the answer, so the test tells the two apart"
            );
        }
    }
}
