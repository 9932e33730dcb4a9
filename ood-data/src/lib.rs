//! `ood-data`: datasets as our own types (28x28 8-bit images in the input
//! contract, with labels) and how a model is measured on them.
//!
//! - **Purpose**: one definition of the data and of the evaluation, shared by
//!   the `trainer` (which trains and calibrates) and the `edge` runtime (which
//!   re-measures the exported model), so their numbers cannot drift apart.
//! - **Inputs**: IDX files, image folders, CIFAR-10 binary, SVHN `.mat`,
//!   downloads (feature `download`); a function from images to logits.
//! - **Outputs**: [`Dataset`]s; [`eval::Evaluation`] reports and [`metrics`].
//! - **Never**: candle, tract, or any model code.
//!
//!
//! Readers: [`idx`] (MNIST-family IDX, raw or gzipped), [`folder`] (PNG/JPEG
//! folders), [`cifar`] (CIFAR-10 binary), [`svhn`] (SVHN `.mat`), plus
//! [`synth`] noise sets and [`fetch`] for finding or downloading data.
//!
//! Every image that is not already 28x28 grayscale goes through
//! [`to_contract`]: grayscale (luma), then the shorter side resized to 28
//! (bilinear), then a centred 28x28 crop. Polarity is kept as it is.

pub mod cifar;
pub mod error;
pub mod eval;
pub mod fetch;
pub mod files;
pub mod folder;
pub mod idx;
pub mod metrics;
pub mod nearood;
pub mod normalize;
pub mod pen;
pub mod sets;
pub mod svhn;
pub mod synth;
pub mod turned;

pub use error::{Error, Result};
pub use files::{sha256_hex, write_atomic, write_atomic_with};
use ood_core::{IMG_PIXELS, IMG_SIDE};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
pub use sets::EvalSets;
use std::path::Path;

/// `f(0), f(1), ..., f(n - 1)` in order, computed on every core, each core
/// taking the next index not yet taken (so one slow item does not hold back
/// the items queued behind it; a panic in `f` is passed on). The result
/// depends on `f` only, never on the number of cores or the order of work.
pub fn map_in_parallel<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .clamp(1, n.max(1));
    let next = AtomicUsize::new(0);
    let (f, next) = (&f, &next);
    let mut done: Vec<(usize, T)> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            break mine;
                        }
                        mine.push((i, f(i)));
                    }
                })
            })
            .collect();
        runs.into_iter()
            .flat_map(|r| r.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    });
    done.sort_unstable_by_key(|&(i, _)| i);
    done.into_iter().map(|(_, v)| v).collect()
}

/// A set of 28x28 grayscale images (row-major bytes) with one label each.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dataset {
    /// Short name used in reports.
    pub name: String,
    /// `len() * 784` bytes.
    pub images: Vec<u8>,
    /// One label per image (digit, garbage, or the OOD set's own class index).
    pub labels: Vec<u8>,
}

impl Dataset {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.images[i * IMG_PIXELS..(i + 1) * IMG_PIXELS]
    }

    /// Appends one image and its label.
    pub fn push(&mut self, image: &[u8], label: u8) {
        debug_assert_eq!(image.len(), IMG_PIXELS);
        self.images.extend_from_slice(image);
        self.labels.push(label);
    }

    /// Appends every image of `other` with its label, in order.
    pub fn append(&mut self, other: &Dataset) {
        self.images.extend_from_slice(&other.images);
        self.labels.extend_from_slice(&other.labels);
    }

    /// The images at `idx`, in that order.
    pub fn subset(&self, name: &str, idx: &[usize]) -> Dataset {
        let mut out = Dataset {
            name: name.into(),
            images: Vec::with_capacity(idx.len() * IMG_PIXELS),
            labels: Vec::with_capacity(idx.len()),
        };
        for &i in idx {
            out.push(self.image(i), self.labels[i]);
        }
        out
    }

    /// Number of images per label value `0..n`.
    pub fn counts(&self, n: usize) -> Vec<usize> {
        let mut c = vec![0; n];
        for &l in &self.labels {
            if (l as usize) < n {
                c[l as usize] += 1;
            }
        }
        c
    }

    /// A seeded random split into (train, validation) with `n_val` validation images.
    pub fn split(&self, n_val: usize, rng: &mut StdRng) -> Result<(Dataset, Dataset)> {
        if n_val >= self.len() {
            return Err(Error::Invalid(format!(
                "validation split of {n_val} leaves no training images out of {}",
                self.len()
            )));
        }
        let mut idx: Vec<usize> = (0..self.len()).collect();
        idx.shuffle(rng);
        let (val, train) = idx.split_at(n_val);
        let (mut train, mut val) = (train.to_vec(), val.to_vec());
        train.sort_unstable();
        val.sort_unstable();
        Ok((
            self.subset(&format!("{}-train", self.name), &train),
            self.subset(&format!("{}-val", self.name), &val),
        ))
    }
}

/// Converts a decoded image to the 28x28 grayscale input contract (see module docs).
pub fn to_contract(img: &image::DynamicImage) -> Vec<u8> {
    let gray = img.to_luma8();
    let (w, h) = gray.dimensions();
    if (w, h) == (IMG_SIDE as u32, IMG_SIDE as u32) {
        return gray.into_raw();
    }
    let side = IMG_SIDE as u32;
    let (nw, nh) = if w <= h {
        (
            side,
            ((h as u64 * side as u64) / w.max(1) as u64).max(side as u64) as u32,
        )
    } else {
        (
            ((w as u64 * side as u64) / h.max(1) as u64).max(side as u64) as u32,
            side,
        )
    };
    let resized = image::imageops::resize(&gray, nw, nh, image::imageops::FilterType::Triangle);
    let (x0, y0) = ((nw - side) / 2, (nh - side) / 2);
    image::imageops::crop_imm(&resized, x0, y0, side, side)
        .to_image()
        .into_raw()
}

/// Loads an OOD set from a path: an IDX image file (raw or `.gz`), a CIFAR-10
/// binary batch or archive, an SVHN `.mat` file, or an image folder.
pub fn load_any(name: &str, path: &Path) -> Result<Dataset> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let lower = path.to_string_lossy().to_lowercase();
    let mut ds = if meta.is_dir() {
        folder::read_folder(path)?
    } else if lower.ends_with(".mat") {
        svhn::read_mat(path)?
    } else if lower.ends_with(".bin") || lower.ends_with(".tar.gz") || lower.ends_with(".tgz") {
        cifar::read(path)?
    } else {
        idx::read_image_set(path)?
    };
    ds.name = name.to_string();
    Ok(ds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_in_parallel_answers_in_index_order_whatever_the_work() {
        // uneven work: the first two indices are slow
        let work = |i: usize| {
            let spin = if i < 2 { 20_000 } else { 10 };
            (0..spin).fold(i as u64, |a, k| a.wrapping_mul(31).wrapping_add(k)) % 7 + 100 * i as u64
        };
        for n in [0, 1, 2, 5, 97] {
            let want: Vec<u64> = (0..n).map(work).collect();
            assert_eq!(map_in_parallel(n, work), want, "n = {n}");
        }
    }

    #[test]
    #[should_panic(expected = "item 3")]
    fn map_in_parallel_passes_a_panic_on() {
        map_in_parallel(6, |i| if i == 3 { panic!("item 3") } else { i });
    }
    use rand::SeedableRng;

    #[test]
    fn split_is_a_seeded_partition() -> Result<()> {
        let mut ds = Dataset::default();
        for i in 0..100u8 {
            ds.push(&[i; IMG_PIXELS], i % 10);
        }
        let (a, b) = ds.split(20, &mut StdRng::seed_from_u64(5))?;
        assert_eq!((a.len(), b.len()), (80, 20));
        let mut seen: Vec<u8> = a
            .images
            .iter()
            .step_by(IMG_PIXELS)
            .chain(b.images.iter().step_by(IMG_PIXELS))
            .copied()
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..100u8).collect::<Vec<_>>());
        let (a2, _) = ds.split(20, &mut StdRng::seed_from_u64(5))?;
        assert_eq!(a, a2);
        assert!(ds.split(100, &mut StdRng::seed_from_u64(5)).is_err());
        Ok(())
    }

    #[test]
    fn append_adds_every_image_with_its_label_in_order() {
        let mut a = Dataset::default();
        a.push(&[1; IMG_PIXELS], 1);
        let mut b = Dataset::default();
        b.push(&[2; IMG_PIXELS], 2);
        b.push(&[3; IMG_PIXELS], 10);
        a.append(&b);
        assert_eq!(a.labels, vec![1, 2, 10]);
        assert_eq!((a.image(0)[0], a.image(1)[0], a.image(2)[0]), (1, 2, 3));
        a.append(&Dataset::default());
        assert_eq!(a.len(), 3);
    }

    #[test]
    fn contract_conversion_crops_and_resizes() {
        let img =
            image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(64, 32, image::Rgb([255, 255, 255])));
        let v = to_contract(&img);
        assert_eq!(v.len(), IMG_PIXELS);
        assert!(v.iter().all(|&p| p == 255));
        let small = image::DynamicImage::ImageLuma8(image::GrayImage::from_pixel(28, 28, image::Luma([7])));
        assert_eq!(to_contract(&small), vec![7; IMG_PIXELS]);
    }
}
