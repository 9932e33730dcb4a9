#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

// IDX files, raw or gzipped (MNIST, Fashion-MNIST, KMNIST, EMNIST).
fuzz_target!(|data: &[u8]| {
    let p = Path::new("fuzz.idx");
    if let Ok(raw) = ood_data::idx::gunzip_if_gz(data.to_vec(), p) {
        let _ = ood_data::idx::parse(&raw, p);
    }
});
