#![no_main]

// manifest.json: parsed as the edge does, then what the edge asks of it.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ood_fuzz::manifest(data));
