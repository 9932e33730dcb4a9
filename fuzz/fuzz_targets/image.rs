#![no_main]

// PNG/JPEG bytes: the dataset folder reader and the edge's decoder, then
// the edge's preprocessing to the 28x28 input.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ood_fuzz::image(data));
