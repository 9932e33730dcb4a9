#![no_main]

use libfuzzer_sys::fuzz_target;

// Wire frames as the sender writes them: any message postcard can express,
// encoded, then decoded back to the same message.
fuzz_target!(|data: &[u8]| {
    use ood_core::wire::{encode, Decoder, Message, MAX_FRAME};
    let Ok(msg) = postcard::from_bytes::<Message>(data) else {
        return;
    };
    let mut frame = [0u8; MAX_FRAME];
    let Ok(n) = encode(&msg, &mut frame) else { return };
    let mut rx = Decoder::new();
    let got: Vec<_> = frame[..n].iter().filter_map(|&b| rx.push(b)).collect();
    assert_eq!(got.len(), 1, "one frame in, one message out");
    let back = got.into_iter().next().expect("one").expect("decodes");
    // NaN != NaN: compare the encodings
    let mut again = [0u8; MAX_FRAME];
    let m = encode(&back, &mut again).expect("re-encodes");
    assert_eq!(&frame[..n], &again[..m]);
});
