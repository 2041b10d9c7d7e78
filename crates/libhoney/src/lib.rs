//! # libhoney for Rust
//!
//! Send wide, structured events to Honeycomb's Events API (or to anything that
//! speaks it: Refinery, the local `libhoney-receiver`).
//!
//! (Crate documentation is being written; see the README.)

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod builder;
mod client;
mod config;
mod destination;
mod encoding;
mod error;
mod event;
mod fields;
mod global;
mod metrics;
mod response;
mod ser;
pub mod transmission;
mod value;

pub use builder::Builder;
pub use client::Client;
pub use config::{
    is_classic_key, mask_key, Compression, Config, Encoding, NonFiniteFloats, API_MAX_BATCH_BYTES,
    API_MAX_EVENT_BYTES, DEFAULT_API_HOST, DEFAULT_DATASET,
};
pub use error::{CloseError, ConfigError, FieldError, FlushError, NotInitialized, SendError};
pub use event::Event;
pub use global::{
    add, add_dynamic_field, add_field, client, close, flush, init, new_builder, new_event,
    responses,
};
pub use metrics::{Metrics, MetricsSnapshot};
pub use response::{Metadata, RecvTimeoutError, Response, ResponseError, Responses, TryRecvError};
pub use value::{FieldName, Value};
