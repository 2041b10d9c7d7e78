//! Typed errors. Each operation returns an error type that lists only what that
//! operation can produce; every message says what to do about it.
//!
//! Problems with an event *after* `send` accepted it (sampling, overflow, size,
//! encoding, network, API rejections) are not errors of `send`: they arrive as a
//! [`Response`](crate::Response) carrying a [`ResponseError`](crate::ResponseError).

use std::fmt;
use std::sync::Arc;
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
    /// An option needs a Cargo feature of `libhoney-sdk` that this build
    /// leaves out (see the crate docs, "Cargo features"). Enable the
    /// feature, or choose another option: the client never falls back to
    /// another wire format on its own.
    ///
    /// ```
    /// use libhoney::{Client, Config, ConfigError, Encoding, transmission::Mock};
    /// let config = Config::new().encoding(Encoding::Msgpack).transmission(Mock::new());
    /// match Client::new(config) {
    ///     Ok(_) => {} // the `msgpack` feature is on (it is by default)
    ///     Err(ConfigError::FeatureDisabled { option, feature }) => {
    ///         assert_eq!((option, feature), ("Encoding::Msgpack", "msgpack"));
    ///     }
    ///     Err(other) => panic!("{other}"),
    /// }
    /// ```
    FeatureDisabled {
        /// The option as written in code: `Compression::Zstd`,
        /// `Compression::Gzip`, `Encoding::Msgpack` or
        /// `tls_root_certificates_pem`.
        option: &'static str,
        /// The feature to enable: `zstd`, `gzip`, `msgpack` or `http` (for
        /// `tls_root_certificates_pem`, `tokio` serves as well).
        feature: &'static str,
    },
    /// No transmission was given ([`Config::transmission`](crate::Config::transmission))
    /// and the default one, [`Http`](crate::transmission::Http), is not built:
    /// the `http` feature is off. Enable it, or pass a transmission (`Tokio`
    /// with the `tokio` feature, `Writer`, `Mock`, or your own).
    NoTransmission,
    /// The transmission is already in use: each of the built-in ones (and
    /// each clone of `Mock`, `Writer` or `Tokio`, which share one state)
    /// serves one client and starts once. Create a new one for this client.
    /// A transmission of your own may return it too, with its own name.
    TransmissionInUse {
        /// Which transmission: `"Http"`, `"Tokio"`, `"Writer"`, `"Mock"` or
        /// `"Discard"` (or the name a transmission of your own gives).
        transmission: &'static str,
    },
    /// `transmission::Tokio::new()` was given to a client built outside a
    /// tokio runtime. Build the client inside the runtime (in an `async`
    /// function, or within `Runtime::enter`), or use `Tokio::with_handle`.
    NoTokioRuntime,
    /// The tokio runtime that `transmission::Tokio` would run on lacks a
    /// driver it needs: build the runtime with `enable_all()` (as
    /// `#[tokio::main]` and `#[tokio::test]` do).
    TokioDriverMissing {
        /// The missing driver: `"time"` or `"I/O"`.
        driver: &'static str,
    },
    /// TLS could not be set up with the configured settings (rustls refused
    /// them; with the built-in roots this does not happen).
    TlsSetup {
        /// rustls's explanation.
        reason: String,
    },
    /// The [`user_agent_addition`](crate::Config::user_agent_addition) holds a
    /// character an HTTP header cannot carry (a control character such as a
    /// line break). Reported by the `Tokio` transmission.
    InvalidUserAgent,
    /// A thread the transmission needs could not be started (the operating
    /// system refused: too many threads, or out of memory).
    ThreadSpawn {
        /// The operating system's explanation.
        reason: String,
    },
    /// A transmission of your own could not start: what its
    /// [`Transmission::start`](crate::transmission::Transmission::start)
    /// returned, with your error as the [`StartError`]'s. The built-in
    /// transmissions report the typed variants above instead.
    ///
    /// ```
    /// use libhoney::ConfigError;
    /// let err = ConfigError::Transmission("the spool directory is missing".into());
    /// assert_eq!(err.to_string(), "the transmission could not start: the spool directory is missing");
    /// ```
    Transmission(StartError),
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
            ConfigError::FeatureDisabled { option, feature } => {
                // The roots serve both HTTP transmissions: either feature will do.
                let or = if *option == "tls_root_certificates_pem" {
                    " (or `tokio`, for the Tokio transmission)"
                } else {
                    ""
                };
                write!(
                    f,
                    "{option} needs the `{feature}` feature of libhoney-sdk{or}, which this build leaves out: enable it in Cargo.toml (features = [\"{feature}\"]) or choose another option"
                )
            }
            ConfigError::NoTransmission => f.write_str(
                "no transmission: the default one, Http, needs the `http` feature of libhoney-sdk, which this build leaves out; enable it, or give one with Config::transmission (Tokio with the `tokio` feature, Writer, Mock, or your own)",
            ),
            ConfigError::TransmissionInUse { transmission } => write!(
                f,
                "this {transmission} transmission is already used by another client (a transmission serves one client): create a new one for this client"
            ),
            ConfigError::NoTokioRuntime => f.write_str(
                "no tokio runtime: build the client inside one (in async code, or within Runtime::enter), or give the runtime with Tokio::with_handle",
            ),
            ConfigError::TokioDriverMissing { driver } => write!(
                f,
                "the tokio runtime has no {driver} driver: build it with enable_all()"
            ),
            ConfigError::TlsSetup { reason } => write!(
                f,
                "TLS could not be set up: {reason}; check the TLS settings (tls_root_certificates_pem)"
            ),
            ConfigError::InvalidUserAgent => f.write_str(
                "the user agent addition holds a character an HTTP header cannot carry (a control character such as a line break): remove it",
            ),
            ConfigError::ThreadSpawn { reason } => write!(
                f,
                "the transmission could not start a thread: {reason}; the system is out of threads or memory"
            ),
            ConfigError::Transmission(e) => write!(f, "the transmission could not start: {e}"),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Transmission(e) => Some(e),
            _ => None,
        }
    }
}

/// Why a transmission of your own could not start
/// ([`ConfigError::Transmission`]): any error, or a message. Cloning it
/// shares the error (one reference count); two are equal when their
/// messages are.
///
/// ```
/// use libhoney::{ConfigError, StartError};
/// let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no spool directory");
/// let err = ConfigError::Transmission(StartError::new(io));
/// let inner = std::error::Error::source(&err).unwrap();
/// assert_eq!(inner.to_string(), "no spool directory");
/// // Your own error type is there to downcast:
/// let ConfigError::Transmission(start) = &err else { unreachable!() };
/// assert!(start.get_ref().downcast_ref::<std::io::Error>().is_some());
/// ```
#[derive(Clone)]
pub struct StartError(Arc<dyn std::error::Error + Send + Sync + 'static>);

impl StartError {
    /// Wraps an error (or a message: `&str` and `String` convert too).
    /// Costs one allocation.
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        StartError(Arc::from(error.into()))
    }

    /// The error given to [`new`](StartError::new), to downcast to your own type.
    pub fn get_ref(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl fmt::Debug for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("StartError").field(&self.0).finish()
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl PartialEq for StartError {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.to_string() == other.0.to_string()
    }
}

impl Eq for StartError {}

impl From<&str> for StartError {
    fn from(message: &str) -> Self {
        StartError::new(message)
    }
}

impl From<String> for StartError {
    fn from(message: String) -> Self {
        StartError::new(message)
    }
}

impl From<Box<dyn std::error::Error + Send + Sync + 'static>> for StartError {
    fn from(error: Box<dyn std::error::Error + Send + Sync + 'static>) -> Self {
        StartError::new(error)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn transmission_errors_say_what_to_do() {
        for (err, says) in [
            (
                ConfigError::TransmissionInUse {
                    transmission: "Mock",
                },
                "create a new one",
            ),
            (ConfigError::NoTokioRuntime, "Tokio::with_handle"),
            (
                ConfigError::TokioDriverMissing { driver: "time" },
                "no time driver: build it with enable_all()",
            ),
            (
                ConfigError::TlsSetup {
                    reason: "no protocol".into(),
                },
                "TLS could not be set up: no protocol",
            ),
            (ConfigError::InvalidUserAgent, "remove it"),
            (
                ConfigError::ThreadSpawn {
                    reason: "out of threads".into(),
                },
                "could not start a thread: out of threads",
            ),
        ] {
            assert!(err.to_string().contains(says), "{err}");
            assert!(err.source().is_none(), "{err:?}");
        }
    }

    #[test]
    fn a_start_error_keeps_its_source_and_compares_by_message() {
        #[derive(Debug)]
        struct Spool(std::io::Error);
        impl fmt::Display for Spool {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("no spool")
            }
        }
        impl std::error::Error for Spool {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "missing dir");
        let err = ConfigError::Transmission(StartError::new(Spool(io)));
        assert_eq!(
            err.to_string(),
            "the transmission could not start: no spool"
        );
        // The chain: ConfigError -> StartError (its message) -> the spool's source.
        let start = err.source().unwrap();
        assert_eq!(start.to_string(), "no spool");
        assert_eq!(start.source().unwrap().to_string(), "missing dir");
        let ConfigError::Transmission(inner) = &err else {
            panic!("{err:?}")
        };
        assert!(inner.get_ref().downcast_ref::<Spool>().is_some());
        // Clones share it; equality is by message.
        assert_eq!(err.clone(), err);
        assert_eq!(StartError::from("no spool"), inner.clone());
        assert_ne!(StartError::from("other"), inner.clone());
        assert_eq!(
            StartError::from(String::from("x")),
            StartError::from(Box::<dyn std::error::Error + Send + Sync>::from("x"))
        );
    }
}
