//! From a real image or camera frame to the 28x28 input contract, the way
//! MNIST itself was made.
//!
//! 1. Grayscale (luma); an optional region of interest is cut out first.
//! 2. Polarity: the background is estimated from the border (its median, or
//!    a plane under a lamp that lights one side more); dark ink on light
//!    paper is inverted so that ink is light on dark, as in MNIST.
//! 3. The background is subtracted and the contrast stretched; what stays
//!    under a sixteenth of full ink (sensor noise, paper grain) is paper.
//! 4. Crop to the ink's bounding box (pixels above a quarter of the peak).
//! 5. Fit into 20x20 keeping the aspect ratio (anti-aliased resampling).
//! 6. Paste into 28x28 so that the centre of mass lands at the centre.
//! 7. Stretch so that the brightest pixel is full ink, as in every MNIST
//!    digit: a fine pen's stroke, thinner than a pixel after step 5, comes
//!    back dim otherwise (`ood_data::normalize::full_ink`).
//!
//! An image that is already 28x28 (a dataset image) passes through unchanged
//! (converted to luma if it has colour). A blank input stays blank: deciding
//! that it is not a digit is the model's job, not an error.

use crate::error::{Error, Result};
use image::{GrayImage, ImageReader, Limits};
use ood_core::{IMG_PIXELS, IMG_SIDE};
pub use ood_data::normalize::FIT;
use std::path::Path;

/// Largest width or height of an image we decode.
pub const MAX_SIDE: u32 = 8192;
/// Largest decoder allocation (bytes): bounds memory for hostile files.
pub const MAX_ALLOC: u64 = 256 << 20;

/// A rectangle `x, y, width, height` in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roi {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

impl std::str::FromStr for Roi {
    type Err = String;

    /// `X,Y,W,H`.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let v: Vec<u32> = s
            .split(',')
            .map(|p| p.trim().parse::<u32>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| format!("region of interest {s:?}: {e} (expected X,Y,W,H)"))?;
        match v.as_slice() {
            [x, y, w, h] if *w > 0 && *h > 0 => Ok(Roi {
                x: *x,
                y: *y,
                width: *w,
                height: *h,
            }),
            _ => Err(format!(
                "region of interest {s:?}: expected X,Y,W,H with W and H > 0"
            )),
        }
    }
}

/// Decodes an image file (PNG, JPEG) to grayscale, refusing sizes over
/// [`MAX_SIDE`] before allocating the pixels.
pub fn read_gray(path: &Path) -> Result<GrayImage> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.len() == 0 {
        return Err(image_error(path, "empty file (0 bytes): not an image".into()));
    }
    // trust the content, not the extension
    let mut head = [0u8; 64];
    let n = {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        f.read(&mut head).map_err(|e| Error::io(path, e))?
    };
    let format = png_or_jpeg(&head[..n], path)?;
    let reader = ImageReader::open(path).map_err(|e| Error::io(path, e))?;
    decode_limited(reader, format, path)
}

/// Decodes image bytes (PNG, JPEG) to grayscale as [`read_gray`] does a
/// file; `path` is only used in error messages.
pub fn decode_gray(bytes: &[u8], path: &Path) -> Result<GrayImage> {
    if bytes.is_empty() {
        return Err(image_error(path, "empty file (0 bytes): not an image".into()));
    }
    let format = png_or_jpeg(&bytes[..bytes.len().min(64)], path)?;
    decode_limited(ImageReader::new(std::io::Cursor::new(bytes)), format, path)
}

fn image_error(path: &Path, what: String) -> Error {
    Error::Image {
        path: path.into(),
        what,
    }
}

fn png_or_jpeg(head: &[u8], path: &Path) -> Result<image::ImageFormat> {
    image::guess_format(head)
        .ok()
        .filter(|f| matches!(f, image::ImageFormat::Png | image::ImageFormat::Jpeg))
        .ok_or_else(|| image_error(path, "not a PNG or JPEG image (unrecognised content)".into()))
}

fn decode_limited<R: std::io::BufRead + std::io::Seek>(
    mut reader: ImageReader<R>,
    format: image::ImageFormat,
    path: &Path,
) -> Result<GrayImage> {
    reader.set_format(format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(l) => image_error(path, format!(
            "too large to decode ({l}); images up to {MAX_SIDE}x{MAX_SIDE} are accepted: scale it down or pass a region of interest of a smaller copy"
        )),
        e => image_error(path, format!("cannot decode: {e}")),
    })?;
    Ok(img.to_luma8())
}

/// A borrowed grayscale image: `width x height` bytes, rows `stride` bytes
/// apart (a camera's Y plane, a decoded image, or a region of either),
/// read without copying.
#[derive(Debug, Clone, Copy)]
pub struct GrayView<'a> {
    pixels: &'a [u8],
    width: u32,
    height: u32,
    stride: usize,
}

impl<'a> GrayView<'a> {
    /// A view of `pixels`, rows of `width` bytes one after the other.
    pub fn new(pixels: &'a [u8], width: u32, height: u32) -> Result<Self> {
        if pixels.len() as u64 != u64::from(width) * u64::from(height) {
            return Err(Error::Frame(format!(
                "{} bytes do not make a {width}x{height} gray image",
                pixels.len()
            )));
        }
        Ok(Self {
            pixels,
            width,
            height,
            stride: width as usize,
        })
    }

    /// A view of a decoded image.
    pub fn of(img: &'a GrayImage) -> Self {
        Self {
            pixels: img.as_raw(),
            width: img.width(),
            height: img.height(),
            stride: img.width() as usize,
        }
    }

    /// Width and height.
    pub fn dimensions(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// The pixel at `(x, y)`; panics outside the image, like indexing.
    pub fn pixel(&self, x: u32, y: u32) -> u8 {
        self.row(y)[x as usize]
    }

    /// Row `y`.
    fn row(&self, y: u32) -> &'a [u8] {
        let start = y as usize * self.stride;
        &self.pixels[start..start + self.width as usize]
    }

    /// The region `r`, or an error when it does not lie inside.
    pub fn region(&self, r: Roi) -> Result<Self> {
        if r.width == 0 || r.height == 0 {
            return Err(Error::Frame(format!(
                "region of interest {}x{} at ({}, {}) is empty: width and height must be > 0",
                r.width, r.height, r.x, r.y
            )));
        }
        if r.x.saturating_add(r.width) > self.width || r.y.saturating_add(r.height) > self.height {
            return Err(Error::Frame(format!(
                "region of interest {}x{} at ({}, {}) lies outside the {}x{} image",
                r.width, r.height, r.x, r.y, self.width, self.height
            )));
        }
        let start = r.y as usize * self.stride + r.x as usize;
        let end = start + (r.height as usize - 1) * self.stride + r.width as usize;
        Ok(Self {
            pixels: &self.pixels[start..end],
            width: r.width,
            height: r.height,
            stride: self.stride,
        })
    }
}

/// The 28x28 input for a grayscale image (see the module docs).
pub fn to_input(img: &GrayImage, roi: Option<Roi>) -> Result<[u8; IMG_PIXELS]> {
    view_to_input(GrayView::of(img), roi)
}

/// The 28x28 input for a borrowed image (see the module docs): the path of
/// camera frames. Past the region of interest and the 28x28 pass-through,
/// the work is `ood_data::normalize::page` (one implementation, shared with
/// the trainer's photographed digits). On an evenly lit page the
/// full-resolution work is two integer passes (the ink's extreme value, then
/// its bounding box, rows without ink skipped after one min/max each); the
/// contrast stretch (a 256-entry table) and the resampling touch only the
/// ink's bounding box. Under a lamp (a background plane) the same passes
/// subtract the plane per pixel in the runs of a row that can hold ink. A
/// 640x480 frame takes a fraction of a millisecond (`edge bench`).
pub fn view_to_input(img: GrayView<'_>, roi: Option<Roi>) -> Result<[u8; IMG_PIXELS]> {
    let side = IMG_SIDE as u32;
    let img = match roi {
        Some(r) => img.region(r)?,
        None => img,
    };
    let mut out = [0u8; IMG_PIXELS];
    let (w, h) = img.dimensions();
    if w == side && h == side && roi.is_none() {
        for y in 0..h {
            out[(y * side) as usize..((y + 1) * side) as usize].copy_from_slice(img.row(y));
        }
        return Ok(out);
    }
    Ok(ood_data::normalize::page(w, h, |y| img.row(y)))
}

/// Reads and preprocesses one image file.
pub fn load(path: &Path, roi: Option<Roi>) -> Result<[u8; IMG_PIXELS]> {
    let img = read_gray(path)?;
    to_input(&img, roi).map_err(|e| match e {
        Error::Frame(what) => Error::Image {
            path: path.into(),
            what,
        },
        e => e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The implementation before the fast path (2026-12-03), kept as the
    /// oracle: the fast path must give the same bytes. Since 2026-12-05 its
    /// background is `ood_data::normalize::Background` (the border's median,
    /// or a plane under a lamp), subtracted pixel by pixel, and stretched ink
    /// under `PAPER_NOISE` is paper.
    fn reference_to_input(img: &GrayImage, roi: Option<Roi>) -> Result<[u8; IMG_PIXELS]> {
        let side = IMG_SIDE as u32;
        let img = match roi {
            Some(r) => {
                if r.width == 0 || r.height == 0 {
                    return Err(Error::Frame("empty region of interest".into()));
                }
                if r.x.saturating_add(r.width) > img.width() || r.y.saturating_add(r.height) > img.height() {
                    return Err(Error::Frame(format!(
                        "region of interest {}x{} at ({}, {}) lies outside the {}x{} image",
                        r.width,
                        r.height,
                        r.x,
                        r.y,
                        img.width(),
                        img.height()
                    )));
                }
                image::imageops::crop_imm(img, r.x, r.y, r.width, r.height).to_image()
            }
            None => img.clone(),
        };
        let mut out = [0u8; IMG_PIXELS];
        if img.width() == side && img.height() == side && roi.is_none() {
            out.copy_from_slice(img.as_raw());
            return Ok(out);
        }
        let (w, h) = img.dimensions();
        if w == 0 || h == 0 {
            return Ok(out);
        }
        // background from the border; invert dark-on-light
        let border: Vec<u8> = (0..w)
            .flat_map(|x| [img.get_pixel(x, 0)[0], img.get_pixel(x, h - 1)[0]])
            .chain((0..h).flat_map(|y| [img.get_pixel(0, y)[0], img.get_pixel(w - 1, y)[0]]))
            .collect();
        let mut sorted = border.clone();
        sorted.sort_unstable();
        let median = sorted[sorted.len() / 2];
        let invert = median > 127;
        // the background at every pixel: the median, or a plane under a lamp
        let raw = img.as_raw();
        let row = |y: u32| &raw[(y * w) as usize..((y + 1) * w) as usize];
        let bg = ood_data::normalize::Background::of_border(w, h, median, row);
        let ink = |x: u32, y: u32| {
            let d = f32::from(img.get_pixel(x, y)[0]) - bg.at(x, y);
            if invert {
                -d
            } else {
                d
            }
        };
        let peak = (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .map(|(x, y)| ink(x, y))
            .fold(0f32, f32::max);
        if peak <= 16.0 {
            return Ok(out); // no ink: blank
        }
        // stretched; what stays under PAPER_NOISE is paper
        let stretched = GrayImage::from_fn(w, h, |x, y| {
            let v = (ink(x, y) * 255.0 / peak).round().clamp(0.0, 255.0) as u8;
            image::Luma([if v < ood_data::normalize::PAPER_NOISE {
                0
            } else {
                v
            }])
        });
        // bounding box of the ink
        let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
        for (x, y, p) in stretched.enumerate_pixels() {
            if p[0] > 64 {
                x0 = x0.min(x);
                y0 = y0.min(y);
                x1 = x1.max(x);
                y1 = y1.max(y);
            }
        }
        if x1 < x0 {
            return Ok(out);
        }
        let (bw, bh) = (x1 - x0 + 1, y1 - y0 + 1);
        let crop = image::imageops::crop_imm(&stretched, x0, y0, bw, bh).to_image();
        Ok(ood_data::normalize::full_ink(
            ood_data::normalize::fit_and_centre(&crop),
        ))
    }

    proptest::proptest! {
        /// The fast path gives the bytes of the implementation it replaced,
        /// on images with strokes on paper or on black, with or without a
        /// region of interest.
        #[test]
        fn fast_path_matches_the_reference(
            w in 1u32..120, h in 1u32..120, seed in proptest::prelude::any::<u64>(),
            paper in proptest::prelude::any::<bool>(),
            roi in proptest::option::of((0u32..60, 0u32..60, 0u32..80, 0u32..80)),
        ) {
            let mut state = seed | 1;
            let mut next = move || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state
            };
            let (bx, by, bw, bh) = (next() % 120, next() % 120, next() % 60, next() % 60);
            let noise = next() % 40;
            // half the pages lit unevenly: up to 60 levels across, 30 down
            let lamp = (next() % 2 == 0).then(|| ((next() % 61) as i64 - 30, (next() % 31) as i64 - 15));
            let img = GrayImage::from_fn(w, h, |x, y| {
                let stroke = x >= bx as u32 && x < (bx + bw) as u32 && y >= by as u32 && y < (by + bh) as u32;
                let light = lamp.map_or(0, |(gx, gy)| (gx * i64::from(x) + gy * i64::from(y)) / 60);
                let base: i64 = if stroke { 200 } else { 40 + light };
                let v = base + (next() % (noise + 1)) as i64;
                let v = v.clamp(0, 255) as u8;
                image::Luma([if paper { 255 - v } else { v }])
            });
            let roi = roi.map(|(x, y, width, height)| Roi { x, y, width, height });
            let want = reference_to_input(&img, roi).ok();
            let got = to_input(&img, roi).ok();
            proptest::prop_assert_eq!(got.map(|a| a.to_vec()), want.map(|a| a.to_vec()));
        }
    }

    /// A dark "1" stroke on white paper, `w x h`.
    fn paper_with_stroke(w: u32, h: u32) -> GrayImage {
        GrayImage::from_fn(w, h, |x, y| {
            let on = x >= w / 2 - w / 20 && x <= w / 2 + w / 20 && y >= h / 4 && y < 3 * h / 4;
            image::Luma([if on { 20 } else { 230 }])
        })
    }

    #[test]
    fn dataset_sized_images_pass_through_unchanged() -> Result<()> {
        let img = GrayImage::from_fn(28, 28, |x, y| image::Luma([(x * 9 + y) as u8]));
        assert_eq!(to_input(&img, None)?.as_slice(), img.as_raw().as_slice());
        Ok(())
    }

    #[test]
    fn dark_ink_on_paper_becomes_a_centred_mnist_digit() -> Result<()> {
        let out = to_input(&paper_with_stroke(400, 300), None)?;
        // light ink on dark background
        assert_eq!(out[0], 0);
        let max = *out.iter().max().unwrap_or(&0);
        assert!(max > 200, "ink is bright: {max}");
        // fitted into 20 rows, centre of mass near the centre
        let rows: Vec<usize> = (0..IMG_SIDE)
            .filter(|&y| out[y * IMG_SIDE..(y + 1) * IMG_SIDE].iter().any(|&v| v > 64))
            .collect();
        assert!(rows.len() >= 19 && rows.len() <= 21, "ink rows {}", rows.len());
        let (mut m, mut mx, mut my) = (0f64, 0f64, 0f64);
        for (i, &v) in out.iter().enumerate() {
            m += f64::from(v);
            mx += f64::from(v) * (i % IMG_SIDE) as f64;
            my += f64::from(v) * (i / IMG_SIDE) as f64;
        }
        assert!(
            (mx / m - 13.5).abs() <= 1.0 && (my / m - 13.5).abs() <= 1.0,
            "{} {}",
            mx / m,
            my / m
        );
        Ok(())
    }

    proptest::proptest! {
        /// Any image and any region of interest: a result or a clear error,
        /// never a panic; ink never leaves the 28x28 frame.
        #[test]
        fn never_panics_on_arbitrary_images(
            w in 1u32..80, h in 1u32..80, seed in proptest::prelude::any::<u64>(),
            roi in proptest::option::of((0u32..90, 0u32..90, 0u32..90, 0u32..90)),
        ) {
            let mut state = seed | 1;
            let img = GrayImage::from_fn(w, h, |_, _| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                image::Luma([(state >> 24) as u8])
            });
            let roi = roi.map(|(x, y, width, height)| Roi { x, y, width, height });
            if let Ok(out) = to_input(&img, roi) {
                proptest::prop_assert_eq!(out.len(), IMG_PIXELS);
            }
        }
    }

    #[test]
    /// Found by `scripts/fuzz.sh` (target `frame`, 2026-12-03): an empty
    /// region of interest at the far corner of a 32x24 YUV frame sliced past
    /// the end of the Y plane (`range start index 800 out of range for slice
    /// of length 768`). Empty regions are now an error.
    fn an_empty_region_at_the_far_corner_is_an_error_not_a_panic() {
        let spec = crate::frame::FrameSpec::new(32, 24, crate::frame::PixelFormat::Yuv420).expect("spec");
        let frame = vec![30u8; spec.frame_len()];
        let view = spec.luma(&frame).expect("luma");
        for (x, y, width, height) in [(32, 24, 0, 0), (0, 0, 0, 5), (3, 4, 5, 0), (31, 23, 1, 1)] {
            let got = view_to_input(view, Some(Roi { x, y, width, height }));
            if width == 0 || height == 0 {
                let e = got.expect_err("empty region").to_string();
                assert!(e.contains("is empty"), "{e}");
            } else {
                assert!(got.is_ok(), "a 1x1 region in the last corner is fine");
            }
        }
    }

    #[test]
    fn blank_input_stays_blank_and_roi_is_checked() -> Result<()> {
        let blank = GrayImage::from_pixel(64, 48, image::Luma([200]));
        assert!(to_input(&blank, None)?.iter().all(|&v| v == 0));
        let roi: Roi = "10,10,30,20".parse().map_err(Error::Frame)?;
        assert!(to_input(&blank, Some(roi)).is_ok());
        let outside: Roi = "50,40,30,20".parse().map_err(Error::Frame)?;
        assert!(to_input(&blank, Some(outside)).is_err());
        assert!("1,2,3".parse::<Roi>().is_err() && "1,2,0,4".parse::<Roi>().is_err());
        Ok(())
    }
}
