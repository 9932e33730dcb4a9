#![no_main]

// A run folder's progress.json, as a resume reads it (the run's epoch
// count from the first byte).
libfuzzer_sys::fuzz_target!(|data: &[u8]| ood_fuzz::progress_json(data));
