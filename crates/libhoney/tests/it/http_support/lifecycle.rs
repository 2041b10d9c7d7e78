//! Lifecycle tests that both HTTP transmissions must pass alike, run by
//! `http_lifecycle` and `tokio_lifecycle`.

use std::time::{Duration, Instant};

use libhoney::{CloseError, FlushError, Response, Responses, TryRecvError};
use libhoney_receiver::{Fault, RunningReceiver};

use super::{config, receiver, send_ids, Kind, PATIENCE};

/// After a flush of `n` events (`responses` a handle taken before them):
/// every response is already there, nothing needs waiting for; all are
/// successes and at the receiver, and the stream is still open. Returns them.
pub fn answered_and_still_open(
    responses: &Responses,
    rx: &RunningReceiver,
    n: usize,
) -> Vec<Response> {
    let got: Vec<_> = std::iter::from_fn(|| responses.try_recv().ok()).collect();
    assert_eq!(got.len(), n);
    assert!(got.iter().all(|r| r.is_success()));
    assert_eq!(rx.events().len(), n);
    assert_eq!(responses.try_recv().unwrap_err(), TryRecvError::Empty);
    assert!(!responses.is_closed());
    got
}

pub async fn flush_times_out_on_a_slow_receiver_and_delivery_goes_on(kind: Kind) {
    let rx = receiver();
    rx.push_fault(Fault::Delay(Duration::from_millis(1500)), 1);
    let client = kind.client(config(&rx));
    let responses = client.responses();
    send_ids(&client, 0..3);
    let t0 = Instant::now();
    match client.flush(Duration::from_millis(200)).await {
        Err(FlushError::Timeout { pending, .. }) => assert_eq!(pending, 3),
        other => panic!("{other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_millis(1400), "returned early");
    assert_eq!(responses.try_recv().unwrap_err(), TryRecvError::Empty);
    // Still delivered, and answered before the flush returned.
    client.flush(PATIENCE).await.unwrap();
    let got: Vec<_> = std::iter::from_fn(|| responses.try_recv().ok()).collect();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|r| r.is_success()), "{got:?}");
    let rest = client.close_and_collect().await;
    assert!(rest.is_empty());
    assert_eq!(rx.events().len(), 3);
}

pub async fn block_on_response_without_a_reader_does_not_hang_close(kind: Kind) {
    let rx = receiver();
    let client = kind.client(
        config(&rx)
            .block_on_response(true)
            .response_queue_capacity(2)
            .max_batch_size(1000),
    );
    send_ids(&client, 0..10);
    let t0 = Instant::now();
    // The answers wait for room in the response queue, so the batch is not
    // answered in time; the close gives up (and, for the client's close,
    // releases them).
    assert!(matches!(
        client.close_within(Duration::from_millis(300)).await,
        Err(CloseError::Timeout { .. })
    ));
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    let got = client.close_and_collect().await;
    assert_eq!(got.len(), 2);
    // The receiver has them all; the responses that found no room are counted.
    assert_eq!(rx.events().len(), 10);
    assert!(
        kind.wait_until(|| client.metrics().responses_dropped == 8)
            .await
    );
    assert_eq!(client.metrics().events_sent, 10);
}
