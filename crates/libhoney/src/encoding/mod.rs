//! Encoding events for the wire: JSON and msgpack batch bodies, RFC 3339 times.
//!
//! Encoders are hand-written over a byte buffer (no intermediate tree, no
//! per-field allocation): an event is encoded once, straight into its batch's
//! body. Both encodings carry the same shape:
//! `{"data": {...}, "samplerate": N, "time": "..."}`, with `samplerate` left out
//! when it is 1. In msgpack, `time` is the msgpack timestamp extension (type -1).

pub(crate) mod json;
pub(crate) mod msgpack;
pub(crate) mod time;

use crate::config::{Encoding, NonFiniteFloats};
use crate::transmission::QueuedEvent;

/// Appends one event to a batch body being built.
pub(crate) fn write_event(enc: Encoding, out: &mut Vec<u8>, ev: &QueuedEvent, nf: NonFiniteFloats) {
    match enc {
        Encoding::Json => json::write_event(out, ev, nf),
        Encoding::Msgpack => msgpack::write_event(out, ev, nf),
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
        match enc {
            Encoding::Json => buf.push(b'['),
            Encoding::Msgpack => msgpack::write_array32_placeholder(&mut buf),
        }
        BatchBody { enc, buf, count: 0 }
    }

    /// Bytes a body of this encoding spends on framing: the JSON array's
    /// brackets, or the msgpack array header.
    pub(crate) fn framing(enc: Encoding) -> usize {
        match enc {
            Encoding::Json => 2,
            Encoding::Msgpack => 5,
        }
    }

    pub(crate) fn count(&self) -> usize {
        self.count
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
            Encoding::Json => self.buf.push(b']'),
            Encoding::Msgpack => msgpack::patch_array32(&mut self.buf, 0, self.count),
        }
        self.buf
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PushError {
    EventTooLarge(usize),
    BodyFull,
}
