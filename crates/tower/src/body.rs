//! The response body wrapper: counts bytes and sends the event at the end.

use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Buf;
use http::{HeaderMap, StatusCode};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::fields;
use crate::handle::{panic_message, Finisher, Outcome};

pin_project! {
    /// The body of a response that went through the layer: the inner body,
    /// passed through frame by frame, unchanged.
    ///
    /// While it is read it counts the bytes of its data frames (an addition
    /// per frame) and watches trailers for `grpc-status`. When it ends, fails,
    /// or is dropped, it sends the request's event (once, non-blocking). Its
    /// size hint and end-of-stream are the inner body's, so servers and
    /// frameworks still set `Content-Length` from them.
    ///
    /// A panic while polling the inner body is recorded in the event and then
    /// resumed (the response has started; it cannot become a 500 any more).
    pub struct ResponseBody<B> {
        #[pin]
        inner: Option<B>,
        state: Option<BodyState>,
    }

    impl<B> PinnedDrop for ResponseBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            let Some(state) = this.state.take() else { return };
            if state.complete_when_dropped() {
                state.finish(None);
            } else {
                state.finish(Some(fields::BODY_DROPPED.to_owned()));
            }
        }
    }
}

/// What the body needs to finish the event.
struct BodyState {
    finisher: Finisher,
    status: StatusCode,
    /// `HEAD`, or a status that has no body: servers drop the body unread.
    bodiless: bool,
    content_length: Option<u64>,
    bytes: u64,
    grpc_status: Option<i64>,
    grpc_message: Option<String>,
}

impl BodyState {
    fn finish(self, error: Option<String>) {
        let outcome = Outcome {
            status: Some(self.status.as_u16()),
            response_bytes: Some(self.bytes),
            grpc_status: self.grpc_status,
            grpc_message: self.grpc_message,
            error,
        };
        self.finisher.finish(outcome);
    }

    /// Is a body dropped in this state complete? Servers stop reading once
    /// `Content-Length` bytes were sent, and never read the body of a `HEAD`,
    /// `1xx`, `204` or `304` response. (Bodies that report their end through
    /// `is_end_stream` are finished when they do, before any drop.)
    fn complete_when_dropped(&self) -> bool {
        self.bodiless || self.content_length.is_some_and(|len| self.bytes >= len)
    }
}

fn grpc_status(headers: &HeaderMap) -> Option<i64> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse().ok())
}

/// The most `grpc-message` bytes kept (the message a server chose to send;
/// longer ones are cut, on a character boundary).
const GRPC_MESSAGE_MAX: usize = 1024;

/// The `grpc-message` header or trailer, percent-decoded as the gRPC spec
/// says (invalid escapes are kept as they are), at most 1 KiB.
pub(crate) fn grpc_message(headers: &HeaderMap) -> Option<String> {
    let raw = headers.get("grpc-message")?.as_bytes();
    let mut out = Vec::with_capacity(raw.len().min(GRPC_MESSAGE_MAX));
    let mut i = 0;
    while i < raw.len() && out.len() < GRPC_MESSAGE_MAX {
        let hex = |b: u8| (b as char).to_digit(16);
        match raw[i] {
            b'%' if i + 2 < raw.len() => match (hex(raw[i + 1]), hex(raw[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    let mut text = String::from_utf8_lossy(&out).into_owned();
    if text.len() > GRPC_MESSAGE_MAX {
        let mut cut = GRPC_MESSAGE_MAX;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    Some(text)
}

impl<B: Body> ResponseBody<B> {
    /// Wraps `inner`; the event is finished by the body (at once if it is
    /// already at its end, like an empty body that servers never poll).
    pub(crate) fn new(
        inner: B,
        finisher: Finisher,
        head_request: bool,
        parts: &http::response::Parts,
    ) -> Self {
        let status = parts.status;
        let bodiless = head_request
            || status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED;
        let content_length = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse().ok());
        let state = BodyState {
            finisher,
            status,
            bodiless,
            content_length,
            bytes: 0,
            grpc_status: grpc_status(&parts.headers),
            grpc_message: grpc_message(&parts.headers),
        };
        if inner.is_end_stream() {
            state.finish(None);
            return ResponseBody::untracked(inner);
        }
        ResponseBody {
            inner: Some(inner),
            state: Some(state),
        }
    }
}

impl<B> ResponseBody<B> {
    /// Wraps `inner` for a response whose event is already sent (or that has
    /// none).
    pub(crate) fn untracked(inner: B) -> Self {
        ResponseBody {
            inner: Some(inner),
            state: None,
        }
    }

    /// An empty body, for the `500` that replaces a panic.
    pub(crate) fn empty() -> Self {
        ResponseBody {
            inner: None,
            state: None,
        }
    }
}

impl<B: fmt::Debug> fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("inner", &self.inner)
            .field("pending_event", &self.state.is_some())
            .finish()
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body,
    B::Error: fmt::Display,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let mut inner = this.inner;
        let Some(body) = inner.as_mut().as_pin_mut() else {
            if let Some(state) = this.state.take() {
                state.finish(None);
            }
            return Poll::Ready(None);
        };
        let Some(state) = this.state.as_mut() else {
            return body.poll_frame(cx);
        };
        let polled = match catch_unwind(AssertUnwindSafe(|| body.poll_frame(cx))) {
            Ok(polled) => polled,
            Err(payload) => {
                if let Some(state) = this.state.take() {
                    state.finish(Some(panic_message(&*payload)));
                }
                resume_unwind(payload)
            }
        };
        match &polled {
            Poll::Pending => {}
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    state.bytes += data.remaining() as u64;
                } else if let Some(trailers) = frame.trailers_ref() {
                    if let Some(code) = grpc_status(trailers) {
                        state.grpc_status = Some(code);
                    }
                    if let Some(message) = grpc_message(trailers) {
                        state.grpc_message = Some(message);
                    }
                }
                let ended = inner
                    .as_ref()
                    .as_pin_ref()
                    .is_none_or(|b| b.get_ref().is_end_stream());
                if ended {
                    if let Some(state) = this.state.take() {
                        state.finish(None);
                    }
                }
            }
            Poll::Ready(Some(Err(e))) => {
                let error = format!("response body error: {e}");
                if let Some(state) = this.state.take() {
                    state.finish(Some(error));
                }
            }
            Poll::Ready(None) => {
                if let Some(state) = this.state.take() {
                    state.finish(None);
                }
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Some(body) => body.size_hint(),
            None => SizeHint::with_exact(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(raw: &str) -> Option<String> {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-message", raw.parse().unwrap());
        grpc_message(&headers)
    }

    #[test]
    fn grpc_message_is_percent_decoded_and_bounded() {
        assert_eq!(grpc_message(&HeaderMap::new()), None);
        assert_eq!(message("no%20user%20%22bob%22").unwrap(), "no user \"bob\"");
        assert_eq!(message("caf%C3%A9").unwrap(), "café");
        // Invalid or cut escapes are kept as they are.
        assert_eq!(message("100%zz").unwrap(), "100%zz");
        assert_eq!(message("50%").unwrap(), "50%");
        assert_eq!(message("a%4").unwrap(), "a%4");
        // Invalid UTF-8 after decoding becomes U+FFFD, never a panic.
        assert_eq!(message("%FF").unwrap(), "\u{FFFD}");
        let long = "x".repeat(5000);
        assert_eq!(message(&long).unwrap().len(), GRPC_MESSAGE_MAX);
        // A cut in the middle of a character stays on a boundary.
        let wide = "%C3%A9".repeat(600);
        let decoded = message(&wide).unwrap();
        assert!(decoded.len() <= GRPC_MESSAGE_MAX && decoded.chars().all(|c| c == 'é'));
    }
}
