//! "Advanced usage: responses queue": verify each event's delivery from
//! another thread, matching responses to events by metadata.
//!
//! ```text
//! cargo run -p libhoney-sdk --example responses_queue
//! ```

#[path = "support/mod.rs"]
mod support;

use std::collections::HashSet;

use libhoney::Client;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (config, _receiver) = support::config("responses")?;
    // block_on_response: never drop a response (we read them continuously).
    let client = Client::new(config.block_on_response(true))?;

    let responses = client.responses();
    let reader = std::thread::spawn(move || {
        let mut delivered = HashSet::new();
        let mut failed = 0;
        // The loop ends when the client is closed and every response was read.
        for r in responses {
            let id = *r
                .metadata
                .as_ref()
                .and_then(|m| m.downcast_ref::<u32>())
                .unwrap_or(&0);
            if r.is_success() {
                delivered.insert(id);
            } else {
                failed += 1;
                eprintln!("event {id} failed: {:?} {}", r.error, r.body);
            }
        }
        (delivered, failed)
    });

    for id in 0..100u32 {
        let mut ev = client.new_event();
        ev.add_field("id", id);
        ev.add_metadata(id);
        ev.send()?;
    }
    client.flush()?; // every event so far has its response; the stream goes on
    let mut ev = client.new_event();
    ev.add_field("after_flush", true);
    ev.add_metadata(100u32);
    ev.send()?;
    client.close()?; // now the stream ends

    let (delivered, failed) = reader.join().expect("reader thread");
    println!("{} delivered, {failed} failed", delivered.len());
    Ok(())
}
