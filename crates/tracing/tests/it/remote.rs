//! Continuing a remote trace (traceparent in) and passing one on
//! (traceparent out), through different subscriber stacks.

use crate::common;

use common::*;
use libhoney_tracing::{HoneycombLayer, SpanExt, SpanId, TraceContext, TraceId};
use tracing::{debug_span, info, info_span, Level};
use tracing_subscriber::prelude::*;

const INCOMING: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[test]
fn a_span_continues_a_remote_trace_and_its_children_follow() {
    let mut outgoing = String::new();
    let events = capture(HoneycombLayer::new, || {
        let span = info_span!("handle_request");
        assert!(span.set_remote_parent(TraceContext::from_traceparent(INCOMING).unwrap()));
        span.in_scope(|| {
            info!("received");
            info_span!("db_query").in_scope(|| {
                outgoing = tracing::Span::current()
                    .trace_context()
                    .unwrap()
                    .to_traceparent();
            });
        });
    });
    let root = one(&events, "handle_request");
    let child = one(&events, "db_query");
    let log = one(&events, "received");
    assert_eq!(
        s(root, "trace.trace_id"),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(s(root, "trace.parent_id"), "00f067aa0ba902b7");
    assert_eq!(s(root, "meta.span_type"), "subroot");
    assert_eq!(
        s(child, "trace.trace_id"),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(s(child, "trace.parent_id"), s(root, "trace.span_id"));
    assert_eq!(s(log, "trace.trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(s(log, "trace.parent_id"), s(root, "trace.span_id"));
    // What a callee would receive: this trace, the child's own span id.
    assert_eq!(
        outgoing,
        format!(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01",
            s(child, "trace.span_id")
        )
    );
}

#[test]
fn trace_context_reads_the_span_ids_and_sampling_decision() {
    let (client, _mock) = mock_client();
    let d = dispatch(HoneycombLayer::new(client).sample_rate(2));
    tracing::dispatcher::with_default(&d, || {
        let kept = info_span!("kept");
        kept.set_remote_parent(TraceContext::new(
            TraceId::new(10).unwrap(),
            SpanId::new(3).unwrap(),
        ));
        let ctx = kept.trace_context().unwrap();
        assert_eq!(ctx.trace_id, TraceId::new(10).unwrap());
        assert_ne!(
            ctx.span_id,
            SpanId::new(3).unwrap(),
            "its own id, not the parent's"
        );
        assert!(ctx.sampled);
        assert!(ctx.to_traceparent().ends_with("-01"));

        let dropped = info_span!("dropped");
        dropped.set_remote_parent(TraceContext::new(
            TraceId::new(11).unwrap(),
            SpanId::new(3).unwrap(),
        ));
        let ctx = dropped.trace_context().unwrap();
        assert!(!ctx.sampled);
        assert!(ctx.to_traceparent().ends_with("-00"));
    });
}

#[test]
fn an_unrecorded_span_gives_its_nearest_recorded_ancestors_context() {
    let (client, _mock) = mock_client();
    let d = dispatch(HoneycombLayer::new(client).max_level(Level::INFO));
    tracing::dispatcher::with_default(&d, || {
        let outer = info_span!("outer");
        let outer_ctx = outer.trace_context().unwrap();
        outer.in_scope(|| {
            let noisy = debug_span!("noisy");
            assert_eq!(noisy.trace_context(), Some(outer_ctx));
            // Not recorded by the layer: nothing to continue.
            assert!(!noisy.set_remote_parent(TraceContext::from_traceparent(INCOMING).unwrap()));
        });
    });
}

#[test]
fn without_the_layer_nothing_happens() {
    let ctx = TraceContext::from_traceparent(INCOMING).unwrap();
    // No subscriber at all: the span is disabled.
    let span = info_span!("no_subscriber");
    assert!(!span.set_remote_parent(ctx));
    assert!(span.trace_context().is_none());
    // A subscriber without the layer.
    tracing::subscriber::with_default(tracing_subscriber::registry(), || {
        let span = info_span!("no_layer");
        assert!(!span.set_remote_parent(ctx));
        assert!(span.trace_context().is_none());
    });
}

#[test]
fn it_works_through_layered_and_per_layer_filtered_stacks() {
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::layer::Identity;

    let (client, mock) = mock_client();
    let ctx = TraceContext::from_traceparent(INCOMING).unwrap();
    let run = || {
        let span = info_span!("continued");
        assert!(span.set_remote_parent(ctx));
        assert_eq!(span.trace_context().unwrap().trace_id, ctx.trace_id);
    };
    // The layer above another layer: its subscriber type is a `Layered`.
    let stacked = tracing_subscriber::registry()
        .with(Identity::new())
        .with(HoneycombLayer::new(client.clone()));
    tracing::subscriber::with_default(stacked, run);
    // The layer under a per-layer filter.
    let filtered = tracing_subscriber::registry()
        .with(HoneycombLayer::new(client.clone()).with_filter(LevelFilter::INFO))
        .with(Identity::new());
    tracing::subscriber::with_default(filtered, run);
    // Boxed.
    let boxed = tracing_subscriber::registry().with(Box::new(HoneycombLayer::new(client.clone())));
    tracing::subscriber::with_default(boxed, run);

    let events = mock.take_events();
    assert_eq!(events.len(), 3);
    for ev in &events {
        assert_eq!(s(ev, "trace.trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(s(ev, "trace.parent_id"), "00f067aa0ba902b7");
    }
}

#[test]
fn continuing_works_from_another_thread() {
    let (client, mock) = mock_client();
    let d = dispatch(HoneycombLayer::new(client));
    let span = tracing::dispatcher::with_default(&d, || info_span!("made_here"));
    std::thread::spawn(move || {
        // No default subscriber on this thread: the span carries its own.
        assert!(span.set_remote_parent(TraceContext::from_traceparent(INCOMING).unwrap()));
    })
    .join()
    .unwrap();
    let events = mock.take_events();
    assert_eq!(s(&events[0], "trace.parent_id"), "00f067aa0ba902b7");
}
