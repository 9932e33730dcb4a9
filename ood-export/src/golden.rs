//! `golden.json`: the schema lives in `ood_core::golden` (the edge reads it);
//! re-exported here for the writer.

pub use ood_core::golden::{hex, Golden, GoldenCase};
