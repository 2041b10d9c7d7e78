//! The msgpack encoder: the same shape as JSON, `time` as a timestamp extension.

use rmp::encode;

use super::json::{for_each_last_wins, is_non_finite, non_finite_name};
use super::put_short;
use super::time::unix_parts;
use crate::config::NonFiniteFloats;
use crate::transmission::QueuedEvent;
use crate::value::Value;

// Writing to a Vec<u8> cannot fail, so the io::Results of rmp are ignored.

/// Appends `{"data":{...},"samplerate":N,"time":<timestamp ext>}`.
pub(crate) fn write_event(out: &mut Vec<u8>, ev: &QueuedEvent, nf: NonFiniteFloats) {
    let _ = encode::write_map_len(out, if ev.sample_rate > 1 { 3 } else { 2 });
    write_str(out, "data");
    let at = write_map32_placeholder(out);
    let mut n = 0usize;
    for (k, v) in ev.fields.iter() {
        if nf == NonFiniteFloats::Omit && is_non_finite(v) {
            continue;
        }
        write_str(out, k);
        write_value(out, v, nf, Value::MAX_DEPTH);
        n += 1;
    }
    patch_map32(out, at, n);
    if ev.sample_rate > 1 {
        write_str(out, "samplerate");
        let _ = encode::write_uint(out, u64::from(ev.sample_rate));
    }
    write_str(out, "time");
    write_timestamp(out, ev.timestamp);
}

/// The msgpack timestamp extension (type -1), in its 64-bit form when it fits.
pub(crate) fn write_timestamp(out: &mut Vec<u8>, t: std::time::SystemTime) {
    let (secs, nanos) = unix_parts(t);
    if (0..(1i64 << 34)).contains(&secs) {
        let _ = encode::write_ext_meta(out, 8, -1);
        let v = (u64::from(nanos) << 34) | secs as u64;
        out.extend_from_slice(&v.to_be_bytes());
    } else {
        let _ = encode::write_ext_meta(out, 12, -1);
        out.extend_from_slice(&nanos.to_be_bytes());
        out.extend_from_slice(&secs.to_be_bytes());
    }
}

/// Appends one value, which may nest `left` more levels of arrays and
/// objects (the recursion is bounded by it; a container past the limit is
/// written as nil, as in `json::write_value`).
fn write_value(out: &mut Vec<u8>, v: &Value, nf: NonFiniteFloats, left: usize) {
    if left == 0 && matches!(v, Value::Array(_) | Value::Object(_)) {
        let _ = encode::write_nil(out);
        return;
    }
    match v {
        Value::Null => {
            let _ = encode::write_nil(out);
        }
        Value::Bool(b) => {
            let _ = encode::write_bool(out, *b);
        }
        Value::Int(i) => {
            let _ = encode::write_sint(out, *i);
        }
        Value::UInt(u) => {
            let _ = encode::write_uint(out, *u);
        }
        Value::Float(f) => {
            if f.is_finite() {
                let _ = encode::write_f64(out, *f);
            } else {
                match nf {
                    NonFiniteFloats::String => {
                        write_str(out, non_finite_name(*f));
                    }
                    NonFiniteFloats::Null | NonFiniteFloats::Omit => {
                        let _ = encode::write_nil(out);
                    }
                }
            }
        }
        Value::String(s) => {
            write_str(out, s);
        }
        Value::Array(items) => {
            let _ = encode::write_array_len(out, items.len() as u32);
            for item in items {
                write_value(out, item, nf, left - 1);
            }
        }
        Value::Object(entries) => {
            let at = write_map32_placeholder(out);
            let mut n = 0usize;
            for_each_last_wins(entries, |k, v| {
                if nf == NonFiniteFloats::Omit && is_non_finite(v) {
                    return;
                }
                write_str(out, k);
                write_value(out, v, nf, left - 1);
                n += 1;
            });
            patch_map32(out, at, n);
        }
    }
}

/// Appends a msgpack string, byte for byte what `rmp::encode::write_str`
/// writes. Strings of up to 31 bytes (keys, most values) are a fixstr: a
/// fixed-size run of zeros is appended, the marker and the bytes are stored
/// over it in a few fixed-size (overlapping) pieces read straight from `s`,
/// and the vector is cut back (no stack copy, no per-call `io::Write`).
#[inline]
fn write_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    let n = b.len();
    if n >= 32 {
        let _ = encode::write_str_len(out, n as u32);
        out.extend_from_slice(b);
        return;
    }
    let len = out.len();
    out.extend_from_slice(&[0u8; 32]);
    let o = &mut out[len..len + 32];
    o[0] = 0xa0 | n as u8;
    put_short(&mut o[1..], b);
    out.truncate(len + 1 + n);
}

fn write_map32_placeholder(out: &mut Vec<u8>) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0xdf, 0, 0, 0, 0]);
    at
}

fn patch_map32(out: &mut [u8], at: usize, n: usize) {
    out[at + 1..at + 5].copy_from_slice(&(n as u32).to_be_bytes());
}

pub(crate) fn write_array32_placeholder(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0xdd, 0, 0, 0, 0]);
}

pub(crate) fn patch_array32(out: &mut [u8], at: usize, n: usize) {
    out[at + 1..at + 5].copy_from_slice(&(n as u32).to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_encoder_never_recurses_past_the_depth_limit() {
        let mut v = Value::from(1);
        for _ in 0..Value::MAX_DEPTH + 3 {
            v = Value::Array(vec![v]);
        }
        let mut out = Vec::new();
        write_value(&mut out, &v, NonFiniteFloats::String, Value::MAX_DEPTH);
        // MAX_DEPTH one-element array headers, then nil.
        let mut want = vec![0x91; Value::MAX_DEPTH];
        want.push(0xc0);
        assert_eq!(out, want);
    }

    #[test]
    fn strings_of_every_length_match_rmp_byte_for_byte() {
        // Every length (ASCII), and multi-byte characters at many offsets.
        for base in [
            "abcdefghijklmnopqrstuvwxyz0123456789",
            "héllo wörld, \"quoted\" \\ ",
        ] {
            let text: String = base.chars().cycle().take(300).collect();
            for end in 0..=text.len() {
                let Some(s) = text.get(..end) else { continue };
                let mut ours = b"prefix".to_vec();
                super::write_str(&mut ours, s);
                let mut theirs = b"prefix".to_vec();
                rmp::encode::write_str(&mut theirs, s).unwrap();
                assert_eq!(ours, theirs, "length {end}");
            }
        }
    }
}
