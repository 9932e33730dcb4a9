#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

// A run folder's progress.json, as a resume reads it (the run's epoch
// count from the first byte).
fuzz_target!(|data: &[u8]| {
    let Some((&total, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let _ = trainer::run::Progress::parse(text, Path::new("progress.json"), usize::from(total));
});
