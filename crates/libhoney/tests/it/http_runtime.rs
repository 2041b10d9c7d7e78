//! The default HTTP transmission inside tokio runtimes (current-thread and
//! multi-thread): creating, sending, `flush_async`/`close_async`, and
//! dropping the client, with no panic, deadlock or blocked executor.

use crate::http_support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_support::*;
use libhoney::{FlushError, TryRecvError};
use libhoney_receiver::Fault;

async fn send_flush_close(client: libhoney::Client, rx: &libhoney_receiver::RunningReceiver) {
    let responses = client.responses();
    let sent = send_ids(&client, 0..50);
    client.flush_async(PATIENCE).await.unwrap();
    assert_eq!(responses.len(), 50);
    assert!(rx.wait_for_events_async(50, PATIENCE).await);
    let got: Vec<_> = responses.try_iter().collect();
    assert_eq!(got.len(), 50);
    assert!(got.iter().all(|r| r.is_success()), "{got:?}");
    assert_eq!(responses.try_recv().unwrap_err(), TryRecvError::Empty);
    client.close_async(PATIENCE).await.unwrap();
    assert_eq!(responses.try_recv().unwrap_err(), TryRecvError::Ended);
    assert_eq!(client.metrics().events_sent, sent.len() as u64);
    assert_eq!(rx.events().len(), 50);
}

#[tokio::test(flavor = "current_thread")]
async fn current_thread_send_flush_close() {
    let rx = receiver();
    let client = client(config(&rx));
    send_flush_close(client, &rx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_thread_send_flush_close() {
    let rx = receiver();
    let client = client(config(&rx));
    send_flush_close(client, &rx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_thread_tasks_send_and_flush_concurrently() {
    let rx = receiver();
    let client = client(config(&rx).max_batch_size(7));
    let tasks: Vec<_> = (0..8u64)
        .map(|t| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                for round in 0..5u64 {
                    let base = t * 1000 + round * 10;
                    mine.extend(send_ids(&client, base..base + 10));
                    client.flush_async(PATIENCE).await.unwrap();
                    tokio::task::yield_now().await;
                }
                mine
            })
        })
        .collect();
    let mut sent = Vec::new();
    for t in tasks {
        sent.extend(t.await.unwrap());
    }
    let responses = client.responses();
    client.close_async(PATIENCE).await.unwrap();
    let got = collect_until_end(&responses);
    let tally = check_invariant(&sent, &got, &rx, &client.metrics());
    assert_eq!(tally.ok.len(), 400);
}

/// The wait happens off the executor: on a current-thread runtime, another
/// task keeps running while a flush waits for a slow receiver.
#[tokio::test(flavor = "current_thread")]
async fn flush_async_does_not_block_the_executor() {
    let rx = receiver();
    rx.push_fault(Fault::Delay(Duration::from_millis(600)), 1);
    let client = client(config(&rx));
    send_ids(&client, 0..3);
    let ticks = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let ticker = {
        let (ticks, done) = (Arc::clone(&ticks), Arc::clone(&done));
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                ticks.fetch_add(1, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        })
    };
    let r = client.flush_async(Duration::from_millis(200)).await;
    let ticks_at_timeout = ticks.load(Ordering::Relaxed);
    assert!(matches!(r, Err(FlushError::Timeout { .. })), "{r:?}");
    assert!(ticks_at_timeout > 0, "the other task ran during the flush");
    client.flush_async(PATIENCE).await.unwrap();
    done.store(true, Ordering::Relaxed);
    ticker.await.unwrap();
    let responses = client.responses();
    client.close_async(PATIENCE).await.unwrap();
    let got = collect_until_end(&responses);
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|r| r.is_success()));
}

#[tokio::test(flavor = "current_thread")]
async fn current_thread_create_and_drop_inside_the_runtime() {
    let rx = receiver();
    for round in 0..3u64 {
        let client = client(config(&rx));
        send_ids(&client, round * 10..round * 10 + 10);
        // Dropping the last handle closes, on this (executor) thread, boundedly.
        drop(client);
    }
    assert_eq!(rx.events().len(), 30, "drop delivered what was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_thread_drop_in_a_task_and_with_a_stalled_receiver() {
    let rx = receiver();
    let cfg = config(&rx);
    tokio::spawn(async move {
        let client = client(cfg);
        send_ids(&client, 0..10);
        drop(client);
    })
    .await
    .unwrap();
    assert_eq!(rx.events().len(), 10);

    // A receiver that answers too late: the drop gives up after the shutdown
    // timeout instead of hanging the runtime.
    rx.push_fault(Fault::Delay(Duration::from_secs(30)), 1);
    let cfg = config(&rx)
        .request_timeout(Duration::from_secs(60))
        .shutdown_timeout(Duration::from_millis(200));
    let t0 = Instant::now();
    tokio::spawn(async move {
        let client = client(cfg);
        send_ids(&client, 100..105);
        drop(client);
    })
    .await
    .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    rx.clear_faults();
}

#[tokio::test(flavor = "current_thread")]
async fn close_async_twice_and_send_after_close() {
    let rx = receiver();
    let client = client(config(&rx));
    send_ids(&client, 0..5);
    client.close_async(PATIENCE).await.unwrap();
    client.close_async(PATIENCE).await.unwrap();
    assert_eq!(client.flush_async(PATIENCE).await, Err(FlushError::Closed));
    let mut ev = client.new_event();
    ev.add_field("id", 9);
    assert_eq!(ev.send(), Err(libhoney::SendError::Closed));
    assert_eq!(rx.events().len(), 5);
}
