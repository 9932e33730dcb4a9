//! The int8 graph in QLinear form (`QLinearConv` throughout).

use super::{attr_int, attr_ints, tensor, tensor_f32, Graph, INPUT_NAME, OUTPUT_NAME};
use crate::quant::{quantize_per_channel, ActivationQuant, QParams};
use crate::weights::Weights;
use tract_onnx::pb;

/// QLinear: uint8 activations all the way (`QLinearConv`, `MaxPool` on
/// uint8), the fully connected layers as 1x1 `QLinearConv`s on `[N, C, 1, 1]`,
/// int32 biases `round(b / (s_x * s_w))`; the ReLUs are the uint8 saturation
/// at zero point 0; the logits are dequantised at the end.
pub(crate) fn qlinear_graph(g: &mut Graph, weights: &Weights, quant: &ActivationQuant) {
    let kernel = vec![attr_ints("kernel_shape", &[2, 2]), attr_ints("strides", &[2, 2])];
    let logits_q = quant.logits.unwrap_or(QParams {
        scale: 1.0,
        zero_point: 128,
    });
    // (layer, output q, output name); the dense layers as 1x1 convolutions
    let mut x = g.quantize(INPUT_NAME, quant.input);
    let mut xq_name = INPUT_NAME.to_string();
    let layers = [
        (&weights.conv1, quant.pool1, "conv1"),
        (&weights.conv2, quant.pool2, "conv2"),
        (&weights.fc1, quant.hidden, "fc1"),
        (&weights.fc2, logits_q, "fc2"),
    ];
    let mut q_in = quant.input;
    for (l, q_out, name) in layers {
        let (wn, wd, wv) = (&l.weight.name, &l.weight.shape, &l.weight.values);
        let bv = &l.bias.values;
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
        g.qparams(name, q_out);
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
        let (xs, xz) = (format!("{xq_name}_scale"), format!("{xq_name}_zero_point"));
        let (ws, wz) = (format!("{wn}_scale"), format!("{wn}_zero_point"));
        let (ys, yz) = (format!("{name}_scale"), format!("{name}_zero_point"));
        let (wqn, bn) = (format!("{wn}_quantized"), format!("{name}_bias_int32"));
        let rest = [xs.as_str(), &xz, &wqn, &ws, &wz, &ys, &yz, &bn];
        let out = format!("{name}_quantized");
        let mut inputs = vec![x.as_str()];
        inputs.extend_from_slice(&rest);
        let attrs = vec![attr_ints("kernel_shape", &[dims4[2] as i64, dims4[3] as i64])];
        g.node("QLinearConv", &inputs, &out, attrs);
        x = out;
        if let Some(block) = name.strip_prefix("conv") {
            // a MaxPool, not Graph::conv_pool's Max: onnxruntime has no
            // uint8 Max (1.20: "Could not find an implementation for Max(13)")
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
