//! The evaluation sets, listed once for every caller (the trainer's reports,
//! the export's measurements, `edge eval`): MNIST test as the in-distribution
//! set; Fashion-MNIST and CIFAR-10 test when they can be found (skipped, with
//! the reason, when they cannot); two synthetic noise sets; then any sets the
//! user named.

use crate::error::{Error, Result};
use crate::fetch::Sources;
use crate::{synth, Dataset};
use rand::rngs::StdRng;

/// Names of the synthetic noise sets (their pixels are drawn, not read).
pub const NOISE_SETS: [&str; 2] = ["uniform-noise", "gaussian-noise"];

/// The in-distribution test set and the OOD sets, in report order.
#[derive(Debug, Clone)]
pub struct EvalSets {
    /// In-distribution test set.
    pub id: Dataset,
    /// OOD sets: Fashion-MNIST, CIFAR-10 (when found), the noise sets (when
    /// asked for), then the extra sets.
    pub ood: Vec<Dataset>,
    /// Standard sets that were not found, each as `name: reason` (the
    /// reason says how to get it).
    pub skipped: Vec<String>,
}

impl EvalSets {
    /// Loads the standard OOD sets for `id`. `noise`: how many images each
    /// noise set gets and the RNG that draws them (`None`: no noise sets).
    /// A standard set that is not found is skipped with a warning; any other
    /// error (a corrupt file) is fatal.
    pub fn load(
        sources: &Sources,
        id: Dataset,
        noise: Option<(usize, &mut StdRng)>,
        extra: Vec<Dataset>,
    ) -> Result<Self> {
        let mut ood = Vec::new();
        let mut skipped = Vec::new();
        for (name, r) in [
            ("fashion-mnist", sources.fashion_test()),
            ("cifar10", sources.cifar10_test()),
        ] {
            match r {
                Ok(ds) => ood.push(ds),
                Err(e @ Error::NotFound { .. }) => {
                    tracing::warn!("skipping {name}: {e}");
                    skipped.push(format!("{name}: {e}"));
                }
                Err(e) => return Err(e),
            }
        }
        if let Some((n, rng)) = noise {
            ood.extend(noise_sets(n, rng));
        }
        ood.extend(extra);
        Ok(Self { id, ood, skipped })
    }

    /// The OOD sets that are real images (no synthetic noise set).
    pub fn real_ood(&self) -> Vec<Dataset> {
        self.ood
            .iter()
            .filter(|d| !NOISE_SETS.contains(&d.name.as_str()))
            .cloned()
            .collect()
    }
}

/// The set's name in an [`EvalSets::skipped`] entry (`name: reason`).
pub fn skipped_name(entry: &str) -> &str {
    entry.split_once(':').map_or(entry, |(name, _)| name).trim()
}

/// The two evaluation noise sets, `n` images each. They differ from the
/// training garbage noise (N(0.5, 0.3)): uniform pixels, and darker,
/// lower-contrast Gaussian pixels N(0.3, 0.15).
pub fn noise_sets(n: usize, rng: &mut StdRng) -> [Dataset; 2] {
    let uniform = synth::uniform(NOISE_SETS[0], n, rng);
    let gaussian = synth::gaussian(NOISE_SETS[1], n, 0.3, 0.15, rng);
    [uniform, gaussian]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn absent_sets_are_skipped_with_a_reason_and_noise_is_added() -> Result<()> {
        let d = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let mut s = Sources::new(Some(d.path().to_path_buf())).offline();
        s.fashion_dirs.clear();
        s.cifar_dirs.clear();
        let id = Dataset {
            name: "id".into(),
            ..Default::default()
        };
        let mut rng = StdRng::seed_from_u64(3);
        let sets = EvalSets::load(&s, id.clone(), Some((4, &mut rng)), vec![])?;
        let names: Vec<&str> = sets.ood.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, NOISE_SETS);
        assert!(sets.ood.iter().all(|d| d.len() == 4));
        assert_eq!(sets.skipped.len(), 2);
        assert!(
            sets.skipped[0].starts_with("fashion-mnist: "),
            "{:?}",
            sets.skipped
        );
        assert!(sets.real_ood().is_empty());
        let plain = EvalSets::load(&s, id, None, vec![])?;
        assert!(plain.ood.is_empty());
        Ok(())
    }
}
