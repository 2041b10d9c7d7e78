//! Printing (pretty and JSON lines) and the `libhoney-receiver` binary.

use crate::common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use libhoney_receiver::{Print, Receiver};
use serde_json::{json, Value};

fn temp_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("libhoney-receiver-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn json_lines_output() {
    let path = temp_path("events.jsonl");
    let rx = Receiver::builder()
        .record(false)
        .print(Print::JsonLines(path.clone()))
        .start()
        .unwrap();
    let r = post(
        rx.addr(),
        "/1/batch/my%20ds",
        &[KEY],
        br#"[{"data":{"a":1},"time":"2024-05-01T10:11:12Z","samplerate":3},{"data":"bad"},{"data":{"b":"x"}}]"#,
    );
    assert_eq!(r.statuses(), vec![202, 400, 202]);
    post(rx.addr(), "/1/events/single", &[KEY], br#"{"c":true}"#);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(
        lines[0],
        r#"{"data":{"a":1},"samplerate":3,"time":"2024-05-01T10:11:12Z","dataset":"my ds"}"#
    );
    let parsed: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(parsed[1], json!({"data":{"b":"x"},"dataset":"my ds"}));
    assert_eq!(parsed[2], json!({"data":{"c":true},"dataset":"single"}));
    // Printing does not imply recording.
    assert!(rx.events().is_empty());
    drop(rx);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn json_lines_file_errors_are_reported_at_start() {
    let err = Receiver::builder()
        .print(Print::JsonLines("/nonexistent-dir/x/events.jsonl".into()))
        .start()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
}

struct Bin {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    addr: SocketAddr,
}

impl Bin {
    fn start(args: &[&str]) -> Bin {
        let mut child = Command::new(env!("CARGO_BIN_EXE_libhoney-receiver"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in stdout.lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let first = lines.recv_timeout(Duration::from_secs(10)).unwrap();
        let url = first
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("first line: {first}"));
        Bin {
            child,
            lines,
            addr: url.parse().unwrap(),
        }
    }

    fn line(&self) -> String {
        self.lines.recv_timeout(Duration::from_secs(5)).unwrap()
    }

    fn terminate(&mut self, signal: &str) -> (std::process::ExitStatus, String) {
        let ok = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let t0 = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut err = String::new();
                std::io::Read::read_to_string(self.child.stderr.as_mut().unwrap(), &mut err)
                    .unwrap();
                return (status, err);
            }
            assert!(t0.elapsed() < Duration::from_secs(10), "did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn binary_prints_pretty_lines_and_exits_on_sigterm() {
    let mut bin = Bin::start(&["--api-key", "k1", "--track-unique", "seq"]);
    let r = post(
        bin.addr,
        "/1/batch/pretty%20ds",
        &[("X-Honeycomb-Team", "k1")],
        br#"[{"data":{"seq":1,"s":"x"},"time":"2024-05-01T10:11:12Z","samplerate":2},{"data":{"seq":1}}]"#,
    );
    assert_eq!(r.statuses(), vec![202, 202]);
    assert_eq!(
        bin.line(),
        r#"dataset="pretty ds" time=2024-05-01T10:11:12Z samplerate=2 {"s":"x","seq":1}"#
    );
    assert_eq!(
        bin.line(),
        r#"dataset="pretty ds" time=- samplerate=1 {"seq":1}"#
    );
    assert_eq!(post(bin.addr, "/1/batch/x", &[KEY], b"[]").status, 401);
    let stats = get(bin.addr, "/_receiver/stats", &[]).json();
    assert_eq!(stats["events_accepted"], 2);
    assert_eq!(stats["distinct_tracked"], 1);
    assert_eq!(stats["duplicate_tracked"], 1);
    assert_eq!(stats["requests"], 2);
    assert_eq!(
        request(bin.addr, "POST", "/_receiver/reset", &[], b"").status,
        200
    );
    let stats = get(bin.addr, "/_receiver/stats", &[]).json();
    assert_eq!(stats["events_accepted"], 0);
    let (status, err) = bin.terminate("-TERM");
    assert!(status.success(), "{status:?} {err}");
    assert!(err.contains("stopped"), "{err}");
}

#[test]
fn binary_quiet_jsonl_and_sigint() {
    let path = temp_path("bin.jsonl");
    let p = path.to_str().unwrap().to_owned();
    let mut bin = Bin::start(&["--quiet", "--jsonl", &p, "--threads", "1"]);
    let r = post(
        bin.addr,
        "/1/batch/j",
        &[KEY, ("Content-Encoding", "zstd")],
        &zstd(&batch_json(0, 3)),
    );
    assert_eq!(r.statuses(), vec![202; 3]);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 3);
    assert_eq!(
        text.lines().next().unwrap(),
        r#"{"data":{"name":"ev","seq":0},"dataset":"j"}"#
    );
    let (status, _) = bin.terminate("-INT");
    assert!(status.success());
    // Nothing but the first line on stdout in quiet mode.
    let rest: Vec<String> = bin.lines.iter().collect();
    assert!(rest.is_empty(), "{rest:?}");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn binary_path_prefix() {
    let mut bin = Bin::start(&["--quiet", "--path-prefix", "/prefix/"]);
    let r = post(bin.addr, "/prefix/1/batch/pp", &[KEY], &batch_json(0, 2));
    assert_eq!(r.statuses(), vec![202, 202]);
    assert_eq!(
        post(bin.addr, "/1/batch/pp", &[KEY], &batch_json(0, 1)).status,
        404
    );
    let stats = get(bin.addr, "/_receiver/stats", &[]).json();
    assert_eq!(stats["events_accepted"], 2);
    let (status, err) = bin.terminate("-TERM");
    assert!(status.success(), "{status:?} {err}");
    assert!(
        err.contains(&format!("API host http://{}/prefix\n", bin.addr)),
        "{err}"
    );
    // A prefix that cannot match a request path is refused.
    let out = Command::new(env!("CARGO_BIN_EXE_libhoney-receiver"))
        .args(["--listen", "127.0.0.1:0", "--path-prefix", "/a b"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid path prefix"),
        "{out:?}"
    );
}

#[test]
fn binary_rejects_bad_arguments() {
    let out = Command::new(env!("CARGO_BIN_EXE_libhoney-receiver"))
        .arg("--bogus")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown argument"));
    let out = Command::new(env!("CARGO_BIN_EXE_libhoney-receiver"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--listen"));
    let out = Command::new(env!("CARGO_BIN_EXE_libhoney-receiver"))
        .args(["--listen", "not-an-address"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}
