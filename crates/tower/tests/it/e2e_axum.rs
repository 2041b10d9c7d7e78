//! End to end: the example's axum service, served on a real socket, driven
//! by a real HTTP/1.1 client, sending its events through the SDK's HTTP
//! transmission to a real `libhoney-receiver`; the assertions read what the
//! receiver got.

use crate::axum_example as example;
use crate::common;

use common::{receiver_client, Scripted, Step};

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use example::raw_http::{read_reply, send_request, write_request};
use libhoney::Client;
use libhoney_receiver::{ReceivedEvent, Receiver, RunningReceiver};
use libhoney_tower::{fields, HoneycombLayer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

struct Harness {
    rx: RunningReceiver,
    client: Client,
    addr: SocketAddr,
    /// One message each time the `/hang` handler starts.
    hang_started: mpsc::UnboundedReceiver<()>,
}

/// Three 10-byte chunks, streamed (no size hint, so sent chunked).
fn three_chunks() -> Body {
    Body::new(Scripted::new([
        Step::Data(b"chunk-one\n"),
        Step::Data(b"chunk-two\n"),
        Step::Data(b"chunk-3..\n"),
    ]))
}

async fn start() -> Harness {
    let rx = Receiver::builder().api_key("e2e-key").start().unwrap();
    let client = receiver_client(&rx, "e2e-key", "tower-e2e");
    client.add_field("service.name", "e2e");
    let layer = HoneycombLayer::from_client(client.clone());
    let (started_tx, hang_started) = mpsc::unbounded_channel();
    let test_routes = Router::new()
        .route(
            "/hang",
            get(move || {
                let started_tx = started_tx.clone();
                async move {
                    let _ = started_tx.send(());
                    std::future::pending::<()>().await;
                    "never"
                }
            }),
        )
        .route("/stream", get(|| async { three_chunks() }))
        .layer(layer.clone());
    let app = example::app(layer).merge(test_routes);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    Harness {
        rx,
        client,
        addr,
        hang_started,
    }
}

impl Harness {
    /// The receiver's event for this method and path, waiting (bounded) for
    /// it to arrive: the event is queued when the response ends, and
    /// delivered by the SDK's background sender.
    async fn event(&self, method: &str, path: &str) -> ReceivedEvent {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found: Vec<ReceivedEvent> = self
                .rx
                .events()
                .into_iter()
                .filter(|e| {
                    e.data[fields::REQUEST_PATH] == path && e.data[fields::REQUEST_METHOD] == method
                })
                .collect();
            assert!(found.len() <= 1, "one event per request: {found:?}");
            if let Some(ev) = found.into_iter().next() {
                return ev;
            }
            assert!(
                Instant::now() < deadline,
                "no event for {method} {path}; got {:?}",
                self.rx.events()
            );
            let _ = self.client.flush_async(Duration::from_secs(2)).await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn s<'a>(ev: &'a ReceivedEvent, name: &str) -> Option<&'a str> {
    ev.data.get(name).and_then(|v| v.as_str())
}

fn n(ev: &ReceivedEvent, name: &str) -> Option<i64> {
    ev.data.get(name).and_then(|v| v.as_i64())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_statuses_durations_and_request_fields() {
    let h = start().await;

    let mut stream = TcpStream::connect(h.addr).await.unwrap();
    let local = stream.local_addr().unwrap();
    write_request(&mut stream, "GET", "/users/42?ref=home", &[], b"")
        .await
        .unwrap();
    let reply = read_reply(&mut stream).await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, b"user 42: grace\n");

    let reply = send_request(h.addr, "GET", "/", &[], b"").await.unwrap();
    assert_eq!(reply.status, 200);
    let reply = send_request(h.addr, "GET", "/no/such/route", &[], b"")
        .await
        .unwrap();
    assert_eq!(reply.status, 404);

    let ev = h.event("GET", "/users/42").await;
    assert_eq!(ev.dataset, "tower-e2e");
    assert!(ev.time.is_some());
    assert_eq!(
        s(&ev, "service.name"),
        Some("e2e"),
        "client field inherited"
    );
    assert_eq!(
        s(&ev, fields::REQUEST_ROUTE),
        Some("/users/{id}"),
        "the template"
    );
    assert_eq!(s(&ev, fields::REQUEST_HTTP_VERSION), Some("HTTP/1.1"));
    assert_eq!(s(&ev, fields::REQUEST_HOST), Some("localhost"));
    assert_eq!(
        s(&ev, fields::REQUEST_USER_AGENT),
        Some("libhoney-tower-example")
    );
    assert_eq!(
        s(&ev, fields::REQUEST_REMOTE_ADDR),
        Some(local.to_string().as_str()),
        "from axum's ConnectInfo: the client's own socket address"
    );
    assert_eq!(n(&ev, fields::RESPONSE_STATUS_CODE), Some(200));
    assert_eq!(n(&ev, fields::RESPONSE_CONTENT_LENGTH), Some(15));
    assert!(ev.data[fields::DURATION_MS]
        .as_f64()
        .is_some_and(|d| d >= 0.0));
    assert!(ev.data[fields::DURATION_MS].is_f64(), "a float");
    assert_eq!(n(&ev, "user.id"), Some(42), "enriched by the handler");
    assert_eq!(s(&ev, "user.plan"), Some("free"));
    assert!(ev.data.get(fields::ERROR).is_none());

    let ev = h.event("GET", "/").await;
    assert_eq!(s(&ev, fields::REQUEST_ROUTE), Some("/"));
    assert_eq!(n(&ev, fields::RESPONSE_STATUS_CODE), Some(200));
    assert!(
        ev.data.get("user.id").is_none(),
        "enrichment stays per request"
    );

    let ev = h.event("GET", "/no/such/route").await;
    assert_eq!(n(&ev, fields::RESPONSE_STATUS_CODE), Some(404));
    assert_eq!(
        s(&ev, fields::REQUEST_ROUTE),
        Some(fields::UNMATCHED_ROUTE),
        "no template: one bounded name, not the path"
    );
    assert_eq!(s(&ev, fields::REQUEST_PATH), Some("/no/such/route"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_errors_and_panics_are_recorded() {
    let h = start().await;
    let reply = send_request(h.addr, "GET", "/fail", &[], b"")
        .await
        .unwrap();
    assert_eq!(reply.status, 503);
    let reply = send_request(h.addr, "GET", "/panic", &[], b"")
        .await
        .unwrap();
    assert_eq!(reply.status, 500, "the panic became a 500");
    // The server survived the panic.
    let reply = send_request(h.addr, "GET", "/", &[], b"").await.unwrap();
    assert_eq!(reply.status, 200);

    let ev = h.event("GET", "/fail").await;
    assert_eq!(n(&ev, fields::RESPONSE_STATUS_CODE), Some(503));
    assert_eq!(s(&ev, fields::ERROR), Some("payment provider unavailable"));

    let ev = h.event("GET", "/panic").await;
    assert_eq!(n(&ev, fields::RESPONSE_STATUS_CODE), Some(500));
    assert_eq!(
        s(&ev, fields::ERROR),
        Some("panic: the /panic handler panics on purpose")
    );
    assert_eq!(s(&ev, fields::REQUEST_ROUTE), Some("/panic"));
    assert!(ev.data[fields::DURATION_MS].is_f64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_sizes() {
    let h = start().await;
    let payload = vec![b'x'; 1000];

    let reply = send_request(h.addr, "POST", "/echo", &[], &payload)
        .await
        .unwrap();
    assert_eq!(reply.body, payload);
    let ev = h.event("POST", "/echo").await;
    assert_eq!(
        n(&ev, fields::REQUEST_CONTENT_LENGTH),
        Some(1000),
        "Content-Length"
    );
    assert_eq!(
        n(&ev, fields::RESPONSE_CONTENT_LENGTH),
        Some(1000),
        "counted"
    );
    h.rx.reset();

    // A chunked upload has no length up front: no request.content_length.
    let chunked = [("transfer-encoding", "chunked")];
    let reply = send_request(h.addr, "POST", "/echo", &chunked, &payload)
        .await
        .unwrap();
    assert_eq!(reply.body, payload);
    let ev = h.event("POST", "/echo").await;
    assert!(
        ev.data.get(fields::REQUEST_CONTENT_LENGTH).is_none(),
        "{ev:?}"
    );
    assert_eq!(n(&ev, fields::RESPONSE_CONTENT_LENGTH), Some(1000));

    // A streamed response, sent chunked: counted as it goes out.
    let reply = send_request(h.addr, "GET", "/stream", &[], b"")
        .await
        .unwrap();
    assert_eq!(reply.header("transfer-encoding"), Some("chunked"));
    assert_eq!(reply.body.len(), 30);
    let ev = h.event("GET", "/stream").await;
    assert_eq!(n(&ev, fields::RESPONSE_CONTENT_LENGTH), Some(30));
    assert!(ev.data.get(fields::ERROR).is_none());

    // HEAD: the body is never sent.
    let reply = send_request(h.addr, "HEAD", "/users/7", &[], b"")
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    assert!(reply.body.is_empty());
    let ev = h.event("HEAD", "/users/7").await;
    assert_eq!(n(&ev, fields::RESPONSE_STATUS_CODE), Some(200));
    assert_eq!(n(&ev, fields::RESPONSE_CONTENT_LENGTH), Some(0));
    assert!(ev.data.get(fields::ERROR).is_none(), "{ev:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_disconnecting_mid_request_cancels_it() {
    let mut h = start().await;
    let mut stream = TcpStream::connect(h.addr).await.unwrap();
    write_request(&mut stream, "GET", "/hang", &[], b"")
        .await
        .unwrap();
    // Wait until the handler runs, then hang up.
    tokio::time::timeout(Duration::from_secs(10), h.hang_started.recv())
        .await
        .expect("the handler started")
        .unwrap();
    drop(stream);

    let ev = h.event("GET", "/hang").await;
    assert_eq!(s(&ev, fields::ERROR), Some(fields::CANCELLED));
    assert!(ev.data.get(fields::RESPONSE_STATUS_CODE).is_none());
    assert_eq!(s(&ev, fields::REQUEST_ROUTE), Some("/hang"));
    assert!(ev.data[fields::DURATION_MS].is_f64());
}
