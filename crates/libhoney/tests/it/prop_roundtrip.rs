//! Property tests (proptest, bounded case counts): arbitrary events encoded
//! by the SDK as JSON and as msgpack batches are read back by the
//! receiver's decoders as exactly the fields that were added; compressed
//! bodies decode to themselves; and `send` accepts a value exactly when it
//! nests no deeper than `Value::MAX_DEPTH`. The fuzz targets in `fuzz/`
//! explore the same round trips without bounds.

use std::io::Write;
use std::sync::OnceLock;

use libhoney::transmission::Mock;
use libhoney::{Client, Config, Encoding, SendError, Value};
use libhoney_receiver::__fuzz::{decode_body, scan_batch};
use proptest::prelude::*;
use serde_json::{Map, Value as Json};

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::Float),
        ".{0,40}".prop_map(Value::from),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((".{0,12}", inner), 0..6).prop_map(|entries| {
                Value::Object(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
            }),
        ]
    })
}

/// What the receiver should read for `v` (non-finite floats as their
/// names, as `NonFiniteFloats::String` writes them; last key wins).
fn expect(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::from(*b),
        Value::Int(i) => Json::from(*i),
        Value::UInt(u) => Json::from(*u),
        Value::Float(f) if f.is_nan() => Json::from("NaN"),
        Value::Float(f) if *f == f64::INFINITY => Json::from("Infinity"),
        Value::Float(f) if *f == f64::NEG_INFINITY => Json::from("-Infinity"),
        Value::Float(f) => Json::from(*f),
        Value::String(s) => Json::from(s.as_ref()),
        Value::Array(items) => Json::Array(items.iter().map(expect).collect()),
        Value::Object(entries) => {
            let mut m = Map::new();
            for (k, v) in entries {
                m.insert(k.to_string(), expect(v));
            }
            Json::Object(m)
        }
        _ => unreachable!("a kind this test does not build"),
    }
}

/// The shared client and its mock, held by one test at a time (two tests
/// taking each other's events from the mock failed one in a few runs).
fn client() -> (std::sync::MutexGuard<'static, ()>, &'static (Client, Mock)) {
    static C: OnceLock<(Client, Mock)> = OnceLock::new();
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let c = C.get_or_init(|| {
        let mock = Mock::new();
        let config = Config::new()
            .api_key("k")
            .dataset("d")
            .transmission(mock.clone());
        (Client::new(config).unwrap(), mock)
    });
    (guard, c)
}

fn nested(depth: usize) -> Value {
    let mut v = Value::from(1);
    for i in 0..depth {
        v = if i % 2 == 0 {
            Value::Array(vec![v])
        } else {
            Value::Object(vec![("k".into(), v)])
        };
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn events_round_trip_through_both_encodings(
        fields in prop::collection::vec((".{0,16}", value()), 1..8)
    ) {
        let (_held, (client, mock)) = client();
        let mut ev = client.new_event();
        let mut want = Map::new();
        for (k, v) in &fields {
            want.insert(k.clone(), expect(v));
            ev.add_field(k.clone(), v.clone());
        }
        ev.send().unwrap();
        let events = mock.take_events();
        prop_assert_eq!(events.len(), 1);
        for (encoding, msgpack) in [(Encoding::Json, false), (Encoding::Msgpack, true)] {
            let body = libhoney::__bench::encode_batch(&events, encoding);
            let got = scan_batch(&body, msgpack).map_err(TestCaseError::fail)?;
            prop_assert_eq!(got.len(), 1);
            let ev = got[0].as_ref().map_err(|e| TestCaseError::fail(*e))?;
            prop_assert_eq!(&ev.data, &want, "{:?}", encoding);
        }
    }

    #[test]
    fn compressed_bodies_decode_to_themselves(body in prop::collection::vec(any::<u8>(), 0..4096)) {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&body).unwrap();
        let gz = gz.finish().unwrap();
        prop_assert_eq!(decode_body(Some("gzip"), &gz, 1 << 20), Ok(body.clone()));
        let zs = zstd::bulk::compress(&body, 1).unwrap();
        prop_assert_eq!(decode_body(Some("zstd"), &zs, 1 << 20), Ok(body.clone()));
        // Under a limit smaller than the body: refused, not truncated.
        if !body.is_empty() {
            prop_assert_eq!(decode_body(Some("zstd"), &zs, body.len() - 1), Err("too large"));
            prop_assert_eq!(decode_body(Some("gzip"), &gz, body.len() - 1), Err("too large"));
        }
    }

    #[test]
    fn send_accepts_exactly_the_values_within_the_depth_limit(depth in 0usize..(2 * Value::MAX_DEPTH)) {
        let (_held, (client, mock)) = client();
        let v = nested(depth);
        prop_assert_eq!(v.depth(), depth);
        let mut ev = client.new_event();
        ev.add_field("v", v);
        let res = ev.send();
        if depth <= Value::MAX_DEPTH {
            prop_assert_eq!(res, Ok(()));
        } else {
            let refused = matches!(res, Err(SendError::TooDeep { .. }));
            prop_assert!(refused);
        }
        let _ = mock.take_events();
    }
}
