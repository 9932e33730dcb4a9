//! What a run reports: the per-epoch log, the evaluations before and after
//! inversion (each at the calibrated garbage offset and without it), and the
//! files made from them ([`markdown`], [`plots`]). Data in, files out: this
//! module never imports the run loop that fills it.

pub mod markdown;
pub mod plots;

use crate::eval::Evaluation;
use crate::model::inversion::LossParts;
pub use crate::run::deployed::Deployed;
pub use crate::run::diversity::ClassDiversity;
use serde::{Deserialize, Serialize};

/// What one classifier epoch did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifierEpoch {
    /// Mean training loss.
    pub loss: f64,
    /// 11-way accuracy on the validation split.
    pub val_accuracy: f64,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    /// Wall time of the training part, in seconds.
    pub seconds: f64,
    /// Training throughput.
    pub samples_per_sec: f64,
    /// Images per class in the training set (digits 0..9, garbage).
    pub class_counts: Vec<usize>,
}

/// An evaluation at the garbage-logit offset calibrated on the validation
/// digits, and of the same weights without it: the one home of that trio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibrated {
    /// The offset added to the garbage logit (`None`: calibration is off).
    pub offset: Option<f32>,
    /// With the offset (the weights as they are when `offset` is `None`).
    pub with_offset: Evaluation,
    /// Without the offset (only when there is one).
    pub without_offset: Option<Evaluation>,
}

/// What one epoch of the run did (pre-training or inversion).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochLog {
    /// 1-based epoch over the whole run (pre-training, then inversion).
    pub epoch: usize,
    /// "pretrain" or "inversion".
    pub phase: String,
    /// The classifier's epoch.
    pub classifier: ClassifierEpoch,
    /// The inversion part (inversion epochs only).
    pub inversion: Option<InversionLog>,
    /// Quick evaluation on the first `eval.per_epoch` images of each set
    /// (inversion epochs only), at this epoch's calibrated garbage offset.
    pub quick_eval: Option<Calibrated>,
}

/// The inversion part of an epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InversionLog {
    /// Mean loss parts over the epoch's generator steps.
    pub loss: LossParts,
    /// Wall time of the generator steps, in seconds.
    pub generator_seconds: f64,
    /// Mean `U(x)` of the new samples under the classifier that was inverted
    /// (the seed report's per-epoch table).
    pub new_samples_mean_u: f64,
    /// Share of the new samples that classifier already sends to garbage.
    pub new_samples_to_garbage: f64,
    /// With `inversion.candidates`: the share of everything the generator
    /// drew that classifier already sends to garbage (the new samples are
    /// the ones it trusts most among them; absent when every sample is kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidates_to_garbage: Option<f64>,
    /// With `inversion.digit_like`: how many of the epoch's counterfeits
    /// were taken for digits (`run::digit_like`) and left out of the garbage
    /// (absent when every counterfeit joins it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taken_for_digits: Option<usize>,
    /// Within-class diversity of the new samples: per conditioning digit, the
    /// mean over pixels of the pixel standard deviation (0-1 scale), averaged
    /// over digits. 0 = every sample of a digit is the same image.
    pub new_samples_diversity: f64,
    /// Generated images in the garbage class after adding the new ones.
    pub garbage_size: usize,
    /// Per-digit pixel and feature diversity of the new samples, with real
    /// MNIST validation digits for scale (absent in runs made before it).
    #[serde(default)]
    pub diversity: Option<ClassDiversity>,
    /// Whether the generator was restarted from fresh weights this epoch
    /// (its samples collapsed, or it was lost: see `restart_cause`).
    #[serde(default)]
    pub restarted: bool,
    /// Why it was restarted (absent when it was not, and in runs made before
    /// lost generators were restarted, where every restart was a collapse).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_cause: Option<RestartCause>,
    /// Which generators of a pair (`inversion.generator.two_generators`)
    /// restarted, each judged on its own samples ("pen-alone generator",
    /// "over-digits generator"); empty for one generator.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restarted_members: Vec<String>,
}

impl InversionLog {
    /// `None` when the generator was not restarted this epoch; else the
    /// cause as the report and the log append it (` (lost)`; for a pair,
    /// the first cause and the generators restarted: ` (lost: pen-alone
    /// generator)`), empty for runs made before causes were recorded.
    pub fn restart_note(&self) -> Option<String> {
        self.restarted.then(|| {
            let members = match self.restarted_members.is_empty() {
                true => String::new(),
                false => format!(": {}", self.restarted_members.join(", ")),
            };
            self.restart_cause
                .map_or(String::new(), |c| format!(" ({}{members})", c.as_str()))
        })
    }
}

/// Why a generator was restarted from fresh weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartCause {
    /// Some digit's samples fell under `inversion.restart_floor` of real
    /// same-digit pixel diversity.
    Collapsed,
    /// At least `inversion.restart_lost` of its samples were already garbage
    /// to the classifier it inverted.
    Lost,
}

impl RestartCause {
    /// The word the report and the log use.
    pub fn as_str(self) -> &'static str {
        match self {
            RestartCause::Collapsed => "collapsed",
            RestartCause::Lost => "lost",
        }
    }
}

/// The shipped classifier as the mean of the weights at the end of the
/// run's last epochs (`train.average_epochs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Averaged {
    /// Epochs whose end-of-epoch weights were averaged.
    pub epochs: usize,
    /// MNIST validation accuracy of the mean (before the garbage offset);
    /// the last epoch's log holds that of its own weights.
    pub val_accuracy: f64,
}

/// A whole run's report (`report.json` / `report.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Config name.
    pub name: String,
    /// How the model was chosen.
    pub selection: String,
    /// Share of validation digits the garbage offset may send to garbage
    /// (0: calibration off).
    pub calibration_budget: f64,
    /// Per-epoch logs.
    pub epochs: Vec<EpochLog>,
    /// Full evaluation after pre-training (runs with inversion only).
    pub before: Option<Calibrated>,
    /// Full evaluation of the final model: `with_offset` is the shipped
    /// model (the offset folded into its garbage bias).
    pub after: Calibrated,
    /// Standard evaluation sets that could not be found, each with how to
    /// get it (they are "not evaluated" in the report).
    #[serde(default)]
    pub not_evaluated: Vec<String>,
    /// The deployed decision (threshold keeping 99% of the validation
    /// digits) on every set, the near-OOD validation families and a fresh
    /// generator's counterfeits (absent in runs made before it).
    #[serde(default)]
    pub deployed: Option<Deployed>,
    /// The weight mean the shipped classifier is (absent when the last
    /// epoch's weights are shipped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub averaged: Option<Averaged>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_restart_note_names_the_cause_and_a_pairs_generators() {
        let mut log = InversionLog {
            loss: LossParts::default(),
            generator_seconds: 0.0,
            new_samples_mean_u: 0.0,
            new_samples_to_garbage: 0.0,
            candidates_to_garbage: None,
            taken_for_digits: None,
            new_samples_diversity: 0.0,
            garbage_size: 0,
            diversity: None,
            restarted: false,
            restart_cause: None,
            restarted_members: Vec::new(),
        };
        assert_eq!(log.restart_note(), None, "not restarted");
        log.restarted = true;
        assert_eq!(
            log.restart_note().as_deref(),
            Some(""),
            "before causes were recorded"
        );
        log.restart_cause = Some(RestartCause::Lost);
        assert_eq!(log.restart_note().as_deref(), Some(" (lost)"));
        // one generator's report has no key for the members
        let one = serde_json::to_string(&log).expect("json");
        assert!(!one.contains("restarted_members"), "{one}");
        log.restarted_members = vec!["pen-alone generator".into()];
        assert_eq!(
            log.restart_note().as_deref(),
            Some(" (lost: pen-alone generator)")
        );
        let back: InversionLog =
            serde_json::from_str(&serde_json::to_string(&log).expect("json")).expect("read back");
        assert_eq!(back, log);
    }
}
