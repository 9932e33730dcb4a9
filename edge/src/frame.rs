//! Raw camera frames from a byte stream (stdin), as `rpicam-vid --codec
//! yuv420 -o -` or `ffmpeg -f rawvideo` write them: fixed-size frames with no
//! header, gray8 or planar YUV 4:2:0 (only the Y plane is used).
//!
//! [`Latest`] is a one-slot mailbox between the reading thread and the
//! inference loop: a new frame replaces one not yet taken, which is counted
//! as dropped. Frames arriving faster than inference are dropped, never
//! queued: memory stays at two frames whatever the camera's rate.

use crate::error::{Error, Result};
use crate::preprocess::GrayView;
use std::io::Read;
use std::sync::{Condvar, Mutex};

/// Largest frame side accepted (bounds memory for a mistyped size).
pub const MAX_FRAME_SIDE: u32 = 8192;

/// Pixel layout of a raw frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    /// One byte of luma per pixel.
    Gray8,
    /// Planar YUV 4:2:0 (I420): Y plane, then quarter-size U and V planes.
    Yuv420,
}

impl std::str::FromStr for PixelFormat {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "gray8" | "gray" | "grey" | "y8" => Ok(PixelFormat::Gray8),
            "yuv420" | "i420" | "yuv420p" => Ok(PixelFormat::Yuv420),
            _ => Err(format!("unknown pixel format {s:?}: use gray8 or yuv420")),
        }
    }
}

/// Size and layout of every frame in a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameSpec {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Layout.
    pub format: PixelFormat,
}

impl FrameSpec {
    /// A checked spec.
    pub fn new(width: u32, height: u32, format: PixelFormat) -> Result<Self> {
        if width == 0 || height == 0 || width > MAX_FRAME_SIDE || height > MAX_FRAME_SIDE {
            return Err(Error::Frame(format!(
                "frame size {width}x{height} is out of range (1..={MAX_FRAME_SIDE} per side)"
            )));
        }
        Ok(Self {
            width,
            height,
            format,
        })
    }

    /// Bytes per frame.
    pub fn frame_len(&self) -> usize {
        let (w, h) = (self.width as usize, self.height as usize);
        match self.format {
            PixelFormat::Gray8 => w * h,
            PixelFormat::Yuv420 => w * h + 2 * w.div_ceil(2) * h.div_ceil(2),
        }
    }

    /// The luma plane of one frame's bytes, borrowed (no copy).
    pub fn luma<'a>(&self, frame: &'a [u8]) -> Result<GrayView<'a>> {
        if frame.len() != self.frame_len() {
            return Err(Error::Frame(format!(
                "frame of {} bytes, expected {} for {}x{} {:?}",
                frame.len(),
                self.frame_len(),
                self.width,
                self.height,
                self.format
            )));
        }
        GrayView::new(
            &frame[..(self.width * self.height) as usize],
            self.width,
            self.height,
        )
    }
}

/// Reads the next whole frame: `Ok(None)` at a clean end of stream, an error
/// when the stream ends inside a frame (the usual sign of a wrong size).
pub fn read_frame(r: &mut impl Read, spec: &FrameSpec, buf: &mut Vec<u8>) -> Result<Option<()>> {
    let len = spec.frame_len();
    buf.resize(len, 0);
    let mut got = 0;
    while got < len {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => {
                return Err(Error::Frame(format!(
                    "the stream ended {got} bytes into a frame of {len} bytes ({}x{} {:?}): are --width, --height and --format those of the camera?",
                    spec.width, spec.height, spec.format
                )))
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("-", e)),
        }
    }
    Ok(Some(()))
}

/// A one-slot mailbox: the newest value wins, replaced values are counted.
#[derive(Debug, Default)]
pub struct Latest<T> {
    slot: Mutex<(Option<T>, bool, u64)>, // (value, closed, dropped)
    ready: Condvar,
}

impl<T> Latest<T> {
    /// An empty, open mailbox.
    pub fn new() -> Self {
        Self {
            slot: Mutex::new((None, false, 0)),
            ready: Condvar::new(),
        }
    }

    /// Puts `v`, replacing (and counting as dropped) a value not yet taken.
    pub fn put(&self, v: T) {
        let mut g = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        if g.0.replace(v).is_some() {
            g.2 += 1;
        }
        self.ready.notify_one();
    }

    /// No more values will come.
    pub fn close(&self) {
        let mut g = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        g.1 = true;
        self.ready.notify_all();
    }

    /// Waits for the newest value; `None` once closed and empty.
    pub fn take(&self) -> Option<T> {
        let mut g = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(v) = g.0.take() {
                return Some(v);
            }
            if g.1 {
                return None;
            }
            g = self.ready.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Values replaced before anyone took them.
    pub fn dropped(&self) -> u64 {
        self.slot.lock().unwrap_or_else(|p| p.into_inner()).2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_sizes_and_short_streams() -> Result<()> {
        let spec = FrameSpec::new(640, 480, PixelFormat::Yuv420)?;
        assert_eq!(spec.frame_len(), 640 * 480 * 3 / 2);
        assert_eq!(FrameSpec::new(3, 3, PixelFormat::Yuv420)?.frame_len(), 9 + 2 * 4);
        assert!(FrameSpec::new(0, 10, PixelFormat::Gray8).is_err());
        let g = FrameSpec::new(4, 2, PixelFormat::Gray8)?;
        let data: Vec<u8> = (0..20).collect(); // two whole frames and 4 bytes
        let mut r = &data[..];
        let mut buf = Vec::new();
        assert!(read_frame(&mut r, &g, &mut buf)?.is_some());
        assert_eq!(g.luma(&buf)?.pixel(1, 1), 5);
        assert!(read_frame(&mut r, &g, &mut buf)?.is_some());
        let err = read_frame(&mut r, &g, &mut buf).expect_err("partial frame");
        assert!(err.to_string().contains("4 bytes into a frame of 8"), "{err}");
        assert!(read_frame(&mut &[][..], &g, &mut buf)?.is_none());
        assert!(g.luma(&buf[..3]).is_err());
        Ok(())
    }

    #[test]
    fn latest_keeps_the_newest_and_counts_drops() {
        let m = Latest::new();
        m.put(1);
        m.put(2);
        m.put(3);
        assert_eq!(m.take(), Some(3));
        assert_eq!(m.dropped(), 2);
        m.close();
        assert_eq!(m.take(), None);
    }

    #[test]
    fn producer_faster_than_consumer_never_queues() {
        let m = std::sync::Arc::new(Latest::new());
        let p = m.clone();
        let t = std::thread::spawn(move || {
            for i in 0..10_000u32 {
                p.put(i);
            }
            p.close();
        });
        let mut taken = Vec::new();
        while let Some(v) = m.take() {
            taken.push(v);
        }
        t.join().expect("producer");
        // every value was either taken or dropped; the last one always arrives
        assert_eq!(taken.len() as u64 + m.dropped(), 10_000);
        assert_eq!(taken.last(), Some(&9_999));
        assert!(taken.windows(2).all(|w| w[0] < w[1]));
    }
}
