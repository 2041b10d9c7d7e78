//! "Simple: send a blob of data" from the libhoney-py docs: a serde struct's
//! fields become the event's fields.
//!
//! ```text
//! cargo run -p libhoney-sdk --example simple
//! ```

#[path = "support/mod.rs"]
mod support;

use libhoney::Client;
use serde::Serialize;

#[derive(Serialize)]
struct Request<'a> {
    method: &'a str,
    path: &'a str,
    status: u16,
    duration_ms: f64,
    user: Option<&'a str>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (config, _receiver) = support::config("simple")?;
    let client = Client::new(config)?;

    let mut ev = client.new_event();
    ev.add(&Request {
        method: "GET",
        path: "/hello",
        status: 200,
        duration_ms: 12.5,
        user: None,
    })?;
    ev.add_field("message", "hello from libhoney for Rust");
    ev.send()?;

    client.close()?;
    Ok(())
}
