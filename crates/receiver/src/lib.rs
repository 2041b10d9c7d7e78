//! A real, local, Honeycomb-compatible Events API receiver.
//!
//! It speaks the subset of the [Honeycomb Events API] that libhoney SDKs use,
//! over plain HTTP/1.1 on loopback, and answers the way the real API does:
//!
//! * `POST /1/batch/{dataset}`: a JSON (or msgpack) array of
//!   `{"data":{…},"time":…,"samplerate":…}`, optionally gzip- or
//!   zstd-compressed; answered with `200` and one `{"status":202}` (or
//!   `{"status":400,"error":"…"}`) per event, in order.
//! * `POST /1/events/{dataset}`: one object of fields, with the
//!   `X-Honeycomb-Event-Time` and `X-Honeycomb-Samplerate` headers; `200`
//!   with an empty body.
//! * `GET /1/auth`: `{"team":{"slug":…},"environment":{"slug":…}}`.
//! * `GET /_receiver/stats` and `POST /_receiver/reset`: control endpoints
//!   of this receiver (not part of the Honeycomb API).
//!
//! With a [path prefix](ReceiverBuilder::path_prefix) such as `/prefix`, the
//! three API routes are served under it instead (`/prefix/1/batch/…`, for
//! an SDK whose API host is [`RunningReceiver::api_host`],
//! `http://…/prefix`), as behind a path-routing proxy; the control endpoints
//! stay at the root.
//!
//! Every accepted event can be kept in memory for assertions
//! ([`RunningReceiver::events`]), printed, or written as JSON lines; faults
//! (error statuses, dropped connections, delays, bad status arrays, outages)
//! can be injected with [`RunningReceiver::push_fault`].
//!
//! ```no_run
//! use std::time::Duration;
//! use libhoney_receiver::Receiver;
//!
//! let rx = Receiver::builder().api_key("test-key").start()?;
//! // ... point an SDK at rx.url() and send 10 events ...
//! assert!(rx.wait_for_events(10, Duration::from_secs(5)));
//! for ev in rx.events() {
//!     println!("{} {:?}", ev.dataset, ev.data);
//! }
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! ## Install
//!
//! ```sh
//! cargo add --dev libhoney-receiver    # as a library, for tests (`use libhoney_receiver`)
//! cargo install libhoney-receiver      # the `libhoney-receiver` command
//! ```
//!
//! ## Cargo features
//!
//! None.
//!
//! The server runs on its own multi-threaded tokio runtime on its own
//! threads, so [`ReceiverBuilder::start`] works the same from plain threads
//! and from inside a caller's tokio runtime.
//!
//! [Honeycomb Events API]: https://docs.honeycomb.io/api/events/
#![forbid(unsafe_code)]
#![warn(missing_docs)]

// The README's snippets are compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[doc(hidden)]
#[path = "fuzz_api.rs"]
pub mod __fuzz;
#[doc(hidden)]
#[path = "own_process.rs"]
pub mod __own_process;
mod decode;
mod handler;
mod json;
mod msgpack;
mod output;
mod scan;
mod server;
mod state;
mod timefmt;

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::state::{lock, Config, Shared};

/// Most fields (top-level keys of `data`) an event may have; more gets
/// `{"status":400,"error":"Event has too many columns."}`.
pub const MAX_FIELDS: usize = 2000;
/// Longest string value, in bytes after JSON unescaping, accepted at any
/// depth of an event.
pub const MAX_STRING_BYTES: usize = 65_536;
/// Largest accepted event, in bytes of its own encoding (the array element's
/// JSON text, or its msgpack bytes; for `/1/events` the whole body).
pub const MAX_EVENT_BYTES: usize = 1_000_000;

/// Default limit on a request body after decompression, in bytes.
pub const DEFAULT_MAX_BODY_BYTES: usize = 5_000_000;

/// Default [`ReceiverBuilder::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default [`ReceiverBuilder::header_read_timeout`].
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`ReceiverBuilder::body_read_timeout`].
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default [`ReceiverBuilder::idle_timeout`].
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default [`ReceiverBuilder::max_buffered_body_bytes`] (32 MiB).
pub const DEFAULT_MAX_BUFFERED_BODY_BYTES: usize = 32 << 20;

/// The bounds on connections and reads (see the [`ReceiverBuilder`]
/// setters of the same names for what each bounds and its default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_buffered_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_buffered_body_bytes: DEFAULT_MAX_BUFFERED_BODY_BYTES,
        }
    }
}

/// Entry point: [`Receiver::builder`].
#[derive(Debug)]
pub struct Receiver;

impl Receiver {
    /// Starts configuring a receiver (defaults: `127.0.0.1:0`, any non-empty
    /// API key, recording on, no printing, 2 worker threads).
    pub fn builder() -> ReceiverBuilder {
        ReceiverBuilder::default()
    }
}

/// How accepted events are printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Print {
    /// Not printed (default).
    #[default]
    None,
    /// One human-readable line per event on stdout:
    /// `dataset="ds" time=2024-05-01T10:11:12Z samplerate=1 {"field":1}`.
    Pretty,
    /// One JSON object per line in this file (created or truncated at start),
    /// in libhoney-go's `WriterSender` format:
    /// `{"data":{…},"samplerate":N,"time":"…","dataset":"…"}`.
    JsonLines(PathBuf),
}

/// Configures and starts a receiver. All methods consume and return `Self`.
#[derive(Debug)]
pub struct ReceiverBuilder {
    addrs: Result<Vec<SocketAddr>, String>,
    api_keys: Vec<String>,
    record: bool,
    track: Option<String>,
    prints: Vec<Print>,
    threads: usize,
    max_body_bytes: usize,
    team_slug: String,
    environment_slug: String,
    path_prefix: String,
    limits: Limits,
}

impl Default for ReceiverBuilder {
    fn default() -> Self {
        ReceiverBuilder {
            addrs: Ok(vec![SocketAddr::from(([127, 0, 0, 1], 0))]),
            api_keys: Vec::new(),
            record: true,
            track: None,
            prints: Vec::new(),
            threads: 2,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            team_slug: "local-team".to_owned(),
            environment_slug: "local-environment".to_owned(),
            path_prefix: String::new(),
            limits: Limits::default(),
        }
    }
}

impl ReceiverBuilder {
    /// Address to listen on (default `127.0.0.1:0`, an ephemeral port). The
    /// first resolved address that can be bound is used.
    #[must_use = "a by-value setter returns the changed value: use it"]
    pub fn addr(mut self, addr: impl ToSocketAddrs) -> Self {
        self.addrs = addr
            .to_socket_addrs()
            .map(Iterator::collect)
            .map_err(|e| e.to_string());
        self
    }

    /// Adds an accepted API key (`X-Honeycomb-Team`). Repeatable. With no
    /// key configured, any non-empty key is accepted.
    #[must_use = "a by-value setter returns the changed value: use it"]
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_keys.push(key.into());
        self
    }

    /// Keep every accepted event and every request in memory (default
    /// `true`). Turn off for benchmarks: validation then builds no JSON
    /// trees and allocates nothing per event.
    #[must_use = "a by-value setter returns the changed value: use it"]
    pub fn record(mut self, record: bool) -> Self {
        self.record = record;
        self
    }

    /// Counts distinct and duplicate integer values of this `data` field
    /// among accepted events ([`Stats::distinct_tracked`],
    /// [`Stats::duplicate_tracked`]). Cheap; meant for benchmarks with
    /// `record(false)` that want to check for loss and duplication.
    #[must_use = "a by-value setter returns the changed value: use it"]
    pub fn track_unique_u64(mut self, field: impl Into<String>) -> Self {
        self.track = Some(field.into());
        self
    }

    /// Prints accepted events (default [`Print::None`]). May be called more
    /// than once to print to several places (e.g. [`Print::Pretty`] and
    /// [`Print::JsonLines`]); [`Print::None`] removes all.
    #[must_use = "a by-value setter returns the changed value: use it"]
    pub fn print(mut self, print: Print) -> Self {
        match print {
            Print::None => self.prints.clear(),
            p if self.prints.contains(&p) => {}
            p => self.prints.push(p),
        }
        self
    }

    /// Number of server worker threads (default 2, minimum 1).
    #[must_use = "a by-value setter returns the changed value: use it"]
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Largest accepted request body after decompression (default
    /// 5,000,000 bytes). Larger bodies get `400 Request body is too large.`
    #[must_use = "a by-value setter returns the changed value: use it"]
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Team and environment slugs returned by `GET /1/auth` (defaults
    /// `local-team` and `local-environment`).
    #[must_use = "a by-value setter returns the changed value: use it"]
    pub fn auth_slugs(mut self, team: impl Into<String>, environment: impl Into<String>) -> Self {
        self.team_slug = team.into();
        self.environment_slug = environment.into();
        self
    }

    /// Serves the API routes under this path prefix (default: none), for
    /// SDKs whose API host has a path, such as
    /// `http://127.0.0.1:PORT/prefix`, as behind a path-routing proxy: with
    /// prefix `/prefix` the receiver serves `POST /prefix/1/batch/{dataset}`,
    /// `POST /prefix/1/events/{dataset}` and `GET /prefix/1/auth`, and
    /// answers `404` to everything else, including the unprefixed `/1/…`
    /// routes. The control endpoints (`/_receiver/…`) stay at the root.
    ///
    /// The prefix is matched byte for byte (case-sensitively, still
    /// percent-encoded) against the path as sent. A missing leading `/` is
    /// added and trailing `/`s are removed, so `prefix`, `/prefix` and
    /// `/prefix/` are the same; `""` or `/` means no prefix. It may have
    /// several segments (`/a/b`). [`ReceiverBuilder::start`] fails with
    /// [`io::ErrorKind::InvalidInput`] if it contains `?`, `#`, whitespace,
    /// control or non-ASCII characters (give those percent-encoded, as they
    /// appear in a request). [`ReceivedRequest::path`] is always the full
    /// path, prefix included; [`RunningReceiver::api_host`] is the URL to
    /// give an SDK.
    #[must_use = "a by-value setter returns the changed value: use it"]
    pub fn path_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.path_prefix = prefix.into();
        self
    }

    /// Most connections open at once (default [`DEFAULT_MAX_CONNECTIONS`],
    /// minimum 1). A connection accepted beyond it is closed at once,
    /// unread, so clients see a reset rather than a hang; each open
    /// connection costs about 10 KB while idle.
    #[must_use = "a by-value setter returns the changed value: use it"]
    pub fn max_connections(mut self, n: usize) -> Self {
        self.limits.max_connections = n.max(1);
        self
    }

    /// Longest time from the first byte of a request to the end of its
    /// header (default [`DEFAULT_HEADER_READ_TIMEOUT`]). A connection that
    /// sends its header slower (slowloris) is closed without an answer.
    #[must_use = "a by-value setter returns the changed value: use it"]
    pub fn header_read_timeout(mut self, d: Duration) -> Self {
        self.limits.header_read_timeout = d;
        self
    }

    /// Longest time to receive a request's whole body once its header is
    /// read, waiting for room in the
    /// [body memory budget](Self::max_buffered_body_bytes) included
    /// (default [`DEFAULT_BODY_READ_TIMEOUT`]). A body that takes longer
    /// gets `408` and the connection is closed.
    #[must_use = "a by-value setter returns the changed value: use it"]
    pub fn body_read_timeout(mut self, d: Duration) -> Self {
        self.limits.body_read_timeout = d;
        self
    }

    /// Longest time a connection may stay open with no request on it: from
    /// its accept, or the end of its last request, to the first byte of
    /// the next (default [`DEFAULT_IDLE_TIMEOUT`]). It is then closed.
    #[must_use = "a by-value setter returns the changed value: use it"]
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.limits.idle_timeout = d;
        self
    }

    /// Most bytes of request bodies buffered at once over all connections
    /// (default [`DEFAULT_MAX_BUFFERED_BODY_BYTES`], minimum 1): a request
    /// reserves its `Content-Length` (or the largest body it may send, when
    /// it has none; never more than the whole budget) before its body is
    /// read, and waits for room otherwise, its data left in the kernel's
    /// socket buffers. With [`max_body_bytes`](Self::max_body_bytes) it
    /// bounds the receiver's memory for request data. At most
    /// `u32::MAX` bytes.
    #[must_use = "a by-value setter returns the changed value: use it"]
    pub fn max_buffered_body_bytes(mut self, bytes: usize) -> Self {
        self.limits.max_buffered_body_bytes = bytes.clamp(1, u32::MAX as usize);
        self
    }

    /// Binds the address and starts serving on a dedicated runtime.
    pub fn start(self) -> io::Result<RunningReceiver> {
        let addrs = self
            .addrs
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let path_prefix = normalize_prefix(&self.path_prefix)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let listener = server::bind(&addrs)?;
        let addr = listener.local_addr()?;
        let output = output::Output::open(&self.prints)?;
        let cfg = Config {
            api_keys: self.api_keys,
            record: self.record,
            track: self.track,
            max_body_bytes: self.max_body_bytes,
            team_slug: self.team_slug,
            environment_slug: self.environment_slug,
            path_prefix,
            limits: self.limits,
        };
        let (down_tx, down_rx) = tokio::sync::mpsc::unbounded_channel();
        let shared = Arc::new(Shared::new(cfg, output, down_tx));
        let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
        let thread = server::spawn(
            listener,
            addr,
            shared.clone(),
            self.threads,
            down_rx,
            shutdown_rx,
        )?;
        Ok(RunningReceiver {
            addr,
            shared,
            shutdown_tx,
            thread: Some(thread),
        })
    }
}

/// The prefix as matched: empty, or `/`-led without a trailing `/`.
fn normalize_prefix(raw: &str) -> Result<String, String> {
    if let Some(c) = raw
        .chars()
        .find(|&c| !c.is_ascii_graphic() || c == '?' || c == '#')
    {
        return Err(format!(
            "invalid path prefix {raw:?}: {c:?} cannot appear in a request path as sent \
             (give it percent-encoded)"
        ));
    }
    let trimmed = raw.trim_end_matches('/');
    Ok(match trimmed {
        "" => String::new(),
        t if t.starts_with('/') => t.to_owned(),
        t => format!("/{t}"),
    })
}

/// Which endpoint an event arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Endpoint {
    /// `POST /1/batch/{dataset}`
    Batch,
    /// `POST /1/events/{dataset}`
    Single,
}

/// An accepted event, as recorded when recording is on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReceivedEvent {
    /// Dataset from the URL path, percent-decoded.
    pub dataset: String,
    /// The `X-Honeycomb-Team` header of its request.
    pub api_key: String,
    /// The event's fields.
    pub data: serde_json::Map<String, serde_json::Value>,
    /// The event's time as sent (`time` member, or `X-Honeycomb-Event-Time`
    /// header); msgpack timestamps and epoch numbers are converted to RFC
    /// 3339 UTC. `None` when absent.
    pub time: Option<String>,
    /// Sample rate as sent; `None` when absent.
    pub samplerate: Option<u64>,
    /// Endpoint it arrived on.
    pub endpoint: Endpoint,
    /// [`ReceivedRequest::index`] of its request.
    pub request_index: u64,
    /// Position in its batch (0 for single events).
    pub position: usize,
}

/// A request to an API endpoint (`/1/…` or unknown paths; not the control
/// endpoints), as recorded when recording is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedRequest {
    /// Sequence number, from 0, in order of arrival (not reset by
    /// [`RunningReceiver::reset`]).
    pub index: u64,
    /// HTTP method.
    pub method: String,
    /// Path as sent (still percent-encoded), without the query.
    pub path: String,
    /// Decoded dataset for batch and single-event requests.
    pub dataset: Option<String>,
    /// All headers, names lowercased, values lossily decoded as UTF-8.
    pub headers: Vec<(String, String)>,
    /// `Content-Encoding` header.
    pub content_encoding: Option<String>,
    /// `Content-Type` header.
    pub content_type: Option<String>,
    /// `User-Agent` header.
    pub user_agent: Option<String>,
    /// Body size on the wire.
    pub body_bytes: usize,
    /// The decompressed body; empty when it was not decoded (answers decided
    /// before decoding, such as 401 or a body over the size limit) or could
    /// not be.
    pub decoded_body: Vec<u8>,
    /// Number of events in the body (0 when it was not read or parsed).
    pub events: usize,
    /// HTTP status answered; 0 when the connection was dropped instead.
    pub response_status: u16,
    /// Body answered.
    pub response_body: String,
}

/// Counters since start or the last reset. Also served as JSON by
/// `GET /_receiver/stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// API requests received (control endpoints excluded).
    pub requests: u64,
    /// Events accepted (answered 202 and recorded).
    pub events_accepted: u64,
    /// Events that were parsed but not accepted (validation errors and
    /// injected faults).
    pub events_rejected: u64,
    /// Request body bytes on the wire (compressed size).
    pub bytes_received: u64,
    /// Request body bytes after decompression.
    pub bytes_decoded: u64,
    /// Distinct values of the tracked field among accepted events.
    pub distinct_tracked: u64,
    /// Accepted events whose tracked value had been seen before.
    pub duplicate_tracked: u64,
}

/// A fault to inject into the next batch or single-event requests
/// ([`RunningReceiver::push_fault`]). Faults never apply to `/1/auth` or the
/// control endpoints. Faults that shape a status array (`EventStatus` with
/// an index other than 0, `ShortStatusArray`, `LongStatusArray`,
/// `MalformedStatusBody`) are consumed but have no effect on single-event
/// requests, which have no status array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer the whole request with this status, body and optional
    /// `Retry-After` header. Its events are not accepted.
    Status {
        /// HTTP status (values outside 200..=599 become 500).
        status: u16,
        /// Response body, sent as is.
        body: String,
        /// `Retry-After` header value.
        retry_after: Option<String>,
    },
    /// Read the request, then close the connection without answering.
    DropConnection,
    /// Wait this long, then answer normally (events accepted). If the client
    /// closes the connection meanwhile, nothing is accepted.
    Delay(Duration),
    /// Answer normally, but give the event at `index` this status and error;
    /// it is accepted only if `status` is 202 (for single-event requests,
    /// index 0 answers the request with `status` and `{"error":error}`, and
    /// the event is accepted only for a 2xx status).
    EventStatus {
        /// Position of the event in the batch.
        index: usize,
        /// Its status.
        status: u16,
        /// Its error message.
        error: String,
    },
    /// Answer 200 with only the first `len` statuses; only those events can
    /// be accepted.
    ShortStatusArray {
        /// Number of statuses kept.
        len: usize,
    },
    /// Answer 200 with `extra` additional `{"status":202}` entries appended
    /// (all real events accepted as usual).
    LongStatusArray {
        /// Number of bogus statuses appended.
        extra: usize,
    },
    /// Answer 200 with a body that is not a JSON array; no event accepted.
    MalformedStatusBody,
    /// An outage of this length, starting with this request: new
    /// connections are refused (`ECONNREFUSED`) until it is over, then the
    /// receiver listens again on the same port, which stays reserved
    /// meanwhile (on Linux; see [`RunningReceiver::down_for`] for the
    /// details). This request's connection is closed without an answer
    /// once new connections are refused (its events are not accepted), and
    /// so is every other open connection.
    Down(Duration),
}

/// A started receiver. Dropping it shuts the server down.
#[derive(Debug)]
pub struct RunningReceiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown_tx: tokio::sync::watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("cfg", &self.cfg).finish()
    }
}

impl RunningReceiver {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL, e.g. `http://127.0.0.1:41234` (no trailing slash, no path
    /// prefix): where the control endpoints are, and the API too when no
    /// [path prefix](ReceiverBuilder::path_prefix) is set.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The URL to give an SDK as its API host: [`RunningReceiver::url`]
    /// followed by the normalized [path
    /// prefix](ReceiverBuilder::path_prefix), e.g.
    /// `http://127.0.0.1:41234/prefix` (no trailing slash); the same as
    /// `url()` without a prefix.
    pub fn api_host(&self) -> String {
        format!("http://{}{}", self.addr, self.shared.cfg.path_prefix)
    }

    /// A copy of the accepted events recorded so far, in acceptance order
    /// (empty unless recording).
    pub fn events(&self) -> Vec<ReceivedEvent> {
        lock(&self.shared.records).events.clone()
    }

    /// Removes and returns the recorded events (counters are unchanged).
    pub fn take_events(&self) -> Vec<ReceivedEvent> {
        std::mem::take(&mut lock(&self.shared.records).events)
    }

    /// A copy of the recorded API requests (empty unless recording).
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        lock(&self.shared.records).requests.clone()
    }

    /// Current counters.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Clears recorded events and requests, counters and tracked values.
    /// Queued faults are kept.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Blocks until at least `n` events have been accepted since start or
    /// the last reset (taking events does not lower the count), or until
    /// `timeout`; returns whether `n` was reached. Safe to call from inside
    /// an async runtime's worker only if blocking it is acceptable; prefer
    /// [`RunningReceiver::wait_for_events_async`] there.
    pub fn wait_for_events(&self, n: usize, timeout: Duration) -> bool {
        self.shared.wait_for_events(n, timeout)
    }

    /// Async version of [`RunningReceiver::wait_for_events`] (needs a tokio
    /// runtime with the time driver enabled).
    pub async fn wait_for_events_async(&self, n: usize, timeout: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.shared.accepted_notify.notified();
                if self.shared.accepted() >= n as u64 {
                    return;
                }
                // Re-check periodically too, so no wakeup can be missed.
                let _ = tokio::time::timeout(Duration::from_millis(50), notified).await;
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }

    /// Queues a fault for the next `times` batch/single-event requests. Rules
    /// are applied in FIFO order: the first rule is used until exhausted.
    pub fn push_fault(&self, fault: Fault, times: usize) {
        self.shared.push_fault(fault, times);
    }

    /// Removes all queued faults.
    pub fn clear_faults(&self) {
        self.shared.clear_faults();
    }

    /// Number of fault applications still queued.
    pub fn pending_faults(&self) -> usize {
        self.shared.pending_faults()
    }

    /// Starts an outage of `duration` now (like [`Fault::Down`], without
    /// waiting for a request), and returns once it has begun: from then on
    /// new connections are refused until it is over, and every open
    /// connection has been told to close (each is closed promptly, without
    /// an answer to a request in progress).
    ///
    /// During the outage, on Linux:
    ///
    /// * a client's `connect` fails with `ECONNREFUSED`
    ///   ([`io::ErrorKind::ConnectionRefused`]): the socket stays bound to
    ///   the port but does not listen, so the kernel answers with a reset;
    ///   connections the kernel had completed but the receiver had not yet
    ///   accepted are reset;
    /// * the port stays reserved: no other socket, in this process or
    ///   another, can bind it (`EADDRINUSE`), even with `SO_REUSEADDR`, so
    ///   no other receiver or server started meanwhile gets the traffic;
    /// * afterwards the receiver listens again on the same port, with its
    ///   recorded events, counters and queued faults unchanged.
    ///
    /// Another outage requested during one extends it if it ends later (and
    /// returns at once). On platforms where a listening socket cannot stop
    /// listening without being closed, the listener is closed for the
    /// outage and bound again afterwards, so the port may be taken
    /// meanwhile. Blocks the calling thread only until the server thread
    /// has stopped listening (well under a millisecond when idle), so it is
    /// fine to call from async code; returns at once if the receiver is
    /// shutting down.
    pub fn down_for(&self, duration: Duration) {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let down = server::DownRequest {
            duration,
            started: server::Started::Blocking(tx),
        };
        if self.shared.down_tx.send(down).is_ok() {
            // Err: the server stopped without starting the outage.
            let _ = rx.recv();
        }
    }

    /// Stops the server and waits for its threads to finish.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.shutdown_tx.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RunningReceiver {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn handle_is_send_sync() {
        assert_send_sync::<RunningReceiver>();
        assert_send_sync::<ReceiverBuilder>();
    }

    #[test]
    fn prefixes_are_normalized() {
        for (raw, want) in [
            ("", ""),
            ("/", ""),
            ("//", ""),
            ("prefix", "/prefix"),
            ("/prefix", "/prefix"),
            ("/prefix/", "/prefix"),
            ("/a/b//", "/a/b"),
            ("a/b", "/a/b"),
            ("/p%20q", "/p%20q"),
        ] {
            assert_eq!(normalize_prefix(raw).as_deref(), Ok(want), "{raw:?}");
        }
        for bad in ["/a b", "/a?b", "/a#b", "/a\tb", "/pr\u{e9}fix", "/a\n"] {
            assert!(normalize_prefix(bad).is_err(), "{bad:?}");
        }
    }
}
