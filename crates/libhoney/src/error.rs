//! Typed errors. Each operation returns an error type that lists only what that
//! operation can produce; every message says what to do about it.
//!
//! Problems with an event *after* `send` accepted it (sampling, overflow, size,
//! encoding, network, API rejections) are not errors of `send`: they arrive as a
//! [`Response`](crate::Response) carrying a [`ResponseError`](crate::ResponseError).

use std::fmt;
use std::time::Duration;

/// An invalid setting, reported when a [`Client`](crate::Client) is built (never
/// later, and never as a panic).
///
/// ```
/// use libhoney::{Client, Config, ConfigError, transmission::Discard};
/// let err = Client::new(Config::new().pending_work_capacity(0).transmission(Discard::new()))
///     .unwrap_err();
/// assert_eq!(err, ConfigError::Zero { option: "pending_work_capacity" });
/// assert_eq!(err.to_string(), "`pending_work_capacity` must be at least 1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A sample rate of 0. A rate of N keeps one event in N; use 1 to keep all.
    ZeroSampleRate,
    /// A capacity, size or count option was 0.
    Zero {
        /// The option's name, as its setter is called.
        option: &'static str,
    },
    /// A duration option was zero.
    ZeroDuration {
        /// The option's name, as its setter is called.
        option: &'static str,
    },
    /// The API host is not an `http://` or `https://` URL with a host name.
    InvalidApiHost {
        /// The rejected value, with any credentials in it (`user:password@`)
        /// replaced by `***@`.
        host: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The proxy setting is not a usable proxy URL.
    InvalidProxy {
        /// What is wrong with it (the URL itself is not repeated: it may hold a password).
        reason: String,
    },
    /// The text given to
    /// [`Config::tls_root_certificates_pem`](crate::Config::tls_root_certificates_pem)
    /// holds no certificate, a block that is not valid PEM, or one that is
    /// no certificate rustls can trust.
    InvalidRootCertificates {
        /// What is wrong with it.
        reason: String,
    },
    /// The compression level is out of range for the chosen algorithm.
    InvalidCompressionLevel {
        /// The rejected level.
        level: i32,
        /// The accepted range.
        range: (i32, i32),
    },
    /// The transmission could not start (for example, it was already started by another client).
    Transmission(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::ZeroSampleRate => f.write_str(
                "sample rate 0 is invalid: a rate of N keeps 1 event in N, use 1 to keep every event",
            ),
            ConfigError::Zero { option } => {
                write!(f, "`{option}` must be at least 1")
            }
            ConfigError::ZeroDuration { option } => {
                write!(f, "`{option}` must be longer than zero")
            }
            ConfigError::InvalidApiHost { host, reason } => write!(
                f,
                "invalid api_host {host:?}: {reason}; expected a URL such as https://api.honeycomb.io"
            ),
            ConfigError::InvalidProxy { reason } => write!(
                f,
                "invalid proxy: {reason}; expected a URL such as http://user:password@proxy:3128"
            ),
            ConfigError::InvalidRootCertificates { reason } => write!(
                f,
                "invalid TLS root certificates: {reason}; expected PEM text with one or more -----BEGIN CERTIFICATE----- blocks"
            ),
            ConfigError::InvalidCompressionLevel { level, range } => write!(
                f,
                "compression level {level} is out of range; use {}..={}",
                range.0, range.1
            ),
            ConfigError::Transmission(msg) => write!(f, "the transmission could not start: {msg}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Why [`Event::send`](crate::Event::send) refused an event. A refused event gets
/// no response: the error is the answer. Checks cost nothing: the destination's
/// validity is worked out once, when its key, dataset or host is set.
///
/// ```
/// # use libhoney::{Client, Config, SendError, transmission::Mock};
/// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
/// let mut ev = client.new_event();
/// ev.add_field("x", 1).set_api_host("localhost:8080"); // no scheme
/// match ev.send() {
///     Err(SendError::InvalidApiHost { host, reason }) => eprintln!("{host}: {reason}"),
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The event has no fields.
    EmptyEvent,
    /// No API key: set one on the config, builder or event, or in `HONEYCOMB_API_KEY`.
    MissingApiKey,
    /// No dataset: set one on the config, builder or event, or in `HONEYCOMB_DATASET`.
    MissingDataset,
    /// The API host is empty.
    MissingApiHost,
    /// The API host set on the builder or event is not a valid URL.
    InvalidApiHost {
        /// The rejected value, with any credentials in it (`user:password@`)
        /// replaced by `***@`.
        host: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The sample rate set on the builder or event is 0.
    ZeroSampleRate,
    /// The event's timestamp ([`Event::set_timestamp`](crate::Event::set_timestamp))
    /// falls outside the years 0000 to 9999, which RFC 3339, the Events API's
    /// time format, cannot express.
    TimestampOutOfRange,
    /// A field's value nests arrays and objects deeper than
    /// [`Value::MAX_DEPTH`](crate::Value::MAX_DEPTH) levels (only a value
    /// built by hand and given to `add_field` can: `add` refuses such values
    /// with [`FieldError::TooDeep`]). The event is not sent.
    TooDeep {
        /// The first such field.
        field: String,
        /// The limit, [`Value::MAX_DEPTH`](crate::Value::MAX_DEPTH).
        limit: usize,
    },
    /// The client was closed; events can no longer be sent through it.
    Closed,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::EmptyEvent => f.write_str("the event has no fields; add at least one field before sending"),
            SendError::MissingApiKey => f.write_str(
                "no API key: set Config::api_key, a builder or event api key, or HONEYCOMB_API_KEY",
            ),
            SendError::MissingDataset => f.write_str(
                "no dataset: set Config::dataset, a builder or event dataset, or HONEYCOMB_DATASET",
            ),
            SendError::MissingApiHost => f.write_str(
                "the API host is empty: set one such as https://api.honeycomb.io",
            ),
            SendError::InvalidApiHost { host, reason } => write!(
                f,
                "invalid API host {host:?}: {reason}; expected a URL such as https://api.honeycomb.io"
            ),
            SendError::ZeroSampleRate => f.write_str(
                "sample rate 0 is invalid: a rate of N keeps 1 event in N, use 1 to keep every event",
            ),
            SendError::TimestampOutOfRange => f.write_str(
                "the event's timestamp is outside the years 0000 to 9999 that RFC 3339 can express; set a timestamp within them",
            ),
            SendError::TooDeep { field, limit } => write!(
                f,
                "field {field:?} nests arrays and objects more than {limit} levels deep; flatten it or send it as a string"
            ),
            SendError::Closed => f.write_str("the client is closed; create a new client to send more events"),
        }
    }
}

impl std::error::Error for SendError {}

/// Why fields could not be added with `add` or converted with
/// [`Value::from_serialize`](crate::Value::from_serialize). Nothing is added
/// when `add` fails.
///
/// ```
/// # use libhoney::{Client, Config, FieldError, transmission::Mock};
/// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
/// let mut ev = client.new_event();
/// assert_eq!(ev.add(&vec![1, 2]).unwrap_err(), FieldError::NotAnObject { found: "a sequence" });
/// assert!(ev.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldError {
    /// `add` takes a struct or a map; its top-level keys become fields.
    NotAnObject {
        /// What the value serialized as instead ("a sequence", "a string", ...).
        found: &'static str,
    },
    /// The value could not be serialized: see [`SerializeError`] for why
    /// (also its [`source`](std::error::Error::source)).
    Serialize(SerializeError),
    /// A value nests arrays and objects deeper than
    /// [`Value::MAX_DEPTH`](crate::Value::MAX_DEPTH) levels.
    TooDeep {
        /// The limit, [`Value::MAX_DEPTH`](crate::Value::MAX_DEPTH).
        limit: usize,
    },
}

/// Why a value could not be serialized into fields ([`FieldError::Serialize`]).
///
/// ```
/// use libhoney::{FieldError, SerializeError, Value};
/// use std::collections::BTreeMap;
/// let map: BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into();
/// let err = Value::from_serialize(&map).unwrap_err();
/// assert_eq!(err, FieldError::Serialize(SerializeError::KeyNotScalar { found: "a tuple" }));
/// assert!(std::error::Error::source(&err).is_some());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SerializeError {
    /// The value's own `Serialize` implementation reported an error (serde's
    /// `Error::custom`): its message, at most as long as that implementation made it.
    Custom(String),
    /// A map key was not a string, integer, char or bool, so it cannot name a field.
    KeyNotScalar {
        /// What the key serialized as ("a float", "a sequence", ...).
        found: &'static str,
    },
    /// A `SerializeMap` implementation gave a value before its key.
    ValueWithoutKey,
}

impl fmt::Display for SerializeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SerializeError::Custom(msg) => {
                write!(f, "the value's Serialize implementation failed: {msg}")
            }
            SerializeError::KeyNotScalar { found } => write!(
                f,
                "a map key must be a string, integer, char or bool, not {found}"
            ),
            SerializeError::ValueWithoutKey => f.write_str(
                "a map value came without a key (a bug in that type's Serialize implementation)",
            ),
        }
    }
}

impl std::error::Error for SerializeError {}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldError::NotAnObject { found } => write!(
                f,
                "add() needs a struct or map whose keys become fields, but got {found}; use add_field for a single value"
            ),
            FieldError::Serialize(e) => write!(f, "could not serialize the fields: {e}"),
            FieldError::TooDeep { limit } => write!(
                f,
                "a value nests arrays and objects more than {limit} levels deep; flatten it or add it as a string"
            ),
        }
    }
}

impl std::error::Error for FieldError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FieldError::Serialize(e) => Some(e),
            FieldError::NotAnObject { .. } | FieldError::TooDeep { .. } => None,
        }
    }
}

/// Why a flush did not complete.
///
/// ```
/// # use libhoney::{Client, Config, FlushError, transmission::Mock};
/// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
/// client.close()?;
/// assert_eq!(client.flush(), Err(FlushError::Closed));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlushError {
    /// The timeout passed before every event accepted before the flush had its
    /// outcome. Delivery goes on in the background; responses still arrive.
    Timeout {
        /// The timeout that passed.
        timeout: Duration,
        /// Events still without an outcome when it passed (0 if unknown).
        pending: usize,
    },
    /// The client is closed; there is nothing left to flush.
    Closed,
    /// The blocking flush was called on the thread of a current-thread async
    /// runtime that the transmission runs on, with events in flight: waiting
    /// would stall the very work it waits for, so it refused at once. Await
    /// [`Client::flush_async`](crate::Client::flush_async) (or the
    /// transmission's own async flush) instead.
    InsideRuntime,
}

impl fmt::Display for FlushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlushError::Timeout { timeout, pending } => write!(
                f,
                "flush timed out after {timeout:?} with {pending} events still in flight; they are still being delivered, use a longer timeout to wait for them"
            ),
            FlushError::Closed => f.write_str("the client is closed; nothing is left to flush"),
            FlushError::InsideRuntime => f.write_str(
                "flush() would block the thread of the current-thread async runtime that delivers the events: await client.flush_async(timeout) instead",
            ),
        }
    }
}

impl std::error::Error for FlushError {}

/// Why a close did not drain everything. The client is closed all the same,
/// except after [`CloseError::InsideRuntime`].
///
/// ```
/// # use libhoney::{Client, Config, transmission::Mock};
/// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
/// if let Err(e) = client.close() {
///     eprintln!("some events may be lost: {e}");
/// }
/// assert!(client.is_closed());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseError {
    /// The timeout passed before every event had its outcome (or a send was
    /// still waiting for room in a full queue). The client is closed anyway;
    /// events still in flight were abandoned, and their responses are counted
    /// as dropped.
    Timeout {
        /// The timeout that passed.
        timeout: Duration,
        /// Events (or sends) still without an outcome when it passed (0 if unknown).
        pending: usize,
    },
    /// The blocking close was called on the thread of a current-thread async
    /// runtime that the transmission runs on, with events in flight: waiting
    /// would stall the very work it waits for, so it refused at once and the
    /// client stays open. Await
    /// [`Client::close_async`](crate::Client::close_async) instead.
    InsideRuntime,
}

impl fmt::Display for CloseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseError::Timeout { timeout, pending } => write!(
                f,
                "close timed out after {timeout:?} with {pending} events undelivered; use a longer timeout to let them drain"
            ),
            CloseError::InsideRuntime => f.write_str(
                "close() would block the thread of the current-thread async runtime that delivers the events, so the client is still open: await client.close_async(timeout) instead",
            ),
        }
    }
}

impl std::error::Error for CloseError {}

/// A global function was used before [`init`](crate::init) (or after
/// [`close`](crate::close)).
///
/// ```
/// assert_eq!(libhoney::new_event().unwrap_err(), libhoney::NotInitialized);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotInitialized;

impl fmt::Display for NotInitialized {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the global client is not initialized: call libhoney::init first")
    }
}

impl std::error::Error for NotInitialized {}

/// The error of a module function that forwards to the default client
/// ([`add`](crate::add), [`flush`](crate::flush)): either there is no default
/// client, or the client's own operation failed. The client's methods return
/// the inner error type alone, so that each lists only what it can produce.
///
/// ```
/// use libhoney::{FlushError, GlobalError};
/// assert_eq!(libhoney::flush(), Err(GlobalError::<FlushError>::NotInitialized));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GlobalError<E> {
    /// Called before [`init`](crate::init) (or after [`close`](crate::close)).
    NotInitialized,
    /// The default client's operation failed (also the [`source`](std::error::Error::source)).
    Client(E),
}

impl<E> From<E> for GlobalError<E> {
    fn from(e: E) -> Self {
        GlobalError::Client(e)
    }
}

impl<E: fmt::Display> fmt::Display for GlobalError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GlobalError::NotInitialized => fmt::Display::fmt(&NotInitialized, f),
            GlobalError::Client(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for GlobalError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            GlobalError::NotInitialized => None,
            GlobalError::Client(e) => Some(e),
        }
    }
}
