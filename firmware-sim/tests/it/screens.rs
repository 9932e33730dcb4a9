//! Whole-screen golden PNGs: an accepted digit, a garbage reject, an
//! uncertain reject, a lost link. Rewritten only with `UPDATE_GOLDEN=1`.

use firmware_sim::framebuffer::Framebuffer;
use firmware_sim::state::LINK_TIMEOUT_MS;
use firmware_sim::{ui, Firmware};
use ood_core::wire::{encode, Message, Thumbnail, MAX_FRAME, PROTOCOL_VERSION};
use ood_core::{RejectReason, Score, Verdict, IMG_PIXELS};
use std::path::Path;

fn send(fw: &mut Firmware, m: Message, now: u32) {
    let mut out = [0u8; MAX_FRAME];
    let n = encode(&m, &mut out).expect("encode");
    assert_eq!(fw.feed(&out[..n], now), 1);
}

/// A ring (like a 0) or a bar (like a 1) as 28x28 pixels.
fn glyph(ring: bool) -> [u8; IMG_PIXELS] {
    let mut px = [0u8; IMG_PIXELS];
    for y in 0..28i32 {
        for x in 0..28i32 {
            let (dx, dy) = (x - 14, y - 14);
            let on = if ring {
                let r2 = dx * dx + dy * dy;
                (36..=81).contains(&r2)
            } else {
                dx.abs() <= 1 && dy.abs() <= 9
            };
            if on {
                px[(y * 28 + x) as usize] = 255;
            }
        }
    }
    px
}

fn state(verdict: Verdict, thumb: [u8; IMG_PIXELS]) -> Firmware {
    let mut fw = Firmware::new();
    send(
        &mut fw,
        Message::Hello {
            protocol: PROTOCOL_VERSION,
            model_id: [1; 8],
            score: Score::Uncertainty,
            threshold: 0.75,
        },
        0,
    );
    send(
        &mut fw,
        Message::Thumbnail {
            seq: 42,
            pixels: Thumbnail(thumb),
        },
        100,
    );
    send(
        &mut fw,
        Message::Verdict {
            seq: 42,
            verdict,
            inference_us: 180,
        },
        100,
    );
    fw
}

fn check(name: &str, fw: &Firmware) {
    let mut fb = Framebuffer::default();
    let Ok(()) = ui::draw(&fw.screen, &mut fb);
    let rgb: Vec<u8> = fb.rgb888().flatten().collect();
    let img = image::RgbImage::from_raw(ui::WIDTH, ui::HEIGHT, rgb).expect("size");
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.png"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        img.save(&path).expect("write golden");
    }
    let want = image::open(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()))
        .to_rgb8();
    let differing = img.pixels().zip(want.pixels()).filter(|(a, b)| a != b).count();
    assert_eq!(
        differing,
        0,
        "{name}: {differing} pixels differ from {}",
        path.display()
    );
}

#[test]
fn accepted_digit_screen() {
    let fw = state(
        Verdict::Accept {
            digit: 1,
            confidence: 0.998,
            uncertainty: 0.004,
        },
        glyph(false),
    );
    check("accept", &fw);
}

#[test]
fn garbage_reject_screen() {
    let fw = state(
        Verdict::Reject {
            reason: RejectReason::Garbage,
            uncertainty: 0.02,
        },
        glyph(true),
    );
    check("reject_garbage", &fw);
}

#[test]
fn uncertain_reject_screen() {
    let fw = state(
        Verdict::Reject {
            reason: RejectReason::Uncertain,
            uncertainty: 0.61,
        },
        glyph(true),
    );
    check("reject_uncertain", &fw);
}

#[test]
fn lost_link_screen() {
    let mut fw = state(
        Verdict::Accept {
            digit: 0,
            confidence: 0.99,
            uncertainty: 0.01,
        },
        glyph(true),
    );
    fw.tick(100 + LINK_TIMEOUT_MS + 1);
    assert!(!fw.screen.link_ok());
    check("link_lost", &fw);
}
