//! The runtime-independent parts of sending over HTTP, shared by the threaded
//! [`Http`](super::Http) transmission and the tokio one: batching by destination,
//! encoding, size limits, compression, retry policy, turning an HTTP answer
//! into exactly one response per event, and the bookkeeping both do around
//! them (sends in progress, blocking waits with a deadline).

use crate::sync::LockExt;
use std::cell::RefCell;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use crate::config::{Compression, Config, EncodeOn, Encoding, NonFiniteFloats, LONGEST_WAIT};
use crate::destination::Destination;
use crate::encoding::{self, BatchBody, PushError};
pub(crate) use crate::metrics::Sharded;
use crate::response::{Metadata, Responder, Response, ResponseError};
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

/// A batch ready to send: one destination, an encoded (uncompressed) body, and
/// the metadata of its events in body order.
pub(crate) struct ReadyBatch {
    pub(crate) seq: u64,
    pub(crate) dest: Destination,
    pub(crate) body: Vec<u8>,
    /// The body's `Content-Encoding`, when the batcher compressed it.
    pub(crate) content_encoding: Option<&'static str>,
    pub(crate) metas: Vec<Option<Metadata>>,
}

/// What the batcher takes: an event as the client handed it over, or one
/// already encoded on the thread that sent it ([`Encoded`]; only the tokio
/// transmission does that: `Http`'s `send` encodes into a lane instead).
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
pub(crate) enum Item {
    Event(QueuedEvent),
    Encoded(Encoded),
}

impl From<QueuedEvent> for Item {
    fn from(ev: QueuedEvent) -> Self {
        Item::Event(ev)
    }
}

impl Item {
    /// `ev` as the batcher takes it: encoded here by `encoder`, when `send`
    /// encodes (`Config::encode_on`), or as it is.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn new(ev: QueuedEvent, encoder: Option<&SendEncoder>) -> Item {
        match encoder {
            Some(encoder) => encoder.encode(ev),
            None => Item::Event(ev),
        }
    }

    fn dest(&self) -> &Destination {
        match self {
            Item::Event(ev) => &ev.dest,
            Item::Encoded(e) => &e.dest,
        }
    }

    pub(crate) fn take_metadata(&mut self) -> Option<Metadata> {
        match self {
            Item::Event(ev) => ev.take_metadata(),
            Item::Encoded(e) => e.metadata.take(),
        }
    }

    fn write(&self, enc: Encoding, out: &mut Vec<u8>, nf: NonFiniteFloats) {
        match self {
            Item::Event(ev) => encoding::write_event(enc, out, ev, nf),
            Item::Encoded(e) => out.extend_from_slice(&e.bytes),
        }
    }

    fn too_large(&self, size: usize, limit: usize) -> ResponseError {
        let field = |name| match self {
            Item::Event(ev) => string_field(ev, name),
            Item::Encoded(_) => None,
        };
        ResponseError::TooLarge {
            size,
            limit,
            name: field("name"),
            service_name: field("service.name"),
        }
    }
}

/// An event encoded by the thread that sent it: its batch item's bytes (JSON
/// or msgpack, as the batch), where it goes, and its metadata.
pub(crate) struct Encoded {
    bytes: Vec<u8>,
    dest: Destination,
    metadata: Option<Metadata>,
}

/// Encodes events in `send`, on the calling thread, for a batcher that then
/// only copies their bytes (`Config::encode_on`).
///
/// Encoding where the event was built reads its fields while they are still in
/// that core's cache and frees them on the thread that allocated them (the
/// allocator's fast path). The byte buffers go round between the sending
/// threads and the batcher through a [`BufferPool`] instead of the allocator.
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
pub(crate) struct SendEncoder {
    settings: BatchSettings,
    pool: Arc<BufferPool>,
    /// [`EncodeOn::Adaptive`]: encode only while the batcher is behind.
    adaptive: bool,
}

#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
impl SendEncoder {
    /// Whether `send` encodes this event: always, or with
    /// [`EncodeOn::Adaptive`] only while `behind()` says the batcher is.
    #[inline]
    pub(crate) fn encodes_now(&self, behind: impl FnOnce() -> bool) -> bool {
        !self.adaptive || behind()
    }

    /// Encodes the event when it fits `max_event_bytes`; a larger one stays as
    /// it is, for the batcher to answer `TooLarge` with its name.
    fn encode(&self, ev: QueuedEvent) -> Item {
        let s = &self.settings;
        let mut bytes = self.pool.take();
        encoding::write_event(s.encoding, &mut bytes, &ev, s.non_finite);
        if bytes.len() > s.max_event_bytes {
            BufferPool::give_back(bytes);
            return Item::Event(ev);
        }
        // The fields are dropped here, on the thread that allocated them.
        let QueuedEvent { dest, metadata, .. } = ev;
        Item::Encoded(Encoded {
            bytes,
            dest,
            metadata,
        })
    }
}

/// Byte buffers for encoded events, handed back by the batcher once it has
/// copied them into a body, for the sending threads to reuse: a buffer is
/// otherwise allocated on one thread and freed on another, which sends both
/// threads down the allocator's slow path for every event.
///
/// It keeps as many buffers as the event queue holds events
/// (`pending_work_capacity`, at most `POOL_MAX_BUFFERS`), so that a full queue
/// draining does not free buffers that the next burst allocates again: with
/// 512 buffers, the batcher freed (and the application allocated) about one
/// buffer in ten, and the two threads contended for the allocator's lock
/// (`libhoney-bench send`, 1 M events: 1.94 → 1.80 µs of CPU per event, median
/// of 5 alternating runs). Bounded: buffers of more than `POOL_MAX_BUFFER`
/// bytes are freed, so the pool never holds more than a full queue of events
/// did (about 5 MB at the default capacity for the benchmark's 340-byte
/// events).
///
/// Buffers move `POOL_CHUNK` at a time: the batcher hands them back in
/// chunks ([`Returns`]), and a sending thread takes a whole chunk into a
/// thread-local stash, so neither side touches shared memory for each event
/// (a channel of single buffers cost about 2 % of the process's samples).
/// Each application thread that encodes in `send` so keeps up to
/// `POOL_CHUNK` empty buffers (about 8 KB) for as long as it lives.
pub(crate) struct BufferPool {
    /// Full chunks of empty buffers.
    shelf: Mutex<Vec<Vec<Vec<u8>>>>,
    max_chunks: usize,
}

#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
const POOL_MAX_BUFFERS: usize = 16_384;
const POOL_MAX_BUFFER: usize = 4 * 1024;
const POOL_CHUNK: usize = 16;

thread_local! {
    /// Empty buffers this thread took from a pool (any pool: they are alike).
    static STASH: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
impl BufferPool {
    fn new(buffers: usize) -> Arc<Self> {
        let buffers = buffers.clamp(1, POOL_MAX_BUFFERS);
        Arc::new(BufferPool {
            shelf: Mutex::new(Vec::new()),
            max_chunks: buffers.div_ceil(POOL_CHUNK),
        })
    }

    /// An empty buffer: one of this thread's stash, a chunk from the shelf,
    /// or a new one.
    fn take(&self) -> Vec<u8> {
        let used = STASH.with(|stash| {
            let mut stash = stash.try_borrow_mut().ok()?;
            if stash.is_empty() {
                *stash = self.shelf.lock_unpoisoned().pop()?;
            }
            stash.pop()
        });
        used.unwrap_or_else(|| Vec::with_capacity(512))
    }

    /// `buf`, emptied, if it is small enough to keep.
    fn reusable(mut buf: Vec<u8>) -> Option<Vec<u8>> {
        (buf.capacity() <= POOL_MAX_BUFFER).then(|| {
            buf.clear();
            buf
        })
    }

    /// Keeps `buf` in this thread's stash for reuse (or frees it, if it is
    /// large or the stash is full). For a buffer `send` did not use.
    fn give_back(buf: Vec<u8>) {
        let Some(buf) = BufferPool::reusable(buf) else {
            return;
        };
        STASH.with(|stash| {
            if let Ok(mut stash) = stash.try_borrow_mut() {
                if stash.len() < POOL_CHUNK {
                    stash.push(buf);
                }
            }
        });
    }

    /// Shelves a chunk of empty buffers (or frees it, if the pool is full).
    fn shelve(&self, chunk: Vec<Vec<u8>>) {
        let mut shelf = self.shelf.lock_unpoisoned();
        if shelf.len() < self.max_chunks {
            shelf.push(chunk);
        }
    }
}

/// The batcher's side of a [`BufferPool`]: buffers it has emptied, shelved
/// `POOL_CHUNK` at a time.
struct Returns {
    pool: Arc<BufferPool>,
    chunk: Vec<Vec<u8>>,
}

impl Returns {
    fn give(&mut self, buf: Vec<u8>) {
        let Some(buf) = BufferPool::reusable(buf) else {
            return;
        };
        self.chunk.push(buf);
        if self.chunk.len() >= POOL_CHUNK {
            let full = std::mem::replace(&mut self.chunk, Vec::with_capacity(POOL_CHUNK));
            self.pool.shelve(full);
        }
    }
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
    ev: &mut Item,
    new_batch: &mut dyn FnMut(&Destination) -> OpenBatch,
    respond: &mut dyn FnMut(Response),
    ship: &mut Vec<OpenBatch>,
) -> Filled {
    let mut filled = Filled {
        opened: false,
        size: None,
    };
    let i = match open.iter().position(|b| b.dest.same(ev.dest())) {
        Some(i) => i,
        None => {
            if open.len() >= max_open {
                let oldest = (0..open.len()).min_by_key(|&j| open[j].deadline);
                ship.push(open.swap_remove(oldest.unwrap_or(0)));
            }
            open.push(new_batch(ev.dest()));
            filled.opened = true;
            open.len() - 1
        }
    };
    let (enc, nf, max_ev) = (s.encoding, s.non_finite, s.max_event_bytes);
    match open[i]
        .body
        .push(|out| ev.write(enc, out, nf), max_ev, s.max_body_bytes)
    {
        Ok(size) => {
            filled.size = Some(size);
            open[i].metas.push(ev.take_metadata());
        }
        Err(PushError::EventTooLarge(size)) => {
            log::debug!(target: "libhoney", "event of {size} bytes is too large to send");
            let error = ev.too_large(size, max_ev);
            respond(Response::failure(ev.take_metadata(), error));
            if open[i].count() == 0 {
                open.swap_remove(i);
                filled.opened = false;
            }
            return filled;
        }
        Err(PushError::BodyFull) => {
            // Split: ship what the batch holds, start a new one with this event.
            let fresh = new_batch(ev.dest());
            ship.push(std::mem::replace(&mut open[i], fresh));
            filled.opened = true;
            // An empty body always takes an event that passed the event-size check.
            match open[i]
                .body
                .push(|out| ev.write(enc, out, nf), max_ev, usize::MAX)
            {
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

/// Groups events by destination and appends each to its batch body (encoding
/// it there unless `send` already did). A batch is ready when it holds
/// `max_events` events, when adding an event would push its body past
/// `max_body_bytes` (it is split, never dropped), or `frequency` after its
/// first event.
pub(crate) struct Batcher {
    settings: BatchSettings,
    open: Vec<OpenBatch>,
    next_seq: u64,
    /// Typical bytes per event, to size new buffers.
    avg_event: usize,
    /// Compresses each body as it is shipped, when set.
    compressor: Option<Compressor>,
    /// The buffer of the last body compressed, for the next batch to reuse.
    spare: Option<Vec<u8>>,
    /// Where the buffers of events encoded in `send` go back to.
    returns: Option<Returns>,
}

impl Batcher {
    pub(crate) fn new(settings: BatchSettings) -> Self {
        Batcher {
            settings,
            open: Vec::new(),
            next_seq: 0,
            avg_event: 256,
            compressor: None,
            spare: None,
            returns: None,
        }
    }

    /// The batcher of an HTTP transmission and, when `send` may encode
    /// (`Config::encode_on` is not `Batcher`), the encoder its `send` uses,
    /// sharing one pool of buffers.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn with_encoder(config: &Config) -> (Batcher, Option<SendEncoder>) {
        let settings = BatchSettings::from_config(config);
        let mut batcher = Batcher::new(settings.clone());
        let encoder = (config.encode_on != EncodeOn::Batcher).then(|| {
            let pool = BufferPool::new(config.pending_work_capacity);
            batcher.returns = Some(Returns {
                pool: Arc::clone(&pool),
                chunk: Vec::with_capacity(POOL_CHUNK),
            });
            SendEncoder {
                settings,
                pool,
                adaptive: config.encode_on == EncodeOn::Adaptive,
            }
        });
        (batcher, encoder)
    }

    /// A batcher that also compresses each body it ships, with one context,
    /// while the body is still in its core's cache, and reuses the buffer.
    pub(crate) fn compressing(mut self, compressor: Compressor) -> Self {
        self.compressor = Some(compressor);
        self
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
        if let Some((compressed, encoding)) = self
            .compressor
            .as_mut()
            .and_then(|c| c.compress_slice(&body))
        {
            raw = Some(std::mem::replace(&mut body, compressed));
            content_encoding = Some(encoding);
        }
        out.push(ReadyBatch {
            seq: self.next_seq,
            dest: b.dest,
            body,
            content_encoding,
            metas: b.metas,
        });
        raw
    }

    /// Adds one event. Events too large for the API are answered at once with a
    /// [`ResponseError::TooLarge`] response. Ready batches are appended to `out`.
    pub(crate) fn add(
        &mut self,
        ev: Item,
        now: Instant,
        responder: &Responder,
        out: &mut Vec<ReadyBatch>,
    ) {
        self.add_with(ev, now, &mut |r| responder.respond(r), out);
    }

    /// [`add`](Batcher::add), handing the response of an event that cannot be
    /// batched to `respond` instead of a responder (for a caller that must
    /// not block where it runs, such as an async task with
    /// `block_on_response` on).
    pub(crate) fn add_with(
        &mut self,
        mut ev: Item,
        now: Instant,
        respond: &mut dyn FnMut(Response),
        out: &mut Vec<ReadyBatch>,
    ) {
        self.add_item(&mut ev, now, respond, out);
        if let (Item::Encoded(e), Some(returns)) = (ev, &mut self.returns) {
            returns.give(e.bytes);
        }
    }

    fn add_item(
        &mut self,
        ev: &mut Item,
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

/// Compresses batch bodies, keeping one zstd context: `Http`'s batcher owns
/// one, the tokio transmission keeps a pool for its batch tasks.
pub(crate) struct Compressor {
    kind: Compression,
    level: i32,
    zstd: Option<zstd::bulk::Compressor<'static>>,
}

impl Compressor {
    pub(crate) fn new(kind: Compression, level: i32) -> Self {
        let zstd = match kind {
            Compression::Zstd => zstd::bulk::Compressor::new(level).ok(),
            _ => None,
        };
        Compressor { kind, level, zstd }
    }

    /// The body to send and its `Content-Encoding`. If compression fails (it
    /// should not), the body goes uncompressed rather than not at all.
    pub(crate) fn compress(&mut self, body: Vec<u8>) -> (Vec<u8>, Option<&'static str>) {
        match self.compress_slice(&body) {
            Some((out, encoding)) => (out, Some(encoding)),
            None => (body, None),
        }
    }

    /// The compressed body and its `Content-Encoding`; `None` to send `body`
    /// as it is (no compression configured, or compression failed).
    pub(crate) fn compress_slice(&mut self, body: &[u8]) -> Option<(Vec<u8>, &'static str)> {
        match self.kind {
            Compression::Zstd => {
                let out = self.zstd.as_mut()?.compress(body).ok()?;
                Some((out, "zstd"))
            }
            Compression::Gzip => {
                let level = flate2::Compression::new(self.level.clamp(0, 9) as u32);
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4 + 64), level);
                enc.write_all(body).ok()?;
                Some((enc.finish().ok()?, "gzip"))
            }
            Compression::None => None,
        }
    }
}

/// How long a plain thread waiting for room in the tokio transmission's full
/// queue (`block_on_send`) sleeps between looks: polling, not parking, since
/// a thread parked on tokio's channel is woken by every event the batcher
/// takes. (Http's own queue wakes a blocked sender once it is half empty:
/// `mailbox::Sender::send_blocking`.)
#[cfg(feature = "tokio")]
pub(crate) const ROOM_POLL: Duration = Duration::from_micros(100);

/// While events keep coming, both batchers take them off the queue in rounds
/// this far apart instead of waiting on it: a batcher waiting on the queue is
/// woken by every `send` (a futex call on the sending thread).
pub(crate) const ROUND_PAUSE: Duration = Duration::from_millis(1);

/// After this many empty rounds a batcher waits on its queue again, so that
/// an idle client costs nothing.
pub(crate) const IDLE_ROUNDS: u32 = 50;

/// For [`EncodeOn::Adaptive`]: whether the batcher is behind. Set by the
/// batcher (rarely: only when it changes), read by every `send` (a load of
/// a line that stays in the sending cores' caches).
#[derive(Debug, Default)]
pub(crate) struct Behind(AtomicBool);

impl Behind {
    #[inline]
    pub(crate) fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// How many rounds in a row the batcher's queue must stay nearly empty
/// before `send` stops encoding: a batcher that is only just keeping up
/// would otherwise flip back and forth, and take on the encoding exactly
/// when it has the least time for it.
const CALM_ROUNDS: u32 = 100;

/// The batcher's side of [`Behind`]: behind once more than `behind_above`
/// events are still waiting after one of its rounds; caught up again once at
/// most a quarter of that was waiting after [`CALM_ROUNDS`] rounds in a row.
///
/// `behind_above` is a sixteenth of the queue, but at least 512 events (and
/// at most a quarter of the queue). What waits after a round of a batcher
/// that keeps up is what arrived while it worked, compressing a body among
/// other things: at 300,000 events/s that is about a hundred events. With the
/// default queue of 2,048, a sixteenth (128, calm at 32) had the batcher
/// counted behind at that rate for good, and every `send` encoding (p50 700
/// ns instead of 140). A queue under 64 is behind with anything left, and
/// caught up once it stayed empty.
pub(crate) struct BacklogWatch {
    behind_above: usize,
    calm: u32,
}

/// How many waiting events make the batcher "behind" (see [`BacklogWatch`]),
/// for a queue of `capacity`: a sixteenth, at least 512, at most a quarter.
pub(crate) fn behind_above(capacity: usize) -> usize {
    (capacity / 16).max(512).min(capacity / 4)
}

impl BacklogWatch {
    pub(crate) fn new(capacity: usize) -> Self {
        BacklogWatch {
            behind_above: behind_above(capacity),
            calm: 0,
        }
    }

    /// After a round that left `backlog` messages in the queue.
    pub(crate) fn after_round(&mut self, backlog: usize, behind: &Behind) {
        if backlog <= self.behind_above / 4 {
            self.calm = self.calm.saturating_add(1);
        } else {
            self.calm = 0;
        }
        let was = behind.get();
        if !was && backlog > self.behind_above {
            behind.0.store(true, Ordering::Relaxed);
        } else if was && self.calm >= CALM_ROUNDS {
            behind.0.store(false, Ordering::Relaxed);
        }
    }
}

/// The `Content-Type` of an encoding.
pub(crate) fn content_type(enc: Encoding) -> &'static str {
    match enc {
        Encoding::Json => "application/json",
        Encoding::Msgpack => "application/msgpack",
    }
}

/// Runs one `send` of a transmission counted in `sending`, its calls in
/// progress. SeqCst pairs with the close: either the send sees the
/// transmission closed, or the close sees it in `sending` and waits for its
/// event before its last look at the queue.
pub(crate) fn counted_send(sending: &Sharded, send: impl FnOnce()) {
    sending.add(1, Ordering::SeqCst);
    send();
    sending.sub(1, Ordering::SeqCst);
}

/// `timeout` from now, capped at 100 years: a caller's `Duration::MAX` (the
/// transmissions are public) never overflows `Instant`.
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout.min(LONGEST_WAIT))
        .unwrap_or(now + Duration::from_secs(86_400 * 365))
}

/// Waits on `cond` (with `guard`, the lock of its mutex) until `ready` gives
/// a value; `None` once `deadline` has passed first. A poisoned lock is used
/// as is.
pub(crate) fn wait_deadline<T, R>(
    cond: &Condvar,
    mut guard: MutexGuard<'_, T>,
    deadline: Instant,
    mut ready: impl FnMut(&T) -> Option<R>,
) -> Option<R> {
    loop {
        if let Some(r) = ready(&guard) {
            return Some(r);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        guard = cond
            .wait_timeout(guard, deadline - now)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

/// When and how often to retry.
#[derive(Clone, Debug)]
pub(crate) struct RetryPolicy {
    pub(crate) max_attempts: u32,
    pub(crate) deadline: Duration,
    pub(crate) base: Duration,
    pub(crate) max: Duration,
}

impl RetryPolicy {
    pub(crate) fn from_config(c: &Config) -> Self {
        RetryPolicy {
            max_attempts: c.max_attempts,
            deadline: c.retry_deadline,
            base: c.retry_base_delay,
            max: c.retry_max_delay,
        }
    }

    /// The delay before attempt `attempt + 1`, or `None` to give up.
    /// `retry_after` (from the server) replaces the backoff; if it would pass
    /// the deadline, the batch gives up now.
    pub(crate) fn next_delay(
        &self,
        attempt: u32,
        elapsed: Duration,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let delay = match retry_after {
            Some(d) => d,
            None => {
                let exp = self
                    .base
                    .saturating_mul(1u32 << (attempt - 1).min(20))
                    .min(self.max);
                // Jitter: uniformly between half and the whole delay.
                let half = exp / 2;
                half + Duration::from_nanos(fastrand::u64(0..=(exp - half).as_nanos() as u64))
            }
        };
        if elapsed + delay > self.deadline {
            return None;
        }
        Some(delay)
    }
}

/// Statuses worth retrying: timeouts, rate limits and transient server errors.
pub(crate) fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// Parses `Retry-After`: seconds (integer or decimal) or an HTTP date.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(secs.min(86_400.0)));
        }
        return None;
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// How a batch's sending ended.
pub(crate) enum Outcome {
    /// The server answered.
    Http {
        status: u16,
        body: Vec<u8>,
        msgpack: bool,
    },
    /// No answer: the transport failed (after retries).
    Transport(String),
}

/// The most of a server body kept on error responses.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Gives every event of a batch exactly one response, from the outcome, handed
/// to the response queue in one step.
pub(crate) fn answer_batch(
    responder: &Responder,
    metas: Vec<Option<Metadata>>,
    outcome: Outcome,
    duration: Duration,
) {
    responder.respond_all(batch_responses(metas, outcome, duration));
}

/// The responses of a batch's events, in the batch's order.
fn batch_responses(
    metas: Vec<Option<Metadata>>,
    outcome: Outcome,
    duration: Duration,
) -> Vec<Response> {
    let n = metas.len();
    let each = |f: &mut dyn FnMut(Option<Metadata>) -> Response| -> Vec<Response> {
        metas.into_iter().map(f).collect()
    };
    match outcome {
        Outcome::Transport(msg) => each(&mut |m| {
            Response::failure(m, ResponseError::Transport(msg.clone())).with_duration(duration)
        }),
        Outcome::Http { status, body, .. } if !(200..300).contains(&status) => {
            let mut text =
                String::from_utf8_lossy(&body[..body.len().min(MAX_ERROR_BODY)]).into_owned();
            if text.is_empty() {
                text = format!("HTTP {status}");
            }
            if status == 401 {
                log::warn!(target: "libhoney", "the API key was rejected (HTTP 401); check it is correct");
            }
            each(&mut |m| {
                let mut r =
                    Response::failure(m, ResponseError::HttpStatus(status)).with_duration(duration);
                r.status_code = Some(status);
                r.body = text.clone();
                r
            })
        }
        Outcome::Http {
            status,
            body,
            msgpack,
        } => {
            if body.iter().all(u8::is_ascii_whitespace) && status == 202 {
                // "An empty 202 response indicates that the event has been queued."
                return each(&mut |m| Response::success(m, Some(202), duration));
            }
            let statuses = if msgpack {
                parse_statuses_msgpack(&body)
            } else {
                parse_statuses_json(&body)
            };
            match statuses {
                Err(why) => {
                    log::warn!(target: "libhoney", "could not read the API's per-event statuses: {why}");
                    each(&mut |m| {
                        Response::failure(m, ResponseError::MalformedResponse(why.clone()))
                            .with_duration(duration)
                            .with_status(status)
                    })
                }
                Ok(statuses) => {
                    if statuses.len() != n {
                        log::warn!(
                            target: "libhoney",
                            "the API returned {} statuses for {} events",
                            statuses.len(),
                            n
                        );
                    }
                    let mut it = statuses.into_iter();
                    each(&mut |m| match it.next() {
                        Some(EventStatus {
                            status: s,
                            error: None,
                        }) if (200..300).contains(&s) => Response::success(m, Some(s), duration),
                        Some(EventStatus { status: s, error }) => {
                            let msg = error.unwrap_or_else(|| format!("status {s}"));
                            Response::failure(m, ResponseError::Rejected(msg))
                                .with_status(s)
                                .with_duration(duration)
                        }
                        None => Response::failure(m, ResponseError::MissingStatus)
                            .with_duration(duration)
                            .with_status(status),
                    })
                }
            }
        }
    }
}

#[derive(Debug, PartialEq)]
pub(crate) struct EventStatus {
    pub(crate) status: u16,
    pub(crate) error: Option<String>,
}

/// Reads `[{"status":202},{"status":400,"error":"..."}]`. Member names are
/// matched without regard to case (as libhoney-go does), other members are
/// ignored, and a null or empty error means none.
pub(crate) fn parse_statuses_json(body: &[u8]) -> Result<Vec<EventStatus>, String> {
    if let Some(statuses) = parse_plain_statuses(body) {
        return Ok(statuses);
    }
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let arr = v.as_array().ok_or("not a JSON array")?;
    arr.iter()
        .map(|item| {
            let obj = item
                .as_object()
                .ok_or_else(|| format!("an item is not an object: {item}"))?;
            let member = |name: &str| {
                obj.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v)
            };
            let status = member("status")
                .and_then(|s| s.as_u64())
                .and_then(|s| u16::try_from(s).ok())
                .ok_or_else(|| format!("an item has no valid status: {item}"))?;
            let error = member("error")
                .and_then(|e| e.as_str())
                .filter(|e| !e.is_empty())
                .map(str::to_string);
            Ok(EventStatus { status, error })
        })
        .collect()
}

/// The common answer, `[{"status":202},...]` (any status, optional white
/// space, no other members), read without building a JSON tree: about ten
/// times cheaper per event. Anything else returns `None` and takes the general path.
fn parse_plain_statuses(body: &[u8]) -> Option<Vec<EventStatus>> {
    struct P<'a> {
        b: &'a [u8],
        i: usize,
    }
    impl P<'_> {
        fn ws(&mut self) {
            while self.b.get(self.i).is_some_and(|c| c.is_ascii_whitespace()) {
                self.i += 1;
            }
        }
        fn eat(&mut self, lit: &[u8]) -> Option<()> {
            self.ws();
            let end = self.i.checked_add(lit.len())?;
            (self.b.get(self.i..end)? == lit).then(|| self.i = end)
        }
        fn status(&mut self) -> Option<u16> {
            self.ws();
            let start = self.i;
            let mut n: u32 = 0;
            while let Some(d) = self.b.get(self.i).filter(|c| c.is_ascii_digit()) {
                n = n * 10 + u32::from(d - b'0');
                self.i += 1;
                if self.i - start > 5 {
                    return None;
                }
            }
            if self.i == start {
                return None;
            }
            u16::try_from(n).ok()
        }
    }
    let mut p = P { b: body, i: 0 };
    p.eat(b"[")?;
    let mut out = Vec::with_capacity(body.len() / 14);
    if p.eat(b"]").is_none() {
        loop {
            p.eat(b"{")?;
            p.eat(b"\"status\"")?;
            p.eat(b":")?;
            let status = p.status()?;
            p.eat(b"}")?;
            out.push(EventStatus {
                status,
                error: None,
            });
            if p.eat(b",").is_none() {
                p.eat(b"]")?;
                break;
            }
        }
    }
    p.ws();
    (p.i == body.len()).then_some(out)
}

/// Reads the same statuses from msgpack (an array of maps). As with JSON,
/// keys are matched without regard to case, other members are skipped, and a
/// nil or empty error means none.
pub(crate) fn parse_statuses_msgpack(body: &[u8]) -> Result<Vec<EventStatus>, String> {
    use rmp::decode;
    let mut rd = body;
    let bad = |what: &str| format!("bad msgpack statuses: {what}");
    let n = decode::read_array_len(&mut rd).map_err(|_| bad("not an array"))?;
    let mut out = Vec::with_capacity((n as usize).min(100_000));
    for _ in 0..n {
        let fields = decode::read_map_len(&mut rd).map_err(|_| bad("item is not a map"))?;
        let mut status = None;
        let mut error = None;
        for _ in 0..fields {
            let key = mp_str(&mut rd).ok_or_else(|| bad("key is not a string"))?;
            if key.eq_ignore_ascii_case(b"status") {
                let s: u64 =
                    decode::read_int(&mut rd).map_err(|_| bad("status is not an integer"))?;
                status = u16::try_from(s).ok();
            } else if key.eq_ignore_ascii_case(b"error") {
                if rd.first() == Some(&0xc0) {
                    rd = &rd[1..];
                    error = None;
                } else {
                    let s = mp_str(&mut rd).ok_or_else(|| bad("error is not a string"))?;
                    error = Some(String::from_utf8_lossy(s).into_owned()).filter(|s| !s.is_empty());
                }
            } else {
                mp_skip(&mut rd, 0).ok_or_else(|| bad("truncated"))?;
            }
        }
        out.push(EventStatus {
            status: status.ok_or_else(|| bad("item without status"))?,
            error,
        });
    }
    Ok(out)
}

/// Takes `n` bytes off the front.
fn mp_take<'a>(rd: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if rd.len() < n {
        return None;
    }
    let (a, b) = rd.split_at(n);
    *rd = b;
    Some(a)
}

/// A big-endian length of `n` bytes.
fn mp_len(rd: &mut &[u8], n: usize) -> Option<usize> {
    let b = mp_take(rd, n)?;
    Some(b.iter().fold(0usize, |acc, &x| acc << 8 | usize::from(x)))
}

/// Reads a msgpack string (or binary) of any length, as bytes.
fn mp_str<'a>(rd: &mut &'a [u8]) -> Option<&'a [u8]> {
    let tag = *rd.first()?;
    *rd = &rd[1..];
    let n = match tag {
        0xa0..=0xbf => usize::from(tag & 0x1f),
        0xd9 | 0xc4 => mp_len(rd, 1)?,
        0xda | 0xc5 => mp_len(rd, 2)?,
        0xdb | 0xc6 => mp_len(rd, 4)?,
        _ => return None,
    };
    mp_take(rd, n)
}

/// Skips one msgpack value of any kind.
fn mp_skip(rd: &mut &[u8], depth: usize) -> Option<()> {
    if depth > 64 {
        return None;
    }
    let tag = *rd.first()?;
    *rd = &rd[1..];
    let (skip, items) = match tag {
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
        0x80..=0x8f => (0, 2 * usize::from(tag & 0x0f)),
        0x90..=0x9f => (0, usize::from(tag & 0x0f)),
        0xa0..=0xbf => (usize::from(tag & 0x1f), 0),
        0xcc | 0xd0 => (1, 0),
        0xcd | 0xd1 => (2, 0),
        0xce | 0xd2 | 0xca => (4, 0),
        0xcf | 0xd3 | 0xcb => (8, 0),
        0xd9 | 0xc4 => (mp_len(rd, 1)?, 0),
        0xda | 0xc5 => (mp_len(rd, 2)?, 0),
        0xdb | 0xc6 => (mp_len(rd, 4)?, 0),
        0xdc => (0, mp_len(rd, 2)?),
        0xdd => (0, mp_len(rd, 4)?),
        0xde => (0, 2 * mp_len(rd, 2)?),
        0xdf => (0, 2 * mp_len(rd, 4)?),
        0xd4 => (2, 0),
        0xd5 => (3, 0),
        0xd6 => (5, 0),
        0xd7 => (9, 0),
        0xd8 => (17, 0),
        0xc7 => (mp_len(rd, 1)? + 1, 0),
        0xc8 => (mp_len(rd, 2)? + 1, 0),
        0xc9 => (mp_len(rd, 4)? + 1, 0),
        _ => return None, // 0xc1, never used
    };
    mp_take(rd, skip)?;
    for _ in 0..items {
        mp_skip(rd, depth + 1)?;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batcher_is_behind_past_a_sixteenth_and_caught_up_after_calm_rounds() {
        let behind = Behind::default();
        let mut watch = BacklogWatch::new(16_000);
        // Up to a sixteenth waiting: not behind.
        watch.after_round(1000, &behind);
        assert!(!behind.get());
        watch.after_round(1001, &behind);
        assert!(behind.get(), "more than a sixteenth waits");
        // A nearly empty queue for fewer than CALM_ROUNDS rounds: still behind.
        for _ in 0..CALM_ROUNDS - 1 {
            watch.after_round(0, &behind);
        }
        assert!(behind.get());
        // One round with more than a quarter of that waiting starts the count again.
        watch.after_round(251, &behind);
        for _ in 0..CALM_ROUNDS - 1 {
            watch.after_round(250, &behind);
        }
        assert!(behind.get());
        watch.after_round(250, &behind);
        assert!(!behind.get(), "caught up after CALM_ROUNDS calm rounds");
        // Between the two thresholds nothing changes.
        watch.after_round(600, &behind);
        assert!(!behind.get());
    }

    #[test]
    fn the_backlog_thresholds_have_a_floor_of_512_events_and_a_ceiling_of_a_quarter() {
        // The default queue of 2,048: behind past 512 waiting, not 128.
        let behind = Behind::default();
        let mut watch = BacklogWatch::new(2048);
        watch.after_round(512, &behind);
        assert!(
            !behind.get(),
            "a hundred or so waiting at a high rate is not behind"
        );
        watch.after_round(513, &behind);
        assert!(behind.get());
        for _ in 0..CALM_ROUNDS {
            watch.after_round(128, &behind);
        }
        assert!(!behind.get(), "calm at up to 128 waiting");
        // A queue of 1,000: a quarter of it, 250.
        let behind = Behind::default();
        let mut watch = BacklogWatch::new(1000);
        watch.after_round(250, &behind);
        assert!(!behind.get());
        watch.after_round(251, &behind);
        assert!(behind.get());
    }

    #[test]
    fn a_small_queue_is_caught_up_once_it_stayed_empty() {
        let behind = Behind::default();
        let mut watch = BacklogWatch::new(3);
        watch.after_round(1, &behind);
        assert!(behind.get(), "anything left in a queue of 3 is behind");
        for _ in 0..CALM_ROUNDS {
            watch.after_round(0, &behind);
        }
        assert!(!behind.get());
    }

    #[test]
    fn an_adaptive_encoder_encodes_only_while_the_batcher_is_behind() {
        let adaptive = Config::new();
        let (_, encoder) = Batcher::with_encoder(&adaptive);
        let encoder = encoder.expect("adaptive keeps an encoder for send");
        assert!(!encoder.encodes_now(|| false));
        assert!(encoder.encodes_now(|| true));
        let (_, encoder) = Batcher::with_encoder(&Config::new().encode_on(EncodeOn::Send));
        let encoder = encoder.expect("an encoder for send");
        assert!(encoder.encodes_now(|| false), "Send always encodes");
        let (_, encoder) = Batcher::with_encoder(&Config::new().encode_on(EncodeOn::Batcher));
        assert!(encoder.is_none(), "Batcher never encodes in send");
    }

    #[test]
    fn the_buffer_pool_keeps_small_buffers_up_to_its_bound() {
        // Each test runs on its own thread: the stash starts empty.
        const BUFFERS: usize = 100;
        let pool = BufferPool::new(BUFFERS);
        let mut returns = Returns {
            pool: Arc::clone(&pool),
            chunk: Vec::new(),
        };
        let stash_len = || STASH.with(|s| s.borrow().len());
        // Until the batcher has handed back a whole chunk, `take` allocates.
        let mut small = Vec::with_capacity(700);
        small.extend_from_slice(b"{\"data\":{}}");
        let ptr = small.as_ptr();
        returns.give(small);
        let new = pool.take();
        assert_ne!(new.as_ptr(), ptr);
        for _ in 1..POOL_CHUNK {
            returns.give(Vec::with_capacity(64));
        }
        // The chunk, shelved, moves to this thread's stash whole; the first
        // buffer given back comes out last.
        let taken: Vec<Vec<u8>> = (0..POOL_CHUNK).map(|_| pool.take()).collect();
        assert_eq!(stash_len(), 0);
        assert!(taken.iter().all(Vec::is_empty), "handed back cleared");
        assert_eq!(
            taken[POOL_CHUNK - 1].as_ptr(),
            ptr,
            "the same buffer comes back"
        );
        assert!(pool.take().capacity() >= 512, "a new buffer once empty");
        // Large buffers are freed, not kept, on either side.
        for _ in 0..POOL_CHUNK {
            returns.give(Vec::with_capacity(POOL_MAX_BUFFER + 1));
        }
        assert!(returns.chunk.is_empty());
        BufferPool::give_back(Vec::with_capacity(POOL_MAX_BUFFER + 1));
        assert_eq!(stash_len(), 0);
        // A buffer `send` did not use stays in the stash, up to a chunk.
        for _ in 0..POOL_CHUNK + 3 {
            BufferPool::give_back(Vec::with_capacity(32));
        }
        assert_eq!(stash_len(), POOL_CHUNK);
        STASH.with(|s| s.borrow_mut().clear());
        // At most BUFFERS (rounded up to whole chunks) are kept.
        for _ in 0..BUFFERS * 2 {
            returns.give(Vec::with_capacity(64));
        }
        let kept = pool.shelf.lock().unwrap().len();
        assert_eq!(kept, BUFFERS.div_ceil(POOL_CHUNK));
        let mut from_pool = 0;
        while pool.take().capacity() == 64 {
            from_pool += 1;
        }
        assert_eq!(from_pool, kept * POOL_CHUNK);
        // The bound follows the queue's capacity, up to POOL_MAX_BUFFERS.
        assert_eq!(
            BufferPool::new(10_000).max_chunks,
            10_000usize.div_ceil(POOL_CHUNK)
        );
        assert_eq!(
            BufferPool::new(1_000_000).max_chunks,
            POOL_MAX_BUFFERS / POOL_CHUNK
        );
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after(" 0.5 ", now),
            Some(Duration::from_millis(500))
        );
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        let date = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(7)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(7));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
    }

    #[test]
    fn backoff_grows_with_jitter_and_respects_limits() {
        let p = RetryPolicy {
            max_attempts: 5,
            deadline: Duration::from_secs(10),
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        for _ in 0..100 {
            let d1 = p.next_delay(1, Duration::ZERO, None).unwrap();
            assert!(
                d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100),
                "{d1:?}"
            );
            let d3 = p.next_delay(3, Duration::ZERO, None).unwrap();
            assert!(
                d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400),
                "{d3:?}"
            );
            let d4 = p.next_delay(4, Duration::ZERO, None).unwrap();
            assert!(d4 <= Duration::from_secs(1), "capped: {d4:?}");
        }
        assert_eq!(
            p.next_delay(5, Duration::ZERO, None),
            None,
            "out of attempts"
        );
        assert_eq!(
            p.next_delay(1, Duration::ZERO, Some(Duration::from_secs(3))),
            Some(Duration::from_secs(3)),
            "Retry-After wins"
        );
        assert_eq!(
            p.next_delay(1, Duration::from_secs(8), Some(Duration::from_secs(3))),
            None,
            "past the deadline"
        );
    }

    #[test]
    fn plain_statuses_take_the_fast_path_and_agree_with_the_general_one() {
        for body in [
            &br#"[{"status":202},{"status":400}]"#[..],
            br#" [ { "status" : 202 } ,{"status":500}] "#,
            b"[]",
        ] {
            let fast = parse_plain_statuses(body).expect("plain");
            let v: serde_json::Value = serde_json::from_slice(body).unwrap();
            assert_eq!(fast.len(), v.as_array().unwrap().len());
            for (f, item) in fast.iter().zip(v.as_array().unwrap()) {
                assert_eq!(u64::from(f.status), item["status"].as_u64().unwrap());
                assert_eq!(f.error, None);
            }
        }
        // Anything else goes the general way, which still reads it.
        for body in [
            &br#"[{"status":400,"error":"bad"}]"#[..],
            br#"[{"Status":202}]"#,
            br#"[{"status":202}] x"#,
            br#"[{"status":2020000}]"#,
            br#"[{"status":202},]"#,
            br#"[{"status":-1}]"#,
            b"",
        ] {
            assert!(
                parse_plain_statuses(body).is_none(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(
            parse_statuses_json(br#"[{"Status":202}]"#).unwrap()[0].status,
            202
        );
    }

    #[test]
    fn statuses_json() {
        let s = parse_statuses_json(
            br#"[{"status":202},{"status":400,"error":"bad"},{"status":202,"error":""}]"#,
        )
        .unwrap();
        assert_eq!(
            s,
            vec![
                EventStatus {
                    status: 202,
                    error: None
                },
                EventStatus {
                    status: 400,
                    error: Some("bad".into())
                },
                EventStatus {
                    status: 202,
                    error: None
                },
            ]
        );
        assert!(parse_statuses_json(b"{}").is_err());
        assert!(parse_statuses_json(b"[{}]").is_err());
        assert!(parse_statuses_json(b"garbage").is_err());
    }

    #[test]
    fn statuses_msgpack() {
        let mut b = Vec::new();
        rmp::encode::write_array_len(&mut b, 2).unwrap();
        rmp::encode::write_map_len(&mut b, 1).unwrap();
        rmp::encode::write_str(&mut b, "status").unwrap();
        rmp::encode::write_uint(&mut b, 202).unwrap();
        rmp::encode::write_map_len(&mut b, 2).unwrap();
        rmp::encode::write_str(&mut b, "status").unwrap();
        rmp::encode::write_uint(&mut b, 400).unwrap();
        rmp::encode::write_str(&mut b, "error").unwrap();
        rmp::encode::write_str(&mut b, "Event has too many columns.").unwrap();
        let s = parse_statuses_msgpack(&b).unwrap();
        assert_eq!(
            s[0],
            EventStatus {
                status: 202,
                error: None
            }
        );
        assert_eq!(s[1].error.as_deref(), Some("Event has too many columns."));
        assert!(parse_statuses_msgpack(&b[..b.len() - 3]).is_err());
        assert!(parse_statuses_msgpack(b"\xc0").is_err());
    }

    #[test]
    fn statuses_msgpack_skip_members_of_every_kind() {
        use rmp::encode;
        let extras: Vec<Vec<u8>> = {
            let mut v = Vec::new();
            let mut one = |f: &dyn Fn(&mut Vec<u8>)| {
                let mut b = Vec::new();
                f(&mut b);
                v.push(b);
            };
            one(&|b| encode::write_nil(b).unwrap());
            one(&|b| encode::write_bool(b, true).unwrap());
            one(&|b| {
                encode::write_uint(b, 1 << 40).unwrap();
            });
            one(&|b| {
                encode::write_sint(b, -1 << 20).unwrap();
            });
            one(&|b| {
                encode::write_u8(b, 200).unwrap();
            });
            one(&|b| {
                encode::write_i16(b, -300).unwrap();
            });
            one(&|b| encode::write_f32(b, 1.5).unwrap());
            one(&|b| encode::write_f64(b, 2.5).unwrap());
            one(&|b| encode::write_str(b, &"s".repeat(300)).unwrap());
            one(&|b| encode::write_bin(b, &[1, 2, 3]).unwrap());
            one(&|b| {
                encode::write_array_len(b, 20).unwrap();
                for i in 0..20 {
                    encode::write_uint(b, i).unwrap();
                }
            });
            one(&|b| {
                encode::write_map_len(b, 17).unwrap();
                for i in 0..17 {
                    encode::write_str(b, &format!("k{i}")).unwrap();
                    encode::write_map_len(b, 0).unwrap();
                }
            });
            for len in [1u32, 2, 4, 8, 16, 3, 300] {
                one(&move |b| {
                    encode::write_ext_meta(b, len, 5).unwrap();
                    b.extend(std::iter::repeat_n(0u8, len as usize));
                });
            }
            v
        };
        let mut b = Vec::new();
        encode::write_array_len(&mut b, extras.len() as u32).unwrap();
        for (i, extra) in extras.iter().enumerate() {
            encode::write_map_len(&mut b, 3).unwrap();
            encode::write_str(&mut b, "some_rather_long_member_name").unwrap();
            b.extend_from_slice(extra);
            encode::write_str(&mut b, "STATUS").unwrap();
            encode::write_uint(&mut b, 200 + i as u64).unwrap();
            encode::write_str(&mut b, "error").unwrap();
            encode::write_nil(&mut b).unwrap();
        }
        let s = parse_statuses_msgpack(&b).unwrap();
        assert_eq!(s.len(), extras.len());
        for (i, st) in s.iter().enumerate() {
            assert_eq!(st.status, 200 + i as u16);
            assert_eq!(st.error, None);
        }
        // A truncated extra member is an error, not a panic.
        for cut in 1..b.len() {
            let _ = parse_statuses_msgpack(&b[..cut]);
        }
    }

    #[test]
    fn retryable_statuses() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(is_retryable_status(s));
        }
        for s in [200, 400, 401, 403, 404, 413, 501] {
            assert!(!is_retryable_status(s));
        }
    }
}
