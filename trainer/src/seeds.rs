//! Random streams named by purpose. Each draw of a run comes from the stream
//! of its purpose and epoch, derived from the run's seed alone, so a resumed
//! run draws exactly what an uninterrupted one would, and adding a draw to
//! one purpose never shifts another.

use rand::rngs::StdRng;
use rand::SeedableRng;

/// What a stream is for. The numbers are part of every run's reproducibility:
/// never renumber one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Stream {
    /// The validation split and the garbage noise seeds.
    Data = 1,
    /// Initial classifier and generator weights.
    Init = 2,
    /// An epoch's shuffling, augmentation and dropout.
    Epoch = 3,
    /// An epoch's generator steps and samples.
    Invert = 4,
    /// An epoch's reservoir sampling of the generated garbage.
    Garbage = 5,
    /// The export's calibration noise.
    Export = 6,
    /// A collapsed generator's fresh weights (epoch = the epoch it restarted in).
    Restart = 7,
    /// The counterfeit-acceptance check's fresh generator, its steps and samples.
    Counterfeit = 8,
    /// The synthetic near-OOD validation sets.
    NearOod = 9,
    /// The fresh generator of an inversion epoch (`inversion.fresh_generator`).
    Fresh = 10,
    /// The pen-drawn validation digits.
    PenDigits = 11,
    /// How the photographed validation digits lie on their pages.
    PhotoDigits = 12,
    /// The photographed training digits (`data.photographed_count`).
    PhotoTrain = 13,
    /// The training and turned digits redrawn with other pens (`data.pen_count`).
    Pens = 14,
    /// The evaluation noise sets.
    EvalNoise = 0x0e5a_1000,
}

impl Stream {
    /// The stream of this purpose for `epoch` (0-based; 0 for one-off draws).
    pub fn rng(self, seed: u64, epoch: usize) -> StdRng {
        rng_for(seed, self as u64, epoch)
    }
}

/// Derives an independent, reproducible RNG from `(seed, purpose, epoch)`
/// by splitmix64.
pub fn rng_for(seed: u64, purpose: u64, epoch: usize) -> StdRng {
    let mut x = seed
        ^ purpose.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (epoch as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    StdRng::seed_from_u64(x ^ (x >> 31))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn streams_differ_by_purpose_and_epoch_and_repeat() {
        let draw = |s: Stream, e: usize| s.rng(7, e).random::<u64>();
        assert_eq!(draw(Stream::Epoch, 3), draw(Stream::Epoch, 3));
        assert_ne!(draw(Stream::Epoch, 3), draw(Stream::Epoch, 4));
        assert_ne!(draw(Stream::Epoch, 3), draw(Stream::Invert, 3));
        assert_eq!(
            Stream::Data.rng(7, 0).random::<u64>(),
            rng_for(7, 1, 0).random::<u64>()
        );
    }
}
