//! `report.md`: the seed report's two tables (share of each OOD set sent to
//! garbage before and after inversion; average U of the inverted samples per
//! epoch), then the full metrics of the final model.

use super::{Calibrated, EpochLog, Report};
use crate::eval::Evaluation;

fn pct(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |v| format!("{:.2}%", 100.0 * v))
}

fn offset(b: Option<f32>) -> String {
    b.map_or("-".into(), |b| format!("{b:.3}"))
}

fn share(e: Option<&Evaluation>, name: &str) -> Option<f64> {
    e.and_then(|e| e.ood.iter().find(|x| x.name == name))
        .map(|x| x.garbage_share)
}

impl Report {
    /// The report as Markdown: the seed's two tables, then the full metrics.
    pub fn to_markdown(&self) -> String {
        let mut s = format!("# Run `{}`\n\n{}\n\n", self.name, self.selection);
        if let Some(a) = &self.averaged {
            s.push_str(&format!(
                "The classifier is the mean of the weights at the end of the last {} epochs (`train.average_epochs`); MNIST validation accuracy of the mean {:.2}% (the last epoch's own: {}).\n\n",
                a.epochs,
                100.0 * a.val_accuracy,
                self.epochs
                    .last()
                    .map_or("-".into(), |e| format!("{:.2}%", 100.0 * e.classifier.val_accuracy))
            ));
        }
        if let Some(before) = &self.before {
            s.push_str(&self.before_after_table(before));
        }
        s.push_str(&epoch_table(&self.epochs));
        s.push_str(&diversity_table(&self.epochs));
        s.push_str("## Final model\n\n");
        if let Some(b) = self.after.offset {
            s.push_str(&format!(
                "The garbage bias carries the offset {b:.3}, calibrated on the validation digits (budget {:.2}%).\n\n",
                100.0 * self.calibration_budget
            ));
        }
        s.push_str(
            &self
                .after
                .with_offset
                .to_markdown_with_missing(&self.not_evaluated),
        );
        if let Some(d) = &self.deployed {
            s.push_str(&deployed_section(d));
        }
        if !self.not_evaluated.is_empty() {
            s.push_str("\n## Not evaluated\n\nThese standard sets could not be found, so their rows above read \"not evaluated\"; each line says how to get the set:\n\n");
            for n in &self.not_evaluated {
                s.push_str(&format!("- {n}\n"));
            }
        }
        s
    }

    /// Share of each OOD set sent to garbage before and after inversion,
    /// with and (when calibrated) without the garbage offset.
    fn before_after_table(&self, before: &Calibrated) -> String {
        let after = &self.after;
        let calibrated = after.offset.is_some();
        let mut s = String::from("## Share of each OOD set sent to the garbage class\n\n");
        if calibrated {
            s.push_str(&format!(
                "With the garbage offset calibrated on the validation digits (budget {:.2}% of them to garbage; offset {} after pre-training, {} after inversion), and without it (the trained weights as they are).\n\n| OOD set | before inversion | after inversion | before, no offset | after, no offset |\n|---|---|---|---|---|\n",
                100.0 * self.calibration_budget,
                offset(before.offset),
                offset(after.offset)
            ));
        } else {
            s.push_str("| OOD set | before inversion | after inversion |\n|---|---|---|\n");
        }
        for r in &after.with_offset.ood {
            s.push_str(&format!(
                "| {} | {} | {:.2}% |",
                r.name,
                pct(share(Some(&before.with_offset), &r.name)),
                100.0 * r.garbage_share
            ));
            if calibrated {
                s.push_str(&format!(
                    " {} | {} |",
                    pct(share(before.without_offset.as_ref(), &r.name)),
                    pct(share(after.without_offset.as_ref(), &r.name))
                ));
            }
            s.push('\n');
        }
        for name in self.not_evaluated.iter().map(|n| ood_data::sets::skipped_name(n)) {
            s.push_str(&format!("| {name} | not evaluated | not evaluated |"));
            if calibrated {
                s.push_str(" not evaluated | not evaluated |");
            }
            s.push('\n');
        }
        s.push_str(&format!(
            "| MNIST test accuracy | {:.2}% | {:.2}% |",
            100.0 * before.with_offset.id.accuracy,
            100.0 * after.with_offset.id.accuracy
        ));
        if calibrated {
            s.push_str(&format!(
                " {} | {} |",
                pct(before.without_offset.as_ref().map(|e| e.id.accuracy)),
                pct(after.without_offset.as_ref().map(|e| e.id.accuracy))
            ));
        }
        s.push_str("\n\n");
        s
    }
}

/// Per inversion epoch: average U of the new samples (the seed's table),
/// their share sent to garbage, validation accuracy, the garbage offset and
/// the quick evaluation's garbage shares.
fn epoch_table(epochs: &[EpochLog]) -> String {
    let inv: Vec<&EpochLog> = epochs.iter().filter(|e| e.inversion.is_some()).collect();
    let Some(first) = inv.first() else {
        return String::new();
    };
    let names: Vec<String> = first
        .quick_eval
        .as_ref()
        .map(|q| q.with_offset.ood.iter().map(|r| r.name.clone()).collect())
        .unwrap_or_default();
    let offsets = inv
        .iter()
        .any(|e| e.quick_eval.as_ref().is_some_and(|q| q.offset.is_some()));
    let mut s = String::from("## Per inversion epoch\n\nAverage U of the newly inverted samples (the seed's table), their share already sent to garbage, MNIST validation accuracy, ");
    if offsets {
        s.push_str("the garbage offset calibrated on the validation digits after the epoch, ");
    }
    s.push_str("and the quick evaluation (first images of each set) share sent to garbage");
    if offsets {
        s.push_str(" at that offset");
    }
    s.push_str(".\n\n| epoch | avg U of inverted | inverted to garbage | val acc |");
    if offsets {
        s.push_str(" garbage offset |");
    }
    for n in &names {
        s.push_str(&format!(" {n} to garbage |"));
    }
    s.push_str("\n|---|---|---|---|");
    s.push_str(&"---|".repeat(names.len() + usize::from(offsets)));
    s.push('\n');
    for (k, e) in inv.iter().enumerate() {
        let i = e
            .inversion
            .as_ref()
            .map(|i| {
                (
                    i.new_samples_mean_u,
                    i.new_samples_to_garbage,
                    i.candidates_to_garbage,
                    i.taken_for_digits,
                )
            })
            .unwrap_or_default();
        // with `inversion.candidates`: the share among everything drawn beside the kept ones'
        let mut drawn =
            i.2.map_or(String::new(), |c| format!(" (all drawn: {:.1}%)", 100.0 * c));
        // with `inversion.digit_like`: how many stayed out of the garbage
        if let Some(n) = i.3 {
            drawn.push_str(&format!(" ({n} taken for digits)"));
        }
        s.push_str(&format!(
            "| {} | {:.4} | {:.1}%{drawn} | {:.2}% |",
            k + 1,
            i.0,
            100.0 * i.1,
            100.0 * e.classifier.val_accuracy
        ));
        if offsets {
            s.push_str(&format!(
                " {} |",
                offset(e.quick_eval.as_ref().and_then(|q| q.offset))
            ));
        }
        if let Some(q) = &e.quick_eval {
            for r in &q.with_offset.ood {
                s.push_str(&format!(" {:.1}% |", 100.0 * r.garbage_share));
            }
        }
        s.push('\n');
    }
    s.push('\n');
    s
}

/// The deployed decision on every set: the validation signals first.
fn deployed_section(d: &super::Deployed) -> String {
    let mut s = format!(
        "\n## Deployed decision (f32)\n\nReject when the arg-max is the garbage class, else when 1 - U(x) is below {:.4}, the threshold keeping {:.0}% of the held-out validation digits (the export's default; `export.md` measures the int8 file).\n\n",
        d.threshold,
        100.0 * d.keep
    );
    s.push_str("Validation signals (may guide choices): the synthetic near-OOD families made from validation digits and pen strokes (`ood_data::nearood`; a few of their images can still read as a digit, so they show a trend, not a ground truth), and counterfeit acceptance: a fresh generator trained from scratch to invert this classifier, and the share of its samples accepted as digits (lower is better).\n\n");
    s.push_str("The `device-` rows are the same images through the device's normalisation (`ood_data::normalize::drawing`, what `edge` does to every image and frame: the ink's box fitted into 20x20 and centred by its centre of mass), so a small fragment or symbol arrives enlarged, as a camera or a scan delivers it.\n\n");
    let mut val = d.near_ood.clone();
    val.extend(d.near_ood_device.iter().cloned());
    val.extend(d.counterfeits.iter().cloned());
    s.push_str(&crate::eval::VerdictShares::markdown(&val));
    s.push_str(&format!(
        "\nMean near-OOD rejection: {:.2}%",
        100.0 * d.near_ood_rejected()
    ));
    if let Some(m) = d.near_ood_device_rejected() {
        s.push_str(&format!("; as the device sees them: {:.2}%", 100.0 * m));
    }
    if let Some(v) = &d.val_scanned {
        s.push_str(&format!(
            ".\n\nThe other side of the device rows: the validation digits as a 105x105 scan delivers them (enlarged with smoothing, then the device's normalisation: `ood_data::normalize::scan`), {} images, accepted as the right digit: {:.2}% (as drawn, MNIST test: {:.2}%)",
            v.n,
            100.0 * v.accepted_correct,
            100.0 * d.mnist.accepted_correct
        ));
    }
    if let Some(v) = &d.pen_digits {
        s.push_str(&format!(
            ".\n\nThe other side of the symbols row: {} digits drawn by the same pen and hand from templates (`ood_data::nearood::pen_digits`), accepted as the right digit: {:.2}%",
            v.n,
            100.0 * v.accepted_correct
        ));
    }
    if let Some(v) = &d.val_photographed {
        s.push_str(&format!(
            ".\n\nThe camera's side: {} validation digits photographed as dark ink on a lit 640x480 page (a lighting gradient, sensor noise; `ood_data::normalize::photo`) and brought back by the device's own normalisation, accepted as the right digit: {:.2}%",
            v.n,
            100.0 * v.accepted_correct
        ));
    }
    s.push_str(".\n\nMNIST test and the OOD test sets (reported only, never used to choose):\n\n");
    let mut rep = vec![d.mnist.clone()];
    rep.extend(d.ood.iter().cloned());
    s.push_str(&crate::eval::VerdictShares::markdown(&rep));
    s
}

/// Per inversion epoch: the generated samples' diversity against real
/// digits of the same class (ratios; 1 = as varied as real digits).
fn diversity_table(epochs: &[EpochLog]) -> String {
    let rows: Vec<(usize, &super::InversionLog)> = epochs
        .iter()
        .filter_map(|e| e.inversion.as_ref())
        .enumerate()
        .filter(|(_, i)| i.diversity.is_some())
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let mut s = String::from("## Diversity of the generated samples\n\nPer conditioning digit, the mean pairwise distance of the epoch's samples (pixels: Euclidean on the 0-1 scale; features: cosine distance of the classifier's penultimate features), divided by the same measure on real MNIST validation digits of that digit. 1 = as varied as real digits, 0 = one image repeated.\n\n| epoch | pixels, mean | pixels, least diverse digit | features, mean | features, least diverse digit | real pixel distance (mean) | restarted |\n|---|---|---|---|---|---|---|\n");
    for (k, i) in rows {
        let Some(d) = &i.diversity else { continue };
        let (m, digit) = d.min_pixel_ratio();
        s.push_str(&format!(
            "| {} | {:.2} | {:.2} (digit {digit}) | {:.2} | {:.2} | {:.2} | {} |\n",
            k + 1,
            d.mean_pixel_ratio(),
            m,
            d.mean_feature_ratio(),
            d.min_feature_ratio(),
            d.real_pixel.iter().sum::<f64>() / d.real_pixel.len().max(1) as f64,
            i.restart_note().map_or(String::new(), |n| format!("yes{n}"))
        ));
    }
    s.push('\n');
    s
}
