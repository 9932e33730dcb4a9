//! The data crate's error type: each variant carries the facts a user needs.

use std::path::PathBuf;

/// Everything that can go wrong while finding, reading or measuring data.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file exists but its content is not what its format promises.
    #[error("{}: {what}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What was wrong, with expected and found values.
        what: String,
    },
    /// A file's sha256 is not the one expected.
    #[error("{}: sha256 mismatch: expected {expected}, got {got} (the file is corrupt or not the right one; delete it and fetch again)", path.display())]
    Checksum {
        /// The file (or the URL it came from).
        path: PathBuf,
        /// Expected digest (hex).
        expected: String,
        /// Actual digest (hex).
        got: String,
    },
    /// A dataset could not be found anywhere, nor fetched.
    #[error("{what} not found; looked in: {searched}. {hint}")]
    NotFound {
        /// Which dataset.
        what: String,
        /// Where we looked, and what we tried.
        searched: String,
        /// What to do about it.
        hint: String,
    },
    /// A download failed.
    #[error("download of {url} failed: {reason}")]
    Download {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// A request is out of range or inconsistent (a split larger than the set...).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The model under evaluation failed.
    #[error("model: {0}")]
    Model(String),
}

/// The data crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Shorthand for an [`Error::Format`] error.
    pub fn format(path: impl Into<PathBuf>, what: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            what: what.into(),
        }
    }

    /// Shorthand for an [`Error::Io`] error.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// An error and its causes on one line, each cause once: a library error
/// that already names its cause in its own message (`path: OS error`) is
/// not followed by that cause again (what the binaries print after
/// `error: `; `{:#}` of an `anyhow::Error` would repeat it).
pub fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let c_text = c.to_string();
        if !text.contains(&c_text) {
            text.push_str(": ");
            text.push_str(&c_text);
        }
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A context layer whose message does not name its cause.
    #[derive(Debug, thiserror::Error)]
    #[error("training stopped")]
    struct Stopped(#[source] Error);

    #[test]
    fn one_line_names_each_cause_once() {
        let io = Error::io("run/.checkpoint.tmp", std::io::Error::from_raw_os_error(27));
        let text = one_line(&Stopped(io));
        assert!(
            text.starts_with("training stopped: run/.checkpoint.tmp: "),
            "{text}"
        );
        assert_eq!(text.matches("os error 27").count(), 1, "{text}");
    }
}
