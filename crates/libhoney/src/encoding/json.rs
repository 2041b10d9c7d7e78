//! The JSON encoder.

use std::collections::HashSet;

use super::put_short;
use super::time::{put_rfc3339, write_rfc3339};
use crate::config::NonFiniteFloats;
use crate::transmission::QueuedEvent;
use crate::value::{FieldName, Value};

/// Appends `{"data":{...},"samplerate":N,"time":"..."}`.
pub(crate) fn write_event(out: &mut Vec<u8>, ev: &QueuedEvent, nf: NonFiniteFloats) {
    out.extend_from_slice(b"{\"data\":");
    let open = out.len();
    // Inherited fields not overridden, then the event's own (as
    // `LayeredFields::iter`, without the iterator adapters).
    let own = &ev.fields.own;
    if let Some(base) = &ev.fields.base {
        for (k, v) in base.iter() {
            if !own.contains(k) {
                write_field(out, k, v, nf, Value::MAX_DEPTH);
            }
        }
    }
    for (k, v) in own.iter() {
        write_field(out, k, v, nf, Value::MAX_DEPTH);
    }
    close_object(out, open);
    if ev.sample_rate > 1 {
        out.extend_from_slice(b",\"samplerate\":");
        write_u64(out, u64::from(ev.sample_rate));
    }
    // The time is written in place, over a fixed-size template.
    let len = out.len();
    out.extend_from_slice(b",\"time\":\"YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ\"}");
    if !put_rfc3339(ev.timestamp, &mut out[len + 9..len + 39]) {
        out.truncate(len);
        out.extend_from_slice(b",\"time\":\"");
        write_rfc3339(out, ev.timestamp);
        out.extend_from_slice(b"\"}");
    }
}

/// Appends just the fields as one JSON object (used by the `Writer`).
pub(crate) fn write_data<'a>(
    out: &mut Vec<u8>,
    fields: impl Iterator<Item = (&'a FieldName, &'a Value)>,
    nf: NonFiniteFloats,
) {
    let open = out.len();
    for (k, v) in fields {
        write_field(out, k, v, nf, Value::MAX_DEPTH);
    }
    close_object(out, open);
}

/// Ends an object whose fields were written from `open` on, each as
/// `,"k":v`: the first comma becomes the opening brace.
#[inline]
fn close_object(out: &mut Vec<u8>, open: usize) {
    if out.len() == open {
        out.extend_from_slice(b"{}");
    } else {
        out[open] = b'{';
        out.push(b'}');
    }
}

/// Appends `,"k":v` (nothing if the value is a non-finite float to omit);
/// `v` may nest `left` more levels (see [`write_value`]).
#[inline(always)]
fn write_field(out: &mut Vec<u8>, k: &str, v: &Value, nf: NonFiniteFloats, left: usize) {
    if nf == NonFiniteFloats::Omit && is_non_finite(v) {
        return;
    }
    write_quoted::<true, true>(out, k.as_bytes());
    match v {
        Value::String(s) => write_str(out, s),
        Value::Int(i) => write_i64(out, *i),
        Value::UInt(u) => write_u64(out, *u),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        _ => write_value(out, v, nf, left),
    }
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

/// Appends one value, which may nest `left` more levels of arrays and
/// objects: the recursion is bounded by it. A container past the limit is
/// written as `null`; `send` refuses events whose values nest deeper than
/// [`Value::MAX_DEPTH`] (`SendError::TooDeep`), so a sent event never has one.
pub(crate) fn write_value(out: &mut Vec<u8>, v: &Value, nf: NonFiniteFloats, left: usize) {
    if left == 0 && matches!(v, Value::Array(_) | Value::Object(_)) {
        out.extend_from_slice(b"null");
        return;
    }
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Int(i) => write_i64(out, *i),
        Value::UInt(u) => write_u64(out, *u),
        Value::Float(f) => {
            if f.is_finite() {
                out.extend_from_slice(zmij::Buffer::new().format_finite(*f).as_bytes());
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
                write_value(out, item, nf, left - 1);
            }
            out.push(b']');
        }
        Value::Object(entries) => {
            let open = out.len();
            for_each_last_wins(entries, |k, v| write_field(out, k, v, nf, left - 1));
            close_object(out, open);
        }
    }
}

/// Two ASCII digits for each of 0 to 99.
const DIGITS2: [u8; 200] = {
    let mut t = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        t[2 * i] = b'0' + (i / 10) as u8;
        t[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    t
};

/// Appends `u` in decimal: 20 zeros are appended (a fixed-size store), the
/// digits written over them in place, and the vector cut back. Nothing is
/// assembled on the stack first: copying a buffer just written in pieces
/// stalls the load on the pieces' stores (store forwarding fails).
#[inline]
pub(crate) fn write_u64(out: &mut Vec<u8>, u: u64) {
    let len = out.len();
    out.extend_from_slice(&[b'0'; 20]);
    let n = put_digits(&mut out[len..], u);
    out.truncate(len + n);
}

/// Appends `i` in decimal.
#[inline]
pub(crate) fn write_i64(out: &mut Vec<u8>, i: i64) {
    if i < 0 {
        out.push(b'-');
    }
    write_u64(out, i.unsigned_abs());
}

/// Writes the decimal digits of `u` at the start of `buf` (at least 20 bytes,
/// which must hold `'0'`s), two at a time; returns how many.
#[inline]
fn put_digits(buf: &mut [u8], mut u: u64) -> usize {
    let n = u.checked_ilog10().unwrap_or(0) as usize + 1;
    let mut end = n;
    while u >= 100 {
        let r = (u % 100) as usize;
        u /= 100;
        buf[end - 2..end].copy_from_slice(&DIGITS2[2 * r..2 * r + 2]);
        end -= 2;
    }
    if u >= 10 {
        let r = u as usize;
        buf[end - 2..end].copy_from_slice(&DIGITS2[2 * r..2 * r + 2]);
    } else {
        buf[end - 1] = b'0' + u as u8;
    }
    n
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

#[inline]
fn byte_needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Appends a JSON string literal, escaping `"`, `\` and control characters.
#[inline]
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    write_quoted::<false, false>(out, s.as_bytes());
}

/// Appends `"s"`, preceded by a comma if `COMMA` and followed by a colon if
/// `COLON`, escaping as needed.
///
/// Strings of up to 32 bytes are checked for bytes to escape as a few
/// fixed-size (overlapping) pieces read straight from `b` (one or two words,
/// or two 16-byte vectors). The literal is then written in place: a
/// fixed-size run of quotes is appended, the pieces are stored over it (the
/// closing quote is already there), and the vector is cut back to the
/// literal's length. Nothing is assembled on the stack and copied, which
/// stalled on store forwarding (a wide load of narrower stores just made).
/// Longer strings are checked 16 bytes at a time and copied with one
/// `extend_from_slice`.
#[inline(always)]
fn write_quoted<const COMMA: bool, const COLON: bool>(out: &mut Vec<u8>, b: &[u8]) {
    let n = b.len();
    if n > 32 {
        return write_quoted_long::<COMMA, COLON>(out, b);
    }
    let escape = if n > 16 {
        let head: &[u8; 16] = b[..16].try_into().unwrap();
        let tail: &[u8; 16] = b[n - 16..].try_into().unwrap();
        any_needs_escape(head) || any_needs_escape(tail)
    } else if n >= 8 {
        word_needs_escape(word8(&b[..8])) || word_needs_escape(word8(&b[n - 8..]))
    } else if n >= 4 {
        word_needs_escape(u64::from(word4(&b[..4])) | u64::from(word4(&b[n - 4..])) << 32)
    } else {
        // Every byte of `b`, some twice, padded with spaces (never escaped).
        let mut x = 0x2020_2020_2020_2020u64;
        if n > 0 {
            x = x << 24 | u64::from(b[0]) | u64::from(b[n / 2]) << 8 | u64::from(b[n - 1]) << 16;
        }
        word_needs_escape(x)
    };
    if escape {
        return write_quoted_escaped::<COMMA, COLON>(out, b);
    }
    // The shortest template that fits: most keys and values take 20 bytes.
    if n <= 16 {
        write_literal::<20, COMMA, COLON>(out, b);
    } else {
        write_literal::<36, COMMA, COLON>(out, b);
    }
}

/// Appends `"b"` (with its comma and colon) for a `b` of at most `T - 4`
/// bytes that needs no escaping: a template of `T` quotes, the bytes stored
/// over it (the closing quote is already there), the vector cut back.
#[inline(always)]
fn write_literal<const T: usize, const COMMA: bool, const COLON: bool>(
    out: &mut Vec<u8>,
    b: &[u8],
) {
    let p = usize::from(COMMA);
    let end = p + b.len() + 2 + usize::from(COLON);
    let len = out.len();
    out.extend_from_slice(&[b'"'; T]);
    let o = &mut out[len..len + T];
    if COMMA {
        o[0] = b',';
    }
    put_short(&mut o[p + 1..], b);
    if COLON {
        o[end - 1] = b':';
    }
    out.truncate(len + end);
}

#[inline(always)]
fn word8(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().unwrap())
}

#[inline(always)]
fn word4(b: &[u8]) -> u32 {
    u32::from_le_bytes(b[..4].try_into().unwrap())
}

/// Does any byte of the word need escaping (`"`, `\` or a control
/// character)? Bitwise, on all eight at once: `x ^ 0x02` per byte maps `"` to
/// 0x20 and the control characters onto 0 to 0x1f (and nothing else below
/// 0x21), then the usual "has a byte less than n" and "has a zero byte" tests
/// (exact as yes/no answers, for n up to 128).
#[inline(always)]
fn word_needs_escape(x: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let y = x ^ (ONES * 0x02);
    let below = y.wrapping_sub(ONES * 0x21) & !y & HIGH;
    let z = x ^ (ONES * u64::from(b'\\'));
    let backslash = z.wrapping_sub(ONES) & !z & HIGH;
    (below | backslash) != 0
}

/// [`write_quoted`] for strings of more than 32 bytes.
#[inline(never)]
fn write_quoted_long<const COMMA: bool, const COLON: bool>(out: &mut Vec<u8>, b: &[u8]) {
    let n = b.len();
    let mut chunks = b.chunks_exact(16);
    let mut escape = false;
    for chunk in &mut chunks {
        escape |= any_needs_escape::<16>(chunk.try_into().unwrap());
    }
    escape |= any_needs_escape::<16>(b[n - 16..].try_into().unwrap());
    if escape {
        return write_quoted_escaped::<COMMA, COLON>(out, b);
    }
    out.reserve(n + 4);
    out.extend_from_slice(if COMMA { b",\"" } else { b"\"" });
    out.extend_from_slice(b);
    out.extend_from_slice(if COLON { b"\":" } else { b"\"" });
}

/// Does any of these bytes need escaping (`"`, `\` or a control
/// character)? Written to compile to a few vector compares.
#[inline(always)]
fn any_needs_escape<const N: usize>(w: &[u8; N]) -> bool {
    let mut m = 0u8;
    for &c in w {
        // `c ^ 2` maps `"` to 0x20 and control characters to 0 to 0x1f
        // (and nothing else below 0x21), so one compare covers both.
        m |= u8::from((c ^ 2) < 0x21) | u8::from(c == b'\\');
    }
    m != 0
}

#[cold]
#[inline(never)]
fn write_quoted_escaped<const COMMA: bool, const COLON: bool>(out: &mut Vec<u8>, b: &[u8]) {
    if COMMA {
        out.push(b',');
    }
    write_str_escaped(out, b);
    if COLON {
        out.push(b':');
    }
}

/// The slow path of [`write_str`]: runs of plain text are copied whole.
#[cold]
#[inline(never)]
fn write_str_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() + 8);
    out.push(b'"');
    let mut rest = bytes;
    while let Some(i) = rest.iter().position(|&b| byte_needs_escape(b)) {
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
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ]),
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
        write_value(&mut out, v, nf, Value::MAX_DEPTH);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_encoder_never_recurses_past_the_depth_limit() {
        // `send` refuses deeper values; the encoder bounds its own recursion
        // anyway, writing `null` for what lies past the limit.
        let mut v = Value::from(1);
        for _ in 0..Value::MAX_DEPTH + 5 {
            v = Value::Array(vec![v]);
        }
        let text = enc(&v, NonFiniteFloats::String);
        let want = format!(
            "{}null{}",
            "[".repeat(Value::MAX_DEPTH),
            "]".repeat(Value::MAX_DEPTH)
        );
        assert_eq!(text, want);
        let mut out = Vec::new();
        write_value(&mut out, &Value::Object(vec![]), NonFiniteFloats::String, 0);
        assert_eq!(out, b"null");
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
    fn keys_and_values_of_every_length_escape_right() {
        // Every length from 0 to 80 (each code path and boundary), with a
        // byte to escape (or a multi-byte character) at every offset, as
        // first and later keys and as values.
        for special in [
            "", "\"", "\\", "\n", "\u{0}", "\u{1f}", " ", "!", "#", "[", "]", "\u{7f}", "é", "😀",
        ] {
            for len in 0..80 {
                for at in 0..=len {
                    if special.is_empty() && at > 0 {
                        break;
                    }
                    let s = format!("{}{special}{}", "a".repeat(at), "b".repeat(len - at));
                    let k2 = format!("{s}z");
                    let fields: Vec<(FieldName, Value)> = vec![
                        (s.clone().into(), Value::from(s.as_str())),
                        (k2.clone().into(), Value::Int(1)),
                    ];
                    let mut out = Vec::new();
                    write_data(
                        &mut out,
                        fields.iter().map(|(k, v)| (k, v)),
                        NonFiniteFloats::String,
                    );
                    let q = |x: &str| serde_json::to_string(x).unwrap();
                    let want = format!("{{{}:{},{}:1}}", q(&s), q(&s), q(&k2));
                    assert_eq!(String::from_utf8(out).unwrap(), want, "{s:?}");
                }
            }
        }
    }

    #[test]
    fn integers_of_every_length() {
        let mut values = vec![0u64, u64::MAX, i64::MAX as u64, i64::MAX as u64 + 1];
        let mut p = 1u64;
        while let Some(next) = p.checked_mul(10) {
            values.extend([p - 1, p, p + 1, next / 2]);
            p = next;
        }
        for u in values {
            assert_eq!(enc(&Value::UInt(u), NonFiniteFloats::String), u.to_string());
            if let Ok(i) = i64::try_from(u) {
                assert_eq!(enc(&Value::Int(i), NonFiniteFloats::String), i.to_string());
                assert_eq!(
                    enc(&Value::Int(-i), NonFiniteFloats::String),
                    (-i).to_string()
                );
            }
        }
        assert_eq!(
            enc(&Value::Int(i64::MIN), NonFiniteFloats::String),
            i64::MIN.to_string()
        );
    }

    #[test]
    fn empty_objects_and_omitted_fields() {
        let mut out = Vec::new();
        write_data(&mut out, std::iter::empty(), NonFiniteFloats::String);
        assert_eq!(out, b"{}");
        let obj = Value::Object(vec![("a".into(), Value::Float(f64::NAN))]);
        assert_eq!(enc(&obj, NonFiniteFloats::Omit), "{}");
        assert_eq!(enc(&Value::Object(vec![]), NonFiniteFloats::Omit), "{}");
        let arr = Value::Array(vec![Value::Object(vec![]), Value::Array(vec![])]);
        assert_eq!(enc(&arr, NonFiniteFloats::Omit), "[{},[]]");
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

    /// Floats are written shortest-round-trip (`zmij`), always with a decimal
    /// point or an exponent, so that they stay floats; large and small ones
    /// with an exponent (`1e+16`, `1e-7`: ryu, used until the fifth round,
    /// wrote `1e16`; both are JSON).
    #[test]
    fn floats_round_trip_in_the_peers_form() {
        let cases = [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (0.1, "0.1"),
            (731.0 * 0.731 + 0.5, "534.861"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1e20, "1e+20"),
            (1.2345678901234568e17, "1.2345678901234568e+17"),
            (f64::MAX, "1.7976931348623157e+308"),
            (1e-7, "1e-7"),
            (5e-324, "5e-324"),
        ];
        for (f, want) in cases {
            assert_eq!(enc(&Value::Float(f), NonFiniteFloats::String), want);
        }
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let f = f64::from_bits(x);
            if f.is_finite() {
                let json = enc(&Value::Float(f), NonFiniteFloats::String);
                let back: f64 = serde_json::from_str(&json).unwrap();
                assert_eq!(back.to_bits(), f.to_bits(), "{json}");
            }
        }
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
