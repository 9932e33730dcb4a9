//! Helpers: the shipped model folder, a private copy of it, crafted files.

use std::path::{Path, PathBuf};

/// `models/default` of this workspace.
pub fn shipped_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/default")
}

/// The first golden input of the shipped model (a real MNIST test digit).
pub fn golden_digit() -> Vec<u8> {
    let g = edge::check::read_golden(&shipped_dir()).expect("models/default/golden.json");
    g.cases[0].pixels().expect("golden pixels")
}

/// A copy of the shipped model folder (manifest, ONNX, golden) in `dir`.
pub fn copy_model(dir: &Path) -> PathBuf {
    let dest = dir.join("model");
    std::fs::create_dir_all(&dest).expect("mkdir");
    for f in [
        "manifest.json",
        "classifier.onnx",
        "classifier.int8.onnx",
        "golden.json",
    ] {
        std::fs::copy(shipped_dir().join(f), dest.join(f)).expect("copy model file");
    }
    dest
}

/// Rewrites the manifest in `dir` with `f` applied to its JSON.
pub fn edit_manifest(dir: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let p = dir.join("manifest.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).expect("read")).expect("json");
    f(&mut v);
    std::fs::write(&p, serde_json::to_string_pretty(&v).expect("ser")).expect("write");
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&ood_core::wire::crc32(&body).to_be_bytes());
}

/// A valid PNG header that claims `w x h` grayscale pixels, with no pixel
/// data: decoding it must be refused from the header, before allocating.
pub fn huge_png_header(w: u32, h: u32) -> Vec<u8> {
    let mut out = vec![0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit gray, no interlace
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// A 28x28 grayscale PNG of raw input pixels.
pub fn write_png(path: &Path, pixels: &[u8]) {
    image::GrayImage::from_raw(28, 28, pixels.to_vec())
        .expect("28x28")
        .save(path)
        .expect("save png");
}
