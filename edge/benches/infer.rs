//! Edge inference at batch 1 (1x1x28x28) through tract: the int8 file against
//! the f32 file in the same run, and a 640x480 camera frame to verdict.
//! `cargo bench -p edge`; timings never gate CI.

use criterion::{criterion_group, criterion_main, Criterion};

use edge::model::Model;
use std::path::Path;

fn shipped() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/default")
}

fn bench(c: &mut Criterion) {
    let x = [0u8; ood_core::IMG_PIXELS];
    for file in ["classifier.onnx", "classifier.int8.onnx"] {
        let Ok(m) = Model::load(&shipped(), Some(file), None) else {
            eprintln!("skipping {file}: models/default is not exported");
            return;
        };
        c.bench_function(&format!("classify_b1_{file}"), |b| {
            b.iter(|| m.classify(std::hint::black_box(&x)).map(|v| v.len()))
        });
    }
    let Ok(m) = Model::load(&shipped(), None, None) else {
        return;
    };
    let frame = image::GrayImage::from_fn(640, 480, |px, py| {
        let on = (300..340).contains(&px) && (120..360).contains(&py);
        image::Luma([if on { 30 } else { 220 }])
    });
    c.bench_function("frame_640x480_to_verdict_int8", |b| {
        b.iter(|| {
            edge::preprocess::to_input(std::hint::black_box(&frame), None)
                .and_then(|input| m.classify(&input))
                .map(|v| v.len())
        })
    });
    // the same stroke under a lamp (paper from 180 on the left to 240 on
    // the right, darker downwards): the background is a plane, subtracted
    // pixel by pixel in the rows that can hold ink
    let lamp = image::GrayImage::from_fn(640, 480, |px, py| {
        let paper = 180.0 + 60.0 * px as f32 / 640.0 - 20.0 * py as f32 / 480.0;
        let on = (300..340).contains(&px) && (120..360).contains(&py);
        image::Luma([(if on { paper * 0.15 } else { paper }) as u8])
    });
    c.bench_function("frame_640x480_lamp_to_verdict_int8", |b| {
        b.iter(|| {
            edge::preprocess::to_input(std::hint::black_box(&lamp), None)
                .and_then(|input| m.classify(&input))
                .map(|v| v.len())
        })
    });
}

// criterion's macros generate undocumented functions
#[allow(missing_docs)]
mod generated {
    use super::*;
    criterion_group!(benches, bench);
}
criterion_main!(generated::benches);
