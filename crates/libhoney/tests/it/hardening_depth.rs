//! Nesting depth (issue #14, row 2): a value nested 20,000 levels deep used
//! to overflow the `libhoney-batch` thread's stack and abort the process.
//! Now values deeper than `Value::MAX_DEPTH` are refused with a typed error
//! where they are added (`add`, `Value::from_serialize`) or sent
//! (`add_field` of a hand-built value), and the client goes on working;
//! values up to the limit reach the receiver intact, in both encodings.

use crate::http_support;

use http_support::*;
use libhoney::{Encoding, FieldError, SendError, Value};
use serde_json::json;

/// `[[[…[1]…]]]`, `depth` levels deep, built without recursion.
fn nested_array(depth: usize) -> Value {
    let mut v = Value::from(1);
    for _ in 0..depth {
        v = Value::Array(vec![v]);
    }
    v
}

fn nested_json(depth: usize) -> serde_json::Value {
    // Not `json!([v])`, which copies `v` (`to_value`) at every level.
    let mut v = json!(1);
    for _ in 0..depth {
        v = serde_json::Value::Array(vec![v]);
    }
    v
}

/// Runs `f` on a thread with a large stack: the test itself builds and
/// drops values 20,000 levels deep, and `Drop` of such a value (the
/// caller's own, whatever the SDK does) recurses.
fn with_big_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(512 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn a_value_20000_levels_deep_is_refused_and_the_client_keeps_working() {
    with_big_stack(|| {
        let rx = receiver();
        let client = client(one_batch(&rx));
        let mut ev = client.new_event();
        ev.add_field("deep", nested_array(20_000))
            .add_field("id", 1);
        assert_eq!(
            ev.send(),
            Err(SendError::TooDeep {
                field: "deep".into(),
                limit: Value::MAX_DEPTH
            })
        );
        // Through `add`, from a serde_json value: refused while serializing,
        // before the recursion goes further.
        let mut ev = client.new_event();
        let mut deep = serde_json::Map::new();
        deep.insert("deep".into(), nested_json(20_000));
        assert_eq!(
            ev.add(&deep).unwrap_err(),
            FieldError::TooDeep {
                limit: Value::MAX_DEPTH
            }
        );
        assert!(ev.is_empty(), "nothing added");
        assert!(matches!(
            Value::from_serialize(&nested_json(20_000)),
            Err(FieldError::TooDeep { .. })
        ));
        // The client still delivers.
        send_id(&client, 7);
        let responses = close_and_collect(&client);
        let tally = check_invariant(&[7], &responses, &rx, &client.metrics());
        assert!(tally.ok.contains(&7));
    });
}

#[test]
fn values_up_to_the_limit_arrive_intact_in_both_encodings() {
    for encoding in [Encoding::Json, Encoding::Msgpack] {
        let rx = receiver();
        let client = client(one_batch(&rx).encoding(encoding));
        let mut ev = client.new_event();
        ev.add_field("deepest", nested_array(Value::MAX_DEPTH));
        // Through `add` too: the struct is not a level of its fields.
        ev.add(&json!({ "via_add": nested_json(Value::MAX_DEPTH) }))
            .unwrap();
        ev.add_field("id", 1).add_metadata(1u64);
        ev.send().unwrap();
        let responses = close_and_collect(&client);
        let tally = check_invariant(&[1], &responses, &rx, &client.metrics());
        assert!(tally.ok.contains(&1), "{encoding:?}: {responses:?}");
        let events = rx.events();
        let data = &events[0].data;
        assert_eq!(
            data["deepest"],
            nested_json(Value::MAX_DEPTH),
            "{encoding:?}"
        );
        assert_eq!(
            data["via_add"],
            nested_json(Value::MAX_DEPTH),
            "{encoding:?}"
        );
    }
}

#[test]
fn one_level_more_is_refused_everywhere() {
    let rx = receiver();
    let client = client(one_batch(&rx));
    let over = Value::MAX_DEPTH + 1;
    // `add_field` of a hand-built value: refused by `send`.
    let mut ev = client.new_event();
    ev.add_field("x", nested_array(over));
    assert!(matches!(ev.send(), Err(SendError::TooDeep { field, .. }) if field == "x"));
    // Objects count as arrays do.
    let mut obj = Value::from(1);
    for _ in 0..over {
        obj = Value::Object(vec![("k".into(), obj)]);
    }
    assert_eq!(obj.depth(), over);
    let mut ev = client.new_event();
    ev.add_field("o", obj);
    assert!(matches!(ev.send(), Err(SendError::TooDeep { .. })));
    // `add` and `from_serialize`.
    let mut ev = client.new_event();
    assert!(matches!(
        ev.add(&json!({ "x": nested_json(over) })),
        Err(FieldError::TooDeep { .. })
    ));
    assert!(matches!(
        Value::from_serialize(&nested_json(over)),
        Err(FieldError::TooDeep { .. })
    ));
    assert_eq!(
        Value::from_serialize(&nested_json(Value::MAX_DEPTH))
            .unwrap()
            .depth(),
        Value::MAX_DEPTH
    );
    // Client and builder fields: inherited too deep, refused at send;
    // overridden by the event, sent.
    client.add_field("inherited", nested_array(over));
    let mut ev = client.new_event();
    ev.add_field("id", 1);
    assert!(matches!(ev.send(), Err(SendError::TooDeep { field, .. }) if field == "inherited"));
    let mut b = client.new_builder();
    assert!(matches!(
        b.add(&json!({ "b": nested_json(over) })),
        Err(FieldError::TooDeep { .. })
    ));
    let mut ev = b.new_event();
    ev.add_field("inherited", 0)
        .add_field("id", 2)
        .add_metadata(2u64);
    ev.send().unwrap();
    let responses = close_and_collect(&client);
    let tally = check_invariant(&[2], &responses, &rx, &client.metrics());
    assert!(tally.ok.contains(&2));
}

#[test]
fn errors_say_what_to_do() {
    let e = SendError::TooDeep {
        field: "f".into(),
        limit: 100,
    };
    assert_eq!(
        e.to_string(),
        "field \"f\" nests arrays and objects more than 100 levels deep; flatten it or send it as a string"
    );
    assert!(FieldError::TooDeep { limit: 100 }
        .to_string()
        .contains("more than 100 levels deep"));
}
