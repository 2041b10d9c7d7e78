//! What happens to events sent just before the process exits, tested in real
//! child processes (this test binary re-run with a filter and an environment
//! variable that make `child` do the sending).

use std::time::{Duration, Instant};

use crate::own_process;

use libhoney::Config;
use libhoney_receiver::Receiver;

const KEY: &str = "exit-test-key";
const EVENTS: u64 = 300;

/// The child's side: does nothing in a normal test run.
#[test]
fn child() {
    let (Ok(url), Ok(mode)) = (
        std::env::var("EXIT_TEST_URL"),
        std::env::var("EXIT_TEST_MODE"),
    ) else {
        return;
    };
    // A long send_frequency: without a close, nothing would go before exit.
    let config = Config::new()
        .read_env(false)
        .api_key(KEY)
        .dataset(mode.clone())
        .api_host(url)
        .send_frequency(Duration::from_secs(3600));
    let send = |client: &libhoney::Client| {
        for i in 0..EVENTS {
            let mut ev = client.new_event();
            ev.add_field("i", i);
            ev.send().unwrap();
        }
    };
    match mode.as_str() {
        // The last handle of a client dropped at the end of main.
        "local-client" => {
            let client = libhoney::Client::new(config).unwrap();
            send(&client);
        }
        // The default client with the guard init returns.
        "global-guard" => {
            let guard = libhoney::init(config).unwrap();
            send(&guard.client().unwrap());
        }
        // A clone kept for ever (as a layer in a global subscriber keeps
        // one) would stop "close on last drop"; the client's guard closes it.
        "held-clone-guard" => {
            let client = libhoney::Client::new(config).unwrap();
            let _guard = client.close_on_drop();
            std::mem::forget(client.clone());
            send(&client);
        }
        // The default client and no close: the process still exits at once.
        "global-no-close" => {
            let client = libhoney::init(config).unwrap().into_client().unwrap();
            send(&client);
        }
        other => panic!("unknown mode {other}"),
    }
}

fn run_child(url: &str, mode: &str) -> (bool, Duration) {
    let start = Instant::now();
    let env = [("EXIT_TEST_URL", url), ("EXIT_TEST_MODE", mode)];
    let (ok, _) = own_process::run("http_process_exit::child", &env, Duration::from_secs(60));
    (ok, start.elapsed())
}

#[test]
fn events_sent_just_before_exit() {
    if std::env::var("EXIT_TEST_MODE").is_ok() {
        return; // inside a child
    }
    let rx = Receiver::builder().api_key(KEY).start().unwrap();
    for mode in ["local-client", "global-guard", "held-clone-guard"] {
        let (ok, _) = run_child(&rx.url(), mode);
        assert!(ok, "the {mode} child failed");
        let got = rx.events().iter().filter(|e| e.dataset == mode).count() as u64;
        assert_eq!(got, EVENTS, "{mode}: events delivered before exit");
    }
    // Without a close, queued events are lost (documented), but the process
    // neither hangs nor panics at exit.
    let (ok, took) = run_child(&rx.url(), "global-no-close");
    assert!(ok, "the global-no-close child failed");
    assert!(took < Duration::from_secs(30), "exit took {took:?}");
    // (300 events fill no batch and the hour never passes: none went out,
    // which is what the two modes above are tested against.)
    let lost = rx
        .events()
        .iter()
        .filter(|e| e.dataset == "global-no-close")
        .count();
    assert_eq!(lost, 0);
}
