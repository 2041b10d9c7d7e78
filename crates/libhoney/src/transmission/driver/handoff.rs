//! A bounded first-in, first-out hand-over from one thread to a pool of
//! threads that sleep while it is empty: how the Http batcher gives request
//! bodies to its sender threads.
//!
//! Why not a crossbeam channel: a thread waiting on an empty channel first
//! spins and calls `sched_yield` several times before it sleeps, and sender
//! threads wait after every request; across the ten senders of the end-to-end
//! benchmark that was about 5,000 yields (each a system call, most a thread
//! switch) per 1 M events. Here a waiting thread sleeps on a condition
//! variable at once, and is woken only if it is needed.

use std::collections::VecDeque;

// `std`'s types, or loom's models under `--cfg libhoney_loom` (tests only).
use crate::sync::model::{Condvar, LockExt, Mutex};

pub(crate) struct Handoff<T> {
    state: Mutex<State<T>>,
    /// Takers wait here for an item.
    filled: Condvar,
    /// The giver waits here for room.
    emptied: Condvar,
    capacity: usize,
}

struct State<T> {
    items: VecDeque<T>,
    closed: bool,
    takers_waiting: usize,
    givers_waiting: usize,
}

impl<T> Handoff<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Handoff {
            state: Mutex::new(State {
                items: VecDeque::with_capacity(capacity),
                closed: false,
                takers_waiting: 0,
                givers_waiting: 0,
            }),
            filled: Condvar::new(),
            emptied: Condvar::new(),
            capacity,
        }
    }

    /// Queues `item`, waiting while the queue is full. After [`close`](Self::close)
    /// gives the item back.
    pub(crate) fn give(&self, item: T) -> Result<(), T> {
        let mut s = self.state.lock_unpoisoned();
        while s.items.len() >= self.capacity && !s.closed {
            s.givers_waiting += 1;
            s = self.emptied.wait(s).unwrap_or_else(|e| e.into_inner());
            s.givers_waiting -= 1;
        }
        if s.closed {
            return Err(item);
        }
        s.items.push_back(item);
        let wake = s.takers_waiting > 0;
        // Woken after the lock is released, the taker does not wait for it.
        drop(s);
        if wake {
            self.filled.notify_one();
        }
        Ok(())
    }

    /// Takes the oldest item, waiting while there is none. `None` once the
    /// queue is closed and empty.
    pub(crate) fn take(&self) -> Option<T> {
        let mut s = self.state.lock_unpoisoned();
        loop {
            if let Some(item) = s.items.pop_front() {
                let wake = s.givers_waiting > 0;
                drop(s);
                if wake {
                    self.emptied.notify_one();
                }
                return Some(item);
            }
            if s.closed {
                return None;
            }
            s.takers_waiting += 1;
            s = self.filled.wait(s).unwrap_or_else(|e| e.into_inner());
            s.takers_waiting -= 1;
        }
    }

    /// How many items wait.
    pub(crate) fn len(&self) -> usize {
        self.state.lock_unpoisoned().items.len()
    }

    /// No more items will come: takers get what is left, then `None`; a giver
    /// gets its item back.
    pub(crate) fn close(&self) {
        self.state.lock_unpoisoned().closed = true;
        self.filled.notify_all();
        self.emptied.notify_all();
    }
}

/// Model checking with loom (see `crate::sync::model` for how to run it):
/// with a hand-off of one place, a giver of two items and a taker that
/// sleeps while it is empty, every interleaving delivers each item exactly
/// once and in order, the giver waiting for room is always woken, and the
/// taker always ends after `close` (loom fails a model in which every
/// thread is blocked, so no wake-up is lost).
#[cfg(all(test, libhoney_loom))]
mod loom_models {
    use super::*;
    use loom::sync::Arc;

    #[test]
    fn loom_items_are_taken_once_in_order_and_the_taker_ends_after_close() {
        loom::model(|| {
            let h = Arc::new(Handoff::new(1));
            let taker = {
                let h = Arc::clone(&h);
                loom::thread::spawn(move || {
                    let mut got = Vec::new();
                    while let Some(i) = h.take() {
                        got.push(i);
                    }
                    got
                })
            };
            assert_eq!(h.give(1), Ok(()));
            assert_eq!(h.give(2), Ok(()));
            h.close();
            assert_eq!(h.give(3), Err(3), "refused after close");
            assert_eq!(taker.join().unwrap(), vec![1, 2]);
        });
    }
}

#[cfg(all(test, not(libhoney_loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn every_item_taken_once_in_order_per_giver_and_takers_end_after_close() {
        let h = Arc::new(Handoff::new(3));
        let takers: Vec<_> = (0..4)
            .map(|_| {
                let h = Arc::clone(&h);
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    while let Some(i) = h.take() {
                        got.push(i);
                    }
                    got
                })
            })
            .collect();
        for i in 0..10_000u32 {
            h.give(i).unwrap();
        }
        h.close();
        let mut all: Vec<u32> = Vec::new();
        for t in takers {
            let got = t.join().unwrap();
            // One giver: each taker sees its items in the order given.
            assert!(got.windows(2).all(|w| w[0] < w[1]));
            all.extend(got);
        }
        all.sort_unstable();
        assert_eq!(all, (0..10_000).collect::<Vec<_>>());
        assert_eq!(h.give(7), Err(7));
    }

    #[test]
    fn a_giver_waits_for_room_and_close_releases_it() {
        let h = Arc::new(Handoff::new(2));
        h.give(1).unwrap();
        h.give(2).unwrap();
        assert_eq!(h.len(), 2);
        let giver = {
            let h = Arc::clone(&h);
            std::thread::spawn(move || h.give(3))
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!giver.is_finished(), "the queue is full: the giver waits");
        assert_eq!(h.take(), Some(1));
        assert_eq!(giver.join().unwrap(), Ok(()));
        assert_eq!(h.len(), 2);

        let giver = {
            let h = Arc::clone(&h);
            std::thread::spawn(move || h.give(4))
        };
        std::thread::sleep(Duration::from_millis(50));
        h.close();
        assert_eq!(giver.join().unwrap(), Err(4));
        assert_eq!(h.take(), Some(2));
        assert_eq!(h.take(), Some(3));
        assert_eq!(h.take(), None);
    }
}
