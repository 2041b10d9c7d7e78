//! Every fault the receiver can inject, against the default HTTP
//! transmission. Each test checks the invariant: every accepted event gets
//! exactly one response, and the events the receiver accepted are exactly
//! those the SDK reported as sent; plus the self-metrics. Most bodies are
//! shared with the tokio transmission (`http_support::faults`); the answers
//! of servers other than the receiver are tested here only.

use crate::http_support;

use std::time::Duration;

use http_support::faults;
use http_support::*;
use libhoney::{Encoding, ResponseError};

http_test!(faults::transient_statuses_are_retried_until_success);
http_test!(faults::persistent_server_errors_fail_after_max_attempts);
http_test!(faults::retry_after_in_seconds_is_waited_for);
http_test!(faults::retry_after_as_an_http_date_is_waited_for);
http_test!(faults::retry_after_beyond_the_deadline_fails_at_once);
http_test!(faults::dropped_connections_are_retried);
http_test!(faults::dropped_connections_fail_as_transport_errors_after_max_attempts);
http_test!(faults::requests_slower_than_the_timeout_are_retried);
http_test!(faults::requests_slower_than_the_timeout_fail_without_retries);
http_test!(faults::per_event_rejections_fail_only_their_event);
http_test!(faults::a_short_status_array_leaves_the_rest_missing);
http_test!(faults::a_long_status_array_is_ignored_past_the_events);
http_test!(faults::a_malformed_status_body_fails_every_event);
http_test!(faults::an_outage_is_ridden_out_by_retries);
http_test!(faults::a_wrong_api_key_fails_with_401_and_is_not_retried);
http_test!(faults::a_request_level_400_is_not_retried);
http_test!(faults::mixed_faults_over_many_batches_keep_the_invariant);

#[test]
fn retry_deadline_stops_retrying() {
    let rx = receiver();
    rx.push_fault(status(503, "busy", None), 1000);
    let cfg = one_batch(&rx)
        .max_attempts(1000)
        .retry_backoff(Duration::from_millis(40), Duration::from_millis(40))
        .retry_deadline(Duration::from_millis(200));
    let (tally, m) = block_on(run(Kind::Http, &rx, cfg, 3));
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
fn a_receiver_down_before_sending_is_waited_for() {
    let (rx, key) = faults::receiver_for_outages(Kind::Http);
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
    let (tally, m) = block_on(run(Kind::Http, &rx, cfg, 10));
    assert_eq!(tally.ok.len(), 10);
    assert_eq!(rx.requests().len(), 1, "only the last attempt got through");
    assert!(m.retries >= 1, "{m:?}");
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
    let client = client(
        one_batch(&rx)
            .api_host(url)
            .encoding(Encoding::Msgpack)
            .max_attempts(1),
    );
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
