//! # libhoney for Rust
//!
//! Send wide, structured events to [Honeycomb]'s Events API, or to anything that
//! speaks it (Refinery, the local `libhoney-receiver`). An event is one record
//! of something that happened (a request, a job, a query) with as many fields as
//! help to understand it later.
//!
//! `send` never blocks and never panics by default: events are queued, batched
//! per destination, compressed (zstd) and sent from background threads. `flush`
//! and `close` really drain, within a time limit. Nothing here needs, creates or
//! blocks on an async runtime.
//!
//! **The one rule: every event that `send` accepts gets exactly one
//! [`Response`]**, saying whether it was delivered, and if not, why. That holds
//! also when the API is down (transient failures are retried, with capped
//! backoff and jitter, for up to 60 s: [`Config::retry_deadline`]), when the
//! queue is full (the event is answered `QueueOverflow`), when `flush` or
//! `close` time out (a close that gives up answers every event it still holds
//! before the response stream ends), and when a runtime running the
//! transmission shuts down. What the defaults absorb: the pending queue holds
//! up to 48 MiB of events ([`Config::max_pending_bytes`]), a burst of hundreds
//! of thousands of events from one thread or a hundred tasks; past that, each
//! further event overflows on its own, unless you wait for room
//! ([`Config::block_on_send`], or [`Event::send_async`] from async code).
//! Responses go to a bounded response queue that you read (or ignore); see
//! [`Config::response_queue_capacity`] for what happens when nobody reads it.
//!
//! [Honeycomb]: https://www.honeycomb.io
//!
//! ## Install
//!
//! ```sh
//! cargo add libhoney-sdk
//! ```
//!
//! The package is `libhoney-sdk`; the crate is imported as `libhoney`. (The
//! crates.io packages `libhoney` and `libhoney-rust` are other, older
//! crates; the second is also imported as `libhoney`.) Rust 1.85 or newer and,
//! with the default features, a C compiler (zstd, ring). Integrations are separate packages:
//! `libhoney-tracing` (a `tracing` layer), `libhoney-tower` (tower/axum
//! middleware); `libhoney-receiver` is a local Events API receiver for tests.
//!
//! ## Cargo features
//!
//! | feature | default | adds | needs |
//! |---|---|---|---|
//! | `http` | on | [`transmission::Http`], the default transmission: a batcher thread and sender threads, blocking HTTP/1.1 | ureq, rustls (ring: a C compiler) |
//! | `zstd` | on | [`Compression::Zstd`], the default compression | zstd (a C compiler) |
//! | `gzip` | on | [`Compression::Gzip`] | flate2 (pure Rust) |
//! | `msgpack` | on | [`Encoding::Msgpack`] | rmp (pure Rust) |
//! | `tokio` | off | `transmission::Tokio`: sends from your tokio runtime (hyper, tokio-rustls) instead of the SDK's own threads | tokio, hyper, rustls |
//!
//! The defaults are the SDK as it always was. Every feature only adds; the
//! types are the same in every build (every [`Compression`] and
//! [`Encoding`] variant exists), and choosing an option whose feature is off
//! is a [`ConfigError::FeatureDisabled`] naming the option and the feature,
//! from [`Client::new`]: never a panic, never another wire format. Options
//! left unset take the best built in: compression zstd, else gzip, else
//! none ([`Compression::default`]). Without `http`, a config must name a
//! transmission (`Tokio`, [`Writer`](transmission::Writer),
//! [`Mock`](transmission::Mock), your own), or `Client::new` returns
//! [`ConfigError::NoTransmission`]. Items that need a feature are marked
//! on docs.rs.
//!
//! To send only from a tokio runtime, with one HTTP stack and no C
//! compiler for zstd:
//!
//! ```toml
//! [dependencies]
//! libhoney-sdk = { version = "0.1", default-features = false, features = ["tokio", "gzip"] }
//! ```
//!
//! For tests with [`Mock`](transmission::Mock) or
//! [`Writer`](transmission::Writer) alone, `default-features = false` builds
//! no HTTP, TLS or compression at all.
//!
//! ## Initialization
//!
//! Build a [`Client`] from a [`Config`] with your API key and a dataset. Options
//! not set in code come from `HONEYCOMB_API_KEY` (or `HONEYCOMB_WRITEKEY`),
//! `HONEYCOMB_DATASET` and `HONEYCOMB_API_ENDPOINT`. An invalid option is a
//! [`ConfigError`] here, never a panic later.
//!
//! ```
//! use libhoney::{Client, Config};
//! # let receiver = libhoney_receiver::Receiver::builder().start().unwrap();
//! # let api_host = receiver.url();
//! let client = Client::new(
//!     Config::new()
//!         .api_key("YOUR_API_KEY")
//!         .dataset("my-service")
//!         .api_host(api_host), // https://api.honeycomb.io by default
//! )?;
//! let mut ev = client.new_event();
//! ev.add_field("duration_ms", 153.12).add_field("method", "GET");
//! ev.send()?;
//! client.close()?; // sends what is queued and waits for the answers
//! # assert_eq!(receiver.events().len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A process-wide default client, as in libhoney-py's module functions, is
//! installed with [`init`]; then [`add_field`], [`new_event`], [`flush`],
//! [`close`] and the others use it. Before `init` they return an error.
//!
//! The `Client` is `Clone + Send + Sync` and cheap to clone; share it freely
//! between threads. Everything takes `&self`.
//!
//! ## Building and sending events
//!
//! Fields are strings, integers, floats, booleans, `null`, or nested arrays and
//! objects (sent as nested JSON). [`Event::add_field`] sets one; the last write
//! of a name wins. [`Event::add`] takes any `serde::Serialize` struct or map and
//! makes each top-level key a field.
//!
//! ```
//! # use libhoney::{Client, Config, transmission::Mock};
//! # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
//! #[derive(serde::Serialize)]
//! struct Query<'a> { table: &'a str, rows: u64 }
//!
//! let mut ev = client.new_event();
//! ev.add_field("endpoint", "/orders");
//! ev.add(&Query { table: "orders", rows: 12 })?;
//! ev.add_field("endpoint", "/orders/{id}"); // replaces the first value
//! assert_eq!(ev.get("rows").and_then(|v| v.as_u64()), Some(12));
//! ev.send()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Sending consumes the event: it cannot change after `send`, nor go twice.
//! `send` returns a [`SendError`] (and no response) if the event cannot be
//! sent at all: no fields, no API key, no dataset, an invalid host, or a closed
//! client. Per event you can override the dataset, API key, API host, sample
//! rate and timestamp.
//!
//! ## Metadata and responses
//!
//! Metadata is attached to an event, never sent, and handed back on the event's
//! response so you can match one to the other. [`Client::responses`] is the
//! response queue: bounded, never blocking the sender unless you ask for it
//! ([`Config::block_on_response`]; otherwise a full queue drops responses and
//! counts them in [`MetricsSnapshot::responses_dropped`]).
//!
//! ```
//! # use libhoney::{Client, Config, transmission::Mock};
//! # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
//! let responses = client.responses();
//! let mut ev = client.new_event();
//! ev.add_field("job", "resize");
//! ev.add_metadata(("job-id", 42u32));
//! ev.send()?;
//! client.close()?;
//! for r in responses { // ends after close, once every response is read
//!     let id = r.metadata.as_ref().and_then(|m| m.downcast_ref::<(&str, u32)>());
//!     assert_eq!(id, Some(&("job-id", 42)));
//!     assert!(r.is_success(), "{:?}", r.error);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A [`Response`] has `metadata`, `status_code` (202 when stored; the HTTP
//! status if the request failed), `duration`, `body` (the server's explanation
//! of a failure) and `error`, a typed [`ResponseError`]: sampled out, queue
//! overflow, too large, encoding, transport, HTTP status, rejected by the API,
//! missing or malformed status.
//!
//! ## Global fields, builders and dynamic fields
//!
//! Fields added to the client go on every event created afterwards. A
//! [`Builder`] is a template for one part of your application: its fields,
//! dynamic fields, dataset, API key, host and sample rate are inherited by its
//! events, and a clone refines it without affecting the original. A dynamic
//! field is a named function evaluated each time an event is created.
//!
//! ```
//! # use libhoney::{Client, Config, transmission::Mock};
//! # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
//! client.add_field("service.name", "checkout");
//! client.add_dynamic_field("threads", || std::thread::available_parallelism().map_or(1, |n| n.get()));
//!
//! let mut payments = client.new_builder();
//! payments.add_field("component", "payments").set_dataset("payments");
//! let mut ev = payments.new_event();
//! ev.add_field("amount_cents", 1999);
//! assert_eq!(ev.get("service.name").and_then(|v| v.as_str()), Some("checkout"));
//! assert!(ev.get("threads").is_some());
//! assert_eq!(ev.dataset(), "payments");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Creating an event from a builder copies no fields: inherited fields are
//! shared by reference and encoded once per event when it is sent.
//!
//! ## Sampling
//!
//! With a sample rate N (on the config, a builder or an event), [`Event::send`]
//! keeps one event in N at random; each kept event carries `samplerate: N` so
//! Honeycomb counts it N times, and each dropped one gets a
//! [`ResponseError::Sampled`] response. [`Event::send_presampled`] skips the
//! draw for events you sampled yourself.
//!
//! ## Transmissions
//!
//! By default events go over HTTP(S) ([`transmission::Http`]). Others ship in
//! [`transmission`]: [`Writer`](transmission::Writer) writes one JSON line per
//! event to stderr or any `io::Write` (libhoney-py's `FileTransmission`),
//! [`Mock`](transmission::Mock) records events for your tests, and
//! [`Discard`](transmission::Discard) drops them. The [`Transmission`](transmission::Transmission)
//! trait is object safe and documented for writing your own. The
//! `libhoney-tracing` and `libhoney-tower` crates turn tracing spans and HTTP
//! requests into events.
//!
//! ## Flushing and closing
//!
//! [`Client::flush`] sends everything queued and waits until each event sent
//! before it has its response; the response stream goes on. [`Client::close`]
//! does the same, then stops the client: later sends fail with
//! [`SendError::Closed`] and the response stream ends. Both wait at most
//! [`Config::shutdown_timeout`] (10 s by default; `flush_within` and
//! `close_within` take a limit) and block the calling thread; from async code use
//! [`Client::flush_async`] / [`Client::close_async`], which wait on a helper
//! thread. When the last handle to a client is dropped, it closes itself with
//! the same bounded wait. The default client of [`init`] lives in a static,
//! which Rust never drops, so `init` returns a [`CloseOnDrop`] guard to keep
//! in `main` (`let _guard = libhoney::init(config)?;`); a client of your own
//! that a layer or a global subscriber also holds gets the same guard from
//! [`Client::close_on_drop`].
//!
//! ## Values JSON cannot hold
//!
//! `NaN` and infinities are not JSON numbers. libhoney-py writes them anyway
//! (and the API rejects the whole batch); libhoney-go drops the field. Here they
//! are sent as the strings `"NaN"`, `"Infinity"` and `"-Infinity"` by default, or
//! as `null`, or left out: see [`NonFiniteFloats`]. The wire never carries
//! invalid JSON, and other events are never affected.
//!
//! Times are written in RFC 3339, whose years have four digits. An event
//! whose timestamp falls outside the years 0000 to 9999 (possible with a
//! `SystemTime`, not with Python's `datetime`) is refused by `send` with
//! [`SendError::TimestampOutOfRange`] rather than sent with a time the API
//! cannot read.
//!
//! ## Self-metrics and diagnostics
//!
//! [`Client::metrics`] reports events queued, sent, sampled, overflowed and
//! failed, retries, responses dropped, requests made and the current queue
//! length. The library's own diagnostics (libhoney-py's `debug=True`) go
//! through the [`log`](https://docs.rs/log) facade under the target `libhoney`:
//! silent unless your application installs a logger. No message, and no
//! `Debug` output, ever contains an API key.
//!
//! ## Cost and blocking, in short
//!
//! | call | cost | blocks? |
//! |---|---|---|
//! | `new_event`, `add_field` | a few allocations at most | no |
//! | `send` | validation, sampling draw, one queue push; with the default transmission, while its batcher is behind, encoding the event into a shared batch body instead (a mutex held while it encodes; one queue push per full body) | only with `block_on_send` and a full queue (or, briefly, if every lane's mutex is held) |
//! | `responses().recv()` | channel receive | yes, until a response or the end |
//! | `flush`, `close` | waits for delivery | yes, up to the time limit |
//! | `send_async` | as `send`, plus a boxed future | no; the future waits while the queue is full |
//! | `flush_async`, `close_async` | a helper thread | no (the future waits) |
//!
//! See `docs/ARCHITECTURE.md` in the repository for the path of an event from
//! `send` to the wire and back, and `docs/PERFORMANCE.md` for measured costs.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
// The docs link to `transmission::Http`, the default transmission, which a
// build without the `http` feature leaves out (docs.rs builds every feature).
#![cfg_attr(not(feature = "http"), allow(rustdoc::broken_intra_doc_links))]

// The README's snippets are compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;

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
mod sync;
pub mod transmission;
mod value;

pub use builder::{Builder, EventSource};
pub use client::Client;
/// Not part of the stable API: see [`Config::encode_on`].
#[doc(hidden)]
pub use config::EncodeOn;
pub use config::{
    is_classic_key, mask_key, Compression, Config, Encoding, NonFiniteFloats, Settings,
    API_MAX_BATCH_BYTES, API_MAX_EVENT_BYTES, DEFAULT_API_HOST, DEFAULT_DATASET,
    DEFAULT_RESPONSE_QUEUE_CAPACITY,
};
pub use error::{
    CloseError, ConfigError, FieldError, FlushError, GlobalError, NotInitialized, SendError,
    SerializeError, StartError,
};
pub use event::Event;
pub use global::{
    add, add_dynamic_field, add_field, client, close, close_on_drop, flush, init, new_builder,
    new_event, responses, CloseOnDrop,
};
pub use metrics::{Metrics, MetricsSnapshot};
pub use response::{
    Metadata, RecvTimeoutError, Response, ResponseError, Responses, TransportError,
    TransportErrorKind, TryRecvError,
};
pub use value::{FieldName, Value};

/// Internals exposed for the fuzz targets in `fuzz/`; not part of the API.
#[doc(hidden)]
pub mod __fuzz {
    use crate::transmission::pipeline::answer::fuzz;

    /// The most bytes of server text copied into a response (`…` may follow).
    pub const MAX_ERROR_TEXT: usize = crate::transmission::pipeline::answer::MAX_ERROR_TEXT;

    /// A per-event status as the SDK reads it: `(status, error)`.
    pub type Status = (u16, Option<String>);

    /// The responses a batch of `events` events gets when the server
    /// answers `status` with `body` (JSON, or msgpack with `msgpack`).
    pub fn answer(status: u16, body: &[u8], msgpack: bool, events: usize) -> Vec<crate::Response> {
        fuzz::answer(status, body, msgpack, events)
    }

    /// The statuses of a JSON answer as read by the fast path (`None` when
    /// it declines the body) and by the general path.
    pub fn json_both_paths(body: &[u8]) -> (Option<Vec<Status>>, Result<Vec<Status>, String>) {
        fuzz::json_both_paths(body)
    }

    /// The statuses of a JSON or msgpack answer.
    pub fn statuses(body: &[u8], msgpack: bool) -> Result<Vec<Status>, String> {
        fuzz::statuses(body, msgpack)
    }

    /// `Retry-After: value` read at a fixed time (2001-09-09T01:46:40Z).
    pub fn retry_after(value: &str) -> Option<std::time::Duration> {
        let now = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
        crate::transmission::pipeline::retry::parse_retry_after(value, now)
    }

    /// The longest `Retry-After` the SDK takes as given.
    pub const MAX_RETRY_AFTER: std::time::Duration =
        crate::transmission::pipeline::retry::MAX_RETRY_AFTER;
}

/// Internals exposed for the benchmarks in `benches/`; not part of the API.
#[doc(hidden)]
pub mod __bench {
    use crate::config::{Compression, Encoding, NonFiniteFloats};
    use crate::encoding::write_event;
    use crate::transmission::QueuedEvent;

    /// Encodes `events` as one batch body, as the HTTP transmission does.
    pub fn encode_batch(events: &[QueuedEvent], encoding: Encoding) -> Vec<u8> {
        let mut body = crate::encoding::BatchBody::new(encoding, Vec::with_capacity(64 * 1024));
        for ev in events {
            let write = |out: &mut Vec<u8>| write_event(encoding, out, ev, NonFiniteFloats::String);
            let _ = body.push(write, usize::MAX, usize::MAX);
        }
        body.finish()
    }

    /// A batch body written one event at a time, as `send` encodes events
    /// for the batcher (here straight into the body: no hand-over, no copy).
    pub struct Body(crate::encoding::BatchBody, Encoding);

    impl Body {
        /// An empty body in `encoding`.
        pub fn new(encoding: Encoding) -> Self {
            Body(
                crate::encoding::BatchBody::new(encoding, Vec::with_capacity(256 * 1024)),
                encoding,
            )
        }

        /// Encodes `ev` onto the end of the body.
        pub fn push(&mut self, ev: &QueuedEvent) {
            let encoding = self.1;
            let write = |out: &mut Vec<u8>| write_event(encoding, out, ev, NonFiniteFloats::String);
            let _ = self.0.push(write, usize::MAX, usize::MAX);
        }

        /// Events in the body.
        pub fn count(&self) -> usize {
            self.0.count()
        }

        /// Finishes the body, hands it to `f`, then starts a new, empty one
        /// in the same buffer.
        pub fn ship<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> R {
            let empty = crate::encoding::BatchBody::new(self.1, Vec::new());
            let mut body = std::mem::replace(&mut self.0, empty).finish();
            let r = f(&body);
            body.clear();
            self.0 = crate::encoding::BatchBody::new(self.1, body);
            r
        }
    }

    /// Compresses a body, as the HTTP transmission's batcher does.
    pub fn compress(body: Vec<u8>, compression: Compression, level: i32) -> Vec<u8> {
        Compressor::new(compression, level).compress(body)
    }

    /// A compressor that keeps its zstd context between bodies, as the
    /// batcher's does.
    pub struct Compressor(crate::transmission::pipeline::compress::Compressor);

    impl Compressor {
        /// A compressor for `compression` at `level`.
        pub fn new(compression: Compression, level: i32) -> Self {
            Compressor(crate::transmission::pipeline::compress::Compressor::new(
                compression,
                level,
            ))
        }

        /// The compressed body (or `body` itself without compression).
        pub fn compress(&mut self, body: Vec<u8>) -> Vec<u8> {
            self.0.compress(body).0
        }

        /// The size of `body` compressed (its own size without compression).
        pub fn compressed_len(&mut self, body: &[u8]) -> usize {
            self.0
                .compress_slice(body)
                .map_or(body.len(), |(out, _)| out.len())
        }
    }
}
