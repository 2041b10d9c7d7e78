//! The integrations together, over real HTTP: libhoney-tower's layer on axum
//! and tonic servers, libhoney-tracing's layer for the handlers' spans, the
//! SDK's HTTP transmission, and a real `libhoney-receiver`.
//!
//! In-process tests install the tracing subscriber as the default of the
//! test's thread and run a current-thread runtime on it, so that every span
//! of the test (servers, clients, handlers) is recorded by that test's layer
//! and no other. The SIGTERM test runs the `axum_service` example in a child
//! process (this binary, re-run with `INTEG_CHILD` set).

use crate::axum_example;
use crate::common;
use crate::tonic_example;

use std::collections::HashMap;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use axum_example::raw_http::send_request;
use common::receiver_client;
use libhoney::{Client, Config};
use libhoney_receiver::{ReceivedEvent, Receiver, RunningReceiver};
use libhoney_tower::{fields, HoneycombLayer};
use tokio::net::TcpListener;
use tonic_example::GreeterClient;
use tracing::level_filters::LevelFilter;
use tracing::Instrument;
use tracing_subscriber::prelude::*;

type TracingLayer = libhoney_tracing::HoneycombLayer;

/// Runs `test` on a current-thread runtime, with a subscriber made of
/// `layer` as this thread's default.
fn run_traced<F: Future<Output = ()>>(layer: TracingLayer, test: impl FnOnce() -> F) {
    let _default = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(test());
}

/// All events the receiver got, once the client has sent what it queued.
fn received(client: &Client, rx: &RunningReceiver) -> Vec<ReceivedEvent> {
    client.flush_within(Duration::from_secs(10)).unwrap();
    rx.events()
}

fn s<'a>(ev: &'a ReceivedEvent, name: &str) -> &'a str {
    ev.data
        .get(name)
        .and_then(|v| v.as_str())
        .unwrap_or_else(|| panic!("no string {name:?} in {:?}", ev.data))
}

fn n(ev: &ReceivedEvent, name: &str) -> Option<i64> {
    ev.data.get(name).and_then(|v| v.as_i64())
}

fn named<'a>(events: &'a [ReceivedEvent], name: &str) -> &'a ReceivedEvent {
    let found: Vec<_> = events
        .iter()
        .filter(|e| e.data.get("name").and_then(|v| v.as_str()) == Some(name))
        .collect();
    assert_eq!(found.len(), 1, "{name}: {events:#?}");
    found[0]
}

async fn start_tonic(layer: HoneycombLayer) -> (SocketAddr, GreeterClient) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(tonic_example::serve(
        layer,
        listener,
        std::future::pending(),
    ));
    let client = GreeterClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    (addr, client)
}

async fn serve_axum(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// One gRPC call to the tonic example, both layers at their defaults: the
/// request event, the handler's two spans and its one `info!`, nothing of
/// h2's and tonic's internals. The same call with the tracing layer opened
/// up to everything shows what the defaults keep out.
#[test]
fn one_grpc_call_at_defaults_sends_a_handful_of_events() {
    let count = |verbose: bool| {
        let rx = Receiver::builder().api_key("k").start().unwrap();
        let client = receiver_client(&rx, "k", "flood");
        let mut layer = TracingLayer::new(client.clone());
        if verbose {
            layer = layer.max_level(LevelFilter::TRACE).orphan_events(true);
        }
        let tower_layer = HoneycombLayer::from_client(client.clone());
        run_traced(layer, || async move {
            let (_, mut greeter) = start_tonic(tower_layer).await;
            let reply = greeter.call("SayHello", "ada").await.unwrap();
            assert_eq!(reply, "hello, ada");
        });
        let events = received(&client, &rx);
        client.close().unwrap();
        events
    };
    let quiet = count(false);
    let names: Vec<&str> = quiet.iter().map(|e| s(e, "name")).collect();
    println!(
        "one gRPC call at defaults: {} events {names:?}",
        quiet.len()
    );
    assert_eq!(quiet.len(), 4, "{names:?}");
    for name in [
        "POST /demo.Greeter/SayHello",
        "say_hello",
        "lookup_greeting",
        "greeting chosen",
    ] {
        named(&quiet, name);
    }
    let verbose = count(true);
    println!("the same call, everything sent: {} events", verbose.len());
    assert!(
        verbose.len() > 4 * quiet.len(),
        "dependencies' TRACE/DEBUG internals: {}",
        verbose.len()
    );
}

/// Service A (axum) calls service B (tonic) from a handler span; the caller
/// of A sent a `traceparent`. The receiver holds one trace: A's request
/// event continues the caller's span, A's handler span is its child, B's
/// request event is the child of that span (through `TraceparentLayer`), and
/// B's handler spans are children of B's request event.
#[test]
fn two_services_one_trace() {
    let rx = Receiver::builder().api_key("k").start().unwrap();
    let client = receiver_client(&rx, "k", "two-services");
    let tracing_layer = TracingLayer::new(client.clone());
    let tower_layer = HoneycombLayer::from_client(client.clone());
    let incoming_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let incoming_span = "00f067aa0ba902b7";

    run_traced(tracing_layer, || async move {
        let (_, greeter) = start_tonic(tower_layer.clone()).await;
        async fn checkout(State(mut greeter): State<GreeterClient>) -> String {
            let span = tracing::info_span!("call_greeter");
            async move { greeter.call("SayHello", "ada").await.unwrap() }
                .instrument(span)
                .await
        }
        let app = Router::new()
            .route("/checkout", get(checkout))
            .layer(tower_layer)
            .with_state(greeter);
        let a = serve_axum(app).await;
        let traceparent = format!("00-{incoming_trace}-{incoming_span}-01");
        let reply = send_request(a, "GET", "/checkout", &[("traceparent", &traceparent)], b"")
            .await
            .unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, b"hello, ada");
    });

    let events = received(&client, &rx);
    assert_eq!(events.len(), 6, "{events:#?}");
    for ev in &events {
        assert_eq!(s(ev, "trace.trace_id"), incoming_trace, "{ev:?}");
    }
    let a = named(&events, "GET /checkout");
    assert_eq!(s(a, "trace.parent_id"), incoming_span);
    assert_eq!(s(a, "meta.span_type"), "subroot");
    let call = named(&events, "call_greeter");
    assert_eq!(s(call, "trace.parent_id"), s(a, "trace.span_id"));
    let b = named(&events, "POST /demo.Greeter/SayHello");
    assert_eq!(s(b, "trace.parent_id"), s(call, "trace.span_id"));
    assert_eq!(s(b, "meta.span_type"), "subroot");
    let hello = named(&events, "say_hello");
    assert_eq!(s(hello, "trace.parent_id"), s(b, "trace.span_id"));
    let lookup = named(&events, "lookup_greeting");
    assert_eq!(s(lookup, "trace.parent_id"), s(hello, "trace.span_id"));
    let chosen = named(&events, "greeting chosen");
    assert_eq!(s(chosen, "trace.parent_id"), s(lookup, "trace.span_id"));
    // Every span id is distinct.
    let ids: HashMap<&str, &str> = events
        .iter()
        .filter_map(|e| {
            e.data
                .get("trace.span_id")?
                .as_str()
                .map(|id| (id, s(e, "name")))
        })
        .collect();
    assert_eq!(ids.len(), 5);
    client.close().unwrap();
}

/// `propagation::inject` and `traceparent` give the current span's context;
/// nothing outside a recorded span.
#[test]
fn inject_sets_the_current_spans_traceparent() {
    use libhoney_tower::propagation;
    use libhoney_tracing::SpanExt;
    let (client, _mock) = common::mock_client();
    run_traced(TracingLayer::new(client.clone()), || async {
        let mut headers = http::HeaderMap::new();
        assert!(!propagation::inject(&mut headers));
        assert!(headers.is_empty());
        let span = tracing::info_span!("outgoing_call");
        let _entered = span.enter();
        assert!(propagation::inject(&mut headers));
        let expected = span.trace_context().unwrap().to_traceparent();
        assert_eq!(headers["traceparent"], expected.as_str());
        assert_eq!(propagation::traceparent().unwrap(), expected.as_str());
    });
}

/// gRPC statuses and messages are recorded from the trailers; a panicking
/// handler answers `grpc-status: 13` (not a bare HTTP 500); the peer address
/// comes from tonic's connect info.
#[test]
fn grpc_statuses_messages_panics_and_remote_addr() {
    let rx = Receiver::builder().api_key("k").start().unwrap();
    let client = receiver_client(&rx, "k", "grpc");
    let tower_layer = HoneycombLayer::from_client(client.clone());
    run_traced(TracingLayer::new(client.clone()), || async move {
        let (_, mut greeter) = start_tonic(tower_layer).await;
        let err = greeter.call("FindUser", "bob").await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::NotFound);
        let err = greeter.call("Crash", "eve").await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::Internal, "{err:?}");
        assert_eq!(err.message(), "internal error: the handler panicked");
        // The connection survived the panic.
        assert_eq!(greeter.call("SayHello", "ada").await.unwrap(), "hello, ada");
    });
    let events = received(&client, &rx);
    let find = named(&events, "POST /demo.Greeter/FindUser");
    assert_eq!(n(find, fields::RESPONSE_STATUS_CODE), Some(200));
    assert_eq!(n(find, fields::RESPONSE_GRPC_STATUS), Some(5));
    assert_eq!(s(find, fields::RESPONSE_GRPC_MESSAGE), "no user \"bob\"");
    assert!(s(find, fields::REQUEST_REMOTE_ADDR).starts_with("127.0.0.1:"));
    let crash = named(&events, "POST /demo.Greeter/Crash");
    assert_eq!(n(crash, fields::RESPONSE_STATUS_CODE), Some(200));
    assert_eq!(n(crash, fields::RESPONSE_GRPC_STATUS), Some(13));
    assert_eq!(
        s(crash, fields::ERROR),
        "panic: the crash handler panics on purpose"
    );
    let hello = named(&events, "POST /demo.Greeter/SayHello");
    assert_eq!(n(hello, fields::RESPONSE_GRPC_STATUS), Some(0));
    assert!(hello.data.get(fields::RESPONSE_GRPC_MESSAGE).is_none());
    assert_eq!(
        s(hello, fields::REQUEST_REMOTE_ADDR),
        s(find, fields::REQUEST_REMOTE_ADDR),
        "one connection"
    );
    client.close().unwrap();
}

/// axum: the layer on a nested router records the original path; the
/// whole-router form (`wrap_router`) is served by `axum::serve` as it is,
/// still with route templates; unmatched requests get one route name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_nested_whole_router_and_unmatched() {
    let rx = Receiver::builder().api_key("k").start().unwrap();
    let client = receiver_client(&rx, "k", "axum");
    let layer = HoneycombLayer::from_client(client.clone());

    let users = Router::new()
        .route("/users/{id}", get(|| async { "user" }))
        .layer(layer.clone());
    let nested = serve_axum(Router::new().nest("/api", users)).await;
    let outer = serve_axum(
        Router::new()
            .nest(
                "/v2",
                Router::new().route("/items/{id}", get(|| async { "item" })),
            )
            .layer(layer.clone()),
    )
    .await;
    let whole = serve_axum(
        layer.wrap_router(
            Router::new()
                .route("/orders/{id}", get(|| async { "order" }))
                .nest(
                    "/shop",
                    Router::new().route("/carts/{id}", get(|| async { "cart" })),
                ),
        ),
    )
    .await;
    let reply = send_request(outer, "GET", "/v2/items/3", &[], b"")
        .await
        .unwrap();
    assert_eq!((reply.status, &reply.body[..]), (200, &b"item"[..]));
    let reply = send_request(whole, "GET", "/shop/carts/5", &[], b"")
        .await
        .unwrap();
    assert_eq!((reply.status, &reply.body[..]), (200, &b"cart"[..]));
    let reply = send_request(nested, "GET", "/api/users/7", &[], b"")
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    let reply = send_request(whole, "GET", "/orders/9", &[], b"")
        .await
        .unwrap();
    assert_eq!((reply.status, &reply.body[..]), (200, &b"order"[..]));
    for path in ["/wp-login.php", "/.env", "/admin/config.php"] {
        let reply = send_request(whole, "GET", path, &[], b"").await.unwrap();
        assert_eq!(reply.status, 404);
    }
    let events = tokio::task::spawn_blocking(move || {
        let events = received(&client, &rx);
        client.close().unwrap();
        events
    })
    .await
    .unwrap();
    assert_eq!(events.len(), 7, "{events:#?}");
    // A layer on the outer router, and `wrap_router`, see nested routes'
    // full templates too (axum flattens nested routers into their parent).
    let item = named(&events, "GET /v2/items/{id}");
    assert_eq!(s(item, fields::REQUEST_PATH), "/v2/items/3");
    let cart = named(&events, "GET /shop/carts/{id}");
    assert_eq!(s(cart, fields::REQUEST_PATH), "/shop/carts/5");
    let user = named(&events, "GET /api/users/{id}");
    assert_eq!(s(user, fields::REQUEST_PATH), "/api/users/7");
    assert_eq!(s(user, fields::REQUEST_ROUTE), "/api/users/{id}");
    let order = named(&events, "GET /orders/{id}");
    assert_eq!(s(order, fields::REQUEST_PATH), "/orders/9");
    assert!(s(order, fields::REQUEST_REMOTE_ADDR).starts_with("127.0.0.1:"));
    let unmatched: Vec<_> = events
        .iter()
        .filter(|e| s(e, fields::REQUEST_ROUTE) == fields::UNMATCHED_ROUTE)
        .collect();
    assert_eq!(unmatched.len(), 3);
    for ev in unmatched {
        assert_eq!(n(ev, fields::RESPONSE_STATUS_CODE), Some(404));
        assert_eq!(s(ev, "name"), "GET <unmatched>");
    }
}

struct Capture(Mutex<Vec<(log::Level, String, String)>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        self.0.lock().unwrap().push((
            record.level(),
            record.target().to_string(),
            record.args().to_string(),
        ));
    }
    fn flush(&self) {}
}

static LOGS: Capture = Capture(Mutex::new(Vec::new()));

/// Warnings logged so far under `target`.
fn warnings(target: &str) -> Vec<String> {
    LOGS.0
        .lock()
        .unwrap()
        .iter()
        .filter(|(level, t, _)| *level <= log::Level::Warn && t == target)
        .map(|(_, _, msg)| msg.clone())
        .collect()
}

/// A client without an API key: the SDK says so once when it starts, each
/// layer says once that its events are not sent, and the SDK's metrics count
/// every refused event. It installs a `log` logger (process-wide), so it
/// runs alone in a child process (`own_process`, see `main.rs`).
#[test]
fn a_missing_api_key_is_said_once_by_each_layer_and_counted() {
    if !crate::own_process::alone(
        module_path!(),
        "a_missing_api_key_is_said_once_by_each_layer_and_counted",
    ) {
        return;
    }
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        log::set_logger(&LOGS).unwrap();
        log::set_max_level(log::LevelFilter::Warn);
    });
    let rx = Receiver::builder().api_key("k").start().unwrap();
    let client = Client::new(
        Config::new()
            .read_env(false)
            .dataset("no-key")
            .api_host(rx.url()),
    )
    .unwrap();
    assert_eq!(warnings("libhoney").len(), 1, "{:?}", warnings("libhoney"));
    let tower_layer = HoneycombLayer::from_client(client.clone());
    run_traced(TracingLayer::new(client.clone()), || async move {
        let (_, mut greeter) = start_tonic(tower_layer).await;
        for _ in 0..3 {
            greeter.call("SayHello", "ada").await.unwrap();
        }
    });
    client.flush().unwrap();
    assert_eq!(rx.events().len(), 0);
    // Per call: the request event, two spans and a span event.
    assert_eq!(client.metrics().events_missing_api_key, 12);
    let tower = warnings("libhoney_tower");
    assert_eq!(tower.len(), 1, "{tower:?}");
    assert!(tower[0].contains("no API key"), "{}", tower[0]);
    let tracing = warnings("libhoney_tracing");
    assert_eq!(tracing.len(), 1, "{tracing:?}");
    assert!(tracing[0].contains("HONEYCOMB_API_KEY"), "{}", tracing[0]);
    assert_eq!(
        warnings("libhoney").len(),
        1,
        "still one: refused sends are counted, not logged"
    );
    client.close().unwrap();
}

/// The child's side of [`sigterm_after_requests_delivers_every_event`] (the
/// `axum_service` example's own `main`, serving until SIGTERM) and of
/// [`tonic_example_demo_delivers_every_event`].
#[test]
fn child() {
    match std::env::var("INTEG_CHILD").as_deref() {
        Ok("axum-sigterm") => axum_example::main().unwrap(),
        Ok("tonic-demo") => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(tonic_example::run(true))
            .unwrap(),
        _ => {}
    }
}

/// Spawns this binary as a child in `mode`, sending to `rx` under `dataset`.
fn spawn_child(mode: &str, rx: &RunningReceiver, dataset: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "integrations::child",
            "--test-threads",
            "1",
            "--nocapture",
        ])
        .env("INTEG_CHILD", mode)
        .env("HONEYCOMB_API_KEY", "child-key")
        .env("HONEYCOMB_API_ENDPOINT", rx.url())
        .env("HONEYCOMB_DATASET", dataset)
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits up to 30 s for `child` to exit; panics if it does not, or fails.
fn wait_success(child: &mut std::process::Child) {
    let start = Instant::now();
    let exit = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the child did not exit within 30 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(exit.success(), "{exit:?}");
}

/// The `tonic_service` example's `--demo` run, in its own process (it
/// installs the global subscriber): three calls, and every event of them
/// delivered by the time the process has exited.
#[test]
fn tonic_example_demo_delivers_every_event() {
    if std::env::var("INTEG_CHILD").is_ok() {
        return;
    }
    let rx = Receiver::builder().api_key("child-key").start().unwrap();
    let mut child = spawn_child("tonic-demo", &rx, "tonic-demo");
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let out: Vec<String> = stdout.lines().map(Result::unwrap).collect();
    wait_success(&mut child);
    assert!(
        out.iter()
            .any(|l| l.contains("SayHello(\"ada\") -> Ok(\"hello, ada\")")),
        "{out:?}"
    );
    assert!(out.iter().any(|l| l.contains("code: Internal")), "{out:?}");
    let events = rx.events();
    let names: Vec<&str> = events.iter().map(|e| s(e, "name")).collect();
    // SayHello: its request event, two spans, one span event; FindUser and
    // Crash: their request events.
    assert_eq!(events.len(), 6, "{names:?}");
    assert_eq!(
        n(
            named(&events, "POST /demo.Greeter/Crash"),
            fields::RESPONSE_GRPC_STATUS
        ),
        Some(13)
    );
    let hello = named(&events, "POST /demo.Greeter/SayHello");
    assert_eq!(
        s(named(&events, "say_hello"), "trace.parent_id"),
        s(hello, "trace.span_id")
    );
}

/// 20 requests to the `axum_service` example, then SIGTERM: the server
/// stops gracefully, the guard's close delivers every event before exit.
#[cfg(unix)]
#[test]
fn sigterm_after_requests_delivers_every_event() {
    if std::env::var("INTEG_CHILD").is_ok() {
        return;
    }
    let rx = Receiver::builder().api_key("child-key").start().unwrap();
    let mut child = spawn_child("axum-sigterm", &rx, "sigterm");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr: SocketAddr = loop {
        let line = lines
            .next()
            .expect("the child printed its address")
            .unwrap();
        if let Some(addr) = line.strip_prefix("listening on http://") {
            break addr.parse().unwrap();
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for i in 0..20u32 {
            let path = if i.is_multiple_of(2) { "/" } else { "/users/7" };
            let reply = send_request(addr, "GET", path, &[], b"").await.unwrap();
            assert_eq!(reply.status, 200);
        }
    });
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // Drain the child's output so that it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    wait_success(&mut child);
    // Nothing waits here: what the child did not deliver before exiting is lost.
    let events: Vec<_> = rx
        .events()
        .into_iter()
        .filter(|e| e.dataset == "sigterm")
        .collect();
    let requests = events
        .iter()
        .filter(|e| e.data.contains_key(fields::REQUEST_METHOD))
        .count();
    // 20 request events; each of the 10 `/users/7` adds its `load_user` span
    // and that span's one log event.
    assert_eq!(requests, 20);
    assert_eq!(events.len(), 40, "{events:#?}");
}
