//! The response queue: one response per accepted event, bounded capacity,
//! blocking mode, end of stream, and shared readers.

use crate::common;

use std::collections::HashSet;
use std::thread;
use std::time::Duration;

use common::{base, mock_client};
use libhoney::{
    Client, CloseError, RecvTimeoutError, Response, ResponseError, Responses, SendError,
    TryRecvError,
};

fn send_n(client: &Client, range: std::ops::Range<u64>) {
    for i in range {
        let mut ev = client.new_event();
        ev.add_field("i", i).add_metadata(i);
        ev.send().unwrap();
    }
}

fn ids(responses: &[Response]) -> Vec<u64> {
    responses
        .iter()
        .map(|r| *r.metadata.as_ref().unwrap().downcast_ref::<u64>().unwrap())
        .collect()
}

#[test]
fn exactly_one_response_per_accepted_event() {
    let (client, mock) = mock_client(base());
    send_n(&client, 0..500);
    // Refused events do not count.
    assert!(client.new_event().send().is_err());
    client.close().unwrap();
    let all: Vec<_> = client.responses().collect();
    assert_eq!(
        ids(&all),
        (0..500).collect::<Vec<_>>(),
        "one each, in order"
    );
    assert!(all
        .iter()
        .all(|r| r.is_success() && r.status_code == Some(202)));
    assert_eq!(mock.len(), 500);
}

#[test]
fn a_full_queue_drops_responses_and_counts_them() {
    let (client, _mock) = mock_client(base().response_queue_capacity(5).block_on_response(false));
    send_n(&client, 0..20); // never blocks, though nobody reads
    let responses = client.responses();
    assert_eq!(responses.len(), 5);
    let m = client.metrics();
    assert_eq!(m.responses_dropped, 15);
    assert_eq!(m.events_sent, 20, "the events were delivered all the same");
    let got: Vec<_> = responses.try_iter().collect();
    assert_eq!(ids(&got), [0, 1, 2, 3, 4], "the oldest are kept");
    // Room again: new responses get in.
    send_n(&client, 20..22);
    assert_eq!(ids(&responses.try_iter().collect::<Vec<_>>()), [20, 21]);
    assert_eq!(client.metrics().responses_dropped, 15);
}

#[test]
fn blocking_mode_delivers_everything_to_a_reader() {
    let (client, _mock) = mock_client(base().response_queue_capacity(2).block_on_response(true));
    let responses = client.responses();
    let reader = thread::spawn(move || responses.collect::<Vec<_>>());
    send_n(&client, 0..2_000); // waits for the reader when the queue is full
    client.close().unwrap();
    let got = reader.join().unwrap();
    assert_eq!(ids(&got), (0..2_000).collect::<Vec<_>>());
    assert_eq!(client.metrics().responses_dropped, 0);
}

#[test]
fn flush_does_not_end_the_stream_close_does() {
    let (client, _mock) = mock_client(base());
    let responses = client.responses();
    // A reader that stops at the end of the stream (libhoney-py's reader stops
    // at the None its flush() puts in the queue, and misses what follows).
    let reader = {
        let responses = responses.clone();
        thread::spawn(move || responses.collect::<Vec<_>>())
    };
    send_n(&client, 0..5);
    client.flush().unwrap();
    assert!(!responses.is_closed());
    send_n(&client, 5..10);
    client.flush().unwrap();
    assert!(!responses.is_closed());
    client.close().unwrap();
    assert!(responses.is_closed());
    assert_eq!(ids(&reader.join().unwrap()), (0..10).collect::<Vec<_>>());
}

#[test]
fn try_recv_and_recv_timeout_tell_empty_from_ended() {
    let (client, _mock) = mock_client(base());
    let responses = client.responses();
    assert_eq!(responses.try_recv().unwrap_err(), TryRecvError::Empty);
    assert_eq!(
        responses
            .recv_timeout(Duration::from_millis(10))
            .unwrap_err(),
        RecvTimeoutError::Timeout
    );
    client.flush().unwrap();
    assert_eq!(responses.try_recv().unwrap_err(), TryRecvError::Empty);

    send_n(&client, 0..3);
    assert_eq!(responses.len(), 3);
    assert!(!responses.is_empty());
    let r = responses.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(ids(&[r]), [0]);
    client.close().unwrap();
    // Responses queued before close are still read, then the stream ends.
    assert!(responses.is_closed());
    assert_eq!(ids(&[responses.try_recv().unwrap()]), [1]);
    assert_eq!(ids(&[responses.recv().unwrap()]), [2]);
    assert!(responses.is_empty());
    assert_eq!(responses.try_recv().unwrap_err(), TryRecvError::Ended);
    assert_eq!(
        responses.recv_timeout(Duration::from_secs(5)).unwrap_err(),
        RecvTimeoutError::Ended
    );
    assert!(responses.recv().is_none());
    assert_eq!(responses.clone().count(), 0);
    assert_eq!(client.responses().try_iter().count(), 0);
    assert!(!TryRecvError::Ended.to_string().is_empty());
    assert!(!RecvTimeoutError::Timeout.to_string().is_empty());
}

#[test]
fn a_waiting_reader_wakes_when_the_client_closes() {
    let (client, _mock) = mock_client(base());
    let responses = client.responses();
    let waiting = thread::spawn(move || responses.recv());
    let timed = {
        let responses = client.responses();
        thread::spawn(move || responses.recv_timeout(Duration::from_secs(600)))
    };
    client.close().unwrap();
    assert!(waiting.join().unwrap().is_none());
    assert_eq!(timed.join().unwrap().unwrap_err(), RecvTimeoutError::Ended);
}

#[test]
fn every_handle_reads_the_same_queue() {
    let (client, _mock) = mock_client(base());
    let a: Responses = client.responses();
    let b = a.clone();
    let c = client.responses();
    send_n(&client, 0..6);
    assert_eq!((a.len(), b.len(), c.len()), (6, 6, 6));
    let mut got = Vec::new();
    for r in [&a, &b, &c] {
        got.push(r.try_recv().unwrap());
        got.push(r.try_recv().unwrap());
    }
    let unique: HashSet<u64> = ids(&got).into_iter().collect();
    assert_eq!(unique.len(), 6, "each response goes to exactly one reader");
    assert!(a.is_empty() && b.is_empty() && c.is_empty());
    // `&Responses` iterates too.
    send_n(&client, 6..8);
    client.close().unwrap();
    assert_eq!(ids(&(&a).collect::<Vec<_>>()), [6, 7]);
    assert!(format!("{a:?}").contains("Responses"));
}

#[test]
fn response_constructors_and_success() {
    let ok = Response::success(None, Some(202), Duration::from_millis(3));
    assert!(ok.is_success());
    assert_eq!(ok.duration, Duration::from_millis(3));
    assert!(Response::success(None, None, Duration::ZERO).is_success());
    assert!(!Response::success(None, Some(500), Duration::ZERO).is_success());
    assert!(!Response::success(None, Some(199), Duration::ZERO).is_success());
    let failed = Response::failure(None, ResponseError::HttpStatus(503))
        .with_status(503)
        .with_body("slow down")
        .with_duration(Duration::from_millis(9));
    assert!(!failed.is_success());
    assert_eq!(failed.status_code, Some(503));
    assert_eq!(failed.body, "slow down");
    assert_eq!(failed.duration, Duration::from_millis(9));
    assert!(!Response::failure(None, ResponseError::Sampled)
        .with_status(202)
        .is_success());
    assert!(Response::default().is_success());

    let errors = [
        ResponseError::Sampled,
        ResponseError::QueueOverflow,
        ResponseError::TooLarge {
            size: 2_000_000,
            limit: 1_000_000,
            name: Some("GET /".into()),
            service_name: Some("svc".into()),
        },
        ResponseError::Encoding("bad".into()),
        ResponseError::Transport("refused".into()),
        ResponseError::HttpStatus(400),
        ResponseError::Rejected("bad event".into()),
        ResponseError::MissingStatus,
        ResponseError::MalformedResponse("not json".into()),
    ];
    for e in errors {
        assert!(!e.to_string().is_empty(), "{e:?}");
    }
    assert_eq!(
        ResponseError::Sampled.to_string(),
        "event dropped due to sampling"
    );
    let too_large = ResponseError::TooLarge {
        size: 2_000_000,
        limit: 1_000_000,
        name: Some("GET /".into()),
        service_name: Some("svc".into()),
    }
    .to_string();
    assert!(
        too_large.contains("2000000") && too_large.contains("GET /") && too_large.contains("svc")
    );
}

#[test]
fn close_releases_a_sender_waiting_for_room() {
    // block_on_response with nobody reading: the sender waits for room. Closing
    // the client must release it (its response is dropped and counted) rather
    // than leave it blocked for good.
    let (client, _mock) = mock_client(
        base()
            .response_queue_capacity(1)
            .block_on_response(true)
            .shutdown_timeout(Duration::from_millis(100)),
    );
    let responses = client.responses();
    let sender = {
        let client = client.clone();
        thread::spawn(move || {
            let mut accepted = 0u64;
            loop {
                let mut ev = client.new_event();
                ev.add_field("i", accepted);
                match ev.send() {
                    Ok(()) => accepted += 1,
                    Err(e) => {
                        assert_eq!(e, SendError::Closed);
                        return accepted;
                    }
                }
            }
        })
    };
    // Once the queue is full the sender is stuck in its next send.
    while responses.is_empty() {
        thread::yield_now();
    }
    // close waits (up to its timeout) for a send in progress, then gives up on
    // the stuck one, says so, and ends the stream, which releases it. (If the
    // close slips in between two sends, the next one is simply refused.)
    match client.close() {
        Ok(()) | Err(CloseError::Timeout { pending: 1, .. }) => {}
        other => panic!("{other:?}"),
    }
    let accepted = sender.join().unwrap();
    assert!(accepted >= 1);
    let read = responses.count() as u64;
    assert_eq!(read, 1, "the one response that fitted");
    assert_eq!(client.metrics().responses_dropped, accepted - read);
}

#[test]
fn sends_racing_a_close_are_refused_or_answered() {
    // A send that passed the closed check just before close must still get its
    // response: close waits for it before ending the stream.
    for round in 0..20 {
        let (client, mock) = mock_client(base().response_queue_capacity(4 * 20_000));
        let responses = client.responses();
        let senders: Vec<_> = (0..4)
            .map(|_| {
                let client = client.clone();
                thread::spawn(move || {
                    let mut accepted = 0u64;
                    for _ in 0..20_000 {
                        let mut ev = client.new_event();
                        ev.add_field("x", 1);
                        match ev.send() {
                            Ok(()) => accepted += 1,
                            Err(SendError::Closed) => break,
                            Err(e) => panic!("{e}"),
                        }
                    }
                    accepted
                })
            })
            .collect();
        while client.metrics().events_queued < 100 {
            thread::yield_now();
        }
        client.close().unwrap();
        let accepted: u64 = senders.into_iter().map(|t| t.join().unwrap()).sum();
        let answered = responses.count() as u64;
        let m = client.metrics();
        assert_eq!(m.responses_dropped, 0, "round {round}: {m:?}");
        assert_eq!(answered, accepted, "round {round}");
        assert_eq!(mock.len() as u64, accepted, "round {round}");
    }
}

/// A transmission that keeps events and answers them all at once, with
/// `Responder::respond_all`, when flushed or closed.
#[derive(Default)]
struct AnswersInBatches {
    responder: std::sync::OnceLock<libhoney::transmission::Responder>,
    held: std::sync::Mutex<Vec<libhoney::transmission::QueuedEvent>>,
}

impl AnswersInBatches {
    fn answer_all(&self) {
        let batch: Vec<Response> = self
            .held
            .lock()
            .unwrap()
            .drain(..)
            .map(|mut ev| Response::success(ev.take_metadata(), Some(202), Duration::ZERO))
            .collect();
        self.responder.get().unwrap().respond_all(batch);
    }
}

impl libhoney::transmission::Transmission for AnswersInBatches {
    fn start(&self, ctx: libhoney::transmission::Context) -> Result<(), libhoney::ConfigError> {
        let _ = self.responder.set(ctx.responder().clone());
        Ok(())
    }
    fn send(&self, ev: libhoney::transmission::QueuedEvent) {
        self.held.lock().unwrap().push(ev);
    }
    fn flush(&self, _: Duration) -> Result<(), libhoney::FlushError> {
        self.answer_all();
        Ok(())
    }
    fn close(&self, _: Duration) -> Result<(), CloseError> {
        self.answer_all();
        Ok(())
    }
}

#[test]
fn respond_all_delivers_a_batch_in_order_counts_it_and_drops_what_does_not_fit() {
    let client = Client::new(
        base()
            .transmission(AnswersInBatches::default())
            .response_queue_capacity(8),
    )
    .unwrap();
    let responses = client.responses();
    // A reader waiting before the batch arrives is woken by it.
    let reader = {
        let responses = responses.clone();
        thread::spawn(move || responses.recv_timeout(Duration::from_secs(10)))
    };
    send_n(&client, 0..5);
    client.flush().unwrap();
    let first = reader.join().unwrap().expect("woken by the batch");
    let mut got = vec![first];
    got.extend(responses.try_iter());
    assert_eq!(ids(&got), [0, 1, 2, 3, 4], "in order, once each");

    // Without block_on_response, a batch larger than the room left keeps its
    // first responses and drops (and counts) the rest.
    send_n(&client, 5..15);
    client.flush().unwrap();
    assert_eq!(
        ids(&responses.try_iter().collect::<Vec<_>>()),
        (5..13).collect::<Vec<_>>()
    );
    let m = client.metrics();
    assert_eq!(m.responses_dropped, 2);
    assert_eq!(m.events_sent, 15, "each counted once, dropped or not");
    client.close().unwrap();
    assert!(responses.recv().is_none());
}

#[test]
fn respond_all_with_block_on_response_waits_for_a_reader_and_loses_nothing() {
    let client = Client::new(
        base()
            .transmission(AnswersInBatches::default())
            .response_queue_capacity(4)
            .block_on_response(true),
    )
    .unwrap();
    let responses = client.responses();
    send_n(&client, 0..50);
    // The flush hands 50 responses to a queue of 4: it waits for the reader.
    let reader = thread::spawn(move || responses.collect::<Vec<_>>());
    client.flush().unwrap();
    client.close().unwrap();
    let got = reader.join().unwrap();
    assert_eq!(ids(&got), (0..50).collect::<Vec<_>>());
    assert_eq!(client.metrics().responses_dropped, 0);
}
