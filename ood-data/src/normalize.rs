//! MNIST's own normalisation of a drawing: the ink's bounding box fitted
//! into a [`FIT`] x [`FIT`] box keeping its aspect ratio (anti-aliased
//! resampling), pasted into 28x28 with its centre of mass at the centre, its
//! brightest pixel stretched to full ink ([`full_ink`]).
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

/// The device's last step: the fitted image stretched so that its brightest
/// pixel is full ink (255), as every MNIST digit's is (254 or 255 over the
/// test set). The fit into [`FIT`] x [`FIT`] averages a stroke with the
/// paper beside it, so a stroke that ends up thinner than a pixel comes back
/// dim: a digit drawn with a fine pen (a ballpoint's line on a digit a
/// centimetre tall) reached the classifier at about 60% of full ink, which
/// no training digit has, and v14 accepted 58% of such digits against 96%
/// of the same drawn at MNIST's width (`edge`'s `pen_width_on_scans_measured`).
/// A blank image stays blank; an image that already reaches full ink is
/// unchanged.
pub fn full_ink(mut img: [u8; IMG_PIXELS]) -> [u8; IMG_PIXELS] {
    let peak = img.iter().copied().max().unwrap_or(0);
    if peak > 0 && peak < 255 {
        let k = 255.0 / f32::from(peak);
        for v in &mut img {
            *v = (f32::from(*v) * k).round().min(255.0) as u8;
        }
    }
    img
}

/// The device's normalisation of a crop of stretched ink: [`fit_and_centre`],
/// then [`full_ink`].
fn device_fit(crop: &GrayImage) -> [u8; IMG_PIXELS] {
    full_ink(fit_and_centre(crop))
}

/// A 28x28 drawing (light ink on dark, in the input contract) normalised
/// the way the device normalises what its camera sees: the bounding box of
/// the pixels above [`INK_LEVEL`], through [`fit_and_centre`] and
/// [`full_ink`]. A drawing with no such pixel comes back blank.
pub fn drawing(img: &[u8; IMG_PIXELS]) -> [u8; IMG_PIXELS] {
    GrayImage::from_raw(IMG_SIDE as u32, IMG_SIDE as u32, img.to_vec())
        .map_or([0; IMG_PIXELS], |page| device_page(&page))
}

/// A light-on-dark page of any size as the device normalises it: the ink's
/// box ([`ink_fitted`]), then [`full_ink`]; blank without ink.
pub(crate) fn device_page(page: &GrayImage) -> [u8; IMG_PIXELS] {
    full_ink(ink_fitted(page))
}

/// A 28x28 image (light ink on dark) as the device receives it from a scan
/// or a camera: enlarged `factor` times with smoothing (a page or a frame
/// holds the drawing at many pixels, not 28), then brought back by the
/// device's own normalisation (the ink's box at [`INK_LEVEL`], fitted into
/// [`FIT`] x [`FIT`], centred, stretched to [`full_ink`]). Strokes come back
/// softer and of another width than MNIST's, as they do on the device.
pub fn scan(img: &[u8; IMG_PIXELS], factor: f32) -> [u8; IMG_PIXELS] {
    full_ink(scan_fitted(img, factor))
}

/// [`scan`] without the device's last step ([`full_ink`]): the scanned
/// training digits are made so (`data.scanned_count`), as the published
/// model was trained on them before the device gained that step; their
/// peaks lie at 160-255 (median 250), a brightness the classifier learns to
/// accept. Making them with the step gives other training bytes, another
/// model.
pub fn scan_fitted(img: &[u8; IMG_PIXELS], factor: f32) -> [u8; IMG_PIXELS] {
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

/// Stretched ink under this level (0-255, after the contrast stretch) is
/// paper, not ink: sensor noise and the paper's grain come back as black,
/// as MNIST's background is. A sixteenth of full ink.
pub const PAPER_NOISE: u8 = 16;

/// The contrast stretch of `d` levels of ink against a `range`-level peak,
/// with [`PAPER_NOISE`] cut to 0.
fn stretch_ink(d: f32, range: f32) -> u8 {
    let v = (d * 255.0 / range).round().clamp(0.0, 255.0) as u8;
    if v < PAPER_NOISE {
        0
    } else {
        v
    }
}

/// A half-side's median further than this many levels from the page's
/// median counts as a lighting gradient (below it, the page is lit evenly
/// and its background is the median itself).
pub const GRADIENT_LEVELS: f32 = 2.0;

/// A half-side whose median lies further than this many levels off the plane
/// through the others is ink touching the border, not paper: left out.
const OFF_PLANE_LEVELS: f32 = 12.0;

/// The background level of a page at every pixel: `a + bx x + by y`, in raw
/// values (before any inversion).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Background {
    /// Level at the top-left pixel.
    pub a: f32,
    /// Change per pixel to the right.
    pub bx: f32,
    /// Change per pixel down.
    pub by: f32,
}

impl Background {
    /// The level at pixel `(x, y)`.
    pub fn at(&self, x: u32, y: u32) -> f32 {
        self.a + self.bx * x as f32 + self.by * y as f32
    }

    /// The page's background from its border (`row(y)` is row `y`, `w`
    /// bytes; `median` the border's median): the median where the page is
    /// lit evenly (every half-side's median within [`GRADIENT_LEVELS`] of
    /// it); otherwise, a lamp on one side, the plane through the medians of
    /// the border's eight half-sides (least squares), leaving out the one
    /// furthest off when it lies more than 12 levels off the plane through
    /// the rest (ink touching the border). Pages under 4 pixels a side: the
    /// median.
    pub fn of_border<'a>(w: u32, h: u32, median: u8, row: impl Fn(u32) -> &'a [u8]) -> Self {
        let flat = Self {
            a: f32::from(median),
            bx: 0.0,
            by: 0.0,
        };
        if w < 4 || h < 4 {
            return flat;
        }
        let med = |mut v: Vec<u8>| {
            let mid = v.len() / 2;
            f32::from(*v.select_nth_unstable(mid).1)
        };
        let centre = |lo: u32, hi: u32| (lo + hi - 1) as f32 / 2.0;
        let (mw, mh) = (w / 2, h / 2);
        let mut pts: Vec<[f32; 3]> = Vec::with_capacity(8);
        for (y, yc) in [(0, 0.0), (h - 1, (h - 1) as f32)] {
            let r = row(y);
            for (lo, hi) in [(0, mw), (mw, w)] {
                pts.push([centre(lo, hi), yc, med(r[lo as usize..hi as usize].to_vec())]);
            }
        }
        for (x, xc) in [(0usize, 0.0), (w as usize - 1, (w - 1) as f32)] {
            for (lo, hi) in [(0, mh), (mh, h)] {
                pts.push([xc, centre(lo, hi), med((lo..hi).map(|y| row(y)[x]).collect())]);
            }
        }
        if pts.iter().all(|p| (p[2] - flat.a).abs() <= GRADIENT_LEVELS) {
            return flat;
        }
        let Some(mut plane) = Self::fit(&pts) else {
            return flat;
        };
        // the half-side furthest off the plane through the other seven
        let worst = (0..pts.len())
            .filter_map(|i| {
                let rest: Vec<[f32; 3]> = pts
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != i)
                    .map(|(_, p)| *p)
                    .collect();
                let q = Self::fit(&rest)?;
                let off = (pts[i][2] - (q.a + q.bx * pts[i][0] + q.by * pts[i][1])).abs();
                Some((off, q))
            })
            .max_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((off, q)) = worst {
            if off > OFF_PLANE_LEVELS {
                plane = q;
            }
        }
        plane
    }

    /// Least-squares plane through `(x, y, level)` points; `None` when they
    /// do not span the page.
    fn fit(pts: &[[f32; 3]]) -> Option<Self> {
        // normal equations in f64, centred on the points' mean for conditioning
        let n = pts.len() as f64;
        let mx = pts.iter().map(|p| f64::from(p[0])).sum::<f64>() / n;
        let my = pts.iter().map(|p| f64::from(p[1])).sum::<f64>() / n;
        let mv = pts.iter().map(|p| f64::from(p[2])).sum::<f64>() / n;
        let (mut sxx, mut sxy, mut syy, mut sxv, mut syv) = (0f64, 0f64, 0f64, 0f64, 0f64);
        for p in pts {
            let (x, y, v) = (f64::from(p[0]) - mx, f64::from(p[1]) - my, f64::from(p[2]) - mv);
            sxx += x * x;
            sxy += x * y;
            syy += y * y;
            sxv += x * v;
            syv += y * v;
        }
        let det = sxx * syy - sxy * sxy;
        if det.abs() < 1e-9 {
            return None;
        }
        let bx = (sxv * syy - syv * sxy) / det;
        let by = (syv * sxx - sxv * sxy) / det;
        Some(Self {
            a: (mv - bx * mx - by * my) as f32,
            bx: bx as f32,
            by: by as f32,
        })
    }

    /// Whether the background is one level everywhere.
    pub fn is_flat(&self) -> bool {
        self.bx == 0.0 && self.by == 0.0
    }
}

/// The device's normalisation of a whole page (a photo, a scan or a camera
/// frame; `row(y)` is row `y`, `w` bytes): the background comes from the
/// border ([`Background::of_border`]: the border's median, or a plane when
/// a lamp lights one side more), and a light one (paper: border median above
/// 127) is inverted so that ink is light on dark; the background is
/// subtracted and the contrast stretched to the ink's peak (what stays under
/// [`PAPER_NOISE`] is paper: 0); the bounding
/// box of the stretched ink above [`INK_LEVEL`] goes through
/// [`fit_and_centre`] and [`full_ink`]. On an evenly lit page the stretch is a 256-entry
/// table and the full-resolution work two integer passes (the ink's extreme
/// value, then its bounding box, rows without ink skipped after one min/max
/// each); under a gradient the same passes subtract the plane per pixel. A
/// page without ink (peak within 16 levels of the background) comes back
/// blank. The edge runtime runs every image and frame through it
/// (`edge::preprocess::view_to_input`); the trainer, its photographed
/// digits ([`photo`]).
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
    let background = Background::of_border(w, h, median, &row);
    if !background.is_flat() {
        return page_under_gradient(w, h, &row, invert, background);
    }
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
        *s = stretch_ink(d, range);
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
    device_fit(&crop)
}

/// [`page`] on a page whose background is a plane: the ink at `(x, y)` is
/// its distance from the plane (towards ink), stretched to the peak's. The
/// plane is monotonic along a row, so a run of 128 pixels' darkest (or
/// brightest) raw value against the plane's extreme over the run bounds
/// their ink: runs that cannot hold the peak or any ink are skipped after one
/// min/max, as rows are on an evenly lit page.
fn page_under_gradient<'a>(
    w: u32,
    h: u32,
    row: impl Fn(u32) -> &'a [u8],
    invert: bool,
    bg: Background,
) -> [u8; IMG_PIXELS] {
    const RUN: u32 = 128;
    let ink = |v: u8, x: u32, y: u32| {
        let d = f32::from(v) - bg.at(x, y);
        if invert {
            -d
        } else {
            d
        }
    };
    // the most ink any pixel of row `y`'s run `x0..x1` can hold
    let bound = |r: &[u8], y: u32, x0: u32, x1: u32| {
        let (a, b) = (bg.at(x0, y), bg.at(x1 - 1, y));
        let run = &r[x0 as usize..x1 as usize];
        if invert {
            a.max(b) - f32::from(run.iter().copied().min().unwrap_or(255))
        } else {
            f32::from(run.iter().copied().max().unwrap_or(0)) - a.min(b)
        }
    };
    let runs = || (0..w.div_ceil(RUN)).map(|i| (i * RUN, ((i + 1) * RUN).min(w)));
    let mut peak = 0f32;
    for y in 0..h {
        let r = row(y);
        for (x0, x1) in runs() {
            if bound(r, y, x0, x1) > peak {
                peak = (x0..x1).map(|x| ink(r[x as usize], x, y)).fold(peak, f32::max);
            }
        }
    }
    if peak <= 16.0 {
        return [0; IMG_PIXELS]; // no ink: blank
    }
    // stretched above INK_LEVEL: round(d * 255 / peak) > 64, i.e. the
    // unrounded value at least 64.5
    let level = f32::from(INK_LEVEL) + 0.5;
    let is_ink = |d: f32| d * 255.0 / peak >= level;
    // the first pixel of ink in row `y`, over `runs` in their order
    let first_ink = |r: &[u8], y: u32, runs: &mut dyn Iterator<Item = (u32, u32)>, rev: bool| {
        for (x0, x1) in runs {
            if !is_ink(bound(r, y, x0, x1)) {
                continue;
            }
            let hit = |&x: &u32| is_ink(ink(r[x as usize], x, y));
            let found = if rev {
                (x0..x1).rev().find(hit)
            } else {
                (x0..x1).find(hit)
            };
            if found.is_some() {
                return found;
            }
        }
        None
    };
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
    for y in 0..h {
        let r = row(y);
        let Some(first) = first_ink(r, y, &mut runs(), false) else {
            continue;
        };
        let last = first_ink(r, y, &mut runs().rev(), true).unwrap_or(first);
        (x0, y0, x1, y1) = (x0.min(first), y0.min(y), x1.max(last), y1.max(y));
    }
    if x1 < x0 {
        return [0; IMG_PIXELS];
    }
    let stretch = |d: f32| stretch_ink(d, peak);
    let crop = GrayImage::from_fn(x1 - x0 + 1, y1 - y0 + 1, |x, y| {
        let (px, py) = (x0 + x, y0 + y);
        image::Luma([stretch(ink(row(py)[px as usize], px, py))])
    });
    device_fit(&crop)
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
    dataset_with(ds, name, |_, img| drawing(img))
}

/// Every image `i` of `ds` through `f(i, image)` (e.g. [`drawing`], [`scan`]
/// at one enlargement, or [`photo`] on a page of its own drawn beforehand),
/// in order, renamed `name` (labels kept). The images are made on every
/// core ([`images_in_parallel`]); `f` sees each index once.
pub fn dataset_with(
    ds: &crate::Dataset,
    name: &str,
    f: impl Fn(usize, &[u8; IMG_PIXELS]) -> [u8; IMG_PIXELS] + Sync,
) -> crate::Dataset {
    crate::Dataset {
        name: name.into(),
        images: images_in_parallel(ds.len(), |i| {
            let mut img = [0u8; IMG_PIXELS];
            img.copy_from_slice(ds.image(i));
            f(i, &img)
        }),
        labels: ds.labels.clone(),
    }
}

/// Images `0..n`, image `i` made by `f(i)`, concatenated in order, made on
/// every core ([`crate::map_in_parallel`]). The result depends on `f` only,
/// never on the number of cores (draw any randomness beforehand, in order).
pub fn images_in_parallel(n: usize, f: impl Fn(usize) -> [u8; IMG_PIXELS] + Sync) -> Vec<u8> {
    crate::map_in_parallel(n, f).concat()
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
    fn images_in_parallel_are_the_images_in_order() {
        let make = |i: usize| -> [u8; IMG_PIXELS] {
            let mut img = [0u8; IMG_PIXELS];
            for (p, v) in img.iter_mut().enumerate() {
                *v = ((i * 31 + p * 7) % 251) as u8;
            }
            img
        };
        for n in [0, 1, 2, 3, 7, 100] {
            let sequential: Vec<u8> = (0..n).flat_map(make).collect();
            assert_eq!(images_in_parallel(n, make), sequential, "{n} images");
        }
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
    fn full_ink_stretches_the_brightest_pixel_to_255_and_keeps_the_rest() {
        let mut img = [0u8; IMG_PIXELS];
        img[..4].copy_from_slice(&[40, 80, 160, 0]);
        let out = full_ink(img);
        assert_eq!(&out[..4], &[64, 128, 255, 0], "scaled by 255 / 160, rounded");
        assert!(out[4..].iter().all(|&v| v == 0));
        let full = bar(4..24, 13..16);
        assert_eq!(full_ink(full), full, "already full: unchanged");
        assert_eq!(full_ink([0; IMG_PIXELS]), [0; IMG_PIXELS], "blank stays blank");
        // the scan is the fitted scan stretched
        let img = bar(4..24, 13..16);
        assert_eq!(scan(&img, 3.75), full_ink(scan_fitted(&img, 3.75)));
    }

    #[test]
    fn a_fine_pens_stroke_reaches_full_ink_on_the_device() {
        // a 105x105 page with a cross of 2-pixel dark strokes 80 pixels
        // long: fitted into 20x20 they are half a pixel wide
        let (w, h) = (105usize, 105usize);
        let mut px = vec![255u8; w * h];
        for y in 12..92 {
            px[y * w + 51..y * w + 53].fill(0);
        }
        for y in 51..53 {
            px[y * w + 12..y * w + 92].fill(0);
        }
        let out = page(w as u32, h as u32, |y| &px[y as usize * w..(y as usize + 1) * w]);
        assert_eq!(out.iter().copied().max(), Some(255));
        let (x0, y0, x1, y1) = ink_box(&out);
        assert_eq!(
            (x1 - x0 + 1, y1 - y0 + 1),
            (FIT as usize, FIT as usize),
            "the cross fills the box"
        );
        // the same crop fitted without the last step: its strokes are dim
        let crop = GrayImage::from_fn(80, 80, |x, y| {
            image::Luma([255 - px[(y as usize + 12) * w + x as usize + 12]])
        });
        let dim = fit_and_centre(&crop);
        let peak = dim.iter().copied().max().unwrap_or(0);
        assert!(peak < 200, "fitted alone, the strokes peak at {peak}");
        assert_eq!(full_ink(dim), out, "the device's page is the fit, stretched");
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
    fn the_paper_around_a_photographed_digit_comes_back_black() {
        use rand::SeedableRng;
        // an L: the paper inside its corner lies far from any ink
        let mut img = bar(4..24, 6..9);
        for y in 21..24 {
            img[y * IMG_SIDE + 6..y * IMG_SIDE + 22].fill(255);
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for _ in 0..20 {
            let p = Photo::random(&mut rng);
            let out = photo(&img, &p);
            let (x0, y0, x1, y1) = ink_box(&out);
            assert!(x1 - x0 >= 14 && y1 - y0 >= 14, "an L: {x0}..{x1} x {y0}..{y1}");
            // the corner's inside, three pixels clear of both strokes
            let lit: Vec<u8> = (y0..y1 - 6)
                .flat_map(|y| (x0 + 7..=x1).map(move |x| out[y * IMG_SIDE + x]))
                .filter(|&v| v > 0)
                .collect();
            assert!(lit.is_empty(), "paper noise came back as ink: {lit:?}, {p:?}");
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

    /// A `w x h` page lit by `paper(x, y)` with dark ink where `mark(x, y)`.
    fn lit_page(
        w: usize,
        h: usize,
        paper: impl Fn(usize, usize) -> f32,
        mark: impl Fn(usize, usize) -> bool,
    ) -> Vec<u8> {
        (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                let p = paper(x, y);
                (if mark(x, y) { p * 0.15 } else { p }).round() as u8
            })
            .collect()
    }

    fn page_of(px: &[u8], w: usize) -> [u8; IMG_PIXELS] {
        page(w as u32, (px.len() / w) as u32, |y| {
            &px[y as usize * w..(y as usize + 1) * w]
        })
    }

    #[test]
    fn a_lamp_on_one_side_is_paper_not_ink() {
        // a 1 (a 6x60 bar) on paper lit from 130 on the left to 230 on the
        // right, and brighter downwards: the dim side must not count as ink
        let one = |x: usize, y: usize| (97..103).contains(&x) && (20..80).contains(&y);
        let lamp = lit_page(200, 100, |x, y| 130.0 + x as f32 / 2.0 + y as f32 / 10.0, one);
        let even = lit_page(200, 100, |_, _| 200.0, one);
        let (got, want) = (page_of(&lamp, 200), page_of(&even, 200));
        let (x0, y0, x1, y1) = ink_box(&got);
        assert_eq!(y1 - y0 + 1, FIT as usize, "the 1 fills 20 rows");
        assert!(x1 - x0 < 6, "and stays narrow: {x0}..{x1}");
        assert_eq!(ink_box(&got), ink_box(&want));
        let off = got
            .iter()
            .zip(&want)
            .map(|(&a, &b)| a.abs_diff(b))
            .max()
            .unwrap_or(0);
        assert!(off <= 24, "as the evenly lit page, within {off} levels");
        // (with the border's median as the whole page's background, as
        // before 2026-12-05, the dim side passed the ink level and the 1
        // came back 19 rows high, shrunk towards the page's left edge)
    }

    #[test]
    fn the_background_is_the_median_on_an_even_page_and_a_plane_under_a_lamp() {
        let fit = |px: &[u8], w: usize, median: u8| {
            let h = (px.len() / w) as u32;
            Background::of_border(w as u32, h, median, |y| &px[y as usize * w..(y as usize + 1) * w])
        };
        // evenly lit, a little noise: the median, flat
        let even: Vec<u8> = (0..80 * 60).map(|i| 200 + (i * 7 % 3) as u8).collect();
        let b = fit(&even, 80, 201);
        assert!(b.is_flat() && b.a == 201.0, "{b:?}");
        // a lamp: 100 + x + y / 2, recovered within half a level everywhere
        let lamp: Vec<u8> = (0..80 * 60).map(|i| (100 + i % 80 + i / 80 / 2) as u8).collect();
        let b = fit(&lamp, 80, 140);
        assert!(!b.is_flat());
        for (x, y) in [(0, 0), (79, 0), (0, 59), (79, 59), (40, 30)] {
            let want = 100.0 + x as f32 + (y / 2) as f32;
            assert!(
                (b.at(x, y) - want).abs() <= 0.75,
                "({x}, {y}): {} vs {want}",
                b.at(x, y)
            );
        }
        // ink over the left half of the top row: that half-side is left out
        let mut touched = lamp.clone();
        touched[..40].fill(10);
        let b2 = fit(&touched, 80, 140);
        assert!((b2.at(10, 0) - b.at(10, 0)).abs() <= 1.0, "{b2:?} vs {b:?}");
        // too small to fit a plane: the median
        let tiny = vec![90u8, 200, 90, 200, 90, 200, 90, 200, 90];
        assert!(fit(&tiny, 3, 90).is_flat());
    }

    #[test]
    fn blank_and_faint_drawings_stay_blank() {
        assert_eq!(drawing(&[0; IMG_PIXELS]), [0; IMG_PIXELS]);
        assert_eq!(drawing(&[INK_LEVEL; IMG_PIXELS]), [0; IMG_PIXELS]);
        assert_eq!(fit_and_centre(&GrayImage::new(0, 3)), [0; IMG_PIXELS]);
    }
}
