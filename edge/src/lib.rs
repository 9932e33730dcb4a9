//! `edge`: the runtime that decides, on a Raspberry Pi, whether what a camera
//! sees is a digit or garbage.
//!
//! - **Purpose**: image or camera frame -> 28x28 in the input contract
//!   ([`preprocess`]) -> tract ([`runtime`], the only module that uses tract)
//!   -> `ood_core` score -> `ood_core::Verdict`.
//! - **Inputs**: a model folder (`manifest.json` + ONNX files written by the
//!   trainer's export), image files or folders, raw frames on stdin, a V4L2
//!   camera.
//! - **Outputs**: verdicts (table or JSON lines), `ood_core::wire` frames for
//!   the display ([`link`]), evaluation reports.
//! - **Never**: candle, the trainer.
//!
//! Load a model folder and classify one image (any size; dark ink on light
//! paper, as a scan delivers it, or MNIST's light on dark):
//!
//! ```
//! use edge::model::{default_dir, Model};
//! use ood_core::Verdict;
//!
//! // the shipped model: manifest.json + the int8 ONNX file, sha256-checked
//! let model = Model::load(&default_dir(), None, None)?;
//!
//! // an image file: here a real MNIST test digit (a 7) from the model's
//! // golden file, written as a PNG
//! let golden: serde_json::Value =
//!     serde_json::from_str(&std::fs::read_to_string(default_dir().join("golden.json"))?)?;
//! let hex = golden["cases"][0]["pixels_hex"].as_str().ok_or("no golden input")?;
//! let pixels = (0..784)
//!     .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
//!     .collect::<Result<Vec<u8>, _>>()?;
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("digit.png");
//! image::GrayImage::from_raw(28, 28, pixels).ok_or("28x28")?.save(&path)?;
//!
//! // preprocess to the 28x28 input contract, run tract, decide
//! let input = edge::preprocess::load(&path, None)?;
//! let out = model.classify(&input)?;
//! assert!(matches!(out[0].verdict, Verdict::Accept { digit: 7, .. }));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod check;
pub mod error;
pub mod frame;
pub mod link;
pub mod model;
pub mod preprocess;
pub mod report;
pub mod runtime;

pub use error::{Error, Result};
