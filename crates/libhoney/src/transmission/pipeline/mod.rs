//! The runtime-independent core of the HTTP transmissions: everything
//! between `send` and the wire, and between an answer and the responses,
//! with no I/O, no threads of its own and no async runtime. Both drivers
//! (`driver::threads`, behind [`Http`](super::Http), and `driver::tokio`,
//! behind `Tokio`) are built on it, so every rule below is written once.
//!
//! The path of an event, by file:
//!
//! | stage | file | what |
//! |---|---|---|
//! | intake | this file ([`Intake`]) | `send`: closed? lanes or queue? room? (overflow, or wait for room: blocking or async) |
//! | queue | [`queue`] | the bounded pending queue (a body weighs its events) |
//! | lanes | [`lanes`] | under load, `send` encodes straight into shared batch bodies |
//! | batcher | [`engine`], [`batch`], [`backlog`] | the batcher's state machine: rounds, batching by destination, size rules, timers, flush and close markers |
//! | compress | [`compress`] | zstd / gzip, once per batch |
//! | flight | [`flight`] | batches registered until answered: flush/close waits, exactly one answer per event |
//! | retry | [`retry`] | after each attempt: try again after D, or done |
//! | answer | [`answer`] | statuses → one response per event, with bounded texts |
//! | waiting | [`signal`] | condition variables and wakers: the same state waited for by threads and awaited by tasks |
//!
//! A driver starts the batcher loop (a thread, or a task) around
//! [`Engine::step`], hands each ready batch to a sender (a thread, or a
//! task), and each sender loops around [`Retries::after`] with its HTTP
//! client, then answers through the batch's [`Claim`](flight::Claim).

use crate::sync::LockExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub(crate) mod answer;
pub(crate) mod backlog;
pub(crate) mod batch;
pub(crate) mod compress;
pub(crate) mod engine;
pub(crate) mod flight;
pub(crate) mod lanes;
pub(crate) mod queue;
pub(crate) mod retry;
pub(crate) mod signal;
#[cfg(test)]
mod tests;

pub(crate) use self::answer::{content_type, max_answer_bytes, Outcome};
pub(crate) use self::batch::{BatchSettings, OpenBatch, ReadyBatch};
pub(crate) use self::engine::{Engine, Step, Wait};
pub(crate) use self::flight::Flight;
pub(crate) use self::retry::{Attempt, FailureKind, Next, Retries, RetryPolicy};
pub(crate) use self::signal::{deadline_after, until, Answered, Reply};

use self::backlog::Behind;
use self::batch::Batcher;
use self::compress::Compressor;
use self::lanes::Lanes;
use self::signal::ReplyTx;
use std::time::{Duration, Instant};

use crate::config::{Config, EncodeOn};
use crate::error::{CloseError, FlushError};
pub(crate) use crate::metrics::Sharded;
use crate::response::{Responder, Response, ResponseError, TransportError, TransportErrorKind};
use crate::transmission::{QueuedEvent, SendFuture};

/// A transport error of kind `Closed`: the event was not sent because the
/// client or its transmission was closed (or stopped) first.
pub(crate) fn closed_error(message: &str) -> ResponseError {
    ResponseError::Transport(TransportError::new(TransportErrorKind::Closed, message))
}

/// The answer to an event handed to a transmission that has stopped.
fn stopped() -> ResponseError {
    closed_error("the transmission has stopped")
}

/// What goes through the pending queue.
pub(crate) enum Msg {
    Event(QueuedEvent),
    /// A whole body a lane filled.
    Body(Box<OpenBatch>),
    Flush(ReplyTx),
    Close(ReplyTx),
}

impl queue::Weight for Msg {
    /// Counted in events, a body is the events it holds. In bytes, an event
    /// handed over as it is weighs [`event_bytes`], a body its encoded bytes
    /// and its events' metadata slots.
    fn weight(&self, unit: queue::Unit) -> usize {
        match (self, unit) {
            (Msg::Body(b), queue::Unit::Events) => b.count(),
            (Msg::Body(b), queue::Unit::Bytes) => body_bytes(b),
            (Msg::Event(ev), queue::Unit::Bytes) => event_bytes(ev),
            _ => 1,
        }
    }
}

/// What an event waiting as it is weighs against the memory budget: an
/// estimate of the event and its own fields (not its strings' contents).
pub(crate) fn event_bytes(ev: &QueuedEvent) -> usize {
    128 + 64 * ev.fields.own.len()
}

/// What a body filled by lanes weighs against the memory budget: the
/// memory its buffer holds (not only what it filled), and its events'
/// metadata slots.
pub(crate) fn body_bytes(b: &OpenBatch) -> usize {
    b.body.capacity() + 16 * b.count()
}

/// The queue length the batcher's rhythm is tuned for, when the queue is
/// bounded by memory (see `Config::pending_work_capacity`).
const ROUND_EVENTS: usize = 2048;

impl Msg {
    /// Calls `fail` with the metadata of every event the message holds.
    pub(crate) fn fail_each(self, fail: &mut dyn FnMut(Option<crate::response::Metadata>)) {
        match self {
            Msg::Event(mut ev) => fail(ev.take_metadata()),
            Msg::Body(b) => b.metas.into_iter().for_each(fail),
            Msg::Flush(_) | Msg::Close(_) => {}
        }
    }

    /// Answers every event the message holds with `error`.
    fn fail(self, responder: &Responder, error: ResponseError) {
        let mut responses = Vec::new();
        self.fail_each(&mut |m| responses.push(Response::failure(m, error.clone())));
        responder.respond_all(responses);
    }
}

/// State shared by the application side, the batcher and the senders.
pub(crate) struct Core {
    pub(crate) flight: Arc<Flight>,
    /// Set by a close: later sends are answered at once.
    pub(crate) closed: AtomicBool,
    /// `send` calls in progress. A close waits for it to reach 0 before its
    /// last look at the queue, so that an event handed over by a `send` that
    /// saw the transmission still open is never left behind.
    pub(crate) sending: Sharded,
    /// Whether the batcher is behind (for `EncodeOn::Adaptive`).
    pub(crate) behind: Behind,
}

impl Core {
    pub(crate) fn responder(&self) -> &Responder {
        self.flight.responder()
    }

    /// Events accepted and not yet answered.
    pub(crate) fn pending(&self) -> usize {
        self.responder().metrics().outstanding()
    }

    /// What a flush (blocking or async) decides before it waits: `Closed`
    /// after a close, `Ok(false)` when no event waits for its answer.
    pub(crate) fn needs_flush(&self) -> Result<bool, FlushError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(FlushError::Closed);
        }
        Ok(self.pending() > 0)
    }

    /// The error of a flush that ran out of `timeout`.
    pub(crate) fn flush_timed_out(&self, timeout: Duration) -> FlushError {
        FlushError::Timeout {
            timeout,
            pending: self.pending(),
        }
    }

    /// A close gives up (blocking or async): every batch not yet answered is
    /// answered now (see [`Flight::abandon`]). Returns how many events were
    /// still without an answer, for its error.
    pub(crate) fn give_up(&self) -> usize {
        let pending = self.pending();
        self.flight.abandon();
        pending
    }

    /// Waits (looking every millisecond) until every accepted event is
    /// answered; false if `deadline` passed first.
    pub(crate) fn all_answered(&self, deadline: Instant) -> bool {
        loop {
            if self.pending() == 0 {
                return true;
            }
            let left = until(deadline);
            if left.is_zero() {
                return false;
            }
            std::thread::sleep(left.min(Duration::from_millis(1)));
        }
    }
}

/// A close's two deadlines: until the first it waits for delivery; then,
/// if it must give up, it has until the second for the batcher to answer
/// what it still holds (a tenth of the timeout, at most 250 ms).
pub(crate) fn close_deadlines(timeout: Duration) -> (Instant, Instant) {
    let deadline = deadline_after(timeout);
    let grace = (timeout / 10).min(Duration::from_millis(250));
    (deadline.checked_sub(grace).unwrap_or(deadline), deadline)
}

/// When `send` encodes into a lane (`Config::encode_on`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum UseLanes {
    Never,
    WhileBehind,
    Always,
}

/// How a `send` that must wait for room blocks its thread: as it is (a
/// plain thread), or in a way its runtime allows (`block_in_place` on a
/// tokio worker). False, without running `wait`, where no wait is possible
/// (the thread of a current-thread runtime that the batcher needs).
pub(crate) type Block = fn(&mut dyn FnMut()) -> bool;

/// Blocks as it is (`Http`'s threads).
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) fn block_plainly(wait: &mut dyn FnMut()) -> bool {
    wait();
    true
}

/// The application's side: what `send` does.
pub(crate) struct Intake {
    tx: queue::Sender<Msg>,
    lanes: Arc<Lanes>,
    use_lanes: UseLanes,
    block_on_send: bool,
    block: Block,
    /// Whether the warning that a send could not wait was logged.
    warned: AtomicBool,
    /// The first close's reply.
    close_reply: Mutex<Option<Arc<Reply>>>,
    core: Arc<Core>,
}

/// Builds the pipeline of one transmission: its application side, its
/// batcher, and the state they share.
pub(crate) fn build(
    config: &Config,
    responder: Responder,
    block: Block,
) -> (Intake, Engine, Arc<Core>) {
    let flight = Flight::new(responder);
    let core = Arc::new(Core {
        flight: Arc::clone(&flight),
        closed: AtomicBool::new(false),
        sending: Sharded::default(),
        behind: Behind::default(),
    });
    let (tx, rx) = match config.pending_work_capacity {
        Some(n) => queue::bounded(n, queue::Unit::Events),
        None => queue::bounded(config.max_pending_bytes, queue::Unit::Bytes),
    };
    let rhythm = config.pending_work_capacity.unwrap_or(ROUND_EVENTS);
    let settings = BatchSettings::from_config(config);
    let lanes = Arc::new(Lanes::new(settings.clone()).bounded_by(tx.capacity(), tx.unit()));
    let compressor = Compressor::new(
        config.settings().compression(),
        config.settings().compression_level(),
    );
    let batcher = Batcher::new(settings, compressor, flight);
    let use_lanes = match config.encode_on {
        EncodeOn::Batcher => UseLanes::Never,
        EncodeOn::Adaptive => UseLanes::WhileBehind,
        EncodeOn::Send => UseLanes::Always,
    };
    let engine = Engine::new(rx, rhythm, batcher, Arc::clone(&lanes), Arc::clone(&core));
    let intake = Intake {
        tx,
        lanes,
        use_lanes,
        block_on_send: config.block_on_send,
        block,
        warned: AtomicBool::new(false),
        close_reply: Mutex::new(None),
        core: Arc::clone(&core),
    };
    (intake, engine, core)
}

/// Decrements `sending` when dropped (also when an async send is dropped
/// while it waits).
struct Counted<'a>(&'a Sharded);

impl<'a> Counted<'a> {
    fn new(sending: &'a Sharded) -> Self {
        // SeqCst pairs with the close: either the send sees the transmission
        // closed, or the close sees it counted here and waits for its event.
        sending.add(1, Ordering::SeqCst);
        Counted(sending)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.sub(1, Ordering::SeqCst);
    }
}

impl Intake {
    fn respond(&self, mut ev: QueuedEvent, error: ResponseError) {
        self.core
            .responder()
            .respond(Response::failure(ev.take_metadata(), error));
    }

    /// Whether `send` encodes into a lane now.
    fn lane(&self) -> bool {
        match self.use_lanes {
            UseLanes::Never => false,
            UseLanes::WhileBehind => self.core.behind.get(),
            UseLanes::Always => true,
        }
    }

    /// Hands `ev` over (to the queue, or into a lane), or answers it: never
    /// waits (but for a lane's or the queue's lock). Gives it back if the
    /// queue is full.
    fn hand_over(&self, ev: QueuedEvent) -> Result<(), QueuedEvent> {
        if self.core.closed.load(Ordering::SeqCst) {
            self.respond(ev, closed_error("the transmission is closed"));
            return Ok(());
        }
        if !self.lane() {
            return match self.tx.try_send(Msg::Event(ev)) {
                Ok(()) => Ok(()),
                Err(queue::TrySendError::Full(Msg::Event(ev))) => Err(ev),
                Err(e) => {
                    let stopped = stopped();
                    e.into_inner().fail(self.core.responder(), stopped);
                    Ok(())
                }
            };
        }
        // Each event is admitted on its own, against the queue and the
        // events lanes hold: a full queue refuses (or holds back) this event,
        // never a whole body of them.
        if !self.tx.has_room(self.lanes_held()) {
            return Err(ev);
        }
        let pushed = self.lanes.push(ev);
        if let Some(r) = pushed.refused {
            self.core.responder().respond(r);
        }
        if self.tx.is_disconnected() {
            // The batcher is gone (its runtime shut down) and will not take
            // the lanes' bodies: answer their events now.
            self.ship_lanes();
        }
        for body in pushed.ship {
            if let Err(msg) = self.tx.force_send(Msg::Body(Box::new(body))) {
                let stopped = stopped();
                msg.fail(self.core.responder(), stopped);
            }
        }
        if pushed.opened {
            // The batcher may be waiting with no deadline: it must learn
            // this body's.
            self.tx.kick();
        }
        Ok(())
    }

    /// `send`: hands the event over; if the queue is full, answers it with
    /// `QueueOverflow`, or with `block_on_send` waits for room (through the
    /// driver's [`Block`]).
    pub(crate) fn send(&self, ev: QueuedEvent) {
        let _counted = Counted::new(&self.core.sending);
        let mut ev = match self.hand_over(ev) {
            Ok(()) => return,
            Err(ev) => ev,
        };
        if !self.block_on_send {
            log::debug!(target: "libhoney", "queue overflow: event dropped");
            self.respond(ev, ResponseError::QueueOverflow);
            return;
        }
        loop {
            if !self.lane() {
                // Check and append under one lock, as the queue does.
                let mut msg = Some(Msg::Event(ev));
                let mut result = Ok(());
                let waited = (self.block)(&mut || {
                    if let Some(m) = msg.take() {
                        result = self.tx.send_blocking(m);
                    }
                });
                match (waited, msg) {
                    (false, Some(Msg::Event(ev))) => self.cannot_wait(ev),
                    _ => {
                        if let Err(msg) = result {
                            let stopped = stopped();
                            msg.fail(self.core.responder(), stopped);
                        }
                    }
                }
                return;
            }
            self.ship_lanes();
            let mut room = false;
            if !(self.block)(&mut || room = self.tx.wait_room(&|| self.lanes_held())) {
                self.cannot_wait(ev);
                return;
            }
            if !room {
                self.respond(ev, stopped());
                return;
            }
            match self.hand_over(ev) {
                Ok(()) => return,
                Err(back) => ev = back,
            }
        }
    }

    /// What the lanes hold, in the queue's unit.
    fn lanes_held(&self) -> usize {
        match self.tx.unit() {
            queue::Unit::Events => self.lanes.held(),
            queue::Unit::Bytes => self.lanes.held_bytes(),
        }
    }

    /// Before waiting for room: if the queue is down to half and what the
    /// lanes hold fills the rest (a small queue), queues their bodies, so
    /// that the room awaited is not held in bodies waiting for their timer.
    /// Otherwise room comes as the batcher takes from the queue, and the
    /// senders' open bodies are left to fill: taking them would split every
    /// thread's batches (with the default budget, lanes never hold half).
    fn ship_lanes(&self) {
        if self.lanes_held() == 0 || self.tx.queued_approx() > self.tx.capacity() / 2 {
            return;
        }
        let mut bodies = Vec::new();
        self.lanes.take(None, &mut bodies);
        for body in bodies {
            if let Err(msg) = self.tx.force_send(Msg::Body(Box::new(body))) {
                let stopped = stopped();
                msg.fail(self.core.responder(), stopped);
            }
        }
    }

    /// A `send` with `block_on_send` on a thread that cannot wait (it runs
    /// the current-thread runtime the batcher needs): the event overflows,
    /// and a warning (once) says what to do instead.
    fn cannot_wait(&self, ev: QueuedEvent) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            log::warn!(
                target: "libhoney",
                "block_on_send cannot wait on the thread of a current-thread tokio runtime (it runs \
                 the transmission): events sent there overflow when the queue is full; await \
                 Event::send_async instead, or send from a multi-thread runtime or a plain thread"
            );
        }
        self.respond(ev, ResponseError::QueueOverflow);
    }

    /// `Transmission::send_async` of a driver whose intake this is, if it
    /// started.
    pub(crate) fn send_boxed(intake: Option<&Intake>, ev: QueuedEvent) -> SendFuture<'_> {
        Box::pin(async move {
            if let Some(intake) = intake {
                intake.send_async(ev).await;
            }
        })
    }

    /// `send_async`: hands the event over, awaiting room while the queue is
    /// full (whatever `block_on_send` says). Needs no runtime.
    pub(crate) async fn send_async(&self, ev: QueuedEvent) {
        let _counted = Counted::new(&self.core.sending);
        let mut ev = ev;
        loop {
            match self.hand_over(ev) {
                Ok(()) => return,
                Err(back) => ev = back,
            }
            self.ship_lanes();
            if !self.tx.room(&|| self.lanes_held()).await {
                self.respond(ev, stopped());
                return;
            }
        }
    }

    /// Queues a flush marker: its reply says the last batch it covers (at
    /// once, [`Answered::Gone`], if the batcher is gone). Markers pass a
    /// full queue: no flush waits for room.
    pub(crate) fn flush_marker(&self) -> Arc<Reply> {
        let (reply, tx) = Reply::pair();
        let _ = self.tx.force_send(Msg::Flush(tx));
        reply
    }

    /// Closes: later sends are answered at once; queues the close marker.
    /// The reply says when the batcher has shipped everything and stopped
    /// (at once, [`Answered::Gone`], if it is gone); a second close gets the
    /// first one's reply, so that it waits for the same drain.
    pub(crate) fn close_marker(&self) -> Arc<Reply> {
        let mut slot = self.close_reply.lock_unpoisoned();
        if let Some(reply) = &*slot {
            return Arc::clone(reply);
        }
        self.core.closed.store(true, Ordering::SeqCst);
        let (reply, tx) = Reply::pair();
        // A batcher that is gone drops the marker: the reply says `Gone`.
        let _ = self.tx.force_send(Msg::Close(tx));
        *slot = Some(Arc::clone(&reply));
        reply
    }

    /// The blocking flush of both drivers: queues a marker, then waits until
    /// every batch it covers is answered, up to `timeout`.
    pub(crate) fn flush(&self, timeout: Duration) -> Result<(), FlushError> {
        if !self.core.needs_flush()? {
            return Ok(());
        }
        let deadline = deadline_after(timeout);
        let upto = self.flush_marker().wait(deadline).map(Answered::last);
        if upto.is_some_and(|upto| self.core.flight.wait_upto(upto, deadline)) {
            Ok(())
        } else {
            Err(self.core.flush_timed_out(timeout))
        }
    }

    /// The blocking close of both drivers: closes, then waits until the
    /// batcher has shipped everything and every accepted event is answered.
    /// If that does not happen a tenth of `timeout` (at most 250 ms) before
    /// it passes, it gives up: every batch not yet answered is answered now
    /// (see [`Flight::abandon`]), `give_up` runs (the driver releases what
    /// may wait on its senders), and the rest of the time goes to the
    /// batcher answering what it still holds, so that each event has its
    /// response before the client ends the stream.
    pub(crate) fn close(
        &self,
        timeout: Duration,
        give_up: impl FnOnce(),
    ) -> Result<(), CloseError> {
        let reply = self.close_marker();
        let (grace, deadline) = close_deadlines(timeout);
        let drained = reply.wait(grace).is_some()
            && self.core.flight.wait_upto(u64::MAX, grace)
            && self.core.all_answered(grace);
        if drained {
            return Ok(());
        }
        let pending = self.core.give_up();
        give_up();
        self.core.all_answered(deadline);
        Err(CloseError::Timeout { timeout, pending })
    }

    /// What waits (in the queue's unit: events, or bytes): queued, or in lanes.
    pub(crate) fn queue_len(&self) -> usize {
        self.tx.len() + self.lanes_held()
    }
}
