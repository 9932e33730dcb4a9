//! The `turned` garbage source: training digits turned or mirrored into
//! shapes that are no digit.
//!
//! A 3 mirrored is an epsilon, an 8 on its side an infinity sign, a 7 upside
//! down an L, a 1 on its side a minus sign: handwriting with MNIST's own
//! strokes, pen pressure and size, that is not a digit. Only the pairs of
//! (digit, turn) whose result reads as no digit are used ([`TURNS`]): a 0 or
//! an 8 mirrored is still a 0 or an 8, a 6 upside down is a 9, so those are
//! left out. Made from the training digits only (the near-OOD validation
//! families are made from the held-out validation digits, by other means:
//! `nearood`), designed without looking at any OOD test set.

use super::Dataset;
use ood_core::{GARBAGE, IMG_PIXELS, IMG_SIDE};
use rand::rngs::StdRng;
use rand::Rng;

/// A turn or mirror of the 28x28 image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Turn {
    /// A quarter turn clockwise.
    Quarter,
    /// A half turn (upside down).
    Half,
    /// Three quarter turns clockwise (a quarter turn anticlockwise).
    ThreeQuarters,
    /// Left and right swapped.
    MirrorSideways,
    /// Top and bottom swapped.
    MirrorUpDown,
    /// An eighth of a turn (45 degrees) clockwise.
    Eighth,
    /// Three eighths of a turn (135 degrees) clockwise.
    ThreeEighths,
    /// Five eighths of a turn clockwise (135 degrees anticlockwise).
    FiveEighths,
    /// Seven eighths of a turn clockwise (45 degrees anticlockwise).
    SevenEighths,
}

use Turn::{
    Eighth, FiveEighths, Half, MirrorSideways, MirrorUpDown, Quarter, SevenEighths, ThreeEighths,
    ThreeQuarters,
};

/// For each digit, the turns that make it no digit, chosen by looking at
/// a grid of each pair on MNIST training digits. Left out: every turn of a 0
/// (an oval either way) and of a 5 (on its side it often reads as a 4, a 9
/// or a 5); a 1 upside down or mirrored (still a 1); a 2 mirrored (a loop at
/// the bottom reads as a 6) or turned anticlockwise or upside down; a 3
/// mirrored up-down (still a 3); a 6 upside down (a 9), mirrored up-down or
/// on its side (a 9 or a 6 lying down); a 7 turned anticlockwise (often
/// still a 7); an 8 mirrored or upside down (still an 8); a 9 upside down
/// (a 6) or turned anticlockwise (an "a", close to a 9).
pub const TURNS: [&[Turn]; 10] = [
    &[],
    &[Quarter, ThreeQuarters],
    &[Quarter],
    &[MirrorSideways, Quarter, Half, ThreeQuarters],
    &[MirrorSideways, MirrorUpDown, Quarter, Half, ThreeQuarters],
    &[],
    &[MirrorSideways],
    &[MirrorSideways, MirrorUpDown, Quarter, Half],
    &[Quarter, ThreeQuarters],
    &[MirrorSideways, MirrorUpDown, Quarter],
];

/// For each digit, the eighth turns (45 and 135 degrees) that make it no
/// digit, chosen the same way (a grid of eight training digits per pair;
/// kept where they read as no digit, left out where any reads as a digit):
/// a 2 turned 45 degrees clockwise (a loop lying on its side; further round
/// it reads as a 2 again), a 3 turned 135 degrees either way (an m or w
/// written at a slant), a 4 turned 135 degrees anticlockwise, and a 7
/// turned 45 degrees clockwise or 135 degrees either way (a `>`, an L, a
/// `<`). Left out: every eighth turn of a 0, a 5, a 6, an 8 and a 9 (an
/// oval, a 5 or an S, a 9 or a b, an 8, an a or a 6), every 45-degree turn
/// of a 3 or a 4 (still a 3; a y or an H that reads as a 4), a 7 turned 45
/// degrees anticlockwise (a 1 or a 7), and every turn of a 1: anticlockwise
/// it leans like a 1 written backwards, and clockwise (a shallow slash, in
/// the first version of this table) a 1 that leaned left before reads as a
/// 1 leaning right; with it, more validation 1s fell below the acceptance
/// threshold (README, "Digits at a slant").
pub const DIAGONAL_TURNS: [&[Turn]; 10] = [
    &[],
    &[],
    &[Eighth],
    &[ThreeEighths, FiveEighths],
    &[FiveEighths],
    &[],
    &[],
    &[Eighth, ThreeEighths, FiveEighths],
    &[],
    &[],
];

/// `img` turned as `turn` says.
pub fn turn(img: &[u8], turn: Turn) -> [u8; IMG_PIXELS] {
    const LAST: usize = IMG_SIDE - 1;
    let eighth = std::f64::consts::FRAC_PI_4;
    // the source pixel (row, column) of output pixel (y, x)
    let source: fn(usize, usize) -> (usize, usize) = match turn {
        Quarter => |y, x| (LAST - x, y),
        Half => |y, x| (LAST - y, LAST - x),
        ThreeQuarters => |y, x| (x, LAST - y),
        MirrorSideways => |y, x| (y, LAST - x),
        MirrorUpDown => |y, x| (LAST - y, x),
        Eighth => return tilt(img, eighth),
        ThreeEighths => return tilt(img, 3.0 * eighth),
        FiveEighths => return tilt(img, 5.0 * eighth),
        SevenEighths => return tilt(img, 7.0 * eighth),
    };
    let mut out = [0u8; IMG_PIXELS];
    for (i, o) in out.iter_mut().enumerate() {
        let (sy, sx) = source(i / IMG_SIDE, i % IMG_SIDE);
        *o = img[sy * IMG_SIDE + sx];
    }
    out
}

/// `img` turned `angle` radians clockwise about its centre of mass, which
/// lands on the image's centre, as MNIST centres its digits. Each pixel is
/// taken as a square of constant ink and each output pixel gets the share of
/// ink over its area (4x4 samples): a stroke's inside keeps its full ink and
/// only its edge is anti-aliased, as MNIST's own strokes are. Interpolating
/// between pixels instead (bilinear) would soften every stroke, a mark no
/// training digit carries and a classifier learns as a shortcut
/// (`normalize`). Ink turned past the edge is lost (a digit's 20x20 box,
/// turned, spans at most 28 pixels).
pub fn tilt(img: &[u8], angle: f64) -> [u8; IMG_PIXELS] {
    const SUB: usize = 4;
    let mut out = [0u8; IMG_PIXELS];
    let Some((cx, cy)) = crate::normalize::centre_of_mass(img, IMG_SIDE, 0.5) else {
        return out;
    };
    let (c, s) = (angle.cos(), angle.sin());
    let half = IMG_SIDE as f64 / 2.0;
    for (i, o) in out.iter_mut().enumerate() {
        let (ox, oy) = ((i % IMG_SIDE) as f64, (i / IMG_SIDE) as f64);
        let mut sum = 0u32;
        for k in 0..SUB * SUB {
            // a sample point of the output pixel, relative to the centre
            let x = ox + ((k % SUB) as f64 + 0.5) / SUB as f64 - half;
            let y = oy + ((k / SUB) as f64 + 0.5) / SUB as f64 - half;
            // turned back (clockwise on screen is the usual rotation with y down)
            let (sx, sy) = (c * x + s * y + cx, -s * x + c * y + cy);
            if sx >= 0.0 && sy >= 0.0 && sx < IMG_SIDE as f64 && sy < IMG_SIDE as f64 {
                sum += u32::from(img[sy as usize * IMG_SIDE + sx as usize]);
            }
        }
        *o = ((sum + (SUB * SUB / 2) as u32) / (SUB * SUB) as u32) as u8;
    }
    out
}

/// `n` garbage images: each a random (digit, turn) pair of [`TURNS`], and
/// of [`DIAGONAL_TURNS`] too when `diagonal` (all pairs equally likely),
/// applied to a random training digit of that class from `digits` (labels =
/// digits). Empty if `digits` holds no digit that has a turn.
pub fn turned(name: &str, n: usize, digits: &Dataset, diagonal: bool, rng: &mut StdRng) -> Dataset {
    let mut by_class: [Vec<usize>; 10] = Default::default();
    for (i, &l) in digits.labels.iter().enumerate() {
        if let Some(c) = by_class.get_mut(l as usize) {
            c.push(i);
        }
    }
    let tables: &[[&[Turn]; 10]] = if diagonal {
        &[TURNS, DIAGONAL_TURNS]
    } else {
        &[TURNS]
    };
    let pairs: Vec<(usize, Turn)> = tables
        .iter()
        .flat_map(|table| table.iter().enumerate())
        .filter(|(d, _)| !by_class[*d].is_empty())
        .flat_map(|(d, turns)| turns.iter().map(move |&t| (d, t)))
        .collect();
    let mut ds = Dataset {
        name: name.into(),
        ..Default::default()
    };
    if pairs.is_empty() {
        return ds;
    }
    ds.images.reserve(n * IMG_PIXELS);
    for _ in 0..n {
        let (d, t) = pairs[rng.random_range(0..pairs.len())];
        let i = by_class[d][rng.random_range(0..by_class[d].len())];
        ds.push(&turn(digits.image(i), t), GARBAGE as u8);
    }
    ds
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// A 28x28 image with one lit pixel at (y, x).
    fn dot(y: usize, x: usize) -> Vec<u8> {
        let mut v = vec![0u8; IMG_PIXELS];
        v[y * IMG_SIDE + x] = 255;
        v
    }

    fn lit(img: &[u8]) -> (usize, usize) {
        let i = img.iter().position(|&p| p == 255).expect("one lit pixel");
        (i / IMG_SIDE, i % IMG_SIDE)
    }

    #[test]
    fn turns_move_pixels_where_they_say() {
        // the top-left corner's neighbour (row 0, column 1)
        let img = dot(0, 1);
        assert_eq!(
            lit(&turn(&img, Quarter)),
            (1, 27),
            "clockwise: top row to right column"
        );
        assert_eq!(lit(&turn(&img, Half)), (27, 26));
        assert_eq!(
            lit(&turn(&img, ThreeQuarters)),
            (26, 0),
            "anticlockwise: top row to left column"
        );
        assert_eq!(lit(&turn(&img, MirrorSideways)), (0, 26));
        assert_eq!(lit(&turn(&img, MirrorUpDown)), (27, 1));
        // four quarter turns, and any mirror twice, give the image back
        let mut four = img.clone();
        for _ in 0..4 {
            four = turn(&four, Quarter).to_vec();
        }
        assert_eq!(four, img);
        let back = turn(&turn(&img, MirrorUpDown), MirrorUpDown);
        assert_eq!(back.to_vec(), img);
        assert_eq!(
            turn(&turn(&img, Quarter), ThreeQuarters).to_vec(),
            img,
            "three quarters undo one quarter"
        );
    }

    #[test]
    fn no_digit_is_turned_into_itself_or_another_digit() {
        assert!(TURNS[0].is_empty(), "a 0 turns into a 0");
        assert!(TURNS[5].is_empty(), "a 5 on its side reads as a 4 or a 9");
        assert!(!TURNS[7].contains(&ThreeQuarters), "still a 7");
        assert!(!TURNS[8].contains(&Half) && !TURNS[8].contains(&MirrorSideways));
        assert!(!TURNS[6].contains(&Half) && !TURNS[9].contains(&Half), "6 and 9");
        assert!(!TURNS[1].contains(&Half) && !TURNS[1].contains(&MirrorSideways));
        assert!(!TURNS[3].contains(&MirrorUpDown));
    }

    /// Four lit pixels whose centre of mass is the image's centre.
    fn cross() -> Vec<u8> {
        let mut v = vec![0u8; IMG_PIXELS];
        for (y, x) in [(10, 13), (17, 14), (13, 10), (14, 17)] {
            v[y * IMG_SIDE + x] = 200;
        }
        v
    }

    #[test]
    fn tilts_turn_about_the_centre_of_mass_without_blurring() {
        let img = cross();
        assert_eq!(tilt(&img, 0.0).to_vec(), img, "no turn: the same pixels");
        assert_eq!(
            tilt(&img, std::f64::consts::FRAC_PI_2),
            turn(&img, Quarter),
            "a quarter turn by tilting is the exact quarter turn"
        );
        // a bar of ink (3 wide, 15 long) turned 45 degrees: about the same
        // ink, centred, with its inside still at full ink
        let mut bar = vec![0u8; IMG_PIXELS];
        for y in 6..21 {
            for x in 12..15 {
                bar[y * IMG_SIDE + x] = 255;
            }
        }
        for t in [Eighth, ThreeEighths, FiveEighths, SevenEighths] {
            let out = turn(&bar, t);
            let ink = |v: &[u8]| v.iter().map(|&p| u32::from(p)).sum::<u32>();
            let (a, b) = (ink(&bar), ink(&out));
            assert!(a.abs_diff(b) * 50 < a, "{t:?}: ink {a} -> {b}");
            assert_eq!(out[13 * IMG_SIDE + 13], 255, "{t:?}: the middle stays full ink");
            assert!(
                out.iter().filter(|&&p| p == 255).count() >= 20,
                "{t:?}: not blurred"
            );
            let (cx, cy) = crate::normalize::centre_of_mass(&out, IMG_SIDE, 0.0).expect("ink");
            assert!(
                (cx - 13.5).abs() < 0.5 && (cy - 13.5).abs() < 0.5,
                "{t:?}: ({cx}, {cy})"
            );
            // the bar runs from top-right to bottom-left after 45 degrees clockwise
            let diag = |y: usize, x: usize| out[y * IMG_SIDE + x];
            match t {
                Eighth | FiveEighths => assert!(diag(10, 17) > 200 && diag(10, 10) == 0, "{t:?}"),
                _ => assert!(diag(10, 10) > 200 && diag(10, 17) == 0, "{t:?}"),
            }
        }
        assert_eq!(
            tilt(&[0u8; IMG_PIXELS], 1.0),
            [0u8; IMG_PIXELS],
            "blank stays blank"
        );
    }

    #[test]
    fn diagonal_turns_are_drawn_only_when_asked() {
        // class d: an L with arms d + 4 long, unlike any other class turned
        let mut digits = Dataset::default();
        for d in 0..10usize {
            let mut v = vec![0u8; IMG_PIXELS];
            for k in 0..d + 4 {
                v[(8 + k) * IMG_SIDE + 9] = 255;
                v[(8 + d + 3) * IMG_SIDE + 9 + k] = 255;
            }
            digits.push(&v, d as u8);
        }
        let pairs = |table: [&[Turn]; 10]| -> Vec<(usize, Turn)> {
            (0..10)
                .flat_map(|d| table[d].iter().map(move |&t| (d, t)))
                .collect()
        };
        for diagonal in [false, true] {
            let mut rng = StdRng::seed_from_u64(2);
            let out = turned("t", 600, &digits, diagonal, &mut rng);
            let mut allowed = pairs(TURNS);
            if diagonal {
                allowed.extend(pairs(DIAGONAL_TURNS));
            }
            let mut used = std::collections::HashSet::new();
            for i in 0..out.len() {
                let found: Vec<(usize, Turn)> = allowed
                    .iter()
                    .copied()
                    .filter(|&(d, t)| turn(digits.image(d), t) == *out.image(i))
                    .collect();
                assert!(
                    !found.is_empty(),
                    "image {i} is no allowed turn (diagonal {diagonal})"
                );
                used.extend(found);
            }
            assert_eq!(
                used.len(),
                allowed.len(),
                "every pair drawn (diagonal {diagonal})"
            );
        }
        for d in [0, 5, 6, 8, 9] {
            assert!(DIAGONAL_TURNS[d].is_empty(), "{d}: a digit at every slant");
        }
        assert!(DIAGONAL_TURNS[1].is_empty(), "a 1 at a slant is a 1");
        assert!(
            !DIAGONAL_TURNS[7].contains(&SevenEighths),
            "a 7 leaning back reads as a 1"
        );
    }

    #[test]
    fn turned_images_are_garbage_turns_of_training_digits() {
        // one image per class: class d has its lit pixel at (d + 1, 3)
        let mut digits = Dataset::default();
        for d in 0..10u8 {
            digits.push(&dot(d as usize + 1, 3), d);
        }
        let mut rng = StdRng::seed_from_u64(1);
        let out = turned("t", 500, &digits, false, &mut rng);
        assert_eq!((out.name.as_str(), out.len()), ("t", 500));
        assert!(out.labels.iter().all(|&l| l as usize == GARBAGE));
        let mut used = std::collections::HashSet::new();
        for i in 0..out.len() {
            let img = out.image(i);
            // which (digit, turn) of the table made it
            let found: Vec<(usize, Turn)> = (0..10)
                .flat_map(|d| TURNS[d].iter().map(move |&t| (d, t)))
                .filter(|&(d, t)| turn(digits.image(d), t) == *img)
                .collect();
            assert!(!found.is_empty(), "image {i} is no allowed turn of a digit");
            assert!(found.iter().all(|&(d, _)| d != 0 && d != 5), "no 0 or 5 is used");
            used.extend(found);
        }
        let pairs: usize = TURNS.iter().map(|t| t.len()).sum();
        assert_eq!(used.len(), pairs, "every pair of the table is drawn");
        // the same draws again from the same seed; none without digits that turn
        let again = turned("t", 500, &digits, false, &mut StdRng::seed_from_u64(1));
        assert_eq!(again, out);
        let zeros = digits.subset("zeros", &[0]);
        assert!(turned("t", 5, &zeros, false, &mut rng).is_empty());
    }
}
