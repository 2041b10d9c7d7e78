//! "Intermediate: override some attributes": per-event dataset, sample rate,
//! timestamp and API key.
//!
//! ```text
//! cargo run -p libhoney-sdk --example override_attributes
//! ```

#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, SystemTime};

use libhoney::Client;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (config, _receiver) = support::config("override-default")?;
    let client = Client::new(config)?;
    let responses = client.responses();

    // This event goes to another dataset and is back-dated to when the work began.
    let mut ev = client.new_event();
    ev.add_field("job", "nightly-report")
        .add_field("rows", 12_345)
        .set_dataset("batch-jobs")
        .set_timestamp(SystemTime::now() - Duration::from_secs(90));
    ev.add_metadata("back-dated");
    ev.send()?;

    // Keep 1 in 4 of these; each kept one carries samplerate 4, and each
    // dropped one still gets a response saying so.
    for i in 0..8 {
        let mut ev = client.new_event();
        ev.add_field("chatty", true)
            .add_field("i", i)
            .set_sample_rate(4);
        ev.add_metadata(format!("sampled-{i}"));
        ev.send()?;
    }

    // Already sampled upstream: send as is, keeping its rate.
    let mut ev = client.new_event();
    ev.add_field("presampled", true).set_sample_rate(10);
    ev.add_metadata("presampled");
    ev.send_presampled()?;

    client.close()?;
    for r in responses {
        support::print_response(&r);
    }
    Ok(())
}
