//! Image folders: PNG or JPEG files of any size, gray/RGB/RGBA.
//!
//! Either one sub-folder per class (labels = sub-folder index in sorted order;
//! files directly in the root, such as a README or checksum list, are then
//! ignored), or a flat folder of images (label 0). Hidden files are skipped. A
//! file that is not a decodable PNG/JPEG, an empty folder, or an image over
//! [`MAX_SIDE`] pixels a side is an error naming the file.

use super::Dataset;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Largest accepted image side, in pixels.
pub const MAX_SIDE: u32 = 8192;

fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        out.push(entry.path());
    }
    out.sort();
    Ok(out)
}

/// Decodes one image file to the input contract.
pub fn read_image(path: &Path) -> Result<Vec<u8>> {
    let reader = image::ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?;
    decode(reader, path)
}

/// Decodes image bytes (PNG or JPEG) to the input contract, as
/// [`read_image`] does a file; `path` is only used in error messages.
pub fn decode_image(bytes: &[u8], path: &Path) -> Result<Vec<u8>> {
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?;
    decode(reader, path)
}

fn decode<R: std::io::BufRead + std::io::Seek>(
    mut reader: image::ImageReader<R>,
    path: &Path,
) -> Result<Vec<u8>> {
    match reader.format() {
        Some(image::ImageFormat::Png | image::ImageFormat::Jpeg) => {}
        other => {
            return Err(Error::format(
                path,
                format!("not a PNG or JPEG image (detected format: {other:?}); remove it from the folder"),
            ))
        }
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(512 << 20);
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| Error::format(path, format!("cannot decode image: {e}")))?;
    Ok(super::to_contract(&img))
}

/// Reads a folder as described in the module docs.
pub fn read_folder(root: &Path) -> Result<Dataset> {
    let entries = list(root)?;
    let classes: Vec<&PathBuf> = entries.iter().filter(|p| p.is_dir()).collect();
    let mut files: Vec<(PathBuf, u8)> = Vec::new();
    if classes.is_empty() {
        files.extend(entries.iter().filter(|p| p.is_file()).map(|p| (p.clone(), 0)));
    } else {
        if classes.len() > 256 {
            return Err(Error::format(
                root,
                format!("{} class folders, at most 256 supported", classes.len()),
            ));
        }
        for (label, dir) in classes.iter().enumerate() {
            for f in list(dir)? {
                if f.is_dir() {
                    return Err(Error::format(
                        &f,
                        "nested folder inside a class folder; expected only image files",
                    ));
                }
                files.push((f, label as u8));
            }
        }
    }
    if files.is_empty() {
        return Err(Error::format(
            root,
            "no image files found (expected PNG/JPEG files, or one sub-folder of them per class)",
        ));
    }
    let mut ds = Dataset {
        name: root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        ..Default::default()
    };
    for (f, label) in files {
        ds.push(&read_image(&f)?, label);
    }
    Ok(ds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp() -> tempfile::TempDir {
        tempfile::tempdir().expect("tempdir")
    }

    #[test]
    fn reads_class_folders_of_mixed_formats() -> Result<()> {
        let d = tmp();
        for (cls, n) in [("a", 2), ("b", 1)] {
            std::fs::create_dir(d.path().join(cls)).map_err(|e| Error::io(d.path(), e))?;
            for i in 0..n {
                let p = d.path().join(cls).join(format!("{i}.png"));
                image::RgbaImage::from_pixel(40, 30, image::Rgba([10, 20, 30, 255]))
                    .save(&p)
                    .map_err(|e| Error::format(&p, e.to_string()))?;
            }
        }
        let p = d.path().join("b").join("x.jpg");
        image::RgbImage::from_pixel(32, 32, image::Rgb([200, 200, 200]))
            .save(&p)
            .map_err(|e| Error::format(&p, e.to_string()))?;
        std::fs::write(d.path().join("README.md"), "ignored at the root")
            .map_err(|e| Error::io(d.path(), e))?;
        let ds = read_folder(d.path())?;
        assert_eq!(ds.labels, vec![0, 0, 1, 1]);
        assert_eq!(ds.images.len(), 4 * ood_core::IMG_PIXELS);
        Ok(())
    }

    #[test]
    fn non_image_and_empty_folders_are_errors_naming_the_file() {
        let d = tmp();
        assert!(read_folder(d.path())
            .expect_err("empty")
            .to_string()
            .contains("no image files"));
        std::fs::write(d.path().join("notes.txt"), "hello").expect("write");
        let msg = read_folder(d.path()).expect_err("text").to_string();
        assert!(
            msg.contains("notes.txt") && msg.contains("not a PNG or JPEG"),
            "{msg}"
        );
        std::fs::write(d.path().join("notes.txt"), b"\x89PNG\r\n\x1a\nbroken").expect("write");
        let msg = read_folder(d.path()).expect_err("corrupt").to_string();
        assert!(msg.contains("notes.txt") && msg.contains("decode"), "{msg}");
    }
}
