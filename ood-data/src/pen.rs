//! A round pen at MNIST's stroke width, and the `scribbles` garbage source
//! drawn with it.
//!
//! Scribbles are pen paths whose direction wanders (a random walk of the
//! heading), 1-3 per image, in MNIST's 20x20 box: generic handwriting-like
//! strokes that are not digits by construction only in the statistical
//! sense (a short straight scribble can look like a 1). They seed the
//! garbage class next to the noise families so that "ink in strokes" alone
//! is not evidence of a digit. Designed without looking at any OOD test set;
//! the near-OOD validation families (`nearood`) use other generators
//! (Bezier curves, symbol templates) so that they stay held out.

use super::Dataset;
use crate::normalize::FIT;
use ood_core::{GARBAGE, IMG_PIXELS, IMG_SIDE};
use rand::rngs::StdRng;
use rand::Rng;

/// Pen radius in pixels: strokes about 2.5-3 pixels wide with soft edges,
/// like MNIST's.
pub const PEN: f32 = 1.1;

/// Draws polylines (points in pixel coordinates) with a round pen.
pub fn draw(lines: &[Vec<(f32, f32)>]) -> [u8; IMG_PIXELS] {
    draw_with(lines, PEN)
}

/// Draws polylines with a round pen of radius `pen` (pixels); the edge is
/// one pixel of anti-aliasing whatever the radius, as in MNIST.
pub fn draw_with(lines: &[Vec<(f32, f32)>], pen: f32) -> [u8; IMG_PIXELS] {
    let mut out = [0u8; IMG_PIXELS];
    ink_into(&mut out, IMG_SIDE, 1.0, lines, pen);
    out
}

/// The polylines (points in 28x28 pixel coordinates) enlarged `scale`
/// times onto a white `side` x `side` page in dark ink, with a round pen of
/// radius `pen` pixels of the page (the edge one pixel of anti-aliasing):
/// a drawing as a scan delivers it, with the pen's width chosen apart from
/// the drawing's size (at `scale` 3.75 on a 105-pixel page, [`PEN`] times
/// 3.75 is MNIST's stroke width; a ballpoint's is a third of that or less).
pub fn page(lines: &[Vec<(f32, f32)>], side: u32, scale: f32, pen: f32) -> image::GrayImage {
    let mut ink = vec![0u8; side as usize * side as usize];
    ink_into(&mut ink, side as usize, scale, lines, pen);
    image::GrayImage::from_vec(side, side, ink.into_iter().map(|v| 255 - v).collect())
        .expect("side x side pixels")
}

/// Ink (0-255) of `lines` scaled by `scale` into the row-major `out`, `side`
/// pixels wide.
fn ink_into(out: &mut [u8], side: usize, scale: f32, lines: &[Vec<(f32, f32)>], pen: f32) {
    // each segment scaled once, not once per pixel
    let segments: Vec<((f32, f32), (f32, f32))> = lines
        .iter()
        .flat_map(|line| line.windows(2))
        .map(|w| ((w[0].0 * scale, w[0].1 * scale), (w[1].0 * scale, w[1].1 * scale)))
        .collect();
    for (i, o) in out.iter_mut().enumerate() {
        let p = ((i % side) as f32 + 0.5, (i / side) as f32 + 0.5);
        let mut d = f32::MAX;
        for &(a, b) in &segments {
            d = d.min(segment_distance(p, a, b));
        }
        *o = pen_ink(pen, d);
    }
}

/// Ink (0-255) of a round pen of radius `pen` at distance `d` from the
/// line it draws: full inside, one pixel of anti-aliasing at the edge.
fn pen_ink(pen: f32, d: f32) -> u8 {
    ((pen + 0.5 - d).clamp(0.0, 1.0) * 255.0).round() as u8
}

/// The drawing as the device delivers it (the ink's box fitted into
/// [`FIT`] x [`FIT`], centred by its centre of mass, the pen scaled with it),
/// drawn anew at that size rather than resampled: a small scribble comes out
/// large with thick strokes, as `edge` makes of a small mark, but with the
/// crisp edges of MNIST's strokes. Resampling a raster instead
/// ([`crate::normalize::drawing`]) leaves a soft, blurred edge that no
/// training digit has: a classifier taught that such garbage looks like
/// that learns to reject every resampled image, digits included (measured:
/// 0.9% of scanned test digits accepted).
pub fn draw_fitted(lines: &[Vec<(f32, f32)>]) -> [u8; IMG_PIXELS] {
    let pts = || lines.iter().flatten();
    let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for &(x, y) in pts() {
        (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
    }
    if x1 < x0 {
        return [0; IMG_PIXELS];
    }
    // the ink's box includes the pen around the path
    let (w, h) = (x1 - x0 + 2.0 * PEN + 1.0, y1 - y0 + 2.0 * PEN + 1.0);
    let scale = FIT as f32 / w.max(h);
    let pen = PEN * scale;
    let edge = (PEN + 0.5) * scale;
    let place = |dx: f32, dy: f32| -> Vec<Vec<(f32, f32)>> {
        lines
            .iter()
            .map(|l| {
                l.iter()
                    .map(|&(x, y)| ((x - x0) * scale + edge + dx, (y - y0) * scale + edge + dy))
                    .collect()
            })
            .collect()
    };
    // centre of mass of the drawing at the origin, then moved to the centre
    let first = draw_with(&place(0.0, 0.0), pen);
    // in path coordinates: pixel i covers [i, i + 1), its centre is i + 0.5
    let Some((cx, cy)) = crate::normalize::centre_of_mass(&first, IMG_SIDE, 0.5) else {
        return first;
    };
    let half = IMG_SIDE as f32 / 2.0;
    let (bw, bh) = (w * scale, h * scale);
    let dx = (half - cx as f32).clamp(0.0, IMG_SIDE as f32 - bw);
    let dy = (half - cy as f32).clamp(0.0, IMG_SIDE as f32 - bh);
    draw_with(&place(dx, dy), pen)
}

/// Enlargement at which [`redraw`] finds a drawing's strokes and draws them
/// anew: 28 pixels to 112, a digit's 20-pixel box to 80.
pub const REDRAW_SCALE: u32 = 4;

/// A 28x28 drawing (light ink on dark) as a pen of radius `radius` pixels
/// of the [`REDRAW_SCALE`]-times enlargement would draw it, as the device
/// delivers it: the drawing enlarged with smoothing, its ink at half level
/// or more thinned to its centre lines (Zhang and Suen's thinning), the
/// centre lines drawn with a round pen of that radius (one pixel of
/// anti-aliasing, as [`draw_with`]), then the device's normalisation
/// (`normalize::drawing`'s fit, centre and full ink). MNIST's own strokes
/// are about radius 4.5 at that scale; radius 1.5 is a ballpoint's line on a
/// digit a centimetre tall, 9 a marker's. The same digit, another pen. A
/// drawing without ink comes back blank.
pub fn redraw(img: &[u8; IMG_PIXELS], radius: f32) -> [u8; IMG_PIXELS] {
    let side = IMG_SIDE as u32 * REDRAW_SCALE;
    let Some(small) = image::GrayImage::from_raw(IMG_SIDE as u32, IMG_SIDE as u32, img.to_vec()) else {
        return [0; IMG_PIXELS];
    };
    let big = image::imageops::resize(&small, side, side, image::imageops::FilterType::Triangle);
    let n = side as usize;
    let mut on: Vec<bool> = big.as_raw().iter().map(|&v| v >= 128).collect();
    thin(&mut on, n);
    let mut ink = vec![0u8; n * n];
    let reach = radius.ceil() as i64 + 1;
    for (i, _) in on.iter().enumerate().filter(|(_, &o)| o) {
        let (cx, cy) = ((i % n) as i64, (i / n) as i64);
        for y in (cy - reach).max(0)..=(cy + reach).min(n as i64 - 1) {
            for x in (cx - reach).max(0)..=(cx + reach).min(n as i64 - 1) {
                let d = (((x - cx) * (x - cx) + (y - cy) * (y - cy)) as f32).sqrt();
                let o = &mut ink[y as usize * n + x as usize];
                *o = (*o).max(pen_ink(radius, d));
            }
        }
    }
    image::GrayImage::from_raw(side, side, ink)
        .map_or([0; IMG_PIXELS], |page| crate::normalize::device_page(&page))
}

/// Zhang and Suen's thinning of the `n` x `n` binary image `on` (row-major,
/// outside the image is off) to lines one pixel wide, in place.
fn thin(on: &mut [bool], n: usize) {
    let at = |on: &[bool], x: i64, y: i64| {
        (0..n as i64).contains(&x) && (0..n as i64).contains(&y) && on[y as usize * n + x as usize]
    };
    loop {
        let mut changed = false;
        for pass in 0..2 {
            let mut off = Vec::new();
            for (i, _) in on.iter().enumerate().filter(|(_, &o)| o) {
                let (x, y) = ((i % n) as i64, (i / n) as i64);
                // P2..P9: north, then clockwise
                let p = [
                    at(on, x, y - 1),
                    at(on, x + 1, y - 1),
                    at(on, x + 1, y),
                    at(on, x + 1, y + 1),
                    at(on, x, y + 1),
                    at(on, x - 1, y + 1),
                    at(on, x - 1, y),
                    at(on, x - 1, y - 1),
                ];
                let b = p.iter().filter(|&&v| v).count();
                let a = (0..8).filter(|&k| !p[k] && p[(k + 1) % 8]).count();
                let (n_, e, s, w) = (p[0], p[2], p[4], p[6]);
                // Zhang and Suen: pass 1 keeps a pixel whose P2, P4, P6 or
                // whose P4, P6, P8 are all set; pass 2, P2, P4, P8 or P2, P6, P8
                let keep = if pass == 0 {
                    e && s && (n_ || w)
                } else {
                    n_ && w && (e || s)
                };
                if (2..=6).contains(&b) && a == 1 && !keep {
                    off.push(i);
                }
            }
            changed |= !off.is_empty();
            for i in off {
                on[i] = false;
            }
        }
        if !changed {
            break;
        }
    }
}

/// Distance from `p` to the segment `a`-`b`.
pub fn segment_distance(p: (f32, f32), a: (f32, f32), b: (f32, f32)) -> f32 {
    let (abx, aby) = (b.0 - a.0, b.1 - a.1);
    let len2 = abx * abx + aby * aby;
    let t = if len2 > 0.0 {
        (((p.0 - a.0) * abx + (p.1 - a.1) * aby) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (cx, cy) = (a.0 + t * abx - p.0, a.1 + t * aby - p.1);
    (cx * cx + cy * cy).sqrt()
}

/// One scribble path: `steps` segments of `step` pixels from a random start
/// in the box, the heading turning by a random-walk curvature.
fn path(rng: &mut StdRng) -> Vec<(f32, f32)> {
    let mut p = (rng.random_range(6.0..22.0f32), rng.random_range(6.0..22.0f32));
    let mut heading = rng.random_range(0.0..std::f32::consts::TAU);
    let mut turn = rng.random_range(-0.4..0.4f32);
    let steps = rng.random_range(6..=24);
    let mut pts = vec![p];
    for _ in 0..steps {
        turn = (turn + rng.random_range(-0.25..0.25f32)).clamp(-0.7, 0.7);
        heading += turn;
        p = (
            (p.0 + 1.5 * heading.cos()).clamp(4.0, 24.0),
            (p.1 + 1.5 * heading.sin()).clamp(4.0, 24.0),
        );
        pts.push(p);
    }
    pts
}

/// `n` scribble images (1-3 wandering pen paths each), labelled garbage;
/// with `normalized`, each drawn as the device delivers it
/// ([`draw_fitted`]; the same draws either way).
pub fn scribbles(name: &str, n: usize, normalized: bool, rng: &mut StdRng) -> Dataset {
    // every path drawn first, in order; then the images on every core
    let drawings: Vec<Vec<Vec<(f32, f32)>>> = (0..n)
        .map(|_| {
            let k = rng.random_range(1..=3);
            (0..k).map(|_| path(rng)).collect()
        })
        .collect();
    let images = crate::normalize::images_in_parallel(n, |i| {
        if normalized {
            draw_fitted(&drawings[i])
        } else {
            draw(&drawings[i])
        }
    });
    Dataset {
        name: name.into(),
        images,
        labels: vec![GARBAGE as u8; n],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_page_is_the_drawing_in_dark_ink_at_any_size_and_pen() {
        let lines = vec![vec![(6.0, 14.0), (22.0, 14.0)], vec![(14.0, 6.0), (14.0, 22.0)]];
        // at the dataset's size and pen: the drawing itself, inverted
        let same = page(&lines, IMG_SIDE as u32, 1.0, PEN);
        let ink: Vec<u8> = same.as_raw().iter().map(|&v| 255 - v).collect();
        assert_eq!(&ink[..], &draw(&lines)[..]);
        // enlarged: the cross sits at the scaled points, the corners stay paper
        let big = page(&lines, 105, 3.75, 1.0);
        assert_eq!(big.dimensions(), (105, 105));
        assert_eq!(big.get_pixel(52, 52)[0], 0, "the crossing is ink");
        assert_eq!(big.get_pixel(30, 52)[0], 0, "on the bar");
        assert_eq!(big.get_pixel(5, 5)[0], 255, "a corner is paper");
        // the pen's width is the page's: a finer pen leaves less ink
        let dark = |g: &image::GrayImage| g.as_raw().iter().filter(|&&v| v < 128).count();
        let (fine, broad) = (dark(&big), dark(&page(&lines, 105, 3.75, PEN * 3.75)));
        assert!(3 * fine < broad && fine > 100, "{fine} vs {broad}");
    }

    #[test]
    fn thinning_leaves_the_centre_line_of_a_bar() {
        // a 5-pixel-wide vertical bar, rows 10..50, columns 20..25
        let n = 64;
        let mut on = vec![false; n * n];
        for y in 10..50 {
            on[y * n + 20..y * n + 25].fill(true);
        }
        thin(&mut on, n);
        for y in 14..46 {
            let row: Vec<usize> = (0..n).filter(|&x| on[y * n + x]).collect();
            assert_eq!(row, vec![22], "row {y}");
        }
        assert!(on.iter().filter(|&&o| o).count() < 50);
    }

    #[test]
    fn a_redrawn_digit_keeps_its_place_and_takes_the_pens_width() {
        // an MNIST-like 7: a bar across and a stroke down, 2-3 pixels wide
        let seven = draw(&[vec![(8.0, 6.0), (20.0, 6.0), (12.0, 22.0)]]);
        let ink = |img: &[u8; IMG_PIXELS]| img.iter().map(|&v| u32::from(v)).sum::<u32>();
        let (fine, mnist, broad) = (redraw(&seven, 1.5), redraw(&seven, 4.5), redraw(&seven, 9.0));
        assert!(ink(&fine) < ink(&mnist) && ink(&mnist) < ink(&broad));
        for img in [&fine, &mnist, &broad] {
            // the device's view: full ink, the long side fitted into the box
            assert_eq!(img.iter().copied().max(), Some(255));
            let lit: Vec<usize> = (0..IMG_PIXELS).filter(|&i| img[i] > 64).collect();
            let rows = lit.iter().map(|i| i / IMG_SIDE);
            let height = rows.clone().max().unwrap_or(0) - rows.min().unwrap_or(0) + 1;
            assert!((FIT as usize - 1..=FIT as usize).contains(&height), "{height}");
        }
        // at MNIST's own radius the redrawn 7 is close to the 7 fitted
        let fitted = crate::normalize::drawing(&seven);
        let overlap = (0..IMG_PIXELS)
            .filter(|&i| mnist[i] > 128 && fitted[i] > 128)
            .count();
        let either = (0..IMG_PIXELS)
            .filter(|&i| mnist[i] > 128 || fitted[i] > 128)
            .count();
        assert!(overlap * 10 > either * 6, "{overlap} of {either}");
        assert_eq!(
            redraw(&[0; IMG_PIXELS], 3.0),
            [0; IMG_PIXELS],
            "blank stays blank"
        );
    }

    #[test]
    fn distances_to_segments() {
        assert!((segment_distance((0.0, 1.0), (0.0, 0.0), (2.0, 0.0)) - 1.0).abs() < 1e-6);
        assert!((segment_distance((3.0, 0.0), (0.0, 0.0), (2.0, 0.0)) - 1.0).abs() < 1e-6);
        assert!((segment_distance((1.0, 1.0), (1.0, 1.0), (1.0, 1.0))).abs() < 1e-6);
    }

    #[test]
    fn scribbles_are_inked_garbage_in_the_box() {
        let ds = scribbles("s", 50, false, &mut StdRng::seed_from_u64(3));
        assert_eq!((ds.len(), ds.name.as_str()), (50, "s"));
        assert!(ds.labels.iter().all(|&l| l == GARBAGE as u8));
        let mut total = 0;
        for i in 0..ds.len() {
            let img = ds.image(i);
            // a path can run into a corner of the box and stop there: at
            // least a pen dot, and long strokes on average
            let lit = img.iter().filter(|&&p| p > 128).count();
            assert!(lit >= 4, "image {i} blank");
            total += lit;
            // nothing in the outer 2-pixel frame: the pen stays in the 20x20 box
            for y in 0..IMG_SIDE {
                for x in [0, 1, IMG_SIDE - 2, IMG_SIDE - 1] {
                    assert_eq!(img[y * IMG_SIDE + x], 0);
                    assert_eq!(img[x * IMG_SIDE + y], 0);
                }
            }
        }
        assert!(
            total >= 30 * ds.len(),
            "{} inked pixels per image",
            total / ds.len()
        );
    }

    #[test]
    fn normalized_scribbles_are_the_same_draws_fitted_to_the_box_and_crisp() {
        let mut r1 = StdRng::seed_from_u64(4);
        let mut r2 = StdRng::seed_from_u64(4);
        scribbles("s", 30, false, &mut r1);
        let fitted = scribbles("s", 30, true, &mut r2);
        assert_eq!(r1.random::<u64>(), r2.random::<u64>(), "the same draws");
        for i in 0..fitted.len() {
            let img = fitted.image(i);
            let lit: Vec<usize> = (0..IMG_PIXELS)
                .filter(|&p| img[p] > crate::normalize::INK_LEVEL)
                .collect();
            let span = |f: &dyn Fn(usize) -> usize| {
                lit.iter().map(|&p| f(p)).max().unwrap_or(0) - lit.iter().map(|&p| f(p)).min().unwrap_or(0)
                    + 1
            };
            let long = span(&|p| p % IMG_SIDE).max(span(&|p| p / IMG_SIDE));
            assert!((17..=21).contains(&long), "image {i}: longer side {long}");
            // centre of mass at the centre (pixel indices: 13.5)
            let (cx, cy) = crate::normalize::centre_of_mass(img, IMG_SIDE, 0.0).expect("ink");
            assert!(
                (cx - 13.5).abs() < 1.5 && (cy - 13.5).abs() < 1.5,
                "image {i}: {cx} {cy}"
            );
            // crisp like the plain pen and MNIST (a third of MNIST's ink
            // pixels are full ink): the pen's one-pixel soft edge
            let ink = img.iter().filter(|&&v| v > 0).count().max(1);
            let full = img.iter().filter(|&&v| v == 255).count();
            assert!(4 * full >= ink, "image {i}: {full} of {ink} ink pixels full");
        }
    }
}
