#![no_main]

// A run's config.toml (`--config`, or a run folder being resumed).
libfuzzer_sys::fuzz_target!(|data: &[u8]| ood_fuzz::config_toml(data));
