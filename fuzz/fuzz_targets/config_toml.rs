#![no_main]

use libfuzzer_sys::fuzz_target;

// A run's config.toml (`--config`, or a run folder being resumed).
fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cfg) = trainer::config::TrainConfig::from_toml(text, "fuzz.toml") {
        let _ = cfg.validate();
        let _ = cfg.to_toml();
    }
});
