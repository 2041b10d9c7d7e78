//! Transmissions: what carries accepted events somewhere and answers for each.
//!
//! A [`Client`](crate::Client) samples and validates events, then hands each
//! accepted one to its transmission as a [`QueuedEvent`]. The transmission's one
//! duty is to produce **exactly one [`Response`](crate::Response) per event**
//! through the [`Responder`] it got in [`Transmission::start`]. A
//! transmission that answers many events at once (a batch) should hand them
//! over with [`Responder::respond_all`]: one lock and at most one wake-up of a
//! waiting reader for all of them, where [`Responder::respond`] costs one of
//! each per event.
//!
//! Built in:
//! - [`Http`]: the default; batches, compresses and sends to the Events API.
//! - [`Writer`]: one JSON line per event to any `io::Write` (stderr by default),
//!   the counterpart of libhoney-py's `FileTransmission`.
//! - [`Mock`]: records events, for your tests.
//! - [`Discard`]: drops events (each still gets a response).
//!
//! # Writing your own
//!
//! ```
//! use std::sync::{Mutex, OnceLock};
//! use std::time::Duration;
//! use libhoney::{CloseError, FlushError, Response};
//! use libhoney::transmission::{Context, QueuedEvent, Transmission, Responder};
//!
//! /// Counts events per dataset and answers each with success.
//! #[derive(Default)]
//! struct Counting {
//!     responder: OnceLock<Responder>,
//!     seen: Mutex<std::collections::HashMap<String, usize>>,
//! }
//!
//! impl Transmission for Counting {
//!     fn start(&self, ctx: Context) -> Result<(), libhoney::ConfigError> {
//!         self.responder.set(ctx.responder().clone())
//!             .map_err(|_| libhoney::ConfigError::TransmissionInUse { transmission: "Counting" })
//!     }
//!     fn send(&self, mut event: QueuedEvent) {
//!         *self.seen.lock().unwrap().entry(event.dataset().to_string()).or_default() += 1;
//!         let response = Response::success(event.take_metadata(), None, Duration::ZERO);
//!         self.responder.get().expect("started").respond(response);
//!     }
//!     fn flush(&self, _timeout: Duration) -> Result<(), FlushError> { Ok(()) }
//!     fn close(&self, _timeout: Duration) -> Result<(), CloseError> { Ok(()) }
//! }
//!
//! let client = libhoney::Client::new(
//!     libhoney::Config::new().api_key("k").dataset("d").transmission(Counting::default()),
//! ).unwrap();
//! let mut ev = client.new_event();
//! ev.add_field("x", 1);
//! ev.send().unwrap();
//! assert!(client.responses().recv().unwrap().is_success());
//! ```

use std::fmt;
use std::time::{Duration, SystemTime};

use crate::config::Config;
use crate::destination::Destination;
use crate::error::{CloseError, ConfigError, FlushError};
use crate::event::debug_event;
use crate::fields::LayeredFields;
use crate::response::Metadata;
pub use crate::response::Responder;
use crate::value::Value;

mod discard;
mod driver;
mod mock;
// The HTTP transmissions' engine. A build with neither of them (no `http`,
// no `tokio`) still compiles it, for the benchmarks' `__bench` module, but
// nothing there runs it.
#[cfg_attr(
    not(any(feature = "http", feature = "tokio")),
    allow(dead_code, unused_imports)
)]
pub(crate) mod pipeline;
mod writer;

pub use discard::Discard;
#[cfg(feature = "http")]
pub use driver::threads::Http;
#[cfg(feature = "tokio")]
pub use driver::tokio::Tokio;
pub use mock::Mock;
pub use writer::Writer;

/// Carries events somewhere. Object safe; every method takes `&self` and may be
/// called from any thread.
///
/// The contract:
/// - [`start`](Transmission::start) is called once, by the client, before any event.
/// - [`send`](Transmission::send) must produce exactly one response per event, via
///   the [`Responder`], eventually (also after a failure, and when the
///   transmission is closed). It must not block longer than the configured
///   [`block_on_send`](crate::Config::block_on_send) allows.
/// - [`flush`](Transmission::flush) returns once every event sent before it has
///   its response, or with [`FlushError::Timeout`].
/// - [`close`](Transmission::close) flushes, then stops; it is called once.
pub trait Transmission: Send + Sync + 'static {
    /// Prepares to send, with the client's resolved configuration and its
    /// response queue.
    ///
    /// # Errors
    /// What [`Client::new`](crate::Client::new) then returns. A transmission
    /// of your own returns [`ConfigError::Transmission`] with its reason
    /// (a message or any error: see [`StartError`](crate::StartError)), or
    /// [`ConfigError::TransmissionInUse`] when it was already started by
    /// another client. The built-in ones return the typed variants of
    /// [`ConfigError`] that say why.
    fn start(&self, ctx: Context) -> Result<(), ConfigError>;

    /// Takes one accepted event.
    fn send(&self, event: QueuedEvent);

    /// Takes one accepted event, awaiting room where [`send`](Transmission::send)
    /// would answer `QueueOverflow` (what
    /// [`Event::send_async`](crate::Event::send_async) calls). The default
    /// calls `send`: a transmission whose `send` never overflows needs nothing
    /// more. The future must not need a particular async runtime.
    fn send_async<'a>(&'a self, event: QueuedEvent) -> SendFuture<'a> {
        self.send(event);
        Box::pin(std::future::ready(()))
    }

    /// Whether a blocking [`flush`](Transmission::flush) or
    /// [`close`](Transmission::close) on the calling thread, with events
    /// in flight, would stall the very work it waits for (the thread runs a
    /// current-thread async runtime the transmission runs on). The client then
    /// refuses the blocking call at once instead of waiting
    /// ([`FlushError::InsideRuntime`], [`CloseError::InsideRuntime`]). The
    /// default: never.
    fn blocking_wait_stalls(&self) -> bool {
        false
    }

    /// Waits until every event sent so far has its response, up to `timeout`.
    ///
    /// # Errors
    /// [`FlushError::Timeout`] when the time runs out first.
    fn flush(&self, timeout: Duration) -> Result<(), FlushError>;

    /// Flushes, then stops for good, within `timeout`.
    ///
    /// # Errors
    /// [`CloseError::Timeout`] when the time runs out first.
    fn close(&self, timeout: Duration) -> Result<(), CloseError>;

    /// Events waiting in this transmission right now (for self-metrics).
    fn queue_len(&self) -> usize {
        0
    }
}

/// The future [`Transmission::send_async`] returns.
pub type SendFuture<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;

/// What a transmission receives when it starts.
#[derive(Clone)]
pub struct Context {
    pub(crate) responder: Responder,
    pub(crate) config: Config,
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("responder", &self.responder)
            .field("config", &self.config)
            .finish()
    }
}

impl Context {
    /// Where to put each event's response.
    pub fn responder(&self) -> &Responder {
        &self.responder
    }

    /// The client's configuration, with environment values applied and checked.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

/// An event accepted by the client, on its way through a transmission.
///
/// It is immutable apart from [`take_metadata`](QueuedEvent::take_metadata);
/// encode it with [`to_json`](QueuedEvent::to_json) or read its parts.
#[derive(Clone)]
pub struct QueuedEvent {
    pub(crate) fields: LayeredFields,
    pub(crate) dest: Destination,
    pub(crate) sample_rate: u32,
    pub(crate) timestamp: SystemTime,
    pub(crate) metadata: Option<Metadata>,
}

impl fmt::Debug for QueuedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_event(
            f,
            "QueuedEvent",
            &self.dest,
            self.sample_rate,
            &self.timestamp,
            &self.fields,
            &self.metadata,
        )
    }
}

impl QueuedEvent {
    /// Every field, inherited ones first, each name once.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.fields.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The value of one field.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.get(name)
    }

    /// The event's time.
    pub fn timestamp(&self) -> SystemTime {
        self.timestamp
    }

    /// The sample rate the event carries (1 = unsampled).
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// The dataset.
    pub fn dataset(&self) -> &str {
        self.dest.dataset()
    }

    /// The API key. Never log it.
    pub fn api_key(&self) -> &str {
        self.dest.api_key()
    }

    /// The API host, without a trailing slash.
    pub fn api_host(&self) -> &str {
        self.dest.api_host()
    }

    /// The metadata, if any.
    pub fn metadata(&self) -> Option<&Metadata> {
        self.metadata.as_ref()
    }

    /// Takes the metadata out, to put it on the event's response.
    pub fn take_metadata(&mut self) -> Option<Metadata> {
        self.metadata.take()
    }

    /// The event as the Events API's batch item:
    /// `{"data":{...},"samplerate":N,"time":"..."}` (`samplerate` left out at 1),
    /// with non-finite floats sent as strings.
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(256);
        crate::encoding::json::write_event(&mut out, self, crate::config::NonFiniteFloats::String);
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(all(test, target_pointer_width = "64"))]
mod tests {
    #[test]
    fn a_queued_event_stays_small() {
        // Every event is moved through a slot of the event queue, written by
        // the sending thread and read by the batcher on another core: each
        // byte here costs cache traffic (see `Config::pending_work_capacity`).
        assert!(std::mem::size_of::<super::QueuedEvent>() <= 120);
    }
}
