//! State shared by the server tasks and the [`crate::RunningReceiver`] handle.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::output::Output;
use crate::server::DownRequest;
use crate::{Fault, ReceivedEvent, ReceivedRequest, Stats};

/// Locks a mutex, ignoring poisoning (no code path panics while holding one,
/// and a receiver must keep answering regardless).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Immutable configuration, fixed at `start()`.
#[derive(Debug)]
pub(crate) struct Config {
    pub api_keys: Vec<String>,
    pub record: bool,
    pub track: Option<String>,
    pub max_body_bytes: usize,
    pub team_slug: String,
    pub environment_slug: String,
    /// Normalized path prefix of the API routes: empty, or starting with
    /// `/` and not ending with one.
    pub path_prefix: String,
    /// Connection and read bounds.
    pub limits: crate::Limits,
}

impl Config {
    /// Whether `key` is acceptable: non-empty, and one of the configured keys
    /// if there are any.
    pub(crate) fn key_ok(&self, key: &str) -> bool {
        !key.is_empty() && (self.api_keys.is_empty() || self.api_keys.iter().any(|k| k == key))
    }
}

/// A finalizer-style hasher for `u64` keys (SplitMix64's mixer): much cheaper
/// than SipHash and good enough for counting integers.
#[derive(Default)]
pub(crate) struct U64Hasher(u64);

impl Hasher for U64Hasher {
    fn finish(&self) -> u64 {
        let mut z = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | b as u64;
        }
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = i;
    }
}

/// Values per tracker page (2^16).
const PAGE_SHIFT: u32 = 16;
/// A sparse page becomes a bitmap when it holds more values than this.
const SPARSE_MAX: usize = 512;

/// One page of 65,536 consecutive values: a sorted list while sparse, a
/// bitmap (8 KiB) once dense.
enum Page {
    Sparse(Vec<u16>),
    Dense(Box<[u64; 1024]>),
}

impl Page {
    /// Adds `low`; true if it was not there yet.
    fn insert(&mut self, low: u16) -> bool {
        match self {
            Page::Dense(bits) => {
                let (w, b) = ((low >> 6) as usize, 1u64 << (low & 63));
                let new = bits[w] & b == 0;
                bits[w] |= b;
                new
            }
            Page::Sparse(list) => {
                // Sequential values append at the end: check that first.
                let pos = match list.last() {
                    Some(&last) if last < low => list.len(),
                    _ => match list.binary_search(&low) {
                        Ok(_) => return false,
                        Err(pos) => pos,
                    },
                };
                if list.len() < SPARSE_MAX {
                    list.insert(pos, low);
                    return true;
                }
                let mut bits = Box::new([0u64; 1024]);
                for &v in list.iter() {
                    bits[(v >> 6) as usize] |= 1u64 << (v & 63);
                }
                *self = Page::Dense(bits);
                self.insert(low)
            }
        }
    }
}

/// Distinct/duplicate counting of the tracked field: a paged bitmap, so
/// dense sequences (what benchmarks send) cost a bit each and stay
/// cache-friendly, while scattered values still work.
#[derive(Default)]
pub(crate) struct Tracker {
    pages: HashMap<u64, Page, BuildHasherDefault<U64Hasher>>,
    pub distinct: u64,
    pub duplicates: u64,
}

impl Tracker {
    /// Records every value of `values`.
    pub(crate) fn insert_all(&mut self, values: impl Iterator<Item = u64>) {
        let pages = &mut self.pages;
        let (mut distinct, mut dups) = (0u64, 0u64);
        let mut cur: Option<(u64, &mut Page)> = None;
        for v in values {
            let key = v >> PAGE_SHIFT;
            let page = match cur {
                Some((k, p)) if k == key => p,
                _ => pages.entry(key).or_insert_with(|| Page::Sparse(Vec::new())),
            };
            if page.insert(v as u16) {
                distinct += 1;
            } else {
                dups += 1;
            }
            cur = Some((key, page));
        }
        self.distinct += distinct;
        self.duplicates += dups;
    }
}

/// Everything kept in memory when recording.
#[derive(Default)]
pub(crate) struct Records {
    pub events: Vec<ReceivedEvent>,
    pub requests: Vec<ReceivedRequest>,
}

/// A queued fault rule.
struct FaultRule {
    fault: Fault,
    remaining: usize,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub requests: AtomicU64,
    pub events_accepted: AtomicU64,
    pub events_rejected: AtomicU64,
    pub bytes_received: AtomicU64,
    pub bytes_decoded: AtomicU64,
}

pub(crate) struct Shared {
    pub cfg: Config,
    pub counters: Counters,
    pub next_index: AtomicU64,
    pub records: Mutex<Records>,
    pub tracker: Option<Mutex<Tracker>>,
    faults: Mutex<VecDeque<FaultRule>>,
    fault_rules: AtomicUsize,
    accepted_lock: Mutex<()>,
    accepted_cv: Condvar,
    pub accepted_notify: tokio::sync::Notify,
    pub output: Option<Output>,
    pub down_tx: tokio::sync::mpsc::UnboundedSender<DownRequest>,
    /// Bytes of request bodies that may be buffered at once
    /// (`Limits::max_buffered_body_bytes`).
    pub body_budget: Arc<tokio::sync::Semaphore>,
}

impl Shared {
    pub(crate) fn new(
        cfg: Config,
        output: Option<Output>,
        down_tx: tokio::sync::mpsc::UnboundedSender<DownRequest>,
    ) -> Shared {
        let tracker = cfg.track.as_ref().map(|_| Mutex::new(Tracker::default()));
        let body_budget = Arc::new(tokio::sync::Semaphore::new(
            cfg.limits.max_buffered_body_bytes,
        ));
        Shared {
            body_budget,
            cfg,
            counters: Counters::default(),
            next_index: AtomicU64::new(0),
            records: Mutex::new(Records::default()),
            tracker,
            faults: Mutex::new(VecDeque::new()),
            fault_rules: AtomicUsize::new(0),
            accepted_lock: Mutex::new(()),
            accepted_cv: Condvar::new(),
            accepted_notify: tokio::sync::Notify::new(),
            output,
            down_tx,
        }
    }

    pub(crate) fn push_fault(&self, fault: Fault, times: usize) {
        if times == 0 {
            return;
        }
        let mut q = lock(&self.faults);
        q.push_back(FaultRule {
            fault,
            remaining: times,
        });
        self.fault_rules.store(q.len(), Ordering::Release);
    }

    pub(crate) fn clear_faults(&self) {
        let mut q = lock(&self.faults);
        q.clear();
        self.fault_rules.store(0, Ordering::Release);
    }

    pub(crate) fn pending_faults(&self) -> usize {
        lock(&self.faults).iter().map(|r| r.remaining).sum()
    }

    /// Takes one application of the first queued fault rule.
    pub(crate) fn next_fault(&self) -> Option<Fault> {
        if self.fault_rules.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut q = lock(&self.faults);
        let front = q.front_mut()?;
        let fault = front.fault.clone();
        front.remaining -= 1;
        if front.remaining == 0 {
            q.pop_front();
        }
        self.fault_rules.store(q.len(), Ordering::Release);
        Some(fault)
    }

    pub(crate) fn stats(&self) -> Stats {
        let c = &self.counters;
        let (distinct, dups) = match &self.tracker {
            Some(t) => {
                let t = lock(t);
                (t.distinct, t.duplicates)
            }
            None => (0, 0),
        };
        Stats {
            requests: c.requests.load(Ordering::Relaxed),
            events_accepted: c.events_accepted.load(Ordering::Relaxed),
            events_rejected: c.events_rejected.load(Ordering::Relaxed),
            bytes_received: c.bytes_received.load(Ordering::Relaxed),
            bytes_decoded: c.bytes_decoded.load(Ordering::Relaxed),
            distinct_tracked: distinct,
            duplicate_tracked: dups,
        }
    }

    pub(crate) fn reset(&self) {
        let c = &self.counters;
        {
            let mut r = lock(&self.records);
            r.events = Vec::new();
            r.requests = Vec::new();
            if let Some(t) = &self.tracker {
                *lock(t) = Tracker::default();
            }
            for a in [
                &c.requests,
                &c.events_accepted,
                &c.events_rejected,
                &c.bytes_received,
                &c.bytes_decoded,
            ] {
                a.store(0, Ordering::Relaxed);
            }
        }
        self.notify_accepted();
    }

    /// Wakes everything waiting for accepted events.
    pub(crate) fn notify_accepted(&self) {
        drop(lock(&self.accepted_lock));
        self.accepted_cv.notify_all();
        self.accepted_notify.notify_waiters();
    }

    pub(crate) fn accepted(&self) -> u64 {
        self.counters.events_accepted.load(Ordering::Acquire)
    }

    /// Blocks until at least `n` events have been accepted or `timeout` passes.
    pub(crate) fn wait_for_events(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let mut guard = lock(&self.accepted_lock);
        loop {
            if self.accepted() >= n as u64 {
                return true;
            }
            guard = match deadline {
                None => match self.accepted_cv.wait(guard) {
                    Ok(g) => g,
                    Err(e) => e.into_inner(),
                },
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return false;
                    }
                    match self.accepted_cv.wait_timeout(guard, deadline - now) {
                        Ok((g, _)) => g,
                        Err(e) => e.into_inner().0,
                    }
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_counts_dense_sparse_and_mixed_values() {
        let mut t = Tracker::default();
        t.insert_all(0..100_000);
        assert_eq!((t.distinct, t.duplicates), (100_000, 0));
        t.insert_all((0..100_000).rev().step_by(3));
        assert_eq!((t.distinct, t.duplicates), (100_000, 33_334));
        let scattered: Vec<u64> = (0..5000u64)
            .map(|i| (i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        t.insert_all(scattered.iter().copied());
        t.insert_all(scattered.iter().copied());
        assert_eq!((t.distinct, t.duplicates), (105_000, 38_334));
        // One page going from sparse to dense in random order.
        let mut t = Tracker::default();
        let vals: Vec<u64> = (0..3000u64)
            .map(|i| (i * 7919) % 4096 + (7 << 16))
            .collect();
        t.insert_all(vals.iter().copied());
        let distinct: std::collections::HashSet<u64> = vals.iter().copied().collect();
        assert_eq!(t.distinct, distinct.len() as u64);
        assert_eq!(t.duplicates, 3000 - distinct.len() as u64);
        t.insert_all([u64::MAX, u64::MAX, 0].into_iter());
        assert_eq!(t.distinct, distinct.len() as u64 + 2);
    }
}
