//! What both trainer benches time: the default classifier with its optimiser,
//! the default generator, one batch of 64 random images with labels, and
//! the default (the seed's) inversion loss weights.

use rand::rngs::StdRng;
use rand::Rng;
use trainer::config::InversionConfig;
use trainer::model::generator::{Generator, GeneratorConfig};
use trainer::model::inversion::LossWeights;
use trainer::model::{optim::AdamParams, Classifier, ClassifierConfig, ClassifierTrainer, Device};

/// The batch size of every timed step.
pub const BATCH: usize = 64;

/// The nets and one batch.
pub struct Fixture {
    /// The default classifier with a fresh Adam.
    pub trainer: ClassifierTrainer,
    /// The default generator.
    pub generator: Generator,
    /// `BATCH` random 28x28 images.
    pub pixels: Vec<u8>,
    /// Their labels, every class in turn.
    pub labels: Vec<u8>,
    /// The inversion loss weights of the default config (500/500/6000/10).
    pub loss: LossWeights,
}

/// Draws the fixture from `rng`.
pub fn fixture(rng: &mut StdRng) -> Fixture {
    let model = Classifier::new(&ClassifierConfig::default(), rng, &Device::Cpu).expect("model");
    let trainer = ClassifierTrainer::new(model, AdamParams::default()).expect("trainer");
    let pixels = (0..BATCH * ood_core::IMG_PIXELS).map(|_| rng.random()).collect();
    let labels = (0..BATCH).map(|i| (i % ood_core::NUM_CLASSES) as u8).collect();
    let generator = Generator::new(&GeneratorConfig::default(), 1e-3, rng, &Device::Cpu).expect("generator");
    Fixture {
        trainer,
        generator,
        pixels,
        labels,
        loss: InversionConfig::default().weights(),
    }
}
