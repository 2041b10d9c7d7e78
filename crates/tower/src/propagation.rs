//! Passing the trace on to the services a handler calls (feature `tracing`):
//! the W3C `traceparent` header of the current span.
//!
//! Inside a request served through [`HoneycombLayer`](crate::HoneycombLayer)
//! (with libhoney-tracing's layer installed), the current span is the
//! request's (or one of the handler's spans within it), so a callee that
//! continues `traceparent`, such as another service with this layer, joins
//! the same trace, under the span that made the call.
//!
//! - any `http::Request` or `http::HeaderMap` (hyper, reqwest's
//!   `RequestBuilder::headers`, ...): [`inject`] or [`traceparent`];
//! - tower clients (tonic channels, `hyper_util`'s legacy client, tower-http
//!   stacks): wrap them in [`TraceparentLayer`].
//!
//! ```
//! use libhoney_tower::propagation;
//! let mut headers = http::HeaderMap::new();
//! // Outside any recorded span there is nothing to pass on:
//! assert!(!propagation::inject(&mut headers));
//! assert!(headers.get("traceparent").is_none());
//! ```

use std::task::{Context, Poll};

use http::{HeaderMap, HeaderValue, Request};
use libhoney_tracing::SpanExt;
use tower_layer::Layer;
use tower_service::Service;

pub use crate::trace::TRACEPARENT;

/// The `traceparent` value for the current `tracing` span: the trace id and
/// the id of the current span (or of its nearest ancestor that
/// libhoney-tracing records), with the sampled flag. `None` outside any
/// recorded span. Costs a lookup of the current span and a 55-byte string.
pub fn traceparent() -> Option<HeaderValue> {
    let ctx = tracing::Span::current().trace_context()?;
    HeaderValue::from_str(&ctx.to_traceparent()).ok()
}

/// Sets `traceparent` in `headers` to [`traceparent`]'s value, replacing any;
/// returns whether there was one to set (headers are left alone if not).
pub fn inject(headers: &mut HeaderMap) -> bool {
    match traceparent() {
        Some(value) => {
            headers.insert(TRACEPARENT, value);
            true
        }
        None => false,
    }
}

/// A tower [`Layer`] for HTTP clients that sets `traceparent` on every
/// outgoing request, from the `tracing` span current when the request is
/// made (see [`inject`]). Free to clone; per request, one header insert.
///
/// ```
/// use libhoney_tower::propagation::TraceparentLayer;
/// use tower::ServiceBuilder;
/// # let client = tower::service_fn(|_req: http::Request<()>| async { Ok::<_, std::convert::Infallible>(()) });
/// // For a tonic channel: `ServiceBuilder::new().layer(TraceparentLayer).service(channel)`
/// // then `MyClient::new(that)`.
/// let client = ServiceBuilder::new().layer(TraceparentLayer).service(client);
/// # drop(client);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceparentLayer;

impl<S> Layer<S> for TraceparentLayer {
    type Service = Traceparent<S>;
    fn layer(&self, inner: S) -> Traceparent<S> {
        Traceparent { inner }
    }
}

/// The service made by [`TraceparentLayer`]: the inner client, with
/// `traceparent` set on each request in `call`.
#[derive(Debug, Clone)]
pub struct Traceparent<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for Traceparent<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        inject(req.headers_mut());
        self.inner.call(req)
    }
}
