//! Every validation rule, on both endpoints, with recording on and off, plus
//! robustness against hostile input.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use libhoney_receiver::{Receiver, RunningReceiver};
use serde_json::{json, Map, Value};

const MALFORMED: &str = "Request body is malformed and cannot be read.";
const COLUMNS: &str = "Event has too many columns.";

fn receivers() -> Vec<RunningReceiver> {
    vec![
        Receiver::builder().start().unwrap(),
        Receiver::builder()
            .record(false)
            .track_unique_u64("f0")
            .start()
            .unwrap(),
    ]
}

fn fields(n: usize) -> Value {
    let mut m = Map::new();
    for i in 0..n {
        m.insert(format!("f{i}"), json!(i));
    }
    Value::Object(m)
}

fn batch(events: &[Value]) -> Vec<u8> {
    serde_json::to_vec(events).unwrap()
}

fn mp_batch(events: &[Value]) -> Vec<u8> {
    let mut m = Mp::default();
    m.value(&Value::Array(events.to_vec()));
    m.0
}

/// Runs a batch through JSON and msgpack on every receiver flavour and
/// returns the (identical) answers.
fn check_batch(events: &[Value], want: &[Value]) {
    for rx in receivers() {
        let r = post(rx.addr(), "/1/batch/v", &[KEY], &batch(events));
        assert_eq!(r.status, 200);
        assert_eq!(r.json(), Value::Array(want.to_vec()), "json");
        let r = post(
            rx.addr(),
            "/1/batch/v",
            &[KEY, ("Content-Type", "application/msgpack")],
            &mp_batch(events),
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.json(), Value::Array(want.to_vec()), "msgpack");
        let ok = want.iter().filter(|w| w["status"] == 202).count() as u64;
        let s = rx.stats();
        assert_eq!(s.events_accepted, 2 * ok);
        assert_eq!(s.events_rejected, 2 * (want.len() as u64 - ok));
    }
}

fn accepted() -> Value {
    json!({"status":202})
}

fn rejected(msg: &str) -> Value {
    json!({"status":400,"error":msg})
}

#[test]
fn too_many_columns() {
    check_batch(
        &[
            json!({"data": fields(2000)}),
            json!({"data": fields(2001)}),
            json!({"data": {"ok": 1}}),
        ],
        &[accepted(), rejected(COLUMNS), accepted()],
    );
}

#[test]
fn long_strings_at_any_depth() {
    let ok = "a".repeat(65_536);
    let long = "b".repeat(65_537);
    let r = &receivers()[0];
    let r = post(
        r.addr(),
        "/1/batch/v",
        &[KEY],
        &batch(&[json!({"data":{"s": long}})]),
    );
    let err = r.json()[0]["error"].as_str().unwrap().to_owned();
    assert!(err.contains("65536"), "clear error: {err}");
    check_batch(
        &[
            json!({"data": {"s": ok}}),
            json!({"data": {"s": long}}),
            json!({"data": {"deep": {"a": [1, {"b": long}]}}}),
            json!({"data": {"fine": "x"}}),
        ],
        &[accepted(), rejected(&err), rejected(&err), accepted()],
    );
    // Escapes count after unescaping: 40,000 `\n` escapes are 40,000 bytes.
    let escaped = format!(r#"[{{"data":{{"s":"{}"}}}}]"#, "\\n".repeat(40_000));
    let rx = Receiver::builder().start().unwrap();
    assert_eq!(
        post(rx.addr(), "/1/batch/v", &[KEY], escaped.as_bytes()).statuses(),
        vec![202]
    );
}

#[test]
fn events_over_one_megabyte() {
    // 20 strings of 50,000 bytes: each string is fine, the event is not.
    let mut big = Map::new();
    for i in 0..20 {
        big.insert(format!("s{i}"), json!("x".repeat(50_000)));
    }
    let rx = Receiver::builder().start().unwrap();
    let r = post(
        rx.addr(),
        "/1/batch/v",
        &[KEY],
        &batch(&[json!({"data": big.clone()})]),
    );
    let err = r.json()[0]["error"].as_str().unwrap().to_owned();
    assert!(err.contains("1000000"), "clear error: {err}");
    let mut under = big.clone();
    under.remove("s0");
    check_batch(
        &[
            json!({"data": {"a": 1}}),
            json!({"data": big}),
            json!({"data": under}),
        ],
        &[accepted(), rejected(&err), accepted()],
    );
}

#[test]
fn data_missing_or_not_an_object() {
    check_batch(
        &[
            json!({"data": {"a": 1}}),
            json!({"nodata": {"a": 1}}),
            json!({"data": [1, 2]}),
            json!({"data": "str"}),
            json!({"data": null}),
            json!(42),
            json!({"data": {}, "samplerate": "high"}),
            json!({"data": {}, "time": {"not": "a time"}}),
            json!({"data": {"b": 2}, "extra": "ignored"}),
        ],
        &[
            accepted(),
            rejected(MALFORMED),
            rejected(MALFORMED),
            rejected(MALFORMED),
            rejected(MALFORMED),
            rejected(MALFORMED),
            rejected(MALFORMED),
            rejected(MALFORMED),
            accepted(),
        ],
    );
}

/// Headers, body, expected error.
type Case<'a> = (Vec<(&'a str, &'a str)>, Vec<u8>, &'a str);

#[test]
fn request_level_malformed_bodies() {
    for rx in receivers() {
        let cases: Vec<Case> = vec![
            (vec![KEY], b"[{\"data\":{}}".to_vec(), MALFORMED),
            (vec![KEY], b"{\"data\":{}}".to_vec(), MALFORMED),
            (vec![KEY], b"[]".to_vec(), MALFORMED),
            (vec![KEY], b"[{\"data\":{}}] trailing".to_vec(), MALFORMED),
            (
                vec![KEY],
                b"[{\"data\":{\"a\":\"\xff\xfe\"}}]".to_vec(),
                MALFORMED,
            ),
            (vec![KEY], b"\"just a string\"".to_vec(), MALFORMED),
            (vec![KEY], b"[NaN]".to_vec(), MALFORMED),
            (vec![KEY], Vec::new(), "Request body should not be empty."),
            (
                vec![KEY, ("Content-Encoding", "gzip")],
                b"not gzip".to_vec(),
                MALFORMED,
            ),
            (
                vec![KEY, ("Content-Encoding", "gzip")],
                gzip(&batch_json(0, 50))[..40].to_vec(),
                MALFORMED,
            ),
            (
                vec![KEY, ("Content-Encoding", "zstd")],
                zstd(&batch_json(0, 50))[..30].to_vec(),
                MALFORMED,
            ),
            (
                vec![KEY, ("Content-Encoding", "zstd")],
                zstd(b""),
                "Request body should not be empty.",
            ),
            (
                vec![KEY, ("Content-Encoding", "br")],
                batch_json(0, 1),
                MALFORMED,
            ),
            (
                vec![KEY, ("Content-Type", "application/msgpack")],
                vec![0x90],
                MALFORMED,
            ),
            (
                vec![KEY, ("Content-Type", "application/msgpack")],
                batch_json(0, 1),
                MALFORMED,
            ),
        ];
        for (i, (h, body, want)) in cases.iter().enumerate() {
            let r = post(rx.addr(), "/1/batch/m", h, body);
            assert_eq!(r.status, 400, "case {i}");
            assert_eq!(r.json(), json!({ "error": want }), "case {i}");
        }
        assert_eq!(rx.stats().events_accepted, 0);
        assert_eq!(rx.stats().requests, cases.len() as u64);
    }
}

#[test]
fn body_too_large() {
    const TOO_LARGE: &str = "Request body is too large.";
    // Default limit: 5,000,000 decoded bytes (zstd keeps the upload small).
    let rx = Receiver::builder().record(false).start().unwrap();
    let mut ev = Map::new();
    for i in 0..10 {
        ev.insert(format!("s{i}"), json!("y".repeat(50_000)));
    }
    let one = json!({ "data": ev });
    let over: Vec<Value> = (0..10).map(|_| one.clone()).collect(); // ~5.0 MB
    let over = batch(&over);
    assert!(over.len() > 5_000_000);
    let r = post(
        rx.addr(),
        "/1/batch/big",
        &[KEY, ("Content-Encoding", "zstd")],
        &zstd(&over),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json(), json!({ "error": TOO_LARGE }));
    let under = batch(&(0..9).map(|_| one.clone()).collect::<Vec<_>>());
    let r = post(
        rx.addr(),
        "/1/batch/big",
        &[KEY, ("Content-Encoding", "zstd")],
        &zstd(&under),
    );
    assert_eq!(r.statuses(), vec![202; 9]);

    // A configured limit applies to plain, gzip and zstd bodies alike, and to
    // compression bombs without inflating them.
    let rx = Receiver::builder().max_body_bytes(1000).start().unwrap();
    let ok = batch_json(0, 10);
    assert!(ok.len() <= 1000);
    let big = batch_json(0, 100);
    assert!(big.len() > 1000);
    for (enc, f) in [
        ("identity", (|b: &[u8]| b.to_vec()) as fn(&[u8]) -> Vec<u8>),
        ("gzip", |b: &[u8]| gzip(b)),
        ("zstd", |b: &[u8]| zstd(b)),
    ] {
        let send = |body: &[u8]| {
            post(
                rx.addr(),
                "/1/batch/l",
                &[KEY, ("Content-Encoding", enc)],
                &f(body),
            )
        };
        assert_eq!(send(&ok).status, 200, "{enc}");
        let r = send(&big);
        assert_eq!(r.status, 400, "{enc}");
        assert_eq!(r.json(), json!({ "error": TOO_LARGE }), "{enc}");
    }
    let bomb = zstd(&vec![b' '; 20_000_000]);
    let r = post(
        rx.addr(),
        "/1/batch/l",
        &[KEY, ("Content-Encoding", "zstd")],
        &bomb,
    );
    assert_eq!(r.json(), json!({ "error": TOO_LARGE }));
    // A huge wire body is refused while reading it.
    let r = post(rx.addr(), "/1/batch/l", &[KEY], &vec![b'['; 200_000]);
    assert_eq!(r.status, 400);
    assert_eq!(r.json(), json!({ "error": TOO_LARGE }));
}

#[test]
fn single_event_rules_are_request_level() {
    for rx in receivers() {
        let a = rx.addr();
        let ok = post(a, "/1/events/s", &[KEY], br#"{"a":1}"#);
        assert_eq!(ok.status, 200);
        let r = post(
            a,
            "/1/events/s",
            &[KEY],
            &serde_json::to_vec(&fields(2001)).unwrap(),
        );
        assert_eq!(r.status, 400);
        assert_eq!(r.json(), json!({ "error": COLUMNS }));
        assert_eq!(
            post(
                a,
                "/1/events/s",
                &[KEY],
                &serde_json::to_vec(&fields(2000)).unwrap()
            )
            .status,
            200
        );
        let r = post(
            a,
            "/1/events/s",
            &[KEY],
            &serde_json::to_vec(&json!({"s": "z".repeat(65_537)})).unwrap(),
        );
        assert_eq!(r.status, 400);
        assert!(r.json()["error"].as_str().unwrap().contains("65536"));
        let mut big = Map::new();
        for i in 0..21 {
            big.insert(format!("s{i}"), json!("x".repeat(50_000)));
        }
        let r = post(a, "/1/events/s", &[KEY], &serde_json::to_vec(&big).unwrap());
        assert_eq!(r.status, 400);
        assert!(r.json()["error"].as_str().unwrap().contains("1000000"));
        for bad in [&b"[1,2]"[..], b"{", b"42", b"{\"a\":1} x"] {
            let r = post(a, "/1/events/s", &[KEY], bad);
            assert_eq!(r.status, 400);
            assert_eq!(r.json(), json!({ "error": MALFORMED }));
        }
        let r = post(a, "/1/events/s", &[KEY], b"");
        assert_eq!(
            r.json(),
            json!({"error": "Request body should not be empty."})
        );
        let s = rx.stats();
        assert_eq!(s.events_accepted, 2);
    }
}

/// Deterministic pseudo-random bytes.
fn noise(seed: &mut u64, n: usize) -> Vec<u8> {
    (0..n)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            *seed as u8
        })
        .collect()
}

#[test]
fn hostile_input_never_breaks_the_server() {
    let rx = Receiver::builder().start().unwrap();
    let a = rx.addr();
    let mut seed = 0xdead_beef_u64;
    let valid = batch_json(0, 20);
    let gz = gzip(&valid);
    let zs = zstd(&valid);
    let mut m = Mp::default();
    m.value(&json!([{"data":{"a":[1,2,{"b":"c"}]},"time":"t","samplerate":2}]));
    let mp = m.0;
    for i in 0..150 {
        // Mutated valid bodies of every kind, and pure noise.
        let (enc, ct, base): (&str, &str, &[u8]) = match i % 4 {
            0 => ("identity", "application/json", &valid),
            1 => ("gzip", "application/json", &gz),
            2 => ("zstd", "application/json", &zs),
            _ => ("identity", "application/msgpack", &mp),
        };
        let mut body = base.to_vec();
        let flips = noise(&mut seed, 4);
        let pos = (u32::from_le_bytes([flips[0], flips[1], flips[2], 0]) as usize) % body.len();
        body[pos] ^= flips[3] | 1;
        if i % 7 == 0 {
            body.truncate(pos);
        }
        if i % 11 == 0 {
            body = noise(&mut seed, 1 + i * 13);
        }
        let r = post(
            a,
            "/1/batch/fuzz",
            &[KEY, ("Content-Encoding", enc), ("Content-Type", ct)],
            &body,
        );
        assert!(r.status == 200 || r.status == 400, "{}", r.status);
        let r = post(
            a,
            "/1/events/fuzz",
            &[KEY, ("Content-Encoding", enc), ("Content-Type", ct)],
            &body,
        );
        assert!(r.status == 200 || r.status == 400, "{}", r.status);
    }
    // Deep nesting: rejected, no stack overflow.
    let deep = format!(
        "[{{\"data\":{{\"a\":{}1{}}}}}]",
        "[".repeat(50_000),
        "]".repeat(50_000)
    );
    let r = post(a, "/1/batch/deep", &[KEY], deep.as_bytes());
    assert_eq!(r.status, 400);
    assert_eq!(r.json(), json!({ "error": MALFORMED }));
    let deep = format!("{{\"a\":{}1{}}}", "[".repeat(50_000), "]".repeat(50_000));
    assert_eq!(
        post(a, "/1/events/deep", &[KEY], deep.as_bytes()).status,
        400
    );

    // Raw protocol abuse: garbage request lines, huge headers, bad UTF-8 in
    // headers, lying Content-Length, early disconnects.
    let raw: Vec<Vec<u8>> = vec![
        b"GARBAGE\r\n\r\n".to_vec(),
        b"\x00\xff\xfe\r\n\r\n".to_vec(),
        format!(
            "POST /1/batch/x HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
            "h".repeat(1_000_000)
        )
        .into_bytes(),
        b"POST /1/batch/x HTTP/1.1\r\nHost: a\r\nX-Honeycomb-Team: \xff\xfe\r\nContent-Length: 2\r\n\r\n[]"
            .to_vec(),
        b"POST /1/batch/x HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n[1,2".to_vec(),
        b"POST /1/batch/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
        b"POST /1/b%ff%fe/x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n".to_vec(),
    ];
    for bytes in raw {
        let mut s = TcpStream::connect(a).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(&bytes);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    }
    // A dataset that is not UTF-8 once decoded is refused (never stored
    // lossily); invalid escapes are kept as they are.
    let r = post(a, "/1/batch/%ff%zz", &[KEY], b"[{\"data\":{}}]");
    assert_eq!(r.status, 400);
    let r = post(a, "/1/batch/ok%zz", &[KEY], b"[{\"data\":{}}]");
    assert_eq!(r.statuses(), vec![202]);
    assert_eq!(rx.events().last().unwrap().dataset, "ok%zz");

    // Still healthy.
    let r = post(a, "/1/batch/after", &[KEY], &batch_json(0, 3));
    assert_eq!(r.statuses(), vec![202, 202, 202]);
}
