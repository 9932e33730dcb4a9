//! The simulator binary end to end: real test images (the shipped model's
//! golden inputs: MNIST, Fashion-MNIST, CIFAR-10 and noise), verdicts
//! compared with `edge classify` on the same files.

use std::path::{Path, PathBuf};
use std::process::Command;

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/default")
}

/// The golden inputs of the shipped model as 28x28 PNG files.
fn write_inputs(dir: &Path) -> Vec<PathBuf> {
    let g = edge::check::read_golden(&shipped()).expect("golden.json");
    let mut out = Vec::new();
    for (i, c) in g.cases.iter().enumerate() {
        let px = c.pixels().expect("golden pixels");
        let p = dir.join(format!("img{i:02}.png"));
        image::GrayImage::from_raw(28, 28, px)
            .expect("28x28")
            .save(&p)
            .expect("png");
        out.push(p);
    }
    out
}

/// What `edge classify --json DIR` prints for each file, through the same
/// library calls (file order, preprocessing, model, decision).
fn edge_verdicts(dir: &Path) -> Vec<serde_json::Value> {
    let model = edge::model::Model::load(&shipped(), None, None).expect("model");
    edge::report::collect_images(&[dir.to_path_buf()])
        .expect("files")
        .iter()
        .map(|f| {
            let x = edge::preprocess::load(f, None).expect("image");
            let v = model.classify(&x).expect("classify")[0].verdict;
            serde_json::json!({ "source": f.display().to_string(), "verdict": v })
        })
        .collect()
}

fn sim(args: &[&str]) -> (serde_json::Value, Vec<serde_json::Value>) {
    let o = Command::new(env!("CARGO_BIN_EXE_firmware-sim"))
        .args(args)
        .output()
        .expect("run sim");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = args[args.iter().position(|a| *a == "--out").expect("--out") + 1];
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(Path::new(out).join("summary.json")).expect("summary"))
            .expect("json");
    let log = std::fs::read_to_string(Path::new(out).join("verdicts.jsonl")).expect("log");
    (
        summary,
        log.lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect(),
    )
}

fn kind(v: &serde_json::Value) -> (String, Option<u64>) {
    // serde form of ood_core::Verdict: {"accept": {"digit": 7, ...}} or {"reject": {...}}
    let (k, body) = v
        .as_object()
        .and_then(|o| o.iter().next())
        .expect("verdict object");
    (k.clone(), body["digit"].as_u64())
}

/// Same verdict, numbers equal up to the f32 -> JSON -> f64 round trip.
fn assert_close(a: &serde_json::Value, b: &serde_json::Value) {
    assert_eq!(kind(a), kind(b));
    let (ka, va) = a.as_object().and_then(|o| o.iter().next()).expect("object");
    let vb = &b[ka];
    for (k, x) in va.as_object().expect("fields") {
        match (x.as_f64(), vb[k].as_f64()) {
            (Some(x), Some(y)) => assert!((x - y).abs() <= 1e-6 * x.abs().max(1e-30), "{k}: {x} vs {y}"),
            _ => assert_eq!(x, &vb[k], "{k}"),
        }
    }
}

#[test]
fn shown_verdicts_match_edge_classify() {
    let tmp = tempfile::tempdir().expect("tmp");
    let imgs = tmp.path().join("imgs");
    std::fs::create_dir_all(&imgs).expect("mkdir");
    let files = write_inputs(&imgs);
    let out = tmp.path().join("out");
    let (summary, log) = sim(&[
        "--images",
        imgs.to_str().expect("utf8"),
        "--out",
        out.to_str().expect("utf8"),
    ]);
    assert_eq!(summary["images"], files.len());
    assert_eq!(summary["wrong_verdicts_shown"], 0);
    assert_eq!(
        summary["verdicts_shown"],
        files.len(),
        "a clean link shows every verdict"
    );
    assert!(out.join("screen_00001.png").is_file() && out.join("screen_link_lost.png").is_file());
    let edge = edge_verdicts(&imgs);
    assert_eq!(edge.len(), log.len());
    for (e, s) in edge.iter().zip(&log) {
        assert_eq!(e["source"], s["source"]);
        assert_eq!(kind(&e["verdict"]), kind(&s["shown"]), "{}", s["source"]);
        assert_close(&e["verdict"], &s["sent"]);
    }
}

#[test]
fn a_corrupting_link_raises_the_corrupt_count_and_never_shows_a_wrong_verdict() {
    let tmp = tempfile::tempdir().expect("tmp");
    let imgs = tmp.path().join("imgs");
    std::fs::create_dir_all(&imgs).expect("mkdir");
    write_inputs(&imgs);
    let out = tmp.path().join("out");
    let dir = imgs.to_str().expect("utf8");
    // the same 22 images three times over (three --images arguments interleave)
    let (summary, log) = sim(&[
        "--images",
        dir,
        dir,
        dir,
        "--out",
        out.to_str().expect("utf8"),
        "--corrupt",
        "0.05",
        "--png-every",
        "0",
    ]);
    assert_eq!(summary["images"], 66);
    assert!(summary["corrupt_frames"].as_u64().expect("n") > 10, "{summary}");
    assert_eq!(summary["wrong_verdicts_shown"], 0);
    for s in &log {
        if !s["shown"].is_null() {
            assert_eq!(s["shown"], s["sent"], "seq {}", s["seq"]);
        }
    }
}

/// What `edge stream --wire FILE` writes for the first `n` golden inputs:
/// hello, then thumbnail + verdict per frame.
fn edge_wire(dir: &Path, n: usize) -> Vec<u8> {
    let imgs = dir.join("imgs");
    std::fs::create_dir_all(&imgs).expect("mkdir");
    let files = write_inputs(&imgs);
    let model = edge::model::Model::load(&shipped(), None, None).expect("model");
    let mut sender = edge::link::Sender::new(Vec::new());
    sender.hello(&model).expect("hello");
    for (i, f) in files.iter().take(n).enumerate() {
        let x = edge::preprocess::load(f, None).expect("image");
        let c = model.classify(&x).expect("classify")[0];
        sender.verdict(i as u32 + 1, &x, &c, 100).expect("send");
    }
    sender.into_inner()
}

/// `firmware-sim --serial WIRE --out OUT`.
fn replay(wire: &Path, out: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_firmware-sim"))
        .args([
            "--serial",
            wire.to_str().expect("utf8"),
            "--out",
            out.to_str().expect("utf8"),
        ])
        .output()
        .expect("run")
}

#[test]
fn replays_wire_frames_written_by_the_edge() {
    let tmp = tempfile::tempdir().expect("tmp");
    let wire = tmp.path().join("wire.bin");
    std::fs::write(&wire, edge_wire(tmp.path(), 5)).expect("write");
    let out = tmp.path().join("out");
    let o = replay(&wire, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(summary["verdicts_shown"], 5);
    assert_eq!(summary["corrupt_frames"], 0);
    assert_eq!(summary["cut_mid_frame_bytes"], 0);
    assert!(out.join("screen_00005.png").is_file() && out.join("screen_link_lost.png").is_file());
}

/// The serial link cut in the middle of a frame (here: a recording that
/// stops 5 bytes short of the last verdict): the display shows every
/// verdict before the cut, then "link lost", and says what was dropped.
#[test]
fn a_link_cut_mid_frame_shows_everything_before_the_cut_and_says_so() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut bytes = edge_wire(tmp.path(), 5);
    bytes.truncate(bytes.len() - 5);
    let wire = tmp.path().join("cut.bin");
    std::fs::write(&wire, &bytes).expect("write");
    let out = tmp.path().join("out");
    let o = replay(&wire, &out);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("cut in the middle of a frame"), "{err}");
    assert!(err.contains("cut.bin"), "names the recording: {err}");
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(summary["verdicts_shown"], 4, "{summary}");
    assert_eq!(summary["corrupt_frames"], 0, "a cut frame is not a corrupt one");
    assert!(
        summary["cut_mid_frame_bytes"].as_u64().expect("count") > 0,
        "{summary}"
    );
    for seq in 1..=4 {
        assert!(
            out.join(format!("screen_{seq:05}.png")).is_file(),
            "verdict {seq} shown"
        );
    }
    assert!(
        !out.join("screen_00005.png").exists(),
        "the cut verdict is not shown"
    );
    assert!(out.join("screen_link_lost.png").is_file());
}

/// A model folder that is not what its manifest says stops the simulator
/// before any screen is drawn, with the edge's message and what to do.
#[test]
fn a_tampered_or_foreign_model_is_refused_with_what_to_do() {
    let tmp = tempfile::tempdir().expect("tmp");
    let imgs = tmp.path().join("imgs");
    std::fs::create_dir_all(&imgs).expect("mkdir");
    write_inputs(&imgs);
    let copy = |name: &str| {
        let d = tmp.path().join(name);
        std::fs::create_dir_all(&d).expect("mkdir");
        for f in [
            "manifest.json",
            "classifier.onnx",
            "classifier.int8.onnx",
            "golden.json",
        ] {
            std::fs::copy(shipped().join(f), d.join(f)).expect("copy");
        }
        d
    };
    let refused = |model: &Path, needles: &[&str]| {
        let out = tmp.path().join("out");
        let o = Command::new(env!("CARGO_BIN_EXE_firmware-sim"))
            .args([
                "--images",
                imgs.to_str().expect("utf8"),
                "--out",
                out.to_str().expect("utf8"),
            ])
            .args(["--model", model.to_str().expect("utf8")])
            .output()
            .expect("run sim");
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{e}");
        for n in needles {
            assert!(e.contains(n), "stderr lacks {n:?}: {e}");
        }
        assert!(!e.contains("panicked"), "{e}");
        assert!(!out.join("screen_00001.png").exists(), "nothing drawn");
    };
    // one flipped byte in each file the manifest lists
    let flipped = copy("flipped");
    for f in ["classifier.onnx", "classifier.int8.onnx"] {
        let mut bytes = std::fs::read(flipped.join(f)).expect("read");
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x01;
        std::fs::write(flipped.join(f), bytes).expect("write");
    }
    refused(&flipped, &["sha256", "does not match the manifest", "re-export"]);
    // a manifest whose checksum is wrong
    let wrong = copy("wrong-sha");
    let edit = |dir: &Path, f: &dyn Fn(&mut serde_json::Value)| {
        let p = dir.join("manifest.json");
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).expect("manifest")).expect("json");
        f(&mut v);
        std::fs::write(&p, v.to_string()).expect("write");
    };
    edit(&wrong, &|v| {
        for m in v["models"].as_array_mut().expect("models") {
            m["sha256"] = "0".repeat(64).into();
        }
    });
    refused(&wrong, &["sha256", "re-export"]);
    // a manifest of another schema version
    let other = copy("other-version");
    edit(&other, &|v| v["version"] = 99.into());
    refused(
        &other,
        &["manifest.json", "version 99 is newer", "update the edge"],
    );
    // a manifest describing other input shapes than the ONNX files have
    let shapes = copy("other-shapes");
    edit(&shapes, &|v| {
        for m in v["models"].as_array_mut().expect("models") {
            m["input_shape"] = serde_json::json!([-1, 3, 32, 32]);
        }
    });
    refused(&shapes, &["input", "[-1, 3, 32, 32]"]);
}
