//! The screen, drawn on any `DrawTarget<Color = Rgb565>` of at least
//! [`WIDTH`] x [`HEIGHT`] pixels (the 240x240 ST7789 panel):
//!
//! ```text
//! +------------------------------------------+
//! | LINK OK                          bad 0   |  status bar
//! | +------------+   +-----------------+     |
//! | | thumbnail  |   |  big digit  or  |     |  input x4 | verdict
//! | | 28x28 x 4  |   |  REJECT reason  |     |
//! | +------------+   +-----------------+     |
//! | [#######....|.............]  U 0.012     |  uncertainty bar, | = threshold
//! | OK 123   REJ 45                          |  running counts
//! | #1234  0.18 ms  dropped 0                |
//! +------------------------------------------+
//! ```

use crate::state::Screen;
use core::fmt::Write;
use embedded_graphics::mono_font::ascii::{FONT_10X20, FONT_6X10};
use embedded_graphics::mono_font::MonoTextStyle;
use embedded_graphics::pixelcolor::{Rgb565, RgbColor};
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::Rectangle;
use embedded_graphics::text::{Alignment, Baseline, Text, TextStyleBuilder};
use ood_core::{RejectReason, Verdict, IMG_SIDE};

/// Panel width in pixels.
pub const WIDTH: u32 = 240;
/// Panel height in pixels.
pub const HEIGHT: u32 = 240;
/// Thumbnail enlargement.
pub const THUMB_SCALE: u32 = 4;

const GRAY: Rgb565 = Rgb565::new(8, 16, 8);
const DARK: Rgb565 = Rgb565::new(3, 6, 3);

/// Segments a..g of a seven-segment digit.
const SEGMENTS: [u8; 10] = [
    0b0111111, 0b0000110, 0b1011011, 0b1001111, 0b1100110, 0b1101101, 0b1111101, 0b0000111, 0b1111111,
    0b1101111,
];

fn fill<D: DrawTarget<Color = Rgb565>>(
    d: &mut D,
    x: i32,
    y: i32,
    w: u32,
    h: u32,
    c: Rgb565,
) -> Result<(), D::Error> {
    d.fill_solid(&Rectangle::new(Point::new(x, y), Size::new(w, h)), c)
}

/// A seven-segment `digit` filling `area`, segments `t` pixels thick.
pub fn draw_digit<D: DrawTarget<Color = Rgb565>>(
    d: &mut D,
    area: Rectangle,
    digit: u8,
    t: u32,
    color: Rgb565,
) -> Result<(), D::Error> {
    let (x, y) = (area.top_left.x, area.top_left.y);
    let (w, h) = (area.size.width, area.size.height);
    let half = h / 2;
    let bits = SEGMENTS[usize::from(digit % 10)];
    let seg = |i: u32| bits & (1 << i) != 0;
    let (xi, yi) = (|v: u32| x + v as i32, |v: u32| y + v as i32);
    if seg(0) {
        fill(d, x, y, w, t, color)?; // a
    }
    if seg(1) {
        fill(d, xi(w - t), y, t, half + t / 2 + 1, color)?; // b
    }
    if seg(2) {
        fill(d, xi(w - t), yi(half), t, h - half, color)?; // c
    }
    if seg(3) {
        fill(d, x, yi(h - t), w, t, color)?; // d
    }
    if seg(4) {
        fill(d, x, yi(half), t, h - half, color)?; // e
    }
    if seg(5) {
        fill(d, x, y, t, half + t / 2 + 1, color)?; // f
    }
    if seg(6) {
        fill(d, x, yi(half - t / 2), w, t, color)?; // g
    }
    Ok(())
}

/// The uncertainty bar: `u` of the width filled (green when accepted,
/// yellow when rejected), the threshold as a white column.
pub fn draw_bar<D: DrawTarget<Color = Rgb565>>(
    d: &mut D,
    area: Rectangle,
    u: f32,
    threshold_u: Option<f32>,
    rejected: bool,
) -> Result<(), D::Error> {
    let w = area.size.width;
    let filled = ((u.clamp(0.0, 1.0) * w as f32 + 0.5) as u32).min(w); // non-negative: +0.5 rounds
    d.fill_solid(&area, Rgb565::BLACK)?;
    let color = if rejected { Rgb565::YELLOW } else { Rgb565::GREEN };
    d.fill_solid(
        &Rectangle::new(area.top_left, Size::new(filled, area.size.height)),
        color,
    )?;
    if let Some(t) = threshold_u {
        let tx = ((t.clamp(0.0, 1.0) * w as f32 + 0.5) as u32).min(w.saturating_sub(1));
        let p = area.top_left + Point::new(tx as i32, 0);
        d.fill_solid(&Rectangle::new(p, Size::new(1, area.size.height)), Rgb565::WHITE)?;
    }
    Ok(())
}

/// The 28x28 thumbnail, enlarged [`THUMB_SCALE`] times, at `origin`.
pub fn draw_thumbnail<D: DrawTarget<Color = Rgb565>>(
    d: &mut D,
    origin: Point,
    pixels: &[u8],
) -> Result<(), D::Error> {
    let side = IMG_SIDE as u32 * THUMB_SCALE;
    let area = Rectangle::new(origin, Size::new(side, side));
    let colors = (0..side * side).map(|i| {
        let (x, y) = (i % side / THUMB_SCALE, i / side / THUMB_SCALE);
        let v = pixels
            .get((y * IMG_SIDE as u32 + x) as usize)
            .copied()
            .unwrap_or(0);
        Rgb565::new(v >> 3, v >> 2, v >> 3)
    });
    d.fill_contiguous(&area, colors)
}

fn text<D: DrawTarget<Color = Rgb565>>(
    d: &mut D,
    s: &str,
    at: Point,
    big: bool,
    color: Rgb565,
    align: Alignment,
) -> Result<(), D::Error> {
    let style = MonoTextStyle::new(if big { &FONT_10X20 } else { &FONT_6X10 }, color);
    let ts = TextStyleBuilder::new()
        .alignment(align)
        .baseline(Baseline::Top)
        .build();
    Text::with_text_style(s, at, style, ts).draw(d)?;
    Ok(())
}

/// Draws the whole screen.
pub fn draw<D: DrawTarget<Color = Rgb565>>(screen: &Screen, d: &mut D) -> Result<(), D::Error> {
    let mut s: heapless::String<48> = heapless::String::new();
    d.clear(Rgb565::BLACK)?;
    // status bar
    fill(d, 0, 0, WIDTH, 22, DARK)?;
    let (status, color) = match (screen.version_mismatch, screen.link_ok()) {
        (Some(_), _) => ("PROTOCOL?", Rgb565::MAGENTA),
        (None, true) => ("LINK OK", Rgb565::GREEN),
        (None, false) => ("LINK LOST", Rgb565::RED),
    };
    text(d, status, Point::new(6, 1), true, color, Alignment::Left)?;
    let _ = write!(s, "bad {}", screen.corrupt);
    let bad_color = if screen.corrupt > 0 { Rgb565::YELLOW } else { GRAY };
    text(
        d,
        &s,
        Point::new(WIDTH as i32 - 6, 1),
        true,
        bad_color,
        Alignment::Right,
    )?;
    // thumbnail
    let side = IMG_SIDE as u32 * THUMB_SCALE;
    fill(d, 6, 28, side + 4, side + 4, GRAY)?;
    match screen.matching_thumbnail() {
        Some(px) => draw_thumbnail(d, Point::new(8, 30), px)?,
        None => fill(d, 8, 30, side, side, Rgb565::BLACK)?,
    }
    // verdict panel
    let panel = Rectangle::new(Point::new(128, 28), Size::new(106, side + 4));
    let link_ok = screen.link_ok();
    match screen.verdict.map(|v| v.verdict) {
        Some(Verdict::Accept { digit, .. }) => {
            let color = if link_ok { Rgb565::GREEN } else { GRAY };
            let area = Rectangle::new(Point::new(153, 34), Size::new(56, 92));
            draw_digit(d, area, digit, 10, color)?;
        }
        Some(Verdict::Reject { reason, .. }) => {
            let color = if link_ok { Rgb565::RED } else { GRAY };
            d.fill_solid(&panel, color)?;
            fill(d, 131, 31, 100, side - 2, Rgb565::BLACK)?;
            let c = Point::new(181, 60);
            text(d, "REJECT", c, true, color, Alignment::Center)?;
            let why = match reason {
                RejectReason::Garbage => "not a digit",
                RejectReason::Uncertain => "uncertain",
            };
            text(
                d,
                why,
                c + Point::new(0, 30),
                false,
                Rgb565::WHITE,
                Alignment::Center,
            )?;
        }
        None => text(d, "waiting", Point::new(181, 75), true, GRAY, Alignment::Center)?,
    }
    // uncertainty bar
    let bar = Rectangle::new(Point::new(8, 152), Size::new(224, 14));
    fill(d, 7, 151, 226, 16, GRAY)?;
    let (u, rejected) = match screen.verdict.map(|v| v.verdict) {
        Some(v) => (v.uncertainty(), !v.is_accept()),
        None => (0.0, false),
    };
    draw_bar(d, bar, u, screen.threshold_u, rejected)?;
    s.clear();
    let _ = write!(s, "U(x) {u:.3}");
    if let Some(t) = screen.threshold_u {
        let _ = write!(s, "   threshold {t:.3}");
    }
    text(d, &s, Point::new(8, 170), false, Rgb565::WHITE, Alignment::Left)?;
    // counts
    s.clear();
    let _ = write!(s, "OK {}", screen.accepted);
    text(d, &s, Point::new(8, 188), true, Rgb565::GREEN, Alignment::Left)?;
    s.clear();
    let _ = write!(s, "REJ {}", screen.rejected);
    text(
        d,
        &s,
        Point::new(WIDTH as i32 - 8, 188),
        true,
        Rgb565::RED,
        Alignment::Right,
    )?;
    // footer
    s.clear();
    if let Some(v) = screen.verdict {
        let _ = write!(
            s,
            "#{}  {:.2} ms  dropped {}",
            v.seq,
            v.inference_us as f32 / 1000.0,
            screen.sender_dropped
        );
    }
    text(d, &s, Point::new(8, 222), false, GRAY, Alignment::Left)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_graphics::mock_display::MockDisplay;

    /// A mock panel on which widgets may paint a pixel twice (backgrounds).
    fn mock() -> MockDisplay<Rgb565> {
        let mut d = MockDisplay::new();
        d.set_allow_overdraw(true);
        d
    }

    fn digit(n: u8, color: Rgb565) -> MockDisplay<Rgb565> {
        let mut d = mock();
        draw_digit(
            &mut d,
            Rectangle::new(Point::zero(), Size::new(3, 5)),
            n,
            1,
            color,
        )
        .expect("draw");
        d
    }

    #[test]
    fn seven_segment_one_and_seven() {
        digit(1, Rgb565::GREEN).assert_pattern(&["  G", "  G", "  G", "  G", "  G"]);
        digit(7, Rgb565::GREEN).assert_pattern(&["GGG", "  G", "  G", "  G", "  G"]);
        digit(8, Rgb565::RED).assert_pattern(&["RRR", "R R", "RRR", "R R", "RRR"]);
    }

    #[test]
    fn bar_fills_u_and_marks_the_threshold() {
        let mut d = mock();
        let area = Rectangle::new(Point::zero(), Size::new(10, 2));
        draw_bar(&mut d, area, 0.5, Some(0.8), false).expect("draw");
        d.assert_pattern(&["GGGGGKKKWK", "GGGGGKKKWK"]);
        let mut d = mock();
        draw_bar(&mut d, area, 0.9, Some(0.2), true).expect("draw");
        d.assert_pattern(&["YYWYYYYYYK", "YYWYYYYYYK"]);
    }

    #[test]
    fn thumbnail_is_enlarged_four_times() {
        let mut d: MockDisplay<Rgb565> = MockDisplay::new();
        d.set_allow_out_of_bounds_drawing(true);
        let mut px = [0u8; 784];
        px[0] = 255; // top-left pixel white
        draw_thumbnail(&mut d, Point::zero(), &px).expect("draw");
        for (x, y) in [(0, 0), (3, 3), (3, 0)] {
            assert_eq!(d.get_pixel(Point::new(x, y)), Some(Rgb565::WHITE));
        }
        assert_eq!(d.get_pixel(Point::new(4, 0)), Some(Rgb565::BLACK));
    }
}
