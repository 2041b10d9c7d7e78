//! Every fault the receiver can inject, against the default HTTP
//! transmission. Each test checks the invariant: every accepted event gets
//! exactly one response, and the events the receiver accepted are exactly
//! those the SDK reported as sent; plus the self-metrics.

mod http_support;

use std::time::{Duration, Instant, SystemTime};

use http_support::*;
use libhoney::{Config, MetricsSnapshot, ResponseError};
use libhoney_receiver::{Fault, Receiver, RunningReceiver};

/// Sends `n` events (ids `0..n`) through a client built from `cfg`, closes
/// it, and checks the invariant.
fn run(rx: &RunningReceiver, cfg: Config, n: u64) -> (Tally, MetricsSnapshot) {
    let client = client(cfg);
    let sent = send_ids(&client, 0..n);
    let responses = close_and_collect(&client);
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

#[test]
fn transient_statuses_are_retried_until_success() {
    for code in [500, 502, 503, 504, 408, 429] {
        let rx = receiver();
        rx.push_fault(status(code, "try later", None), 2);
        let (tally, m) = run(&rx, one_batch(&rx).max_attempts(3), 10);
        assert_eq!(tally.ok.len(), 10, "{code}");
        assert_eq!(m.retries, 2, "{code}: {m:?}");
        assert_eq!(m.batches_sent, 3, "{code}: {m:?}");
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

#[test]
fn persistent_server_errors_fail_after_max_attempts() {
    let rx = receiver();
    rx.push_fault(status(500, "{\"error\":\"boom\"}", None), 10);
    let (tally, m) = run(&rx, one_batch(&rx).max_attempts(3), 5);
    assert!(tally.ok.is_empty());
    for r in tally.failed.values() {
        assert_eq!(r.error, Some(ResponseError::HttpStatus(500)), "{r:?}");
        assert_eq!(r.status_code, Some(500));
        assert_eq!(r.body, "{\"error\":\"boom\"}");
    }
    assert_eq!((m.retries, m.batches_sent), (2, 3), "{m:?}");
    assert_eq!(rx.pending_faults(), 7);
}

#[test]
fn retry_deadline_stops_retrying() {
    let rx = receiver();
    rx.push_fault(status(503, "busy", None), 1000);
    let cfg = one_batch(&rx)
        .max_attempts(1000)
        .retry_backoff(Duration::from_millis(40), Duration::from_millis(40))
        .retry_deadline(Duration::from_millis(200));
    let (tally, m) = run(&rx, cfg, 3);
    assert!(tally.ok.is_empty());
    assert!(tally
        .failed
        .values()
        .all(|r| r.error == Some(ResponseError::HttpStatus(503))));
    // Gave up because of the deadline, long before the attempts ran out.
    assert!(m.retries >= 1 && m.retries < 50, "{m:?}");
    assert_eq!(m.batches_sent, m.retries + 1);
    rx.clear_faults();
}

#[test]
fn retry_after_in_seconds_is_waited_for() {
    let rx = receiver();
    rx.push_fault(
        status(
            429,
            "Request dropped due to rate limiting.",
            Some("1".into()),
        ),
        1,
    );
    let client = client(one_batch(&rx));
    let sent = send_ids(&client, 0..5);
    let responses = close_and_collect(&client);
    let tally = check_invariant(&sent, &responses, &rx, &client.metrics());
    assert_eq!(tally.ok.len(), 5);
    // A response's duration runs from the first attempt to the answer.
    for r in &responses {
        assert!(r.duration >= Duration::from_secs(1), "{r:?}");
    }
    assert_eq!(client.metrics().retries, 1);
    assert_eq!(rx.requests().len(), 2);
}

#[test]
fn retry_after_as_an_http_date_is_waited_for() {
    let rx = receiver();
    // Whole seconds: the wait is at least 2 s after now.
    let when = SystemTime::now() + Duration::from_secs(3);
    rx.push_fault(status(503, "later", Some(http_date(when))), 1);
    let client = client(one_batch(&rx));
    let sent = send_ids(&client, 0..4);
    let responses = close_and_collect(&client);
    let tally = check_invariant(&sent, &responses, &rx, &client.metrics());
    assert_eq!(tally.ok.len(), 4);
    // A response's duration runs from the first attempt to the answer.
    for r in &responses {
        assert!(r.duration >= Duration::from_millis(1500), "{r:?}");
    }
    assert_eq!(client.metrics().retries, 1);
}

#[test]
fn retry_after_beyond_the_deadline_fails_at_once() {
    let rx = receiver();
    rx.push_fault(status(429, "much later", Some("3600".into())), 1);
    let t0 = Instant::now();
    let (tally, m) = run(&rx, one_batch(&rx), 3);
    assert!(t0.elapsed() < PATIENCE);
    for r in tally.failed.values() {
        assert_eq!(r.error, Some(ResponseError::HttpStatus(429)), "{r:?}");
        assert_eq!(r.body, "much later");
    }
    assert_eq!(tally.failed.len(), 3);
    assert_eq!((m.retries, m.batches_sent), (0, 1));
}

#[test]
fn dropped_connections_are_retried() {
    let rx = receiver();
    rx.push_fault(Fault::DropConnection, 2);
    let (tally, m) = run(&rx, one_batch(&rx).max_attempts(3), 8);
    assert_eq!(tally.ok.len(), 8);
    assert_eq!((m.retries, m.batches_sent), (2, 3), "{m:?}");
}

#[test]
fn dropped_connections_fail_as_transport_errors_after_max_attempts() {
    let rx = receiver();
    rx.push_fault(Fault::DropConnection, 3);
    let (tally, m) = run(&rx, one_batch(&rx).max_attempts(3), 4);
    assert!(tally.ok.is_empty());
    for r in tally.failed.values() {
        assert!(
            matches!(r.error, Some(ResponseError::Transport(_))),
            "{r:?}"
        );
        assert_eq!(r.status_code, None);
    }
    assert_eq!((m.retries, m.batches_sent), (2, 3), "{m:?}");
}

#[test]
fn requests_slower_than_the_timeout_are_retried() {
    let rx = receiver();
    rx.push_fault(Fault::Delay(Duration::from_secs(5)), 1);
    let cfg = one_batch(&rx)
        .request_timeout(Duration::from_secs(1))
        .max_attempts(2);
    let (tally, m) = run(&rx, cfg, 6);
    assert_eq!(tally.ok.len(), 6, "the retry delivers each event once");
    assert_eq!((m.retries, m.batches_sent), (1, 2), "{m:?}");
}

#[test]
fn requests_slower_than_the_timeout_fail_without_retries() {
    let rx = receiver();
    rx.push_fault(Fault::Delay(Duration::from_secs(5)), 1);
    let cfg = one_batch(&rx)
        .request_timeout(Duration::from_secs(1))
        .max_attempts(1);
    let (tally, m) = run(&rx, cfg, 3);
    assert!(tally.ok.is_empty());
    for r in tally.failed.values() {
        match &r.error {
            Some(ResponseError::Transport(msg)) => {
                assert!(msg.to_lowercase().contains("timeout"), "{msg}")
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((m.retries, m.batches_sent), (0, 1));
}

#[test]
fn per_event_rejections_fail_only_their_event() {
    let rx = receiver();
    rx.push_fault(
        Fault::EventStatus {
            index: 2,
            status: 400,
            error: "Event has too many columns.".into(),
        },
        1,
    );
    let client = client(one_batch(&rx));
    let sent = send_ids(&client, 0..5);
    // And one the receiver itself rejects: a string over 64 KB.
    let mut ev = client.new_event();
    ev.add_field("id", 5)
        .add_field("long", "x".repeat(70_000))
        .add_metadata(5u64);
    ev.send().unwrap();
    let sent: Vec<u64> = sent.into_iter().chain([5]).collect();
    let responses = close_and_collect(&client);
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

#[test]
fn a_short_status_array_leaves_the_rest_missing() {
    let rx = receiver();
    rx.push_fault(Fault::ShortStatusArray { len: 3 }, 1);
    let (tally, m) = run(&rx, one_batch(&rx), 5);
    assert_eq!(tally.ok, [0, 1, 2].into_iter().collect());
    for id in [3, 4] {
        let r = &tally.failed[&id];
        assert_eq!(r.error, Some(ResponseError::MissingStatus), "{r:?}");
    }
    assert_eq!(m.retries, 0);
}

#[test]
fn a_long_status_array_is_ignored_past_the_events() {
    let rx = receiver();
    rx.push_fault(Fault::LongStatusArray { extra: 4 }, 1);
    let (tally, m) = run(&rx, one_batch(&rx), 5);
    assert_eq!(tally.ok.len(), 5);
    assert_eq!(m.retries, 0);
}

#[test]
fn a_malformed_status_body_fails_every_event() {
    let rx = receiver();
    rx.push_fault(Fault::MalformedStatusBody, 1);
    let (tally, m) = run(&rx, one_batch(&rx), 4);
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

/// A receiver for outage tests. While it is down its port is free, and any
/// other receiver may bind it; with a key of its own, such a stand-in
/// answers this test's retries with 401 instead of quietly accepting them
/// (and this test's events never pollute another test's receiver).
fn receiver_for_outages() -> (RunningReceiver, &'static str) {
    const DOWN_KEY: &str = "outage-test-key";
    let rx = Receiver::builder().api_key(DOWN_KEY).start().unwrap();
    (rx, DOWN_KEY)
}

#[test]
fn an_outage_is_ridden_out_by_retries() {
    let (rx, key) = receiver_for_outages();
    rx.push_fault(Fault::Down(Duration::from_millis(400)), 1);
    let cfg = one_batch(&rx)
        .api_key(key)
        .max_attempts(50)
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(100))
        .retry_deadline(PATIENCE);
    let (tally, m) = run(&rx, cfg, 10);
    assert_eq!(tally.ok.len(), 10);
    assert!(m.retries >= 2, "refused while down: {m:?}");
    // Attempts refused while down never reached the receiver.
    assert!(m.batches_sent > rx.requests().len() as u64, "{m:?}");
}

#[test]
fn a_receiver_down_before_sending_is_waited_for() {
    let (rx, key) = receiver_for_outages();
    rx.down_for(Duration::from_millis(600));
    // down_for is asynchronous: wait until connections are refused.
    assert!(wait_until(PATIENCE, || std::net::TcpStream::connect(
        rx.addr()
    )
    .is_err()));
    let cfg = one_batch(&rx)
        .api_key(key)
        .max_attempts(50)
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(100))
        .retry_deadline(PATIENCE);
    let (tally, m) = run(&rx, cfg, 10);
    assert_eq!(tally.ok.len(), 10);
    assert_eq!(rx.requests().len(), 1, "only the last attempt got through");
    assert!(m.retries >= 1, "{m:?}");
}

#[test]
fn a_wrong_api_key_fails_with_401_and_is_not_retried() {
    let rx = receiver();
    let cfg = one_batch(&rx).api_key("wrong-key-1234").max_attempts(5);
    let (tally, m) = run(&rx, cfg, 3);
    assert!(tally.ok.is_empty());
    for r in tally.failed.values() {
        assert_eq!(r.error, Some(ResponseError::HttpStatus(401)), "{r:?}");
        assert_eq!(r.status_code, Some(401));
        assert!(r.body.contains("unknown API key"), "{r:?}");
        assert!(!format!("{r:?}").contains("wrong-key-1234"));
    }
    assert_eq!((m.retries, m.batches_sent), (0, 1));
}

#[test]
fn a_request_level_400_is_not_retried() {
    let rx = receiver();
    let body = "{\"error\":\"Request body is malformed and cannot be read.\"}";
    rx.push_fault(status(400, body, None), 1);
    let (tally, m) = run(&rx, one_batch(&rx).max_attempts(5), 3);
    for r in tally.failed.values() {
        assert_eq!(r.error, Some(ResponseError::HttpStatus(400)), "{r:?}");
        assert_eq!(r.body, body);
    }
    assert_eq!(tally.failed.len(), 3);
    assert_eq!((m.retries, m.batches_sent), (0, 1));
}

/// Many batches, concurrent senders, and a long mixed sequence of faults:
/// whatever each batch meets, the invariant holds.
#[test]
fn mixed_faults_over_many_batches_keep_the_invariant() {
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
    let (tally, m) = run(&rx, cfg, 300);
    assert!(!tally.ok.is_empty() && !tally.failed.is_empty(), "{m:?}");
    assert_eq!(rx.pending_faults(), 0, "every fault was met");
    // Every attempt reached the receiver (the timed-out one is counted but
    // not recorded: its client left before the answer).
    assert_eq!(m.batches_sent, rx.stats().requests, "{m:?}");
}

/// A one-request HTTP server that answers 200 with `body` as
/// `content_type`; returns its URL and a handle yielding the request head.
fn answer_once(
    content_type: &'static str,
    body: Vec<u8>,
) -> (String, std::thread::JoinHandle<String>) {
    answer_once_with("200 OK", content_type, body)
}

/// [`answer_once`] with any status line and extra headers after it.
fn answer_once_with(
    status: impl Into<String>,
    content_type: &'static str,
    body: Vec<u8>,
) -> (String, std::thread::JoinHandle<String>) {
    use std::io::{Read, Write};
    let status = status.into();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut buf = Vec::new();
        let mut b = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            assert_eq!(conn.read(&mut b).unwrap(), 1);
            buf.push(b[0]);
        }
        let head = String::from_utf8(buf).unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().unwrap())
            })
            .expect("content-length");
        let mut req = vec![0u8; len];
        conn.read_exact(&mut req).unwrap();
        let answer = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        conn.write_all(answer.as_bytes()).unwrap();
        conn.write_all(&body).unwrap();
        head
    });
    (url, server)
}

/// Sends ids `0..n` in one msgpack batch to `url`; the responses by id.
fn send_to(url: String, n: u64) -> Vec<libhoney::Response> {
    let rx = receiver();
    let client = client(one_batch(&rx).api_host(url).msgpack(true).max_attempts(1));
    let responses = client.responses();
    send_ids(&client, 0..n);
    client.close().unwrap();
    let mut got = collect_until_end(&responses);
    got.sort_by_key(meta_id);
    got
}

fn mp_str(out: &mut Vec<u8>, s: &str) {
    assert!(s.len() < 32);
    out.push(0xa0 | s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

/// A server answering per-event statuses in msgpack (as the API may for
/// msgpack requests): the SDK reads them by the response's Content-Type,
/// with keys matched case-insensitively and an empty error meaning none.
#[test]
fn msgpack_status_arrays_are_read() {
    // [{"status":202},{"Status":400,"error":"bad"},{"status":202,"error":""}]
    let mut b = vec![0x93, 0x81];
    mp_str(&mut b, "status");
    b.extend_from_slice(&[0xcc, 202, 0x82]);
    mp_str(&mut b, "Status");
    b.extend_from_slice(&[0xcd, 0x01, 0x90]);
    mp_str(&mut b, "error");
    mp_str(&mut b, "bad");
    b.push(0x82);
    mp_str(&mut b, "status");
    b.extend_from_slice(&[0xcc, 202]);
    mp_str(&mut b, "error");
    mp_str(&mut b, "");
    let (url, server) = answer_once("application/msgpack", b);
    let got = send_to(url, 3);
    let head = server.join().unwrap();
    assert!(head.starts_with("POST /1/batch/wire HTTP/1.1"), "{head}");
    assert!(got[0].is_success());
    assert_eq!(got[0].status_code, Some(202));
    assert_eq!(got[1].error, Some(ResponseError::Rejected("bad".into())));
    assert_eq!(got[1].status_code, Some(400));
    assert!(
        got[2].is_success(),
        "an empty error is no error: {:?}",
        got[2]
    );
}

/// Status items with more than `status` and `error` (or a null error) are
/// read as in JSON, where extra members are ignored.
#[test]
fn status_items_with_extra_members_are_read_in_both_encodings() {
    let json = br#"[{"status":202,"extra":{"a":[1,2]}},{"Status":400,"error":null},{"ERROR":"no","status":400,"a_rather_long_member_name":true}]"#;
    let (url, server) = answer_once("application/json", json.to_vec());
    let got = send_to(url, 3);
    server.join().unwrap();
    assert!(got[0].is_success(), "{:?}", got[0]);
    assert_eq!(got[1].status_code, Some(400));
    assert_eq!(got[2].error, Some(ResponseError::Rejected("no".into())));

    let mut b = vec![0x93, 0x82];
    mp_str(&mut b, "status");
    b.extend_from_slice(&[0xcc, 202]);
    mp_str(&mut b, "extra");
    b.extend_from_slice(&[0x81, 0xa1, b'a', 0x92, 0x01, 0x02]);
    b.push(0x82);
    mp_str(&mut b, "status");
    b.extend_from_slice(&[0xcd, 0x01, 0x90]);
    mp_str(&mut b, "error");
    b.push(0xc0);
    b.push(0x83);
    mp_str(&mut b, "error");
    mp_str(&mut b, "no");
    mp_str(&mut b, "status");
    b.extend_from_slice(&[0xcd, 0x01, 0x90]);
    mp_str(&mut b, "a_rather_long_member_name");
    b.push(0xc3);
    let (url, server) = answer_once("application/msgpack", b);
    let got = send_to(url, 3);
    server.join().unwrap();
    assert!(got[0].is_success(), "{:?}", got[0]);
    assert_eq!(got[1].status_code, Some(400), "{:?}", got[1]);
    assert!(matches!(got[1].error, Some(ResponseError::Rejected(_))));
    assert_eq!(got[2].error, Some(ResponseError::Rejected("no".into())));
}

/// "An empty 202 response indicates that the event has been queued": every
/// event succeeds. An empty 200 is not a status array.
#[test]
fn empty_answers() {
    let (url, server) = answer_once_with("202 Accepted", "text/plain", Vec::new());
    let got = send_to(url, 3);
    server.join().unwrap();
    assert!(got.iter().all(|r| r.is_success()), "{got:?}");
    assert!(got.iter().all(|r| r.status_code == Some(202)));

    let (url, server) = answer_once_with("200 OK", "application/json", Vec::new());
    let got = send_to(url, 2);
    server.join().unwrap();
    for r in &got {
        assert!(
            matches!(r.error, Some(ResponseError::MalformedResponse(_))),
            "{r:?}"
        );
    }
}

/// Redirects are not followed (that would resend the API key elsewhere):
/// the batch fails with the redirect's status, and is not retried.
#[test]
fn redirects_are_not_followed() {
    let rx = receiver();
    let status = format!(
        "307 Temporary Redirect\r\nLocation: {}/1/batch/wire",
        rx.url()
    );
    let (url, server) = answer_once_with(status, "text/plain", b"moved".to_vec());
    let got = send_to(url, 2);
    server.join().unwrap();
    for r in &got {
        assert_eq!(r.error, Some(ResponseError::HttpStatus(307)), "{r:?}");
        assert_eq!(r.body, "moved");
    }
    assert!(rx.requests().is_empty(), "not followed");
}
