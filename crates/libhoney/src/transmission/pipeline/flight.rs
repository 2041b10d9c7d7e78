//! Batches between "ready" and "answered": what flush and close wait for, and
//! the guarantee that each batch's events are answered exactly once.
//!
//! Every batch the batcher makes ready is registered here with its events'
//! metadata before any driver sees it, and travels as a [`Claim`]. Whoever
//! answers first takes the metadata out and answers: the driver with the
//! outcome of its requests, a close that gives up ([`Flight::abandon`]) with
//! a transport error, or the claim's own `Drop` (a task dropped by a runtime
//! that shut down, a thread that panicked). The others find nothing left.
//! So no event is answered twice, and none is left without an answer.

use crate::sync::LockExt;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::answer::{answer_batch, Outcome};
use super::signal::{Signal, Stop};
use crate::response::{Metadata, Responder};

/// One batch's events, answered at most once.
struct Ticket {
    metas: Mutex<Option<Vec<Option<Metadata>>>>,
    /// How its last attempt failed, while it waits to try again: what a
    /// close that gives up answers its events with.
    last: Mutex<Option<Outcome>>,
}

/// The registry of batches not yet answered, and the close's give-up switch.
pub(crate) struct Flight {
    responder: Responder,
    /// Batches made ready and not yet answered, by sequence number.
    open: Mutex<BTreeMap<u64, Arc<Ticket>>>,
    /// Notified whenever a batch is answered.
    settled: Signal,
    abandoned: AtomicBool,
    stop: Stop,
}

/// A ready batch's right to answer its events (see the module docs).
pub(crate) struct Claim {
    flight: Arc<Flight>,
    seq: u64,
    ticket: Arc<Ticket>,
}

impl Flight {
    pub(crate) fn new(responder: Responder) -> Arc<Flight> {
        Arc::new(Flight {
            responder,
            open: Mutex::new(BTreeMap::new()),
            settled: Signal::default(),
            abandoned: AtomicBool::new(false),
            stop: Stop::default(),
        })
    }

    pub(crate) fn responder(&self) -> &Responder {
        &self.responder
    }

    /// Registers batch `seq` with its events' metadata.
    pub(crate) fn begin(self: &Arc<Self>, seq: u64, metas: Vec<Option<Metadata>>) -> Claim {
        let ticket = Arc::new(Ticket {
            metas: Mutex::new(Some(metas)),
            last: Mutex::new(None),
        });
        self.open.lock_unpoisoned().insert(seq, Arc::clone(&ticket));
        Claim {
            flight: Arc::clone(self),
            seq,
            ticket,
        }
    }

    /// Answers `ticket`'s events with `outcome`, unless they were answered.
    fn settle(&self, seq: u64, ticket: &Ticket, outcome: Outcome, duration: Duration) {
        let metas = ticket.metas.lock_unpoisoned().take();
        if let Some(metas) = metas {
            answer_batch(&self.responder, metas, outcome, duration);
        }
        self.open.lock_unpoisoned().remove(&seq);
        self.settled.notify();
    }

    /// Whether no batch numbered `upto` or lower is unanswered.
    #[cfg(feature = "tokio")]
    pub(crate) fn settled_upto(&self, upto: u64) -> bool {
        self.open
            .lock_unpoisoned()
            .first_key_value()
            .is_none_or(|(&first, _)| first > upto)
    }

    /// Blocks until no batch numbered `upto` or lower is unanswered; false if
    /// `deadline` passed first.
    pub(crate) fn wait_upto(&self, upto: u64, deadline: Instant) -> bool {
        let open = self.open.lock_unpoisoned();
        self.settled
            .wait(open, deadline, |open| {
                open.first_key_value()
                    .is_none_or(|(&first, _)| first > upto)
                    .then_some(())
            })
            .is_some()
    }

    /// Resolves once no batch numbered `upto` or lower is unanswered.
    #[cfg(feature = "tokio")]
    pub(crate) fn upto(&self, upto: u64) -> impl std::future::Future<Output = ()> + '_ {
        self.settled
            .until(move || self.settled_upto(upto).then_some(()))
    }

    /// Whether a close gave up: retry nothing, answer everything at once.
    pub(crate) fn abandoned(&self) -> bool {
        self.abandoned.load(Ordering::SeqCst)
    }

    /// Gives up (a close ran out of time): retries stop, and every batch not
    /// yet answered is answered now, with how its last attempt failed (a
    /// batch waiting to try again) or a transport error saying the client
    /// was closed first; the requests still running find their events
    /// answered.
    pub(crate) fn abandon(&self) {
        self.abandoned.store(true, Ordering::SeqCst);
        self.stop.fire();
        let open = std::mem::take(&mut *self.open.lock_unpoisoned());
        for (seq, ticket) in open {
            let outcome = ticket.last.lock_unpoisoned().take().unwrap_or_else(|| {
                let why =
                    "the client was closed (its close timed out) before the batch was answered";
                Outcome::Abandoned(why.into())
            });
            self.settle(seq, &ticket, outcome, Duration::ZERO);
        }
        self.settled.notify();
    }

    /// Sleeps for a retry delay; false if a close gave up (before or
    /// meanwhile). `Http`'s sender threads; `Tokio` awaits instead.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn sleep(&self, d: Duration) -> bool {
        self.stop.sleep(d) && !self.abandoned()
    }

    /// Resolves once a close gives up (for async retry sleeps to race).
    #[cfg(feature = "tokio")]
    pub(crate) fn given_up(&self) -> impl std::future::Future<Output = ()> + '_ {
        self.stop.wait_fired()
    }
}

impl Claim {
    /// How many events the batch holds (0 once answered).
    pub(crate) fn events(&self) -> usize {
        self.ticket
            .metas
            .lock_unpoisoned()
            .as_ref()
            .map_or(0, Vec::len)
    }

    /// Notes how the last attempt failed, before waiting to try again.
    pub(crate) fn retrying(&self, failed: Outcome) {
        *self.ticket.last.lock_unpoisoned() = Some(failed);
    }

    /// Whether the events were answered already (a close gave up).
    pub(crate) fn answered(&self) -> bool {
        self.ticket.metas.lock_unpoisoned().is_none()
    }

    /// Answers the batch's events with `outcome` (nothing if they were
    /// answered already). May block while the response queue is full, with
    /// `block_on_response`.
    pub(crate) fn answer(self, outcome: Outcome, duration: Duration) {
        self.flight
            .settle(self.seq, &self.ticket, outcome, duration);
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if self.answered() {
            // Answered (by `answer`, or a close that gave up): make sure the
            // registry forgets it.
            if self
                .flight
                .open
                .lock_unpoisoned()
                .remove(&self.seq)
                .is_some()
            {
                self.flight.settled.notify();
            }
            return;
        }
        // Dropped unanswered: a runtime dropped the task holding it, or a
        // thread panicked. With `block_on_response` the answer may wait for
        // room, so it goes from a thread of its own rather than block
        // whatever is dropping this.
        let why = "the transmission stopped before the batch was answered (its runtime shut down)";
        let (flight, seq, ticket) = (Arc::clone(&self.flight), self.seq, Arc::clone(&self.ticket));
        let run =
            move || flight.settle(seq, &ticket, Outcome::Abandoned(why.into()), Duration::ZERO);
        if self.flight.responder.blocks() {
            let spawned = std::thread::Builder::new()
                .name("libhoney-answer".into())
                .spawn(run);
            if let Err(e) = spawned {
                log::warn!(target: "libhoney", "could not start a thread to answer a dropped batch: {e}");
            }
        } else {
            run();
        }
    }
}
