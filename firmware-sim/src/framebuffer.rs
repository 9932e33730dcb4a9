//! A plain in-memory panel: the simulator's display and the golden-screen
//! tests draw into it exactly as the firmware draws into the real panel.

use crate::ui::{HEIGHT, WIDTH};
use embedded_graphics::pixelcolor::{Rgb565, RgbColor};
use embedded_graphics::prelude::*;

/// A [`WIDTH`] x [`HEIGHT`] Rgb565 frame buffer (115 KB: a desktop helper,
/// not meant for the microcontroller's RAM).
#[derive(Clone)]
pub struct Framebuffer {
    pixels: [Rgb565; (WIDTH * HEIGHT) as usize],
}

impl core::fmt::Debug for Framebuffer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Framebuffer({WIDTH}x{HEIGHT})")
    }
}

impl Default for Framebuffer {
    fn default() -> Self {
        Self {
            pixels: [Rgb565::BLACK; (WIDTH * HEIGHT) as usize],
        }
    }
}

impl Framebuffer {
    /// The colour at `(x, y)`.
    pub fn pixel(&self, x: u32, y: u32) -> Rgb565 {
        self.pixels[(y * WIDTH + x) as usize]
    }

    /// 8-bit RGB bytes, row-major (for PNG/GIF encoders).
    pub fn rgb888(&self) -> impl Iterator<Item = [u8; 3]> + '_ {
        self.pixels.iter().map(|c| {
            // expand 5/6-bit channels to 8 bits the usual way
            let (r, g, b) = (c.r(), c.g(), c.b());
            [(r << 3) | (r >> 2), (g << 2) | (g >> 4), (b << 3) | (b >> 2)]
        })
    }
}

impl OriginDimensions for Framebuffer {
    fn size(&self) -> Size {
        Size::new(WIDTH, HEIGHT)
    }
}

impl DrawTarget for Framebuffer {
    type Color = Rgb565;
    type Error = core::convert::Infallible;

    fn draw_iter<I: IntoIterator<Item = Pixel<Rgb565>>>(&mut self, pixels: I) -> Result<(), Self::Error> {
        for Pixel(p, c) in pixels {
            if p.x >= 0 && p.y >= 0 && (p.x as u32) < WIDTH && (p.y as u32) < HEIGHT {
                self.pixels[(p.y as u32 * WIDTH + p.x as u32) as usize] = c;
            }
        }
        Ok(())
    }
}
