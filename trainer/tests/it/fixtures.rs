//! Small synthetic datasets written in the real file formats.

use std::path::Path;
use trainer::data::idx;

/// A synthetic "MNIST": class `d` is a bright vertical bar at column `4 + 2d`,
/// jittered by one pixel, on a dark background with light noise.
pub fn digits(n: usize, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut s = seed;
    let mut rnd = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 33) as u32
    };
    let mut images = vec![0u8; n * 784];
    let mut labels = Vec::with_capacity(n);
    for (i, img) in images.chunks_mut(784).enumerate() {
        let d = (i % 10) as u8;
        labels.push(d);
        let col = 4 + 2 * d as usize + (rnd() % 2) as usize;
        for y in 4..24 {
            img[y * 28 + col] = 255;
        }
        for v in img.iter_mut() {
            *v = v.saturating_add((rnd() % 20) as u8);
        }
    }
    (images, labels)
}

/// Writes the four MNIST files (raw IDX) of a synthetic set into `dir`.
pub fn write_mnist(dir: &Path, n_train: usize, n_test: usize) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let (tr, trl) = digits(n_train, 1);
    let (te, tel) = digits(n_test, 2);
    let w = |name: &str, dims: &[usize], data: &[u8]| {
        std::fs::write(dir.join(name), idx::encode(dims, data)).expect("write fixture");
    };
    w("train-images-idx3-ubyte", &[n_train, 28, 28], &tr);
    w("train-labels-idx1-ubyte", &[n_train], &trl);
    w("t10k-images-idx3-ubyte", &[n_test, 28, 28], &te);
    w("t10k-labels-idx1-ubyte", &[n_test], &tel);
}
