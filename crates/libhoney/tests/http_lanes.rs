//! The default transmission's wire-path suites again, with every event
//! encoded in `send` straight into a lane's batch body (`EncodeOn::Send`),
//! the path `send` takes while the batcher is behind. By default a test's
//! events mostly take the queue, since a batcher that keeps up is never
//! behind; here lanes must pass the same lifecycle, fault, batching and wire
//! checks. `http_support::config` sees this binary's name
//! (`http_support::lanes_forced`).
//!
//! Each suite declares `mod http_support`, so that module is compiled once
//! per suite here: harmless, and what lets the suites stay separate binaries
//! elsewhere.
#![allow(clippy::duplicate_mod)]

#[path = "http_batching.rs"]
mod batching;
#[path = "http_faults.rs"]
mod faults;
#[path = "http_lifecycle.rs"]
mod lifecycle;
#[path = "http_wire.rs"]
mod wire;

/// Renaming this file would silently run the suites without lanes.
#[test]
fn this_binary_is_named_as_http_support_expects() {
    let exe = std::env::current_exe().unwrap();
    let name = exe.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with("http_lanes"), "{name}");
}
