//! A whole training run on tiny synthetic data: every artifact is written,
//! the numbers are sane, and the same seed gives the same numbers.

use std::path::PathBuf;
use trainer::config::TrainConfig;
use trainer::data::fetch::Sources;
use trainer::model::{ClassifierConfig, Device};

fn tiny_config() -> TrainConfig {
    let mut c = TrainConfig {
        name: "tiny".into(),
        seed: 7,
        model: ClassifierConfig {
            conv1: 4,
            conv2: 8,
            hidden: 16,
            dropout: 0.1,
        },
        ..Default::default()
    };
    c.data.validation = 50;
    c.data.noise_count = 60;
    c.data.augment_shift = 0; // the classes are bars 2 px apart
    c.train.epochs = 4;
    c.train.batch_size = 32;
    c.eval.noise_sets = 40;
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

    let a = trainer::run::run(&cfg, &src, &tmp.path().join("run-a"), &extra, &Device::Cpu).expect("run a");
    for f in [
        "config.toml",
        "classifier.safetensors",
        "train_log.json",
        "eval.json",
        "eval.md",
        "run.json",
    ] {
        assert!(a.dir.join(f).is_file(), "{f} missing");
    }
    assert_eq!(a.epochs.len(), 4);
    // bars at distinct columns are easy: the tiny net must learn them
    assert!(a.eval.id.accuracy > 0.8, "accuracy {}", a.eval.id.accuracy);
    let names: Vec<&str> = a.eval.ood.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["uniform-noise", "gaussian-noise", "svhn", "flat"]);
    assert_eq!(
        a.info.skipped_sets.len(),
        2,
        "fashion-mnist and cifar10 are absent here"
    );
    assert_eq!(a.info.train_class_counts[ood_core::GARBAGE], 60);
    let weights = std::fs::read(a.dir.join("classifier.safetensors")).expect("weights");
    assert_eq!(a.info.weights_sha256, trainer::data::fetch::sha256_hex(&weights));
    let cfg_back = TrainConfig::from_toml(
        &std::fs::read_to_string(a.dir.join("config.toml")).expect("cfg"),
        "run config",
    )
    .expect("parse run config");
    assert_eq!(cfg_back, cfg);

    // same seed, same CPU -> same numbers
    let b = trainer::run::run(&cfg, &src, &tmp.path().join("run-b"), &extra, &Device::Cpu).expect("run b");
    assert_eq!(a.eval, b.eval);
    assert_eq!(
        weights,
        std::fs::read(b.dir.join("classifier.safetensors")).expect("weights b")
    );
}
