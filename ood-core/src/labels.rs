//! The label space: ten digits plus one "garbage" class for everything else.

/// Number of in-distribution classes (the digits 0..=9).
pub const NUM_DIGITS: usize = 10;
/// Total number of classifier outputs: the digits plus the garbage class.
pub const NUM_CLASSES: usize = NUM_DIGITS + 1;
/// Index of the garbage ("not a digit") class.
pub const GARBAGE: usize = 10;
/// Side of the square input image, in pixels.
pub const IMG_SIDE: usize = 28;
/// Number of pixels of one input image.
pub const IMG_PIXELS: usize = IMG_SIDE * IMG_SIDE;

/// Human-readable names of the classes, indexed by class.
pub const CLASS_NAMES: [&str; NUM_CLASSES] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "garbage"];

/// Whether `class` is one of the digits (not garbage, not out of range).
pub fn is_digit(class: usize) -> bool {
    class < NUM_DIGITS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_last_and_not_a_digit() {
        assert_eq!(GARBAGE, NUM_CLASSES - 1);
        assert!(!is_digit(GARBAGE));
        assert!(is_digit(0) && is_digit(9));
        assert_eq!(CLASS_NAMES[GARBAGE], "garbage");
        assert_eq!(IMG_PIXELS, 784);
    }
}
