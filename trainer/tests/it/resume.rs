//! Checkpoints and `--resume`: a run killed with SIGKILL mid-run and resumed
//! ends with the same numbers as an uninterrupted run of the same seed.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn trainer(cwd: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_trainer"));
    c.current_dir(cwd)
        .env_remove("OOD_DATA_DIR")
        .env("RUST_LOG", "warn");
    c
}

pub const DATA: [&str; 4] = ["--offline", "--no-verify", "--data-dir", "data"];

fn epochs_done(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("progress.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["epochs_done"].as_u64())
        .unwrap_or(0) as usize
}

/// The report without wall-clock fields (they differ between any two runs).
pub fn numbers(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
    for e in v["epochs"].as_array_mut().expect("epochs") {
        e["classifier"]["seconds"] = 0.into();
        e["classifier"]["samples_per_sec"] = 0.into();
        if e["inversion"].is_object() {
            e["inversion"]["generator_seconds"] = 0.into();
        }
    }
    v
}

#[test]
fn sigkill_mid_run_then_resume_on_other_thread_counts_matches_an_uninterrupted_run() {
    let tmp = tempfile::tempdir().expect("tmp");
    crate::fixtures::write_mnist(&tmp.path().join("data/mnist"), 600, 200);
    let mut cfg = crate::pipeline::tiny_config();
    cfg.inversion.epochs = 4;
    cfg.inversion.generator_steps = 40;
    // the classifier shipped is the mean over the last four epochs, so the
    // kill below lands while the checkpoint carries its running sums
    cfg.train.average_epochs = cfg.inversion.epochs;
    std::fs::write(tmp.path().join("tiny.toml"), cfg.to_toml()).expect("write config");

    // each process on another thread count: the CPU path's results do not
    // depend on it, so the bytes compared below must still match
    let full = trainer(tmp.path())
        .env("TRAINER_THREADS", "1")
        .args(["--config", "tiny.toml", "--out", "full"])
        .args(DATA)
        .output()
        .expect("run");
    assert!(full.status.success(), "{}", String::from_utf8_lossy(&full.stderr));

    let mut child = trainer(tmp.path())
        .env("TRAINER_THREADS", "3")
        .args(["--config", "tiny.toml", "--out", "cut"])
        .args(DATA)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let cut = tmp.path().join("cut");
    let deadline = Instant::now() + Duration::from_secs(300);
    // kill once pre-training and one inversion epoch are saved: mid-run
    while epochs_done(&cut) < cfg.train.epochs + 1 {
        assert!(Instant::now() < deadline, "run made no progress");
        if let Ok(Some(status)) = child.try_wait() {
            panic!("run ended before it could be killed: {status}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let done = epochs_done(&cut);
    assert!(
        done < cfg.train.epochs + cfg.inversion.epochs,
        "killed too late ({done} epochs done)"
    );
    assert!(
        !cut.join("report.json").exists(),
        "a killed run has no final report"
    );

    // resuming with a different config is refused, and changes nothing
    let other = trainer(tmp.path())
        .args(["--resume", "cut", "--epochs", "99"])
        .args(DATA)
        .output()
        .expect("run");
    assert!(!other.status.success());
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(err.contains("different config"), "{err}");
    assert_eq!(epochs_done(&cut), done);

    let resumed = trainer(tmp.path())
        .env("TRAINER_THREADS", "2")
        .args(["--resume", "cut"])
        .args(DATA)
        .output()
        .expect("resume");
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    let full_dir = tmp.path().join("full");
    assert_eq!(numbers(&cut), numbers(&full_dir));
    assert_eq!(
        std::fs::read(cut.join("classifier.safetensors")).expect("weights"),
        std::fs::read(full_dir.join("classifier.safetensors")).expect("weights")
    );
    assert_eq!(
        std::fs::read_to_string(cut.join("eval.json")).expect("eval"),
        std::fs::read_to_string(full_dir.join("eval.json")).expect("eval")
    );
}

#[test]
fn resume_of_a_folder_without_a_checkpoint_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::create_dir(tmp.path().join("r")).expect("mkdir");
    std::fs::write(
        tmp.path().join("r/config.toml"),
        crate::pipeline::tiny_config().to_toml(),
    )
    .expect("write");
    let out = trainer(tmp.path())
        .args(["--resume", "r"])
        .args(DATA)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nothing to resume"), "{err}");
}
