//! `libhoney-bench floor`: the work no delivery can skip, on one thread.
//!
//! Every event is built through the public API (`new_event`, the shape's ten
//! `add_field`s, `send`) and handed to a transmission that encodes it at once
//! with the SDK's encoder, straight into the batch body (as `send` encodes by
//! default, minus the copy into the body), and drops it; every
//! `max_batch_size` events it compresses the body with a zstd context kept
//! between batches (as the batcher keeps one) and answers each event with a
//! success response, which the same thread reads back.
//!
//! What it leaves out is everything a real delivery adds to that: the
//! hand-over to another thread and the crossing of the cores it means, HTTP
//! and the kernel's loopback TCP, parsing the server's answer, and the
//! threads' wake-ups. So its CPU per event is a floor for this SDK's event
//! model, encoder and zstd settings: the end-to-end figure can approach it,
//! not beat it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use libhoney::transmission::{Context, QueuedEvent, Transmission};
use libhoney::{Client, CloseError, Config, ConfigError, FlushError, Metadata, Response};
use serde_json::json;

use crate::{procstat, shape, Opts};

/// The floor's transmission: its state is made in `start`, from the client's
/// resolved configuration.
#[derive(Default)]
struct Floor {
    state: Mutex<Option<State>>,
}

struct State {
    ctx: Context,
    body: libhoney::__bench::Body,
    /// The metadata of each event in the body, for its response.
    metadata: Vec<Option<Metadata>>,
    batch: usize,
    compressor: libhoney::__bench::Compressor,
    bytes_in: u64,
    bytes_out: u64,
    batches: u64,
}

impl State {
    /// Compresses and answers the body's events.
    fn ship(&mut self) {
        if self.body.count() == 0 {
            return;
        }
        let compressor = &mut self.compressor;
        let (len, compressed) = self.body.ship(|b| (b.len(), compressor.compressed_len(b)));
        self.bytes_in += len as u64;
        self.bytes_out += compressed as u64;
        self.batches += 1;
        let responses = self
            .metadata
            .drain(..)
            .map(|m| Response::success(m, Some(202), Duration::ZERO))
            .collect();
        self.ctx.responder().respond_all(responses);
    }
}

impl Floor {
    /// Runs `f` on the state, once `start` has made it.
    fn with(&self, f: impl FnOnce(&mut State)) {
        if let Some(s) = self
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            f(s);
        }
    }
}

impl Transmission for Floor {
    fn start(&self, ctx: Context) -> Result<(), ConfigError> {
        let c = ctx.config();
        let batch = c.settings().max_batch_size().max(1);
        let state = State {
            body: libhoney::__bench::Body::new(c.settings().encoding()),
            metadata: Vec::with_capacity(batch),
            batch,
            compressor: libhoney::__bench::Compressor::new(
                c.settings().compression(),
                c.settings().compression_level(),
            ),
            bytes_in: 0,
            bytes_out: 0,
            batches: 0,
            ctx,
        };
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = Some(state);
        Ok(())
    }

    fn send(&self, mut event: QueuedEvent) {
        self.with(|s| {
            s.body.push(&event);
            s.metadata.push(event.take_metadata());
            drop(event);
            if s.body.count() >= s.batch {
                s.ship();
            }
        });
    }

    fn flush(&self, _timeout: Duration) -> Result<(), FlushError> {
        self.with(State::ship);
        Ok(())
    }

    fn close(&self, _timeout: Duration) -> Result<(), CloseError> {
        self.with(State::ship);
        Ok(())
    }
}

/// Runs the floor measurement and prints one JSON line; 1 unless every
/// event was answered with a success.
pub fn floor(o: &Opts) -> i32 {
    match measure(o) {
        Ok(line) => {
            println!("{line}");
            i32::from(line["delivered"].as_u64() != Some(o.events))
        }
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

/// The floor measurement, as the JSON line `floor` prints.
fn measure(o: &Opts) -> Result<serde_json::Value, libhoney::ConfigError> {
    let (encoding, compression) = crate::encoding_and_compression(o);
    let tx = std::sync::Arc::new(Floor::default());
    let mut config = Config::new()
        .read_env(false)
        .api_key(o.api_key.clone())
        .dataset(o.dataset.clone())
        .encoding(encoding)
        .compression(compression)
        .block_on_response(true)
        .transmission_arc(tx.clone());
    if let Some(n) = o.batch_size {
        config = config.max_batch_size(n);
    }
    if let Some(l) = o.compression_level {
        config = config.compression_level(l);
    }
    let client = Client::new(config)?;
    let responses = client.responses();
    let n = o.events;
    let (mut delivered, mut failed) = (0u64, 0u64);
    let mut count = |r: Response| {
        if r.is_success() {
            delivered += 1;
        } else {
            failed += 1;
        }
    };
    let cpu0 = procstat::cpu_seconds();
    let start = Instant::now();
    for i in 0..n {
        let mut ev = client.new_event();
        shape::fill(&mut ev, i);
        ev.send().expect("send");
        // Responses arrive a batch at a time, inside the `send` that fills it.
        if i % 64 == 0 {
            responses.try_iter().for_each(&mut count);
        }
    }
    let _ = client.flush();
    responses.try_iter().for_each(&mut count);
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = procstat::cpu_seconds() - cpu0;
    let _ = client.close();
    let (mut bytes_in, mut bytes_out, mut batches) = (0, 0, 0);
    tx.with(|s| (bytes_in, bytes_out, batches) = (s.bytes_in, s.bytes_out, s.batches));
    let line = json!({
        "sdk": "libhoney-rust (this), floor: one thread, no hand-over, no HTTP",
        "events": n,
        "encoding": o.encoding,
        "compression": o.compression,
        "elapsed_s": elapsed,
        "delivered": delivered,
        "failed": failed,
        "cpu_s": cpu,
        "cpu_us_per_event": cpu * 1e6 / n.max(1) as f64,
        "body_bytes_per_event": bytes_in as f64 / n.max(1) as f64,
        "compressed_bytes_per_event": bytes_out as f64 / n.max(1) as f64,
        "batches": batches,
        "peak_rss_kb": procstat::peak_rss_kb(),
    });
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_is_encoded_compressed_and_answered() {
        let mut o = Opts::parse(&[]);
        o.events = 1_234;
        let line = measure(&o).expect("a client");
        assert_eq!(line["delivered"], 1_234, "{line}");
        assert_eq!(line["failed"], 0, "{line}");
        // 500, 500 and the 234 left at the flush.
        assert_eq!(line["batches"], 3, "{line}");
        let body = line["body_bytes_per_event"].as_f64().unwrap();
        let compressed = line["compressed_bytes_per_event"].as_f64().unwrap();
        assert!(
            body > 300.0 && compressed > 0.0 && compressed < body / 4.0,
            "{line}"
        );
    }

    #[test]
    fn the_body_is_the_batch_the_sdk_sends() {
        let mock = libhoney::transmission::Mock::new();
        let client = Client::new(
            Config::new()
                .read_env(false)
                .api_key("k")
                .dataset("d")
                .transmission(mock.clone()),
        )
        .unwrap();
        for i in 0..3 {
            let mut ev = client.new_event();
            shape::fill(&mut ev, i);
            ev.send().unwrap();
        }
        let mut body = libhoney::__bench::Body::new(libhoney::Encoding::Json);
        for ev in mock.take_events() {
            body.push(&ev);
        }
        assert_eq!(body.count(), 3);
        let parsed: serde_json::Value = body.ship(|b| serde_json::from_slice(b)).unwrap();
        let events = parsed.as_array().expect("a JSON array");
        assert_eq!(events.len(), 3);
        assert_eq!(events[2]["data"]["count"], 2);
        assert_eq!(events[0]["data"]["service.name"], "checkout");
        // The buffer is reused for an empty body.
        assert_eq!(body.count(), 0);
        assert_eq!(body.ship(|b| b.to_vec()), b"[]");
    }
}
