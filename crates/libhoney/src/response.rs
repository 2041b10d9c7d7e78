//! Responses: the outcome of every event that `send` accepted.
//!
//! Every event accepted by [`Event::send`](crate::Event::send) gets exactly one
//! [`Response`]: delivered, rejected by the API, dropped by sampling, dropped on
//! queue overflow, too large, unencodable, or failed in transport. Responses are
//! read from [`Responses`], a bounded queue; see [`Config::block_on_response`]
//! for what happens when nobody reads it.
//!
//! [`Config::block_on_response`]: crate::Config::block_on_response

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::metrics::Metrics;

mod queue;
use queue::{PopError, Queue, Wait};

/// Data attached to an event with [`Event::add_metadata`](crate::Event::add_metadata),
/// never sent, and handed back on the event's [`Response`].
///
/// It holds any `Send + Sync + 'static` value; get it back with
/// [`downcast_ref`](Metadata::downcast_ref). Cloning is cheap (a reference count).
///
/// ```
/// use libhoney::Metadata;
/// let m = Metadata::new(("request", 42u64));
/// assert_eq!(m.downcast_ref::<(&str, u64)>(), Some(&("request", 42)));
/// assert!(m.downcast_ref::<String>().is_none());
/// ```
#[derive(Clone)]
pub struct Metadata(Arc<dyn Any + Send + Sync>);

impl Metadata {
    /// Wraps a value. Costs one allocation.
    ///
    /// ```
    /// let m = libhoney::Metadata::new(String::from("req-1"));
    /// assert_eq!(m.downcast_ref::<String>().map(String::as_str), Some("req-1"));
    /// ```
    pub fn new<T: Any + Send + Sync>(value: T) -> Self {
        Metadata(Arc::new(value))
    }

    /// A reference to the value, if it is a `T` (the exact type given to
    /// [`new`](Metadata::new): `&'static str` and `String` differ). Costs a type check.
    pub fn downcast_ref<T: Any>(&self) -> Option<&T> {
        self.0.downcast_ref::<T>()
    }

    /// Is the value a `T`? Costs a type check.
    pub fn is<T: Any>(&self) -> bool {
        self.0.is::<T>()
    }
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = self.downcast_ref::<String>() {
            return f.debug_tuple("Metadata").field(s).finish();
        }
        if let Some(s) = self.downcast_ref::<&'static str>() {
            return f.debug_tuple("Metadata").field(s).finish();
        }
        if let Some(n) = self.downcast_ref::<u64>() {
            return f.debug_tuple("Metadata").field(n).finish();
        }
        f.write_str("Metadata(..)")
    }
}

/// Why an event was not delivered. Carried by [`Response::error`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseError {
    /// Dropped by sampling (`send` with a sample rate above 1). Not an error of
    /// delivery: the event counts as represented by the ones that were kept.
    Sampled,
    /// The pending queue was full and `block_on_send` is off.
    QueueOverflow,
    /// The event's JSON is larger than the API accepts (1,000,000 bytes).
    TooLarge {
        /// The encoded size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
        /// The event's `name` field, if it has a string one.
        name: Option<String>,
        /// The event's `service.name` field, if it has a string one.
        service_name: Option<String>,
    },
    /// The event could not be encoded.
    Encoding(String),
    /// The request failed in transport (connection, timeout, DNS, TLS, proxy,
    /// HTTP protocol), after retries, or was not made (the client was closed
    /// first). [`TransportError::kind`] says which; it reads as its message
    /// (`&str`) too.
    Transport(TransportError),
    /// The API answered the whole request with a non-success HTTP status; the
    /// status is in [`Response::status_code`] and the server's message in
    /// [`Response::body`].
    HttpStatus(u16),
    /// The API rejected this event: its per-event status was not 2xx.
    Rejected(String),
    /// The API's answer did not include a status for this event (a short or
    /// malformed status array).
    MissingStatus,
    /// The API answered 2xx with a body that could not be read as per-event statuses.
    MalformedResponse(String),
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseError::Sampled => f.write_str("event dropped due to sampling"),
            ResponseError::QueueOverflow => f.write_str(
                "event dropped; queue overflow (raise pending_work_capacity or enable block_on_send)",
            ),
            ResponseError::TooLarge {
                size,
                limit,
                name,
                service_name,
            } => {
                write!(
                    f,
                    "event of {size} bytes exceeds the API's maximum event size of {limit} bytes and was not sent"
                )?;
                if let Some(n) = name {
                    write!(f, "; name: {n:?}")?;
                }
                if let Some(s) = service_name {
                    write!(f, "; service.name: {s:?}")?;
                }
                Ok(())
            }
            ResponseError::Encoding(msg) => write!(f, "event could not be encoded: {msg}"),
            ResponseError::Transport(msg) => write!(f, "transport error: {msg}"),
            ResponseError::HttpStatus(status) => {
                write!(f, "the API answered HTTP {status}; see the response body")
            }
            ResponseError::Rejected(msg) => write!(f, "the API rejected the event: {msg}"),
            ResponseError::MissingStatus => {
                f.write_str("the API's answer had no status for this event; it may not have been stored")
            }
            ResponseError::MalformedResponse(msg) => {
                write!(f, "the API's answer could not be read: {msg}")
            }
        }
    }
}

impl std::error::Error for ResponseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ResponseError::Transport(e) => Some(e),
            _ => None,
        }
    }
}

/// Why a request failed in transport: a [`TransportErrorKind`] and a message
/// (at most 1 KiB) that says what happened and, where it helps, what to do.
/// It dereferences to the message, so `err.contains("timed out")` works.
///
/// ```
/// use libhoney::{TransportError, TransportErrorKind};
/// let e = TransportError::new(TransportErrorKind::Timeout, "timed out after 10s");
/// assert_eq!(e.kind(), TransportErrorKind::Timeout);
/// assert!(e.contains("10s"));
/// // A plain message is of kind Other (custom transmissions use this).
/// assert_eq!(TransportError::from("disk full").kind(), TransportErrorKind::Other);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportError {
    kind: TransportErrorKind,
    message: String,
}

/// What kind of transport failure a [`TransportError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// No answer within `request_timeout` (retried).
    Timeout,
    /// The connection could not be opened, or was lost (retried).
    Connect,
    /// The API host's name could not be resolved (retried).
    Dns,
    /// TLS failed: a certificate that does not verify, or a refused
    /// handshake (not retried: check the host and
    /// `Config::tls_root_certificates_pem`).
    Tls,
    /// The proxy could not be used or refused the tunnel (retried).
    Proxy,
    /// The server's answer broke HTTP or was larger than the SDK reads (retried).
    Protocol,
    /// The request could not be made at all (an invalid URL or key header).
    Refused,
    /// The client was closed (or its close gave up) before the event was sent,
    /// or the transmission stopped.
    Closed,
    /// Anything else, such as a custom transmission's failure.
    Other,
}

impl TransportError {
    /// A transport error of `kind` saying `message`.
    pub fn new(kind: TransportErrorKind, message: impl Into<String>) -> Self {
        TransportError {
            kind,
            message: message.into(),
        }
    }

    /// What kind of failure it is.
    pub fn kind(&self) -> TransportErrorKind {
        self.kind
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::ops::Deref for TransportError {
    type Target = str;
    fn deref(&self) -> &str {
        &self.message
    }
}

impl From<&str> for TransportError {
    fn from(message: &str) -> Self {
        TransportError::new(TransportErrorKind::Other, message)
    }
}

impl From<String> for TransportError {
    fn from(message: String) -> Self {
        TransportError::new(TransportErrorKind::Other, message)
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TransportError {}

/// The outcome of one event.
///
/// `status_code` is the per-event status from the API (202 when stored), the
/// HTTP status when the whole request failed, or `None` when no HTTP exchange
/// decided the outcome (sampling, overflow, size, encoding, transport, or a
/// transmission such as [`Writer`](crate::transmission::Writer) that has none).
/// `duration` is the time from the batch's first send attempt to its answer.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Response {
    /// The metadata attached to the event, if any.
    pub metadata: Option<Metadata>,
    /// The HTTP or per-event status, when there is one.
    pub status_code: Option<u16>,
    /// How long the request that carried this event took.
    pub duration: Duration,
    /// The response body, when the API sent one that explains a failure.
    pub body: String,
    /// Why the event was not delivered; `None` on success.
    pub error: Option<ResponseError>,
}

impl Response {
    /// A success response. For custom transmissions, which must produce exactly
    /// one response per event; pass the event's metadata back
    /// ([`QueuedEvent::take_metadata`](crate::transmission::QueuedEvent::take_metadata)).
    ///
    /// ```
    /// use std::time::Duration;
    /// let r = libhoney::Response::success(None, Some(202), Duration::from_millis(4));
    /// assert!(r.is_success());
    /// ```
    pub fn success(
        metadata: Option<Metadata>,
        status_code: Option<u16>,
        duration: Duration,
    ) -> Self {
        Response {
            metadata,
            status_code,
            duration,
            body: String::new(),
            error: None,
        }
    }

    /// A failure response, without status code, duration or body (add them
    /// with the `with_*` methods). For custom transmissions.
    ///
    /// ```
    /// use libhoney::{Response, ResponseError};
    /// let r = Response::failure(None, ResponseError::HttpStatus(503)).with_status(503).with_body("busy");
    /// assert!(!r.is_success());
    /// assert_eq!(r.status_code, Some(503));
    /// ```
    pub fn failure(metadata: Option<Metadata>, error: ResponseError) -> Self {
        Response {
            metadata,
            status_code: None,
            duration: Duration::ZERO,
            body: String::new(),
            error: Some(error),
        }
    }

    /// Sets the status code.
    #[must_use = "a by-value setter returns the changed value: use it"]
    pub fn with_status(mut self, status: u16) -> Self {
        self.status_code = Some(status);
        self
    }

    /// Sets the duration.
    #[must_use = "a by-value setter returns the changed value: use it"]
    pub fn with_duration(mut self, duration: Duration) -> Self {
        self.duration = duration;
        self
    }

    /// Sets the body.
    #[must_use = "a by-value setter returns the changed value: use it"]
    pub fn with_body(mut self, body: impl Into<String>) -> Self {
        self.body = body.into();
        self
    }

    /// Was the event delivered? True when there is no error and the status, if
    /// any, is 2xx.
    ///
    /// ```
    /// use std::time::Duration;
    /// use libhoney::Response;
    /// assert!(Response::success(None, None, Duration::ZERO).is_success());
    /// assert!(!Response::success(None, Some(500), Duration::ZERO).is_success());
    /// ```
    pub fn is_success(&self) -> bool {
        self.error.is_none() && self.status_code.is_none_or(|s| (200..300).contains(&s))
    }
}

/// Where transmissions put responses. Cheap to clone; every clone feeds the same
/// queue.
///
/// `respond` never blocks unless `block_on_response` is on; when the queue is
/// full it drops the response and counts the drop in
/// [`MetricsSnapshot::responses_dropped`](crate::MetricsSnapshot::responses_dropped).
/// It also keeps the client's self-metrics: each response is counted once as
/// sent, sampled, overflowed or failed.
#[derive(Clone)]
pub struct Responder {
    shared: Arc<ResponderShared>,
}

struct ResponderShared {
    block: bool,
    queue: Arc<Queue>,
    metrics: Arc<Metrics>,
}

impl Drop for ResponderShared {
    fn drop(&mut self) {
        // The last responder is gone: readers stop once the queue is empty.
        self.queue.disconnect();
    }
}

impl fmt::Debug for Responder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Responder")
            .field("block", &self.shared.block)
            .field("queued", &self.shared.queue.len())
            .finish()
    }
}

impl Responder {
    /// Delivers one event's response to the client's response queue, and counts
    /// it in the self-metrics (sent, sampled, overflowed or failed).
    ///
    /// Never blocks unless `block_on_response` is on; then it waits for room in
    /// the queue, but not past the client's close. A response that finds the
    /// queue full (without blocking), or arrives after the stream ended, is
    /// dropped and counted in `responses_dropped`. Costs one uncontended lock;
    /// for many responses at once, [`respond_all`](Self::respond_all) is
    /// cheaper.
    pub fn respond(&self, response: Response) {
        self.shared.metrics.count_response(&response);
        let dropped = self.shared.queue.push_one(response, self.shared.block);
        self.shared.metrics.responses_dropped(dropped);
    }

    /// Delivers several responses (a batch's, say) in their order: the same as
    /// calling [`respond`](Self::respond) for each, but with one lock and at
    /// most one wake-up of a waiting reader for all of them. The built-in
    /// transmissions answer each batch with one call.
    pub fn respond_all(&self, responses: Vec<Response>) {
        for r in &responses {
            self.shared.metrics.count_response(r);
        }
        let dropped = self.shared.queue.push(responses, self.shared.block);
        self.shared.metrics.responses_dropped(dropped);
    }

    /// Whether delivering a response may wait for room (`block_on_response`).
    pub(crate) fn blocks(&self) -> bool {
        self.shared.block
    }

    /// The client's self-metrics, for transmissions that count batches and
    /// retries. Costs nothing.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Ends the stream (the client closed): later responses are dropped,
    /// blocked `respond` calls return, readers stop once the queue is empty.
    pub(crate) fn end(&self) {
        self.shared.queue.end();
    }
}

/// Creates the response queue: the transmission side and the reading side.
pub(crate) fn response_queue(
    capacity: usize,
    block: bool,
    metrics: Arc<Metrics>,
) -> (Responder, Responses) {
    let queue = Arc::new(Queue::new(capacity));
    (
        Responder {
            shared: Arc::new(ResponderShared {
                block,
                queue: Arc::clone(&queue),
                metrics,
            }),
        },
        Responses { queue },
    )
}

/// The reading side of a client's response queue.
///
/// Clones read from the same queue (each response goes to one reader). The
/// stream ends (`recv` returns `None`, iteration stops) once the client is
/// closed and every response has been read; [`Client::flush`](crate::Client::flush)
/// never ends it.
///
/// ```
/// use libhoney::{Client, Config, transmission::Mock};
/// let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new())).unwrap();
/// let responses = client.responses();
/// let mut ev = client.new_event();
/// ev.add_field("n", 1);
/// ev.add_metadata("first");
/// ev.send().unwrap();
/// client.close().unwrap();
/// let all: Vec<_> = responses.collect();
/// assert_eq!(all.len(), 1);
/// assert_eq!(all[0].metadata.as_ref().unwrap().downcast_ref::<&str>(), Some(&"first"));
/// ```
#[derive(Clone)]
pub struct Responses {
    queue: Arc<Queue>,
}

/// Why [`Responses::try_recv`] returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// No response is waiting right now.
    Empty,
    /// The client is closed and every response has been read.
    Ended,
}

/// Why [`Responses::recv_timeout`] returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvTimeoutError {
    /// No response arrived in time.
    Timeout,
    /// The client is closed and every response has been read.
    Ended,
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("no response is waiting"),
            TryRecvError::Ended => f.write_str("the response stream has ended"),
        }
    }
}
impl std::error::Error for TryRecvError {}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvTimeoutError::Timeout => f.write_str("no response arrived in time"),
            RecvTimeoutError::Ended => f.write_str("the response stream has ended"),
        }
    }
}
impl std::error::Error for RecvTimeoutError {}

impl fmt::Debug for Responses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Responses")
            .field("waiting", &self.queue.len())
            .finish()
    }
}

impl Responses {
    /// Waits for the next response. Returns `None` once the client is closed and
    /// every response has been read. Blocks the calling thread until then;
    /// [`Client::flush`](crate::Client::flush) does not end the wait.
    ///
    /// ```
    /// # use libhoney::{Client, Config, transmission::Mock};
    /// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
    /// let responses = client.responses();
    /// let reader = std::thread::spawn(move || {
    ///     let mut n = 0;
    ///     while let Some(r) = responses.recv() {
    ///         assert!(r.is_success());
    ///         n += 1;
    ///     }
    ///     n
    /// });
    /// let mut ev = client.new_event();
    /// ev.add_field("x", 1);
    /// ev.send()?;
    /// client.close()?;
    /// assert_eq!(reader.join().unwrap(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv(&self) -> Option<Response> {
        self.queue.pop(Wait::Forever).ok()
    }

    /// Waits up to `timeout` for the next response. Blocks at most `timeout`.
    ///
    /// ```
    /// # use libhoney::{Client, Config, transmission::Mock};
    /// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
    /// use std::time::Duration;
    /// use libhoney::RecvTimeoutError;
    /// let responses = client.responses();
    /// assert_eq!(responses.recv_timeout(Duration::from_millis(1)).unwrap_err(), RecvTimeoutError::Timeout);
    /// client.close()?;
    /// assert_eq!(responses.recv_timeout(Duration::from_secs(1)).unwrap_err(), RecvTimeoutError::Ended);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`] if nothing arrived in time,
    /// [`RecvTimeoutError::Ended`] once the client is closed and every response
    /// has been read.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Response, RecvTimeoutError> {
        let wait = match Instant::now().checked_add(timeout) {
            Some(deadline) => Wait::Until(deadline),
            None => Wait::Forever,
        };
        self.queue.pop(wait).map_err(|e| match e {
            PopError::Empty => RecvTimeoutError::Timeout,
            PopError::Ended => RecvTimeoutError::Ended,
        })
    }

    /// Takes a response if one is waiting; never blocks.
    ///
    /// ```
    /// # use libhoney::{Client, Config, transmission::Mock};
    /// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
    /// use libhoney::TryRecvError;
    /// let responses = client.responses();
    /// assert_eq!(responses.try_recv().unwrap_err(), TryRecvError::Empty);
    /// client.flush()?; // does not end the stream
    /// assert_eq!(responses.try_recv().unwrap_err(), TryRecvError::Empty);
    /// client.close()?;
    /// assert_eq!(responses.try_recv().unwrap_err(), TryRecvError::Ended);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`TryRecvError::Empty`] if no response is waiting,
    /// [`TryRecvError::Ended`] once the client is closed and every response has
    /// been read.
    pub fn try_recv(&self) -> Result<Response, TryRecvError> {
        self.queue.pop(Wait::No).map_err(|e| match e {
            PopError::Empty => TryRecvError::Empty,
            PopError::Ended => TryRecvError::Ended,
        })
    }

    /// Iterates over the responses that are waiting now, without blocking.
    ///
    /// ```
    /// # use libhoney::{Client, Config, transmission::Mock};
    /// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
    /// for i in 0..3 {
    ///     let mut ev = client.new_event();
    ///     ev.add_field("i", i);
    ///     ev.send()?;
    /// }
    /// assert_eq!(client.responses().try_iter().filter(|r| r.is_success()).count(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_iter(&self) -> impl Iterator<Item = Response> + '_ {
        std::iter::from_fn(move || self.try_recv().ok())
    }

    /// How many responses are waiting. Costs nothing.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Is no response waiting? Costs nothing.
    pub fn is_empty(&self) -> bool {
        self.queue.len() == 0
    }

    /// Has the client been closed? (Responses may still be waiting to be read.)
    /// Costs nothing.
    pub fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }
}

impl Iterator for Responses {
    type Item = Response;
    /// Blocks until the next response; ends after the client is closed.
    fn next(&mut self) -> Option<Response> {
        self.recv()
    }
}

impl Iterator for &Responses {
    type Item = Response;
    fn next(&mut self) -> Option<Response> {
        self.recv()
    }
}
