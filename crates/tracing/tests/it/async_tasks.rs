//! Trace propagation across async tasks, on tokio's current-thread and
//! multi-thread runtimes, with `.instrument(span)` and `Span::current()`.
//!
//! The subscriber is the default of every runtime thread (as a global default
//! would be in an application): tracing-subscriber's registry closes a parent
//! span through the default dispatcher of the thread where its last child
//! closes, and tokio drops a finished task's future outside any
//! `with_subscriber` scope.

use crate::common;

use common::*;
use libhoney::transmission::QueuedEvent;
use libhoney_tracing::{HoneycombLayer, SpanExt};
use std::cell::RefCell;
use std::future::Future;

use tracing::dispatcher::DefaultGuard;
use tracing::{info, info_span, Dispatch, Instrument};

thread_local! {
    static GUARD: RefCell<Option<DefaultGuard>> = const { RefCell::new(None) };
}

/// Runs `fut` to completion with `d` as the default subscriber of the calling
/// thread and of every runtime thread.
fn run<F: Future>(multi_thread: bool, d: &Dispatch, fut: F) -> F::Output {
    let mut builder = if multi_thread {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(4);
        b
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let start = d.clone();
    let rt = builder
        .on_thread_start(move || {
            let guard = tracing::dispatcher::set_default(&start);
            GUARD.with(|g| *g.borrow_mut() = Some(guard));
        })
        .on_thread_stop(|| {
            GUARD.with(|g| drop(g.borrow_mut().take()));
        })
        .build()
        .unwrap();
    tracing::dispatcher::with_default(d, || rt.block_on(fut))
}

/// A request handler: a root span, four tasks with a child span each, each
/// spawning a sub-task, with log events and yields in between so tasks
/// interleave (and, on a multi-thread runtime, move between threads).
async fn handler() {
    let root = info_span!("request");
    async {
        info!("start");
        let mut tasks = Vec::new();
        for i in 0..4u64 {
            let task = async move {
                tokio::task::yield_now().await;
                info!(i, "in task");
                // `Span::current()` names the task's span; pass it explicitly.
                let parent = tracing::Span::current();
                let sub = tokio::spawn(
                    async move {
                        tokio::task::yield_now().await;
                        info!(i, "in subtask");
                    }
                    .instrument(info_span!(parent: &parent, "subtask", i)),
                );
                sub.await.unwrap();
                tokio::task::yield_now().await;
            }
            .instrument(info_span!("task", i));
            tasks.push(tokio::spawn(task));
        }
        for t in tasks {
            t.await.unwrap();
        }
        info!("end");
    }
    .instrument(root)
    .await;
}

fn check(events: &[QueuedEvent]) {
    // 1 request + 4 tasks + 4 subtasks, and 2 + 4 + 4 log events.
    assert_eq!(spans(events).len(), 9, "{events:?}");
    assert_eq!(span_events(events).len(), 10);
    let root = one(events, "request");
    let trace = s(root, "trace.trace_id");
    assert!(events.iter().all(|e| s(e, "trace.trace_id") == trace));
    assert!(root.get("trace.parent_id").is_none());
    for name in ["start", "end"] {
        assert_eq!(
            s(one(events, name), "trace.parent_id"),
            s(root, "trace.span_id")
        );
    }
    for task in all(events, "task") {
        let i = task.get("i").unwrap().as_i64();
        assert_eq!(s(task, "trace.parent_id"), s(root, "trace.span_id"));
        assert_eq!(s(task, "meta.span_type"), "mid");
        let find = |name| {
            all(events, name)
                .into_iter()
                .find(|e| e.get("i").unwrap().as_i64() == i)
                .unwrap()
        };
        let sub = find("subtask");
        assert_eq!(s(sub, "trace.parent_id"), s(task, "trace.span_id"));
        assert_eq!(s(sub, "meta.span_type"), "leaf");
        assert_eq!(
            s(find("in task"), "trace.parent_id"),
            s(task, "trace.span_id")
        );
        assert_eq!(
            s(find("in subtask"), "trace.parent_id"),
            s(sub, "trace.span_id")
        );
        // A task is entered only while polled.
        assert!(f(task, "busy_ms") <= f(task, "duration_ms"));
    }
}

#[test]
fn current_thread_runtime() {
    let (client, mock) = mock_client();
    let d = dispatch(HoneycombLayer::new(client.clone()));
    run(false, &d, handler());
    client.flush().unwrap();
    check(&mock.take_events());
}

#[test]
fn multi_thread_runtime() {
    let (client, mock) = mock_client();
    let d = dispatch(HoneycombLayer::new(client.clone()));
    // Several requests at once: each is its own trace.
    run(true, &d, async {
        let handles: Vec<_> = (0..3).map(|_| tokio::spawn(handler())).collect();
        for h in handles {
            h.await.unwrap();
        }
    });
    client.flush().unwrap();
    let events = mock.take_events();
    let roots = all(&events, "request");
    assert_eq!(roots.len(), 3);
    for root in roots {
        let trace = s(root, "trace.trace_id");
        let of_trace: Vec<QueuedEvent> = events
            .iter()
            .filter(|e| s(e, "trace.trace_id") == trace)
            .cloned()
            .collect();
        check(&of_trace);
    }
}

#[test]
fn a_remote_parent_set_before_spawning_reaches_every_task() {
    let (client, mock) = mock_client();
    let d = dispatch(HoneycombLayer::new(client.clone()));
    run(true, &d, async {
        let span = info_span!("incoming");
        span.set_remote_parent(
            libhoney_tracing::TraceContext::from_traceparent(
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            )
            .unwrap(),
        );
        async {
            let t = tokio::spawn(async { info!("deep") }.instrument(info_span!("spawned")));
            t.await.unwrap();
        }
        .instrument(span)
        .await;
    });
    let events = mock.take_events();
    assert_eq!(events.len(), 3);
    assert!(events
        .iter()
        .all(|e| s(e, "trace.trace_id") == "0af7651916cd43dd8448eb211c80319c"));
    assert_eq!(
        s(one(&events, "spawned"), "trace.parent_id"),
        s(one(&events, "incoming"), "trace.span_id")
    );
}
