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
    ev.add_field("user.plan", if id % 2 == 0 { "free" } else { "pro" });
    format!("user {id}\n")
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

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let demo = std::env::args().any(|a| a == "--demo");
    let (client, receiver) = client_from_env()?;
    client.add_field("service.name", "axum-example");

    let addr = if demo {
        "127.0.0.1:0"
    } else {
        "127.0.0.1:3000"
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
        ] {
            let reply = send_request(addr, method, path, &[], body.as_bytes()).await?;
            println!("{method} {path} -> {}", reply.status);
        }
        if let Some(receiver) = &receiver {
            receiver.wait_for_events(5, Duration::from_secs(10));
        }
    } else {
        server
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
    }
    // Deliver what is still queued, without blocking the runtime.
    client.close_async(Duration::from_secs(5)).await?;
    drop(receiver);
    Ok(())
}
