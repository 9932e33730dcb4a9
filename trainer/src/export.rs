//! ONNX export of the classifier, written from Rust with the protobuf types
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
//! No Softmax in the graph: the runtime computes probabilities and scores with
//! `ood_core`, so calibration and deployment share one score function and no
//! quantisation ever wraps a Softmax (tract 0.23.9 miscomputes
//! DequantizeLinear -> Softmax -> QuantizeLinear).
//!
//! [`Precision::Int8Qdq`] writes the int8 "QDQ" form: every Conv/Gemm weight is
//! stored as int8 with one symmetric scale per output channel and read through
//! `DequantizeLinear`; every Conv/Gemm input passes `QuantizeLinear` ->
//! `DequantizeLinear` with a uint8 scale calibrated on images (biases stay
//! f32). The file is about 4x smaller than f32.

use crate::error::{Error, Result};
use crate::model::classifier::NamedWeight;
use crate::model::ClassifierConfig;
use ood_core::{input, IMG_SIDE, NUM_CLASSES};
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
    /// int8 weights (per-channel) and uint8 activations in QDQ form.
    Int8Qdq,
    /// The same quantisation with integer kernels: `ConvInteger` /
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

fn dims_i64(dims: &[usize]) -> Vec<i64> {
    dims.iter().map(|&d| d as i64).collect()
}

fn tensor(
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

fn tensor_f32(name: &str, dims: &[usize], v: &[f32]) -> pb::TensorProto {
    let raw = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    tensor(name, dims, pb::tensor_proto::DataType::Float, raw)
}

fn attr_int(name: &str, v: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Int as i32,
        i: v,
        ..Default::default()
    }
}

fn attr_ints(name: &str, v: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Ints as i32,
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn value_info(name: &str, dims: &[Option<usize>]) -> pb::ValueInfoProto {
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
struct Graph {
    nodes: Vec<pb::NodeProto>,
    inits: Vec<pb::TensorProto>,
    precision: Precision,
}

impl Graph {
    fn node(&mut self, op: &str, inputs: &[&str], output: &str, attrs: Vec<pb::AttributeProto>) {
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
    fn weight(&mut self, name: &str, dims: &[usize], w: &[f32]) -> String {
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

    /// `x` as an op input: unchanged in f32, through QuantizeLinear ->
    /// DequantizeLinear with `q` in int8.
    fn activation(&mut self, x: &str, q: QParams) -> String {
        if self.precision == Precision::F32 {
            return x.into();
        }
        self.inits
            .push(tensor_f32(&format!("{x}_scale"), &[], &[q.scale]));
        self.inits.push(tensor(
            &format!("{x}_zero_point"),
            &[],
            pb::tensor_proto::DataType::Uint8,
            vec![q.zero_point],
        ));
        let (s, z) = (format!("{x}_scale"), format!("{x}_zero_point"));
        let xq = format!("{x}_quantized");
        let xd = format!("{x}_dequantized");
        self.node("QuantizeLinear", &[x, &s, &z], &xq, vec![]);
        self.node("DequantizeLinear", &[&xq, &s, &z], &xd, vec![]);
        xd
    }
}

/// f32 or QDQ: float Conv/Gemm, with QuantizeLinear -> DequantizeLinear
/// pairs on their inputs and dequantised int8 weights for QDQ.
fn float_or_qdq_graph(g: &mut Graph, weights: &[NamedWeight], quant: &ActivationQuant) {
    let w = |i: usize| (&weights[i].0, &weights[i].1, &weights[i].2);
    let kernel = vec![attr_ints("kernel_shape", &[2, 2]), attr_ints("strides", &[2, 2])];
    // conv blocks
    let mut x = g.activation(INPUT_NAME, quant.input);
    for (block, (wi, bi), q_next) in [(1, (0, 1), quant.pool1), (2, (2, 3), quant.pool2)] {
        let (wn, wd, wv) = w(wi);
        let wt = g.weight(wn, wd, wv);
        let (bn, bd, bv) = w(bi);
        g.inits.push(tensor_f32(bn, bd, bv));
        let conv = format!("conv{block}");
        g.node(
            "Conv",
            &[&x, &wt, bn],
            &conv,
            vec![attr_ints("kernel_shape", &[wd[2] as i64, wd[3] as i64])],
        );
        let pool = format!("pool{block}");
        g.node("MaxPool", &[&conv], &pool, kernel.clone());
        let relu = format!("relu{block}");
        g.node("Relu", &[&pool], &relu, vec![]);
        x = if block == 1 {
            g.activation(&relu, q_next)
        } else {
            let flat = "flatten".to_string();
            g.node("Flatten", &[&relu], &flat, vec![attr_int("axis", 1)]);
            g.activation(&flat, q_next)
        };
    }
    // fc1 -> relu -> fc2
    let (wn, wd, wv) = w(4);
    let wt = g.weight(wn, wd, wv);
    let (bn, bd, bv) = w(5);
    g.inits.push(tensor_f32(bn, bd, bv));
    g.node("Gemm", &[&x, &wt, bn], "features", vec![attr_int("transB", 1)]);
    g.node("Relu", &["features"], "hidden", vec![]);
    let h = g.activation("hidden", quant.hidden);
    let (wn, wd, wv) = w(6);
    let wt = g.weight(wn, wd, wv);
    let (bn, bd, bv) = w(7);
    g.inits.push(tensor_f32(bn, bd, bv));
    g.node("Gemm", &[&h, &wt, bn], OUTPUT_NAME, vec![attr_int("transB", 1)]);
}

/// Integer kernels: each layer takes a uint8 activation and int8 weights
/// (one scale per output channel; stored as uint8 + 128 for `ConvInteger`,
/// which is how onnxruntime implements it), accumulates in int32, and
/// is scaled back to f32 with `s_x * s_w[o]` before its bias, pooling and ReLU.
fn integer_graph(g: &mut Graph, weights: &[NamedWeight], quant: &ActivationQuant) {
    let kernel = vec![attr_ints("kernel_shape", &[2, 2]), attr_ints("strides", &[2, 2])];
    let quantize = |g: &mut Graph, x: &str, q: QParams| -> String {
        g.inits.push(tensor_f32(&format!("{x}_scale"), &[], &[q.scale]));
        g.inits.push(tensor(
            &format!("{x}_zero_point"),
            &[],
            pb::tensor_proto::DataType::Uint8,
            vec![q.zero_point],
        ));
        let xq = format!("{x}_quantized");
        g.node(
            "QuantizeLinear",
            &[x, &format!("{x}_scale"), &format!("{x}_zero_point")],
            &xq,
            vec![],
        );
        xq
    };
    // one integer layer: op(xq, wq) -> int32 -> f32 * (s_x * s_w) + b
    let layer = |g: &mut Graph, op: &str, x: &str, q: QParams, wi: usize, out: &str, bshape: &[usize]| {
        let (wn, wd, wv) = (&weights[wi].0, &weights[wi].1, &weights[wi].2);
        let (bn, bv) = (&weights[wi + 1].0, &weights[wi + 1].2);
        let (wq, scales) = quantize_per_channel(wv, wd[0]);
        let (qname, qdims, raw): (String, Vec<usize>, Vec<u8>) = if op == "MatMulInteger" {
            // MatMulInteger wants B as [in, out]
            let (o, i) = (wd[0], wd[1]);
            let mut t = vec![0u8; o * i];
            for r in 0..o {
                for c in 0..i {
                    t[c * o + r] = wq[r * i + c] as u8;
                }
            }
            (format!("{wn}_quantized_t"), vec![i, o], t)
        } else {
            // ConvInteger as onnxruntime implements it takes uint8 weights:
            // shift by 128 with zero point 128 (the same integers)
            let shifted = wq.iter().map(|&v| (i16::from(v) + 128) as u8).collect();
            (format!("{wn}_quantized"), wd.clone(), shifted)
        };
        let (wtype, wzp) = if op == "MatMulInteger" {
            (pb::tensor_proto::DataType::Int8, 0u8)
        } else {
            (pb::tensor_proto::DataType::Uint8, 128u8)
        };
        g.inits.push(tensor(&qname, &qdims, wtype, raw));
        g.inits
            .push(tensor(&format!("{wn}_zero_point"), &[], wtype, vec![wzp]));
        let mut attrs = Vec::new();
        if op == "ConvInteger" {
            attrs.push(attr_ints("kernel_shape", &[wd[2] as i64, wd[3] as i64]));
        }
        let acc = format!("{out}_int32");
        g.node(
            op,
            &[
                x,
                &qname,
                &format!("{}_zero_point", x.trim_end_matches("_quantized")),
                &format!("{wn}_zero_point"),
            ],
            &acc,
            attrs,
        );
        let f = format!("{out}_float");
        g.node(
            "Cast",
            &[&acc],
            &f,
            vec![attr_int("to", pb::tensor_proto::DataType::Float as i64)],
        );
        let combined: Vec<f32> = scales.iter().map(|s| s * q.scale).collect();
        g.inits
            .push(tensor_f32(&format!("{out}_rescale"), bshape, &combined));
        let scaled = format!("{out}_scaled");
        g.node("Mul", &[&f, &format!("{out}_rescale")], &scaled, vec![]);
        g.inits.push(tensor_f32(&format!("{bn}_broadcast"), bshape, bv));
        g.node("Add", &[&scaled, &format!("{bn}_broadcast")], out, vec![]);
    };
    let mut x = quantize(g, INPUT_NAME, quant.input);
    let mut q = quant.input;
    for (block, wi, q_next) in [(1, 0, quant.pool1), (2, 2, quant.pool2)] {
        let c = weights[wi].1[0];
        let conv = format!("conv{block}");
        layer(g, "ConvInteger", &x, q, wi, &conv, &[1, c, 1, 1]);
        let pool = format!("pool{block}");
        g.node("MaxPool", &[&conv], &pool, kernel.clone());
        let relu = format!("relu{block}");
        g.node("Relu", &[&pool], &relu, vec![]);
        let next = if block == 1 {
            relu
        } else {
            g.node("Flatten", &[&relu], "flatten", vec![attr_int("axis", 1)]);
            "flatten".to_string()
        };
        x = quantize(g, &next, q_next);
        q = q_next;
    }
    let hidden = weights[4].1[0];
    layer(g, "MatMulInteger", &x, q, 4, "features", &[hidden]);
    g.node("Relu", &["features"], "hidden", vec![]);
    let h = quantize(g, "hidden", quant.hidden);
    layer(
        g,
        "MatMulInteger",
        &h,
        quant.hidden,
        6,
        OUTPUT_NAME,
        &[NUM_CLASSES],
    );
}

/// QLinear: uint8 activations all the way (`QLinearConv`, `MaxPool` on
/// uint8), the fully connected layers as 1x1 `QLinearConv`s on `[N, C, 1, 1]`,
/// int32 biases `round(b / (s_x * s_w))`; the ReLUs are the uint8 saturation
/// at zero point 0; the logits are dequantised at the end.
fn qlinear_graph(g: &mut Graph, weights: &[NamedWeight], quant: &ActivationQuant) {
    let kernel = vec![attr_ints("kernel_shape", &[2, 2]), attr_ints("strides", &[2, 2])];
    let logits_q = quant.logits.unwrap_or(QParams {
        scale: 1.0,
        zero_point: 128,
    });
    let qparam = |g: &mut Graph, name: &str, q: QParams| {
        g.inits
            .push(tensor_f32(&format!("{name}_scale"), &[], &[q.scale]));
        g.inits.push(tensor(
            &format!("{name}_zero_point"),
            &[],
            pb::tensor_proto::DataType::Uint8,
            vec![q.zero_point],
        ));
    };
    qparam(g, INPUT_NAME, quant.input);
    g.node(
        "QuantizeLinear",
        &[
            INPUT_NAME,
            &format!("{INPUT_NAME}_scale"),
            &format!("{INPUT_NAME}_zero_point"),
        ],
        "input_quantized",
        vec![],
    );
    // (weight index, input name, input q, output name, output q, 1x1 reshape of the weight)
    let mut x = "input_quantized".to_string();
    let mut xq_name = INPUT_NAME.to_string();
    let layers = [
        (0, quant.pool1, "conv1"),
        (2, quant.pool2, "conv2"),
        (4, quant.hidden, "fc1"),
        (6, logits_q, "fc2"),
    ];
    let mut q_in = quant.input;
    for (wi, q_out, name) in layers {
        let (wn, wd, wv) = (&weights[wi].0, &weights[wi].1, &weights[wi].2);
        let bv = &weights[wi + 1].2;
        let o = wd[0];
        let (wq, scales) = quantize_per_channel(wv, o);
        let dims4: Vec<usize> = if wd.len() == 4 {
            wd.clone()
        } else {
            vec![o, wd[1], 1, 1]
        };
        g.inits.push(tensor(
            &format!("{wn}_quantized"),
            &dims4,
            pb::tensor_proto::DataType::Int8,
            wq.iter().map(|&v| v as u8).collect(),
        ));
        g.inits.push(tensor_f32(&format!("{wn}_scale"), &[o], &scales));
        g.inits.push(tensor(
            &format!("{wn}_zero_point"),
            &[o],
            pb::tensor_proto::DataType::Int8,
            vec![0; o],
        ));
        let bias: Vec<u8> = bv
            .iter()
            .zip(&scales)
            .flat_map(|(b, sw)| ((b / (q_in.scale * sw)).round() as i32).to_le_bytes())
            .collect();
        g.inits.push(tensor(
            &format!("{name}_bias_int32"),
            &[o],
            pb::tensor_proto::DataType::Int32,
            bias,
        ));
        qparam(g, name, q_out);
        if name == "fc1" {
            // [N, c2, 4, 4] -> [N, c2*16, 1, 1] (NCHW order, as fc1's weights)
            let flat_len = wd[1] as i64;
            g.inits.push(pb::TensorProto {
                name: "fc_shape".into(),
                dims: vec![4],
                data_type: pb::tensor_proto::DataType::Int64 as i32,
                raw_data: [0i64, flat_len, 1, 1]
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
                ..Default::default()
            });
            g.node("Reshape", &[&x, "fc_shape"], "flatten_quantized", vec![]);
            x = "flatten_quantized".into();
        }
        let out = format!("{name}_quantized");
        let attrs = vec![attr_ints("kernel_shape", &[dims4[2] as i64, dims4[3] as i64])];
        g.node(
            "QLinearConv",
            &[
                &x,
                &format!("{xq_name}_scale"),
                &format!("{xq_name}_zero_point"),
                &format!("{wn}_quantized"),
                &format!("{wn}_scale"),
                &format!("{wn}_zero_point"),
                &format!("{name}_scale"),
                &format!("{name}_zero_point"),
                &format!("{name}_bias_int32"),
            ],
            &out,
            attrs,
        );
        x = out;
        if let Some(block) = name.strip_prefix("conv") {
            let pooled = format!("pool{block}_quantized");
            g.node("MaxPool", &[&x], &pooled, kernel.clone());
            x = pooled;
        }
        xq_name = name.to_string();
        q_in = q_out;
    }
    g.node(
        "DequantizeLinear",
        &[&x, "fc2_scale", "fc2_zero_point"],
        "logits_4d",
        vec![],
    );
    g.node("Flatten", &["logits_4d"], OUTPUT_NAME, vec![attr_int("axis", 1)]);
}

/// Serialises the classifier as ONNX. `weights` as from
/// `Classifier::weights` (names and shapes of `config.param_shapes()`);
/// `quant` is required for the int8 forms.
pub fn onnx_model(
    config: &ClassifierConfig,
    weights: &[NamedWeight],
    precision: Precision,
    quant: Option<&ActivationQuant>,
    doc: &str,
) -> Result<Vec<u8>> {
    let expected = config.param_shapes();
    if weights.len() != expected.len()
        || weights
            .iter()
            .zip(&expected)
            .any(|((n, s, v), (en, es))| n != en || s != es || v.len() != es.iter().product::<usize>())
    {
        return Err(Error::Config(
            "export: the weights do not match the classifier config (names or shapes differ)".into(),
        ));
    }
    let quant = match (precision, quant) {
        (Precision::Int8QLinear, Some(q)) if q.logits.is_none() => {
            return Err(Error::Config(
                "export: the QLinear form needs the calibrated logit range".into(),
            ))
        }
        (Precision::Int8Qdq | Precision::Int8Integer | Precision::Int8QLinear, None) => {
            return Err(Error::Config(
                "export: the int8 model needs activation quantisation parameters".into(),
            ))
        }
        (_, q) => q
            .copied()
            .unwrap_or_else(|| ActivationQuant::from_maxima([1.0; 3])),
    };
    let mut g = Graph {
        nodes: Vec::new(),
        inits: Vec::new(),
        precision,
    };
    if precision == Precision::Int8Integer {
        integer_graph(&mut g, weights, &quant);
    } else if precision == Precision::Int8QLinear {
        qlinear_graph(&mut g, weights, &quant);
    } else {
        float_or_qdq_graph(&mut g, weights, &quant);
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

    #[test]
    fn the_model_refuses_mismatched_weights_and_missing_quantisation() {
        let cfg = ClassifierConfig::default();
        let weights: Vec<_> = cfg
            .param_shapes()
            .into_iter()
            .map(|(n, s)| (n.to_string(), s.clone(), vec![0.1; s.iter().product()]))
            .collect();
        assert!(onnx_model(&cfg, &weights, Precision::F32, None, "").is_ok());
        assert!(onnx_model(&cfg, &weights, Precision::Int8Qdq, None, "").is_err());
        assert!(onnx_model(&cfg, &weights[1..], Precision::F32, None, "").is_err());
        let q = ActivationQuant::from_maxima([1.0; 3]);
        assert!(onnx_model(&cfg, &weights, Precision::Int8QLinear, Some(&q), "").is_err());
        let q = q.with_logit_range(-5.0, 5.0);
        for p in [Precision::Int8Qdq, Precision::Int8Integer, Precision::Int8QLinear] {
            assert!(onnx_model(&cfg, &weights, p, Some(&q), "").is_ok(), "{p:?}");
        }
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
