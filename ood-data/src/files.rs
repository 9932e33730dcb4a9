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
    write_atomic_with(path, |tmp| {
        std::fs::write(tmp, contents.as_ref()).map_err(|e| Error::io(tmp, e))
    })
}

/// Like [`write_atomic`] for writers that want a path (image encoders,
/// safetensors): `write` fills the temporary file `.<name>.tmp` beside
/// `path`, which is then renamed into place. When `write` or the rename
/// fails (a full disk, a read-only folder), the temporary file is removed
/// and the old `path`, if any, is left as it was.
pub fn write_atomic_with<E>(
    path: &Path,
    write: impl FnOnce(&Path) -> std::result::Result<(), E>,
) -> std::result::Result<(), E>
where
    E: From<Error>,
{
    let name = path
        .file_name()
        .ok_or_else(|| Error::Invalid(format!("{} is not a file path", path.display())))?;
    let tmp = path.with_file_name(format!(".{}.tmp", name.to_string_lossy()));
    let done = write(&tmp).and_then(|()| std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e).into()));
    if done.is_err() {
        // best effort: the error that matters is the one returned
        let _ = std::fs::remove_file(&tmp);
    }
    done
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

    #[test]
    fn a_failed_atomic_write_keeps_the_old_file_and_leaves_no_part() -> Result<()> {
        let d = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let p = d.path().join("progress.json");
        write_atomic(&p, "epoch 3")?;
        // a writer that gets half way, then fails (as on a full disk)
        let e = write_atomic_with(&p, |tmp| -> Result<()> {
            std::fs::write(tmp, "epo").map_err(|e| Error::io(tmp, e))?;
            Err(Error::io(tmp, std::io::Error::from_raw_os_error(28)))
        })
        .expect_err("fails");
        assert!(e.to_string().contains(".progress.json.tmp"), "{e}");
        assert_eq!(
            std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?,
            "epoch 3"
        );
        let names: Vec<String> = std::fs::read_dir(d.path())
            .map_err(|e| Error::io(d.path(), e))?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<std::io::Result<_>>()
            .map_err(|e| Error::io(d.path(), e))?;
        assert_eq!(names, ["progress.json"], "the part was removed");
        Ok(())
    }
}
