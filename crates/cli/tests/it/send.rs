//! `honey send` end to end against the receiver.
use crate::common;

use std::time::Duration;

use common::*;
use libhoney_receiver::Fault;
use serde_json::json;

const T: Duration = Duration::from_secs(30);

#[test]
fn send_infers_each_type() {
    let rx = receiver();
    let mut c = honey_to(&rx, "send", "types");
    c.args([
        "int=42",
        "neg=-7",
        "float=1.5",
        "yes=true",
        "no=false",
        r#"obj={"a":1,"b":[true,"x"]}"#,
        "arr=[1,2]",
        "text=hello world",
        "empty=",
        "eq=a=b",
    ]);
    let out = run(c, T);
    assert_success(&out);
    let ev = &rx.events()[0];
    assert_eq!(ev.dataset, "types");
    assert_eq!(ev.api_key, KEY);
    let d = serde_json::Value::Object(ev.data.clone());
    assert_eq!(d["int"], json!(42));
    assert_eq!(d["neg"], json!(-7));
    assert_eq!(d["float"], json!(1.5));
    assert_eq!(d["yes"], json!(true));
    assert_eq!(d["no"], json!(false));
    assert_eq!(d["obj"], json!({"a":1,"b":[true,"x"]}));
    assert_eq!(d["arr"], json!([1, 2]));
    assert_eq!(d["text"], json!("hello world"));
    assert_eq!(d["empty"], json!(""));
    assert_eq!(d["eq"], json!("a=b"));
}

#[test]
fn send_string_flag_timestamp_and_sample_rate() {
    let rx = receiver();
    let mut c = honey_to(&rx, "send", "s");
    c.args([
        "--string",
        "--timestamp",
        "2026-12-07T12:00:00Z",
        "id=0042",
        "ok=true",
    ]);
    let out = run(c, T);
    assert_success(&out);
    let ev = &rx.events()[0];
    assert_eq!(ev.data["id"], json!("0042"));
    assert_eq!(ev.data["ok"], json!("true"));
    assert!(
        ev.time
            .as_deref()
            .unwrap_or("")
            .starts_with("2026-12-07T12:00:00"),
        "{:?}",
        ev.time
    );

    // Unix seconds, and a sample rate: kept events carry it; dropped ones exit 0 too.
    rx.reset();
    for _ in 0..5 {
        let mut c = honey_to(&rx, "send", "s");
        c.args(["--timestamp", "1700000000", "--sample-rate", "2", "n=1"]);
        let out = run(c, T);
        assert_success(&out);
        assert!(out.stderr.is_empty() || stderr(&out).contains("dropped by sampling"));
    }
    for ev in rx.events() {
        assert_eq!(ev.samplerate, Some(2));
        assert!(
            ev.time
                .as_deref()
                .unwrap_or("")
                .starts_with("2023-11-14T22:13:20"),
            "{:?}",
            ev.time
        );
    }
}

#[test]
fn send_reads_a_json_object_from_stdin() {
    let rx = receiver();
    let mut c = honey_to(&rx, "send", "stdin");
    c.args(["--stdin", "extra=1", "job=override"]);
    let out = run_with_input(c, br#"{"job":"backup","rows":12,"nested":{"ok":true}}"#, T);
    assert_success(&out);
    let d = &rx.events()[0].data;
    assert_eq!(d["job"], json!("override"));
    assert_eq!(d["rows"], json!(12));
    assert_eq!(d["nested"], json!({"ok": true}));
    assert_eq!(d["extra"], json!(1));

    // Not an object: usage error, nothing sent.
    rx.reset();
    let mut c = honey_to(&rx, "send", "stdin");
    c.arg("--stdin");
    let out = run_with_input(c, b"[1,2]", T);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not one JSON object"),
        "{}",
        stderr(&out)
    );
    assert_eq!(rx.stats().requests, 0);
}

#[test]
fn refused_event_exits_1_with_the_api_message() {
    let rx = receiver();
    // Wrong key: the whole request is refused with 401.
    let mut c = honey();
    c.args([
        "send",
        "--api-host",
        &rx.api_host(),
        "-k",
        "wrong",
        "-d",
        "x",
        "a=1",
    ]);
    let out = run(c, T);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("HTTP 401") && err.contains("unknown API key"),
        "{err}"
    );
    assert!(!err.contains("wrong"), "the key must not be printed: {err}");

    // One event refused by its per-event status.
    rx.push_fault(
        Fault::EventStatus {
            index: 0,
            status: 400,
            error: "Event has too many columns.".into(),
        },
        1,
    );
    let mut c = honey_to(&rx, "send", "x");
    c.arg("a=1");
    let out = run(c, T);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("Event has too many columns."),
        "{}",
        stderr(&out)
    );
}

#[test]
fn usage_and_configuration_errors() {
    let rx = receiver();
    let mut c = honey_to(&rx, "send", "x");
    c.arg("novalue");
    let out = run(c, T);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not name=value"));

    let mut c = honey_to(&rx, "send", "x");
    c.arg("--bogus");
    assert_eq!(run(c, T).status.code(), Some(2));

    // No API key anywhere: configuration error, nothing sent.
    let mut c = honey();
    c.args(["send", "--api-host", &rx.api_host(), "-d", "x", "a=1"]);
    let out = run(c, T);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("no API key"), "{}", stderr(&out));
    assert_eq!(rx.stats().requests, 0);

    // The environment supplies what flags do not.
    let mut c = honey();
    c.env("HONEYCOMB_API_KEY", KEY)
        .env("HONEYCOMB_DATASET", "from-env")
        .env("HONEYCOMB_API_ENDPOINT", rx.api_host())
        .args(["send", "a=1"]);
    let out = run(c, T);
    assert_success(&out);
    assert_eq!(rx.events()[0].dataset, "from-env");
}

#[test]
fn dry_run_prints_instead_of_sending() {
    let rx = receiver();
    let mut c = honey();
    c.args([
        "send",
        "--api-host",
        &rx.api_host(),
        "-d",
        "dry",
        "--dry-run",
        "a=1",
        "b=x",
    ]);
    let out = run(c, T);
    assert_success(&out);
    let line: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(line["dataset"], json!("dry"));
    assert_eq!(line["data"], json!({"a": 1, "b": "x"}));
    assert_eq!(rx.stats().requests, 0);
}
