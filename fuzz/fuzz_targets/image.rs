#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

// PNG/JPEG bytes: the dataset folder reader and the edge's decoder, then
// the edge's preprocessing to the 28x28 input.
fuzz_target!(|data: &[u8]| {
    let p = Path::new("fuzz.img");
    let _ = ood_data::folder::decode_image(data, p);
    if let Ok(img) = edge::preprocess::decode_gray(data, p) {
        let _ = edge::preprocess::to_input(&img, None);
    }
});
