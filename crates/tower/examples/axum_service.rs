//! An axum service that sends one Honeycomb event per request.
//!
//! ```text
//! cargo run -p libhoney-tower --example axum_service            # serve on 127.0.0.1:3000
//! cargo run -p libhoney-tower --example axum_service -- --demo  # send a few requests to itself, print, exit
//! ```
//!
//! With `HONEYCOMB_API_KEY` set, events go to Honeycomb (dataset
//! `axum-example`, or `HONEYCOMB_DATASET`). Without it, the example starts a
//! local `libhoney-receiver` that prints every event it gets, so it runs
//! without an account. Then try:
//!
//! ```text
//! curl localhost:3000/users/7
//! curl -d 'hello' localhost:3000/echo
//! curl localhost:3000/fail
//! curl localhost:3000/panic
//! ```
//!
//! Both integrations are installed: libhoney-tower's layer sends one event
//! per request, and libhoney-tracing's layer sends the handlers' spans as its
//! children, in one trace per request. Ctrl-C or SIGTERM stops the server
//! gracefully (requests in flight finish), then the client is closed, so no
//! event is lost at exit. `LISTEN_ADDR` overrides the address.
//!
//! The test suite serves [`app`] too (it includes this file as a module).

#![allow(dead_code)] // The tests include this file and use only part of it.

use std::error::Error;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use libhoney::{Client, Config};
use libhoney_receiver::{Print, Receiver, RunningReceiver};
use libhoney_tower::{HoneycombEvent, HoneycombLayer};
use tokio::net::TcpListener;
use tracing_subscriber::prelude::*;

#[path = "support/raw_http.rs"]
pub mod raw_http;
use raw_http::send_request;

/// The routes, with the layer added by `Router::layer` so that it sees the
/// route templates.
pub fn app(layer: HoneycombLayer) -> Router {
    Router::new()
        .route("/", get(|| async { "hello from libhoney-tower\n" }))
        .route("/users/{id}", get(user))
        .route("/echo", post(echo))
        .route("/fail", get(fail))
        .route("/panic", get(panicking))
        .layer(layer)
}

/// A path parameter, and fields added to the request's event.
async fn user(Path(id): Path<u64>, ev: HoneycombEvent) -> String {
    ev.add_field("user.id", id);
    ev.add_field(
        "user.plan",
        if id.is_multiple_of(2) { "free" } else { "pro" },
    );
    let name = load_user(id).await;
    format!("user {id}: {name}\n")
}

/// A child span of the request event (with libhoney-tracing's layer).
#[tracing::instrument]
async fn load_user(id: u64) -> &'static str {
    tracing::info!(cache = "miss", "user loaded");
    if id.is_multiple_of(2) {
        "grace"
    } else {
        "ada"
    }
}

/// Returns the request body: request and response sizes match.
async fn echo(body: Bytes) -> Bytes {
    body
}

/// A handler error. In axum, handler errors become responses (the service
/// itself never fails), so the handler records the error on the event.
async fn fail(ev: HoneycombEvent) -> Result<String, AppError> {
    let result: Result<String, AppError> = Err(AppError("payment provider unavailable"));
    if let Err(e) = &result {
        ev.add_field("error", e.0);
    }
    result
}

#[derive(Debug)]
struct AppError(&'static str);

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        (StatusCode::SERVICE_UNAVAILABLE, format!("{}\n", self.0)).into_response()
    }
}

/// A handler that panics: the layer records `error: panic: …` and answers 500.
async fn panicking() -> &'static str {
    panic!("the /panic handler panics on purpose")
}

/// Where events go: Honeycomb if `HONEYCOMB_API_KEY` is set, else a local
/// receiver (returned, so that it lives as long as the caller keeps it).
pub fn client_from_env() -> Result<(Client, Option<RunningReceiver>), Box<dyn Error>> {
    let dataset = std::env::var("HONEYCOMB_DATASET").unwrap_or_else(|_| "axum-example".into());
    match std::env::var("HONEYCOMB_API_KEY") {
        Ok(key) if !key.is_empty() => {
            println!("sending events to Honeycomb, dataset {dataset:?}");
            Ok((
                Client::new(Config::new().api_key(key).dataset(dataset))?,
                None,
            ))
        }
        _ => {
            let receiver = Receiver::builder()
                .api_key("local-key")
                .print(Print::Pretty)
                .start()?;
            println!(
                "HONEYCOMB_API_KEY is not set: events go to a local receiver at {}",
                receiver.url()
            );
            let config = Config::new()
                .read_env(false)
                .api_key("local-key")
                .dataset(dataset)
                .api_host(receiver.url())
                .send_frequency(Duration::from_millis(50));
            Ok((Client::new(config)?, Some(receiver)))
        }
    }
}

/// Completes on Ctrl-C or, on Unix, SIGTERM (what `kill`, systemd and
/// Kubernetes send), for `with_graceful_shutdown`.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

#[tokio::main]
pub async fn main() -> Result<(), Box<dyn Error>> {
    let demo = std::env::args().any(|a| a == "--demo");
    let (client, receiver) = client_from_env()?;
    // Flushes and closes the client when `main` returns, although the layers
    // below keep clones of it (the tracing one in a global subscriber, for
    // ever): without it, the events of the last requests would be lost.
    let guard = client.close_on_drop();
    client.add_field("service.name", "axum-example");
    // Spans of the handlers (`#[instrument]`, `info_span!`) join the
    // request's trace, under the request event.
    tracing_subscriber::registry()
        .with(libhoney_tracing::HoneycombLayer::new(client.clone()).service_name("axum-example"))
        .init();

    let addr = match std::env::var("LISTEN_ADDR") {
        Ok(addr) => addr,
        Err(_) if demo => "127.0.0.1:0".to_owned(),
        Err(_) => "127.0.0.1:3000".to_owned(),
    };
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    println!("listening on http://{addr}");

    let app = app(HoneycombLayer::from_client(client.clone()))
        .into_make_service_with_connect_info::<SocketAddr>();
    let server = axum::serve(listener, app);

    if demo {
        tokio::spawn(async move { server.await });
        for (method, path, body) in [
            ("GET", "/", ""),
            ("GET", "/users/7", ""),
            ("POST", "/echo", "hello, honeycomb"),
            ("GET", "/fail", ""),
            ("GET", "/panic", ""),
            ("GET", "/wp-login.php", ""),
        ] {
            let reply = send_request(addr, method, path, &[], body.as_bytes()).await?;
            println!("{method} {path} -> {}", reply.status);
        }
    } else {
        // Stops accepting on Ctrl-C or SIGTERM, then waits for the requests
        // in flight (their events are sent as their responses end).
        server.with_graceful_shutdown(shutdown_signal()).await?;
    }
    // Deliver what is still queued, without blocking the runtime. (Dropping
    // the guard would do it too, blocking this thread up to 10 s.)
    guard.close_async(Duration::from_secs(5)).await?;
    drop(receiver);
    Ok(())
}
