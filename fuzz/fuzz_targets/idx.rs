#![no_main]

// IDX files, raw or gzipped (MNIST, Fashion-MNIST, KMNIST, EMNIST).
libfuzzer_sys::fuzz_target!(|data: &[u8]| ood_fuzz::idx(data));
