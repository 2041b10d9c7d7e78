//! Lanes: while the batcher is behind, `send` encodes
//! each event straight into a batch body on the calling thread, and the
//! batcher gets whole bodies, which it only compresses.
//!
//! Why: with events queued one by one, a saturated client spends about a
//! quarter of its CPU on handing events over between cores (a queue slot
//! written on one core and read on another for every event, and the
//! batcher's copy of each encoded event into its body). A lane hands over one
//! message per batch. Measured (`bench/ab.sh` against the build before lanes,
//! 5 alternating pairs of 1,000,000 events, docs/PERFORMANCE.md): 2.37 → 1.85
//! µs of CPU per event and 518 k → 658 k events/s on one thread, with four
//! threads 2.34 → 1.77 µs.
//!
//! The lanes are a fixed set of mutex-guarded slots owned by the
//! transmission, not thread-local bodies: a thread that exits strands
//! nothing, and the batcher can take any body when its `send_frequency`
//! passes, on a flush and on a close. A thread uses the slot its
//! thread-local index picks, or the next free one if another thread holds
//! it (a `try_lock`; it waits only if every slot is busy). The batcher reads
//! each slot's earliest deadline from an atomic, and locks a slot only to
//! take bodies from it (when a deadline has passed, on a flush, on a
//! close): a batcher that locked every slot to look would push the threads
//! off their own slots and split their batches. A body is filled by the
//! batcher's own rule ([`fill`]: split at `max_batch_bytes`, shipped at
//! `max_batch_size`, too-large events answered). Each slot keeps at most
//! [`MAX_OPEN`] bodies, one per destination; a fifth destination ships the
//! slot's oldest body (the one opened first). So lanes hold at most
//! `slots × MAX_OPEN` open bodies.

use std::cell::Cell;
use std::sync::TryLockError;
use std::time::Instant;

// `std`'s types, or loom's models under `--cfg libhoney_loom` (tests only).
use crate::sync::model::{AtomicU64, AtomicUsize, LockExt, Mutex, MutexGuard, Ordering};

use super::batch::{fill, BatchSettings, OpenBatch};
use crate::destination::Destination;
use crate::response::Response;
use crate::transmission::QueuedEvent;

/// Open bodies per slot (one per destination).
pub(crate) const MAX_OPEN: usize = 4;

/// The first capacity of a body buffer when no reused one is at hand.
const FIRST_BUFFER: usize = 16 * 1024;

/// Bodies that `send` encodes into, shared by the sending threads and taken
/// by the batcher.
pub(crate) struct Lanes {
    slots: Box<[SlotCell]>,
    /// The time deadlines are counted from in [`SlotCell::earliest`].
    base: Instant,
    settings: BatchSettings,
    /// Emptied body buffers, for new bodies to reuse.
    spares: Mutex<Vec<Vec<u8>>>,
    max_spares: usize,
    /// Events in open bodies (they count against the pending budget), as
    /// the slots last published them.
    held: AtomicUsize,
    /// Their bodies' weight in bytes (see `pipeline::body_bytes`), likewise.
    held_bytes: AtomicUsize,
    /// How far a slot's counts may drift from what it published before it
    /// publishes again (events, bytes): shared counters written on every
    /// event would bounce between the sending cores.
    drift: (usize, usize),
}

struct SlotCell {
    slot: Mutex<Slot>,
    /// The earliest deadline of the slot's open bodies, in nanoseconds
    /// after [`Lanes::base`]; [`NO_DEADLINE`] if none is open. Written
    /// under the slot's lock, read without it.
    earliest: AtomicU64,
}

const NO_DEADLINE: u64 = u64::MAX;

#[derive(Default)]
struct Slot {
    open: Vec<OpenBatch>,
    /// What this slot's open bodies add to `Lanes::held` and
    /// `Lanes::held_bytes` (events, bytes).
    published: (usize, usize),
}

/// What [`Lanes::push`] leaves for its caller to do once the slot is
/// unlocked.
#[derive(Default)]
pub(crate) struct Pushed {
    /// Bodies to hand to the batcher (full, split, or pushed out by another
    /// destination).
    pub(crate) ship: Vec<OpenBatch>,
    /// A body was opened: the batcher must learn its deadline.
    pub(crate) opened: bool,
    /// The event did not go into a body: its response.
    pub(crate) refused: Option<Response>,
}

thread_local! {
    /// This thread's lane index (`usize::MAX` until it first sends).
    static INDEX: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// The next lane index to hand to a thread (`std`'s atomic even under
/// loom: a static, and only a hint).
static NEXT_INDEX: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn thread_index() -> usize {
    INDEX.with(|i| {
        let mut v = i.get();
        if v == usize::MAX {
            v = NEXT_INDEX.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            i.set(v);
        }
        v
    })
}

impl Lanes {
    /// Twice as many slots as the machine has cores (4 to 64), so that
    /// threads rarely meet on one.
    pub(crate) fn new(settings: BatchSettings) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Lanes::with_slots(settings, (cores * 2).clamp(4, 64))
    }

    pub(crate) fn with_slots(settings: BatchSettings, slots: usize) -> Self {
        let slots = slots.max(1);
        Lanes {
            slots: (0..slots)
                .map(|_| SlotCell {
                    slot: Mutex::default(),
                    earliest: AtomicU64::new(NO_DEADLINE),
                })
                .collect(),
            base: Instant::now(),
            settings,
            spares: Mutex::new(Vec::new()),
            max_spares: slots + 4,
            held: AtomicUsize::new(0),
            held_bytes: AtomicUsize::new(0),
            drift: (1, 1),
        }
    }

    /// Lets each slot's counts drift from what it published by at most a
    /// sixteenth of `capacity` (events or bytes, as `unit` says) spread over
    /// the slots, and at most 64 events or 64 KiB: so the budget is passed
    /// by at most a sixteenth, and a small queue is counted exactly.
    pub(crate) fn bounded_by(mut self, capacity: usize, unit: super::queue::Unit) -> Self {
        let share = (capacity / (16 * self.slots.len())).max(1);
        self.drift = match unit {
            super::queue::Unit::Events => (share.min(64), 64 * 1024),
            super::queue::Unit::Bytes => (64, share.min(64 * 1024)),
        };
        self
    }

    /// Publishes `slot`'s counts if they drifted past [`drift`](Lanes::drift)
    /// (or always, with `force`).
    fn publish_held(&self, slot: &mut Slot, force: bool) {
        let now = (open_events(slot), open_bytes(slot));
        let (was, (de, db)) = (slot.published, self.drift);
        if force || now.0.abs_diff(was.0) >= de || now.1.abs_diff(was.1) >= db {
            add(&self.held, was.0, now.0);
            add(&self.held_bytes, was.1, now.1);
            slot.published = now;
        }
    }

    /// This thread's slot, or the next one no other thread holds; this
    /// thread's own if all are held.
    fn slot(&self) -> (&SlotCell, MutexGuard<'_, Slot>) {
        let n = self.slots.len();
        let mine = thread_index() % n;
        for k in 0..n {
            let cell = &self.slots[(mine + k) % n];
            match cell.slot.try_lock() {
                Ok(g) => return (cell, g),
                Err(TryLockError::Poisoned(p)) => return (cell, p.into_inner()),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        let cell = &self.slots[mine];
        (cell, cell.slot.lock_unpoisoned())
    }

    fn stamp(&self, t: Instant) -> u64 {
        let nanos = t.saturating_duration_since(self.base).as_nanos();
        u64::try_from(nanos).unwrap_or(NO_DEADLINE - 1)
    }

    /// Publishes the earliest deadline of `slot` (locked) in `cell`.
    fn publish(&self, cell: &SlotCell, slot: &Slot) {
        let earliest = slot.open.iter().map(|b| b.deadline).min();
        let stamp = earliest.map_or(NO_DEADLINE, |d| self.stamp(d));
        cell.earliest.store(stamp, Ordering::Release);
    }

    fn open_body(&self, dest: &Destination) -> OpenBatch {
        let buf = self
            .spares
            .lock_unpoisoned()
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(FIRST_BUFFER));
        OpenBatch::new(dest.clone(), buf, &self.settings, Instant::now())
    }

    /// Keeps an emptied body buffer for a later body (or frees it, if
    /// enough are kept).
    pub(crate) fn recycle(&self, mut buf: Vec<u8>) {
        buf.clear();
        let mut spares = self.spares.lock_unpoisoned();
        if spares.len() < self.max_spares {
            spares.push(buf);
        }
    }

    /// Encodes `ev` into the open body of its destination in this thread's
    /// slot, by the batcher's rule ([`fill`]). The event's fields are freed
    /// here, on the thread that built them. What the caller must do next
    /// (ship bodies, wake the batcher, answer a refused event) it does after
    /// the slot is unlocked.
    pub(crate) fn push(&self, mut ev: QueuedEvent) -> Pushed {
        let mut p = Pushed::default();
        let (cell, mut slot) = self.slot();
        let filled = fill(
            &mut slot.open,
            &self.settings,
            MAX_OPEN,
            &mut ev,
            &mut |dest| self.open_body(dest),
            &mut |r| p.refused = Some(r),
            &mut p.ship,
        );
        p.opened = filled.opened;
        let changed = p.opened || !p.ship.is_empty();
        if changed {
            self.publish(cell, &slot);
        }
        self.publish_held(&mut slot, changed);
        p
    }

    /// Bytes held in open bodies (see `pipeline::body_bytes`), as published
    /// (see [`bounded_by`](Lanes::bounded_by)); takes no lock.
    pub(crate) fn held_bytes(&self) -> usize {
        self.held_bytes.load(Ordering::SeqCst)
    }

    /// Events in open bodies, as published; takes no lock.
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    /// The earliest deadline of an open body, if any. Takes no lock.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let earliest = self
            .slots
            .iter()
            .map(|c| c.earliest.load(Ordering::Acquire))
            .min()?;
        (earliest != NO_DEADLINE).then(|| self.base + std::time::Duration::from_nanos(earliest))
    }

    /// Takes every open body whose deadline is at or before `now` (every
    /// one, with `None`), appending them to `out`. Locks only the slots
    /// that have such a body.
    pub(crate) fn take(&self, now: Option<Instant>, out: &mut Vec<OpenBatch>) {
        let limit = now.map_or(NO_DEADLINE - 1, |t| self.stamp(t));
        for cell in self.slots.iter() {
            if cell.earliest.load(Ordering::Acquire) > limit {
                continue;
            }
            let mut slot = cell.slot.lock_unpoisoned();
            let mut i = 0;
            while i < slot.open.len() {
                if now.is_none_or(|now| slot.open[i].deadline <= now) {
                    out.push(slot.open.swap_remove(i));
                } else {
                    i += 1;
                }
            }
            self.publish(cell, &slot);
            self.publish_held(&mut slot, true);
        }
    }

    /// Events in open bodies, counted under each slot's lock (and checked
    /// against [`held`](Lanes::held), which may lag by the drift).
    #[cfg(all(test, not(libhoney_loom)))]
    fn open_events(&self) -> usize {
        let n = self
            .slots
            .iter()
            .map(|c| open_events(&c.slot.lock_unpoisoned()))
            .sum();
        let drift = self.drift.0 * self.slots.len();
        assert!(
            self.held().abs_diff(n) < drift.max(1),
            "held {} for {n}",
            self.held()
        );
        n
    }
}

/// Events in a slot's open bodies.
fn open_events(slot: &Slot) -> usize {
    slot.open.iter().map(OpenBatch::count).sum()
}

/// Bytes of a slot's open bodies (see `pipeline::body_bytes`).
fn open_bytes(slot: &Slot) -> usize {
    slot.open.iter().map(super::body_bytes).sum()
}

/// Moves `counter` from `before` to `after`.
fn add(counter: &AtomicUsize, before: usize, after: usize) {
    if after >= before {
        counter.fetch_add(after - before, Ordering::SeqCst);
    } else {
        counter.fetch_sub(before - after, Ordering::SeqCst);
    }
}

/// Model checking with loom (see `crate::sync::model` for how to run it).
/// In every interleaving loom produces for these small configurations:
///
/// * `loom_sends_racing_a_take_lose_and_repeat_nothing`: two threads send
///   two events each (batches of two, two slots, so sends contend for a
///   slot, ship full bodies and open new ones) while the batcher takes
///   every open body (a flush): each event ends in exactly one body, each
///   body's count matches its metadata, and the published counts and the
///   deadline return to zero and none once all is taken.
/// * `loom_a_body_opened_before_a_wake_is_seen_by_the_batcher`: a sender
///   opens a body and then wakes the batcher (as the queue's kick does); a
///   batcher woken by it sees the body's deadline and takes the body at that
///   deadline: `push` publishes the deadline before it returns, so a batcher
///   woken after a send never sleeps past a body it was not told about.
///
/// (Loom runs its threads on one OS thread, so they share the thread-local
/// lane index: every send starts at the same slot, the contended case.)
#[cfg(all(test, libhoney_loom))]
mod loom_models {
    use super::*;
    use crate::config::Config;
    use crate::fields::{Fields, LayeredFields};
    use crate::response::Metadata;
    use crate::value::Value;
    use loom::sync::atomic::AtomicBool;
    use loom::sync::Arc;

    fn lanes(slots: usize) -> Arc<Lanes> {
        let config = Config::new().max_batch_size(2);
        Arc::new(Lanes::with_slots(
            BatchSettings::from_config(&config),
            slots,
        ))
    }

    fn event(n: i64) -> QueuedEvent {
        let mut own = Fields::with_capacity(1);
        own.insert("n".into(), Value::Int(n));
        QueuedEvent {
            fields: LayeredFields { base: None, own },
            dest: Destination::new("http://127.0.0.1:9", "k", "d"),
            sample_rate: 1,
            timestamp: std::time::UNIX_EPOCH,
            metadata: Some(Metadata::new(n)),
        }
    }

    /// The events' numbers in `bodies`, sorted.
    fn ns(bodies: &[OpenBatch]) -> Vec<i64> {
        let mut v: Vec<i64> = bodies
            .iter()
            .flat_map(|b| &b.metas)
            .map(|m| *m.as_ref().unwrap().downcast_ref::<i64>().unwrap())
            .collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn loom_sends_racing_a_take_lose_and_repeat_nothing() {
        loom::model(|| {
            let l = lanes(2);
            let senders: Vec<_> = (0..2i64)
                .map(|t| {
                    let l = Arc::clone(&l);
                    loom::thread::spawn(move || {
                        let mut shipped = Vec::new();
                        for i in 0..2 {
                            let p = l.push(event(t * 10 + i));
                            assert!(p.refused.is_none());
                            shipped.extend(p.ship);
                        }
                        shipped
                    })
                })
                .collect();
            let mut all = Vec::new();
            l.take(None, &mut all);
            for s in senders {
                all.extend(s.join().unwrap());
            }
            l.take(None, &mut all);
            assert_eq!(ns(&all), vec![0, 1, 10, 11]);
            assert!(all.iter().all(|b| b.count() == b.metas.len()));
            assert_eq!((l.held(), l.held_bytes()), (0, 0));
            assert_eq!(l.next_deadline(), None);
        });
    }

    #[test]
    fn loom_a_body_opened_before_a_wake_is_seen_by_the_batcher() {
        loom::model(|| {
            let l = lanes(2);
            let woken = Arc::new(AtomicBool::new(false));
            let sender = {
                let (l, woken) = (Arc::clone(&l), Arc::clone(&woken));
                loom::thread::spawn(move || {
                    let p = l.push(event(7));
                    assert!(p.opened && p.ship.is_empty());
                    woken.store(true, Ordering::Release);
                })
            };
            let mut out = Vec::new();
            if woken.load(Ordering::Acquire) {
                let deadline = l.next_deadline().expect("the opened body's deadline");
                l.take(Some(deadline), &mut out);
                assert_eq!(ns(&out), vec![7]);
            }
            sender.join().unwrap();
            l.take(None, &mut out);
            assert_eq!(ns(&out), vec![7]);
            assert_eq!((l.held(), l.next_deadline()), (0, None));
        });
    }
}

#[cfg(all(test, not(libhoney_loom)))]
mod tests {
    use super::*;
    use crate::config::{Config, Encoding};
    use crate::response::{Metadata, ResponseError};
    use std::time::Duration;

    fn lanes(config: Config, slots: usize) -> Lanes {
        Lanes::with_slots(BatchSettings::from_config(&config), slots)
    }

    /// A client whose events land in a mock, to take them from it as the
    /// client hands them to a transmission.
    fn client(config: Config) -> (crate::Client, std::sync::Arc<crate::transmission::Mock>) {
        let mock = std::sync::Arc::new(crate::transmission::Mock::new());
        let config = config
            .api_key("k")
            .dataset("d")
            .transmission_arc(mock.clone());
        (crate::Client::new(config).unwrap(), mock)
    }

    fn queued(
        c: &(crate::Client, std::sync::Arc<crate::transmission::Mock>),
        dataset: &str,
        n: i64,
        pad: usize,
    ) -> QueuedEvent {
        let mut ev = c.0.new_event();
        ev.add_field("n", n);
        ev.add_field("pad", "x".repeat(pad));
        ev.set_dataset(dataset);
        ev.add_metadata(n);
        ev.send().unwrap();
        c.1.take_events().pop().unwrap()
    }

    fn ns(metas: &[Option<Metadata>]) -> Vec<i64> {
        metas
            .iter()
            .map(|m| *m.as_ref().unwrap().downcast_ref::<i64>().unwrap())
            .collect()
    }

    fn body_json(b: OpenBatch) -> serde_json::Value {
        serde_json::from_slice(&b.body.finish()).unwrap()
    }

    #[test]
    fn a_body_ships_full_at_max_batch_size_with_its_metadata_in_order() {
        let config = Config::new().max_batch_size(3);
        let c = client(config.clone());
        let l = lanes(config, 2);
        let mut shipped = Vec::new();
        for n in 0..7 {
            let p = l.push(queued(&c, "d", n, 1));
            assert!(p.refused.is_none());
            assert_eq!(p.opened, n % 3 == 0, "event {n}");
            shipped.extend(p.ship);
        }
        assert_eq!(shipped.len(), 2);
        assert_eq!(l.open_events(), 1);
        assert_eq!(ns(&shipped[0].metas), vec![0, 1, 2]);
        assert_eq!(ns(&shipped[1].metas), vec![3, 4, 5]);
        let json = body_json(shipped.remove(1));
        let got: Vec<i64> = json
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["data"]["n"].as_i64().unwrap())
            .collect();
        assert_eq!(got, vec![3, 4, 5]);
        let mut rest = Vec::new();
        l.take(None, &mut rest);
        assert_eq!(ns(&rest[0].metas), vec![6]);
        assert_eq!(l.open_events(), 0);
    }

    #[test]
    fn a_body_that_would_pass_max_batch_bytes_is_split() {
        // Each event is about 1,100 bytes; three fit in 4,000, not four.
        let config = Config::new().max_batch_bytes(4_000);
        let c = client(config.clone());
        let l = lanes(config, 1);
        let mut shipped = Vec::new();
        for n in 0..4 {
            let p = l.push(queued(&c, "d", n, 1_000));
            assert!(p.refused.is_none());
            shipped.extend(p.ship);
        }
        assert_eq!(shipped.len(), 1);
        assert_eq!(ns(&shipped[0].metas), vec![0, 1, 2]);
        let body = shipped.remove(0).body.finish();
        assert!(body.len() <= 4_000, "{} bytes", body.len());
        assert_eq!(l.open_events(), 1);
    }

    #[test]
    fn a_too_large_event_is_refused_with_its_name_and_the_body_is_unharmed() {
        let config = Config::new().max_event_bytes(500);
        let c = client(config.clone());
        let l = lanes(config, 1);
        // Alone: refused, and no body stays open.
        let mut big = c.0.new_event();
        big.add_field("name", "upload");
        big.add_field("pad", "x".repeat(600));
        big.send().unwrap();
        let p = l.push(c.1.take_events().pop().unwrap());
        assert!(!p.opened && p.ship.is_empty());
        match p.refused.unwrap().error {
            Some(ResponseError::TooLarge { name, limit, .. }) => {
                assert_eq!((name.as_deref(), limit), (Some("upload"), 500));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(l.open_events(), 0);
        // Between two events: they stay in one valid body.
        l.push(queued(&c, "d", 1, 1));
        assert!(l.push(queued(&c, "d", 2, 600)).refused.is_some());
        l.push(queued(&c, "d", 3, 1));
        let mut open = Vec::new();
        l.take(None, &mut open);
        assert_eq!(ns(&open[0].metas), vec![1, 3]);
        assert_eq!(body_json(open.remove(0)).as_array().unwrap().len(), 2);
    }

    #[test]
    fn each_destination_has_its_own_body_and_a_fifth_ships_the_oldest() {
        let config = Config::new();
        let c = client(config.clone());
        let l = lanes(config, 1);
        for (n, ds) in ["a", "b", "a", "c", "d"].iter().enumerate() {
            let p = l.push(queued(&c, ds, n as i64, 1));
            assert!(p.ship.is_empty());
        }
        let p = l.push(queued(&c, "e", 5, 1));
        assert!(p.opened);
        assert_eq!(p.ship.len(), 1);
        assert_eq!(p.ship[0].dest.dataset(), "a");
        assert_eq!(ns(&p.ship[0].metas), vec![0, 2]);
        assert_eq!(l.open_events(), 4);
    }

    #[test]
    fn the_batcher_takes_bodies_whose_deadline_passed() {
        let config = Config::new().send_frequency(Duration::from_millis(50));
        let c = client(config.clone());
        let l = lanes(config, 2);
        assert_eq!(l.next_deadline(), None);
        let before = Instant::now();
        l.push(queued(&c, "a", 0, 1));
        let deadline = l.next_deadline().unwrap();
        assert!(deadline >= before + Duration::from_millis(50));
        let mut out = Vec::new();
        l.take(Some(deadline - Duration::from_millis(1)), &mut out);
        assert!(out.is_empty());
        l.take(Some(deadline), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(l.next_deadline(), None);
    }

    #[test]
    fn threads_share_slots_without_losing_an_event() {
        let config = Config::new()
            .max_batch_size(100)
            .encoding(Encoding::Msgpack);
        let c = client(config.clone());
        let l = std::sync::Arc::new(lanes(config, 2));
        let shipped = std::sync::Mutex::new(Vec::new());
        let events: Vec<Vec<QueuedEvent>> = (0..4i64)
            .map(|t| {
                (0..1_000)
                    .map(|i| queued(&c, "d", t * 10_000 + i, 8))
                    .collect()
            })
            .collect();
        std::thread::scope(|scope| {
            for evs in events {
                let (l, shipped) = (&l, &shipped);
                scope.spawn(move || {
                    for ev in evs {
                        let p = l.push(ev);
                        assert!(p.refused.is_none());
                        shipped.lock().unwrap().extend(p.ship);
                    }
                });
            }
        });
        let mut bodies = shipped.into_inner().unwrap();
        l.take(None, &mut bodies);
        let mut all: Vec<i64> = bodies.iter().flat_map(|b| ns(&b.metas)).collect();
        assert!(bodies.iter().all(|b| b.count() == b.metas.len()));
        all.sort_unstable();
        let want: Vec<i64> = (0..4)
            .flat_map(|t| (0..1_000).map(move |i| t * 10_000 + i))
            .collect();
        assert_eq!(all, want);
    }

    #[test]
    fn buffers_are_reused_up_to_a_bound() {
        let config = Config::new();
        let c = client(config.clone());
        let l = lanes(config, 1);
        for _ in 0..20 {
            l.recycle(Vec::with_capacity(100_000));
        }
        assert_eq!(l.spares.lock().unwrap().len(), l.max_spares);
        l.push(queued(&c, "d", 0, 1));
        let mut out = Vec::new();
        l.take(None, &mut out);
        assert!(out.remove(0).body.finish().capacity() >= 100_000);
        assert_eq!(l.spares.lock().unwrap().len(), l.max_spares - 1);
    }
}
