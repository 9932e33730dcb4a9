//! The firmware simulator's integration tests: whole-screen goldens of the
//! four states, and the simulator end to end on real test images against
//! `edge classify`, with and without a corrupting link.

mod e2e;
mod screens;
