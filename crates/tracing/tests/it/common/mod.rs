//! Helpers shared by the integration tests.

pub mod recorder;

use libhoney::transmission::{Mock, QueuedEvent};
use libhoney::{Client, Config, Value};
use libhoney_tracing::HoneycombLayer;
use tracing::Dispatch;
use tracing_subscriber::prelude::*;

/// A client whose events a `Mock` records (synchronously, on send).
pub fn mock_client() -> (Client, Mock) {
    mock_client_with(Config::new())
}

pub fn mock_client_with(config: Config) -> (Client, Mock) {
    let mock = Mock::new();
    let client = Client::new(
        config
            .read_env(false)
            .api_key("test-key")
            .dataset("test-ds")
            .transmission(mock.clone()),
    )
    .expect("client");
    (client, mock)
}

/// A dispatcher with only the layer on a registry.
pub fn dispatch(layer: HoneycombLayer) -> Dispatch {
    Dispatch::new(tracing_subscriber::registry().with(layer))
}

/// Runs `f` with the layer installed on this thread; returns what was sent.
pub fn capture(layer: impl FnOnce(Client) -> HoneycombLayer, f: impl FnOnce()) -> Vec<QueuedEvent> {
    let (client, mock) = mock_client();
    let d = dispatch(layer(client.clone()));
    tracing::dispatcher::with_default(&d, f);
    client.flush().unwrap();
    mock.take_events()
}

pub fn s<'a>(ev: &'a QueuedEvent, name: &str) -> &'a str {
    ev.get(name)
        .unwrap_or_else(|| panic!("no field {name:?} in {ev:?}"))
        .as_str()
        .unwrap_or_else(|| panic!("field {name:?} is not a string in {ev:?}"))
}

pub fn f(ev: &QueuedEvent, name: &str) -> f64 {
    match ev.get(name) {
        Some(Value::Float(x)) => *x,
        other => panic!("field {name:?} is not a float: {other:?} in {ev:?}"),
    }
}

/// Span events (not log events) among the sent events.
pub fn spans(events: &[QueuedEvent]) -> Vec<&QueuedEvent> {
    events
        .iter()
        .filter(|e| e.get("trace.span_id").is_some())
        .collect()
}

/// Span events (log events in a span) among the sent events.
pub fn span_events(events: &[QueuedEvent]) -> Vec<&QueuedEvent> {
    events
        .iter()
        .filter(|e| e.get("meta.annotation_type").and_then(Value::as_str) == Some("span_event"))
        .collect()
}

/// The one event named `name`.
pub fn one<'a>(events: &'a [QueuedEvent], name: &str) -> &'a QueuedEvent {
    let found: Vec<_> = events
        .iter()
        .filter(|e| e.get("name").and_then(Value::as_str) == Some(name))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one event named {name:?}, got {found:?}"
    );
    found[0]
}

/// Every event named `name`.
pub fn all<'a>(events: &'a [QueuedEvent], name: &str) -> Vec<&'a QueuedEvent> {
    events
        .iter()
        .filter(|e| e.get("name").and_then(Value::as_str) == Some(name))
        .collect()
}

pub fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
