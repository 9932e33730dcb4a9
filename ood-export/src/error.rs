//! The export's error type.

/// Everything that can go wrong while writing or measuring an export.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading data or writing a file failed.
    #[error(transparent)]
    Data(#[from] ood_data::Error),
    /// The edge runtime refused or failed on an exported file.
    #[error("measuring the exported file through the edge runtime: {0}")]
    Edge(#[from] edge::Error),
    /// A weight is missing, or its shape does not fit the architecture.
    #[error("weights: {name}: {what}")]
    Weights {
        /// The parameter (`conv1.weight`...).
        name: String,
        /// What was wrong, with the expected and found values.
        what: String,
    },
    /// An int8 form was asked for without the calibrated ranges it needs.
    #[error("the {form} form needs {missing} (calibrate the activations first)")]
    MissingQuantisation {
        /// The form (`qdq`, `integer`, `qlinear`).
        form: &'static str,
        /// What it needs.
        missing: &'static str,
    },
    /// A calibration set was empty, so no threshold can be set.
    #[error("cannot calibrate thresholds on an empty {0}")]
    EmptyCalibration(&'static str),
    /// A file the export writes was not among those written (a bug).
    #[error("the export wrote no {0}")]
    NotWritten(&'static str),
}

/// The export's result type.
pub type Result<T> = std::result::Result<T, Error>;
