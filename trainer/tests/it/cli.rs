//! The `trainer` binary on bad input, as a new user would meet it: each case
//! must end with one `error:` line naming what and where, a non-zero exit, and
//! nothing created or overwritten.

use std::path::Path;
use std::process::{Command, Output};

fn trainer(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(args)
        .current_dir(cwd)
        .env_remove("OOD_DATA_DIR")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run trainer")
}

/// Asserts failure with a single-line error that contains every `needle`.
fn assert_clear_error(out: &Output, needles: &[&str]) {
    assert!(!out.status.success(), "expected failure");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or("");
    assert!(
        last.starts_with("error: "),
        "last line should be the error: {stderr}"
    );
    for n in needles {
        assert!(last.contains(n), "error line lacks {n:?}: {last}");
    }
}

#[test]
fn missing_data_dir() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = trainer(
        &["--offline", "--data-dir", "no-such-dir", "--out", "run"],
        tmp.path(),
    );
    assert_clear_error(&out, &["no-such-dir", "--data-dir"]);
    assert!(!tmp.path().join("run").exists());
}

#[test]
fn truncated_idx_file() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mnist = tmp.path().join("data/mnist");
    crate::fixtures::write_mnist(&mnist, 20, 10);
    let p = mnist.join("train-images-idx3-ubyte");
    let bytes = std::fs::read(&p).expect("read");
    std::fs::write(&p, &bytes[..bytes.len() - 100]).expect("truncate");
    let out = trainer(&["--offline", "--data-dir", "data", "--out", "run"], tmp.path());
    assert_clear_error(&out, &["train-images-idx3-ubyte", "truncated"]);
    assert!(!tmp.path().join("run").exists());
}

#[test]
fn wrong_checksum() {
    // well-formed IDX files that are not the real MNIST
    let tmp = tempfile::tempdir().expect("tmp");
    crate::fixtures::write_mnist(&tmp.path().join("data/mnist"), 20, 10);
    let out = trainer(&["--offline", "--data-dir", "data", "--out", "run"], tmp.path());
    assert_clear_error(&out, &["sha256 mismatch", "train-images-idx3-ubyte"]);
    assert!(!tmp.path().join("run").exists());
}

#[test]
fn image_folder_with_a_non_image_file() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("imgs/cats");
    std::fs::create_dir_all(&dir).expect("mkdir");
    image::GrayImage::new(30, 30)
        .save(dir.join("a.png"))
        .expect("png");
    std::fs::write(dir.join("notes.txt"), "not an image").expect("write");
    let out = trainer(&["--offline", "--ood", "mine=imgs", "--out", "run"], tmp.path());
    assert_clear_error(&out, &["notes.txt", "not a PNG or JPEG"]);
    assert!(!tmp.path().join("run").exists());
}

#[test]
fn empty_image_folder() {
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::create_dir(tmp.path().join("empty")).expect("mkdir");
    let out = trainer(&["--offline", "--ood", "e=empty", "--out", "run"], tmp.path());
    assert_clear_error(&out, &["empty", "no image files"]);
}

#[test]
fn bad_configs_and_existing_run_folder() {
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::write(tmp.path().join("zero.toml"), "[train]\nepochs = 0\n").expect("write");
    assert_clear_error(
        &trainer(&["--config", "zero.toml"], tmp.path()),
        &["zero.toml", "train.epochs"],
    );
    std::fs::write(tmp.path().join("neg.toml"), "[train]\nlr = -0.1\n").expect("write");
    assert_clear_error(
        &trainer(&["--config", "neg.toml"], tmp.path()),
        &["neg.toml", "train.lr"],
    );
    std::fs::write(tmp.path().join("typo.toml"), "[train]\nepoch = 3\n").expect("write");
    assert_clear_error(
        &trainer(&["--config", "typo.toml"], tmp.path()),
        &["typo.toml", "unknown field"],
    );
    assert_clear_error(&trainer(&["--preset", "nope"], tmp.path()), &["unknown preset"]);

    // a non-empty run folder is refused before anything else happens
    std::fs::create_dir(tmp.path().join("run")).expect("mkdir");
    std::fs::write(tmp.path().join("run/keep.txt"), "precious").expect("write");
    let out = trainer(&["--offline", "--out", "run"], tmp.path());
    assert_clear_error(&out, &["run", "already exists", "nothing was overwritten"]);
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("run/keep.txt")).expect("read"),
        "precious"
    );
    assert_eq!(std::fs::read_dir(tmp.path().join("run")).expect("dir").count(), 1);
    // another run's folder: its progress is not this run's (no "stopped after")
    std::fs::write(
        tmp.path().join("run/progress.json"),
        r#"{"epochs_done": 23, "generated_seen": 0, "log": [], "before": null, "wall_seconds": 1.0}"#,
    )
    .expect("write");
    let out = trainer(&["--offline", "--out", "run"], tmp.path());
    assert_clear_error(&out, &["run", "already exists", "nothing was overwritten"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("stopped after") && !err.contains("--resume"),
        "{err}"
    );
}

#[test]
fn help_explains_every_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_trainer"))
        .arg("--help")
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    for flag in [
        "--preset",
        "--config",
        "--epochs",
        "--seed",
        "--out",
        "--ood",
        "--cuda",
        "--data-dir",
        "--offline",
    ] {
        let i = lines
            .iter()
            .position(|l| l.trim_start().starts_with(flag))
            .unwrap_or_else(|| panic!("{flag} missing from --help"));
        let description = lines.get(i + 1).map_or("", |l| l.trim());
        assert!(
            description.len() > 10,
            "{flag} has no description: {description:?}"
        );
    }
}
