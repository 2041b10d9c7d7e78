//! Endpoints, encodings, datasets, keys and recording, over real HTTP.

use crate::common;

use std::time::Duration;

use common::*;
use libhoney_receiver::{Endpoint, Receiver};
use serde_json::json;

#[test]
fn batch_json_uncompressed() {
    let rx = Receiver::builder().start().unwrap();
    let body = br#"[{"data":{"a":1,"b":"x","c":{"d":[1,2]}},"time":"2024-05-01T10:11:12.123456789-07:00","samplerate":4},{"data":{"n":null,"t":true,"f":1.5}}]"#;
    let r = post(
        rx.addr(),
        "/1/batch/ds",
        &[
            KEY,
            ("Content-Type", "application/json"),
            ("User-Agent", "libhoney-go/1.27.1"),
        ],
        body,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json(), json!([{"status":202},{"status":202}]));

    let evs = rx.events();
    assert_eq!(evs.len(), 2);
    assert_eq!(evs[0].dataset, "ds");
    assert_eq!(evs[0].api_key, "test-key");
    assert_eq!(evs[0].data["c"], json!({"d":[1,2]}));
    assert_eq!(
        evs[0].time.as_deref(),
        Some("2024-05-01T10:11:12.123456789-07:00")
    );
    assert_eq!(evs[0].samplerate, Some(4));
    assert_eq!(evs[0].endpoint, Endpoint::Batch);
    assert_eq!(evs[0].position, 0);
    assert_eq!(evs[1].position, 1);
    assert_eq!(evs[1].time, None);
    assert_eq!(evs[1].samplerate, None);
    assert_eq!(evs[1].data["n"], json!(null));
    assert_eq!(evs[0].request_index, evs[1].request_index);

    let reqs = rx.requests();
    assert_eq!(reqs.len(), 1);
    let q = &reqs[0];
    assert_eq!(q.index, evs[0].request_index);
    assert_eq!(q.method, "POST");
    assert_eq!(q.path, "/1/batch/ds");
    assert_eq!(q.dataset.as_deref(), Some("ds"));
    assert_eq!(q.user_agent.as_deref(), Some("libhoney-go/1.27.1"));
    assert_eq!(q.content_type.as_deref(), Some("application/json"));
    assert_eq!(q.content_encoding, None);
    assert!(q
        .headers
        .iter()
        .any(|(k, v)| k == "x-honeycomb-team" && v == "test-key"));
    assert_eq!(q.body_bytes, body.len());
    assert_eq!(q.decoded_body, body.to_vec());
    assert_eq!(q.events, 2);
    assert_eq!(q.response_status, 200);
    assert_eq!(q.response_body, r.text());

    let s = rx.stats();
    assert_eq!(s.requests, 1);
    assert_eq!(s.events_accepted, 2);
    assert_eq!(s.events_rejected, 0);
    assert_eq!(s.bytes_received, body.len() as u64);
    assert_eq!(s.bytes_decoded, body.len() as u64);
}

#[test]
fn gzip_zstd_and_none() {
    let rx = Receiver::builder().start().unwrap();
    let plain = batch_json(0, 50);
    let gz = gzip(&plain);
    let zs = zstd(&plain);
    // A streamed zstd frame (no content size in the header) too.
    let mut zstream = Vec::new();
    {
        let mut enc = zstd::stream::write::Encoder::new(&mut zstream, 3).unwrap();
        std::io::Write::write_all(&mut enc, &plain).unwrap();
        enc.finish().unwrap();
    }
    let cases: [(Option<&str>, &[u8]); 5] = [
        (None, &plain),
        (Some("gzip"), &gz),
        (Some("zstd"), &zs),
        (Some("ZSTD"), &zstream),
        (Some("identity"), &plain),
    ];
    for (enc, body) in cases {
        let mut h = vec![KEY];
        if let Some(e) = enc {
            h.push(("Content-Encoding", e));
        }
        let r = post(rx.addr(), "/1/batch/enc", &h, body);
        assert_eq!(r.status, 200, "{enc:?}");
        assert_eq!(r.statuses(), vec![202; 50], "{enc:?}");
    }
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 5);
    for q in &reqs {
        assert_eq!(q.decoded_body, plain);
    }
    assert_eq!(reqs[1].content_encoding.as_deref(), Some("gzip"));
    assert_eq!(reqs[1].body_bytes, gz.len());
    let s = rx.stats();
    assert_eq!(s.events_accepted, 250);
    assert_eq!(s.bytes_decoded, 5 * plain.len() as u64);
    assert_eq!(
        s.bytes_received,
        (3 * plain.len() + gz.len() + zs.len() + zstream.len()) as u64 - plain.len() as u64
    );
    let seqs: Vec<u64> = rx
        .events()
        .iter()
        .map(|e| e.data["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(&seqs[..50], &(0..50).collect::<Vec<_>>()[..]);
}

#[test]
fn msgpack_batches_with_all_time_forms() {
    let rx = Receiver::builder().start().unwrap();
    let mut m = Mp::default();
    m.array(6);
    // 1: string time, samplerate, nested values
    m.map(3).str("data");
    m.value(
        &json!({"s":"x","i":-5,"u":7,"f":2.5,"b":true,"n":null,"arr":[1,"two"],"obj":{"k":"v"}}),
    );
    m.str("time").str("2024-05-01T10:11:12Z");
    m.str("samplerate").uint(10);
    // 2: timestamp ext 96-bit
    m.map(2).str("data").map(1).str("a").uint(1);
    m.str("time").timestamp96(1_714_558_272, 123_456_789);
    // 3: timestamp ext 64-bit
    m.map(2).str("data").map(1).str("a").uint(2);
    m.str("time").timestamp64(1_714_558_272, 500_000_000);
    // 4: timestamp ext 32-bit
    m.map(2).str("data").map(1).str("a").uint(3);
    m.str("time").timestamp32(1_714_558_272);
    // 5: epoch number
    m.map(2).str("data").map(1).str("a").uint(4);
    m.str("time").uint(1_714_558_272);
    // 6: NaN survives as a string; a timestamp inside data
    m.map(1).str("data").map(2).str("nan").float(f64::NAN);
    m.str("ts").timestamp96(0, 0);
    let body = zstd(&m.0);
    let r = post(
        rx.addr(),
        "/1/batch/mp",
        &[
            KEY,
            ("Content-Type", "application/msgpack"),
            ("Content-Encoding", "zstd"),
        ],
        &body,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.statuses(), vec![202; 6]);
    let evs = rx.events();
    assert_eq!(evs.len(), 6);
    assert_eq!(evs[0].data["obj"], json!({"k":"v"}), "nested maps decode");
    assert_eq!(evs[0].data["i"], json!(-5));
    assert_eq!(evs[0].data["arr"], json!([1, "two"]));
    assert_eq!(evs[0].time.as_deref(), Some("2024-05-01T10:11:12Z"));
    assert_eq!(evs[0].samplerate, Some(10));
    assert_eq!(
        evs[1].time.as_deref(),
        Some("2024-05-01T10:11:12.123456789Z")
    );
    assert_eq!(evs[2].time.as_deref(), Some("2024-05-01T10:11:12.5Z"));
    assert_eq!(evs[3].time.as_deref(), Some("2024-05-01T10:11:12Z"));
    assert_eq!(evs[4].time.as_deref(), Some("2024-05-01T10:11:12Z"));
    assert_eq!(evs[5].data["nan"], json!("NaN"));
    assert_eq!(evs[5].data["ts"], json!("1970-01-01T00:00:00Z"));
}

#[test]
fn json_epoch_times() {
    let rx = Receiver::builder().start().unwrap();
    let r = post(
        rx.addr(),
        "/1/batch/t",
        &[KEY],
        br#"[{"data":{},"time":1714558272},{"data":{},"time":1714558272.25},{"data":{},"time":null}]"#,
    );
    assert_eq!(r.statuses(), vec![202, 202, 202]);
    let t: Vec<_> = rx.events().into_iter().map(|e| e.time).collect();
    assert_eq!(
        t,
        vec![
            Some("2024-05-01T10:11:12Z".to_owned()),
            Some("2024-05-01T10:11:12.25Z".to_owned()),
            None
        ]
    );
}

#[test]
fn datasets_are_percent_decoded() {
    let rx = Receiver::builder().start().unwrap();
    for (path, want) in [
        ("/1/batch/my%20ds", "my ds"),
        ("/1/batch/a%252Fb", "a%2Fb"),
        ("/1/batch/foo%28bar%29", "foo(bar)"),
        ("/1/batch/%E2%9C%93?x=1", "\u{2713}"),
        ("/1/events/ev%20ds", "ev ds"),
    ] {
        let body: &[u8] = if path.starts_with("/1/events") {
            b"{\"a\":1}"
        } else {
            b"[{\"data\":{\"a\":1}}]"
        };
        let r = post(rx.addr(), path, &[KEY], body);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(rx.take_events()[0].dataset, want, "{path}");
    }
    // An unescaped slash is another path: not found.
    assert_eq!(post(rx.addr(), "/1/batch/a/b", &[KEY], b"[]").status, 404);
}

#[test]
fn single_event_endpoint() {
    let rx = Receiver::builder().start().unwrap();
    let r = post(
        rx.addr(),
        "/1/events/single",
        &[
            KEY,
            ("X-Honeycomb-Event-Time", "2024-05-01T10:11:12Z"),
            ("X-Honeycomb-Samplerate", "8"),
        ],
        br#"{"method":"GET","duration_ms":32}"#,
    );
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    let r = post(
        rx.addr(),
        "/1/events/single",
        &[KEY, ("X-Honeycomb-Event-Time", "1714558272")],
        &gzip(br#"{"x":1}"#),
    );
    assert_eq!(r.status, 400, "gzip without the header is malformed");
    let r = post(
        rx.addr(),
        "/1/events/single",
        &[
            KEY,
            ("X-Honeycomb-Event-Time", "1714558272"),
            ("Content-Encoding", "gzip"),
        ],
        &gzip(br#"{"x":1}"#),
    );
    assert_eq!(r.status, 200);
    let mut m = Mp::default();
    m.map(1).str("mp").uint(3);
    let r = post(
        rx.addr(),
        "/1/events/single",
        &[KEY, ("Content-Type", "application/msgpack")],
        &m.0,
    );
    assert_eq!(r.status, 200);
    let evs = rx.events();
    assert_eq!(evs.len(), 3);
    assert_eq!(evs[0].endpoint, Endpoint::Single);
    assert_eq!(evs[0].data["method"], "GET");
    assert_eq!(evs[0].time.as_deref(), Some("2024-05-01T10:11:12Z"));
    assert_eq!(evs[0].samplerate, Some(8));
    assert_eq!(evs[1].time.as_deref(), Some("2024-05-01T10:11:12Z"));
    assert_eq!(evs[1].samplerate, None);
    assert_eq!(evs[2].data["mp"], 3);
    let s = rx.stats();
    assert_eq!(
        (s.requests, s.events_accepted, s.events_rejected),
        (4, 3, 0)
    );
}

#[test]
fn auth_endpoint_and_keys() {
    let rx = Receiver::builder()
        .api_key("k1")
        .api_key("k2")
        .auth_slugs("my-team", "prod")
        .start()
        .unwrap();
    let r = get(rx.addr(), "/1/auth", &[("X-Honeycomb-Team", "k2")]);
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(j["team"]["slug"], "my-team");
    assert_eq!(j["environment"]["slug"], "prod");
    for key in [Some("nope"), Some(""), None] {
        let h: Vec<(&str, &str)> = key.map(|k| ("X-Honeycomb-Team", k)).into_iter().collect();
        let r = get(rx.addr(), "/1/auth", &h);
        assert_eq!(r.status, 401);
        assert_eq!(
            r.json(),
            json!({"error":"unknown API key - check your credentials"})
        );
        let r = post(rx.addr(), "/1/batch/ds", &h, &batch_json(0, 2));
        assert_eq!(r.status, 401);
        assert_eq!(
            r.json(),
            json!({"error":"unknown API key - check your credentials"})
        );
        let r = post(rx.addr(), "/1/events/ds", &h, b"{\"a\":1}");
        assert_eq!(r.status, 401);
    }
    let r = post(
        rx.addr(),
        "/1/batch/ds",
        &[("X-Honeycomb-Team", "k1")],
        &batch_json(0, 2),
    );
    assert_eq!(r.statuses(), vec![202, 202]);
    assert_eq!(rx.stats().events_accepted, 2);
    assert_eq!(rx.events()[0].api_key, "k1");

    // Without configured keys any non-empty key works, an empty one does not.
    let open = Receiver::builder().start().unwrap();
    let r = get(open.addr(), "/1/auth", &[("X-Honeycomb-Team", "anything")]);
    assert_eq!(r.status, 200);
    let r = get(open.addr(), "/1/auth", &[("X-Honeycomb-Team", "")]);
    assert_eq!(r.status, 401);
    let r = get(open.addr(), "/1/auth", &[]);
    assert_eq!(r.status, 401);
}

#[test]
fn unknown_routes_and_methods() {
    let rx = Receiver::builder().start().unwrap();
    for (m, p, want) in [
        ("GET", "/", 404),
        ("POST", "/1/batch", 404),
        ("POST", "/1/batch/", 404),
        ("POST", "/1/markers/ds", 404),
        ("GET", "/1/batch/ds", 405),
        ("PUT", "/1/events/ds", 405),
        ("POST", "/1/auth", 405),
        ("DELETE", "/_receiver/stats", 405),
        ("GET", "/_receiver/reset", 405),
    ] {
        let r = request(rx.addr(), m, p, &[KEY], b"");
        assert_eq!(r.status, want, "{m} {p}");
        if want == 405 {
            assert!(r.header("allow").is_some(), "{m} {p}");
        }
    }
    assert_eq!(rx.stats().events_accepted, 0);
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let rx = Receiver::builder().start().unwrap();
    let mut c = Conn::open(rx.addr()).unwrap();
    for i in 0..50 {
        let r = c
            .request("POST", "/1/batch/ka", &[KEY], &batch_json(i * 10, 10))
            .unwrap();
        assert_eq!(r.statuses(), vec![202; 10]);
        // Errors keep the connection usable too.
        let r = c.request("POST", "/1/batch/ka", &[KEY], b"[").unwrap();
        assert_eq!(r.status, 400);
        let r = c.request("GET", "/1/auth", &[KEY], b"").unwrap();
        assert_eq!(r.status, 200);
    }
    // Pipelined requests are answered in order.
    c.send("POST", "/1/batch/ka", &[KEY], &batch_json(1000, 1))
        .unwrap();
    c.send("POST", "/1/batch/ka", &[KEY], &batch_json(1001, 2))
        .unwrap();
    assert_eq!(c.read_response().unwrap().statuses(), vec![202]);
    assert_eq!(c.read_response().unwrap().statuses(), vec![202, 202]);
    assert!(rx.wait_for_events(503, Duration::from_secs(5)));
    assert_eq!(rx.stats().events_accepted, 503);
}

#[test]
fn control_endpoints_stats_and_reset() {
    let rx = Receiver::builder().track_unique_u64("seq").start().unwrap();
    post(rx.addr(), "/1/batch/c", &[KEY], &batch_json(0, 10));
    post(rx.addr(), "/1/batch/c", &[KEY], &batch_json(5, 10));
    let r = get(rx.addr(), "/_receiver/stats", &[]);
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(j["requests"], 2);
    assert_eq!(j["events_accepted"], 20);
    assert_eq!(j["distinct_tracked"], 15);
    assert_eq!(j["duplicate_tracked"], 5);
    let stats: libhoney_receiver::Stats = serde_json::from_value(j).unwrap();
    assert_eq!(stats, rx.stats());

    let r = request(rx.addr(), "POST", "/_receiver/reset", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(rx.stats(), libhoney_receiver::Stats::default());
    assert!(rx.events().is_empty());
    assert!(rx.requests().is_empty());

    post(rx.addr(), "/1/batch/c", &[KEY], &batch_json(0, 3));
    assert_eq!(rx.stats().distinct_tracked, 3);
    assert_eq!(rx.stats().duplicate_tracked, 0);
    rx.reset();
    assert_eq!(rx.stats(), libhoney_receiver::Stats::default());
    // Control requests are neither counted nor recorded.
    get(rx.addr(), "/_receiver/stats", &[]);
    assert_eq!(rx.stats().requests, 0);
    assert!(rx.requests().is_empty());
}

#[test]
fn take_events_and_wait() {
    let rx = Receiver::builder().start().unwrap();
    assert!(!rx.wait_for_events(1, Duration::from_millis(50)));
    assert!(rx.wait_for_events(0, Duration::MAX));
    let addr = rx.addr();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        post(addr, "/1/batch/w", &[KEY], &batch_json(0, 7));
    });
    assert!(rx.wait_for_events(7, Duration::from_secs(5)));
    t.join().unwrap();
    assert_eq!(rx.take_events().len(), 7);
    assert!(rx.events().is_empty());
    // Taking does not lower the accepted count.
    assert!(rx.wait_for_events(7, Duration::from_millis(1)));
    assert_eq!(rx.stats().events_accepted, 7);
}

#[test]
fn record_off_keeps_counting_and_tracking() {
    let rx = Receiver::builder()
        .record(false)
        .track_unique_u64("seq")
        .start()
        .unwrap();
    let r = post(
        rx.addr(),
        "/1/batch/nr",
        &[KEY, ("Content-Encoding", "zstd")],
        &zstd(&batch_json(0, 100)),
    );
    assert_eq!(r.statuses(), vec![202; 100]);
    let mut m = Mp::default();
    m.array(2);
    m.map(1).str("data").map(1).str("seq").uint(99);
    m.map(1).str("data").map(1).str("seq").uint(100);
    let r = post(
        rx.addr(),
        "/1/batch/nr",
        &[
            KEY,
            ("Content-Type", "application/x-msgpack; charset=binary"),
        ],
        &m.0,
    );
    assert_eq!(r.statuses(), vec![202, 202]);
    // Invalid events are rejected the same way as when recording.
    let r = post(
        rx.addr(),
        "/1/batch/nr",
        &[KEY],
        br#"[{"data":{"seq":500}},{"data":"x"},{"nodata":1}]"#,
    );
    assert_eq!(r.statuses(), vec![202, 400, 400]);
    assert!(rx.events().is_empty());
    assert!(rx.requests().is_empty());
    let s = rx.stats();
    assert_eq!(s.events_accepted, 103);
    assert_eq!(s.events_rejected, 2);
    assert_eq!(s.distinct_tracked, 102);
    assert_eq!(s.duplicate_tracked, 1);
    assert_eq!(s.requests, 3);
}

#[test]
fn path_prefix_serves_the_api_under_it_only() {
    let rx = Receiver::builder()
        .api_key("test-key")
        .path_prefix("/prefix")
        .start()
        .unwrap();
    assert_eq!(rx.url(), format!("http://{}", rx.addr()));
    assert_eq!(rx.api_host(), format!("{}/prefix", rx.url()));

    let r = post(
        rx.addr(),
        "/prefix/1/batch/p%20d",
        &[KEY],
        &batch_json(0, 2),
    );
    assert_eq!(r.statuses(), vec![202, 202]);
    let r = post(rx.addr(), "/prefix/1/events/single", &[KEY], b"{\"a\":1}");
    assert_eq!(r.status, 200);
    let r = get(rx.addr(), "/prefix/1/auth", &[KEY]);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["team"]["slug"], "local-team");
    // Keys are still checked under the prefix.
    let r = get(rx.addr(), "/prefix/1/auth", &[]);
    assert_eq!(r.status, 401);
    // A wrong method on a prefixed route: 405.
    let r = get(rx.addr(), "/prefix/1/batch/p%20d", &[KEY]);
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")));

    let evs = rx.events();
    assert_eq!(evs.len(), 3);
    assert_eq!(evs[0].dataset, "p d");
    assert_eq!(evs[0].endpoint, Endpoint::Batch);
    assert_eq!(evs[2].dataset, "single");
    assert_eq!(evs[2].endpoint, Endpoint::Single);

    // Everything else is not found, including the unprefixed routes.
    for (m, p) in [
        ("POST", "/1/batch/p%20d"),
        ("POST", "/1/events/single"),
        ("GET", "/1/auth"),
        ("POST", "/prefix"),
        ("POST", "/prefix/"),
        ("POST", "/prefix/1/batch/"),
        ("POST", "/prefix/1/batch/a/b"),
        ("POST", "/prefixx/1/batch/d"),
        ("POST", "/Prefix/1/batch/d"),
        ("POST", "/other/1/batch/d"),
        ("POST", "/prefix/prefix/1/batch/d"),
        ("GET", "/prefix/_receiver/stats"),
    ] {
        let r = request(rx.addr(), m, p, &[KEY], &batch_json(0, 1));
        assert_eq!(r.status, 404, "{m} {p}");
        assert!(r.text().contains("not found"), "{m} {p}");
    }
    assert_eq!(rx.stats().events_accepted, 3);

    // The full path is recorded, prefix included.
    let paths: Vec<String> = rx.requests().into_iter().map(|q| q.path).collect();
    assert_eq!(
        &paths[..6],
        [
            "/prefix/1/batch/p%20d",
            "/prefix/1/events/single",
            "/prefix/1/auth",
            "/prefix/1/auth",
            "/prefix/1/batch/p%20d",
            "/1/batch/p%20d",
        ]
    );
    let q = &rx.requests()[0];
    assert_eq!(q.dataset.as_deref(), Some("p d"));
    assert_eq!(q.response_status, 200);

    // Control endpoints stay at the root.
    let r = get(rx.addr(), "/_receiver/stats", &[]);
    assert_eq!(r.json()["events_accepted"], 3);
    assert_eq!(
        request(rx.addr(), "POST", "/_receiver/reset", &[], b"").status,
        200
    );
    assert_eq!(rx.stats().events_accepted, 0);
}

#[test]
fn path_prefix_forms_and_errors() {
    // Several segments; leading slash added, trailing slashes dropped.
    for (given, want) in [("a/b/", "/a/b"), ("/a/b", "/a/b"), ("/p%20q", "/p%20q")] {
        let rx = Receiver::builder().path_prefix(given).start().unwrap();
        assert_eq!(rx.api_host(), format!("{}{want}", rx.url()), "{given}");
        let path = format!("{want}/1/batch/ds");
        let r = post(rx.addr(), &path, &[KEY], &batch_json(0, 1));
        assert_eq!(r.statuses(), vec![202], "{given}");
        assert_eq!(rx.requests()[0].path, path);
    }
    // Empty or "/" means no prefix: behaviour unchanged.
    for none in ["", "/"] {
        let rx = Receiver::builder().path_prefix(none).start().unwrap();
        assert_eq!(rx.api_host(), rx.url());
        let r = post(rx.addr(), "/1/batch/ds", &[KEY], &batch_json(0, 1));
        assert_eq!(r.statuses(), vec![202], "{none:?}");
    }
    // Characters a request path cannot carry as sent are refused at start.
    for bad in ["/a b", "/a?x=1", "/a#frag", "/pr\u{e9}fix"] {
        let err = Receiver::builder().path_prefix(bad).start().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{bad:?}");
        assert!(err.to_string().contains("path prefix"), "{err}");
    }
}

/// Recorded floats are the floats sent, to the last bit: serde_json's default
/// float parser may land one unit in the last place off (31.201999999999998
/// read back as 31.202), which the `float_roundtrip` feature prevents.
#[test]
fn recorded_floats_are_exact() {
    let rx = Receiver::builder().start().unwrap();
    let floats: Vec<f64> = (0..1000u64).map(|i| i as f64 * 0.731 + 0.5).collect();
    let items: Vec<String> = floats
        .iter()
        .map(|f| format!(r#"{{"data":{{"f":{f:?}}}}}"#))
        .collect();
    let body = format!("[{}]", items.join(","));
    let r = post(rx.addr(), "/1/batch/ds", &[KEY], body.as_bytes());
    assert_eq!(r.status, 200);
    let got: Vec<f64> = rx
        .events()
        .iter()
        .map(|e| e.data["f"].as_f64().unwrap())
        .collect();
    assert_eq!(got.len(), floats.len());
    for (g, f) in got.iter().zip(&floats) {
        assert_eq!(g.to_bits(), f.to_bits(), "{f:?} recorded as {g:?}");
    }
}
