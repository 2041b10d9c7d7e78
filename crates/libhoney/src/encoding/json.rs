//! The JSON encoder.

use std::collections::HashSet;

use super::time::write_rfc3339;
use crate::config::NonFiniteFloats;
use crate::transmission::QueuedEvent;
use crate::value::{FieldName, Value};

/// Appends `{"data":{...},"samplerate":N,"time":"..."}`.
pub(crate) fn write_event(out: &mut Vec<u8>, ev: &QueuedEvent, nf: NonFiniteFloats) {
    out.extend_from_slice(b"{\"data\":{");
    let mut first = true;
    for (k, v) in ev.fields.iter() {
        write_entry(out, &mut first, k, v, nf);
    }
    out.push(b'}');
    if ev.sample_rate > 1 {
        out.extend_from_slice(b",\"samplerate\":");
        out.extend_from_slice(itoa::Buffer::new().format(ev.sample_rate).as_bytes());
    }
    out.extend_from_slice(b",\"time\":\"");
    write_rfc3339(out, ev.timestamp);
    out.extend_from_slice(b"\"}");
}

/// Appends just the fields as one JSON object (used by the `Writer`).
pub(crate) fn write_data<'a>(
    out: &mut Vec<u8>,
    fields: impl Iterator<Item = (&'a FieldName, &'a Value)>,
    nf: NonFiniteFloats,
) {
    out.push(b'{');
    let mut first = true;
    for (k, v) in fields {
        write_entry(out, &mut first, k, v, nf);
    }
    out.push(b'}');
}

#[inline]
fn write_entry(out: &mut Vec<u8>, first: &mut bool, k: &str, v: &Value, nf: NonFiniteFloats) {
    if nf == NonFiniteFloats::Omit && is_non_finite(v) {
        return;
    }
    if !*first {
        out.push(b',');
    }
    *first = false;
    write_str(out, k);
    out.push(b':');
    write_value(out, v, nf);
}

pub(crate) fn is_non_finite(v: &Value) -> bool {
    matches!(v, Value::Float(f) if !f.is_finite())
}

pub(crate) fn non_finite_name(f: f64) -> &'static str {
    if f.is_nan() {
        "NaN"
    } else if f > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

/// Appends one value.
pub(crate) fn write_value(out: &mut Vec<u8>, v: &Value, nf: NonFiniteFloats) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Int(i) => out.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes()),
        Value::UInt(u) => out.extend_from_slice(itoa::Buffer::new().format(*u).as_bytes()),
        Value::Float(f) => {
            if f.is_finite() {
                out.extend_from_slice(ryu::Buffer::new().format_finite(*f).as_bytes());
            } else {
                match nf {
                    NonFiniteFloats::String => {
                        out.push(b'"');
                        out.extend_from_slice(non_finite_name(*f).as_bytes());
                        out.push(b'"');
                    }
                    // Omit applies to fields; inside arrays a value cannot be
                    // left out without shifting the others, so it becomes null.
                    NonFiniteFloats::Null | NonFiniteFloats::Omit => out.extend_from_slice(b"null"),
                }
            }
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item, nf);
            }
            out.push(b']');
        }
        Value::Object(entries) => {
            out.push(b'{');
            let mut first = true;
            for_each_last_wins(entries, |k, v| write_entry(out, &mut first, k, v, nf));
            out.push(b'}');
        }
    }
}

/// Visits the entries of an object, skipping any whose key appears again later
/// (the later one wins, as for fields).
pub(crate) fn for_each_last_wins(entries: &[(FieldName, Value)], mut f: impl FnMut(&str, &Value)) {
    if entries.len() <= 16 {
        for (i, (k, v)) in entries.iter().enumerate() {
            if !entries[i + 1..].iter().any(|(k2, _)| k2 == k) {
                f(k, v);
            }
        }
    } else {
        let mut seen: HashSet<&str> = HashSet::with_capacity(entries.len());
        let mut keep = vec![false; entries.len()];
        for (i, (k, _)) in entries.iter().enumerate().rev() {
            keep[i] = seen.insert(k.as_str());
        }
        for ((k, v), keep) in entries.iter().zip(keep) {
            if keep {
                f(k, v);
            }
        }
    }
}

/// Does this 8-byte word hold a byte that JSON strings must escape (`"`, `\`
/// or a control character)? May say yes falsely, never no falsely.
#[inline]
fn word_needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let control = w.wrapping_sub(ONES * 0x20) & !w;
    let q = w ^ (ONES * u64::from(b'"'));
    let quote = q.wrapping_sub(ONES) & !q;
    let b = w ^ (ONES * u64::from(b'\\'));
    let backslash = b.wrapping_sub(ONES) & !b;
    (control | quote | backslash) & HIGH != 0
}

#[inline]
fn byte_needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// The index of the first byte to escape, scanning eight bytes at a time.
#[inline]
fn first_escape(bytes: &[u8]) -> Option<usize> {
    let mut i = 0;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let w = u64::from_le_bytes([
            chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7],
        ]);
        if word_needs_escape(w) {
            if let Some(j) = chunk.iter().position(|&b| byte_needs_escape(b)) {
                return Some(i + j);
            }
        }
        i += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| byte_needs_escape(b))
        .map(|j| i + j)
}

/// Appends a JSON string literal, escaping `"`, `\` and control characters.
/// Runs of plain text are copied whole.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(s.len() + 2);
    out.push(b'"');
    let mut rest = s.as_bytes();
    while let Some(i) = first_escape(rest) {
        out.extend_from_slice(&rest[..i]);
        let b = rest[i];
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 15)]);
            }
        }
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: &Value, nf: NonFiniteFloats) -> String {
        let mut out = Vec::new();
        write_value(&mut out, v, nf);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_byte_value_at_every_offset_escapes_right() {
        for b in 0u8..128 {
            for offset in 0..17 {
                let mut s = "x".repeat(offset);
                s.push(char::from(b));
                s.push_str("tail");
                let json = enc(&Value::from(s.as_str()), NonFiniteFloats::String);
                let back: String = serde_json::from_str(&json).unwrap();
                assert_eq!(back, s, "byte {b} at {offset}");
                assert_eq!(
                    json,
                    serde_json::to_string(&s).unwrap(),
                    "byte {b} at {offset}"
                );
            }
        }
    }

    #[test]
    fn strings_are_escaped_and_parse_back() {
        for s in [
            "plain",
            "quote\"back\\slash",
            "ctl\u{0}\u{1f}\n\r\t\u{8}\u{c}",
            "ünï😀",
            "",
        ] {
            let json = enc(&Value::from(s), NonFiniteFloats::String);
            let back: String = serde_json::from_str(&json).unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn numbers_and_non_finite() {
        assert_eq!(enc(&Value::Int(-5), NonFiniteFloats::String), "-5");
        assert_eq!(
            enc(&Value::UInt(u64::MAX), NonFiniteFloats::String),
            "18446744073709551615"
        );
        assert_eq!(enc(&Value::Float(1.5), NonFiniteFloats::String), "1.5");
        assert_eq!(
            enc(&Value::Float(f64::NAN), NonFiniteFloats::String),
            "\"NaN\""
        );
        assert_eq!(
            enc(&Value::Float(f64::INFINITY), NonFiniteFloats::String),
            "\"Infinity\""
        );
        assert_eq!(
            enc(&Value::Float(f64::NEG_INFINITY), NonFiniteFloats::Null),
            "null"
        );
        let arr = Value::Array(vec![Value::Float(f64::NAN), Value::Int(1)]);
        assert_eq!(enc(&arr, NonFiniteFloats::Omit), "[null,1]");
        let obj = Value::Object(vec![
            ("a".into(), Value::Float(f64::NAN)),
            ("b".into(), Value::Int(1)),
        ]);
        assert_eq!(enc(&obj, NonFiniteFloats::Omit), "{\"b\":1}");
    }

    #[test]
    fn nested_objects_last_write_wins() {
        let obj = Value::Object(vec![
            ("a".into(), Value::Int(1)),
            ("b".into(), Value::Int(2)),
            ("a".into(), Value::Int(3)),
        ]);
        assert_eq!(enc(&obj, NonFiniteFloats::String), "{\"b\":2,\"a\":3}");
        let many: Vec<(FieldName, Value)> = (0..40)
            .map(|i| (format!("k{}", i % 20).into(), Value::Int(i)))
            .collect();
        let json = enc(&Value::Object(many), NonFiniteFloats::String);
        let back: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&json).unwrap();
        assert_eq!(back.len(), 20);
        assert_eq!(back["k3"], 23);
    }
}
