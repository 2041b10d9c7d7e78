//! Lifecycle of the tokio transmission over real HTTP, on current-thread and
//! multi-thread runtimes: starting (with and without a runtime), the async
//! `flush` (stream kept open) and `close` (drains; the client's close then
//! ends the stream), bounded closes, the blocking trait methods on a runtime
//! thread (they time out, never hang), sends from plain threads into a
//! runtime, sends racing a close, dropping the client, and a runtime that
//! shuts down with events in flight.
use crate::http_support;

use std::time::{Duration, Instant};

use http_support::lifecycle;
use http_support::*;
use libhoney::transmission::{Tokio, Transmission};
use libhoney::{
    Client, CloseError, Config, ConfigError, FlushError, Response, ResponseError, SendError,
};
use libhoney_receiver::Fault;

#[test]
fn without_a_runtime_the_client_reports_a_config_error() {
    let rx = receiver();
    match Client::new(config(&rx).transmission(Tokio::new())) {
        Err(e @ ConfigError::NoTokioRuntime) => {
            assert!(e.to_string().contains("no tokio runtime"), "{e}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_runtime_without_its_drivers_is_a_config_error() {
    let rx = receiver();
    let bare = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let got = bare.block_on(async { Client::new(config(&rx).transmission(Tokio::new())) });
    match got {
        Err(ConfigError::TokioDriverMissing { driver: "time" }) => {}
        other => panic!("{other:?}"),
    }
    let no_io = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let t = Tokio::with_handle(no_io.handle().clone());
    match Client::new(config(&rx).transmission(t)) {
        Err(ConfigError::TokioDriverMissing { driver: "I/O" }) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn one_transmission_serves_one_client() {
    let rx = receiver();
    let t = Tokio::new();
    let first = client(config(&rx).transmission(t.clone()));
    assert!(matches!(
        Client::new(config(&rx).transmission(t.clone())),
        Err(ConfigError::TransmissionInUse {
            transmission: "Tokio"
        })
    ));
    t.close(PATIENCE).await.unwrap();
    first.close_async(PATIENCE).await.unwrap();
}

async fn flush_waits_for_every_earlier_event_and_keeps_the_stream_open() {
    let rx = receiver();
    let (client, t) = tokio_client(one_batch(&rx));
    let responses = client.responses();
    // Nothing in flight: returns at once.
    t.flush(PATIENCE).await.unwrap();
    send_ids(&client, 0..50);
    t.flush(PATIENCE).await.unwrap();
    let mut all = lifecycle::answered_and_still_open(&responses, &rx, 50);
    // Sending goes on.
    for id in 50..60 {
        send_id(&client, id);
        t.flush(PATIENCE).await.unwrap();
        let r = responses
            .try_recv()
            .expect("answered before flush returned");
        assert_eq!(meta_id(&r), id);
        assert!(r.is_success(), "{r:?}");
        all.push(r);
    }
    // The blocking flush, with nothing in flight, returns at once even on
    // the thread that drives the runtime.
    Transmission::flush(&t, PATIENCE).unwrap();
    t.close(PATIENCE).await.unwrap();
    client.close_async(PATIENCE).await.unwrap();
    all.extend(drain_ended(&responses));
    let sent: Vec<u64> = (0..60).collect();
    check_invariant(&sent, &all, &rx, &client.metrics());
}
on_both_runtimes!(flush_waits_for_every_earlier_event_and_keeps_the_stream_open);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_flushes_each_cover_their_own_events() {
    let rx = receiver();
    let (client, t) = tokio_client(one_batch(&rx));
    let tasks: Vec<_> = (0..4u64)
        .map(|k| {
            let (client, t) = (client.clone(), t.clone());
            tokio::spawn(async move {
                let mut mine = Vec::new();
                for round in 0..5u64 {
                    let base = k * 1000 + round * 10;
                    mine.extend(send_ids(&client, base..base + 10));
                    t.flush(PATIENCE).await.unwrap();
                    let m = client.metrics();
                    assert!(m.events_sent >= mine.len() as u64, "{m:?}");
                }
                mine
            })
        })
        .collect();
    let mut sent = Vec::new();
    for task in tasks {
        sent.extend(task.await.unwrap());
    }
    let responses = client.responses();
    t.close(PATIENCE).await.unwrap();
    client.close_async(PATIENCE).await.unwrap();
    let got = drain_ended(&responses);
    let tally = check_invariant(&sent, &got, &rx, &client.metrics());
    assert_eq!(tally.ok.len(), 200);
}

on_both_runtimes!(lifecycle::flush_times_out_on_a_slow_receiver_and_delivery_goes_on);

async fn close_drains_and_the_client_close_ends_the_stream() {
    let rx = receiver();
    let (client, t) = tokio_client(one_batch(&rx));
    let responses = client.responses();
    let sent = send_ids(&client, 0..30);
    t.close(PATIENCE).await.unwrap();
    // Everything was delivered and answered; the stream is still open.
    assert_eq!(rx.events().len(), 30);
    assert_eq!(responses.len(), 30);
    assert!(!responses.is_closed());
    // Later events are answered at once; flushing is refused.
    send_id(&client, 30);
    assert_eq!(t.flush(PATIENCE).await, Err(FlushError::Closed));
    assert_eq!(t.close(Duration::ZERO).await, Ok(()));
    assert_eq!(Transmission::close(&t, Duration::ZERO), Ok(()));
    client.close_async(PATIENCE).await.unwrap();
    let got = drain_ended(&responses);
    assert_eq!(got.len(), 31);
    let late = got.iter().find(|r| meta_id(r) == 30).unwrap();
    assert!(
        matches!(&late.error, Some(ResponseError::Transport(m)) if m.contains("closed")),
        "{late:?}"
    );
    let got: Vec<Response> = got.into_iter().filter(|r| meta_id(r) != 30).collect();
    let mut m = client.metrics();
    m.events_failed -= 1;
    m.events_queued -= 1;
    let tally = check_invariant(&sent, &got, &rx, &m);
    assert_eq!(tally.ok.len(), 30);
    let mut ev = client.new_event();
    ev.add_field("id", 99);
    assert_eq!(ev.send(), Err(SendError::Closed));
}
on_both_runtimes!(close_drains_and_the_client_close_ends_the_stream);

/// `Client::flush_async`/`close_async` wait on a helper thread: they work
/// with the tokio transmission on a current-thread runtime too.
async fn the_clients_async_methods_drive_the_transmission() {
    let rx = receiver();
    let (client, _t) = tokio_client(one_batch(&rx));
    let responses = client.responses();
    let sent = send_ids(&client, 0..25);
    client.flush_async(PATIENCE).await.unwrap();
    assert_eq!(responses.len(), 25);
    client.close_async(PATIENCE).await.unwrap();
    let got = drain_ended(&responses);
    let tally = check_invariant(&sent, &got, &rx, &client.metrics());
    assert_eq!(tally.ok.len(), 25);
}
on_both_runtimes!(the_clients_async_methods_drive_the_transmission);

async fn close_gives_up_within_its_timeout() {
    // Retries that would go on for a minute.
    let rx = receiver();
    rx.push_fault(
        Fault::Status {
            status: 503,
            body: "busy".into(),
            retry_after: None,
        },
        1000,
    );
    let (client, t) = tokio_client(
        config(&rx)
            .max_attempts(100)
            .retry_deadline(Duration::from_secs(60))
            .retry_backoff(Duration::from_secs(5), Duration::from_secs(5)),
    );
    let responses = client.responses();
    let sent = send_ids(&client, 0..5);
    let t0 = Instant::now();
    match t.close(Duration::from_millis(300)).await {
        Err(CloseError::Timeout { pending, .. }) => assert_eq!(pending, 5),
        other => panic!("{other:?}"),
    }
    assert!(t0.elapsed() < PATIENCE, "{:?}", t0.elapsed());
    // The sleeping retry is interrupted: the events are answered at once.
    assert!(wait_until_async(|| client.metrics().events_failed == 5).await);
    client.close_async(PATIENCE).await.unwrap();
    let got = drain_ended(&responses);
    let tally = check_invariant(&sent, &got, &rx, &client.metrics());
    for r in tally.failed.values() {
        assert_eq!(r.error, Some(ResponseError::HttpStatus(503)), "{r:?}");
    }

    // A server that never answers: the request in progress ends with its
    // request_timeout, the close does not wait for it.
    let stalled = Stalled::start();
    let (client, t) = tokio_client(
        config(&rx)
            .api_host(stalled.url.clone())
            .request_timeout(Duration::from_secs(1)),
    );
    send_ids(&client, 0..5);
    let t0 = Instant::now();
    assert!(matches!(
        t.close(Duration::from_millis(200)).await,
        Err(CloseError::Timeout { .. })
    ));
    assert!(t0.elapsed() < PATIENCE, "{:?}", t0.elapsed());
    assert!(wait_until_async(|| client.metrics().events_failed == 5).await);
    let m = client.metrics();
    assert_eq!((m.retries, m.batches_sent), (0, 1), "{m:?}");
    client.close_async(PATIENCE).await.unwrap();
}
on_both_runtimes!(close_gives_up_within_its_timeout);

/// The blocking `close` (and `flush`) on the thread that drives a
/// current-thread runtime, with events in flight: the transmission's tasks
/// could not run meanwhile, so they refuse at once, saying what to call
/// instead, and the client stays open; the awaited close then delivers
/// every event.
#[tokio::test(flavor = "current_thread")]
async fn the_blocking_close_on_the_runtime_thread_refuses_at_once() {
    let rx = receiver();
    let (client, _t) = tokio_client(config(&rx).shutdown_timeout(Duration::from_secs(60)));
    let responses = client.responses();
    let sent = send_ids(&client, 0..5);
    let t0 = Instant::now();
    let err = client.close().unwrap_err();
    assert_eq!(err, CloseError::InsideRuntime);
    assert!(err.to_string().contains("close_async"), "{err}");
    assert_eq!(client.flush(), Err(FlushError::InsideRuntime));
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    assert!(!client.is_closed());
    client.close_async(PATIENCE).await.unwrap();
    let got = drain_ended(&responses);
    let tally = check_invariant(&sent, &got, &rx, &client.metrics());
    assert_eq!(tally.ok.len(), 5, "{got:?}");
}

/// The transmission runs on a runtime of its own threads; the client lives
/// on plain threads, which send, flush and close with the blocking methods.
#[test]
fn plain_threads_send_into_a_runtime_hosted_transmission() {
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let current_handle = current.handle().clone();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    // A current-thread runtime runs only while a thread drives it.
    let driver = std::thread::spawn(move || {
        current.block_on(async move {
            while stop_rx.try_recv().is_err() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    });
    for handle in [multi.handle().clone(), current_handle] {
        for block_on_send in [false, true] {
            let rx = receiver();
            let t = Tokio::with_handle(handle.clone());
            let client = client(
                config(&rx)
                    .max_batch_size(10)
                    .pending_work_capacity(20)
                    .block_on_send(block_on_send)
                    .transmission(t.clone()),
            );
            let threads = on_threads(&client, 4, |client, k| {
                let mine = send_ids(client, k * 1000..k * 1000 + 100);
                client.flush_within(PATIENCE).unwrap();
                mine
            });
            let sent = join_ids(threads);
            // The async close, awaited from a plain thread.
            handle.block_on(t.close(PATIENCE)).unwrap();
            let responses = close_and_collect(&client);
            let m = client.metrics();
            let tally = check_invariant(&sent, &responses, &rx, &m);
            if block_on_send {
                assert_eq!(tally.ok.len(), 400, "{m:?}");
            } else {
                assert_eq!(tally.ok.len() + tally.overflowed(), 400, "{m:?}");
            }
        }
    }
    stop_tx.send(()).unwrap();
    driver.join().unwrap();
}

/// Sends from plain threads race a close from a task: every send that
/// returned `Ok` gets exactly one response (delivered, or refused as closed).
async fn sends_racing_a_close_each_get_one_response() {
    for block_on_send in [true, false] {
        let rx = receiver();
        let (client, t) = tokio_client(
            config(&rx)
                .max_batch_size(20)
                .block_on_send(block_on_send)
                .pending_work_capacity(16)
                // Four threads overflowing flat out make responses faster
                // than a reader thread takes them: room for all of them,
                // so that a response dropped by a full response queue
                // is not taken for one never given.
                .response_queue_capacity(1 << 22),
        );
        let senders = RacingSenders::start(&client, 4);
        // Read responses as they come: sends keep going for a while after the
        // transmission closes, each answered at once.
        let reader = spawn_reader(&client);
        assert!(rx.wait_for_events_async(100, PATIENCE).await);
        t.close(PATIENCE).await.unwrap();
        // Sends after the transmission closed are answered at once; stop them.
        senders.stop();
        while !senders.finished() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let sent = senders.join();
        client.close_async(PATIENCE).await.unwrap();
        while !reader.is_finished() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let got = reader.join().unwrap();
        let m = client.metrics();
        assert_eq!(got.len(), sent.len(), "{m:?}");
        let tally = check_invariant(&sent, &got, &rx, &m);
        for r in tally.failed.values() {
            let refused =
                matches!(&r.error, Some(ResponseError::Transport(m)) if m.contains("closed"));
            assert!(
                refused || r.error == Some(ResponseError::QueueOverflow),
                "{r:?}"
            );
        }
    }
}
on_both_runtimes!(sends_racing_a_close_each_get_one_response);

/// Dropping the last client handle inside a task of a multi-thread runtime
/// closes it with the blocking close: that worker waits while the other
/// runs the transmission, and everything is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_client_in_a_task_delivers_what_was_sent() {
    let rx = receiver();
    let (client, _t) = tokio_client(one_batch(&rx));
    let responses = client.responses();
    let sent = send_ids(&client, 0..20);
    tokio::spawn(async move { drop(client) }).await.unwrap();
    assert_eq!(rx.events().len(), 20, "delivered before the drop returned");
    let got = drain_ended(&responses);
    assert_eq!(got.len(), 20);
    assert!(got.iter().all(Response::is_success), "{got:?}");
    assert_eq!(accepted_ids(&rx), sent.into_iter().collect());
}

/// On a current-thread runtime: close first (awaited), then dropping the
/// client returns at once. Without the close, the drop does not wait either
/// (its tasks could not run meanwhile): it closes the transmission, which
/// sends every event once the runtime runs again.
#[tokio::test(flavor = "current_thread")]
async fn dropping_the_client_on_a_current_thread_runtime() {
    let rx = receiver();
    let (client, t) = tokio_client(config(&rx).shutdown_timeout(Duration::from_secs(60)));
    let responses = client.responses();
    let sent = send_ids(&client, 0..10);
    t.close(PATIENCE).await.unwrap();
    let t0 = Instant::now();
    drop(client);
    assert!(t0.elapsed() < PATIENCE, "{:?}", t0.elapsed());
    let got = drain_ended(&responses);
    assert_eq!(got.len(), 10);
    assert!(got.iter().all(Response::is_success));
    assert_eq!(accepted_ids(&rx), sent.into_iter().collect());

    let rx = receiver();
    let (client, t) = tokio_client(config(&rx).shutdown_timeout(Duration::from_secs(60)));
    send_ids(&client, 0..10);
    let t0 = Instant::now();
    drop(client);
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "no stall: {:?}",
        t0.elapsed()
    );
    // Once the runtime runs again, the batcher sends every event.
    assert!(wait_until_async(|| rx.events().len() == 10).await);
    assert_eq!(t.close(PATIENCE).await, Ok(()), "closed already");
    assert_eq!(t.queue_len(), 0);
}

/// A multi-thread runtime of one worker, and a client over `cfg` and a tokio
/// transmission on that runtime, sending to `stalled` in batches of 5 (no
/// time trigger) whose requests would time out only after a minute.
fn stalled_on_a_runtime_of_its_own(
    stalled: &Stalled,
    cfg: Config,
) -> (tokio::runtime::Runtime, Client) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let t = Tokio::with_handle(runtime.handle().clone());
    let client = client(
        cfg.api_host(stalled.url.clone())
            .request_timeout(Duration::from_secs(60))
            .max_batch_size(5)
            .send_frequency(Duration::from_secs(3600))
            .transmission(t),
    );
    (runtime, client)
}

/// Sends 13 events (ids `0..13`) through a client of
/// [`stalled_on_a_runtime_of_its_own`]: two full batches go out (and stall),
/// three events wait in an open batch. Returns the ids once so.
fn send_two_batches_and_three(client: &Client) -> Vec<u64> {
    let sent = send_ids(client, 0..13);
    assert!(wait_until(PATIENCE, || client.metrics().batches_sent == 2
        && client.metrics().queue_length == 0));
    sent
}

/// A runtime that shuts down with events queued, batched and in flight:
/// each is answered with a transport error as its task is dropped.
#[test]
fn a_runtime_shutting_down_answers_every_event() {
    let stalled = Stalled::start();
    let rx = receiver();
    let (runtime, client) = stalled_on_a_runtime_of_its_own(&stalled, config(&rx));
    let responses = client.responses();
    let sent = send_two_batches_and_three(&client);
    drop(runtime);
    assert!(wait_until(PATIENCE, || responses.len() == 13));
    // Nothing is left to wait for; later events are refused by the
    // transmission, which has stopped.
    client.flush_within(PATIENCE).unwrap();
    send_id(&client, 13);
    client.close().unwrap();
    let got = drain_ended(&responses);
    assert_eq!(got.len(), 14);
    let m = client.metrics();
    let tally = check_invariant(
        &sent.iter().copied().chain([13]).collect::<Vec<_>>(),
        &got,
        &rx,
        &m,
    );
    assert!(tally.ok.is_empty());
    for r in tally.failed.values() {
        assert!(
            matches!(&r.error, Some(ResponseError::Transport(m)) if m.contains("stopped")),
            "{r:?}"
        );
    }
    drop(stalled);
}

/// A plain thread waiting for room in a full queue (`block_on_send`) when
/// the runtime shuts down is released: the rest of its events are refused
/// as the transmission has stopped, and every accepted event is answered.
#[test]
fn a_runtime_shutting_down_releases_a_plain_thread_waiting_for_room() {
    let stalled = Stalled::start();
    let rx = receiver();
    let (runtime, client) = stalled_on_a_runtime_of_its_own(
        &stalled,
        config(&rx)
            .block_on_send(true)
            .pending_work_capacity(3)
            .max_concurrent_batches(1),
    );
    let responses = client.responses();
    let sender = spawn_sender(&client, 0..100);
    // One batch of 5 in flight (stalled), the next waits for its slot, the
    // queue fills, and the thread waits for room.
    assert!(wait_until(PATIENCE, || client.metrics().queue_length == 3));
    assert!(!sender.is_finished(), "the thread waits for room");
    drop(runtime);
    assert!(
        wait_until(PATIENCE, || sender.is_finished()),
        "the waiting thread is released"
    );
    let accepted = sender.join().unwrap();
    assert_eq!(accepted.len(), 100, "send never fails for block_on_send");
    assert!(wait_until(PATIENCE, || responses.len() == 100));
    client.close().unwrap();
    let got = drain_ended(&responses);
    let tally = check_invariant(&accepted, &got, &rx, &client.metrics());
    assert!(tally.ok.is_empty());
    assert_eq!(tally.failed.len(), 100);
    drop(stalled);
}

on_both_runtimes!(lifecycle::block_on_response_without_a_reader_does_not_hang_close);

/// A close that gives up while a request hangs: the request keeps its slot
/// until its `request_timeout`, but its events, everything queued behind it
/// (and a plain thread waiting with `block_on_send`) are answered and
/// released at once.
async fn a_close_that_gives_up_releases_what_waits_behind_a_hung_request() {
    let stalled = Stalled::start();
    let rx = receiver();
    let (client, t) = tokio_client(
        config(&rx)
            .api_host(stalled.url.clone())
            .request_timeout(Duration::from_secs(120))
            .block_on_send(true)
            .pending_work_capacity(3)
            .max_batch_size(1)
            .max_concurrent_batches(1),
    );
    let sender = spawn_sender(&client, 0..20);
    // One request hangs, one batch waits for its slot, the queue is full,
    // and the thread waits for room.
    assert!(wait_until_async(|| client.metrics().queue_length == 3).await);
    assert!(matches!(
        t.close(Duration::from_millis(200)).await,
        Err(CloseError::Timeout { .. })
    ));
    assert!(wait_until_async(|| sender.is_finished()).await);
    let accepted = sender.join().unwrap();
    assert_eq!(accepted.len(), 20, "released, every send accepted");
    // Every event, the hung request's too, is answered long before its timeout.
    assert!(wait_until_async(|| client.metrics().events_failed == 20).await);
    let m = client.metrics();
    assert_eq!(m.batches_sent, 1, "{m:?}");
    let responses = client.responses();
    let got: Vec<Response> = std::iter::from_fn(|| responses.try_recv().ok()).collect();
    assert_eq!(got.len(), 20);
    assert!(got.iter().all(|r| matches!(
        &r.error,
        Some(ResponseError::Transport(m)) if m.contains("closed")
    )));
    client.close_async(Duration::from_millis(100)).await.ok();
    drop(stalled);
}
on_both_runtimes!(a_close_that_gives_up_releases_what_waits_behind_a_hung_request);

/// A runtime shutting down with `block_on_response` and a full response
/// queue nobody reads: dropping the runtime does not wait for room (the
/// answers wait on threads of their own), and the client's close, which
/// gives up after its timeout, releases them.
#[test]
fn a_runtime_shutting_down_does_not_wait_for_room_in_the_response_queue() {
    let stalled = Stalled::start();
    let rx = receiver();
    let cfg = config(&rx)
        .block_on_response(true)
        .response_queue_capacity(1)
        .shutdown_timeout(Duration::from_millis(300));
    let (runtime, client) = stalled_on_a_runtime_of_its_own(&stalled, cfg);
    let responses = client.responses();
    send_two_batches_and_three(&client);
    let t0 = Instant::now();
    drop(runtime);
    assert!(t0.elapsed() < PATIENCE, "{:?}", t0.elapsed());
    assert!(wait_until(PATIENCE, || responses.len() == 1));
    assert!(matches!(client.close(), Err(CloseError::Timeout { .. })));
    assert_eq!(drain_ended(&responses).len(), 1);
    // Each waiting answer is dropped (or, when room and the end come at
    // once, put in the queue after all).
    assert!(
        wait_until(PATIENCE, || client.metrics().responses_dropped
            + responses.len() as u64
            == 12),
        "{:?}",
        client.metrics()
    );
    let m = client.metrics();
    assert_eq!(m.events_failed, 13, "{m:?}");
    drop(stalled);
}
