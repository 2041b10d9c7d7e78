//! Shared by the examples: where to send events.
//!
//! With `HONEYCOMB_API_KEY` set, events go to Honeycomb (or to
//! `HONEYCOMB_API_ENDPOINT`). Without it, a local Honeycomb-compatible receiver
//! is started on 127.0.0.1 and prints each event it accepts, so every example
//! runs without an account.

use libhoney::Config;
use libhoney_receiver::{Print, Receiver, RunningReceiver};

/// A configuration for `dataset`, and the local receiver if one was started
/// (keep it alive until the client is closed).
pub fn config(dataset: &str) -> std::io::Result<(Config, Option<RunningReceiver>)> {
    if std::env::var("HONEYCOMB_API_KEY").is_ok_and(|k| !k.trim().is_empty()) {
        let mut config = Config::new();
        if std::env::var("HONEYCOMB_DATASET").is_err() {
            config = config.dataset(dataset);
        }
        eprintln!("sending to Honeycomb (HONEYCOMB_API_KEY is set)");
        return Ok((config, None));
    }
    let receiver = Receiver::builder()
        .api_key("local-demo-key")
        .print(Print::Pretty)
        .start()?;
    eprintln!(
        "HONEYCOMB_API_KEY is not set: sending to a local receiver at {}",
        receiver.url()
    );
    let config = Config::new()
        .read_env(false)
        .api_key("local-demo-key")
        .dataset(dataset)
        .api_host(receiver.url());
    Ok((config, Some(receiver)))
}

/// Prints one response per line.
#[allow(dead_code)]
pub fn print_response(r: &libhoney::Response) {
    let id = r
        .metadata
        .as_ref()
        .map(|m| format!("{m:?}"))
        .unwrap_or_else(|| "-".into());
    match &r.error {
        None => println!(
            "response: {id} delivered (status {:?}, {:?})",
            r.status_code, r.duration
        ),
        Some(e) => println!("response: {id} not delivered: {e}"),
    }
}
