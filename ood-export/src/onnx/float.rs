//! The f32 graph, and the QDQ int8 graph that shares its shape.

use super::{attr_int, tensor_f32, Graph, INPUT_NAME, OUTPUT_NAME};
use crate::weights::{Layer, Weights};
use ood_core::IMG_SIDE;

/// f32 or QDQ: float Conv/Gemm on float activations, the weights stored as
/// f32, or for QDQ as int8 read through `DequantizeLinear`.
pub(crate) fn float_or_qdq_graph(g: &mut Graph, weights: &Weights) {
    // conv blocks
    let mut x = INPUT_NAME.to_string();
    let mut side = IMG_SIDE;
    for (block, layer) in [(1, &weights.conv1), (2, &weights.conv2)] {
        let (wd, bn) = (&layer.weight.shape, &layer.bias.name);
        let wt = g.weight(&layer.weight.name, wd, &layer.weight.values);
        g.inits
            .push(tensor_f32(bn, &layer.bias.shape, &layer.bias.values));
        // conv -> max-pool 2x2
        let pool = format!("pool{block}");
        side = g.conv_pool("Conv", &x, &[&wt, bn], wd[2], side, &pool);
        let relu = format!("relu{block}");
        g.node("Relu", &[&pool], &relu, vec![]);
        x = if block == 1 {
            relu
        } else {
            let flat = "flatten".to_string();
            g.node("Flatten", &[&relu], &flat, vec![attr_int("axis", 1)]);
            flat
        };
    }
    // fc1 -> relu -> fc2
    let (wt, bn) = dense(g, &weights.fc1);
    g.node("Gemm", &[&x, &wt, &bn], "features", vec![attr_int("transB", 1)]);
    g.node("Relu", &["features"], "hidden", vec![]);
    let (wt, bn) = dense(g, &weights.fc2);
    g.node(
        "Gemm",
        &["hidden", &wt, &bn],
        OUTPUT_NAME,
        vec![attr_int("transB", 1)],
    );
}

/// A dense layer's weight (as the op reads it) and bias initializer names.
fn dense(g: &mut Graph, layer: &Layer) -> (String, String) {
    let wt = g.weight(&layer.weight.name, &layer.weight.shape, &layer.weight.values);
    let b = &layer.bias;
    g.inits.push(tensor_f32(&b.name, &b.shape, &b.values));
    (wt, b.name.clone())
}
