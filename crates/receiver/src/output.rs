//! Printing accepted events: human lines on stdout, or JSON lines to a file.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;

use crate::state::lock;
use crate::{Print, ReceivedEvent};

/// Where accepted events are printed (one or more sinks).
pub(crate) struct Output {
    sinks: Vec<Sink>,
}

enum Sink {
    Pretty,
    JsonLines(Mutex<BufWriter<File>>),
}

impl Output {
    /// Opens the sinks; `None` when there is nothing to print.
    pub(crate) fn open(prints: &[Print]) -> io::Result<Option<Output>> {
        let mut sinks = Vec::new();
        for p in prints {
            match p {
                Print::None => {}
                Print::Pretty => sinks.push(Sink::Pretty),
                Print::JsonLines(path) => sinks.push(Sink::json_lines(path)?),
            }
        }
        Ok((!sinks.is_empty()).then_some(Output { sinks }))
    }

    pub(crate) fn write(&self, events: &[ReceivedEvent]) {
        for s in &self.sinks {
            s.write(events);
        }
    }
}

impl Sink {
    fn json_lines(path: &Path) -> io::Result<Sink> {
        let f = File::create(path)?;
        Ok(Sink::JsonLines(Mutex::new(BufWriter::new(f))))
    }

    /// Writes the events of one request and flushes, so readers see whole
    /// requests. Output errors (closed stdout, full disk) are ignored: they
    /// must not change what the receiver answers.
    fn write(&self, events: &[ReceivedEvent]) {
        if events.is_empty() {
            return;
        }
        let mut buf = String::with_capacity(events.len() * 128);
        for ev in events {
            match self {
                Sink::Pretty => pretty_line(&mut buf, ev),
                Sink::JsonLines(_) => json_line(&mut buf, ev),
            }
        }
        match self {
            Sink::Pretty => {
                let mut out = io::stdout().lock();
                let _ = out.write_all(buf.as_bytes());
                let _ = out.flush();
            }
            Sink::JsonLines(w) => {
                let mut w = lock(w);
                let _ = w.write_all(buf.as_bytes());
                let _ = w.flush();
            }
        }
    }
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\""))
}

fn data_json(ev: &ReceivedEvent) -> String {
    serde_json::to_string(&ev.data).unwrap_or_else(|_| String::from("{}"))
}

/// `dataset="ds" time=… samplerate=N {…data…}`
fn pretty_line(buf: &mut String, ev: &ReceivedEvent) {
    buf.push_str("dataset=");
    buf.push_str(&json_str(&ev.dataset));
    buf.push_str(" time=");
    buf.push_str(ev.time.as_deref().unwrap_or("-"));
    buf.push_str(" samplerate=");
    buf.push_str(&ev.samplerate.unwrap_or(1).to_string());
    buf.push(' ');
    buf.push_str(&data_json(ev));
    buf.push('\n');
}

/// The libhoney-go `WriterSender` line format:
/// `{"data":{…},"samplerate":N,"time":"…","dataset":"…"}` (samplerate and
/// time omitted when absent).
fn json_line(buf: &mut String, ev: &ReceivedEvent) {
    buf.push_str("{\"data\":");
    buf.push_str(&data_json(ev));
    if let Some(sr) = ev.samplerate {
        buf.push_str(",\"samplerate\":");
        buf.push_str(&sr.to_string());
    }
    if let Some(t) = &ev.time {
        buf.push_str(",\"time\":");
        buf.push_str(&json_str(t));
    }
    buf.push_str(",\"dataset\":");
    buf.push_str(&json_str(&ev.dataset));
    buf.push_str("}\n");
}
