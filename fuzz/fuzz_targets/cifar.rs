#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

// CIFAR-10 binary batches.
fuzz_target!(|data: &[u8]| {
    let _ = ood_data::cifar::parse_batch(data, Path::new("fuzz.bin"));
});
