//! Training configuration: plain serde data with documented defaults.
//!
//! Presets live in `configs/*.toml` (embedded in the binary, copied by users);
//! unknown keys are refused, and [`TrainConfig::validate`] checks ranges before
//! anything runs.
//!
//! (Over 400 lines on purpose: one schema, each field with its documented
//! default and its range check; split, the two would drift apart.)

use crate::error::{Error, Result};
use crate::model::generator::GeneratorConfig;
use crate::model::inversion::LossWeights;
use crate::model::ClassifierConfig;
use serde::{Deserialize, Serialize};

/// Data preparation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// MNIST train images held out as the validation split (default 5000).
    pub validation: usize,
    /// Initial garbage-class images of Gaussian noise (default 6000).
    pub noise_count: usize,
    /// Mean of the noise pixels on the `[0, 1]` scale (default 0.5).
    pub noise_mean: f32,
    /// Std of the noise pixels, clamped to `[0, 1]` after sampling (default 0.3).
    pub noise_std: f32,
    /// Random translation of training images by up to this many pixels (default 2).
    pub augment_shift: usize,
    /// Initial garbage-class images of smooth multi-scale noise and blobs
    /// (`data::synth::smooth`; default 6000; the seed report used none, so
    /// its presets `exp1`..`exp4` set 0).
    pub smooth_noise_count: usize,
    /// Initial garbage images of pen scribbles at MNIST's stroke width
    /// (`data::pen::scribbles`; default 6000, as in the `diverse` preset;
    /// 0 in `exp2-smooth` and the seed's presets).
    pub scribble_count: usize,
    /// Draw each scribble at the geometry the device gives what it sees (the
    /// ink's box fitted into 20x20, centred by its centre of mass, the pen
    /// scaled with it; drawn anew, not resampled: `data::pen::draw_fitted`),
    /// so the garbage has the geometry of the device's inputs (default false, as in
    /// `diverse`; true in the `device` preset, which measured no better on
    /// the validation signals: README, "Garbage as the device sees it").
    pub normalize_scribbles: bool,
    /// Initial garbage images of training digits turned or mirrored into
    /// shapes that are no digit (`data::turned`: a 3 mirrored, an 8 on its
    /// side, a 7 upside down; default 6000, as in the `turned`, `tilted` and
    /// `scanned` presets; 0 in `diverse` and the presets before it).
    pub turned_count: usize,
    /// Also turn digits by eighths of a turn (45 and 135 degrees; only the
    /// pairs that read as no digit: `data::turned::DIAGONAL_TURNS`), drawn
    /// with the quarter turns and mirrors from the same `turned_count`
    /// (default true, as in `scanned`; false in `turned` and the presets
    /// before it; `tilted` turns by eighths without the scanned digits,
    /// measured and not adopted: README, "Digits at a slant").
    pub turned_diagonal: bool,
    /// Training digits also shown as a scan or a camera delivers them
    /// (enlarged 2-8 times with smoothing, then the device's normalisation:
    /// `ood_data::normalize::scan`), labelled as the digits they are, so
    /// that soft strokes are no sign of garbage (default 6000, as in
    /// `scanned`; 0 = none, as in the presets before it).
    pub scanned_count: usize,
    /// Training digits also photographed on a lit page and brought back by
    /// the device's normalisation (`ood_data::normalize::photo`, each page
    /// drawn anew from its own stream), labelled as the digits they are and
    /// trained on with the scanned ones (default 0 = none; not written to a
    /// config when 0).
    #[serde(skip_serializing_if = "is_zero_count")]
    pub photographed_count: usize,
    /// Training digits redrawn with pens of other widths (their centre
    /// lines drawn anew with a round pen of radius 1-9 pixels of the
    /// 4-times enlargement, log-uniform; MNIST's is about 4.5:
    /// `ood_data::pen::redraw`), labelled as the digits they are and
    /// trained on with the scanned ones; and as many turned digits
    /// (`turned_count` must be > 0) redrawn the same way, as garbage with
    /// the turned ones, so that a pen's width is no sign either way.
    /// Both from their own stream (default 0 = none; not written to a
    /// config when 0).
    #[serde(skip_serializing_if = "is_zero_count")]
    pub pen_count: usize,
    /// With `pen_count`, as many scribbles (`scribble_count` must be > 0)
    /// redrawn with the same pens join the scribbles as garbage, so that
    /// strokes of any width that wander are garbage too (default false;
    /// not written to a config when false).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pen_scribbles: bool,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            validation: 5000,
            noise_count: 6000,
            noise_mean: 0.5,
            noise_std: 0.3,
            augment_shift: 2,
            smooth_noise_count: 6000,
            scribble_count: 6000,
            normalize_scribbles: false,
            turned_count: 6000,
            turned_diagonal: true,
            scanned_count: 6000,
            photographed_count: 0,
            pen_count: 0,
            pen_scribbles: false,
        }
    }
}

/// Optimisation of the classifier. `epochs` are the pre-training epochs
/// (garbage = noise only); the learning rate follows one cosine decay over
/// pre-training plus inversion epochs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    /// Pre-training passes before inversion starts (default 3).
    pub epochs: usize,
    /// Images per step (default 64).
    pub batch_size: usize,
    /// Initial Adam learning rate (default 0.002), cosine-decayed per step.
    pub lr: f64,
    /// Final learning rate (default 5e-5).
    pub lr_min: f64,
    /// Decoupled weight decay (default 0).
    pub weight_decay: f64,
    /// How the garbage class's share of the loss is spread over its sources
    /// (`"pooled"`, the seed's, or `"per-source"`, the default; see
    /// [`GarbageBalance`]).
    pub garbage_balance: GarbageBalance,
    /// With `"per-source"`: the share of the garbage class's weight carried
    /// by the generated set in inversion epochs, the rest split equally over
    /// the other garbage sources (default 0 = an equal share for every
    /// source, the generated set included).
    pub generated_share: f64,
    /// With `"per-source"`: the share of the garbage class's weight carried
    /// by the turned digits (`data.turned_count`; real handwriting turned
    /// into no digit), the rest split equally over the other garbage sources
    /// beside `generated_share` (default 0 = an equal share; not written to
    /// a config when 0).
    #[serde(skip_serializing_if = "is_zero")]
    pub turned_share: f64,
    /// Share of each garbage seed source (noise, smooth noise, scribbles,
    /// turned digits: every source whose images are all garbage, the
    /// generated set excepted) that an epoch trains on, drawn afresh each
    /// epoch; the class and source weights follow the epoch's counts
    /// (default 1 = every image every epoch; not written to a config when 1).
    #[serde(skip_serializing_if = "is_one")]
    pub seed_garbage_share: f64,
    /// Hard seed garbage: with `seed_garbage_share` under 1, each garbage
    /// seed source draws this many times its epoch share at random (at most
    /// all of it) and the epoch trains on the share of them the classifier
    /// of the moment finds the most digit-like (largest digit logit minus
    /// the garbage logit; `train::epoch_index`). Default 1 = the plain draw;
    /// not written to a config when 1.
    #[serde(skip_serializing_if = "is_one_count")]
    pub hard_seed_pool: usize,
    /// The shipped classifier is the mean of the weights at the end of the
    /// run's last this many epochs (weight averaging along the trajectory;
    /// `model::average`), not the last epoch's alone (default 0 = off: the
    /// last epoch's weights; 1 is the same). At most the run's epochs; not
    /// written to a config when 0.
    #[serde(skip_serializing_if = "is_zero_count")]
    pub average_epochs: usize,
}

/// How the class-weighted cross-entropy treats the garbage class, which is a
/// union of sources (Gaussian noise, smooth noise, generated images).
///
/// Either way every class, garbage included, carries the same total weight
/// `N / K` per epoch (weights `w_c = N / (K * n_c)` from the current counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GarbageBalance {
    /// The seed's rule: one weight for every garbage image, so a source's
    /// share of the garbage class is its share of the images. As the
    /// generated set grows (1000 a epoch) it crowds out the noise seeds.
    Pooled,
    /// The same balancing applied inside the garbage class: each non-empty
    /// garbage source carries an equal share of the class's weight, however
    /// many images it has, so no family of non-digits is forgotten as another
    /// grows.
    PerSource,
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self {
            epochs: 3,
            batch_size: 64,
            lr: 2e-3,
            lr_min: 5e-5,
            weight_decay: 0.0,
            garbage_balance: GarbageBalance::PerSource,
            generated_share: 0.0,
            turned_share: 0.0,
            seed_garbage_share: 1.0,
            hard_seed_pool: 1,
            average_epochs: 0,
        }
    }
}

/// Network inversion: the garbage-class loop that follows pre-training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InversionConfig {
    /// Inversion epochs (0: baseline only). Each = one classifier epoch, then
    /// `generator_steps` generator updates, then `samples_per_epoch` new
    /// garbage images (default 20, the seed's best experiment).
    pub epochs: usize,
    /// Weight of KL(P || Q) (seed: 500).
    pub alpha: f64,
    /// Weight of CE(Q, y) (seed: 500).
    pub beta: f64,
    /// Weight of the mean pairwise feature cosine similarity (seed: 6000).
    pub gamma: f64,
    /// Weight of the feature orthogonality term (seed: 10).
    pub delta: f64,
    /// Weight of the mode-seeking term over pairs of latents that share a
    /// condition (MSGAN; `model::inversion`; default 500, as in the
    /// `diverse` preset; 0 = off, as in the seed and `exp2-smooth`).
    pub mode_seeking: f64,
    /// Restart the generator (fresh weights, logged) when an epoch's samples
    /// fall below this share of real MNIST's same-class pixel diversity in
    /// some digit (default 0.3, as in the `diverse` preset; 0 = never).
    pub restart_floor: f64,
    /// Restart the generator (fresh weights, logged) when at least this share
    /// of an epoch's samples is already garbage to the classifier it inverts:
    /// a lost generator, whose counterfeits teach nothing new (0 = never, the
    /// default; the `pen` preset 0.9). Not written to a config when 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub restart_lost: f64,
    /// Weight of the ink term: each generated image's mean pixel value above
    /// MNIST's (0.1307), so that inversion searches pen strokes on a dark
    /// page rather than bright clutter (`model::inversion`; 0 = off, the seed).
    pub ink: f64,
    /// Weight of the typicality term: the cosine between a counterfeit's
    /// penultimate features and the mean direction of real training digits'
    /// features of the digit it was asked for (the first 100 training digits
    /// of each digit, measured with the frozen classifier at every inversion
    /// epoch), so that inversion searches inputs the classifier trusts away
    /// from where real digits of that digit sit (`model::inversion`; 0 = off,
    /// the seed and the default). The counterfeit check of the deployed
    /// decision stays a plain inversion. A negative weight pulls toward
    /// them instead. Not written to a config when 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub typicality: f64,
    /// Start every inversion epoch from a fresh generator (new weights from
    /// the epoch's own stream) instead of going on with the last epoch's, so
    /// each epoch searches the classifier anew rather than tracking one mode
    /// (default false, as in the seed).
    pub fresh_generator: bool,
    /// Share of the generator's conditions that ask for two digits at once
    /// (`model::inversion::sample_conditions`: the asked digit `y` about 0.7,
    /// a second digit about 0.25), so that inversion also searches drawings
    /// the classifier reads as one digit with part of another (0 = every
    /// condition asks for one digit, the seed and the default). The
    /// counterfeit check of the deployed decision always asks for one digit.
    /// Not written to a config when 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub two_digit_share: f64,
    /// Generator batch size (seed: 64).
    pub batch_size: usize,
    /// Generator updates per epoch (seed: 250).
    pub generator_steps: usize,
    /// Generated images added to the garbage class per epoch (seed: 1000).
    pub samples_per_epoch: usize,
    /// Samples the generator draws per epoch, of which the
    /// `samples_per_epoch` that the classifier they were made for trusts most
    /// as their conditioning digit join the garbage (`run::invert`), so the
    /// garbage gets counterfeits rather than drawings that classifier already
    /// rejects (0 = keep every sample, `samples_per_epoch` of them: the seed
    /// and the default). At least `samples_per_epoch` when set. The
    /// counterfeit check of the deployed decision keeps every sample. Not
    /// written to a config when 0.
    #[serde(skip_serializing_if = "is_zero_count")]
    pub candidates: usize,
    /// Counterfeits that sit among the real digits stay out of the garbage:
    /// one whose pixel distance to its nearest training digit is under this
    /// quantile of the same distance for held-out training digits (10,000
    /// training digits the reference, the next 1,000 the quantile's; no
    /// validation digit; `run::digit_like`) is taken for a digit. Late in a
    /// run, inverting a good classifier yields digits, and labelling them
    /// garbage teaches it to distrust digits drawn a little differently.
    /// 0 = every counterfeit joins the garbage (the seed and the default);
    /// below 1. The sample grids show every drawn counterfeit. Not written
    /// to a config when 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub digit_like: f64,
    /// Generator Adam learning rate (default 0.001, beta1 0.5).
    pub generator_lr: f64,
    /// Most generated images kept in the garbage class (default 20000); past
    /// it, reservoir sampling keeps a uniform sample of all generated so far.
    pub garbage_cap: usize,
    /// Generator architecture.
    pub generator: GeneratorConfig,
}

impl Default for InversionConfig {
    fn default() -> Self {
        Self {
            epochs: 20,
            alpha: 500.0,
            beta: 500.0,
            gamma: 6000.0,
            delta: 10.0,
            mode_seeking: 500.0,
            restart_floor: 0.3,
            restart_lost: 0.0,
            ink: 0.0,
            typicality: 0.0,
            fresh_generator: false,
            two_digit_share: 0.0,
            batch_size: 64,
            generator_steps: 250,
            samples_per_epoch: 1000,
            candidates: 0,
            digit_like: 0.0,
            generator_lr: 1e-3,
            garbage_cap: 20_000,
            generator: GeneratorConfig::default(),
        }
    }
}

impl InversionConfig {
    /// The loss weights.
    pub fn weights(&self) -> LossWeights {
        LossWeights {
            alpha: self.alpha,
            beta: self.beta,
            gamma: self.gamma,
            delta: self.delta,
            mode_seeking: self.mode_seeking,
            ink: self.ink,
            typicality: self.typicality,
        }
    }
}

/// Evaluation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Images in each synthetic noise OOD set (default 2000).
    pub noise_sets: usize,
    /// Images per set in the quick evaluation after every inversion epoch
    /// (the first N of each set; default 2000). The final report uses all.
    pub per_epoch: usize,
    /// Inference batch size (default 500).
    pub batch_size: usize,
    /// Images in each synthetic near-OOD validation family (default 1000).
    pub near_ood: usize,
    /// Generator steps of the counterfeit-acceptance check: a fresh
    /// generator trained against the final classifier (default 250, one
    /// epoch's worth; 0 = skip the check).
    pub counterfeit_steps: usize,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            noise_sets: 2000,
            per_epoch: 2000,
            batch_size: 500,
            near_ood: 1000,
            counterfeit_steps: 250,
        }
    }
}

/// The decision calibration that follows training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CalibrationConfig {
    /// Share of the MNIST validation digits that the garbage-logit offset
    /// may send to the garbage class (default 0.002; 0 = off: the trained
    /// weights as they are). The class-weighted loss trains the garbage class
    /// as one class among eleven; this offset sets its operating point from a
    /// stated cost on real digits instead, the same after every epoch.
    pub garbage_budget: f64,
    /// The deployed decision reads the mean of the classifier's logits over
    /// the image and its four shifts by this many pixels (right, left, down,
    /// up; `ood_core::input::cross_shifts`), written into every exported
    /// graph; its threshold is calibrated on the same means (default 0 = the
    /// logits of the image alone; at most 4; not written to a config when 0).
    #[serde(skip_serializing_if = "is_zero_count")]
    pub shift_average: usize,
}

impl Default for CalibrationConfig {
    fn default() -> Self {
        Self {
            garbage_budget: 0.002,
            shift_average: 0,
        }
    }
}

/// A whole training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Name used for the run folder (default "scanned").
    pub name: String,
    /// Seed of every random choice (default 42).
    pub seed: u64,
    /// Classifier architecture.
    pub model: ClassifierConfig,
    /// Data preparation.
    pub data: DataConfig,
    /// Optimisation.
    pub train: OptimConfig,
    /// Network inversion.
    pub inversion: InversionConfig,
    /// Evaluation.
    pub eval: EvalConfig,
    /// Decision calibration.
    pub calibration: CalibrationConfig,
}

/// The key defaults: every key a config leaves out takes its value from here.
/// They are the `scanned` preset (v11, the default run until v12); the
/// default run ([`DEFAULT_PRESET`], `lean`) is `pen` (`scanned` with three
/// keys changed) with two more: `train.seed_garbage_share` and `calibration.shift_average`.
impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            name: "scanned".into(),
            seed: 42,
            model: ClassifierConfig::default(),
            data: DataConfig::default(),
            train: OptimConfig::default(),
            inversion: InversionConfig::default(),
            eval: EvalConfig::default(),
            calibration: CalibrationConfig::default(),
        }
    }
}

/// The presets shipped in `configs/`, by name.
pub const PRESETS: [(&str, &str); 14] = [
    ("lean", include_str!("../../configs/lean.toml")),
    ("scanned", include_str!("../../configs/scanned.toml")),
    ("strokes", include_str!("../../configs/strokes.toml")),
    ("pen", include_str!("../../configs/pen.toml")),
    ("tilted", include_str!("../../configs/tilted.toml")),
    ("device", include_str!("../../configs/device.toml")),
    ("turned", include_str!("../../configs/turned.toml")),
    ("diverse", include_str!("../../configs/diverse.toml")),
    ("exp2-smooth", include_str!("../../configs/exp2-smooth.toml")),
    ("exp2", include_str!("../../configs/exp2.toml")),
    ("exp1", include_str!("../../configs/exp1.toml")),
    ("exp3", include_str!("../../configs/exp3.toml")),
    ("exp4", include_str!("../../configs/exp4.toml")),
    ("baseline", include_str!("../../configs/baseline.toml")),
];

/// The preset used when none is named (v14, `models/default`).
pub const DEFAULT_PRESET: &str = "lean";

fn is_zero_count(n: &usize) -> bool {
    *n == 0
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

fn is_one(v: &f64) -> bool {
    *v == 1.0
}

fn is_one_count(n: &usize) -> bool {
    *n == 1
}

fn positive(name: &str, v: f64) -> Result<()> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(Error::Config(format!("{name} must be > 0, got {v}")))
    }
}

impl InversionConfig {
    /// Checks the loss weights (always) and the loop's sizes (when on).
    pub fn validate(&self) -> Result<()> {
        let inv = self;
        for (name, v) in [
            ("alpha", inv.alpha),
            ("beta", inv.beta),
            ("gamma", inv.gamma),
            ("delta", inv.delta),
            ("mode_seeking", inv.mode_seeking),
            ("restart_floor", inv.restart_floor),
            ("restart_lost", inv.restart_lost),
            ("ink", inv.ink),
            ("two_digit_share", inv.two_digit_share),
            ("digit_like", inv.digit_like),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::Config(format!("inversion.{name} must be >= 0, got {v}")));
            }
        }
        if !inv.typicality.is_finite() {
            return Err(Error::Config(format!(
                "inversion.typicality must be a finite number, got {}",
                inv.typicality
            )));
        }
        for (name, v, of_what, zero) in [
            ("restart_lost", inv.restart_lost, "the epoch's samples", "never"),
            (
                "two_digit_share",
                inv.two_digit_share,
                "the generator's conditions",
                "none",
            ),
        ] {
            if v > 1.0 {
                return Err(Error::Config(format!(
                    "inversion.{name} is a share of {of_what} (0 = {zero}, at most 1), got {v}"
                )));
            }
        }
        if inv.digit_like >= 1.0 {
            return Err(Error::Config(format!(
                "inversion.digit_like is a quantile of real digits' nearest-digit distances (0 = off, below 1), got {}",
                inv.digit_like
            )));
        }
        if inv.epochs > 0 {
            if inv.batch_size < 2 {
                return Err(Error::Config(
                    "inversion.batch_size must be at least 2 (pairwise losses)".into(),
                ));
            }
            if inv.generator_steps == 0 || inv.samples_per_epoch == 0 || inv.garbage_cap == 0 {
                return Err(Error::Config(
                    "inversion.generator_steps, samples_per_epoch and garbage_cap must be at least 1".into(),
                ));
            }
            if inv.candidates != 0 && inv.candidates < inv.samples_per_epoch {
                return Err(Error::Config(format!(
                    "inversion.candidates ({}) must be 0 (keep every sample) or at least samples_per_epoch ({})",
                    inv.candidates, inv.samples_per_epoch
                )));
            }
            positive("inversion.generator_lr", inv.generator_lr)?;
            inv.generator.validate()?;
        }
        Ok(())
    }
}

impl TrainConfig {
    /// Parses TOML; `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self> {
        let cfg: TrainConfig = toml::from_str(text).map_err(|e| {
            // one line: "<file> line N: <message>"
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let at = line.map_or(String::new(), |l| format!(" line {l}"));
            Error::ConfigSyntax {
                origin: format!("{origin}{at}"),
                message: e.message().replace('\n', " "),
            }
        })?;
        cfg.validate().map_err(|e| match e {
            Error::Config(m) => Error::Config(format!("{origin}: {m}")),
            other => other,
        })?;
        Ok(cfg)
    }

    /// A shipped preset by name.
    pub fn preset(name: &str) -> Result<Self> {
        let (_, text) = PRESETS
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| Error::UnknownPreset {
                name: name.into(),
                known: PRESETS.iter().map(|(n, _)| *n).collect(),
            })?;
        Self::from_toml(text, &format!("preset {name}"))
    }

    /// Classifier epochs in the whole run: pre-training, then inversion.
    pub fn total_epochs(&self) -> usize {
        self.train.epochs + self.inversion.epochs
    }

    /// As TOML (written into every run folder).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# could not serialise config: {e}\n"))
    }

    /// Checks every value is in range.
    pub fn validate(&self) -> Result<()> {
        self.model.validate()?;
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(Error::Config(format!(
                "name must be non-empty letters, digits, '-' or '_', got {:?}",
                self.name
            )));
        }
        if self.train.epochs == 0 {
            return Err(Error::Config("train.epochs must be at least 1".into()));
        }
        if self.train.batch_size == 0 || self.eval.batch_size == 0 {
            return Err(Error::Config(
                "train.batch_size and eval.batch_size must be at least 1".into(),
            ));
        }
        positive("train.lr", self.train.lr)?;
        positive("train.lr_min", self.train.lr_min)?;
        if self.train.lr_min > self.train.lr {
            return Err(Error::Config(format!(
                "train.lr_min ({}) exceeds train.lr ({})",
                self.train.lr_min, self.train.lr
            )));
        }
        if !(self.train.weight_decay >= 0.0 && self.train.weight_decay.is_finite()) {
            return Err(Error::Config(format!(
                "train.weight_decay must be >= 0, got {}",
                self.train.weight_decay
            )));
        }
        if !(0.0..1.0).contains(&self.train.generated_share) {
            return Err(Error::Config(format!(
                "train.generated_share must be in [0, 1) (0 = an equal share per garbage source), got {}",
                self.train.generated_share
            )));
        }
        if !(0.0..1.0).contains(&self.train.turned_share)
            || self.train.generated_share + self.train.turned_share >= 1.0
        {
            return Err(Error::Config(format!(
                "train.turned_share must be in [0, 1) and leave the other garbage sources a share beside train.generated_share (0 = an equal share), got {} beside {}",
                self.train.turned_share, self.train.generated_share
            )));
        }
        let share = self.train.seed_garbage_share;
        if !(share > 0.0 && share <= 1.0) {
            return Err(Error::Config(format!(
                "train.seed_garbage_share must be in (0, 1] (1 = every garbage seed image every epoch), got {share}"
            )));
        }
        if self.train.hard_seed_pool == 0 || (self.train.hard_seed_pool > 1 && share >= 1.0) {
            return Err(Error::Config(format!(
                "train.hard_seed_pool must be at least 1, and above 1 only with train.seed_garbage_share under 1 (a pool to choose the epoch's share from), got {} with a share of {share}",
                self.train.hard_seed_pool
            )));
        }
        if self.train.average_epochs > self.total_epochs() {
            return Err(Error::Config(format!(
                "train.average_epochs ({}) exceeds the run's epochs ({}: train.epochs + inversion.epochs)",
                self.train.average_epochs,
                self.total_epochs()
            )));
        }
        let budget = self.calibration.garbage_budget;
        if !(0.0..=0.1).contains(&budget) {
            return Err(Error::Config(format!(
                "calibration.garbage_budget must be in [0, 0.1] (a share of the validation digits), got {budget}"
            )));
        }
        if self.calibration.shift_average > 4 {
            return Err(Error::Config(format!(
                "calibration.shift_average must be at most 4 pixels (0 = off), got {}",
                self.calibration.shift_average
            )));
        }
        positive("data.noise_std", f64::from(self.data.noise_std))?;
        if !(0.0..=1.0).contains(&self.data.noise_mean) {
            return Err(Error::Config(format!(
                "data.noise_mean must be in [0, 1], got {}",
                self.data.noise_mean
            )));
        }
        self.inversion.validate()?;
        if self.inversion.epochs > 0 && self.inversion.generator.turned_pages && self.data.turned_count == 0 {
            return Err(Error::Config(
                "inversion.generator.turned_pages draws over the turned digits: data.turned_count must be > 0".into(),
            ));
        }
        if self.data.pen_count > 0 && self.data.turned_count == 0 {
            return Err(Error::Config(
                "data.pen_count also redraws turned digits as garbage: data.turned_count must be > 0".into(),
            ));
        }
        if self.data.pen_scribbles && (self.data.pen_count == 0 || self.data.scribble_count == 0) {
            return Err(Error::Config(
                "data.pen_scribbles redraws data.pen_count scribbles: data.pen_count and data.scribble_count must be > 0".into(),
            ));
        }
        if self.data.augment_shift > 4 {
            return Err(Error::Config(format!(
                "data.augment_shift must be at most 4 pixels, got {}",
                self.data.augment_shift
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_parse_and_the_default_preset_matches_the_defaults() -> Result<()> {
        for (name, _) in PRESETS {
            TrainConfig::preset(name)?;
        }
        // the key defaults are `scanned`; `pen` is scanned with a pen for a
        // generator and its restart; the default run, `lean`, is pen with a
        // share of the garbage seeds per epoch and (since v15) a decision
        // averaged over shifts, nothing else changed
        assert_eq!(TrainConfig::preset("scanned")?, TrainConfig::default());
        assert_eq!(DEFAULT_PRESET, "lean");
        let mut pen = TrainConfig {
            name: "pen".into(),
            ..TrainConfig::default()
        };
        pen.inversion.generator.kind = crate::model::generator::GeneratorKind::Strokes;
        pen.inversion.ink = 2000.0;
        pen.inversion.restart_lost = 0.9;
        assert_eq!(TrainConfig::preset("pen")?, pen);
        let mut lean = TrainConfig {
            name: "lean".into(),
            ..pen
        };
        lean.train.seed_garbage_share = 0.25;
        lean.calibration.shift_average = 2;
        assert_eq!(TrainConfig::preset("lean")?, lean);
        let written = TrainConfig::default().to_toml();
        assert_eq!(
            TrainConfig::from_toml(&written, "round trip")?,
            TrainConfig::default()
        );
        // keys at their "off" value are not written, so earlier configs read and write the same
        for (key, off) in [
            ("photographed_count", "off"),
            ("pen_count", "off"),
            ("pen_scribbles", "off"),
            ("seed_garbage_share", "every image"),
            ("hard_seed_pool", "the plain draw"),
            ("shift_average", "off"),
            ("two_digit_share", "a share of 0"),
            ("candidates", "every sample kept"),
            ("average_epochs", "off"),
            ("restart_lost", "off"),
            ("typicality", "off"),
            ("digit_like", "off"),
            ("turned_share", "an equal share"),
        ] {
            assert!(!written.contains(key), "{key} ({off}): not written");
        }
        let mut lost = TrainConfig::default();
        lost.inversion.restart_lost = 0.9;
        let text = lost.to_toml();
        assert!(text.contains("restart_lost = 0.9"), "{text}");
        assert_eq!(TrainConfig::from_toml(&text, "round trip")?, lost);
        Ok(())
    }

    #[test]
    fn bad_configs_are_refused_with_the_key_named() {
        let e = TrainConfig::from_toml("[train]\nepochs = 0\n", "x.toml").expect_err("zero epochs");
        assert!(e.to_string().contains("train.epochs"), "{e}");
        let e = TrainConfig::from_toml("[inversion]\ngamma = -1.0\n", "x.toml").expect_err("negative weight");
        assert!(e.to_string().contains("inversion.gamma"), "{e}");
        let e = TrainConfig::from_toml("[train]\nlr = -1.0\n", "x.toml").expect_err("negative lr");
        assert!(e.to_string().contains("train.lr"), "{e}");
        let e = TrainConfig::from_toml("[train]\ngenerated_share = 1.0\n", "x.toml").expect_err("share 1");
        assert!(e.to_string().contains("train.generated_share"), "{e}");
        for bad in [
            "turned_share = 1.0",
            "turned_share = -0.1",
            "turned_share = 0.6\ngenerated_share = 0.4",
        ] {
            let e = TrainConfig::from_toml(&format!("[train]\n{bad}\n"), "x.toml").expect_err("turned share");
            assert!(e.to_string().contains("train.turned_share"), "{bad}: {e}");
        }
        let ok = TrainConfig::from_toml("[train]\nturned_share = 0.4\n", "x.toml").expect("on");
        assert_eq!(ok.train.turned_share, 0.4);
        assert!(ok.to_toml().contains("turned_share = 0.4"));
        for bad in ["0.0", "1.5", "-0.25"] {
            let e = TrainConfig::from_toml(&format!("[train]\nseed_garbage_share = {bad}\n"), "x.toml")
                .expect_err("seed garbage share out of range");
            assert!(e.to_string().contains("train.seed_garbage_share"), "{bad}: {e}");
        }
        for bad in ["hard_seed_pool = 0", "hard_seed_pool = 2"] {
            let e = TrainConfig::from_toml(&format!("[train]\n{bad}\n"), "x.toml").expect_err("no pool");
            assert!(e.to_string().contains("train.hard_seed_pool"), "{bad}: {e}");
        }
        let pooled = TrainConfig::from_toml(
            "[train]\nseed_garbage_share = 0.25\nhard_seed_pool = 2\n",
            "x.toml",
        )
        .expect("a pool beside a share");
        assert_eq!(pooled.train.hard_seed_pool, 2);
        assert!(pooled.to_toml().contains("hard_seed_pool = 2"));
        let e = TrainConfig::from_toml("[calibration]\nshift_average = 5\n", "x.toml").expect_err("too far");
        assert!(e.to_string().contains("calibration.shift_average"), "{e}");
        let shifted = TrainConfig::from_toml("[calibration]\nshift_average = 2\n", "x.toml").expect("on");
        assert_eq!(shifted.calibration.shift_average, 2);
        assert!(shifted.to_toml().contains("shift_average = 2"));
        // 3 pre-training + 20 inversion epochs by default
        let e = TrainConfig::from_toml("[train]\naverage_epochs = 24\n", "x.toml")
            .expect_err("more than the run");
        assert!(e.to_string().contains("train.average_epochs (24)"), "{e}");
        let ok = TrainConfig::from_toml("[train]\naverage_epochs = 23\n", "x.toml").expect("every epoch");
        assert_eq!(ok.train.average_epochs, 23);
        assert!(ok.to_toml().contains("average_epochs = 23"));
        let e = TrainConfig::from_toml("[train]\nepoch = 3\n", "x.toml").expect_err("unknown key");
        let msg = e.to_string();
        assert!(
            msg.contains("unknown field") && msg.contains("x.toml line 2"),
            "{msg}"
        );
        assert!(!msg.contains('\n'), "one line: {msg}");
        assert!(TrainConfig::preset("nope").is_err());
        let e =
            TrainConfig::from_toml("[calibration]\ngarbage_budget = 0.5\n", "x.toml").expect_err("budget");
        assert!(e.to_string().contains("calibration.garbage_budget"), "{e}");
        let e =
            TrainConfig::from_toml("[train]\ngarbage_balance = \"even\"\n", "x.toml").expect_err("variant");
        assert!(e.to_string().contains("per-source"), "{e}");
        let e =
            TrainConfig::from_toml("[inversion]\nrestart_lost = 1.5\n", "x.toml").expect_err("share over 1");
        assert!(e.to_string().contains("inversion.restart_lost"), "{e}");
        for bad in ["1.5", "-0.1"] {
            let e = TrainConfig::from_toml(&format!("[inversion]\ntwo_digit_share = {bad}\n"), "x.toml")
                .expect_err("share out of range");
            assert!(e.to_string().contains("inversion.two_digit_share"), "{bad}: {e}");
        }
        let e =
            TrainConfig::from_toml("[inversion]\ntypicality = nan\n", "x.toml").expect_err("not a number");
        assert!(e.to_string().contains("inversion.typicality"), "{e}");
        for w in [2000.0, -2000.0] {
            let ok =
                TrainConfig::from_toml(&format!("[inversion]\ntypicality = {w:?}\n"), "x.toml").expect("on");
            assert_eq!(ok.inversion.weights().typicality, w);
            assert!(ok.to_toml().contains(&format!("typicality = {w:?}")));
        }
        let e = TrainConfig::from_toml("[inversion]\ncandidates = 999\n", "x.toml")
            .expect_err("fewer candidates than samples kept");
        assert!(e.to_string().contains("inversion.candidates (999)"), "{e}");
        let ok = TrainConfig::from_toml("[inversion]\ncandidates = 2000\n", "x.toml").expect("twice");
        assert_eq!(ok.inversion.candidates, 2000);
        for bad in ["1.0", "-0.1", "nan"] {
            let e = TrainConfig::from_toml(&format!("[inversion]\ndigit_like = {bad}\n"), "x.toml")
                .expect_err("quantile out of range");
            assert!(e.to_string().contains("inversion.digit_like"), "{bad}: {e}");
        }
        let ok = TrainConfig::from_toml("[inversion]\ndigit_like = 0.9\n", "x.toml").expect("on");
        assert_eq!(ok.inversion.digit_like, 0.9);
        assert!(ok.to_toml().contains("digit_like = 0.9"));
        // pages of turned digits need turned digits, when there is inversion
        let pages = "[inversion.generator]\nkind = \"strokes-over-digits\"\nturned_pages = true\n";
        let e = TrainConfig::from_toml(&format!("[data]\nturned_count = 0\n{pages}"), "x.toml")
            .expect_err("no turned digits");
        assert!(e.to_string().contains("data.turned_count"), "{e}");
        TrainConfig::from_toml(
            &format!("[data]\nturned_count = 0\n[inversion]\nepochs = 0\n{pages}"),
            "x.toml",
        )
        .expect("no inversion: no pages");
        TrainConfig::from_toml(&format!("[data]\nturned_count = 10\n{pages}"), "x.toml")
            .expect("turned digits");
        // other pens redraw turned digits too
        let e = TrainConfig::from_toml("[data]\nturned_count = 0\npen_count = 10\n", "x.toml")
            .expect_err("no turned digits to redraw");
        assert!(
            e.to_string().contains("data.pen_count") && e.to_string().contains("data.turned_count"),
            "{e}"
        );
        let e = TrainConfig::from_toml("[data]\npen_scribbles = true\n", "x.toml").expect_err("no pen_count");
        assert!(e.to_string().contains("data.pen_scribbles"), "{e}");
        let both = TrainConfig::from_toml("[data]\npen_count = 10\npen_scribbles = true\n", "x.toml")
            .expect("pens and scribbles");
        assert!(both.to_toml().contains("pen_scribbles = true"));
        let ok = TrainConfig::from_toml("[data]\npen_count = 6000\n", "x.toml").expect("pens");
        assert_eq!(ok.data.pen_count, 6000);
        assert!(ok.to_toml().contains("pen_count = 6000"));
        assert_eq!(
            TrainConfig::from_toml(&ok.to_toml(), "round trip").expect("read back"),
            ok
        );
    }
}
