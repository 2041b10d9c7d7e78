//! "Customizing event transmission": the built-in `Writer` (the counterpart of
//! libhoney-py's FileTransmission) and a transmission of your own.
//!
//! ```text
//! cargo run -p libhoney-sdk --example custom_transmission
//! ```

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use libhoney::transmission::{Context, QueuedEvent, Responder, Transmission, Writer};
use libhoney::{Client, CloseError, Config, ConfigError, FlushError, Response};

/// Keeps the last event of each dataset in memory and prints it on close.
#[derive(Default)]
struct LastPerDataset {
    responder: OnceLock<Responder>,
    last: Mutex<std::collections::BTreeMap<String, String>>,
}

impl Transmission for LastPerDataset {
    fn start(&self, ctx: Context) -> Result<(), ConfigError> {
        self.responder
            .set(ctx.responder().clone())
            .map_err(|_| ConfigError::TransmissionInUse {
                transmission: "LastPerDataset",
            })
    }
    fn send(&self, mut event: QueuedEvent) {
        let json = event.to_json();
        self.last
            .lock()
            .unwrap()
            .insert(event.dataset().to_string(), json);
        // Every event must get exactly one response.
        let response = Response::success(event.take_metadata(), None, Duration::ZERO);
        self.responder.get().expect("started").respond(response);
    }
    fn flush(&self, _timeout: Duration) -> Result<(), FlushError> {
        Ok(())
    }
    fn close(&self, _timeout: Duration) -> Result<(), CloseError> {
        for (dataset, json) in self.last.lock().unwrap().iter() {
            println!("last event of {dataset}: {json}");
        }
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1. One JSON line per event on stderr, sampling included.
    let client = Client::new(
        Config::new()
            .read_env(false)
            .api_key("unused-by-the-writer")
            .dataset("to-stderr")
            .sample_rate(2)
            .transmission(Writer::stderr()),
    )?;
    for i in 0..4 {
        let mut ev = client.new_event();
        ev.add_field("i", i);
        ev.send()?;
    }
    client.close()?;

    // 2. Your own transmission.
    let client = Client::new(
        Config::new()
            .read_env(false)
            .api_key("k")
            .dataset("a")
            .transmission(LastPerDataset::default()),
    )?;
    for ds in ["a", "b", "a"] {
        let mut ev = client.new_event();
        ev.add_field("dataset_was", ds).set_dataset(ds);
        ev.send()?;
    }
    client.close()?;
    Ok(())
}
