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
    /// A config file is not valid TOML or has an unknown key.
    #[error("invalid config: {origin}: {message}")]
    ConfigSyntax {
        /// Where the text came from (a file name, "preset x").
        origin: String,
        /// The parser's message, with the line when it has one.
        message: String,
    },
    /// No shipped preset has this name.
    #[error("unknown preset {name:?}; known presets: {}", known.join(", "))]
    UnknownPreset {
        /// The name asked for.
        name: String,
        /// The shipped presets.
        known: Vec<&'static str>,
    },
    /// A new run was pointed at a folder that already holds files.
    #[error("run folder {} already exists and is not empty; choose another --out (nothing was overwritten)", .0.display())]
    RunExists(PathBuf),
    /// A folder was used as a run folder but lacks one of its files.
    #[error("{} has no {missing}: {hint}", dir.display())]
    NotARun {
        /// The folder.
        dir: PathBuf,
        /// The run-folder file that is missing.
        missing: &'static str,
        /// What it means and what to do.
        hint: &'static str,
    },
    /// The classifier lacks a parameter (a hand-made weights file).
    #[error("the classifier has no parameter {0:?}")]
    MissingParameter(String),
    /// The garbage offset cannot be calibrated on these validation digits.
    #[error("cannot calibrate a garbage offset on {n} validation images with budget {budget}")]
    Calibration {
        /// Validation images.
        n: usize,
        /// Share of them allowed to go to garbage.
        budget: f64,
    },
    /// Writing or measuring the export failed.
    #[error("export: {0}")]
    Export(#[from] ood_export::Error),
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
