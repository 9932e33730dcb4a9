//! Threshold-free detection metrics. Convention everywhere: **in-distribution
//! is the positive class** and scores are oriented so that higher = more
//! in-distribution (see `ood_core::Score::id_score`).

/// Tie groups of the pooled scores, highest score first: for each distinct
/// score, how many ID and how many OOD samples have it. The one sort and
/// walk over ties behind every curve metric here.
fn tie_groups(id: &[f32], ood: &[f32]) -> Vec<(usize, usize)> {
    let mut all: Vec<(f32, bool)> = id
        .iter()
        .map(|&s| (s, true))
        .chain(ood.iter().map(|&s| (s, false)))
        .collect();
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut groups = Vec::new();
    let mut i = 0;
    while i < all.len() {
        let (mut pos, mut neg) = (0, 0);
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            if all[j].1 {
                pos += 1;
            } else {
                neg += 1;
            }
            j += 1;
        }
        groups.push((pos, neg));
        i = j;
    }
    groups
}

/// Area under the ROC curve (probability that a random ID sample scores
/// higher than a random OOD sample, ties counting one half).
pub fn auroc(id: &[f32], ood: &[f32]) -> f64 {
    if id.is_empty() || ood.is_empty() {
        return f64::NAN;
    }
    // Mann-Whitney U: each ID sample wins against every OOD sample below it
    // and half-wins against the OOD samples it ties with. Every term is a
    // multiple of 1/2 below 2^53: the sum is exact.
    let mut ood_below = ood.len() as f64;
    let mut wins = 0.0f64;
    for (pos, neg) in tie_groups(id, ood) {
        ood_below -= neg as f64;
        wins += pos as f64 * (ood_below + 0.5 * neg as f64);
    }
    wins / (id.len() as f64 * ood.len() as f64)
}

/// Area under the precision-recall curve with ID as positive, as average
/// precision (steps at each distinct threshold, ties taken together).
pub fn aupr(id: &[f32], ood: &[f32]) -> f64 {
    if id.is_empty() {
        return f64::NAN;
    }
    let (mut tp, mut fp, mut ap) = (0usize, 0usize, 0.0f64);
    for (gp, gn) in tie_groups(id, ood) {
        tp += gp;
        fp += gn;
        ap += gp as f64 / id.len() as f64 * tp as f64 / (tp + fp) as f64;
    }
    ap
}

/// The threshold that keeps (at least) `tpr` of the ID scores: ID samples with
/// score >= threshold are accepted. The quantile is `ood_core::calibrate`,
/// the very function that sets the shipped thresholds.
pub fn threshold_at_tpr(id: &[f32], tpr: f64) -> f32 {
    ood_core::calibrate(&mut id.to_vec(), tpr as f32).unwrap_or(f32::NAN)
}

/// False-positive rate (share of OOD accepted) at the threshold that keeps
/// `tpr` of the ID samples.
pub fn fpr_at_tpr(id: &[f32], ood: &[f32], tpr: f64) -> f64 {
    if ood.is_empty() {
        return f64::NAN;
    }
    let t = threshold_at_tpr(id, tpr);
    ood.iter().filter(|&&s| s >= t).count() as f64 / ood.len() as f64
}

/// ROC curve points `(fpr, tpr)` from (0,0) to (1,1), one per distinct threshold.
pub fn roc_curve(id: &[f32], ood: &[f32]) -> Vec<(f64, f64)> {
    let (p, n) = (id.len().max(1) as f64, ood.len().max(1) as f64);
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut pts = vec![(0.0, 0.0)];
    for (gp, gn) in tie_groups(id, ood) {
        tp += gp as f64;
        fp += gn as f64;
        pts.push((fp / n, tp / p));
    }
    pts
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Sums of at most a few hundred f64 terms of size <= 1.
    const TOL: f64 = 1e-9;

    #[test]
    fn hand_computed_cases() {
        assert!((auroc(&[2.0, 3.0], &[0.0, 1.0]) - 1.0).abs() < TOL);
        assert!(auroc(&[0.0, 1.0], &[2.0, 3.0]).abs() < TOL);
        assert!((auroc(&[1.0, 1.0], &[1.0, 1.0]) - 0.5).abs() < TOL);
        // id {1, 3}, ood {2}: pairs (1>2)=0, (3>2)=1 -> 0.5
        assert!((auroc(&[1.0, 3.0], &[2.0]) - 0.5).abs() < TOL);
        // ranking 3(id) 2(ood) 1(id): AP = 1/2*1 + 1/2*2/3
        assert!((aupr(&[1.0, 3.0], &[2.0]) - (0.5 + 1.0 / 3.0)).abs() < TOL);
        assert!((aupr(&[2.0, 3.0], &[0.0, 1.0]) - 1.0).abs() < TOL);
        // 20 ID scores 1..=20: keep 95% -> threshold 2; OOD {1.5, 2, 5}: 2 of 3 accepted
        let id: Vec<f32> = (1..=20).map(|v| v as f32).collect();
        assert_eq!(threshold_at_tpr(&id, 0.95), 2.0);
        assert!((fpr_at_tpr(&id, &[1.5, 2.0, 5.0], 0.95) - 2.0 / 3.0).abs() < TOL);
        let roc = roc_curve(&[2.0, 3.0], &[0.0, 1.0]);
        assert_eq!(roc.first(), Some(&(0.0, 0.0)));
        assert_eq!(roc.last(), Some(&(1.0, 1.0)));
        assert!(auroc(&[], &[1.0]).is_nan());
    }

    proptest! {
        #[test]
        fn auroc_is_antisymmetric_and_bounded(
            a in prop::collection::vec(-5.0f32..5.0, 1..40),
            b in prop::collection::vec(-5.0f32..5.0, 1..40),
        ) {
            let x = auroc(&a, &b);
            prop_assert!((0.0..=1.0).contains(&x));
            prop_assert!((x + auroc(&b, &a) - 1.0).abs() < TOL);
            let p = aupr(&a, &b);
            prop_assert!(p > 0.0 && p <= 1.0 + TOL);
            let f = fpr_at_tpr(&a, &b, 0.95);
            prop_assert!((0.0..=1.0).contains(&f));
        }

        /// Against the naive reference: every (ID, OOD) pair counted.
        #[test]
        fn auroc_matches_the_pairwise_count(
            a in prop::collection::vec(-3i8..3, 1..30),
            b in prop::collection::vec(-3i8..3, 1..30),
        ) {
            let (a, b): (Vec<f32>, Vec<f32>) =
                (a.iter().map(|&v| f32::from(v)).collect(), b.iter().map(|&v| f32::from(v)).collect());
            let mut wins = 0.0;
            for x in &a {
                for y in &b {
                    wins += if x > y { 1.0 } else if x == y { 0.5 } else { 0.0 };
                }
            }
            prop_assert!((auroc(&a, &b) - wins / (a.len() * b.len()) as f64).abs() < TOL);
        }
    }
}
