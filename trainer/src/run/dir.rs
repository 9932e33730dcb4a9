//! [`RunDir`]: a run folder and every file name in it. New runs never reuse
//! a folder that holds files; every file is written atomically; a finished
//! run is published (copied) to a model folder such as `models/default`.

use crate::config::TrainConfig;
use crate::error::{Error, Result};
use crate::report::plots;
use std::path::{Path, PathBuf};

/// The resolved config of the run.
pub const CONFIG: &str = "config.toml";
/// The trained (and calibrated) classifier weights.
pub const CLASSIFIER: &str = "classifier.safetensors";
/// Weights, optimiser states and generated garbage after the last finished
/// epoch (only for `--resume`).
pub const CHECKPOINT: &str = "checkpoint.safetensors";
/// The resumable log (`run::Progress`).
pub const PROGRESS: &str = "progress.json";
/// The whole report as JSON.
pub const REPORT_JSON: &str = "report.json";
/// The whole report as Markdown.
pub const REPORT_MD: &str = "report.md";
/// The final evaluation alone.
pub const EVAL_JSON: &str = "eval.json";
/// Provenance and summary (`run::RunInfo`).
pub const RUN_JSON: &str = "run.json";

/// Files of a finished run that [`publish`] copies (every `*.png` too; no
/// checkpoint, which is only for resuming).
pub const PUBLISHED: [&str; 7] = [
    CONFIG,
    CLASSIFIER,
    REPORT_JSON,
    REPORT_MD,
    EVAL_JSON,
    RUN_JSON,
    plots::CURVES,
];

/// A run folder.
#[derive(Debug, Clone)]
pub struct RunDir {
    path: PathBuf,
}

/// Refuses an existing non-empty folder (checked before any work starts).
pub fn check_new(dir: &Path) -> Result<()> {
    if dir.exists()
        && std::fs::read_dir(dir)
            .map_err(|e| Error::io(dir, e))?
            .next()
            .is_some()
    {
        return Err(Error::RunExists(dir.to_path_buf()));
    }
    Ok(())
}

impl RunDir {
    /// Creates `path`, refusing to reuse an existing non-empty folder.
    pub fn create(path: &Path) -> Result<Self> {
        check_new(path)?;
        std::fs::create_dir_all(path).map_err(|e| Error::io(path, e))?;
        Ok(Self::at(path))
    }

    /// An existing run folder with a checkpoint to resume from.
    pub fn resumable(path: &Path) -> Result<Self> {
        if !path.join(PROGRESS).is_file() {
            return Err(Error::NotARun {
                dir: path.to_path_buf(),
                missing: PROGRESS,
                hint: "not a run folder with a checkpoint (nothing to resume)",
            });
        }
        Ok(Self::at(path))
    }

    /// An existing folder, as it is (for reading a finished run).
    pub fn at(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
        }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `name` inside the folder.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes `name` atomically.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> Result<()> {
        Ok(ood_data::write_atomic(&self.file(name), contents)?)
    }

    /// Writes `name` as pretty JSON, atomically.
    pub fn write_json<T: serde::Serialize>(&self, name: &str, v: &T) -> Result<()> {
        let text = serde_json::to_string_pretty(v)
            .map_err(|e| Error::format(self.file(name), format!("cannot serialise: {e}")))?;
        self.write(name, text)
    }

    /// Reads `name` as JSON of type `T`.
    pub fn read_json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T> {
        let path = self.file(name);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::format(&path, format!("corrupt {name}: {e}")))
    }

    /// The run's own `config.toml`.
    pub fn config(&self) -> Result<TrainConfig> {
        let path = self.file(CONFIG);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        TrainConfig::from_toml(&text, &path.display().to_string())
    }
}

/// Copies a finished run's model, report, plots and (when present) export
/// into `dest` (e.g. `models/default`), refusing to overwrite a non-empty
/// folder. Returns the files written.
pub fn publish(run_dir: &Path, dest: &Path) -> Result<Vec<PathBuf>> {
    if !run_dir.join(REPORT_JSON).is_file() {
        return Err(Error::NotARun {
            dir: run_dir.to_path_buf(),
            missing: REPORT_JSON,
            hint: "not a finished run (resume it first)",
        });
    }
    RunDir::create(dest)?;
    let mut names: Vec<String> = PUBLISHED.iter().map(|s| s.to_string()).collect();
    names.extend(
        ood_export::FILES
            .iter()
            .filter(|n| run_dir.join(n).is_file())
            .map(|s| s.to_string()),
    );
    for entry in std::fs::read_dir(run_dir).map_err(|e| Error::io(run_dir, e))? {
        let name = entry
            .map_err(|e| Error::io(run_dir, e))?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name.ends_with(".png") && !names.contains(&name) {
            names.push(name);
        }
    }
    names.sort();
    let mut out = Vec::new();
    for n in names {
        let (src, dst) = (run_dir.join(&n), dest.join(&n));
        std::fs::copy(&src, &dst).map_err(|e| Error::io(&src, e))?;
        out.push(dst);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn existing_run_folder_is_never_reused() -> Result<()> {
        let d = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        std::fs::write(d.path().join("keep.txt"), "precious").map_err(|e| Error::io(d.path(), e))?;
        let e = RunDir::create(d.path()).expect_err("non-empty");
        assert!(e.to_string().contains("nothing was overwritten"));
        assert!(matches!(e, Error::RunExists(_)));
        let fresh = d.path().join("new");
        let run = RunDir::create(&fresh)?;
        assert!(fresh.is_dir());
        run.write_json(RUN_JSON, &[1, 2])?;
        assert_eq!(run.read_json::<Vec<u8>>(RUN_JSON)?, [1, 2]);
        let e = RunDir::resumable(&fresh).expect_err("no progress");
        assert!(e.to_string().contains("nothing to resume"), "{e}");
        let e = publish(&fresh, &d.path().join("pub")).expect_err("unfinished");
        assert!(e.to_string().contains("not a finished run"), "{e}");
        Ok(())
    }
}
