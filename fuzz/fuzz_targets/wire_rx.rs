#![no_main]

use libfuzzer_sys::fuzz_target;

// Wire frames as the display receives them: any byte stream, pushed
// byte by byte into the frame decoder (COBS, CRC, postcard).
fuzz_target!(|data: &[u8]| {
    let mut rx = ood_core::wire::Decoder::new();
    for &b in data {
        let _ = rx.push(b);
    }
});
