#![no_main]

// SVHN's MATLAB level-5 files (compressed or not), to a dataset.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ood_fuzz::svhn_mat(data));
