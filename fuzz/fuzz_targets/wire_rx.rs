#![no_main]

// Wire frames as the display receives them: any byte stream, pushed
// byte by byte into the frame decoder (COBS, CRC, postcard).
libfuzzer_sys::fuzz_target!(|data: &[u8]| ood_fuzz::wire_rx(data));
