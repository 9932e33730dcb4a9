#![no_main]

use libfuzzer_sys::fuzz_target;

// A model folder's golden.json, as `edge check` and the tests read it.
fuzz_target!(|data: &[u8]| {
    if let Ok(g) = serde_json::from_slice::<ood_core::golden::Golden>(data) {
        for c in &g.cases {
            let _ = c.pixels();
        }
    }
});
