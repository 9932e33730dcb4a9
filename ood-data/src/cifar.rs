//! CIFAR-10 binary version: `test_batch.bin` (10,000 records of one label byte
//! and 3,072 bytes of 32x32 R, G, B planes), or the official
//! `cifar-10-binary.tar.gz` containing it. Images go through
//! [`super::to_contract`] (grayscale, 28x28), like image folders.

use super::Dataset;
use crate::error::{Error, Result};
use std::io::Read;
use std::path::Path;

const RECORD: usize = 1 + 3 * 1024;
/// Member of the official archive holding the test split.
pub const TEST_MEMBER: &str = "cifar-10-batches-bin/test_batch.bin";

/// Parses one binary batch.
pub fn parse_batch(bytes: &[u8], path: &Path) -> Result<Dataset> {
    if bytes.is_empty() || bytes.len() % RECORD != 0 {
        return Err(Error::format(
            path,
            format!(
                "{} bytes is not a whole number of {RECORD}-byte CIFAR-10 records",
                bytes.len()
            ),
        ));
    }
    let mut ds = Dataset {
        name: "cifar10".into(),
        ..Default::default()
    };
    for rec in bytes.chunks(RECORD) {
        if rec[0] > 9 {
            return Err(Error::format(
                path,
                format!("label {} out of range 0..=9: not a CIFAR-10 batch", rec[0]),
            ));
        }
        let px = &rec[1..];
        let rgb: Vec<u8> = (0..1024)
            .flat_map(|i| [px[i], px[1024 + i], px[2048 + i]])
            .collect();
        let img = image::RgbImage::from_raw(32, 32, rgb).ok_or_else(|| Error::format(path, "record size"))?;
        ds.push(&super::to_contract(&image::DynamicImage::ImageRgb8(img)), rec[0]);
    }
    Ok(ds)
}

/// Reads `test_batch.bin` or the test batch inside `cifar-10-binary.tar.gz`.
pub fn read(path: &Path) -> Result<Dataset> {
    let name = path.to_string_lossy();
    if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
        for entry in ar
            .entries()
            .map_err(|e| Error::format(path, format!("not a tar.gz archive: {e}")))?
        {
            let mut entry = entry.map_err(|e| Error::format(path, format!("corrupt archive: {e}")))?;
            let member = entry
                .path()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            if member == TEST_MEMBER {
                let mut buf = Vec::new();
                entry
                    .read_to_end(&mut buf)
                    .map_err(|e| Error::format(path, format!("corrupt archive member {member}: {e}")))?;
                return parse_batch(&buf, path);
            }
        }
        Err(Error::format(path, format!("archive has no {TEST_MEMBER}")))
    } else {
        parse_batch(&std::fs::read(path).map_err(|e| Error::io(path, e))?, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_batch_and_archive() -> Result<()> {
        let mut bytes = Vec::new();
        for label in [3u8, 7] {
            bytes.push(label);
            bytes.extend(std::iter::repeat_n(255u8, 1024)); // red plane
            bytes.extend(std::iter::repeat_n(0u8, 2048));
        }
        let ds = parse_batch(&bytes, Path::new("b.bin"))?;
        assert_eq!(ds.labels, vec![3, 7]);
        // pure red has luma ~0.2126*255 (Rec. 709) or ~0.299*255 (Rec. 601)
        assert!((50..80).contains(&ds.images[0]), "{}", ds.images[0]);

        let d = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let tgz = d.path().join("cifar-10-binary.tar.gz");
        let f = std::fs::File::create(&tgz).map_err(|e| Error::io(&tgz, e))?;
        let mut b = tar::Builder::new(flate2::write::GzEncoder::new(f, flate2::Compression::fast()));
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_cksum();
        b.append_data(&mut h, TEST_MEMBER, &bytes[..])
            .map_err(|e| Error::io(&tgz, e))?;
        b.into_inner()
            .and_then(|g| g.finish())
            .map_err(|e| Error::io(&tgz, e))?;
        assert_eq!(read(&tgz)?, ds);
        assert!(parse_batch(&bytes[..100], Path::new("short.bin")).is_err());
        Ok(())
    }
}
