//! The default transmission: batches, compresses, and sends to the Events API
//! over HTTP(S) from its own threads.

use crate::keyguard::{GuardConnector, KeyGuard};
use crate::sync::LockExt;
use std::collections::BTreeSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};
use ureq::unversioned::transport::Connector as _;

use super::mailbox::{self, TrySendError};

use super::batch::{
    answer_batch, content_type, counted_send, deadline_after, is_retryable_status,
    parse_retry_after, wait_deadline, BacklogWatch, BatchSettings, Batcher, Behind, Compressor,
    Item, OpenBatch, Outcome, ReadyBatch, RetryPolicy, Sharded, IDLE_ROUNDS, ROUND_PAUSE,
};
use super::handoff::Handoff;
use super::lanes::Lanes;
use super::resolve::Resolver;
use super::{Context, QueuedEvent, Transmission};
use crate::config::{Config, EncodeOn, Encoding};
use crate::error::{CloseError, ConfigError, FlushError};
use crate::response::{Responder, Response, ResponseError};

/// The default transmission: sends events to the Honeycomb Events API (or
/// Refinery, or any compatible receiver) in compressed batches.
///
/// # How it works
///
/// `send` hands the event to the batcher on a bounded queue
/// (`pending_work_capacity`; a mutex held for one append, and a full queue
/// answered at once, never spun on). While the batcher is behind, `send`
/// instead encodes the event (JSON or msgpack) on the calling thread, while
/// its fields are still in that core's cache, straight into a batch body of
/// its destination in one of a fixed set of "lanes" (mutex-guarded slots, twice
/// as many as the machine has cores), and queues only a whole body, once it is
/// full (see [`Config::encode_on`]). Then it returns: it never blocks unless
/// `block_on_send` is on and the queue is full; with it off, a full queue gives
/// the event (or each event of a full body) a
/// [`QueueOverflow`](crate::ResponseError::QueueOverflow) response.
/// An event over `max_event_bytes` (the API's 1,000,000) gets a
/// [`TooLarge`](crate::ResponseError::TooLarge) response and never goes out.
///
/// One batcher thread takes events off the queue, groups them by (API host,
/// API key, dataset) and appends each to its batch body, encoding it there.
/// Bodies that lanes filled it only compresses; it takes a lane's body
/// `send_frequency` after its first event if it is not full by then, and
/// every lane body on a flush or close. A batch goes out when
/// it holds `max_batch_size` events, when its body would pass
/// `max_batch_bytes` (it is split, never dropped), or `send_frequency` after
/// its first event. The batcher compresses the finished body (zstd by
/// default) with its one compression context while the body is still in its
/// core's cache.
///
/// Up to `max_concurrent_batches` sender threads (started as batches need
/// them) `POST` the bodies to `{api_host}/1/batch/{dataset}`, retrying connection
/// errors, timeouts, 408, 429, 500, 502, 503 and 504 with exponential backoff
/// and jitter (or the server's `Retry-After`), up to `max_attempts` and
/// `retry_deadline`. Each event then gets exactly one response: its per-event
/// status from the API's answer, or the batch's failure. Retries make
/// delivery at least once (see [`Config::max_attempts`]).
///
/// Memory is bounded: the pending queue (a body counts as its events), one
/// open batch per destination, at most four open lane bodies per lane (one
/// per destination), at most twice `max_concurrent_batches` batches waiting or
/// in flight, and a few reusable body buffers (one per lane, plus four).
///
/// HTTPS uses rustls with the webpki root certificates, or only those of
/// [`Config::tls_root_certificates_pem`](crate::Config::tls_root_certificates_pem).
/// A proxy comes from [`Config::proxy`] or the `HTTPS_PROXY`/`HTTP_PROXY`/
/// `ALL_PROXY` and `NO_PROXY` environment variables.
///
/// It never uses an async runtime, so it works the same on plain threads,
/// inside any tokio runtime, and at process exit.
#[derive(Default)]
pub struct Http {
    running: OnceLock<Running>,
}

impl fmt::Debug for Http {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http")
            .field("started", &self.running.get().is_some())
            .field("queue_len", &self.queue_len())
            .finish()
    }
}

enum Msg {
    Event(Item),
    /// A whole body a lane filled (see `lanes`).
    Body(Box<OpenBatch>),
    Flush(SyncSender<u64>),
    Close(SyncSender<u64>),
}

impl mailbox::Weight for Msg {
    /// A body counts as the events it holds against `pending_work_capacity`.
    fn weight(&self) -> usize {
        match self {
            Msg::Body(b) => b.count(),
            _ => 1,
        }
    }
}

impl Msg {
    /// Answers every event the message holds with `error`.
    fn fail(self, responder: &Responder, error: ResponseError) {
        match self {
            Msg::Event(mut ev) => responder.respond(Response::failure(ev.take_metadata(), error)),
            Msg::Body(b) => responder.respond_all(
                b.metas
                    .into_iter()
                    .map(|m| Response::failure(m, error.clone()))
                    .collect(),
            ),
            Msg::Flush(_) | Msg::Close(_) => {}
        }
    }
}

/// When `send` encodes into a lane (`Config::encode_on`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum UseLanes {
    Never,
    WhileBehind,
    Always,
}

struct Running {
    tx: mailbox::Sender<Msg>,
    /// Where `send` encodes events (see `use_lanes`).
    lanes: Arc<Lanes>,
    use_lanes: UseLanes,
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    block_on_send: bool,
    closed: AtomicBool,
}

struct Shared {
    responder: Responder,
    /// Sequence numbers of batches handed to senders and not yet answered.
    in_flight: Mutex<BTreeSet<u64>>,
    done: Condvar,
    abandoned: AtomicBool,
    /// Wakes retries sleeping in sender threads when a close gives up.
    stop: Stop,
    /// `send` calls in progress. A close waits for it to reach 0 before its
    /// last look at the queue, so that an event handed over by a `send` that
    /// saw the transmission still open is never left behind in the queue.
    sending: Sharded,
    /// Sender threads waiting for a batch.
    idle: AtomicUsize,
    /// Whether the batcher is behind (for `EncodeOn::Adaptive`).
    behind: Behind,
    /// Sender threads, started on demand by the batcher; joined by `close`.
    senders: Mutex<Vec<JoinHandle<()>>>,
}

/// A signal that stays fired: a close that gives up fires it, and retries
/// sleeping in sender threads wake at once.
#[derive(Default)]
struct Stop {
    fired: Mutex<bool>,
    wake: Condvar,
}

impl Stop {
    /// Sleeps for `d`; false if the signal fired (before or meanwhile).
    fn sleep(&self, d: Duration) -> bool {
        let fired = self.fired.lock_unpoisoned();
        let (fired, _) = self
            .wake
            .wait_timeout_while(fired, d, |fired| !*fired)
            .unwrap_or_else(|e| e.into_inner());
        !*fired
    }

    fn fire(&self) {
        *self.fired.lock_unpoisoned() = true;
        self.wake.notify_all();
    }
}

/// The time left until `deadline` (zero once it has passed).
fn until(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

impl Shared {
    fn begin(&self, seq: u64) {
        self.in_flight.lock_unpoisoned().insert(seq);
    }

    fn end(&self, seq: u64) {
        self.in_flight.lock_unpoisoned().remove(&seq);
        self.done.notify_all();
    }

    /// Waits until no batch numbered `upto` or lower is in flight.
    fn wait_upto(&self, upto: u64, deadline: Instant) -> bool {
        let set = self.in_flight.lock_unpoisoned();
        wait_deadline(&self.done, set, deadline, |set| {
            set.first().is_none_or(|&first| first > upto).then_some(())
        })
        .is_some()
    }

    fn abandoned(&self) -> bool {
        self.abandoned.load(Ordering::Acquire)
    }

    /// Sleeps for a retry delay; false if a close gave up on this batch meanwhile.
    fn sleep(&self, d: Duration) -> bool {
        self.stop.sleep(d) && !self.abandoned()
    }

    fn pending(&self) -> usize {
        self.responder.metrics().outstanding()
    }
}

impl Running {
    /// Hands one event to the batcher (or answers it at once).
    fn send(&self, mut ev: QueuedEvent) {
        if self.closed.load(Ordering::SeqCst) {
            let error = ResponseError::Transport("the transmission is closed".into());
            self.shared
                .responder
                .respond(Response::failure(ev.take_metadata(), error));
            return;
        }
        let lane = match self.use_lanes {
            UseLanes::Never => false,
            UseLanes::WhileBehind => self.shared.behind.get(),
            UseLanes::Always => true,
        };
        if !lane {
            self.queue(Msg::Event(Item::Event(ev)));
            return;
        }
        let pushed = self.lanes.push(ev);
        if let Some(r) = pushed.refused {
            self.shared.responder.respond(r);
        }
        for body in pushed.ship {
            self.queue(Msg::Body(Box::new(body)));
        }
        if pushed.opened {
            // The batcher may be waiting with no deadline: it must learn
            // this body's.
            self.tx.kick();
        }
    }

    /// Queues a message for the batcher, or answers its events: with
    /// `QueueOverflow` if the queue is full and `block_on_send` is off.
    fn queue(&self, msg: Msg) {
        let result = if self.block_on_send {
            self.tx.send_blocking(msg)
        } else {
            match self.tx.try_send(msg) {
                Ok(()) => Ok(()),
                Err(TrySendError::Full(msg)) => {
                    log::debug!(target: "libhoney", "queue overflow: events dropped");
                    msg.fail(&self.shared.responder, ResponseError::QueueOverflow);
                    return;
                }
                Err(e) => Err(e.into_inner()),
            }
        };
        if let Err(msg) = result {
            let error = ResponseError::Transport("the transmission has stopped".into());
            msg.fail(&self.shared.responder, error);
        }
    }
}

impl Http {
    /// A new HTTP transmission. It reads its settings from the client's
    /// [`Config`] when the client starts it.
    pub fn new() -> Self {
        Http::default()
    }

    fn running(&self) -> Option<&Running> {
        self.running.get()
    }
}

/// Everything a sender thread needs.
struct SenderSettings {
    agent: ureq::Agent,
    /// The agent's resolver, to forget cached addresses after a transport error.
    resolver: Resolver,
    encoding: Encoding,
    retry: RetryPolicy,
    /// Stand-ins for API keys, so ureq never logs a key (`crate::keyguard`).
    keys: KeyGuard,
}

fn build_agent(
    config: &Config,
    resolver: Resolver,
    keys: KeyGuard,
) -> Result<ureq::Agent, ConfigError> {
    let proxy = match (&config.proxy, config.proxy_from_env) {
        (Some(url), _) => Some(
            ureq::Proxy::new(url).map_err(|e| ConfigError::InvalidProxy {
                reason: e.to_string(),
            })?,
        ),
        (None, true) => ureq::Proxy::try_from_env(),
        (None, false) => None,
    };
    let conns = config.max_concurrent_batches;
    let mut tls = ureq::tls::TlsConfig::builder();
    if let Some(roots) = &config.tls_roots {
        let certs: Vec<_> = roots
            .iter()
            .map(|der| ureq::tls::Certificate::from_der(der).to_owned())
            .collect();
        tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
    }
    let agent_config = ureq::Agent::config_builder()
        .tls_config(tls.build())
        .timeout_global(Some(config.request_timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(config.user_agent())
        .max_idle_connections(conns.saturating_mul(2).max(4))
        .max_idle_connections_per_host(conns.max(2))
        .proxy(proxy)
        .build();
    // Last in the chain (above TLS): swaps each key in for its stand-in
    // after ureq has logged the request head.
    let connector =
        ureq::unversioned::transport::DefaultConnector::default().chain(GuardConnector(keys));
    Ok(ureq::Agent::with_parts(agent_config, connector, resolver))
}

impl Transmission for Http {
    fn start(&self, ctx: Context) -> Result<(), ConfigError> {
        if self.running.get().is_some() {
            return Err(ConfigError::Transmission(
                "this Http transmission is already used by another client".into(),
            ));
        }
        let config = &ctx.config;
        let resolver = Resolver::default();
        let keys = KeyGuard::default();
        let agent = build_agent(config, resolver.clone(), keys.clone())?;
        let (tx, rx) = mailbox::bounded(config.pending_work_capacity);
        let jobs = Arc::new(Handoff::<ReadyBatch>::new(config.max_concurrent_batches));
        let shared = Arc::new(Shared {
            responder: ctx.responder.clone(),
            in_flight: Mutex::new(BTreeSet::new()),
            done: Condvar::new(),
            abandoned: AtomicBool::new(false),
            stop: Stop::default(),
            sending: Sharded::default(),
            idle: AtomicUsize::new(0),
            behind: Behind::default(),
            senders: Mutex::new(Vec::new()),
        });
        let settings = Arc::new(SenderSettings {
            agent,
            resolver,
            encoding: config.encoding,
            retry: RetryPolicy::from_config(config),
            keys,
        });
        // Sender threads start on demand, up to max_concurrent_batches: a
        // client that sends little keeps one thread (and one zstd context).
        let pool = SenderPool {
            jobs: Arc::clone(&jobs),
            settings,
            shared: Arc::clone(&shared),
            spawned: 0,
            max: config.max_concurrent_batches,
        };
        // The batcher compresses each body it ships (one context, the body
        // still in its core's cache); sender threads only do HTTP.
        let compressor = Compressor::new(config.compression, config.get_compression_level());
        let settings = BatchSettings::from_config(config);
        let lanes = Arc::new(Lanes::new(settings.clone()));
        let batcher = Batcher::new(settings).compressing(compressor);
        let batcher_shared = Arc::clone(&shared);
        let batcher_lanes = Arc::clone(&lanes);
        let threads = vec![std::thread::Builder::new()
            .name("libhoney-batch".into())
            .spawn(move || batcher_loop(rx, &jobs, pool, batcher, &batcher_lanes, &batcher_shared))
            .map_err(|e| ConfigError::Transmission(format!("could not start a thread: {e}")))?];
        let use_lanes = match config.encode_on {
            EncodeOn::Batcher => UseLanes::Never,
            EncodeOn::Adaptive => UseLanes::WhileBehind,
            EncodeOn::Send => UseLanes::Always,
        };
        let running = Running {
            tx,
            lanes,
            use_lanes,
            shared,
            threads: Mutex::new(threads),
            block_on_send: config.block_on_send,
            closed: AtomicBool::new(false),
        };
        self.running.set(running).map_err(|_| {
            ConfigError::Transmission("this Http transmission was started twice".into())
        })
    }

    fn send(&self, ev: QueuedEvent) {
        let Some(r) = self.running() else {
            return;
        };
        // Either this send sees `closed`, or the batcher sees it in `sending`
        // and waits for its event.
        counted_send(&r.shared.sending, || r.send(ev));
    }

    fn flush(&self, timeout: Duration) -> Result<(), FlushError> {
        let Some(r) = self.running() else {
            return Ok(());
        };
        let deadline = deadline_after(timeout);
        let timed_out = || FlushError::Timeout {
            timeout,
            pending: r.shared.pending(),
        };
        let (reply_tx, reply_rx) = sync_channel(1);
        if r.tx.send_deadline(Msg::Flush(reply_tx), deadline).is_err() {
            return Err(if r.closed.load(Ordering::Acquire) {
                FlushError::Closed
            } else {
                timed_out()
            });
        }
        let last = reply_rx
            .recv_timeout(until(deadline))
            .map_err(|_| timed_out())?;
        if r.shared.wait_upto(last, deadline) {
            Ok(())
        } else {
            Err(timed_out())
        }
    }

    fn close(&self, timeout: Duration) -> Result<(), CloseError> {
        let Some(r) = self.running() else {
            return Ok(());
        };
        if r.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let deadline = deadline_after(timeout);
        let (reply_tx, reply_rx) = sync_channel(1);
        let drained = r.tx.send_deadline(Msg::Close(reply_tx), deadline).is_ok()
            && reply_rx.recv_timeout(until(deadline)).is_ok()
            && r.shared.wait_upto(u64::MAX, deadline);
        if drained {
            // The batcher has exited (so starts no more senders) and every batch
            // is answered: the senders see their queue close and stop at once.
            for t in r.threads.lock_unpoisoned().drain(..) {
                let _ = t.join();
            }
            let senders = std::mem::take(&mut *r.shared.senders.lock_unpoisoned());
            for t in senders {
                let _ = t.join();
            }
            Ok(())
        } else {
            // Give up: retries stop, queued events fail fast, threads finish on their own.
            r.shared.abandoned.store(true, Ordering::Release);
            r.shared.stop.fire();
            Err(CloseError::Timeout {
                timeout,
                pending: r.shared.pending(),
            })
        }
    }

    fn queue_len(&self) -> usize {
        self.running().map_or(0, |r| r.tx.len())
    }
}

fn fail_fast(shared: &Shared, mut ev: Item) {
    let error =
        ResponseError::Transport("the client was closed before the event could be sent".into());
    shared
        .responder
        .respond(Response::failure(ev.take_metadata(), error));
}

/// Starts sender threads as batches need them.
struct SenderPool {
    jobs: Arc<Handoff<ReadyBatch>>,
    settings: Arc<SenderSettings>,
    shared: Arc<Shared>,
    spawned: usize,
    max: usize,
}

impl SenderPool {
    /// Starts one more sender if fewer are idle than batches are waiting
    /// (counting the one about to be queued). False if no sender exists at all.
    fn ensure(&mut self, waiting: usize) -> bool {
        if self.spawned < self.max && self.shared.idle.load(Ordering::Acquire) <= waiting {
            let (jobs, shared, settings) = (
                Arc::clone(&self.jobs),
                Arc::clone(&self.shared),
                Arc::clone(&self.settings),
            );
            self.shared.idle.fetch_add(1, Ordering::AcqRel);
            let spawned = std::thread::Builder::new()
                .name(format!("libhoney-send-{}", self.spawned))
                .spawn(move || sender_loop(jobs, &shared, &settings));
            match spawned {
                Ok(handle) => {
                    self.spawned += 1;
                    self.shared.senders.lock_unpoisoned().push(handle);
                }
                Err(e) => {
                    self.shared.idle.fetch_sub(1, Ordering::AcqRel);
                    log::warn!(target: "libhoney", "could not start a sender thread: {e}");
                }
            }
        }
        self.spawned > 0
    }
}

fn batcher_loop(
    mut rx: mailbox::Receiver<Msg>,
    jobs: &Handoff<ReadyBatch>,
    pool: SenderPool,
    batcher: Batcher,
    lanes: &Lanes,
    shared: &Shared,
) {
    // However this function ends, the senders see their queue close.
    struct CloseJobs<'a>(&'a Handoff<ReadyBatch>);
    impl Drop for CloseJobs<'_> {
        fn drop(&mut self) {
            self.0.close();
        }
    }
    let _close_jobs = CloseJobs(jobs);
    let pool = std::cell::RefCell::new(pool);
    let dispatch = |ready: &mut Vec<ReadyBatch>| {
        for job in ready.drain(..) {
            shared.begin(job.seq);
            let seq = job.seq;
            let sent = if pool.borrow_mut().ensure(jobs.len()) {
                jobs.give(job)
            } else {
                Err(job)
            };
            if let Err(b) = sent {
                // No sender thread could be started: answer the batch anyway.
                answer_batch(
                    &shared.responder,
                    b.metas,
                    Outcome::Transport("no sender thread".into()),
                    Duration::ZERO,
                );
                shared.end(seq);
            }
        }
    };
    let mut b = BatcherState {
        batcher,
        lanes,
        shared,
        ready: Vec::new(),
        dispatch,
    };
    // Events are taken off the queue in rounds without blocking; between
    // rounds the thread sleeps briefly instead of waiting on the queue, so a
    // busy application never pays for waking it (a futex call per `send`).
    // After IDLE_ROUNDS empty rounds it blocks on the queue, so an idle client
    // costs nothing.
    let busy_round = (rx.capacity() / 4).max(1);
    let mut idle_rounds = 0u32;
    let mut backlog = BacklogWatch::new(rx.capacity());
    loop {
        let mut now = Instant::now();
        let mut taken = 0usize;
        let mut first = None;
        if idle_rounds >= IDLE_ROUNDS {
            // A wait ends with a message, at the next deadline, or when a
            // lane opens a body (a kick).
            let waited = match b.next_deadline() {
                Some(deadline) => rx.recv_deadline(deadline),
                None => rx.recv(),
            };
            first = match waited {
                Ok(m) => Some(m),
                Err(mailbox::RecvTimeoutError::Timeout) => None,
                Err(mailbox::RecvTimeoutError::Disconnected) => break,
            };
            now = Instant::now();
        }
        let mut disconnected = false;
        loop {
            let msg = match first.take() {
                Some(m) => m,
                None => match rx.try_recv() {
                    Ok(m) => m,
                    Err(mailbox::TryRecvError::Empty) => break,
                    Err(mailbox::TryRecvError::Disconnected) => {
                        disconnected = true;
                        break;
                    }
                },
            };
            taken += 1;
            match msg {
                Msg::Event(ev) => {
                    if shared.abandoned() {
                        fail_fast(shared, ev);
                        continue;
                    }
                    b.batcher.add(ev, now, &shared.responder, &mut b.ready);
                    if !b.ready.is_empty() {
                        b.dispatch();
                        now = Instant::now();
                    }
                }
                Msg::Body(body) => {
                    b.body(*body);
                    now = Instant::now();
                }
                Msg::Flush(reply) => {
                    b.drain();
                    let _ = reply.send(b.batcher.last_seq());
                }
                Msg::Close(reply) => {
                    let mut flushes = Vec::new();
                    take_last_events(&mut rx, &mut b, &mut flushes);
                    b.drain();
                    // Flushes that raced the close are answered as covered by it.
                    let last = b.batcher.last_seq();
                    for f in flushes {
                        let _ = f.send(last);
                    }
                    let _ = reply.send(last);
                    return;
                }
            }
            if taken >= busy_round {
                break;
            }
        }
        // Messages, not weight: a body waiting in the queue is already
        // encoded, so it does not count as the batcher falling behind.
        backlog.after_round(rx.items(), &shared.behind);
        now = Instant::now();
        if b.next_deadline().is_some_and(|d| d <= now) {
            b.expire(now);
        }
        if disconnected {
            break;
        }
        if taken == 0 {
            idle_rounds = idle_rounds.saturating_add(1);
        } else {
            idle_rounds = 0;
        }
        if taken < busy_round && idle_rounds < IDLE_ROUNDS {
            let pause = match b.next_deadline() {
                Some(d) => ROUND_PAUSE.min(d.saturating_duration_since(now)),
                None => ROUND_PAUSE,
            };
            if !pause.is_zero() {
                std::thread::sleep(pause);
            }
        }
    }
    // The transmission was dropped without a close: send what is left.
    b.drain();
}

/// What the batcher thread works with: its own open batches, the lanes'
/// bodies, and how it hands ready batches to the senders.
struct BatcherState<'a, D: Fn(&mut Vec<ReadyBatch>)> {
    batcher: Batcher,
    lanes: &'a Lanes,
    shared: &'a Shared,
    ready: Vec<ReadyBatch>,
    dispatch: D,
}

impl<D: Fn(&mut Vec<ReadyBatch>)> BatcherState<'_, D> {
    fn dispatch(&mut self) {
        (self.dispatch)(&mut self.ready);
    }

    /// Ships a body a lane filled (or fails its events after a close gave up).
    fn body(&mut self, body: OpenBatch) {
        if self.shared.abandoned() {
            let error = ResponseError::Transport(
                "the client was closed before the event could be sent".into(),
            );
            Msg::Body(Box::new(body)).fail(&self.shared.responder, error);
            return;
        }
        if let Some(buf) = self.batcher.make_ready(body, &mut self.ready) {
            self.lanes.recycle(buf);
        }
        self.dispatch();
    }

    /// Takes the lanes' bodies due by `now` (all, with `None`) and ships them.
    fn take_lanes(&mut self, now: Option<Instant>) {
        let mut due = Vec::new();
        self.lanes.take(now, &mut due);
        for body in due {
            self.body(body);
        }
    }

    /// The earliest deadline of an open batch or lane body.
    fn next_deadline(&self) -> Option<Instant> {
        match (self.batcher.next_deadline(), self.lanes.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Ships every batch and lane body due by `now`.
    fn expire(&mut self, now: Instant) {
        self.take_lanes(Some(now));
        self.batcher.expire(now, &mut self.ready);
        self.dispatch();
    }

    /// Ships every open batch and lane body.
    fn drain(&mut self) {
        self.take_lanes(None);
        self.batcher.drain(&mut self.ready);
        self.dispatch();
    }
}

/// After a close: takes every event still queued, including those of `send`
/// calls that saw the transmission open and are still handing their event
/// over (`Shared::sending`). Once none is in progress, any later `send` sees
/// the transmission closed and answers its event itself, so nothing can be
/// left in the queue or in a lane (the caller drains the lanes next).
fn take_last_events<D: Fn(&mut Vec<ReadyBatch>)>(
    rx: &mut mailbox::Receiver<Msg>,
    b: &mut BatcherState<'_, D>,
    flushes: &mut Vec<SyncSender<u64>>,
) {
    let shared = b.shared;
    let mut take = |m: Msg, b: &mut BatcherState<'_, D>| match m {
        Msg::Event(ev) if shared.abandoned() => fail_fast(shared, ev),
        Msg::Event(ev) => {
            b.batcher
                .add(ev, Instant::now(), &shared.responder, &mut b.ready);
            b.dispatch();
        }
        Msg::Body(body) => b.body(*body),
        Msg::Flush(r) => flushes.push(r),
        Msg::Close(r) => drop(r),
    };
    loop {
        while let Ok(m) = rx.try_recv() {
            take(m, b);
        }
        if shared.sending.sum(Ordering::SeqCst) == 0 {
            // Sends that finished before that load put their event in the
            // queue or a lane first; sends that start after it see `closed`.
            while let Ok(m) = rx.try_recv() {
                take(m, b);
            }
            return;
        }
        // A send is between its check of `closed` and the queue (or blocked
        // on a full queue, which the loop above keeps emptying).
        match rx.recv_timeout(Duration::from_millis(1)) {
            Ok(m) => take(m, b),
            Err(mailbox::RecvTimeoutError::Timeout) => {}
            Err(mailbox::RecvTimeoutError::Disconnected) => return,
        }
    }
}

fn sender_loop(jobs: Arc<Handoff<ReadyBatch>>, shared: &Shared, settings: &SenderSettings) {
    while let Some(job) = jobs.take() {
        shared.idle.fetch_sub(1, Ordering::AcqRel);
        let start = Instant::now();
        let seq = job.seq;
        let outcome = if shared.abandoned() {
            Outcome::Transport("the client was closed before the batch could be sent".into())
        } else {
            let url = job.dest.batch_url();
            let api_key = job.dest.api_key().to_string();
            let (body, encoding) = (&job.body, job.content_encoding);
            send_with_retries(shared, settings, &url, &api_key, body, encoding, start)
        };
        answer_batch(&shared.responder, job.metas, outcome, start.elapsed());
        shared.idle.fetch_add(1, Ordering::AcqRel);
        shared.end(seq);
    }
}

fn is_transient(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::HostNotFound
            | ureq::Error::Protocol(_)
            | ureq::Error::ConnectProxyFailed(_)
            | ureq::Error::BodyStalled
    )
}

struct Answer {
    status: u16,
    retry_after: Option<String>,
    msgpack: bool,
    body: Vec<u8>,
}

fn post(
    settings: &SenderSettings,
    url: &str,
    api_key: &str,
    body: &[u8],
    encoding: Option<&'static str>,
) -> Result<Answer, ureq::Error> {
    let mut req = settings
        .agent
        .post(url)
        .header("X-Honeycomb-Team", settings.keys.stand_in(api_key))
        .header("Content-Type", content_type(settings.encoding));
    if let Some(enc) = encoding {
        req = req.header("Content-Encoding", enc);
    }
    let mut resp = req.send(body)?;
    let status = resp.status().as_u16();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let retry_after = header("retry-after");
    let msgpack = header("content-type").is_some_and(|c| c.contains("msgpack"));
    let body = resp
        .body_mut()
        .with_config()
        .limit(16 * 1024 * 1024)
        .read_to_vec()?;
    Ok(Answer {
        status,
        retry_after,
        msgpack,
        body,
    })
}

fn send_with_retries(
    shared: &Shared,
    settings: &SenderSettings,
    url: &str,
    api_key: &str,
    body: &[u8],
    encoding: Option<&'static str>,
    start: Instant,
) -> Outcome {
    let metrics = shared.responder.metrics();
    let mut attempt = 1u32;
    loop {
        metrics.record_batch();
        let (outcome, retryable, retry_after) = match post(settings, url, api_key, body, encoding) {
            Ok(a) => {
                let retryable = is_retryable_status(a.status);
                let after = a
                    .retry_after
                    .as_deref()
                    .and_then(|v| parse_retry_after(v, SystemTime::now()));
                let outcome = Outcome::Http {
                    status: a.status,
                    body: a.body,
                    msgpack: a.msgpack,
                };
                (outcome, retryable, after)
            }
            Err(e) => {
                let msg = if attempt > 1 {
                    format!("{e} (after {attempt} attempts)")
                } else {
                    e.to_string()
                };
                if is_transient(&e) {
                    // The host may have moved: look it up again next time.
                    settings.resolver.forget();
                }
                (Outcome::Transport(msg), is_transient(&e), None)
            }
        };
        if retryable && !shared.abandoned() {
            if let Some(delay) = settings
                .retry
                .next_delay(attempt, start.elapsed(), retry_after)
            {
                log::debug!(target: "libhoney", "retrying a batch in {delay:?} (attempt {attempt} failed)");
                if shared.sleep(delay) {
                    attempt += 1;
                    metrics.record_retry();
                    continue;
                }
            }
        }
        return outcome;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fired_stop_cuts_a_retry_sleep_short() {
        let stop = Arc::new(Stop::default());
        let t = Instant::now();
        assert!(stop.sleep(Duration::from_millis(30)), "not fired");
        assert!(t.elapsed() >= Duration::from_millis(30));
        let sleeper = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let t = Instant::now();
                (stop.sleep(Duration::from_secs(60)), t.elapsed())
            })
        };
        std::thread::sleep(Duration::from_millis(20));
        stop.fire();
        let (slept_through, took) = sleeper.join().unwrap();
        assert!(!slept_through);
        assert!(took < Duration::from_secs(30), "{took:?}");
        // Once fired, it stays fired.
        assert!(!stop.sleep(Duration::from_secs(60)));
    }
}
