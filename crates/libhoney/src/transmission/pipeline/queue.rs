//! The pending queue between `send` and the batcher: bounded, many senders,
//! one receiver, a full queue answered at once. Both drivers use it: the
//! threaded one waits on it with [`Receiver::recv_deadline`] and
//! [`Sender::send_blocking`], the tokio one awaits [`Receiver::recv_async`]
//! and [`Sender::room`] (futures that need no runtime: they register the
//! task's [`Waker`]).
//!
//! Why not a crossbeam array channel (used until the fifth round): when the
//! channel is full, a sender that finds the next slot claimed by the receiver
//! but not yet released spins (`pause` instructions, without yielding) until
//! the receiver releases it. With four application threads on two cores the
//! receiver is often descheduled in that window, and the spinning took 10.7 %
//! of the process's samples in the end-to-end benchmark (`perf annotate` of
//! `Channel::start_send`).
//!
//! Here senders append under a mutex held for one `push_back`, and a full
//! queue is answered `Full` at once. The receiver takes every queued item in
//! one locked step (swapping the senders' deque with its own, emptied one) and
//! then reads them without the lock. It publishes how many it has taken every
//! [`PUBLISH_EVERY`] items and whenever its own deque runs empty, so a
//! sender's room check reads one atomic that changes rarely; between two
//! publications a sender may see up to `PUBLISH_EVERY - 1` items fewer free
//! than there are, never more, so the queue never holds more than its capacity.
//!
//! Items have a weight ([`Weight`]): the capacity counts weights, so that a
//! whole batch body handed over by a sending thread (see `lanes`) counts as
//! the events it holds. An item is admitted while the queue holds less than its
//! capacity, so a heavy item can pass it by at most its own weight less one.
//!
//! [`Sender::kick`] wakes a waiting receiver without queueing anything: the
//! receiver's timed or untimed wait then returns
//! [`RecvTimeoutError::Timeout`] at once, so that it can look at work that
//! is not in the queue.

use std::collections::VecDeque;
use std::future::Future;
use std::task::{Poll, Waker};

// `std`'s types, or loom's models under `--cfg libhoney_loom` (tests only).
use crate::sync::model::{
    seq_cst_order, Arc, AtomicBool, AtomicUsize, Condvar, LockExt, Mutex, MutexGuard, Ordering,
};
use std::time::{Duration, Instant};

/// How often the receiver publishes its count of items taken.
const PUBLISH_EVERY: usize = 32;

/// What a queue's capacity counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unit {
    /// Events (an item standing for several counts as those).
    Events,
    /// Bytes of memory held (an estimate for items not yet encoded).
    Bytes,
}

/// How much of the queue's capacity an item takes.
pub(crate) trait Weight {
    /// 1 event unless the item stands for several (at least 1).
    fn weight(&self, _unit: Unit) -> usize {
        1
    }
}

struct Shared<T> {
    capacity: usize,
    unit: Unit,
    state: Mutex<State<T>>,
    /// Weight taken by the receiver (a running total, wrapping), as last
    /// published by it.
    taken: AtomicUsize,
    /// A copy of `State::pushed`, for a room check without the lock.
    pushed: AtomicUsize,
    /// A copy of `State::receiver_gone`, for a look without the lock.
    gone: AtomicBool,
    /// The receiver waits here for an item.
    readable: Condvar,
    /// Senders blocked on a full queue wait here until it is down to
    /// `low_water`.
    writable: Condvar,
    low_water: usize,
    /// A copy of `State::writers_waiting`, for the receiver to look at
    /// without the lock.
    writers: AtomicUsize,
}

struct State<T> {
    items: VecDeque<T>,
    /// Weight ever queued (a running total, wrapping).
    pushed: usize,
    receiver_waiting: bool,
    /// A sender kicked the receiver ([`Sender::kick`]) since it last waited.
    kicked: bool,
    /// The receiving task, when it awaits an item.
    receiver_waker: Option<Waker>,
    /// Sending tasks awaiting room (at most one entry per task).
    writer_wakers: Vec<Waker>,
    writers_waiting: usize,
    sender_gone: bool,
    receiver_gone: bool,
}

impl<T: Weight> Shared<T> {
    /// Weight queued as senders count it: every item pushed, less what the
    /// receiver has published as taken.
    fn queued(&self, s: &State<T>) -> usize {
        s.pushed.wrapping_sub(self.taken.load(Ordering::SeqCst))
    }

    /// Appends `item` under the lock `s` holds, then wakes a waiting receiver.
    fn admit(&self, mut s: MutexGuard<'_, State<T>>, item: T) {
        s.pushed = s.pushed.wrapping_add(item.weight(self.unit).max(1));
        self.pushed.store(s.pushed, Ordering::SeqCst);
        s.items.push_back(item);
        self.release_waking(s);
    }

    /// Releases the lock `s` holds, then wakes the receiver if it is waiting
    /// (woken under the lock, it would only wait for it).
    fn release_waking(&self, mut s: MutexGuard<'_, State<T>>) {
        let wake = s.receiver_waiting;
        let task = s.receiver_waker.take();
        drop(s);
        if wake {
            self.readable.notify_one();
        }
        if let Some(task) = task {
            task.wake();
        }
    }
}

/// A queue of at most `capacity` items' weight (at least 1), counted in `unit`.
pub(crate) fn bounded<T: Weight>(capacity: usize, unit: Unit) -> (Sender<T>, Receiver<T>) {
    let capacity = capacity.max(1);
    let shared = Arc::new(Shared {
        capacity,
        unit,
        low_water: capacity / 2,
        writers: AtomicUsize::new(0),
        writable: Condvar::new(),
        state: Mutex::new(State {
            items: VecDeque::new(),
            pushed: 0,
            receiver_waiting: false,
            kicked: false,
            receiver_waker: None,
            writer_wakers: Vec::new(),
            writers_waiting: 0,
            sender_gone: false,
            receiver_gone: false,
        }),
        taken: AtomicUsize::new(0),
        pushed: AtomicUsize::new(0),
        gone: AtomicBool::new(false),
        readable: Condvar::new(),
    });
    let receiver = Receiver {
        shared: Arc::clone(&shared),
        local: VecDeque::new(),
        taken: 0,
        unpublished: 0,
    };
    (Sender { shared }, receiver)
}

/// Why [`Sender::try_send`] gave the item back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TrySendError<T> {
    Full(T),
    Disconnected(T),
}

impl<T> TrySendError<T> {
    pub(crate) fn into_inner(self) -> T {
        match self {
            TrySendError::Full(t) | TrySendError::Disconnected(t) => t,
        }
    }
}

/// Why [`Receiver::try_recv`] returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TryRecvError {
    Empty,
    Disconnected,
}

/// Why a timed receive returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecvTimeoutError {
    Timeout,
    Disconnected,
}

/// The sending side; callable from any number of threads at once.
pub(crate) struct Sender<T> {
    shared: Arc<Shared<T>>,
}

impl<T: Weight> Sender<T> {
    /// Queues `item` if there is room; never waits (but for the lock, held by
    /// others for one `push_back` or one swap).
    pub(crate) fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        let sh = &*self.shared;
        let s = sh.state.lock_unpoisoned();
        if s.receiver_gone {
            return Err(TrySendError::Disconnected(item));
        }
        if sh.queued(&s) >= sh.capacity {
            return Err(TrySendError::Full(item));
        }
        sh.admit(s, item);
        Ok(())
    }

    /// Queues `item`, waiting for room as long as it takes; gives it back if
    /// the receiver is gone.
    ///
    /// A sender that finds the queue full sleeps until the receiver has taken
    /// it down to half its capacity (or, as a backstop, 10 ms have passed;
    /// then any free slot will do), and is woken once for that: polling (the
    /// fourth round's way) woke each of 4 blocked application threads every
    /// 100 µs, 16,000 sleeps and 28,500 thread switches per 1 M events
    /// against 900 and 10,000 with one thread (`perf stat`). Resuming at half
    /// rather than at the first free slot makes such episodes rare; the
    /// receiver still has half a queue of work when the senders wake.
    pub(crate) fn send_blocking(&self, item: T) -> Result<(), T> {
        let sh = &*self.shared;
        match self.wait_room_locked(sh.state.lock_unpoisoned(), &|| 0) {
            Some(s) => {
                sh.admit(s, item);
                Ok(())
            }
            None => Err(item),
        }
    }

    /// Waits, with the lock `s` holds, until the queue has room besides
    /// `held()` (weight kept elsewhere that counts against it); the lock
    /// back, or `None` if the receiver is gone.
    fn wait_room_locked<'a>(
        &'a self,
        mut s: MutexGuard<'a, State<T>>,
        held: &dyn Fn() -> usize,
    ) -> Option<MutexGuard<'a, State<T>>> {
        let sh = &*self.shared;
        loop {
            if s.receiver_gone {
                return None;
            }
            if sh.queued(&s).saturating_add(held()) < sh.capacity {
                return Some(s);
            }
            // Full. The count of waiting senders is raised before the last look
            // at `taken`, and the receiver publishes `taken` before it looks at
            // the count (both sequentially consistent): one of the two sees the
            // other. A receiver that sees the count takes the lock, which this
            // thread holds until it waits, so its wake-up is not lost. The
            // timeout is a backstop only.
            if sh.queued(&s) <= sh.low_water {
                // The queue is draining low and what is held elsewhere fills
                // the rest: no wake-up would come; the caller frees what it
                // holds (`Intake::ship_lanes`).
                return Some(s);
            }
            s.writers_waiting += 1;
            sh.writers.store(s.writers_waiting, Ordering::SeqCst);
            seq_cst_order();
            if sh.queued(&s) > sh.low_water {
                s = sh
                    .writable
                    .wait_timeout(s, Duration::from_millis(10))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            s.writers_waiting -= 1;
            sh.writers.store(s.writers_waiting, Ordering::SeqCst);
        }
    }

    /// Queues `item` whatever the room (for a body whose events were each
    /// admitted one by one); gives it back if the receiver is gone.
    pub(crate) fn force_send(&self, item: T) -> Result<(), T> {
        let sh = &*self.shared;
        let s = sh.state.lock_unpoisoned();
        if s.receiver_gone {
            return Err(item);
        }
        sh.admit(s, item);
        Ok(())
    }

    /// The capacity, in [`unit`](Self::unit)s.
    pub(crate) fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// What the capacity counts.
    pub(crate) fn unit(&self) -> Unit {
        self.shared.unit
    }

    /// Whether the receiver is gone (or closed).
    pub(crate) fn is_disconnected(&self) -> bool {
        self.shared.gone.load(Ordering::SeqCst)
    }

    /// Weight queued, as far as senders know; takes no lock.
    pub(crate) fn queued_approx(&self) -> usize {
        let sh = &*self.shared;
        sh.pushed
            .load(Ordering::SeqCst)
            .wrapping_sub(sh.taken.load(Ordering::SeqCst))
    }

    /// Whether the queue holds less than its capacity less `held` (weight
    /// kept elsewhere that counts against it), as far as senders know;
    /// takes no lock.
    pub(crate) fn has_room(&self, held: usize) -> bool {
        self.queued_approx().saturating_add(held) < self.shared.capacity
    }

    /// Waits until the queue has room besides `held()`, as
    /// [`send_blocking`](Self::send_blocking) waits, without queueing
    /// anything, or until the queue is down to half and `held()` alone
    /// fills the rest (then its holder must free it); false if the receiver
    /// is gone. (The same room [`has_room`](Self::has_room) looks for: a
    /// wait that looked for less would return while `has_room` still says
    /// no, and its caller spin.)
    pub(crate) fn wait_room(&self, held: &dyn Fn() -> usize) -> bool {
        self.wait_room_locked(self.shared.state.lock_unpoisoned(), held)
            .is_some()
    }

    /// Resolves once the queue has room (`true`), or the receiver is gone
    /// (`false`). A task that finds it full is woken once the receiver has
    /// taken it down to half, as a blocked thread is. Needs no runtime.
    pub(crate) fn room<'a>(
        &'a self,
        held: &'a (dyn Fn() -> usize + Sync),
    ) -> impl Future<Output = bool> + 'a {
        std::future::poll_fn(move |cx| {
            let sh = &*self.shared;
            let mut s = sh.state.lock_unpoisoned();
            if s.receiver_gone {
                return Poll::Ready(false);
            }
            if sh.queued(&s).saturating_add(held()) < sh.capacity {
                return Poll::Ready(true);
            }
            if !s.writer_wakers.iter().any(|w| w.will_wake(cx.waker())) {
                s.writer_wakers.push(cx.waker().clone());
                s.writers_waiting += 1;
                sh.writers.store(s.writers_waiting, Ordering::SeqCst);
            }
            // Counted before this last look at `taken` (the receiver
            // publishes `taken` before it looks at the count): one of the
            // two sees the other, as for a blocked thread.
            seq_cst_order();
            if sh.queued(&s).saturating_add(held()) < sh.capacity {
                return Poll::Ready(true);
            }
            Poll::Pending
        })
    }

    /// Weight queued and not yet taken by the receiver, as far as senders
    /// know: it may count up to `PUBLISH_EVERY - 1` taken as queued.
    pub(crate) fn len(&self) -> usize {
        let sh = &*self.shared;
        sh.queued(&sh.state.lock_unpoisoned())
    }

    /// Wakes the receiver if it is waiting, or makes its next wait return at
    /// once: its wait returns [`RecvTimeoutError::Timeout`]. Never waits but
    /// for the lock.
    pub(crate) fn kick(&self) {
        let mut s = self.shared.state.lock_unpoisoned();
        s.kicked = true;
        self.shared.release_waking(s);
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut s = self.shared.state.lock_unpoisoned();
        s.sender_gone = true;
        let task = s.receiver_waker.take();
        drop(s);
        self.shared.readable.notify_all();
        if let Some(task) = task {
            task.wake();
        }
    }
}

/// The receiving side, owned by one thread.
pub(crate) struct Receiver<T> {
    shared: Arc<Shared<T>>,
    /// Items taken from the senders' deque, not yet returned.
    local: VecDeque<T>,
    /// Weight returned (a running total, wrapping).
    taken: usize,
    /// Weight returned since `taken` was last published.
    unpublished: usize,
}

impl<T: Weight> Receiver<T> {
    /// The oldest item, if one is queued.
    pub(crate) fn try_recv(&mut self) -> Result<T, TryRecvError> {
        if let Some(item) = self.local.pop_front() {
            self.took(item.weight(self.shared.unit));
            return Ok(item);
        }
        let mut s = self.shared.state.lock_unpoisoned();
        if s.items.is_empty() {
            return Err(if s.sender_gone {
                TryRecvError::Disconnected
            } else {
                TryRecvError::Empty
            });
        }
        // Everything queued at once; the senders get the emptied deque.
        std::mem::swap(&mut s.items, &mut self.local);
        drop(s);
        match self.local.pop_front() {
            Some(item) => {
                self.took(item.weight(self.shared.unit));
                Ok(item)
            }
            None => Err(TryRecvError::Empty),
        }
    }

    fn took(&mut self, weight: usize) {
        let weight = weight.max(1);
        self.taken = self.taken.wrapping_add(weight);
        self.unpublished += weight;
        if self.local.is_empty() || self.unpublished >= PUBLISH_EVERY {
            self.unpublished = 0;
            let sh = &*self.shared;
            sh.taken.store(self.taken, Ordering::SeqCst);
            seq_cst_order();
            if sh.writers.load(Ordering::SeqCst) > 0 {
                let mut s = sh.state.lock_unpoisoned();
                let wake =
                    s.writers_waiting > 0 && s.pushed.wrapping_sub(self.taken) <= sh.low_water;
                let tasks = if wake {
                    let tasks = std::mem::take(&mut s.writer_wakers);
                    s.writers_waiting -= tasks.len();
                    sh.writers.store(s.writers_waiting, Ordering::SeqCst);
                    tasks
                } else {
                    Vec::new()
                };
                drop(s);
                if wake {
                    sh.writable.notify_all();
                }
                for t in tasks {
                    t.wake();
                }
            }
        }
    }

    /// The oldest item, waiting for one as long as it takes (`Http`'s
    /// batcher thread; `Tokio`'s batcher awaits instead).
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn recv(&mut self) -> Result<T, RecvTimeoutError> {
        self.recv_until(None)
    }

    /// The oldest item, waiting for one until `deadline`.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn recv_deadline(&mut self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.recv_until(Some(deadline))
    }

    fn recv_until(&mut self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        loop {
            match self.try_recv() {
                Ok(item) => return Ok(item),
                Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
                Err(TryRecvError::Empty) => {}
            }
            let mut s = self.shared.state.lock_unpoisoned();
            if !s.items.is_empty() {
                continue;
            }
            if std::mem::take(&mut s.kicked) {
                return Err(RecvTimeoutError::Timeout);
            }
            if s.sender_gone {
                return Err(RecvTimeoutError::Disconnected);
            }
            // A sender queues under the lock this thread holds until it waits,
            // and wakes it if it sees `receiver_waiting`: no wake-up is lost.
            s.receiver_waiting = true;
            let mut s = match deadline {
                None => self
                    .shared
                    .readable
                    .wait(s)
                    .unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        s.receiver_waiting = false;
                        return Err(RecvTimeoutError::Timeout);
                    }
                    self.shared
                        .readable
                        .wait_timeout(s, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
            s.receiver_waiting = false;
        }
    }

    /// The oldest item, awaited: resolves with an item, with
    /// [`RecvTimeoutError::Timeout`] after a [`Sender::kick`], or with
    /// [`RecvTimeoutError::Disconnected`]. Needs no runtime (the caller adds
    /// its own timer for a deadline).
    #[cfg(feature = "tokio")]
    pub(crate) fn recv_async(&mut self) -> impl Future<Output = Result<T, RecvTimeoutError>> + '_ {
        std::future::poll_fn(move |cx| {
            match self.try_recv() {
                Ok(item) => return Poll::Ready(Ok(item)),
                Err(TryRecvError::Disconnected) => {
                    return Poll::Ready(Err(RecvTimeoutError::Disconnected))
                }
                Err(TryRecvError::Empty) => {}
            }
            let mut s = self.shared.state.lock_unpoisoned();
            if !s.items.is_empty() {
                // Queued since the look: take it at the next poll, at once.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            if std::mem::take(&mut s.kicked) {
                return Poll::Ready(Err(RecvTimeoutError::Timeout));
            }
            if s.sender_gone {
                return Poll::Ready(Err(RecvTimeoutError::Disconnected));
            }
            // A sender queues under this lock and takes the waker: no
            // wake-up is lost.
            s.receiver_waker = Some(cx.waker().clone());
            Poll::Pending
        })
    }

    /// Weight queued and not yet returned (exact).
    #[cfg(all(test, not(libhoney_loom)))]
    pub(crate) fn len(&self) -> usize {
        let pushed = self.shared.state.lock_unpoisoned().pushed;
        pushed.wrapping_sub(self.taken)
    }

    /// Items (not weight) queued and not yet returned.
    pub(crate) fn items(&self) -> usize {
        self.local.len() + self.shared.state.lock_unpoisoned().items.len()
    }
}

impl<T> Receiver<T> {
    /// Refuses further items (senders get theirs back, waiting ones are
    /// released); what is queued can still be taken.
    pub(crate) fn close(&mut self) {
        let mut s = self.shared.state.lock_unpoisoned();
        s.receiver_gone = true;
        self.shared.gone.store(true, Ordering::SeqCst);
        let tasks = std::mem::take(&mut s.writer_wakers);
        drop(s);
        self.shared.writable.notify_all();
        for t in tasks {
            t.wake();
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.close();
    }
}

/// Model checking with loom (see `crate::sync::model` for how to run it).
/// For these small configurations, in every interleaving loom can produce
/// (lock orders, atomic orders, spurious and timed-out waits):
///
/// * `loom_a_blocked_sender_is_released_and_nothing_is_lost`: a sender
///   that finds a queue of one full waits, and is woken once the receiver
///   takes the item; both items arrive, in order (the hand-over of
///   `writers`, `taken` and the low-water mark loses no wake-up).
/// * `loom_a_kick_always_ends_the_receivers_wait`: a kick ends a wait
///   whether it comes before or during it.
/// * `loom_closing_the_receiver_releases_a_blocked_sender`: the sender
///   gets its item back.
///
/// `seq_cst_order` gives the model the total order of `SeqCst` accesses
/// that loom does not model on its own.
#[cfg(all(test, libhoney_loom))]
mod loom_models {
    use super::*;

    impl Weight for u32 {}

    #[test]
    fn loom_a_blocked_sender_is_released_and_nothing_is_lost() {
        loom::model(|| {
            let (tx, mut rx) = bounded::<u32>(1, Unit::Events);
            let tx = Arc::new(tx);
            assert_eq!(tx.try_send(0), Ok(()));
            let sender = {
                let tx = Arc::clone(&tx);
                loom::thread::spawn(move || tx.send_blocking(1))
            };
            assert_eq!(rx.recv(), Ok(0));
            assert_eq!(rx.recv(), Ok(1));
            assert_eq!(sender.join().unwrap(), Ok(()));
        });
    }

    #[test]
    fn loom_a_kick_always_ends_the_receivers_wait() {
        loom::model(|| {
            let (tx, mut rx) = bounded::<u32>(1, Unit::Events);
            let kicker = loom::thread::spawn(move || {
                tx.kick();
                tx
            });
            assert_eq!(rx.recv(), Err(RecvTimeoutError::Timeout));
            drop(kicker.join().unwrap());
        });
    }

    #[test]
    fn loom_closing_the_receiver_releases_a_blocked_sender() {
        loom::model(|| {
            let (tx, mut rx) = bounded::<u32>(1, Unit::Events);
            let tx = Arc::new(tx);
            assert_eq!(tx.try_send(0), Ok(()));
            let sender = {
                let tx = Arc::clone(&tx);
                loom::thread::spawn(move || tx.send_blocking(2))
            };
            rx.close();
            assert_eq!(sender.join().unwrap(), Err(2));
        });
    }
}

#[cfg(all(test, not(libhoney_loom)))]
mod tests {
    use super::*;

    fn bounded_events<T: Weight>(capacity: usize) -> (Sender<T>, Receiver<T>) {
        bounded(capacity, Unit::Events)
    }

    fn recv_timeout<T: Weight>(rx: &mut Receiver<T>, d: Duration) -> Result<T, RecvTimeoutError> {
        rx.recv_deadline(Instant::now() + d)
    }

    impl Weight for i32 {}
    impl Weight for u32 {}
    impl Weight for usize {}
    impl Weight for (usize, usize) {}

    /// An item standing for `.0` events.
    #[derive(Debug, PartialEq, Eq)]
    struct Heavy(usize);

    impl Weight for Heavy {
        fn weight(&self, _unit: Unit) -> usize {
            self.0
        }
    }

    #[test]
    fn capacity_counts_weight_and_a_heavy_item_needs_only_some_room() {
        let (tx, mut rx) = bounded_events::<Heavy>(100);
        tx.try_send(Heavy(60)).unwrap();
        // 40 free: a 50 still goes in, then nothing does.
        tx.try_send(Heavy(50)).unwrap();
        assert_eq!(tx.try_send(Heavy(1)), Err(TrySendError::Full(Heavy(1))));
        assert_eq!((tx.len(), rx.len(), rx.items()), (110, 110, 2));
        assert_eq!(rx.try_recv(), Ok(Heavy(60)));
        // Taking 60 at once is published at once.
        assert_eq!((tx.len(), rx.len(), rx.items()), (50, 50, 1));
        tx.try_send(Heavy(1)).unwrap();
        assert_eq!(rx.try_recv(), Ok(Heavy(50)));
        assert_eq!(rx.try_recv(), Ok(Heavy(1)));
        assert_eq!((tx.len(), rx.len(), rx.items()), (0, 0, 0));
    }

    #[test]
    fn a_kick_ends_one_wait_without_an_item() {
        let (tx, mut rx) = bounded_events::<u32>(4);
        // A kick before the wait: the next wait returns at once, once.
        tx.kick();
        assert_eq!(rx.recv(), Err(RecvTimeoutError::Timeout));
        let t = Instant::now();
        assert_eq!(
            recv_timeout(&mut rx, Duration::from_millis(20)),
            Err(RecvTimeoutError::Timeout)
        );
        assert!(t.elapsed() >= Duration::from_millis(20));
        // A kick during an untimed wait wakes it.
        let tx = Arc::new(tx);
        let kicker = {
            let tx = Arc::clone(&tx);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(30));
                tx.kick();
            })
        };
        assert_eq!(rx.recv(), Err(RecvTimeoutError::Timeout));
        kicker.join().unwrap();
        // Items still come first.
        tx.kick();
        tx.try_send(5).unwrap();
        assert_eq!(rx.recv(), Ok(5));
        assert_eq!(rx.recv(), Err(RecvTimeoutError::Timeout));
    }

    #[test]
    fn keeps_order_and_reports_full_at_capacity() {
        let (tx, mut rx) = bounded_events(3);
        for i in 0..3 {
            tx.try_send(i).unwrap();
        }
        assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
        assert_eq!((tx.len(), rx.len()), (3, 3));
        assert_eq!(rx.try_recv(), Ok(0));
        assert_eq!(rx.len(), 2);
        // The receiver's deque ran empty only after the last item: before it,
        // the senders may still count the taken item as queued.
        tx.try_send(3).unwrap_err();
        assert_eq!((rx.try_recv(), rx.try_recv()), (Ok(1), Ok(2)));
        tx.try_send(3).unwrap();
        tx.try_send(4).unwrap();
        assert_eq!((rx.try_recv(), rx.try_recv()), (Ok(3), Ok(4)));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        assert_eq!((tx.len(), rx.len()), (0, 0));
    }

    #[test]
    fn room_is_published_every_few_items() {
        let cap = PUBLISH_EVERY * 3;
        let (tx, mut rx) = bounded_events(cap);
        for i in 0..cap {
            tx.try_send(i).unwrap();
        }
        for i in 0..PUBLISH_EVERY {
            assert_eq!(rx.try_recv(), Ok(i));
        }
        // Exactly PUBLISH_EVERY slots free, and seen as free.
        assert_eq!(tx.len(), cap - PUBLISH_EVERY);
        for i in 0..PUBLISH_EVERY {
            tx.try_send(cap + i).unwrap();
        }
        assert!(matches!(tx.try_send(0), Err(TrySendError::Full(0))));
        let got: Vec<usize> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(
            got,
            (PUBLISH_EVERY..cap + PUBLISH_EVERY).collect::<Vec<_>>()
        );
    }

    #[test]
    fn disconnects_both_ways() {
        let (tx, mut rx) = bounded_events::<u32>(4);
        tx.try_send(1).unwrap();
        drop(tx);
        // What was queued is still delivered, then the end.
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
        assert_eq!(
            recv_timeout(&mut rx, Duration::from_secs(5)),
            Err(RecvTimeoutError::Disconnected)
        );

        let (tx, rx) = bounded_events::<u32>(4);
        drop(rx);
        assert_eq!(tx.try_send(1), Err(TrySendError::Disconnected(1)));
        assert_eq!(tx.send_blocking(2), Err(2));
        assert!(!tx.wait_room(&|| 0));
    }

    #[test]
    fn timed_waits() {
        let (tx, mut rx) = bounded_events::<u32>(1);
        let t = Instant::now();
        assert_eq!(
            recv_timeout(&mut rx, Duration::from_millis(20)),
            Err(RecvTimeoutError::Timeout)
        );
        assert!(t.elapsed() >= Duration::from_millis(20));
        tx.try_send(1).unwrap();
        assert!(!tx.has_room(0));
        assert_eq!(rx.recv(), Ok(1));
        assert!(tx.has_room(0));
        assert!(!tx.has_room(1), "weight held elsewhere counts");
    }

    #[test]
    fn a_waiting_receiver_is_woken() {
        let (tx, mut rx) = bounded_events::<u32>(4);
        let reader = std::thread::spawn(move || {
            let first = rx.recv();
            let second = rx.recv_deadline(Instant::now() + Duration::from_secs(10));
            let end = rx.recv();
            (first, second, end)
        });
        std::thread::sleep(Duration::from_millis(20));
        tx.try_send(7).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        tx.try_send(8).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        drop(tx);
        let (first, second, end) = reader.join().unwrap();
        assert_eq!(first, Ok(7));
        assert_eq!(second, Ok(8));
        assert_eq!(end, Err(RecvTimeoutError::Disconnected));
    }

    #[test]
    fn a_blocked_sender_waits_while_the_queue_is_full() {
        const CAP: usize = PUBLISH_EVERY * 4;
        let (tx, mut rx) = bounded_events::<usize>(CAP);
        for i in 0..CAP {
            tx.send_blocking(i).unwrap();
        }
        let tx = Arc::new(tx);
        let sender = {
            let tx = Arc::clone(&tx);
            std::thread::spawn(move || tx.send_blocking(CAP))
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!sender.is_finished(), "the queue is full");
        // Half taken: woken (the 10 ms backstop would also let it in once
        // there is any room).
        for i in 0..CAP / 2 {
            assert_eq!(rx.try_recv(), Ok(i));
        }
        assert_eq!(sender.join().unwrap(), Ok(()));
        let rest: Vec<usize> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(rest, (CAP / 2..=CAP).collect::<Vec<_>>());

        // A receiver that goes away releases a blocked sender with its item.
        for i in 0..CAP {
            tx.send_blocking(i).unwrap();
        }
        let sender = {
            let tx = Arc::clone(&tx);
            std::thread::spawn(move || tx.send_blocking(9))
        };
        std::thread::sleep(Duration::from_millis(20));
        drop(rx);
        assert_eq!(sender.join().unwrap(), Err(9));
    }

    /// Four senders (two waiting for room, two retrying), one receiver, a
    /// small queue: every item arrives once, in each sender's order, and the
    /// queue never holds more than its capacity.
    #[test]
    fn many_senders_one_receiver() {
        const PER: usize = 20_000;
        let (tx, mut rx) = bounded_events::<(usize, usize)>(64);
        let tx = Arc::new(tx);
        let senders: Vec<_> = (0..4)
            .map(|w| {
                let tx = Arc::clone(&tx);
                std::thread::spawn(move || {
                    for i in 0..PER {
                        let mut item = (w, i);
                        if w % 2 == 0 {
                            tx.send_blocking(item).expect("receiver gone");
                            continue;
                        }
                        loop {
                            match tx.try_send(item) {
                                Ok(()) => break,
                                Err(TrySendError::Full(t)) => {
                                    item = t;
                                    std::thread::yield_now();
                                }
                                Err(TrySendError::Disconnected(_)) => panic!("receiver gone"),
                            }
                        }
                    }
                })
            })
            .collect();
        drop(tx);
        let mut next = [0usize; 4];
        let mut max_len = 0;
        loop {
            max_len = max_len.max(rx.len());
            match recv_timeout(&mut rx, Duration::from_secs(30)) {
                Ok((w, i)) => {
                    assert_eq!(i, next[w], "sender {w} out of order");
                    next[w] += 1;
                }
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("stalled at {next:?}"),
            }
        }
        for s in senders {
            s.join().unwrap();
        }
        assert_eq!(next, [PER; 4]);
        assert!(max_len <= 64, "queue held {max_len} items");
    }
}
