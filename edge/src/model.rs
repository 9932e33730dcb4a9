//! A deployable model: `manifest.json` + the ONNX file it names, verified
//! (schema version, sha256, input/output shapes) before anything runs.

use crate::error::{Error, Result};
use crate::runtime::Network;
use ood_core::manifest::{Manifest, ModelFile};
use ood_core::{input, Policy, Verdict, IMG_PIXELS, NUM_CLASSES};
use std::path::{Path, PathBuf};

/// The manifest's file name inside a model folder.
pub const MANIFEST: &str = "manifest.json";

/// The model folder used when none is named: `models/default` in the current
/// folder, else the one shipped in this workspace.
pub fn default_dir() -> PathBuf {
    let here = PathBuf::from("models/default");
    if here.is_dir() {
        here
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/default")
    }
}

/// Largest ONNX file we read (the shipped int8 model is ~80 KB).
const MAX_MODEL_BYTES: u64 = 64 << 20;

/// A loaded, verified model and the policy it decides with.
#[derive(Debug, Clone)]
pub struct Model {
    /// The manifest it came with.
    pub manifest: Manifest,
    /// The manifest entry of the file that runs.
    pub file: ModelFile,
    /// The decision rule (score + threshold).
    pub policy: Policy,
    network: Network,
}

/// One classified input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Classified {
    /// Raw logits, 11 classes.
    pub logits: [f32; NUM_CLASSES],
    /// The decision.
    pub verdict: Verdict,
}

/// sha256 of `bytes`, hex (the one helper, from `ood-data`).
pub use ood_data::files::sha256_hex;

/// Reads and parses `dir/manifest.json` (or `dir` itself when it is a file).
pub fn read_manifest(dir: &Path) -> Result<(Manifest, PathBuf)> {
    let path = if dir.is_file() {
        dir.to_path_buf()
    } else {
        dir.join(MANIFEST)
    };
    let text = std::fs::read_to_string(&path).map_err(|e| Error::Manifest {
        path: path.clone(),
        what: format!(
            "cannot read it ({e}); a model folder holds manifest.json and the ONNX files written by `cargo run -p trainer --release -- export`"
        ),
    })?;
    Ok((parse_manifest(&text, &path)?, path))
}

/// Parses manifest text: its version first (a manifest of another schema
/// is refused by its version, not by a missing field), then the whole.
/// `path` is only used in error messages.
pub fn parse_manifest(text: &str, path: &Path) -> Result<Manifest> {
    #[derive(serde::Deserialize)]
    struct Versioned {
        version: u32,
    }
    let bad = |what: String| Error::Manifest {
        path: path.to_path_buf(),
        what,
    };
    let v: Versioned = serde_json::from_str(text).map_err(|e| bad(format!("not a valid manifest: {e}")))?;
    ood_core::manifest::check_version(v.version).map_err(|e| bad(e.to_string()))?;
    serde_json::from_str(text).map_err(|e| bad(format!("not a valid manifest: {e}")))
}

/// Reads a model file, refusing one larger than [`MAX_MODEL_BYTES`].
fn read_limited(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut bytes = Vec::new();
    f.take(MAX_MODEL_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > MAX_MODEL_BYTES {
        return Err(Error::Model {
            path: path.to_path_buf(),
            what: format!(
                "larger than any model this runtime accepts ({MAX_MODEL_BYTES} bytes): not a model file of this project"
            ),
        });
    }
    Ok(bytes)
}

impl Model {
    /// Loads the model in folder `dir`: `file` (a file name listed in the
    /// manifest), or when `None` the file the manifest names for this CPU
    /// architecture ([`Manifest::file_for`]: f32 on x86-64, the int8 default
    /// elsewhere, for the shipped model); that file's threshold keeping
    /// `keep` of the validation digits (the manifest's default when `None`).
    pub fn load(dir: &Path, file: Option<&str>, keep: Option<f32>) -> Result<Self> {
        let (manifest, mpath) = read_manifest(dir)?;
        let base = mpath.parent().unwrap_or(Path::new(".")).to_path_buf();
        let bad = |what: String| Error::Manifest {
            path: mpath.clone(),
            what,
        };
        // the file measured fastest on this CPU architecture, else the default
        let name = file
            .unwrap_or_else(|| manifest.file_for(std::env::consts::ARCH))
            .to_string();
        let entry = manifest.model(&name).cloned().ok_or_else(|| {
            let listed: Vec<&str> = manifest.models.iter().map(|m| m.file.as_str()).collect();
            bad(format!(
                "lists no model file {name:?} (it lists {})",
                listed.join(", ")
            ))
        })?;
        let policy = manifest.decision.policy(&entry, keep).ok_or_else(|| {
            let keeps: Vec<String> = entry.thresholds.iter().map(|t| t.keep.to_string()).collect();
            bad(format!(
                "has no threshold calibrated for {name} at keep = {} (available: {})",
                keep.unwrap_or(manifest.decision.default_keep),
                keeps.join(", ")
            ))
        })?;
        if manifest.input != input::InputContract::default() {
            return Err(bad(format!(
                "input contract {:?} differs from this runtime's {:?}: rebuild the edge from the same source as the model",
                manifest.input,
                input::InputContract::default()
            )));
        }
        let path = base.join(&entry.file);
        // read once, at most the limit (the file may grow while it is read);
        // the checksum and tract then see the same bytes, so a file replaced
        // after this line changes nothing in the loaded model
        let bytes = read_limited(&path)?;
        let got = sha256_hex(&bytes);
        if got != entry.sha256 {
            return Err(Error::Checksum {
                path,
                expected: entry.sha256.clone(),
                got,
            });
        }
        let network = Network::load(&bytes, &path)?;
        for (what, declared, found) in [
            ("input", &entry.input_shape, network.input_shape()),
            ("output", &entry.output_shape, network.output_shape()),
        ] {
            if declared.as_slice() != found {
                return Err(Error::Model {
                    path,
                    what: format!(
                        "{what} shape {found:?} does not match the manifest's {declared:?}: the manifest belongs to another model"
                    ),
                });
            }
        }
        Ok(Self {
            manifest,
            file: entry,
            policy,
            network,
        })
    }

    /// The underlying network (logits only, no decision).
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// Logits of raw 28x28 images in the input contract (`n * 784` bytes).
    pub fn logits(&self, pixels: &[u8]) -> Result<Vec<[f32; NUM_CLASSES]>> {
        let x: Vec<f32> = pixels.iter().map(|&v| input::normalize_u8(v)).collect();
        self.network.logits(&x)
    }

    /// Logits and verdict of each raw 28x28 image.
    pub fn classify(&self, pixels: &[u8]) -> Result<Vec<Classified>> {
        debug_assert_eq!(pixels.len() % IMG_PIXELS, 0);
        Ok(self
            .logits(pixels)?
            .into_iter()
            .map(|logits| Classified {
                logits,
                verdict: self.policy.decide(&logits),
            })
            .collect())
    }
}
