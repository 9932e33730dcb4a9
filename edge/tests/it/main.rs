//! The edge's integration tests (one binary, see HOUSE-STYLE): the shipped
//! model against its golden file, the CLI on good and bad input, faults (model
//! files changing under the runtime, the display link cut), and (marked
//! `#[ignore]`, run by CI with `--include-ignored`) the int8 model measured
//! on the real test sets.

mod cli;
mod faults;
mod shipped;
mod support;
