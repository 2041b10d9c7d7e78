//! Quickstart: send a few events and see each one's response.
//!
//! ```text
//! cargo run -p libhoney-sdk --example quickstart
//! ```
//!
//! With `HONEYCOMB_API_KEY` set, the events go to Honeycomb. Without it, a local
//! receiver is started and prints every event it accepts.

#[path = "support/mod.rs"]
mod support;

use libhoney::Client;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (config, _receiver) = support::config("quickstart")?;
    let client = Client::new(config)?;
    let responses = client.responses();

    // Global fields go on every event.
    client.add_field("service.name", "quickstart");
    client.add_field("build_id", env!("CARGO_PKG_VERSION"));

    for i in 0..5u64 {
        let mut ev = client.new_event();
        ev.add_field("method", if i % 2 == 0 { "GET" } else { "POST" })
            .add_field("endpoint", "/api/items")
            .add_field("status_code", 200)
            .add_field("duration_ms", 10.0 + i as f64 * 2.5)
            .add_field("cache_hit", i % 3 == 0);
        // Metadata is never sent; it comes back on this event's response.
        ev.add_metadata(format!("request-{i}"));
        ev.send()?;
    }

    // close() sends everything still queued and waits for the answers; then
    // the response stream ends.
    client.close()?;
    for response in responses {
        support::print_response(&response);
    }
    let m = client.metrics();
    println!(
        "sent {} events in {} request(s), {} failed",
        m.events_sent, m.batches_sent, m.events_failed
    );
    Ok(())
}
