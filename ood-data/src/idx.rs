//! IDX files (MNIST, Fashion-MNIST, KMNIST, EMNIST), raw or gzipped.
//!
//! Layout: two zero bytes, a type byte (only `0x08`, unsigned byte, is used by
//! these datasets), the rank, then `rank` big-endian u32 dimensions and the data.
//! Every field is checked; a short or over-long file is an error naming the file.

use crate::error::{Error, Result};
use ood_core::{IMG_PIXELS, IMG_SIDE};
use std::io::Read;
use std::path::Path;

/// Largest payload we accept (EMNIST "byclass" train is ~550 MB).
const MAX_PAYLOAD: u64 = 1 << 30;

/// A parsed IDX file.
#[derive(Debug, Clone, PartialEq)]
pub struct Idx {
    /// Dimensions, outermost first.
    pub dims: Vec<usize>,
    /// Row-major unsigned bytes.
    pub data: Vec<u8>,
}

/// Reads a whole file, gunzipping it when it starts with the gzip magic.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    gunzip_if_gz(raw, path)
}

/// `raw` gunzipped when it starts with the gzip magic, else `raw` itself;
/// the output is cut at the largest payload an IDX file may have (so a
/// decompression bomb stops there and fails to parse). `path` is only used
/// in error messages.
pub fn gunzip_if_gz(raw: Vec<u8>, path: &Path) -> Result<Vec<u8>> {
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .take(MAX_PAYLOAD + 4096)
            .read_to_end(&mut out)
            .map_err(|e| Error::format(path, format!("corrupt gzip stream: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parses IDX bytes; `path` is only used in error messages.
pub fn parse(bytes: &[u8], path: &Path) -> Result<Idx> {
    if bytes.len() < 4 {
        return Err(Error::format(
            path,
            format!(
                "not an IDX file: {} bytes, shorter than the 4-byte header",
                bytes.len()
            ),
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(Error::format(
            path,
            format!(
                "not an IDX file: magic starts with {:02x} {:02x}, expected 00 00",
                bytes[0], bytes[1]
            ),
        ));
    }
    if bytes[2] != 0x08 {
        return Err(Error::format(
            path,
            format!(
                "IDX element type 0x{:02x} unsupported (only 0x08, unsigned byte)",
                bytes[2]
            ),
        ));
    }
    let rank = bytes[3] as usize;
    if rank == 0 || rank > 4 {
        return Err(Error::format(
            path,
            format!("IDX rank {rank} unsupported (expected 1 to 4)"),
        ));
    }
    let header = 4 + 4 * rank;
    if bytes.len() < header {
        return Err(Error::format(
            path,
            format!("truncated IDX header: {} bytes, need {header}", bytes.len()),
        ));
    }
    let dims: Vec<usize> = (0..rank)
        .map(|i| {
            u32::from_be_bytes([
                bytes[4 + 4 * i],
                bytes[5 + 4 * i],
                bytes[6 + 4 * i],
                bytes[7 + 4 * i],
            ]) as usize
        })
        .collect();
    let expected = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .unwrap_or(u64::MAX);
    if expected > MAX_PAYLOAD {
        return Err(Error::format(
            path,
            format!("IDX dimensions {dims:?} declare {expected} bytes, over the {MAX_PAYLOAD}-byte limit"),
        ));
    }
    let got = (bytes.len() - header) as u64;
    if got != expected {
        let kind = if got < expected { "truncated" } else { "too long" };
        return Err(Error::format(
            path,
            format!("{kind} IDX file: dimensions {dims:?} need {expected} data bytes, found {got}"),
        ));
    }
    Ok(Idx {
        dims,
        data: bytes[header..].to_vec(),
    })
}

/// Reads and parses an IDX file (raw or gzipped).
pub fn read(path: &Path) -> Result<Idx> {
    parse(&read_maybe_gz(path)?, path)
}

/// Reads an image file of rank 3 `[n, rows, cols]`; returns `(n, rows, cols, data)`.
pub fn read_images(path: &Path) -> Result<(usize, usize, usize, Vec<u8>)> {
    let idx = read(path)?;
    match idx.dims[..] {
        [n, r, c] if r > 0 && c > 0 => Ok((n, r, c, idx.data)),
        _ => Err(Error::format(
            path,
            format!(
                "expected an image file of rank 3 [n, rows, cols], got dimensions {:?}",
                idx.dims
            ),
        )),
    }
}

/// Reads a label file of rank 1.
pub fn read_labels(path: &Path) -> Result<Vec<u8>> {
    let idx = read(path)?;
    if idx.dims.len() != 1 {
        return Err(Error::format(
            path,
            format!("expected a label file of rank 1, got dimensions {:?}", idx.dims),
        ));
    }
    Ok(idx.data)
}

/// Reads an image file as a [`super::Dataset`] in the input contract (images
/// of another size are converted with [`super::to_contract`]); labels are 0.
pub fn read_image_set(path: &Path) -> Result<super::Dataset> {
    let (n, r, c, data) = read_images(path)?;
    let mut ds = super::Dataset::default();
    for img in data.chunks(r * c).take(n) {
        if (r, c) == (IMG_SIDE, IMG_SIDE) {
            ds.push(img, 0);
        } else {
            let g = image::GrayImage::from_raw(c as u32, r as u32, img.to_vec())
                .ok_or_else(|| Error::format(path, "image buffer size mismatch"))?;
            ds.push(&super::to_contract(&image::DynamicImage::ImageLuma8(g)), 0);
        }
    }
    debug_assert_eq!(ds.images.len(), n * IMG_PIXELS);
    Ok(ds)
}

/// Reads an image file and its label file as one dataset; counts must agree,
/// images must be 28x28.
pub fn read_pair(name: &str, images: &Path, labels: &Path) -> Result<super::Dataset> {
    let (n, r, c, data) = read_images(images)?;
    if (r, c) != (IMG_SIDE, IMG_SIDE) {
        return Err(Error::format(
            images,
            format!("images are {r}x{c}, expected {IMG_SIDE}x{IMG_SIDE}"),
        ));
    }
    let l = read_labels(labels)?;
    if l.len() != n {
        return Err(Error::format(
            labels,
            format!("{} labels for {n} images in {}", l.len(), images.display()),
        ));
    }
    Ok(super::Dataset {
        name: name.into(),
        images: data,
        labels: l,
    })
}

/// Encodes an IDX file of unsigned bytes (used by tests and fixtures).
pub fn encode(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip_raw_and_gz() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let data: Vec<u8> = (0..2 * IMG_PIXELS).map(|i| i as u8).collect();
        let bytes = encode(&[2, 28, 28], &data);
        let raw = dir.path().join("x-idx3-ubyte");
        std::fs::write(&raw, &bytes).map_err(|e| Error::io(&raw, e))?;
        let gz = dir.path().join("x-idx3-ubyte.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, &bytes).map_err(|e| Error::io(&gz, e))?;
        std::fs::write(&gz, enc.finish().map_err(|e| Error::io(&gz, e))?).map_err(|e| Error::io(&gz, e))?;
        for p in [&raw, &gz] {
            let (n, r, c, d) = read_images(p)?;
            assert_eq!((n, r, c), (2, 28, 28));
            assert_eq!(d, data);
        }
        Ok(())
    }

    #[test]
    fn truncated_and_lying_files_are_clear_errors() {
        let p = Path::new("t10k-images-idx3-ubyte");
        let good = encode(&[2, 28, 28], &[0; 2 * IMG_PIXELS]);
        let e = parse(&good[..good.len() - 10], p).expect_err("truncated");
        let msg = e.to_string();
        assert!(
            msg.contains("t10k-images") && msg.contains("truncated") && msg.contains("1558"),
            "{msg}"
        );
        let mut long = good.clone();
        long.push(0);
        assert!(parse(&long, p)
            .expect_err("long")
            .to_string()
            .contains("too long"));
        assert!(parse(&[1, 2, 3, 4], p)
            .expect_err("magic")
            .to_string()
            .contains("magic"));
        assert!(parse(&[0, 0, 0x0d, 1, 0, 0, 0, 1, 0], p)
            .expect_err("type")
            .to_string()
            .contains("0x0d"));
        let huge = encode(&[u32::MAX as usize, 28, 28], &[]);
        assert!(parse(&huge, p).expect_err("huge").to_string().contains("limit"));
    }

    proptest! {
        #[test]
        fn parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse(&bytes, Path::new("fuzz"));
        }
    }
}
