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

pin_project! {
    /// The future of [`Honeycomb`](crate::Honeycomb)'s `call`: the inner
    /// service's future, polled inside `catch_unwind`.
    ///
    /// - `Ok(response)`: the response is returned with its body wrapped in a
    ///   [`ResponseBody`], which sends the event when it ends.
    /// - `Err(e)`: the event is sent with `error` = `e.to_string()`, and the
    ///   error is returned unchanged.
    /// - A panic: the event is sent with `error` = `panic: <message>`, then
    ///   the panic becomes an empty `500` response or is resumed, as the
    ///   layer's [`PanicPolicy`] says.
    /// - Dropped before it completes (client disconnected, an outer timeout):
    ///   the event is sent from `Drop` with `error` = `request cancelled`.
    ///
    /// Its own work per poll is a `catch_unwind` (free unless a panic
    /// happens); it never blocks.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: Option<F>,
        finisher: Option<Finisher>,
        head_request: bool,
        policy: PanicPolicy,
        // `call` itself panicked and the policy is to answer `500`.
        answer_500: bool,
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
    ) -> Self {
        ResponseFuture {
            inner: Some(inner),
            finisher: Some(finisher),
            head_request,
            policy,
            answer_500: false,
        }
    }

    /// A future that answers `500` at once (its event is already sent).
    pub(crate) fn internal_error(policy: PanicPolicy) -> Self {
        ResponseFuture {
            inner: None,
            finisher: None,
            head_request: false,
            policy,
            answer_500: true,
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

pub(crate) fn internal_error_response<B>() -> Response<ResponseBody<B>> {
    let mut response = Response::new(ResponseBody::empty());
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
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
            return Poll::Ready(Ok(internal_error_response()));
        }
        let Some(inner) = this.inner.as_mut().as_pin_mut() else {
            // Polled after completion: a contract violation by the caller.
            // Stay pending rather than panic.
            return Poll::Pending;
        };
        let polled = catch_unwind(AssertUnwindSafe(|| inner.poll(cx)));
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
                let mut outcome = Outcome::error(panic_message(&*payload));
                if *this.policy == PanicPolicy::Respond500 {
                    outcome.status = Some(500);
                    outcome.response_bytes = Some(0);
                }
                if let Some(f) = this.finisher.take() {
                    f.finish(outcome);
                }
                match this.policy {
                    PanicPolicy::Respond500 => Poll::Ready(Ok(internal_error_response())),
                    PanicPolicy::Resume => resume_unwind(payload),
                }
            }
        }
    }
}
