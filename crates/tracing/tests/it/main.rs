//! libhoney-tracing's integration tests: one test binary (`cargo test -p
//! libhoney-tracing --test it`), one module per former test file, so that
//! `cargo test -p libhoney-tracing --test it spans::` runs what the `spans`
//! binary used to (CONTRIBUTING.md, "Integration tests").
//!
//! # Process-global state
//!
//! The modules' tests run in parallel threads of one process. Most install
//! their subscriber as their thread's default (`set_default`, or a
//! `Dispatch` used with `with_default`), which is theirs alone. What is
//! process-wide runs in a child process of this binary, alone
//! ([`own_process`]: the test re-runs itself with `--exact` and a marker
//! variable; in the parent it only waits for that child):
//!
//! - the global default subscriber (`set_global_default`): `global_loop`,
//!   `http_e2e`; in the parent none is ever set, so the threads the other
//!   tests spawn (runtime workers, the SDK's) see no subscriber, as before;
//! - the `log` → `tracing` bridge (`tracing_log::LogTracer`, a `log`
//!   logger): `global_loop`, every test of `self_filter`;
//! - process exit: `process_exit` runs its `child` test (the example's
//!   `main`, which installs a global subscriber) in a child process with its
//!   own environment, as before.

mod common;
// One implementation for the workspace's test binaries (in the receiver,
// which every one of them dev-depends on).
use libhoney_receiver::__own_process as own_process;

mod async_tasks;
mod global_loop;
mod http_e2e;
mod process_exit;
mod remote;
mod self_filter;
mod span_events;
mod spans;
