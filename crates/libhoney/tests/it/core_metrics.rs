//! Self-metrics after known scenarios.

use crate::common;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::{base, mock_client};
use libhoney::transmission::{Context, Mock, QueuedEvent, Responder, Transmission};
use libhoney::{
    Client, CloseError, ConfigError, FlushError, MetricsSnapshot, Response, ResponseError, Value,
};

fn send(client: &Client, n: u64, field: (&'static str, u64)) {
    for i in 0..n {
        let mut ev = client.new_event();
        ev.add_field("i", i).add_field(field.0, field.1);
        ev.send().unwrap();
    }
}

#[test]
fn a_new_client_counts_nothing() {
    let (client, _mock) = mock_client(base());
    assert_eq!(client.metrics(), MetricsSnapshot::default());
    // Refused events are not counted anywhere.
    assert!(client.new_event().send().is_err());
    let mut ev = client.new_event();
    ev.add_field("x", 1).set_sample_rate(0);
    assert!(ev.send().is_err());
    assert_eq!(client.metrics(), MetricsSnapshot::default());
}

#[test]
fn every_outcome_has_its_counter() {
    let mock = Mock::new().respond_with(|ev| {
        match ev.get("outcome").and_then(Value::as_u64).unwrap() {
            0 => Response::success(None, Some(202), Duration::ZERO),
            1 => Response::failure(None, ResponseError::Rejected("bad".into())).with_status(400),
            2 => Response::success(None, Some(500), Duration::ZERO), // no error, but not 2xx
            3 => Response::failure(None, ResponseError::QueueOverflow),
            _ => Response::failure(None, ResponseError::Transport("down".into())),
        }
    });
    let client = Client::new(base().transmission(mock.clone()).response_queue_capacity(3)).unwrap();
    send(&client, 5, ("outcome", 0));
    send(&client, 4, ("outcome", 1));
    send(&client, 3, ("outcome", 2));
    send(&client, 2, ("outcome", 3));
    send(&client, 1, ("outcome", 4));
    let m = client.metrics();
    assert_eq!(m.events_queued, 15);
    assert_eq!(m.events_sent, 5);
    assert_eq!(m.events_failed, 4 + 3 + 1);
    assert_eq!(m.events_overflowed, 2);
    assert_eq!(m.events_sampled, 0);
    assert_eq!(m.responses_dropped, 12, "15 responses, room for 3");
    assert_eq!(m.queue_length, 0, "the mock keeps no queue");
    assert_eq!((m.retries, m.batches_sent), (0, 0));
    // Every accepted event ends in exactly one outcome counter.
    assert_eq!(
        m.events_sent + m.events_failed + m.events_overflowed,
        m.events_queued
    );
}

#[test]
fn sampled_events_are_counted_but_not_queued() {
    let (client, mock) = mock_client(base().sample_rate(4).response_queue_capacity(1));
    for i in 0..4_000u64 {
        let mut ev = client.new_event();
        ev.add_field("i", i);
        ev.send().unwrap();
    }
    let kept = mock.len() as u64;
    let m = client.metrics();
    assert_eq!(m.events_queued, kept);
    assert_eq!(m.events_sent, kept);
    assert_eq!(m.events_sampled, 4_000 - kept);
    assert_eq!(
        m.responses_dropped,
        4_000 - 1,
        "sampling responses count too"
    );
    assert!((800..=1_200).contains(&kept), "kept {kept}"); // mean 1_000, sd 27
}

/// Holds events until flushed, reporting through the responder's metrics.
#[derive(Default)]
struct Slow {
    responder: OnceLock<Responder>,
    held: Mutex<Vec<QueuedEvent>>,
    outstanding_seen: Mutex<Vec<usize>>,
}

impl Transmission for Slow {
    fn start(&self, ctx: Context) -> Result<(), ConfigError> {
        let _ = self.responder.set(ctx.responder().clone());
        Ok(())
    }
    fn send(&self, event: QueuedEvent) {
        self.held.lock().unwrap().push(event);
    }
    fn flush(&self, _timeout: Duration) -> Result<(), FlushError> {
        let r = self.responder.get().unwrap();
        self.outstanding_seen
            .lock()
            .unwrap()
            .push(r.metrics().outstanding());
        r.metrics().record_batch();
        r.metrics().record_retry();
        r.metrics().record_batch();
        for mut ev in std::mem::take(&mut *self.held.lock().unwrap()) {
            r.respond(Response::success(
                ev.take_metadata(),
                Some(202),
                Duration::ZERO,
            ));
        }
        self.outstanding_seen
            .lock()
            .unwrap()
            .push(r.metrics().outstanding());
        Ok(())
    }
    fn close(&self, timeout: Duration) -> Result<(), CloseError> {
        let _ = self.flush(timeout);
        Ok(())
    }
    fn queue_len(&self) -> usize {
        self.held.lock().unwrap().len()
    }
}

#[test]
fn queue_length_outstanding_retries_and_batches() {
    let slow = Arc::new(Slow::default());
    let client = Client::new(base().transmission_arc(slow.clone())).unwrap();
    send(&client, 7, ("k", 0));
    let m = client.metrics();
    assert_eq!(m.queue_length, 7);
    assert_eq!(m.events_queued, 7);
    assert_eq!(m.events_sent, 0);
    client.flush().unwrap();
    assert_eq!(*slow.outstanding_seen.lock().unwrap(), [7, 0]);
    let m = client.metrics();
    assert_eq!(m.queue_length, 0);
    assert_eq!(m.events_sent, 7);
    assert_eq!((m.batches_sent, m.retries), (2, 1));
    client.close().unwrap();
    // Metrics stay readable after close.
    assert_eq!(client.metrics().batches_sent, 4);
}
