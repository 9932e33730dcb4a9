//! MNIST's own normalisation of a drawing: the ink's bounding box fitted
//! into a [`FIT`] x [`FIT`] box keeping its aspect ratio (anti-aliased
//! resampling), pasted into 28x28 with its centre of mass at the centre.
//!
//! One implementation for both sides of the model: the edge runtime applies
//! it to every image and camera frame (`edge::preprocess`, through [`page`]),
//! and the trainer applies it to its near-OOD validation families to
//! measure them as the device will see them (a small fragment or symbol
//! arrives enlarged and centred, with thicker, resampled strokes), and to
//! digits as a scan ([`scan`]) or a camera ([`photo`]) delivers them. Garbage for *training* is not
//! made this way: resampled drawings carry a soft edge no training digit
//! has, which a classifier learns as a shortcut (see `pen::draw_fitted`).

use image::{imageops, GrayImage};
use ood_core::{IMG_PIXELS, IMG_SIDE};

/// Side of the box the ink is fitted into (MNIST: 20).
pub const FIT: u32 = 20;

/// Ink level (0-255, light ink on dark) above which a pixel counts for the
/// bounding box: a quarter of full ink, as the edge decides after its
/// contrast stretch.
pub const INK_LEVEL: u8 = 64;

/// The centre of mass `(x, y)` of a row-major image `width` pixels wide,
/// with pixel `(i, j)` at `(i + origin, j + origin)` (0: pixel indices; 0.5:
/// pixel centres in continuous coordinates); `None` for an image without ink.
pub fn centre_of_mass(pixels: &[u8], width: usize, origin: f64) -> Option<(f64, f64)> {
    let (mut m, mut mx, mut my) = (0f64, 0f64, 0f64);
    for (i, &v) in pixels.iter().enumerate() {
        let v = f64::from(v);
        m += v;
        mx += v * ((i % width.max(1)) as f64 + origin);
        my += v * ((i / width.max(1)) as f64 + origin);
    }
    (m > 0.0).then(|| (mx / m, my / m))
}

/// The ink's crop (light on dark) fitted into [`FIT`] x [`FIT`] keeping its
/// aspect ratio and pasted into 28x28 with its centre of mass at the centre.
pub fn fit_and_centre(crop: &GrayImage) -> [u8; IMG_PIXELS] {
    let side = IMG_SIDE as u32;
    let (bw, bh) = crop.dimensions();
    let mut out = [0u8; IMG_PIXELS];
    if bw == 0 || bh == 0 {
        return out;
    }
    let scale = FIT as f32 / bw.max(bh) as f32;
    let (nw, nh) = (
        ((bw as f32 * scale).round() as u32).clamp(1, FIT),
        ((bh as f32 * scale).round() as u32).clamp(1, FIT),
    );
    let small = imageops::resize(crop, nw, nh, imageops::FilterType::Triangle);
    let (cx, cy) = centre_of_mass(small.as_raw(), nw as usize, 0.0)
        .unwrap_or((f64::from(nw) / 2.0, f64::from(nh) / 2.0));
    let half = f64::from(side) / 2.0;
    let ox = ((half - 0.5 - cx).round() as i64).clamp(0, i64::from(side - nw));
    let oy = ((half - 0.5 - cy).round() as i64).clamp(0, i64::from(side - nh));
    for (x, y, p) in small.enumerate_pixels() {
        let (tx, ty) = (ox as usize + x as usize, oy as usize + y as usize);
        out[ty * IMG_SIDE + tx] = p[0];
    }
    out
}

/// A 28x28 drawing (light ink on dark, in the input contract) normalised
/// the way the device normalises what its camera sees: the bounding box of
/// the pixels above [`INK_LEVEL`], through [`fit_and_centre`]. A drawing
/// with no such pixel comes back blank.
pub fn drawing(img: &[u8; IMG_PIXELS]) -> [u8; IMG_PIXELS] {
    GrayImage::from_raw(IMG_SIDE as u32, IMG_SIDE as u32, img.to_vec())
        .map_or([0; IMG_PIXELS], |page| ink_fitted(&page))
}

/// A 28x28 image (light ink on dark) as the device receives it from a scan
/// or a camera: enlarged `factor` times with smoothing (a page or a frame
/// holds the drawing at many pixels, not 28), then brought back by the
/// device's own normalisation (the ink's box at [`INK_LEVEL`], fitted into
/// [`FIT`] x [`FIT`], centred). Strokes come back softer and of another
/// width than MNIST's, as they do on the device.
pub fn scan(img: &[u8; IMG_PIXELS], factor: f32) -> [u8; IMG_PIXELS] {
    let side = ((IMG_SIDE as f32 * factor).round() as u32).max(IMG_SIDE as u32);
    GrayImage::from_raw(IMG_SIDE as u32, IMG_SIDE as u32, img.to_vec()).map_or([0; IMG_PIXELS], |small| {
        ink_fitted(&imageops::resize(
            &small,
            side,
            side,
            imageops::FilterType::Triangle,
        ))
    })
}

/// The bounding box of `page`'s pixels above [`INK_LEVEL`] through
/// [`fit_and_centre`]; blank when no pixel is.
fn ink_fitted(page: &GrayImage) -> [u8; IMG_PIXELS] {
    let (w, h) = page.dimensions();
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
    for (x, y, p) in page.enumerate_pixels() {
        if p[0] > INK_LEVEL {
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
        }
    }
    if x1 < x0 || y1 < y0 {
        return [0; IMG_PIXELS];
    }
    fit_and_centre(&imageops::crop_imm(page, x0, y0, x1 - x0 + 1, y1 - y0 + 1).to_image())
}

/// The device's normalisation of a whole page (a photo, a scan or a camera
/// frame; `row(y)` is row `y`, `w` bytes): the background is the median of
/// the border, and a light one (paper) is inverted so that ink is light on
/// dark; the background level is subtracted and the contrast stretched to
/// the ink's peak (a 256-entry table); the bounding box of the stretched
/// ink above [`INK_LEVEL`] goes through [`fit_and_centre`]. Full-resolution
/// work is two integer passes (the ink's extreme value, then its bounding
/// box, rows without ink skipped after one min/max each). A page without
/// ink (peak within 16 levels of the background) comes back blank. The
/// edge runtime runs every image and frame through it
/// (`edge::preprocess::view_to_input`); the trainer, its photographed
/// validation digits ([`photo`]).
pub fn page<'a>(w: u32, h: u32, row: impl Fn(u32) -> &'a [u8]) -> [u8; IMG_PIXELS] {
    let out = [0u8; IMG_PIXELS];
    if w == 0 || h == 0 {
        return out;
    }
    // background from the border; invert dark-on-light
    let mut border: Vec<u8> = Vec::with_capacity(2 * (w + h) as usize);
    let (top, bottom) = (row(0), row(h - 1));
    for x in 0..w as usize {
        border.extend([top[x], bottom[x]]);
    }
    for y in 0..h {
        let r = row(y);
        border.extend([r[0], r[w as usize - 1]]);
    }
    let mid = border.len() / 2;
    let median = *border.select_nth_unstable(mid).1;
    let invert = median > 127;
    let ink = |v: u8| if invert { 255 - v } else { v };
    let bg = ink(median);
    // the ink's peak: the darkest pixel on paper, the brightest otherwise
    let peak = (0..h)
        .map(|y| {
            let r = row(y);
            if invert {
                ink(r.iter().copied().min().unwrap_or(255))
            } else {
                r.iter().copied().max().unwrap_or(0)
            }
        })
        .max()
        .unwrap_or(0);
    if peak <= bg.saturating_add(16) {
        return out; // no ink: blank
    }
    // contrast stretch as a table over the 256 raw values
    let range = f32::from(peak - bg);
    let mut stretch = [0u8; 256];
    for (v, s) in stretch.iter_mut().enumerate() {
        let d = f32::from(ink(v as u8).saturating_sub(bg));
        *s = (d * 255.0 / range).round().clamp(0.0, 255.0) as u8;
    }
    // bounding box of the ink (stretched above INK_LEVEL); the stretch grows
    // with the ink, so "is ink" is one comparison of the raw value
    let is_ink = |v: u8| stretch[v as usize] > INK_LEVEL;
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
    for y in 0..h {
        let r = row(y);
        let extreme = if invert {
            r.iter().copied().min()
        } else {
            r.iter().copied().max()
        };
        if !extreme.is_some_and(is_ink) {
            continue;
        }
        let first = r.iter().position(|&v| is_ink(v)).unwrap_or(0) as u32;
        let last = r.iter().rposition(|&v| is_ink(v)).unwrap_or(0) as u32;
        x0 = x0.min(first);
        x1 = x1.max(last);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x1 < x0 {
        return out;
    }
    let (bw, bh) = (x1 - x0 + 1, y1 - y0 + 1);
    let crop = GrayImage::from_fn(bw, bh, |x, y| {
        image::Luma([stretch[row(y0 + y)[(x0 + x) as usize] as usize]])
    });
    fit_and_centre(&crop)
}

/// Width and height of a [`photograph`]: a VGA camera frame.
pub const PHOTO_SIZE: (u32, u32) = (640, 480);

/// How a digit lies on a photographed page (see [`photograph`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Photo {
    /// Side of the digit on the page, in pixels (28 enlarged with smoothing).
    pub side: u32,
    /// Top-left corner of the digit on the page.
    pub at: (u32, u32),
    /// Paper brightness at the page's top-left corner (0-255).
    pub paper: f32,
    /// Change of the paper's brightness across the page's width and down
    /// its height (a lamp on one side).
    pub gradient: (f32, f32),
    /// Darkness of full ink: the share of the paper's light it takes away.
    pub ink: f32,
    /// Seed of the sensor noise (+-6 levels).
    pub noise: u32,
}

impl Photo {
    /// A random photo of a digit: 168-252 pixels high, anywhere on the page,
    /// paper at 185-215 with up to +-40 levels of gradient across and +-25
    /// down, ink taking 70-90% of the light.
    pub fn random(rng: &mut impl rand::Rng) -> Self {
        let side = rng.random_range(168..=252);
        let (w, h) = PHOTO_SIZE;
        Self {
            side,
            at: (rng.random_range(0..=w - side), rng.random_range(0..=h - side)),
            paper: rng.random_range(185.0..215.0),
            gradient: (rng.random_range(-40.0..40.0), rng.random_range(-25.0..25.0)),
            ink: rng.random_range(0.7..0.9),
            noise: rng.random::<u32>() | 1,
        }
    }
}

/// A 28x28 digit (light ink on dark) photographed as dark ink on a
/// [`PHOTO_SIZE`] page of light paper, as a camera over a notebook sees it:
/// enlarged with smoothing to `p.side`, at `p.at`, on paper with a lighting
/// gradient and sensor noise.
pub fn photograph(img: &[u8; IMG_PIXELS], p: &Photo) -> GrayImage {
    let small = GrayImage::from_raw(IMG_SIDE as u32, IMG_SIDE as u32, img.to_vec()).unwrap_or_default();
    let big = imageops::resize(&small, p.side, p.side, imageops::FilterType::Triangle);
    let (w, h) = PHOTO_SIZE;
    let mut noise = p.noise;
    GrayImage::from_fn(w, h, |x, y| {
        noise ^= noise << 13;
        noise ^= noise >> 17;
        noise ^= noise << 5;
        let paper = p.paper
            + p.gradient.0 * x as f32 / w as f32
            + p.gradient.1 * y as f32 / h as f32
            + (noise % 13) as f32
            - 6.0;
        let (dx, dy) = (x.wrapping_sub(p.at.0), y.wrapping_sub(p.at.1));
        let ink = if dx < p.side && dy < p.side {
            f32::from(big.get_pixel(dx, dy)[0]) / 255.0
        } else {
            0.0
        };
        image::Luma([(paper * (1.0 - p.ink * ink)).clamp(0.0, 255.0) as u8])
    })
}

/// A 28x28 digit as the device receives it from a camera: [`photograph`]ed
/// at `p`, then brought back by the device's own normalisation ([`page`]).
pub fn photo(img: &[u8; IMG_PIXELS], p: &Photo) -> [u8; IMG_PIXELS] {
    let shot = photograph(img, p);
    let w = shot.width() as usize;
    let raw = shot.as_raw();
    page(shot.width(), shot.height(), |y| {
        &raw[y as usize * w..(y as usize + 1) * w]
    })
}

/// Every image of `ds` through [`drawing`], renamed `name` (labels kept).
pub fn dataset(ds: &crate::Dataset, name: &str) -> crate::Dataset {
    dataset_with(ds, name, drawing)
}

/// Every image of `ds` through `f` (e.g. [`drawing`], [`scan`] at one
/// enlargement, or [`photo`] on a page of its own), in order, renamed
/// `name` (labels kept).
pub fn dataset_with(
    ds: &crate::Dataset,
    name: &str,
    mut f: impl FnMut(&[u8; IMG_PIXELS]) -> [u8; IMG_PIXELS],
) -> crate::Dataset {
    let mut out = crate::Dataset {
        name: name.into(),
        images: Vec::with_capacity(ds.images.len()),
        labels: ds.labels.clone(),
    };
    let mut img = [0u8; IMG_PIXELS];
    for i in 0..ds.len() {
        img.copy_from_slice(ds.image(i));
        out.images.extend_from_slice(&f(&img));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ink_box(img: &[u8; IMG_PIXELS]) -> (usize, usize, usize, usize) {
        let lit: Vec<usize> = (0..IMG_PIXELS).filter(|&i| img[i] > INK_LEVEL).collect();
        let xs = lit.iter().map(|i| i % IMG_SIDE);
        let ys = lit.iter().map(|i| i / IMG_SIDE);
        (
            xs.clone().min().unwrap_or(0),
            ys.clone().min().unwrap_or(0),
            xs.max().unwrap_or(0),
            ys.max().unwrap_or(0),
        )
    }

    /// Full ink over rows `ys` and columns `xs`, blank elsewhere.
    fn bar(ys: std::ops::Range<usize>, xs: std::ops::Range<usize>) -> [u8; IMG_PIXELS] {
        let mut img = [0u8; IMG_PIXELS];
        for y in ys {
            img[y * IMG_SIDE + xs.start..y * IMG_SIDE + xs.end].fill(255);
        }
        img
    }

    #[test]
    fn a_small_mark_in_a_corner_is_enlarged_to_the_box_and_centred() {
        // a 5x3 bar at the top-left corner
        let img = bar(1..4, 1..6);
        let out = drawing(&img);
        let (x0, y0, x1, y1) = ink_box(&out);
        assert_eq!(
            x1 - x0 + 1,
            FIT as usize,
            "the longer side fills the box: {x0}..{x1}"
        );
        assert!(
            (11..=13).contains(&(y1 - y0 + 1)),
            "aspect kept (3/5 of 20): {y0}..{y1}"
        );
        // centre of mass at the centre (13.5), within a pixel
        let (cx, cy) = centre_of_mass(&out, IMG_SIDE, 0.0).expect("ink");
        assert!((cx - 13.5).abs() <= 1.0 && (cy - 13.5).abs() <= 1.0, "{cx} {cy}");
    }

    #[test]
    fn a_dataset_is_normalised_image_by_image() {
        let mut ds = crate::Dataset::default();
        let mut img = [0u8; IMG_PIXELS];
        img[3 * IMG_SIDE + 3] = 200;
        img[5 * IMG_SIDE + 9] = 255;
        ds.push(&img, 4);
        ds.push(&[0; IMG_PIXELS], 10);
        let out = dataset(&ds, "n");
        assert_eq!(
            (out.name.as_str(), out.len(), &out.labels[..]),
            ("n", 2, &[4u8, 10][..])
        );
        assert_eq!(out.image(0), &drawing(&img)[..]);
        assert_ne!(out.image(0), ds.image(0));
        assert_eq!(out.image(1), &[0u8; IMG_PIXELS][..]);
    }

    #[test]
    fn a_scanned_stroke_comes_back_fitted_centred_and_softer() {
        // an MNIST-like 1: a 3x20 bar of full ink, centred
        let img = bar(4..24, 13..16);
        for factor in [2.0, 3.75, 8.0] {
            let out = scan(&img, factor);
            let (x0, y0, x1, y1) = ink_box(&out);
            assert_eq!(
                y1 - y0 + 1,
                FIT as usize,
                "x{factor}: the long side fills the box"
            );
            assert!(x1 - x0 <= 4, "x{factor}: still a thin stroke ({x0}..{x1})");
            let (cx, cy) = centre_of_mass(&out, IMG_SIDE, 0.0).expect("ink");
            assert!(
                (cx - 13.5).abs() <= 1.0 && (cy - 13.5).abs() <= 1.0,
                "({cx}, {cy})"
            );
            let soft = out.iter().filter(|&&p| p > 0 && p < 255).count();
            let soft_before = img.iter().filter(|&&p| p > 0 && p < 255).count();
            assert!(soft > soft_before, "x{factor}: smoothing leaves grey edges");
        }
        assert_eq!(scan(&[0; IMG_PIXELS], 3.0), [0; IMG_PIXELS], "blank stays blank");
    }

    #[test]
    fn centre_of_mass_by_hand() {
        // 3 wide: ink 1 at (0, 0) and 3 at (2, 1) -> x = 6 / 4, y = 3 / 4
        assert_eq!(centre_of_mass(&[1, 0, 0, 0, 0, 3], 3, 0.0), Some((1.5, 0.75)));
        assert_eq!(centre_of_mass(&[1, 0, 0, 0, 0, 3], 3, 0.5), Some((2.0, 1.25)));
        assert_eq!(centre_of_mass(&[0; 6], 3, 0.0), None);
    }

    #[test]
    fn a_photographed_digit_is_dark_ink_on_lit_paper_and_comes_back_fitted_and_centred() {
        use rand::SeedableRng;
        let img = bar(4..24, 13..16); // an MNIST-like 1
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..20 {
            let p = Photo::random(&mut rng);
            let (w, h) = PHOTO_SIZE;
            assert!(p.at.0 + p.side <= w && p.at.1 + p.side <= h, "on the page: {p:?}");
            let shot = photograph(&img, &p);
            assert_eq!(shot.dimensions(), PHOTO_SIZE);
            // the bar's middle is dark ink, the page's far corner is paper
            let mid = shot.get_pixel(p.at.0 + p.side * 29 / 56, p.at.1 + p.side / 2)[0];
            let corner = if p.at.0 > w / 2 { (0, 0) } else { (w - 1, h - 1) };
            let paper = shot.get_pixel(corner.0, corner.1)[0];
            assert!(
                paper > 120 && mid < paper / 2,
                "ink {mid} on paper {paper}: {p:?}"
            );
            // back through the device: the ink's box fills 20 rows, centred
            let out = photo(&img, &p);
            let (x0, y0, x1, y1) = ink_box(&out);
            assert_eq!(y1 - y0 + 1, FIT as usize, "{p:?}");
            assert!(x1 - x0 < 8, "a 1 stays narrow: {x0}..{x1}, {p:?}");
            let (cx, cy) = centre_of_mass(&out, IMG_SIDE, 0.0).expect("ink");
            assert!((cx - 13.5).abs() <= 1.0 && (cy - 13.5).abs() <= 1.0, "{cx} {cy}");
            assert_eq!(photo(&img, &p), out, "the same photo twice, the same bytes");
        }
    }

    #[test]
    fn a_page_without_ink_is_blank_and_light_or_dark_pages_read_alike() {
        let flat = vec![200u8; 64 * 48];
        assert_eq!(
            page(64, 48, |y| &flat[y as usize * 64..(y as usize + 1) * 64]),
            [0; IMG_PIXELS]
        );
        assert_eq!(page(0, 5, |_| &[]), [0; IMG_PIXELS]);
        // a dark mark on light paper and the same mark light on dark give the same input
        let mut light = vec![220u8; 64 * 48];
        let mut dark = vec![10u8; 64 * 48];
        for y in 10..30 {
            for x in 30..34 {
                light[y * 64 + x] = 20;
                dark[y * 64 + x] = 210;
            }
        }
        let a = page(64, 48, |y| &light[y as usize * 64..(y as usize + 1) * 64]);
        let b = page(64, 48, |y| &dark[y as usize * 64..(y as usize + 1) * 64]);
        assert_eq!(a, b);
        assert_eq!(ink_box(&a).3 - ink_box(&a).1 + 1, FIT as usize);
    }

    #[test]
    fn blank_and_faint_drawings_stay_blank() {
        assert_eq!(drawing(&[0; IMG_PIXELS]), [0; IMG_PIXELS]);
        assert_eq!(drawing(&[INK_LEVEL; IMG_PIXELS]), [0; IMG_PIXELS]);
        assert_eq!(fit_and_centre(&GrayImage::new(0, 3)), [0; IMG_PIXELS]);
    }
}
