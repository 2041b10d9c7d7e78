//! The threaded driver of the pipeline: [`Http`], the default transmission.
//! A batcher thread runs the pipeline's [`Engine`]; sender threads, started
//! as batches need them, `POST` with ureq and wait out retries. Everything
//! else (batching, lanes, compression, retry decisions, answers, flush and
//! close bookkeeping) is the pipeline's.

use crate::sync::LockExt;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use super::handoff::Handoff;
use super::keyguard::{GuardConnector, KeyGuard};
use super::resolve::Resolver;
use crate::config::{Config, Encoding};
use crate::error::{CloseError, ConfigError, FlushError};
use crate::transmission::pipeline::{
    self, block_plainly, content_type, max_answer_bytes, Attempt, Core, Engine, FailureKind,
    Intake, Next, Outcome, ReadyBatch, Retries, RetryPolicy, Step, Wait,
};
use crate::transmission::{Context, QueuedEvent, SendFuture, Transmission};
use ureq::unversioned::transport::Connector as _;

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
/// the event a [`QueueOverflow`](crate::ResponseError::QueueOverflow)
/// response (each event is admitted on its own, also into a lane: a full
/// queue never refuses a whole body).
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
/// and jitter (or the server's `Retry-After`) until `retry_deadline` (and
/// `max_attempts`, if set). Each event then gets exactly one response: its per-event
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
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
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

struct Running {
    intake: Intake,
    /// Ready batches on their way to the sender threads.
    jobs: Arc<Handoff<ReadyBatch>>,
    batcher: Mutex<Option<JoinHandle<()>>>,
    /// Sender threads, started on demand by the batcher; joined by `close`.
    senders: Arc<Mutex<Vec<JoinHandle<()>>>>,
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
    /// Stand-ins for API keys, so ureq never logs a key (`keyguard`).
    keys: KeyGuard,
    core: Arc<Core>,
    /// Sender threads waiting for a batch.
    idle: AtomicUsize,
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
            return Err(ConfigError::TransmissionInUse {
                transmission: "Http",
            });
        }
        let config = &ctx.config;
        let resolver = Resolver::default();
        let keys = KeyGuard::default();
        let agent = build_agent(config, resolver.clone(), keys.clone())?;
        let (intake, engine, core) = pipeline::build(config, ctx.responder.clone(), block_plainly);
        let jobs = Arc::new(Handoff::<ReadyBatch>::new(config.max_concurrent_batches));
        let senders = Arc::new(Mutex::new(Vec::new()));
        // Sender threads start on demand, up to max_concurrent_batches: a
        // client that sends little keeps one thread.
        let pool = SenderPool {
            jobs: Arc::clone(&jobs),
            settings: Arc::new(SenderSettings {
                agent,
                resolver,
                encoding: config.encoding,
                retry: RetryPolicy::from_config(config),
                keys,
                core: Arc::clone(&core),
                idle: AtomicUsize::new(0),
            }),
            threads: Arc::clone(&senders),
            spawned: 0,
            max: config.max_concurrent_batches,
        };
        let batcher_jobs = Arc::clone(&jobs);
        let batcher = std::thread::Builder::new()
            .name("libhoney-batch".into())
            .spawn(move || batcher_loop(engine, &batcher_jobs, pool))
            .map_err(|e| ConfigError::ThreadSpawn {
                reason: e.to_string(),
            })?;
        let running = Running {
            intake,
            jobs,
            batcher: Mutex::new(Some(batcher)),
            senders,
        };
        self.running
            .set(running)
            .map_err(|_| ConfigError::TransmissionInUse {
                transmission: "Http",
            })
    }

    fn send(&self, ev: QueuedEvent) {
        if let Some(r) = self.running() {
            r.intake.send(ev);
        }
    }

    fn send_async<'a>(&'a self, ev: QueuedEvent) -> SendFuture<'a> {
        Intake::send_boxed(self.running().map(|r| &r.intake), ev)
    }

    fn flush(&self, timeout: Duration) -> Result<(), FlushError> {
        match self.running() {
            Some(r) => r.intake.flush(timeout),
            None => Ok(()),
        }
    }

    fn close(&self, timeout: Duration) -> Result<(), CloseError> {
        let Some(r) = self.running() else {
            return Ok(());
        };
        // Giving up, the batcher must never wait on the senders' queue.
        r.intake.close(timeout, || r.jobs.close())?;
        // The batcher has stopped (so starts no more senders) and every
        // batch is answered: the senders see their queue close and stop.
        if let Some(t) = r.batcher.lock_unpoisoned().take() {
            let _ = t.join();
        }
        r.jobs.close();
        let senders = std::mem::take(&mut *r.senders.lock_unpoisoned());
        for t in senders {
            let _ = t.join();
        }
        Ok(())
    }

    fn queue_len(&self) -> usize {
        self.running().map_or(0, |r| r.intake.queue_len())
    }
}

/// Starts sender threads as batches need them.
struct SenderPool {
    jobs: Arc<Handoff<ReadyBatch>>,
    settings: Arc<SenderSettings>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
    spawned: usize,
    max: usize,
}

impl SenderPool {
    /// Starts one more sender if fewer are idle than batches are waiting
    /// (counting the one about to be queued). False if no sender exists at all.
    fn ensure(&mut self, waiting: usize) -> bool {
        if self.spawned < self.max && self.settings.idle.load(Ordering::Acquire) <= waiting {
            let (jobs, settings) = (Arc::clone(&self.jobs), Arc::clone(&self.settings));
            self.settings.idle.fetch_add(1, Ordering::AcqRel);
            let spawned = std::thread::Builder::new()
                .name(format!("libhoney-send-{}", self.spawned))
                .spawn(move || sender_loop(&jobs, &settings));
            match spawned {
                Ok(handle) => {
                    self.spawned += 1;
                    self.threads.lock_unpoisoned().push(handle);
                }
                Err(e) => {
                    self.settings.idle.fetch_sub(1, Ordering::AcqRel);
                    log::warn!(target: "libhoney", "could not start a sender thread: {e}");
                }
            }
        }
        self.spawned > 0
    }
}

fn batcher_loop(mut engine: Engine, jobs: &Handoff<ReadyBatch>, mut pool: SenderPool) {
    // However this function ends, the senders see their queue close.
    struct CloseJobs<'a>(&'a Handoff<ReadyBatch>);
    impl Drop for CloseJobs<'_> {
        fn drop(&mut self) {
            self.0.close();
        }
    }
    let _close_jobs = CloseJobs(jobs);
    let responder = pool.settings.core.responder().clone();
    loop {
        match engine.step() {
            Step::Dispatch => {
                let refused = engine.take_refused();
                if !refused.is_empty() {
                    responder.respond_all(refused);
                }
                for batch in engine.take_ready() {
                    if batch.claim.answered() {
                        continue; // a close gave up on it
                    }
                    let given = if pool.ensure(jobs.len()) {
                        jobs.give(batch)
                    } else {
                        Err(batch)
                    };
                    if let Err(b) = given {
                        // No sender thread could be started, or a close gave up.
                        let why = "no sender thread could take the batch".into();
                        b.claim.answer(Outcome::Abandoned(why), Duration::ZERO);
                    }
                }
            }
            Step::Wait(Wait::Pause(d)) => {
                if !d.is_zero() {
                    std::thread::sleep(d);
                }
            }
            Step::Wait(Wait::Message(deadline)) => {
                let rx = engine.receiver();
                let got = match deadline {
                    Some(d) => rx.recv_deadline(d),
                    None => rx.recv(),
                };
                engine.received(got);
            }
            Step::Stop => return,
        }
    }
}

fn sender_loop(jobs: &Handoff<ReadyBatch>, settings: &SenderSettings) {
    while let Some(job) = jobs.take() {
        settings.idle.fetch_sub(1, Ordering::AcqRel);
        let start = Instant::now();
        let outcome = send_with_retries(settings, &job);
        job.claim.answer(outcome, start.elapsed());
        settings.idle.fetch_add(1, Ordering::AcqRel);
    }
}

/// Tries the batch until the pipeline's retry policy says it is done.
fn send_with_retries(settings: &SenderSettings, job: &ReadyBatch) -> Outcome {
    let flight = &settings.core.flight;
    let metrics = settings.core.responder().metrics();
    let url = job.dest.batch_url();
    let limit = max_answer_bytes(job.claim.events());
    let mut retries = Retries::new(settings.retry.clone(), Instant::now());
    loop {
        if flight.abandoned() || job.claim.answered() {
            return Outcome::Abandoned(
                "the client was closed before the batch could be sent".into(),
            );
        }
        metrics.record_batch();
        let attempt = post(settings, &url, job, limit);
        if matches!(attempt, Attempt::Failed { kind, .. } if kind != FailureKind::Tls) {
            // The host may have moved: look it up again next time.
            settings.resolver.forget();
        }
        match retries.after(attempt, Instant::now(), SystemTime::now()) {
            Next::Done(outcome) => return outcome,
            Next::Retry { delay, failed } => {
                job.claim.retrying(failed.clone());
                log::debug!(
                    target: "libhoney",
                    "retrying a batch in {delay:?} (attempt {} failed)",
                    retries.attempts() - 1
                );
                if !flight.sleep(delay) {
                    // A close gave up: answer with how the batch failed (if
                    // the close has not already).
                    return failed;
                }
                metrics.record_retry();
            }
        }
    }
}

/// Why ureq failed, for the retry policy.
fn failure_kind(e: &ureq::Error) -> FailureKind {
    match e {
        ureq::Error::Timeout(_) | ureq::Error::BodyStalled => FailureKind::Timeout,
        ureq::Error::HostNotFound => FailureKind::Dns,
        ureq::Error::ConnectionFailed => FailureKind::Connection,
        ureq::Error::Protocol(_)
        | ureq::Error::BodyExceedsLimit(_)
        | ureq::Error::LargeResponseHeader(..) => FailureKind::Protocol,
        ureq::Error::ConnectProxyFailed(_) => FailureKind::Proxy,
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => FailureKind::Tls,
        ureq::Error::Io(io) => {
            let tls = io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
            if tls {
                FailureKind::Tls
            } else if io.kind() == std::io::ErrorKind::TimedOut {
                FailureKind::Timeout
            } else {
                FailureKind::Connection
            }
        }
        _ => FailureKind::Refused,
    }
}

/// One attempt: the request and its answer, read up to `limit` bytes.
fn post(settings: &SenderSettings, url: &str, job: &ReadyBatch, limit: usize) -> Attempt {
    let mut req = settings
        .agent
        .post(url)
        .header(
            "X-Honeycomb-Team",
            settings.keys.stand_in(job.dest.api_key()),
        )
        .header("Content-Type", content_type(settings.encoding));
    if let Some(enc) = job.content_encoding {
        req = req.header("Content-Encoding", enc);
    }
    let failed = |e: ureq::Error| Attempt::Failed {
        kind: failure_kind(&e),
        message: e.to_string(),
    };
    let mut resp = match req.send(&job.body[..]) {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    let status = resp.status().as_u16();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let retry_after = header("retry-after");
    let msgpack = header("content-type").is_some_and(|c| c.contains("msgpack"));
    match resp
        .body_mut()
        .with_config()
        .limit(limit as u64)
        .read_to_vec()
    {
        Ok(body) => Attempt::Answered {
            status,
            retry_after,
            msgpack,
            body,
        },
        Err(e) => failed(e),
    }
}
