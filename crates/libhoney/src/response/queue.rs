//! The response queue: bounded, filled a batch at a time, read one by one.
//!
//! A channel would hand responses over one at a time: a reader waiting on an
//! empty channel is woken by the first response of each batch and then races
//! the transmission for the rest, one futex call and two thread switches every
//! few dozen responses. Measured in the end-to-end benchmark (1 M events), that
//! was 17,000 sleeps of the reading thread, which took 8.4 % of the process's
//! CPU. Here a transmission hands over a batch's responses in one locked step
//! (at most one wake-up per batch), and a reader moves every waiting batch into
//! its own buffer in one step, then reads from it without touching the
//! writers' lock.
//!
//! Two locks, always taken in the order `outbox` then `inbox`: writers take
//! only `inbox`; readers take `outbox`, and `inbox` when `outbox` is empty.
//!
//! When it must drop (full, and the transmission does not block), it keeps
//! error responses in preference to successes: a batch that does not fit
//! keeps its errors first, and an error that finds no room evicts the
//! oldest success still in `inbox` (responses a reader has already moved
//! to `outbox` are its own and stay). Sampled responses count as successes
//! here: at a high sample rate most responses say "sampled". Only when the
//! queue holds nothing but errors is an error dropped.

use std::collections::VecDeque;
use std::time::Instant;

// `std`'s types, or loom's models under `--cfg libhoney_loom` (tests only).
use crate::sync::model::{
    seq_cst_order, AtomicBool, AtomicUsize, Condvar, LockExt, Mutex, MutexGuard, Ordering::SeqCst,
};

use super::{Response, ResponseError};

/// Whether the queue keeps `r` in preference to successes when it must
/// drop: a failure other than sampling.
fn is_error(r: &Response) -> bool {
    !r.is_success() && !matches!(r.error, Some(ResponseError::Sampled))
}

pub(crate) struct Queue {
    capacity: usize,
    /// A writer blocked on a full queue waits until at most this many are queued.
    low_water: usize,
    /// Responses queued, in `inbox` and `outbox`.
    len: AtomicUsize,
    /// Writers blocked on a full queue (changed under the `inbox` lock).
    writers_waiting: AtomicUsize,
    /// The stream has ended (a copy of `Inbox::ended`, readable without the
    /// lock).
    closed: AtomicBool,
    inbox: Mutex<Inbox>,
    outbox: Mutex<Outbox>,
    readable: Condvar,
    writable: Condvar,
}

#[derive(Default)]
struct Inbox {
    /// Batches of responses, oldest first; never an empty one.
    chunks: VecDeque<Vec<Response>>,
    readers_waiting: usize,
    /// The client is closed: later responses are dropped, and readers stop
    /// once the queue is empty.
    ended: bool,
    /// Every writer is gone: readers stop once the queue is empty.
    disconnected: bool,
}

#[derive(Default)]
struct Outbox {
    current: std::vec::IntoIter<Response>,
    rest: VecDeque<Vec<Response>>,
}

impl Outbox {
    fn pop(&mut self) -> Option<Response> {
        loop {
            if let Some(r) = self.current.next() {
                return Some(r);
            }
            self.current = self.rest.pop_front()?.into_iter();
        }
    }
}

/// How long [`Queue::pop`] may wait.
#[derive(Clone, Copy)]
pub(crate) enum Wait {
    No,
    Until(Instant),
    Forever,
}

/// Why [`Queue::pop`] returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PopError {
    /// Nothing queued (`Wait::No`), or nothing came in time (`Wait::Until`).
    Empty,
    /// Nothing queued, and nothing ever will be.
    Ended,
}

impl Queue {
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Queue {
            capacity,
            low_water: capacity - (capacity / 8).max(1),
            len: AtomicUsize::new(0),
            writers_waiting: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            inbox: Mutex::new(Inbox::default()),
            outbox: Mutex::new(Outbox::default()),
            readable: Condvar::new(),
            writable: Condvar::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len.load(SeqCst)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(SeqCst)
    }

    /// Queues `responses` in order, as many as there is room for; with `block`,
    /// waits for room for the rest (until the stream ends). Returns how many
    /// were dropped: those that found the queue full without `block`, and any
    /// that arrived after the stream ended. At most one reader is woken.
    pub(crate) fn push(&self, mut responses: Vec<Response>, block: bool) -> usize {
        let mut inbox = self.inbox.lock_unpoisoned();
        loop {
            if inbox.ended || responses.is_empty() {
                return responses.len();
            }
            let room = self.capacity.saturating_sub(self.len.load(SeqCst));
            if room >= responses.len() {
                // The common case: room for all.
                let n = responses.len();
                self.admit(inbox, n, |chunks| append(chunks, responses));
                return 0;
            }
            if !block && responses.iter().any(is_error) {
                // Full for these: keep their errors first (see the module docs).
                return self.admit_errors_first(&mut inbox, responses);
            }
            if room > 0 {
                // Room for some: queue those, then wait or drop the rest.
                let rest = responses.split_off(room);
                self.len.fetch_add(room, SeqCst);
                append(&mut inbox.chunks, responses);
                if inbox.readers_waiting > 0 {
                    self.readable.notify_one();
                }
                responses = rest;
            }
            if !block {
                return responses.len();
            }
            // Wait until the readers have made room below the low-water mark.
            // The count of waiting writers is raised before the last look at
            // the length, and a reader lowers the length before it looks at
            // the count (both sequentially consistent): one of the two sees the
            // other, and a reader's wake-up takes the lock this thread holds
            // until it waits, so no wake-up is lost.
            self.writers_waiting.fetch_add(1, SeqCst);
            seq_cst_order();
            if self.len.load(SeqCst) > self.low_water && !inbox.ended {
                inbox = self.writable.wait(inbox).unwrap_or_else(|e| e.into_inner());
            }
            self.writers_waiting.fetch_sub(1, SeqCst);
        }
    }

    /// Queues what fits of `responses` (more than fit), errors first:
    /// evicts the oldest successes still in `inbox` to make room for the
    /// errors, then keeps as many errors as fit and the first successes that
    /// still fit, in their order. Returns how many were dropped, evicted
    /// successes included. Costs a pass over `inbox` when it evicts.
    fn admit_errors_first(&self, inbox: &mut Inbox, responses: Vec<Response>) -> usize {
        let errors = responses.iter().filter(|r| is_error(r)).count();
        let mut room = self.capacity.saturating_sub(self.len.load(SeqCst));
        let mut evicted = 0;
        if room < errors {
            let mut want = errors - room;
            for chunk in inbox.chunks.iter_mut() {
                if want == 0 {
                    break;
                }
                let before = chunk.len();
                chunk.retain(|r| {
                    if want > 0 && !is_error(r) {
                        want -= 1;
                        false
                    } else {
                        true
                    }
                });
                evicted += before - chunk.len();
            }
            inbox.chunks.retain(|c| !c.is_empty());
            self.len.fetch_sub(evicted, SeqCst);
            room += evicted;
        }
        let keep_errors = errors.min(room);
        let mut keep_successes = room - keep_errors;
        let mut errors_left = keep_errors;
        let total = responses.len();
        let kept: Vec<Response> = responses
            .into_iter()
            .filter(|r| {
                let slot = if is_error(r) {
                    &mut errors_left
                } else {
                    &mut keep_successes
                };
                if *slot > 0 {
                    *slot -= 1;
                    true
                } else {
                    false
                }
            })
            .collect();
        let n = kept.len();
        if n > 0 {
            self.len.fetch_add(n, SeqCst);
            append(&mut inbox.chunks, kept);
            if inbox.readers_waiting > 0 {
                self.readable.notify_one();
            }
        }
        total - n + evicted
    }

    /// [`push`](Self::push) for one response, without allocating a batch for
    /// it when the last queued batch has spare capacity.
    pub(crate) fn push_one(&self, response: Response, block: bool) -> usize {
        {
            let inbox = self.inbox.lock_unpoisoned();
            if inbox.ended {
                return 1;
            }
            if self.len.load(SeqCst) < self.capacity {
                self.admit(inbox, 1, |chunks| match chunks.back_mut() {
                    Some(last) if last.len() < last.capacity() => last.push(response),
                    _ => {
                        let mut chunk = Vec::with_capacity(16);
                        chunk.push(response);
                        chunks.push_back(chunk);
                    }
                });
                return 0;
            }
        }
        self.push(vec![response], block)
    }

    /// Counts `n` responses in and lets `add` queue them, under the lock
    /// `inbox` holds; then wakes a waiting reader, after releasing the lock
    /// (woken under it, the reader would only wait for the lock).
    fn admit(
        &self,
        mut inbox: MutexGuard<'_, Inbox>,
        n: usize,
        add: impl FnOnce(&mut VecDeque<Vec<Response>>),
    ) {
        self.len.fetch_add(n, SeqCst);
        add(&mut inbox.chunks);
        let wake = inbox.readers_waiting > 0;
        drop(inbox);
        if wake {
            self.readable.notify_one();
        }
    }

    /// Takes the oldest response, waiting as `wait` says.
    pub(crate) fn pop(&self, wait: Wait) -> Result<Response, PopError> {
        loop {
            let mut outbox = self.outbox.lock_unpoisoned();
            if let Some(r) = outbox.pop() {
                drop(outbox);
                self.taken();
                return Ok(r);
            }
            let mut inbox = self.inbox.lock_unpoisoned();
            if !inbox.chunks.is_empty() {
                // Every waiting batch at once, reusing the outbox's empty deque.
                std::mem::swap(&mut inbox.chunks, &mut outbox.rest);
                drop(inbox);
                if let Some(r) = outbox.pop() {
                    drop(outbox);
                    self.taken();
                    return Ok(r);
                }
                continue;
            }
            if inbox.ended || inbox.disconnected {
                return Err(PopError::Ended);
            }
            // Other readers (and `try_recv`) must not wait for this one.
            drop(outbox);
            let timeout = match wait {
                Wait::No => return Err(PopError::Empty),
                Wait::Forever => None,
                Wait::Until(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(PopError::Empty);
                    }
                    Some(deadline - now)
                }
            };
            inbox.readers_waiting += 1;
            let mut inbox = match timeout {
                None => self.readable.wait(inbox).unwrap_or_else(|e| e.into_inner()),
                Some(t) => {
                    self.readable
                        .wait_timeout(inbox, t)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
            inbox.readers_waiting -= 1;
            // A batch may have arrived with a single wake-up for several
            // readers: pass it on if this reader leaves some behind.
            if inbox.readers_waiting > 0 && !inbox.chunks.is_empty() {
                self.readable.notify_one();
            }
        }
    }

    /// After a reader took a response: wakes blocked writers once the queue
    /// is down to the low-water mark.
    fn taken(&self) {
        let left = self.len.fetch_sub(1, SeqCst) - 1;
        seq_cst_order();
        if left <= self.low_water && self.writers_waiting.load(SeqCst) > 0 {
            let _inbox = self.inbox.lock_unpoisoned();
            self.writable.notify_all();
        }
    }

    /// Ends the stream (the client closed): later responses are dropped,
    /// blocked writers give up, readers stop once the queue is empty.
    pub(crate) fn end(&self) {
        let mut inbox = self.inbox.lock_unpoisoned();
        inbox.ended = true;
        self.closed.store(true, SeqCst);
        self.readable.notify_all();
        self.writable.notify_all();
    }

    /// Every writer is gone: readers stop once the queue is empty.
    pub(crate) fn disconnect(&self) {
        let mut inbox = self.inbox.lock_unpoisoned();
        inbox.disconnected = true;
        self.readable.notify_all();
    }
}

/// Appends a batch, merging a small one into the last batch when that has
/// spare capacity (single responses would otherwise cost a batch each).
fn append(chunks: &mut VecDeque<Vec<Response>>, mut responses: Vec<Response>) {
    if let Some(last) = chunks.back_mut() {
        if last.capacity() - last.len() >= responses.len() {
            last.append(&mut responses);
            return;
        }
    }
    chunks.push_back(responses);
}

#[cfg(all(test, not(libhoney_loom)))]
mod tests {
    use super::*;
    use crate::response::{Metadata, ResponseError};
    use std::sync::Arc;
    use std::time::Duration;

    /// A response that says which writer sent it and its number there.
    fn tagged(writer: u64, n: u64) -> Response {
        Response::success(Some(Metadata::new((writer, n))), Some(202), Duration::ZERO)
    }

    fn tag(r: &Response) -> (u64, u64) {
        *r.metadata
            .as_ref()
            .and_then(|m| m.downcast_ref::<(u64, u64)>())
            .expect("a tagged response")
    }

    fn batch(writer: u64, range: std::ops::Range<u64>) -> Vec<Response> {
        range.map(|n| tagged(writer, n)).collect()
    }

    #[test]
    fn batches_and_single_responses_come_out_in_order() {
        let q = Queue::new(100);
        assert_eq!(q.push(batch(0, 0..3), false), 0);
        assert_eq!(q.push_one(tagged(0, 3), false), 0);
        assert_eq!(q.push_one(tagged(0, 4), false), 0);
        assert_eq!(q.push(batch(0, 5..9), false), 0);
        assert_eq!(q.len(), 9);
        // A read moves everything to the readers' side; later pushes queue
        // behind it.
        assert_eq!(tag(&q.pop(Wait::No).unwrap()), (0, 0));
        assert_eq!(q.push(batch(0, 9..10), false), 0);
        let rest: Vec<u64> = std::iter::from_fn(|| q.pop(Wait::No).ok())
            .map(|r| tag(&r).1)
            .collect();
        assert_eq!(rest, (1..10).collect::<Vec<_>>());
        assert_eq!(q.len(), 0);
        assert_eq!(q.pop(Wait::No).unwrap_err(), PopError::Empty);
    }

    #[test]
    fn without_blocking_what_does_not_fit_is_dropped_and_counted() {
        let q = Queue::new(5);
        assert_eq!(q.push(batch(0, 0..3), false), 0);
        assert_eq!(q.push(batch(0, 3..7), false), 2, "room for 2 of 4");
        assert_eq!(q.push_one(tagged(0, 7), false), 1);
        assert_eq!(q.len(), 5);
        let got: Vec<u64> = std::iter::from_fn(|| q.pop(Wait::No).ok())
            .map(|r| tag(&r).1)
            .collect();
        assert_eq!(got, vec![0, 1, 2, 3, 4], "the first ones kept, in order");
        assert_eq!(q.push(batch(0, 8..13), false), 0, "room again once read");
    }

    fn failed(writer: u64, n: u64) -> Response {
        let mut r = tagged(writer, n);
        r.status_code = Some(400);
        r.error = Some(ResponseError::Rejected("no".into()));
        r
    }

    fn sampled(writer: u64, n: u64) -> Response {
        let mut r = tagged(writer, n);
        r.error = Some(ResponseError::Sampled);
        r
    }

    fn drain(q: &Queue) -> Vec<(u64, u64)> {
        std::iter::from_fn(|| q.pop(Wait::No).ok())
            .map(|r| tag(&r))
            .collect()
    }

    #[test]
    fn when_full_errors_are_kept_in_preference_to_successes() {
        let q = Queue::new(4);
        assert_eq!(q.push(batch(0, 0..4), false), 0);
        // An error evicts the oldest success.
        assert_eq!(q.push_one(failed(1, 0), false), 1);
        assert_eq!(q.len(), 4);
        // A success finds no room: dropped, as before.
        assert_eq!(q.push_one(tagged(2, 0), false), 1);
        // A batch with errors and successes: its errors first, by evicting
        // older successes; its successes are dropped.
        assert_eq!(
            q.push(
                vec![tagged(3, 0), failed(3, 1), tagged(3, 2), failed(3, 3)],
                false
            ),
            4,
            "two evicted, two of its successes dropped"
        );
        assert_eq!(drain(&q), vec![(0, 3), (1, 0), (3, 1), (3, 3)]);
        // Full of errors: a new error is dropped (the oldest errors stay).
        for n in 0..4 {
            assert_eq!(q.push_one(failed(4, n), false), 0);
        }
        assert_eq!(q.push_one(failed(5, 0), false), 1);
        assert_eq!(drain(&q), vec![(4, 0), (4, 1), (4, 2), (4, 3)]);
    }

    #[test]
    fn a_batch_larger_than_the_room_keeps_its_errors_then_its_first_successes_in_order() {
        let q = Queue::new(5);
        assert_eq!(q.push(batch(0, 0..2), false), 0);
        let mixed = vec![
            tagged(1, 0),
            tagged(1, 1),
            failed(1, 2),
            tagged(1, 3),
            failed(1, 4),
        ];
        assert_eq!(q.push(mixed, false), 2);
        assert_eq!(drain(&q), vec![(0, 0), (0, 1), (1, 0), (1, 2), (1, 4)]);
    }

    #[test]
    fn sampled_responses_are_not_preferred_and_read_ones_are_not_evicted() {
        let q = Queue::new(3);
        assert_eq!(
            q.push(vec![sampled(0, 0), sampled(0, 1), sampled(0, 2)], false),
            0
        );
        assert_eq!(
            q.push_one(sampled(1, 0), false),
            1,
            "no preference among them"
        );
        assert_eq!(q.push_one(failed(1, 1), false), 1, "a sampled one evicted");
        assert_eq!(drain(&q), vec![(0, 1), (0, 2), (1, 1)]);
        // Responses a reader moved to its side are not evicted.
        assert_eq!(q.push(batch(2, 0..3), false), 0);
        assert_eq!(tag(&q.pop(Wait::No).unwrap()), (2, 0)); // moves all to the outbox
        assert_eq!(q.push_one(tagged(2, 3), false), 0);
        assert_eq!(
            q.push_one(failed(2, 4), false),
            1,
            "evicts (2, 3), in inbox"
        );
        assert_eq!(
            q.push_one(failed(2, 5), false),
            1,
            "nothing to evict: dropped"
        );
        assert_eq!(drain(&q), vec![(2, 1), (2, 2), (2, 4)]);
    }

    #[test]
    fn a_blocking_queue_still_drops_nothing() {
        let q = Arc::new(Queue::new(2));
        assert_eq!(q.push(batch(0, 0..2), true), 0);
        let writer = {
            let q = Arc::clone(&q);
            std::thread::spawn(move || q.push(vec![failed(1, 0), tagged(1, 1)], true))
        };
        std::thread::sleep(Duration::from_millis(20));
        assert!(!writer.is_finished());
        let mut got = Vec::new();
        while got.len() < 4 {
            got.push(tag(&q.pop(Wait::Forever).unwrap()));
        }
        assert_eq!(writer.join().unwrap(), 0);
        assert_eq!(got, vec![(0, 0), (0, 1), (1, 0), (1, 1)]);
    }

    #[test]
    fn a_timed_wait_gives_up_and_a_push_wakes_a_waiting_reader() {
        let q = Arc::new(Queue::new(10));
        let t = Instant::now();
        let deadline = t + Duration::from_millis(30);
        assert_eq!(q.pop(Wait::Until(deadline)).unwrap_err(), PopError::Empty);
        assert!(Instant::now() >= deadline);
        let reader = {
            let q = Arc::clone(&q);
            std::thread::spawn(move || q.pop(Wait::Forever).map(|r| tag(&r)))
        };
        std::thread::sleep(Duration::from_millis(20));
        assert!(!reader.is_finished(), "nothing queued: the reader waits");
        q.push(batch(3, 0..2), false);
        assert_eq!(reader.join().unwrap(), Ok((3, 0)));
    }

    #[test]
    fn end_drops_later_responses_releases_blocked_writers_and_readers_drain_first() {
        let q = Arc::new(Queue::new(4));
        assert_eq!(q.push(batch(0, 0..4), true), 0);
        let writer = {
            let q = Arc::clone(&q);
            std::thread::spawn(move || q.push(batch(0, 4..7), true))
        };
        std::thread::sleep(Duration::from_millis(30));
        assert!(!writer.is_finished(), "a full queue blocks the writer");
        assert!(!q.is_closed());
        q.end();
        assert!(q.is_closed());
        assert_eq!(writer.join().unwrap(), 3, "released; its responses dropped");
        assert_eq!(q.push_one(tagged(0, 9), true), 1, "dropped after the end");
        for n in 0..4 {
            assert_eq!(tag(&q.pop(Wait::Forever).unwrap()), (0, n));
        }
        assert_eq!(q.pop(Wait::Forever).unwrap_err(), PopError::Ended);
        assert_eq!(q.pop(Wait::No).unwrap_err(), PopError::Ended);
    }

    #[test]
    fn once_every_writer_is_gone_readers_drain_then_stop() {
        let q = Arc::new(Queue::new(4));
        q.push(batch(0, 0..2), false);
        let reader = {
            let q = Arc::clone(&q);
            std::thread::spawn(move || {
                let mut n = 0;
                while q.pop(Wait::Forever).is_ok() {
                    n += 1;
                }
                n
            })
        };
        std::thread::sleep(Duration::from_millis(20));
        q.disconnect();
        assert_eq!(reader.join().unwrap(), 2);
        assert!(!q.is_closed(), "only an end (the client's close) closes it");
    }

    #[test]
    fn blocking_writers_and_several_readers_lose_and_repeat_nothing() {
        // A queue far smaller than the traffic, batches of every size up to
        // three times its capacity, single responses mixed in, readers
        // waiting forever, with a timeout and not at all.
        const WRITERS: u64 = 4;
        const PER_WRITER: u64 = 20_000;
        let q = Arc::new(Queue::new(7));
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let q = Arc::clone(&q);
                std::thread::spawn(move || {
                    let mut n = 0;
                    let mut size = 1;
                    while n < PER_WRITER {
                        let end = (n + size).min(PER_WRITER);
                        let dropped = if size == 1 {
                            q.push_one(tagged(w, n), true)
                        } else {
                            q.push(batch(w, n..end), true)
                        };
                        assert_eq!(dropped, 0);
                        n = end;
                        size = size % 21 + 1;
                    }
                })
            })
            .collect();
        let readers: Vec<_> = (0..3)
            .map(|k| {
                let q = Arc::clone(&q);
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    loop {
                        let r = match k {
                            0 => q.pop(Wait::Forever),
                            1 => q.pop(Wait::Until(Instant::now() + Duration::from_millis(1))),
                            _ => q.pop(Wait::No),
                        };
                        match r {
                            Ok(r) => got.push(tag(&r)),
                            Err(PopError::Ended) => return got,
                            Err(PopError::Empty) => std::thread::yield_now(),
                        }
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        q.end();
        let mut all = Vec::new();
        for r in readers {
            let got = r.join().unwrap();
            // Each reader sees each writer's responses in order.
            for w in 0..WRITERS {
                let mine: Vec<u64> = got.iter().filter(|t| t.0 == w).map(|t| t.1).collect();
                assert!(
                    mine.windows(2).all(|p| p[0] < p[1]),
                    "writer {w} out of order"
                );
            }
            all.extend(got);
        }
        all.sort_unstable();
        let want: Vec<(u64, u64)> = (0..WRITERS)
            .flat_map(|w| (0..PER_WRITER).map(move |n| (w, n)))
            .collect();
        assert_eq!(all.len(), want.len());
        assert!(all == want, "every response exactly once");
        assert_eq!(q.len(), 0);
    }
}

/// Model checking with loom: each model runs every interleaving of its
/// threads that loom's scheduler can produce (every order of lock
/// acquisitions, atomic operations and condition-variable wake-ups,
/// spurious ones included), so what they assert holds in all of them, not
/// only in the runs a stress test happens to see. They prove, for these
/// small configurations:
///
/// * `blocking_push_and_pop_lose_nothing_and_never_hang`: with a queue of
///   one, two writers that block for room (a batch and a single response)
///   and a reader that waits, every response is read exactly once, each
///   writer's in order, and no interleaving leaves a thread waiting forever
///   (loom fails a model in which every thread is blocked): the hand-over
///   of `writers_waiting`, `readers_waiting` and the low-water mark loses
///   no wake-up.
/// * `end_releases_blocked_writers_and_readers`: `end` during a blocked
///   push and a waiting pop releases both, whatever the order.
/// * `an_error_survives_a_race_with_a_success_for_the_last_place`: a full
///   queue that does not block keeps the error of two racing writers, and
///   counts exactly one drop.
///
/// Loom treats `SeqCst` accesses as `AcqRel`; `seq_cst_order` adds, under
/// loom only, the fences that give the model the total order `std`'s
/// `SeqCst` provides (without them loom reports the lost wake-up that
/// `SeqCst` rules out). Preemptions are bounded (`LOOM_MAX_PREEMPTIONS=3`)
/// to keep the run to minutes, as loom recommends.
///
/// Run: `LOOM_MAX_PREEMPTIONS=3 RUSTFLAGS="--cfg libhoney_loom" cargo test
/// -p libhoney-sdk --lib --release loom`.
#[cfg(all(test, libhoney_loom))]
mod loom_models {
    use super::*;
    use crate::response::{Metadata, ResponseError};
    use loom::sync::Arc;
    use loom::thread;
    use std::time::Duration;

    fn tagged(writer: u64, n: u64) -> Response {
        Response::success(Some(Metadata::new((writer, n))), Some(202), Duration::ZERO)
    }

    fn failed(writer: u64, n: u64) -> Response {
        let mut r = tagged(writer, n);
        r.error = Some(ResponseError::Rejected("no".into()));
        r
    }

    fn tag(r: &Response) -> (u64, u64) {
        *r.metadata
            .as_ref()
            .and_then(|m| m.downcast_ref::<(u64, u64)>())
            .expect("a tagged response")
    }

    #[test]
    fn loom_blocking_push_and_pop_lose_nothing_and_never_hang() {
        loom::model(|| {
            let q = Arc::new(Queue::new(1));
            let w1 = {
                let q = Arc::clone(&q);
                thread::spawn(move || q.push(vec![tagged(1, 0), tagged(1, 1)], true))
            };
            let w2 = {
                let q = Arc::clone(&q);
                thread::spawn(move || q.push_one(tagged(2, 0), true))
            };
            let mut got = Vec::new();
            for _ in 0..3 {
                got.push(tag(&q.pop(Wait::Forever).expect("a response")));
            }
            assert_eq!(w1.join().unwrap(), 0);
            assert_eq!(w2.join().unwrap(), 0);
            let ones: Vec<u64> = got.iter().filter(|t| t.0 == 1).map(|t| t.1).collect();
            assert_eq!(ones, vec![0, 1], "writer 1 in order: {got:?}");
            assert_eq!(got.iter().filter(|t| t.0 == 2).count(), 1);
            assert_eq!(q.len(), 0);
        });
    }

    #[test]
    fn loom_end_releases_blocked_writers_and_readers() {
        loom::model(|| {
            let q = Arc::new(Queue::new(1));
            assert_eq!(q.push_one(tagged(0, 0), false), 0);
            let writer = {
                let q = Arc::clone(&q);
                thread::spawn(move || q.push_one(tagged(1, 0), true))
            };
            let reader = {
                let q = Arc::clone(&q);
                thread::spawn(move || {
                    let mut n = 0;
                    while q.pop(Wait::Forever).is_ok() {
                        n += 1;
                    }
                    n
                })
            };
            q.end();
            let dropped = writer.join().unwrap();
            let read = reader.join().unwrap();
            // The blocked response either got in before the end (and was
            // read) or was dropped: never both, never lost silently.
            assert_eq!(read + dropped, 2, "read {read}, dropped {dropped}");
        });
    }

    #[test]
    fn loom_an_error_survives_a_race_with_a_success_for_the_last_place() {
        loom::model(|| {
            let q = Arc::new(Queue::new(1));
            let ok = {
                let q = Arc::clone(&q);
                thread::spawn(move || q.push_one(tagged(1, 0), false))
            };
            let err = {
                let q = Arc::clone(&q);
                thread::spawn(move || q.push_one(failed(2, 0), false))
            };
            let dropped = ok.join().unwrap() + err.join().unwrap();
            assert_eq!(dropped, 1);
            let r = q.pop(Wait::No).expect("one kept");
            assert_eq!(tag(&r), (2, 0), "the error is the one kept");
            assert_eq!(q.pop(Wait::No).unwrap_err(), PopError::Empty);
        });
    }
}
