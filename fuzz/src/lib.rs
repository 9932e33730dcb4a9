//! The body of every fuzz target as a plain function of the input bytes.
//! `fuzz_targets/*.rs` hand them libFuzzer's inputs (`scripts/fuzz.sh`);
//! the main workspace's tests (`trainer/tests/it/fuzz_smoke.rs`, which
//! includes this file) replay the seed corpora, every input that once
//! crashed (`fuzz/regressions/<target>/`) and mutations of them through
//! the same functions, so CI smoke-tests each target without the nightly,
//! instrumented build. A body panics only where the code under test is
//! wrong: every error is an answer.

use std::path::Path;

/// A target's body: any bytes in, a panic only for a bug.
pub type Body = fn(&[u8]);

/// Every target: its name (as in fuzz/Cargo.toml and fuzz/corpus/) and body.
pub const TARGETS: [(&str, Body); 12] = [
    ("idx", idx),
    ("image", image),
    ("svhn_mat", svhn_mat),
    ("cifar", cifar),
    ("onnx", onnx),
    ("manifest", manifest),
    ("golden_json", golden_json),
    ("wire_rx", wire_rx),
    ("wire_tx", wire_tx),
    ("frame", frame),
    ("config_toml", config_toml),
    ("progress_json", progress_json),
];

/// IDX files, raw or gzipped (MNIST, Fashion-MNIST, KMNIST, EMNIST).
pub fn idx(data: &[u8]) {
    let p = Path::new("fuzz.idx");
    if let Ok(raw) = ood_data::idx::gunzip_if_gz(data.to_vec(), p) {
        let _ = ood_data::idx::parse(&raw, p);
    }
}

/// PNG/JPEG bytes: the dataset folder reader and the edge's decoder, then
/// the edge's preprocessing to the 28x28 input.
pub fn image(data: &[u8]) {
    let p = Path::new("fuzz.img");
    let _ = ood_data::folder::decode_image(data, p);
    if let Ok(img) = edge::preprocess::decode_gray(data, p) {
        let _ = edge::preprocess::to_input(&img, None);
    }
}

/// SVHN's MATLAB level-5 files (compressed or not), to a dataset.
pub fn svhn_mat(data: &[u8]) {
    let _ = ood_data::svhn::decode_mat(data, Path::new("fuzz.mat"));
}

/// CIFAR-10 binary batches.
pub fn cifar(data: &[u8]) {
    let _ = ood_data::cifar::parse_batch(data, Path::new("fuzz.bin"));
}

/// ONNX model bytes through the edge's loader (tract: parse, type,
/// optimise both plans), then one inference on a blank image.
pub fn onnx(data: &[u8]) {
    if let Ok(net) = edge::runtime::Network::load(data, Path::new("fuzz.onnx")) {
        let _ = net.logits(&[0.0; ood_core::IMG_PIXELS]);
    }
}

/// manifest.json: parsed as the edge does, then what the edge asks of it.
pub fn manifest(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(m) = edge::model::parse_manifest(text, Path::new("manifest.json")) {
        let file = m.file_for(std::env::consts::ARCH).to_string();
        for f in m.models.iter().chain(m.model(&file)) {
            for keep in [None, Some(0.99), Some(0.95), Some(f32::NAN)] {
                let _ = m.decision.policy(f, keep);
            }
        }
    }
}

/// A model folder's golden.json, as `edge check` and the tests read it.
pub fn golden_json(data: &[u8]) {
    if let Ok(g) = serde_json::from_slice::<ood_core::golden::Golden>(data) {
        for c in &g.cases {
            let _ = c.pixels();
        }
    }
}

/// Wire frames as the display receives them: any byte stream, pushed byte
/// by byte into the frame decoder (COBS, CRC, postcard).
pub fn wire_rx(data: &[u8]) {
    let mut rx = ood_core::wire::Decoder::new();
    for &b in data {
        let _ = rx.push(b);
    }
}

/// Wire frames as the sender writes them: any message postcard can
/// express, encoded, then decoded back to the same message.
pub fn wire_tx(data: &[u8]) {
    use ood_core::wire::{encode, Decoder, Message, MAX_FRAME};
    let Ok(msg) = postcard::from_bytes::<Message>(data) else {
        return;
    };
    let mut frame = [0u8; MAX_FRAME];
    let Ok(n) = encode(&msg, &mut frame) else { return };
    let mut rx = Decoder::new();
    let got: Vec<_> = frame[..n].iter().filter_map(|&b| rx.push(b)).collect();
    assert_eq!(got.len(), 1, "one frame in, one message out");
    let back = got.into_iter().next().expect("one").expect("decodes");
    // NaN != NaN: compare the encodings
    let mut again = [0u8; MAX_FRAME];
    let m = encode(&back, &mut again).expect("re-encodes");
    assert_eq!(&frame[..n], &again[..m]);
}

/// Raw camera frames of any size and format: width, height, format and a
/// region of interest from the first 13 bytes, the frame from the rest.
pub fn frame(data: &[u8]) {
    use edge::frame::{FrameSpec, PixelFormat};
    use edge::preprocess::{view_to_input, Roi};
    if data.len() < 13 {
        return;
    }
    let u16_at = |i: usize| u32::from(u16::from_le_bytes([data[i], data[i + 1]]));
    let format = if data[4] & 1 == 0 {
        PixelFormat::Gray8
    } else {
        PixelFormat::Yuv420
    };
    let Ok(spec) = FrameSpec::new(u16_at(0), u16_at(2), format) else {
        return;
    };
    let roi = (data[4] & 2 != 0).then(|| Roi {
        x: u16_at(5),
        y: u16_at(7),
        width: u16_at(9),
        height: u16_at(11),
    });
    if let Ok(view) = spec.luma(&data[13..]) {
        let _ = view_to_input(view, roi);
    }
}

/// A run's config.toml (`--config`, or a run folder being resumed).
pub fn config_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cfg) = trainer::config::TrainConfig::from_toml(text, "fuzz.toml") {
        let _ = cfg.validate();
        let _ = cfg.to_toml();
    }
}

/// A run folder's progress.json, as a resume reads it (the run's epoch
/// count from the first byte).
pub fn progress_json(data: &[u8]) {
    let Some((&total, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let _ = trainer::run::Progress::parse(text, Path::new("progress.json"), usize::from(total));
}
