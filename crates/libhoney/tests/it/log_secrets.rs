//! No secret in any log line (issue #14, rows 3 and 4), with a logger that
//! captures every record at TRACE for all targets (a logger is
//! process-global: each test runs alone in a child process, `own_process`,
//! see `main.rs`). Real requests go over loopback, plain and
//! TLS, through the default `Http` transmission and `transmission::Tokio`.
//!
//! Row 3: `ureq_proto` hex-dumps each request it writes at TRACE, 16 bytes
//! a line, headers included; the API key must not be readable from the log
//! in any form: not in a line, and not in the bytes the dump spells out
//! when its rows are decoded and joined. Row 4: a password in the API host
//! (`http://user:password@host`) must not show in `Debug` of the config or
//! the "client started" line.

use crate::http_support;

use std::sync::{Mutex, OnceLock};

use http_support::tls::{TlsFront, TEST_CA_PEM};
use http_support::*;
use libhoney::{Client, Config};

static LINES: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let line = record.args().to_string();
        LINES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((record.target().to_owned(), line));
    }
    fn flush(&self) {}
}

fn capture() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        log::set_logger(&Capture).expect("no other logger");
        log::set_max_level(log::LevelFilter::Trace);
    });
}

/// The bytes spelled out by hex-dump lines (`6854 5450 ...  HTTP...`):
/// each line's hex pairs before its text column, joined in order.
fn dumped_bytes(lines: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (_, line) in lines {
        // 16 bytes as 8 groups of 4 hex digits ("--" for none), then text.
        let groups: Vec<&str> = line.split(' ').take(8).collect();
        if groups.len() < 8
            || !groups
                .iter()
                .all(|g| g.len() == 4 && g.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'))
        {
            continue;
        }
        for g in groups {
            for pair in [&g[..2], &g[2..]] {
                if let Ok(b) = u8::from_str_radix(pair, 16) {
                    out.push(b);
                }
            }
        }
    }
    out
}

/// Fails if `secret` can be read back from the captured lines.
fn assert_not_logged(secret: &str) {
    let lines = LINES.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert!(!lines.is_empty(), "the logger captured nothing");
    for (target, line) in &lines {
        assert!(!line.contains(secret), "{target}: {line}");
    }
    let dumped = dumped_bytes(&lines);
    assert!(
        !dumped.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the secret can be read back from a hex dump in the log"
    );
    // Nor split over lines of text.
    let joined: String = lines.iter().map(|(_, l)| l.as_str()).collect();
    assert!(!joined.contains(secret), "the secret spans log lines");
}

/// Sends 5 events through a client of `kind` to `host` (the receiver, or
/// a TLS front of it) and checks they arrived.
async fn deliver(kind: Kind, rx: &libhoney_receiver::RunningReceiver, cfg: Config) {
    let (tally, _) = run(kind, rx, cfg, 5).await;
    assert_eq!(tally.ok.len(), 5, "{:?}", tally.failed);
}

/// A key of each kind's own (each test has a log of its own, but a shared
/// key would hide which transmission logged it).
fn key_for(kind: Kind) -> &'static str {
    match kind {
        Kind::Http => "hcaik_logtest_http_0123456789_SECRETkey",
        #[cfg(feature = "tokio")]
        Kind::Tokio => "hcaik_logtest_tokio_987654321_SECRETkey",
    }
}

async fn key_never_logged(kind: Kind) {
    capture();
    let key = key_for(kind);
    let start = |_: ()| {
        libhoney_receiver::Receiver::builder()
            .api_key(key)
            .start()
            .unwrap()
    };
    let rx = start(());
    deliver(kind, &rx, config(&rx).api_key(key)).await;
    let rx = start(());
    let front = TlsFront::start(rx.addr());
    let cfg = config(&rx)
        .api_key(key)
        .api_host(format!("https://localhost:{}", front.addr.port()))
        .tls_root_certificates_pem(TEST_CA_PEM);
    deliver(kind, &rx, cfg).await;
    // The dump is there to be searched (without it the test proves nothing).
    let lines = LINES.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if matches!(kind, Kind::Http) {
        let dumped = dumped_bytes(&lines);
        assert!(
            dumped.windows(4).any(|w| w == b"POST"),
            "no request hex dump was captured: {} lines",
            lines.len()
        );
    }
    assert_not_logged(key);
}

#[test]
fn key_is_never_logged_at_trace_http() {
    if !crate::own_process::alone(module_path!(), "key_is_never_logged_at_trace_http") {
        return;
    }
    block_on(key_never_logged(Kind::Http));
}

#[cfg(feature = "tokio")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_is_never_logged_at_trace_tokio() {
    if !crate::own_process::alone(module_path!(), "key_is_never_logged_at_trace_tokio") {
        return;
    }
    key_never_logged(Kind::Tokio).await;
}

#[test]
fn a_password_in_the_api_host_is_never_shown() {
    if !crate::own_process::alone(module_path!(), "a_password_in_the_api_host_is_never_shown") {
        return;
    }
    capture();
    let rx = receiver();
    let secret = "pa55-w0rd-in-host";
    let cfg = config(&rx).api_host(format!(
        "http://someone:{secret}@127.0.0.1:{}",
        rx.addr().port()
    ));
    let shown = format!("{cfg:?}");
    assert!(!shown.contains(secret), "{shown}");
    assert!(shown.contains("http://***@127.0.0.1"), "{shown}");
    let client = Client::new(cfg).expect("client");
    let mut ev = client.new_event();
    ev.add_field("id", 1);
    assert!(!format!("{ev:?}").contains(secret));
    ev.send().unwrap();
    client.close().unwrap();
    // A builder's host that is invalid: its error does not repeat the secret.
    let mut b = client.new_builder();
    b.set_api_host(format!("ftp://u:{secret}@h"));
    let mut ev = b.new_event();
    ev.add_field("x", 1);
    let err = ev.send().unwrap_err();
    assert!(!format!("{err} {err:?}").contains(secret), "{err:?}");
    let err = Client::new(Config::new().api_host(format!("ftp://u:{secret}@h"))).unwrap_err();
    assert!(!format!("{err} {err:?}").contains(secret), "{err:?}");
    // The "client started" line was logged, without the secret.
    let lines = LINES.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert!(
        lines.iter().any(|(_, l)| l.starts_with("client started")),
        "no client started line"
    );
    assert_not_logged(secret);
}
