//! Traces from `tracing` spans, sent to Honeycomb as wide events.
//!
//! ```text
//! cargo run -p libhoney-tracing --example tracing_demo
//! ```
//!
//! Without `HONEYCOMB_API_KEY`, it starts a local libhoney-receiver that
//! prints every event it gets, so it runs without an account. With it, the
//! events go to Honeycomb (`HONEYCOMB_DATASET`, default `tracing-demo`;
//! `HONEYCOMB_API_ENDPOINT` for another host).

use std::time::Duration;

use libhoney::{Client, Config};
use libhoney_receiver::{Print, Receiver};
use libhoney_tracing::{HoneycombLayer, SpanExt, TraceContext};
use tracing::{info, info_span, warn, Instrument};
use tracing_subscriber::prelude::*;

pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dataset = std::env::var("HONEYCOMB_DATASET").unwrap_or_else(|_| "tracing-demo".into());
    let has_key = std::env::var("HONEYCOMB_API_KEY").is_ok_and(|k| !k.trim().is_empty());
    // Keep the receiver alive until the client is closed.
    let (config, _receiver) = if has_key {
        println!("Sending to Honeycomb, dataset {dataset:?}.");
        (Config::new().dataset(&dataset), None)
    } else {
        let rx = Receiver::builder()
            .api_key("demo-key")
            .print(Print::Pretty)
            .start()?;
        println!(
            "HONEYCOMB_API_KEY is not set: sending to a local receiver at {}.",
            rx.url()
        );
        let config = Config::new()
            .read_env(false)
            .api_key("demo-key")
            .dataset(&dataset)
            .api_host(rx.url());
        (config, Some(rx))
    };
    let client = Client::new(config)?;
    // At exit (the end of `main`, an early `?`, a panic), the guard sends
    // what is queued and waits for it, bounded by the client's shutdown
    // timeout. Without it nothing would: the global subscriber below keeps
    // a clone of the client for ever, so the client is never dropped.
    let _guard = client.close_on_drop();

    // The layer, installed as the global default subscriber. At its
    // defaults it sends spans and the INFO-and-above log events inside them.
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry()
            .with(HoneycombLayer::new(client.clone()).service_name("tracing-demo")),
    )?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()?;
    runtime.block_on(async {
        // A request that starts a trace here...
        handle_request(1, None).await;
        // ...and one continuing a trace from a caller's `traceparent` header.
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        handle_request(2, TraceContext::from_traceparent(header)).await;
    });
    // Outside any span: not sent at the layer's defaults
    // (`HoneycombLayer::orphan_events(true)` would send it).
    info!(requests = 2, "demo finished");
    // DEBUG spans and events: below the layer's default INFO floor.
    tracing::debug_span!("cleanup").in_scope(|| tracing::debug!("not sent"));

    // Returning drops `_guard` (declared after `_receiver`, so dropped first):
    // every event is delivered before the process exits.
    let m = client.metrics();
    println!(
        "Queued {} events so far; the guard delivers them at exit.",
        m.events_queued
    );
    Ok(())
}

async fn handle_request(id: u64, remote_parent: Option<TraceContext>) {
    let span = info_span!(
        "handle_request",
        request.id = id,
        http.route = "/checkout",
        http.status_code = tracing::field::Empty
    );
    if let Some(parent) = remote_parent {
        span.set_remote_parent(parent);
    }
    async {
        info!(cart_items = 3, "cart loaded");
        // Children on other tasks join the trace through `.instrument`.
        let prices = tokio::spawn(load_prices().instrument(info_span!("load_prices")));
        let stock = tokio::spawn(check_stock().instrument(info_span!("check_stock")));
        let _ = tokio::join!(prices, stock);
        // What a call to another service would carry.
        if let Some(ctx) = tracing::Span::current().trace_context() {
            info!(traceparent = %ctx.to_traceparent(), "calling the payment service");
        }
        tracing::Span::current().record("http.status_code", 200);
    }
    .instrument(span)
    .await;
}

async fn load_prices() {
    tokio::time::sleep(Duration::from_millis(15)).await;
    info!(currency = "EUR", "prices loaded");
}

async fn check_stock() {
    tokio::time::sleep(Duration::from_millis(5)).await;
    warn!(sku = "B-42", "low stock");
}
