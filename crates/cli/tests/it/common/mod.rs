//! Helpers: run the built `honey` binary against an in-process receiver on
//! 127.0.0.1 (port 0), with the `HONEYCOMB_*` environment cleared.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use libhoney_receiver::{Receiver, RunningReceiver};

pub const KEY: &str = "test-key";

/// `honey` with a clean environment.
pub fn honey() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_honey"));
    for v in [
        "HONEYCOMB_API_KEY",
        "HONEYCOMB_WRITEKEY",
        "HONEYCOMB_DATASET",
        "HONEYCOMB_API_ENDPOINT",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        c.env_remove(v);
    }
    c.stdin(Stdio::null());
    c
}

/// `honey SUBCOMMAND --api-host RX --api-key KEY --dataset DS`.
pub fn honey_to(rx: &RunningReceiver, sub: &str, dataset: &str) -> Command {
    let mut c = honey();
    c.args([
        sub,
        "--api-host",
        &rx.api_host(),
        "--api-key",
        KEY,
        "--dataset",
        dataset,
    ]);
    c
}

/// A recording receiver that accepts only [`KEY`].
pub fn receiver() -> RunningReceiver {
    Receiver::builder()
        .api_key(KEY)
        .start()
        .expect("receiver starts")
}

/// Runs to completion with a time limit.
pub fn run(mut c: Command, timeout: Duration) -> Output {
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = c.spawn().expect("honey starts");
    wait_output(child, timeout)
}

/// Runs to completion with `input` on its standard input, with a time limit.
pub fn run_with_input(mut c: Command, input: &[u8], timeout: Duration) -> Output {
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("honey starts");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(input)
        .expect("stdin written");
    wait_output(child, timeout)
}

/// Waits for a child with a time limit (killed and panics past it).
pub fn wait_output(mut child: Child, timeout: Duration) -> Output {
    let deadline = Instant::now() + timeout;
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "honey did not finish within {timeout:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Asserts that `honey` exited with 0, showing its stderr if not.
#[track_caller]
pub fn assert_success(o: &Output) {
    assert_eq!(o.status.code(), Some(0), "{}", stderr(o));
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A running `honey` that is killed if the test ends (or panics) before
/// [`finish`](Running::finish), so a failed test leaves no process behind.
pub struct Running(Option<Child>);

impl Running {
    pub fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("running")
    }
    /// Waits for it to exit, at most `timeout`.
    pub fn finish(mut self, timeout: Duration) -> Output {
        wait_output(self.0.take().expect("running"), timeout)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts `honey` with stdout and stderr captured.
pub fn spawn(mut c: Command) -> Running {
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    Running(Some(c.spawn().expect("honey starts")))
}

/// Sends SIGTERM with the system's `kill` (no libc dependency in tests).
pub fn sigterm(child: &mut Running) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.child().id().to_string()])
        .status()
        .expect("kill runs")
        .success();
    assert!(ok, "kill -TERM failed");
}

/// A fresh directory for one test.
pub fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("honey-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("tempdir");
    d
}

/// How many times each `seq` value arrived.
pub fn seq_counts(rx: &RunningReceiver) -> BTreeMap<u64, usize> {
    let mut m = BTreeMap::new();
    for e in rx.events() {
        let s = e
            .data
            .get("seq")
            .and_then(|v| v.as_u64())
            .expect("seq field");
        *m.entry(s).or_default() += 1;
    }
    m
}

/// Appends text to a file.
pub fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open for append");
    f.write_all(text.as_bytes()).expect("append");
}

/// JSON lines `{"seq":N}` for N in the range.
pub fn seq_lines(r: std::ops::Range<u64>) -> String {
    r.map(|i| format!("{{\"seq\":{i}}}\n")).collect()
}

/// Waits until the receiver has at least `n` events, or panics.
pub fn expect_events(rx: &RunningReceiver, n: usize, what: &str) {
    assert!(
        rx.wait_for_events(n, Duration::from_secs(10)),
        "{what}: expected {n} events, have {}",
        rx.events().len()
    );
}
