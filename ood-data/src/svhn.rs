//! SVHN cropped digits (`test_32x32.mat`, MATLAB level-5 MAT-file).
//!
//! The file holds `X`, a `32 x 32 x 3 x N` uint8 array (column-major: row,
//! column, channel, image), and `y`, an `N x 1` array of labels 1..=10 where 10
//! stands for the digit 0. This reader implements the parts of the level-5
//! format those files use: little- or big-endian files, `miMATRIX` elements,
//! `miCOMPRESSED` (zlib) elements, small-element tags, and numeric data stored
//! in any of MATLAB's integer or float storage types. Images go through
//! [`super::to_contract`] (grayscale, 28x28).

use super::Dataset;
use crate::error::{Error, Result};
use std::io::Read;
use std::path::Path;

const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;
/// Largest decompressed element we accept.
const MAX_ELEMENT: u64 = 1 << 30;

/// A numeric MATLAB array, converted to f64.
#[derive(Debug, Clone, PartialEq)]
pub struct MatArray {
    /// Variable name.
    pub name: String,
    /// Dimensions (column-major).
    pub dims: Vec<usize>,
    /// Values in column-major order.
    pub data: Vec<f64>,
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
    le: bool,
    path: &'a Path,
}

impl<'a> Cursor<'a> {
    fn err(&self, what: impl Into<String>) -> Error {
        Error::format(
            self.path,
            format!("MAT-file: {} (at byte {})", what.into(), self.pos),
        )
    }

    fn u32_at(&self, at: usize) -> Result<u32> {
        let s = self
            .b
            .get(at..at + 4)
            .ok_or_else(|| self.err("unexpected end of data"))?;
        let a = [s[0], s[1], s[2], s[3]];
        Ok(if self.le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        })
    }

    /// Reads one element tag and returns (type, payload slice), advancing past padding.
    fn element(&mut self) -> Result<(u32, &'a [u8])> {
        let first = self.u32_at(self.pos)?;
        if first >> 16 != 0 {
            // small data element: 2-byte size, 2-byte type, 4 bytes of data
            let (ty, n) = (first & 0xffff, (first >> 16) as usize);
            if n > 4 {
                return Err(self.err(format!("small element of {n} bytes (at most 4)")));
            }
            let data = self
                .b
                .get(self.pos + 4..self.pos + 4 + n)
                .ok_or_else(|| self.err("unexpected end of data"))?;
            self.pos += 8;
            return Ok((ty, data));
        }
        let n = self.u32_at(self.pos + 4)? as usize;
        let start = self.pos + 8;
        let data = self
            .b
            .get(start..start.saturating_add(n))
            .ok_or_else(|| self.err(format!("element of {n} bytes runs past the end of the file")))?;
        self.pos = if first == MI_COMPRESSED {
            start + n
        } else {
            start + n.div_ceil(8) * 8
        };
        Ok((first, data))
    }
}

fn numeric(ty: u32, d: &[u8], le: bool, path: &Path) -> Result<Vec<f64>> {
    macro_rules! conv {
        ($t:ty, $n:expr) => {
            d.chunks_exact($n)
                .map(|c| {
                    let a: [u8; $n] = c.try_into().unwrap_or([0; $n]);
                    (if le {
                        <$t>::from_le_bytes(a)
                    } else {
                        <$t>::from_be_bytes(a)
                    }) as f64
                })
                .collect()
        };
    }
    Ok(match ty {
        1 => d.iter().map(|&v| f64::from(v as i8)).collect(),
        2 => d.iter().map(|&v| f64::from(v)).collect(),
        3 => conv!(i16, 2),
        4 => conv!(u16, 2),
        5 => conv!(i32, 4),
        6 => conv!(u32, 4),
        7 => conv!(f32, 4),
        9 => conv!(f64, 8),
        12 => conv!(i64, 8),
        13 => conv!(u64, 8),
        t => {
            return Err(Error::format(
                path,
                format!("MAT-file: unsupported numeric storage type {t}"),
            ))
        }
    })
}

fn parse_matrix(payload: &[u8], le: bool, path: &Path) -> Result<Option<MatArray>> {
    let mut c = Cursor {
        b: payload,
        pos: 0,
        le,
        path,
    };
    let (_, flags) = c.element()?;
    if flags.len() < 4 {
        return Err(c.err("array flags too short"));
    }
    let class = if le { flags[0] } else { flags[3] };
    if !(6..=13).contains(&class) {
        return Ok(None); // cell, struct, char, sparse...: not needed here
    }
    let (_, dims_raw) = c.element()?;
    let dims: Vec<usize> = numeric(5, dims_raw, le, path)?
        .into_iter()
        .map(|v| v as usize)
        .collect();
    let (_, name) = c.element()?;
    let (ty, re) = c.element()?;
    let data = numeric(ty, re, le, path)?;
    let expect = dims.iter().product::<usize>();
    if data.len() != expect {
        return Err(c.err(format!(
            "array has {} values, its dimensions {dims:?} need {expect}",
            data.len()
        )));
    }
    Ok(Some(MatArray {
        name: String::from_utf8_lossy(name).into_owned(),
        dims,
        data,
    }))
}

/// Parses all numeric arrays of a level-5 MAT-file.
pub fn parse_mat(bytes: &[u8], path: &Path) -> Result<Vec<MatArray>> {
    if bytes.len() < 128 {
        return Err(Error::format(
            path,
            "not a MAT-file: shorter than the 128-byte header",
        ));
    }
    let le = match &bytes[126..128] {
        b"IM" => true,
        b"MI" => false,
        _ => {
            return Err(Error::format(
                path,
                "not a level-5 MAT-file (no endian indicator; v7.3 HDF5 files are not supported)",
            ))
        }
    };
    let mut c = Cursor {
        b: bytes,
        pos: 128,
        le,
        path,
    };
    let mut out = Vec::new();
    while c.pos + 8 <= bytes.len() {
        let (ty, data) = c.element()?;
        let parsed = match ty {
            MI_MATRIX => parse_matrix(data, le, path)?,
            MI_COMPRESSED => {
                let mut inner = Vec::new();
                flate2::read::ZlibDecoder::new(data)
                    .take(MAX_ELEMENT)
                    .read_to_end(&mut inner)
                    .map_err(|e| Error::format(path, format!("MAT-file: corrupt compressed element: {e}")))?;
                let mut ic = Cursor {
                    b: &inner,
                    pos: 0,
                    le,
                    path,
                };
                match ic.element()? {
                    (MI_MATRIX, d) => parse_matrix(d, le, path)?,
                    _ => None,
                }
            }
            _ => None,
        };
        out.extend(parsed);
    }
    Ok(out)
}

/// Reads an SVHN cropped-digits file as a dataset (labels 0..=9).
pub fn read_mat(path: &Path) -> Result<Dataset> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode_mat(&bytes, path)
}

/// An SVHN cropped-digits MAT-file's bytes as a dataset, as [`read_mat`]
/// reads a file; `path` is only used in error messages.
pub fn decode_mat(bytes: &[u8], path: &Path) -> Result<Dataset> {
    let arrays = parse_mat(bytes, path)?;
    let get = |n: &str| {
        arrays
            .iter()
            .find(|a| a.name == n)
            .ok_or_else(|| Error::format(path, format!("no variable {n:?} (expected SVHN's X and y)")))
    };
    let (x, y) = (get("X")?, get("y")?);
    let [h, w, 3, n] = x.dims[..] else {
        return Err(Error::format(
            path,
            format!("X has dimensions {:?}, expected [h, w, 3, n]", x.dims),
        ));
    };
    if y.data.len() != n {
        return Err(Error::format(
            path,
            format!("{} labels for {n} images", y.data.len()),
        ));
    }
    let mut ds = Dataset {
        name: "svhn".into(),
        ..Default::default()
    };
    let plane = h * w;
    for i in 0..n {
        let base = i * 3 * plane;
        let mut rgb = Vec::with_capacity(3 * plane);
        for r in 0..h {
            for col in 0..w {
                for ch in 0..3 {
                    rgb.push(x.data[base + ch * plane + col * h + r].clamp(0.0, 255.0) as u8);
                }
            }
        }
        let img = image::RgbImage::from_raw(w as u32, h as u32, rgb)
            .ok_or_else(|| Error::format(path, "image size"))?;
        let label = (y.data[i] as i64).rem_euclid(10) as u8; // SVHN: 10 means digit 0
        ds.push(&super::to_contract(&image::DynamicImage::ImageRgb8(img)), label);
    }
    Ok(ds)
}

/// Writes a little-endian level-5 MAT-file with uint8 `X` and double `y`
/// (stored as `miUINT8`, as MATLAB does for small integers), optionally
/// compressed. For tests and fixtures.
pub fn write_svhn_like(x_dims: [usize; 4], x: &[u8], y: &[u8], compress: bool) -> Vec<u8> {
    fn el(ty: u32, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&ty.to_le_bytes());
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(data);
        while v.len() % 8 != 0 {
            v.push(0);
        }
        v
    }
    fn matrix(class: u8, dims: &[usize], name: &str, data: &[u8]) -> Vec<u8> {
        let mut body = el(6, &[class, 0, 0, 0, 0, 0, 0, 0]);
        let d: Vec<u8> = dims.iter().flat_map(|&v| (v as i32).to_le_bytes()).collect();
        body.extend(el(5, &d));
        body.extend(el(1, name.as_bytes()));
        body.extend(el(2, data));
        el(MI_MATRIX, &body)
    }
    let mut out = vec![b' '; 116];
    out[..22].copy_from_slice(b"MATLAB 5.0 MAT-file, t");
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&[0x00, 0x01]);
    out.extend_from_slice(b"IM");
    for m in [matrix(9, &x_dims, "X", x), matrix(6, &[y.len(), 1], "y", y)] {
        if compress {
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut z, &m).expect("in-memory write");
            let z = z.finish().expect("in-memory write");
            out.extend_from_slice(&MI_COMPRESSED.to_le_bytes());
            out.extend_from_slice(&(z.len() as u32).to_le_bytes());
            out.extend(z);
        } else {
            out.extend(m);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_generated_svhn_files() -> Result<()> {
        let d = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        // 2 images of 32x32x3; image 0 all 200, image 1 has a bright row 0
        let (h, w, n) = (32, 32, 2);
        let mut x = vec![0u8; h * w * 3 * n];
        x[..h * w * 3].fill(200);
        for ch in 0..3 {
            for col in 0..w {
                x[h * w * 3 + ch * h * w + col * h] = 255; // row 0 of image 1
            }
        }
        for compress in [false, true] {
            let p = d.path().join(format!("test_32x32_{compress}.mat"));
            std::fs::write(&p, write_svhn_like([h, w, 3, n], &x, &[10, 3], compress))
                .map_err(|e| Error::io(&p, e))?;
            let ds = read_mat(&p)?;
            assert_eq!(ds.labels, vec![0, 3]);
            assert!(ds.image(0).iter().all(|&v| v == 200));
            let img1 = ds.image(1);
            // the bright row lands at the top after 32 -> 28 resize; the bottom stays dark
            assert!(img1[..28].iter().all(|&v| v > 100), "{:?}", &img1[..28]);
            assert!(img1[27 * 28..].iter().all(|&v| v == 0));
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn mat_parser_never_panics(tail in prop::collection::vec(any::<u8>(), 0..200)) {
            let mut bytes = vec![b' '; 126];
            bytes.extend_from_slice(b"IM");
            bytes.extend(tail);
            let _ = parse_mat(&bytes, Path::new("fuzz.mat"));
        }
    }
}
