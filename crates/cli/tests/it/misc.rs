//! `honey check`, `honey receive`, completions and help.
use crate::common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::*;

const T: Duration = Duration::from_secs(30);

#[test]
fn check_prints_team_and_environment() {
    let rx = libhoney_receiver::Receiver::builder()
        .api_key(KEY)
        .auth_slugs("acme", "production")
        .start()
        .unwrap();
    let mut c = honey();
    c.args(["check", "--api-host", &rx.api_host(), "--api-key", KEY]);
    let out = run(c, T);
    assert_success(&out);
    let text = stdout(&out);
    assert!(text.contains("team: acme"), "{text}");
    assert!(text.contains("environment: production"), "{text}");
    assert!(!text.contains(KEY), "the key must not be printed");

    // From the environment, and refused.
    let mut c = honey();
    c.env("HONEYCOMB_API_KEY", "nope")
        .env("HONEYCOMB_API_ENDPOINT", rx.api_host())
        .arg("check");
    let out = run(c, T);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("unknown API key"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("nope"));

    // No key: configuration error. Unreachable host: configuration error.
    let mut c = honey();
    c.args(["check", "--api-host", &rx.api_host()]);
    assert_eq!(run(c, T).status.code(), Some(3));
    let addr = rx.addr();
    drop(rx);
    let mut c = honey();
    c.args([
        "check",
        "--api-host",
        &format!("http://{addr}"),
        "-k",
        KEY,
        "--timeout",
        "2s",
    ]);
    let out = run(c, T);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot reach"), "{}", stderr(&out));
}

#[test]
fn receive_serves_send_and_stops_on_sigterm() {
    let mut c = honey();
    c.args(["receive", "--listen", "127.0.0.1:0", "--api-key", KEY])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = spawn(c);
    let mut out = BufReader::new(child.child().stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let url = first
        .trim()
        .strip_prefix("listening on ")
        .expect("listening line")
        .to_owned();

    let mut s = honey();
    s.args([
        "send",
        "--api-host",
        &url,
        "-k",
        KEY,
        "-d",
        "rcv",
        "hello=world",
    ]);
    let sent = run(s, T);
    assert_success(&sent);
    // The receiver prints the event (pretty, one line per event).
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.contains("rcv") && line.contains("hello"), "{line}");

    sigterm(&mut child);
    let rest = child.finish(T);
    assert_success(&rest);
    let err = stderr(&rest);
    assert!(err.contains("\"events_accepted\":1"), "{err}");
}

#[test]
fn completions_and_help_with_examples() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let mut c = honey();
        c.args(["completions", shell]);
        let out = run(c, T);
        assert_success(&out);
        let text = stdout(&out);
        assert!(
            text.contains("honey") && text.contains("backfill"),
            "{shell}"
        );
    }
    for sub in ["send", "tail", "receive", "check", "completions"] {
        let mut c = honey();
        c.args([sub, "--help"]);
        let out = run(c, T);
        assert_success(&out);
        assert!(
            stdout(&out).contains("Examples:"),
            "{sub} --help has no examples"
        );
    }
    let mut c = honey();
    c.arg("--version");
    assert!(stdout(&run(c, T)).starts_with("honey "));
    let mut c = honey();
    c.arg("nonsense");
    assert_eq!(run(c, T).status.code(), Some(2));
}
