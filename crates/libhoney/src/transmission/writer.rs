//! The `Writer` transmission: one JSON line per event to any `io::Write`.

use crate::sync::LockExt;
use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::{Context, QueuedEvent, Responder, Transmission};
use crate::config::NonFiniteFloats;
use crate::encoding::{json, time::write_rfc3339};
use crate::error::{CloseError, ConfigError, FlushError};
use crate::response::{Response, ResponseError, TransportError, TransportErrorKind};

/// Writes each event as one JSON line, synchronously, to any `io::Write`
/// (stderr by default): the counterpart of libhoney-py's `FileTransmission`,
/// for log shippers and agentless forwarders.
///
/// Each line is
/// `{"time":"…","samplerate":N,"dataset":"…","user_agent":"…","data":{…}}`.
/// The dataset and user agent let a forwarder route the event. Sampling works
/// (unlike libhoney-py #60): dropped events get their sampling response like
/// any other. Each written event gets a success response without a status code;
/// a write error gives the event a [`Transport`](crate::ResponseError::Transport) response.
///
/// `send` holds a lock while it writes, so a slow writer slows the sending
/// thread; wrap a file in `io::BufWriter` (flushed by `flush`/`close`). With a
/// buffer, a write error may only appear when the buffer is flushed: it is then
/// logged (warn, target `libhoney`), not reported on each event's response.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use libhoney::{Client, Config, transmission::Writer};
///
/// #[derive(Clone, Default)]
/// struct Shared(Arc<Mutex<Vec<u8>>>);
/// impl std::io::Write for Shared {
///     fn write(&mut self, b: &[u8]) -> std::io::Result<usize> { self.0.lock().unwrap().write(b) }
///     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
/// }
///
/// let out = Shared::default();
/// let client = Client::new(
///     Config::new().api_key("k").dataset("logs").transmission(Writer::new(out.clone())),
/// ).unwrap();
/// let mut ev = client.new_event();
/// ev.add_field("msg", "hello");
/// ev.send().unwrap();
/// client.close().unwrap();
/// let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
/// let line: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
/// assert_eq!(line["dataset"], "logs");
/// assert_eq!(line["data"]["msg"], "hello");
/// ```
pub struct Writer {
    out: Mutex<Box<dyn Write + Send>>,
    state: OnceLock<State>,
    closed: AtomicBool,
}

struct State {
    responder: Responder,
    user_agent: String,
    non_finite: NonFiniteFloats,
}

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer")
            .field("started", &self.state.get().is_some())
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish()
    }
}

impl Default for Writer {
    fn default() -> Self {
        Writer::stderr()
    }
}

impl Writer {
    /// Writes to `out`. Costs one allocation; nothing is written until events
    /// are sent.
    ///
    /// ```
    /// use libhoney::{Client, Config, transmission::Writer};
    /// let out = std::io::BufWriter::new(std::io::sink()); // a File in real use
    /// let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Writer::new(out)))?;
    /// # Ok::<(), libhoney::ConfigError>(())
    /// ```
    pub fn new<W: Write + Send + 'static>(out: W) -> Self {
        Writer {
            out: Mutex::new(Box::new(out)),
            state: OnceLock::new(),
            closed: AtomicBool::new(false),
        }
    }

    /// Writes to the process's standard error (the default, as libhoney-py's
    /// `FileTransmission`). Each line is written whole while stderr is locked.
    pub fn stderr() -> Self {
        Writer::new(io::stderr())
    }

    /// Writes to the process's standard output.
    pub fn stdout() -> Self {
        Writer::new(io::stdout())
    }

    fn line(&self, ev: &QueuedEvent, state: &State) -> Vec<u8> {
        let mut line = Vec::with_capacity(256);
        line.extend_from_slice(b"{\"time\":\"");
        write_rfc3339(&mut line, ev.timestamp);
        line.extend_from_slice(b"\",\"samplerate\":");
        json::write_u64(&mut line, u64::from(ev.sample_rate));
        line.extend_from_slice(b",\"dataset\":");
        json::write_str(&mut line, ev.dataset());
        line.extend_from_slice(b",\"user_agent\":");
        json::write_str(&mut line, &state.user_agent);
        line.extend_from_slice(b",\"data\":");
        json::write_data(&mut line, ev.fields.iter(), state.non_finite);
        line.extend_from_slice(b"}\n");
        line
    }
}

impl Transmission for Writer {
    fn start(&self, ctx: Context) -> Result<(), ConfigError> {
        self.state
            .set(State {
                responder: ctx.responder.clone(),
                user_agent: ctx.config.user_agent(),
                non_finite: ctx.config.non_finite_floats,
            })
            .map_err(|_| ConfigError::TransmissionInUse {
                transmission: "Writer",
            })
    }

    fn send(&self, mut ev: QueuedEvent) {
        let Some(state) = self.state.get() else {
            return;
        };
        let start = Instant::now();
        let metadata = ev.take_metadata();
        if self.closed.load(Ordering::Acquire) {
            state.responder.respond(Response::failure(
                metadata,
                ResponseError::Transport(TransportError::new(
                    TransportErrorKind::Closed,
                    "the Writer transmission is closed",
                )),
            ));
            return;
        }
        let line = self.line(&ev, state);
        let result = self.out.lock_unpoisoned().write_all(&line);
        let response = match result {
            Ok(()) => Response::success(metadata, None, start.elapsed()),
            Err(e) => Response::failure(
                metadata,
                ResponseError::Transport(format!("write failed: {e}").into()),
            ),
        };
        state.responder.respond(response);
    }

    fn flush(&self, _timeout: Duration) -> Result<(), FlushError> {
        if let Err(e) = self.out.lock_unpoisoned().flush() {
            log::warn!(target: "libhoney", "Writer flush failed: {e}");
        }
        Ok(())
    }

    fn close(&self, timeout: Duration) -> Result<(), CloseError> {
        let _ = self.flush(timeout);
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}
