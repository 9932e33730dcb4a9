//! The mean of the classifier's weights at the end of the run's last epochs
//! (`train.average_epochs`; averaging of weights along the trajectory, as in
//! stochastic weight averaging): the shipped classifier is this mean rather
//! than the last epoch's weights alone, so it depends less on where the last
//! steps happened to stop. The classifier has no batch statistics, so the
//! mean needs no recomputation.
//!
//! The sums are kept in `f64` and saved in the checkpoint, so a resumed run
//! ends with the same mean.

use super::Classifier;
use crate::error::{Error, Result, TensorContext};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::Path;

/// Prefix of the sums' tensors in a checkpoint.
const PREFIX: &str = "average.";
/// Name of the count's tensor in a checkpoint.
const COUNT: &str = "average.count";

/// Running sums of every classifier parameter over the epochs added so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WeightMean {
    /// `(name, shape, sums)` in [`super::ClassifierConfig::param_shapes`] order.
    sums: Vec<(String, Vec<usize>, Vec<f64>)>,
    count: usize,
}

impl WeightMean {
    /// Epoch ends added so far.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Adds the classifier's current weights.
    pub fn add(&mut self, model: &Classifier) -> Result<()> {
        let weights = model.weights()?;
        if self.sums.is_empty() {
            self.sums = weights
                .iter()
                .map(|(n, s, v)| (n.clone(), s.clone(), vec![0.0; v.len()]))
                .collect();
        }
        if self.sums.len() != weights.len() {
            return Err(Error::Config(
                "the weight mean and the classifier have different parameters".into(),
            ));
        }
        for ((name, shape, sums), (n, s, v)) in self.sums.iter_mut().zip(&weights) {
            if name != n || shape != s {
                return Err(Error::Config(format!(
                    "the weight mean holds {name} {shape:?}, the classifier {n} {s:?}"
                )));
            }
            for (acc, &x) in sums.iter_mut().zip(v) {
                *acc += f64::from(x);
            }
        }
        self.count += 1;
        Ok(())
    }

    /// Writes the mean into the classifier's weights (nothing when empty).
    pub fn apply(&self, model: &mut Classifier) -> Result<()> {
        if self.count == 0 {
            return Ok(());
        }
        let n = self.count as f64;
        for ((name, shape, sums), (vname, var)) in self.sums.iter().zip(model.layers.named()) {
            if name != vname || var.dims() != shape.as_slice() {
                return Err(Error::Config(format!(
                    "the weight mean holds {name} {shape:?}, the classifier {vname} {:?}",
                    var.dims()
                )));
            }
            let mean: Vec<f32> = sums.iter().map(|&s| (s / n) as f32).collect();
            let t = Tensor::from_vec(mean, shape.as_slice(), var.device())
                .and_then(|t| t.to_dtype(var.dtype()))
                .op("weight mean")?;
            var.set(&t).op("write the weight mean")?;
        }
        Ok(())
    }

    /// The sums and the count as named tensors (for checkpoints; nothing
    /// when empty).
    pub fn tensors(&self) -> Result<HashMap<String, Tensor>> {
        let mut m = HashMap::new();
        if self.count == 0 {
            return Ok(m);
        }
        for (name, shape, sums) in &self.sums {
            let t = Tensor::from_vec(sums.clone(), shape.as_slice(), &Device::Cpu).op("weight sums")?;
            m.insert(format!("{PREFIX}{name}"), t);
        }
        let count = Tensor::from_vec(vec![self.count as u32], 1, &Device::Cpu).op("weight count")?;
        m.insert(COUNT.into(), count);
        Ok(m)
    }

    /// Restores what [`WeightMean::tensors`] wrote for `model`'s parameters
    /// (empty when the checkpoint holds no sums).
    pub fn from_tensors(m: &HashMap<String, Tensor>, model: &Classifier, origin: &Path) -> Result<Self> {
        let Some(count) = m.get(COUNT) else {
            return Ok(Self::default());
        };
        let count = count
            .flatten_all()
            .and_then(|t| t.to_vec1::<u32>())
            .op("read the weight count")?;
        let &[count] = count.as_slice() else {
            return Err(Error::format(origin, "average.count is not one number"));
        };
        let mut sums = Vec::new();
        for (name, var) in model.layers.named() {
            let key = format!("{PREFIX}{name}");
            let t = m
                .get(&key)
                .ok_or_else(|| Error::format(origin, format!("missing {key}")))?;
            if t.dims() != var.dims() || t.dtype() != DType::F64 {
                return Err(Error::format(
                    origin,
                    format!(
                        "{key} is {:?} {:?}, the classifier's {name} is {:?}",
                        t.dtype(),
                        t.dims(),
                        var.dims()
                    ),
                ));
            }
            let values = t
                .flatten_all()
                .and_then(|t| t.to_vec1::<f64>())
                .op("read weight sums")?;
            sums.push((name.to_string(), var.dims().to_vec(), values));
        }
        Ok(Self {
            sums,
            count: count as usize,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ClassifierConfig;
    use rand::SeedableRng;

    fn tiny() -> ClassifierConfig {
        ClassifierConfig {
            conv1: 2,
            conv2: 3,
            hidden: 4,
            dropout: 0.0,
        }
    }

    fn classifier(seed: u64) -> Classifier {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        Classifier::new(&tiny(), &mut rng, &Device::Cpu).expect("classifier")
    }

    #[test]
    fn the_mean_of_three_classifiers_is_their_elementwise_mean() {
        let models: Vec<Classifier> = (1..=3).map(classifier).collect();
        let mut mean = WeightMean::default();
        for m in &models {
            mean.add(m).expect("add");
        }
        assert_eq!(mean.count(), 3);
        let mut out = classifier(9);
        mean.apply(&mut out).expect("apply");
        let w: Vec<_> = models.iter().map(|m| m.weights().expect("weights")).collect();
        for (p, (name, _, got)) in out.weights().expect("weights").iter().enumerate() {
            for (i, &g) in got.iter().enumerate() {
                let want = (w.iter().map(|m| f64::from(m[p].2[i])).sum::<f64>() / 3.0) as f32;
                assert_eq!(g, want, "{name}[{i}]");
            }
        }
        // the three differ, so the mean is none of them
        assert_ne!(out.weights().expect("w")[0].2, w[0][0].2);
    }

    #[test]
    fn an_empty_mean_leaves_the_weights_alone_and_writes_nothing() {
        let mut m = classifier(1);
        let before = m.weights().expect("w");
        WeightMean::default().apply(&mut m).expect("apply");
        assert_eq!(m.weights().expect("w"), before);
        assert!(WeightMean::default().tensors().expect("t").is_empty());
        let back = WeightMean::from_tensors(&HashMap::new(), &m, Path::new("c")).expect("none");
        assert_eq!(back, WeightMean::default());
    }

    #[test]
    fn the_sums_survive_a_checkpoint_bit_for_bit() {
        let mut mean = WeightMean::default();
        mean.add(&classifier(1)).expect("add");
        mean.add(&classifier(2)).expect("add");
        let t = mean.tensors().expect("tensors");
        let back = WeightMean::from_tensors(&t, &classifier(3), Path::new("c")).expect("back");
        assert_eq!(back, mean);
        let mut broken = t.clone();
        broken.remove("average.fc1.weight");
        let e = WeightMean::from_tensors(&broken, &classifier(3), Path::new("c")).expect_err("missing");
        assert!(e.to_string().contains("average.fc1.weight"), "{e}");
    }

    #[test]
    fn a_classifier_of_another_shape_is_refused() {
        let mut mean = WeightMean::default();
        mean.add(&classifier(1)).expect("add");
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let other = ClassifierConfig { hidden: 5, ..tiny() };
        let mut big = Classifier::new(&other, &mut rng, &Device::Cpu).expect("other");
        assert!(mean.add(&big).is_err());
        assert!(mean.apply(&mut big).is_err());
    }
}
