//! The pipeline driven by hand, with no network, no threads and no driver:
//! what `send` admits, what the batcher makes ready and when, flush and
//! close with work pending, and the exactly-once answer of a batch.

use std::sync::Arc;
use std::time::Duration;

use super::{build, Answered, Core, Engine, Intake, Outcome, ReadyBatch, Step, Wait};
use crate::config::{Config, EncodeOn};
use crate::metrics::Metrics;
use crate::response::{response_queue, ResponseError, Responses};
use crate::transmission::pipeline::block_plainly;
use crate::transmission::{Mock, QueuedEvent};

struct Rig {
    intake: Intake,
    engine: Engine,
    core: Arc<Core>,
    responses: Responses,
    metrics: Arc<Metrics>,
    events: (crate::Client, Arc<Mock>),
}

/// A pipeline over `config`, and a client whose events land in a mock, to
/// take them as a client hands them to a transmission.
fn rig(config: Config) -> Rig {
    let metrics = Arc::new(Metrics::default());
    let (responder, responses) = response_queue(1 << 16, false, Arc::clone(&metrics));
    let config = config.api_key("k").dataset("d");
    let (intake, engine, core) = build(&config, responder, block_plainly);
    let mock = Arc::new(Mock::new());
    let client = crate::Client::new(config.transmission_arc(mock.clone())).unwrap();
    Rig {
        intake,
        engine,
        core,
        responses,
        metrics,
        events: (client, mock),
    }
}

impl Rig {
    fn event(&self, n: i64) -> QueuedEvent {
        let mut ev = self.events.0.new_event();
        ev.add_field("n", n);
        ev.add_metadata(n);
        ev.send().unwrap();
        self.metrics.record_queued();
        self.events.1.take_events().pop().unwrap()
    }

    fn send(&self, n: i64) {
        self.intake.send(self.event(n));
    }

    /// Steps the engine until it waits or stops; the batches it made ready.
    fn run(&mut self) -> (Vec<ReadyBatch>, Step) {
        let mut ready = Vec::new();
        loop {
            match self.engine.step() {
                Step::Dispatch => {
                    let refused = self.engine.take_refused();
                    self.core.responder().respond_all(refused);
                    ready.extend(self.engine.take_ready());
                }
                step => return (ready, step),
            }
        }
    }

    fn answers(&self) -> Vec<(i64, Option<ResponseError>)> {
        self.responses
            .try_iter()
            .map(|r| {
                let n = r
                    .metadata
                    .as_ref()
                    .and_then(|m| m.downcast_ref::<i64>().copied());
                (n.unwrap_or(-1), r.error)
            })
            .collect()
    }
}

fn metas(b: &ReadyBatch) -> usize {
    b.claim.events()
}

#[test]
fn a_full_queue_refuses_single_events_never_a_whole_body() {
    // Lanes always, a queue of 3 events, bodies of 2.
    let r = rig(Config::new()
        .pending_work_capacity(3)
        .max_batch_size(2)
        .encode_on(EncodeOn::Send));
    for n in 0..10 {
        r.send(n);
    }
    // 0 and 1 fill a body (queued: 2), 2 goes into a lane (held: 1); then
    // the queue and the lanes hold 3, and each later event is refused alone.
    let answers = r.answers();
    assert_eq!(answers.len(), 7, "{answers:?}");
    for (n, (id, error)) in (3..10).zip(&answers) {
        assert_eq!((*id, error), (n, &Some(ResponseError::QueueOverflow)));
    }
    assert_eq!(r.intake.queue_len(), 3);
}

#[test]
fn the_memory_budget_counts_bytes_of_events_and_bodies() {
    // 128 + 64 bytes per event of one field. An event is admitted while
    // less than the budget is held: a budget of 1,000 bytes takes six
    // (the sixth at 960 held).
    let r = rig(Config::new()
        .max_pending_bytes(1_000)
        .encode_on(EncodeOn::Batcher));
    for n in 0..8 {
        r.send(n);
    }
    let answers = r.answers();
    assert_eq!(
        answers,
        vec![
            (6, Some(ResponseError::QueueOverflow)),
            (7, Some(ResponseError::QueueOverflow))
        ]
    );
    assert_eq!(r.intake.queue_len(), 6 * 192);
}

#[test]
fn the_batcher_ships_full_batches_then_the_rest_on_its_timer() {
    let mut r = rig(Config::new()
        .max_batch_size(4)
        .send_frequency(Duration::from_millis(30))
        .encode_on(EncodeOn::Batcher));
    for n in 0..10 {
        r.send(n);
    }
    let (ready, step) = r.run();
    assert_eq!(ready.iter().map(metas).collect::<Vec<_>>(), vec![4, 4]);
    // Two events wait in an open batch: a pause bounded by its deadline.
    assert!(matches!(step, Step::Wait(Wait::Pause(d)) if d <= Duration::from_millis(30)));
    std::thread::sleep(Duration::from_millis(40));
    let (ready, _) = r.run();
    assert_eq!(ready.iter().map(metas).collect::<Vec<_>>(), vec![2]);
    assert!(
        r.answers().is_empty(),
        "nothing answered before the batches are"
    );
}

#[test]
fn an_idle_batcher_waits_for_a_message_with_no_deadline() {
    let mut r = rig(Config::new());
    let mut step = r.run().1;
    for _ in 0..60 {
        step = r.run().1;
    }
    assert_eq!(step, Step::Wait(Wait::Message(None)));
}

#[test]
fn a_flush_is_answered_once_what_it_covers_is_dispatched() {
    let mut r = rig(Config::new()
        .send_frequency(Duration::from_secs(3600))
        .encode_on(EncodeOn::Batcher));
    for n in 0..3 {
        r.send(n);
    }
    let reply = r.intake.flush_marker();
    let (ready, _) = r.run();
    assert_eq!(ready.len(), 1);
    assert_eq!(
        reply.wait(std::time::Instant::now()),
        Some(Answered::Upto(1))
    );
    // The flush waits for the batch to be answered, not only dispatched.
    assert!(!r.core.flight.wait_upto(1, std::time::Instant::now()));
    let b = ready.into_iter().next().unwrap();
    b.claim
        .answer(Outcome::Abandoned("test".into()), Duration::ZERO);
    assert!(r.core.flight.wait_upto(1, std::time::Instant::now()));
    assert_eq!(r.answers().len(), 3);
}

#[test]
fn a_close_with_pending_work_ships_everything_then_stops() {
    let mut r = rig(Config::new()
        .max_batch_size(4)
        .send_frequency(Duration::from_secs(3600))
        .encode_on(EncodeOn::Send));
    for n in 0..6 {
        r.send(n);
    }
    let close = r.intake.close_marker();
    let (ready, step) = r.run();
    assert_eq!(step, Step::Stop);
    let mut sizes: Vec<usize> = ready.iter().map(metas).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, vec![2, 4], "the full body and the open one");
    assert_eq!(
        close.wait(std::time::Instant::now()),
        Some(Answered::Upto(2))
    );
    // A send after the close is answered at once.
    r.send(99);
    assert_eq!(
        r.answers(),
        vec![(99, Some(super::closed_error("the transmission is closed")))]
    );
    // A second close gets the first one's reply.
    assert!(Arc::ptr_eq(&close, &r.intake.close_marker()));
    drop(ready);
}

#[test]
fn each_batch_is_answered_exactly_once_whoever_comes_first() {
    let mut r = rig(Config::new().max_batch_size(2).encode_on(EncodeOn::Batcher));
    for n in 0..6 {
        r.send(n);
    }
    let (ready, _) = r.run();
    let mut ready = ready.into_iter();
    let (a, b, c) = (
        ready.next().unwrap(),
        ready.next().unwrap(),
        ready.next().unwrap(),
    );
    // `a` fails once and waits to retry; `b` is in a request; `c` is answered.
    a.claim.retrying(Outcome::Http {
        status: 503,
        body: b"busy".to_vec(),
        msgpack: false,
    });
    c.claim
        .answer(Outcome::Abandoned("done".into()), Duration::ZERO);
    assert_eq!(r.answers().len(), 2);
    // The close gives up: `a` gets its last failure, `b` says closed.
    r.core.flight.abandon();
    let answers = r.answers();
    assert_eq!(answers.len(), 4, "{answers:?}");
    assert_eq!(answers[0].1, Some(ResponseError::HttpStatus(503)));
    assert!(matches!(&answers[2].1, Some(ResponseError::Transport(m))
        if m.contains("closed") && m.kind() == crate::TransportErrorKind::Closed));
    // The request that ends later, and the drops, answer nothing more.
    b.claim
        .answer(Outcome::Abandoned("late".into()), Duration::ZERO);
    drop(a);
    assert!(r.answers().is_empty());
    assert!(r.core.flight.wait_upto(u64::MAX, std::time::Instant::now()));
    assert_eq!(r.core.pending(), 0);
}

#[test]
fn a_dropped_batcher_answers_everything_it_holds() {
    let r = rig(Config::new()
        .max_batch_size(3)
        .send_frequency(Duration::from_secs(3600))
        .encode_on(EncodeOn::Send));
    for n in 0..5 {
        r.send(n);
    }
    let Rig {
        intake,
        engine,
        responses,
        ..
    } = r;
    // A body of 3 queued, 2 events in a lane; the batcher's task is dropped.
    drop(engine);
    let got: Vec<_> = responses.try_iter().collect();
    assert_eq!(got.len(), 5);
    assert!(got
        .iter()
        .all(|r| matches!(&r.error, Some(ResponseError::Transport(m)) if m.contains("stopped"))));
    // Later sends are answered by `send` itself.
    drop(intake);
}
