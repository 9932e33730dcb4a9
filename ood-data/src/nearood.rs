//! Synthetic near-OOD validation sets, made from MNIST digits and pen
//! strokes, for choosing what the OOD test sets must never choose.
//!
//! They are built from the held-out MNIST *validation* digits (never trained
//! on) and from strokes drawn at MNIST's stroke width, without looking at any
//! OOD test set. Every image is labelled garbage. Five families:
//!
//! - `stitched`: one half of a digit (top or left) joined to the other half
//!   of a digit of another class;
//! - `overlaid`: two digits of different classes on top of each other
//!   (pixel-wise maximum), the second shifted by up to 3 pixels;
//! - `fragments`: a 14x14 window of a digit holding a good part of its ink,
//!   scaled to MNIST's 20x20 box and centred;
//! - `strokes`: 2-4 random pen curves (quadratic Beziers) in the 20x20 box;
//! - `symbols`: hand-drawn-like non-digit symbols (`+ x = # < > ^` triangle,
//!   square, star, arrows and letters that no digit resembles: A E F H K M N
//!   R T W X Y), each template jittered, scaled, sheared and rotated.
//!
//! Besides them, on the other side, [`pen_digits`]: digits drawn from
//! templates by the same pen and hand as `symbols`, labelled as the digits
//! they are, to be accepted.
//!
//! A few images of the first three families can still read as a digit (a
//! left half of a 0 joined to a right half of a 6); the sets measure a trend
//! between models, not a ground truth, and the report says so.

use super::pen::draw;
use super::Dataset;
use ood_core::{GARBAGE, IMG_PIXELS, IMG_SIDE};
use rand::rngs::StdRng;
use rand::Rng;

/// The names of the families, in the order [`near_ood_sets`] returns them.
pub const FAMILIES: [&str; 5] = ["stitched", "overlaid", "fragments", "strokes", "symbols"];

/// `n` images of each family, from `digits` (labels = digits; needs two
/// classes at least for the first two families). Set names are
/// `{prefix}-{family}`.
pub fn near_ood_sets(prefix: &str, digits: &Dataset, n: usize, rng: &mut StdRng) -> Vec<Dataset> {
    let mut out = Vec::new();
    for family in FAMILIES {
        let mut ds = Dataset {
            name: format!("{prefix}-{family}"),
            ..Default::default()
        };
        for _ in 0..n {
            let img = match family {
                "stitched" => stitched(digits, rng),
                "overlaid" => overlaid(digits, rng),
                "fragments" => fragment(digits, rng),
                "strokes" => strokes(rng),
                _ => symbol(rng),
            };
            ds.push(&img, GARBAGE as u8);
        }
        out.push(ds);
    }
    out
}

/// Two images of different classes (the same one twice if `digits` has one class).
fn two_classes<'a>(digits: &'a Dataset, rng: &mut StdRng) -> (&'a [u8], &'a [u8]) {
    let n = digits.len();
    if n == 0 {
        return (&[0; IMG_PIXELS], &[0; IMG_PIXELS]);
    }
    let a = rng.random_range(0..n);
    let mut b = rng.random_range(0..n);
    for _ in 0..100 {
        if digits.labels[b] != digits.labels[a] {
            break;
        }
        b = rng.random_range(0..n);
    }
    (digits.image(a), digits.image(b))
}

fn stitched(digits: &Dataset, rng: &mut StdRng) -> [u8; IMG_PIXELS] {
    let (a, b) = two_classes(digits, rng);
    let vertical = rng.random_bool(0.5);
    let mut out = [0u8; IMG_PIXELS];
    for (i, o) in out.iter_mut().enumerate() {
        let (y, x) = (i / IMG_SIDE, i % IMG_SIDE);
        let first = if vertical {
            x < IMG_SIDE / 2
        } else {
            y < IMG_SIDE / 2
        };
        *o = if first { a[i] } else { b[i] };
    }
    out
}

fn overlaid(digits: &Dataset, rng: &mut StdRng) -> [u8; IMG_PIXELS] {
    let (a, b) = two_classes(digits, rng);
    let (dy, dx) = (rng.random_range(-3i32..=3), rng.random_range(-3i32..=3));
    let mut out = [0u8; IMG_PIXELS];
    for (i, o) in out.iter_mut().enumerate() {
        let (y, x) = ((i / IMG_SIDE) as i32, (i % IMG_SIDE) as i32);
        let (sy, sx) = (y - dy, x - dx);
        let other = if (0..IMG_SIDE as i32).contains(&sy) && (0..IMG_SIDE as i32).contains(&sx) {
            b[sy as usize * IMG_SIDE + sx as usize]
        } else {
            0
        };
        *o = a[i].max(other);
    }
    out
}

fn ink(img: &[u8], y0: usize, x0: usize, s: usize) -> u32 {
    (y0..y0 + s)
        .flat_map(|y| (x0..x0 + s).map(move |x| (y, x)))
        .map(|(y, x)| u32::from(img[y * IMG_SIDE + x]))
        .sum()
}

/// Places `src` (`h x w`, values 0-1) scaled into MNIST's 20x20 box, centred.
fn into_box(src: &[f32], h: usize, w: usize) -> [u8; IMG_PIXELS] {
    let scale = 20.0 / h.max(w) as f32;
    let (oh, ow) = (h as f32 * scale, w as f32 * scale);
    let (top, left) = ((IMG_SIDE as f32 - oh) / 2.0, (IMG_SIDE as f32 - ow) / 2.0);
    let mut out = [0u8; IMG_PIXELS];
    for (i, o) in out.iter_mut().enumerate() {
        let (y, x) = ((i / IMG_SIDE) as f32 + 0.5, (i % IMG_SIDE) as f32 + 0.5);
        let (sy, sx) = ((y - top) / scale - 0.5, (x - left) / scale - 0.5);
        if sy < -0.5 || sx < -0.5 || sy > h as f32 - 0.5 || sx > w as f32 - 0.5 {
            continue;
        }
        let (y0, x0) = (sy.floor().max(0.0) as usize, sx.floor().max(0.0) as usize);
        let (y1, x1) = ((y0 + 1).min(h - 1), (x0 + 1).min(w - 1));
        let (fy, fx) = ((sy - y0 as f32).clamp(0.0, 1.0), (sx - x0 as f32).clamp(0.0, 1.0));
        let v = src[y0 * w + x0] * (1.0 - fy) * (1.0 - fx)
            + src[y0 * w + x1] * (1.0 - fy) * fx
            + src[y1 * w + x0] * fy * (1.0 - fx)
            + src[y1 * w + x1] * fy * fx;
        *o = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    }
    out
}

fn fragment(digits: &Dataset, rng: &mut StdRng) -> [u8; IMG_PIXELS] {
    const S: usize = 14;
    if digits.is_empty() {
        return [0; IMG_PIXELS];
    }
    let img = digits.image(rng.random_range(0..digits.len()));
    let total = ink(img, 0, 0, IMG_SIDE).max(1);
    // the window with a share of the ink between 25% and 70%: a piece, not the digit
    let mut best = (0, 0);
    for _ in 0..50 {
        let (y0, x0) = (
            rng.random_range(0..=IMG_SIDE - S),
            rng.random_range(0..=IMG_SIDE - S),
        );
        best = (y0, x0);
        let share = ink(img, y0, x0, S) as f32 / total as f32;
        if (0.25..=0.7).contains(&share) {
            break;
        }
    }
    let src: Vec<f32> = (0..S * S)
        .map(|i| f32::from(img[(best.0 + i / S) * IMG_SIDE + best.1 + i % S]) / 255.0)
        .collect();
    into_box(&src, S, S)
}

/// A point of the 20x20 box (pixel coordinates).
fn box_point(rng: &mut StdRng) -> (f32, f32) {
    (rng.random_range(4.0..24.0), rng.random_range(4.0..24.0))
}

fn strokes(rng: &mut StdRng) -> [u8; IMG_PIXELS] {
    let k = rng.random_range(2..=4);
    let lines: Vec<Vec<(f32, f32)>> = (0..k)
        .map(|_| {
            let (a, c, b) = (box_point(rng), box_point(rng), box_point(rng));
            (0..=16)
                .map(|i| {
                    let t = i as f32 / 16.0;
                    let u = 1.0 - t;
                    (
                        u * u * a.0 + 2.0 * u * t * c.0 + t * t * b.0,
                        u * u * a.1 + 2.0 * u * t * c.1 + t * t * b.1,
                    )
                })
                .collect()
        })
        .collect();
    draw(&lines)
}

/// Symbol templates: strokes of points in a unit box (x right, y down).
type Template = &'static [&'static [(f32, f32)]];
const SYMBOLS: [Template; 26] = [
    &[&[(0.5, 0.0), (0.5, 1.0)], &[(0.0, 0.5), (1.0, 0.5)]], // +
    &[&[(0.0, 0.0), (1.0, 1.0)], &[(1.0, 0.0), (0.0, 1.0)]], // x
    &[&[(0.0, 0.35), (1.0, 0.35)], &[(0.0, 0.65), (1.0, 0.65)]], // =
    &[
        &[(0.35, 0.0), (0.25, 1.0)],
        &[(0.75, 0.0), (0.65, 1.0)],
        &[(0.0, 0.33), (1.0, 0.33)],
        &[(0.0, 0.67), (1.0, 0.67)],
    ], // #
    &[&[(1.0, 0.0), (0.0, 0.5), (1.0, 1.0)]],                // <
    &[&[(0.0, 0.0), (1.0, 0.5), (0.0, 1.0)]],                // >
    &[&[(0.0, 1.0), (0.5, 0.0), (1.0, 1.0)]],                // ^ (wide V upside down)
    &[&[(0.5, 0.0), (1.0, 1.0), (0.0, 1.0), (0.5, 0.0)]],    // triangle
    &[&[(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0), (0.0, 0.0)]], // square
    &[
        &[(0.5, 0.0), (0.5, 1.0)],
        &[(0.0, 0.25), (1.0, 0.75)],
        &[(1.0, 0.25), (0.0, 0.75)],
    ], // asterisk
    &[&[(0.0, 0.5), (1.0, 0.5)], &[(0.6, 0.1), (1.0, 0.5), (0.6, 0.9)]], // arrow right
    &[&[(0.5, 1.0), (0.5, 0.0)], &[(0.1, 0.4), (0.5, 0.0), (0.9, 0.4)]], // arrow up
    &[
        &[(0.0, 1.0), (0.5, 0.0), (1.0, 1.0)],
        &[(0.25, 0.55), (0.75, 0.55)],
    ], // A
    &[
        &[(1.0, 0.0), (0.0, 0.0), (0.0, 1.0), (1.0, 1.0)],
        &[(0.0, 0.5), (0.7, 0.5)],
    ], // E
    &[&[(1.0, 0.0), (0.0, 0.0), (0.0, 1.0)], &[(0.0, 0.5), (0.7, 0.5)]], // F
    &[
        &[(0.0, 0.0), (0.0, 1.0)],
        &[(1.0, 0.0), (1.0, 1.0)],
        &[(0.0, 0.5), (1.0, 0.5)],
    ], // H
    &[&[(0.0, 0.0), (0.0, 1.0)], &[(1.0, 0.0), (0.0, 0.55), (1.0, 1.0)]], // K
    &[&[(0.0, 1.0), (0.0, 0.0), (0.5, 0.6), (1.0, 0.0), (1.0, 1.0)]], // M
    &[&[(0.0, 1.0), (0.0, 0.0), (1.0, 1.0), (1.0, 0.0)]],    // N
    &[&[
        (0.0, 1.0),
        (0.0, 0.0),
        (0.8, 0.05),
        (0.9, 0.3),
        (0.8, 0.5),
        (0.0, 0.5),
        (1.0, 1.0),
    ]], // R
    &[&[(0.0, 0.0), (1.0, 0.0)], &[(0.5, 0.0), (0.5, 1.0)]], // T
    &[&[(0.0, 0.0), (0.25, 1.0), (0.5, 0.4), (0.75, 1.0), (1.0, 0.0)]], // W
    &[&[(0.0, 0.0), (0.5, 0.5), (1.0, 0.0)], &[(0.5, 0.5), (0.5, 1.0)]], // Y
    &[
        &[(0.0, 0.0), (1.0, 0.0)],
        &[(0.0, 1.0), (1.0, 1.0)],
        &[(0.5, 0.0), (0.5, 1.0)],
    ], // I-beam
    &[
        &[(0.0, 0.0), (1.0, 1.0)],
        &[(1.0, 0.0), (0.0, 1.0)],
        &[(0.0, 0.5), (1.0, 0.5)],
    ], // crossed x
    &[
        &[
            (0.0, 0.3),
            (0.2, 0.1),
            (0.4, 0.3),
            (0.6, 0.1),
            (0.8, 0.3),
            (1.0, 0.1),
        ],
        &[
            (0.0, 0.8),
            (0.2, 0.6),
            (0.4, 0.8),
            (0.6, 0.6),
            (0.8, 0.8),
            (1.0, 0.6),
        ],
    ], // two zigzags
];

fn symbol(rng: &mut StdRng) -> [u8; IMG_PIXELS] {
    draw(&symbol_paths(rng))
}

/// The names of the `symbols` family's templates, by the index
/// [`symbol_drawing`] returns.
pub const SYMBOL_NAMES: [&str; SYMBOLS.len()] = [
    "+",
    "x",
    "=",
    "#",
    "<",
    ">",
    "^",
    "triangle",
    "square",
    "asterisk",
    "arrow right",
    "arrow up",
    "A",
    "E",
    "F",
    "H",
    "K",
    "M",
    "N",
    "R",
    "T",
    "W",
    "Y",
    "I-beam",
    "crossed x",
    "two zigzags",
];

/// The pen paths of one image of the `symbols` family (points in 28x28
/// pixel coordinates), to draw with another pen or on a page of another
/// size (`crate::pen::page`); the draws are those of the family's images.
pub fn symbol_paths(rng: &mut StdRng) -> Vec<Vec<(f32, f32)>> {
    symbol_drawing(rng).1
}

/// [`symbol_paths`] with the index of the template drawn (into
/// [`SYMBOL_NAMES`]); the same draws.
pub fn symbol_drawing(rng: &mut StdRng) -> (usize, Vec<Vec<(f32, f32)>>) {
    let i = rng.random_range(0..SYMBOLS.len());
    let (sx, sy) = (rng.random_range(12.0..20.0f32), rng.random_range(14.0..20.0f32));
    (i, placed(SYMBOLS[i], sx, sy, rng))
}

/// A template scaled to `sx` x `sy` pixels about the page's centre, each
/// point jittered, the whole sheared and rotated a little (the same hand
/// for symbols and pen-drawn digits).
fn placed(t: Template, sx: f32, sy: f32, rng: &mut StdRng) -> Vec<Vec<(f32, f32)>> {
    let (rot, shear) = (rng.random_range(-0.25..0.25f32), rng.random_range(-0.25..0.25f32));
    let (c, s) = (rot.cos(), rot.sin());
    let half = IMG_SIDE as f32 / 2.0;
    t.iter()
        .map(|stroke| {
            stroke
                .iter()
                .map(|&(x, y)| {
                    let (x, y) = (
                        x + rng.random_range(-0.06..0.06),
                        y + rng.random_range(-0.06..0.06),
                    );
                    let (x, y) = ((x - 0.5) * sx, (y - 0.5) * sy);
                    let x = x + shear * y;
                    (half + c * x - s * y, half + s * x + c * y)
                })
                .collect()
        })
        .collect()
}

/// Digit templates, one per digit, drawn by the same pen and hand as
/// [`SYMBOLS`] (points in a unit box, x right, y down; curves as polygons).
const DIGITS: [Template; 10] = [
    &[&[
        (0.5, 0.0),
        (0.15, 0.12),
        (0.0, 0.5),
        (0.15, 0.88),
        (0.5, 1.0),
        (0.85, 0.88),
        (1.0, 0.5),
        (0.85, 0.12),
        (0.5, 0.0),
    ]], // 0
    &[&[(0.3, 0.15), (0.55, 0.0), (0.55, 1.0)]], // 1
    &[&[
        (0.05, 0.25),
        (0.3, 0.03),
        (0.65, 0.0),
        (0.92, 0.2),
        (0.85, 0.45),
        (0.0, 1.0),
        (1.0, 1.0),
    ]], // 2
    &[&[
        (0.1, 0.1),
        (0.5, 0.0),
        (0.9, 0.15),
        (0.85, 0.4),
        (0.45, 0.5),
        (0.9, 0.62),
        (0.95, 0.85),
        (0.5, 1.0),
        (0.05, 0.9),
    ]], // 3
    &[
        &[(0.6, 0.0), (0.0, 0.65), (1.0, 0.65)],
        &[(0.75, 0.3), (0.75, 1.0)],
    ], // 4
    &[&[
        (0.9, 0.0),
        (0.2, 0.0),
        (0.12, 0.45),
        (0.55, 0.38),
        (0.92, 0.55),
        (0.9, 0.85),
        (0.5, 1.0),
        (0.08, 0.9),
    ]], // 5
    &[&[
        (0.8, 0.03),
        (0.4, 0.12),
        (0.12, 0.45),
        (0.1, 0.8),
        (0.4, 1.0),
        (0.8, 0.9),
        (0.85, 0.65),
        (0.5, 0.5),
        (0.12, 0.65),
    ]], // 6
    &[&[(0.0, 0.0), (1.0, 0.0), (0.35, 1.0)]],   // 7
    &[&[
        (0.5, 0.5),
        (0.15, 0.3),
        (0.25, 0.04),
        (0.75, 0.04),
        (0.85, 0.3),
        (0.5, 0.5),
        (0.1, 0.75),
        (0.3, 1.0),
        (0.7, 1.0),
        (0.9, 0.75),
        (0.5, 0.5),
    ]], // 8
    &[&[
        (0.88, 0.3),
        (0.6, 0.03),
        (0.2, 0.08),
        (0.08, 0.35),
        (0.35, 0.52),
        (0.8, 0.42),
        (0.88, 0.3),
        (0.75, 1.0),
    ]], // 9
];

/// `n` digits drawn from ten templates (one per digit) by the pen and hand
/// of the `symbols` family, labelled with their digit: the other side of
/// that family. A model that learned "pen-drawn = garbage" (a style, not a
/// shape) rejects these too, and a rise in symbols rejected means little
/// unless these stay accepted. Never trained on.
pub fn pen_digits(name: &str, n: usize, rng: &mut StdRng) -> Dataset {
    let mut ds = Dataset {
        name: name.into(),
        ..Dataset::default()
    };
    for _ in 0..n {
        let (d, paths) = pen_digit_paths(rng);
        ds.push(&draw(&paths), d);
    }
    ds
}

/// One pen-drawn digit of [`pen_digits`] as its digit and pen paths
/// (points in 28x28 pixel coordinates), to draw with another pen or on a
/// page of another size (`crate::pen::page`).
pub fn pen_digit_paths(rng: &mut StdRng) -> (u8, Vec<Vec<(f32, f32)>>) {
    let d = rng.random_range(0..DIGITS.len());
    // digits are taller than wide; a 1 is narrow by its template
    let (sx, sy) = (rng.random_range(11.0..16.0f32), rng.random_range(17.0..20.0f32));
    (d as u8, placed(DIGITS[d], sx, sy, rng))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn digits() -> Dataset {
        let mut ds = Dataset::default();
        for d in 0..3u8 {
            let mut img = [0u8; IMG_PIXELS];
            // class d: a filled band in rows 6d..6d+10
            for y in 4 + 4 * d as usize..14 + 4 * d as usize {
                img[y * IMG_SIDE + 8..y * IMG_SIDE + 20].fill(200);
            }
            ds.push(&img, d);
        }
        ds
    }

    #[test]
    fn every_family_is_garbage_with_ink_and_named() {
        let sets = near_ood_sets("val", &digits(), 20, &mut StdRng::seed_from_u64(1));
        assert_eq!(sets.len(), FAMILIES.len());
        for (ds, f) in sets.iter().zip(FAMILIES) {
            assert_eq!(ds.name, format!("val-{f}"));
            assert_eq!(ds.len(), 20);
            assert!(ds.labels.iter().all(|&l| l == GARBAGE as u8));
            for i in 0..ds.len() {
                let lit = ds.image(i).iter().filter(|&&p| p > 128).count();
                assert!(lit >= 10, "{f} image {i} has {lit} inked pixels");
            }
        }
        // the same seed draws the same sets
        let again = near_ood_sets("val", &digits(), 20, &mut StdRng::seed_from_u64(1));
        assert_eq!(sets, again);
    }

    #[test]
    fn pen_digits_are_every_digit_with_ink_in_the_digit_box() {
        let ds = pen_digits("val-pen-digits", 200, &mut StdRng::seed_from_u64(3));
        assert_eq!((ds.name.as_str(), ds.len()), ("val-pen-digits", 200));
        let mut seen = [0usize; 10];
        for i in 0..ds.len() {
            seen[ds.labels[i] as usize] += 1;
            let img = ds.image(i);
            let lit = img.iter().filter(|&&p| p > 128).count();
            assert!(lit >= 15, "image {i} has {lit} inked pixels");
            // nothing on the page's edge: drawn inside the page like MNIST
            for (k, &p) in img.iter().enumerate() {
                let (y, x) = (k / IMG_SIDE, k % IMG_SIDE);
                if y == 0 || y == IMG_SIDE - 1 || x == 0 || x == IMG_SIDE - 1 {
                    assert!(p < 64, "image {i} has ink {p} at ({x}, {y})");
                }
            }
        }
        assert!(seen.iter().all(|&c| c > 5), "{seen:?}");
        // a 1 has less ink than an 8
        let ink = |d: u8| -> f64 {
            let (sum, n) = (0..ds.len())
                .filter(|&i| ds.labels[i] == d)
                .fold((0u64, 0u64), |(s, n), i| {
                    (s + ds.image(i).iter().map(|&p| u64::from(p)).sum::<u64>(), n + 1)
                });
            sum as f64 / n as f64
        };
        assert!(ink(1) < 0.6 * ink(8), "{} vs {}", ink(1), ink(8));
    }

    #[test]
    fn the_paths_are_those_the_sets_draw() {
        let ds = pen_digits("d", 30, &mut StdRng::seed_from_u64(5));
        let mut rng = StdRng::seed_from_u64(5);
        for i in 0..ds.len() {
            let (d, paths) = pen_digit_paths(&mut rng);
            assert_eq!((d, &draw(&paths)[..]), (ds.labels[i], ds.image(i)), "digit {i}");
        }
        let mut a = StdRng::seed_from_u64(6);
        let mut b = StdRng::seed_from_u64(6);
        for i in 0..30 {
            assert_eq!(symbol(&mut a), draw(&symbol_paths(&mut b)), "symbol {i}");
        }
    }

    #[test]
    fn a_symbol_drawing_names_its_template() {
        let mut rng = StdRng::seed_from_u64(8);
        let mut seen = [0usize; SYMBOLS.len()];
        for _ in 0..2000 {
            let (i, paths) = symbol_drawing(&mut rng);
            // the template's strokes, each with its points
            let lens: Vec<usize> = paths.iter().map(Vec::len).collect();
            let want: Vec<usize> = SYMBOLS[i].iter().map(|s| s.len()).collect();
            assert_eq!(lens, want, "{}", SYMBOL_NAMES[i]);
            seen[i] += 1;
        }
        assert!(seen.iter().all(|&c| c > 0), "{seen:?}");
        // the names follow the templates: a plus is two strokes of two
        // points, the square one closed stroke of five
        let at = |n: &str| SYMBOL_NAMES.iter().position(|&m| m == n).expect(n);
        assert_eq!(SYMBOLS[at("+")].len(), 2);
        assert_eq!(SYMBOLS[at("square")][0].len(), 5);
        assert_eq!(SYMBOLS[at("square")][0][0], SYMBOLS[at("square")][0][4]);
    }

    #[test]
    fn stitched_halves_come_from_two_classes() {
        let ds = digits();
        let mut rng = StdRng::seed_from_u64(2);
        for _ in 0..20 {
            let img = stitched(&ds, &mut rng);
            let pieces: Vec<&[u8]> = (0..ds.len()).map(|i| ds.image(i)).collect();
            // every pixel comes from one of the inputs, and not all from one
            assert!(img
                .iter()
                .enumerate()
                .all(|(i, p)| pieces.iter().any(|d| d[i] == *p)));
            assert!(
                !pieces.iter().any(|d| d[..] == img[..]),
                "a stitched image equals an input digit"
            );
        }
    }

    #[test]
    fn pen_strokes_have_mnist_width() {
        // a horizontal line across the middle: about 3 pixels lit per column
        let img = draw(&[vec![(4.0, 14.0), (24.0, 14.0)]]);
        let col: Vec<u8> = (0..IMG_SIDE).map(|y| img[y * IMG_SIDE + 14]).collect();
        let full = col.iter().filter(|&&v| v == 255).count();
        let any = col.iter().filter(|&&v| v > 0).count();
        assert!((2..=3).contains(&full) && any <= 4, "{col:?}");
    }
}
