//! "Flushing events": `flush` sends everything queued and waits for the
//! outcomes without ending anything; `close` does the same, then stops the
//! client. Both take a time limit.
//!
//! ```text
//! cargo run -p libhoney-sdk --example flushing
//! ```

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use libhoney::{Client, SendError};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (config, _receiver) = support::config("flushing")?;
    // A long send_frequency: without a flush these would wait a minute.
    let client = Client::new(config.send_frequency(Duration::from_secs(60)))?;

    for step in ["extract", "transform", "load"] {
        let mut ev = client.new_event();
        ev.add_field("step", step);
        ev.send()?;
        // Make sure this step's event is out before the next step starts
        // (a batch job that may be killed between steps, say).
        client.flush_within(Duration::from_secs(5))?;
        println!(
            "{step}: flushed, {} sent so far",
            client.metrics().events_sent
        );
    }

    client.close_within(Duration::from_secs(5))?;
    let mut late = client.new_event();
    late.add_field("too", "late");
    assert_eq!(late.send(), Err(SendError::Closed));
    println!("after close, send returns: {}", SendError::Closed);
    Ok(())
}
