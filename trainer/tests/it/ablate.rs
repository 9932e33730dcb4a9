//! `trainer ablate` end to end on tiny synthetic data: one run per (variant,
//! seed), the table, its JSON and its picture; a second call reads the
//! finished runs instead of training them again.

use crate::resume::DATA;
use std::path::Path;
use std::process::Command;

fn ablate(cwd: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_trainer"))
        .current_dir(cwd)
        .env_remove("OOD_DATA_DIR")
        .env("RUST_LOG", "info")
        .args(["ablate", "--config", "tiny.toml", "--seeds", "1,2"])
        .args(["--variants", "inversion,no-inversion", "--out", "ab"])
        .args(DATA)
        .output()
        .expect("run trainer ablate")
}

#[test]
fn ablate_writes_the_table_its_json_and_its_picture_and_reuses_finished_runs() {
    let tmp = tempfile::tempdir().expect("tmp");
    crate::fixtures::write_mnist(&tmp.path().join("data/mnist"), 600, 200);
    let cfg = crate::pipeline::tiny_config();
    std::fs::write(tmp.path().join("tiny.toml"), cfg.to_toml()).expect("write config");
    let first = ablate(tmp.path());
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let ab = tmp.path().join("ab");
    for run in [
        "inversion-s1",
        "inversion-s2",
        "no-inversion-s1",
        "no-inversion-s2",
    ] {
        assert!(ab.join(run).join("report.json").is_file(), "{run}");
    }
    let md = std::fs::read_to_string(ab.join("ablation.md")).expect("ablation.md");
    assert!(
        md.contains("| inversion (seeds 1, 2) | no-inversion (seeds 1, 2) |"),
        "{md}"
    );
    assert!(
        md.contains("| counterfeit acceptance |") && md.contains("(ablation.png)"),
        "{md}"
    );
    let rows: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ab.join("ablation.json")).expect("json"))
            .expect("parse");
    assert_eq!(rows.as_array().map(Vec::len), Some(4));
    let png = image::open(ab.join("ablation.png"))
        .expect("ablation.png")
        .to_rgb8();
    assert!(
        png.width() > 1000 && png.height() > 300,
        "{}x{}",
        png.width(),
        png.height()
    );
    let weights = std::fs::read(ab.join("inversion-s2/classifier.safetensors")).expect("weights");

    let second = ablate(tmp.path());
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let log = String::from_utf8_lossy(&second.stderr);
    assert_eq!(log.matches("finished before, read from").count(), 4, "{log}");
    assert_eq!(
        std::fs::read(ab.join("inversion-s2/classifier.safetensors")).expect("weights"),
        weights,
        "read, not trained again"
    );
    assert_eq!(
        std::fs::read_to_string(ab.join("ablation.md")).expect("ablation.md"),
        md,
        "the same table from the same runs"
    );
}
