//! Fault tests that both HTTP transmissions must pass alike, run by
//! `http_faults` (over `Http`) and `tokio_faults` (over
//! the tokio transmission, on both runtime flavours). Each checks the
//! invariant: every accepted event gets exactly one response, and the events
//! the receiver accepted are exactly those reported as sent; plus the
//! metrics.

use std::time::{Duration, Instant, SystemTime};

use libhoney::{MetricsSnapshot, ResponseError};
use libhoney_receiver::{Fault, Receiver, RunningReceiver};

use super::{
    check_invariant, config, http_date, one_batch, receiver, run, send_ids, status, Kind, Tally,
    KEY, PATIENCE,
};

/// A receiver whose first request is answered after 5 s, and [`run`] of `n`
/// events through it with a 1 s `request_timeout` and `max_attempts`.
async fn run_with_a_slow_first_request(
    kind: Kind,
    max_attempts: u32,
    n: u64,
) -> (Tally, MetricsSnapshot) {
    let rx = receiver();
    rx.push_fault(Fault::Delay(Duration::from_secs(5)), 1);
    let cfg = one_batch(&rx)
        .request_timeout(Duration::from_secs(1))
        .max_attempts(max_attempts);
    run(kind, &rx, cfg, n).await
}

pub async fn transient_statuses_are_retried_until_success(kind: Kind) {
    for code in [500, 502, 503, 504, 408, 429] {
        let rx = receiver();
        rx.push_fault(status(code, "try later", None), 2);
        let (tally, m) = run(kind, &rx, one_batch(&rx).max_attempts(3), 10).await;
        assert_eq!(tally.ok.len(), 10, "{code}");
        assert_eq!((m.retries, m.batches_sent), (2, 3), "{code}: {m:?}");
        let reqs = rx.requests();
        let statuses: Vec<u16> = reqs.iter().map(|r| r.response_status).collect();
        assert_eq!(statuses, vec![code, code, 200], "{code}");
        // Each attempt sends the same request again.
        for r in &reqs[1..] {
            assert_eq!(r.decoded_body, reqs[0].decoded_body, "{code}");
            assert_eq!(r.path, reqs[0].path);
            assert_eq!(r.headers, reqs[0].headers, "{code}");
        }
    }
}

pub async fn persistent_server_errors_fail_after_max_attempts(kind: Kind) {
    let rx = receiver();
    rx.push_fault(status(500, "{\"error\":\"boom\"}", None), 10);
    let (tally, m) = run(kind, &rx, one_batch(&rx).max_attempts(3), 5).await;
    assert!(tally.ok.is_empty());
    for r in tally.failed.values() {
        assert_eq!(r.error, Some(ResponseError::HttpStatus(500)), "{r:?}");
        assert_eq!(r.status_code, Some(500));
        assert_eq!(r.body, "{\"error\":\"boom\"}");
    }
    assert_eq!((m.retries, m.batches_sent), (2, 3), "{m:?}");
    assert_eq!(rx.pending_faults(), 7);
}

pub async fn retry_after_in_seconds_is_waited_for(kind: Kind) {
    let rx = receiver();
    rx.push_fault(
        status(
            429,
            "Request dropped due to rate limiting.",
            Some("1".into()),
        ),
        1,
    );
    let client = kind.client(one_batch(&rx));
    let sent = send_ids(&client, 0..5);
    let responses = client.close_and_collect().await;
    let m = client.metrics();
    let tally = check_invariant(&sent, &responses, &rx, &m);
    assert_eq!(tally.ok.len(), 5);
    // A response's duration runs from the first attempt to the answer.
    for r in &responses {
        assert!(r.duration >= Duration::from_secs(1), "{r:?}");
    }
    assert_eq!((m.retries, m.batches_sent), (1, 2), "{m:?}");
    assert_eq!(rx.requests().len(), 2);
}

pub async fn retry_after_as_an_http_date_is_waited_for(kind: Kind) {
    let rx = receiver();
    // Whole seconds: the wait is at least 2 s after now.
    let when = SystemTime::now() + Duration::from_secs(3);
    rx.push_fault(status(503, "later", Some(http_date(when))), 1);
    let client = kind.client(one_batch(&rx));
    let sent = send_ids(&client, 0..4);
    let responses = client.close_and_collect().await;
    let tally = check_invariant(&sent, &responses, &rx, &client.metrics());
    assert_eq!(tally.ok.len(), 4);
    // A response's duration runs from the first attempt to the answer.
    for r in &responses {
        assert!(r.duration >= Duration::from_millis(1500), "{r:?}");
    }
    assert_eq!(client.metrics().retries, 1);
}

pub async fn retry_after_beyond_the_deadline_fails_at_once(kind: Kind) {
    let rx = receiver();
    rx.push_fault(status(429, "much later", Some("3600".into())), 1);
    let t0 = Instant::now();
    let (tally, m) = run(kind, &rx, one_batch(&rx), 3).await;
    assert!(t0.elapsed() < PATIENCE);
    for r in tally.failed.values() {
        assert_eq!(r.error, Some(ResponseError::HttpStatus(429)), "{r:?}");
        assert_eq!(r.body, "much later");
    }
    assert_eq!(tally.failed.len(), 3);
    assert_eq!((m.retries, m.batches_sent), (0, 1));
}

pub async fn dropped_connections_are_retried(kind: Kind) {
    let rx = receiver();
    rx.push_fault(Fault::DropConnection, 2);
    let (tally, m) = run(kind, &rx, one_batch(&rx).max_attempts(3), 8).await;
    assert_eq!(tally.ok.len(), 8);
    assert_eq!((m.retries, m.batches_sent), (2, 3), "{m:?}");
}

pub async fn dropped_connections_fail_as_transport_errors_after_max_attempts(kind: Kind) {
    let rx = receiver();
    rx.push_fault(Fault::DropConnection, 3);
    let (tally, m) = run(kind, &rx, one_batch(&rx).max_attempts(3), 4).await;
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

pub async fn requests_slower_than_the_timeout_are_retried(kind: Kind) {
    let (tally, m) = run_with_a_slow_first_request(kind, 2, 6).await;
    assert_eq!(tally.ok.len(), 6, "the retry delivers each event once");
    assert_eq!((m.retries, m.batches_sent), (1, 2), "{m:?}");
}

pub async fn requests_slower_than_the_timeout_fail_without_retries(kind: Kind) {
    let (tally, m) = run_with_a_slow_first_request(kind, 1, 3).await;
    assert!(tally.ok.is_empty());
    for r in tally.failed.values() {
        match &r.error {
            Some(ResponseError::Transport(msg)) => {
                assert!(msg.to_lowercase().contains(kind.timeout_word()), "{msg}")
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((m.retries, m.batches_sent), (0, 1));
}

pub async fn per_event_rejections_fail_only_their_event(kind: Kind) {
    let rx = receiver();
    rx.push_fault(
        Fault::EventStatus {
            index: 2,
            status: 400,
            error: "Event has too many columns.".into(),
        },
        1,
    );
    let client = kind.client(one_batch(&rx));
    let sent = send_ids(&client, 0..5);
    // And one the receiver itself rejects: a string over 64 KB.
    let mut ev = client.new_event();
    ev.add_field("id", 5)
        .add_field("long", "x".repeat(70_000))
        .add_metadata(5u64);
    ev.send().unwrap();
    let sent: Vec<u64> = sent.into_iter().chain([5]).collect();
    let responses = client.close_and_collect().await;
    let m = client.metrics();
    let tally = check_invariant(&sent, &responses, &rx, &m);
    assert_eq!(tally.ok, [0, 1, 3, 4].into_iter().collect());
    let r2 = &tally.failed[&2];
    assert_eq!(
        r2.error,
        Some(ResponseError::Rejected(
            "Event has too many columns.".into()
        ))
    );
    assert_eq!(r2.status_code, Some(400));
    let r5 = &tally.failed[&5];
    assert!(
        matches!(&r5.error, Some(ResponseError::Rejected(msg)) if !msg.is_empty()),
        "{r5:?}"
    );
    assert_eq!(r5.status_code, Some(400));
    assert_eq!((m.retries, m.batches_sent), (0, 1), "not retried");
}

pub async fn a_short_status_array_leaves_the_rest_missing(kind: Kind) {
    let rx = receiver();
    rx.push_fault(Fault::ShortStatusArray { len: 3 }, 1);
    let (tally, m) = run(kind, &rx, one_batch(&rx), 5).await;
    assert_eq!(tally.ok, [0, 1, 2].into_iter().collect());
    for id in [3, 4] {
        let r = &tally.failed[&id];
        assert_eq!(r.error, Some(ResponseError::MissingStatus), "{r:?}");
    }
    assert_eq!(m.retries, 0);
}

pub async fn a_long_status_array_is_ignored_past_the_events(kind: Kind) {
    let rx = receiver();
    rx.push_fault(Fault::LongStatusArray { extra: 4 }, 1);
    let (tally, m) = run(kind, &rx, one_batch(&rx), 5).await;
    assert_eq!(tally.ok.len(), 5);
    assert_eq!(m.retries, 0);
}

pub async fn a_malformed_status_body_fails_every_event(kind: Kind) {
    let rx = receiver();
    rx.push_fault(Fault::MalformedStatusBody, 1);
    let (tally, m) = run(kind, &rx, one_batch(&rx), 4).await;
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

pub async fn a_wrong_api_key_fails_with_401_and_is_not_retried(kind: Kind) {
    let rx = receiver();
    let cfg = one_batch(&rx).api_key("wrong-key-1234").max_attempts(5);
    let (tally, m) = run(kind, &rx, cfg, 3).await;
    assert!(tally.ok.is_empty());
    for r in tally.failed.values() {
        assert_eq!(r.error, Some(ResponseError::HttpStatus(401)), "{r:?}");
        assert_eq!(r.status_code, Some(401));
        assert!(r.body.contains("unknown API key"), "{r:?}");
        assert!(!format!("{r:?}").contains("wrong-key-1234"));
    }
    assert_eq!((m.retries, m.batches_sent), (0, 1));
}

pub async fn a_request_level_400_is_not_retried(kind: Kind) {
    let rx = receiver();
    let body = "{\"error\":\"Request body is malformed and cannot be read.\"}";
    rx.push_fault(status(400, body, None), 1);
    let (tally, m) = run(kind, &rx, one_batch(&rx).max_attempts(5), 3).await;
    for r in tally.failed.values() {
        assert_eq!(r.error, Some(ResponseError::HttpStatus(400)), "{r:?}");
        assert_eq!(r.body, body);
    }
    assert_eq!(tally.failed.len(), 3);
    assert_eq!((m.retries, m.batches_sent), (0, 1));
}

/// A receiver for outage tests. While it is down its port is free, and any
/// other receiver may bind it; with a key of its own (one per kind), such a
/// stand-in answers this test's retries with 401 instead of quietly
/// accepting them (and this test's events never pollute another test's
/// receiver).
pub fn receiver_for_outages(kind: Kind) -> (RunningReceiver, &'static str) {
    let key = match kind {
        Kind::Http => "outage-test-key",
        #[cfg(feature = "tokio")]
        Kind::Tokio => "tokio-outage-test-key",
    };
    let rx = Receiver::builder().api_key(key).start().unwrap();
    (rx, key)
}

pub async fn an_outage_is_ridden_out_by_retries(kind: Kind) {
    let (rx, key) = receiver_for_outages(kind);
    rx.push_fault(Fault::Down(Duration::from_millis(400)), 1);
    let cfg = one_batch(&rx)
        .api_key(key)
        .max_attempts(50)
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(100))
        .retry_deadline(PATIENCE);
    let (tally, m) = run(kind, &rx, cfg, 10).await;
    assert_eq!(tally.ok.len(), 10);
    assert!(m.retries >= 2, "refused while down: {m:?}");
    // Attempts refused while down never reached the receiver.
    assert!(m.batches_sent > rx.requests().len() as u64, "{m:?}");
}

/// Many batches, concurrent requests, and a long mixed sequence of faults:
/// whatever each batch meets, the invariant holds.
pub async fn mixed_faults_over_many_batches_keep_the_invariant(kind: Kind) {
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
        // Long enough that only the delayed request times out, even on a
        // loaded machine: a timed-out request the receiver did accept would
        // be sent twice (at-least-once delivery).
        .request_timeout(Duration::from_secs(2))
        .max_attempts(3);
    let (tally, m) = run(kind, &rx, cfg, 300).await;
    assert!(!tally.ok.is_empty() && !tally.failed.is_empty(), "{m:?}");
    assert_eq!(rx.pending_faults(), 0, "every fault was met");
    // Every attempt reached the receiver (the timed-out one is counted but
    // not recorded: its client left before the answer).
    assert_eq!(m.batches_sent, rx.stats().requests, "{m:?}");
}
