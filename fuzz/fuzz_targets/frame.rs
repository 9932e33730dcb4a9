#![no_main]

// Raw camera frames of any size and format: width, height, format and a
// region of interest from the first bytes, the frame from the rest.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ood_fuzz::frame(data));
