//! File helpers every crate that writes artifacts shares: the sha256 that
//! manifests and checksums use, and the atomic write that never leaves a
//! half-written file behind.

use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::path::Path;

/// Lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `contents` to `path` atomically: into `.<name>.tmp` beside it, then
/// renamed into place, so a reader sees the old file or the new one, never
/// a part.
pub fn write_atomic(path: &Path, contents: impl AsRef<[u8]>) -> Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::Invalid(format!("{} is not a file path", path.display())))?;
    let tmp = path.with_file_name(format!(".{}.tmp", name.to_string_lossy()));
    std::fs::write(&tmp, contents).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_abc_and_atomic_replace() -> Result<()> {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let d = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let p = d.path().join("a.txt");
        write_atomic(&p, "one")?;
        write_atomic(&p, "two")?;
        assert_eq!(std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?, "two");
        let left: Vec<_> = std::fs::read_dir(d.path())
            .map_err(|e| Error::io(d.path(), e))?
            .collect();
        assert_eq!(left.len(), 1, "no temporary file left behind");
        assert!(write_atomic(Path::new("/"), "x").is_err());
        Ok(())
    }
}
