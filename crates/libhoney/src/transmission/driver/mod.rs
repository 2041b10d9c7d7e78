//! The drivers of the pipeline: what only moves bytes and waits.
//! `threads` ([`Http`](super::Http)): a batcher thread and sender threads,
//! HTTP with ureq. `tokio` (`Tokio`, feature `tokio`): a batcher task and a
//! task per batch, HTTP with hyper.

mod handoff;
mod keyguard;
mod resolve;
pub(crate) mod threads;
#[cfg(feature = "tokio")]
pub(crate) mod tokio;
