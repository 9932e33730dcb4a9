#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

// ONNX model bytes through the edge's loader (tract: parse, type,
// optimise both plans), then one inference on a blank image.
fuzz_target!(|data: &[u8]| {
    if let Ok(net) = edge::runtime::Network::load(data, Path::new("fuzz.onnx")) {
        let _ = net.logits(&[0.0; ood_core::IMG_PIXELS]);
    }
});
