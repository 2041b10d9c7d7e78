//! The tokio driver of the pipeline: [`Tokio`], a transmission that runs on
//! the application's tokio runtime (the `tokio` feature), the counterpart of
//! libhoney-py's `TornadoTransmission`. A batcher task runs the pipeline's
//! [`Engine`]; each ready batch gets a task that `POST`s it with hyper and
//! waits out retries with tokio's timers. Everything else (batching, lanes,
//! compression, retry decisions, answers, flush and close bookkeeping) is
//! the pipeline's, shared with [`Http`](crate::transmission::Http).

mod connect;

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderValue, ACCEPT, CONTENT_ENCODING, CONTENT_TYPE, USER_AGENT};
use hyper::{Request, Uri};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioTimer;
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use self::connect::{ConnectError, Connector};
use crate::config::Encoding;
use crate::error::{CloseError, ConfigError, FlushError};
use crate::response::Response;
use crate::transmission::pipeline::{
    self, close_deadlines, content_type, deadline_after, max_answer_bytes, Attempt, Core, Engine,
    FailureKind, Intake, Next, Outcome, ReadyBatch, Retries, RetryPolicy, Step, Wait,
};
use crate::transmission::{Context, QueuedEvent, SendFuture, Transmission};

/// Sends events to the Events API from tasks on the application's tokio
/// runtime, with the same wire format, batching, limits, retries and
/// guarantees as the default [`Http`](crate::transmission::Http) transmission, but no
/// threads of its own. Available with the `tokio` cargo feature.
///
/// # Use
///
/// Give one handle to [`Config::transmission`](crate::Config::transmission) and keep a clone (it is
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
/// It runs the same pipeline as [`Http`](crate::transmission::Http) (the same queue,
/// lanes, batcher, compression, retry policy and answers: see the crate's
/// `transmission` docs), with tasks on the runtime in place of threads:
/// one batcher task, and one task per batch in flight (at most
/// `max_concurrent_batches`; the batcher waits for a free slot, so a slow
/// API fills the queue rather than memory) that `POST`s it to
/// `{api_host}/1/batch/{dataset}` with hyper, each attempt limited by
/// `request_timeout`, retries transient failures with backoff and jitter (or
/// `Retry-After`) until `retry_deadline`, and gives every event of the batch
/// exactly one response.
///
/// HTTPS is verified with rustls (ring) and the webpki roots, or only the
/// roots of
/// [`Config::tls_root_certificates_pem`](crate::Config::tls_root_certificates_pem).
/// A proxy comes from [`Config::proxy`](crate::Config::proxy) or, with [`Config::proxy_from_env`](crate::Config::proxy_from_env), from
/// `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` and `NO_PROXY`; as with `Http`,
/// every request goes through the proxy in a `CONNECT` tunnel, with basic
/// authentication when the proxy URL has a user and password.
///
/// The runtime must have its I/O and time drivers (`enable_all()`, as
/// `#[tokio::main]` and `#[tokio::test]` do); the client reports a
/// [`ConfigError::TokioDriverMissing`] otherwise.
///
/// # What blocks, and where
///
/// - `send` never blocks with `block_on_send` off: a full queue gives the
///   event a [`QueueOverflow`](crate::ResponseError::QueueOverflow) response.
///   [`Event::send_async`](crate::Event::send_async) awaits room instead,
///   without blocking a thread: the way to never lose an event from async
///   code.
/// - With `block_on_send` on, a `send` that finds the queue full waits for
///   room: on a plain thread, as with `Http`; on a worker of a multi-thread
///   runtime, inside [`tokio::task::block_in_place`], so the worker's other
///   tasks move to other workers meanwhile. On the thread of a
///   current-thread runtime no `send` can wait (that thread runs the
///   batcher): there a full queue still gives `QueueOverflow`, and a warning
///   (once) says to await `send_async` instead.
/// - [`flush`](Tokio::flush) and [`close`](Tokio::close) (the async ones)
///   never block a thread: they await.
/// - The [`Transmission`] trait's `flush` and `close`, which
///   [`Client::flush`](crate::Client::flush), [`Client::close`](crate::Client::close)
///   and dropping the last client call, block the calling thread, up to their
///   timeout; with nothing in flight they return at once. On one worker of a
///   multi-thread runtime, the other workers run the transmission meanwhile.
///   On the thread of a current-thread runtime the tasks could not run while
///   the call waits: there `Client::flush` and `Client::close` fail at once
///   with [`FlushError::InsideRuntime`](crate::FlushError::InsideRuntime) /
///   [`CloseError::InsideRuntime`](crate::CloseError::InsideRuntime) (the
///   client stays open: await [`Client::close_async`](crate::Client::close_async)
///   instead), and dropping the last client there closes the transmission
///   without waiting: the batcher sends what is left as soon as the runtime
///   runs again, and a warning says so.
/// - With `block_on_response` on, responses are handed to the response queue
///   from tokio's blocking pool, so a full response queue holds back the
///   sending task (and, through it, the queue) without blocking an executor
///   thread.
///
/// Costs: no thread of its own; one batcher task, one task per batch in
/// flight, and a pool of up to `max_concurrent_batches` (at least 2) idle
/// connections per host, with hyper's task for each open connection. Memory
/// is bounded as with `Http`.
///
/// If the runtime shuts down while events are queued or in flight, each of
/// them is answered with a [`Transport`](crate::ResponseError::Transport)
/// error as its task is dropped: still exactly one response per event (with
/// `block_on_response`, handed over from a short-lived thread, so dropping
/// the runtime never waits for room in the response queue). The
/// transmission stops for good then; later events are answered the same way.
#[derive(Clone, Default)]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub struct Tokio {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    handle: Option<Handle>,
    running: OnceLock<Running>,
}

struct Running {
    intake: Intake,
    core: Arc<Core>,
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
    /// assert_eq!(err, ConfigError::NoTokioRuntime);
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
        if !r.core.needs_flush()? {
            return Ok(());
        }
        let deadline = tokio::time::Instant::from_std(deadline_after(timeout));
        let flight = &r.core.flight;
        let settle = async {
            let upto = r.intake.flush_marker().answered().await.last();
            flight.upto(upto).await;
        };
        match tokio::time::timeout_at(deadline, settle).await {
            Ok(()) => Ok(()),
            Err(_) => Err(r.core.flush_timed_out(timeout)),
        }
    }

    /// Closes the transmission without blocking any thread: later events are
    /// answered with a transport error, every event already sent is
    /// delivered (open batches go out at once) and the tasks stop, all within
    /// `timeout`. It does not end the client's response stream: call
    /// [`Client::close_async`](crate::Client::close_async) after it (it returns
    /// at once then), or drop the client. Calling it again waits for the
    /// same close.
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
        let reply = r.intake.close_marker();
        let (grace, deadline) = close_deadlines(timeout);
        let core = &r.core;
        let drain = async {
            reply.answered().await;
            core.flight.upto(u64::MAX).await;
            all_answered(core).await;
        };
        let grace = tokio::time::Instant::from_std(grace);
        if tokio::time::timeout_at(grace, drain).await.is_ok() {
            return Ok(());
        }
        let pending = core.give_up();
        let deadline = tokio::time::Instant::from_std(deadline);
        let _ = tokio::time::timeout_at(deadline, all_answered(core)).await;
        Err(CloseError::Timeout { timeout, pending })
    }
}

/// Resolves once every accepted event is answered (looking every millisecond).
async fn all_answered(core: &Core) {
    while core.pending() > 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Whether a blocking wait on this thread would stall the runtime our tasks
/// run on: the thread runs a current-thread runtime.
fn on_current_thread_runtime() -> bool {
    Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::CurrentThread)
}

/// How `send` waits for room with `block_on_send`: on a multi-thread
/// runtime's worker inside `block_in_place` (its other tasks move to other
/// workers), on a plain thread as it is, on the thread of a current-thread
/// runtime not at all (it may be the one that runs the batcher).
fn block_in_runtime(wait: &mut dyn FnMut()) -> bool {
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(wait),
        Ok(_) => return false,
        Err(_) => wait(),
    }
    true
}

impl Transmission for Tokio {
    fn start(&self, ctx: Context) -> Result<(), ConfigError> {
        if self.running().is_some() {
            return Err(ConfigError::TransmissionInUse {
                transmission: "Tokio",
            });
        }
        let handle = match &self.inner.handle {
            Some(h) => h.clone(),
            None => Handle::try_current().map_err(|_| ConfigError::NoTokioRuntime)?,
        };
        check_drivers(&handle)?;
        let config = &ctx.config;
        let user_agent = HeaderValue::from_str(&config.user_agent())
            .map_err(|_| ConfigError::InvalidUserAgent)?;
        let connector = Connector::new(config)?;
        let client = HyperClient::builder(HandleExecutor(handle.clone()))
            .pool_timer(TokioTimer::new())
            .pool_max_idle_per_host(config.max_concurrent_batches.max(2))
            .build(connector);
        let (intake, engine, core) =
            pipeline::build(config, ctx.responder.clone(), block_in_runtime);
        let cx = Arc::new(SendContext {
            core: Arc::clone(&core),
            handle: handle.clone(),
            client,
            user_agent,
            encoding: config.encoding,
            retry: RetryPolicy::from_config(config),
            request_timeout: config.request_timeout,
            slots: Arc::new(Semaphore::new(
                config.max_concurrent_batches.min(Semaphore::MAX_PERMITS),
            )),
        });
        self.inner
            .running
            .set(Running { intake, core })
            .map_err(|_| ConfigError::TransmissionInUse {
                transmission: "Tokio",
            })?;
        handle.spawn(run_batcher(engine, cx));
        Ok(())
    }

    fn send(&self, ev: QueuedEvent) {
        if let Some(r) = self.running() {
            r.intake.send(ev);
        }
    }

    fn send_async<'a>(&'a self, ev: QueuedEvent) -> SendFuture<'a> {
        Intake::send_boxed(self.running().map(|r| &r.intake), ev)
    }

    /// Blocks the calling thread up to `timeout`; see "What blocks" on [`Tokio`].
    fn flush(&self, timeout: Duration) -> Result<(), FlushError> {
        let Some(r) = self.running() else {
            return Ok(());
        };
        nudge();
        r.intake.flush(timeout)
    }

    /// Blocks the calling thread up to `timeout`; see "What blocks" on [`Tokio`].
    fn close(&self, timeout: Duration) -> Result<(), CloseError> {
        let Some(r) = self.running() else {
            return Ok(());
        };
        if self.blocking_wait_stalls() {
            // Only a drop gets here (`Client::close` refuses first): waiting
            // would stall the runtime the batcher needs. Closed now, it sends
            // what is left once the runtime runs again.
            r.intake.close_marker();
            log::warn!(
                target: "libhoney",
                "the last client was dropped on a current-thread tokio runtime with {} events \
                 undelivered: they go out once the runtime runs again, and their responses are \
                 dropped; await client.close_async() before dropping it",
                r.core.pending()
            );
            return Err(CloseError::InsideRuntime);
        }
        nudge();
        r.intake.close(timeout, || {})
    }

    fn blocking_wait_stalls(&self) -> bool {
        self.running().is_some_and(|r| r.core.pending() > 0) && on_current_thread_runtime()
    }

    fn queue_len(&self) -> usize {
        self.running().map_or(0, |r| r.intake.queue_len())
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
        return Err(ConfigError::TokioDriverMissing { driver: "time" });
    }
    // Registering a socket needs the I/O driver. A loopback UDP socket costs
    // no traffic; if none can be had, the check is skipped.
    if let Ok(socket) = std::net::UdpSocket::bind(("127.0.0.1", 0)) {
        if socket.set_nonblocking(true).is_ok() {
            let io = std::panic::catch_unwind(AssertUnwindSafe(|| {
                drop(tokio::net::UdpSocket::from_std(socket))
            }));
            if io.is_err() {
                return Err(ConfigError::TokioDriverMissing { driver: "I/O" });
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

/// Everything a sending task needs.
struct SendContext {
    core: Arc<Core>,
    handle: Handle,
    client: HyperClient<Connector, Full<Bytes>>,
    user_agent: HeaderValue,
    encoding: Encoding,
    retry: RetryPolicy,
    request_timeout: Duration,
    /// `max_concurrent_batches` permits: one per batch in flight.
    slots: Arc<Semaphore>,
}

impl SendContext {
    /// Hands responses over: from the blocking pool with `block_on_response`
    /// (it may wait for room), else here.
    async fn deliver(&self, responses: Vec<Response>) {
        if responses.is_empty() {
            return;
        }
        let responder = self.core.responder().clone();
        if responder.blocks() {
            let _ = self
                .handle
                .spawn_blocking(move || responder.respond_all(responses))
                .await;
        } else {
            responder.respond_all(responses);
        }
    }

    /// Answers a batch: from the blocking pool with `block_on_response`.
    async fn answer(&self, batch: ReadyBatch, outcome: Outcome, duration: Duration) {
        if self.core.responder().blocks() {
            let _ = self
                .handle
                .spawn_blocking(move || batch.claim.answer(outcome, duration))
                .await;
        } else {
            batch.claim.answer(outcome, duration);
        }
    }
}

/// The batcher task: the pipeline's engine, with tokio's timers for its
/// waits and a task per ready batch.
async fn run_batcher(mut engine: Engine, cx: Arc<SendContext>) {
    loop {
        match engine.step() {
            Step::Dispatch => {
                cx.deliver(engine.take_refused()).await;
                for batch in engine.take_ready() {
                    dispatch(&cx, batch).await;
                }
            }
            Step::Wait(Wait::Pause(d)) => {
                if d.is_zero() {
                    tokio::task::yield_now().await;
                } else {
                    tokio::time::sleep(d).await;
                }
            }
            Step::Wait(Wait::Message(deadline)) => {
                let rx = engine.receiver();
                let got = match deadline {
                    Some(d) => {
                        let d = tokio::time::Instant::from_std(d);
                        match tokio::time::timeout_at(d, rx.recv_async()).await {
                            Ok(got) => got,
                            Err(_) => Err(pipeline::queue::RecvTimeoutError::Timeout),
                        }
                    }
                    None => rx.recv_async().await,
                };
                engine.received(got);
            }
            Step::Stop => return,
        }
    }
}

/// Hands one ready batch to a task of its own, once a slot is free
/// (`max_concurrent_batches`), or answers it if a close gave up first.
async fn dispatch(cx: &Arc<SendContext>, batch: ReadyBatch) {
    if batch.claim.answered() {
        return;
    }
    let flight = &cx.core.flight;
    let slot = match first(Arc::clone(&cx.slots).acquire_owned(), flight.given_up()).await {
        First::A(slot) => slot.ok(),
        First::B(()) => None,
    };
    let Some(slot) = slot else {
        let why = "the client was closed before the batch could be sent".into();
        cx.answer(batch, Outcome::Abandoned(why), Duration::ZERO)
            .await;
        return;
    };
    // If the runtime drops the task unrun, the batch's claim answers it.
    cx.handle.spawn(send_batch(Arc::clone(cx), batch, slot));
}

async fn send_batch(cx: Arc<SendContext>, mut batch: ReadyBatch, slot: OwnedSemaphorePermit) {
    let start = Instant::now();
    let outcome = send_with_retries(&cx, &mut batch).await;
    cx.answer(batch, outcome, start.elapsed()).await;
    drop(slot);
}

/// Tries the batch until the pipeline's retry policy says it is done.
async fn send_with_retries(cx: &SendContext, batch: &mut ReadyBatch) -> Outcome {
    let flight = &cx.core.flight;
    let url = batch.dest.batch_url();
    let uri: Uri = match url.parse() {
        Ok(u) => u,
        Err(e) => {
            let message = format!("invalid URL {url:?}: {e}");
            return Outcome::Transport {
                kind: FailureKind::Refused,
                message,
            };
        }
    };
    let Ok(mut key) = HeaderValue::from_str(batch.dest.api_key()) else {
        return Outcome::Transport {
            kind: FailureKind::Refused,
            message: "the API key is not a valid header value".into(),
        };
    };
    key.set_sensitive(true);
    // Shared by every attempt without copying.
    let body = Bytes::from(std::mem::take(&mut batch.body));
    let limit = max_answer_bytes(batch.claim.events());
    let metrics = cx.core.responder().metrics();
    let mut retries = Retries::new(cx.retry.clone(), Instant::now());
    loop {
        if flight.abandoned() || batch.claim.answered() {
            return Outcome::Abandoned(
                "the client was closed before the batch could be sent".into(),
            );
        }
        metrics.record_batch();
        let post = post(cx, &uri, &key, body.clone(), batch.content_encoding, limit);
        let attempt = match tokio::time::timeout(cx.request_timeout, post).await {
            Ok(a) => a,
            Err(_) => Attempt::Failed {
                kind: FailureKind::Timeout,
                message: format!("timed out after {:?}", cx.request_timeout),
            },
        };
        match retries.after(attempt, Instant::now(), SystemTime::now()) {
            Next::Done(outcome) => return outcome,
            Next::Retry { delay, failed } => {
                batch.claim.retrying(failed.clone());
                log::debug!(
                    target: "libhoney",
                    "retrying a batch in {delay:?} (attempt {} failed)",
                    retries.attempts() - 1
                );
                let slept = match first(tokio::time::sleep(delay), flight.given_up()).await {
                    First::A(()) => !flight.abandoned(),
                    First::B(()) => false,
                };
                if !slept {
                    // A close gave up: answer with how the batch failed (if
                    // the close has not already).
                    return failed;
                }
                metrics.record_retry();
            }
        }
    }
}

/// One attempt: the request, its answer and the answer's body (read up to
/// `limit` bytes).
async fn post(
    cx: &SendContext,
    uri: &Uri,
    api_key: &HeaderValue,
    body: Bytes,
    encoding: Option<&'static str>,
    limit: usize,
) -> Attempt {
    // The same headers as `Http` (ureq adds `Accept: */*`).
    let mut req = Request::post(uri.clone())
        .header(ACCEPT, "*/*")
        .header(USER_AGENT, cx.user_agent.clone())
        .header("x-honeycomb-team", api_key.clone())
        .header(CONTENT_TYPE, content_type(cx.encoding));
    if let Some(enc) = encoding {
        req = req.header(CONTENT_ENCODING, enc);
    }
    let req = match req.body(Full::new(body)) {
        Ok(r) => r,
        Err(e) => {
            return Attempt::Failed {
                kind: FailureKind::Refused,
                message: format!("invalid request: {e}"),
            }
        }
    };
    let resp = match cx.client.request(req).await {
        Ok(r) => r,
        Err(e) => {
            return Attempt::Failed {
                kind: failure_kind(&e),
                message: error_chain(&e),
            }
        }
    };
    let status = resp.status().as_u16();
    let header = |name| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let retry_after = header(hyper::header::RETRY_AFTER);
    let msgpack = header(CONTENT_TYPE).is_some_and(|c| c.contains("msgpack"));
    match Limited::new(resp.into_body(), limit).collect().await {
        Ok(collected) => Attempt::Answered {
            status,
            retry_after,
            msgpack,
            body: collected.to_bytes().to_vec(),
        },
        Err(e) => Attempt::Failed {
            kind: FailureKind::Protocol,
            message: format!("reading the answer: {e}"),
        },
    }
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

/// Why hyper failed, for the retry policy: our connector says what kind of
/// connection failure it was; anything else is a connection failure.
fn failure_kind(e: &(dyn std::error::Error + 'static)) -> FailureKind {
    let mut source = Some(e);
    while let Some(s) = source {
        if let Some(c) = s.downcast_ref::<ConnectError>() {
            return c.kind;
        }
        source = s.source();
    }
    FailureKind::Connection
}

enum First<A, B> {
    A(A),
    B(B),
}

/// Waits for whichever of two futures finishes first (`a` wins a tie).
async fn first<A: Future, B: Future>(a: A, b: B) -> First<A::Output, B::Output> {
    let (mut a, mut b) = (std::pin::pin!(a), std::pin::pin!(b));
    std::future::poll_fn(|task| {
        if let std::task::Poll::Ready(v) = a.as_mut().poll(task) {
            return std::task::Poll::Ready(First::A(v));
        }
        if let std::task::Poll::Ready(v) = b.as_mut().poll(task) {
            return std::task::Poll::Ready(First::B(v));
        }
        std::task::Poll::Pending
    })
    .await
}
