//! The client: global fields, event creation, sampling, and the lifecycle.

use crate::sync::{LockExt, RwLockExt};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use crate::builder::{Builder, Template};
use crate::config::{Config, LONGEST_WAIT};
use crate::destination::Destination;
use crate::error::{CloseError, ConfigError, FieldError, FlushError, SendError};
use crate::event::Event;
use crate::fields::Fields;
use crate::metrics::{Metrics, MetricsSnapshot, Sharded};
use crate::response::{response_queue, Responder, Response, ResponseError, Responses};
use crate::transmission::{Context, QueuedEvent, Transmission};
use crate::value::{FieldName, Value};

/// A handle to one libhoney client: its global fields, its transmission and its
/// response queue.
///
/// `Client` is `Clone + Send + Sync`; clones are cheap (a reference count) and
/// share everything. Every method takes `&self`. When the last handle (including
/// those held by builders and unsent events) is dropped, the client closes
/// itself, waiting at most [`Config::shutdown_timeout`] for events in flight.
///
/// ```
/// use libhoney::{Client, Config, transmission::Mock};
/// let client = Client::new(
///     Config::new().api_key("my-key").dataset("my-service").transmission(Mock::new()),
/// )?;
/// client.add_field("build_id", "abc123"); // on every event from now on
/// let mut ev = client.new_event();
/// ev.add_field("duration_ms", 153.12);
/// ev.send()?;
/// client.close()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    root: RwLock<Template>,
    transmission: Arc<dyn Transmission>,
    responder: Responder,
    responses: Responses,
    closed: AtomicBool,
    /// Sends that passed the closed check and have not yet handed their event
    /// (or its sampling response) over. `close` waits for them before it
    /// closes the transmission and ends the response stream, so a send racing
    /// a close is either refused or answered, never silently dropped.
    in_dispatch: Sharded,
    dispatch_lock: Mutex<()>,
    dispatch_done: Condvar,
    metrics: Arc<Metrics>,
    config: Config,
}

/// Counts one send in progress for [`Inner::close`] to wait for.
struct DispatchGuard<'a>(&'a Inner);

impl<'a> DispatchGuard<'a> {
    /// Registers a send, or `None` if the client is closed. The counter is
    /// raised before `closed` is read, and `close` sets `closed` before it
    /// reads the counter (both sequentially consistent), so either the send
    /// sees the close or the close sees the send.
    fn enter(inner: &'a Inner) -> Option<Self> {
        inner.in_dispatch.add(1, Ordering::SeqCst);
        let guard = DispatchGuard(inner);
        if inner.closed.load(Ordering::SeqCst) {
            return None; // the guard's drop undoes the count
        }
        Some(guard)
    }
}

impl Drop for DispatchGuard<'_> {
    fn drop(&mut self) {
        let inner = self.0;
        inner.in_dispatch.sub(1, Ordering::SeqCst);
        if inner.closed.load(Ordering::SeqCst) {
            // Taking the lock orders this wake-up after the closer's check.
            let _lock = inner.dispatch_lock.lock_unpoisoned();
            inner.dispatch_done.notify_all();
        }
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.inner.config)
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Builds a client and starts its transmission (the default HTTP one unless
    /// [`Config::transmission`] names another). API key, dataset and host not set
    /// in code are read from the environment (see [`Config::read_env`]).
    ///
    /// Costs: the default transmission starts `max_concurrent_batches` + 1
    /// threads and an HTTPS agent, and the response queue's slots are allocated.
    /// No network I/O happens here and nothing blocks.
    ///
    /// Without an API key (neither [`Config::api_key`] nor `HONEYCOMB_API_KEY`)
    /// the client still starts, since builders and events may carry their own
    /// key, but it logs one warning (target `libhoney`), and each event sent
    /// without a key is refused with [`SendError::MissingApiKey`] and counted
    /// in [`MetricsSnapshot::events_missing_api_key`].
    ///
    /// ```
    /// use libhoney::{Client, Config};
    /// let client = Client::new(Config::new().api_key("my-key").dataset("my-service"))?;
    /// # client.close_within(std::time::Duration::from_millis(10)).ok();
    /// # Ok::<(), libhoney::ConfigError>(())
    /// ```
    ///
    /// # Errors
    /// [`ConfigError`] for any invalid setting, or if the transmission cannot
    /// start (for example, it already serves another client). In a build
    /// without the `http` feature, a config that names no transmission is a
    /// [`ConfigError::NoTransmission`]; an option whose feature is off, a
    /// [`ConfigError::FeatureDisabled`].
    pub fn new(config: Config) -> Result<Client, ConfigError> {
        let config = config.resolve()?;
        let metrics = Arc::new(Metrics::default());
        let (responder, responses) = response_queue(
            config.settings().response_queue_capacity(),
            config.block_on_response,
            Arc::clone(&metrics),
        );
        let transmission: Arc<dyn Transmission> = match &config.transmission {
            Some(t) => Arc::clone(t),
            None => default_transmission()?,
        };
        // The transmission's copy of the config leaves the transmission out:
        // a transmission that keeps its config would otherwise own itself.
        let mut ctx_config = config.clone();
        ctx_config.transmission = None;
        transmission.start(Context {
            responder: responder.clone(),
            config: ctx_config,
        })?;
        let dest = Destination::new(
            config.settings().api_host(),
            config.api_key.as_deref().unwrap_or(""),
            config.dataset.as_deref().unwrap_or(""),
        );
        if config.api_key.as_deref().is_none_or(str::is_empty) {
            // Said once, here, rather than per refused send (which only
            // counts in `Metrics::events_missing_api_key`).
            log::warn!(
                target: "libhoney",
                "no API key configured (Config::api_key or HONEYCOMB_API_KEY): events are refused \
                 with SendError::MissingApiKey unless a builder or event sets one"
            );
        }
        log::debug!(target: "libhoney", "client started: {config:?}");
        let root = Template {
            fields: Arc::new(Fields::default()),
            dyn_fields: Arc::new(Vec::new()),
            dest,
            sample_rate: config.sample_rate,
        };
        Ok(Client {
            inner: Arc::new(Inner {
                root: RwLock::new(root),
                transmission,
                responder,
                responses,
                closed: AtomicBool::new(false),
                in_dispatch: Sharded::default(),
                dispatch_lock: Mutex::new(()),
                dispatch_done: Condvar::new(),
                metrics,
                config,
            }),
        })
    }

    fn with_root<R>(&self, f: impl FnOnce(&mut Template) -> R) -> R {
        let mut root = self.inner.root.write_unpoisoned();
        f(&mut root)
    }

    fn root(&self) -> Template {
        self.inner.root.read_unpoisoned().clone()
    }

    /// Adds a field to every event and builder created from now on (a global
    /// field). The last write of a key wins. Events and builders already created
    /// are not affected.
    ///
    /// Takes the client's lock for a moment. The first change after an event or
    /// builder was created copies the global fields once (they are shared with
    /// them until then); other changes cost one insertion.
    ///
    /// ```
    /// # use libhoney::{Client, Config, transmission::Mock};
    /// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
    /// client.add_field("build_id", "abc123");
    /// assert_eq!(client.new_event().get("build_id").and_then(|v| v.as_str()), Some("abc123"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_field(&self, name: impl Into<FieldName>, value: impl Into<Value>) {
        let (name, value) = (name.into(), value.into());
        self.with_root(|r| r.add_field(name, value));
    }

    /// Adds every top-level key of a struct or map as a global field (nested
    /// values stay nested). Serializes `data` once, then costs as
    /// [`add_field`](Client::add_field) per key; nothing is added on error.
    ///
    /// ```
    /// # use libhoney::{Client, Config, transmission::Mock};
    /// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
    /// #[derive(serde::Serialize)]
    /// struct Host { hostname: &'static str, region: &'static str }
    /// client.add(&Host { hostname: "web-1", region: "eu" })?;
    /// assert!(client.add(&[1, 2, 3]).is_err(), "not a struct or map");
    /// assert!(client.new_event().get("region").is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`FieldError::NotAnObject`] if `data` is not a struct or map,
    /// [`FieldError::Serialize`] if it cannot be serialized.
    pub fn add<T: serde::Serialize + ?Sized>(&self, data: &T) -> Result<(), FieldError> {
        let entries = crate::ser::fields_of(data)?;
        self.with_root(|r| {
            Arc::make_mut(&mut r.fields).extend(entries);
            Ok(())
        })
    }

    /// Adds a global dynamic field: `func` is called each time an event is
    /// created (on the creating thread, so keep it cheap), and its value is
    /// added under `name`. A dynamic field overrides a static field of the
    /// same name; adding one with an existing name replaces it. Takes the
    /// client's lock for a moment.
    ///
    /// Do not capture the client itself in `func`: the client would then own
    /// a handle to itself and never close on drop.
    ///
    /// ```
    /// # use libhoney::{Client, Config, transmission::Discard};
    /// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Discard::new())).unwrap();
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// static IN_FLIGHT: AtomicU64 = AtomicU64::new(0);
    /// client.add_dynamic_field("requests_in_flight", || IN_FLIGHT.load(Ordering::Relaxed));
    /// IN_FLIGHT.store(3, Ordering::Relaxed);
    /// assert_eq!(client.new_event().get("requests_in_flight").unwrap().as_u64(), Some(3));
    /// ```
    pub fn add_dynamic_field<F, V>(&self, name: impl Into<FieldName>, func: F)
    where
        F: Fn() -> V + Send + Sync + 'static,
        V: Into<Value>,
    {
        let name = name.into();
        self.with_root(|r| r.add_dynamic_field(name, Arc::new(move || func().into())));
    }

    /// Creates an event carrying the global fields (shared, not copied) and the
    /// values of the global dynamic fields, timestamped now.
    ///
    /// Costs one small allocation plus one call of each dynamic field's function,
    /// on this thread; takes the client's lock for a moment; never blocks otherwise.
    ///
    /// ```
    /// # use libhoney::{Client, Config, transmission::Mock};
    /// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
    /// let mut ev = client.new_event();
    /// ev.add_field("duration_ms", 12.5);
    /// ev.send()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new_event(&self) -> Event {
        let seed = self.inner.root.read_unpoisoned().light();
        seed.into_event(self.clone())
    }

    /// Creates a builder: a snapshot of the global fields, dynamic fields and
    /// settings, to which more can be added. Later global changes do not reach
    /// it (libhoney-py re-merges them; this SDK does not). Copies no fields.
    ///
    /// ```
    /// # use libhoney::{Client, Config, transmission::Mock};
    /// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
    /// client.add_field("service.name", "shop");
    /// let mut db = client.new_builder();
    /// db.add_field("component", "db");
    /// client.add_field("later", true);
    /// let ev = db.new_event();
    /// assert!(ev.get("service.name").is_some() && ev.get("component").is_some());
    /// assert!(ev.get("later").is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new_builder(&self) -> Builder {
        Builder {
            client: self.clone(),
            template: self.root(),
        }
    }

    /// The response queue. Every call returns a handle to the same queue (each
    /// response goes to one reader). Cheap: clones two channel handles.
    ///
    /// ```
    /// # use libhoney::{Client, Config, transmission::Mock};
    /// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
    /// let responses = client.responses();
    /// let mut ev = client.new_event();
    /// ev.add_field("x", 1);
    /// ev.send()?;
    /// assert!(responses.try_recv()?.is_success());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn responses(&self) -> Responses {
        self.inner.responses.clone()
    }

    /// A copy of the self-metrics: a handful of relaxed atomic loads plus the
    /// transmission's queue length. Never blocks.
    ///
    /// ```
    /// # use libhoney::{Client, Config, transmission::Mock};
    /// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
    /// let mut ev = client.new_event();
    /// ev.add_field("x", 1);
    /// ev.send()?;
    /// assert_eq!(client.metrics().events_queued, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner
            .metrics
            .snapshot(self.inner.transmission.queue_len())
    }

    /// The resolved configuration: environment values and dataset rules applied.
    /// Costs nothing.
    ///
    /// ```
    /// # use libhoney::{Client, Config, transmission::Discard};
    /// let client = Client::new(Config::new().api_key("hcaik_env_key").transmission(Discard::new()))?;
    /// assert_eq!(client.config().settings().dataset(), Some("unknown_dataset"));
    /// # Ok::<(), libhoney::ConfigError>(())
    /// ```
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Has [`close`](Client::close) been called, or the last handle dropped?
    /// One atomic load.
    ///
    /// ```
    /// # use libhoney::{Client, Config, transmission::Mock};
    /// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
    /// assert!(!client.is_closed());
    /// client.close()?;
    /// assert!(client.is_closed());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// Sends everything queued and waits until every event accepted before the
    /// call has its response, up to [`Config::shutdown_timeout`]. The response
    /// stream stays open (libhoney-py's flush ends its reader's loop; this does
    /// not). Blocks the calling thread; from async code use
    /// [`flush_async`](Client::flush_async).
    ///
    /// ```
    /// # use libhoney::{Client, Config, transmission::Mock};
    /// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
    /// let mut ev = client.new_event();
    /// ev.add_field("x", 1);
    /// ev.send()?;
    /// client.flush()?;
    /// assert_eq!(client.responses().len(), 1);
    /// assert!(!client.is_closed());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`FlushError::Timeout`] if the time runs out (delivery goes on in the
    /// background); [`FlushError::Closed`] after `close`.
    pub fn flush(&self) -> Result<(), FlushError> {
        self.flush_within(self.inner.config.shutdown_timeout)
    }

    /// [`flush`](Client::flush) with an explicit time limit. Blocks up to `timeout`
    /// (`Duration::MAX`, or anything over 100 years, counts as 100 years).
    ///
    /// ```
    /// # use libhoney::{Client, Config, transmission::Mock};
    /// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
    /// client.flush_within(std::time::Duration::from_secs(2))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`flush`](Client::flush).
    pub fn flush_within(&self, timeout: Duration) -> Result<(), FlushError> {
        if self.is_closed() {
            return Err(FlushError::Closed);
        }
        if self.inner.transmission.blocking_wait_stalls() {
            return Err(FlushError::InsideRuntime);
        }
        self.inner.transmission.flush(timeout.min(LONGEST_WAIT))
    }

    /// Stops the client: waits for sends in progress, flushes, then ends the
    /// response stream (readers stop once they have read every response). Later
    /// sends fail with [`SendError::Closed`]. Waits up to
    /// [`Config::shutdown_timeout`]. Calling it again, from any handle, does
    /// nothing. Dropping the last handle (clients, builders, events) closes the
    /// client the same way. Blocks the calling thread; from async code use
    /// [`close_async`](Client::close_async).
    ///
    /// ```
    /// # use libhoney::{Client, Config, transmission::Mock};
    /// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
    /// let responses = client.responses();
    /// let mut ev = client.new_event();
    /// ev.add_field("x", 1);
    /// ev.send()?;
    /// client.close()?;
    /// assert_eq!(responses.count(), 1); // ends after the last response
    /// let mut late = client.new_event();
    /// late.add_field("x", 2);
    /// assert_eq!(late.send(), Err(libhoney::SendError::Closed));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`CloseError::Timeout`] if events were still in flight when the time ran
    /// out; the client is closed anyway.
    pub fn close(&self) -> Result<(), CloseError> {
        self.close_within(self.inner.config.shutdown_timeout)
    }

    /// [`close`](Client::close) with an explicit time limit. Blocks up to `timeout`
    /// (`Duration::MAX`, or anything over 100 years, counts as 100 years).
    ///
    /// ```
    /// # use libhoney::{Client, Config, transmission::Mock};
    /// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
    /// client.close_within(std::time::Duration::from_secs(2))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`close`](Client::close).
    pub fn close_within(&self, timeout: Duration) -> Result<(), CloseError> {
        if !self.is_closed() && self.inner.transmission.blocking_wait_stalls() {
            return Err(CloseError::InsideRuntime);
        }
        self.inner.close(timeout.min(LONGEST_WAIT))
    }

    /// [`flush_within`](Client::flush_within) for async code: the wait happens
    /// on a short-lived helper thread (one per call), so no executor thread is
    /// blocked. Works with any async runtime; the future is `Send + 'static`.
    ///
    /// ```
    /// # use libhoney::{Client, Config, transmission::Mock};
    /// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     use std::task::{Context, Poll, Wake, Waker};
    /// #     struct T(std::thread::Thread);
    /// #     impl Wake for T { fn wake(self: std::sync::Arc<Self>) { self.0.unpark() } }
    /// #     let waker = Waker::from(std::sync::Arc::new(T(std::thread::current())));
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop {
    /// #         if let Poll::Ready(v) = f.as_mut().poll(&mut Context::from_waker(&waker)) { return v; }
    /// #         std::thread::park();
    /// #     }
    /// # }
    /// // inside an async fn: client.flush_async(timeout).await?
    /// block_on(client.flush_async(std::time::Duration::from_secs(2)))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`flush`](Client::flush).
    pub fn flush_async(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), FlushError>> + Send + 'static {
        let client = self.clone();
        OffThread::spawn(move || client.flush_within(timeout))
    }

    /// [`close_within`](Client::close_within) for async code, without blocking
    /// an executor thread (the wait runs on a helper thread, one per call).
    ///
    /// # Errors
    /// As [`close`](Client::close).
    pub fn close_async(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), CloseError>> + Send + 'static {
        let client = self.clone();
        OffThread::spawn(move || client.close_within(timeout))
    }

    /// The send path shared by `Event::send` and `Event::send_presampled`.
    pub(crate) fn dispatch(ev: Event, sample: bool) -> Result<(), SendError> {
        let client = ev.client.clone();
        let inner = &client.inner;
        let Some(_guard) = DispatchGuard::enter(inner) else {
            return Err(SendError::Closed);
        };
        if let Some(queued) = Client::accept(ev, sample)? {
            inner.transmission.send(queued);
        }
        Ok(())
    }

    /// The send path of `Event::send_async`: as [`dispatch`](Client::dispatch),
    /// awaiting room where `send` would overflow.
    pub(crate) async fn dispatch_async(ev: Event) -> Result<(), SendError> {
        let client = ev.client.clone();
        let inner = &client.inner;
        let Some(_guard) = DispatchGuard::enter(inner) else {
            return Err(SendError::Closed);
        };
        if let Some(queued) = Client::accept(ev, true)? {
            inner.transmission.send_async(queued).await;
        }
        Ok(())
    }

    /// Validates and samples an event: the event to hand to the
    /// transmission, or `None` if sampling dropped it (its response given).
    fn accept(ev: Event, sample: bool) -> Result<Option<QueuedEvent>, SendError> {
        let Event {
            client,
            fields,
            dest,
            sample_rate,
            timestamp,
            metadata,
        } = ev;
        let inner = &client.inner;
        if fields.is_empty() {
            return Err(SendError::EmptyEvent);
        }
        if let Some(problem) = dest.problem() {
            if *problem == SendError::MissingApiKey {
                inner.metrics.record_missing_api_key();
            }
            return Err(problem.clone());
        }
        if sample_rate == 0 {
            return Err(SendError::ZeroSampleRate);
        }
        if !crate::encoding::time::in_rfc3339_range(timestamp) {
            return Err(SendError::TimestampOutOfRange);
        }
        if let Some(field) = fields.too_deep() {
            return Err(SendError::TooDeep {
                field: field.to_string(),
                limit: Value::MAX_DEPTH,
            });
        }
        if sample && sample_rate > 1 && fastrand::u32(0..sample_rate) != 0 {
            log::trace!(target: "libhoney", "event dropped due to sampling (rate {sample_rate})");
            inner
                .responder
                .respond(Response::failure(metadata, ResponseError::Sampled));
            return Ok(None);
        }
        inner.metrics.record_queued();
        Ok(Some(QueuedEvent {
            fields,
            dest,
            sample_rate,
            timestamp,
            metadata,
        }))
    }
}

impl Inner {
    fn close(&self, timeout: Duration) -> Result<(), CloseError> {
        if self.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let deadline = Instant::now().checked_add(timeout);
        // Let sends already past the closed check hand their events over.
        // `stuck` is only read when the wait gives up: a send that starts now
        // raises the counter for a moment before it sees `closed` and returns
        // `Err(Closed)`, so a second look at the counter after it reached 0
        // could count such a send as stuck and fail a close that drained.
        let mut stuck = 0;
        let mut lock = self.dispatch_lock.lock_unpoisoned();
        loop {
            let in_dispatch = self.in_dispatch.sum(Ordering::SeqCst) as usize;
            if in_dispatch == 0 {
                break;
            }
            let wait = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            if wait.is_zero() {
                stuck = in_dispatch;
                break;
            }
            lock = self
                .dispatch_done
                .wait_timeout(lock, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        drop(lock);
        let remaining = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => timeout,
        };
        let mut result = self.transmission.close(remaining);
        if stuck > 0 && result.is_ok() {
            // Sends still blocked (on a full queue nobody drains): they are
            // released below, when the stream ends, and their responses dropped.
            result = Err(CloseError::Timeout {
                timeout,
                pending: stuck,
            });
        }
        if let Err(e) = &result {
            log::warn!(target: "libhoney", "{e}");
        }
        self.responder.end();
        log::debug!(target: "libhoney", "client closed");
        result
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if !self.closed.load(Ordering::Acquire) {
            let _ = self.close(self.config.shutdown_timeout);
        }
    }
}

/// A future whose work runs on its own thread; it completes when the work does.
struct OffThread<T> {
    state: Arc<Mutex<(Option<T>, Option<Waker>)>>,
}

impl<T: Send + 'static> OffThread<T> {
    fn spawn(work: impl FnOnce() -> T + Send + 'static) -> Self {
        let state: Arc<Mutex<(Option<T>, Option<Waker>)>> = Arc::new(Mutex::new((None, None)));
        let work = Arc::new(Mutex::new(Some(work)));
        let (shared, job) = (Arc::clone(&state), Arc::clone(&work));
        let run = move || {
            let Some(work) = job.lock_unpoisoned().take() else {
                return;
            };
            let out = work();
            let mut s = shared.lock_unpoisoned();
            s.0 = Some(out);
            if let Some(w) = s.1.take() {
                w.wake();
            }
        };
        let spawned = std::thread::Builder::new()
            .name("libhoney-wait".into())
            .spawn(run);
        if spawned.is_err() {
            // No thread could be made: do the work here rather than never finish.
            if let Some(work) = work.lock_unpoisoned().take() {
                state.lock_unpoisoned().0 = Some(work());
            }
        }
        OffThread { state }
    }
}

impl<T> Future for OffThread<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<T> {
        let mut s = self.state.lock_unpoisoned();
        match s.0.take() {
            Some(out) => Poll::Ready(out),
            None => {
                s.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// The transmission of a client given none: [`Http`](crate::transmission::Http).
#[cfg(feature = "http")]
fn default_transmission() -> Result<Arc<dyn Transmission>, ConfigError> {
    Ok(Arc::new(crate::transmission::Http::new()))
}

/// Without the `http` feature there is no default transmission
/// (`Config::resolve` has said so already).
#[cfg(not(feature = "http"))]
fn default_transmission() -> Result<Arc<dyn Transmission>, ConfigError> {
    Err(ConfigError::NoTransmission)
}
