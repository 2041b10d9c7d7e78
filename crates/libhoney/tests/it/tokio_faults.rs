//! Faults against the tokio transmission, on current-thread and multi-thread
//! runtimes: every fault the receiver can inject, queue overflow,
//! `block_on_send` and `block_on_response`. Each test checks the invariant:
//! every accepted event gets exactly one response, and the events the
//! receiver accepted are exactly those reported as sent; plus the metrics.
//! Most bodies are shared with the default transmission
//! (`http_support::faults`).
use crate::http_support;

use std::time::Duration;

use http_support::faults;
use http_support::*;
use libhoney::{ResponseError, TryRecvError};
use libhoney_receiver::Fault;

on_both_runtimes!(faults::transient_statuses_are_retried_until_success);
on_both_runtimes!(faults::persistent_server_errors_fail_after_max_attempts);

async fn retry_after_is_waited_for() {
    faults::retry_after_in_seconds_is_waited_for(Kind::Tokio).await;
    faults::retry_after_as_an_http_date_is_waited_for(Kind::Tokio).await;
}
on_both_runtimes!(retry_after_is_waited_for);

on_both_runtimes!(faults::retry_after_beyond_the_deadline_fails_at_once);

async fn dropped_connections_are_retried() {
    faults::dropped_connections_are_retried(Kind::Tokio).await;
    faults::dropped_connections_fail_as_transport_errors_after_max_attempts(Kind::Tokio).await;
}
on_both_runtimes!(dropped_connections_are_retried);

async fn requests_slower_than_the_timeout_are_retried_or_fail() {
    faults::requests_slower_than_the_timeout_are_retried(Kind::Tokio).await;
    faults::requests_slower_than_the_timeout_fail_without_retries(Kind::Tokio).await;
}
on_both_runtimes!(requests_slower_than_the_timeout_are_retried_or_fail);

async fn status_arrays_shape_the_responses() {
    faults::per_event_rejections_fail_only_their_event(Kind::Tokio).await;
    faults::a_short_status_array_leaves_the_rest_missing(Kind::Tokio).await;
    faults::a_long_status_array_is_ignored_past_the_events(Kind::Tokio).await;
    faults::a_malformed_status_body_fails_every_event(Kind::Tokio).await;
}
on_both_runtimes!(status_arrays_shape_the_responses);

async fn request_level_client_errors_are_not_retried() {
    faults::a_request_level_400_is_not_retried(Kind::Tokio).await;
    faults::a_wrong_api_key_fails_with_401_and_is_not_retried(Kind::Tokio).await;
}
on_both_runtimes!(request_level_client_errors_are_not_retried);

on_both_runtimes!(faults::an_outage_is_ridden_out_by_retries);
on_both_runtimes!(faults::mixed_faults_over_many_batches_keep_the_invariant);

/// On a current-thread runtime nothing else runs while this task sends, so
/// the queue's capacity decides exactly which events overflow.
#[tokio::test(flavor = "current_thread")]
async fn a_full_queue_overflows_without_blocking_the_executor() {
    for block_on_send in [false, true] {
        let rx = receiver();
        let cfg = one_batch(&rx)
            .pending_work_capacity(5)
            .block_on_send(block_on_send);
        let (client, t) = tokio_client(cfg);
        // With block_on_send, a thread inside the runtime still never waits
        // (it would stall the batcher that drains the queue).
        let sent = send_ids(&client, 0..20);
        assert_eq!(client.metrics().queue_length, 5);
        let responses = close_and_collect_async(&client, &t).await;
        let tally = check_invariant(&sent, &responses, &rx, &client.metrics());
        assert_eq!(tally.ok, (0..5).collect(), "block_on_send={block_on_send}");
        assert_eq!(tally.overflowed(), 15);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overflow_on_a_multi_thread_runtime_still_answers_every_event() {
    let rx = receiver();
    let cfg = config(&rx)
        .pending_work_capacity(3)
        .max_batch_size(2)
        .max_concurrent_batches(1);
    rx.push_fault(Fault::Delay(Duration::from_millis(50)), 3);
    let (tally, m) = run(Kind::Tokio, &rx, cfg, 200).await;
    assert_eq!(tally.ok.len() + tally.overflowed(), 200, "{m:?}");
    assert!(tally.overflowed() > 0, "{m:?}");
}

/// Plain threads that send with `block_on_send` into a transmission hosted
/// by a runtime wait for room: nothing is lost, through transient faults.
async fn block_on_send_from_plain_threads_loses_nothing() {
    let rx = receiver();
    let pass = Fault::Delay(Duration::ZERO);
    for _ in 0..6 {
        rx.push_fault(status(503, "busy", None), 1);
        rx.push_fault(Fault::DropConnection, 1);
        rx.push_fault(pass.clone(), 2);
    }
    let cfg = config(&rx)
        .pending_work_capacity(4)
        .max_batch_size(5)
        .max_concurrent_batches(2)
        .send_frequency(Duration::from_millis(5))
        .block_on_send(true)
        .max_attempts(10);
    let (client, t) = tokio_client(cfg);
    let threads = on_threads(&client, 4, |client, k| {
        send_ids(client, k * 1000..k * 1000 + 100)
    });
    // The senders are plain threads; this task must not block while they
    // run (on a current-thread runtime it drives the transmission).
    while !threads.iter().all(|th| th.is_finished()) {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let sent = join_ids(threads);
    let responses = close_and_collect_async(&client, &t).await;
    let m = client.metrics();
    let tally = check_invariant(&sent, &responses, &rx, &m);
    assert_eq!(tally.ok.len(), 400, "{m:?}");
    assert_eq!(m.events_overflowed, 0, "{m:?}");
    assert!(m.retries > 0, "{m:?}");
}
on_both_runtimes!(block_on_send_from_plain_threads_loses_nothing);

/// With `block_on_response` and a tiny response queue read by a task on the
/// same runtime, responses wait on the blocking pool, never on an executor
/// thread: nothing is dropped and nothing deadlocks.
async fn block_on_response_with_an_async_reader_drops_nothing() {
    let rx = receiver();
    let cfg = config(&rx)
        .response_queue_capacity(2)
        .block_on_response(true)
        .max_batch_size(5)
        .send_frequency(Duration::from_millis(5));
    let (client, t) = tokio_client(cfg);
    let responses = client.responses();
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        loop {
            match responses.try_recv() {
                Ok(r) => got.push(r),
                Err(TryRecvError::Empty) => tokio::time::sleep(Duration::from_millis(1)).await,
                Err(TryRecvError::Ended) => return got,
            }
        }
    });
    let sent = send_ids(&client, 0..100);
    // A too-large event: its response comes from the batcher.
    let mut ev = client.new_event();
    ev.add_field("id", 100u64)
        .add_field("blob", "x".repeat(1_100_000));
    ev.add_metadata(100u64);
    ev.send().unwrap();
    let sent: Vec<u64> = sent.into_iter().chain([100]).collect();
    t.flush(PATIENCE).await.unwrap();
    t.close(PATIENCE).await.unwrap();
    client.close_async(PATIENCE).await.unwrap();
    let got = reader.await.unwrap();
    let m = client.metrics();
    let tally = check_invariant(&sent, &got, &rx, &m);
    assert_eq!(tally.ok.len(), 100);
    assert!(matches!(
        tally.failed[&100].error,
        Some(ResponseError::TooLarge { .. })
    ));
}
on_both_runtimes!(block_on_response_with_an_async_reader_drops_nothing);
