//! msgpack body scanning (hand-written, zero-copy, no allocation unless
//! values are wanted).
//!
//! The body has the same shape as the JSON one: an array of maps with the
//! keys `data`, `time` and `samplerate`. `time` may be a string, an epoch
//! number or the msgpack timestamp extension (type -1). In recorded values,
//! `bin` becomes a (lossy UTF-8) string, timestamps become RFC 3339 strings,
//! and non-finite floats become the strings `"NaN"`, `"Infinity"` and
//! `"-Infinity"` (JSON cannot hold them).

use serde_json::{Map, Number, Value};

use crate::scan::{
    samplerate_from_f64, EventCheck, EventScan, Parsed, ScanOptions, ERR_EVENT_TOO_LARGE,
    ERR_MALFORMED, ERR_STRING_TOO_LONG, ERR_TOO_MANY_COLUMNS, MAX_DEPTH, MAX_EVENT, MAX_FIELDS,
    MAX_STRING,
};
use crate::timefmt;

/// A decoding failure; the caller maps it to the right error string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed;

/// One msgpack token. Containers carry their element counts.
#[derive(Debug, Clone, Copy)]
enum Tok<'a> {
    Nil,
    Bool(bool),
    UInt(u64),
    Int(i64),
    Float(f64),
    Str(&'a [u8]),
    Bin(&'a [u8]),
    Array(u32),
    Map(u32),
    Ext(i8, &'a [u8]),
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        let end = self.pos.checked_add(n).ok_or(Malformed)?;
        let s = self.buf.get(self.pos..end).ok_or(Malformed)?;
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }

    fn be<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// An `N`-byte big-endian length.
    #[inline(always)]
    fn len<const N: usize>(&mut self) -> Result<usize, Malformed> {
        Ok(self.be::<N>()?.iter().fold(0, |n, &b| n << 8 | b as usize))
    }

    /// Bytes preceded by their `N`-byte length (str and bin).
    #[inline(always)]
    fn sized<const N: usize>(&mut self) -> Result<&'a [u8], Malformed> {
        let len = self.len::<N>()?;
        self.take(len)
    }

    /// An extension of `len` bytes: its type byte, then the bytes.
    fn ext(&mut self, len: usize) -> Result<Tok<'a>, Malformed> {
        let ty = self.u8()? as i8;
        Ok(Tok::Ext(ty, self.take(len)?))
    }

    /// An extension preceded by its `N`-byte length.
    #[inline(always)]
    fn sized_ext<const N: usize>(&mut self) -> Result<Tok<'a>, Malformed> {
        let len = self.len::<N>()?;
        self.ext(len)
    }

    fn next(&mut self) -> Result<Tok<'a>, Malformed> {
        let m = self.u8()?;
        Ok(match m {
            0x00..=0x7f => Tok::UInt(m as u64),
            0x80..=0x8f => Tok::Map((m & 0x0f) as u32),
            0x90..=0x9f => Tok::Array((m & 0x0f) as u32),
            0xa0..=0xbf => Tok::Str(self.take((m & 0x1f) as usize)?),
            0xc0 => Tok::Nil,
            0xc1 => return Err(Malformed),
            0xc2 => Tok::Bool(false),
            0xc3 => Tok::Bool(true),
            0xc4 => Tok::Bin(self.sized::<1>()?),
            0xc5 => Tok::Bin(self.sized::<2>()?),
            0xc6 => Tok::Bin(self.sized::<4>()?),
            0xc7 => self.sized_ext::<1>()?,
            0xc8 => self.sized_ext::<2>()?,
            0xc9 => self.sized_ext::<4>()?,
            0xca => Tok::Float(f32::from_be_bytes(self.be()?) as f64),
            0xcb => Tok::Float(f64::from_be_bytes(self.be()?)),
            0xcc => Tok::UInt(self.u8()? as u64),
            0xcd => Tok::UInt(u16::from_be_bytes(self.be()?) as u64),
            0xce => Tok::UInt(u32::from_be_bytes(self.be()?) as u64),
            0xcf => Tok::UInt(u64::from_be_bytes(self.be()?)),
            0xd0 => Tok::Int(self.u8()? as i8 as i64),
            0xd1 => Tok::Int(i16::from_be_bytes(self.be()?) as i64),
            0xd2 => Tok::Int(i32::from_be_bytes(self.be()?) as i64),
            0xd3 => Tok::Int(i64::from_be_bytes(self.be()?)),
            0xd4 => self.ext(1)?,
            0xd5 => self.ext(2)?,
            0xd6 => self.ext(4)?,
            0xd7 => self.ext(8)?,
            0xd8 => self.ext(16)?,
            0xd9 => Tok::Str(self.sized::<1>()?),
            0xda => Tok::Str(self.sized::<2>()?),
            0xdb => Tok::Str(self.sized::<4>()?),
            0xdc => Tok::Array(u16::from_be_bytes(self.be()?) as u32),
            0xdd => Tok::Array(u32::from_be_bytes(self.be()?)),
            0xde => Tok::Map(u16::from_be_bytes(self.be()?) as u32),
            0xdf => Tok::Map(u32::from_be_bytes(self.be()?)),
            0xe0..=0xff => Tok::Int(m as i8 as i64),
        })
    }

    /// Skips one complete value (structure check only).
    fn skip(&mut self, depth: usize) -> Result<(), Malformed> {
        if depth > MAX_DEPTH {
            return Err(Malformed);
        }
        let tok = self.next()?;
        self.skip_children(tok, depth)
    }

    /// Skips the children of an already-read token (nothing for scalars).
    fn skip_children(&mut self, tok: Tok<'a>, depth: usize) -> Result<(), Malformed> {
        match tok {
            Tok::Array(n) => {
                if depth > MAX_DEPTH {
                    return Err(Malformed);
                }
                for _ in 0..n {
                    self.skip(depth + 1)?;
                }
            }
            Tok::Map(n) => {
                if depth > MAX_DEPTH {
                    return Err(Malformed);
                }
                for _ in 0..n {
                    self.skip(depth + 1)?;
                    self.skip(depth + 1)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Decodes a msgpack timestamp extension payload into (seconds, nanoseconds).
fn timestamp(payload: &[u8]) -> Option<(i64, u32)> {
    match payload.len() {
        4 => Some((u32::from_be_bytes(payload.try_into().ok()?) as i64, 0)),
        8 => {
            let v = u64::from_be_bytes(payload.try_into().ok()?);
            let nanos = (v >> 34) as u32;
            let secs = (v & 0x3_ffff_ffff) as i64;
            (nanos < 1_000_000_000).then_some((secs, nanos))
        }
        12 => {
            let nanos = u32::from_be_bytes(payload[..4].try_into().ok()?);
            let secs = i64::from_be_bytes(payload[4..].try_into().ok()?);
            (nanos < 1_000_000_000).then_some((secs, nanos))
        }
        _ => None,
    }
}

fn timestamp_string(payload: &[u8]) -> Option<String> {
    let (s, n) = timestamp(payload)?;
    Some(timefmt::rfc3339_from_unix(s, n).unwrap_or_else(|| format!("{s}.{n:09}")))
}

/// Scans a `/1/batch` msgpack body; see [`crate::json::scan_batch`].
///
/// One pass validates structure and rules (no allocation); values are
/// decoded afterwards, only when wanted and only for valid events.
pub(crate) fn scan_batch(
    body: &[u8],
    opts: ScanOptions<'_>,
    out: &mut Vec<EventCheck>,
) -> Result<(), &'static str> {
    let mut r = Reader::new(body);
    let n = match r.next().map_err(|_| ERR_MALFORMED)? {
        Tok::Array(n) if n > 0 => n,
        _ => return Err(ERR_MALFORMED),
    };
    for _ in 0..n {
        let start = r.pos;
        let mut ev = EventScan::default();
        scan_event(&mut r, opts, &mut ev).map_err(|_| ERR_MALFORMED)?;
        let enc = &body[start..r.pos];
        out.push(ev.verdict(enc.len(), opts, || {
            check_event_inner(enc, opts).unwrap_or_else(EventCheck::invalid)
        }));
    }
    if r.pos != body.len() {
        return Err(ERR_MALFORMED);
    }
    Ok(())
}

/// Scans a `/1/events` msgpack body (one map of fields).
pub(crate) fn scan_single(body: &[u8], opts: ScanOptions<'_>) -> Result<EventCheck, &'static str> {
    if body.len() > MAX_EVENT {
        return Err(ERR_EVENT_TOO_LARGE);
    }
    let mut r = Reader::new(body);
    let mut ev = EventScan::default();
    scan_data(&mut r, 1, opts, &mut ev).map_err(|_| ERR_MALFORMED)?;
    if r.pos != body.len() {
        return Err(ERR_MALFORMED);
    }
    if let Some(e) = ev.violation {
        return Err(e);
    }
    let data = if opts.want_values {
        let mut r = Reader::new(body);
        let mut tracked = None;
        check_data(&mut r, opts, &mut tracked)?
    } else {
        None
    };
    Ok(EventCheck::valid(
        ev.tracked,
        data.map(|data| Parsed {
            data,
            time: None,
            samplerate: None,
        }),
    ))
}

/// Reads the header of a map at nesting `depth` (an event, or its `data`):
/// its length, or `None` once a value of another type has been skipped and
/// the event marked malformed.
#[inline]
fn map_len(r: &mut Reader<'_>, depth: usize, ev: &mut EventScan) -> Result<Option<u32>, Malformed> {
    match r.next()? {
        Tok::Map(n) => Ok(Some(n)),
        other => {
            ev.violate(ERR_MALFORMED);
            r.skip_children(other, depth)?;
            Ok(None)
        }
    }
}

/// Reads the key of a member of such a map, at nesting `depth`: a string
/// (or binary), or `None` once a key of another type and its value have been
/// skipped and the event marked malformed.
#[inline]
fn member_key<'a>(
    r: &mut Reader<'a>,
    depth: usize,
    ev: &mut EventScan,
) -> Result<Option<&'a [u8]>, Malformed> {
    match r.next()? {
        Tok::Str(k) | Tok::Bin(k) => Ok(Some(k)),
        other => {
            ev.violate(ERR_MALFORMED);
            r.skip_children(other, depth)?;
            r.skip(depth)?;
            Ok(None)
        }
    }
}

/// Validating pass over one batch element. `Err` only for structural
/// damage; rule violations are recorded in `ev`.
fn scan_event(
    r: &mut Reader<'_>,
    opts: ScanOptions<'_>,
    ev: &mut EventScan,
) -> Result<(), Malformed> {
    let Some(n) = map_len(r, 2, ev)? else {
        return Ok(());
    };
    for _ in 0..n {
        let Some(key) = member_key(r, 3, ev)? else {
            continue;
        };
        match key {
            b"data" => {
                ev.data_seen += 1;
                scan_data(r, 3, opts, ev)?;
            }
            b"time" => match r.next()? {
                Tok::Nil | Tok::Str(_) | Tok::UInt(_) | Tok::Int(_) | Tok::Float(_) => {}
                Tok::Ext(-1, p) if timestamp(p).is_some() => {}
                other => {
                    ev.violate(ERR_MALFORMED);
                    r.skip_children(other, 3)?;
                }
            },
            b"samplerate" => match r.next()? {
                Tok::Nil | Tok::UInt(_) => {}
                Tok::Int(i) if i >= 0 => {}
                Tok::Float(f) if samplerate_from_f64(f).is_some() => {}
                other => {
                    ev.violate(ERR_MALFORMED);
                    r.skip_children(other, 3)?;
                }
            },
            _ => r.skip(3)?,
        }
    }
    Ok(())
}

/// Validating pass over a `data` map at nesting `depth`.
fn scan_data(
    r: &mut Reader<'_>,
    depth: usize,
    opts: ScanOptions<'_>,
    ev: &mut EventScan,
) -> Result<(), Malformed> {
    let Some(n) = map_len(r, depth, ev)? else {
        return Ok(());
    };
    if n as usize > MAX_FIELDS {
        ev.violate(ERR_TOO_MANY_COLUMNS);
    }
    for _ in 0..n {
        let Some(key) = member_key(r, depth + 1, ev)? else {
            continue;
        };
        if opts.track.is_some_and(|t| t.as_bytes() == key) {
            let tok = r.next()?;
            match tok {
                Tok::UInt(u) => ev.tracked = Some(u),
                Tok::Int(i) => ev.tracked = Some(i as u64),
                _ => check_token(r, tok, depth + 1, ev)?,
            }
        } else {
            let tok = r.next()?;
            check_token(r, tok, depth + 1, ev)?;
        }
    }
    Ok(())
}

/// Validates a value whose first token was just read: string sizes at any
/// depth, map keys, extension types.
fn check_token<'a>(
    r: &mut Reader<'a>,
    tok: Tok<'a>,
    depth: usize,
    ev: &mut EventScan,
) -> Result<(), Malformed> {
    match tok {
        Tok::Str(s) | Tok::Bin(s) => {
            if s.len() > MAX_STRING {
                ev.violate(ERR_STRING_TOO_LONG);
            }
        }
        Tok::Ext(ty, p) => {
            if ty != -1 || timestamp(p).is_none() {
                ev.violate(ERR_MALFORMED);
            }
        }
        Tok::Array(n) => {
            if depth > MAX_DEPTH {
                return Err(Malformed);
            }
            for _ in 0..n {
                let t = r.next()?;
                check_token(r, t, depth + 1, ev)?;
            }
        }
        Tok::Map(n) => {
            if depth > MAX_DEPTH {
                return Err(Malformed);
            }
            for _ in 0..n {
                match r.next()? {
                    Tok::Str(_) | Tok::Bin(_) | Tok::UInt(_) | Tok::Int(_) => {}
                    other => {
                        ev.violate(ERR_MALFORMED);
                        r.skip_children(other, depth + 1)?;
                    }
                }
                let t = r.next()?;
                check_token(r, t, depth + 1, ev)?;
            }
        }
        Tok::Nil | Tok::Bool(_) | Tok::UInt(_) | Tok::Int(_) | Tok::Float(_) => {}
    }
    Ok(())
}

/// Decodes one valid event given as its exact msgpack encoding (values
/// wanted).
fn check_event_inner(enc: &[u8], opts: ScanOptions<'_>) -> Result<EventCheck, &'static str> {
    let mut r = Reader::new(enc);
    let n = match r.next() {
        Ok(Tok::Map(n)) => n,
        _ => return Err(ERR_MALFORMED),
    };
    let mut tracked = None;
    let mut data = None;
    let mut seen_data = false;
    let mut time = None;
    let mut samplerate = None;
    for _ in 0..n {
        let key = match r.next().map_err(|_| ERR_MALFORMED)? {
            Tok::Str(k) | Tok::Bin(k) => k,
            _ => return Err(ERR_MALFORMED),
        };
        match key {
            b"data" => {
                seen_data = true;
                data = check_data(&mut r, opts, &mut tracked)?;
            }
            b"time" if !opts.want_values => match r.next().map_err(|_| ERR_MALFORMED)? {
                Tok::Nil | Tok::Str(_) | Tok::UInt(_) | Tok::Int(_) | Tok::Float(_) => {}
                Tok::Ext(-1, p) if timestamp(p).is_some() => {}
                _ => return Err(ERR_MALFORMED),
            },
            b"time" => {
                time = match r.next().map_err(|_| ERR_MALFORMED)? {
                    Tok::Nil => None,
                    Tok::Str(s) => Some(String::from_utf8_lossy(s).into_owned()),
                    Tok::Ext(-1, p) => Some(timestamp_string(p).ok_or(ERR_MALFORMED)?),
                    Tok::UInt(u) => Some(match i64::try_from(u) {
                        Ok(i) => timefmt::rfc3339_from_unix(i, 0).unwrap_or_else(|| u.to_string()),
                        Err(_) => u.to_string(),
                    }),
                    Tok::Int(i) => {
                        Some(timefmt::rfc3339_from_unix(i, 0).unwrap_or_else(|| i.to_string()))
                    }
                    Tok::Float(f) => {
                        Some(timefmt::rfc3339_from_f64(f).unwrap_or_else(|| f.to_string()))
                    }
                    _ => return Err(ERR_MALFORMED),
                };
            }
            b"samplerate" => {
                samplerate = match r.next().map_err(|_| ERR_MALFORMED)? {
                    Tok::Nil => None,
                    Tok::UInt(u) => Some(u),
                    Tok::Int(i) => Some(u64::try_from(i).map_err(|_| ERR_MALFORMED)?),
                    Tok::Float(f) => Some(samplerate_from_f64(f).ok_or(ERR_MALFORMED)?),
                    _ => return Err(ERR_MALFORMED),
                };
            }
            _ => r.skip(1).map_err(|_| ERR_MALFORMED)?,
        }
    }
    if !seen_data {
        return Err(ERR_MALFORMED);
    }
    Ok(EventCheck::valid(
        tracked,
        data.map(|data| Parsed {
            data,
            time,
            samplerate,
        }),
    ))
}

/// Validates a `data` map at the reader's position; returns its value when
/// wanted.
fn check_data(
    r: &mut Reader<'_>,
    opts: ScanOptions<'_>,
    tracked: &mut Option<u64>,
) -> Result<Option<Map<String, Value>>, &'static str> {
    let n = match r.next().map_err(|_| ERR_MALFORMED)? {
        Tok::Map(n) => n as usize,
        _ => return Err(ERR_MALFORMED),
    };
    if n > MAX_FIELDS {
        return Err(ERR_TOO_MANY_COLUMNS);
    }
    let mut map = opts.want_values.then(Map::new);
    for _ in 0..n {
        let key = match r.next().map_err(|_| ERR_MALFORMED)? {
            Tok::Str(k) | Tok::Bin(k) => k,
            _ => return Err(ERR_MALFORMED),
        };
        let is_tracked = opts.track.is_some_and(|t| t.as_bytes() == key);
        let v = value(r, 1, opts.want_values, is_tracked.then_some(&mut *tracked))?;
        if let (Some(m), Some(v)) = (map.as_mut(), v) {
            m.insert(String::from_utf8_lossy(key).into_owned(), v);
        }
    }
    Ok(map)
}

fn non_finite(f: f64) -> Value {
    Value::String(
        if f.is_nan() {
            "NaN"
        } else if f > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        }
        .to_owned(),
    )
}

/// Validates one value (recursively); builds it when `want`.
fn value(
    r: &mut Reader<'_>,
    depth: usize,
    want: bool,
    tracked: Option<&mut Option<u64>>,
) -> Result<Option<Value>, &'static str> {
    if depth > MAX_DEPTH {
        return Err(ERR_MALFORMED);
    }
    let tok = r.next().map_err(|_| ERR_MALFORMED)?;
    if let Some(t) = tracked {
        match tok {
            Tok::UInt(u) => *t = Some(u),
            Tok::Int(i) => *t = Some(i as u64),
            _ => {}
        }
    }
    match tok {
        Tok::Str(s) | Tok::Bin(s) if s.len() > MAX_STRING => return Err(ERR_STRING_TOO_LONG),
        Tok::Ext(ty, p) if ty != -1 || timestamp(p).is_none() => return Err(ERR_MALFORMED),
        Tok::Array(n) => {
            let mut arr = Vec::new();
            for _ in 0..n {
                let v = value(r, depth + 1, want, None)?;
                if let Some(v) = v {
                    arr.push(v);
                }
            }
            return Ok(want.then_some(Value::Array(arr)));
        }
        Tok::Map(n) => {
            let mut m = Map::new();
            for _ in 0..n {
                let k = match r.next().map_err(|_| ERR_MALFORMED)? {
                    Tok::Str(k) | Tok::Bin(k) => String::from_utf8_lossy(k).into_owned(),
                    Tok::UInt(u) => u.to_string(),
                    Tok::Int(i) => i.to_string(),
                    _ => return Err(ERR_MALFORMED),
                };
                let v = value(r, depth + 1, want, None)?;
                if let Some(v) = v {
                    m.insert(k, v);
                }
            }
            return Ok(want.then_some(Value::Object(m)));
        }
        _ => {}
    }
    if !want {
        return Ok(None);
    }
    let v = match tok {
        Tok::Nil => Value::Null,
        Tok::Bool(b) => Value::Bool(b),
        Tok::UInt(u) => Value::Number(u.into()),
        Tok::Int(i) => Value::Number(i.into()),
        Tok::Float(f) => Number::from_f64(f).map_or_else(|| non_finite(f), Value::Number),
        Tok::Str(s) | Tok::Bin(s) => Value::String(String::from_utf8_lossy(s).into_owned()),
        Tok::Ext(_, p) => Value::String(timestamp_string(p).ok_or(ERR_MALFORMED)?),
        Tok::Array(_) | Tok::Map(_) => return Err(ERR_MALFORMED),
    };
    Ok(Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::test_opts as opts;

    fn fixstr(out: &mut Vec<u8>, s: &str) {
        assert!(s.len() < 32);
        out.push(0xa0 | s.len() as u8);
        out.extend_from_slice(s.as_bytes());
    }

    #[test]
    fn batch_with_timestamp() {
        let mut b = vec![0x92];
        // event 1: {"data":{"seq":5,"f":1.5},"time":ts96,"samplerate":2}
        b.push(0x83);
        fixstr(&mut b, "data");
        b.push(0x82);
        fixstr(&mut b, "seq");
        b.push(5);
        fixstr(&mut b, "f");
        b.push(0xcb);
        b.extend_from_slice(&1.5f64.to_be_bytes());
        fixstr(&mut b, "time");
        b.extend_from_slice(&[0xc7, 12, 0xff]);
        b.extend_from_slice(&123_000_000u32.to_be_bytes());
        b.extend_from_slice(&1_714_558_272i64.to_be_bytes());
        fixstr(&mut b, "samplerate");
        b.push(2);
        // event 2: {"nodata":1}
        b.push(0x81);
        fixstr(&mut b, "nodata");
        b.push(1);
        let mut out = Vec::new();
        scan_batch(&b, opts(true), &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert!(out[0].error.is_none());
        assert_eq!(out[0].tracked, Some(5));
        let p = out[0].parsed.as_ref().unwrap();
        assert_eq!(p.time.as_deref(), Some("2024-05-01T10:11:12.123Z"));
        assert_eq!(p.samplerate, Some(2));
        assert_eq!(p.data["f"], 1.5);
        assert_eq!(out[1].error, Some(ERR_MALFORMED));
        // Truncations are request-level errors, never panics.
        for i in 0..b.len() {
            let mut o = Vec::new();
            assert!(scan_batch(&b[..i], opts(true), &mut o).is_err());
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x1234_5678_u64;
        for len in 0..400 {
            let mut b = Vec::with_capacity(len);
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                b.push(seed as u8);
            }
            b.insert(0, 0x91);
            let mut o = Vec::new();
            let _ = scan_batch(&b, opts(true), &mut o);
            let _ = scan_single(&b, opts(true));
        }
    }

    /// The validating pass and the value-building pass agree on every event
    /// of randomly mutated bodies (so recording never changes verdicts).
    #[test]
    fn fast_and_value_passes_agree() {
        let mut base = vec![0x93];
        for seq in 0..3u8 {
            base.push(0x83);
            fixstr(&mut base, "data");
            base.push(0x84);
            fixstr(&mut base, "seq");
            base.push(seq);
            fixstr(&mut base, "s");
            fixstr(&mut base, "hello");
            fixstr(&mut base, "m");
            base.extend_from_slice(&[0x82, 0x01, 0xc3, 0xa1, b'k', 0x92, 0xc0, 0xcb]);
            base.extend_from_slice(&2.5f64.to_be_bytes());
            fixstr(&mut base, "t");
            base.extend_from_slice(&[0xd6, 0xff, 0, 0, 0, 1]);
            fixstr(&mut base, "time");
            base.extend_from_slice(&[0xd7, 0xff, 0, 0, 0, 0, 0, 0, 0, 9]);
            fixstr(&mut base, "samplerate");
            base.push(4);
        }
        let mut ok = Vec::new();
        scan_batch(&base, opts(false), &mut ok).unwrap();
        assert!(ok.iter().all(|c| c.error.is_none()));
        let mut seed = 0x51u64;
        let (mut same_len, mut total) = (0, 0);
        for _ in 0..8_000 {
            let mut b = base.clone();
            for _ in 0..1 + seed % 3 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let p = (seed % b.len() as u64) as usize;
                b[p] = (seed >> 32) as u8;
            }
            let (mut fast, mut full) = (Vec::new(), Vec::new());
            let rf = scan_batch(&b, opts(false), &mut fast);
            let rv = scan_batch(&b, opts(true), &mut full);
            assert_eq!(rf.is_ok(), rv.is_ok(), "{b:x?}");
            if rf.is_ok() {
                total += 1;
                same_len += 1;
                let ef: Vec<_> = fast.iter().map(|c| (c.error, c.tracked)).collect();
                let ev: Vec<_> = full.iter().map(|c| (c.error, c.tracked)).collect();
                assert_eq!(ef, ev, "{b:x?}");
            }
        }
        assert!(total > 400 && same_len == total, "{total}");
    }

    #[test]
    fn deep_nesting_is_rejected() {
        let mut b = vec![0x91, 0x81];
        fixstr(&mut b, "data");
        b.push(0x81);
        fixstr(&mut b, "a");
        b.extend(std::iter::repeat_n(0x91, 100_000));
        b.push(0xc0);
        let mut o = Vec::new();
        assert_eq!(scan_batch(&b, opts(false), &mut o), Err(ERR_MALFORMED));
    }
}
