#![no_main]

// CIFAR-10 binary batches.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ood_fuzz::cifar(data));
