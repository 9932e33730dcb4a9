//! `firmware-sim`: the display controller's firmware, and a desktop simulator.
//!
//! - **Purpose**: show what the camera-side Pi decides: the input thumbnail
//!   enlarged, the verdict (a big digit, or REJECT with its reason), an
//!   uncertainty bar with the threshold marked, running counts, link status
//!   and a count of corrupt frames.
//! - **Inputs**: raw bytes from the serial link (`ood_core::wire` frames) and
//!   a millisecond clock.
//! - **Outputs**: drawing on any embedded-graphics `DrawTarget<Color = Rgb565>`;
//!   the target part is a 240x240 ST7789 IPS panel over SPI (see README).
//! - **Never**: std, an allocator, candle. The library builds for
//!   `thumbv7em-none-eabihf` (`cargo build -p firmware-sim --lib
//!   --no-default-features --target thumbv7em-none-eabihf`); the `desktop`
//!   feature adds the simulator binary.
#![cfg_attr(not(test), no_std)]

pub mod framebuffer;
pub mod state;
pub mod ui;

pub use state::{Firmware, Screen};
