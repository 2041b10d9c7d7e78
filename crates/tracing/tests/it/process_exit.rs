//! The `tracing_demo` example, run in a child process (this binary re-run
//! with `TRACING_EXIT_CHILD` set) against a real receiver: it installs the
//! layer in the global subscriber, which keeps a clone of the client for
//! ever, and returns from `main` with only the client's `close_on_drop`
//! guard to deliver what is queued. Every event must arrive.

#[path = "../../examples/tracing_demo.rs"]
mod demo;

use std::collections::HashSet;
use std::time::Duration;

use libhoney_receiver::Receiver;

use crate::own_process;

/// The child's side: does nothing in a normal test run.
#[test]
fn child() {
    if std::env::var("TRACING_EXIT_CHILD").is_err() {
        return;
    }
    demo::main().unwrap();
}

#[test]
fn returning_from_main_with_the_layer_installed_delivers_every_event() {
    if std::env::var("TRACING_EXIT_CHILD").is_ok() {
        return;
    }
    let rx = Receiver::builder().api_key("exit-key").start().unwrap();
    let url = rx.url();
    let env = [
        ("TRACING_EXIT_CHILD", "1"),
        ("HONEYCOMB_API_KEY", "exit-key"),
        ("HONEYCOMB_API_ENDPOINT", &url),
        ("HONEYCOMB_DATASET", "exit"),
    ];
    let (ok, out) = own_process::run("process_exit::child", &env, Duration::from_secs(60));
    assert!(ok, "{out}");

    // No waiting: the child has exited, whatever it did not deliver is lost.
    let events = rx.events();
    let names: Vec<&str> = events
        .iter()
        .map(|e| e.data["name"].as_str().unwrap())
        .collect();
    // Per request: handle_request, load_prices and check_stock, and the log
    // events "cart loaded", "prices loaded", "low stock" and "calling the
    // payment service". Not sent at the defaults: the log event outside any
    // span, the DEBUG span and its DEBUG event.
    assert_eq!(events.len(), 14, "{names:?}");
    assert!(events.iter().all(|e| e.dataset == "exit"));
    for absent in ["demo finished", "cleanup", "not sent"] {
        assert!(!names.contains(&absent), "{absent}: {names:?}");
    }
    let traces: HashSet<&str> = events
        .iter()
        .map(|e| e.data["trace.trace_id"].as_str().unwrap())
        .collect();
    assert_eq!(traces.len(), 2, "two requests, two traces");
    assert!(traces.contains("4bf92f3577b34da6a3ce929d0e0e4736"));
}
