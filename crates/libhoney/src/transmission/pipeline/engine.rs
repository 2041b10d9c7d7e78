//! The batcher's side of the pipeline as a state machine that both drivers'
//! loops run ([`Engine::step`]): it takes messages off the pending queue,
//! batches events (or takes the bodies that lanes filled), makes batches
//! ready, serves flush and close markers, and says when to wait and for what.
//! A driver only waits (blocking, or awaiting) and hands the ready batches
//! to its senders.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::backlog::{BacklogWatch, IDLE_ROUNDS, ROUND_PAUSE};
use super::batch::{Batcher, OpenBatch, ReadyBatch};
use super::lanes::Lanes;
use super::queue::{self, RecvTimeoutError, TryRecvError};
use super::signal::ReplyTx;
use super::{closed_error, Core, Msg};
use crate::response::{Response, ResponseError};

/// How long a close waits between looks for `send` calls still handing
/// their events over.
const SENDS_POLL: Duration = Duration::from_millis(1);

/// What a driver waits for before the next [`Engine::step`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Sleep this long (zero: only let others run). Events keep coming: the
    /// batcher takes them in rounds rather than being woken by every `send`.
    Pause(Duration),
    /// Wait for a message, a kick, or the deadline (if any); hand what came
    /// to [`Engine::received`].
    Message(Option<Instant>),
}

/// What a driver does next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Batches are ready, or responses wait to be delivered: deliver
    /// [`Engine::take_refused`], hand each of [`Engine::take_ready`] to a
    /// sender, then step again.
    Dispatch,
    /// Wait as told, then step again.
    Wait(Wait),
    /// Everything is dispatched and the batcher has stopped (closed, or every
    /// handle gone).
    Stop,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Running,
    /// A close marker came (or every handle is gone): take the last events,
    /// ship everything, answer the close.
    Closing {
        last_look: bool,
    },
    Stopped,
}

/// The batcher's state; one per transmission, owned by the driver's batcher
/// thread or task.
pub(crate) struct Engine {
    rx: queue::Receiver<Msg>,
    batcher: Batcher,
    lanes: Arc<Lanes>,
    core: Arc<Core>,
    ready: Vec<ReadyBatch>,
    /// Responses of events refused on this side (too large, or after a close
    /// gave up), for the driver to deliver where blocking is allowed.
    refused: Vec<Response>,
    backlog: BacklogWatch,
    /// Messages per round at most.
    busy_round: usize,
    /// Messages taken in the current round.
    taken: usize,
    idle_rounds: u32,
    /// A message a wait brought, to handle first.
    pending: Option<Msg>,
    /// Flushes to answer once what they cover is dispatched.
    flushes: Vec<ReplyTx>,
    close: Option<ReplyTx>,
    state: State,
}

impl Engine {
    /// `rhythm`: the queue length (in events) its rounds and its "behind"
    /// threshold are tuned for.
    pub(crate) fn new(
        rx: queue::Receiver<Msg>,
        rhythm: usize,
        batcher: Batcher,
        lanes: Arc<Lanes>,
        core: Arc<Core>,
    ) -> Self {
        let capacity = rhythm;
        Engine {
            busy_round: (capacity / 4).max(1),
            backlog: BacklogWatch::new(capacity),
            rx,
            batcher,
            lanes,
            core,
            ready: Vec::new(),
            refused: Vec::new(),
            taken: 0,
            idle_rounds: 0,
            pending: None,
            flushes: Vec::new(),
            close: None,
            state: State::Running,
        }
    }

    /// The ready batches, for the driver to hand to its senders (in order).
    pub(crate) fn take_ready(&mut self) -> Vec<ReadyBatch> {
        std::mem::take(&mut self.ready)
    }

    /// Responses to deliver (events refused on the batcher's side).
    pub(crate) fn take_refused(&mut self) -> Vec<Response> {
        std::mem::take(&mut self.refused)
    }

    /// The receiving end of the pending queue, for the driver's wait.
    pub(crate) fn receiver(&mut self) -> &mut queue::Receiver<Msg> {
        &mut self.rx
    }

    /// What a [`Wait::Message`] brought.
    pub(crate) fn received(&mut self, got: Result<Msg, RecvTimeoutError>) {
        match got {
            Ok(m) => self.pending = Some(m),
            // A kick or the deadline: the next step looks at the lanes' and
            // batches' deadlines. Disconnected: the next step sees it too.
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
        }
    }

    fn next_msg(&mut self) -> Result<Msg, TryRecvError> {
        match self.pending.take() {
            Some(m) => Ok(m),
            None => self.rx.try_recv(),
        }
    }

    /// Does the next piece of work and says what the driver does next.
    pub(crate) fn step(&mut self) -> Step {
        if !self.ready.is_empty() || !self.refused.is_empty() {
            return Step::Dispatch;
        }
        if !self.flushes.is_empty() && self.state == State::Running {
            // What they cover is dispatched (registered, in fact, since
            // `make_ready`): the flushes wait for it to be answered.
            let last = self.batcher.last_seq();
            for f in self.flushes.drain(..) {
                f.send(last);
            }
        }
        match self.state {
            State::Stopped => Step::Stop,
            State::Closing { .. } => self.closing_step(),
            State::Running => self.round_step(),
        }
    }

    fn round_step(&mut self) -> Step {
        let now = Instant::now();
        while self.taken < self.busy_round {
            let msg = match self.next_msg() {
                Ok(m) => m,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    // Every handle is gone without a close: send what is left.
                    self.state = State::Closing { last_look: true };
                    return self.closing_step();
                }
            };
            self.taken += 1;
            if let Msg::Close(reply) = msg {
                self.close = Some(reply);
                self.state = State::Closing { last_look: false };
                return self.closing_step();
            }
            self.handle(msg, now);
            if !self.ready.is_empty() || !self.refused.is_empty() || !self.flushes.is_empty() {
                return Step::Dispatch;
            }
        }
        // The round is over. Messages, not weight: a body waiting in the
        // queue is already encoded, so it does not make the batcher behind.
        self.backlog.after_round(self.rx.items(), &self.core.behind);
        let now = Instant::now();
        if self.next_deadline().is_some_and(|d| d <= now) {
            self.expire(now);
        }
        let taken = std::mem::take(&mut self.taken);
        self.idle_rounds = if taken == 0 {
            self.idle_rounds.saturating_add(1)
        } else {
            0
        };
        if !self.ready.is_empty() {
            return Step::Dispatch;
        }
        let wait = if taken >= self.busy_round {
            Wait::Pause(Duration::ZERO)
        } else if self.idle_rounds < IDLE_ROUNDS {
            let pause = match self.next_deadline() {
                Some(d) => ROUND_PAUSE.min(d.saturating_duration_since(now)),
                None => ROUND_PAUSE,
            };
            Wait::Pause(pause)
        } else {
            Wait::Message(self.next_deadline())
        };
        Step::Wait(wait)
    }

    /// After a close marker: takes every event still queued, including
    /// those of `send` calls that saw the transmission open and are still
    /// handing their event over (`Core::sending`). Once none is in progress,
    /// any later `send` sees the transmission closed and answers its event
    /// itself, so nothing can be left in the queue or in a lane.
    fn closing_step(&mut self) -> Step {
        let State::Closing { last_look } = self.state else {
            return Step::Stop;
        };
        let now = Instant::now();
        loop {
            match self.next_msg() {
                Ok(Msg::Flush(r)) => self.flushes.push(r),
                // A second close (it found the transmission closed and does
                // not wait for this reply).
                Ok(Msg::Close(r)) => drop(r),
                Ok(m) => {
                    self.handle(m, now);
                    if !self.ready.is_empty() || !self.refused.is_empty() {
                        return Step::Dispatch;
                    }
                }
                Err(_) => break,
            }
        }
        if !last_look {
            if self.core.sending.sum(Ordering::SeqCst) != 0 {
                // A send is between its check of `closed` and the queue (or
                // waiting for room, which this loop keeps making).
                return Step::Wait(Wait::Message(Some(now + SENDS_POLL)));
            }
            // Sends that finished before that load queued their event first;
            // one more look takes it.
            self.state = State::Closing { last_look: true };
            return self.closing_step();
        }
        self.drain();
        if !self.ready.is_empty() || !self.refused.is_empty() {
            return Step::Dispatch;
        }
        let last = self.batcher.last_seq();
        for f in self.flushes.drain(..) {
            f.send(last);
        }
        if let Some(close) = self.close.take() {
            close.send(last);
        }
        self.state = State::Stopped;
        Step::Stop
    }

    fn handle(&mut self, msg: Msg, now: Instant) {
        match msg {
            Msg::Event(mut ev) => {
                if self.core.flight.abandoned() {
                    self.refused
                        .push(Response::failure(ev.take_metadata(), abandoned()));
                    return;
                }
                let refused = &mut self.refused;
                self.batcher
                    .add(&mut ev, now, &mut |r| refused.push(r), &mut self.ready);
            }
            Msg::Body(body) => self.body(*body),
            Msg::Flush(reply) => {
                self.drain();
                self.flushes.push(reply);
            }
            Msg::Close(reply) => {
                self.close = Some(reply);
                self.state = State::Closing { last_look: false };
            }
        }
    }

    /// Makes a body a lane filled ready (or answers its events, after a
    /// close gave up).
    fn body(&mut self, body: OpenBatch) {
        if self.core.flight.abandoned() {
            self.refused.extend(
                body.metas
                    .into_iter()
                    .map(|m| Response::failure(m, abandoned())),
            );
            return;
        }
        if let Some(buf) = self.batcher.make_ready(body, &mut self.ready) {
            self.lanes.recycle(buf);
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
        let mut due = Vec::new();
        self.lanes.take(Some(now), &mut due);
        for body in due {
            self.body(body);
        }
        self.batcher.expire(now, &mut self.ready);
    }

    /// Ships every open batch and lane body.
    fn drain(&mut self) {
        let mut all = Vec::new();
        self.lanes.take(None, &mut all);
        for body in all {
            self.body(body);
        }
        self.batcher.drain(&mut self.ready);
    }
}

fn abandoned() -> ResponseError {
    closed_error("the client was closed before the event could be sent")
}

impl Drop for Engine {
    /// A batcher dropped before it stopped (its task dropped by a runtime
    /// that shut down) answers everything it holds: queued events and
    /// bodies, open batches and lane bodies (ready batches answer through
    /// their claims' own `Drop`).
    fn drop(&mut self) {
        if self.state == State::Stopped && self.refused.is_empty() {
            return;
        }
        // Refuse new items first: a `send` that puts an event into a lane
        // after the lanes are emptied below sees the queue closed, and
        // answers it itself.
        self.rx.close();
        let error = closed_error(
            "the transmission stopped before the event could be sent (its runtime shut down)",
        );
        let mut responses = std::mem::take(&mut self.refused);
        let mut fail = |m| responses.push(Response::failure(m, error.clone()));
        if let Some(msg) = self.pending.take() {
            msg.fail_each(&mut fail);
        }
        while let Ok(msg) = self.rx.try_recv() {
            msg.fail_each(&mut fail);
        }
        let mut bodies = self.batcher.take_open();
        self.lanes.take(None, &mut bodies);
        for b in bodies {
            for m in b.metas {
                fail(m);
            }
        }
        if responses.is_empty() {
            return;
        }
        let responder = self.core.flight.responder().clone();
        if responder.blocks() {
            // Delivering may wait for room: not on whatever is dropping this.
            let _ = std::thread::Builder::new()
                .name("libhoney-answer".into())
                .spawn(move || responder.respond_all(responses));
        } else {
            responder.respond_all(responses);
        }
    }
}
