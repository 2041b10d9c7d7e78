//! The SDK's integration tests: one test binary (`cargo test -p libhoney-sdk
//! --test it`), one module per former test file, so that
//! `cargo test -p libhoney-sdk --test it http_wire::` runs what the
//! `http_wire` binary used to. One binary links tokio, hyper and rustls once
//! instead of once per file (CONTRIBUTING.md, "Integration tests").
//!
//! # Process-global state
//!
//! The modules' tests run in parallel threads of one process, so no test
//! may change what is process-wide. Those that must (a `log` logger, the
//! environment, the default client of `libhoney::init`) run in a child
//! process of this binary, alone ([`own_process`]: the test re-runs itself
//! with `--exact` and a marker variable; in the parent it only waits for
//! that child):
//!
//! - a `log` logger, installed once per process: `core_logging`,
//!   `http_missing_key` (with [`common::LOGS`]) and `log_secrets` (its own,
//!   at TRACE for every target); no logger is ever installed in the parent,
//!   so those assertions see only their own test's records;
//! - the environment: `core_env` (`HONEYCOMB_*`), `http_proxy_env` and
//!   `tokio_proxy_env` (`HTTP_PROXY`, `NO_PROXY`): `set_var` happens only in
//!   the child; the parent's environment never changes, so the other tests,
//!   which read proxy variables when they build clients, see it unchanged;
//! - the default client (`libhoney::init`): `core_global` (and
//!   `core_logging`, already alone);
//! - process exit: `http_process_exit` runs its `child` test in child
//!   processes with its own variables, as before.
//!
//! `http_lanes` runs the `http_batching`, `http_faults`, `http_lifecycle`
//! and `http_wire` suites again with every event encoded in `send` into a
//! lane: [`http_support::config`] sets `EncodeOn::Send` on the threads of
//! those tests (libtest names each test's thread after the test,
//! `http_lanes::…`; see [`http_support::lanes_forced`]).
//!
//! The tokio transmission's tests are compiled only with the `tokio`
//! feature: the workspace's tests have it (a dev-dependency of the crate on
//! itself turns it on), the packaged crate's tests only with
//! `--features tokio`.

#[macro_use]
mod http_support;
mod common;
// One implementation for the workspace's test binaries (in the receiver,
// which every one of them dev-depends on).
use libhoney_receiver::__own_process as own_process;

mod core_client;
mod core_config;
mod core_debug;
mod core_env;
mod core_events;
mod core_fields;
mod core_global;
mod core_logging;
mod core_metrics;
mod core_response_drops;
mod core_responses;
mod core_transmissions;
mod delivery;
mod hardening_depth;
mod http_batching;
mod http_faults;
mod http_key_masking;
mod http_lanes;
mod http_lifecycle;
mod http_missing_key;
mod http_process_exit;
mod http_proxy;
mod http_proxy_env;
mod http_runtime;
mod http_wire;
mod log_secrets;
mod prop_roundtrip;
mod smoke_http;
#[cfg(feature = "tokio")]
mod tokio_faults;
#[cfg(feature = "tokio")]
mod tokio_lifecycle;
#[cfg(feature = "tokio")]
mod tokio_proxy;
#[cfg(feature = "tokio")]
mod tokio_proxy_env;
#[cfg(feature = "tokio")]
mod tokio_wire;
