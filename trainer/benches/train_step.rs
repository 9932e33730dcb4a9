//! One classifier training step at batch 64 (the default net), on real shapes.
//! Report samples/s = 64 / time per step. Threads: `TRAINER_THREADS` (the
//! hand-written CPU path; default every core) and `CANDLE_NUM_THREADS`
//! (candle's own ops); set both to 1 for single-thread figures.

mod fixtures;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fixtures::{fixture, Fixture, BATCH};
use rand::rngs::StdRng;
use rand::SeedableRng;
use trainer::model::generator::{Generator, GeneratorConfig, GeneratorKind};
use trainer::model::inversion::{self, LossWeights};
use trainer::model::{optim::AdamParams, Classifier, ClassifierConfig, ClassifierTrainer, Device};

/// glibc's malloc maps and unmaps every large tensor buffer, paying page
/// faults on each step; mimalloc keeps them (measured: see README).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn train_step(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(0);
    let Fixture {
        trainer: mut t,
        generator: mut gen,
        pixels: px,
        labels,
        loss,
    } = fixture(&mut rng);
    let mut stock = Classifier::new(&ClassifierConfig::default(), &mut rng, &Device::Cpu).expect("model");
    stock.set_native_ops(true);
    let mut stock = ClassifierTrainer::new(stock, AdamParams::default()).expect("trainer");
    let w = [1.0f32; ood_core::NUM_CLASSES];
    let mut g = c.benchmark_group("classifier");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("train_step_b64", |b| {
        b.iter(|| t.step(&px, &labels, &w, &mut rng).expect("step"))
    });
    // peer in the same run: the candle graph (stock conv2d, reshape/max
    // pooling), which CUDA runs
    g.bench_function("train_step_b64_candle_stock_ops", |b| {
        b.iter(|| stock.step(&px, &labels, &w, &mut rng).expect("step"))
    });
    // one inversion step: generator forward, frozen classifier forward and
    // backward to the input, generator update (seed loss weights)
    g.bench_function("generator_step_b64", |b| {
        b.iter(|| {
            inversion::generator_step(
                &mut gen,
                &t.model,
                BATCH,
                &loss,
                inversion::Ask::default(),
                &mut rng,
            )
            .expect("generator step")
        })
    });
    // the same step with the stroke generator (`pen`'s head and loss:
    // mode seeking and ink on): both networks and the pen on the
    // hand-written path
    let pen_cfg = GeneratorConfig {
        kind: GeneratorKind::Strokes,
        ..GeneratorConfig::default()
    };
    let mut pen = Generator::new(&pen_cfg, 1e-3, &mut rng, &Device::Cpu).expect("stroke generator");
    let pen_loss = LossWeights {
        mode_seeking: 500.0,
        ink: 2000.0,
        ..loss
    };
    g.bench_function("generator_step_strokes_b64", |b| {
        b.iter(|| {
            inversion::generator_step(
                &mut pen,
                &t.model,
                BATCH,
                &pen_loss,
                inversion::Ask::default(),
                &mut rng,
            )
            .expect("stroke generator step")
        })
    });
    g.bench_function("inference_b64", |b| {
        b.iter(|| t.model.logits(&px, BATCH).expect("logits"))
    });
    g.finish();
}

// criterion's macros generate undocumented functions
#[allow(missing_docs)]
mod generated {
    use super::*;
    criterion_group!(benches, train_step);
}
criterion_main!(generated::benches);
