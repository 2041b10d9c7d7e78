//! Library logs go through the `log` facade with target "libhoney", never
//! contain the API key, and stay below warn level in normal use. A logger is
//! process-wide, so this module has a single test, alone in a child
//! process (`own_process`, see `main.rs`).

use crate::common;

use std::collections::BTreeMap;

use common::{base, mock_client, FailingWriter, SharedBuf, LOGS, SECRET_KEY};
use libhoney::transmission::{Discard, Writer};
use libhoney::{Client, Config};
use log::{Level, LevelFilter};

fn take() -> Vec<(Level, String, String)> {
    std::mem::take(&mut *LOGS.0.lock().unwrap())
}

fn assert_no_key(logs: &[(Level, String, String)]) {
    let head = &SECRET_KEY[..SECRET_KEY.len() - 4];
    for (level, target, msg) in logs {
        assert!(
            !msg.contains(head),
            "a {level} log of {target} shows the key: {msg}"
        );
    }
}

fn normal_use() {
    let (client, mock) = mock_client(base().sample_rate(2));
    client.add_field("service.name", "svc");
    client.add_dynamic_field("n", || 1);
    let mut b = client.new_builder();
    b.add_field("component", "db").set_dataset("db");
    for i in 0..200u64 {
        let mut ev = b.new_event();
        ev.add_field("i", i).add_metadata(i);
        ev.send().unwrap();
    }
    client.flush().unwrap();
    let _ = client.responses().try_iter().count();
    client.close().unwrap();
    assert!(!mock.is_empty());

    let out = SharedBuf::default();
    let client = Client::new(base().transmission(Writer::new(out.clone()))).unwrap();
    let mut ev = client.new_event();
    ev.add_field("nan", f64::NAN);
    ev.send().unwrap();
    drop(client); // closed by drop

    let _guard = libhoney::init(base().transmission(Discard::new())).unwrap();
    let mut ev = libhoney::new_event().unwrap();
    ev.add_field("x", 1);
    ev.send().unwrap();
    libhoney::flush().unwrap();
    libhoney::close().unwrap();
}

#[test]
fn logs_are_safe_and_quiet() {
    if !crate::own_process::alone(module_path!(), "logs_are_safe_and_quiet") {
        return;
    }
    log::set_logger(&LOGS).unwrap();
    log::set_max_level(LevelFilter::Trace);

    // Normal use logs at debug/trace only, through target "libhoney".
    normal_use();
    let logs = take();
    assert!(
        !logs.is_empty(),
        "client start and close are logged at debug"
    );
    assert_no_key(&logs);
    for (level, target, msg) in &logs {
        assert_eq!(target, "libhoney", "{msg}");
        assert!(*level >= Level::Debug, "{level} in normal use: {msg}");
    }

    // Problems worth a warning are warned about, still without the key.
    let (_client, _mock) = mock_client(
        Config::new()
            .read_env(false)
            .api_key(SECRET_KEY)
            .dataset("  padded  "),
    );
    let (_client, _mock) = mock_client(Config::new().read_env(false).api_key(SECRET_KEY));
    let failing = Client::new(base().transmission(Writer::new(FailingWriter))).unwrap();
    let mut ev = failing.new_event();
    ev.add_field("x", 1);
    ev.send().unwrap(); // the write error is the event's response
    failing.flush().unwrap();
    let _ = failing.close();
    // A custom configuration error path, too.
    let _ = Client::new(base().api_host("nope").transmission(Discard::new()));
    let logs = take();
    assert_no_key(&logs);
    let warnings: BTreeMap<_, _> = logs
        .iter()
        .filter(|(l, _, _)| *l <= Level::Warn)
        .map(|(_, t, m)| (m.clone(), t.clone()))
        .collect();
    assert!(
        warnings.keys().any(|m| m.contains("whitespace")),
        "{warnings:?}"
    );
    assert!(
        warnings.keys().any(|m| m.contains("unknown_dataset")),
        "{warnings:?}"
    );
    assert!(warnings.keys().any(|m| m.contains("flush")), "{warnings:?}");
    assert!(warnings.values().all(|t| t == "libhoney"));
    assert!(logs.iter().all(|(l, _, _)| *l != Level::Error));
}
