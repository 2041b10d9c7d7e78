//! The receiver's bounds on connections and reads (issue #14, rows 7 to 9):
//! a connection cap, header, body and idle timeouts, the body memory
//! budget, an early refusal of bodies declared too large, and `400` for
//! dataset names the API refuses. Each test fails on a receiver without the
//! bound (the connection stays open or unanswered, and the 10 s read
//! timeout of the test client fires instead).

use crate::common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::*;
use libhoney_receiver::Receiver;

#[test]
fn idle_connections_are_closed() {
    let rx = Receiver::builder()
        .idle_timeout(Duration::from_millis(200))
        .start()
        .unwrap();
    // Never a byte sent.
    let mut silent = Conn::open(rx.addr()).unwrap();
    assert!(silent.closed_without_answer(), "an idle new connection");
    // Idle after a request (keep-alive).
    let mut used = Conn::open(rx.addr()).unwrap();
    let r = used
        .request("POST", "/1/batch/ds", &[KEY], &batch_json(0, 1))
        .unwrap();
    assert_eq!(r.status, 200);
    assert!(
        used.closed_without_answer(),
        "an idle kept-alive connection"
    );
}

#[test]
fn a_slow_header_is_cut_off() {
    let rx = Receiver::builder()
        .header_read_timeout(Duration::from_millis(300))
        .start()
        .unwrap();
    let mut c = Conn::open(rx.addr()).unwrap();
    c.stream()
        .write_all(b"POST /1/batch/ds HTTP/1.1\r\nHost: t\r\n")
        .unwrap();
    // One header byte every 50 ms, for up to 10 s: the idle timeout (60 s)
    // never fires, the header timeout must.
    let start = Instant::now();
    let mut cut = false;
    while start.elapsed() < Duration::from_secs(10) {
        if c.stream().write_all(b"X").is_err() {
            cut = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        c.stream().set_nonblocking(true).unwrap();
        let mut b = [0u8; 1];
        let peeked = std::io::Read::read(c.stream(), &mut b);
        c.stream().set_nonblocking(false).unwrap();
        if matches!(peeked, Ok(0))
            || matches!(&peeked, Err(e) if e.kind() != std::io::ErrorKind::WouldBlock)
        {
            cut = true;
            break;
        }
    }
    assert!(cut, "a header dribbled for 10 s was not cut off");
}

#[test]
fn a_stalled_body_gets_408() {
    let rx = Receiver::builder()
        .body_read_timeout(Duration::from_millis(300))
        .start()
        .unwrap();
    let mut c = Conn::open(rx.addr()).unwrap();
    c.stream()
        .write_all(
            b"POST /1/batch/ds HTTP/1.1\r\nHost: t\r\nX-Honeycomb-Team: k\r\nContent-Length: 1000\r\n\r\n[{\"data\"",
        )
        .unwrap();
    let r = c.read_response().expect("an answer before the test's 10 s");
    assert_eq!(r.status, 408, "{}", r.text());
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.closed_without_answer(), "then the connection is closed");
    assert_eq!(rx.stats().events_accepted, 0);
}

#[test]
fn a_body_declared_too_large_is_refused_before_it_is_sent() {
    let rx = Receiver::builder().start().unwrap();
    let mut c = Conn::open(rx.addr()).unwrap();
    c.stream()
        .write_all(
            b"POST /1/batch/ds HTTP/1.1\r\nHost: t\r\nX-Honeycomb-Team: k\r\nContent-Length: 1000000000\r\n\r\n",
        )
        .unwrap();
    let r = c.read_response().expect("an answer without the body");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "Request body is too large.");
}

#[test]
fn connections_over_the_cap_are_closed_and_room_comes_back() {
    let rx = Receiver::builder().max_connections(3).start().unwrap();
    let mut open: Vec<Conn> = (0..3)
        .map(|_| {
            let mut c = Conn::open(rx.addr()).unwrap();
            let r = c.request("GET", "/1/auth", &[KEY], b"").unwrap();
            assert_eq!(r.status, 200);
            c
        })
        .collect();
    let mut extra = Conn::open(rx.addr()).unwrap();
    assert!(extra.closed_without_answer(), "a 4th connection is closed");
    // The three still work.
    for c in &mut open {
        assert_eq!(
            c.request("GET", "/1/auth", &[KEY], b"").unwrap().status,
            200
        );
    }
    // Closing one makes room (once the server has seen it close).
    drop(open.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut c = Conn::open(rx.addr()).unwrap();
        if let Ok(r) = c.request("GET", "/1/auth", &[KEY], b"") {
            assert_eq!(r.status, 200);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no room after a connection closed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_slow_answer_is_not_an_idle_connection() {
    let rx = Receiver::builder()
        .idle_timeout(Duration::from_millis(100))
        .header_read_timeout(Duration::from_millis(100))
        .start()
        .unwrap();
    rx.push_fault(
        libhoney_receiver::Fault::Delay(Duration::from_millis(600)),
        1,
    );
    let mut c = Conn::open(rx.addr()).unwrap();
    let r = c
        .request("POST", "/1/batch/ds", &[KEY], &batch_json(0, 2))
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.statuses(), vec![202, 202]);
}

#[test]
fn a_body_larger_than_the_whole_budget_still_goes_through() {
    let rx = Receiver::builder()
        .max_buffered_body_bytes(100)
        .start()
        .unwrap();
    let body = batch_json(0, 50);
    assert!(body.len() > 100);
    let r = post(rx.addr(), "/1/batch/ds", &[KEY], &body);
    assert_eq!(r.status, 200);
    assert_eq!(r.statuses().len(), 50);
    // And the budget is given back: a second one too.
    let r = post(rx.addr(), "/1/batch/ds", &[KEY], &body);
    assert_eq!(r.status, 200);
}

#[test]
fn datasets_the_api_refuses_get_400() {
    let rx = Receiver::builder().start().unwrap();
    for (path, error) in [
        ("/1/batch/%FF%FE", "Dataset name is not valid UTF-8."),
        ("/1/batch/ok%C3", "Dataset name is not valid UTF-8."),
        ("/1/events/%FF", "Dataset name is not valid UTF-8."),
        (
            "/1/batch/a%2Fb",
            "Dataset names may not contain an encoded slash (%2F).",
        ),
        (
            "/1/events/a%2fb",
            "Dataset names may not contain an encoded slash (%2F).",
        ),
    ] {
        let body: &[u8] = if path.starts_with("/1/events") {
            b"{\"a\":1}"
        } else {
            b"[{\"data\":{\"a\":1}}]"
        };
        let r = post(rx.addr(), path, &[KEY], body);
        assert_eq!(r.status, 400, "{path}");
        assert_eq!(r.json()["error"], error, "{path}");
    }
    assert_eq!(rx.stats().events_accepted, 0);
    assert!(rx.events().is_empty());
}
