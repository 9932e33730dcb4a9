//! The trainer's integration tests (one binary, see HOUSE-STYLE): `trainer
//! ablate` end to end, downloads
//! against a local HTTP server, the CLI on bad input, a smoke run of every fuzz
//! target, faults of the disk, and a whole run on tiny
//! synthetic data. No network beyond 127.0.0.1; no real dataset needed.

mod ablate;
mod cli;
mod download;
mod faults;
mod fixtures;
mod fuzz_smoke;
mod pipeline;
mod real_data;
mod resume;
