#![no_main]

use libfuzzer_sys::fuzz_target;

// Raw camera frames of any size and format: width, height, format and a
// region of interest from the first bytes, the frame from the rest.
fuzz_target!(|data: &[u8]| {
    use edge::frame::{FrameSpec, PixelFormat};
    use edge::preprocess::{view_to_input, Roi};
    if data.len() < 13 {
        return;
    }
    let u16_at = |i: usize| u32::from(u16::from_le_bytes([data[i], data[i + 1]]));
    let format = if data[4] & 1 == 0 {
        PixelFormat::Gray8
    } else {
        PixelFormat::Yuv420
    };
    let Ok(spec) = FrameSpec::new(u16_at(0), u16_at(2), format) else {
        return;
    };
    let roi = (data[4] & 2 != 0).then(|| Roi {
        x: u16_at(5),
        y: u16_at(7),
        width: u16_at(9),
        height: u16_at(11),
    });
    if let Ok(view) = spec.luma(&data[13..]) {
        let _ = view_to_input(view, roi);
    }
});
