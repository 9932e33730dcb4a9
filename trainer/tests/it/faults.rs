//! A run folder on a full disk. The disk is "filled" with a file-size
//! limit (RLIMIT_FSIZE via bash's `ulimit -f`, SIGXFSZ ignored, so that a
//! write past it fails with EFBIG as a write to a full disk fails with
//! ENOSPC): it needs no root and works as root. The run must stop with a
//! clear error naming the file and how to go on, leave no half-written
//! file, lose no finished epoch, and resume to the very numbers of a run
//! that never stopped, also when the cut fell between the checkpoint and
//! its readable copy, progress.json.

use crate::resume::{numbers, DATA};
use std::path::Path;
use std::process::Command;

/// `trainer ARGS` in `cwd`, its files limited to `limit` bytes (rounded
/// down to bash's 1 KiB blocks) when given.
fn trainer(cwd: &Path, limit: Option<u64>, args: &[&str]) -> std::process::Output {
    let exe = env!("CARGO_BIN_EXE_trainer");
    let mut c = match limit {
        Some(bytes) => {
            let mut c = Command::new("bash");
            c.args(["-c", r#"trap '' XFSZ; ulimit -f "$1"; shift; exec "$@""#, "bash"])
                .arg((bytes / 1024).to_string())
                .arg(exe);
            c
        }
        None => Command::new(exe),
    };
    c.current_dir(cwd)
        .env_remove("OOD_DATA_DIR")
        .env("RUST_LOG", "warn")
        .args(args)
        .args(DATA)
        .output()
        .expect("run the trainer")
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json")
}

#[test]
fn a_full_disk_stops_the_run_clearly_and_the_resume_loses_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    crate::fixtures::write_mnist(&tmp.path().join("data/mnist"), 600, 200);
    let mut cfg = crate::pipeline::tiny_config();
    cfg.train.epochs = 2;
    cfg.inversion.epochs = 3;
    // the generated set grows each inversion epoch, and so the checkpoint:
    // the last epoch's is the largest file the run writes
    cfg.inversion.garbage_cap = 1000;
    std::fs::write(tmp.path().join("tiny.toml"), cfg.to_toml()).expect("write config");
    let total = cfg.train.epochs + cfg.inversion.epochs;

    let full = trainer(
        tmp.path(),
        None,
        &["--config", "tiny.toml", "--out", "full", "--no-export"],
    );
    assert!(full.status.success(), "{}", String::from_utf8_lossy(&full.stderr));
    let last = std::fs::metadata(tmp.path().join("full/checkpoint.safetensors"))
        .expect("checkpoint")
        .len();

    // a disk that holds every file but the last epoch's checkpoint
    let cut = tmp.path().join("cut");
    let o = trainer(
        tmp.path(),
        Some(last - 1),
        &["--config", "tiny.toml", "--out", "cut", "--no-export"],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for needle in [
        "checkpoint.safetensors",
        "File too large",
        &format!("training stopped after {} of {total} epochs", total - 1),
        "--resume cut",
    ] {
        assert!(err.contains(needle), "stderr lacks {needle:?}: {err}");
    }
    assert_eq!(err.matches("os error 27").count(), 1, "the cause once: {err}");
    let progress = json(&cut.join("progress.json"));
    assert_eq!(progress["epochs_done"], total - 1, "every finished epoch kept");
    assert!(!cut.join("report.json").exists());
    let parts: Vec<String> = std::fs::read_dir(&cut)
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') || n.ends_with(".tmp"))
        .collect();
    assert!(parts.is_empty(), "half-written files left: {parts:?}");

    // as if the disk had filled one write later: the checkpoint of the
    // last finished epoch saved, its progress.json not (one epoch behind)
    let mut behind = progress.clone();
    behind["epochs_done"] = (total - 2).into();
    behind["log"].as_array_mut().expect("log").pop();
    std::fs::write(cut.join("progress.json"), behind.to_string()).expect("write");

    let resumed = trainer(tmp.path(), None, &["--resume", "cut", "--no-export"]);
    let err = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success(), "{err}");
    assert!(
        err.contains("a write was cut; going on from the checkpoint"),
        "{err}"
    );
    assert_eq!(numbers(&cut), numbers(&tmp.path().join("full")));
    assert_eq!(
        std::fs::read(cut.join("classifier.safetensors")).expect("weights"),
        std::fs::read(tmp.path().join("full/classifier.safetensors")).expect("weights")
    );
}
