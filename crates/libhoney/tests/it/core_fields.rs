//! Fields, global fields, builders and dynamic fields.

use crate::common;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{base, mock_client, CLASSIC_KEY};
use libhoney::{Event, FieldError, FieldName, SendError, Value};

fn counter() -> (Arc<AtomicU64>, impl Fn() -> u64 + Send + Sync + 'static) {
    let n = Arc::new(AtomicU64::new(0));
    let c = Arc::clone(&n);
    (n, move || c.fetch_add(1, Ordering::SeqCst) + 1)
}

fn names(ev: &Event) -> Vec<String> {
    ev.fields().map(|(k, _)| k.to_string()).collect()
}

#[test]
fn add_field_takes_every_value_kind() {
    let (client, mock) = mock_client(base());
    let owned_name = String::from("owned_name");
    let name_ref: &String = &owned_name;
    let by_ref = String::from("by ref");
    let value_ref: &String = &by_ref;
    let mut ev = client.new_event();
    ev.add_field("bool", true)
        .add_field("i8", -8i8)
        .add_field("i16", -16i16)
        .add_field("i32", -32i32)
        .add_field("i64", i64::MIN)
        .add_field("isize", -5isize)
        .add_field("u8", 8u8)
        .add_field("u16", 16u16)
        .add_field("u32", u32::MAX)
        .add_field("u64_small", 64u64)
        .add_field("u64_max", u64::MAX)
        .add_field("usize", 7usize)
        .add_field("f32", 1.5f32)
        .add_field("f64", -2.25f64)
        .add_field("str", "text")
        .add_field("string", String::from("owned"))
        .add_field("string_ref", value_ref)
        .add_field("cow", Cow::Borrowed("cow"))
        .add_field("arc_str", Arc::<str>::from("arc"))
        .add_field("char", 'λ')
        .add_field("some", Some(3))
        .add_field("none", None::<i32>)
        .add_field("vec", vec![1, 2, 3])
        .add_field("duration", Duration::from_micros(1500))
        .add_field("static_value", Value::from_static("static"))
        .add_field("null", Value::Null)
        .add_field(
            "object",
            Value::from_serialize(&BTreeMap::from([("a", 1)])).unwrap(),
        )
        .add_field(owned_name.clone(), "name from a String")
        .add_field(name_ref, "name from a &String (replaces)")
        .add_field(FieldName::from_static("const_name"), 1)
        .add_field(Cow::<'static, str>::Owned("cow_name".into()), 2);
    ev.send().unwrap();

    let sent = &mock.events()[0];
    let get = |k: &str| sent.get(k).unwrap_or_else(|| panic!("{k} missing")).clone();
    assert_eq!(get("bool"), Value::Bool(true));
    assert_eq!(get("i8").as_i64(), Some(-8));
    assert_eq!(get("i16").as_i64(), Some(-16));
    assert_eq!(get("i32").as_i64(), Some(-32));
    assert_eq!(get("i64").as_i64(), Some(i64::MIN));
    assert_eq!(get("isize").as_i64(), Some(-5));
    assert_eq!(get("u8").as_u64(), Some(8));
    assert_eq!(get("u16").as_u64(), Some(16));
    assert_eq!(get("u32").as_u64(), Some(u64::from(u32::MAX)));
    assert_eq!(get("u64_small").as_i64(), Some(64));
    assert_eq!(get("u64_max"), Value::UInt(u64::MAX));
    assert_eq!(get("u64_max").as_i64(), None);
    assert_eq!(get("usize").as_u64(), Some(7));
    assert_eq!(get("f32").as_f64(), Some(1.5));
    assert_eq!(get("f64").as_f64(), Some(-2.25));
    assert_eq!(get("str").as_str(), Some("text"));
    assert_eq!(get("string").as_str(), Some("owned"));
    assert_eq!(get("string_ref").as_str(), Some("by ref"));
    assert_eq!(get("cow").as_str(), Some("cow"));
    assert_eq!(get("arc_str").as_str(), Some("arc"));
    assert_eq!(get("char").as_str(), Some("λ"));
    assert_eq!(get("some").as_i64(), Some(3));
    assert!(get("none").is_null());
    assert_eq!(get("vec"), Value::Array(vec![1.into(), 2.into(), 3.into()]));
    assert_eq!(get("duration").as_f64(), Some(1.5), "durations are ms");
    assert_eq!(get("static_value").as_str(), Some("static"));
    assert!(get("null").is_null());
    assert_eq!(get("object").get("a").and_then(Value::as_i64), Some(1));
    assert_eq!(
        get("owned_name").as_str(),
        Some("name from a &String (replaces)")
    );
    assert_eq!(get("const_name").as_i64(), Some(1));
    assert_eq!(get("cow_name").as_i64(), Some(2));
    assert_eq!(sent.fields().count(), 30);
}

#[derive(serde::Serialize)]
struct Inner {
    depth: u8,
}

#[derive(serde::Serialize)]
struct Request {
    method: &'static str,
    #[serde(rename = "duration_ms")]
    duration: f64,
    inner: Inner,
    tags: Vec<&'static str>,
    user: Option<u32>,
    #[serde(skip)]
    _secret: u8,
}

#[test]
fn add_makes_top_level_keys_fields() {
    let (client, mock) = mock_client(base());
    let mut ev = client.new_event();
    ev.add(&Request {
        method: "GET",
        duration: 1.25,
        inner: Inner { depth: 2 },
        tags: vec!["a", "b"],
        user: None,
        _secret: 9,
    })
    .unwrap();
    assert_eq!(
        names(&ev),
        ["method", "duration_ms", "inner", "tags", "user"]
    );
    assert_eq!(ev.get("method").and_then(Value::as_str), Some("GET"));
    assert_eq!(ev.get("duration_ms").and_then(Value::as_f64), Some(1.25));
    // Nested values stay nested (sent as nested JSON), not flattened.
    assert_eq!(
        ev.get("inner").and_then(|v| v.get("depth")),
        Some(&Value::from(2))
    );
    assert!(ev.get("inner.depth").is_none());
    assert!(ev.get("user").unwrap().is_null());
    assert!(ev.get("_secret").is_none());

    // Maps of every common kind.
    ev.add(&HashMap::from([("hash", 1)])).unwrap();
    ev.add(&BTreeMap::from([(7, "int keys become strings")]))
        .unwrap();
    ev.add(&serde_json::json!({"json": {"nested": [1, 2]}, "flag": false}))
        .unwrap();
    assert_eq!(ev.get("hash").and_then(Value::as_i64), Some(1));
    assert!(ev.get("7").is_some());
    assert_eq!(ev.get("flag"), Some(&Value::Bool(false)));
    assert!(ev.get("json").unwrap().get("nested").is_some());
    ev.send().unwrap();
    assert_eq!(mock.events()[0].fields().count(), 9);

    // Client and builder take the same.
    client
        .add(&Request {
            method: "POST",
            duration: 0.0,
            inner: Inner { depth: 0 },
            tags: vec![],
            user: Some(1),
            _secret: 0,
        })
        .unwrap();
    let mut b = client.new_builder();
    b.add(&BTreeMap::from([("builder", true)])).unwrap();
    let ev = b.new_event();
    assert_eq!(ev.get("method").and_then(Value::as_str), Some("POST"));
    assert_eq!(ev.get("builder"), Some(&Value::Bool(true)));
}

#[test]
fn add_of_a_non_object_is_refused_and_adds_nothing() {
    let (client, _mock) = mock_client(base());
    let mut ev = client.new_event();
    ev.add_field("kept", 1);
    let cases: Vec<(FieldError, FieldError)> = vec![
        (
            ev.add(&vec![1, 2, 3]).unwrap_err(),
            FieldError::NotAnObject {
                found: "a sequence",
            },
        ),
        (
            ev.add("a string").unwrap_err(),
            FieldError::NotAnObject { found: "a string" },
        ),
        (
            ev.add(&42).unwrap_err(),
            FieldError::NotAnObject {
                found: "an integer",
            },
        ),
        (
            ev.add(&1.5).unwrap_err(),
            FieldError::NotAnObject { found: "a float" },
        ),
        (
            ev.add(&true).unwrap_err(),
            FieldError::NotAnObject { found: "a boolean" },
        ),
        (
            ev.add(&()).unwrap_err(),
            FieldError::NotAnObject { found: "null" },
        ),
        (
            ev.add(&None::<BTreeMap<String, i32>>).unwrap_err(),
            FieldError::NotAnObject { found: "null" },
        ),
        (
            ev.add(&(1, "tuple")).unwrap_err(),
            FieldError::NotAnObject {
                found: "a sequence",
            },
        ),
    ];
    for (got, want) in cases {
        assert_eq!(got, want);
        assert!(got.to_string().contains("add_field"), "{got}");
    }
    assert_eq!(names(&ev), ["kept"]);

    // A map with a non-scalar key fails as a whole: not even the good keys land.
    let mut bad: BTreeMap<Vec<u8>, i32> = BTreeMap::new();
    bad.insert(vec![], 1);
    bad.insert(vec![1], 2);
    assert!(matches!(ev.add(&bad), Err(FieldError::Serialize(_))));
    assert_eq!(names(&ev), ["kept"]);

    // A failing Serialize implementation is an error too.
    struct Broken;
    impl serde::Serialize for Broken {
        fn serialize<S: serde::Serializer>(&self, _s: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("broken on purpose"))
        }
    }
    let err = ev.add(&Broken).unwrap_err();
    assert_eq!(
        err,
        FieldError::Serialize(libhoney::SerializeError::Custom("broken on purpose".into()))
    );
    assert_eq!(names(&ev), ["kept"]);

    // The client and builders refuse the same way, adding nothing.
    assert!(client.add(&vec![1]).is_err());
    let mut b = client.new_builder();
    assert!(b.add("nope").is_err());
    assert!(client.new_event().is_empty());
    assert!(b.new_event().is_empty());
}

#[test]
fn the_last_write_of_a_key_wins_everywhere() {
    let (client, mock) = mock_client(base());
    client.add_field("k", "client");
    client.add_field("k", "client again");
    client.add_field("only_client", 1);
    let mut b = client.new_builder();
    assert_eq!(b.get("k").and_then(Value::as_str), Some("client again"));
    b.add_field("k", "builder");
    b.add_field("only_builder", 1);
    let mut ev = b.new_event();
    assert_eq!(ev.get("k").and_then(Value::as_str), Some("builder"));
    ev.add_field("k", "event");
    ev.add(&BTreeMap::from([("k", "event via add")])).unwrap();
    ev.add(&Value::Object(vec![
        ("dup".into(), 1.into()),
        ("dup".into(), 2.into()),
    ]))
    .unwrap();
    assert_eq!(ev.get("k").and_then(Value::as_str), Some("event via add"));
    assert_eq!(ev.get("dup").and_then(Value::as_i64), Some(2));
    // Each name once; inherited ones first.
    assert_eq!(names(&ev), ["only_client", "only_builder", "k", "dup"]);
    assert_eq!(ev.len(), 4);
    ev.send().unwrap();
    let sent = &mock.events()[0];
    assert_eq!(sent.get("k").and_then(Value::as_str), Some("event via add"));
    assert_eq!(sent.fields().filter(|(k, _)| *k == "k").count(), 1);

    // Many fields (past the point where an index is kept) behave the same.
    let mut ev = client.new_event();
    for i in 0..100 {
        ev.add_field(format!("f{i}"), i);
    }
    for i in (0..100).step_by(7) {
        ev.add_field(format!("f{i}"), -i);
    }
    assert_eq!(ev.len(), 102); // 100 + k + only_client
    for i in 0..100 {
        let want = if i % 7 == 0 { -i } else { i };
        assert_eq!(ev.get(&format!("f{i}")).and_then(Value::as_i64), Some(want));
    }
}

#[test]
fn builders_snapshot_the_client() {
    let (client, _mock) = mock_client(base());
    client.add_field("before", 1);
    let (calls, count) = counter();
    client.add_dynamic_field("dyn_before", count);
    let b = client.new_builder();

    // Later client changes do not reach the existing builder (libhoney-py
    // re-merges client fields into builders; that is deliberately not copied).
    client.add_field("after", 2);
    client.add_field("before", "changed");
    client.add_dynamic_field("dyn_after", || 3);
    let ev = b.new_event();
    assert_eq!(ev.get("before").and_then(Value::as_i64), Some(1));
    assert!(ev.get("after").is_none());
    assert!(ev.get("dyn_after").is_none());
    assert!(ev.get("dyn_before").is_some());

    // New events from the client do see them.
    let ev = client.new_event();
    assert_eq!(ev.get("before").and_then(Value::as_str), Some("changed"));
    assert!(ev.get("after").is_some());
    assert!(ev.get("dyn_after").is_some());
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    // And the builder's additions never reach the client.
    let mut b = client.new_builder();
    b.add_field("builder_only", true);
    b.add_dynamic_field("builder_dyn", || 1);
    let ev = client.new_event();
    assert!(ev.get("builder_only").is_none());
    assert!(ev.get("builder_dyn").is_none());
}

#[test]
fn builder_clones_are_independent_both_ways() {
    let (client, _mock) = mock_client(base());
    let mut a = client.new_builder();
    a.add_field("shared", "a");
    a.add_dynamic_field("dyn_shared", || "a");
    let mut b = a.clone();
    assert_eq!(b.get("shared").and_then(Value::as_str), Some("a"));

    a.add_field("only_a", 1).add_field("shared", "a2");
    a.add_dynamic_field("dyn_only_a", || 1);
    a.add_dynamic_field("dyn_shared", || "a2");
    a.set_dataset("dataset-a");
    b.add_field("only_b", 1);
    b.add_dynamic_field("dyn_only_b", || 1);
    b.set_sample_rate(5);

    let (ea, eb) = (a.new_event(), b.new_event());
    assert_eq!(ea.get("shared").and_then(Value::as_str), Some("a2"));
    assert_eq!(eb.get("shared").and_then(Value::as_str), Some("a"));
    assert_eq!(ea.get("dyn_shared").and_then(Value::as_str), Some("a2"));
    assert_eq!(eb.get("dyn_shared").and_then(Value::as_str), Some("a"));
    assert!(ea.get("only_a").is_some() && eb.get("only_a").is_none());
    assert!(ea.get("dyn_only_a").is_some() && eb.get("dyn_only_a").is_none());
    assert!(eb.get("only_b").is_some() && ea.get("only_b").is_none());
    assert!(eb.get("dyn_only_b").is_some() && ea.get("dyn_only_b").is_none());
    assert_eq!((ea.dataset(), eb.dataset()), ("dataset-a", "core-tests"));
    assert_eq!((ea.sample_rate(), eb.sample_rate()), (1, 5));
}

#[test]
fn builders_carry_their_own_destination_and_sample_rate() {
    let (client, mock) = mock_client(base());
    let mut b = client.new_builder();
    assert_eq!(b.dataset(), "core-tests");
    assert_eq!(b.api_host(), "https://api.honeycomb.io");
    assert_eq!(b.sample_rate(), 1);
    b.set_api_key(CLASSIC_KEY)
        .set_dataset(" classic keeps spaces ")
        .set_api_host("http://refinery.internal:8080/")
        .set_sample_rate(1);
    assert_eq!(b.dataset(), " classic keeps spaces ");
    assert_eq!(b.api_host(), "http://refinery.internal:8080");
    let mut ev = b.new_event();
    ev.add_field("x", 1);
    ev.send().unwrap();
    let sent = &mock.events()[0];
    assert_eq!(sent.api_key(), CLASSIC_KEY);
    assert_eq!(sent.dataset(), " classic keeps spaces ");
    assert_eq!(sent.api_host(), "http://refinery.internal:8080");
    assert_eq!(sent.sample_rate(), 1);

    // Builder settings that cannot work are send errors of its events.
    let send = |b: &libhoney::Builder| {
        let mut ev = b.new_event();
        ev.add_field("x", 1);
        ev.send()
    };
    let mut bad = client.new_builder();
    bad.set_sample_rate(0);
    assert_eq!(send(&bad), Err(SendError::ZeroSampleRate));
    let mut bad = client.new_builder();
    bad.set_api_key("");
    assert_eq!(send(&bad), Err(SendError::MissingApiKey));
    let mut bad = client.new_builder();
    bad.set_api_host("");
    assert_eq!(send(&bad), Err(SendError::MissingApiHost));
    let mut bad = client.new_builder();
    bad.set_api_host("not a url");
    assert!(matches!(send(&bad), Err(SendError::InvalidApiHost { .. })));
    let mut bad = client.new_builder();
    bad.set_api_key(CLASSIC_KEY).set_dataset("");
    assert_eq!(send(&bad), Err(SendError::MissingDataset));
    assert_eq!(mock.len(), 1);
    assert_eq!(
        client.responses().len(),
        1,
        "refused events get no response"
    );
}

/// RFC 3339 (the Events API's `time`) has four-digit years: a time outside
/// 0000-01-01T00:00:00Z ..= 9999-12-31T23:59:59.999999999Z is refused with a
/// typed error, and the edges of the range go out as written.
#[test]
fn timestamps_outside_rfc3339_years_are_refused() {
    use std::time::UNIX_EPOCH;
    let (client, mock) = mock_client(base());
    let send_at = |t| {
        let mut ev = client.new_event();
        ev.add_field("x", 1).set_timestamp(t);
        ev.send()
    };
    let first = UNIX_EPOCH - Duration::from_secs(62_167_219_200);
    let last = UNIX_EPOCH + Duration::new(253_402_300_799, 999_999_999);
    assert_eq!(send_at(first), Ok(()));
    assert_eq!(send_at(last), Ok(()));
    assert_eq!(
        send_at(first - Duration::from_nanos(1)),
        Err(SendError::TimestampOutOfRange)
    );
    assert_eq!(
        send_at(last + Duration::from_nanos(1)),
        Err(SendError::TimestampOutOfRange)
    );
    let times: Vec<String> = mock
        .take_events()
        .iter()
        .map(|ev| {
            let json: serde_json::Value = serde_json::from_str(&ev.to_json()).unwrap();
            json["time"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        times,
        [
            "0000-01-01T00:00:00.000000000Z",
            "9999-12-31T23:59:59.999999999Z"
        ]
    );
    assert!(SendError::TimestampOutOfRange
        .to_string()
        .contains("0000 to 9999"));
    assert_eq!(
        client.responses().len(),
        2,
        "the two accepted events have responses, the refused ones none"
    );
}

#[test]
fn dynamic_fields_are_evaluated_when_each_event_is_created() {
    let (client, mock) = mock_client(base());
    let (calls, count) = counter();
    let mut b = client.new_builder();
    b.add_dynamic_field("seq", count);
    let _clone = b.clone();
    assert_eq!(calls.load(Ordering::SeqCst), 0, "not when added or cloned");

    let mut first = b.new_event();
    let mut second = b.new_event();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    first.add_field("which", "first");
    second.add_field("which", "second");
    // Sending (in any order) does not evaluate them again.
    second.send().unwrap();
    first.send().unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let sent = mock.events();
    assert_eq!(sent[0].get("seq").and_then(Value::as_u64), Some(2));
    assert_eq!(sent[1].get("seq").and_then(Value::as_u64), Some(1));

    // A dynamic field alone makes an event non-empty.
    let ev = b.new_event();
    assert!(!ev.is_empty());
    ev.send().unwrap();
}

#[test]
fn dynamic_fields_have_explicit_names() {
    let (client, _mock) = mock_client(base());
    // Two closures: in libhoney-py both would be named "<lambda>" and collide.
    client.add_dynamic_field("threads", || 4);
    client.add_dynamic_field("memory_mb", || 512);
    client.add_dynamic_field(String::from("owned_name"), || "x");
    let ev = client.new_event();
    assert_eq!(names(&ev), ["threads", "memory_mb", "owned_name"]);
    assert_eq!(ev.get("threads").and_then(Value::as_i64), Some(4));
    assert_eq!(ev.get("memory_mb").and_then(Value::as_i64), Some(512));
}

#[test]
fn a_dynamic_field_is_replaced_by_name() {
    let (client, _mock) = mock_client(base());
    let (old_calls, old) = counter();
    let mut b = client.new_builder();
    b.add_dynamic_field("v", old);
    b.add_dynamic_field("other", || 0);
    b.add_dynamic_field("v", || "new");
    let ev = b.new_event();
    assert_eq!(ev.get("v").and_then(Value::as_str), Some("new"));
    assert_eq!(names(&ev), ["v", "other"], "replaced in place, once");
    assert_eq!(old_calls.load(Ordering::SeqCst), 0, "the old one is gone");

    let (old_calls, old) = counter();
    client.add_dynamic_field("g", old);
    client.add_dynamic_field("g", || 2);
    assert_eq!(client.new_event().get("g").and_then(Value::as_i64), Some(2));
    assert_eq!(old_calls.load(Ordering::SeqCst), 0);
}

#[test]
fn dynamic_fields_override_static_ones_and_events_override_both() {
    let (client, mock) = mock_client(base());
    client.add_field("a", "client static");
    client.add_dynamic_field("a", || "client dynamic");
    client.add_field("a", "client static, added after");
    assert_eq!(
        client.new_event().get("a").and_then(Value::as_str),
        Some("client dynamic")
    );

    let mut b = client.new_builder();
    b.add_field("b", "builder static");
    b.add_dynamic_field("b", || "builder dynamic");
    b.add_field("b", "builder static, added after");
    b.add_field("a", "builder static over client dynamic?");
    let mut ev = b.new_event();
    assert_eq!(ev.get("b").and_then(Value::as_str), Some("builder dynamic"));
    // The client's dynamic field is still a dynamic field in the builder.
    assert_eq!(ev.get("a").and_then(Value::as_str), Some("client dynamic"));
    ev.add_field("b", "event");
    ev.add_field("a", "event");
    assert_eq!(names(&ev).len(), 2);
    ev.send().unwrap();
    let sent = &mock.events()[0];
    assert_eq!(sent.get("a").and_then(Value::as_str), Some("event"));
    assert_eq!(sent.get("b").and_then(Value::as_str), Some("event"));
    assert_eq!(sent.fields().count(), 2);
}
