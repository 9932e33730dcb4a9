#![no_main]

// Wire frames as the sender writes them: any message postcard can express,
// encoded, then decoded back to the same message.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ood_fuzz::wire_tx(data));
