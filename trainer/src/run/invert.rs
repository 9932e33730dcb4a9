//! The inversion half of an epoch: train the generator against the frozen
//! classifier, generate the epoch's counterfeits, score them with the
//! classifier they were made for (keeping the ones it trusts most when the
//! generator draws more candidates than the epoch keeps), and add them to the
//! garbage class (a bounded reservoir of everything generated so far),
//! less those taken for digits when `inversion.digit_like` is on
//! ([`super::digit_like`]).

use crate::config::InversionConfig;
use crate::data::Dataset;
use crate::error::{Result, TensorContext};
use crate::model::generator::Generator;
use crate::model::inversion::{self, LossParts};
use crate::model::Classifier;
use crate::report::{InversionLog, RestartCause};
use crate::run::digit_like::DigitLike;
use crate::run::diversity::{self, ClassDiversity};
use crate::seeds::Stream;
use candle_core::{Device, Tensor};
use ood_core::{score::argmax, Score, GARBAGE, IMG_PIXELS, NUM_CLASSES};
use rand::rngs::StdRng;
use rand::Rng;
use std::time::Instant;

/// The generated garbage: a uniform sample (at most `cap`) of every
/// counterfeit generated so far.
#[derive(Debug, Clone, Default)]
pub struct GarbageReservoir {
    /// The images kept, labelled garbage.
    pub set: Dataset,
    /// Counterfeits generated so far (kept or not).
    pub seen: u64,
}

/// The epoch's generator steps against the frozen `model` (the typicality
/// term against `anchors`, when given), with a progress bar: their mean loss
/// parts and wall seconds.
fn train_generator(
    g: &mut Generator,
    model: &Classifier,
    inv: &InversionConfig,
    anchors: Option<&Tensor>,
    rng: &mut StdRng,
) -> Result<(LossParts, f64)> {
    let t0 = Instant::now();
    let bar = indicatif::ProgressBar::new(inv.generator_steps as u64).with_style(
        indicatif::ProgressStyle::with_template(
            "inverting [{elapsed_precise}] {wide_bar} {pos}/{len} generator steps",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let (weights, ask) = (
        inv.weights(),
        inversion::Ask {
            two_digit_share: inv.two_digit_share,
            anchors,
        },
    );
    let mut sum = LossParts::default();
    for _ in 0..inv.generator_steps {
        let p = inversion::generator_step(g, model, inv.batch_size, &weights, ask, rng)?;
        sum = sum.zip_with(&p, |a, b| a + b);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let k = inv.generator_steps as f64;
    // each part's mean over the steps
    let mean = sum.zip_with(&sum, |a, _| a / k);
    Ok((mean, t0.elapsed().as_secs_f64()))
}

/// Trains `g` for the epoch's steps (the typicality term against `anchors`,
/// when given) and draws `n` samples: (loss, seconds, samples labelled with
/// their conditioning digit).
pub(crate) fn train_and_generate(
    g: &mut Generator,
    model: &Classifier,
    (inv, anchors): (&InversionConfig, Option<&Tensor>),
    (n, e): (usize, usize),
    rng: &mut StdRng,
) -> Result<(LossParts, f64, Dataset)> {
    let (loss, seconds) = train_generator(g, model, inv, anchors, rng)?;
    let (images, cond) = inversion::generate(g, n, inv.batch_size.max(64), inv.two_digit_share, rng)?;
    let new = Dataset {
        name: format!("generated-{}", e + 1),
        images,
        labels: cond,
    };
    Ok((loss, seconds, new))
}

/// Whether samples of this diversity mean a collapsed generator under
/// `floor` (0 = never): some digit below `floor` of real same-digit pixel
/// diversity.
pub fn collapsed(div: &ClassDiversity, floor: f64) -> bool {
    floor > 0.0 && div.min_pixel_ratio().0 < floor
}

/// Whether a generator whose samples have this diversity, and of which
/// `to_garbage` already land in garbage, must restart, and why: collapsed
/// (some digit under `restart_floor` of real same-digit diversity) first, then
/// lost (at least `restart_lost` of its samples already garbage; 0 = never).
pub fn restart_cause(div: &ClassDiversity, to_garbage: f64, inv: &InversionConfig) -> Option<RestartCause> {
    if collapsed(div, inv.restart_floor) {
        Some(RestartCause::Collapsed)
    } else if inv.restart_lost > 0.0 && to_garbage >= inv.restart_lost {
        Some(RestartCause::Lost)
    } else {
        None
    }
}

/// Puts the generators of `fresh` marked in `which` (in the order of
/// [`member_causes`]: a pair's pen-alone partner, then its over-digits
/// generator) in place of those of `g`: the partner alone, the over-digits
/// generator alone (keeping `g`'s partner), or, for anything else (one
/// generator, both, none marked), all of `fresh`.
fn replace_members(g: &mut Generator, mut fresh: Generator, which: &[bool]) {
    match which {
        [true, false] => g.swap_partner(&mut fresh),
        [false, true] => {
            fresh.swap_partner(g);
            *g = fresh;
        }
        _ => *g = fresh,
    }
}

/// One generator of an inversion judged on its own samples.
#[derive(Debug, Clone, PartialEq)]
struct Member {
    /// How the log names it.
    name: &'static str,
    /// Why it must restart, if it must ([`restart_cause`]).
    cause: Option<RestartCause>,
    /// Its least diverse digit: (share of real pixel diversity, digit).
    min_pixel_ratio: (f64, usize),
    /// The share of its samples sent to garbage.
    to_garbage: f64,
}

impl Member {
    /// A generator whose samples have diversity `div` and of which
    /// `to_garbage` go to garbage.
    fn judged(name: &'static str, div: &ClassDiversity, to_garbage: f64, inv: &InversionConfig) -> Self {
        Self {
            name,
            cause: restart_cause(div, to_garbage, inv),
            min_pixel_ratio: div.min_pixel_ratio(),
            to_garbage,
        }
    }
}

/// Each generator of `g` judged on its own samples among `new` (logits
/// `z`; diversity `div` and share sent to garbage `to_garbage` of them
/// all): one generator on all of them, as measured; a pair's pen-alone
/// partner on its share (drawn first, [`inversion::generate`]), then its
/// over-digits generator on the rest, each measured against `reference`
/// on `model`, in batches of `batch`.
fn member_causes(
    g: &Generator,
    (new, z): (&Dataset, &[[f32; NUM_CLASSES]]),
    (div, to_garbage): (&ClassDiversity, f64),
    (reference, model, batch): (&diversity::Reference, &Classifier, usize),
    inv: &InversionConfig,
) -> Result<Vec<Member>> {
    let n = new.len();
    let Some(k) = g.pen_alone_rows(n) else {
        return Ok(vec![Member::judged("generator", div, to_garbage, inv)]);
    };
    [("pen-alone generator", 0..k), ("over-digits generator", k..n)]
        .into_iter()
        .map(|(name, range)| {
            let own = new.subset(&new.name, &range.clone().collect::<Vec<_>>());
            let div = reference.against(model, &own, batch)?;
            Ok(Member::judged(name, &div, score(&z[range]).1, inv))
        })
        .collect()
}

/// The mean `U(x)` of images with logits `z` and the share of them sent to
/// garbage.
fn score(z: &[[f32; NUM_CLASSES]]) -> (f64, f64) {
    let n = z.len().max(1) as f64;
    let u = z
        .iter()
        .map(|l| f64::from(Score::Uncertainty.raw(l)))
        .sum::<f64>()
        / n;
    let g = z.iter().filter(|l| argmax(&l[..]) == GARBAGE).count() as f64 / n;
    (u, g)
}

/// The `keep` images (of those with logits `z` and conditioning digits
/// `labels`) that the classifier trusts most as their own digit: the highest
/// softmax probability of that digit, ties to the earlier image; in their
/// original order.
pub fn most_trusted(z: &[[f32; NUM_CLASSES]], labels: &[u8], keep: usize) -> Vec<usize> {
    let trust: Vec<f32> = z
        .iter()
        .zip(labels)
        .map(|(l, &y)| {
            let mut p = [0f32; NUM_CLASSES];
            ood_core::softmax(l, &mut p);
            p[usize::from(y)]
        })
        .collect();
    let mut order: Vec<usize> = (0..trust.len()).collect();
    // stable: equal trust keeps the earlier image first
    order.sort_by(|&a, &b| trust[b].total_cmp(&trust[a]));
    order.truncate(keep);
    order.sort_unstable();
    order
}

/// Inverts the frozen `model` for epoch `e` (0-based over the run; `seed`
/// is the run's): trains the generator, generates `samples_per_epoch`
/// counterfeits (or `candidates`, of which the `samples_per_epoch` that
/// `model` trusts most are kept: [`most_trusted`]), measures their diversity
/// against the `real` digits (restarting a collapsed or lost generator once,
/// from fresh weights; decided on everything it drew), scores them with
/// `model` (logits in batches of `batch`) and adds them to `garbage`, less
/// those `like` takes for digits (when given). Returns the log and the new
/// counterfeits (labelled with their conditioning digit; those taken for
/// digits included, as the sample grids show them).
pub fn invert(
    g: &mut Generator,
    model: &Classifier,
    inv: &InversionConfig,
    (seed, e, batch): (u64, usize, usize),
    (real, digits, like): (&Dataset, &Dataset, Option<&DigitLike>),
    garbage: &mut GarbageReservoir,
) -> Result<(InversionLog, Dataset)> {
    let mut rng = Stream::Invert.rng(seed, e);
    let anchors = (inv.typicality != 0.0)
        .then(|| anchors(model, digits, batch, g.device()))
        .transpose()?;
    let anchors = anchors.as_ref();
    // new weights for the generators of `g` marked in `which` (one, or a
    // pair's partner and its over-digits generator) from `stream`'s draws
    // of this epoch
    let renew = |g: &mut Generator, stream: Stream, which: &[bool]| -> Result<()> {
        let device = g.device().clone();
        let sources = g.sources().cloned();
        let mut fresh = Generator::new(
            &inv.generator,
            inv.generator_lr,
            &mut stream.rng(seed, e),
            &device,
        )?;
        if let Some(s) = &sources {
            fresh.set_sources(s);
        }
        replace_members(g, fresh, which);
        Ok(())
    };
    if inv.fresh_generator {
        renew(g, Stream::Fresh, &[])?;
    }
    let drawn = inv.candidates.max(inv.samples_per_epoch);
    let (mut loss, mut generator_seconds, mut new) =
        train_and_generate(g, model, (inv, anchors), (drawn, e), &mut rng)?;
    // the real digits' scale: one classifier for the whole call, so measured once
    let reference = diversity::Reference::of(model, real, batch)?;
    let mut div = reference.against(model, &new, batch)?;
    let mut z = model.logits(&new.images, batch)?;
    let (mut new_u, mut new_g) = score(&z);
    // each generator judged on its own samples
    let members = member_causes(g, (&new, &z), (&div, new_g), (&reference, model, batch), inv)?;
    let cause = members.iter().find_map(|m| m.cause);
    if cause.is_some() {
        for m in members.iter().filter(|m| m.cause.is_some()) {
            let who = m.name;
            match m.cause {
                Some(RestartCause::Collapsed) => {
                    let (ratio, digit) = m.min_pixel_ratio;
                    tracing::warn!(
                        "{who} collapsed: digit {digit} at {ratio:.3} of real MNIST's pixel diversity (floor {}); restarting it from fresh weights",
                        inv.restart_floor
                    );
                }
                Some(RestartCause::Lost) => tracing::warn!(
                    "{who} lost: {:.1}% of its samples are already garbage (restart_lost {}); restarting it from fresh weights",
                    100.0 * m.to_garbage,
                    inv.restart_lost
                ),
                None => {}
            }
        }
        let which: Vec<bool> = members.iter().map(|m| m.cause.is_some()).collect();
        renew(g, Stream::Restart, &which)?;
        let (l, s, n) = train_and_generate(g, model, (inv, anchors), (drawn, e), &mut rng)?;
        (loss, new) = (l, n);
        generator_seconds += s;
        div = reference.against(model, &new, batch)?;
        z = model.logits(&new.images, batch)?;
        (new_u, new_g) = score(&z);
    }
    let mut candidates_to_garbage = None;
    if drawn > inv.samples_per_epoch {
        let keep = most_trusted(&z, &new.labels, inv.samples_per_epoch);
        candidates_to_garbage = Some(new_g);
        new = new.subset(&new.name, &keep);
        z = keep.iter().map(|&i| z[i]).collect();
        div = reference.against(model, &new, batch)?;
        (new_u, new_g) = score(&z);
    }
    // the counterfeits that sit among the real digits stay out of the garbage
    let not_digits = like.map(|l| new.subset(&new.name, &l.not_digits(&new)));
    let mut grng = Stream::Garbage.rng(seed, e);
    reservoir_add(
        garbage,
        not_digits.as_ref().unwrap_or(&new),
        inv.garbage_cap,
        &mut grng,
    );
    let log = InversionLog {
        loss,
        generator_seconds,
        new_samples_mean_u: new_u,
        new_samples_to_garbage: new_g,
        candidates_to_garbage,
        taken_for_digits: not_digits.as_ref().map(|k| new.len() - k.len()),
        new_samples_diversity: within_class_diversity(&new),
        garbage_size: garbage.set.len(),
        diversity: Some(div),
        restarted: cause.is_some(),
        restart_cause: cause,
        restarted_members: match members.len() {
            1 => Vec::new(),
            _ => members
                .iter()
                .filter(|m| m.cause.is_some())
                .map(|m| m.name.to_string())
                .collect(),
        },
    };
    Ok((log, new))
}

/// The typicality term's anchors ([`inversion::class_anchors`], `[10,
/// hidden]` on `device`) under `model`, from the first
/// [`diversity::PER_CLASS`] training `digits` of each digit.
fn anchors(model: &Classifier, digits: &Dataset, batch: usize, device: &Device) -> Result<Tensor> {
    let real = diversity::PerDigit::of(model, digits, batch)?;
    let a = inversion::class_anchors(&real.feats, &real.labels(), real.hidden);
    Tensor::from_vec(a, (ood_core::NUM_DIGITS, real.hidden), device).op("typicality anchors")
}

/// Within-class pixel diversity of generated samples (see
/// [`InversionLog::new_samples_diversity`]); labels are the conditioning digits.
pub fn within_class_diversity(ds: &Dataset) -> f64 {
    let mut per_class = Vec::new();
    for d in 0..ood_core::NUM_DIGITS as u8 {
        let idx: Vec<usize> = (0..ds.len()).filter(|&i| ds.labels[i] == d).collect();
        if idx.len() < 2 {
            continue;
        }
        let n = idx.len() as f64;
        let mut total = 0.0;
        for p in 0..IMG_PIXELS {
            let (mut s1, mut s2) = (0.0f64, 0.0f64);
            for &i in &idx {
                let v = f64::from(ds.images[i * IMG_PIXELS + p]) / 255.0;
                s1 += v;
                s2 += v * v;
            }
            let var = (s2 / n - (s1 / n).powi(2)).max(0.0);
            total += var.sqrt();
        }
        per_class.push(total / IMG_PIXELS as f64);
    }
    per_class.iter().sum::<f64>() / per_class.len().max(1) as f64
}

/// Adds `new` to the bounded garbage set by reservoir sampling: the set always
/// holds a uniform random sample (at most `cap`) of everything generated so far.
pub fn reservoir_add(garbage: &mut GarbageReservoir, new: &Dataset, cap: usize, rng: &mut StdRng) {
    for i in 0..new.len() {
        garbage.seen += 1;
        if garbage.set.len() < cap {
            garbage.set.push(new.image(i), GARBAGE as u8);
        } else {
            let j = rng.random_range(0..garbage.seen) as usize;
            if j < cap {
                garbage.set.images[j * IMG_PIXELS..(j + 1) * IMG_PIXELS].copy_from_slice(new.image(i));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::generator::GeneratorConfig;
    use rand::SeedableRng;

    #[test]
    fn diversity_is_zero_for_copies_and_positive_for_variety() {
        let mut ds = Dataset::default();
        for _ in 0..3 {
            ds.push(&[100; IMG_PIXELS], 4);
        }
        assert_eq!(within_class_diversity(&ds), 0.0);
        ds.push(&[0; IMG_PIXELS], 4);
        ds.push(&[255; IMG_PIXELS], 4);
        // values {100,100,100,0,255}/255: population std over 5 samples
        let v: Vec<f64> = [100.0, 100.0, 100.0, 0.0, 255.0]
            .iter()
            .map(|x| x / 255.0)
            .collect();
        let m = v.iter().sum::<f64>() / 5.0;
        let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 5.0).sqrt();
        assert!((within_class_diversity(&ds) - sd).abs() < 1e-9);
    }

    #[test]
    fn collapse_is_the_least_diverse_digit_under_the_floor() {
        let div = ClassDiversity {
            generated_pixel: vec![5.0, 2.0],
            real_pixel: vec![10.0, 10.0],
            generated_feature: vec![0.1, 0.1],
            real_feature: vec![0.1, 0.1],
        };
        assert!(collapsed(&div, 0.3), "digit 1 at 0.2 of real");
        assert!(!collapsed(&div, 0.2), "at the floor is not under it");
        assert!(!collapsed(&div, 0.0), "floor 0: never");
        assert_eq!(div.min_pixel_ratio(), (0.2, 1));
    }

    #[test]
    fn a_collapsed_generator_restarts_before_a_lost_one_and_lost_needs_its_share() {
        let div = |least: f64| ClassDiversity {
            generated_pixel: vec![5.0, least],
            real_pixel: vec![10.0, 10.0],
            generated_feature: vec![0.1, 0.1],
            real_feature: vec![0.1, 0.1],
        };
        let inv = InversionConfig {
            restart_floor: 0.3,
            restart_lost: 0.9,
            ..InversionConfig::default()
        };
        assert_eq!(
            restart_cause(&div(2.0), 0.99, &inv),
            Some(RestartCause::Collapsed)
        );
        assert_eq!(
            restart_cause(&div(5.0), 0.9, &inv),
            Some(RestartCause::Lost),
            "at the share"
        );
        assert_eq!(restart_cause(&div(5.0), 0.89, &inv), None, "under the share");
        let never = InversionConfig {
            restart_lost: 0.0,
            ..inv.clone()
        };
        assert_eq!(
            restart_cause(&div(5.0), 1.0, &never),
            None,
            "0 = never, even all garbage"
        );
        assert_eq!(
            restart_cause(&div(2.0), 1.0, &never),
            Some(RestartCause::Collapsed)
        );
    }

    #[test]
    fn each_generator_of_a_pair_is_judged_on_its_own_samples() -> Result<()> {
        let dev = crate::model::Device::Cpu;
        let (model, real) = untrained_model_and_noise_digits()?;
        let reference = diversity::Reference::of(&model, &real, 10)?;
        let inv = InversionConfig {
            restart_floor: 0.0,
            restart_lost: 0.9,
            ..InversionConfig::default()
        };
        // logits: the first ten rows garbage, the last ten a digit
        let z: Vec<[f32; NUM_CLASSES]> = (0..20)
            .map(|i| {
                let mut l = [0f32; NUM_CLASSES];
                l[if i < 10 { GARBAGE } else { i % 10 }] = 5.0;
                l
            })
            .collect();
        // the measures of all twenty together
        let all = (&reference.against(&model, &real, 10)?, score(&z).1);
        let rng = &mut StdRng::seed_from_u64(1);
        let pair = Generator::new(&GeneratorConfig::test_pair(0.5), 1e-3, rng, &dev)?;
        let members = member_causes(&pair, (&real, &z), all, (&reference, &model, 10), &inv)?;
        let seen: Vec<_> = members.iter().map(|m| (m.name, m.cause, m.to_garbage)).collect();
        assert_eq!(
            seen,
            vec![
                ("pen-alone generator", Some(RestartCause::Lost), 1.0),
                ("over-digits generator", None, 0.0)
            ]
        );
        // one generator: judged on them all (half garbage: not lost)
        let one = Generator::new(&InversionConfig::default().generator, 1e-3, rng, &dev)?;
        let members = member_causes(&one, (&real, &z), all, (&reference, &model, 10), &inv)?;
        let seen: Vec<_> = members.iter().map(|m| (m.name, m.cause, m.to_garbage)).collect();
        assert_eq!(seen, vec![("generator", None, 0.5)]);
        Ok(())
    }

    #[test]
    fn a_pair_restarts_the_generators_at_fault_and_keeps_the_other() -> Result<()> {
        use crate::error::TensorContext;
        let dev = crate::model::Device::Cpu;
        let cfg = GeneratorConfig::test_pair(0.5);
        let pair = |seed: u64| Generator::new(&cfg, 1e-3, &mut StdRng::seed_from_u64(seed), &dev);
        // (over-digits generator, partner) weights of a pair, by name
        let weights = |g: &Generator| -> Result<(Vec<String>, Vec<String>)> {
            let t = g.tensors()?;
            let sum = |partner: bool| -> Result<Vec<String>> {
                let mut v: Vec<String> = t
                    .iter()
                    .filter(|(k, _)| k.starts_with("pen-partner.") == partner && !k.contains("adam"))
                    .map(|(k, t)| {
                        let s = t.sum_all().and_then(|t| t.to_scalar::<f32>()).op("sum")?;
                        Ok(format!("{k}={s}"))
                    })
                    .collect::<Result<_>>()?;
                v.sort();
                Ok(v)
            };
            Ok((sum(false)?, sum(true)?))
        };
        let (old, new) = (weights(&pair(1)?)?, weights(&pair(2)?)?);
        assert!(old.0 != new.0 && old.1 != new.1);
        for (which, want) in [
            (vec![true, false], (old.0.clone(), new.1.clone())),
            (vec![false, true], (new.0.clone(), old.1.clone())),
            (vec![true, true], new.clone()),
        ] {
            let mut g = pair(1)?;
            replace_members(&mut g, pair(2)?, &which);
            assert_eq!(weights(&g)?, want, "{which:?}");
        }
        // one generator: replaced whole
        let one = |seed: u64| {
            Generator::new(
                &InversionConfig::default().generator,
                1e-3,
                &mut StdRng::seed_from_u64(seed),
                &dev,
            )
        };
        let mut g = one(1)?;
        replace_members(&mut g, one(2)?, &[true]);
        assert_eq!(weights(&g)?, weights(&one(2)?)?);
        Ok(())
    }

    /// An untrained classifier and 20 noise images labelled as digits 0-9
    /// twice over: enough for an epoch's inversion to run end to end.
    fn untrained_model_and_noise_digits() -> Result<(Classifier, Dataset)> {
        use crate::model::{ClassifierConfig, Device};
        let model = Classifier::new(
            &ClassifierConfig::default(),
            &mut StdRng::seed_from_u64(2),
            &Device::Cpu,
        )?;
        let mut real = Dataset::default();
        let mut rng = StdRng::seed_from_u64(3);
        for i in 0..20u8 {
            let px: Vec<u8> = (0..IMG_PIXELS).map(|_| rng.random()).collect();
            real.push(&px, i % 10);
        }
        Ok((model, real))
    }

    /// A generator of `inv`'s architecture on the CPU, weights from `seed`.
    fn generator_of(inv: &InversionConfig, seed: u64) -> Result<Generator> {
        let dev = crate::model::Device::Cpu;
        Generator::new(
            &inv.generator,
            inv.generator_lr,
            &mut StdRng::seed_from_u64(seed),
            &dev,
        )
    }

    /// The epoch tests' inversion: 2 generator steps on batches of 8,
    /// `samples` counterfeits, no restart of a collapsed generator.
    fn small_inversion(samples: usize) -> InversionConfig {
        InversionConfig {
            generator_steps: 2,
            samples_per_epoch: samples,
            batch_size: 8,
            restart_floor: 0.0,
            ..InversionConfig::default()
        }
    }

    /// One inversion epoch (seed 42, epoch 3, batches of 10) of a
    /// generator drawn from `init`, into an empty reservoir, which it returns.
    fn one_epoch(
        model: &Classifier,
        inv: &InversionConfig,
        init: u64,
        data: (&Dataset, &Dataset, Option<&DigitLike>),
    ) -> Result<(InversionLog, Dataset, GarbageReservoir)> {
        let mut g = generator_of(inv, init)?;
        let mut garbage = GarbageReservoir::default();
        let (log, new) = invert(&mut g, model, inv, (42, 3, 10), data, &mut garbage)?;
        Ok((log, new, garbage))
    }

    #[test]
    fn a_fresh_generator_starts_each_epoch_from_the_epochs_own_weights() -> Result<()> {
        let (model, real) = untrained_model_and_noise_digits()?;
        let mut inv = InversionConfig {
            fresh_generator: true,
            ..small_inversion(20)
        };
        // two generators with different histories
        let epoch = |inv: &InversionConfig, init: u64| -> Result<Dataset> {
            let (log, new, _) = one_epoch(&model, inv, init, (&real, &real, None))?;
            assert_eq!(log.garbage_size, 20);
            Ok(new)
        };
        assert_eq!(
            epoch(&inv, 5)?.images,
            epoch(&inv, 6)?.images,
            "fresh: the epoch's samples do not depend on the generator it was given"
        );
        inv.fresh_generator = false;
        assert_ne!(
            epoch(&inv, 5)?.images,
            epoch(&inv, 6)?.images,
            "going on: they do"
        );
        Ok(())
    }

    #[test]
    fn the_typicality_term_acts_against_the_training_digits_anchors() -> Result<()> {
        let (model, real) = untrained_model_and_noise_digits()?;
        // other training digits: the same noise, brighter
        let mut digits = real.clone();
        digits.images.iter_mut().for_each(|p| *p = p.saturating_add(90));
        let epoch = |typicality: f64, digits: &Dataset| -> Result<(InversionLog, Dataset)> {
            let inv = InversionConfig {
                typicality,
                ..small_inversion(20)
            };
            let (log, new, _) = one_epoch(&model, &inv, 5, (&real, digits, None))?;
            Ok((log, new))
        };
        let (off, off_new) = epoch(0.0, &digits)?;
        assert_eq!(off.loss.typ, 0.0, "off: no term");
        let (on, on_new) = epoch(3000.0, &digits)?;
        assert!(on.loss.typ != 0.0, "{:?}", on.loss);
        assert!(
            (on.loss.total - off.loss.total).abs() > 1.0,
            "the weighted term is in the total: {:?} vs {:?}",
            on.loss,
            off.loss
        );
        assert_ne!(on_new.images, off_new.images, "the term moves the generator");
        // the anchors come from the training digits, not the validation ones
        let (val, _) = epoch(3000.0, &real)?;
        assert!(
            (val.loss.typ - on.loss.typ).abs() > 1e-6,
            "{} vs {}",
            val.loss.typ,
            on.loss.typ
        );
        Ok(())
    }

    #[test]
    fn the_most_trusted_are_the_highest_probabilities_of_their_own_digit_in_order() {
        // image i asks for digit labels[i]; its logit for that digit is trust[i]
        let labels = [3u8, 0, 7, 7, 1, 9];
        let trust = [2.0f32, -1.0, 5.0, 0.5, 2.0, 9.0];
        let mut z = vec![[0f32; NUM_CLASSES]; labels.len()];
        for ((row, &y), &t) in z.iter_mut().zip(&labels).zip(&trust) {
            row[usize::from(y)] = t;
        }
        // a large garbage logit lowers the trust of image 5 below everyone's
        z[5][GARBAGE] = 40.0;
        assert_eq!(
            most_trusted(&z, &labels, 3),
            vec![0, 2, 4],
            "5.0, then the tie 2.0 / 2.0"
        );
        assert_eq!(
            most_trusted(&z, &labels, 2),
            vec![0, 2],
            "the tie goes to the earlier image"
        );
        assert_eq!(
            most_trusted(&z, &labels, 6),
            vec![0, 1, 2, 3, 4, 5],
            "all, in order"
        );
        assert_eq!(
            most_trusted(&z, &labels, 9),
            vec![0, 1, 2, 3, 4, 5],
            "no more than there are"
        );
        assert!(most_trusted(&z, &labels, 0).is_empty());
    }

    #[test]
    fn counterfeits_taken_for_digits_stay_out_of_the_garbage_and_in_the_grid() -> Result<()> {
        let (model, real) = untrained_model_and_noise_digits()?;
        let inv = InversionConfig {
            digit_like: 0.9,
            ..small_inversion(20)
        };
        let epoch = |like: Option<&DigitLike>| one_epoch(&model, &inv, 5, (&real, &real, like));
        let (off, drawn, all_in) = epoch(None)?;
        assert_eq!(off.taken_for_digits, None, "off: nothing to report");
        assert_eq!(all_in.set.images, drawn.images, "off: every counterfeit joins");
        // training digits: copies of the first 10 counterfeits and the noise
        // digits (the reference), then 3 noise digits a little changed (the
        // threshold: a sixth of a pixel's range)
        let mut digits = drawn.subset("digits", &(0..10).collect::<Vec<_>>());
        for i in 0..real.len() {
            digits.push(real.image(i), real.labels[i]);
        }
        for i in 0..3 {
            let mut px = real.image(i).to_vec();
            px[0] = if px[0] > 127 { px[0] - 40 } else { px[0] + 40 };
            digits.push(&px, real.labels[i]);
        }
        let like = DigitLike::of(&digits, 0.9)?;
        // (|a|^2 + |r|^2 - 2 a.r in f32 on noise images of norm ~16: a few thousandths off)
        assert!((like.threshold - 40.0 / 255.0).abs() < 5e-3, "{}", like.threshold);
        let (on, same, garbage) = epoch(Some(&like))?;
        assert_eq!(
            same.images, drawn.images,
            "the same counterfeits drawn, all of them returned"
        );
        assert_eq!(on.taken_for_digits, Some(10), "the copied ones and no other");
        let rest = drawn.subset("rest", &(10..20).collect::<Vec<_>>());
        assert_eq!(garbage.set.images, rest.images, "the others join the garbage");
        assert_eq!((garbage.seen, on.garbage_size), (10, 10));
        Ok(())
    }

    #[test]
    fn drawing_more_candidates_keeps_the_epochs_count_of_the_most_trusted() -> Result<()> {
        let (model, real) = untrained_model_and_noise_digits()?;
        let inv = InversionConfig {
            candidates: 30,
            ..small_inversion(12)
        };
        let epoch = |inv: &InversionConfig| -> Result<(InversionLog, Dataset)> {
            let (log, new, garbage) = one_epoch(&model, inv, 5, (&real, &real, None))?;
            let n = inv.samples_per_epoch;
            assert_eq!(
                (garbage.set.len(), garbage.seen),
                (n, n as u64),
                "only the kept join"
            );
            Ok((log, new))
        };
        let (log, kept) = epoch(&inv)?;
        assert_eq!(kept.len(), 12);
        assert!(log.candidates_to_garbage.is_some());
        // the same 30 drawn without selection: the kept ones are the 12 most trusted of them
        let (all_log, all) = epoch(&InversionConfig {
            samples_per_epoch: 30,
            candidates: 0,
            ..inv.clone()
        })?;
        assert_eq!(
            all_log.candidates_to_garbage, None,
            "every sample kept: nothing to report"
        );
        assert_eq!(log.candidates_to_garbage, Some(all_log.new_samples_to_garbage));
        let z = model.logits(&all.images, 10)?;
        let want = all.subset(&all.name, &most_trusted(&z, &all.labels, 12));
        assert_eq!((kept.images, kept.labels), (want.images, want.labels));
        Ok(())
    }

    #[test]
    fn reservoir_keeps_the_cap_and_counts_everything() {
        let mut g = GarbageReservoir::default();
        let mut new = Dataset::default();
        for i in 0..10u8 {
            new.push(&[i; IMG_PIXELS], 3);
        }
        let mut rng = StdRng::seed_from_u64(1);
        reservoir_add(&mut g, &new, 4, &mut rng);
        reservoir_add(&mut g, &new, 4, &mut rng);
        assert_eq!((g.set.len(), g.seen), (4, 20));
        assert!(
            g.set.labels.iter().all(|&l| l == GARBAGE as u8),
            "relabelled as garbage"
        );
    }
}
