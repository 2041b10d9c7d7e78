//! Golden wire format of the default HTTP transmission, over real HTTP to the
//! local receiver: URL (dataset escaping, host path prefix), headers, exact
//! JSON bodies, msgpack bodies with the timestamp extension, and a round trip
//! of every value kind through each compression and encoding.

use crate::http_support;

use std::time::Duration;

use http_support::wire::{self, send_golden_events};
use http_support::*;
use libhoney::{
    Client, Compression, Config, Encoding, NonFiniteFloats, Response, ResponseError, Value,
};
use libhoney_receiver::RunningReceiver;
use serde_json::json;

fn user_agent(addition: Option<&str>) -> String {
    let platform = format!("({}/{})", std::env::consts::OS, std::env::consts::ARCH);
    match addition {
        Some(a) => format!("libhoney-rust/{} {a} {platform}", env!("CARGO_PKG_VERSION")),
        None => format!("libhoney-rust/{} {platform}", env!("CARGO_PKG_VERSION")),
    }
}

/// A client over `cfg` (for `rx`, holding its batch for a minute) that has
/// sent the golden events, flushed, and had both answered with success.
fn golden(rx: &RunningReceiver, cfg: impl FnOnce(Config) -> Config) -> (Client, Vec<Response>) {
    let client = client(
        cfg(config(rx))
            .max_batch_size(100)
            .send_frequency(Duration::from_secs(60)),
    );
    send_golden_events(&client, &[]);
    let responses = client.responses();
    client.flush_within(PATIENCE).unwrap();
    let got = take_n(&responses, 2);
    assert!(got.iter().all(|r| r.is_success()), "{got:?}");
    (client, got)
}

#[test]
fn json_body_url_and_headers_are_exact() {
    let rx = receiver();
    let (client, got) = golden(&rx, |c| {
        c.dataset("a b(c)").user_agent_addition("  my-app/1.0 ")
    });
    assert!(got.iter().all(|r| r.status_code == Some(202)), "{got:?}");

    let reqs = rx.requests();
    assert_eq!(reqs.len(), 1, "one batch: {reqs:?}");
    let req = &reqs[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/1/batch/a%20b%28c%29");
    assert_eq!(req.dataset.as_deref(), Some("a b(c)"));
    assert_eq!(header(req, "x-honeycomb-team"), Some(KEY));
    assert_eq!(req.content_type.as_deref(), Some("application/json"));
    assert_eq!(req.content_encoding.as_deref(), Some("zstd"));
    assert_eq!(
        req.user_agent.as_deref(),
        Some(user_agent(Some("my-app/1.0")).as_str())
    );
    let body = String::from_utf8(req.decoded_body.clone()).unwrap();
    let expected = concat!(
        r#"[{"data":{"str":"hé \"q\" \\ /\n\t\u0001","int":-5,"big":18446744073709551615,"#,
        r#""float":1.5,"yes":true,"nothing":null,"arr":[1,"x",null],"obj":{"k":"v","n":[]},"#,
        r#""nan":"NaN"},"time":"2023-11-14T22:13:20.123456789Z"},"#,
        r#"{"data":{"id":2},"samplerate":4,"time":"2023-11-14T22:13:20.123456789Z"}]"#
    );
    assert_eq!(body, expected);

    let events = rx.events();
    assert_eq!(events[0].samplerate, None, "samplerate omitted at 1");
    assert_eq!(events[1].samplerate, Some(4));
    assert_eq!(
        events[1].time.as_deref(),
        Some("2023-11-14T22:13:20.123456789Z")
    );
    client.close().unwrap();
}

#[test]
fn msgpack_body_has_the_same_shape_and_a_timestamp_extension() {
    let rx = receiver();
    let (client, _) = golden(&rx, |c| {
        c.dataset("mp")
            .encoding(Encoding::Msgpack)
            .compression(Compression::Gzip)
    });

    let reqs = rx.requests();
    assert_eq!(reqs.len(), 1);
    let req = &reqs[0];
    assert_eq!(req.path, "/1/batch/mp");
    assert_eq!(req.content_type.as_deref(), Some("application/msgpack"));
    assert_eq!(req.content_encoding.as_deref(), Some("gzip"));
    assert_eq!(req.user_agent.as_deref(), Some(user_agent(None).as_str()));
    assert_eq!(header(req, "x-honeycomb-team"), Some(KEY));
    let ts = mp_timestamp(fixed_time());
    let expected = Mp::Array(vec![
        Mp::map(vec![
            (
                "data",
                Mp::map(vec![
                    ("str", Mp::s("h\u{e9} \"q\" \\ /\n\t\u{1}")),
                    ("int", Mp::Int(-5)),
                    ("big", Mp::UInt(u64::MAX)),
                    ("float", Mp::F64(1.5)),
                    ("yes", Mp::Bool(true)),
                    ("nothing", Mp::Nil),
                    ("arr", Mp::Array(vec![Mp::UInt(1), Mp::s("x"), Mp::Nil])),
                    (
                        "obj",
                        Mp::map(vec![("k", Mp::s("v")), ("n", Mp::Array(vec![]))]),
                    ),
                    ("nan", Mp::s("NaN")),
                ]),
            ),
            ("time", ts.clone()),
        ]),
        Mp::map(vec![
            ("data", Mp::map(vec![("id", Mp::UInt(2))])),
            ("samplerate", Mp::UInt(4)),
            ("time", ts),
        ]),
    ]);
    assert_eq!(mp_decode(&req.decoded_body).norm(), expected);
    let events = rx.events();
    assert_eq!(
        events[0].time.as_deref(),
        Some("2023-11-14T22:13:20.123456789Z")
    );
    assert_eq!(events[1].samplerate, Some(4));
    client.close().unwrap();
}

#[test]
fn timestamps_outside_the_64_bit_extension_use_the_96_bit_form() {
    // 2600-01-01: seconds do not fit in 34 bits.
    let far = std::time::UNIX_EPOCH + Duration::new(19_880_899_200, 5);
    let rx = receiver();
    let client = client(
        config(&rx)
            .encoding(Encoding::Msgpack)
            .compression(Compression::None),
    );
    let mut ev = client.new_event();
    ev.add_field("id", 1).set_timestamp(far);
    ev.send().unwrap();
    client.flush_within(PATIENCE).unwrap();
    let req = &rx.requests()[0];
    assert_eq!(req.content_encoding, None);
    let Mp::Array(items) = mp_decode(&req.decoded_body) else {
        panic!("not an array")
    };
    let Mp::Map(entries) = &items[0] else {
        panic!("not a map")
    };
    assert_eq!(entries[1], (Mp::s("time"), mp_timestamp(far)));
    assert_eq!(
        rx.events()[0].time.as_deref(),
        Some("2600-01-01T00:00:00.000000005Z")
    );
    client.close().unwrap();
}

#[test]
fn no_compression_sends_no_content_encoding() {
    let rx = receiver();
    let client = client(config(&rx).compression(Compression::None));
    let mut ev = client.new_event();
    ev.add_field("id", 1).set_timestamp(fixed_time());
    ev.send().unwrap();
    client.flush_within(PATIENCE).unwrap();
    let req = &rx.requests()[0];
    assert_eq!(req.content_encoding, None);
    assert_eq!(header(req, "content-encoding"), None);
    assert_eq!(
        req.decoded_body,
        br#"[{"data":{"id":1},"time":"2023-11-14T22:13:20.123456789Z"}]"#
    );
    assert_eq!(req.body_bytes, req.decoded_body.len(), "sent as is");
    client.close().unwrap();
}

http_test!(wire::api_host_path_prefix_is_kept);

/// Values of every kind, with the non-finite floats where a policy decides.
fn round_trip_event(client: &libhoney::Client, id: u64) {
    let mut ev = client.new_event();
    ev.add_field("id", id)
        .add_field("empty", "")
        .add_field(
            "escapes",
            "quote\" backslash\\ slash/ nl\n cr\r tab\t bs\u{8} ff\u{c} nul\u{0} us\u{1f} del\u{7f}",
        )
        .add_field("unicode", "é 日本語 😀 \u{2028}\u{2029} \u{fffd}")
        .add_field("key \"with\"\tescapes é", "k")
        .add_field("i64_min", i64::MIN)
        .add_field("i64_max", i64::MAX)
        .add_field("neg", -1)
        .add_field("u64_max", u64::MAX)
        .add_field("u64_big", (i64::MAX as u64) + 1)
        .add_field("zero", 0)
        .add_field("pi", std::f64::consts::PI)
        .add_field("tenth", 0.1)
        .add_field("huge", 1e300)
        .add_field("tiny", -2.5e-300)
        .add_field("f64_max", f64::MAX)
        .add_field("whole_float", 3.0)
        .add_field("t", true)
        .add_field("f", false)
        .add_field("null", Value::Null)
        .add_field("none", None::<i32>)
        .add_field("nan", f64::NAN)
        .add_field("inf", f64::INFINITY)
        .add_field("ninf", f64::NEG_INFINITY)
        .add_field(
            "nested",
            Value::Object(vec![
                (
                    "arr".into(),
                    Value::Array(vec![
                        Value::from(1),
                        Value::from(-2.5),
                        Value::from("s"),
                        Value::Null,
                        Value::from(f64::NAN),
                        Value::Array(vec![Value::from(true), Value::Object(vec![])]),
                    ]),
                ),
                ("inf".into(), Value::from(f64::INFINITY)),
                (
                    "deeper".into(),
                    Value::Object(vec![("u".into(), Value::from(u64::MAX))]),
                ),
            ]),
        );
    ev.set_timestamp(fixed_time());
    ev.add_metadata(id);
    ev.send().unwrap();
}

fn expected_round_trip(id: u64, policy: NonFiniteFloats) -> serde_json::Value {
    let nf = |name: &str| match policy {
        NonFiniteFloats::Null | NonFiniteFloats::Omit => serde_json::Value::Null,
        _ => json!(name),
    };
    let mut nested_obj = serde_json::Map::new();
    nested_obj.insert(
        "arr".into(),
        json!([1, -2.5, "s", null, nf("NaN"), [true, {}]]),
    );
    if policy != NonFiniteFloats::Omit {
        nested_obj.insert("inf".into(), nf("Infinity"));
    }
    nested_obj.insert("deeper".into(), json!({"u": u64::MAX}));
    let mut v = json!({
        "id": id,
        "empty": "",
        "escapes": "quote\" backslash\\ slash/ nl\n cr\r tab\t bs\u{8} ff\u{c} nul\u{0} us\u{1f} del\u{7f}",
        "unicode": "é 日本語 😀 \u{2028}\u{2029} \u{fffd}",
        "key \"with\"\tescapes é": "k",
        "i64_min": i64::MIN,
        "i64_max": i64::MAX,
        "neg": -1,
        "u64_max": u64::MAX,
        "u64_big": (i64::MAX as u64) + 1,
        "zero": 0,
        "pi": std::f64::consts::PI,
        "tenth": 0.1,
        "huge": 1e300,
        "tiny": -2.5e-300,
        "f64_max": f64::MAX,
        "whole_float": 3.0,
        "t": true,
        "f": false,
        "null": null,
        "none": null,
        "nested": nested_obj,
    });
    if policy != NonFiniteFloats::Omit {
        let m = v.as_object_mut().unwrap();
        m.insert("nan".into(), nf("NaN"));
        m.insert("inf".into(), nf("Infinity"));
        m.insert("ninf".into(), nf("-Infinity"));
    }
    v
}

#[test]
fn every_value_kind_round_trips_in_each_compression_and_encoding() {
    let rx = receiver();
    let mut id = 0;
    let mut expected = Vec::new();
    for compression in [Compression::Zstd, Compression::Gzip, Compression::None] {
        for encoding in [Encoding::Json, Encoding::Msgpack] {
            for policy in [
                NonFiniteFloats::String,
                NonFiniteFloats::Null,
                NonFiniteFloats::Omit,
            ] {
                id += 1;
                let dataset = format!("rt-{compression:?}-{encoding:?}-{policy:?}");
                let client = client(
                    config(&rx)
                        .dataset(dataset.clone())
                        .compression(compression)
                        .encoding(encoding)
                        .non_finite_floats(policy),
                );
                round_trip_event(&client, id);
                let got = close_and_collect(&client);
                assert_eq!(got.len(), 1);
                assert!(got[0].is_success(), "{dataset}: {:?}", got[0]);
                expected.push((id, dataset, compression, encoding, policy));
            }
        }
    }
    let events = rx.events();
    let reqs = rx.requests();
    assert_eq!(events.len(), expected.len());
    for (id, dataset, compression, encoding, policy) in expected {
        let ev = events
            .iter()
            .find(|e| e.data["id"] == id)
            .unwrap_or_else(|| panic!("{dataset}: not received"));
        assert_eq!(ev.dataset, dataset);
        let want = expected_round_trip(id, policy);
        assert_eq!(
            serde_json::Value::Object(ev.data.clone()),
            want,
            "{dataset}"
        );
        assert_eq!(
            ev.time.as_deref(),
            Some("2023-11-14T22:13:20.123456789Z"),
            "{dataset}"
        );
        let req = reqs
            .iter()
            .find(|r| r.index == ev.request_index)
            .expect("its request");
        let want_ce = match compression {
            Compression::Zstd => Some("zstd"),
            Compression::Gzip => Some("gzip"),
            _ => None,
        };
        assert_eq!(req.content_encoding.as_deref(), want_ce, "{dataset}");
        let want_ct = match encoding {
            Encoding::Msgpack => "application/msgpack",
            _ => "application/json",
        };
        assert_eq!(req.content_type.as_deref(), Some(want_ct), "{dataset}");
        if encoding == Encoding::Msgpack {
            // Integers keep their signedness and floats stay floats.
            let Mp::Array(items) = mp_decode(&req.decoded_body) else {
                panic!("not an array")
            };
            let Mp::Map(entries) = &items[0] else {
                panic!("not a map")
            };
            let Mp::Map(data) = &entries[0].1 else {
                panic!("no data")
            };
            let get = |k: &str| {
                data.iter()
                    .find(|(key, _)| *key == Mp::s(k))
                    .map(|(_, v)| v.clone())
            };
            assert_eq!(get("i64_min"), Some(Mp::Int(i64::MIN)));
            assert_eq!(get("u64_max"), Some(Mp::UInt(u64::MAX)));
            assert_eq!(get("whole_float"), Some(Mp::F64(3.0)));
            assert_eq!(get("tenth"), Some(Mp::F64(0.1)));
        } else {
            // Whole floats stay floats in JSON too.
            let text = String::from_utf8(req.decoded_body.clone()).unwrap();
            assert!(text.contains(r#""whole_float":3.0"#), "{text}");
            assert!(!text.contains("NaN,") && !text.contains(":NaN"), "{text}");
        }
    }
}

#[test]
fn dataset_names_are_escaped_as_one_path_segment() {
    let rx = receiver();
    let client = client(config(&rx));
    let names = [
        ("a/b c", "a%2Fb%20c"),
        ("foo(bar)", "foo%28bar%29"),
        ("[x]{y}", "%5Bx%5D%7By%7D"),
        ("d\u{e9}j\u{e0} \u{20ac}", "d%C3%A9j%C3%A0%20%E2%82%AC"),
        ("100%", "100%25"),
        ("a+b&c=d?e#f", "a%2Bb%26c%3Dd%3Fe%23f"),
        ("ok-_.~9", "ok-_.~9"),
        ("..", ".."),
    ];
    for (id, (name, _)) in names.iter().enumerate() {
        let mut b = client.new_builder();
        b.set_dataset(name);
        let mut ev = b.new_event();
        ev.add_field("id", id).add_metadata(id as u64);
        ev.send().unwrap();
    }
    let responses = close_and_collect(&client);
    let sent: Vec<u64> = (0..names.len() as u64).collect();
    let tally = check_invariant(&sent, &responses, &rx, &client.metrics());
    // ".." goes as is, as in libhoney-go (unreserved characters are never
    // escaped); a server or proxy may normalise it away, so only its path is
    // checked.
    let reqs = rx.requests();
    for (id, (name, escaped)) in names.iter().enumerate() {
        let req = reqs
            .iter()
            .find(|r| r.path == format!("/1/batch/{escaped}"))
            .unwrap_or_else(|| panic!("{name:?}: no request to {escaped}; {reqs:?}"));
        if name.contains('/') {
            // The API refuses encoded slashes in dataset names, and so does
            // the receiver: the event is answered with the error.
            assert_eq!(req.response_status, 400, "{name:?}");
            assert!(tally.failed.contains_key(&(id as u64)), "{name:?}");
        } else if *name != ".." {
            assert!(tally.ok.contains(&(id as u64)), "{name:?}");
            assert_eq!(req.dataset.as_deref(), Some(*name));
        }
    }
}

#[test]
fn times_before_1970_are_encoded_in_both_encodings() {
    let t = std::time::UNIX_EPOCH - Duration::new(1, 500_000_000);
    for encoding in [Encoding::Json, Encoding::Msgpack] {
        let rx = receiver();
        let client = client(config(&rx).encoding(encoding));
        let mut ev = client.new_event();
        ev.add_field("id", 1).set_timestamp(t);
        ev.send().unwrap();
        client.close().unwrap();
        let events = rx.events();
        assert_eq!(events.len(), 1, "{encoding:?}");
        let want = match encoding {
            Encoding::Json => "1969-12-31T23:59:58.500000000Z",
            _ => "1969-12-31T23:59:58.5Z",
        };
        assert_eq!(events[0].time.as_deref(), Some(want), "{encoding:?}");
    }
}

#[test]
fn sampled_events_carry_their_rate_and_the_rest_are_answered_as_sampled() {
    let rx = receiver();
    let client = client(config(&rx).sample_rate(4));
    let sent = send_ids(&client, 0..400);
    let responses = close_and_collect(&client);
    let m = client.metrics();
    let tally = check_invariant(&sent, &responses, &rx, &m);
    // One in four is kept (a binomial draw: 100 expected, far from 0 or 400).
    assert!(tally.ok.len() > 40 && tally.ok.len() < 200, "{m:?}");
    assert_eq!(tally.sampled(), 400 - tally.ok.len());
    for ev in rx.events() {
        assert_eq!(ev.samplerate, Some(4));
    }
    for r in tally.failed.values() {
        assert_eq!(r.error, Some(ResponseError::Sampled));
        assert!(!r.is_success());
    }
}

#[test]
fn compression_levels_round_trip() {
    let rx = receiver();
    for (compression, level) in [
        (Compression::Zstd, 1),
        (Compression::Zstd, 19),
        (Compression::Gzip, 0),
        (Compression::Gzip, 9),
    ] {
        let client = client(
            config(&rx)
                .compression(compression)
                .compression_level(level)
                .dataset(format!("{compression:?}-{level}")),
        );
        for id in 0..20u64 {
            let mut ev = client.new_event();
            ev.add_field("id", id)
                .add_field("text", "repetitive text ".repeat(50))
                .set_timestamp(fixed_time());
            ev.send().unwrap();
        }
        let got = close_and_collect(&client);
        assert!(
            got.iter().all(|r| r.is_success()),
            "{compression:?} {level}"
        );
    }
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 4);
    for r in &reqs {
        assert_eq!(r.events, 20);
        let want = if r.path.contains("Zstd") {
            "zstd"
        } else {
            "gzip"
        };
        assert_eq!(r.content_encoding.as_deref(), Some(want), "{}", r.path);
        if !r.path.ends_with("Gzip-0") {
            assert!(
                r.body_bytes * 5 < r.decoded_body.len(),
                "{}: {} of {}",
                r.path,
                r.body_bytes,
                r.decoded_body.len()
            );
        }
    }
    assert_eq!(rx.events().len(), 80);
}

/// `encode_on` (Send against Batcher) moves encoding from the batcher to `send`: the requests
/// must not change by a byte, in either encoding and every non-finite policy,
/// with inherited (global) fields, one of them overridden by the event.
#[test]
fn encoding_in_send_or_on_the_batcher_gives_the_same_requests() {
    let policies = [
        NonFiniteFloats::String,
        NonFiniteFloats::Null,
        NonFiniteFloats::Omit,
    ];
    for encoding in [Encoding::Json, Encoding::Msgpack] {
        for nf in policies {
            let [on, off] = [true, false].map(|on| {
                let rx = receiver();
                let (client, _) = golden(&rx, |c| {
                    let c = c.encoding(encoding).non_finite_floats(nf);
                    c.encode_on(if on {
                        libhoney::EncodeOn::Send
                    } else {
                        libhoney::EncodeOn::Batcher
                    })
                });
                client.close().unwrap();
                let reqs = rx.requests();
                assert_eq!(reqs.len(), 1, "{encoding:?} {nf:?} {on}");
                let r = &reqs[0];
                (
                    r.content_type.clone(),
                    r.content_encoding.clone(),
                    r.decoded_body.clone(),
                )
            });
            assert!(!on.2.is_empty());
            assert_eq!(on, off, "{encoding:?} {nf:?}");
        }
    }
    // Inherited fields, and an event overriding one of them.
    let [on, off] = [true, false].map(|on| {
        let rx = receiver();
        let client = client(one_batch(&rx).encode_on(if on {
            libhoney::EncodeOn::Send
        } else {
            libhoney::EncodeOn::Batcher
        }));
        client.add_field("service.name", "shop");
        client.add_field("region", "eu");
        let mut ev = client.new_event();
        ev.add_field("region", "us").add_field("n", 1);
        ev.set_timestamp(fixed_time());
        ev.send().unwrap();
        client.close().unwrap();
        String::from_utf8(rx.requests()[0].decoded_body.clone()).unwrap()
    });
    assert_eq!(on, off);
    assert_eq!(
        on,
        r#"[{"data":{"service.name":"shop","region":"us","n":1},"time":"2023-11-14T22:13:20.123456789Z"}]"#
    );
}

/// zstd's fast (negative) levels: a smaller ratio, the same events.
#[test]
fn a_fast_zstd_level_round_trips() {
    let rx = receiver();
    let (client, _) = golden(&rx, |c| c.compression_level(-5));
    client.close().unwrap();
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].content_encoding.as_deref(), Some("zstd"));
    let events = rx.events();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].data["int"], json!(-5));
    assert_eq!(events[1].data["id"], json!(2));
}

/// An API host given by name goes through the transmission's own resolver
/// (looked up once, then cached) rather than only the IP-address shortcut
/// the other tests take: `localhost` reaches the receiver on 127.0.0.1 for
/// several requests in a row, over connections opened both before and
/// after the name was cached.
#[test]
fn a_host_name_is_resolved_and_reused_across_requests() {
    let rx = receiver();
    let by_name = rx.url().replace("127.0.0.1", "localhost");
    assert!(by_name.contains("localhost"), "{by_name}");
    let client = client(
        config(&rx)
            .api_host(by_name)
            .max_batch_size(10)
            .max_concurrent_batches(3),
    );
    let sent = send_ids(&client, 0..100);
    let got = close_and_collect(&client);
    let tally = check_invariant(&sent, &got, &rx, &client.metrics());
    assert_eq!(tally.ok.len(), 100);
    assert!(rx.requests().len() >= 10, "several requests");
}
