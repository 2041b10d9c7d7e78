//! libhoney-receiver's integration tests: one test binary (`cargo test -p
//! libhoney-receiver --test it`), one module per former test file, so that
//! `cargo test -p libhoney-receiver --test it faults::` runs what the
//! `faults` binary used to (CONTRIBUTING.md, "Integration tests").
//!
//! # Process-global state
//!
//! None is changed here: each test starts its own receiver on 127.0.0.1
//! port 0; the tests of the `libhoney-receiver` binary (`output`, `faults`)
//! run it as a child process; output files carry the test's name and the
//! process id.

mod common;

mod bounds;
mod endpoints;
mod faults;
mod output;
mod runtime;
mod validation;
