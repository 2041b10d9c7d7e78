//! Every `Fault` variant, the FIFO rule queue, and where faults do not apply.

use crate::common;

use std::net::{SocketAddr, TcpListener, TcpStream};
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
    assert_eq!(get(rx.addr(), "/1/auth", &[KEY]).status, 200);
    assert_eq!(get(rx.addr(), "/_receiver/stats", &[]).status, 200);
    assert_eq!(get(rx.addr(), "/nope", &[]).status, 404);
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
    // Wait for the request to reach the handler (a fixed sleep was not
    // always enough on a loaded machine), then leave during the delay.
    let t0 = Instant::now();
    while rx.stats().requests == 0 {
        assert!(t0.elapsed() < Duration::from_secs(10), "request not seen");
        std::thread::sleep(Duration::from_millis(5));
    }
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

fn refused(addr: SocketAddr) -> bool {
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

/// Every way this test can think of to take `addr`'s port fails: std's
/// listener (which sets SO_REUSEADDR), the wildcard addresses (v4 and
/// dual-stack v6), another receiver, and the binary in another process.
fn assert_port_taken(addr: SocketAddr) {
    let in_use = |r: std::io::Result<TcpListener>, what: &str| match r {
        Ok(l) => panic!("{what}: bound {:?} during the outage", l.local_addr()),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse, "{what}: {e}"),
    };
    in_use(TcpListener::bind(addr), "std listener");
    in_use(
        TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], addr.port()))),
        "0.0.0.0",
    );
    // Dual-stack [::] covers 127.0.0.1 too (skipped without IPv6).
    if TcpListener::bind("[::]:0").is_ok() {
        in_use(
            TcpListener::bind(SocketAddr::from(([0u16; 8], addr.port()))),
            "[::]",
        );
    }
    let err = Receiver::builder().addr(addr).start().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
}

fn wait_until_serving(addr: SocketAddr, limit: Duration) -> Duration {
    let t0 = Instant::now();
    while refused(addr) {
        assert!(t0.elapsed() < limit, "not back after {limit:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    t0.elapsed()
}

#[test]
fn down_for_returns_once_refused_and_keeps_the_port_reserved() {
    let rx = Receiver::builder().start().unwrap();
    let addr = rx.addr();
    let mut idle = Conn::open(addr).unwrap();
    let r = idle.request("POST", "/1/batch/o", &[KEY], &batch_json(0, 1));
    assert_eq!(r.unwrap().status, 200);

    for round in 0..2 {
        let outage = Duration::from_millis(800);
        let t0 = Instant::now();
        rx.down_for(outage);
        // No waiting: refused as soon as down_for returns.
        assert!(refused(addr), "round {round}: refused right away");
        assert_port_taken(addr);
        // A second connection attempt is refused too (nothing queued).
        assert!(refused(addr));
        if round == 0 {
            assert!(idle.closed_without_answer(), "open connections are closed");
        }
        // All of the above happened during the outage (else it proves
        // nothing); this only fails on a badly overloaded machine.
        assert!(t0.elapsed() < outage, "checks took {:?}", t0.elapsed());

        // Back on the same port, with the same state.
        let waited = wait_until_serving(addr, Duration::from_secs(10));
        assert!(
            t0.elapsed() >= outage - Duration::from_millis(50),
            "{waited:?}"
        );
        assert_eq!(rx.addr(), addr);
        let r = post(addr, "/1/batch/o", &[KEY], &batch_json(10 + round, 1));
        assert_eq!(r.statuses(), vec![202]);
    }
    let s = rx.stats();
    assert_eq!((s.events_accepted, s.events_rejected), (3, 0));
    // And the port is ours again: nobody else can take it while we listen.
    assert_eq!(
        TcpListener::bind(addr).unwrap_err().kind(),
        std::io::ErrorKind::AddrInUse
    );
}

#[test]
fn fault_down_closes_its_connection_only_once_new_ones_are_refused() {
    let rx = Receiver::builder().start().unwrap();
    let addr = rx.addr();
    rx.push_fault(Fault::Down(Duration::from_millis(800)), 1);
    let t0 = Instant::now();
    let mut c = Conn::open(addr).unwrap();
    c.send("POST", "/1/batch/k", &[KEY], &batch_json(0, 2))
        .unwrap();
    assert!(c.closed_without_answer());
    // A client that reconnects as soon as it sees the close is refused, and
    // the port is not up for grabs.
    assert!(refused(addr));
    assert_port_taken(addr);
    assert!(t0.elapsed() < Duration::from_millis(800));
    wait_until_serving(addr, Duration::from_secs(10));
    assert!(t0.elapsed() >= Duration::from_millis(750));
    let r = post(addr, "/1/batch/k", &[KEY], &batch_json(2, 1));
    assert_eq!(r.statuses(), vec![202]);
    let s = rx.stats();
    assert_eq!((s.events_accepted, s.events_rejected), (1, 2));
    assert_eq!(rx.requests()[0].response_status, 0);
}

#[test]
fn another_process_cannot_take_the_port_during_an_outage() {
    let rx = Receiver::builder().start().unwrap();
    let addr = rx.addr();
    rx.down_for(Duration::from_secs(30));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_libhoney-receiver"))
        .args(["--listen", &addr.to_string(), "--quiet"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // It must fail to start; if it got the port it would run until killed.
    let t0 = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if t0.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("another process is serving on {addr} during the outage");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(!status.success());
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(err.contains("cannot start on"), "{err}");
    assert!(refused(addr));
}

#[test]
fn outages_requested_during_one_extend_it_and_return_at_once() {
    let rx = Receiver::builder().start().unwrap();
    let addr = rx.addr();
    let t0 = Instant::now();
    rx.down_for(Duration::from_millis(300));
    // Shorter than what is left: no effect; returns without waiting for
    // the first outage to end.
    rx.down_for(Duration::from_millis(10));
    assert!(refused(addr));
    // Longer: the outage lasts until 700 ms after this call.
    std::thread::sleep(Duration::from_millis(100));
    let t1 = Instant::now();
    rx.down_for(Duration::from_millis(700));
    assert!(
        t1.elapsed() < Duration::from_millis(200),
        "{:?}",
        t1.elapsed()
    );
    std::thread::sleep(Duration::from_millis(400));
    assert!(refused(addr), "still down past the first outage's end");
    wait_until_serving(addr, Duration::from_secs(10));
    assert!(
        t1.elapsed() >= Duration::from_millis(650),
        "{:?}",
        t1.elapsed()
    );
    assert!(t0.elapsed() >= Duration::from_millis(750));
    assert_eq!(
        post(addr, "/1/batch/x", &[KEY], &batch_json(0, 1)).statuses(),
        vec![202]
    );
}

#[test]
fn shutdown_during_an_outage_is_prompt_and_frees_the_port() {
    let rx = Receiver::builder().start().unwrap();
    let addr = rx.addr();
    rx.down_for(Duration::from_secs(60));
    assert!(refused(addr));
    let t0 = Instant::now();
    rx.shutdown();
    assert!(t0.elapsed() < Duration::from_secs(5));
    let again = Receiver::builder().addr(addr).start().unwrap();
    assert_eq!(again.addr(), addr);
    assert_eq!(
        post(addr, "/1/batch/x", &[KEY], &batch_json(0, 1)).statuses(),
        vec![202]
    );
}
