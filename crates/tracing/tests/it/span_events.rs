//! Log events: span events inside spans, standalone events outside, the
//! switches for both, reserved names and levels.

use crate::common;

use common::*;
use libhoney::Value;
use libhoney_tracing::HoneycombLayer;
use tracing::{debug, error, info, info_span, warn, Level};

#[test]
fn a_log_event_in_a_span_is_a_span_event_sent_at_once() {
    let (client, mock) = mock_client();
    let d = dispatch(HoneycombLayer::new(client.clone()).service_name("svc"));
    let line = line!() + 4;
    tracing::dispatcher::with_default(&d, || {
        let span = info_span!("request");
        let _entered = span.enter();
        info!(items = 3, user = "ann", "cart loaded");
        // Sent immediately: there before the span closes.
        assert_eq!(mock.len(), 1);
    });
    let events = mock.take_events();
    assert_eq!(events.len(), 2);
    let (log, span) = (&events[0], &events[1]);
    assert_eq!(s(span, "name"), "request");
    assert_eq!(s(log, "name"), "cart loaded");
    assert_eq!(s(log, "meta.annotation_type"), "span_event");
    assert_eq!(s(log, "trace.trace_id"), s(span, "trace.trace_id"));
    assert_eq!(s(log, "trace.parent_id"), s(span, "trace.span_id"));
    assert!(log.get("trace.span_id").is_none());
    assert!(log.get("duration_ms").is_none());
    assert_eq!(log.get("items").unwrap().as_i64(), Some(3));
    assert_eq!(s(log, "user"), "ann");
    assert_eq!(s(log, "level"), "INFO");
    assert_eq!(s(log, "target"), module_path!());
    assert_eq!(s(log, "service.name"), "svc");
    assert!(s(log, "code.filepath").ends_with("span_events.rs"));
    assert_eq!(
        log.get("code.lineno").unwrap().as_u64(),
        Some(u64::from(line))
    );
    assert!(log.get("message").is_none(), "the message is the name");
    assert!(log.timestamp() >= span.timestamp());
}

#[test]
fn log_events_attach_to_the_innermost_span_or_their_explicit_parent() {
    let events = capture(HoneycombLayer::new, || {
        let outer = info_span!("outer");
        outer.in_scope(|| {
            info!("in outer");
            info_span!("inner").in_scope(|| {
                warn!("in inner");
                info!(parent: &outer, "explicitly in outer");
            });
        });
        info!(parent: &outer, "outer, from outside");
    });
    let (outer, inner) = (one(&events, "outer"), one(&events, "inner"));
    for (name, parent) in [
        ("in outer", outer),
        ("in inner", inner),
        ("explicitly in outer", outer),
        ("outer, from outside", outer),
    ] {
        let ev = one(&events, name);
        assert_eq!(
            s(ev, "trace.parent_id"),
            s(parent, "trace.span_id"),
            "{name}"
        );
        assert_eq!(
            s(ev, "trace.trace_id"),
            s(outer, "trace.trace_id"),
            "{name}"
        );
    }
    assert_eq!(s(one(&events, "in inner"), "level"), "WARN");
    assert_eq!(span_events(&events).len(), 4);
}

#[test]
fn a_log_event_outside_spans_is_a_standalone_event() {
    let events = capture(
        |c| {
            HoneycombLayer::new(c)
                .service_name("svc")
                .orphan_events(true)
        },
        || {
            error!(code = 7, "disk full");
            let span = info_span!("s");
            span.in_scope(|| info!(parent: None, "explicitly outside"));
        },
    );
    let ev = one(&events, "disk full");
    assert_eq!(s(ev, "level"), "ERROR");
    assert_eq!(s(ev, "service.name"), "svc");
    assert_eq!(ev.get("code").unwrap().as_i64(), Some(7));
    for absent in [
        "trace.trace_id",
        "trace.parent_id",
        "trace.span_id",
        "meta.annotation_type",
    ] {
        assert!(ev.get(absent).is_none(), "{absent}");
    }
    assert!(one(&events, "explicitly outside")
        .get("trace.parent_id")
        .is_none());
}

#[test]
fn either_kind_can_be_turned_off() {
    let run = |layer: fn(libhoney::Client) -> HoneycombLayer| {
        let events = capture(layer, || {
            info!("outside");
            info_span!("span").in_scope(|| info!("inside"));
        });
        let mut names: Vec<_> = events.iter().map(|e| s(e, "name").to_string()).collect();
        names.sort();
        names
    };
    // Log events outside spans are off by default.
    assert_eq!(run(HoneycombLayer::new), ["inside", "span"]);
    assert_eq!(
        run(|c| HoneycombLayer::new(c).orphan_events(true)),
        ["inside", "outside", "span"]
    );
    assert_eq!(
        run(|c| HoneycombLayer::new(c)
            .orphan_events(true)
            .span_events(false)),
        ["outside", "span"]
    );
    assert_eq!(
        run(|c| HoneycombLayer::new(c)
            .span_events(false)
            .orphan_events(false)),
        ["span"]
    );
}

#[test]
fn event_fields_with_reserved_names_are_prefixed() {
    let events = capture(HoneycombLayer::new, || {
        info_span!("span").in_scope(|| {
            info!(
                name = "user name",
                trace.parent_id = "user parent",
                meta.annotation_type = "user type",
                level = 3,
                "the message"
            );
        });
    });
    let ev = one(&events, "the message");
    assert_eq!(s(ev, "meta.annotation_type"), "span_event");
    assert_eq!(
        s(ev, "trace.parent_id"),
        s(one(&events, "span"), "trace.span_id")
    );
    assert_eq!(s(ev, "level"), "INFO");
    assert_eq!(s(ev, "tracing.name"), "user name");
    assert_eq!(s(ev, "tracing.trace.parent_id"), "user parent");
    assert_eq!(s(ev, "tracing.meta.annotation_type"), "user type");
    assert_eq!(ev.get("tracing.level").unwrap().as_i64(), Some(3));
}

#[test]
fn an_event_without_a_message_is_named_after_its_callsite() {
    let events = capture(
        |c| HoneycombLayer::new(c).orphan_events(true),
        || info!(answer = 42),
    );
    let name = s(&events[0], "name");
    assert!(
        name.starts_with("event ") && name.contains("span_events.rs"),
        "{name}"
    );
    assert_eq!(events[0].get("answer").unwrap().as_i64(), Some(42));
}

#[test]
fn max_level_filters_log_events() {
    let events = capture(
        |c| HoneycombLayer::new(c).max_level(Level::INFO),
        || {
            info_span!("span").in_scope(|| {
                debug!("too verbose");
                info!("kept");
            });
            debug!("too verbose outside");
        },
    );
    let names: Vec<_> = events.iter().map(|e| s(e, "name")).collect();
    assert_eq!(names, ["kept", "span"]);
}

#[test]
fn a_log_event_in_a_filtered_span_attaches_to_the_nearest_sent_ancestor() {
    let events = capture(
        |c| HoneycombLayer::new(c).max_level(Level::INFO),
        || {
            info_span!("outer").in_scope(|| {
                tracing::debug_span!("noisy").in_scope(|| info!("hello"));
            });
        },
    );
    assert_eq!(
        s(one(&events, "hello"), "trace.parent_id"),
        s(one(&events, "outer"), "trace.span_id")
    );
}

#[test]
fn span_events_carry_the_trace_sample_rate() {
    let events = capture(
        |c| HoneycombLayer::new(c).sample_rate(1),
        || info_span!("s").in_scope(|| info!("x")),
    );
    assert!(events.iter().all(|e| e.sample_rate() == 1));
    assert_eq!(
        one(&events, "x").get("meta.annotation_type"),
        Some(&Value::from("span_event"))
    );
}
