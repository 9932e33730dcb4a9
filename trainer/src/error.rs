//! The trainer's error type: each variant carries the facts a user needs.

use std::path::PathBuf;

/// Everything that can go wrong in the trainer library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written, or its content is not what its
    /// format promises (`ood_data::Error::Io` / `Format`), or finding,
    /// reading or measuring data failed.
    #[error(transparent)]
    Data(#[from] ood_data::Error),
    /// A configuration value is out of range or inconsistent.
    #[error("invalid config: {0}")]
    Config(String),
    /// A tensor operation failed (shape mismatch, device error...).
    #[error("tensor error in {op}: {source}")]
    Tensor {
        /// What we were doing.
        op: &'static str,
        /// candle's error.
        source: candle_core::Error,
    },
}

/// The trainer's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A file whose content is not what its format promises.
    pub fn format(path: impl Into<PathBuf>, what: impl Into<String>) -> Self {
        Error::Data(ood_data::Error::format(path, what))
    }

    /// Reading or writing a file failed.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Data(ood_data::Error::io(path, source))
    }
}

/// A trainer error met inside `ood-data`'s evaluation (the model failed).
impl From<Error> for ood_data::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Data(d) => d,
            other => ood_data::Error::Model(other.to_string()),
        }
    }
}

/// Attaches an operation name to candle results.
pub(crate) trait TensorContext<T> {
    /// Wraps a candle error with the operation it happened in.
    fn op(self, op: &'static str) -> Result<T>;
}

impl<T> TensorContext<T> for candle_core::Result<T> {
    fn op(self, op: &'static str) -> Result<T> {
        self.map_err(|source| Error::Tensor { op, source })
    }
}
