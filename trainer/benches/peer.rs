//! The trainer's side of the PyTorch peer benchmark (`scripts/peer_bench.sh`):
//! one classifier training step and one generator (inversion) step at batch
//! 64 on the default nets, timed with a plain clock, printed as one JSON line
//! each so the script can put them beside PyTorch's numbers from the same
//! run. Threads: `TRAINER_THREADS` for the hand-written CPU path and
//! `CANDLE_NUM_THREADS` for candle's own ops (the script sets 1, as
//! `.cargo/config.toml` does for the trainer).
//!
//! Usage: `cargo bench -p trainer --bench peer -- [SECONDS]` (default 3 per step).

mod fixtures;

use fixtures::{fixture, Fixture, BATCH};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::time::Instant;
use trainer::model::inversion;
const WARMUP: usize = 10;

/// glibc's malloc maps and unmaps every large tensor buffer, paying page
/// faults on each step; mimalloc keeps them (as the trainer binary does).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs `step` for `WARMUP` calls, then for about `seconds`; samples/s.
fn time(seconds: f64, mut step: impl FnMut()) -> (f64, usize) {
    for _ in 0..WARMUP {
        step();
    }
    let t0 = Instant::now();
    let mut n = 0;
    while n < 5 || t0.elapsed().as_secs_f64() < seconds {
        step();
        n += 1;
    }
    ((n * BATCH) as f64 / t0.elapsed().as_secs_f64(), n)
}

fn main() {
    // cargo bench passes `--bench`; the first number is the time per step
    let seconds = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<f64>().ok())
        .unwrap_or(3.0);
    let threads = std::env::var("TRAINER_THREADS").unwrap_or_else(|_| "default".into());
    let mut rng = StdRng::seed_from_u64(0);
    let Fixture {
        trainer: mut t,
        generator: mut gen,
        pixels: px,
        labels,
        loss: lw,
    } = fixture(&mut rng);
    let w = [1.0f32; ood_core::NUM_CLASSES];
    let (sps, n) = time(seconds, || {
        t.step(&px, &labels, &w, &mut rng).expect("step");
    });
    println!(
        "{{\"engine\": \"trainer\", \"step\": \"classifier\", \"threads\": \"{threads}\", \"samples_per_sec\": {sps:.1}, \"steps\": {n}}}"
    );
    let (sps, n) = time(seconds, || {
        inversion::generator_step(
            &mut gen,
            &t.model,
            BATCH,
            &lw,
            inversion::Ask::default(),
            &mut rng,
        )
        .expect("generator step");
    });
    println!(
        "{{\"engine\": \"trainer\", \"step\": \"generator\", \"threads\": \"{threads}\", \"samples_per_sec\": {sps:.1}, \"steps\": {n}}}"
    );
}
