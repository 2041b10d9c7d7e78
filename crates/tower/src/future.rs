//! The response future: catches panics, records errors and cancellations.

use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Response, StatusCode};
use http_body::Body;
use pin_project_lite::pin_project;

use crate::body::ResponseBody;
use crate::fields;
use crate::handle::{panic_message, Finisher, Outcome};
use crate::layer::PanicPolicy;
use crate::trace::RequestSpan;

pin_project! {
    /// The future of [`Honeycomb`](crate::Honeycomb)'s `call`: the inner
    /// service's future, polled inside `catch_unwind`.
    ///
    /// - `Ok(response)`: the response is returned with its body wrapped in a
    ///   [`ResponseBody`], which sends the event when it ends.
    /// - `Err(e)`: the event is sent with `error` = `e.to_string()`, and the
    ///   error is returned unchanged.
    /// - A panic: the event is sent with `error` = `panic: <message>`, then
    ///   the panic becomes an empty `500` response (for a gRPC request, a
    ///   `200` with `grpc-status: 13`) or is resumed, as the layer's
    ///   [`PanicPolicy`] says.
    /// - Dropped before it completes (client disconnected, an outer timeout):
    ///   the event is sent from `Drop` with `error` = `request cancelled`.
    ///
    /// Its own work per poll is a `catch_unwind` (free unless a panic
    /// happens) and, with the `tracing` feature, entering the request's span
    /// (so the handler's spans are children of the request event); it never
    /// blocks.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: Option<F>,
        finisher: Option<Finisher>,
        head_request: bool,
        policy: PanicPolicy,
        // `call` itself panicked and the policy is to answer `500`.
        answer_500: bool,
        // A gRPC request: a panic is answered the gRPC way.
        grpc: bool,
        span: RequestSpan,
    }

    impl<F> PinnedDrop for ResponseFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(finisher) = this.project().finisher.take() {
                finisher.finish(Outcome::error(fields::CANCELLED));
            }
        }
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(
        inner: F,
        finisher: Finisher,
        head_request: bool,
        policy: PanicPolicy,
        grpc: bool,
        span: RequestSpan,
    ) -> Self {
        ResponseFuture {
            inner: Some(inner),
            finisher: Some(finisher),
            head_request,
            policy,
            answer_500: false,
            grpc,
            span,
        }
    }

    /// A future that answers `500` (or the gRPC equivalent) at once (its
    /// event is already sent).
    pub(crate) fn internal_error(policy: PanicPolicy, grpc: bool) -> Self {
        ResponseFuture {
            inner: None,
            finisher: None,
            head_request: false,
            policy,
            answer_500: true,
            grpc,
            span: crate::trace::no_span(),
        }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("done", &self.inner.is_none())
            .field("pending_event", &self.finisher.is_some())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// The `grpc-message` a panicking gRPC handler answers with. The panic's own
/// message stays in the event: it may hold what a client should not see.
pub(crate) const GRPC_PANIC_MESSAGE: &str = "internal error: the handler panicked";

/// The answer to a panic: an empty `500`, or for a gRPC request a
/// Trailers-Only `200` with `grpc-status: 13` (INTERNAL), which gRPC clients
/// read as a status rather than as `Unknown: grpc-status header missing`.
pub(crate) fn internal_error_response<B>(grpc: bool) -> Response<ResponseBody<B>> {
    let mut response = Response::new(ResponseBody::empty());
    if grpc {
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/grpc"),
        );
        headers.insert("grpc-status", http::HeaderValue::from_static("13"));
        headers.insert(
            "grpc-message",
            http::HeaderValue::from_static("internal%20error%3A%20the%20handler%20panicked"),
        );
    } else {
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    }
    response
}

/// What the event says about a panic answered as [`internal_error_response`].
pub(crate) fn panic_outcome(message: String, policy: PanicPolicy, grpc: bool) -> Outcome {
    let mut outcome = Outcome::error(message);
    if policy == PanicPolicy::Respond500 {
        outcome.response_bytes = Some(0);
        if grpc {
            outcome.status = Some(200);
            outcome.grpc_status = Some(13);
            outcome.grpc_message = Some(GRPC_PANIC_MESSAGE.to_owned());
        } else {
            outcome.status = Some(500);
        }
    }
    outcome
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
    E: fmt::Display,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if std::mem::take(this.answer_500) {
            return Poll::Ready(Ok(internal_error_response(*this.grpc)));
        }
        let Some(inner) = this.inner.as_mut().as_pin_mut() else {
            // Polled after completion: a contract violation by the caller.
            // Stay pending rather than panic.
            return Poll::Pending;
        };
        let polled = {
            let _entered = this.span.enter();
            catch_unwind(AssertUnwindSafe(|| inner.poll(cx)))
        };
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(result)) => {
                this.inner.set(None);
                let finisher = this.finisher.take();
                match result {
                    Ok(response) => {
                        let (parts, body) = response.into_parts();
                        let body = match finisher {
                            Some(f) => ResponseBody::new(body, f, *this.head_request, &parts),
                            None => ResponseBody::untracked(body),
                        };
                        Poll::Ready(Ok(Response::from_parts(parts, body)))
                    }
                    Err(error) => {
                        if let Some(f) = finisher {
                            f.finish(Outcome::error(error.to_string()));
                        }
                        Poll::Ready(Err(error))
                    }
                }
            }
            Err(payload) => {
                // The inner future is unusable now; drop it (its own `Drop`
                // may panic too: that is swallowed, the first panic counts).
                let _ = catch_unwind(AssertUnwindSafe(|| this.inner.set(None)));
                let outcome = panic_outcome(panic_message(&*payload), *this.policy, *this.grpc);
                if let Some(f) = this.finisher.take() {
                    f.finish(outcome);
                }
                match this.policy {
                    PanicPolicy::Respond500 => Poll::Ready(Ok(internal_error_response(*this.grpc))),
                    PanicPolicy::Resume => resume_unwind(payload),
                }
            }
        }
    }
}
