//! Faults against the tokio transmission, on current-thread and multi-thread
//! runtimes: every fault the receiver can inject, queue overflow,
//! `block_on_send` and `block_on_response`. Each test checks the invariant:
//! every accepted event gets exactly one response, and the events the
//! receiver accepted are exactly those reported as sent; plus the metrics.
#![cfg(feature = "tokio")]

mod http_support;

use std::time::{Duration, SystemTime};

use http_support::*;
use libhoney::transmission::Tokio;
use libhoney::{Client, Config, MetricsSnapshot, Response, ResponseError, TryRecvError};
use libhoney_receiver::{Fault, Receiver, RunningReceiver};

/// Runs an async test body on a current-thread and on a multi-thread runtime.
macro_rules! on_both_runtimes {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "current_thread")]
            async fn current_thread() {
                super::$name().await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn multi_thread() {
                super::$name().await
            }
        }
    };
}

/// A client over a new tokio transmission (on the current runtime), and a
/// handle to the transmission.
fn tokio_client(cfg: Config) -> (Client, Tokio) {
    let t = Tokio::new();
    (client(cfg.transmission(t.clone())), t)
}

/// Closes the transmission, then the client (which ends the stream), and
/// returns every response.
async fn close_and_collect_async(client: &Client, t: &Tokio) -> Vec<Response> {
    let responses = client.responses();
    t.close(PATIENCE).await.expect("close drains everything");
    client.close_async(PATIENCE).await.expect("client closes");
    let mut out = Vec::new();
    loop {
        match responses.try_recv() {
            Ok(r) => out.push(r),
            Err(TryRecvError::Ended) => return out,
            Err(TryRecvError::Empty) => panic!("the stream did not end after close"),
        }
    }
}

/// Sends `n` events (ids `0..n`) through a tokio client built from `cfg`,
/// closes it, and checks the invariant.
async fn run(rx: &RunningReceiver, cfg: Config, n: u64) -> (Tally, MetricsSnapshot) {
    let (client, t) = tokio_client(cfg);
    let sent = send_ids(&client, 0..n);
    let responses = close_and_collect_async(&client, &t).await;
    let metrics = client.metrics();
    let tally = check_invariant(&sent, &responses, rx, &metrics);
    (tally, metrics)
}

fn status(status: u16, body: &str, retry_after: Option<String>) -> Fault {
    Fault::Status {
        status,
        body: body.to_string(),
        retry_after,
    }
}

/// One batch for all events, sent at close.
fn one_batch(rx: &RunningReceiver) -> Config {
    config(rx)
        .max_batch_size(1000)
        .send_frequency(Duration::from_secs(3600))
}

async fn transient_statuses_are_retried_until_success() {
    for code in [500, 502, 503, 504, 408, 429] {
        let rx = receiver();
        rx.push_fault(status(code, "try later", None), 2);
        let (tally, m) = run(&rx, one_batch(&rx).max_attempts(3), 10).await;
        assert_eq!(tally.ok.len(), 10, "{code}");
        assert_eq!((m.retries, m.batches_sent), (2, 3), "{code}: {m:?}");
        let reqs = rx.requests();
        let statuses: Vec<u16> = reqs.iter().map(|r| r.response_status).collect();
        assert_eq!(statuses, vec![code, code, 200], "{code}");
        for r in &reqs[1..] {
            assert_eq!(r.decoded_body, reqs[0].decoded_body, "{code}");
            assert_eq!(r.headers, reqs[0].headers, "{code}");
        }
    }
}
on_both_runtimes!(transient_statuses_are_retried_until_success);

async fn persistent_server_errors_fail_after_max_attempts() {
    let rx = receiver();
    rx.push_fault(status(500, "{\"error\":\"boom\"}", None), 10);
    let (tally, m) = run(&rx, one_batch(&rx).max_attempts(3), 5).await;
    assert!(tally.ok.is_empty());
    for r in tally.failed.values() {
        assert_eq!(r.error, Some(ResponseError::HttpStatus(500)), "{r:?}");
        assert_eq!(r.status_code, Some(500));
        assert_eq!(r.body, "{\"error\":\"boom\"}");
    }
    assert_eq!((m.retries, m.batches_sent), (2, 3), "{m:?}");
    assert_eq!(rx.pending_faults(), 7);
}
on_both_runtimes!(persistent_server_errors_fail_after_max_attempts);

async fn retry_after_is_waited_for() {
    let rx = receiver();
    rx.push_fault(status(429, "slow down", Some("1".into())), 1);
    let (tally, m) = run(&rx, one_batch(&rx), 5).await;
    assert_eq!(tally.ok.len(), 5);
    let responses = tally.ok.len();
    assert_eq!(responses, 5);
    assert_eq!((m.retries, m.batches_sent), (1, 2), "{m:?}");
    // As an HTTP date, whole seconds: at least 1 s after now.
    let rx = receiver();
    let when = SystemTime::now() + Duration::from_secs(2);
    rx.push_fault(status(503, "later", Some(http_date(when))), 1);
    let (client, t) = tokio_client(one_batch(&rx));
    let sent = send_ids(&client, 0..3);
    let responses = close_and_collect_async(&client, &t).await;
    let tally = check_invariant(&sent, &responses, &rx, &client.metrics());
    assert_eq!(tally.ok.len(), 3);
    // A response's duration runs from the first attempt to the answer.
    for r in &responses {
        assert!(r.duration >= Duration::from_millis(900), "{r:?}");
    }
}
on_both_runtimes!(retry_after_is_waited_for);

async fn retry_after_beyond_the_deadline_fails_at_once() {
    let rx = receiver();
    rx.push_fault(status(429, "much later", Some("3600".into())), 1);
    let (tally, m) = run(&rx, one_batch(&rx), 3).await;
    for r in tally.failed.values() {
        assert_eq!(r.error, Some(ResponseError::HttpStatus(429)), "{r:?}");
        assert_eq!(r.body, "much later");
    }
    assert_eq!(tally.failed.len(), 3);
    assert_eq!((m.retries, m.batches_sent), (0, 1));
}
on_both_runtimes!(retry_after_beyond_the_deadline_fails_at_once);

async fn dropped_connections_are_retried() {
    let rx = receiver();
    rx.push_fault(Fault::DropConnection, 2);
    let (tally, m) = run(&rx, one_batch(&rx).max_attempts(3), 8).await;
    assert_eq!(tally.ok.len(), 8);
    assert_eq!((m.retries, m.batches_sent), (2, 3), "{m:?}");

    let rx = receiver();
    rx.push_fault(Fault::DropConnection, 3);
    let (tally, m) = run(&rx, one_batch(&rx).max_attempts(3), 4).await;
    assert!(tally.ok.is_empty());
    for r in tally.failed.values() {
        match &r.error {
            Some(ResponseError::Transport(msg)) => {
                assert!(msg.contains("after 3 attempts"), "{msg}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(r.status_code, None);
    }
    assert_eq!((m.retries, m.batches_sent), (2, 3), "{m:?}");
}
on_both_runtimes!(dropped_connections_are_retried);

async fn requests_slower_than_the_timeout_are_retried_or_fail() {
    let rx = receiver();
    rx.push_fault(Fault::Delay(Duration::from_secs(5)), 1);
    let cfg = one_batch(&rx)
        .request_timeout(Duration::from_millis(500))
        .max_attempts(2);
    let (tally, m) = run(&rx, cfg, 6).await;
    assert_eq!(tally.ok.len(), 6, "the retry delivers each event once");
    assert_eq!((m.retries, m.batches_sent), (1, 2), "{m:?}");

    let rx = receiver();
    rx.push_fault(Fault::Delay(Duration::from_secs(5)), 1);
    let cfg = one_batch(&rx)
        .request_timeout(Duration::from_millis(500))
        .max_attempts(1);
    let (tally, m) = run(&rx, cfg, 3).await;
    assert!(tally.ok.is_empty());
    for r in tally.failed.values() {
        match &r.error {
            Some(ResponseError::Transport(msg)) => assert!(msg.contains("timed out"), "{msg}"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((m.retries, m.batches_sent), (0, 1));
}
on_both_runtimes!(requests_slower_than_the_timeout_are_retried_or_fail);

async fn status_arrays_shape_the_responses() {
    // One event rejected by the API.
    let rx = receiver();
    rx.push_fault(
        Fault::EventStatus {
            index: 2,
            status: 400,
            error: "Event has too many columns.".into(),
        },
        1,
    );
    let (tally, m) = run(&rx, one_batch(&rx), 5).await;
    assert_eq!(tally.ok, [0, 1, 3, 4].into_iter().collect());
    let r2 = &tally.failed[&2];
    assert_eq!(
        r2.error,
        Some(ResponseError::Rejected(
            "Event has too many columns.".into()
        ))
    );
    assert_eq!(r2.status_code, Some(400));
    assert_eq!(m.retries, 0);

    // Too few statuses: the rest are missing (and not accepted).
    let rx = receiver();
    rx.push_fault(Fault::ShortStatusArray { len: 3 }, 1);
    let (tally, m) = run(&rx, one_batch(&rx), 5).await;
    assert_eq!(tally.ok, [0, 1, 2].into_iter().collect());
    for id in [3, 4] {
        assert_eq!(tally.failed[&id].error, Some(ResponseError::MissingStatus));
    }
    assert_eq!(m.retries, 0);

    // Too many: ignored past the events.
    let rx = receiver();
    rx.push_fault(Fault::LongStatusArray { extra: 4 }, 1);
    let (tally, _) = run(&rx, one_batch(&rx), 5).await;
    assert_eq!(tally.ok.len(), 5);

    // Not an array at all.
    let rx = receiver();
    rx.push_fault(Fault::MalformedStatusBody, 1);
    let (tally, m) = run(&rx, one_batch(&rx), 4).await;
    assert!(tally.ok.is_empty());
    for r in tally.failed.values() {
        assert!(
            matches!(r.error, Some(ResponseError::MalformedResponse(_))),
            "{r:?}"
        );
        assert_eq!(r.status_code, Some(200));
    }
    assert_eq!(m.retries, 0);
}
on_both_runtimes!(status_arrays_shape_the_responses);

async fn request_level_client_errors_are_not_retried() {
    let rx = receiver();
    let body = "{\"error\":\"Request body is malformed and cannot be read.\"}";
    rx.push_fault(status(400, body, None), 1);
    let (tally, m) = run(&rx, one_batch(&rx).max_attempts(5), 3).await;
    assert_eq!(tally.failed.len(), 3);
    for r in tally.failed.values() {
        assert_eq!(r.error, Some(ResponseError::HttpStatus(400)), "{r:?}");
        assert_eq!(r.body, body);
    }
    assert_eq!((m.retries, m.batches_sent), (0, 1));

    let rx = receiver();
    let cfg = one_batch(&rx).api_key("wrong-key-1234").max_attempts(5);
    let (tally, m) = run(&rx, cfg, 3).await;
    for r in tally.failed.values() {
        assert_eq!(r.error, Some(ResponseError::HttpStatus(401)), "{r:?}");
        assert!(r.body.contains("unknown API key"), "{r:?}");
        assert!(!format!("{r:?}").contains("wrong-key-1234"));
    }
    assert_eq!((m.retries, m.batches_sent), (0, 1));
}
on_both_runtimes!(request_level_client_errors_are_not_retried);

/// A receiver for outage tests, with a key of its own: while it is down its
/// port is free, and a stand-in bound there answers 401 rather than
/// quietly accepting this test's retries.
fn receiver_for_outages() -> (RunningReceiver, &'static str) {
    const DOWN_KEY: &str = "tokio-outage-test-key";
    let rx = Receiver::builder().api_key(DOWN_KEY).start().unwrap();
    (rx, DOWN_KEY)
}

async fn an_outage_is_ridden_out_by_retries() {
    let (rx, key) = receiver_for_outages();
    rx.push_fault(Fault::Down(Duration::from_millis(300)), 1);
    let cfg = one_batch(&rx)
        .api_key(key)
        .max_attempts(50)
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(100))
        .retry_deadline(PATIENCE);
    let (tally, m) = run(&rx, cfg, 10).await;
    assert_eq!(tally.ok.len(), 10);
    assert!(m.retries >= 2, "refused while down: {m:?}");
    assert!(m.batches_sent > rx.requests().len() as u64, "{m:?}");
}
on_both_runtimes!(an_outage_is_ridden_out_by_retries);

/// Many batches, concurrent requests, and a long mixed sequence of faults:
/// whatever each batch meets, the invariant holds.
async fn mixed_faults_over_many_batches_keep_the_invariant() {
    let rx = Receiver::builder().api_key(KEY).threads(2).start().unwrap();
    let pass = Fault::Delay(Duration::ZERO);
    let plan: Vec<(Fault, usize)> = vec![
        (status(500, "a", None), 2),
        (pass.clone(), 1),
        (Fault::DropConnection, 1),
        (
            Fault::EventStatus {
                index: 1,
                status: 400,
                error: "bad".into(),
            },
            2,
        ),
        (Fault::ShortStatusArray { len: 2 }, 1),
        (status(429, "slow", Some("0".into())), 1),
        (pass.clone(), 2),
        (Fault::LongStatusArray { extra: 3 }, 1),
        (Fault::MalformedStatusBody, 1),
        (status(503, "b", None), 3),
        (Fault::Delay(Duration::from_secs(8)), 1),
        (status(401, "no", None), 1),
        (pass, 1),
        (Fault::DropConnection, 2),
        (status(400, "nope", None), 1),
    ];
    for (f, n) in plan {
        rx.push_fault(f, n);
    }
    let cfg = config(&rx)
        .max_batch_size(7)
        .max_concurrent_batches(4)
        .send_frequency(Duration::from_millis(20))
        // Only the delayed request times out, even on a loaded machine.
        .request_timeout(Duration::from_secs(2))
        .max_attempts(3);
    let (tally, m) = run(&rx, cfg, 300).await;
    assert!(!tally.ok.is_empty() && !tally.failed.is_empty(), "{m:?}");
    assert_eq!(rx.pending_faults(), 0, "every fault was met");
    assert_eq!(m.batches_sent, rx.stats().requests, "{m:?}");
}
on_both_runtimes!(mixed_faults_over_many_batches_keep_the_invariant);

/// On a current-thread runtime nothing else runs while this task sends, so
/// the queue's capacity decides exactly which events overflow.
#[tokio::test(flavor = "current_thread")]
async fn a_full_queue_overflows_without_blocking_the_executor() {
    for block_on_send in [false, true] {
        let rx = receiver();
        let cfg = one_batch(&rx)
            .pending_work_capacity(5)
            .block_on_send(block_on_send);
        let (client, t) = tokio_client(cfg);
        // With block_on_send, a thread inside the runtime still never waits
        // (it would stall the batcher that drains the queue).
        let sent = send_ids(&client, 0..20);
        assert_eq!(client.metrics().queue_length, 5);
        let responses = close_and_collect_async(&client, &t).await;
        let tally = check_invariant(&sent, &responses, &rx, &client.metrics());
        assert_eq!(tally.ok, (0..5).collect(), "block_on_send={block_on_send}");
        assert_eq!(tally.overflowed(), 15);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overflow_on_a_multi_thread_runtime_still_answers_every_event() {
    let rx = receiver();
    let cfg = config(&rx)
        .pending_work_capacity(3)
        .max_batch_size(2)
        .max_concurrent_batches(1);
    rx.push_fault(Fault::Delay(Duration::from_millis(50)), 3);
    let (tally, m) = run(&rx, cfg, 200).await;
    assert_eq!(tally.ok.len() + tally.overflowed(), 200, "{m:?}");
    assert!(tally.overflowed() > 0, "{m:?}");
}

/// Plain threads that send with `block_on_send` into a transmission hosted
/// by a runtime wait for room: nothing is lost, through transient faults.
async fn block_on_send_from_plain_threads_loses_nothing() {
    let rx = receiver();
    let pass = Fault::Delay(Duration::ZERO);
    for _ in 0..6 {
        rx.push_fault(status(503, "busy", None), 1);
        rx.push_fault(Fault::DropConnection, 1);
        rx.push_fault(pass.clone(), 2);
    }
    let cfg = config(&rx)
        .pending_work_capacity(4)
        .max_batch_size(5)
        .max_concurrent_batches(2)
        .send_frequency(Duration::from_millis(5))
        .block_on_send(true)
        .max_attempts(10);
    let (client, t) = tokio_client(cfg);
    let threads: Vec<_> = (0..4u64)
        .map(|k| {
            let client = client.clone();
            std::thread::spawn(move || send_ids(&client, k * 1000..k * 1000 + 100))
        })
        .collect();
    // The senders are plain threads; this task must not block while they
    // run (on a current-thread runtime it drives the transmission).
    let mut sent = Vec::new();
    for th in threads {
        while !th.is_finished() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        sent.extend(th.join().unwrap());
    }
    let responses = close_and_collect_async(&client, &t).await;
    let m = client.metrics();
    let tally = check_invariant(&sent, &responses, &rx, &m);
    assert_eq!(tally.ok.len(), 400, "{m:?}");
    assert_eq!(m.events_overflowed, 0, "{m:?}");
    assert!(m.retries > 0, "{m:?}");
}
on_both_runtimes!(block_on_send_from_plain_threads_loses_nothing);

/// With `block_on_response` and a tiny response queue read by a task on the
/// same runtime, responses wait on the blocking pool, never on an executor
/// thread: nothing is dropped and nothing deadlocks.
async fn block_on_response_with_an_async_reader_drops_nothing() {
    let rx = receiver();
    let cfg = config(&rx)
        .response_queue_capacity(2)
        .block_on_response(true)
        .max_batch_size(5)
        .send_frequency(Duration::from_millis(5));
    let (client, t) = tokio_client(cfg);
    let responses = client.responses();
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        loop {
            match responses.try_recv() {
                Ok(r) => got.push(r),
                Err(TryRecvError::Empty) => tokio::time::sleep(Duration::from_millis(1)).await,
                Err(TryRecvError::Ended) => return got,
            }
        }
    });
    let sent = send_ids(&client, 0..100);
    // A too-large event: its response comes from the batcher.
    let mut ev = client.new_event();
    ev.add_field("id", 100u64)
        .add_field("blob", "x".repeat(1_100_000));
    ev.add_metadata(100u64);
    ev.send().unwrap();
    let sent: Vec<u64> = sent.into_iter().chain([100]).collect();
    t.flush(PATIENCE).await.unwrap();
    t.close(PATIENCE).await.unwrap();
    client.close_async(PATIENCE).await.unwrap();
    let got = reader.await.unwrap();
    let m = client.metrics();
    let tally = check_invariant(&sent, &got, &rx, &m);
    assert_eq!(tally.ok.len(), 100);
    assert!(matches!(
        tally.failed[&100].error,
        Some(ResponseError::TooLarge { .. })
    ));
}
on_both_runtimes!(block_on_response_with_an_async_reader_drops_nothing);
