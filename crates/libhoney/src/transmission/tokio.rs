//! A transmission that runs on the application's tokio runtime (the `tokio`
//! feature): the counterpart of libhoney-py's `TornadoTransmission`.
//!
//! It shares everything but the I/O with [`Http`](super::Http): batching,
//! encoding, size limits and splitting, compression, the retry policy and the
//! mapping of an answer to one response per event all come from
//! `transmission::batch`. Only the moving parts differ: spawned tasks instead
//! of threads, hyper instead of ureq, tokio timers instead of blocking sleeps.

use crate::sync::LockExt;
use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::io;
use std::panic::AssertUnwindSafe;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::header::{HeaderValue, ACCEPT, CONTENT_ENCODING, CONTENT_TYPE, USER_AGENT};
use hyper::{Request, Uri};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::runtime::Handle;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};

use super::batch::{
    answer_batch, behind_above, content_type, counted_send, deadline_after, is_retryable_status,
    parse_retry_after, wait_deadline, Batcher, Compressor, Item, Outcome, ReadyBatch, RetryPolicy,
    SendEncoder, Sharded, IDLE_ROUNDS, ROOM_POLL, ROUND_PAUSE,
};
use super::{Context, QueuedEvent, Transmission};
use crate::config::{Compression, Config};
use crate::error::{CloseError, ConfigError, FlushError};
use crate::response::{Metadata, Responder, Response, ResponseError};

/// Bodies up to this size are compressed on the sending task; larger ones on
/// tokio's blocking pool, so that no executor thread is busy for long.
const INLINE_COMPRESS_MAX: usize = 128 * 1024;

/// The most of an answer's body that is read (as `Http` does).
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// The longest response head a proxy may send to `CONNECT`.
const MAX_PROXY_HEAD: usize = 16 * 1024;

const NO_RUNTIME: &str = "Tokio::new() found no tokio runtime: build the client inside one \
     (in async code, or on a thread that entered a runtime's handle), or use Tokio::with_handle";

/// Sends events to the Events API from tasks on the application's tokio
/// runtime, with the same wire format, batching, limits, retries and
/// guarantees as the default [`Http`](super::Http) transmission, but no
/// threads of its own. Available with the `tokio` cargo feature.
///
/// # Use
///
/// Give one handle to [`Config::transmission`] and keep a clone (it is
/// cheap: a reference count) to `flush().await` and `close().await`:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let rx = libhoney_receiver::Receiver::builder().api_key("my-key").start()?;
/// use std::time::Duration;
/// use libhoney::{Client, Config, transmission::Tokio};
///
/// let tokio = Tokio::new(); // uses the runtime the client is built in
/// let client = Client::new(
///     Config::new().api_key("my-key").dataset("my-service")
/// #       .api_host(rx.url()).read_env(false).proxy_from_env(false)
///         .transmission(tokio.clone()),
/// )?;
/// let mut ev = client.new_event();
/// ev.add_field("duration_ms", 12.5);
/// ev.send()?; // never blocks: the event goes on a bounded queue
///
/// tokio.flush(Duration::from_secs(5)).await?; // every event so far has its response
/// assert!(client.responses().try_recv()?.is_success());
///
/// tokio.close(Duration::from_secs(5)).await?; // sends what is left, stops the tasks
/// client.close_async(Duration::from_secs(5)).await?; // ends the response stream
/// # Ok(()) }
/// ```
///
/// # How it works
///
/// When the client starts it, the transmission spawns one batcher task on
/// the runtime. [`send`](Transmission::send) puts the event on a bounded
/// queue of `pending_work_capacity` events (encoding it first on the calling
/// thread while more than a sixteenth of the queue, and at least 512 events,
/// wait, see
/// [`Config::encode_on`](crate::Config::encode_on)); the batcher groups
/// events by (API host, API key, dataset), appends each to its batch body,
/// encoding it there if `send` did not, splits
/// at `max_batch_bytes`, answers events over `max_event_bytes` with
/// [`TooLarge`](crate::ResponseError::TooLarge), and ships a batch at
/// `max_batch_size` events or `send_frequency` after its first event. Each
/// ready batch gets its own task, at most `max_concurrent_batches` at a time
/// (the batcher waits for a free slot, so a slow API fills the queue rather
/// than memory). That task compresses the body (zstd by default; bodies over
/// 128 KiB on tokio's blocking pool), `POST`s it to
/// `{api_host}/1/batch/{dataset}` with hyper, each attempt limited by
/// `request_timeout`, retries transient failures with backoff and jitter (or
/// `Retry-After`) up to `max_attempts` and `retry_deadline`, and gives every
/// event of the batch exactly one response.
///
/// HTTPS is verified with rustls (ring) and the webpki roots, or only the
/// roots of
/// [`Config::tls_root_certificates_pem`](crate::Config::tls_root_certificates_pem).
/// A proxy comes from [`Config::proxy`] or, with [`Config::proxy_from_env`], from
/// `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` and `NO_PROXY`; as with `Http`,
/// every request goes through the proxy in a `CONNECT` tunnel, with basic
/// authentication when the proxy URL has a user and password.
///
/// The runtime must have its I/O and time drivers (`enable_all()`, as
/// `#[tokio::main]` and `#[tokio::test]` do); the client reports a
/// [`ConfigError::Transmission`] otherwise.
///
/// # What blocks, and where
///
/// - `send` never blocks with `block_on_send` off: a full queue gives the
///   event a [`QueueOverflow`](crate::ResponseError::QueueOverflow) response.
///   With `block_on_send` on, a `send` that finds the queue full waits for
///   room **only on a thread outside any tokio runtime** (a plain thread):
///   there it sleeps, looking every 100 µs, until an eighth of the queue is
///   free (so the runtime must be running), or the transmission stops. On a
///   thread inside a runtime (a worker, `block_on`, a `LocalSet`, a
///   `spawn_blocking` thread) it never
///   blocks, since waiting there could stall the very executor that drains
///   the queue: the event gets a `QueueOverflow` response instead. Size
///   `pending_work_capacity` for your bursts, or send from plain threads, to
///   never lose an event.
/// - [`flush`](Tokio::flush) and [`close`](Tokio::close) (the async ones)
///   never block a thread: they await.
/// - The [`Transmission`] trait's `flush` and `close`, which
///   [`Client::flush`](crate::Client::flush), [`Client::close`](crate::Client::close)
///   and dropping the last client call, block the calling thread, up to their
///   timeout; with nothing in flight they return at once. On one worker of a
///   multi-thread runtime, the other workers run the transmission meanwhile.
///   On the thread of a current-thread runtime (or with every worker blocked
///   so), its tasks cannot run while the call waits: with events in flight
///   it returns a timeout error after its timeout instead of hanging (a
///   close then gives the events up: each gets a transport error). So in
///   async code, await [`flush`](Tokio::flush)/[`close`](Tokio::close) here, or use
///   [`Client::flush_async`](crate::Client::flush_async)/[`Client::close_async`](crate::Client::close_async)
///   (which wait on a helper thread), and close before dropping the last
///   client handle.
/// - With `block_on_response` on, responses are handed to the response queue
///   from tokio's blocking pool, so a full response queue holds back the
///   sending task (and, through it, the queue) without blocking an executor
///   thread; a `send` that overflows still answers on its own thread, as
///   with every transmission.
///
/// Costs: no thread of its own; one batcher task, one task per batch in
/// flight, and a pool of up to `max_concurrent_batches` (at least 2) idle
/// connections per host, with hyper's task for each open connection. Memory
/// is bounded as with `Http`: the queue, one open batch per destination, and
/// `max_concurrent_batches` batches in flight.
///
/// If the runtime shuts down while events are queued or in flight, each of
/// them is answered with a [`Transport`](crate::ResponseError::Transport)
/// error as its task is dropped: still exactly one response per event (with
/// `block_on_response`, handed over from a short-lived thread, so dropping
/// the runtime never waits for room in the response queue). The
/// transmission stops for good then; later events are answered the same way.
#[derive(Clone, Default)]
pub struct Tokio {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    handle: Option<Handle>,
    running: OnceLock<Running>,
}

impl fmt::Debug for Tokio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokio")
            .field("started", &self.inner.running.get().is_some())
            .field("queue_len", &self.queue_len())
            .finish()
    }
}

impl Tokio {
    /// A transmission that runs on the runtime current where the client is
    /// built ([`Handle::try_current`] when [`Client::new`](crate::Client::new)
    /// starts it). Costs one allocation; starts nothing yet.
    ///
    /// ```
    /// use libhoney::{Client, Config, ConfigError, transmission::Tokio};
    /// // Outside any runtime, the client cannot start it:
    /// let err = Client::new(Config::new().api_key("k").dataset("d").transmission(Tokio::new()))
    ///     .unwrap_err();
    /// assert!(matches!(err, ConfigError::Transmission(_)));
    ///
    /// let runtime = tokio::runtime::Runtime::new()?;
    /// let client = runtime.block_on(async {
    ///     Client::new(Config::new().api_key("k").dataset("d").transmission(Tokio::new()))
    /// })?;
    /// # runtime.block_on(client.close_async(std::time::Duration::from_secs(1)))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new() -> Self {
        Tokio::default()
    }

    /// A transmission whose tasks run on the runtime of `handle`, wherever the
    /// client is built (for example on a plain thread, while the runtime runs
    /// elsewhere). Costs one allocation; starts nothing yet.
    ///
    /// ```
    /// use std::time::Duration;
    /// use libhoney::{Client, Config, transmission::Tokio};
    /// let runtime = tokio::runtime::Runtime::new()?;
    /// let tokio = Tokio::with_handle(runtime.handle().clone());
    /// // No runtime on this thread: the tasks go to `runtime`.
    /// let client = Client::new(
    ///     Config::new().api_key("k").dataset("d").transmission(tokio.clone()),
    /// )?;
    /// runtime.block_on(tokio.close(Duration::from_secs(1)))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_handle(handle: Handle) -> Self {
        Tokio {
            inner: Arc::new(Inner {
                handle: Some(handle),
                running: OnceLock::new(),
            }),
        }
    }

    fn running(&self) -> Option<&Running> {
        self.inner.running.get()
    }

    /// Waits, without blocking any thread, until every event sent before the
    /// call has its response, up to `timeout` (`Duration::MAX`, or anything
    /// over 100 years, counts as 100 years). Open batches are sent at once.
    /// The response stream stays open and the transmission keeps working.
    /// Costs a marker on a channel and a wait; nothing when no event is in
    /// flight. Dropping the future stops the wait, not the delivery.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let rx = libhoney_receiver::Receiver::builder().api_key("k").start()?;
    /// use std::time::Duration;
    /// use libhoney::{Client, Config, transmission::Tokio};
    /// let tokio = Tokio::new();
    /// let client = Client::new(Config::new().api_key("k").dataset("d")
    /// #   .api_host(rx.url()).read_env(false).proxy_from_env(false)
    ///     .send_frequency(Duration::from_secs(60)) // would hold the batch for a minute
    ///     .transmission(tokio.clone()))?;
    /// let mut ev = client.new_event();
    /// ev.add_field("x", 1);
    /// ev.send()?;
    /// tokio.flush(Duration::from_secs(5)).await?;
    /// assert_eq!(client.responses().len(), 1);
    /// # tokio.close(Duration::from_secs(5)).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`FlushError::Timeout`] when the time runs out first (delivery goes
    /// on); [`FlushError::Closed`] after [`close`](Tokio::close).
    pub async fn flush(&self, timeout: Duration) -> Result<(), FlushError> {
        let Some(r) = self.running() else {
            return Ok(());
        };
        let deadline = deadline_after(timeout);
        let reply = match r.begin_flush() {
            Begin::Done(result) => return result,
            Begin::Wait(reply) => reply,
        };
        let settled = match reply.wait_async(deadline).await {
            Some(Reply::Done(last)) => r.shared.wait_upto_async(last, deadline).await,
            Some(_) => r.shared.wait_upto_async(u64::MAX, deadline).await,
            None => false,
        };
        r.end_flush(settled, timeout)
    }

    /// Closes the transmission without blocking any thread: later events are
    /// answered with a transport error, every event already sent is
    /// delivered (open batches go out at once) and the tasks stop, all within
    /// `timeout`. It does not end the client's response stream: call
    /// [`Client::close_async`](crate::Client::close_async) after it (it returns
    /// at once then), or drop the client. Calling it again does nothing.
    ///
    /// If the time runs out, retries are interrupted, queued events are
    /// answered with a transport error at once, and requests in progress
    /// finish within `request_timeout` (their answers still count). Costs a
    /// marker on a channel and a wait. Dropping the future stops the wait;
    /// the close goes on.
    ///
    /// ```
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let rx = libhoney_receiver::Receiver::builder().api_key("k").start()?;
    /// use std::time::Duration;
    /// use libhoney::{Client, Config, transmission::Tokio};
    /// let tokio = Tokio::new();
    /// let client = Client::new(Config::new().api_key("k").dataset("d")
    /// #   .api_host(rx.url()).read_env(false).proxy_from_env(false)
    ///     .transmission(tokio.clone()))?;
    /// let responses = client.responses();
    /// let mut ev = client.new_event();
    /// ev.add_field("x", 1);
    /// ev.send()?;
    /// tokio.close(Duration::from_secs(5)).await?;
    /// client.close_async(Duration::from_secs(5)).await?;
    /// assert_eq!(responses.filter(|r| r.is_success()).count(), 1);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`CloseError::Timeout`] when the time runs out first; the transmission
    /// is closed anyway.
    pub async fn close(&self, timeout: Duration) -> Result<(), CloseError> {
        let Some(r) = self.running() else {
            return Ok(());
        };
        let deadline = deadline_after(timeout);
        let Some(reply) = r.begin_close() else {
            return Ok(());
        };
        let drained = match reply.wait_async(deadline).await {
            Some(_) => r.shared.wait_upto_async(u64::MAX, deadline).await,
            None => false,
        };
        r.end_close(drained, timeout)
    }
}

impl Transmission for Tokio {
    fn start(&self, ctx: Context) -> Result<(), ConfigError> {
        if self.running().is_some() {
            return Err(ConfigError::Transmission(
                "this Tokio transmission is already used by another client".into(),
            ));
        }
        let handle = match &self.inner.handle {
            Some(h) => h.clone(),
            None => {
                Handle::try_current().map_err(|_| ConfigError::Transmission(NO_RUNTIME.into()))?
            }
        };
        check_drivers(&handle)?;
        let config = &ctx.config;
        let user_agent = HeaderValue::from_str(&config.user_agent()).map_err(|_| {
            ConfigError::Transmission("the user agent addition is not a valid header value".into())
        })?;
        let connector = Connector::new(config)?;
        let client = HyperClient::builder(HandleExecutor(handle.clone()))
            .pool_timer(TokioTimer::new())
            .pool_max_idle_per_host(config.max_concurrent_batches.max(2))
            .build(connector);
        let (events_tx, events_rx) =
            mpsc::channel(config.pending_work_capacity.min(Semaphore::MAX_PERMITS));
        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            responder: ctx.responder.clone(),
            block_on_response: config.block_on_response,
            handle: handle.clone(),
            closed: AtomicBool::new(false),
            abandoned: AtomicBool::new(false),
            stop: watch::channel(false).0,
            sending: Sharded::default(),
            unanswered: AtomicUsize::new(0),
            in_flight: Mutex::new(BTreeSet::new()),
            settled: Condvar::new(),
            settled_async: Notify::new(),
        });
        let sender = Arc::new(SendContext {
            shared: Arc::clone(&shared),
            client,
            user_agent,
            content_type: content_type(config.encoding),
            compression: config.compression,
            level: config.settings().compression_level(),
            compressors: Mutex::new(Vec::new()),
            retry: RetryPolicy::from_config(config),
            request_timeout: config.request_timeout,
            slots: Arc::new(Semaphore::new(
                config.max_concurrent_batches.min(Semaphore::MAX_PERMITS),
            )),
        });
        let (batcher, encoder) = Batcher::with_encoder(config);
        let state = BatcherState {
            batcher,
            ready: Vec::new(),
            rejected: Vec::new(),
            shared: Arc::clone(&shared),
        };
        let events = EventQueue {
            rx: events_rx,
            shared: Arc::clone(&shared),
        };
        let running = Running {
            events: events_tx,
            encoder,
            ctl: ctl_tx,
            shared,
            block_on_send: config.block_on_send,
        };
        self.inner.running.set(running).map_err(|_| {
            ConfigError::Transmission("this Tokio transmission was started twice".into())
        })?;
        handle.spawn(run_batcher(events, ctl_rx, state, sender));
        Ok(())
    }

    fn send(&self, ev: QueuedEvent) {
        let Some(r) = self.running() else {
            return;
        };
        // As in `Http`: either this send sees `closed`, or the batcher's last
        // look at the queue waits for it.
        counted_send(&r.shared.sending, || r.send(ev));
    }

    /// Blocks the calling thread up to `timeout`; see "What blocks" on [`Tokio`].
    fn flush(&self, timeout: Duration) -> Result<(), FlushError> {
        let Some(r) = self.running() else {
            return Ok(());
        };
        let deadline = deadline_after(timeout);
        let reply = match r.begin_flush() {
            Begin::Done(result) => return result,
            Begin::Wait(reply) => reply,
        };
        nudge();
        let settled = match reply.wait(deadline) {
            Some(Reply::Done(last)) => r.shared.wait_upto(last, deadline),
            Some(_) => r.shared.wait_upto(u64::MAX, deadline),
            None => false,
        };
        r.end_flush(settled, timeout)
    }

    /// Blocks the calling thread up to `timeout`; see "What blocks" on [`Tokio`].
    fn close(&self, timeout: Duration) -> Result<(), CloseError> {
        let Some(r) = self.running() else {
            return Ok(());
        };
        let deadline = deadline_after(timeout);
        let Some(reply) = r.begin_close() else {
            return Ok(());
        };
        nudge();
        let drained = reply.wait(deadline).is_some() && r.shared.wait_upto(u64::MAX, deadline);
        r.end_close(drained, timeout)
    }

    fn queue_len(&self) -> usize {
        self.running()
            .map_or(0, |r| r.events.max_capacity() - r.events.capacity())
    }
}

/// Before a blocking wait on a thread inside a runtime: a task woken from a
/// multi-thread runtime's worker (the batcher, woken by a send or by the
/// flush/close marker) goes to that worker's "LIFO slot", which no other
/// worker may take; with the worker blocked here, it would not run until the
/// wait times out. Spawning an empty task from here pushes whatever sits in
/// the slot to the worker's queue, from which idle workers take tasks.
/// Costs one tiny task; does nothing outside a runtime.
fn nudge() {
    if let Ok(handle) = Handle::try_current() {
        drop(handle.spawn(async {}));
    }
}

/// Makes sure the runtime has the time and I/O drivers the tasks need: tokio
/// panics at their first use otherwise, and a clear error now is better.
fn check_drivers(handle: &Handle) -> Result<(), ConfigError> {
    let _enter = handle.enter();
    let time = std::panic::catch_unwind(|| drop(tokio::time::sleep(Duration::ZERO)));
    if time.is_err() {
        return Err(ConfigError::Transmission(
            "the tokio runtime has no time driver: build it with enable_all()".into(),
        ));
    }
    // Registering a socket needs the I/O driver. A loopback UDP socket costs
    // no traffic; if none can be had, the check is skipped.
    if let Ok(socket) = std::net::UdpSocket::bind(("127.0.0.1", 0)) {
        if socket.set_nonblocking(true).is_ok() {
            let io = std::panic::catch_unwind(AssertUnwindSafe(|| {
                drop(tokio::net::UdpSocket::from_std(socket))
            }));
            if io.is_err() {
                return Err(ConfigError::Transmission(
                    "the tokio runtime has no I/O driver: build it with enable_all()".into(),
                ));
            }
        }
    }
    Ok(())
}

/// Runs hyper's connection tasks on the transmission's runtime.
#[derive(Clone)]
struct HandleExecutor(Handle);

impl<F> hyper::rt::Executor<F> for HandleExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        self.0.spawn(fut);
    }
}

enum Ctl {
    Flush(ReplyTx),
    Close(ReplyTx),
}

struct Running {
    events: mpsc::Sender<Item>,
    /// Encodes events in `send` (unless `EncodeOn::Batcher`).
    encoder: Option<SendEncoder>,
    ctl: mpsc::UnboundedSender<Ctl>,
    shared: Arc<Shared>,
    block_on_send: bool,
}

enum Begin<E> {
    Done(Result<(), E>),
    Wait(Arc<Slot>),
}

/// Puts `ev` on the full queue from a plain thread, waiting as long as it
/// takes; gives it back if the batcher is gone.
///
/// Polls rather than parking in `blocking_send`: a parked thread is woken
/// (a futex call on a runtime worker) by every event the batcher takes, so
/// senders faster than the batcher cost a thread switch per event; with 4
/// sending threads that halved throughput (`libhoney-bench send --threads 4
/// --transmission tokio`). Once the queue is full, it waits until an eighth
/// of it is free, so that senders do not press on the last free slot.
fn send_when_room(tx: &mpsc::Sender<Item>, mut ev: Item) -> Option<Item> {
    let resume_at = (tx.max_capacity() / 8).max(1);
    loop {
        std::thread::sleep(ROOM_POLL);
        if tx.is_closed() {
            return Some(ev);
        }
        if tx.capacity() < resume_at {
            continue;
        }
        match tx.try_send(ev) {
            Ok(()) => return None,
            Err(TrySendError::Full(back)) => ev = back,
            Err(TrySendError::Closed(back)) => return Some(back),
        }
    }
}

impl Running {
    /// Hands one event to the batcher, or answers it at once.
    fn send(&self, ev: QueuedEvent) {
        let shared = &self.shared;
        if shared.closed.load(Ordering::SeqCst) {
            shared.respond_untracked(
                ev.into(),
                ResponseError::Transport("the transmission is closed".into()),
            );
            return;
        }
        // `EncodeOn::Adaptive`: encode here while more than `behind_above`
        // events wait (free permits are the queue's free room).
        let encoder = self.encoder.as_ref().filter(|e| {
            e.encodes_now(|| {
                let max = self.events.max_capacity();
                max - self.events.capacity() > behind_above(max)
            })
        });
        let ev = Item::new(ev, encoder);
        shared.unanswered.fetch_add(1, Ordering::SeqCst);
        let ev = match self.events.try_send(ev) {
            Ok(()) => return,
            Err(TrySendError::Full(ev)) => {
                // Wait only where waiting cannot stall an executor: on a
                // thread outside every runtime.
                if !self.block_on_send || Handle::try_current().is_ok() {
                    log::debug!(target: "libhoney", "queue overflow: event dropped");
                    shared.fail(ev, ResponseError::QueueOverflow);
                    return;
                }
                match send_when_room(&self.events, ev) {
                    None => return,
                    Some(ev) => ev,
                }
            }
            Err(TrySendError::Closed(ev)) => ev,
        };
        let error = ResponseError::Transport("the transmission has stopped".into());
        shared.fail(ev, error);
    }

    fn begin_flush(&self) -> Begin<FlushError> {
        if self.shared.closed.load(Ordering::SeqCst) {
            return Begin::Done(Err(FlushError::Closed));
        }
        if self.shared.unanswered.load(Ordering::SeqCst) == 0 {
            return Begin::Done(Ok(()));
        }
        let slot = Slot::new();
        // If the batcher is gone (the runtime shut down), the marker is
        // dropped and the slot says so: then every event was answered.
        let _ = self.ctl.send(Ctl::Flush(ReplyTx(Arc::clone(&slot))));
        Begin::Wait(slot)
    }

    fn end_flush(&self, settled: bool, timeout: Duration) -> Result<(), FlushError> {
        if settled {
            Ok(())
        } else {
            Err(FlushError::Timeout {
                timeout,
                pending: self.shared.unanswered.load(Ordering::SeqCst),
            })
        }
    }

    /// Marks the transmission closed and asks the batcher to drain and stop;
    /// `None` if it was closed already or nothing is left to wait for.
    fn begin_close(&self) -> Option<Arc<Slot>> {
        if self.shared.closed.swap(true, Ordering::SeqCst) {
            return None;
        }
        let slot = Slot::new();
        let _ = self.ctl.send(Ctl::Close(ReplyTx(Arc::clone(&slot))));
        // Nothing queued, batched or in flight, and no send in progress: the
        // batcher stops on its own when it next runs; no need to wait for
        // it (it may be unable to run while we wait, on this very thread).
        let idle = self.shared.sending.sum(Ordering::SeqCst) == 0
            && self.shared.unanswered.load(Ordering::SeqCst) == 0;
        (!idle).then_some(slot)
    }

    fn end_close(&self, drained: bool, timeout: Duration) -> Result<(), CloseError> {
        if drained {
            return Ok(());
        }
        let pending = self.shared.unanswered.load(Ordering::SeqCst);
        // Give up: retries stop, queued events fail fast, tasks finish on their own.
        self.shared.abandoned.store(true, Ordering::SeqCst);
        self.shared.stop.send_replace(true);
        Err(CloseError::Timeout { timeout, pending })
    }
}

/// State shared by the handles, the batcher and the sending tasks.
struct Shared {
    responder: Responder,
    block_on_response: bool,
    handle: Handle,
    closed: AtomicBool,
    /// A close timed out: answer everything at once, retry nothing.
    abandoned: AtomicBool,
    /// Set to true with `abandoned`, to wake retry sleeps.
    stop: watch::Sender<bool>,
    /// `send` calls in progress (see `take_last_events`).
    sending: Sharded,
    /// Events handed over by `send` and not yet answered.
    unanswered: AtomicUsize,
    /// Sequence numbers of batches handed to sending tasks and not yet answered.
    in_flight: Mutex<BTreeSet<u64>>,
    settled: Condvar,
    settled_async: Notify,
}

impl Shared {
    fn lock_in_flight(&self) -> MutexGuard<'_, BTreeSet<u64>> {
        self.in_flight.lock_unpoisoned()
    }

    /// Answers an event that never counted as handed over.
    fn respond_untracked(&self, mut ev: Item, error: ResponseError) {
        self.responder
            .respond(Response::failure(ev.take_metadata(), error));
    }

    /// Answers one handed-over event with a failure.
    fn fail(&self, mut ev: Item, error: ResponseError) {
        self.respond(Response::failure(ev.take_metadata(), error));
    }

    /// Delivers the response of one handed-over event.
    fn respond(&self, r: Response) {
        self.responder.respond(r);
        self.unanswered.fetch_sub(1, Ordering::SeqCst);
    }

    fn respond_all(&self, responses: Vec<Response>) {
        let n = responses.len();
        self.responder.respond_all(responses);
        self.unanswered.fetch_sub(n, Ordering::SeqCst);
    }

    fn begin(&self, seq: u64) {
        self.lock_in_flight().insert(seq);
    }

    fn end(&self, seq: u64) {
        self.lock_in_flight().remove(&seq);
        self.settled.notify_all();
        self.settled_async.notify_waiters();
    }

    /// Is no batch numbered `upto` or lower in flight?
    fn is_settled(&self, upto: u64) -> bool {
        self.lock_in_flight()
            .first()
            .is_none_or(|&first| first > upto)
    }

    /// Blocks until no batch numbered `upto` or lower is in flight.
    fn wait_upto(&self, upto: u64, deadline: Instant) -> bool {
        wait_deadline(&self.settled, self.lock_in_flight(), deadline, |set| {
            set.first().is_none_or(|&first| first > upto).then_some(())
        })
        .is_some()
    }

    /// Awaits until no batch numbered `upto` or lower is in flight.
    async fn wait_upto_async(&self, upto: u64, deadline: Instant) -> bool {
        notified_until(&self.settled_async, deadline, || {
            self.is_settled(upto).then_some(())
        })
        .await
        .is_some()
    }

    fn abandoned(&self) -> bool {
        self.abandoned.load(Ordering::SeqCst)
    }

    /// Hands responses over where that may block: on the blocking pool with
    /// `block_on_response`, else here. If the runtime drops the job unrun,
    /// the value's `Drop` hands them over instead.
    async fn deliver<T: Deliver>(&self, mut value: T) {
        if self.block_on_response {
            let _ = self.handle.spawn_blocking(move || value.run()).await;
        } else {
            value.run();
        }
    }
}

/// Responses waiting to be handed to the responder, exactly once: by `run`
/// normally; if dropped first (its task or blocking job dropped as the
/// runtime shuts down), by `Drop`, which with `block_on_response` does it on
/// a thread of its own rather than block the thread dropping the runtime.
trait Deliver: Send + 'static {
    fn run(&mut self);
}

/// Hands `value`'s responses over from its `Drop`: here, or on a new thread
/// when that may block (if no thread can be had, here after all).
fn deliver_on_drop<T: Deliver>(shared: &Shared, mut value: T, detached: bool) {
    if detached || !shared.block_on_response {
        value.run();
        return;
    }
    let _ = std::thread::Builder::new()
        .name("libhoney-answer".into())
        .spawn(move || value.run());
}

/// The answer to a flush or close marker: the last batch it covers.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Reply {
    Waiting,
    Done(u64),
    /// The batcher is gone (its runtime shut down): it answered everything.
    Gone,
}

/// A one-time reply that both blocking and async code can wait for.
struct Slot {
    state: Mutex<Reply>,
    cond: Condvar,
    notify: Notify,
}

impl Slot {
    fn new() -> Arc<Slot> {
        Arc::new(Slot {
            state: Mutex::new(Reply::Waiting),
            cond: Condvar::new(),
            notify: Notify::new(),
        })
    }

    fn set(&self, reply: Reply) {
        let mut s = self.state.lock_unpoisoned();
        if *s == Reply::Waiting {
            *s = reply;
        }
        drop(s);
        self.cond.notify_all();
        self.notify.notify_waiters();
    }

    fn get(&self) -> Option<Reply> {
        let s = *self.state.lock_unpoisoned();
        (s != Reply::Waiting).then_some(s)
    }

    fn wait(&self, deadline: Instant) -> Option<Reply> {
        wait_deadline(&self.cond, self.state.lock_unpoisoned(), deadline, |s| {
            (*s != Reply::Waiting).then_some(*s)
        })
    }

    async fn wait_async(&self, deadline: Instant) -> Option<Reply> {
        notified_until(&self.notify, deadline, || self.get()).await
    }
}

/// Awaits until `ready` gives a value, looking again at each notification
/// of `notify`; once `deadline` has passed, gives what a last look finds.
/// The async counterpart of [`wait_deadline`].
async fn notified_until<R>(
    notify: &Notify,
    deadline: Instant,
    mut ready: impl FnMut() -> Option<R>,
) -> Option<R> {
    let deadline = tokio::time::Instant::from_std(deadline);
    loop {
        let mut notified = pin!(notify.notified());
        // Registered before the look, so that no notification in between is lost.
        notified.as_mut().enable();
        if let Some(r) = ready() {
            return Some(r);
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return ready();
        }
    }
}

/// The batcher's end of a [`Slot`]; dropped unanswered, it says `Gone`.
struct ReplyTx(Arc<Slot>);

impl ReplyTx {
    fn send(&self, last: u64) {
        self.0.set(Reply::Done(last));
    }
}

impl Drop for ReplyTx {
    fn drop(&mut self) {
        self.0.set(Reply::Gone);
    }
}

/// The batcher's end of the event queue. Dropped (when the batcher stops, or
/// its runtime shuts down), it refuses new events and answers queued ones.
struct EventQueue {
    rx: mpsc::Receiver<Item>,
    shared: Arc<Shared>,
}

impl Drop for EventQueue {
    fn drop(&mut self) {
        self.rx.close();
        let mut responses = Vec::new();
        while let Ok(mut ev) = self.rx.try_recv() {
            let error = ResponseError::Transport(
                "the tokio runtime stopped before the event could be sent".into(),
            );
            responses.push(Response::failure(ev.take_metadata(), error));
        }
        drop(PendingResponses::new(&self.shared, responses));
    }
}

/// What the batcher holds. Dropped with events still in it (its runtime shut
/// down), it answers each of them.
struct BatcherState {
    batcher: Batcher,
    ready: Vec<ReadyBatch>,
    /// Responses to deliver from the blocking pool (`block_on_response`).
    rejected: Vec<Response>,
    shared: Arc<Shared>,
}

impl Drop for BatcherState {
    fn drop(&mut self) {
        let rejected = std::mem::take(&mut self.rejected);
        drop(PendingResponses::new(&self.shared, rejected));
        self.batcher.drain(&mut self.ready);
        for b in self.ready.drain(..) {
            let error = "the tokio runtime stopped before the batch could be sent";
            let mut answer = BatchAnswer::new(&self.shared, b.seq, b.metas);
            answer.outcome = Some(Outcome::Transport(error.into()));
            drop(answer);
        }
    }
}

/// Responses of handed-over events, to deliver (see [`Deliver`]).
struct PendingResponses {
    shared: Arc<Shared>,
    responses: Vec<Response>,
    detached: bool,
}

impl PendingResponses {
    fn new(shared: &Arc<Shared>, responses: Vec<Response>) -> Self {
        PendingResponses {
            shared: Arc::clone(shared),
            responses,
            detached: false,
        }
    }
}

impl Deliver for PendingResponses {
    fn run(&mut self) {
        self.shared.respond_all(std::mem::take(&mut self.responses));
    }
}

impl Drop for PendingResponses {
    fn drop(&mut self) {
        if self.responses.is_empty() {
            return;
        }
        let rest = PendingResponses {
            shared: Arc::clone(&self.shared),
            responses: std::mem::take(&mut self.responses),
            detached: true,
        };
        deliver_on_drop(&self.shared, rest, self.detached);
    }
}

impl BatcherState {
    fn add(&mut self, ev: Item) {
        let shared = Arc::clone(&self.shared);
        if shared.abandoned() {
            let error = ResponseError::Transport(
                "the client was closed before the event could be sent".into(),
            );
            let mut ev = ev;
            let r = Response::failure(ev.take_metadata(), error);
            self.reject(r);
            return;
        }
        let now = Instant::now();
        let (batcher, ready, rejected) = (&mut self.batcher, &mut self.ready, &mut self.rejected);
        if shared.block_on_response {
            batcher.add_with(ev, now, &mut |r| rejected.push(r), ready);
        } else {
            batcher.add_with(ev, now, &mut |r| shared.respond(r), ready);
        }
        if batcher.next_deadline().is_some_and(|d| d <= now) {
            batcher.expire(now, ready);
        }
    }

    fn reject(&mut self, r: Response) {
        if self.shared.block_on_response {
            self.rejected.push(r);
        } else {
            self.shared.respond(r);
        }
    }

    /// Hands every ready batch to a sending task, waiting for a free slot
    /// (`max_concurrent_batches`) for each.
    async fn dispatch(&mut self, cx: &Arc<SendContext>) {
        if !self.rejected.is_empty() {
            let rejected = std::mem::take(&mut self.rejected);
            let pending = PendingResponses::new(&self.shared, rejected);
            self.shared.deliver(pending).await;
        }
        while !self.ready.is_empty() {
            // The batch stays in `ready` (answered if this task is dropped)
            // until a slot is free, or a close gives up.
            let slot = if self.shared.abandoned() {
                None
            } else {
                let mut stop = self.shared.stop.subscribe();
                let acquire = Arc::clone(&cx.slots).acquire_owned();
                let slot = match first(acquire, stop.wait_for(|s| *s)).await {
                    First::A(Ok(slot)) => Some(slot),
                    _ => None,
                };
                slot
            };
            let b = self.ready.remove(0);
            let url = b.dest.batch_url();
            let api_key = b.dest.api_key().to_string();
            self.shared.begin(b.seq);
            let mut answer = BatchAnswer::new(&self.shared, b.seq, b.metas);
            let Some(slot) = slot else {
                answer.outcome = Some(Outcome::Transport(
                    "the client was closed before the batch could be sent".into(),
                ));
                self.shared.deliver(answer).await;
                continue;
            };
            // If the runtime drops the task unrun, `answer` answers the batch.
            self.shared.handle.spawn(send_batch(
                Arc::clone(cx),
                url,
                api_key,
                b.body,
                answer,
                slot,
            ));
        }
    }
}

/// One batch's events, answered exactly once (see [`Deliver`]): with the
/// outcome once it is known, or, dropped before that (the runtime shuts
/// down), with a transport error.
struct BatchAnswer {
    shared: Arc<Shared>,
    seq: u64,
    metas: Option<Vec<Option<Metadata>>>,
    outcome: Option<Outcome>,
    duration: Duration,
    detached: bool,
}

impl BatchAnswer {
    fn new(shared: &Arc<Shared>, seq: u64, metas: Vec<Option<Metadata>>) -> Self {
        BatchAnswer {
            shared: Arc::clone(shared),
            seq,
            metas: Some(metas),
            outcome: None,
            duration: Duration::ZERO,
            detached: false,
        }
    }
}

impl Deliver for BatchAnswer {
    fn run(&mut self) {
        let Some(metas) = self.metas.take() else {
            return;
        };
        let n = metas.len();
        let outcome = self.outcome.take().unwrap_or_else(|| {
            Outcome::Transport("the tokio runtime stopped before the batch was answered".into())
        });
        answer_batch(&self.shared.responder, metas, outcome, self.duration);
        self.shared.unanswered.fetch_sub(n, Ordering::SeqCst);
        self.shared.end(self.seq);
    }
}

impl Drop for BatchAnswer {
    fn drop(&mut self) {
        if self.metas.is_none() {
            return;
        }
        let rest = BatchAnswer {
            shared: Arc::clone(&self.shared),
            seq: self.seq,
            metas: self.metas.take(),
            outcome: self.outcome.take(),
            duration: self.duration,
            detached: true,
        };
        deliver_on_drop(&self.shared, rest, self.detached);
    }
}

/// What woke the batcher.
enum Wake {
    Ctl(Option<Ctl>),
    Event(Option<Item>),
    Timer,
    /// Time for another round of taking what the queue holds.
    Tick,
}

// While events keep coming, the batcher takes them in rounds `ROUND_PAUSE`
// apart instead of waiting on the queue: a task waiting on the queue is woken
// by every `send` (a futex call to unpark a runtime worker, on the sending
// thread), which at 100,000 events/s cost more CPU than the encoding. After
// `IDLE_ROUNDS` empty rounds it waits on the queue again, so an idle client
// costs nothing.

/// At most this many events per round before the task lets others run.
const ROUND_EVENTS: usize = 1024;

/// Takes up to [`ROUND_EVENTS`] events off the queue; how many, or `None`
/// once the queue is closed and empty.
async fn take_round(
    events: &mut EventQueue,
    st: &mut BatcherState,
    cx: &Arc<SendContext>,
) -> Option<usize> {
    let mut n = 0;
    while n < ROUND_EVENTS {
        match events.rx.try_recv() {
            Ok(ev) => {
                st.add(ev);
                st.dispatch(cx).await;
                n += 1;
            }
            Err(mpsc::error::TryRecvError::Empty) => break,
            Err(mpsc::error::TryRecvError::Disconnected) => {
                return if n > 0 { Some(n) } else { None }
            }
        }
    }
    Some(n)
}

async fn run_batcher(
    mut events: EventQueue,
    mut ctl: mpsc::UnboundedReceiver<Ctl>,
    mut st: BatcherState,
    cx: Arc<SendContext>,
) {
    let mut timer = pin!(tokio::time::sleep(Duration::ZERO));
    let mut armed: Option<Instant> = None;
    let mut tick = pin!(tokio::time::sleep(Duration::ZERO));
    // Taking events in rounds (see ROUND_PAUSE) rather than waiting on the queue.
    let mut rounds = false;
    let mut idle_rounds = 0u32;
    loop {
        let next = st.batcher.next_deadline();
        if next != armed {
            if let Some(d) = next {
                timer.as_mut().reset(tokio::time::Instant::from_std(d));
            }
            armed = next;
        }
        let wake = std::future::poll_fn(|task| {
            // Markers first, so that a flush is served promptly.
            if let Poll::Ready(c) = ctl.poll_recv(task) {
                return Poll::Ready(Wake::Ctl(c));
            }
            if rounds {
                if tick.as_mut().poll(task).is_ready() {
                    return Poll::Ready(Wake::Tick);
                }
            } else if let Poll::Ready(ev) = events.rx.poll_recv(task) {
                return Poll::Ready(Wake::Event(ev));
            }
            if armed.is_some() && timer.as_mut().poll(task).is_ready() {
                return Poll::Ready(Wake::Timer);
            }
            Poll::Pending
        })
        .await;
        match wake {
            Wake::Ctl(Some(Ctl::Flush(reply))) => {
                // Everything queued now was sent before the flush.
                for _ in 0..events.rx.len() {
                    match events.rx.try_recv() {
                        Ok(ev) => st.add(ev),
                        Err(_) => break,
                    }
                    st.dispatch(&cx).await;
                }
                st.batcher.drain(&mut st.ready);
                st.dispatch(&cx).await;
                reply.send(st.batcher.last_seq());
            }
            Wake::Ctl(Some(Ctl::Close(reply))) => {
                take_last_events(&mut events, &mut st, &cx).await;
                st.batcher.drain(&mut st.ready);
                st.dispatch(&cx).await;
                reply.send(st.batcher.last_seq());
                // Flushes queued behind the close see `Gone` and wait for everything.
                return;
            }
            Wake::Ctl(None) | Wake::Event(None) => {
                // Every handle is gone without a close: send what is left.
                while let Ok(ev) = events.rx.try_recv() {
                    st.add(ev);
                    st.dispatch(&cx).await;
                }
                st.batcher.drain(&mut st.ready);
                st.dispatch(&cx).await;
                return;
            }
            Wake::Event(Some(ev)) => {
                st.add(ev);
                // Events are coming: take them in rounds from now on.
                rounds = true;
                idle_rounds = 0;
                tick.as_mut()
                    .reset(tokio::time::Instant::now() + ROUND_PAUSE);
            }
            Wake::Tick => match take_round(&mut events, &mut st, &cx).await {
                None => {
                    // Every handle is gone without a close: send what is left.
                    st.batcher.drain(&mut st.ready);
                    st.dispatch(&cx).await;
                    return;
                }
                Some(n) => {
                    idle_rounds = if n == 0 { idle_rounds + 1 } else { 0 };
                    rounds = idle_rounds < IDLE_ROUNDS;
                    // A full round: go again at once (after letting other
                    // tasks run); otherwise in a millisecond.
                    let pause = if n == ROUND_EVENTS {
                        tokio::task::yield_now().await;
                        Duration::ZERO
                    } else {
                        ROUND_PAUSE
                    };
                    tick.as_mut().reset(tokio::time::Instant::now() + pause);
                }
            },
            Wake::Timer => st.batcher.expire(Instant::now(), &mut st.ready),
        }
        st.dispatch(&cx).await;
    }
}

/// After a close: takes every event still queued, including those of `send`
/// calls that saw the transmission open and are still handing their event
/// over. Once none is in progress, any later `send` sees the transmission
/// closed and answers its event itself, so nothing is left in the queue.
async fn take_last_events(events: &mut EventQueue, st: &mut BatcherState, cx: &Arc<SendContext>) {
    loop {
        while let Ok(ev) = events.rx.try_recv() {
            st.add(ev);
            st.dispatch(cx).await;
        }
        if st.shared.sending.sum(Ordering::SeqCst) == 0 {
            // Sends that finished before that load queued their event first.
            while let Ok(ev) = events.rx.try_recv() {
                st.add(ev);
                st.dispatch(cx).await;
            }
            return;
        }
        // A send is between its check of `closed` and the queue, or waiting
        // for room on a plain thread (the loop above makes room).
        match first(
            events.rx.recv(),
            tokio::time::sleep(Duration::from_millis(1)),
        )
        .await
        {
            First::A(Some(ev)) => {
                st.add(ev);
                st.dispatch(cx).await;
            }
            First::A(None) => return,
            First::B(()) => {}
        }
    }
}

enum First<A, B> {
    A(A),
    B(B),
}

/// Waits for whichever of two futures finishes first (`a` wins a tie).
async fn first<A: Future, B: Future>(a: A, b: B) -> First<A::Output, B::Output> {
    let (mut a, mut b) = (pin!(a), pin!(b));
    std::future::poll_fn(|task| {
        if let Poll::Ready(v) = a.as_mut().poll(task) {
            return Poll::Ready(First::A(v));
        }
        if let Poll::Ready(v) = b.as_mut().poll(task) {
            return Poll::Ready(First::B(v));
        }
        Poll::Pending
    })
    .await
}

/// Everything a sending task needs.
struct SendContext {
    shared: Arc<Shared>,
    client: HyperClient<Connector, Full<Bytes>>,
    user_agent: HeaderValue,
    content_type: &'static str,
    compression: Compression,
    level: i32,
    /// Compressors (each keeps a zstd context) reused across batches.
    compressors: Mutex<Vec<Compressor>>,
    retry: RetryPolicy,
    request_timeout: Duration,
    /// `max_concurrent_batches` permits: one per batch in flight.
    slots: Arc<Semaphore>,
}

impl SendContext {
    fn take_compressor(&self) -> Compressor {
        self.compressors
            .lock_unpoisoned()
            .pop()
            .unwrap_or_else(|| Compressor::new(self.compression, self.level))
    }

    fn put_compressor(&self, c: Compressor) {
        self.compressors.lock_unpoisoned().push(c);
    }

    /// The body to send and its `Content-Encoding`; `None` if the blocking
    /// pool could not run the compression.
    async fn compress(&self, body: Vec<u8>) -> Option<(Bytes, Option<&'static str>)> {
        if matches!(self.compression, Compression::None) {
            return Some((Bytes::from(body), None));
        }
        let mut c = self.take_compressor();
        let (out, enc) = if body.len() <= INLINE_COMPRESS_MAX {
            let out = c.compress(body);
            self.put_compressor(c);
            out
        } else {
            let job = self.shared.handle.spawn_blocking(move || {
                let out = c.compress(body);
                (out, c)
            });
            let (out, c) = job.await.ok()?;
            self.put_compressor(c);
            out
        };
        Some((Bytes::from(out), enc))
    }
}

async fn send_batch(
    cx: Arc<SendContext>,
    url: String,
    api_key: String,
    body: Vec<u8>,
    mut answer: BatchAnswer,
    slot: OwnedSemaphorePermit,
) {
    let start = Instant::now();
    let outcome = if cx.shared.abandoned() {
        Outcome::Transport("the client was closed before the batch could be sent".into())
    } else {
        match cx.compress(body).await {
            Some((body, encoding)) => {
                send_with_retries(&cx, &url, &api_key, body, encoding, start).await
            }
            None => Outcome::Transport("the body could not be compressed".into()),
        }
    };
    answer.outcome = Some(outcome);
    answer.duration = start.elapsed();
    cx.shared.deliver(answer).await;
    drop(slot);
}

/// A failed attempt: why, and whether trying again may help.
struct Failure {
    message: String,
    transient: bool,
}

struct Answer {
    status: u16,
    retry_after: Option<String>,
    msgpack: bool,
    body: Vec<u8>,
}

async fn send_with_retries(
    cx: &SendContext,
    url: &str,
    api_key: &str,
    body: Bytes,
    encoding: Option<&'static str>,
    start: Instant,
) -> Outcome {
    let uri: Uri = match url.parse() {
        Ok(u) => u,
        Err(e) => return Outcome::Transport(format!("invalid URL {url:?}: {e}")),
    };
    let Ok(mut key) = HeaderValue::from_str(api_key) else {
        return Outcome::Transport("the API key is not a valid header value".into());
    };
    key.set_sensitive(true);
    let metrics = cx.shared.responder.metrics();
    let mut stop = cx.shared.stop.subscribe();
    let mut attempt = 1u32;
    loop {
        metrics.record_batch();
        let post = post(cx, &uri, &key, body.clone(), encoding);
        let result = match tokio::time::timeout(cx.request_timeout, post).await {
            Ok(r) => r,
            Err(_) => Err(Failure {
                message: format!("timed out after {:?}", cx.request_timeout),
                transient: true,
            }),
        };
        let (outcome, retryable, retry_after) = match result {
            Ok(a) => {
                let after = a
                    .retry_after
                    .as_deref()
                    .and_then(|v| parse_retry_after(v, SystemTime::now()));
                let retryable = is_retryable_status(a.status);
                let outcome = Outcome::Http {
                    status: a.status,
                    body: a.body,
                    msgpack: a.msgpack,
                };
                (outcome, retryable, after)
            }
            Err(f) => {
                let msg = if attempt > 1 {
                    format!("{} (after {attempt} attempts)", f.message)
                } else {
                    f.message
                };
                (Outcome::Transport(msg), f.transient, None)
            }
        };
        if retryable && !cx.shared.abandoned() {
            if let Some(delay) = cx.retry.next_delay(attempt, start.elapsed(), retry_after) {
                log::debug!(target: "libhoney", "retrying a batch in {delay:?} (attempt {attempt} failed)");
                let slept = match first(tokio::time::sleep(delay), stop.wait_for(|s| *s)).await {
                    First::A(()) => !cx.shared.abandoned(),
                    First::B(_) => false,
                };
                if slept {
                    attempt += 1;
                    metrics.record_retry();
                    continue;
                }
            }
        }
        return outcome;
    }
}

/// One attempt: the request, its answer and the answer's body.
async fn post(
    cx: &SendContext,
    uri: &Uri,
    api_key: &HeaderValue,
    body: Bytes,
    encoding: Option<&'static str>,
) -> Result<Answer, Failure> {
    // The same headers as `Http` (ureq adds `Accept: */*`).
    let mut req = Request::post(uri.clone())
        .header(ACCEPT, "*/*")
        .header(USER_AGENT, cx.user_agent.clone())
        .header("x-honeycomb-team", api_key.clone())
        .header(CONTENT_TYPE, cx.content_type);
    if let Some(enc) = encoding {
        req = req.header(CONTENT_ENCODING, enc);
    }
    let req = req.body(Full::new(body)).map_err(|e| Failure {
        message: format!("invalid request: {e}"),
        transient: false,
    })?;
    let resp = cx.client.request(req).await.map_err(|e| Failure {
        message: error_chain(&e),
        transient: is_transient(&e),
    })?;
    let status = resp.status().as_u16();
    let header = |name| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let retry_after = header(hyper::header::RETRY_AFTER);
    let msgpack = header(CONTENT_TYPE).is_some_and(|c| c.contains("msgpack"));
    let body = Limited::new(resp.into_body(), MAX_ANSWER_BYTES)
        .collect()
        .await
        .map_err(|e| Failure {
            transient: !e.is::<LengthLimitError>(),
            message: format!("reading the answer: {e}"),
        })?
        .to_bytes()
        .to_vec();
    Ok(Answer {
        status,
        retry_after,
        msgpack,
        body,
    })
}

/// An error and its causes, as one line.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_msg = s.to_string();
        if !msg.contains(&s_msg) {
            msg.push_str(": ");
            msg.push_str(&s_msg);
        }
        source = s.source();
    }
    msg
}

/// Connection, I/O and protocol errors are worth retrying (as with `Http`);
/// a certificate that does not verify, or an unusable proxy, is not.
fn is_transient(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(e);
    while let Some(s) = source {
        if let Some(c) = s.downcast_ref::<ConnectError>() {
            return c.transient;
        }
        source = s.source();
    }
    true
}

/// Why a connection could not be made.
#[derive(Debug)]
struct ConnectError {
    message: String,
    transient: bool,
}

impl ConnectError {
    fn transient(message: impl Into<String>) -> Self {
        ConnectError {
            message: message.into(),
            transient: true,
        }
    }

    fn fatal(message: impl Into<String>) -> Self {
        ConnectError {
            message: message.into(),
            transient: false,
        }
    }

    fn io(what: &str, e: io::Error) -> Self {
        ConnectError::transient(format!("{what}: {e}"))
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConnectError {}

/// Any connection: TCP, TLS over TCP, TLS through a tunnel.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

struct Stream(Box<dyn Io>);

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

/// The TLS settings: ring, TLS 1.2 and 1.3, and the webpki roots (built
/// once) or only the configured ones
/// ([`Config::tls_root_certificates_pem`](crate::Config::tls_root_certificates_pem)).
fn tls_config(config: &Config) -> Result<Arc<rustls::ClientConfig>, ConfigError> {
    fn build(roots: rustls::RootCertStore) -> Result<Arc<rustls::ClientConfig>, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
            .map_err(|e| e.to_string())
    }
    let built = match &config.tls_roots {
        Some(certs) => {
            // `Config::resolve` has checked that rustls takes every one.
            let mut roots = rustls::RootCertStore::empty();
            roots.add_parsable_certificates(
                certs
                    .iter()
                    .map(|der| rustls::pki_types::CertificateDer::from(der.as_slice())),
            );
            build(roots)
        }
        None => {
            static TLS: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
            TLS.get_or_init(|| {
                build(rustls::RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                })
            })
            .clone()
        }
    };
    built.map_err(|e| ConfigError::Transmission(format!("TLS could not be set up: {e}")))
}

/// Opens connections for hyper: directly, or through a `CONNECT` tunnel when
/// the proxy settings cover the destination; then TLS for `https`.
#[derive(Clone)]
struct Connector {
    tls: tokio_rustls::TlsConnector,
    proxy: Option<Arc<Matcher>>,
}

impl Connector {
    fn new(config: &Config) -> Result<Connector, ConfigError> {
        let proxy = match (&config.proxy, config.proxy_from_env) {
            (Some(url), _) => {
                // `Config::resolve` accepted it as an http(s) URL with a host.
                let m = Matcher::builder().all(url.clone()).build();
                let probe = Uri::from_static("https://api.honeycomb.io/");
                if m.intercept(&probe).is_none() {
                    return Err(ConfigError::InvalidProxy {
                        reason: "not a usable proxy URL".into(),
                    });
                }
                Some(Arc::new(m))
            }
            (None, true) => Some(Arc::new(Matcher::from_env())),
            (None, false) => None,
        };
        Ok(Connector {
            tls: tokio_rustls::TlsConnector::from(tls_config(config)?),
            proxy,
        })
    }

    async fn connect(self, dst: Uri) -> Result<Stream, ConnectError> {
        let https = match dst.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            other => {
                return Err(ConnectError::fatal(format!(
                    "unsupported URL scheme {other:?}"
                )))
            }
        };
        let (host, port) = host_port(&dst, https)?;
        let stream = match self.proxy.as_ref().and_then(|m| m.intercept(&dst)) {
            Some(proxy) => {
                let puri = proxy.uri();
                let proxy_https = match puri.scheme_str() {
                    Some("https") => true,
                    Some("http") => false,
                    other => {
                        return Err(ConnectError::fatal(format!(
                            "unsupported proxy scheme {other:?}: use an http:// or https:// proxy"
                        )))
                    }
                };
                let (phost, pport) = host_port(puri, proxy_https)?;
                let s = self.open(phost, pport, proxy_https).await?;
                tunnel(s, dst.host().unwrap_or(host), port, proxy.basic_auth()).await?
            }
            None => self.open(host, port, false).await?,
        };
        if https {
            self.tls(stream, host).await
        } else {
            Ok(stream)
        }
    }

    async fn open(&self, host: &str, port: u16, tls: bool) -> Result<Stream, ConnectError> {
        let tcp = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|e| ConnectError::io(&format!("connecting to {host}:{port}"), e))?;
        let _ = tcp.set_nodelay(true);
        let s = Stream(Box::new(tcp));
        if tls {
            self.tls(s, host).await
        } else {
            Ok(s)
        }
    }

    async fn tls(&self, s: Stream, host: &str) -> Result<Stream, ConnectError> {
        let name = rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|e| ConnectError::fatal(format!("invalid TLS server name {host:?}: {e}")))?;
        match self.tls.connect(name, s).await {
            Ok(tls) => Ok(Stream(Box::new(tls))),
            // rustls reports its errors (certificates, protocol) as invalid data.
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                Err(ConnectError::fatal(format!("TLS with {host}: {e}")))
            }
            Err(e) => Err(ConnectError::io(&format!("TLS with {host}"), e)),
        }
    }
}

/// Host (without IPv6 brackets) and port of a URL.
fn host_port(uri: &Uri, https: bool) -> Result<(&str, u16), ConnectError> {
    let host = uri
        .host()
        .ok_or_else(|| ConnectError::fatal(format!("no host in {uri}")))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Ok((host, uri.port_u16().unwrap_or(if https { 443 } else { 80 })))
}

/// Opens a `CONNECT` tunnel through a proxy (as `Http` does for every request).
async fn tunnel(
    mut s: Stream,
    host: &str,
    port: u16,
    auth: Option<&HeaderValue>,
) -> Result<Stream, ConnectError> {
    let mut head =
        format!("CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n").into_bytes();
    if let Some(auth) = auth {
        head.extend_from_slice(b"Proxy-Authorization: ");
        head.extend_from_slice(auth.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    let proxy_io = |e| ConnectError::io("talking to the proxy", e);
    s.write_all(&head).await.map_err(proxy_io)?;
    s.flush().await.map_err(proxy_io)?;
    // Read the answer's head byte by byte, so nothing after it is consumed.
    let mut answer = Vec::with_capacity(128);
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).await.map_err(proxy_io)? == 0 {
            return Err(ConnectError::transient(
                "the proxy closed the connection before answering CONNECT",
            ));
        }
        answer.push(byte[0]);
        if answer.len() > MAX_PROXY_HEAD {
            return Err(ConnectError::transient(
                "the proxy's answer to CONNECT is too long",
            ));
        }
    }
    let line = String::from_utf8_lossy(&answer);
    let line = line.lines().next().unwrap_or("").trim();
    let status = line.split(' ').nth(1).and_then(|s| s.parse::<u16>().ok());
    match status {
        Some(200..=299) => Ok(s),
        _ => Err(ConnectError::transient(format!(
            "the proxy refused the tunnel: {line}"
        ))),
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<Stream>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<TokioIo<Stream>, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let me = self.clone();
        Box::pin(async move { me.connect(dst).await.map(TokioIo::new) })
    }
}
