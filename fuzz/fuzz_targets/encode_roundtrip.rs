//! SDK encoders against the receiver's decoders: an arbitrary event (a
//! tree of `Value`s) sent through a client, encoded by the SDK as a JSON
//! and as a msgpack batch, and read by the receiver, gives back exactly the
//! fields that were added (the last write of a key winning, non-finite
//! floats as their names, as `NonFiniteFloats::String` writes them).
#![no_main]

use std::sync::OnceLock;

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use libhoney::transmission::Mock;
use libhoney::{Client, Config, Encoding, Value};
use libhoney_receiver::__fuzz::scan_batch;
use serde_json::{Map, Value as Json};

const MAX_DEPTH: usize = 12;

fn value(u: &mut Unstructured<'_>, depth: usize) -> Result<Value> {
    let kinds = if depth >= MAX_DEPTH { 6 } else { 8 };
    Ok(match u.choose_index(kinds)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::Int(u.arbitrary()?),
        3 => Value::from(u.arbitrary::<u64>()?),
        4 => Value::Float(f64::from_bits(u.arbitrary()?)),
        5 => Value::from(u.arbitrary::<String>()?),
        6 => {
            let n = u.int_in_range(0..=6)?;
            Value::Array((0..n).map(|_| value(u, depth + 1)).collect::<Result<_>>()?)
        }
        _ => {
            let n = u.int_in_range(0..=6)?;
            let mut entries = Vec::with_capacity(n);
            for _ in 0..n {
                entries.push((u.arbitrary::<String>()?.into(), value(u, depth + 1)?));
            }
            Value::Object(entries)
        }
    })
}

fn float(f: f64) -> Json {
    if f.is_nan() {
        Json::from("NaN")
    } else if f == f64::INFINITY {
        Json::from("Infinity")
    } else if f == f64::NEG_INFINITY {
        Json::from("-Infinity")
    } else {
        Json::from(f)
    }
}

/// What the receiver should read for `v`.
fn expect(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::from(*b),
        Value::Int(i) => Json::from(*i),
        Value::UInt(u) => Json::from(*u),
        Value::Float(f) => float(*f),
        Value::String(s) => Json::from(s.as_ref()),
        Value::Array(items) => Json::Array(items.iter().map(expect).collect()),
        Value::Object(entries) => {
            let mut m = Map::new();
            for (k, v) in entries {
                m.insert(k.to_string(), expect(v));
            }
            Json::Object(m)
        }
        _ => unreachable!("a Value kind this target does not build"),
    }
}

fn client() -> &'static (Client, Mock) {
    static C: OnceLock<(Client, Mock)> = OnceLock::new();
    C.get_or_init(|| {
        let mock = Mock::new();
        let config = Config::new()
            .api_key("k")
            .dataset("d")
            .transmission(mock.clone());
        (Client::new(config).expect("client"), mock)
    })
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(n) = u.int_in_range(1..=8usize) else {
        return;
    };
    let mut fields = Vec::new();
    for _ in 0..n {
        let (Ok(k), Ok(v)) = (u.arbitrary::<String>(), value(&mut u, 0)) else {
            return;
        };
        fields.push((k, v));
    }
    let (client, mock) = client();
    let mut ev = client.new_event();
    let mut want = Map::new();
    for (k, v) in &fields {
        want.insert(k.clone(), expect(v));
        ev.add_field(k.clone(), v.clone());
    }
    ev.send().expect("send");
    let events = mock.take_events();
    assert_eq!(events.len(), 1);
    for (encoding, msgpack) in [(Encoding::Json, false), (Encoding::Msgpack, true)] {
        let body = libhoney::__bench::encode_batch(&events, encoding);
        let got = scan_batch(&body, msgpack).unwrap_or_else(|e| panic!("{encoding:?}: {e}"));
        assert_eq!(got.len(), 1);
        let got = got[0].as_ref().unwrap_or_else(|e| panic!("{encoding:?}: {e}"));
        assert_eq!(got.data, want, "{encoding:?}");
    }
});
