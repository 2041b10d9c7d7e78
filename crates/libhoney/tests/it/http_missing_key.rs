//! A missing API key is loud: `Client::new` warns once, every refused send is
//! counted in the metrics, and a key set on a builder still works. A logger is
//! process-wide, so this module has a single test, alone in a child
//! process (`own_process`, see `main.rs`).

use crate::common;

use std::time::Duration;

use common::LOGS;
use libhoney::{Client, Config, SendError};
use libhoney_receiver::Receiver;
use log::{Level, LevelFilter};

fn warnings() -> Vec<String> {
    LOGS.0
        .lock()
        .unwrap()
        .iter()
        .filter(|(level, target, _)| *level <= Level::Warn && target == "libhoney")
        .map(|(_, _, msg)| msg.clone())
        .collect()
}

#[test]
fn missing_api_key_is_counted_and_warned_once() {
    if !crate::own_process::alone(module_path!(), "missing_api_key_is_counted_and_warned_once") {
        return;
    }
    log::set_logger(&LOGS).unwrap();
    log::set_max_level(LevelFilter::Trace);
    let rx = Receiver::builder().api_key("builder-key").start().unwrap();
    let config = Config::new()
        .read_env(false) // no HONEYCOMB_API_KEY either
        .dataset("no-key")
        .api_host(rx.url())
        .send_frequency(Duration::from_millis(20));
    let client = Client::new(config).unwrap();
    let warned = warnings();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(warned[0].contains("no API key"), "{}", warned[0]);
    assert!(warned[0].contains("HONEYCOMB_API_KEY"), "{}", warned[0]);

    for i in 0..5 {
        let mut ev = client.new_event();
        ev.add_field("i", i);
        assert_eq!(ev.send(), Err(SendError::MissingApiKey));
    }
    let m = client.metrics();
    assert_eq!(m.events_missing_api_key, 5);
    assert_eq!(m.events_queued, 0);

    // A key on a builder is still allowed: that event goes through.
    let mut builder = client.new_builder();
    builder.set_api_key("builder-key");
    let mut ev = builder.new_event();
    ev.add_field("via", "builder");
    ev.send().unwrap();
    client.flush().unwrap();
    assert_eq!(rx.events().len(), 1);
    let m = client.metrics();
    assert_eq!((m.events_missing_api_key, m.events_sent), (5, 1));

    // Still one warning: refused sends are counted, not logged each.
    assert_eq!(warnings().len(), 1, "{:?}", warnings());
    client.close().unwrap();

    // A client with a key does not warn.
    let keyed = Client::new(
        Config::new()
            .read_env(false)
            .api_key("builder-key")
            .dataset("keyed")
            .api_host(rx.url()),
    )
    .unwrap();
    keyed.close().unwrap();
    assert_eq!(warnings().len(), 1, "{:?}", warnings());
}
