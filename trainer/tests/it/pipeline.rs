//! A whole training run on tiny synthetic data: every artifact is written,
//! the numbers are sane, and the same seed gives the same numbers.

use std::path::PathBuf;
use trainer::config::TrainConfig;
use trainer::data::fetch::Sources;
use trainer::model::{ClassifierConfig, Device};

/// A config small enough for tests: seconds per run.
pub fn tiny_config() -> TrainConfig {
    let mut c = TrainConfig {
        name: "tiny".into(),
        seed: 7,
        model: ClassifierConfig {
            conv1: 6,
            conv2: 12,
            hidden: 24,
            dropout: 0.1,
        },
        ..Default::default()
    };
    c.data.validation = 50;
    c.data.noise_count = 60;
    c.data.augment_shift = 0; // the classes are bars 2 px apart
    c.train.epochs = 6;
    c.train.batch_size = 32;
    c.eval.noise_sets = 40;
    c.eval.per_epoch = 30;
    c.inversion.epochs = 2;
    c.inversion.batch_size = 16;
    c.inversion.generator_steps = 5;
    c.inversion.samples_per_epoch = 30;
    c.inversion.garbage_cap = 40;
    c.inversion.generator.hidden1 = 32;
    c.inversion.generator.hidden2 = 64;
    c
}

fn sources(dir: &std::path::Path) -> Sources {
    let mut s = Sources::new(Some(dir.to_path_buf())).offline();
    s.verify = false; // synthetic stand-ins for MNIST
    s.fashion_dirs.clear();
    s.cifar_dirs.clear();
    s
}

#[test]
fn tiny_run_writes_every_artifact_and_repeats_exactly() {
    let tmp = tempfile::tempdir().expect("tmp");
    crate::fixtures::write_mnist(&tmp.path().join("mnist"), 600, 200);
    // an extra OOD set in SVHN's .mat format, and one as an IDX file
    let mat = tmp.path().join("svhn.mat");
    std::fs::write(
        &mat,
        trainer::data::svhn::write_svhn_like([32, 32, 3, 4], &[90; 32 * 32 * 3 * 4], &[1, 2, 3, 10], true),
    )
    .expect("write mat");
    let idx = tmp.path().join("ood-idx3-ubyte");
    std::fs::write(&idx, trainer::data::idx::encode(&[5, 28, 28], &[200; 5 * 784])).expect("write idx");
    let extra: Vec<(String, PathBuf)> = vec![("svhn".into(), mat), ("flat".into(), idx)];
    let cfg = tiny_config();
    let src = sources(tmp.path());

    let a =
        trainer::run::run(&cfg, &src, &tmp.path().join("run-a"), &extra, &Device::Cpu, false).expect("run a");
    for f in [
        "config.toml",
        "classifier.safetensors",
        "checkpoint.safetensors",
        "progress.json",
        "report.json",
        "report.md",
        "eval.json",
        "run.json",
        "curves.png",
        "roc.png",
        "hist_uncertainty.png",
        "hist_garbage_prob.png",
        "samples_epoch001.png",
        "samples_epoch002.png",
    ] {
        assert!(a.dir.join(f).is_file(), "{f} missing");
    }
    assert_eq!(a.epochs.len(), 8, "6 pre-training + 2 inversion epochs");
    let inv: Vec<_> = a.epochs.iter().filter_map(|e| e.inversion.as_ref()).collect();
    assert_eq!(inv.len(), 2);
    assert_eq!(inv[0].garbage_size, 30);
    assert_eq!(inv[1].garbage_size, 40, "reservoir capped at garbage_cap");
    assert!(inv.iter().all(|i| (0.0..=1.0).contains(&i.new_samples_mean_u)));
    assert!(a.before.is_some());
    let md = std::fs::read_to_string(a.dir.join("report.md")).expect("report");
    assert!(
        md.contains("before inversion") && md.contains("avg U of inverted"),
        "{md}"
    );
    // bars at distinct columns are easy: the tiny net must learn them
    assert!(a.eval.id.accuracy > 0.8, "accuracy {}", a.eval.id.accuracy);
    let names: Vec<&str> = a.eval.ood.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["uniform-noise", "gaussian-noise", "svhn", "flat"]);
    assert_eq!(
        a.info.skipped_sets.len(),
        2,
        "fashion-mnist and cifar10 are absent here"
    );
    assert_eq!(a.info.train_class_counts[ood_core::GARBAGE], 60 + 40);
    let weights = std::fs::read(a.dir.join("classifier.safetensors")).expect("weights");
    assert_eq!(a.info.weights_sha256, trainer::data::fetch::sha256_hex(&weights));
    let cfg_back = TrainConfig::from_toml(
        &std::fs::read_to_string(a.dir.join("config.toml")).expect("cfg"),
        "run config",
    )
    .expect("parse run config");
    assert_eq!(cfg_back, cfg);

    // same seed, same CPU -> same numbers
    let b =
        trainer::run::run(&cfg, &src, &tmp.path().join("run-b"), &extra, &Device::Cpu, false).expect("run b");
    assert_eq!(a.eval, b.eval);
    assert_eq!(
        weights,
        std::fs::read(b.dir.join("classifier.safetensors")).expect("weights b")
    );
}
