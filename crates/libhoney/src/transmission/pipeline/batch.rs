//! Batching: events grouped by destination into bodies, the size rules
//! (`max_event_bytes`, `max_batch_bytes`, `max_batch_size`), the batch timer
//! (`send_frequency`), and making a finished body ready to send (numbered,
//! registered for flush and close, compressed).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::compress::Compressor;
use super::flight::{Claim, Flight};
use crate::config::{Config, Encoding, NonFiniteFloats};
use crate::destination::Destination;
use crate::encoding::{self, BatchBody, PushError};
use crate::response::{Metadata, Response, ResponseError};
use crate::transmission::QueuedEvent;
use crate::value::Value;

/// The settings a batcher needs, taken from the client's configuration.
#[derive(Clone, Debug)]
pub(crate) struct BatchSettings {
    pub(crate) encoding: Encoding,
    pub(crate) non_finite: NonFiniteFloats,
    pub(crate) max_events: usize,
    pub(crate) max_event_bytes: usize,
    pub(crate) max_body_bytes: usize,
    pub(crate) frequency: Duration,
}

impl BatchSettings {
    pub(crate) fn from_config(c: &Config) -> Self {
        BatchSettings {
            encoding: c.encoding,
            non_finite: c.non_finite_floats,
            max_events: c.max_batch_size,
            // An event must fit a body on its own, framing included.
            max_event_bytes: c.max_event_bytes.min(
                c.max_batch_bytes
                    .saturating_sub(BatchBody::framing(c.encoding)),
            ),
            max_body_bytes: c.max_batch_bytes,
            frequency: c.send_frequency,
        }
    }
}

/// A batch ready to send: one destination, its body (compressed), and the
/// right to answer its events ([`Claim`]: registered for flush and close).
pub(crate) struct ReadyBatch {
    pub(crate) dest: Destination,
    pub(crate) body: Vec<u8>,
    /// The body's `Content-Encoding`, when the batcher compressed it.
    pub(crate) content_encoding: Option<&'static str>,
    pub(crate) claim: Claim,
}

/// A batch being filled: one destination, its body, its events' metadata
/// in body order, and when it must be sent at the latest. The batcher's own
/// batches and the lanes' bodies (see `lanes`) are both these.
pub(crate) struct OpenBatch {
    pub(crate) dest: Destination,
    pub(crate) body: BatchBody,
    pub(crate) metas: Vec<Option<Metadata>>,
    pub(crate) deadline: Instant,
}

impl OpenBatch {
    /// An empty batch for `dest` in `buf`, due `frequency` after `now`.
    pub(crate) fn new(
        dest: Destination,
        buf: Vec<u8>,
        settings: &BatchSettings,
        now: Instant,
    ) -> OpenBatch {
        OpenBatch {
            dest,
            body: BatchBody::new(settings.encoding, buf),
            metas: Vec::with_capacity(settings.max_events.min(1000)),
            deadline: now + settings.frequency,
        }
    }

    /// How many events it holds.
    pub(crate) fn count(&self) -> usize {
        self.body.count()
    }
}

/// What [`fill`] did with an event.
pub(crate) struct Filled {
    /// It opened a batch that stays open.
    pub(crate) opened: bool,
    /// The event's encoded size, when it went into the batch that was open
    /// for it (not after a split).
    pub(crate) size: Option<usize>,
}

/// Adds `ev` to the open batch of its destination among `open`: the one
/// rule for the batcher's batches and the lanes' bodies. With no batch open
/// for it, `new_batch` opens one; if `max_open` are open already, the one
/// opened first goes to `ship`. An event over `max_event_bytes` gets a
/// [`ResponseError::TooLarge`] response through `respond` (and a batch
/// opened for it alone is closed again). A batch that the event would push
/// past `max_body_bytes` goes to `ship` and the event starts a new one (split,
/// never dropped); a batch that reaches `max_events` goes to `ship`.
pub(crate) fn fill(
    open: &mut Vec<OpenBatch>,
    s: &BatchSettings,
    max_open: usize,
    ev: &mut QueuedEvent,
    new_batch: &mut dyn FnMut(&Destination) -> OpenBatch,
    respond: &mut dyn FnMut(Response),
    ship: &mut Vec<OpenBatch>,
) -> Filled {
    let mut filled = Filled {
        opened: false,
        size: None,
    };
    let i = match open.iter().position(|b| b.dest.same(&ev.dest)) {
        Some(i) => i,
        None => {
            if open.len() >= max_open {
                let oldest = (0..open.len()).min_by_key(|&j| open[j].deadline);
                ship.push(open.swap_remove(oldest.unwrap_or(0)));
            }
            open.push(new_batch(&ev.dest));
            filled.opened = true;
            open.len() - 1
        }
    };
    let (enc, nf, max_ev) = (s.encoding, s.non_finite, s.max_event_bytes);
    match open[i].body.push(
        |out| encoding::write_event(enc, out, ev, nf),
        max_ev,
        s.max_body_bytes,
    ) {
        Ok(size) => {
            filled.size = Some(size);
            open[i].metas.push(ev.take_metadata());
        }
        Err(PushError::EventTooLarge(size)) => {
            log::debug!(target: "libhoney", "event of {size} bytes is too large to send");
            let error = ResponseError::TooLarge {
                size,
                limit: max_ev,
                name: string_field(ev, "name"),
                service_name: string_field(ev, "service.name"),
            };
            respond(Response::failure(ev.take_metadata(), error));
            if open[i].count() == 0 {
                open.swap_remove(i);
                filled.opened = false;
            }
            return filled;
        }
        Err(PushError::BodyFull) => {
            // Split: ship what the batch holds, start a new one with this event.
            let fresh = new_batch(&ev.dest);
            ship.push(std::mem::replace(&mut open[i], fresh));
            filled.opened = true;
            // An empty body always takes an event that passed the event-size check.
            match open[i].body.push(
                |out| encoding::write_event(enc, out, ev, nf),
                max_ev,
                usize::MAX,
            ) {
                Ok(_) => open[i].metas.push(ev.take_metadata()),
                Err(_) => {
                    let error =
                        ResponseError::Encoding("the event could not be added to a batch".into());
                    respond(Response::failure(ev.take_metadata(), error));
                }
            }
        }
    }
    if open[i].count() >= s.max_events {
        ship.push(open.swap_remove(i));
    }
    filled
}

/// Groups events by destination and appends each to its batch body, encoding
/// it there; also makes the bodies lanes filled ready. A batch is ready when it holds
/// `max_events` events, when adding an event would push its body past
/// `max_body_bytes` (it is split, never dropped), or `frequency` after its
/// first event.
pub(crate) struct Batcher {
    settings: BatchSettings,
    open: Vec<OpenBatch>,
    next_seq: u64,
    /// Typical bytes per event, to size new buffers.
    avg_event: usize,
    /// Compresses each body as it is shipped.
    compressor: Compressor,
    /// The buffer of the last body compressed, for the next batch to reuse.
    spare: Option<Vec<u8>>,
    /// Where ready batches are registered for flush and close.
    flight: Arc<Flight>,
}

impl Batcher {
    /// A batcher whose batches are registered with `flight` and compressed
    /// by `compressor` (one context, each body while it is still in this
    /// core's cache).
    pub(crate) fn new(
        settings: BatchSettings,
        compressor: Compressor,
        flight: Arc<Flight>,
    ) -> Self {
        Batcher {
            settings,
            open: Vec::new(),
            next_seq: 0,
            avg_event: 256,
            compressor,
            spare: None,
            flight,
        }
    }

    /// A buffer for a new batch's body: the spare one, or a new one sized
    /// for a full batch of `avg_event`-byte events with an eighth to spare.
    fn body_buffer(
        spare: &mut Option<Vec<u8>>,
        settings: &BatchSettings,
        avg_event: usize,
    ) -> Vec<u8> {
        let n = settings.max_events.min(1000);
        let hint = (avg_event * n + avg_event * n / 8 + 64).min(settings.max_body_bytes + 64);
        match spare.take() {
            Some(mut buf) => {
                buf.clear();
                buf
            }
            None => Vec::with_capacity(hint),
        }
    }

    fn ship(&mut self, i: usize, out: &mut Vec<ReadyBatch>) {
        let b = self.open.swap_remove(i);
        self.push_ready(b, out);
    }

    fn push_ready(&mut self, b: OpenBatch, out: &mut Vec<ReadyBatch>) {
        if let Some(raw) = self.make_ready(b, out) {
            // Keep the larger of the two buffers for the next body.
            self.spare = Some(raw);
        }
    }

    /// Makes `b` a ready batch (numbered, and compressed if this batcher
    /// compresses): one of its own, or a body a lane filled (see `lanes`).
    /// Returns the uncompressed body's buffer, when compression left it free,
    /// for a later body to reuse. An empty batch is dropped.
    pub(crate) fn make_ready(
        &mut self,
        b: OpenBatch,
        out: &mut Vec<ReadyBatch>,
    ) -> Option<Vec<u8>> {
        if b.count() == 0 {
            return None;
        }
        self.next_seq += 1;
        let mut body = b.body.finish();
        let mut content_encoding = None;
        let mut raw = None;
        if let Some((compressed, encoding)) = self.compressor.compress_slice(&body) {
            raw = Some(std::mem::replace(&mut body, compressed));
            content_encoding = Some(encoding);
        }
        let claim = self.flight.begin(self.next_seq, b.metas);
        out.push(ReadyBatch {
            dest: b.dest,
            body,
            content_encoding,
            claim,
        });
        raw
    }

    /// Adds one event, encoding it into its destination's batch. An event too
    /// large for the API is answered through `respond` with a
    /// [`ResponseError::TooLarge`] response. Ready batches are appended to `out`.
    pub(crate) fn add(
        &mut self,
        ev: &mut QueuedEvent,
        now: Instant,
        respond: &mut dyn FnMut(Response),
        out: &mut Vec<ReadyBatch>,
    ) {
        let mut ship = Vec::new();
        let (settings, spare, avg_event) = (&self.settings, &mut self.spare, self.avg_event);
        let mut new_batch = |dest: &Destination| {
            let buf = Batcher::body_buffer(spare, settings, avg_event);
            OpenBatch::new(dest.clone(), buf, settings, now)
        };
        let filled = fill(
            &mut self.open,
            settings,
            usize::MAX,
            ev,
            &mut new_batch,
            respond,
            &mut ship,
        );
        if let Some(size) = filled.size {
            self.avg_event = (self.avg_event * 7 + size) / 8;
        }
        for b in ship {
            self.push_ready(b, out);
        }
    }

    /// The earliest time a batch must be sent, if any batch is open.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.open.iter().map(|b| b.deadline).min()
    }

    /// Ships every batch whose deadline has passed.
    pub(crate) fn expire(&mut self, now: Instant, out: &mut Vec<ReadyBatch>) {
        let mut i = 0;
        while i < self.open.len() {
            if self.open[i].deadline <= now {
                self.ship(i, out);
            } else {
                i += 1;
            }
        }
    }

    /// Takes every open batch as it is (to answer its events without sending).
    pub(crate) fn take_open(&mut self) -> Vec<OpenBatch> {
        std::mem::take(&mut self.open)
    }

    /// Ships every open batch.
    pub(crate) fn drain(&mut self, out: &mut Vec<ReadyBatch>) {
        while !self.open.is_empty() {
            self.ship(self.open.len() - 1, out);
        }
    }

    /// The sequence number of the last batch made ready.
    pub(crate) fn last_seq(&self) -> u64 {
        self.next_seq
    }
}

fn string_field(ev: &QueuedEvent, name: &str) -> Option<String> {
    match ev.get(name) {
        Some(Value::String(s)) => Some(s.to_string()),
        _ => None,
    }
}
