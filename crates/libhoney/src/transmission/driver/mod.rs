//! The drivers of the pipeline: what only moves bytes and waits.
//! `threads` (`Http`, feature `http`): a batcher thread and sender threads,
//! HTTP with ureq. `tokio` (`Tokio`, feature `tokio`): a batcher task and a
//! task per batch, HTTP with hyper.

#[cfg(feature = "http")]
mod handoff;
#[cfg(feature = "http")]
mod keyguard;
#[cfg(feature = "http")]
mod resolve;
#[cfg(feature = "http")]
pub(crate) mod threads;
#[cfg(feature = "tokio")]
pub(crate) mod tokio;
