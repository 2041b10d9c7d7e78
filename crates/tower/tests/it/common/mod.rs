//! Helpers shared by the in-process tests.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use libhoney::transmission::{Mock, QueuedEvent};
use libhoney::{Client, Config};
use libhoney_receiver::RunningReceiver;

/// A client whose events land in the returned mock.
pub fn mock_client() -> (Client, Mock) {
    let mock = Mock::new();
    let client = Client::new(
        Config::new()
            .read_env(false)
            .api_key("test-key")
            .dataset("test-dataset")
            .transmission(mock.clone()),
    )
    .expect("client");
    (client, mock)
}

/// A client sending to the receiver `rx` with `api_key`, into `dataset`,
/// every 10 ms (so that tests wait little for events).
pub fn receiver_client(rx: &RunningReceiver, api_key: &str, dataset: &str) -> Client {
    Client::new(
        Config::new()
            .read_env(false)
            .api_key(api_key)
            .dataset(dataset)
            .api_host(rx.url())
            .send_frequency(Duration::from_millis(10)),
    )
    .expect("client")
}

/// The only event the mock holds (panics, with the events, if there is not
/// exactly one).
pub fn only_event(mock: &Mock) -> QueuedEvent {
    let events = mock.events();
    assert_eq!(events.len(), 1, "expected exactly one event: {events:?}");
    events.into_iter().next().unwrap()
}

pub fn str_field<'a>(ev: &'a QueuedEvent, name: &str) -> Option<&'a str> {
    ev.get(name).and_then(|v| v.as_str())
}

pub fn int_field(ev: &QueuedEvent, name: &str) -> Option<i64> {
    ev.get(name).and_then(|v| v.as_i64())
}

/// An error type with a `Display`.
#[derive(Debug)]
pub struct TestError(pub &'static str);

impl fmt::Display for TestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for TestError {}

/// One step of a [`Scripted`] body.
pub enum Step {
    Data(&'static [u8]),
    Trailers(HeaderMap),
    Fail(&'static str),
    Panic(&'static str),
}

/// A body that yields its steps in order, with no size hint and no
/// end-of-stream signal until it has returned `None`: a streaming body.
pub struct Scripted {
    steps: VecDeque<Step>,
}

impl Scripted {
    pub fn new(steps: impl IntoIterator<Item = Step>) -> Self {
        Scripted {
            steps: steps.into_iter().collect(),
        }
    }
}

impl Body for Scripted {
    type Data = Bytes;
    type Error = TestError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, TestError>>> {
        Poll::Ready(match self.steps.pop_front() {
            None => None,
            Some(Step::Data(d)) => Some(Ok(Frame::data(Bytes::from_static(d)))),
            Some(Step::Trailers(t)) => Some(Ok(Frame::trailers(t))),
            Some(Step::Fail(msg)) => Some(Err(TestError(msg))),
            Some(Step::Panic(msg)) => panic!("{msg}"),
        })
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
