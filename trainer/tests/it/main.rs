//! The trainer's integration tests (one binary, see HOUSE-STYLE): downloads
//! against a local HTTP server, the CLI on bad input, and a whole run on tiny
//! synthetic data. No network beyond 127.0.0.1; no real dataset needed.

mod cli;
mod download;
mod fixtures;
mod pipeline;
mod real_data;
mod resume;
