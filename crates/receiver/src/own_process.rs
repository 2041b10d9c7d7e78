//! Runs one test in a child process of this test binary, alone, for tests
//! that change process-global state (a logger, the environment, a global
//! subscriber). Support for this workspace's integration tests (the SDK's,
//! `libhoney-tower`'s and `libhoney-tracing`'s `tests/it/`, which all
//! dev-depend on this crate); not part of the receiver's API.
//!
//! A test starts with `if !own_process::alone(module_path!(), "name") { return; }`.
//! In the normal run, `alone` re-runs this binary with
//! `--exact <module>::<name> --test-threads 1 --nocapture` and
//! `LIBHONEY_IT_OWN_PROCESS=<module>::<name>` in the child's environment,
//! waits for it (at most [`LIMIT`]), checks that it ran exactly that one
//! test and that it passed, and returns `false`; the parent's own copy of
//! the test then does nothing else. In the child, `alone` returns `true`
//! and the test's body runs, with nothing else in its process to disturb
//! or be disturbed by.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The variable that marks a child (its value names the test it runs).
const MARKER: &str = "LIBHONEY_IT_OWN_PROCESS";

/// How long a child may take before it is killed and the test fails.
pub const LIMIT: Duration = Duration::from_secs(300);

/// `true` in the child that runs the test `name` of `module` (pass
/// `module_path!()`): run the body. `false` in the parent, once that child
/// has passed (it panics if the child failed): return.
pub fn alone(module: &str, name: &str) -> bool {
    // module_path!() starts with this test crate's name ("it::").
    let module = module.split_once("::").map_or("", |(_, m)| m);
    let test = if module.is_empty() {
        name.to_owned()
    } else {
        format!("{module}::{name}")
    };
    if std::env::var(MARKER).as_deref() == Ok(test.as_str()) {
        return true;
    }
    let (ok, out) = run(&test, &[], LIMIT);
    // A renamed test would otherwise match nothing and "pass".
    assert!(
        ok && out.contains("test result: ok. 1 passed"),
        "{test} in a child process failed:\n{out}"
    );
    print!("{out}");
    false
}

/// Runs `test` (its full name) alone in a child process of this binary, with
/// `env` added to its environment; whether it exited successfully, and its
/// stdout and stderr. Kills it and panics if it runs longer than `limit`.
pub fn run(test: &str, env: &[(&str, &str)], limit: Duration) -> (bool, String) {
    let mut child = Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", test, "--test-threads", "1", "--nocapture"])
        .env(MARKER, test)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the test binary starts");
    // Read both pipes on their own threads, so that a full pipe never blocks the child.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{test} in a child process took more than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = format!(
        "{}{}",
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default()
    );
    (status.success(), out)
}
