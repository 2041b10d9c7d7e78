//! libhoney-tower's integration tests: one test binary (`cargo test -p
//! libhoney-tower --test it`), one module per former test file, so that
//! `cargo test -p libhoney-tower --test it layer::` runs what the `layer`
//! binary used to (CONTRIBUTING.md, "Integration tests").
//!
//! # Process-global state
//!
//! The modules' tests run in parallel threads of one process. Tracing
//! subscribers are installed as the test thread's default only
//! (`integrations::run_traced`). What is process-wide runs in a child
//! process of this binary ([`own_process`]: the test re-runs itself with
//! `--exact` and a marker variable; in the parent it only waits for that
//! child):
//!
//! - a `log` logger: `integrations::a_missing_api_key_is_said_once_by_each_layer_and_counted`
//!   counts the warnings it captures, so it runs alone; in the parent no
//!   logger is ever installed;
//! - process exit and signals: `integrations` runs its `child` test (the
//!   examples' `main`, stopped with SIGTERM) in child processes with their
//!   own environment, as before.

mod common;
// One implementation for the workspace's test binaries (in the receiver,
// which every one of them dev-depends on).
use libhoney_receiver::__own_process as own_process;
// The examples some tests run, loaded once (each file a module once).
#[path = "../../examples/axum_service.rs"]
mod axum_example;
#[path = "../../examples/tonic_service.rs"]
mod tonic_example;

mod axum_extractor;
mod e2e_axum;
mod hyper_plain;
mod integrations;
mod layer;
