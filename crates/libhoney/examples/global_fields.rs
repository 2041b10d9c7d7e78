//! "Advanced usage: global fields": fields added to the client go on every
//! event created afterwards.
//!
//! ```text
//! cargo run -p libhoney-sdk --example global_fields
//! ```

#[path = "support/mod.rs"]
mod support;

fn hostname() -> String {
    std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (config, _receiver) = support::config("global-fields")?;
    // The process-wide default client, as libhoney-py's module functions.
    // The guard closes the default client if `main` returns early; here
    // `close` does it first.
    let _guard = libhoney::init(config)?;
    libhoney::add_field("hostname", hostname())?;
    libhoney::add_field("build_id", "2026.11.26-abc123")?;
    libhoney::add(&serde_json::json!({ "region": "eu-west-1", "canary": false }))?;

    for endpoint in ["/login", "/cart", "/checkout"] {
        let mut ev = libhoney::new_event()?;
        ev.add_field("endpoint", endpoint);
        ev.send()?; // carries hostname, build_id, region and canary too
    }
    libhoney::close()?;

    // Using the module functions before init (or after close) is an error, not a panic.
    assert!(libhoney::new_event().is_err());
    Ok(())
}
