//! The classifier's parameters as plain data, layer by layer, as the
//! trainer hands them over (the safetensors names = the ONNX initializer
//! names). The export never sees candle.
//!
//! ```text
//! conv1.weight [c1, 1, k, k]       conv1.bias [c1]
//! conv2.weight [c2, c1, k, k]      conv2.bias [c2]
//! fc1.weight   [hidden, c2*s*s]    fc1.bias   [hidden]      s = side after both conv+pool stages
//! fc2.weight   [11, hidden]        fc2.bias   [11]
//! ```

use crate::error::{Error, Result};
use ood_core::{IMG_SIDE, NUM_CLASSES};

/// One parameter: its name, shape and row-major values.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// safetensors key and ONNX initializer name (`conv1.weight`...).
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub values: Vec<f32>,
}

/// A layer's weight and bias.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// `[out, in, k, k]` for a convolution, `[out, in]` for a dense layer.
    pub weight: Param,
    /// `[out]`.
    pub bias: Param,
}

impl Layer {
    /// Output channels (or units).
    pub fn outputs(&self) -> usize {
        self.weight.shape[0]
    }
}

/// The four layers of the classifier, by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    /// First 5x5 convolution.
    pub conv1: Layer,
    /// Second 5x5 convolution.
    pub conv2: Layer,
    /// Dense layer to the penultimate features.
    pub fc1: Layer,
    /// Dense layer to the 11 logits.
    pub fc2: Layer,
}

/// Side of a square map after a valid `k`x`k` convolution then 2x2 pooling.
fn conv_pool(side: usize, k: usize) -> usize {
    (side + 1).saturating_sub(k) / 2
}

impl Weights {
    /// Takes `(name, shape, values)` triples (any order) and checks that they
    /// form the classifier: every name present once, values matching shapes,
    /// shapes chaining from a 28x28 input to 11 logits.
    pub fn from_named(params: Vec<(String, Vec<usize>, Vec<f32>)>) -> Result<Self> {
        let mut params: Vec<Param> = params
            .into_iter()
            .map(|(name, shape, values)| Param { name, shape, values })
            .collect();
        let mut take = |name: &str| -> Result<Param> {
            let i = params
                .iter()
                .position(|p| p.name == name)
                .ok_or_else(|| Error::Weights {
                    name: name.into(),
                    what: "missing".into(),
                })?;
            let p = params.swap_remove(i);
            if p.values.len() != p.shape.iter().product::<usize>() {
                return Err(Error::Weights {
                    name: name.into(),
                    what: format!("{} values for shape {:?}", p.values.len(), p.shape),
                });
            }
            Ok(p)
        };
        let mut layer = |n: &str| -> Result<Layer> {
            Ok(Layer {
                weight: take(&format!("{n}.weight"))?,
                bias: take(&format!("{n}.bias"))?,
            })
        };
        let w = Weights {
            conv1: layer("conv1")?,
            conv2: layer("conv2")?,
            fc1: layer("fc1")?,
            fc2: layer("fc2")?,
        };
        if let Some(extra) = params.first() {
            return Err(Error::Weights {
                name: extra.name.clone(),
                what: "not a parameter of the classifier".into(),
            });
        }
        w.check_shapes()?;
        Ok(w)
    }

    fn check_shapes(&self) -> Result<()> {
        let (c1, c2) = (self.conv1.outputs(), self.conv2.outputs());
        let k = self.conv1.weight.shape.get(2).copied().unwrap_or(0);
        let side = conv_pool(conv_pool(IMG_SIDE, k), k);
        let hidden = self.fc1.outputs();
        let expect: [(&Param, Vec<usize>); 8] = [
            (&self.conv1.weight, vec![c1, 1, k, k]),
            (&self.conv1.bias, vec![c1]),
            (&self.conv2.weight, vec![c2, c1, k, k]),
            (&self.conv2.bias, vec![c2]),
            (&self.fc1.weight, vec![hidden, c2 * side * side]),
            (&self.fc1.bias, vec![hidden]),
            (&self.fc2.weight, vec![NUM_CLASSES, hidden]),
            (&self.fc2.bias, vec![NUM_CLASSES]),
        ];
        for (p, shape) in expect {
            if p.shape != shape || shape.contains(&0) {
                return Err(Error::Weights {
                    name: p.name.clone(),
                    what: format!("shape {:?}, expected {shape:?}", p.shape),
                });
            }
        }
        Ok(())
    }

    /// The layers in graph order, with their names.
    pub fn layers(&self) -> [(&'static str, &Layer); 4] {
        [
            ("conv1", &self.conv1),
            ("conv2", &self.conv2),
            ("fc1", &self.fc1),
            ("fc2", &self.fc2),
        ]
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The default architecture (16, 32, 128) filled with `v`.
    pub(crate) fn named(v: f32) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        [
            ("conv1.weight", vec![16, 1, 5, 5]),
            ("conv1.bias", vec![16]),
            ("conv2.weight", vec![32, 16, 5, 5]),
            ("conv2.bias", vec![32]),
            ("fc1.weight", vec![128, 512]),
            ("fc1.bias", vec![128]),
            ("fc2.weight", vec![11, 128]),
            ("fc2.bias", vec![11]),
        ]
        .into_iter()
        .map(|(n, s)| (n.to_string(), s.clone(), vec![v; s.iter().product()]))
        .collect()
    }

    #[test]
    fn named_weights_are_checked() {
        let w = Weights::from_named(named(0.1)).expect("default architecture");
        assert_eq!(w.fc1.outputs(), 128);
        let mut missing = named(0.1);
        missing.remove(3);
        let e = Weights::from_named(missing).expect_err("missing bias");
        assert!(e.to_string().contains("conv2.bias: missing"), "{e}");
        let mut wrong = named(0.1);
        wrong[4] = ("fc1.weight".into(), vec![128, 500], vec![0.0; 128 * 500]);
        let e = Weights::from_named(wrong).expect_err("wrong shape");
        assert!(e.to_string().contains("expected [128, 512]"), "{e}");
        let mut short = named(0.1);
        short[0].2.pop();
        assert!(Weights::from_named(short).is_err());
        let mut extra = named(0.1);
        extra.push(("fc3.weight".into(), vec![1], vec![0.0]));
        assert!(Weights::from_named(extra).is_err());
    }
}
