//! Lifecycle of the default HTTP transmission over real HTTP: flush, close,
//! drop, blocking and non-blocking sends under back-pressure.

use crate::http_support;

use std::time::{Duration, Instant};

use http_support::lifecycle;
use http_support::*;
use libhoney::{CloseError, FlushError, ResponseError, SendError, TryRecvError};
use libhoney_receiver::Fault;

#[test]
fn block_on_send_loses_nothing_under_intermittent_faults() {
    let rx = receiver();
    let pass = Fault::Delay(Duration::ZERO);
    let mut failures = 0;
    for _ in 0..8 {
        for (f, n, fails) in [
            (
                Fault::Status {
                    status: 500,
                    body: "x".into(),
                    retry_after: None,
                },
                1,
                true,
            ),
            (pass.clone(), 2, false),
            (Fault::DropConnection, 1, true),
            (pass.clone(), 1, false),
            (
                Fault::Status {
                    status: 503,
                    body: "y".into(),
                    retry_after: Some("0".into()),
                },
                2,
                true,
            ),
            (pass.clone(), 1, false),
        ] {
            rx.push_fault(f, n);
            if fails {
                failures += n;
            }
        }
    }
    let client = client(
        config(&rx)
            .block_on_send(true)
            .pending_work_capacity(4)
            .max_batch_size(5)
            .max_concurrent_batches(2)
            .send_frequency(Duration::from_millis(5))
            // More attempts than faults: no batch can run out.
            .max_attempts(failures as u32 + 2)
            .retry_deadline(PATIENCE),
    );
    let threads = on_threads(&client, 4, |client, t| {
        send_ids(client, (t * 1000)..(t * 1000 + 150))
    });
    let sent = join_ids(threads);
    let responses = close_and_collect(&client);
    let m = client.metrics();
    let tally = check_invariant(&sent, &responses, &rx, &m);
    assert_eq!(tally.ok.len(), 600, "{m:?}");
    assert_eq!(m.events_overflowed, 0);
    assert!(m.retries > 0, "the faults were met: {m:?}");
}

#[test]
fn overflow_without_block_on_send_still_answers_every_event() {
    let rx = receiver();
    rx.push_fault(Fault::Delay(Duration::from_millis(30)), 10_000);
    let client = client(
        config(&rx)
            .block_on_send(false)
            .pending_work_capacity(2)
            .max_batch_size(5)
            .max_concurrent_batches(1)
            .send_frequency(Duration::from_millis(5)),
    );
    let sent = send_ids(&client, 0..300);
    let responses = close_and_collect(&client);
    rx.clear_faults();
    let m = client.metrics();
    let tally = check_invariant(&sent, &responses, &rx, &m);
    assert!(tally.overflowed() > 0, "{m:?}");
    assert!(!tally.ok.is_empty(), "{m:?}");
    for r in tally.failed.values() {
        assert_eq!(r.error, Some(ResponseError::QueueOverflow), "{r:?}");
        assert_eq!(r.status_code, None);
    }
    assert_eq!(m.events_queued, 300);
}

#[test]
fn flush_waits_for_every_earlier_event_and_keeps_the_stream_open() {
    let rx = receiver();
    let client = client(one_batch(&rx));
    let responses = client.responses();
    send_ids(&client, 0..50);
    client.flush_within(PATIENCE).unwrap();
    let got = lifecycle::answered_and_still_open(&responses, &rx, 50);
    // And sending goes on.
    send_ids(&client, 50..60);
    client.flush_within(PATIENCE).unwrap();
    assert_eq!(responses.len(), 10);
    // An empty flush is fine too.
    client.flush_within(PATIENCE).unwrap();
    let mut rest = close_and_collect(&client);
    rest.extend(got);
    let sent: Vec<u64> = (0..60).collect();
    check_invariant(&sent, &rest, &rx, &client.metrics());
}

#[test]
fn concurrent_flushes_each_cover_their_own_events() {
    let rx = receiver();
    let client = client(one_batch(&rx));
    let threads = on_threads(&client, 4, |client, t| {
        let mut mine = Vec::new();
        for round in 0..5u64 {
            let base = t * 1000 + round * 10;
            mine.extend(send_ids(client, base..base + 10));
            client.flush_within(PATIENCE).unwrap();
        }
        mine
    });
    let sent = join_ids(threads);
    let responses = close_and_collect(&client);
    let tally = check_invariant(&sent, &responses, &rx, &client.metrics());
    assert_eq!(tally.ok.len(), 200);
}

#[test]
fn flush_after_each_send_returns_only_once_the_event_is_answered() {
    let rx = receiver();
    let client = client(config(&rx).send_frequency(Duration::from_secs(3600)));
    let responses = client.responses();
    for id in 0..20 {
        send_id(&client, id);
        client.flush_within(PATIENCE).unwrap();
        let r = responses
            .try_recv()
            .expect("answered before flush returned");
        assert_eq!(meta_id(&r), id);
        assert!(r.is_success(), "{r:?}");
        assert_eq!(rx.events().len() as u64, id + 1);
    }
    client.close().unwrap();
}

http_test!(lifecycle::flush_times_out_on_a_slow_receiver_and_delivery_goes_on);

#[test]
fn close_drains_ends_the_stream_and_refuses_later_sends() {
    let rx = receiver();
    let client = client(one_batch(&rx));
    let responses = client.responses();
    let sent = send_ids(&client, 0..30);
    let builder = client.new_builder();
    client.close().unwrap();
    assert!(client.is_closed());
    // The iterator drains what is left and ends.
    let got: Vec<_> = responses.clone().collect();
    let tally = check_invariant(&sent, &got, &rx, &client.metrics());
    assert_eq!(tally.ok.len(), 30);
    assert_eq!(responses.try_recv().unwrap_err(), TryRecvError::Ended);
    assert!(responses.recv().is_none());

    let mut ev = client.new_event();
    ev.add_field("id", 99);
    assert_eq!(ev.send(), Err(SendError::Closed));
    let mut ev = builder.new_event();
    ev.add_field("id", 100);
    assert_eq!(ev.send(), Err(SendError::Closed));
    assert_eq!(client.close(), Ok(()));
    assert_eq!(client.close_within(Duration::ZERO), Ok(()));
    assert_eq!(client.flush(), Err(FlushError::Closed));
    assert_eq!(rx.events().len(), 30);
    assert_eq!(client.metrics().events_queued, 30);
}

#[test]
fn close_within_gives_up_promptly_on_a_stalled_receiver() {
    let stalled = Stalled::start();
    let rx = receiver();
    let client = client(
        config(&rx)
            .api_host(stalled.url.clone())
            .request_timeout(Duration::from_secs(60)),
    );
    let responses = client.responses();
    send_ids(&client, 0..5);
    let t0 = Instant::now();
    match client.close_within(Duration::from_millis(300)) {
        Err(CloseError::Timeout { pending, .. }) => assert_eq!(pending, 5),
        other => panic!("{other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert!(client.is_closed());
    // Every event still gets its one response before the stream ends: a
    // transport error saying the close gave up.
    let got = collect_until_end(&responses);
    assert_eq!(got.len(), 5, "{got:?}");
    for r in &got {
        assert!(
            matches!(&r.error, Some(ResponseError::Transport(m)) if m.contains("close")),
            "{r:?}"
        );
    }
    let mut ev = client.new_event();
    ev.add_field("id", 1);
    assert_eq!(ev.send(), Err(SendError::Closed));
    assert_eq!(client.close(), Ok(()));
    drop(client);
    drop(stalled);
}

#[test]
fn close_within_gives_up_promptly_with_block_on_send_and_a_full_queue() {
    let stalled = Stalled::start();
    let rx = receiver();
    let client = client(
        config(&rx)
            .api_host(stalled.url.clone())
            .block_on_send(true)
            .pending_work_capacity(3)
            .max_batch_size(1)
            .max_concurrent_batches(1)
            .request_timeout(Duration::from_secs(60)),
    );
    // A thread fills the sender, the hand-off and the queue, then blocks.
    let sender = spawn_sender(&client, 0..20);
    assert!(wait_until(PATIENCE, || client.metrics().queue_length == 3));
    let t0 = Instant::now();
    assert!(matches!(
        client.close_within(Duration::from_millis(300)),
        Err(CloseError::Timeout { .. })
    ));
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    // Once the server goes away, the blocked sender is released too.
    drop(stalled);
    assert!(
        wait_until(PATIENCE, || sender.is_finished()),
        "sender released"
    );
    let accepted = sender.join().unwrap().len();
    // At least the one in flight and the three queued.
    assert!(accepted >= 4, "{accepted}");
}

#[test]
fn dropping_the_last_handle_delivers_what_was_sent() {
    let rx = receiver();
    let client = client(one_batch(&rx));
    let responses = client.responses();
    let builder = client.new_builder();
    send_ids(&client, 0..20);
    drop(client);
    // The builder still holds the client: it is open.
    assert!(!responses.is_closed());
    let mut ev = builder.new_event();
    ev.add_field("id", 20).add_metadata(20u64);
    ev.send().unwrap();
    let t0 = Instant::now();
    drop(builder);
    assert!(t0.elapsed() < PATIENCE);
    // Delivered before the drop returned.
    assert_eq!(rx.events().len(), 21);
    let got = collect_until_end(&responses);
    assert_eq!(got.len(), 21);
    assert!(got.iter().all(|r| r.is_success()));
}

#[test]
fn dropping_the_last_handle_with_a_stalled_receiver_is_bounded() {
    let stalled = Stalled::start();
    let rx = receiver();
    let client = client(
        config(&rx)
            .api_host(stalled.url.clone())
            .request_timeout(Duration::from_secs(60))
            .shutdown_timeout(Duration::from_millis(300)),
    );
    let responses = client.responses();
    send_ids(&client, 0..5);
    let t0 = Instant::now();
    drop(client);
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert!(responses.is_closed());
    drop(stalled);
}

/// Sends from several threads race a close. Returns, per round, the
/// accepted sends, the responses read, and the metrics.
fn race_sends_against_close(
    block_on_send: bool,
    rounds: usize,
) -> Vec<(
    Vec<u64>,
    Vec<libhoney::Response>,
    libhoney::MetricsSnapshot,
    libhoney_receiver::RunningReceiver,
)> {
    (0..rounds)
        .map(|_| {
            let rx = receiver();
            let client = client(
                config(&rx)
                    .max_batch_size(20)
                    .block_on_send(block_on_send)
                    .pending_work_capacity(16)
                    // Four threads overflowing flat out make responses faster
                    // than a reader thread takes them: room for all of them,
                    // so that a response dropped by a full response queue
                    // is not taken for one never given.
                    .response_queue_capacity(1 << 22),
            );
            // Read responses as they come: non-blocking sends make many
            // overflow responses, more than any queue should hold.
            let reader = spawn_reader(&client);
            let senders = RacingSenders::start(&client, 4);
            assert!(rx.wait_for_events(100, PATIENCE));
            client.close().unwrap();
            let sent = senders.join();
            let got = reader.join().unwrap();
            (sent, got, client.metrics(), rx)
        })
        .collect()
}

/// Whatever the timing, every send that returned `Ok` gets exactly one
/// response (none dropped, none lost in the queue), every other one
/// `Err(Closed)`, and the receiver has exactly the successes. Needs both the
/// transmission (events handed over while it closes) and the client (sends
/// past its closed check while it closes) to wait for sends in progress.
#[test]
fn sends_racing_a_close_each_get_one_response() {
    for block in [true, false] {
        for (round, (sent, got, m, rx)) in
            race_sends_against_close(block, 3).into_iter().enumerate()
        {
            let ctx = format!("block_on_send {block}, round {round}: {m:?}");
            assert_eq!(got.len(), sent.len(), "{ctx}");
            assert_eq!(m.events_queued, sent.len() as u64, "{ctx}");
            check_invariant(&sent, &got, &rx, &m);
        }
    }
}

#[test]
fn block_on_response_with_a_reader_drops_nothing() {
    let rx = receiver();
    let client = client(
        config(&rx)
            .block_on_response(true)
            .response_queue_capacity(4)
            .max_batch_size(10),
    );
    let reader = spawn_reader(&client);
    let sent = send_ids(&client, 0..200);
    client.close().unwrap();
    let got = reader.join().unwrap();
    let tally = check_invariant(&sent, &got, &rx, &client.metrics());
    assert_eq!(tally.ok.len(), 200);
}

http_test!(lifecycle::block_on_response_without_a_reader_does_not_hang_close);

/// The transmission is public: held directly, its flush and close take any
/// duration, `Duration::MAX` included, without overflowing a deadline.
#[test]
fn the_transmission_itself_takes_any_timeout() {
    use libhoney::transmission::{Http, Transmission};
    let rx = receiver();
    let http = std::sync::Arc::new(Http::new());
    let client = client(config(&rx).transmission_arc(http.clone()));
    let sent = send_ids(&client, 0..3);
    http.flush(Duration::MAX).unwrap();
    assert_eq!(rx.events().len(), sent.len());
    http.close(Duration::MAX).unwrap();
    client.close().unwrap();
}
