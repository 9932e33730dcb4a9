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
}

use Turn::{Half, MirrorSideways, MirrorUpDown, Quarter, ThreeQuarters};

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

/// `img` turned as `turn` says.
pub fn turn(img: &[u8], turn: Turn) -> [u8; IMG_PIXELS] {
    let last = IMG_SIDE - 1;
    let mut out = [0u8; IMG_PIXELS];
    for (i, o) in out.iter_mut().enumerate() {
        let (y, x) = (i / IMG_SIDE, i % IMG_SIDE);
        let (sy, sx) = match turn {
            Quarter => (last - x, y),
            Half => (last - y, last - x),
            ThreeQuarters => (x, last - y),
            MirrorSideways => (y, last - x),
            MirrorUpDown => (last - y, x),
        };
        *o = img[sy * IMG_SIDE + sx];
    }
    out
}

/// `n` garbage images: each a random (digit, turn) pair of [`TURNS`] (all
/// pairs equally likely), applied to a random training digit of that class
/// from `digits` (labels = digits). Empty if `digits` holds no digit that
/// has a turn.
pub fn turned(name: &str, n: usize, digits: &Dataset, rng: &mut StdRng) -> Dataset {
    let mut by_class: [Vec<usize>; 10] = Default::default();
    for (i, &l) in digits.labels.iter().enumerate() {
        if let Some(c) = by_class.get_mut(l as usize) {
            c.push(i);
        }
    }
    let pairs: Vec<(usize, Turn)> = TURNS
        .iter()
        .enumerate()
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

    #[test]
    fn turned_images_are_garbage_turns_of_training_digits() {
        // one image per class: class d has its lit pixel at (d + 1, 3)
        let mut digits = Dataset::default();
        for d in 0..10u8 {
            digits.push(&dot(d as usize + 1, 3), d);
        }
        let mut rng = StdRng::seed_from_u64(1);
        let out = turned("t", 500, &digits, &mut rng);
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
        let again = turned("t", 500, &digits, &mut StdRng::seed_from_u64(1));
        assert_eq!(again, out);
        let zeros = digits.subset("zeros", &[0]);
        assert!(turned("t", 5, &zeros, &mut rng).is_empty());
    }
}
