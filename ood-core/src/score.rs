//! Out-of-distribution scores computed from the classifier's logits.
//!
//! Every consumer (training logs, evaluation, calibration, the edge verdict)
//! calls these functions; nobody re-implements them.
//!
//! Raw scores keep their natural orientation ([`uncertainty`]: 0 = confident,
//! 1 = uniform; [`energy`]: low = in-distribution). [`Score::id_score`] maps each
//! one to a common orientation, **higher = more in-distribution**, which is what
//! thresholds and ROC curves use (in-distribution is the positive class).
//!
//! ```
//! use ood_core::{uncertainty, Score, NUM_CLASSES};
//!
//! // a one-hot distribution is certain, the uniform one is not
//! assert_eq!(uncertainty(&[0.0, 1.0, 0.0]), 0.0);
//! assert!((uncertainty(&[0.25; 4]) - 1.0).abs() < 1e-6);
//!
//! // from logits: a confident "7" scores high as in-distribution
//! let mut logits = [0.0f32; NUM_CLASSES];
//! logits[7] = 12.0;
//! let id = Score::Uncertainty.id_score(&logits);
//! assert!(id > 0.99, "1 - U(x) = {id}");
//! ```

use crate::labels::{GARBAGE, NUM_CLASSES, NUM_DIGITS};
use serde::{Deserialize, Serialize};

/// Numerically stable softmax of `logits` into `out` (same length).
///
/// # Panics
/// If the two slices differ in length (a programming error, not bad data).
pub fn softmax(logits: &[f32], out: &mut [f32]) {
    assert_eq!(logits.len(), out.len(), "softmax: length mismatch");
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for (o, &z) in out.iter_mut().zip(logits) {
        *o = libm::expf(z - max);
        sum += *o;
    }
    for o in out.iter_mut() {
        *o /= sum;
    }
}

/// The seed report's uncertainty `U = 1 - a / b` of a probability vector `p`.
///
/// With `K = p.len()` and `u_i = 1/K`: `a = sum_i (p_i - u_i)^2` and
/// `b = sum_i (onehot(argmax p)_i - u_i)^2 = (K - 1) / K`. `U` is 0 for a one-hot
/// `p` and 1 for the uniform distribution; for any probability vector
/// `0 <= a <= b`, and the result is clamped to `[0, 1]` against rounding.
/// An empty or single-class `p` carries no uncertainty information: returns 0.
pub fn uncertainty(p: &[f32]) -> f32 {
    let k = p.len();
    if k < 2 {
        return 0.0;
    }
    let u = 1.0 / k as f32;
    let a: f32 = p.iter().map(|&pi| (pi - u) * (pi - u)).sum();
    // onehot(argmax p) - u has one entry (1 - u) and K-1 entries (-u).
    let b = (1.0 - u) * (1.0 - u) + (k - 1) as f32 * u * u;
    (1.0 - a / b).clamp(0.0, 1.0)
}

/// Probability of the garbage class.
pub fn garbage_prob(p: &[f32; NUM_CLASSES]) -> f32 {
    p[GARBAGE]
}

/// Largest probability among the digit classes (softmax over all 11 outputs).
pub fn max_digit_prob(p: &[f32; NUM_CLASSES]) -> f32 {
    p[..NUM_DIGITS].iter().copied().fold(0.0, f32::max)
}

/// Energy of the digit logits: `-logsumexp(z_0..z_9)`; low = in-distribution.
pub fn energy(logits: &[f32; NUM_CLASSES]) -> f32 {
    let z = &logits[..NUM_DIGITS];
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let s: f32 = z.iter().map(|&v| libm::expf(v - max)).sum();
    -(max + libm::logf(s))
}

/// Index of the largest value (first one on ties); 0 for an empty slice.
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// The scores the system can threshold on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Score {
    /// The seed's `U(x)`; in-distribution score `1 - U`.
    Uncertainty,
    /// Probability of the garbage class; in-distribution score `1 - p_garbage`.
    GarbageProb,
    /// Maximum softmax probability over the digits; used as is.
    MaxDigitProb,
    /// Energy of the digit logits; in-distribution score `-energy`.
    Energy,
}

impl Score {
    /// Every score, in report order.
    pub const ALL: [Score; 4] = [
        Score::Uncertainty,
        Score::GarbageProb,
        Score::MaxDigitProb,
        Score::Energy,
    ];

    /// Stable machine name (used in JSON, manifests and CLI flags).
    pub fn name(self) -> &'static str {
        match self {
            Score::Uncertainty => "uncertainty",
            Score::GarbageProb => "garbage_prob",
            Score::MaxDigitProb => "max_digit_prob",
            Score::Energy => "energy",
        }
    }

    /// The score's raw value in its natural orientation.
    pub fn raw(self, logits: &[f32; NUM_CLASSES]) -> f32 {
        let mut p = [0.0f32; NUM_CLASSES];
        softmax(logits, &mut p);
        match self {
            Score::Uncertainty => uncertainty(&p),
            Score::GarbageProb => garbage_prob(&p),
            Score::MaxDigitProb => max_digit_prob(&p),
            Score::Energy => energy(logits),
        }
    }

    /// The score oriented so that **higher = more in-distribution**.
    pub fn id_score(self, logits: &[f32; NUM_CLASSES]) -> f32 {
        let raw = self.raw(logits);
        match self {
            Score::Uncertainty | Score::GarbageProb => 1.0 - raw,
            Score::MaxDigitProb => raw,
            Score::Energy => -raw,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// f32 sums of ~11 terms of size <= 1: rounding stays well under 1e-5.
    const SUM_TOL: f32 = 1e-5;

    fn probs_from(raw: &[f32]) -> std::vec::Vec<f32> {
        let s: f32 = raw.iter().sum();
        raw.iter().map(|v| v / s).collect()
    }

    #[test]
    fn one_hot_is_certain_and_uniform_is_maximally_uncertain() {
        for k in 2..=16 {
            let mut p = std::vec![0.0f32; k];
            p[k / 2] = 1.0;
            assert!(uncertainty(&p).abs() < SUM_TOL, "k={k}");
            let uni = std::vec![1.0 / k as f32; k];
            assert!((uncertainty(&uni) - 1.0).abs() < SUM_TOL, "k={k}");
        }
    }

    #[test]
    fn hand_computed_value() {
        // K = 2, p = (0.75, 0.25): a = 2 * 0.25^2 = 0.125, b = 0.5 -> U = 0.75.
        assert!((uncertainty(&[0.75, 0.25]) - 0.75).abs() < SUM_TOL);
    }

    #[test]
    fn energy_and_garbage_prob_by_hand() {
        let mut z = [0.0f32; NUM_CLASSES];
        z[GARBAGE] = 5.0;
        // ten equal digit logits of 0: energy = -ln(10).
        assert!((energy(&z) + libm::logf(10.0)).abs() < SUM_TOL);
        let mut p = [0.0f32; NUM_CLASSES];
        softmax(&z, &mut p);
        let expect = libm::expf(5.0) / (libm::expf(5.0) + 10.0);
        assert!((garbage_prob(&p) - expect).abs() < SUM_TOL);
        assert!((max_digit_prob(&p) - 1.0 / (libm::expf(5.0) + 10.0)).abs() < SUM_TOL);
        assert!(Score::GarbageProb.id_score(&z) < 0.1);
    }

    proptest! {
        #[test]
        fn uncertainty_in_unit_interval(raw in prop::collection::vec(0.0f32..10.0, 2..20)) {
            prop_assume!(raw.iter().sum::<f32>() > 1e-3);
            let u = uncertainty(&probs_from(&raw));
            prop_assert!((0.0..=1.0).contains(&u));
        }

        #[test]
        fn uncertainty_is_permutation_invariant(
            raw in prop::collection::vec(0.0f32..10.0, 2..20),
            seed in any::<u64>(),
        ) {
            prop_assume!(raw.iter().sum::<f32>() > 1e-3);
            let p = probs_from(&raw);
            let mut q = p.clone();
            // Fisher-Yates with a tiny LCG: any permutation is reachable.
            let mut s = seed;
            for i in (1..q.len()).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                q.swap(i, (s >> 33) as usize % (i + 1));
            }
            prop_assert!((uncertainty(&p) - uncertainty(&q)).abs() < SUM_TOL);
        }

        #[test]
        fn softmax_sums_to_one_and_scores_are_finite(
            z in prop::array::uniform11(-30.0f32..30.0)
        ) {
            let mut p = [0.0f32; NUM_CLASSES];
            softmax(&z, &mut p);
            prop_assert!((p.iter().sum::<f32>() - 1.0).abs() < SUM_TOL);
            for s in Score::ALL {
                prop_assert!(s.id_score(&z).is_finite());
            }
            let u = Score::Uncertainty.raw(&z);
            prop_assert!((0.0..=1.0).contains(&u));
        }
    }
}
