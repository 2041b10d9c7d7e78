//! End to end over real HTTP: the layer installed as the global default (as
//! in an application), a tokio multi-thread runtime and a plain thread, a
//! client pointed at a local libhoney-receiver; checks what arrives. The
//! global default is process-wide: the test runs alone in a child process
//! (`own_process`, see `main.rs`).

use std::collections::HashMap;
use std::time::Duration;

use libhoney::{Client, Config};
use libhoney_receiver::{ReceivedEvent, Receiver};
use libhoney_tracing::{HoneycombLayer, SpanExt, TraceContext};
use tracing::{info, info_span, warn, Instrument};
use tracing_subscriber::prelude::*;

fn s<'a>(ev: &'a ReceivedEvent, key: &str) -> &'a str {
    ev.data
        .get(key)
        .and_then(|v| v.as_str())
        .unwrap_or_else(|| panic!("no string {key:?} in {:?}", ev.data))
}

fn named<'a>(events: &'a [ReceivedEvent], name: &str) -> Vec<&'a ReceivedEvent> {
    events
        .iter()
        .filter(|e| e.data.get("name").and_then(|v| v.as_str()) == Some(name))
        .collect()
}

fn one<'a>(events: &'a [ReceivedEvent], name: &str) -> &'a ReceivedEvent {
    let found = named(events, name);
    assert_eq!(found.len(), 1, "{name}: {found:?}");
    found[0]
}

#[test]
fn spans_and_span_events_arrive_at_the_receiver() {
    if !crate::own_process::alone(
        module_path!(),
        "spans_and_span_events_arrive_at_the_receiver",
    ) {
        return;
    }
    let rx = Receiver::builder().api_key("e2e-key").start().unwrap();
    let client = Client::new(
        Config::new()
            .read_env(false)
            .api_key("e2e-key")
            .dataset("tracing e2e")
            .api_host(rx.url()),
    )
    .unwrap();
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(
            HoneycombLayer::new(client.clone())
                .service_name("e2e-svc")
                .orphan_events(true),
        ),
    )
    .unwrap();

    let incoming = "00-5b8efff798038103d269b633813fc60c-eee19b7ec3c1b174-01";
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let request = info_span!("request", route = "/checkout", name = "user's name");
        request.set_remote_parent(TraceContext::from_traceparent(incoming).unwrap());
        async {
            info!(cart_items = 2, "request received");
            let tasks: Vec<_> = (0..3)
                .map(|i| {
                    tokio::spawn(
                        async move {
                            tokio::time::sleep(Duration::from_millis(1)).await;
                            info!(i, "querying");
                        }
                        .instrument(info_span!("db_query", i)),
                    )
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            let parent = tracing::Span::current();
            tokio::task::spawn_blocking(move || {
                info_span!(parent: &parent, "render").in_scope(|| warn!("slow template"));
            })
            .await
            .unwrap();
        }
        .instrument(request)
        .await;
    });
    std::thread::spawn(|| info!(pid = 1, "background job finished"))
        .join()
        .unwrap();

    // 1 request + 3 queries + 1 render; 1 + 3 + 1 span events; 1 standalone.
    let expected = 11;
    client.flush_within(Duration::from_secs(10)).unwrap();
    assert!(rx.wait_for_events(expected, Duration::from_secs(10)));
    let events = rx.events();
    assert_eq!(events.len(), expected, "{events:#?}");
    assert!(events.iter().all(|e| e.dataset == "tracing e2e"));
    assert!(events.iter().all(|e| e.time.is_some()));
    assert!(events.iter().all(|e| s(e, "service.name") == "e2e-svc"));

    let request = one(&events, "request");
    let trace = "5b8efff798038103d269b633813fc60c";
    assert_eq!(s(request, "trace.trace_id"), trace);
    assert_eq!(s(request, "trace.parent_id"), "eee19b7ec3c1b174");
    assert_eq!(s(request, "meta.span_type"), "subroot");
    assert_eq!(s(request, "route"), "/checkout");
    assert_eq!(s(request, "tracing.name"), "user's name");
    assert!(request.data["duration_ms"].is_f64());
    assert!(request.data["busy_ms"].is_f64());
    let request_id = s(request, "trace.span_id");

    let queries = named(&events, "db_query");
    assert_eq!(queries.len(), 3);
    for q in &queries {
        assert_eq!(s(q, "trace.trace_id"), trace);
        assert_eq!(s(q, "trace.parent_id"), request_id);
        assert_eq!(s(q, "meta.span_type"), "leaf");
    }
    let by_id: HashMap<&str, &ReceivedEvent> = queries
        .iter()
        .map(|q| (s(q, "trace.span_id"), *q))
        .collect();
    let querying = named(&events, "querying");
    assert_eq!(querying.len(), 3);
    for ev in querying {
        assert_eq!(s(ev, "meta.annotation_type"), "span_event");
        let span = by_id[s(ev, "trace.parent_id")];
        assert_eq!(
            span.data["i"], ev.data["i"],
            "each log event in its own task's span"
        );
    }
    let received = one(&events, "request received");
    assert_eq!(s(received, "trace.parent_id"), request_id);
    assert_eq!(received.data["cart_items"], 2);

    let render = one(&events, "render");
    assert_eq!(s(render, "trace.parent_id"), request_id);
    let slow = one(&events, "slow template");
    assert_eq!(s(slow, "trace.parent_id"), s(render, "trace.span_id"));
    assert_eq!(s(slow, "level"), "WARN");

    let job = one(&events, "background job finished");
    assert!(job.data.get("trace.trace_id").is_none());
    assert!(job.data.get("meta.annotation_type").is_none());
    assert_eq!(s(job, "target"), module_path!());

    client.close().unwrap();
}
