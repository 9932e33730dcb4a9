//! One classifier epoch (all of a pre-training epoch, the first half of an
//! inversion epoch): shuffled mini-batches, random shifts, class-weighted
//! cross-entropy with weights from the current class counts, cosine
//! learning-rate decay, validation accuracy at the end.

use crate::config::{GarbageBalance, TrainConfig};
use crate::data::Dataset;
use crate::error::Result;
use crate::model::ClassifierTrainer;
use crate::report::ClassifierEpoch;
use ood_core::{score::argmax, GARBAGE, IMG_PIXELS, IMG_SIDE, NUM_CLASSES};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use std::time::Instant;

/// "Balanced" class weights `w_c = N / (K * n_c)` over the classes present
/// (`K` = number of non-empty classes); absent classes get weight 0. Recomputed
/// whenever the counts change (the garbage class grows during inversion).
pub fn class_weights(counts: &[usize]) -> [f32; NUM_CLASSES] {
    let total: usize = counts.iter().sum();
    let present = counts.iter().filter(|&&c| c > 0).count().max(1);
    let mut w = [0f32; NUM_CLASSES];
    for (wi, &c) in w.iter_mut().zip(counts) {
        if c > 0 {
            *wi = total as f32 / (present as f32 * c as f32);
        }
    }
    w
}

/// Cross-entropy weight of each (source, class): the balanced class weights
/// of the summed counts ([`class_weights`]); with
/// [`GarbageBalance::PerSource`] the garbage weight is then split so that each
/// of the `S` sources holding garbage images carries `1 / S` of the garbage
/// class's total weight (`w_s = w_g * n_g / (S * n_s)`). `counts[s][c]` is the
/// number of images of class `c` in source `s`.
///
/// `fixed` lists `(i, share)` pairs (per-source only): source `i` carries
/// `share` of the garbage weight and the garbage sources not listed split the
/// rest equally (`train.generated_share`, `train.turned_share`). A pair with
/// share 0 or a source without garbage images is left out; when every garbage
/// source would be fixed (none left to take the rest), all share equally.
pub fn source_weights(
    counts: &[Vec<usize>],
    balance: GarbageBalance,
    fixed: &[(usize, f64)],
) -> Vec<[f32; NUM_CLASSES]> {
    let total = total_counts(counts);
    let w = class_weights(&total);
    let garbage_of = |c: &Vec<usize>| c.get(GARBAGE).copied().unwrap_or(0);
    let garbage_sources = counts.iter().filter(|c| garbage_of(c) > 0).count();
    // the fixed shares of sources that have images, when others remain
    let mut special: Vec<(usize, f64)> = fixed
        .iter()
        .copied()
        .filter(|&(i, share)| share > 0.0 && counts.get(i).is_some_and(|c| garbage_of(c) > 0))
        .collect();
    if special.len() >= garbage_sources {
        special.clear();
    }
    let rest = 1.0 - special.iter().map(|&(_, share)| share).sum::<f64>();
    let mass = f64::from(w[GARBAGE]) * total[GARBAGE] as f64;
    counts
        .iter()
        .enumerate()
        .map(|(s, c)| {
            let mut ws = w;
            let n_s = garbage_of(c);
            if balance == GarbageBalance::PerSource && n_s > 0 {
                ws[GARBAGE] = if special.is_empty() {
                    (mass / (garbage_sources as f64 * n_s as f64)) as f32
                } else {
                    match special.iter().find(|&&(i, _)| i == s) {
                        Some(&(_, share)) => (mass * share / n_s as f64) as f32,
                        None => {
                            let others = (garbage_sources - special.len()) as f64;
                            (mass * rest / (others * n_s as f64)) as f32
                        }
                    }
                };
            }
            ws
        })
        .collect()
}

/// Images per class summed over the sources (`counts[s][c]` as in
/// [`source_weights`]).
pub fn total_counts(counts: &[Vec<usize>]) -> Vec<usize> {
    let mut total = vec![0usize; NUM_CLASSES];
    for c in counts {
        for (t, k) in total.iter_mut().zip(c) {
            *t += k;
        }
    }
    total
}

/// Copies a 28x28 image shifted by `(dx, dy)` pixels, filling with 0 (background).
pub fn shift_image(src: &[u8], dx: i32, dy: i32, out: &mut [u8]) {
    let s = IMG_SIDE as i32;
    for y in 0..s {
        for x in 0..s {
            let (sx, sy) = (x - dx, y - dy);
            out[(y * s + x) as usize] = if (0..s).contains(&sx) && (0..s).contains(&sy) {
                src[(sy * s + sx) as usize]
            } else {
                0
            };
        }
    }
}

/// Cosine decay from `lr` to `lr_min` over `total` steps.
pub fn cosine_lr(lr: f64, lr_min: f64, step: usize, total: usize) -> f64 {
    let t = step as f64 / total.max(1) as f64;
    lr_min + 0.5 * (lr - lr_min) * (1.0 + (std::f64::consts::PI * t).cos())
}

/// 11-way accuracy of the trainer's model on `ds`.
pub fn accuracy(trainer: &ClassifierTrainer, ds: &Dataset, batch: usize) -> Result<f64> {
    Ok(accuracy_of(&trainer.model.logits(&ds.images, batch)?, &ds.labels))
}

/// 11-way accuracy of logits `z` against `labels` (one each).
pub fn accuracy_of(z: &[[f32; NUM_CLASSES]], labels: &[u8]) -> f64 {
    let ok = z
        .iter()
        .zip(labels)
        .filter(|(z, &y)| argmax(&z[..]) == y as usize)
        .count();
    ok as f64 / labels.len().max(1) as f64
}

/// The `(source, image)` pairs of one epoch, in source order: every image,
/// except that of each garbage seed source (all its images garbage, and
/// not the `generated` source) only `share` of the images (rounded up),
/// drawn from `rng`. With `share >= 1` nothing is drawn.
///
/// With `pool > 1` (hard seed garbage, `train.hard_seed_pool`) each such
/// source first draws `pool` times that many (at most all of it), then
/// keeps the ones `hardness` scores highest (for each source index and its
/// drawn image indices, one score per image; ties keep the draw's order).
/// With `pool == 1` `hardness` is never called and the draw is the plain one.
pub fn epoch_index(
    sources: &[&Dataset],
    generated: Option<usize>,
    (share, pool): (f64, usize),
    rng: &mut StdRng,
    mut hardness: impl FnMut(usize, &[usize]) -> Result<Vec<f32>>,
) -> Result<Vec<(usize, usize)>> {
    let mut index = Vec::with_capacity(sources.iter().map(|d| d.len()).sum());
    for (s, d) in sources.iter().enumerate() {
        let seed_garbage =
            Some(s) != generated && !d.is_empty() && d.labels.iter().all(|&y| usize::from(y) == GARBAGE);
        if share < 1.0 && seed_garbage {
            let take = (d.len() as f64 * share).ceil() as usize;
            let mut picks: Vec<usize> = (0..d.len()).collect();
            picks.shuffle(rng);
            picks.truncate(take.saturating_mul(pool.max(1)).min(d.len()));
            if picks.len() > take {
                let scores = hardness(s, &picks)?;
                let mut order: Vec<usize> = (0..picks.len()).collect();
                order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
                picks = order[..take].iter().map(|&k| picks[k]).collect();
            }
            picks.sort_unstable();
            index.extend(picks.into_iter().map(|i| (s, i)));
        } else {
            index.extend((0..d.len()).map(|i| (s, i)));
        }
    }
    Ok(index)
}

/// How far the classifier is from sending each image to garbage: its
/// largest digit logit minus its garbage logit (eval mode; higher = the
/// more digit-like, the harder a garbage image).
pub fn digit_margin(
    trainer: &ClassifierTrainer,
    ds: &Dataset,
    picks: &[usize],
    batch: usize,
) -> Result<Vec<f32>> {
    let mut px = Vec::with_capacity(picks.len() * IMG_PIXELS);
    for &i in picks {
        px.extend_from_slice(ds.image(i));
    }
    Ok(trainer
        .model
        .logits(&px, batch)?
        .iter()
        .map(|z| z[..GARBAGE].iter().copied().fold(f32::NEG_INFINITY, f32::max) - z[GARBAGE])
        .collect())
}

/// Trains one epoch over the union of `sources` (digits and garbage sets).
///
/// `epoch` is the 0-based index among `total_epochs` classifier epochs of the
/// run: the learning rate follows one cosine decay over all of them. Class
/// weights are recomputed from the current counts; `generated` and
/// `turned` are the indices in `sources` of the generated garbage set and of
/// the turned digits, if present (`train.generated_share`,
/// `train.turned_share`).
#[allow(clippy::too_many_arguments)]
pub fn train_epoch(
    trainer: &mut ClassifierTrainer,
    sources: &[&Dataset],
    (generated, turned): (Option<usize>, Option<usize>),
    val: &Dataset,
    cfg: &TrainConfig,
    epoch: usize,
    total_epochs: usize,
    label: &str,
    rng: &mut StdRng,
) -> Result<ClassifierEpoch> {
    let bs = cfg.train.batch_size;
    let mut index = epoch_index(
        sources,
        generated,
        (cfg.train.seed_garbage_share, cfg.train.hard_seed_pool),
        rng,
        |s, picks| digit_margin(trainer, sources[s], picks, cfg.eval.batch_size),
    )?;
    let n = index.len();
    let steps = n.div_ceil(bs);
    let mut per_source = vec![vec![0usize; NUM_CLASSES]; sources.len()];
    for &(s, i) in &index {
        per_source[s][usize::from(sources[s].labels[i])] += 1;
    }
    let counts = total_counts(&per_source);
    let fixed: Vec<(usize, f64)> = [
        (generated, cfg.train.generated_share),
        (turned, cfg.train.turned_share),
    ]
    .into_iter()
    .filter_map(|(i, share)| i.map(|i| (i, share)))
    .collect();
    let weights = source_weights(&per_source, cfg.train.garbage_balance, &fixed);
    let shift = cfg.data.augment_shift as i32;
    let bar = indicatif::ProgressBar::new(steps as u64).with_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} steps ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(label.to_string());
    index.shuffle(rng);
    let start = Instant::now();
    let mut px = vec![0u8; bs * IMG_PIXELS];
    let mut labels = Vec::with_capacity(bs);
    let mut sample_w = Vec::with_capacity(bs);
    let mut loss_sum = 0.0;
    let mut lr = cfg.train.lr;
    for (s, batch) in index.chunks(bs).enumerate() {
        let t = (epoch as f64 + s as f64 / steps as f64) / total_epochs.max(1) as f64;
        lr = cosine_lr(cfg.train.lr, cfg.train.lr_min, (t * 1e6) as usize, 1_000_000);
        trainer.set_lr(lr);
        labels.clear();
        sample_w.clear();
        for (slot, &(src, i)) in px.chunks_mut(IMG_PIXELS).zip(batch) {
            let (dx, dy) = if shift > 0 {
                (rng.random_range(-shift..=shift), rng.random_range(-shift..=shift))
            } else {
                (0, 0)
            };
            shift_image(sources[src].image(i), dx, dy, slot);
            let y = sources[src].labels[i];
            labels.push(y);
            sample_w.push(weights[src][usize::from(y)]);
        }
        loss_sum +=
            f64::from(trainer.step_weighted(&px[..batch.len() * IMG_PIXELS], &labels, &sample_w, rng)?);
        bar.inc(1);
    }
    let seconds = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    Ok(ClassifierEpoch {
        loss: loss_sum / steps.max(1) as f64,
        val_accuracy: accuracy(trainer, val, cfg.eval.batch_size)?,
        lr,
        seconds,
        samples_per_sec: n as f64 / seconds,
        class_counts: counts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// f32 division results compared exactly enough for small integers.
    const TOL: f32 = 1e-6;

    #[test]
    fn accuracy_of_counts_the_arg_max_against_the_labels() {
        let row = |k: usize| {
            let mut z = [0.0f32; NUM_CLASSES];
            z[k] = 1.0;
            z
        };
        let z = [row(3), row(GARBAGE), row(7), row(1)];
        assert_eq!(accuracy_of(&z, &[3, 10, 2, 1]), 0.75);
        assert_eq!(accuracy_of(&[], &[]), 0.0);
    }

    #[test]
    fn balanced_weights() {
        let mut counts = vec![100; NUM_CLASSES];
        counts[10] = 400;
        let w = class_weights(&counts);
        // N = 1400, K = 11: w = 1400 / (11 * n)
        assert!((w[0] - 1400.0 / 1100.0).abs() < TOL);
        assert!((w[10] - 1400.0 / 4400.0).abs() < TOL);
        counts[10] = 0;
        let w = class_weights(&counts);
        assert_eq!(w[10], 0.0);
        assert!((w[0] - 1.0).abs() < TOL);
    }

    #[test]
    fn per_source_balance_splits_the_garbage_weight_equally() {
        // digits 100 each; garbage: 300 Gaussian, 100 smooth, 800 generated
        let digits: Vec<usize> = (0..NUM_CLASSES).map(|c| if c < 10 { 100 } else { 0 }).collect();
        let garbage = |n: usize| -> Vec<usize> {
            (0..NUM_CLASSES)
                .map(|c| if c == GARBAGE { n } else { 0 })
                .collect()
        };
        let counts = vec![digits, garbage(300), garbage(100), garbage(800)];
        let pooled = source_weights(&counts, GarbageBalance::Pooled, &[]);
        // N = 2200, K = 11: digits 2, garbage 2200 / (11 * 1200)
        for w in &pooled {
            assert!((w[0] - 2.0).abs() < TOL);
            assert!((w[GARBAGE] - 2200.0 / 13200.0).abs() < TOL);
        }
        // the garbage mass (count x weight) each garbage source carries
        let masses = |w: &[[f32; NUM_CLASSES]]| -> Vec<f32> {
            [300.0f32, 100.0, 800.0]
                .iter()
                .zip(&w[1..])
                .map(|(n, w)| n * w[GARBAGE])
                .collect()
        };
        let per = source_weights(&counts, GarbageBalance::PerSource, &[]);
        // each garbage source carries a third of the class mass (200 = N / K)
        let mass = masses(&per);
        for m in &mass {
            assert!((m - 200.0 / 3.0).abs() < 1e-3, "{mass:?}");
        }
        assert!((per[0][3] - 2.0).abs() < TOL);
        // one garbage source: the same as pooled
        let one = source_weights(&counts[..2], GarbageBalance::PerSource, &[]);
        assert_eq!(one, source_weights(&counts[..2], GarbageBalance::Pooled, &[]));
        // a generated share of 0.5: the generated set carries half the mass
        // (100), the two noise sources a quarter each; share 0 = equal split
        let half = source_weights(&counts, GarbageBalance::PerSource, &[(3, 0.5)]);
        let mass = masses(&half);
        for (m, want) in mass.iter().zip([50.0f32, 50.0, 100.0]) {
            assert!((m - want).abs() < 1e-3, "{mass:?}");
        }
        assert_eq!(half[0], per[0], "digit weights unchanged");
        assert_eq!(
            source_weights(&counts, GarbageBalance::PerSource, &[(3, 0.0)]),
            per
        );
        // pooled ignores it, and a generated set that is the only garbage source takes all
        assert_eq!(
            source_weights(&counts, GarbageBalance::Pooled, &[(3, 0.5)]),
            pooled
        );
        assert_eq!(
            source_weights(&counts[..2], GarbageBalance::PerSource, &[(1, 0.5)]),
            one
        );
        // two fixed shares (the generated set 0.5, the second noise source
        // 0.3): the first noise source takes the rest, 0.2 of the mass
        let two = source_weights(&counts, GarbageBalance::PerSource, &[(3, 0.5), (2, 0.3)]);
        let mass = masses(&two);
        for (m, want) in mass.iter().zip([40.0f32, 60.0, 100.0]) {
            assert!((m - want).abs() < 1e-3, "{mass:?}");
        }
        // the same in either order, and a zero share is no fixed share
        assert_eq!(
            source_weights(&counts, GarbageBalance::PerSource, &[(2, 0.3), (3, 0.5)]),
            two
        );
        assert_eq!(
            source_weights(&counts, GarbageBalance::PerSource, &[(3, 0.5), (2, 0.0)]),
            half
        );
        // every garbage source fixed: none left for the rest, all equal
        assert_eq!(
            source_weights(
                &counts,
                GarbageBalance::PerSource,
                &[(1, 0.2), (2, 0.3), (3, 0.4)]
            ),
            per
        );
    }

    #[test]
    fn an_epoch_trains_on_a_share_of_each_garbage_seed_source_only() -> Result<()> {
        use rand::SeedableRng;
        let set = |name: &str, labels: Vec<u8>| Dataset {
            name: name.into(),
            images: vec![0; labels.len() * IMG_PIXELS],
            labels,
        };
        let digits = set("digits", vec![1, 2, 3, 4, 5]);
        let noise = set("noise", vec![GARBAGE as u8; 10]);
        let mixed = set("mixed", vec![GARBAGE as u8, 7, GARBAGE as u8]);
        let generated = set("generated", vec![GARBAGE as u8; 6]);
        let sources = [&digits, &noise, &mixed, &generated];
        let mut rng = StdRng::seed_from_u64(3);
        let never = |_: usize, _: &[usize]| -> Result<Vec<f32>> { panic!("no scores without a pool") };
        let all = epoch_index(&sources, Some(3), (1.0, 1), &mut rng, never)?;
        assert_eq!(all.len(), 24, "every image at share 1");
        assert_eq!(
            rng.random::<u64>(),
            StdRng::seed_from_u64(3).random::<u64>(),
            "no draw at share 1"
        );
        let mut picks_seen = std::collections::BTreeSet::new();
        for seed in 0..20 {
            let part = epoch_index(
                &sources,
                Some(3),
                (0.25, 1),
                &mut StdRng::seed_from_u64(seed),
                never,
            )?;
            let of = |s: usize| {
                part.iter()
                    .filter(|&&(src, _)| src == s)
                    .map(|&(_, i)| i)
                    .collect::<Vec<_>>()
            };
            assert_eq!(of(0), vec![0, 1, 2, 3, 4], "digits untouched");
            assert_eq!(of(2), vec![0, 1, 2], "a source with digits is no garbage seed");
            assert_eq!(of(3), (0..6).collect::<Vec<_>>(), "the generated set untouched");
            let noise_picks = of(1);
            assert_eq!(noise_picks.len(), 3, "a quarter of 10, rounded up");
            assert!(noise_picks.windows(2).all(|w| w[0] < w[1]), "distinct, in order");
            picks_seen.extend(noise_picks);
        }
        assert!(picks_seen.len() > 5, "the share is drawn afresh: {picks_seen:?}");
        Ok(())
    }

    #[test]
    fn the_digit_margin_is_the_best_digit_logit_over_the_garbage_logit() -> Result<()> {
        use crate::model::optim::AdamParams;
        use crate::model::{Classifier, ClassifierConfig, Device};
        use rand::SeedableRng;
        let mut rng = StdRng::seed_from_u64(5);
        let m = Classifier::new(&ClassifierConfig::default(), &mut rng, &Device::Cpu)?;
        let t = ClassifierTrainer::new(m, AdamParams::default())?;
        let ds = Dataset {
            name: "x".into(),
            images: (0..6 * IMG_PIXELS).map(|i| ((i * 7) % 251) as u8).collect(),
            labels: vec![GARBAGE as u8; 6],
        };
        let picks = [4, 1, 3];
        let margins = digit_margin(&t, &ds, &picks, 2)?;
        let z = t.model.logits(&ds.images, 6)?;
        assert_eq!(margins.len(), 3);
        for (&i, m) in picks.iter().zip(&margins) {
            let best = z[i][..GARBAGE].iter().copied().fold(f32::MIN, f32::max);
            assert!((m - (best - z[i][GARBAGE])).abs() < 1e-5, "image {i}: {m}");
        }
        assert!(
            margins.iter().any(|&m| m != margins[0]),
            "the images differ: {margins:?}"
        );
        Ok(())
    }

    #[test]
    fn a_pool_keeps_the_hardest_of_a_larger_draw() -> Result<()> {
        use rand::SeedableRng;
        let set = |labels: Vec<u8>| Dataset {
            name: "x".into(),
            images: vec![0; labels.len() * IMG_PIXELS],
            labels,
        };
        let digits = set(vec![1, 2, 3]);
        let noise = set(vec![GARBAGE as u8; 40]);
        let sources = [&digits, &noise];
        // harder = a higher index, so the kept are the pool's highest indices
        let by_index = |calls: &mut Vec<(usize, Vec<usize>)>, s: usize, picks: &[usize]| {
            calls.push((s, picks.to_vec()));
            Ok(picks.iter().map(|&i| i as f32).collect())
        };
        for seed in 0..10 {
            let mut calls = Vec::new();
            let plain = epoch_index(
                &sources,
                None,
                (0.25, 1),
                &mut StdRng::seed_from_u64(seed),
                |s, p| by_index(&mut calls, s, p),
            )?;
            assert!(calls.is_empty(), "no scores without a pool");
            let hard = epoch_index(
                &sources,
                None,
                (0.25, 2),
                &mut StdRng::seed_from_u64(seed),
                |s, p| by_index(&mut calls, s, p),
            )?;
            assert_eq!(calls.len(), 1, "one call, for the one seed source");
            let (s, pool) = &calls[0];
            assert_eq!(*s, 1);
            assert_eq!(pool.len(), 20, "twice the quarter of 40");
            let mut top: Vec<usize> = pool.clone();
            top.sort_unstable();
            let top = top[10..].to_vec();
            let kept: Vec<usize> = hard.iter().filter(|&&(s, _)| s == 1).map(|&(_, i)| i).collect();
            assert_eq!(kept, top, "the ten hardest of the pool, in order");
            let plain_noise: Vec<usize> = plain.iter().filter(|&&(s, _)| s == 1).map(|&(_, i)| i).collect();
            assert!(
                plain_noise.iter().all(|i| pool.contains(i)),
                "the pool extends the plain draw"
            );
            assert_eq!(&hard[..3], &[(0, 0), (0, 1), (0, 2)], "digits untouched");
        }
        // a pool past the source's size scores all of it once
        let mut calls = Vec::new();
        let all = epoch_index(
            &sources,
            None,
            (0.25, 8),
            &mut StdRng::seed_from_u64(1),
            |s, p| by_index(&mut calls, s, p),
        )?;
        assert_eq!(calls[0].1.len(), 40);
        let kept: Vec<usize> = all.iter().filter(|&&(s, _)| s == 1).map(|&(_, i)| i).collect();
        assert_eq!(kept, (30..40).collect::<Vec<_>>());
        Ok(())
    }

    #[test]
    fn shifting_moves_pixels_and_fills_with_background() {
        let mut src = vec![0u8; IMG_PIXELS];
        src[14 * 28 + 14] = 255;
        let mut out = vec![1u8; IMG_PIXELS];
        shift_image(&src, 2, -1, &mut out);
        assert_eq!(out[13 * 28 + 16], 255);
        assert_eq!(out.iter().filter(|&&v| v != 0).count(), 1);
        shift_image(&src, 0, 0, &mut out);
        assert_eq!(out, src);
    }

    #[test]
    fn cosine_schedule_ends() {
        assert!((cosine_lr(1.0, 0.1, 0, 10) - 1.0).abs() < 1e-12);
        assert!((cosine_lr(1.0, 0.1, 10, 10) - 0.1).abs() < 1e-12);
        assert!((cosine_lr(1.0, 0.0, 5, 10) - 0.5).abs() < 1e-12);
    }
}
