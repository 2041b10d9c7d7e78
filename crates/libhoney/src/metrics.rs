//! Self-metrics: counters the client keeps about its own work.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering, Ordering::Relaxed};

use crate::response::{Response, ResponseError};

/// Live counters shared by a client and its transmission. Read them with
/// [`Client::metrics`](crate::Client::metrics).
///
/// Every counter is a relaxed atomic: updating one costs a few nanoseconds and
/// never blocks.
#[derive(Debug, Default)]
pub struct Metrics {
    queued: Sharded,
    sent: AtomicU64,
    sampled: AtomicU64,
    overflowed: AtomicU64,
    failed: AtomicU64,
    retries: AtomicU64,
    responses_dropped: AtomicU64,
    batches: AtomicU64,
    missing_api_key: AtomicU64,
}

impl Metrics {
    /// Counts one retried request. For transmissions; one relaxed atomic add.
    pub fn record_retry(&self) {
        self.retries.fetch_add(1, Relaxed);
    }

    /// Counts one request sent (whatever its outcome). For transmissions; one
    /// relaxed atomic add.
    pub fn record_batch(&self) {
        self.batches.fetch_add(1, Relaxed);
    }

    /// Events handed to the transmission that have no response yet (sampled
    /// events never count). A few atomic loads; a transmission can use it to
    /// report what a flush still waits for.
    pub fn outstanding(&self) -> usize {
        let done =
            self.sent.load(Relaxed) + self.failed.load(Relaxed) + self.overflowed.load(Relaxed);
        self.queued.sum(Relaxed).saturating_sub(done) as usize
    }

    /// Counts one send refused for want of an API key.
    pub(crate) fn record_missing_api_key(&self) {
        self.missing_api_key.fetch_add(1, Relaxed);
    }

    pub(crate) fn record_queued(&self) {
        self.queued.add(1, Relaxed);
    }

    pub(crate) fn responses_dropped(&self, n: usize) {
        if n > 0 {
            self.responses_dropped.fetch_add(n as u64, Relaxed);
        }
    }

    pub(crate) fn count_response(&self, r: &Response) {
        let counter = match &r.error {
            None if r.is_success() => &self.sent,
            None => &self.failed,
            Some(ResponseError::Sampled) => &self.sampled,
            Some(ResponseError::QueueOverflow) => &self.overflowed,
            Some(_) => &self.failed,
        };
        counter.fetch_add(1, Relaxed);
    }

    pub(crate) fn snapshot(&self, queue_length: usize) -> MetricsSnapshot {
        MetricsSnapshot {
            events_queued: self.queued.sum(Relaxed),
            events_sent: self.sent.load(Relaxed),
            events_sampled: self.sampled.load(Relaxed),
            events_overflowed: self.overflowed.load(Relaxed),
            events_failed: self.failed.load(Relaxed),
            retries: self.retries.load(Relaxed),
            responses_dropped: self.responses_dropped.load(Relaxed),
            batches_sent: self.batches.load(Relaxed),
            events_missing_api_key: self.missing_api_key.load(Relaxed),
            queue_length,
        }
    }
}

/// A point-in-time copy of a client's self-metrics, from
/// [`Client::metrics`](crate::Client::metrics). Plain data: copying or
/// comparing it costs nothing.
///
/// ```
/// use libhoney::{Client, Config, transmission::Mock};
/// let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
/// let mut ev = client.new_event();
/// ev.add_field("x", 1);
/// ev.send()?;
/// let m = client.metrics();
/// assert_eq!((m.events_queued, m.events_sent, m.responses_dropped), (1, 1, 0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Every event `send` accepted ends in exactly one of `events_sent`,
/// `events_sampled`, `events_overflowed` or `events_failed` once its response
/// is produced; `events_queued` counts those handed to the transmission
/// (everything but sampled events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Events handed to the transmission (accepted and not sampled out).
    pub events_queued: u64,
    /// Events delivered (a success response).
    pub events_sent: u64,
    /// Events dropped by sampling.
    pub events_sampled: u64,
    /// Events dropped because the pending queue was full.
    pub events_overflowed: u64,
    /// Events that failed: rejected, too large, unencodable, or lost in transport.
    pub events_failed: u64,
    /// Requests retried after a transient failure.
    pub retries: u64,
    /// Responses dropped because the response queue was full (or already ended).
    pub responses_dropped: u64,
    /// HTTP requests made (each attempt of a batch counts once).
    pub batches_sent: u64,
    /// Events refused by `send` because no API key was set (on the config,
    /// the builder, the event, or in `HONEYCOMB_API_KEY`): `send` returned
    /// [`SendError::MissingApiKey`](crate::SendError::MissingApiKey). Not
    /// counted in `events_queued`.
    pub events_missing_api_key: u64,
    /// Events waiting in the transmission's queue right now.
    pub queue_length: usize,
}

/// How many cache lines a [`Sharded`] counter spreads over.
const SHARDS: usize = 16;

#[repr(align(128))]
#[derive(Debug, Default)]
struct Padded(AtomicU64);

/// A counter updated from many threads without them fighting over one cache
/// line: each thread adds to its own shard (threads are spread round-robin)
/// and readers sum the shards. Reading costs 16 loads; updating one atomic
/// add on a line other threads rarely touch.
#[derive(Debug, Default)]
pub(crate) struct Sharded {
    shards: [Padded; SHARDS],
}

fn my_shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Relaxed) % SHARDS;
    }
    SHARD.with(|s| *s)
}

impl Sharded {
    /// Adds to this thread's shard, with the given ordering.
    #[inline]
    pub(crate) fn add(&self, n: u64, order: Ordering) {
        self.shards[my_shard()].0.fetch_add(n, order);
    }

    /// Subtracts from this thread's shard (shards wrap; only the sum matters).
    #[inline]
    pub(crate) fn sub(&self, n: u64, order: Ordering) {
        self.shards[my_shard()].0.fetch_sub(n, order);
    }

    /// The sum of all shards.
    pub(crate) fn sum(&self, order: Ordering) -> u64 {
        self.shards
            .iter()
            .fold(0u64, |acc, s| acc.wrapping_add(s.0.load(order)))
    }
}
