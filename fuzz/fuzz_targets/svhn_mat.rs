#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

// SVHN's MATLAB level-5 files (compressed or not), to a dataset.
fuzz_target!(|data: &[u8]| {
    let _ = ood_data::svhn::decode_mat(data, Path::new("fuzz.mat"));
});
