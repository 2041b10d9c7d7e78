//! The `honey` CLI's integration tests: one test binary (`cargo test -p
//! libhoney-cli --test it`), one module per former test file, so that
//! `cargo test -p libhoney-cli --test it tail::` runs what the `tail` binary
//! used to (CONTRIBUTING.md, "Integration tests").
//!
//! # Process-global state
//!
//! None is changed here: every test runs the built `honey` binary as a
//! child process with its own environment (`common`, which clears the
//! `HONEYCOMB_*` variables for the child only) and its own receiver on port
//! 0; scratch directories carry the test's name and the process id.

mod common;

mod checkpoint;
mod misc;
mod send;
mod tail;
