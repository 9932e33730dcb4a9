//! Faults that are not bytes: a model folder whose files change while the
//! edge uses it, and the serial link to the display cut (the display's side
//! of a cut in the middle of a frame: firmware-sim's e2e tests). Each gives a clear error (or none, where nothing is wrong) and
//! loses nothing already decided.

use crate::cli::{assert_clean_error, stderr};
use crate::support::{copy_model, golden_digit, shipped_dir};
use edge::model::Model;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const F32: &str = "classifier.onnx";

#[test]
fn a_loaded_model_keeps_the_bytes_it_verified_when_its_folder_changes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = copy_model(tmp.path());
    let px = golden_digit();
    let model = Model::load(&dir, Some(F32), None).expect("load");
    let before = model.classify(&px).expect("classify")[0];
    // the files are replaced under the loaded model: another model's bytes,
    // then half a file, then no manifest at all
    let onnx = dir.join(F32);
    std::fs::copy(dir.join("classifier.int8.onnx"), &onnx).expect("swap");
    assert_eq!(model.classify(&px).expect("classify")[0], before);
    let bytes = std::fs::read(shipped_dir().join(F32)).expect("read");
    std::fs::write(&onnx, &bytes[..bytes.len() / 2]).expect("half");
    std::fs::remove_file(dir.join("manifest.json")).expect("rm");
    assert_eq!(model.classify(&px).expect("classify")[0], before);
    // the next load sees the change and says what to do
    std::fs::copy(shipped_dir().join("manifest.json"), dir.join("manifest.json")).expect("restore");
    let e = Model::load(&dir, Some(F32), None)
        .expect_err("half a file")
        .to_string();
    for needle in [F32, "sha256", "replaced while it was read", "re-export"] {
        assert!(e.contains(needle), "lacks {needle:?}: {e}");
    }
    // a file that grew past any model (sparse, no disk used) is refused by
    // the size read, not read whole
    std::fs::File::options()
        .write(true)
        .open(&onnx)
        .expect("open")
        .set_len(65 << 20)
        .expect("grow");
    let e = Model::load(&dir, Some(F32), None)
        .expect_err("too large")
        .to_string();
    assert!(e.contains("larger than any model"), "{e}");
}

/// `edge stream` of 28x28 gray frames, stdin and stdout piped.
fn stream(extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_edge"))
        .args(["stream", "--width", "28", "--height", "28", "--format", "gray8"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn edge")
}

/// A verdict line without its timing.
fn decision(line: &str) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(line).expect("json line");
    let o = v.as_object_mut().expect("object");
    o.remove("ms");
    o.remove("source");
    v
}

#[test]
fn stream_keeps_deciding_with_the_model_it_loaded_while_its_folder_changes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = copy_model(tmp.path());
    let mut child = stream(&["--model", dir.to_str().expect("utf8")]);
    let mut stdin = child.stdin.take().expect("stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let px = golden_digit();
    // one frame, wait for its verdict (so none is dropped), then the next
    let mut classify = || {
        stdin.write_all(&px).expect("frame");
        stdin.flush().expect("flush");
        lines.next().expect("a verdict line").expect("utf8")
    };
    let first = classify();
    for f in ["manifest.json", "classifier.onnx", "classifier.int8.onnx"] {
        std::fs::write(dir.join(f), b"\x08\x07replaced while streaming").expect("overwrite");
    }
    let second = classify();
    std::fs::remove_dir_all(&dir).expect("folder gone");
    let third = classify();
    drop(stdin);
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(decision(&second), decision(&first), "{first} / {second}");
    assert_eq!(decision(&third), decision(&first), "{first} / {third}");
    assert_eq!(decision(&first)["verdict"], "accept", "a real digit: {first}");
}

/// The display end of a serial link: a named pipe `edge stream --wire`
/// writes to, opened for reading (in a thread, so that an edge that never
/// opens it fails the test instead of hanging it).
fn open_link(fifo: &std::path::Path, child: &mut Child) -> std::fs::File {
    let (tx, rx) = std::sync::mpsc::channel();
    let p = fifo.to_path_buf();
    std::thread::spawn(move || tx.send(std::fs::File::open(p)));
    match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(f) => f.expect("open the link"),
        Err(_) => {
            let _ = child.kill();
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("edge never opened the link: {err}");
        }
    }
}

#[test]
fn stream_stops_with_a_clear_error_when_the_display_link_is_cut() {
    let tmp = tempfile::tempdir().expect("tmp");
    let fifo = tmp.path().join("serial0");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let mut child = stream(&["--wire", fifo.to_str().expect("utf8")]);
    let mut link = open_link(&fifo, &mut child);
    let mut stdin = child.stdin.take().expect("stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let px = golden_digit();
    stdin.write_all(&px).expect("frame 1");
    stdin.flush().expect("flush");
    let first = lines.next().expect("verdict 1").expect("utf8");
    // the display reads frame 1 (hello, thumbnail, verdict), then the
    // cable is pulled
    let mut rx = ood_core::wire::Decoder::new();
    let mut messages = 0;
    let mut byte = [0u8; 1];
    while messages < 3 {
        link.read_exact(&mut byte).expect("frame 1 on the link");
        if let Some(m) = rx.push(byte[0]) {
            m.expect("a valid frame");
            messages += 1;
        }
    }
    drop(link);
    // the next frame is still decided and printed; sending it fails
    stdin.write_all(&px).expect("frame 2");
    stdin.flush().expect("flush");
    let rest: Vec<String> = lines.map(|l| l.expect("utf8")).collect();
    let out = child.wait_with_output().expect("wait");
    assert_clean_error(
        &out,
        &[
            "serial0",
            "link to the display was cut",
            "Broken pipe",
            "verdicts printed before this error stand",
        ],
    );
    assert_eq!(rest.len(), 1, "frame 2's verdict was printed: {rest:?}");
    assert_eq!(decision(&rest[0]), decision(&first));
}
