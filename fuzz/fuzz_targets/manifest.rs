#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

// manifest.json: parsed as the edge does, then what the edge asks of it.
fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(m) = edge::model::parse_manifest(text, Path::new("manifest.json")) {
        let file = m.file_for(std::env::consts::ARCH).to_string();
        for f in m.models.iter().chain(m.model(&file)) {
            for keep in [None, Some(0.99), Some(0.95), Some(f32::NAN)] {
                let _ = m.decision.policy(f, keep);
            }
        }
    }
});
