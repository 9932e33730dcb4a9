//! The int8 graph with integer kernels (`ConvInteger`, `MatMulInteger`).

use super::{attr_int, tensor, tensor_f32, Graph, INPUT_NAME, OUTPUT_NAME};
use crate::quant::{quantize_per_channel, ActivationQuant, QParams};
use crate::weights::{Layer, Weights};
use ood_core::{IMG_SIDE, NUM_CLASSES};
use tract_onnx::pb;

/// Integer kernels: each layer takes a uint8 activation and int8 weights
/// (one scale per output channel; stored as uint8 + 128 for `ConvInteger`,
/// which is how onnxruntime implements it), accumulates in int32, and
/// is scaled back to f32 with `s_x * s_w[o]` before its bias and ReLU (the
/// convolutions pool their int32 sums first, see [`Graph::conv_pool`]).
pub(crate) fn integer_graph(g: &mut Graph, weights: &Weights, quant: &ActivationQuant) {
    let mut x = g.quantize(INPUT_NAME, quant.input);
    let mut q = quant.input;
    let mut side = IMG_SIDE;
    for (block, l, q_next) in [(1, &weights.conv1, quant.pool1), (2, &weights.conv2, quant.pool2)] {
        let c = l.outputs();
        let (wq, wzp, scales) = int_weight(g, l, false);
        // ConvInteger -> max-pool 2x2 on the int32 sums (the rescale below
        // is increasing, so pooling before it gives the same numbers)
        let acc = format!("pool{block}_int32");
        let x_zp = zero_point_of(&x);
        side = g.conv_pool(
            "ConvInteger",
            &x,
            &[&wq, &x_zp, &wzp],
            l.weight.shape[2],
            side,
            &acc,
        );
        let pool = format!("pool{block}");
        rescale(g, &acc, q, &scales, l, &pool, &[1, c, 1, 1]);
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
    let dense = |g: &mut Graph, x: &str, q: QParams, l: &Layer, out: &str, bshape: &[usize]| {
        let (wq, wzp, scales) = int_weight(g, l, true);
        let acc = format!("{out}_int32");
        g.node("MatMulInteger", &[x, &wq, &zero_point_of(x), &wzp], &acc, vec![]);
        rescale(g, &acc, q, &scales, l, out, bshape);
    };
    let hidden = weights.fc1.outputs();
    dense(g, &x, q, &weights.fc1, "features", &[hidden]);
    g.node("Relu", &["features"], "hidden", vec![]);
    let h = g.quantize("hidden", quant.hidden);
    dense(g, &h, quant.hidden, &weights.fc2, OUTPUT_NAME, &[NUM_CLASSES]);
}

/// The zero point initializer of a quantised activation `<x>_quantized`.
fn zero_point_of(xq: &str) -> String {
    format!("{}_zero_point", xq.trim_end_matches("_quantized"))
}

/// A layer's int8 weights as the integer op reads them: the initializer
/// name, its zero point's name and the per-channel scales. `MatMulInteger`
/// wants B as `[in, out]` int8; `ConvInteger`, as onnxruntime implements it,
/// uint8: shifted by 128 with zero point 128 (the same integers).
fn int_weight(g: &mut Graph, l: &Layer, matmul: bool) -> (String, String, Vec<f32>) {
    let (wn, wd, wv) = (&l.weight.name, &l.weight.shape, &l.weight.values);
    let (wq, scales) = quantize_per_channel(wv, wd[0]);
    let (qname, qdims, raw): (String, Vec<usize>, Vec<u8>) = if matmul {
        let (o, i) = (wd[0], wd[1]);
        let mut t = vec![0u8; o * i];
        for r in 0..o {
            for c in 0..i {
                t[c * o + r] = wq[r * i + c] as u8;
            }
        }
        (format!("{wn}_quantized_t"), vec![i, o], t)
    } else {
        let shifted = wq.iter().map(|&v| (i16::from(v) + 128) as u8).collect();
        (format!("{wn}_quantized"), wd.clone(), shifted)
    };
    let (wtype, wzp) = if matmul {
        (pb::tensor_proto::DataType::Int8, 0u8)
    } else {
        (pb::tensor_proto::DataType::Uint8, 128u8)
    };
    g.inits.push(tensor(&qname, &qdims, wtype, raw));
    let zp = format!("{wn}_zero_point");
    g.inits.push(tensor(&zp, &[], wtype, vec![wzp]));
    (qname, zp, scales)
}

/// int32 sums `acc` back to f32: `Cast`, `* (s_x * s_w[o])`, `+ b` -> `out`.
fn rescale(g: &mut Graph, acc: &str, q: QParams, scales: &[f32], l: &Layer, out: &str, bshape: &[usize]) {
    let f = format!("{out}_float");
    g.node(
        "Cast",
        &[acc],
        &f,
        vec![attr_int("to", pb::tensor_proto::DataType::Float as i64)],
    );
    let combined: Vec<f32> = scales.iter().map(|s| s * q.scale).collect();
    g.inits
        .push(tensor_f32(&format!("{out}_rescale"), bshape, &combined));
    let scaled = format!("{out}_scaled");
    g.node("Mul", &[&f, &format!("{out}_rescale")], &scaled, vec![]);
    let bn = &l.bias.name;
    g.inits
        .push(tensor_f32(&format!("{bn}_broadcast"), bshape, &l.bias.values));
    g.node("Add", &[&scaled, &format!("{bn}_broadcast")], out, vec![]);
}
