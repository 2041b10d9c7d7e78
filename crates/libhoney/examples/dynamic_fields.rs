//! "Advanced usage: dynamic fields": a function evaluated each time an event is
//! created, under an explicit name.
//!
//! ```text
//! cargo run -p libhoney-sdk --example dynamic_fields
//! ```

#[path = "support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use libhoney::Client;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (config, _receiver) = support::config("dynamic-fields")?;
    let client = Client::new(config)?;

    let in_flight = Arc::new(AtomicU64::new(0));
    let gauge = Arc::clone(&in_flight);
    client.add_dynamic_field("requests_in_flight", move || gauge.load(Ordering::Relaxed));
    client.add_dynamic_field("num_threads", || {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    });

    for i in 0..3 {
        in_flight.store(i * 10, Ordering::Relaxed);
        let mut ev = client.new_event(); // dynamic fields are evaluated here
        ev.add_field("i", i);
        ev.send()?;
    }
    client.close()?;
    Ok(())
}
