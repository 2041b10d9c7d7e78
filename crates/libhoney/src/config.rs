//! Configuration: every option of libhoney-py and libhoney-go, builder style.
//!
//! Every option takes effect, whatever the transmission (libhoney-py ignores
//! `max_batch_size` and `send_frequency` unless you build its transmission
//! yourself). Invalid settings are a [`ConfigError`] when the client is built.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::ConfigError;
use crate::transmission::Transmission;

/// The Honeycomb API host used when none is configured.
pub const DEFAULT_API_HOST: &str = "https://api.honeycomb.io";
/// The dataset used for environment (non-classic) keys when none is set.
pub const DEFAULT_DATASET: &str = "unknown_dataset";
/// The largest event the Events API accepts, in bytes of JSON.
pub const API_MAX_EVENT_BYTES: usize = 1_000_000;
/// The largest batch body the Events API accepts, in bytes before compression.
pub const API_MAX_BATCH_BYTES: usize = 5_000_000;

/// Durations above this (100 years) are treated as this, so that `Duration::MAX`
/// can mean "wait forever" without overflowing an `Instant`.
/// The default of [`Config::max_pending_bytes`].
pub(crate) const DEFAULT_MAX_PENDING_BYTES: usize = 48 << 20;

/// The default of [`Config::response_queue_capacity`] when the pending queue
/// is bounded by memory (the default): 16,384 responses, about 2 MiB when
/// full, which a reader descheduled for 25 ms at 600,000 events a second
/// does not overflow.
pub const DEFAULT_RESPONSE_QUEUE_CAPACITY: usize = 16_384;

pub(crate) const LONGEST_WAIT: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// How batch bodies are compressed. `Content-Encoding` says which.
///
/// Every variant exists in every build; `Zstd` needs the `zstd` feature and
/// `Gzip` the `gzip` feature (both on by default). Choosing one whose feature
/// is off is a [`ConfigError::FeatureDisabled`] from
/// [`Client::new`](crate::Client::new). Without a choice, the client takes
/// the [default](Compression::default): the best one built in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// zstd (the default, as libhoney-go): the best ratio for the CPU spent.
    /// Feature `zstd`.
    Zstd,
    /// gzip, for proxies or receivers that do not take zstd. Feature `gzip`.
    Gzip,
    /// No compression.
    None,
}

impl Default for Compression {
    /// The best compression this build has: [`Zstd`](Compression::Zstd)
    /// with the `zstd` feature (on by default), else
    /// [`Gzip`](Compression::Gzip) with the `gzip` feature, else
    /// [`None`](Compression::None). The default of [`Config::compression`].
    ///
    /// ```
    /// # #[cfg(feature = "zstd")]
    /// assert_eq!(libhoney::Compression::default(), libhoney::Compression::Zstd);
    /// ```
    fn default() -> Self {
        Compiled::THIS_BUILD.default_compression()
    }
}

/// How batch bodies are encoded. `Content-Type` says which.
///
/// Both variants exist in every build; `Msgpack` needs the `msgpack` feature
/// (on by default): choosing it without the feature is a
/// [`ConfigError::FeatureDisabled`] from [`Client::new`](crate::Client::new).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Encoding {
    /// `application/json` (the default).
    #[default]
    Json,
    /// `application/msgpack`: smaller and cheaper to encode; same shape.
    /// Feature `msgpack`.
    Msgpack,
}

/// What to do with float values JSON cannot hold (`NaN`, `+inf`, `-inf`).
///
/// libhoney-py writes bare `NaN`, which is invalid JSON, and the API rejects the
/// whole batch; libhoney-go silently drops the field. The default here keeps the
/// information and stays valid: the value is sent as a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum NonFiniteFloats {
    /// Send the strings `"NaN"`, `"Infinity"`, `"-Infinity"` (the default).
    #[default]
    String,
    /// Send `null`.
    Null,
    /// Leave the field out of the event.
    Omit,
}

/// Where the HTTP transmissions ([`Http`](crate::transmission::Http),
/// `Tokio`) encode each event (JSON or msgpack). See
/// [`Config::encode_on`]; the bytes on the wire are the same either way.
///
/// **Not part of the stable API** (hidden from the documentation): a tuning
/// knob for the benchmarks and tests, which may change or go in any release.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum EncodeOn {
    /// On the batcher while it keeps up, so that `send` is a short hand-over;
    /// in `send` (on the calling thread) while the batcher is behind, so that
    /// the encoding spreads over the sending threads (the default).
    #[default]
    Adaptive,
    /// Always in `send`, on the calling thread (with [`Http`](crate::transmission::Http),
    /// straight into a batch body, see [`Config::encode_on`]).
    Send,
    /// Always on the batcher.
    Batcher,
}

/// Client configuration. Start from [`Config::new`] and chain setters; nothing
/// is checked until [`Client::new`](crate::Client::new) (or
/// [`init`](crate::init)), which returns a [`ConfigError`] for invalid values.
///
/// API key, dataset and API host not set in code are read from the environment
/// when the client is built: `HONEYCOMB_API_KEY` (or the older
/// `HONEYCOMB_WRITEKEY`), `HONEYCOMB_DATASET`, `HONEYCOMB_API_ENDPOINT`.
/// [`Config::read_env`]`(false)` turns that off.
///
/// `Debug` output masks the API key.
///
/// ```
/// use std::time::Duration;
/// use libhoney::{Compression, Config};
/// let config = Config::new()
///     .api_key("my-key")
///     .dataset("my-service")
///     .sample_rate(4)
///     .max_batch_size(200)
///     .send_frequency(Duration::from_millis(50))
///     .compression(Compression::Gzip);
/// assert!(!format!("{config:?}").contains("my-key"));
/// ```
#[derive(Clone)]
pub struct Config {
    pub(crate) api_key: Option<String>,
    pub(crate) dataset: Option<String>,
    pub(crate) api_host: Option<String>,
    pub(crate) sample_rate: u32,
    pub(crate) max_batch_size: usize,
    pub(crate) send_frequency: Duration,
    pub(crate) max_concurrent_batches: usize,
    pub(crate) pending_work_capacity: Option<usize>,
    pub(crate) max_pending_bytes: usize,
    pub(crate) response_queue_capacity: Option<usize>,
    pub(crate) block_on_send: bool,
    pub(crate) block_on_response: bool,
    pub(crate) encode_on: EncodeOn,
    pub(crate) user_agent_addition: Option<String>,
    pub(crate) transmission: Option<Arc<dyn Transmission>>,
    pub(crate) proxy: Option<String>,
    pub(crate) proxy_from_env: bool,
    /// The PEM text given to `tls_root_certificates_pem`, and its certificates
    /// (DER) once `resolve` has read it.
    pub(crate) tls_roots_pem: Option<Arc<Vec<u8>>>,
    pub(crate) tls_roots: Option<Arc<Vec<Vec<u8>>>>,
    pub(crate) request_timeout: Duration,
    /// `None` until chosen, or until `resolve` puts in the default.
    pub(crate) compression: Option<Compression>,
    pub(crate) compression_level: Option<i32>,
    pub(crate) encoding: Encoding,
    pub(crate) max_attempts: Option<u32>,
    pub(crate) retry_deadline: Duration,
    pub(crate) retry_base_delay: Duration,
    pub(crate) retry_max_delay: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) non_finite_floats: NonFiniteFloats,
    pub(crate) max_event_bytes: usize,
    pub(crate) max_batch_bytes: usize,
    pub(crate) read_env: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("api_key", &self.api_key.as_deref().map(mask_key))
            .field("dataset", &self.dataset)
            .field("api_host", &self.api_host.as_deref().map(redact_userinfo))
            .field("sample_rate", &self.sample_rate)
            .field("max_batch_size", &self.max_batch_size)
            .field("send_frequency", &self.send_frequency)
            .field("max_concurrent_batches", &self.max_concurrent_batches)
            .field("pending_work_capacity", &self.pending_work_capacity)
            .field("max_pending_bytes", &self.max_pending_bytes)
            .field(
                "response_queue_capacity",
                &self.settings().response_queue_capacity(),
            )
            .field("block_on_send", &self.block_on_send)
            .field("block_on_response", &self.block_on_response)
            .field("encode_on", &self.encode_on)
            .field("user_agent_addition", &self.user_agent_addition)
            .field("transmission", &self.transmission.as_ref().map(|_| ".."))
            .field("proxy", &self.proxy.as_ref().map(|_| "(set)"))
            .field("proxy_from_env", &self.proxy_from_env)
            .field(
                "tls_root_certificates",
                &self.tls_roots_pem.as_ref().map(|_| "(set)"),
            )
            .field("request_timeout", &self.request_timeout)
            .field("compression", &self.settings().compression())
            .field("compression_level", &self.compression_level)
            .field("encoding", &self.encoding)
            .field("max_attempts", &self.max_attempts)
            .field("retry_deadline", &self.retry_deadline)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("non_finite_floats", &self.non_finite_floats)
            .finish_non_exhaustive()
    }
}

/// Masks an API key for display: all but the last four characters become `X`
/// (as libhoney-go does); keys of four characters or fewer are fully masked.
/// Allocates the masked string.
///
/// ```
/// assert_eq!(libhoney::mask_key("hcaik_0123456789"), "XXXXXXXXXXXX6789");
/// assert_eq!(libhoney::mask_key("abcd"), "XXXX");
/// ```
pub fn mask_key(key: &str) -> String {
    let n = key.chars().count();
    if n <= 4 {
        return "X".repeat(n);
    }
    let tail: String = key.chars().skip(n - 4).collect();
    format!("{}{}", "X".repeat(n - 4), tail)
}

/// A URL with the credentials of its authority (`user:password@`) replaced
/// by `***@`, for `Debug` and log lines; anything else is returned as it
/// is. Allocates only when there is something to hide.
pub(crate) fn redact_userinfo(url: &str) -> std::borrow::Cow<'_, str> {
    let start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..start], &rest[at..]).into(),
        None => url.into(),
    }
}

/// Construction and setters. Each setter stores one value and returns the
/// configuration, so calls chain; none checks, blocks or does I/O. Values are
/// checked, and the environment read, when a client is built from the
/// configuration ([`Client::new`](crate::Client::new) or [`init`](crate::init)),
/// which reports any invalid value as a [`ConfigError`]. Durations longer than
/// 100 years are taken as 100 years (so `Duration::MAX` means "no limit").
impl Config {
    /// A configuration with every default:
    ///
    /// | option | default |
    /// |---|---|
    /// | api_host | `https://api.honeycomb.io` |
    /// | sample_rate | 1 (keep every event) |
    /// | max_batch_size | 500 events (libhoney-go: 50, libhoney-py: 100; larger batches cost the sender and the API less per event, and `send_frequency` still bounds the wait) |
    /// | send_frequency | 100 ms after a batch's first event |
    /// | max_concurrent_batches | 10 requests in flight |
    /// | max_pending_bytes | 48 MiB of events waiting to be sent (bursts of hundreds of thousands of events absorbed at once: see [`max_pending_bytes`](Config::max_pending_bytes)) |
    /// | pending_work_capacity | none (libhoney-go: 10,000 events, libhoney-py: 1,000); set it to bound the queue by a count of events instead |
    /// | response_queue_capacity | 16,384 responses ([`DEFAULT_RESPONSE_QUEUE_CAPACITY`]), or 2 × pending_work_capacity when that is set |
    /// | block_on_send / block_on_response | false / false |
    /// | request_timeout | 10 s per attempt |
    /// | retry_deadline / max_attempts | 60 s / no cap (transient failures are retried with capped exponential backoff and jitter until the deadline) |
    /// | compression / encoding | zstd (the best built in: see [`Compression::default`]) / JSON |
    /// | shutdown_timeout | 10 s (used by `flush`, `close` and drop) |
    /// | compression_level | 1 |
    /// | retry_backoff | 100 ms doubling up to 5 s |
    /// | non_finite_floats | [`NonFiniteFloats::String`] |
    /// | max_event_bytes / max_batch_bytes | 1,000,000 / 5,000,000 |
    /// | proxy_from_env / read_env | true / true |
    ///
    /// API key and dataset are unset (read from the environment when the
    /// client is built, unless [`read_env`](Config::read_env)`(false)`). Costs
    /// nothing: no allocation, no I/O.
    ///
    /// ```
    /// let config = libhoney::Config::new();
    /// assert_eq!(config.settings().api_host(), libhoney::DEFAULT_API_HOST);
    /// assert_eq!(config.settings().sample_rate(), 1);
    /// assert_eq!(config.settings().api_key(), None);
    /// ```
    pub fn new() -> Self {
        Config {
            api_key: None,
            dataset: None,
            api_host: None,
            sample_rate: 1,
            max_batch_size: 500,
            send_frequency: Duration::from_millis(100),
            max_concurrent_batches: 10,
            pending_work_capacity: None,
            max_pending_bytes: DEFAULT_MAX_PENDING_BYTES,
            response_queue_capacity: None,
            block_on_send: false,
            block_on_response: false,
            encode_on: EncodeOn::Adaptive,
            user_agent_addition: None,
            transmission: None,
            proxy: None,
            proxy_from_env: true,
            tls_roots_pem: None,
            tls_roots: None,
            request_timeout: Duration::from_secs(10),
            compression: None,
            compression_level: None,
            encoding: Encoding::Json,
            max_attempts: None,
            retry_deadline: Duration::from_secs(60),
            retry_base_delay: Duration::from_millis(100),
            retry_max_delay: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(10),
            non_finite_floats: NonFiniteFloats::String,
            max_event_bytes: API_MAX_EVENT_BYTES,
            max_batch_bytes: API_MAX_BATCH_BYTES,
            read_env: true,
        }
    }

    /// The API key (Honeycomb's "write key" for classic teams; an ingest key is
    /// recommended). Sent in `X-Honeycomb-Team`; never logged, and masked by `Debug`.
    /// Without one (here, in `HONEYCOMB_API_KEY`, or on a builder or event), `send`
    /// fails with [`SendError::MissingApiKey`](crate::SendError::MissingApiKey).
    ///
    /// ```
    /// let config = libhoney::Config::new().api_key("hcaik_my_ingest_key");
    /// assert_eq!(config.settings().api_key(), Some("hcaik_my_ingest_key"));
    /// ```
    #[doc(alias = "writekey")]
    #[doc(alias = "WriteKey")]
    #[must_use = "a setter returns the changed configuration: use it (pass it on or to Client::new)"]
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Alias of [`api_key`](Config::api_key), under libhoney-py's name
    /// (libhoney-go: `WriteKey`), for code ported from them.
    ///
    /// ```
    /// assert_eq!(libhoney::Config::new().writekey("k").settings().api_key(), Some("k"));
    /// ```
    #[must_use = "a setter returns the changed configuration: use it (pass it on or to Client::new)"]
    pub fn writekey(self, key: impl Into<String>) -> Self {
        self.api_key(key)
    }

    /// The default dataset. With an environment (non-classic) key, surrounding
    /// whitespace is trimmed and an empty dataset becomes `unknown_dataset` (with a
    /// warning in the log); with a classic key it is kept as given, and an empty
    /// one makes `send` fail with [`SendError::MissingDataset`](crate::SendError::MissingDataset).
    /// The rules are applied by [`Client::new`](crate::Client::new).
    ///
    /// ```
    /// use libhoney::{Client, Config, transmission::Discard};
    /// let client = Client::new(
    ///     Config::new().api_key("hcaik_env_key").dataset("  checkout ").transmission(Discard::new()),
    /// )?;
    /// assert_eq!(client.config().settings().dataset(), Some("checkout"));
    /// # Ok::<(), libhoney::ConfigError>(())
    /// ```
    #[must_use = "a setter returns the changed configuration: use it (pass it on or to Client::new)"]
    pub fn dataset(mut self, dataset: impl Into<String>) -> Self {
        self.dataset = Some(dataset.into());
        self
    }

    /// The API host, `https://api.honeycomb.io` by default (EU:
    /// `https://api.eu1.honeycomb.io`). A path prefix is kept
    /// (`http://proxy/honeycomb` posts to `http://proxy/honeycomb/1/batch/...`).
    /// Anything but an `http://` or `https://` URL with a host is a
    /// [`ConfigError::InvalidApiHost`] from [`Client::new`](crate::Client::new).
    ///
    /// ```
    /// use libhoney::{Client, Config, ConfigError, transmission::Discard};
    /// let ok = Config::new().api_key("k").api_host("http://refinery:8080/").transmission(Discard::new());
    /// assert_eq!(Client::new(ok)?.new_event().api_host(), "http://refinery:8080");
    /// let bad = Config::new().api_host("api.honeycomb.io").transmission(Discard::new());
    /// assert!(matches!(Client::new(bad), Err(ConfigError::InvalidApiHost { .. })));
    /// # Ok::<(), ConfigError>(())
    /// ```
    #[must_use = "a setter returns the changed configuration: use it (pass it on or to Client::new)"]
    pub fn api_host(mut self, host: impl Into<String>) -> Self {
        self.api_host = Some(host.into());
        self
    }

    /// Keep one event in `rate` when sending with [`Event::send`](crate::Event::send);
    /// each kept event carries the rate so Honeycomb can weight it, and each dropped
    /// one gets a [`Sampled`](crate::ResponseError::Sampled) response. 1 (the
    /// default) keeps every event; 0 is a [`ConfigError::ZeroSampleRate`].
    /// Builders and events can override it.
    ///
    /// ```
    /// use libhoney::{Client, Config, ConfigError, transmission::Discard};
    /// let client = Client::new(Config::new().api_key("k").dataset("d").sample_rate(20).transmission(Discard::new()))?;
    /// assert_eq!(client.new_event().sample_rate(), 20);
    /// let zero = Config::new().sample_rate(0).transmission(Discard::new());
    /// assert_eq!(Client::new(zero).unwrap_err(), ConfigError::ZeroSampleRate);
    /// # Ok::<(), ConfigError>(())
    /// ```
    #[must_use = "a setter returns the changed configuration: use it (pass it on or to Client::new)"]
    pub fn sample_rate(mut self, rate: u32) -> Self {
        self.sample_rate = rate;
        self
    }

    /// Send a batch as soon as this many events wait for one destination
    /// (default 100). Larger batches mean fewer requests; 0 is a [`ConfigError::Zero`].
    #[must_use = "a setter returns the changed configuration: use it (pass it on or to Client::new)"]
    pub fn max_batch_size(mut self, n: usize) -> Self {
        self.max_batch_size = n;
        self
    }

    /// Send a batch at the latest this long after its first event arrived
    /// (default 100 ms): the most an event waits in the client. Zero is a
    /// [`ConfigError::ZeroDuration`].
    #[must_use = "a setter returns the changed configuration: use it (pass it on or to Client::new)"]
    pub fn send_frequency(mut self, d: Duration) -> Self {
        self.send_frequency = d;
        self
    }

    /// How many HTTP requests may be in flight at once (default 10); the default
    /// transmission runs this many sender threads. 0 is a [`ConfigError::Zero`].
    #[must_use = "a setter returns the changed configuration: use it (pass it on or to Client::new)"]
    pub fn max_concurrent_batches(mut self, n: usize) -> Self {
        self.max_concurrent_batches = n;
        self
    }

    /// Bounds the queue of events waiting for the transmission by a count
    /// of events instead of memory (by default there is no count: the queue
    /// is bounded by [`max_pending_bytes`](Config::max_pending_bytes)). When
    /// full, `send` answers the event with a
    /// [`QueueOverflow`](crate::ResponseError::QueueOverflow) response, or
    /// waits if [`block_on_send`](Config::block_on_send) is on. A batch body
    /// that `send` filled (see [`encode_on`](Config::encode_on)) counts as the
    /// events it holds; each event is admitted on its own, so a full queue
    /// never refuses a whole body. 0 is a [`ConfigError::Zero`].
    ///
    /// For a small, fixed queue (libhoney-go's 10,000 events; 2,048, the
    /// default before the memory budget, keeps the events of a client below
    /// saturation in the CPU's caches: 1.47 µs of CPU per event flat out
    /// against 1.84 µs with 10,000, `libhoney-bench send`, medians of 8).
    /// The batcher's rhythm (how many events it takes per round, when it
    /// counts as behind) follows this count, or 2,048 without it.
    #[must_use = "a setter returns the changed configuration: use it (pass it on or to Client::new)"]
    pub fn pending_work_capacity(mut self, n: usize) -> Self {
        self.pending_work_capacity = Some(n);
        self
    }

    /// The memory budget of events waiting for the transmission (default
    /// 48 MiB), used unless [`pending_work_capacity`](Config::pending_work_capacity)
    /// bounds the queue by a count of events instead. What counts: an event
    /// handed over as it is weighs an estimate of its size in memory (128
    /// bytes, plus 64 per field it set itself; its strings' contents are
    /// not counted), a batch body filled by `send` (see
    /// [`encode_on`](Config::encode_on)) the memory its buffer holds. Each event is
    /// admitted on its own, also into a body: past the budget, `send`
    /// answers that event with
    /// [`QueueOverflow`](crate::ResponseError::QueueOverflow) (or waits for
    /// room, with [`block_on_send`](Config::block_on_send), or awaits it with
    /// [`Event::send_async`](crate::Event::send_async)); a whole body is
    /// never refused. The queue may pass the budget by a sixteenth, and by
    /// the bodies of events admitted just before. 0 is a [`ConfigError::Zero`].
    ///
    /// Why 48 MiB: once the batcher is behind, `send` encodes into bodies,
    /// so the budget holds encoded events (about 340 bytes each for ten
    /// fields, in buffers up to twice that): some 70,000 to 140,000 of them,
    /// which absorbs a one-thread loop of 200,000 events, or 100 tokio tasks
    /// sending 1,000 each (also with `send` and the `Tokio` transmission,
    /// whose batcher competes with those tasks for the runtime), with no
    /// loss and a peak RSS around 40 MB; 32 MiB lost some of the tokio
    /// bursts, 16 MiB some of every kind (`bench/burst.sh`,
    /// docs/PERFORMANCE.md).
    /// Memory is used only while events wait: a client sending flat out with
    /// `block_on_send` keeps the queue full, and so holds about this much.
    ///
    /// ```
    /// let config = libhoney::Config::new().max_pending_bytes(8 << 20);
    /// assert_eq!(config.settings().max_pending_bytes(), 8 << 20);
    /// ```
    #[must_use = "a setter returns the changed configuration: use it (pass it on or to Client::new)"]
    pub fn max_pending_bytes(mut self, n: usize) -> Self {
        self.max_pending_bytes = n;
        self
    }

    /// How many responses may wait to be read (default
    /// [`DEFAULT_RESPONSE_QUEUE_CAPACITY`], 16,384; twice the pending work
    /// capacity when that is set). Memory is used only for responses waiting: 128 bytes
    /// each (`size_of::<Response>()`) plus their metadata and error text;
    /// responses nobody reads stay queued until the client is dropped. 0 is
    /// a [`ConfigError::Zero`].
    ///
    /// When it is full, and [`block_on_response`](Config::block_on_response)
    /// is off (the default), responses are dropped and counted in
    /// [`MetricsSnapshot::responses_dropped`](crate::MetricsSnapshot::responses_dropped),
    /// but **error responses are kept in preference to successes**: an
    /// error that finds the queue full takes the place of the oldest
    /// success not yet taken by a reader, and a batch's errors are kept
    /// before its successes. Sampled responses count as successes here. Only
    /// a queue full of errors drops an error. So a reader that is
    /// descheduled for a moment, while a full queue's worth of responses
    /// arrives (4,096 by default: about 40 ms at 100,000 events a second),
    /// loses successes, not errors.
    ///
    /// **To never drop a response**, turn on
    /// [`block_on_response`](Config::block_on_response) and read
    /// [`responses`](crate::Client::responses) without pause. The cost:
    /// whenever the reader falls a full queue behind, the transmission
    /// waits, batches stop going out, the pending queue fills, and `send`
    /// then drops events as
    /// [`QueueOverflow`](crate::ResponseError::QueueOverflow) (or waits,
    /// with [`block_on_send`](Config::block_on_send)): the application's
    /// speed becomes the reader's. A larger capacity instead makes drops
    /// rarer without that coupling, for its memory.
    ///
    /// ```
    /// let config = libhoney::Config::new().pending_work_capacity(500);
    /// assert_eq!(config.settings().response_queue_capacity(), 1000);
    /// assert_eq!(config.response_queue_capacity(10).settings().response_queue_capacity(), 10);
    /// ```
    #[must_use = "a setter returns the changed configuration: use it (pass it on or to Client::new)"]
    pub fn response_queue_capacity(mut self, n: usize) -> Self {
        self.response_queue_capacity = Some(n);
        self
    }

    /// Make `send` wait for room in the pending queue instead of dropping the
    /// event. Use it in batch jobs where every event matters more than latency:
    /// with it on, a slow or unreachable API slows the sending threads down.
    ///
    /// How it waits: with [`Http`](crate::transmission::Http), a `send` that
    /// finds the queue full sleeps until the batcher has emptied half of it
    /// (it is woken then, once); with `Tokio` (feature `tokio`),
    /// a plain thread looks for room every 100 µs and goes on once an eighth
    /// is free, and a thread inside a runtime never waits.
    #[must_use = "a setter returns the changed configuration: use it (pass it on or to Client::new)"]
    pub fn block_on_send(mut self, block: bool) -> Self {
        self.block_on_send = block;
        self
    }

    /// Where the HTTP transmissions ([`Http`](crate::transmission::Http),
    /// `Tokio`) encode each event: see [`EncodeOn`]. Other transmissions
    /// ignore this setting.
    ///
    /// **Not part of the stable API** (hidden from the documentation): a
    /// tuning knob for the benchmarks and tests, which may change or go in
    /// any release. The default adapts to the load by itself.
    ///
    /// The trade-off (docs/PERFORMANCE.md has the measurements, on a 2-core
    /// VM, ten fields): encoding in `send` costs each call about 0.5 µs more
    /// (`send` median 641 ns against 150 ns at 100,000 events/s), but once
    /// the batcher is the bottleneck it saves CPU in total and raises
    /// throughput (1.9 against 2.9 µs per event, 1.6 times the events per
    /// second when sending flat out): the fields are read while still in the
    /// calling core's cache and freed on the thread that allocated them, and
    /// the work spreads over the sending threads instead of one batcher.
    /// Below that point both cost the same in total.
    ///
    /// With [`Http`](crate::transmission::Http), `send` encodes straight into a
    /// batch body ("lanes": a fixed set of bodies, twice as many as the
    /// machine has cores, each guarded by a mutex that `send` holds while it
    /// encodes; a thread finding its own busy takes the next free one), and
    /// the batcher is handed whole bodies to compress: one hand-over per
    /// batch instead of one per event. Against encoding each event into a
    /// buffer of its own and queueing that, this took the CPU per event flat
    /// out from 2.47 to 2.05 µs on one thread and from 2.70 to 2.16 µs on four,
    /// and raised throughput by a fifth (`bench/ab.sh`, five alternating
    /// pairs of 1,000,000 events). A body goes out when full, at
    /// `send_frequency` after its first event, on a flush or a close, exactly
    /// as the batcher's own batches do. With `Tokio` each event is encoded into
    /// a buffer of its own and queued.
    ///
    /// [`EncodeOn::Adaptive`] (the default) takes the short `send` while the
    /// batcher keeps up, and switches `send` to encoding while more than a
    /// sixteenth of `pending_work_capacity` (but at least 512 events, and at
    /// most a quarter of the queue) waits in it (back once at most a quarter
    /// of that waited after each of a hundred of the batcher's rounds, about
    /// 0.1 s; the tokio transmission looks at the queue on every `send`
    /// instead). [`EncodeOn::Send`] always encodes in `send` (the lowest CPU
    /// in total when sending flat out); [`EncodeOn::Batcher`] never does (the
    /// shortest `send` whatever the load).
    ///
    /// ```
    /// use libhoney::{Config, EncodeOn};
    /// let config = Config::new().encode_on(EncodeOn::Batcher);
    /// assert_eq!(config.settings().encode_on(), EncodeOn::Batcher);
    /// assert_eq!(Config::new().settings().encode_on(), EncodeOn::Adaptive);
    /// ```
    #[must_use = "a setter returns the changed configuration: use it (pass it on or to Client::new)"]
    #[doc(hidden)]
    pub fn encode_on(mut self, on: EncodeOn) -> Self {
        self.encode_on = on;
        self
    }

    /// Make the transmission wait for room in the response queue instead of
    /// dropping responses: with it, no response is ever dropped (before the
    /// client closes). Only turn this on if you read [`responses`](crate::Client::responses)
    /// continuously: otherwise sending stalls once the queue is full (and
    /// [`close`](crate::Client::close) gives up after its timeout); see
    /// [`response_queue_capacity`](Config::response_queue_capacity) for what
    /// it costs.
    ///
    /// ```
    /// use libhoney::{Client, Config, transmission::Mock};
    /// let client = Client::new(
    ///     Config::new().api_key("k").dataset("d").block_on_response(true).transmission(Mock::new()),
    /// )?;
    /// let responses = client.responses();
    /// let reader = std::thread::spawn(move || responses.count()); // reads until close
    /// for i in 0..100 {
    ///     let mut ev = client.new_event();
    ///     ev.add_field("i", i);
    ///     ev.send()?;
    /// }
    /// client.close()?;
    /// assert_eq!(reader.join().unwrap(), 100);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use = "a setter returns the changed configuration: use it (pass it on or to Client::new)"]
    pub fn block_on_response(mut self, block: bool) -> Self {
        self.block_on_response = block;
        self
    }

    /// Text added to the `User-Agent` header, such as `my-integration/1.2`
    /// (surrounding whitespace is ignored).
    ///
    /// ```
    /// let ua = libhoney::Config::new().user_agent_addition("my-integration/1.2").user_agent();
    /// assert!(ua.starts_with("libhoney-rust/") && ua.contains(" my-integration/1.2 "));
    /// ```
    #[must_use = "a setter returns the changed configuration: use it (pass it on or to Client::new)"]
    pub fn user_agent_addition(mut self, addition: impl Into<String>) -> Self {
        self.user_agent_addition = Some(addition.into());
        self
    }

    /// Use this transmission instead of the default HTTP one: [`Writer`](crate::transmission::Writer),
    /// [`Mock`](crate::transmission::Mock), [`Discard`](crate::transmission::Discard)
    /// or your own. It receives this configuration when it starts, so batching and
    /// queue options keep their effect. A transmission serves one client.
    ///
    /// ```
    /// use libhoney::{Client, Config, transmission::Writer};
    /// let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Writer::stdout()))?;
    /// # Ok::<(), libhoney::ConfigError>(())
    /// ```
    #[must_use = "a setter returns the changed configuration: use it (pass it on or to Client::new)"]
    pub fn transmission<T: Transmission>(mut self, transmission: T) -> Self {
        self.transmission = Some(Arc::new(transmission));
        self
    }

    /// Use an already shared transmission, for example one your code keeps a
    /// handle to.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use libhoney::{Client, Config, transmission::{Discard, Transmission}};
    /// let t: Arc<dyn Transmission> = Arc::new(Discard::new());
    /// let client = Client::new(Config::new().api_key("k").dataset("d").transmission_arc(t))?;
    /// # Ok::<(), libhoney::ConfigError>(())
    /// ```
    #[must_use = "a setter returns the changed configuration: use it (pass it on or to Client::new)"]
    pub fn transmission_arc(mut self, transmission: Arc<dyn Transmission>) -> Self {
        self.transmission = Some(transmission);
        self
    }

    /// An HTTP(S) proxy for the default transmission, such as
    /// `http://user:password@proxy:3128`. Without one, `HTTPS_PROXY`/`HTTP_PROXY`
    /// and `NO_PROXY` are read from the environment unless
    /// [`proxy_from_env`](Config::proxy_from_env) is off. A URL that is not
    /// `http://` or `https://` is a [`ConfigError::InvalidProxy`], whose message
    /// does not repeat the URL (it may hold a password); `Debug` hides it too.
    #[must_use = "a setter returns the changed configuration: use it (pass it on or to Client::new)"]
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.proxy = Some(url.into());
        self
    }

    /// Trust only the root certificates in `pem` for HTTPS, instead of the
    /// webpki (Mozilla) roots: for a Refinery, proxy or receiver whose
    /// certificate your own certificate authority issued. `pem` holds one or
    /// more `-----BEGIN CERTIFICATE-----` blocks (other blocks, such as keys,
    /// are skipped); the server's certificate must chain to one of them and
    /// name the API host. Both HTTP transmissions (`Http`, `Tokio`) use them.
    /// Read when the client is built: text with no certificate, a block that
    /// is not valid PEM, or one that holds no readable certificate, is a
    /// [`ConfigError::InvalidRootCertificates`].
    ///
    /// ```no_run
    /// # use libhoney::{Client, Config};
    /// let pem = std::fs::read("/etc/ssl/internal-ca.pem")?;
    /// let client = Client::new(
    ///     Config::new()
    ///         .api_key("my-key")
    ///         .api_host("https://refinery.internal:8443")
    ///         .tls_root_certificates_pem(pem),
    /// )?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use = "a setter returns the changed configuration: use it (pass it on or to Client::new)"]
    pub fn tls_root_certificates_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_roots_pem = Some(Arc::new(pem.into()));
        self.tls_roots = None;
        self
    }

    /// Read proxy settings from the environment (default: true).
    #[must_use = "a setter returns the changed configuration: use it (pass it on or to Client::new)"]
    pub fn proxy_from_env(mut self, read: bool) -> Self {
        self.proxy_from_env = read;
        self
    }

    /// The time limit of one HTTP attempt: connect, send, answer (default 10 s).
    /// Zero is a [`ConfigError::ZeroDuration`].
    #[must_use = "a setter returns the changed configuration: use it (pass it on or to Client::new)"]
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }

    /// How batch bodies are compressed (zstd by default). Compression runs on the
    /// transmission's batcher thread (`Http`) or a batch task (`Tokio`), never
    /// on the thread that calls `send`.
    ///
    /// Without a choice, the client takes the best compression built in
    /// ([`Compression::default`]: zstd, else gzip, else none, by the
    /// features `zstd` and `gzip`). A choice whose feature is off is a
    /// [`ConfigError::FeatureDisabled`] from [`Client::new`](crate::Client::new).
    #[must_use = "a setter returns the changed configuration: use it (pass it on or to Client::new)"]
    pub fn compression(mut self, c: Compression) -> Self {
        self.compression = Some(c);
        self
    }

    /// The compression level: zstd -7..=22 (default 1), gzip 0..=9 (default 1).
    ///
    /// zstd's negative levels are its fast modes: less CPU for larger bodies.
    /// On the benchmark's events (docs/PERFORMANCE.md) level 1 shrinks a batch
    /// 12.7 times at about 820 MB/s, level -1 8.4 times at about 1,150 MB/s,
    /// level -5 6.2 times at about 1,290 MB/s (`zstd -b1`, `zstd -b --fast=N`
    /// on one 500-event body). Level 0 is zstd's own default, 3.
    /// A level out of range for the chosen algorithm is a
    /// [`ConfigError::InvalidCompressionLevel`]; without compression any level is
    /// accepted and unused.
    ///
    /// ```
    /// use libhoney::{Client, Compression, Config, ConfigError, transmission::Discard};
    /// let gzip_10 = Config::new().compression(Compression::Gzip).compression_level(10);
    /// assert!(matches!(
    ///     Client::new(gzip_10.transmission(Discard::new())),
    ///     Err(ConfigError::InvalidCompressionLevel { level: 10, range: (0, 9) })
    /// ));
    /// ```
    #[must_use = "a setter returns the changed configuration: use it (pass it on or to Client::new)"]
    pub fn compression_level(mut self, level: i32) -> Self {
        self.compression_level = Some(level);
        self
    }

    /// How batch bodies are encoded: [`Encoding::Json`] (the default) or
    /// [`Encoding::Msgpack`] (smaller and cheaper to encode; libhoney-go's
    /// msgpack option). `Msgpack` needs the `msgpack` feature (on by
    /// default); without it, choosing it is a
    /// [`ConfigError::FeatureDisabled`] from [`Client::new`](crate::Client::new).
    ///
    /// ```
    /// use libhoney::{Config, Encoding};
    /// assert_eq!(Config::new().encoding(Encoding::Msgpack).settings().encoding(), Encoding::Msgpack);
    /// ```
    #[must_use = "a setter returns the changed configuration: use it (pass it on or to Client::new)"]
    pub fn encoding(mut self, e: Encoding) -> Self {
        self.encoding = e;
        self
    }

    /// A cap on how many times a batch may be tried in all, for transient
    /// failures (connection errors, timeouts, 408, 429, 500, 502, 503, 504).
    /// By default there is none: a batch is retried, with capped exponential
    /// backoff and jitter (or the server's `Retry-After`), until
    /// [`retry_deadline`](Config::retry_deadline) (60 s), so that an outage
    /// of tens of seconds loses nothing (with
    /// [`block_on_send`](Config::block_on_send), or
    /// [`Event::send_async`](crate::Event::send_async), for what is sent
    /// meanwhile). 1 disables retries; 0 is a [`ConfigError::Zero`].
    ///
    /// Retries make delivery *at least once*: when an attempt fails after
    /// the server already took the batch (a timeout or a dropped connection
    /// while waiting for its answer, a 500 after it stored the events), the
    /// retry sends the same events again and they may be counted twice.
    /// libhoney-go and libhoney-py retry in such cases too (once). With
    /// `max_attempts(1)` delivery is at most once: such a batch's events get
    /// a failure response instead.
    #[must_use = "a setter returns the changed configuration: use it (pass it on or to Client::new)"]
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n);
        self
    }

    /// The total time a batch may spend in retries before its events fail
    /// (default 60 s). A retry that would start after it is not made; a
    /// `Retry-After` that points past it ends the retries at once. Zero is a
    /// [`ConfigError::ZeroDuration`]; to turn retries off, use
    /// [`max_attempts`](Config::max_attempts)`(1)`.
    #[must_use = "a setter returns the changed configuration: use it (pass it on or to Client::new)"]
    pub fn retry_deadline(mut self, d: Duration) -> Self {
        self.retry_deadline = d;
        self
    }

    /// The first retry delay; each retry doubles it (with jitter), up to `max`
    /// (defaults: 100 ms and 5 s). A `Retry-After` header overrides it. Zero
    /// delays are allowed: retries then follow at once, as in libhoney-py.
    #[must_use = "a setter returns the changed configuration: use it (pass it on or to Client::new)"]
    pub fn retry_backoff(mut self, base: Duration, max: Duration) -> Self {
        self.retry_base_delay = base;
        self.retry_max_delay = max;
        self
    }

    /// The default time limit of [`flush`](crate::Client::flush),
    /// [`close`](crate::Client::close), and of the close done when the last
    /// client handle is dropped. Zero is a [`ConfigError::ZeroDuration`] (it
    /// would make every close give up at once); for a single call that must not
    /// wait, use [`close_within`](crate::Client::close_within).
    #[must_use = "a setter returns the changed configuration: use it (pass it on or to Client::new)"]
    pub fn shutdown_timeout(mut self, d: Duration) -> Self {
        self.shutdown_timeout = d;
        self
    }

    /// What to send for `NaN` and infinite floats (see [`NonFiniteFloats`];
    /// default: the strings `"NaN"`, `"Infinity"`, `"-Infinity"`). Whatever the
    /// policy, the output is valid JSON and other events are not affected.
    ///
    /// ```
    /// use libhoney::{Config, NonFiniteFloats};
    /// let config = Config::new().non_finite_floats(NonFiniteFloats::Omit);
    /// assert_eq!(config.settings().non_finite_floats(), NonFiniteFloats::Omit);
    /// ```
    #[must_use = "a setter returns the changed configuration: use it (pass it on or to Client::new)"]
    pub fn non_finite_floats(mut self, policy: NonFiniteFloats) -> Self {
        self.non_finite_floats = policy;
        self
    }

    /// The largest event sent, in bytes of JSON (default: the API's 1,000,000;
    /// raise it only for a receiver that accepts larger events). Larger events get
    /// a [`TooLarge`](crate::ResponseError::TooLarge) response and are not sent.
    /// 0 is a [`ConfigError::Zero`].
    #[must_use = "a setter returns the changed configuration: use it (pass it on or to Client::new)"]
    pub fn max_event_bytes(mut self, n: usize) -> Self {
        self.max_event_bytes = n;
        self
    }

    /// The largest batch body before compression (default: the API's 5,000,000
    /// bytes). Fuller batches are split, never dropped. 0 is a [`ConfigError::Zero`].
    #[must_use = "a setter returns the changed configuration: use it (pass it on or to Client::new)"]
    pub fn max_batch_bytes(mut self, n: usize) -> Self {
        self.max_batch_bytes = n;
        self
    }

    /// Read `HONEYCOMB_API_KEY` (or `HONEYCOMB_WRITEKEY`), `HONEYCOMB_DATASET` and
    /// `HONEYCOMB_API_ENDPOINT` for options not set in code (default: true). The
    /// environment is read once, by [`Client::new`](crate::Client::new); blank
    /// values count as unset, and the key and endpoint are trimmed.
    ///
    /// ```
    /// use libhoney::{Client, Config, transmission::Discard};
    /// // Tests often want no surprise from the environment:
    /// let client = Client::new(Config::new().read_env(false).transmission(Discard::new()))?;
    /// assert_eq!(client.config().settings().api_key(), None);
    /// # Ok::<(), libhoney::ConfigError>(())
    /// ```
    #[must_use = "a setter returns the changed configuration: use it (pass it on or to Client::new)"]
    pub fn read_env(mut self, read: bool) -> Self {
        self.read_env = read;
        self
    }
}

impl Config {
    /// Read access to every option: see [`Settings`]. Costs nothing.
    ///
    /// ```
    /// let config = libhoney::Config::new().dataset("checkout");
    /// assert_eq!(config.settings().dataset(), Some("checkout"));
    /// ```
    pub fn settings(&self) -> Settings<'_> {
        Settings { config: self }
    }

    /// The `User-Agent` this configuration sends:
    /// `libhoney-rust/<version> [<addition> ](<os>/<arch>)`. Allocates the string.
    ///
    /// ```
    /// let ua = libhoney::Config::new().user_agent();
    /// assert!(ua.starts_with(concat!("libhoney-rust/", env!("CARGO_PKG_VERSION"))));
    /// ```
    pub fn user_agent(&self) -> String {
        let base = concat!("libhoney-rust/", env!("CARGO_PKG_VERSION"));
        let platform = format!("({}/{})", std::env::consts::OS, std::env::consts::ARCH);
        match self.user_agent_addition.as_deref().map(str::trim) {
            Some(add) if !add.is_empty() => format!("{base} {add} {platform}"),
            _ => format!("{base} {platform}"),
        }
    }

    /// Fills unset options from the environment and checks every value.
    pub(crate) fn resolve(mut self) -> Result<Config, ConfigError> {
        if self.read_env {
            // Keys and URLs never contain whitespace, but values read from
            // secret files often end in a newline: trim them. The dataset is
            // kept as given, for the dataset rules to apply.
            if self.api_key.is_none() {
                self.api_key = env_nonempty("HONEYCOMB_API_KEY")
                    .or_else(|| env_nonempty("HONEYCOMB_WRITEKEY"))
                    .map(|k| k.trim().to_string());
            }
            if self.dataset.is_none() {
                self.dataset = env_nonempty("HONEYCOMB_DATASET");
            }
            if self.api_host.is_none() {
                self.api_host =
                    env_nonempty("HONEYCOMB_API_ENDPOINT").map(|h| h.trim().to_string());
            }
        }
        if self.sample_rate == 0 {
            return Err(ConfigError::ZeroSampleRate);
        }
        check_features(&self, Compiled::THIS_BUILD)?;
        self.compression = Some(self.settings().compression());
        if let Some(pem) = &self.tls_roots_pem {
            self.tls_roots = Some(Arc::new(read_root_certificates(pem)?));
        }
        for (option, v) in [
            ("max_batch_size", self.max_batch_size),
            ("max_concurrent_batches", self.max_concurrent_batches),
            (
                "pending_work_capacity",
                self.pending_work_capacity.unwrap_or(1),
            ),
            ("max_pending_bytes", self.max_pending_bytes),
            (
                "response_queue_capacity",
                self.settings().response_queue_capacity(),
            ),
            ("max_event_bytes", self.max_event_bytes),
            ("max_batch_bytes", self.max_batch_bytes),
        ] {
            if v == 0 {
                return Err(ConfigError::Zero { option });
            }
        }
        if self.max_attempts == Some(0) {
            return Err(ConfigError::Zero {
                option: "max_attempts",
            });
        }
        for (option, d) in [
            ("send_frequency", self.send_frequency),
            ("request_timeout", self.request_timeout),
            ("retry_deadline", self.retry_deadline),
            ("shutdown_timeout", self.shutdown_timeout),
        ] {
            if d.is_zero() {
                return Err(ConfigError::ZeroDuration { option });
            }
        }
        for d in [
            &mut self.send_frequency,
            &mut self.request_timeout,
            &mut self.retry_deadline,
            &mut self.retry_base_delay,
            &mut self.retry_max_delay,
            &mut self.shutdown_timeout,
        ] {
            *d = (*d).min(LONGEST_WAIT);
        }
        if let Some(level) = self.compression_level {
            let range = match self.settings().compression() {
                Compression::Zstd => (-7, 22),
                Compression::Gzip => (0, 9),
                Compression::None => (level, level),
            };
            if level < range.0 || level > range.1 {
                return Err(ConfigError::InvalidCompressionLevel { level, range });
            }
        }
        let host = self
            .api_host
            .clone()
            .unwrap_or_else(|| DEFAULT_API_HOST.to_string());
        check_api_host(&host).map_err(|reason| ConfigError::InvalidApiHost {
            host: redact_userinfo(&host).into_owned(),
            reason,
        })?;
        if let Some(proxy) = &self.proxy {
            check_api_host(proxy).map_err(|reason| ConfigError::InvalidProxy {
                reason: reason.to_string(),
            })?;
        }
        let key = self.api_key.as_deref().unwrap_or("");
        let dataset = self.dataset.as_deref().unwrap_or("");
        let resolved = resolve_dataset(key, dataset);
        if resolved != dataset {
            if dataset.trim().is_empty() {
                log::warn!(target: "libhoney", "dataset is empty; using {DEFAULT_DATASET:?}");
            } else {
                log::warn!(target: "libhoney", "dataset has surrounding whitespace; using {resolved:?}");
            }
        }
        if self.dataset.is_some() || !resolved.is_empty() {
            self.dataset = Some(resolved);
        }
        Ok(self)
    }
}

/// Read access to a [`Config`]: what each option is set to, for
/// transmissions and for your own checks. Get one from
/// [`Config::settings`]; [`Client::config`](crate::Client::config)`.settings()`
/// gives the resolved configuration (environment values and dataset rules
/// applied). A borrow of the configuration: copying it and each getter cost
/// nothing (a copy or a borrow of one field) and never block.
///
/// The getters are on this view rather than on `Config` because `Config`'s
/// by-value setters already take the plain names (`config.dataset("x")`), and
/// the Rust API guidelines ask for getters without a `get_` prefix.
///
/// ```
/// use std::time::Duration;
/// let config = libhoney::Config::new().send_frequency(Duration::from_millis(50));
/// assert_eq!(config.settings().send_frequency(), Duration::from_millis(50));
/// assert_eq!(config.settings().max_batch_size(), 500); // the default
/// ```
#[derive(Clone, Copy)]
pub struct Settings<'a> {
    config: &'a Config,
}

impl fmt::Debug for Settings<'_> {
    /// As `Config`'s: the API key masked.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.config, f)
    }
}

impl<'a> Settings<'a> {
    /// The API key set in code (or, on [`Client::config`](crate::Client::config),
    /// from the environment), if any.
    pub fn api_key(&self) -> Option<&'a str> {
        self.config.api_key.as_deref()
    }
    /// The dataset, if any: as set in code here, with the dataset rules applied
    /// on [`Client::config`](crate::Client::config).
    pub fn dataset(&self) -> Option<&'a str> {
        self.config.dataset.as_deref()
    }
    /// The API host (the default when none is set).
    pub fn api_host(&self) -> &'a str {
        self.config.api_host.as_deref().unwrap_or(DEFAULT_API_HOST)
    }
    /// The sample rate.
    pub fn sample_rate(&self) -> u32 {
        self.config.sample_rate
    }
    /// Events per batch.
    pub fn max_batch_size(&self) -> usize {
        self.config.max_batch_size
    }
    /// Longest wait of a batch's first event.
    pub fn send_frequency(&self) -> Duration {
        self.config.send_frequency
    }
    /// Requests in flight at most.
    pub fn max_concurrent_batches(&self) -> usize {
        self.config.max_concurrent_batches
    }
    /// Pending queue capacity.
    pub fn pending_work_capacity(&self) -> Option<usize> {
        self.config.pending_work_capacity
    }
    /// The memory budget of waiting events (see [`Config::max_pending_bytes`]).
    pub fn max_pending_bytes(&self) -> usize {
        self.config.max_pending_bytes
    }
    /// Response queue capacity: as set, or twice the pending work capacity,
    /// or [`DEFAULT_RESPONSE_QUEUE_CAPACITY`] with the queue bounded by memory.
    pub fn response_queue_capacity(&self) -> usize {
        self.config.response_queue_capacity.unwrap_or(
            self.config
                .pending_work_capacity
                .map_or(DEFAULT_RESPONSE_QUEUE_CAPACITY, |n| n.saturating_mul(2)),
        )
    }
    /// Whether `send` waits for room.
    pub fn block_on_send(&self) -> bool {
        self.config.block_on_send
    }
    /// Where the HTTP transmissions encode events.
    #[doc(hidden)]
    pub fn encode_on(&self) -> EncodeOn {
        self.config.encode_on
    }
    /// Whether responses wait for room.
    pub fn block_on_response(&self) -> bool {
        self.config.block_on_response
    }
    /// The proxy URL, if set in code.
    pub fn proxy(&self) -> Option<&'a str> {
        self.config.proxy.as_deref()
    }
    /// Whether proxy settings come from the environment.
    pub fn proxy_from_env(&self) -> bool {
        self.config.proxy_from_env
    }
    /// Time limit of one HTTP attempt.
    pub fn request_timeout(&self) -> Duration {
        self.config.request_timeout
    }
    /// Compression algorithm: the one chosen, or the default, the best one
    /// built in ([`Compression::default`]).
    pub fn compression(&self) -> Compression {
        self.config.compression.unwrap_or_default()
    }
    /// Compression level (1 when not set, the default of both algorithms).
    pub fn compression_level(&self) -> i32 {
        self.config.compression_level.unwrap_or(1)
    }
    /// Body encoding.
    pub fn encoding(&self) -> Encoding {
        self.config.encoding
    }
    /// Attempts per batch.
    pub fn max_attempts(&self) -> Option<u32> {
        self.config.max_attempts
    }
    /// Total retry time per batch.
    pub fn retry_deadline(&self) -> Duration {
        self.config.retry_deadline
    }
    /// First and largest retry delays.
    pub fn retry_backoff(&self) -> (Duration, Duration) {
        (self.config.retry_base_delay, self.config.retry_max_delay)
    }
    /// Default flush/close time limit.
    pub fn shutdown_timeout(&self) -> Duration {
        self.config.shutdown_timeout
    }
    /// Non-finite float policy.
    pub fn non_finite_floats(&self) -> NonFiniteFloats {
        self.config.non_finite_floats
    }
    /// Largest event, in bytes.
    pub fn max_event_bytes(&self) -> usize {
        self.config.max_event_bytes
    }
    /// Largest batch body, in bytes.
    pub fn max_batch_bytes(&self) -> usize {
        self.config.max_batch_bytes
    }
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Is this a classic (pre-environments) key? True for an empty key, 32 lowercase
/// hex characters, or a 64-character classic ingest key (`hc?ic_` + 58 of
/// `[a-z0-9]`), as in libhoney-go and libhoney-py.
///
/// ```
/// assert!(libhoney::is_classic_key("c1a551c000d68f9ed1e96432ac1a3380"));
/// assert!(!libhoney::is_classic_key("d68f9ed1e96432ac1a3380"));
/// ```
pub fn is_classic_key(key: &str) -> bool {
    let b = key.as_bytes();
    match b.len() {
        0 => true,
        32 => b
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c)),
        64 => {
            b.starts_with(b"hc")
                && b[2].is_ascii_lowercase()
                && &b[3..6] == b"ic_"
                && b[6..]
                    .iter()
                    .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
        }
        _ => false,
    }
}

/// The dataset rules of the official SDKs: with an environment key, trim and
/// map empty to `unknown_dataset`; with a classic key, keep as given.
pub(crate) fn resolve_dataset(key: &str, dataset: &str) -> String {
    if is_classic_key(key) {
        dataset.to_string()
    } else {
        let t = dataset.trim();
        if t.is_empty() {
            DEFAULT_DATASET.to_string()
        } else {
            t.to_string()
        }
    }
}

/// Checks an `http://` or `https://` URL with a host; returns why not.
pub(crate) fn check_api_host(url: &str) -> Result<(), &'static str> {
    if url.is_empty() {
        return Err("it is empty");
    }
    let rest = if let Some(r) = url.strip_prefix("https://") {
        r
    } else if let Some(r) = url.strip_prefix("http://") {
        r
    } else {
        return Err("it must start with http:// or https://");
    };
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("it contains whitespace or control characters");
    }
    if url.contains(['?', '#']) {
        return Err("it must not have a query or fragment");
    }
    let authority = rest.split('/').next().unwrap_or("");
    let hostport = authority.rsplit('@').next().unwrap_or("");
    let host = if hostport.starts_with('[') {
        match hostport.find(']') {
            Some(i) => &hostport[..=i],
            None => return Err("it has an unterminated IPv6 address"),
        }
    } else {
        hostport.split(':').next().unwrap_or("")
    };
    if host.is_empty() || host == "[]" {
        return Err("it has no host name");
    }
    let port = &hostport[host.len()..];
    if let Some(p) = port.strip_prefix(':') {
        if p.is_empty() || p.parse::<u16>().is_err() {
            return Err("it has an invalid port");
        }
    } else if !port.is_empty() {
        return Err("it has an invalid port");
    }
    Ok(())
}

/// Which optional parts of the crate a build has: its Cargo features. A
/// value, so that the rules that depend on them ([`check_features`]) are
/// tested for every combination in one build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Compiled {
    /// `transmission::Http`, the default transmission.
    pub(crate) http: bool,
    /// `transmission::Tokio`.
    pub(crate) tokio: bool,
    /// `Compression::Zstd`.
    pub(crate) zstd: bool,
    /// `Compression::Gzip`.
    pub(crate) gzip: bool,
    /// `Encoding::Msgpack`.
    pub(crate) msgpack: bool,
}

impl Compiled {
    /// This build.
    pub(crate) const THIS_BUILD: Compiled = Compiled {
        http: cfg!(feature = "http"),
        tokio: cfg!(feature = "tokio"),
        zstd: cfg!(feature = "zstd"),
        gzip: cfg!(feature = "gzip"),
        msgpack: cfg!(feature = "msgpack"),
    };

    /// The compression used when none is chosen: the best one built in.
    pub(crate) const fn default_compression(self) -> Compression {
        if self.zstd {
            Compression::Zstd
        } else if self.gzip {
            Compression::Gzip
        } else {
            Compression::None
        }
    }
}

/// Refuses an option that a build without its feature cannot honour, rather
/// than sending another wire format or failing later: a chosen compression
/// or encoding, TLS roots without a TLS stack, and no transmission without
/// the default one. Options left at their default are never refused: the
/// default is the best one built in.
pub(crate) fn check_features(config: &Config, compiled: Compiled) -> Result<(), ConfigError> {
    let disabled = |option, feature| Err(ConfigError::FeatureDisabled { option, feature });
    match config.compression {
        Some(Compression::Zstd) if !compiled.zstd => return disabled("Compression::Zstd", "zstd"),
        Some(Compression::Gzip) if !compiled.gzip => return disabled("Compression::Gzip", "gzip"),
        _ => {}
    }
    if config.encoding == Encoding::Msgpack && !compiled.msgpack {
        return disabled("Encoding::Msgpack", "msgpack");
    }
    if config.tls_roots_pem.is_some() && !(compiled.http || compiled.tokio) {
        // rustls reads and checks them; only the HTTP transmissions use them.
        return disabled("tls_root_certificates_pem", "http");
    }
    if config.transmission.is_none() && !compiled.http {
        return Err(ConfigError::NoTransmission);
    }
    Ok(())
}

/// Without a TLS stack there is nothing to read the roots with (and nothing
/// that would use them): `check_features` has refused them already.
#[cfg(not(any(feature = "http", feature = "tokio")))]
fn read_root_certificates(_pem: &[u8]) -> Result<Vec<Vec<u8>>, ConfigError> {
    Err(ConfigError::FeatureDisabled {
        option: "tls_root_certificates_pem",
        feature: "http",
    })
}

/// The DER certificates of PEM text, for `tls_root_certificates_pem`: every
/// `CERTIFICATE` block, other blocks (keys, requests) skipped.
#[cfg(any(feature = "http", feature = "tokio"))]
fn read_root_certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>, ConfigError> {
    use rustls::pki_types::pem::{PemObject, SectionKind};
    let mut certs = Vec::new();
    for item in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem) {
        match item {
            Ok((SectionKind::Certificate, der)) => certs.push(der),
            Ok(_) => {}
            Err(e) => {
                return Err(ConfigError::InvalidRootCertificates {
                    reason: pem_error_reason(&e),
                })
            }
        }
    }
    if certs.is_empty() {
        return Err(ConfigError::InvalidRootCertificates {
            reason: "no -----BEGIN CERTIFICATE----- block".into(),
        });
    }
    // Each must be a certificate rustls can take as a trust anchor.
    let mut store = rustls::RootCertStore::empty();
    for (i, der) in certs.iter().enumerate() {
        store
            .add(rustls::pki_types::CertificateDer::from(der.as_slice()))
            .map_err(|e| ConfigError::InvalidRootCertificates {
                reason: format!("certificate {}: {e}", i + 1),
            })?;
    }
    Ok(certs)
}

/// What is wrong with PEM text, in words, for `InvalidRootCertificates`.
/// rustls' own `Display` prints the offending line as a list of byte values;
/// this quotes it as text instead, cut to 64 bytes (the text may be
/// anything a user passed in, so the message has a bound).
#[cfg(any(feature = "http", feature = "tokio"))]
fn pem_error_reason(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    let cut =
        |bytes: &[u8]| crate::transmission::pipeline::answer::cut_lossy(bytes.trim_ascii(), 64);
    let quoted = |bytes: &[u8]| format!("{:?}", cut(bytes));
    match e {
        // The marker is the block's label, `CERTIFICATE`.
        Error::MissingSectionEnd { end_marker } => format!(
            "a PEM block has no {:?} line",
            format!("-----END {}-----", cut(end_marker))
        ),
        Error::IllegalSectionStart { line } => {
            format!("a malformed PEM BEGIN line: {}", quoted(line))
        }
        Error::Base64Decode(detail) => format!(
            "a PEM block's body is not valid base64 ({})",
            quoted(detail.as_bytes())
        ),
        Error::SectionTooLarge => "a PEM block is larger than 256 MB".into(),
        other => format!("PEM: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PEM errors read as words, and a hostile line is quoted cut short.
    #[cfg(any(feature = "http", feature = "tokio"))]
    #[test]
    fn pem_errors_are_words_with_a_bound() {
        let reason = |pem: &str| match read_root_certificates(pem.as_bytes()) {
            Err(ConfigError::InvalidRootCertificates { reason }) => reason,
            other => panic!("{pem:?} gave {other:?}"),
        };
        let long = format!("-----BEGIN {}\nAAAA\n", "X".repeat(10_000));
        let said = reason(&long);
        assert!(
            said.starts_with("a malformed PEM BEGIN line: \"-----BEGIN XXX"),
            "{said}"
        );
        assert!(
            said.ends_with("…\"") && said.len() < 120,
            "{} bytes: {said}",
            said.len()
        );
        let said = reason("-----BEGIN CERTIFICATE-----\nAAAA\n");
        assert_eq!(
            said,
            "a PEM block has no \"-----END CERTIFICATE-----\" line"
        );
        let said = reason("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n");
        assert!(
            said.starts_with("a PEM block's body is not valid base64 ("),
            "{said}"
        );
        assert!(!said.contains('['), "no byte lists: {said}");
    }

    #[test]
    fn classic_keys() {
        assert!(is_classic_key(""));
        assert!(is_classic_key("c1a551c000d68f9ed1e96432ac1a3380"));
        assert!(!is_classic_key("C1A551C000D68F9ED1E96432AC1A3380"));
        let ingest = format!("hcxic_{}", "a1".repeat(29));
        assert_eq!(ingest.len(), 64);
        assert!(is_classic_key(&ingest));
        assert!(!is_classic_key(&format!("hcxik_{}", "a1".repeat(29))));
        assert!(!is_classic_key("hcaik_01hqk4k20zjjkq7ysa4m5sgjpj"));
    }

    #[test]
    fn dataset_rules() {
        let classic = "c1a551c000d68f9ed1e96432ac1a3380";
        let env = "hcaik_01hqk4k20zjjkq7ysa4m5sgjpj";
        assert_eq!(resolve_dataset(classic, " my ds "), " my ds ");
        assert_eq!(resolve_dataset(classic, ""), "");
        assert_eq!(resolve_dataset(env, " my ds "), "my ds");
        assert_eq!(resolve_dataset(env, "   "), "unknown_dataset");
        assert_eq!(resolve_dataset(env, ""), "unknown_dataset");
    }

    #[test]
    fn api_hosts() {
        for ok in [
            "https://api.honeycomb.io",
            "https://api.honeycomb.io/",
            "http://127.0.0.1:8080",
            "http://localhost:1/prefix/path",
            "http://[::1]:9000",
            "http://user:pw@proxy:3128",
        ] {
            assert_eq!(check_api_host(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "api.honeycomb.io",
            "ftp://x",
            "http://",
            "http:///path",
            "http://host:notaport",
            "http://host:",
            "http://ho st",
            "http://host?x=1",
            "http://[::1",
        ] {
            assert!(check_api_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn credentials_in_urls_are_redacted() {
        for (url, want) in [
            (
                "http://user:pw@host:8080/p?q@x",
                "http://***@host:8080/p?q@x",
            ),
            ("https://tok@h", "https://***@h"),
            ("http://a:b@c@h/x", "http://***@h/x"),
            ("https://api.honeycomb.io", "https://api.honeycomb.io"),
            ("http://h/p@x", "http://h/p@x"),
            ("user:pw@h", "***@h"),
            ("", ""),
        ] {
            assert_eq!(redact_userinfo(url), want, "{url}");
        }
    }

    #[test]
    fn masking() {
        assert_eq!(mask_key("fibble"), "XXbble");
        assert_eq!(mask_key("abc"), "XXX");
        assert_eq!(mask_key(""), "");
    }

    #[test]
    fn resolve_rejects_invalid_settings() {
        let base = || Config::new().read_env(false).api_key("k");
        assert_eq!(
            base().sample_rate(0).resolve().unwrap_err(),
            ConfigError::ZeroSampleRate
        );
        assert_eq!(
            base().pending_work_capacity(0).resolve().unwrap_err(),
            ConfigError::Zero {
                option: "pending_work_capacity"
            }
        );
        assert_eq!(
            base().max_batch_size(0).resolve().unwrap_err(),
            ConfigError::Zero {
                option: "max_batch_size"
            }
        );
        assert_eq!(
            base().max_concurrent_batches(0).resolve().unwrap_err(),
            ConfigError::Zero {
                option: "max_concurrent_batches"
            }
        );
        assert_eq!(
            base().response_queue_capacity(0).resolve().unwrap_err(),
            ConfigError::Zero {
                option: "response_queue_capacity"
            }
        );
        assert_eq!(
            base().max_attempts(0).resolve().unwrap_err(),
            ConfigError::Zero {
                option: "max_attempts"
            }
        );
        assert_eq!(
            base().send_frequency(Duration::ZERO).resolve().unwrap_err(),
            ConfigError::ZeroDuration {
                option: "send_frequency"
            }
        );
        assert!(matches!(
            base().api_host("api.honeycomb.io").resolve().unwrap_err(),
            ConfigError::InvalidApiHost { .. }
        ));
        assert!(matches!(
            base().proxy("socks://x").resolve().unwrap_err(),
            ConfigError::InvalidProxy { .. }
        ));
        assert!(matches!(
            base().compression_level(30).resolve().unwrap_err(),
            ConfigError::InvalidCompressionLevel {
                level: 30,
                range: (-7, 22)
            }
        ));
        assert!(matches!(
            base()
                .compression(Compression::Gzip)
                .compression_level(10)
                .resolve()
                .unwrap_err(),
            ConfigError::InvalidCompressionLevel {
                level: 10,
                range: (0, 9)
            }
        ));
        let err = base().api_host("nope").resolve().unwrap_err().to_string();
        assert!(err.contains("https://"), "{err}");
    }

    /// Every combination of features, as `check_features` sees them.
    fn every_build() -> impl Iterator<Item = Compiled> {
        (0..32u8).map(|bits| Compiled {
            http: bits & 1 != 0,
            tokio: bits & 2 != 0,
            zstd: bits & 4 != 0,
            gzip: bits & 8 != 0,
            msgpack: bits & 16 != 0,
        })
    }

    #[test]
    fn an_option_whose_feature_is_off_is_refused_by_name() {
        let mock = || Config::new().transmission(crate::transmission::Mock::new());
        for built in every_build() {
            let check = |c: &Config| check_features(c, built);
            let disabled = |option, feature| Err(ConfigError::FeatureDisabled { option, feature });
            // Defaults never need a feature (with a transmission given).
            assert_eq!(check(&mock()), Ok(()), "{built:?}");
            for (config, compiled, option, feature) in [
                (
                    mock().compression(Compression::Zstd),
                    built.zstd,
                    "Compression::Zstd",
                    "zstd",
                ),
                (
                    mock().compression(Compression::Gzip),
                    built.gzip,
                    "Compression::Gzip",
                    "gzip",
                ),
                (
                    mock().encoding(Encoding::Msgpack),
                    built.msgpack,
                    "Encoding::Msgpack",
                    "msgpack",
                ),
            ] {
                let want = if compiled {
                    Ok(())
                } else {
                    disabled(option, feature)
                };
                assert_eq!(check(&config), want, "{built:?}");
            }
            assert_eq!(check(&mock().compression(Compression::None)), Ok(()));
            assert_eq!(check(&mock().encoding(Encoding::Json)), Ok(()));
            let roots = mock().tls_root_certificates_pem("pem");
            let want = if built.http || built.tokio {
                Ok(())
            } else {
                disabled("tls_root_certificates_pem", "http")
            };
            assert_eq!(check(&roots), want, "{built:?}");
            // No transmission given: the default one needs `http`.
            let want = if built.http {
                Ok(())
            } else {
                Err(ConfigError::NoTransmission)
            };
            assert_eq!(check(&Config::new()), want, "{built:?}");
        }
    }

    #[test]
    fn the_default_compression_is_the_best_one_built_in() {
        for built in every_build() {
            let want = match (built.zstd, built.gzip) {
                (true, _) => Compression::Zstd,
                (false, true) => Compression::Gzip,
                (false, false) => Compression::None,
            };
            assert_eq!(built.default_compression(), want, "{built:?}");
            // The default never needs a feature the build lacks.
            let mut c = Config::new().transmission(crate::transmission::Mock::new());
            c.compression = Some(want);
            assert_eq!(check_features(&c, built), Ok(()), "{built:?}");
        }
        // This build: the default is what `Compression::default()` says, and
        // what the resolved configuration holds.
        assert_eq!(
            Compression::default(),
            Compiled::THIS_BUILD.default_compression()
        );
        let resolved = Config::new().read_env(false).resolve().unwrap();
        assert_eq!(resolved.compression, Some(Compression::default()));
    }

    #[test]
    fn feature_errors_say_what_to_enable() {
        let msg = ConfigError::FeatureDisabled {
            option: "Compression::Zstd",
            feature: "zstd",
        }
        .to_string();
        assert!(
            msg.contains("Compression::Zstd needs the `zstd` feature"),
            "{msg}"
        );
        assert!(msg.contains(r#"features = ["zstd"]"#), "{msg}");
        assert!(!msg.contains("tokio"), "{msg}");
        // The roots serve both HTTP transmissions: the message names both features.
        let msg = ConfigError::FeatureDisabled {
            option: "tls_root_certificates_pem",
            feature: "http",
        }
        .to_string();
        assert!(msg.contains("`http` feature"), "{msg}");
        assert!(msg.contains("(or `tokio`"), "{msg}");
        let msg = ConfigError::NoTransmission.to_string();
        for says in [
            "`http` feature",
            "Config::transmission",
            "Tokio",
            "Writer",
            "Mock",
        ] {
            assert!(msg.contains(says), "{says}: {msg}");
        }
    }

    #[test]
    fn user_agent_format() {
        let ua = Config::new().user_agent();
        assert!(ua.starts_with("libhoney-rust/"), "{ua}");
        assert!(ua.ends_with(&format!(
            "({}/{})",
            std::env::consts::OS,
            std::env::consts::ARCH
        )));
        let ua = Config::new()
            .user_agent_addition("  my-app/2 ")
            .user_agent();
        assert!(ua.contains(" my-app/2 ("), "{ua}");
    }
}
