//! Entry points for the fuzz targets in `fuzz/` (and property tests): the
//! receiver's body decoding and its JSON and msgpack scanners, reachable
//! without a socket. Not part of the receiver's API; may change at any time.

use serde_json::{Map, Value};

use crate::decode::{self, DecodeError, Encoding};
use crate::scan::{EventCheck, ScanOptions};
use crate::{json, msgpack};

/// One event of a batch as the receiver would record it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The event's `data` object.
    pub data: Map<String, Value>,
    /// Its time (RFC 3339), if it has one.
    pub time: Option<String>,
    /// Its sample rate, if it has one.
    pub samplerate: Option<u64>,
}

/// Decodes a request body sent with `content_encoding`, as the receiver
/// does (gzip, zstd or identity), keeping at most `limit` decoded bytes.
/// `Err` is the receiver's answer: the body is too large or malformed.
pub fn decode_body(
    content_encoding: Option<&str>,
    wire: &[u8],
    limit: usize,
) -> Result<Vec<u8>, &'static str> {
    match Encoding::from_header(content_encoding) {
        Encoding::Identity if wire.len() > limit => Err("too large"),
        Encoding::Identity => Ok(wire.to_vec()),
        Encoding::Unsupported => Err("malformed"),
        enc => {
            let mut out = Vec::new();
            match decode::decode_into(enc, wire, limit, &mut out) {
                Ok(()) => Ok(out),
                Err(DecodeError::TooLarge) => Err("too large"),
                Err(DecodeError::Malformed) => Err("malformed"),
            }
        }
    }
}

fn opts() -> ScanOptions<'static> {
    ScanOptions {
        want_values: true,
        track: Some("seq"),
    }
}

fn event(c: EventCheck) -> Result<Event, &'static str> {
    match (c.error, c.parsed) {
        (Some(e), _) => Err(e),
        (None, Some(p)) => Ok(Event {
            data: p.data,
            time: p.time,
            samplerate: p.samplerate,
        }),
        (None, None) => Err("accepted without values"),
    }
}

/// Scans a decoded `/1/batch` body (`msgpack` or JSON) as the receiver
/// does: `Err` is a request-level error (the API's message); otherwise one
/// result per event, `Ok` for an accepted event with its content.
pub fn scan_batch(
    body: &[u8],
    msgpack: bool,
) -> Result<Vec<Result<Event, &'static str>>, &'static str> {
    let mut checks = Vec::new();
    if msgpack {
        msgpack::scan_batch(body, opts(), &mut checks)?;
    } else {
        json::scan_batch(body, opts(), &mut checks)?;
    }
    Ok(checks.into_iter().map(event).collect())
}

/// Scans a decoded `/1/events` body (one object of fields).
pub fn scan_single(body: &[u8], msgpack: bool) -> Result<Map<String, Value>, &'static str> {
    let c = if msgpack {
        msgpack::scan_single(body, opts())?
    } else {
        json::scan_single(body, opts())?
    };
    event(c).map(|e| e.data)
}
