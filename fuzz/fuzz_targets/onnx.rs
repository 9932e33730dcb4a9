#![no_main]

// ONNX model bytes through the edge's loader (tract: parse, type,
// optimise both plans), then one inference on a blank image.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ood_fuzz::onnx(data));
