//! The tokio transmission: events go out from tasks on your own runtime (no
//! threads of the SDK's), and `flush`/`close` are awaited without blocking
//! an executor thread. Needs the `tokio` feature:
//!
//! ```text
//! cargo run -p libhoney-sdk --example tokio_transmission --features tokio
//! ```
//!
//! Without `HONEYCOMB_API_KEY`, a local receiver prints what arrives.

#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use libhoney::transmission::Tokio;
use libhoney::Client;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (config, _receiver) = support::config("tokio-example")?;
    // Keep one handle to await flush/close; the client gets a clone.
    let tokio = Tokio::new();
    let client = Client::new(config.transmission(tokio.clone()))?;
    client.add_field("service.name", "tokio-example");

    // A few concurrent "requests", each sending one wide event. `send` never
    // blocks: it puts the event on a bounded queue.
    let tasks: Vec<_> = (0..5u64)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                let start = Instant::now();
                tokio::time::sleep(Duration::from_millis(5 * i)).await;
                let mut ev = client.new_event();
                ev.add_field("request_id", i)
                    .add_field("duration_ms", start.elapsed().as_secs_f64() * 1000.0);
                ev.add_metadata(format!("request-{i}"));
                ev.send()
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }

    // Every event sent so far gets its response; the stream stays open.
    tokio.flush(Duration::from_secs(10)).await?;
    for r in client.responses().try_iter() {
        support::print_response(&r);
    }

    // Stop the transmission's tasks, then end the client's response stream.
    tokio.close(Duration::from_secs(10)).await?;
    client.close_async(Duration::from_secs(10)).await?;
    println!("metrics: {:?}", client.metrics());
    Ok(())
}
