//! The `edge` binary as a new user would try it: good input, then bad input
//! that must give a clear one-line error, never a panic.

use crate::support::{copy_model, edit_manifest, golden_digit, huge_png_header, shipped_dir, write_png};
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn edge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edge"))
        .args(args)
        .output()
        .expect("run edge")
}

/// Runs `edge ARGS` with `input` on stdin.
fn edge_with_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_edge"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn edge");
    child.stdin.take().expect("stdin").write_all(input).expect("feed");
    child.wait_with_output().expect("wait")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A golden input (a real MNIST test digit) as PNG.
fn digit_png(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("digit.png");
    write_png(&p, &golden_digit());
    p
}

pub fn assert_clean_error(o: &Output, needles: &[&str]) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(1), "exit code; stderr: {e}");
    assert!(!e.contains("panicked"), "{e}");
    for n in needles {
        assert!(e.contains(n), "stderr lacks {n:?}: {e}");
    }
}

/// The int8 file (`--file`): the tampering below edits its manifest entry (`models[0]`).
const INT8: &str = "classifier.int8.onnx";

#[test]
fn classify_prints_a_table_and_json_lines() {
    let tmp = tempfile::tempdir().expect("tmp");
    let png = digit_png(tmp.path());
    let model = shipped_dir();
    let o = edge(&[
        "classify",
        "--model",
        model.to_str().expect("utf8"),
        png.to_str().expect("utf8"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("source\tverdict"), "{out}");
    assert!(
        out.contains("digit.png\taccept\t7"),
        "the first MNIST test digit is a 7: {out}"
    );
    let o = edge(&["classify", "--json", tmp.path().to_str().expect("utf8")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let line: serde_json::Value =
        serde_json::from_str(stdout(&o).lines().next().expect("a line")).expect("json");
    assert_eq!(line["verdict"], "accept");
    assert_eq!(line["digit"], 7);
}

#[test]
fn bad_images_are_reported_per_file_and_the_others_still_classified() {
    let tmp = tempfile::tempdir().expect("tmp");
    let png = digit_png(tmp.path());
    let empty = tmp.path().join("empty.png");
    std::fs::write(&empty, b"").expect("write");
    let text = tmp.path().join("notes.png");
    std::fs::write(&text, b"this is not an image").expect("write");
    let huge = tmp.path().join("huge.png");
    std::fs::write(&huge, huge_png_header(20_000, 20_000)).expect("write");
    let missing = tmp.path().join("missing.png");
    let args: Vec<&str> = [
        "classify",
        png.to_str().expect("utf8"),
        empty.to_str().expect("utf8"),
        text.to_str().expect("utf8"),
        huge.to_str().expect("utf8"),
    ]
    .to_vec();
    let o = edge(&args);
    assert_clean_error(
        &o,
        &[
            "empty.png: empty file",
            "notes.png: not a PNG or JPEG",
            "huge.png: too large",
            "3 of 4 inputs",
        ],
    );
    assert!(stdout(&o).contains("digit.png\taccept"), "{}", stdout(&o));
    let o = edge(&["classify", missing.to_str().expect("utf8")]);
    assert_clean_error(&o, &["missing.png"]);
    // the OS error once, not repeated by the cause chain
    let e = stderr(&o);
    assert_eq!(e.matches("os error").count(), 1, "{e}");
}

#[test]
fn a_tampered_unknown_or_foreign_model_is_refused_with_what_to_do() {
    let tmp = tempfile::tempdir().expect("tmp");
    let png = digit_png(tmp.path());
    let png = png.to_str().expect("utf8");
    // corrupt ONNX: sha256 mismatch names the file
    let dir = copy_model(tmp.path());
    let d = dir.to_str().expect("utf8");
    std::fs::write(dir.join("classifier.int8.onnx"), b"\x08\x07garbage").expect("write");
    assert_clean_error(
        &edge(&["classify", "--model", d, "--file", INT8, png]),
        &["classifier.int8.onnx", "sha256", "re-export"],
    );
    // corrupt ONNX whose checksum was "fixed" in the manifest: tract refuses it
    let sha = edge::model::sha256_hex(b"\x08\x07garbage");
    edit_manifest(&dir, |v| v["models"][0]["sha256"] = sha.into());
    assert_clean_error(
        &edge(&["classify", "--model", d, "--file", INT8, png]),
        &["classifier.int8.onnx", "not a loadable ONNX model"],
    );
    // a manifest for another model: shapes differ
    let dir = copy_model(&tmp.path().join("b"));
    let d = dir.to_str().expect("utf8");
    edit_manifest(&dir, |v| {
        v["models"][0]["output_shape"] = serde_json::json!([-1, 10])
    });
    assert_clean_error(
        &edge(&["classify", "--model", d, "--file", INT8, png]),
        &["output shape", "another model"],
    );
    // the file that runs by default on this machine is checked the same way
    let dir = copy_model(&tmp.path().join("f"));
    let d = dir.to_str().expect("utf8");
    let runs = {
        let text = std::fs::read_to_string(dir.join("manifest.json")).expect("manifest");
        let m: ood_core::manifest::Manifest = serde_json::from_str(&text).expect("json");
        m.file_for(std::env::consts::ARCH).to_string()
    };
    std::fs::write(dir.join(&runs), b"\x08\x07garbage").expect("write");
    assert_clean_error(
        &edge(&["classify", "--model", d, png]),
        &[&runs, "sha256", "re-export"],
    );
    // a manifest of an older version (fields differ): the version is named
    let dir = copy_model(&tmp.path().join("o"));
    let d = dir.to_str().expect("utf8");
    edit_manifest(&dir, |v| {
        v["version"] = 1.into();
        v["decision"]["thresholds"] = serde_json::json!([]);
    });
    assert_clean_error(
        &edge(&["classify", "--model", d, png]),
        &["manifest.json", "version 1 is older", "re-export"],
    );
    // a manifest of an unknown version
    let dir = copy_model(&tmp.path().join("c"));
    let d = dir.to_str().expect("utf8");
    edit_manifest(&dir, |v| v["version"] = 99.into());
    assert_clean_error(
        &edge(&["classify", "--model", d, "--file", INT8, png]),
        &["manifest.json", "version 99 is newer", "update the edge"],
    );
    // no manifest at all
    assert_clean_error(
        &edge(&["classify", "--model", tmp.path().to_str().expect("utf8"), png]),
        &["manifest.json", "trainer --release -- export"],
    );
    // a threshold that was never calibrated
    assert_clean_error(
        &edge(&["classify", "--keep", "0.5", png]),
        &["no threshold calibrated for", "keep = 0.5"],
    );
}

#[test]
fn stream_classifies_whole_frames_and_reports_a_short_last_frame() {
    let mut frames = golden_digit();
    frames.extend(vec![0u8; 784]); // a blank frame
    frames.extend(vec![0u8; 100]); // the start of a frame of the wrong size
    let o = edge_with_stdin(
        &["stream", "--width", "28", "--height", "28", "--format", "gray8"],
        &frames,
    );
    let out = stdout(&o);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    // frames may be dropped when they arrive faster than inference, never queued:
    // the newest whole frame (the blank one) is always classified
    assert!(!lines.is_empty() && lines.len() <= 2, "{out}");
    let last = lines.last().expect("a verdict");
    assert_eq!(last["source"], "frame 2");
    assert_eq!(last["verdict"], "reject", "a blank frame is not a digit: {last}");
    assert_clean_error(
        &o,
        &["100 bytes into a frame of 784", "--width, --height and --format"],
    );
}

#[test]
fn stream_with_wire_writes_decodable_frames_for_the_display() {
    let tmp = tempfile::tempdir().expect("tmp");
    let wire = tmp.path().join("verdicts.wire");
    let wire_arg = wire.to_str().expect("utf8");
    let o = edge_with_stdin(
        &[
            "stream", "--width", "28", "--height", "28", "--format", "gray8", "--wire", wire_arg,
        ],
        &[0u8; 784],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(&wire).expect("wire file");
    let mut d = ood_core::wire::Decoder::new();
    let msgs: Vec<_> = bytes
        .iter()
        .filter_map(|&b| d.push(b))
        .collect::<Result<_, _>>()
        .expect("valid frames");
    assert!(
        matches!(msgs[0], ood_core::wire::Message::Hello { .. }),
        "{:?}",
        msgs[0]
    );
    assert!(matches!(
        msgs[1],
        ood_core::wire::Message::Thumbnail { seq: 1, .. }
    ));
    assert!(matches!(
        msgs[2],
        ood_core::wire::Message::Verdict {
            seq: 1,
            verdict: ood_core::Verdict::Reject { .. },
            ..
        }
    ));
}

#[test]
fn camera_runs_the_capture_command_and_survives_a_torn_frame() {
    // a stand-in for ffmpeg's V4L2 capture: three blank 28x28 frames and a torn one
    let o = edge(&[
        "camera",
        "--width",
        "28",
        "--height",
        "28",
        "--capture",
        "head -c 2452 /dev/zero",
        "--once",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert!(!lines.is_empty() && lines.len() <= 3, "{}", stdout(&o));
    assert!(
        lines.iter().all(|l| l["verdict"] == "reject"),
        "blank frames are not digits"
    );
    assert!(
        stderr(&o).contains("100 bytes into a frame of 784"),
        "{}",
        stderr(&o)
    );
    // no such device: a clear error before anything starts
    let o = edge(&["camera", "--device", "/dev/no-such-video9", "--once"]);
    assert_clean_error(&o, &["no camera at /dev/no-such-video9", "ls /dev/video"]);
    // a capture program that is not installed
    let o = edge(&["camera", "--capture", "no-such-capture-tool-xyz", "--once"]);
    assert_clean_error(&o, &["capture command was not found"]);
}

#[test]
fn check_passes_on_the_shipped_model_and_names_a_changed_golden_case() {
    let o = edge(&["check", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let checks: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    let files: Vec<&str> = checks
        .as_array()
        .expect("array")
        .iter()
        .map(|c| c["file"].as_str().expect("file"))
        .collect();
    assert_eq!(files, ["classifier.int8.onnx", "classifier.onnx"], "{checks}");
    for c in checks.as_array().expect("array") {
        assert!(c["cases"].as_u64().expect("cases") >= 10, "{c}");
        assert_eq!(c["same_verdict"], c["cases"], "{c}");
    }
    // the exporter recorded another verdict for one case: named, exit 1
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = copy_model(tmp.path());
    let path = dir.join("golden.json");
    let mut g: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("golden")).expect("json");
    let source = g["cases"][0]["source"].as_str().expect("source").to_string();
    g["cases"][0]["int8_verdict"] = serde_json::json!({"reject": {"reason": "garbage", "uncertainty": 0.5}});
    std::fs::write(&path, g.to_string()).expect("write");
    let o = edge(&["check", "--model", dir.to_str().expect("utf8")]);
    assert_clean_error(&o, &["classifier.int8.onnx differ from the golden outputs"]);
    let out = stdout(&o);
    assert!(out.contains(&source), "{out}");
    assert!(
        out.contains("classifier.onnx\t"),
        "the f32 file is still checked: {out}"
    );
}
