//! The data of a run: MNIST split into training digits and held-out
//! validation digits, the two noise families seeding the garbage class, the
//! evaluation sets (one list, from `ood_data::sets`) and their quick heads.

use crate::config::TrainConfig;
use crate::data::{fetch::Sources, synth, Dataset, EvalSets};
use crate::error::Result;
use crate::seeds::Stream;
use ood_core::IMG_PIXELS;
use rand::rngs::StdRng;
use std::path::PathBuf;

/// Everything a run trains and evaluates on, loaded before any long work.
#[derive(Debug)]
pub struct TrainingData {
    /// MNIST training digits (the train split less the validation digits).
    pub digits: Dataset,
    /// Held-out MNIST validation digits: never trained on; every choice
    /// (offset, thresholds) is made on them.
    pub val: Dataset,
    /// Garbage seeds: Gaussian-noise images.
    pub noise: Dataset,
    /// Garbage seeds: smooth multi-scale noise and blobs.
    pub smooth: Dataset,
    /// Garbage seeds: pen scribbles.
    pub scribbles: Dataset,
    /// Garbage seeds: training digits turned or mirrored into no digit.
    pub turned: Dataset,
    /// Training digits as a scan or a camera delivers them, labelled as the
    /// digits they are (`data.scanned_count`: 6,000 in `scanned`, none in
    /// the presets before it); a digit source of its own.
    pub scanned: Dataset,
    /// MNIST test and the OOD sets (reported only).
    pub sets: EvalSets,
    /// The first `eval.per_epoch` images of MNIST test, for per-epoch curves.
    pub quick_id: Dataset,
    /// The first `eval.per_epoch` images of each OOD set.
    pub quick_ood: Vec<Dataset>,
    /// Synthetic near-OOD validation sets made from the validation digits
    /// and pen strokes (`ood_data::nearood`): never trained on, used for
    /// choices where the OOD test sets must not be.
    pub near_ood: Vec<Dataset>,
    /// The same families as the device sees them: each image through the
    /// device's normalisation (`ood_data::normalize::drawing`: the ink's
    /// box fitted into 20x20 and centred), named `device-<family>`.
    pub near_ood_device: Vec<Dataset>,
    /// The validation digits as a 105x105 scan delivers them to the device
    /// ([`scanned_validation`]), named `device-digits`: accepted as the
    /// right digit or not, the other side of `near_ood_device` (a model
    /// that rejects everything the device normalised would look good there).
    pub val_scanned: Dataset,
    /// Digits drawn by the pen and hand of the `symbols` family
    /// (`ood_data::nearood::pen_digits`, [`pen_digits`]), named
    /// `val-pen-digits`: accepted as the right digit or not, the other side
    /// of `val-symbols` (a model that learned "pen-drawn = garbage" would
    /// look good there).
    pub pen_digits: Dataset,
    /// The first `eval.near_ood` validation digits photographed on a lit
    /// page and brought back by the device's own normalisation
    /// ([`photographed_validation`]), named `device-photos`: accepted as
    /// the right digit or not, the camera's side of `val_scanned` (the
    /// edge's photo test, on validation digits).
    pub val_photographed: Dataset,
}

impl TrainingData {
    /// Loads and draws everything (the extra `--ood` sets first, so a
    /// mistake in what the user named is reported before any long work).
    pub fn load(cfg: &TrainConfig, sources: &Sources, extra: &[(String, PathBuf)]) -> Result<Self> {
        let extra = load_extra_sets(extra)?;
        let (mnist_train, mnist_test) = sources.mnist()?;
        let (digits, val, mut data_rng) = split_with_rng(cfg, &mnist_train)?;
        let sets = eval_sets(cfg, sources, mnist_test, extra)?;
        // the two noise families stay separate sources (per-source balancing)
        let d = &cfg.data;
        let noise = synth::gaussian(
            "garbage-noise",
            d.noise_count,
            d.noise_mean,
            d.noise_std,
            &mut data_rng,
        );
        let smooth = synth::smooth("garbage-smooth", d.smooth_noise_count, &mut data_rng);
        let mut scribbles = ood_data::pen::scribbles(
            "garbage-scribbles",
            d.scribble_count,
            d.normalize_scribbles,
            &mut data_rng,
        );
        let mut turned = ood_data::turned::turned(
            "garbage-turned",
            d.turned_count,
            &digits,
            d.turned_diagonal,
            &mut data_rng,
        );
        let mut scanned = scanned_digits(&digits, d.scanned_count, &mut data_rng);
        if d.photographed_count > 0 {
            scanned.append(&photographed_digits(&digits, d.photographed_count, cfg.seed));
        }
        if d.pen_count > 0 {
            let mut rng = Stream::Pens.rng(cfg.seed, 0);
            // drawn in this order from the stream: digits, turned, scribbles
            let digit_pens = redrawn(&digits, "digits-pens", d.pen_count, &mut rng);
            let turned_pens = redrawn(&turned, "garbage-turned-pens", d.pen_count, &mut rng);
            scanned.append(&digit_pens);
            turned.append(&turned_pens);
            if d.pen_scribbles {
                scribbles.append(&redrawn(
                    &scribbles,
                    "garbage-scribbles-pens",
                    d.pen_count,
                    &mut rng,
                ));
            }
        }
        let quick_id = head(&sets.id, cfg.eval.per_epoch);
        let quick_ood = sets.ood.iter().map(|d| head(d, cfg.eval.per_epoch)).collect();
        let near_ood = near_ood_sets(cfg, &val);
        let near_ood_device = near_ood.iter().map(device_view).collect();
        let val_scanned = scanned_validation(&val);
        let pen_digits = pen_digits(cfg);
        let val_photographed = photographed_validation(cfg, &val);
        let data = Self {
            digits,
            val,
            noise,
            smooth,
            scribbles,
            turned,
            scanned,
            sets,
            quick_id,
            quick_ood,
            near_ood,
            near_ood_device,
            val_scanned,
            pen_digits,
            val_photographed,
        };
        data.log(cfg);
        Ok(data)
    }

    /// The digit sources: the training digits and their scanned copies
    /// (empty ones included, as they add nothing to an epoch).
    pub fn digit_sources(&self) -> [&Dataset; 2] {
        [&self.digits, &self.scanned]
    }

    /// The garbage sources drawn before training (each its own source of
    /// the per-source balance; empty ones included).
    pub fn garbage_seeds(&self) -> [&Dataset; 4] {
        [&self.noise, &self.smooth, &self.scribbles, &self.turned]
    }

    /// Images in all the garbage sources drawn before training.
    pub fn garbage_seed_images(&self) -> usize {
        self.garbage_seeds().iter().map(|d| d.len()).sum()
    }

    fn log(&self, cfg: &TrainConfig) {
        let generated = if cfg.inversion.epochs > 0 {
            cfg.inversion.garbage_cap
        } else {
            0
        };
        let ood: Vec<String> = self
            .sets
            .ood
            .iter()
            .map(|d| format!("{} ({})", d.name, d.len()))
            .collect();
        let scanned = if self.scanned.is_empty() {
            String::new()
        } else {
            format!(
                " (+ {} of them scanned, photographed or redrawn)",
                self.scanned.len()
            )
        };
        tracing::info!(
            "train: {} digits{scanned} + {} noise garbage (+ up to {generated} generated), validation: {}, OOD sets: {}",
            self.digits.len(),
            self.garbage_seed_images(),
            self.val.len(),
            ood.join(", ")
        );
    }
}

/// `n` random training digits through `ood_data::normalize::scan_fitted`
/// (the device's scan without its last stretch to full ink, as the
/// published model was trained) at a random enlargement of 2 to 8 times,
/// labels kept.
pub fn scanned_digits(digits: &Dataset, n: usize, rng: &mut StdRng) -> Dataset {
    use rand::Rng;
    digits_through(
        "digits-scanned",
        digits,
        n,
        rng,
        |rng| rng.random_range(2.0..8.0f32),
        |img, &factor| ood_data::normalize::scan_fitted(img, factor),
    )
}

/// `n` random training digits, labels kept, named `name`: from `rng` in
/// turn each digit's index and then `draw`'s parameters, and once every
/// draw is made, each digit through `make` with its parameters (on every
/// core: the draws alone decide the result).
fn digits_through<P: Sync>(
    name: &str,
    digits: &Dataset,
    n: usize,
    rng: &mut StdRng,
    mut draw: impl FnMut(&mut StdRng) -> P,
    make: impl Fn(&[u8; IMG_PIXELS], &P) -> [u8; IMG_PIXELS] + Sync,
) -> Dataset {
    use rand::Rng;
    if digits.is_empty() {
        return Dataset {
            name: name.into(),
            ..Default::default()
        };
    }
    let picks: Vec<(usize, P)> = (0..n)
        .map(|_| {
            let i = rng.random_range(0..digits.len());
            (i, draw(rng))
        })
        .collect();
    let images = ood_data::normalize::images_in_parallel(n, |k| {
        let (i, p) = &picks[k];
        let mut img = [0u8; IMG_PIXELS];
        img.copy_from_slice(digits.image(*i));
        make(&img, p)
    });
    Dataset {
        name: name.into(),
        images,
        labels: picks.iter().map(|&(i, _)| digits.labels[i]).collect(),
    }
}

/// `n` random training digits photographed on a lit page and brought back
/// by the device's normalisation (`ood_data::normalize::photo`), labels kept;
/// the digits and the pages come from their own stream of the run's `seed`,
/// so every other set of the run is the same with or without them.
pub fn photographed_digits(digits: &Dataset, n: usize, seed: u64) -> Dataset {
    let mut rng = Stream::PhotoTrain.rng(seed, 0);
    digits_through(
        "digits-photographed",
        digits,
        n,
        &mut rng,
        ood_data::normalize::Photo::random,
        ood_data::normalize::photo,
    )
}

/// Smallest and largest pen radius of [`redrawn`] (pixels of
/// `ood_data::pen::REDRAW_SCALE`'s enlargement; MNIST's own: about 4.5).
pub const PEN_RADII: (f32, f32) = (1.0, 9.0);

/// `n` random images of `from`, labels kept, named `name`, each redrawn
/// (`ood_data::pen::redraw`) with a pen whose radius is log-uniform over
/// [`PEN_RADII`], all drawn from `rng`.
pub fn redrawn(from: &Dataset, name: &str, n: usize, rng: &mut StdRng) -> Dataset {
    use rand::Rng;
    let (lo, hi) = (PEN_RADII.0.ln(), PEN_RADII.1.ln());
    digits_through(
        name,
        from,
        n,
        rng,
        |rng| rng.random_range(lo..hi).exp(),
        |img, &r| ood_data::pen::redraw(img, r),
    )
}

/// MNIST test, the standard OOD sets and the noise sets of a run with `cfg`
/// (the noise drawn from the run's own stream), then `extra`.
pub fn eval_sets(
    cfg: &TrainConfig,
    sources: &Sources,
    mnist_test: Dataset,
    extra: Vec<Dataset>,
) -> Result<EvalSets> {
    let mut rng = Stream::EvalNoise.rng(cfg.seed, 0);
    Ok(EvalSets::load(
        sources,
        mnist_test,
        Some((cfg.eval.noise_sets, &mut rng)),
        extra,
    )?)
}

/// The synthetic near-OOD validation sets of a run with `cfg`, made from
/// its validation digits `val` (from the run's own stream).
pub fn near_ood_sets(cfg: &TrainConfig, val: &Dataset) -> Vec<Dataset> {
    let mut rng = Stream::NearOod.rng(cfg.seed, 0);
    ood_data::nearood::near_ood_sets("val", val, cfg.eval.near_ood, &mut rng)
}

/// `eval.near_ood` pen-drawn digits, `val-pen-digits`, from their own stream.
pub fn pen_digits(cfg: &TrainConfig) -> Dataset {
    let mut rng = Stream::PenDigits.rng(cfg.seed, 0);
    ood_data::nearood::pen_digits("val-pen-digits", cfg.eval.near_ood, &mut rng)
}

/// A near-OOD family (`val-<family>`) as the device sees it
/// (`device-<family>`).
pub fn device_view(set: &Dataset) -> Dataset {
    let family = set.name.strip_prefix("val-").unwrap_or(&set.name);
    ood_data::normalize::dataset(set, &format!("device-{family}"))
}

/// Enlargement of [`scanned_validation`]: 28 pixels to 105, the size of the
/// scans of the edge's device-path test (`edge/tests/it/shipped.rs`).
pub const SCAN_FACTOR: f32 = 105.0 / 28.0;

/// Every validation digit through `ood_data::normalize::scan` at
/// [`SCAN_FACTOR`], labels kept, named `device-digits`.
pub fn scanned_validation(val: &Dataset) -> Dataset {
    ood_data::normalize::dataset_with(val, "device-digits", |_, img| {
        ood_data::normalize::scan(img, SCAN_FACTOR)
    })
}

/// The first `eval.near_ood` validation digits through
/// `ood_data::normalize::photo`, each on a page of its own
/// (`ood_data::normalize::Photo::random`, from its own stream), labels kept,
/// named `device-photos`.
pub fn photographed_validation(cfg: &TrainConfig, val: &Dataset) -> Dataset {
    let mut rng = Stream::PhotoDigits.rng(cfg.seed, 0);
    let digits = head(val, cfg.eval.near_ood);
    let pages: Vec<_> = (0..digits.len())
        .map(|_| ood_data::normalize::Photo::random(&mut rng))
        .collect();
    ood_data::normalize::dataset_with(&digits, "device-photos", |i, img| {
        ood_data::normalize::photo(img, &pages[i])
    })
}

/// Loads every `--ood NAME=PATH` set (any error is fatal).
pub fn load_extra_sets(extra: &[(String, PathBuf)]) -> Result<Vec<Dataset>> {
    extra
        .iter()
        .map(|(name, path)| Ok(crate::data::load_any(name, path)?))
        .collect()
}

/// Parses `NAME=PATH`.
pub fn parse_ood_arg(s: &str) -> std::result::Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((n, p)) if !n.is_empty() && !p.is_empty() => Ok((n.to_string(), PathBuf::from(p))),
        _ => Err(format!(
            "expected NAME=PATH (e.g. svhn=test_32x32.mat), got {s:?}"
        )),
    }
}

/// MNIST train split into (training digits, held-out validation digits),
/// exactly as the run with `cfg` split it.
pub fn validation_split(cfg: &TrainConfig, mnist_train: &Dataset) -> Result<(Dataset, Dataset)> {
    let (digits, val, _) = split_with_rng(cfg, mnist_train)?;
    Ok((digits, val))
}

fn split_with_rng(cfg: &TrainConfig, mnist_train: &Dataset) -> Result<(Dataset, Dataset, StdRng)> {
    let mut data_rng = Stream::Data.rng(cfg.seed, 0);
    let (digits, val) = mnist_train.split(cfg.data.validation, &mut data_rng)?;
    Ok((digits, val, data_rng))
}

/// The first `n` images of `ds`.
pub fn head(ds: &Dataset, n: usize) -> Dataset {
    let n = n.min(ds.len());
    Dataset {
        name: ds.name.clone(),
        images: ds.images[..n * IMG_PIXELS].to_vec(),
        labels: ds.labels[..n].to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ood_args() {
        assert_eq!(
            parse_ood_arg("svhn=/x/t.mat"),
            Ok(("svhn".into(), PathBuf::from("/x/t.mat")))
        );
        assert!(parse_ood_arg("svhn").is_err());
        assert!(parse_ood_arg("=x").is_err());
    }

    fn two_digits() -> Dataset {
        let mut ds = Dataset::default();
        for (label, x) in [(1u8, 8usize), (7, 16)] {
            let mut img = vec![0u8; IMG_PIXELS];
            for y in 6..22 {
                img[y * 28 + x] = 255;
                img[y * 28 + x + 1] = 255;
            }
            ds.push(&img, label);
        }
        ds
    }

    #[test]
    fn redrawn_images_keep_their_labels_and_are_their_sources_redrawn() {
        use rand::SeedableRng;
        // a 1 and a 7 of other shapes (fitting and centring make any two bars alike)
        let mut digits = Dataset::default();
        digits.push(&ood_data::pen::draw(&[vec![(14.0, 5.0), (14.0, 23.0)]]), 1);
        digits.push(
            &ood_data::pen::draw(&[vec![(7.0, 5.0), (21.0, 5.0), (11.0, 23.0)]]),
            7,
        );
        let draw = |seed| redrawn(&digits, "digits-pens", 8, &mut StdRng::seed_from_u64(seed));
        let a = draw(5);
        assert_eq!((a.name.as_str(), a.len()), ("digits-pens", 8));
        assert_eq!(a, draw(5), "same stream, same drawings");
        assert_ne!(a.images, draw(6).images);
        // each source redrawn at radii across the range: every radius an
        // image could have been drawn with lies among them
        let redrawings: Vec<Vec<[u8; IMG_PIXELS]>> = (0..digits.len())
            .map(|j| {
                let mut img = [0u8; IMG_PIXELS];
                img.copy_from_slice(digits.image(j));
                let (lo, hi) = PEN_RADII;
                (0..=40)
                    .map(|k| lo * (hi / lo).powf(k as f32 / 40.0))
                    .map(|r| ood_data::pen::redraw(&img, r))
                    .collect()
            })
            .collect();
        for i in 0..a.len() {
            let j = usize::from(a.labels[i] == 7);
            assert!(a.labels[i] == 1 || a.labels[i] == 7);
            assert!(a.image(i).contains(&255), "full ink");
            // a redrawing of its own source: closer to it than to the other digit's
            let d = |k: usize| -> u32 {
                redrawings[k]
                    .iter()
                    .map(|r| {
                        r.iter()
                            .zip(a.image(i))
                            .map(|(&x, &y)| u32::from(x.abs_diff(y)))
                            .sum()
                    })
                    .min()
                    .unwrap_or(u32::MAX)
            };
            assert!(d(j) < d(1 - j), "image {i}");
        }
        assert!(redrawn(&Dataset::default(), "x", 3, &mut StdRng::seed_from_u64(1)).is_empty());
    }

    #[test]
    fn photographed_digits_keep_their_labels_and_repeat_from_the_seed() {
        let digits = two_digits();
        let a = photographed_digits(&digits, 6, 42);
        assert_eq!((a.name.as_str(), a.len()), ("digits-photographed", 6));
        assert_eq!(a, photographed_digits(&digits, 6, 42), "same seed, same photos");
        assert_ne!(a.images, photographed_digits(&digits, 6, 43).images);
        for i in 0..a.len() {
            // each is one of the two digits, photographed and normalised
            assert!(a.labels[i] == 1 || a.labels[i] == 7);
            assert!(a.image(i).iter().any(|&v| v > 128), "ink came back");
            assert!(
                (0..2).all(|j| a.image(i) != digits.image(j)),
                "a photo, not the digit"
            );
        }
        assert!(photographed_digits(&Dataset::default(), 3, 42).is_empty());
    }

    #[test]
    fn scanned_digits_keep_their_labels_and_are_the_scans_of_training_digits() {
        use rand::SeedableRng;
        let digits = two_digits();
        let val = scanned_validation(&digits);
        assert_eq!((val.name.as_str(), val.len()), ("device-digits", 2));
        assert_eq!(val.labels, digits.labels);
        let mut img = [0u8; IMG_PIXELS];
        img.copy_from_slice(digits.image(1));
        assert_eq!(val.image(1), &ood_data::normalize::scan(&img, SCAN_FACTOR)[..]);
        let draw = |seed| scanned_digits(&digits, 50, &mut StdRng::seed_from_u64(seed));
        let a = draw(3);
        assert_eq!(a.len(), 50);
        assert!(a.labels.iter().all(|&l| l == 1 || l == 7));
        assert!(
            a.labels.contains(&1) && a.labels.contains(&7),
            "both digits drawn"
        );
        assert_eq!(a, draw(3), "same seed, same scans");
        assert!(scanned_digits(&Dataset::default(), 5, &mut StdRng::seed_from_u64(1)).is_empty());
        assert!(scanned_digits(&digits, 0, &mut StdRng::seed_from_u64(1)).is_empty());
    }
}
