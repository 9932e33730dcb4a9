//! The edge crate's error type: each variant says which file and what to do.

use std::path::PathBuf;

/// Everything that can go wrong in the edge library. A rejected image is a
/// `Verdict::Reject`, never an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading a file or stream failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file (or `-` for stdin, or the device).
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Writing to the serial link (or its file) failed: the link was cut.
    #[error("{}: the link to the display was cut ({source}); the verdicts printed before this error stand, and every frame before the failed one was written whole", path.display())]
    Link {
        /// The device or file the frames went to.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// `manifest.json` is missing, unreadable or inconsistent.
    #[error("{}: {what}", path.display())]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What was wrong and what to do.
        what: String,
    },
    /// A model file is not the one the manifest describes.
    #[error("{}: sha256 {got} does not match the manifest's {expected}: the file is corrupt, belongs to another model or was replaced while it was read (load it again); re-export it with `cargo run -p trainer --release -- export` or restore it from git", path.display())]
    Checksum {
        /// The model file.
        path: PathBuf,
        /// sha256 in the manifest.
        expected: String,
        /// sha256 of the file.
        got: String,
    },
    /// tract could not load or run the model.
    #[error("{}: {what}", path.display())]
    Model {
        /// The model file.
        path: PathBuf,
        /// tract's message and what to do.
        what: String,
    },
    /// An image could not be decoded or is too large.
    #[error("{}: {what}", path.display())]
    Image {
        /// The image file.
        path: PathBuf,
        /// What was wrong.
        what: String,
    },
    /// A raw frame or frame option is inconsistent.
    #[error("frame: {0}")]
    Frame(String),
    /// Loading an evaluation dataset failed.
    #[error(transparent)]
    Data(#[from] ood_data::Error),
}

/// The edge crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Shorthand for an [`Error::Io`] error.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
