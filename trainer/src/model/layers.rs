//! The classifier's parameters as named layers (as candle's `VarBuilder::pp`
//! prefixes them): never read by position.

use crate::error::{Error, Result};
use candle_core::Var;

/// Every parameter's name (safetensors key = ONNX initializer name), in
/// the fixed order of [`crate::model::ClassifierConfig::param_shapes`] and [`Layers::named`].
pub const PARAM_NAMES: [&str; 8] = [
    "conv1.weight",
    "conv1.bias",
    "conv2.weight",
    "conv2.bias",
    "fc1.weight",
    "fc1.bias",
    "fc2.weight",
    "fc2.bias",
];

/// A layer's weight and bias.
#[derive(Debug, Clone)]
pub struct Layer {
    /// `[out, in, k, k]` (convolution) or `[out, in]` (dense).
    pub weight: Var,
    /// `[out]`.
    pub bias: Var,
}

impl Layer {
    /// The layer `prefix` (`<prefix>.weight`, `<prefix>.bias`) among named
    /// parameters.
    pub(crate) fn find(params: &[(&'static str, Var)], prefix: &str) -> Result<Self> {
        let get = |name: String| -> Result<Var> {
            params
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
                .ok_or(Error::MissingParameter(name))
        };
        Ok(Self {
            weight: get(format!("{prefix}.weight"))?,
            bias: get(format!("{prefix}.bias"))?,
        })
    }

    /// `x @ weight^T + bias` for a dense layer.
    pub(crate) fn dense(&self, x: &candle_core::Tensor) -> candle_core::Result<candle_core::Tensor> {
        x.matmul(&self.weight.as_tensor().t()?)?
            .broadcast_add(self.bias.as_tensor())
    }
}

/// The classifier's four layers, by name; each layer's name is the prefix
/// of its parameters' names (`conv1` -> `conv1.weight`, `conv1.bias`).
#[derive(Debug, Clone)]
pub struct Layers {
    /// First 5x5 convolution.
    pub conv1: Layer,
    /// Second 5x5 convolution.
    pub conv2: Layer,
    /// Dense layer to the penultimate features.
    pub fc1: Layer,
    /// Dense layer to the logits.
    pub fc2: Layer,
}

impl Layers {
    /// From `(name, variable)` pairs named as in [`PARAM_NAMES`] (any order).
    pub(crate) fn from_named(params: Vec<(&'static str, Var)>) -> Result<Self> {
        Ok(Self {
            conv1: Layer::find(&params, "conv1")?,
            conv2: Layer::find(&params, "conv2")?,
            fc1: Layer::find(&params, "fc1")?,
            fc2: Layer::find(&params, "fc2")?,
        })
    }

    /// Every parameter with its name, in [`PARAM_NAMES`] order.
    pub fn named(&self) -> Vec<(&'static str, Var)> {
        let vars = [
            &self.conv1.weight,
            &self.conv1.bias,
            &self.conv2.weight,
            &self.conv2.bias,
            &self.fc1.weight,
            &self.fc1.bias,
            &self.fc2.weight,
            &self.fc2.bias,
        ];
        PARAM_NAMES.into_iter().zip(vars.map(Var::clone)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    #[test]
    fn layers_are_found_by_name_and_listed_in_order() -> Result<()> {
        let var = |v: f32| Var::from_tensor(&Tensor::new(&[v], &Device::Cpu)?);
        let mut params = Vec::new();
        for (i, n) in PARAM_NAMES.iter().enumerate().rev() {
            params.push((
                *n,
                var(i as f32).map_err(|e| Error::Tensor { op: "var", source: e })?,
            ));
        }
        let l = Layers::from_named(params.clone())?;
        let order: Vec<&str> = l.named().iter().map(|(n, _)| *n).collect();
        assert_eq!(order, PARAM_NAMES);
        let fc2_bias = l
            .fc2
            .bias
            .as_tensor()
            .to_vec1::<f32>()
            .map_err(|e| Error::Tensor {
                op: "read",
                source: e,
            })?;
        assert_eq!(fc2_bias, [7.0]);
        params.retain(|(n, _)| *n != "conv2.bias");
        let e = Layers::from_named(params).expect_err("missing");
        assert!(e.to_string().contains("conv2.bias"), "{e}");
        Ok(())
    }
}
