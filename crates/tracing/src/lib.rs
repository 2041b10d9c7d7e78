//! # libhoney-tracing
//!
//! A [`tracing_subscriber::Layer`] that turns each closed `tracing` span into
//! one Honeycomb wide event, and each log event (`tracing::info!` and
//! friends) into a Honeycomb span event, sent through a [`libhoney::Client`].
//!
//! ```
//! use libhoney::{Client, Config, transmission::Mock};
//! use libhoney_tracing::HoneycombLayer;
//! use tracing_subscriber::prelude::*;
//!
//! // In production: Config::new() reads HONEYCOMB_API_KEY and friends, and
//! // sends over HTTP. Here a Mock transmission records what would be sent.
//! let mock = Mock::new();
//! let client = Client::new(Config::new().api_key("k").dataset("d").transmission(mock.clone()))?;
//! let subscriber = tracing_subscriber::registry()
//!     .with(HoneycombLayer::new(client.clone()).service_name("checkout"));
//!
//! tracing::subscriber::with_default(subscriber, || {
//!     let request = tracing::info_span!("handle_request", user_id = 42, status = tracing::field::Empty);
//!     let _entered = request.enter();
//!     tracing::info!(items = 3, "cart loaded");
//!     tracing::info_span!("load_prices").in_scope(|| { /* ... */ });
//!     request.record("status", 200);
//! });
//! client.close()?; // at exit: send what is queued
//!
//! let sent = mock.events();
//! let [log, child, root] = &sent[..] else { panic!("expected 3 events") };
//! assert_eq!(log.get("name").unwrap().as_str(), Some("cart loaded"));
//! assert_eq!(log.get("meta.annotation_type").unwrap().as_str(), Some("span_event"));
//! assert_eq!(child.get("name").unwrap().as_str(), Some("load_prices"));
//! assert_eq!(root.get("name").unwrap().as_str(), Some("handle_request"));
//! assert_eq!(root.get("status").unwrap().as_i64(), Some(200));
//! assert_eq!(root.get("service.name").unwrap().as_str(), Some("checkout"));
//! assert_eq!(child.get("trace.parent_id"), root.get("trace.span_id"));
//! assert_eq!(log.get("trace.parent_id"), root.get("trace.span_id"));
//! assert!(root.get("trace.parent_id").is_none());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Install
//!
//! ```sh
//! cargo add libhoney-tracing libhoney-sdk tracing tracing-subscriber
//! ```
//!
//! Imported as `libhoney_tracing` (and the SDK as `libhoney`).
//!
//! ## Cargo features
//!
//! None: the layer needs only `tracing`, `tracing-subscriber` (registry) and
//! the SDK with its default features.
//!
//! ## What a span sends
//!
//! One event when the span **closes** (when its last handle is dropped: for
//! an `.instrument(span)` future, when the future is dropped), timestamped
//! at the span's creation:
//!
//! | field | value |
//! |---|---|
//! | `name` | the span's name |
//! | `duration_ms` | float; **wall time from the span's creation to its close**, whether or not it was entered |
//! | `busy_ms` | float; the time the span was entered, summed over its enters (only while [`HoneycombLayer::busy_time`] is on, the default) |
//! | `trace.trace_id` | 32 lowercase hex digits (128 bits); new and random for a root span, inherited by children |
//! | `trace.span_id` | 16 lowercase hex digits (64 bits), random |
//! | `trace.parent_id` | the parent's `trace.span_id`; absent on roots |
//! | `meta.span_type` | `root` (no parent), `subroot` (parent in another process, see [`SpanExt::set_remote_parent`]), `leaf` (no children), `mid` |
//! | `service.name` | from [`HoneycombLayer::service_name`]; absent if unset |
//! | `level`, `target` | from the span's metadata (`level` as `INFO`, `DEBUG`, …) |
//! | `code.filepath`, `code.lineno`, `code.namespace` | source file, line and module path, when known |
//! | the span's fields | recorded at creation and with `Span::record` (last value wins), under their own names |
//!
//! Plus the client's (or builder's) own fields, and `samplerate` when
//! sampling.
//!
//! ## Log events: one span event each, sent at once
//!
//! A log event inside a span (the current span, or an explicit
//! `parent:`) is sent **immediately**, as a Honeycomb
//! [span event](https://docs.honeycomb.io/send-data/logs/span-events/):
//! `name` = the message (or the event's callsite name when it has none),
//! `meta.annotation_type` = `span_event`, `trace.trace_id`, `trace.parent_id`
//! = the span's `trace.span_id`, the event's time as its timestamp, `level`,
//! `target`, `code.*`, `service.name` and the event's own fields. Sending at
//! once keeps nothing in memory for long spans, and a span's log events
//! arrive even if the span never closes (a crash, a leaked future).
//! [`HoneycombLayer::span_events`]`(false)` ignores them instead.
//!
//! A log event outside every span is **not sent** by default: it belongs to
//! no trace, and each would be a billed event.
//! [`HoneycombLayer::orphan_events`]`(true)` sends them as standalone events,
//! with the same fields minus the `trace.*` and `meta.*` ones.
//!
//! `log` records bridged into `tracing` by `tracing-log` are handled too:
//! their `log.target`, `log.module_path`, `log.file` and `log.line` fields
//! become `target`, `code.namespace`, `code.filepath` and `code.lineno`.
//!
//! ## Reserved names
//!
//! A span or event field whose name this layer sets itself ([`is_reserved`]:
//! `name`, `duration_ms`, `busy_ms`, `level`, `target`, `service.name`,
//! `code.filepath`, `code.lineno`, `code.namespace`, and everything starting
//! with `trace.` or `meta.`) is sent under `tracing.{name}`, so ours are never
//! clobbered: `info_span!("x", name = "bob")` sends `name: "x"` and
//! `tracing.name: "bob"`.
//!
//! ## Trace ids, threads and async tasks
//!
//! Ids live in each span's extensions in the `tracing-subscriber` registry. A
//! child takes its trace id from its nearest recorded ancestor, wherever it
//! runs: spans entered on another thread, futures moved between tasks with
//! `.instrument(span)`, `Span::current()` handed around, explicit `parent:`
//! all work through tracing's normal span parenting. There is no
//! thread-local state and nothing to register first: every span is recorded
//! from the start.
//!
//! Install the subscriber as the global default (`.init()`, or
//! [`tracing::subscriber::set_global_default`]), as applications do. With a
//! scoped default instead (`with_default`, `set_default`, `with_subscriber`),
//! make it the default of *every* thread where spans may close (for tokio,
//! set it in `on_thread_start`): the registry releases a closed child's hold
//! on its parent through the default dispatcher of the thread where the
//! child closed, so a parent whose last child closes on a thread without it
//! is never closed, and so never sent.
//!
//! To continue a trace from another process, parse its W3C `traceparent`
//! header with [`TraceContext::from_traceparent`] and call
//! [`SpanExt::set_remote_parent`] on the new span; to pass one on, use
//! [`SpanExt::trace_context`] and [`TraceContext::to_traceparent`].
//!
//! ## Sampling and filtering
//!
//! [`HoneycombLayer::sample_rate`] keeps one trace in N, deterministically
//! by trace id ([`TraceId::is_sampled`]), so whole traces are kept or
//! dropped.
//!
//! **At the defaults the layer sends spans and in-span log events at `INFO`
//! and above** ([`HoneycombLayer::max_level`]): your `#[instrument]` and
//! `info_span!` spans and `info!`..`error!` events, not the `DEBUG`/`TRACE`
//! internals of dependencies such as `h2` (one gRPC call through tonic: 4
//! events at the defaults, 570 with everything on). Finer filtering is
//! tracing-subscriber's own per-layer filtering; `max_level` is a floor
//! under it, so lift the floor when the filter should let `DEBUG` through:
//!
//! ```
//! # use libhoney::{Client, Config, transmission::Mock};
//! # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
//! use libhoney_tracing::HoneycombLayer;
//! use tracing::level_filters::LevelFilter;
//! use tracing_subscriber::{prelude::*, EnvFilter}; // feature "env-filter"
//!
//! let filter = EnvFilter::try_from_env("HONEYCOMB_LOG") // e.g. "info,my_app=debug"
//!     .unwrap_or_else(|_| EnvFilter::new("info"));
//! let subscriber = tracing_subscriber::registry()
//!     .with(HoneycombLayer::new(client.clone()).max_level(LevelFilter::TRACE).with_filter(filter));
//! # drop(subscriber);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The SDK's own diagnostics never loop back into Honeycomb (where each
//! event sent would log, and each log be sent, and so on). Never sent:
//!
//! - spans and log events whose target starts with `libhoney`
//!   ([`is_ignored_target`]), from any thread, also when an app bridges
//!   `log` into `tracing` with `tracing-log` (the record's `log.target`
//!   counts);
//! - anything recorded on the SDK's own threads, named `libhoney-…`
//!   ([`IGNORED_THREAD_PREFIX`]), whatever its target: the debug logs of the
//!   SDK's HTTP client (`ureq`, `rustls`) come from there;
//! - anything recorded on a thread while this layer is handing an event to
//!   the SDK on it.
//!
//! They still reach your other layers (a `fmt` layer, say).
//!
//! ## Costs and blocking
//!
//! Nothing here blocks the instrumented code: events go through the SDK's
//! non-blocking [`Event::send`](libhoney::Event::send), which queues them for
//! its background sender. No lock is shared between spans (no `Mutex` around
//! the client: `Client` is `Clone` and `send` takes `&self`). Per span: a
//! small state in its extensions, converted field values, and one event
//! built at close. See [`HoneycombLayer`] for details.
//!
//! ## At exit: the guard
//!
//! A global subscriber holds the layer, and so a clone of the client, for
//! ever: the client is never dropped, so it never closes by itself, and
//! events still queued when `main` returns are lost. Keep the SDK's guard in
//! `main`, the same [`CloseOnDrop`](libhoney::CloseOnDrop) the global API and
//! libhoney-tower use:
//!
//! ```no_run
//! # use libhoney::{Client, Config};
//! # use libhoney_tracing::HoneycombLayer;
//! # use tracing_subscriber::prelude::*;
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let client = Client::new(Config::new().dataset("my-service"))?;
//!     let _guard = client.close_on_drop(); // flushes and closes when main returns
//!     tracing_subscriber::registry().with(HoneycombLayer::new(client)).init();
//!     tracing::info_span!("work").in_scope(|| tracing::info!("done"));
//!     Ok(())
//! }
//! ```
//!
//! Dropping it blocks up to the client's `shutdown_timeout` while queued
//! events are delivered; from async code, `guard.close_async(timeout).await`
//! waits without blocking the executor.
//!
//! ## Linking with other integrations
//!
//! [`external_span`] makes a span that stands for an event another
//! integration sends itself: libhoney-tower uses it so that the spans of a
//! request's handler are children of the request's event, in one trace.
//!
//! ## Troubleshooting
//!
//! Without an API key every event is refused: the SDK warns once when the
//! client starts, this layer warns once (target `libhoney_tracing`) at the
//! first refused event, and the client's
//! [`metrics`](libhoney::Client::metrics) count them all in
//! `events_missing_api_key`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// The README's examples, compiled (and run, unless `no_run`) as doc-tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod ext;
mod fields;
mod ids;
mod layer;

pub use ext::SpanExt;
pub use fields::{is_reserved, RESERVED_FIELDS, RESERVED_PREFIX, RESERVED_PREFIXES};
pub use ids::{ParseIdError, SpanId, TraceContext, TraceId};
pub use layer::{
    external_span, is_ignored_target, HoneycombLayer, EXTERNAL_SPAN_TARGET, IGNORED_TARGET_PREFIX,
    IGNORED_THREAD_PREFIX,
};
