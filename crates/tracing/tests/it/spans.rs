//! Span → event: fields, ids, parenting across threads, reserved names,
//! sources, level filter and sampling, with a real registry and the SDK's Mock.

use crate::common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use common::*;
use libhoney::{Config, Value};
use libhoney_tracing::{HoneycombLayer, SpanExt, TraceContext, TraceId};
use tracing::field::Empty;
use tracing::{debug_span, info_span, trace_span, Level};

#[test]
fn a_root_span_sends_one_event_with_every_field() {
    let before = SystemTime::now();
    let line = line!() + 4;
    let events = capture(
        |c| HoneycombLayer::new(c).service_name("checkout"),
        || {
            let span = info_span!(
                "handle_request",
                user_id = 42,
                path = "/cart",
                status = Empty
            );
            span.record("status", 200);
            span.record("user_id", 43); // recorded again: the last value wins
        },
    );
    let after = SystemTime::now();
    assert_eq!(events.len(), 1, "{events:?}");
    let ev = &events[0];
    assert_eq!(s(ev, "name"), "handle_request");
    assert!(f(ev, "duration_ms") >= 0.0);
    assert!(f(ev, "busy_ms") >= 0.0);
    assert!(is_hex(s(ev, "trace.trace_id"), 32));
    assert!(is_hex(s(ev, "trace.span_id"), 16));
    assert!(ev.get("trace.parent_id").is_none());
    assert_eq!(s(ev, "service.name"), "checkout");
    assert_eq!(s(ev, "meta.span_type"), "root");
    assert_eq!(s(ev, "level"), "INFO");
    assert_eq!(s(ev, "target"), module_path!());
    assert_eq!(s(ev, "code.namespace"), module_path!());
    assert!(s(ev, "code.filepath").ends_with("spans.rs"));
    assert_eq!(
        ev.get("code.lineno").unwrap().as_u64(),
        Some(u64::from(line))
    );
    assert_eq!(ev.get("user_id").unwrap().as_i64(), Some(43));
    assert_eq!(s(ev, "path"), "/cart");
    assert_eq!(ev.get("status").unwrap().as_i64(), Some(200));
    assert_eq!(ev.dataset(), "test-ds");
    assert_eq!(ev.sample_rate(), 1);
    // Timestamped at creation.
    assert!(before <= ev.timestamp() && ev.timestamp() <= after);
}

#[test]
fn duration_is_wall_time_and_busy_time_is_time_entered() {
    let events = capture(HoneycombLayer::new, || {
        let span = info_span!("work");
        span.in_scope(|| std::thread::sleep(Duration::from_millis(20)));
        std::thread::sleep(Duration::from_millis(20)); // idle: counts in duration only
        span.in_scope(|| std::thread::sleep(Duration::from_millis(5)));
    });
    let ev = one(&events, "work");
    let (duration, busy) = (f(ev, "duration_ms"), f(ev, "busy_ms"));
    assert!(busy >= 25.0, "busy {busy}");
    assert!(duration >= 45.0, "duration {duration}");
    assert!(duration >= busy);
}

#[test]
fn busy_time_can_be_turned_off() {
    let events = capture(
        |c| HoneycombLayer::new(c).busy_time(false),
        || info_span!("work").in_scope(|| {}),
    );
    assert!(events[0].get("busy_ms").is_none());
    assert!(events[0].get("duration_ms").is_some());
}

#[test]
fn nested_spans_share_the_trace_and_link_to_their_parents() {
    let events = capture(HoneycombLayer::new, || {
        info_span!("root").in_scope(|| {
            info_span!("mid").in_scope(|| {
                info_span!("leaf1").in_scope(|| {});
                info_span!("leaf2").in_scope(|| {});
            });
        });
        info_span!("other_root").in_scope(|| {});
    });
    assert_eq!(events.len(), 5);
    // Children close (and are sent) before their parents.
    let names: Vec<_> = events.iter().map(|e| s(e, "name")).collect();
    assert_eq!(names, ["leaf1", "leaf2", "mid", "root", "other_root"]);
    let (root, mid) = (one(&events, "root"), one(&events, "mid"));
    let (leaf1, leaf2) = (one(&events, "leaf1"), one(&events, "leaf2"));
    for ev in [mid, leaf1, leaf2] {
        assert_eq!(s(ev, "trace.trace_id"), s(root, "trace.trace_id"));
    }
    assert_eq!(s(mid, "trace.parent_id"), s(root, "trace.span_id"));
    assert_eq!(s(leaf1, "trace.parent_id"), s(mid, "trace.span_id"));
    assert_eq!(s(leaf2, "trace.parent_id"), s(mid, "trace.span_id"));
    assert_eq!(s(root, "meta.span_type"), "root");
    assert_eq!(s(mid, "meta.span_type"), "mid");
    assert_eq!(s(leaf1, "meta.span_type"), "leaf");
    let ids: HashSet<_> = events.iter().map(|e| s(e, "trace.span_id")).collect();
    assert_eq!(ids.len(), 5, "span ids are unique");
    let other = one(&events, "other_root");
    assert_ne!(s(other, "trace.trace_id"), s(root, "trace.trace_id"));
    assert!(other.get("trace.parent_id").is_none());
}

#[test]
fn explicit_parents_and_follows_from_style_roots() {
    let events = capture(HoneycombLayer::new, || {
        let root = info_span!("root");
        let child = info_span!(parent: &root, "child"); // not entered
        let orphan = root.in_scope(|| info_span!(parent: None, "detached"));
        drop((child, orphan));
    });
    let (root, child) = (one(&events, "root"), one(&events, "child"));
    assert_eq!(s(child, "trace.parent_id"), s(root, "trace.span_id"));
    let detached = one(&events, "detached");
    assert!(detached.get("trace.parent_id").is_none());
    assert_ne!(s(detached, "trace.trace_id"), s(root, "trace.trace_id"));
}

#[test]
fn spans_on_other_threads_join_the_trace() {
    let (client, mock) = mock_client();
    let d = dispatch(HoneycombLayer::new(client.clone()));
    tracing::dispatcher::with_default(&d, || {
        let root = info_span!("root");
        std::thread::scope(|scope| {
            for i in 0..4 {
                let (root, d) = (root.clone(), d.clone());
                scope.spawn(move || {
                    tracing::dispatcher::with_default(&d, || {
                        // Contextual parent: the span entered on this thread.
                        root.in_scope(|| {
                            info_span!("worker", i).in_scope(|| {
                                info_span!("step", i).in_scope(|| {});
                            });
                        });
                        // Explicit parent, no entering.
                        let _ = info_span!(parent: &root, "explicit", i);
                    });
                });
            }
        });
    });
    client.flush().unwrap();
    let events = mock.take_events();
    assert_eq!(events.len(), 1 + 4 * 3);
    let root = one(&events, "root");
    let workers = all(&events, "worker");
    assert_eq!(workers.len(), 4);
    for w in &workers {
        assert_eq!(s(w, "trace.trace_id"), s(root, "trace.trace_id"));
        assert_eq!(s(w, "trace.parent_id"), s(root, "trace.span_id"));
        let i = w.get("i").unwrap().as_i64();
        let step = all(&events, "step")
            .into_iter()
            .find(|st| st.get("i").unwrap().as_i64() == i)
            .unwrap();
        assert_eq!(s(step, "trace.parent_id"), s(w, "trace.span_id"));
        assert_eq!(s(step, "trace.trace_id"), s(root, "trace.trace_id"));
    }
    for e in all(&events, "explicit") {
        assert_eq!(s(e, "trace.parent_id"), s(root, "trace.span_id"));
    }
}

#[test]
fn reserved_names_are_prefixed_and_ours_survive() {
    let events = capture(
        |c| HoneycombLayer::new(c).service_name("svc"),
        || {
            let span = info_span!(
                "real_name",
                name = "user name",
                duration_ms = 1234.5,
                busy_ms = 1,
                level = "user level",
                target = "user target",
                service.name = "user svc",
                trace.span_id = "user span id",
                trace.trace_id = "user trace id",
                trace.parent_id = "user parent",
                meta.span_type = "user type",
                code.lineno = 1,
                names = "not reserved",
            );
            span.record("name", "recorded later");
        },
    );
    let ev = &events[0];
    assert_eq!(s(ev, "name"), "real_name");
    assert_ne!(f(ev, "duration_ms"), 1234.5);
    assert_eq!(s(ev, "level"), "INFO");
    assert_eq!(s(ev, "target"), module_path!());
    assert_eq!(s(ev, "service.name"), "svc");
    assert!(is_hex(s(ev, "trace.span_id"), 16));
    assert!(is_hex(s(ev, "trace.trace_id"), 32));
    assert!(ev.get("trace.parent_id").is_none());
    assert_eq!(s(ev, "meta.span_type"), "root");
    assert_ne!(ev.get("code.lineno").unwrap().as_i64(), Some(1));

    assert_eq!(s(ev, "tracing.name"), "recorded later");
    assert_eq!(f(ev, "tracing.duration_ms"), 1234.5);
    assert_eq!(ev.get("tracing.busy_ms").unwrap().as_i64(), Some(1));
    assert_eq!(s(ev, "tracing.level"), "user level");
    assert_eq!(s(ev, "tracing.target"), "user target");
    assert_eq!(s(ev, "tracing.service.name"), "user svc");
    assert_eq!(s(ev, "tracing.trace.span_id"), "user span id");
    assert_eq!(s(ev, "tracing.trace.trace_id"), "user trace id");
    assert_eq!(s(ev, "tracing.trace.parent_id"), "user parent");
    assert_eq!(s(ev, "tracing.meta.span_type"), "user type");
    assert_eq!(ev.get("tracing.code.lineno").unwrap().as_i64(), Some(1));
    assert_eq!(s(ev, "names"), "not reserved");
}

#[derive(Debug)]
struct Oops;
impl std::fmt::Display for Oops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("oops happened")
    }
}
impl std::error::Error for Oops {}

#[test]
fn field_values_keep_their_types() {
    let events = capture(HoneycombLayer::new, || {
        let err = Oops;
        let _ = info_span!(
            "types",
            i = -5i64,
            u = u64::MAX,
            fl = 0.25f64,
            b = true,
            st = "text",
            dbg = ?vec![1, 2],
            disp = %"shown",
            big = u128::MAX,
            small128 = 7i128,
            err = &err as &(dyn std::error::Error + 'static),
        );
    });
    let ev = &events[0];
    assert_eq!(ev.get("i"), Some(&Value::Int(-5)));
    assert_eq!(ev.get("u").unwrap().as_u64(), Some(u64::MAX));
    assert_eq!(ev.get("fl"), Some(&Value::Float(0.25)));
    assert_eq!(ev.get("b"), Some(&Value::Bool(true)));
    assert_eq!(s(ev, "st"), "text");
    assert_eq!(s(ev, "dbg"), "[1, 2]");
    assert_eq!(s(ev, "disp"), "shown");
    assert_eq!(s(ev, "big"), u128::MAX.to_string());
    assert_eq!(ev.get("small128").unwrap().as_i64(), Some(7));
    assert_eq!(s(ev, "err"), "oops happened");
}

#[test]
fn max_level_skips_verbose_spans_and_reparents_their_children() {
    let events = capture(
        |c| HoneycombLayer::new(c).max_level(Level::INFO),
        || {
            info_span!("outer").in_scope(|| {
                debug_span!("noisy").in_scope(|| {
                    trace_span!("noisier").in_scope(|| {
                        info_span!("inner").in_scope(|| {});
                    });
                });
            });
        },
    );
    let names: Vec<_> = events.iter().map(|e| s(e, "name")).collect();
    assert_eq!(names, ["inner", "outer"]);
    let (outer, inner) = (one(&events, "outer"), one(&events, "inner"));
    assert_eq!(s(inner, "trace.parent_id"), s(outer, "trace.span_id"));
    assert_eq!(s(inner, "trace.trace_id"), s(outer, "trace.trace_id"));
}

#[test]
fn a_per_layer_filter_works_too() {
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::prelude::*;
    let (client, mock) = mock_client();
    let subscriber = tracing_subscriber::registry()
        .with(HoneycombLayer::new(client.clone()).with_filter(LevelFilter::INFO));
    tracing::subscriber::with_default(subscriber, || {
        info_span!("outer").in_scope(|| {
            debug_span!("noisy").in_scope(|| info_span!("inner").in_scope(|| {}));
        });
    });
    let events = mock.take_events();
    let names: Vec<_> = events.iter().map(|e| s(e, "name")).collect();
    assert_eq!(names, ["inner", "outer"]);
    assert_eq!(
        s(one(&events, "inner"), "trace.parent_id"),
        s(one(&events, "outer"), "trace.span_id")
    );
}

#[test]
fn defaults_send_info_and_above_only() {
    let events = capture(HoneycombLayer::new, || {
        info_span!("request").in_scope(|| {
            debug_span!(target: "h2::proto", "poll").in_scope(|| {
                trace_span!(target: "h2::codec", "frame").in_scope(|| {});
                tracing::debug!(target: "h2::proto", "flushing");
            });
            debug_span!("my_debug").in_scope(|| {});
            tracing::info!("handled");
        });
    });
    let names: Vec<_> = events.iter().map(|e| s(e, "name")).collect();
    assert_eq!(names, ["handled", "request"]);
}

#[test]
fn the_env_filter_recipe_lets_your_crates_debug_spans_through() {
    use tracing::level_filters::LevelFilter;
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::EnvFilter;
    let (client, mock) = mock_client();
    let layer = HoneycombLayer::new(client.clone())
        .max_level(LevelFilter::TRACE)
        .with_filter(EnvFilter::new("info,my_app=debug"));
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        info_span!(target: "my_app", "request").in_scope(|| {
            debug_span!(target: "my_app::db", "query").in_scope(|| {
                trace_span!(target: "my_app::db", "row").in_scope(|| {});
            });
            debug_span!(target: "h2::proto", "poll").in_scope(|| {});
        });
    });
    let events = mock.take_events();
    let names: Vec<_> = events.iter().map(|e| s(e, "name")).collect();
    assert_eq!(names, ["query", "request"]);
    assert_eq!(
        s(one(&events, "query"), "trace.parent_id"),
        s(one(&events, "request"), "trace.span_id")
    );
}

#[test]
fn a_builder_source_applies_its_fields_and_dataset() {
    let (client, mock) = mock_client();
    let mut builder = client.new_builder();
    builder
        .add_field("component", "worker")
        .set_dataset("spans-ds");
    let d = dispatch(HoneycombLayer::from_builder(builder));
    tracing::dispatcher::with_default(&d, || info_span!("job").in_scope(|| {}));
    let events = mock.take_events();
    assert_eq!(events[0].dataset(), "spans-ds");
    assert_eq!(s(&events[0], "component"), "worker");
}

#[test]
fn a_client_source_sees_global_fields_added_later() {
    let (client, mock) = mock_client();
    let d = dispatch(HoneycombLayer::new(client.clone()));
    client.add_field("build_id", "abc123");
    client.add_field("name", "global name"); // ours wins on span events
    tracing::dispatcher::with_default(&d, || info_span!("job").in_scope(|| {}));
    let events = mock.take_events();
    assert_eq!(s(&events[0], "build_id"), "abc123");
    assert_eq!(s(&events[0], "name"), "job");
}

/// A root span continued from a chosen trace id, so sampling is deterministic.
fn traced_root(trace: u128, name: &'static str) -> tracing::Span {
    let span = info_span!("root", which = name);
    let ctx = TraceContext::new(
        TraceId::new(trace).unwrap(),
        libhoney_tracing::SpanId::new(1).unwrap(),
    );
    assert!(span.set_remote_parent(ctx));
    span
}

#[test]
fn sampling_keeps_or_drops_whole_traces_by_trace_id() {
    let (client, mock) = mock_client();
    let d = dispatch(HoneycombLayer::new(client.clone()).sample_rate(4));
    tracing::dispatcher::with_default(&d, || {
        for (trace, name) in [(8u128, "kept"), (9, "dropped"), (4 << 64 | 12, "kept too")] {
            let root = traced_root(trace, name);
            root.in_scope(|| {
                info_span!("child").in_scope(|| tracing::info!("inside"));
                let _ = std::thread::scope(|sc| {
                    sc.spawn(|| {
                        tracing::dispatcher::with_default(&d, || {
                            let _ = info_span!(parent: &root, "on_thread");
                        })
                    })
                    .join()
                });
            });
        }
    });
    let events = mock.take_events();
    let mut by_trace: HashMap<&str, Vec<&str>> = HashMap::new();
    for e in &events {
        by_trace
            .entry(s(e, "trace.trace_id"))
            .or_default()
            .push(s(e, "name"));
        assert_eq!(e.sample_rate(), 4, "kept events carry the rate");
    }
    assert_eq!(by_trace.len(), 2, "{by_trace:?}");
    for trace in [
        TraceId::new(8).unwrap(),
        TraceId::new(4 << 64 | 12).unwrap(),
    ] {
        let mut names = by_trace[trace.to_string().as_str()].clone();
        names.sort();
        assert_eq!(names, ["child", "inside", "on_thread", "root"]);
    }
    let kept: HashSet<_> = events
        .iter()
        .filter_map(|e| e.get("which").and_then(Value::as_str))
        .collect();
    assert_eq!(kept, HashSet::from(["kept", "kept too"]));
}

#[test]
fn random_traces_are_kept_or_dropped_whole() {
    let (client, mock) = mock_client();
    let d = dispatch(HoneycombLayer::new(client.clone()).sample_rate(3));
    tracing::dispatcher::with_default(&d, || {
        for _ in 0..300 {
            info_span!("r").in_scope(|| info_span!("c").in_scope(|| {}));
        }
    });
    let events = mock.take_events();
    let mut count: HashMap<String, usize> = HashMap::new();
    for e in &events {
        let id: TraceId = s(e, "trace.trace_id").parse().unwrap();
        assert!(id.is_sampled(3), "only traces the rule keeps are sent");
        *count.entry(id.to_string()).or_default() += 1;
    }
    assert!(count.values().all(|&n| n == 2), "whole traces: {count:?}");
    // 300 random traces at 1 in 3: none or all kept would be a broken rule.
    assert!(!count.is_empty() && count.len() < 300);
}

#[test]
fn the_sample_rate_defaults_to_the_clients() {
    let (client, mock) = mock_client_with(Config::new().sample_rate(2));
    let d = dispatch(HoneycombLayer::new(client.clone()));
    tracing::dispatcher::with_default(&d, || {
        let _ = traced_root(2, "even");
        let _ = traced_root(3, "odd");
    });
    let events = mock.take_events();
    assert_eq!(events.len(), 1);
    assert_eq!(s(&events[0], "which"), "even");
    assert_eq!(events[0].sample_rate(), 2);
}

#[test]
fn a_closed_client_never_fails_the_instrumented_code() {
    let (client, mock) = mock_client();
    let d = dispatch(HoneycombLayer::new(client.clone()));
    client.close().unwrap();
    let out = tracing::dispatcher::with_default(&d, || {
        info_span!("after_close").in_scope(|| {
            tracing::info!("still fine");
            7
        })
    });
    assert_eq!(out, 7);
    assert!(mock.is_empty());
}
