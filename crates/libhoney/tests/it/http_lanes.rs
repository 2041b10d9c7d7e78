//! The default transmission's wire-path suites again, with every event
//! encoded in `send` straight into a lane's batch body (`EncodeOn::Send`),
//! the path `send` takes while the batcher is behind. By default a test's
//! events mostly take the queue, since a batcher that keeps up is never
//! behind; here lanes must pass the same lifecycle, fault, batching and wire
//! checks. `http_support::config` sees the test's thread name
//! (`http_support::lanes_forced`): each test's thread is named after it,
//! `http_lanes::…`.
#![allow(clippy::duplicate_mod)]

#[path = "http_batching.rs"]
mod batching;
#[path = "http_faults.rs"]
mod faults;
#[path = "http_lifecycle.rs"]
mod lifecycle;
#[path = "http_wire.rs"]
mod wire;

/// Renaming this module, or a libtest that stopped naming test threads,
/// would silently run the suites without lanes.
#[test]
fn the_suites_here_run_with_lanes_forced() {
    assert!(crate::http_support::lanes_forced());
    let name = std::thread::current().name().map(str::to_owned);
    let elsewhere = std::thread::spawn(crate::http_support::lanes_forced);
    assert!(!elsewhere.join().unwrap(), "{name:?}");
}
