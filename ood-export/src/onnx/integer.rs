//! The int8 graph with integer kernels (`ConvInteger`, `MatMulInteger`).

use super::{attr_int, attr_ints, tensor, tensor_f32, Graph, INPUT_NAME, OUTPUT_NAME};
use crate::quant::{quantize_per_channel, ActivationQuant, QParams};
use crate::weights::{Layer, Weights};
use ood_core::NUM_CLASSES;
use tract_onnx::pb;

/// Integer kernels: each layer takes a uint8 activation and int8 weights
/// (one scale per output channel; stored as uint8 + 128 for `ConvInteger`,
/// which is how onnxruntime implements it), accumulates in int32, and
/// is scaled back to f32 with `s_x * s_w[o]` before its bias, pooling and ReLU.
pub(crate) fn integer_graph(g: &mut Graph, weights: &Weights, quant: &ActivationQuant) {
    let kernel = vec![attr_ints("kernel_shape", &[2, 2]), attr_ints("strides", &[2, 2])];
    // one integer layer: op(xq, wq) -> int32 -> f32 * (s_x * s_w) + b
    let layer = |g: &mut Graph, op: &str, x: &str, q: QParams, l: &Layer, out: &str, bshape: &[usize]| {
        let (wn, wd, wv) = (&l.weight.name, &l.weight.shape, &l.weight.values);
        let (bn, bv) = (&l.bias.name, &l.bias.values);
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
    let mut x = g.quantize(INPUT_NAME, quant.input);
    let mut q = quant.input;
    for (block, l, q_next) in [(1, &weights.conv1, quant.pool1), (2, &weights.conv2, quant.pool2)] {
        let c = l.outputs();
        let conv = format!("conv{block}");
        layer(g, "ConvInteger", &x, q, l, &conv, &[1, c, 1, 1]);
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
        x = g.quantize(&next, q_next);
        q = q_next;
    }
    let hidden = weights.fc1.outputs();
    layer(g, "MatMulInteger", &x, q, &weights.fc1, "features", &[hidden]);
    g.node("Relu", &["features"], "hidden", vec![]);
    let h = g.quantize("hidden", quant.hidden);
    layer(
        g,
        "MatMulInteger",
        &h,
        quant.hidden,
        &weights.fc2,
        OUTPUT_NAME,
        &[NUM_CLASSES],
    );
}
