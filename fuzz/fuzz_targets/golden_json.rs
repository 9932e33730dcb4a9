#![no_main]

// A model folder's golden.json, as `edge check` and the tests read it.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ood_fuzz::golden_json(data));
