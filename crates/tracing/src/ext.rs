//! Reading and setting trace ids through a [`tracing::Span`].

use crate::ids::TraceContext;
use crate::layer::HoneycombLayer;

/// Trace-context access for [`tracing::Span`]: continue a trace that started
/// in another process, or pass this one on.
///
/// Both methods find the [`HoneycombLayer`] through the span's own
/// dispatcher, so they work on any thread or task. They lock the span's
/// extensions briefly and never block otherwise.
///
/// ```
/// # use libhoney::{Client, Config, transmission::Mock};
/// # let mock = Mock::new();
/// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(mock.clone())).unwrap();
/// use libhoney_tracing::{HoneycombLayer, SpanExt, TraceContext};
/// use tracing_subscriber::prelude::*;
///
/// let subscriber = tracing_subscriber::registry().with(HoneycombLayer::new(client.clone()));
/// tracing::subscriber::with_default(subscriber, || {
///     // An incoming request carried `traceparent`.
///     let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
///     let span = tracing::info_span!("handle_request");
///     if let Some(parent) = TraceContext::from_traceparent(incoming) {
///         span.set_remote_parent(parent); // right after creating the span
///     }
///     let _entered = span.enter();
///     // An outgoing call passes the trace on.
///     let outgoing = tracing::Span::current().trace_context().unwrap().to_traceparent();
///     assert!(outgoing.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
/// });
/// let sent = &mock.events()[0];
/// assert_eq!(sent.get("trace.parent_id").unwrap().as_str(), Some("00f067aa0ba902b7"));
/// assert_eq!(sent.get("meta.span_type").unwrap().as_str(), Some("subroot"));
/// ```
pub trait SpanExt {
    /// Makes this span a child of a span in another process: it takes
    /// `parent`'s trace id, its `trace.parent_id` becomes `parent.span_id`, and
    /// its `meta.span_type` is `subroot`. The sampling decision is made again
    /// on the new trace id (the incoming `sampled` flag is not used).
    ///
    /// Call it right after creating the span, before entering it: children
    /// and span events created earlier keep the old trace id.
    ///
    /// Returns `false`, changing nothing, if the span is disabled, is not
    /// recorded by a [`HoneycombLayer`] (for example, filtered out by its
    /// [`max_level`](HoneycombLayer::max_level)), or its subscriber has none.
    fn set_remote_parent(&self, parent: TraceContext) -> bool;

    /// The trace context to pass on to a callee: the trace id and *this*
    /// span's id (or, for a span the layer does not record, those of its
    /// nearest recorded ancestor), with `sampled` saying whether the layer
    /// keeps this trace. `None` if no [`HoneycombLayer`] records this span or
    /// any ancestor.
    fn trace_context(&self) -> Option<TraceContext>;
}

impl SpanExt for tracing::Span {
    fn set_remote_parent(&self, parent: TraceContext) -> bool {
        self.with_subscriber(|(id, dispatch)| {
            let Some(layer) = dispatch.downcast_ref::<HoneycombLayer>() else {
                return false;
            };
            let Some(with_state) = layer.with_state else {
                return false;
            };
            let rate = layer.sample_rate;
            let mut done = false;
            with_state(dispatch, id, false, &mut |state| {
                state.trace_id = parent.trace_id;
                state.parent_id = Some(parent.span_id);
                state.remote_parent = true;
                state.sampled = parent.trace_id.is_sampled(rate);
                done = true;
            });
            done
        })
        .unwrap_or(false)
    }

    fn trace_context(&self) -> Option<TraceContext> {
        self.with_subscriber(|(id, dispatch)| {
            let with_state = dispatch.downcast_ref::<HoneycombLayer>()?.with_state?;
            let mut found = None;
            with_state(dispatch, id, true, &mut |state| {
                found = Some(TraceContext {
                    trace_id: state.trace_id,
                    span_id: state.span_id,
                    sampled: state.sampled,
                });
            });
            found
        })
        .flatten()
    }
}
