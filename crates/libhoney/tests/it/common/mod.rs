//! Helpers shared by the core (in-memory transmission) tests.

use std::io;
use std::sync::{Arc, Mutex};

use libhoney::transmission::Mock;
use libhoney::{Client, Config};
use log::{Level, Log, Metadata, Record};

/// A `log` logger that keeps every record (level, target, message). A
/// logger is process-wide: a test that installs it (`log::set_logger(&LOGS)`)
/// runs alone in a child process (`own_process`).
pub struct Capture(pub Mutex<Vec<(Level, String, String)>>);

impl Log for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &Record<'_>) {
        self.0.lock().unwrap().push((
            record.level(),
            record.target().to_string(),
            record.args().to_string(),
        ));
    }
    fn flush(&self) {}
}

/// The capturing logger of a test alone in its process.
pub static LOGS: Capture = Capture(Mutex::new(Vec::new()));

/// A recognisable environment (non-classic) API key: tests assert it never
/// appears in Debug output or logs.
pub const SECRET_KEY: &str = "hcaik_SUPERSECRET0123456789abcdefTOPSECRET42";

/// A classic (32 lowercase hex) key.
pub const CLASSIC_KEY: &str = "c1a551c000d68f9ed1e96432ac1a3380";

/// A configuration that never reads the environment, with a key and dataset.
pub fn base() -> Config {
    Config::new()
        .read_env(false)
        .api_key(SECRET_KEY)
        .dataset("core-tests")
}

/// A client over a fresh Mock, and the Mock.
pub fn mock_client(config: Config) -> (Client, Mock) {
    let mock = Mock::new();
    let client = Client::new(config.transmission(mock.clone())).expect("valid config");
    (client, mock)
}

/// An `io::Write` into shared memory, so a test can read what a Writer wrote.
#[derive(Clone, Default)]
pub struct SharedBuf(pub Arc<Mutex<Vec<u8>>>);

impl SharedBuf {
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).expect("utf-8 output")
    }

    /// Every line, parsed as JSON (panics on an invalid line).
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.text()
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("invalid JSON line {l:?}: {e}"))
            })
            .collect()
    }
}

impl io::Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An `io::Write` that always fails.
pub struct FailingWriter;

impl io::Write for FailingWriter {
    fn write(&mut self, _buf: &[u8]) -> io::Result<usize> {
        Err(io::Error::other("disk on fire"))
    }
    fn flush(&mut self) -> io::Result<()> {
        Err(io::Error::other("disk on fire"))
    }
}
