//! The two-tier decision: reject what lands in the garbage class, then reject
//! what the acceptance score puts beyond the calibrated threshold, else accept.
//!
//! The trainer calibrates the threshold with [`calibrate`] on held-out MNIST
//! validation digits, and the edge decides with [`Policy::decide`]: one score
//! function ([`Score::id_score`]) on both sides, so they cannot drift apart.
//!
//! ```
//! use ood_core::{calibrate, Policy, RejectReason, Score, Verdict, GARBAGE, NUM_CLASSES};
//!
//! let logits_for = |class: usize, margin: f32| {
//!     let mut z = [0.0f32; NUM_CLASSES];
//!     z[class] = margin;
//!     z
//! };
//! // calibrate on in-distribution inputs: keep 99% of them
//! let mut ids: Vec<f32> = (1..=100)
//!     .map(|i| Score::Uncertainty.id_score(&logits_for(3, i as f32 / 10.0)))
//!     .collect();
//! let threshold = calibrate(&mut ids, 0.99).expect("non-empty");
//! let policy = Policy { score: Score::Uncertainty, threshold };
//!
//! // a confident digit is accepted, the garbage class is rejected
//! assert!(matches!(policy.decide(&logits_for(3, 10.0)), Verdict::Accept { digit: 3, .. }));
//! assert!(matches!(
//!     policy.decide(&logits_for(GARBAGE, 10.0)),
//!     Verdict::Reject { reason: RejectReason::Garbage, .. }
//! ));
//! // all-equal logits: a digit wins the arg-max, but not confidently
//! assert!(matches!(
//!     policy.decide(&[0.0; NUM_CLASSES]),
//!     Verdict::Reject { reason: RejectReason::Uncertain, .. }
//! ));
//! ```

use crate::score::{argmax, softmax, uncertainty};
use crate::{Score, GARBAGE, NUM_CLASSES};
use serde::{Deserialize, Serialize};

/// Why an input was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The arg-max is the garbage class.
    Garbage,
    /// A digit wins, but the acceptance score is beyond the threshold.
    Uncertain,
}

impl RejectReason {
    /// Stable machine name.
    pub fn name(self) -> &'static str {
        match self {
            RejectReason::Garbage => "garbage",
            RejectReason::Uncertain => "uncertain",
        }
    }
}

/// The answer for one input. Rejecting is a result, not an error.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// A digit, confidently.
    Accept {
        /// The digit, `0..=9`.
        digit: u8,
        /// Its softmax probability.
        confidence: f32,
        /// `U(x)` of the input.
        uncertainty: f32,
    },
    /// Not a digit, or not confidently one.
    Reject {
        /// Which tier rejected it.
        reason: RejectReason,
        /// `U(x)` of the input.
        uncertainty: f32,
    },
}

impl Verdict {
    /// Whether the input was accepted as a digit.
    pub fn is_accept(&self) -> bool {
        matches!(self, Verdict::Accept { .. })
    }

    /// `U(x)` of the input.
    pub fn uncertainty(&self) -> f32 {
        match *self {
            Verdict::Accept { uncertainty, .. } | Verdict::Reject { uncertainty, .. } => uncertainty,
        }
    }
}

/// The acceptance rule: accept a digit when `score.id_score(logits) >= threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// The acceptance score (higher = more in-distribution after orientation).
    pub score: Score,
    /// Smallest in-distribution score that is accepted.
    pub threshold: f32,
}

impl Policy {
    /// The verdict for one row of logits. Non-finite scores are rejected as
    /// uncertain (a NaN never passes a threshold).
    pub fn decide(&self, logits: &[f32; NUM_CLASSES]) -> Verdict {
        let mut p = [0.0f32; NUM_CLASSES];
        softmax(logits, &mut p);
        let k = argmax(&p);
        let u = uncertainty(&p);
        if k == GARBAGE {
            return Verdict::Reject {
                reason: RejectReason::Garbage,
                uncertainty: u,
            };
        }
        let s = self.score.id_score(logits);
        // NaN (no ordering) rejects
        if s.partial_cmp(&self.threshold)
            .is_none_or(|o| o == core::cmp::Ordering::Less)
        {
            return Verdict::Reject {
                reason: RejectReason::Uncertain,
                uncertainty: u,
            };
        }
        Verdict::Accept {
            digit: k as u8,
            confidence: p[k],
            uncertainty: u,
        }
    }
}

/// The threshold that keeps (at least) a share `keep` of in-distribution
/// inputs: the `(1 - keep)` quantile of their `id_scores` (sorted in place,
/// NaNs first so they count as rejected). `None` for an empty slice or `keep`
/// outside `(0, 1]`.
pub fn calibrate(id_scores: &mut [f32], keep: f32) -> Option<f32> {
    if id_scores.is_empty() || !(keep > 0.0 && keep <= 1.0) {
        return None;
    }
    id_scores.sort_unstable_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => core::cmp::Ordering::Equal,
        (true, false) => core::cmp::Ordering::Less,
        (false, true) => core::cmp::Ordering::Greater,
        _ => a.total_cmp(b),
    });
    let n = id_scores.len();
    let drop = libm::floorf((1.0 - keep) * n as f32) as usize;
    Some(id_scores[drop.min(n - 1)])
}

/// How far the best digit logit is above the garbage logit: the input goes to
/// the garbage class once the garbage logit is raised by more than this.
pub fn garbage_margin(logits: &[f32; NUM_CLASSES]) -> f32 {
    let best_digit = logits[..GARBAGE]
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    best_digit - logits[GARBAGE]
}

/// The offset to add to the garbage logit so that a share of at most
/// `budget` of in-distribution inputs goes to the garbage class: `margins`
/// are their [`garbage_margin`]s (sorted in place). Never negative (inputs the
/// garbage class already takes are counted against the budget, and the
/// garbage logit is never lowered); the offset lies midway between the last
/// margin allowed to flip and the first that must not. `None` for an empty
/// slice, a NaN margin or `budget` outside `[0, 1)`.
pub fn garbage_offset(margins: &mut [f32], budget: f32) -> Option<f32> {
    if margins.is_empty() || !(0.0..1.0).contains(&budget) || margins.iter().any(|m| m.is_nan()) {
        return None;
    }
    margins.sort_unstable_by(f32::total_cmp);
    let allowed = libm::floorf(budget * margins.len() as f32) as usize; // < len
                                                                        // with offset b, input i flips when margins[i] < b: exactly `allowed`
                                                                        // flip for b in (margins[allowed - 1], margins[allowed]]
    let upper = margins[allowed];
    if upper <= 0.0 {
        return Some(0.0); // the budget is already spent without an offset
    }
    let lower = if allowed == 0 {
        0.0
    } else {
        margins[allowed - 1].max(0.0)
    };
    Some(0.5 * (lower + upper))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn logits_for(k: usize, margin: f32) -> [f32; NUM_CLASSES] {
        let mut z = [0.0f32; NUM_CLASSES];
        z[k] = margin;
        z
    }

    #[test]
    fn garbage_offset_flips_exactly_the_budget() {
        // margins 1..=100 (digit ahead of garbage by i): a 3% budget lets the
        // three smallest flip, so the offset lies between 3 and 4
        let mut m: [f32; 100] = core::array::from_fn(|i| (100 - i) as f32);
        let b = garbage_offset(&mut m, 0.03).expect("offset");
        assert_eq!(b, 3.5);
        let rows: [[f32; NUM_CLASSES]; 100] = core::array::from_fn(|i| {
            let mut z = logits_for(i % GARBAGE, (i + 1) as f32);
            z[GARBAGE] += b;
            z
        });
        let flipped = rows.iter().filter(|z| argmax(&z[..]) == GARBAGE).count();
        assert_eq!(flipped, 3);
        // budget 0: the offset stays below the smallest margin
        let mut m: [f32; 100] = core::array::from_fn(|i| (i + 1) as f32);
        assert_eq!(garbage_offset(&mut m, 0.0), Some(0.5));
        // already more garbage than the budget: no offset, never negative
        let mut m = [-2.0f32, -1.0, 5.0, 6.0];
        assert_eq!(garbage_offset(&mut m, 0.25), Some(0.0));
        let mut m = [-2.0f32, 4.0, 5.0, 6.0];
        assert_eq!(garbage_offset(&mut m, 0.25), Some(2.0));
        assert_eq!(garbage_offset(&mut [], 0.1), None);
        assert_eq!(garbage_offset(&mut [1.0], 1.0), None);
        assert_eq!(garbage_offset(&mut [f32::NAN], 0.1), None);
    }

    #[test]
    fn margin_is_best_digit_minus_garbage() {
        let mut z = logits_for(4, 3.0);
        z[GARBAGE] = 1.0;
        assert_eq!(garbage_margin(&z), 2.0);
        z[GARBAGE] = 5.0;
        assert_eq!(garbage_margin(&z), -2.0);
    }

    #[test]
    fn garbage_then_threshold_then_accept() {
        let policy = Policy {
            score: Score::Uncertainty,
            threshold: 0.5,
        };
        assert!(matches!(
            policy.decide(&logits_for(GARBAGE, 10.0)),
            Verdict::Reject {
                reason: RejectReason::Garbage,
                ..
            }
        ));
        // a flat row: U = 1, id score 0 < 0.5
        assert!(matches!(
            policy.decide(&logits_for(3, 0.01)),
            Verdict::Reject {
                reason: RejectReason::Uncertain,
                ..
            }
        ));
        match policy.decide(&logits_for(7, 20.0)) {
            Verdict::Accept {
                digit,
                confidence,
                uncertainty,
            } => {
                assert_eq!(digit, 7);
                assert!(confidence > 0.99 && uncertainty < 0.01);
            }
            v => panic!("expected accept, got {v:?}"),
        }
        let mut nan = logits_for(2, 5.0);
        nan[4] = f32::NAN;
        assert!(!policy.decide(&nan).is_accept());
    }

    #[test]
    fn calibration_keeps_the_requested_share() {
        let mut s: [f32; 100] = core::array::from_fn(|i| i as f32);
        assert_eq!(calibrate(&mut s, 0.95), Some(5.0));
        assert_eq!(calibrate(&mut s, 1.0), Some(0.0));
        assert_eq!(calibrate(&mut [], 0.9), None);
        assert_eq!(calibrate(&mut s, 0.0), None);
        let mut with_nan = [f32::NAN, 1.0, 2.0, 3.0];
        assert_eq!(calibrate(&mut with_nan, 0.75), Some(1.0));
    }

    proptest! {
        #[test]
        fn calibrated_threshold_keeps_at_least_keep(
            v in proptest::collection::vec(-100.0f32..100.0, 1..300),
            keep in 0.01f32..1.0,
        ) {
            let mut s = v.clone();
            let t = calibrate(&mut s, keep).expect("non-empty");
            let kept = v.iter().filter(|&&x| x >= t).count() as f32;
            prop_assert!(kept >= (keep * v.len() as f32).floor());
        }
    }
}
