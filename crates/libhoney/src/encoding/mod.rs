//! Encoding events for the wire: JSON and msgpack batch bodies, RFC 3339 times.
//!
//! Encoders are hand-written over a byte buffer (no intermediate tree, no
//! per-field allocation): an event is encoded once, straight into its batch's
//! body. Both encodings carry the same shape:
//! `{"data": {...}, "samplerate": N, "time": "..."}`, with `samplerate` left out
//! when it is 1. In msgpack, `time` is the msgpack timestamp extension (type -1).
//!
//! msgpack needs the `msgpack` feature. `Config::resolve` refuses
//! `Encoding::Msgpack` in a build without it, so the bodies here are only
//! ever written in an encoding the build has; were one asked for msgpack
//! anyway, it would get JSON (see [`written`]), and its `Content-Type`
//! would say JSON too.

pub(crate) mod json;
#[cfg(feature = "msgpack")]
pub(crate) mod msgpack;
pub(crate) mod time;

use crate::config::{Encoding, NonFiniteFloats};
use crate::transmission::QueuedEvent;

/// Copies `b` (at most 32 bytes) to the start of `o` as two fixed-size,
/// possibly overlapping pieces (byte by byte under four), not as one copy of
/// variable length, which costs a call to `memcpy` for a few bytes. Both
/// encoders write their short strings this way, over a fixed-size template
/// already appended to the output (see `json::write_quoted`).
#[inline(always)]
pub(crate) fn put_short(o: &mut [u8], b: &[u8]) {
    let n = b.len();
    debug_assert!(n <= 32);
    if n >= 16 {
        o[..16].copy_from_slice(&b[..16]);
        o[n - 16..n].copy_from_slice(&b[n - 16..]);
    } else if n >= 8 {
        o[..8].copy_from_slice(&b[..8]);
        o[n - 8..n].copy_from_slice(&b[n - 8..]);
    } else if n >= 4 {
        o[..4].copy_from_slice(&b[..4]);
        o[n - 4..n].copy_from_slice(&b[n - 4..]);
    } else if n > 0 {
        // Bytes 0, n/2 and n-1 cover all of a string of one to three bytes.
        o[0] = b[0];
        o[n / 2] = b[n / 2];
        o[n - 1] = b[n - 1];
    }
}

/// The encoding a body asked to be in `enc` is written in: `enc` itself,
/// or JSON for msgpack in a build without the `msgpack` feature (which
/// `Config::resolve` refuses, so that this never happens in practice).
pub(crate) const fn written(enc: Encoding) -> Encoding {
    match enc {
        Encoding::Msgpack if cfg!(feature = "msgpack") => Encoding::Msgpack,
        _ => Encoding::Json,
    }
}

/// Appends one event to a batch body being built.
pub(crate) fn write_event(enc: Encoding, out: &mut Vec<u8>, ev: &QueuedEvent, nf: NonFiniteFloats) {
    match written(enc) {
        #[cfg(feature = "msgpack")]
        Encoding::Msgpack => msgpack::write_event(out, ev, nf),
        _ => json::write_event(out, ev, nf),
    }
}

/// A batch body under construction: `[ev,ev,...]` in JSON, or an array in msgpack
/// whose header is patched with the final count.
pub(crate) struct BatchBody {
    enc: Encoding,
    buf: Vec<u8>,
    count: usize,
}

impl BatchBody {
    /// A new, empty body written into `buf` (which must be empty; its
    /// capacity is what counts).
    pub(crate) fn new(enc: Encoding, mut buf: Vec<u8>) -> Self {
        debug_assert!(buf.is_empty());
        let enc = written(enc);
        match enc {
            #[cfg(feature = "msgpack")]
            Encoding::Msgpack => msgpack::write_array32_placeholder(&mut buf),
            _ => buf.push(b'['),
        }
        BatchBody { enc, buf, count: 0 }
    }

    /// Bytes a body of this encoding spends on framing: the JSON array's
    /// brackets, or the msgpack array header.
    pub(crate) fn framing(enc: Encoding) -> usize {
        match written(enc) {
            Encoding::Msgpack => 5,
            _ => 2,
        }
    }

    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// Bytes its buffer holds allocated (at least [`len`](Self::len)).
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Size of the finished body if it ended now.
    pub(crate) fn len(&self) -> usize {
        self.buf.len() + usize::from(self.enc == Encoding::Json)
    }

    /// Adds one event, which `write` appends (in the body's encoding).
    /// Returns the event's encoded size. If the event is larger than
    /// `max_event`, or would make the body larger than `max_body` (and the
    /// body is not empty), it is not added and the error says which.
    pub(crate) fn push(
        &mut self,
        write: impl Fn(&mut Vec<u8>),
        max_event: usize,
        max_body: usize,
    ) -> Result<usize, PushError> {
        let mark = self.buf.len();
        let sep = usize::from(self.enc == Encoding::Json && self.count > 0);
        if sep == 1 {
            self.buf.push(b',');
        }
        write(&mut self.buf);
        let size = self.buf.len() - mark - sep;
        if size > max_event {
            self.buf.truncate(mark);
            return Err(PushError::EventTooLarge(size));
        }
        if self.count > 0 && self.len() > max_body {
            self.buf.truncate(mark);
            return Err(PushError::BodyFull);
        }
        self.count += 1;
        Ok(size)
    }

    /// The finished body.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        match self.enc {
            #[cfg(feature = "msgpack")]
            Encoding::Msgpack => msgpack::patch_array32(&mut self.buf, 0, self.count),
            _ => self.buf.push(b']'),
        }
        self.buf
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PushError {
    EventTooLarge(usize),
    BodyFull,
}
