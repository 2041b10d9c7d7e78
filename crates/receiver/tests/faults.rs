//! Every `Fault` variant, the FIFO rule queue, and where faults do not apply.

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use libhoney_receiver::{Fault, Receiver};
use serde_json::json;

#[test]
fn status_fault_answers_whole_request_and_accepts_nothing() {
    let rx = Receiver::builder().start().unwrap();
    rx.push_fault(
        Fault::Status {
            status: 503,
            body: "slow down".into(),
            retry_after: Some("2".into()),
        },
        2,
    );
    assert_eq!(rx.pending_faults(), 2);
    for _ in 0..2 {
        let r = post(rx.addr(), "/1/batch/f", &[KEY], &batch_json(0, 3));
        assert_eq!(r.status, 503);
        assert_eq!(r.text(), "slow down");
        assert_eq!(r.header("retry-after"), Some("2"));
    }
    assert_eq!(rx.pending_faults(), 0);
    let r = post(rx.addr(), "/1/batch/f", &[KEY], &batch_json(10, 3));
    assert_eq!(r.statuses(), vec![202; 3]);
    let s = rx.stats();
    assert_eq!(s.events_accepted, 3);
    assert_eq!(s.events_rejected, 6);
    let seqs: Vec<_> = rx.events().iter().map(|e| e.data["seq"].clone()).collect();
    assert_eq!(seqs, vec![json!(10), json!(11), json!(12)]);
    let reqs = rx.requests();
    assert_eq!(reqs[0].response_status, 503);
    assert_eq!(reqs[0].events, 3);

    // On the single-event endpoint too; 429 without Retry-After.
    rx.push_fault(
        Fault::Status {
            status: 429,
            body: r#"{"error":"Request dropped due to rate limiting."}"#.into(),
            retry_after: None,
        },
        1,
    );
    let r = post(rx.addr(), "/1/events/f", &[KEY], b"{\"a\":1}");
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), None);
    assert_eq!(rx.stats().events_accepted, 3);
}

#[test]
fn fault_rules_are_fifo_and_skip_auth_and_control() {
    let rx = Receiver::builder().start().unwrap();
    let st = |s: u16| Fault::Status {
        status: s,
        body: String::new(),
        retry_after: None,
    };
    rx.push_fault(st(500), 1);
    rx.push_fault(st(502), 2);
    rx.push_fault(st(504), 0); // no-op
                               // Not consumed by /1/auth, control endpoints or unknown routes.
    assert_eq!(
        request(rx.addr(), "GET", "/1/auth", &[KEY], b"").status,
        200
    );
    assert_eq!(
        request(rx.addr(), "GET", "/_receiver/stats", &[], b"").status,
        200
    );
    assert_eq!(request(rx.addr(), "GET", "/nope", &[], b"").status, 404);
    assert_eq!(rx.pending_faults(), 3);
    let got: Vec<u16> = (0..4)
        .map(|i| post(rx.addr(), "/1/batch/q", &[KEY], &batch_json(i, 1)).status)
        .collect();
    assert_eq!(got, vec![500, 502, 502, 200]);
    rx.push_fault(st(500), 5);
    rx.clear_faults();
    assert_eq!(rx.pending_faults(), 0);
    assert_eq!(
        post(rx.addr(), "/1/batch/q", &[KEY], &batch_json(9, 1)).status,
        200
    );
    // A fault applies even to a request that would be rejected anyway.
    rx.push_fault(st(500), 1);
    assert_eq!(post(rx.addr(), "/1/batch/q", &[], b"junk").status, 500);
    // Statuses HTTP cannot answer with become 500.
    rx.push_fault(st(99), 1);
    assert_eq!(
        post(rx.addr(), "/1/batch/q", &[KEY], &batch_json(0, 1)).status,
        500
    );
}

#[test]
fn drop_connection_reads_then_closes_without_answer() {
    let rx = Receiver::builder().start().unwrap();
    rx.push_fault(Fault::DropConnection, 1);
    let mut c = Conn::open(rx.addr()).unwrap();
    c.send("POST", "/1/batch/d", &[KEY], &batch_json(0, 5))
        .unwrap();
    assert!(c.closed_without_answer());
    let s = rx.stats();
    assert_eq!(s.events_accepted, 0);
    assert_eq!(s.events_rejected, 5);
    assert_eq!(s.bytes_received, batch_json(0, 5).len() as u64);
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].response_status, 0);
    assert!(rx.events().is_empty());
    // The next request is served normally.
    let r = post(rx.addr(), "/1/batch/d", &[KEY], &batch_json(0, 5));
    assert_eq!(r.statuses(), vec![202; 5]);
}

#[test]
fn delay_then_answer_normally() {
    let rx = Receiver::builder().start().unwrap();
    rx.push_fault(Fault::Delay(Duration::from_millis(300)), 1);
    let t0 = Instant::now();
    let r = post(rx.addr(), "/1/batch/slow", &[KEY], &batch_json(0, 4));
    assert!(t0.elapsed() >= Duration::from_millis(300));
    assert_eq!(r.statuses(), vec![202; 4]);
    assert_eq!(rx.stats().events_accepted, 4);
    // Other connections are not held up meanwhile.
    rx.push_fault(Fault::Delay(Duration::from_millis(500)), 1);
    let addr = rx.addr();
    let slow = std::thread::spawn(move || post(addr, "/1/batch/slow", &[KEY], &batch_json(0, 1)));
    std::thread::sleep(Duration::from_millis(100));
    let t0 = Instant::now();
    assert_eq!(
        post(addr, "/1/batch/fast", &[KEY], &batch_json(0, 1)).status,
        200
    );
    assert!(t0.elapsed() < Duration::from_millis(300));
    assert_eq!(slow.join().unwrap().status, 200);
}

#[test]
fn delay_with_client_gone_accepts_nothing() {
    let rx = Receiver::builder().start().unwrap();
    rx.push_fault(Fault::Delay(Duration::from_millis(300)), 1);
    let mut c = Conn::open(rx.addr()).unwrap();
    c.send("POST", "/1/batch/gone", &[KEY], &batch_json(0, 4))
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    drop(c); // the client gives up (timeout) before the answer
    std::thread::sleep(Duration::from_millis(400));
    let s = rx.stats();
    assert_eq!(s.requests, 1);
    assert_eq!(s.events_accepted, 0, "a client that left was not answered");
    assert!(rx.events().is_empty());
}

#[test]
fn event_status_overrides_one_event() {
    let rx = Receiver::builder().start().unwrap();
    rx.push_fault(
        Fault::EventStatus {
            index: 1,
            status: 500,
            error: "boom".into(),
        },
        1,
    );
    let r = post(rx.addr(), "/1/batch/e", &[KEY], &batch_json(0, 3));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!([{"status":202},{"status":500,"error":"boom"},{"status":202}])
    );
    let seqs: Vec<_> = rx.events().iter().map(|e| e.data["seq"].clone()).collect();
    assert_eq!(seqs, vec![json!(0), json!(2)]);
    let s = rx.stats();
    assert_eq!((s.events_accepted, s.events_rejected), (2, 1));
    // Out-of-range index: no effect, but the rule is consumed.
    rx.push_fault(
        Fault::EventStatus {
            index: 10,
            status: 500,
            error: "x".into(),
        },
        1,
    );
    assert_eq!(
        post(rx.addr(), "/1/batch/e", &[KEY], &batch_json(0, 2)).statuses(),
        vec![202, 202]
    );
    assert_eq!(rx.pending_faults(), 0);
    // Single-event endpoint: index 0 answers the request.
    rx.push_fault(
        Fault::EventStatus {
            index: 0,
            status: 403,
            error: "Event dropped due to administrative throttling".into(),
        },
        1,
    );
    let r = post(rx.addr(), "/1/events/e", &[KEY], b"{\"a\":1}");
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json(),
        json!({"error":"Event dropped due to administrative throttling"})
    );
    assert_eq!(rx.stats().events_accepted, 4);
}

#[test]
fn short_status_array() {
    let rx = Receiver::builder().start().unwrap();
    rx.push_fault(Fault::ShortStatusArray { len: 2 }, 1);
    let r = post(rx.addr(), "/1/batch/s", &[KEY], &batch_json(0, 5));
    assert_eq!(r.status, 200);
    assert_eq!(r.statuses(), vec![202, 202]);
    let seqs: Vec<_> = rx.events().iter().map(|e| e.data["seq"].clone()).collect();
    assert_eq!(seqs, vec![json!(0), json!(1)]);
    let s = rx.stats();
    assert_eq!((s.events_accepted, s.events_rejected), (2, 3));
    // len 0: an empty array, nothing accepted.
    rx.push_fault(Fault::ShortStatusArray { len: 0 }, 1);
    let r = post(rx.addr(), "/1/batch/s", &[KEY], &batch_json(0, 2));
    assert_eq!(r.json(), json!([]));
    assert_eq!(rx.stats().events_accepted, 2);
}

#[test]
fn long_status_array() {
    let rx = Receiver::builder().start().unwrap();
    rx.push_fault(Fault::LongStatusArray { extra: 3 }, 1);
    let r = post(rx.addr(), "/1/batch/l", &[KEY], &batch_json(0, 2));
    assert_eq!(r.statuses(), vec![202; 5]);
    assert_eq!(rx.stats().events_accepted, 2);
    assert_eq!(rx.events().len(), 2);
}

#[test]
fn malformed_status_body() {
    let rx = Receiver::builder().start().unwrap();
    rx.push_fault(Fault::MalformedStatusBody, 1);
    let r = post(rx.addr(), "/1/batch/m", &[KEY], &batch_json(0, 3));
    assert_eq!(r.status, 200);
    assert!(serde_json::from_slice::<Vec<serde_json::Value>>(&r.body).is_err());
    let s = rx.stats();
    assert_eq!((s.events_accepted, s.events_rejected), (0, 3));
    assert!(rx.events().is_empty());
}

fn refused(addr: std::net::SocketAddr) -> bool {
    matches!(TcpStream::connect(addr), Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused)
}

#[test]
fn down_refuses_connections_then_comes_back_on_the_same_port() {
    let rx = Receiver::builder().start().unwrap();
    let addr = rx.addr();
    // An idle keep-alive connection is closed by the outage too.
    let mut idle = Conn::open(addr).unwrap();
    assert_eq!(
        idle.request("POST", "/1/batch/k", &[KEY], &batch_json(0, 1))
            .unwrap()
            .status,
        200
    );
    rx.push_fault(Fault::Down(Duration::from_millis(400)), 1);
    let mut c = Conn::open(addr).unwrap();
    c.send("POST", "/1/batch/k", &[KEY], &batch_json(1, 2))
        .unwrap();
    let t0 = Instant::now();
    assert!(c.closed_without_answer());
    assert!(idle.closed_without_answer());
    std::thread::sleep(Duration::from_millis(50));
    assert!(refused(addr), "connections are refused while down");
    // Back on the same port after the outage.
    let mut back = false;
    while t0.elapsed() < Duration::from_secs(5) {
        if !refused(addr) {
            back = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(back);
    assert!(t0.elapsed() >= Duration::from_millis(350));
    assert_eq!(rx.addr(), addr);
    let r = post(addr, "/1/batch/k", &[KEY], &batch_json(3, 2));
    assert_eq!(r.statuses(), vec![202, 202]);
    let s = rx.stats();
    assert_eq!((s.events_accepted, s.events_rejected), (3, 2));

    // down_for() without a request.
    rx.down_for(Duration::from_millis(200));
    std::thread::sleep(Duration::from_millis(50));
    assert!(refused(addr));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(post(addr, "/1/auth", &[KEY], b"").status, 405);
}
