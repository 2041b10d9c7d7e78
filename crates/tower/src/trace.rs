//! One trace per request (feature `tracing`): the request event as the root
//! span of the request's trace, and the span that makes the handler's spans
//! its children.

use http::HeaderMap;
use libhoney::Event;

/// The `tracing` span the handler runs in: an
/// [`external_span`](libhoney_tracing::external_span) standing for the request
/// event. Without the `tracing` feature, nothing.
#[cfg(feature = "tracing")]
pub(crate) type RequestSpan = tracing::Span;

/// The `tracing` span the handler runs in (none without the `tracing` feature).
#[cfg(not(feature = "tracing"))]
#[derive(Debug, Default)]
pub(crate) struct RequestSpan;

/// What entering a [`RequestSpan`] returns without the `tracing` feature.
#[cfg(not(feature = "tracing"))]
pub(crate) struct NotEntered;

#[cfg(not(feature = "tracing"))]
impl RequestSpan {
    pub(crate) fn enter(&self) -> NotEntered {
        NotEntered
    }
}

/// A span that records nothing, for futures that run no handler.
#[cfg(feature = "tracing")]
pub(crate) fn no_span() -> RequestSpan {
    tracing::Span::none()
}

/// A span that records nothing (none without the `tracing` feature).
#[cfg(not(feature = "tracing"))]
pub(crate) fn no_span() -> RequestSpan {
    RequestSpan
}

/// Where the request event sits in its trace, and whether the trace is kept.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestTrace {
    /// Keep (send) the request event? Decided by the trace id, as the
    /// tracing layer decides for spans, so a trace is kept or dropped whole.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) sampled: bool,
}

/// The W3C Trace Context header.
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
pub const TRACEPARENT: &str = "traceparent";

/// Gives the request event its trace fields (continuing an incoming
/// `traceparent`, else starting a trace) and returns the span for the
/// handler. Costs two random ids, three small strings, a look-up of the
/// current dispatcher and, where libhoney-tracing records it, a span.
#[cfg(feature = "tracing")]
pub(crate) fn start(event: &mut Event, headers: &HeaderMap) -> (RequestTrace, RequestSpan) {
    use libhoney_tracing::{SpanId, TraceContext, TraceId};

    let incoming = headers
        .get(TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(TraceContext::from_traceparent);
    let trace_id = incoming.map_or_else(TraceId::random, |c| c.trace_id);
    let span_id = SpanId::random();
    event.add_field("trace.trace_id", trace_id.to_string());
    event.add_field("trace.span_id", span_id.to_string());
    match incoming {
        Some(parent) => {
            event.add_field("trace.parent_id", parent.span_id.to_string());
            event.add_field("meta.span_type", "subroot");
        }
        None => {
            event.add_field("meta.span_type", "root");
        }
    }
    let sampled = trace_id.is_sampled(event.sample_rate());
    let mut ctx = TraceContext::new(trace_id, span_id);
    ctx.sampled = sampled;
    // Only where libhoney-tracing records it: elsewhere (no subscriber, or
    // only a `fmt` layer) the span would link nothing and show up in logs.
    let recorded = tracing::dispatcher::get_default(|d| {
        d.downcast_ref::<libhoney_tracing::HoneycombLayer>()
            .is_some()
    });
    let span = if recorded {
        libhoney_tracing::external_span(ctx)
    } else {
        tracing::Span::none()
    };
    (RequestTrace { sampled }, span)
}

/// Without the `tracing` feature: no trace fields, every event offered to the
/// SDK's own sampling.
#[cfg(not(feature = "tracing"))]
pub(crate) fn start(_event: &mut Event, _headers: &HeaderMap) -> (RequestTrace, RequestSpan) {
    (RequestTrace { sampled: true }, RequestSpan)
}
