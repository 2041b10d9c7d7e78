//! JSON body scanning: a single-pass, allocation-free validator.
//!
//! Each batch body is checked once, byte by byte (with word-at-a-time fast
//! paths inside strings and digit runs): UTF-8 (validated inside strings,
//! the only place non-ASCII bytes can be valid), full JSON syntax (accepting
//! exactly what `serde_json` accepts, including its nesting limit, strict
//! surrogate pairs and rejection of numbers that overflow `f64`), plus the
//! Events API rules
//! for each event: field count, decoded string sizes at any depth, encoded
//! event size, and the types of `data`, `time` and `samplerate`. It also
//! extracts the tracked integer field. No `serde_json::Value` is built unless
//! the caller wants values (recording or printing), and then only for
//! accepted events, with `serde_json` on the event's exact text.
//!
//! Invalid UTF-8 or invalid JSON anywhere makes the whole request malformed
//! (as a JSON decoder of the whole body would); rule violations only affect
//! their own event.

use serde_json::{Map, Value};

use crate::scan::{
    samplerate_from_f64, EventCheck, EventScan, Parsed, ScanOptions, ERR_EVENT_TOO_LARGE,
    ERR_MALFORMED, ERR_STRING_TOO_LONG, ERR_TOO_MANY_COLUMNS, MAX_EVENT, MAX_FIELDS, MAX_STRING,
};
use crate::timefmt;

/// Syntax error: the body is not valid JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Syntax;

type R<T> = Result<T, Syntax>;

/// Containers may nest at most this deep (serde_json's limit: its 128th
/// nested container is an error).
const MAX_NESTING: usize = 127;

/// Scans a `/1/batch` JSON body. `Err` is a request-level error; otherwise one
/// [`EventCheck`] per array element is appended to `out`.
pub(crate) fn scan_batch(
    body: &[u8],
    opts: ScanOptions<'_>,
    out: &mut Vec<EventCheck>,
) -> Result<(), &'static str> {
    // No separate UTF-8 pass: the scanner rejects any non-ASCII byte outside
    // strings and validates the UTF-8 of every string that has one, so a
    // body it accepts is valid UTF-8 (and invalid UTF-8 is the same
    // request-level error as invalid JSON).
    scan_batch_inner(body, opts, out).map_err(|Syntax| ERR_MALFORMED)
}

fn scan_batch_inner(body: &[u8], opts: ScanOptions<'_>, out: &mut Vec<EventCheck>) -> R<()> {
    let mut s = Scanner::new(body);
    let before = out.len();
    s.ws();
    if s.peek() != Some(b'[') {
        return Err(Syntax);
    }
    s.container(0, b']', |s, depth| {
        let start = s.i;
        let mut ev = JsonEvent::default();
        s.event(depth, opts, &mut ev)?;
        out.push(ev.finish(body, start, s.i, opts));
        Ok(())
    })?;
    if out.len() == before {
        return Err(Syntax); // an empty batch is malformed
    }
    s.ws();
    s.at_end()
}

/// Scans a `/1/events` JSON body (one object of fields). `Err` is the
/// request-level error. Time and sample rate come from headers and are left
/// unset here.
pub(crate) fn scan_single(body: &[u8], opts: ScanOptions<'_>) -> Result<EventCheck, &'static str> {
    if body.len() > MAX_EVENT {
        return Err(ERR_EVENT_TOO_LARGE);
    }
    let text = std::str::from_utf8(body).map_err(|_| ERR_MALFORMED)?;
    let mut s = Scanner::new(body);
    let mut ev = EventScan::default();
    let res = (|| {
        s.ws();
        if s.peek() != Some(b'{') {
            return Err(Syntax);
        }
        s.data_object(0, opts, &mut ev)?;
        s.ws();
        s.at_end()
    })();
    res.map_err(|Syntax| ERR_MALFORMED)?;
    if let Some(e) = ev.violation {
        return Err(e);
    }
    let parsed = if opts.want_values {
        let data: Map<String, Value> = serde_json::from_str(text).map_err(|_| ERR_MALFORMED)?;
        Some(Parsed {
            data,
            time: None,
            samplerate: None,
        })
    } else {
        None
    };
    Ok(EventCheck::valid(ev.tracked, parsed))
}

/// Whether `body` is one valid JSON value (exactly `serde_json`'s
/// acceptance); used by tests to compare the scanner with `serde_json`.
#[cfg(test)]
pub(crate) fn is_valid_json(body: &[u8]) -> bool {
    // No separate UTF-8 check: the scanner's own is what is compared.
    let mut s = Scanner::new(body);
    (|| {
        s.ws();
        s.skip_value(0)?;
        s.ws();
        s.at_end()
    })()
    .is_ok()
}

/// How the `time` member was given.
#[derive(Debug, Clone, Copy)]
enum TimeRepr {
    /// String token span (including quotes) and whether it has escapes.
    Str(usize, usize, bool),
    /// Number token span.
    Num(usize, usize),
}

/// What one batch event's scan found: the rules' part, and where its
/// `time` and `samplerate` are.
#[derive(Default)]
struct JsonEvent {
    scan: EventScan,
    time: Option<TimeRepr>,
    samplerate: Option<u64>,
}

impl JsonEvent {
    /// Turns the scan of the event at `body[start..end]` into a verdict.
    fn finish(self, body: &[u8], start: usize, end: usize, opts: ScanOptions<'_>) -> EventCheck {
        self.scan.verdict(end - start, opts, || {
            match extract(body, start, end, self.time, self.samplerate) {
                Some(p) => EventCheck::valid(self.scan.tracked, Some(p)),
                None => EventCheck::invalid(ERR_MALFORMED),
            }
        })
    }
}

/// Builds the values of the valid event at `body[start..end]` (serde_json
/// on its exact text; token spans are body offsets). The event's text was
/// scanned, so it is valid UTF-8.
fn extract(
    body: &[u8],
    start: usize,
    end: usize,
    time: Option<TimeRepr>,
    samplerate: Option<u64>,
) -> Option<Parsed> {
    #[derive(serde::Deserialize)]
    struct Full {
        data: Map<String, Value>,
    }
    let text = |a: usize, b: usize| std::str::from_utf8(body.get(a..b)?).ok();
    let full: Full = serde_json::from_str(text(start, end)?).ok()?;
    let time = match time {
        None => None,
        Some(TimeRepr::Str(a, b, false)) => Some(text(a + 1, b - 1)?.to_owned()),
        Some(TimeRepr::Str(a, b, true)) => Some(serde_json::from_str::<String>(text(a, b)?).ok()?),
        Some(TimeRepr::Num(a, b)) => {
            let n = text(a, b)?;
            Some(match n.parse::<i64>() {
                Ok(i) => timefmt::rfc3339_from_unix(i, 0).unwrap_or_else(|| n.to_owned()),
                Err(_) => n
                    .parse::<f64>()
                    .ok()
                    .and_then(timefmt::rfc3339_from_f64)
                    .unwrap_or_else(|| n.to_owned()),
            })
        }
    };
    Some(Parsed {
        data: full.data,
        time,
        samplerate,
    })
}

/// Bytes that end the fast path inside a string: `"`, `\` and controls.
static STRING_SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// A mask whose lowest set bit is the high bit of the first byte (in
/// little-endian order) that is `"`, `\` or below 0x20; zero if none. (The
/// classic zero-byte tricks can flag bytes *after* a real match, never
/// before one, so the lowest bit is exact.)
#[inline]
fn special_mask(x: u64) -> u64 {
    let quote = x ^ (LO * b'"' as u64);
    let bslash = x ^ (LO * b'\\' as u64);
    let zero_q = quote.wrapping_sub(LO) & !quote;
    let zero_b = bslash.wrapping_sub(LO) & !bslash;
    let ctrl = x.wrapping_sub(LO * 0x20) & !x;
    (zero_q | zero_b | ctrl) & HI
}

/// The first 8 bytes of `chunk` as a little-endian word.
#[inline(always)]
fn word(chunk: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&chunk[..8]);
    u64::from_le_bytes(w)
}

/// Like [`special_mask`], but also flags non-ASCII bytes (the string fast
/// path leaves those to the UTF-8 check). For the bytes before the first
/// flagged one no term can borrow, and each term's high bit is exact per
/// byte there, so again the lowest set bit is exact. (`!x` is not needed:
/// `(a & !x) | x == a | x`, which also saves an operation.)
#[inline(always)]
fn stop_mask(x: u64) -> u64 {
    let quote = (x ^ (LO * b'"' as u64)).wrapping_sub(LO);
    let bslash = (x ^ (LO * b'\\' as u64)).wrapping_sub(LO);
    let ctrl = x.wrapping_sub(LO * 0x20);
    (quote | bslash | ctrl | x) & HI
}

/// Index of the first byte at or after `i` that is not plain string content
/// (`"`, `\`, a control or non-ASCII), or `b.len()`.
#[inline(always)]
fn plain_end(b: &[u8], mut i: usize) -> usize {
    while let Some(chunk) = b.get(i..i + 16) {
        let lo = stop_mask(word(chunk));
        let hi = stop_mask(word(&chunk[8..]));
        if lo | hi != 0 {
            return i + if lo != 0 {
                (lo.trailing_zeros() / 8) as usize
            } else {
                8 + (hi.trailing_zeros() / 8) as usize
            };
        }
        i += 16;
    }
    while i < b.len() && !STRING_SPECIAL[b[i] as usize] && b[i] < 0x80 {
        i += 1;
    }
    i
}

/// A mask whose lowest set bit is the high bit of the first byte that is not
/// an ASCII digit; zero if all are. (`t` is 0..=9 for digits, so `t + 0x76`
/// stays below 0x80 and carries nothing; a carry can only come from a
/// non-digit, which is flagged itself.)
#[inline(always)]
fn non_digit_mask(x: u64) -> u64 {
    let t = x ^ (LO * b'0' as u64);
    (t | t.wrapping_add(LO * 0x76)) & HI
}

/// Index of the first byte at or after `i` that is not an ASCII digit, or
/// `b.len()`.
#[inline(always)]
fn digits_end(b: &[u8], mut i: usize) -> usize {
    while let Some(chunk) = b.get(i..i + 8) {
        let m = non_digit_mask(word(chunk));
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(b'0'..=b'9') = b.get(i) {
        i += 1;
    }
    i
}

fn hex4(b: &[u8]) -> Option<u32> {
    let mut n = 0u32;
    for &c in b.get(..4)? {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        n = n << 4 | d as u32;
    }
    Some(n)
}

/// The members of an event object that matter.
#[derive(Clone, Copy)]
enum EventKey {
    Data,
    Time,
    Samplerate,
    Other,
}

/// A scanned string token.
struct Str {
    /// Span of the token including quotes.
    start: usize,
    end: usize,
    /// Length after unescaping, in UTF-8 bytes.
    decoded_len: usize,
    has_escape: bool,
}

/// A scanned number token.
struct Num {
    start: usize,
    end: usize,
    /// No fraction and no exponent.
    integer: bool,
    negative: bool,
    /// Absolute value of an integer that fits a u64.
    magnitude: Option<u64>,
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    fn new(b: &'a [u8]) -> Self {
        Scanner { b, i: 0 }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    #[inline]
    fn expect(&mut self, c: u8) -> R<()> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(Syntax)
        }
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn at_end(&self) -> R<()> {
        if self.i == self.b.len() {
            Ok(())
        } else {
            Err(Syntax)
        }
    }

    fn enter(depth: usize) -> R<usize> {
        if depth >= MAX_NESTING {
            Err(Syntax)
        } else {
            Ok(depth + 1)
        }
    }

    /// Scans a string token (the current byte must be `"`). The common case
    /// (ASCII, no escapes) stays in this small inlined loop, 16 bytes at a
    /// time; escapes and non-ASCII bytes go to [`Scanner::string_slow`].
    #[inline(always)]
    fn string(&mut self) -> R<Str> {
        let start = self.i;
        let b = self.b;
        let i = plain_end(b, start + 1);
        if b.get(i) == Some(&b'"') {
            self.i = i + 1;
            return Ok(Str {
                start,
                end: i + 1,
                decoded_len: i - start - 1,
                has_escape: false,
            });
        }
        self.string_slow(start, i)
    }

    /// The rest of a string from its first byte `i` that is not plain ASCII:
    /// a backslash, a control character, a non-ASCII byte or the end of
    /// input. Checks the escapes and that the token is valid UTF-8.
    #[cold]
    #[inline(never)]
    fn string_slow(&mut self, start: usize, i: usize) -> R<Str> {
        let b = self.b;
        self.i = i;
        let mut saved = 0usize; // raw bytes minus decoded bytes, from escapes
        let mut has_escape = false;
        loop {
            // Skip to the next `"`, `\` or control (non-ASCII bytes are
            // validated below, all at once).
            loop {
                match b.get(self.i..self.i + 8) {
                    Some(chunk) => {
                        let m = special_mask(word(chunk));
                        if m == 0 {
                            self.i += 8;
                            continue;
                        }
                        self.i += (m.trailing_zeros() / 8) as usize;
                    }
                    None => {
                        while self.i < b.len() && !STRING_SPECIAL[b[self.i] as usize] {
                            self.i += 1;
                        }
                    }
                }
                break;
            }
            match self.bump() {
                Some(b'"') => break,
                Some(b'\\') => {
                    has_escape = true;
                    match self.bump() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => saved += 1,
                        Some(b'u') => saved += self.unicode_escape()?,
                        _ => return Err(Syntax),
                    }
                }
                // Control character or end of input.
                _ => return Err(Syntax),
            }
        }
        // Escapes are ASCII, and no multi-byte sequence can contain `"`,
        // `\` or a control, so this is the UTF-8 check of the raw bytes.
        if std::str::from_utf8(&b[start + 1..self.i - 1]).is_err() {
            return Err(Syntax);
        }
        let raw = self.i - start - 2;
        Ok(Str {
            start,
            end: self.i,
            decoded_len: raw - saved,
            has_escape,
        })
    }

    /// After `\u`: validates the escape (surrogates must pair up, as in
    /// serde_json) and returns raw length minus decoded length.
    fn unicode_escape(&mut self) -> R<usize> {
        let n = hex4(&self.b[self.i..]).ok_or(Syntax)?;
        self.i += 4;
        match n {
            0xDC00..=0xDFFF => Err(Syntax),
            0xD800..=0xDBFF => {
                if self.b.get(self.i..self.i + 2) != Some(b"\\u") {
                    return Err(Syntax);
                }
                let n2 = hex4(&self.b[self.i + 2..]).ok_or(Syntax)?;
                if !(0xDC00..=0xDFFF).contains(&n2) {
                    return Err(Syntax);
                }
                self.i += 6;
                Ok(12 - 4)
            }
            0..=0x7F => Ok(6 - 1),
            0x80..=0x7FF => Ok(6 - 2),
            _ => Ok(6 - 3),
        }
    }

    /// Scans a number token (JSON grammar; values that overflow `f64` are
    /// rejected like serde_json does) and returns the end of its integer
    /// part and whether it is an integer (no fraction, no exponent).
    #[inline(always)]
    fn number_token(&mut self) -> R<(usize, bool)> {
        let b = self.b;
        let start = self.i;
        let mut i = start;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        let int_start = i;
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => i = digits_end(b, i + 1),
            _ => return Err(Syntax),
        }
        let int_end = i;
        let mut integer = true;
        let mut exponent = false;
        if b.get(i) == Some(&b'.') {
            integer = false;
            let f = i + 1;
            i = digits_end(b, f);
            if i == f {
                return Err(Syntax);
            }
        }
        // Digits before any exponent (without the fraction's dot).
        let digits = i - int_start - usize::from(!integer);
        if let Some(b'e' | b'E') = b.get(i) {
            i += 1;
            integer = false;
            exponent = true;
            if let Some(b'+' | b'-') = b.get(i) {
                i += 1;
            }
            let e = i;
            i = digits_end(b, e);
            if i == e {
                return Err(Syntax);
            }
        }
        self.i = i;
        // Only these can overflow f64.
        if exponent || digits > 300 {
            Self::check_finite(&b[start..i])?;
        }
        Ok((int_end, integer))
    }

    #[cold]
    #[inline(never)]
    fn check_finite(t: &[u8]) -> R<()> {
        let t = std::str::from_utf8(t).map_err(|_| Syntax)?;
        match t.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(()),
            _ => Err(Syntax),
        }
    }

    /// Scans a number token for its syntax only.
    #[inline(always)]
    fn skip_number(&mut self) -> R<()> {
        self.number_token().map(|_| ())
    }

    /// Scans a number token and describes it.
    #[inline(always)]
    fn number(&mut self) -> R<Num> {
        let start = self.i;
        let (int_end, integer) = self.number_token()?;
        let negative = self.b[start] == b'-';
        let digits = &self.b[start + usize::from(negative)..int_end];
        // Absolute value of the integer part, if it fits a u64 (any 19
        // digits do).
        let magnitude = if !integer {
            None
        } else if digits.len() <= 19 {
            Some(digits.iter().fold(0u64, |m, &c| m * 10 + (c - b'0') as u64))
        } else {
            digits.iter().try_fold(0u64, |m, &c| {
                m.checked_mul(10)?.checked_add((c - b'0') as u64)
            })
        };
        Ok(Num {
            start,
            end: self.i,
            integer,
            negative,
            magnitude,
        })
    }

    /// Scans an array or object (the current byte opens it) inside
    /// containers nested `depth` deep, up to its `close` byte; `element`
    /// scans each element (for an object, each member), given the
    /// container's own nesting.
    #[inline(always)]
    fn container(
        &mut self,
        depth: usize,
        close: u8,
        mut element: impl FnMut(&mut Self, usize) -> R<()>,
    ) -> R<()> {
        let depth = Self::enter(depth)?;
        self.i += 1;
        self.ws();
        if self.peek() == Some(close) {
            self.i += 1;
            return Ok(());
        }
        loop {
            element(self, depth)?;
            self.ws();
            match self.bump() {
                Some(b',') => self.ws(),
                Some(c) if c == close => return Ok(()),
                _ => return Err(Syntax),
            }
        }
    }

    /// Scans an object (the current byte is `{`): for each member, the key
    /// and the colon, then `member` scans the value, given the object's own
    /// nesting and the key.
    #[inline(always)]
    fn object(
        &mut self,
        depth: usize,
        mut member: impl FnMut(&mut Self, usize, Str) -> R<()>,
    ) -> R<()> {
        self.container(depth, b'}', |s, depth| {
            if s.peek() != Some(b'"') {
                return Err(Syntax);
            }
            let key = s.string()?;
            s.ws();
            s.expect(b':')?;
            s.ws();
            member(s, depth, key)
        })
    }

    /// Scans any value for its syntax only.
    fn skip_value(&mut self, depth: usize) -> R<()> {
        self.value(depth, &mut None, false)
    }

    /// A value of the wrong type where the event's shape wants another: the
    /// event is malformed, the body still has to be valid JSON.
    fn wrong_type(&mut self, depth: usize, ev: &mut EventScan) -> R<()> {
        ev.violate(ERR_MALFORMED);
        self.skip_value(depth)
    }

    fn literal(&mut self, word: &[u8]) -> R<()> {
        if self.b.get(self.i..self.i + word.len()) == Some(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(Syntax)
        }
    }

    /// Scans any value. With `check`, string values longer than
    /// [`MAX_STRING`] record a violation in `violation`.
    fn value(&mut self, depth: usize, violation: &mut Option<&'static str>, check: bool) -> R<()> {
        match self.peek() {
            Some(b'{') => self.object(depth, |s, depth, _key| s.value(depth, violation, check)),
            Some(b'[') => self.container(depth, b']', |s, depth| s.value(depth, violation, check)),
            _ => self.scalar(violation, check),
        }
    }

    /// Scans a value that is not a container (anything else is a syntax
    /// error); `check` as in [`Scanner::value`].
    #[inline(always)]
    fn scalar(&mut self, violation: &mut Option<&'static str>, check: bool) -> R<()> {
        match self.peek() {
            Some(b'"') => {
                let s = self.string()?;
                if check && s.decoded_len > MAX_STRING && violation.is_none() {
                    *violation = Some(ERR_STRING_TOO_LONG);
                }
                Ok(())
            }
            Some(b'-' | b'0'..=b'9') => self.skip_number(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            _ => Err(Syntax),
        }
    }

    /// Whether the string token `s` (a key) decodes to `want`.
    #[inline]
    fn key_is(&self, s: &Str, want: &[u8]) -> bool {
        if s.decoded_len != want.len() {
            return false;
        }
        if !s.has_escape {
            return self.b.get(s.start + 1..s.end - 1) == Some(want);
        }
        self.key_is_escaped(s, want)
    }

    #[cold]
    fn key_is_escaped(&self, s: &Str, want: &[u8]) -> bool {
        self.b
            .get(s.start..s.end)
            .and_then(|raw| std::str::from_utf8(raw).ok())
            .and_then(|t| serde_json::from_str::<String>(t).ok())
            .is_some_and(|k| k.as_bytes() == want)
    }

    /// Scans one batch element (depth = nesting of the enclosing array).
    fn event(&mut self, depth: usize, opts: ScanOptions<'_>, ev: &mut JsonEvent) -> R<()> {
        if self.peek() != Some(b'{') {
            return self.wrong_type(depth, &mut ev.scan);
        }
        self.object(depth, |s, depth, key| s.event_member(depth, key, opts, ev))
    }

    /// Scans the value of the event member named by the string token `k`.
    #[inline(always)]
    fn event_member(
        &mut self,
        depth: usize,
        k: Str,
        opts: ScanOptions<'_>,
        ev: &mut JsonEvent,
    ) -> R<()> {
        let key = if self.key_is(&k, b"data") {
            EventKey::Data
        } else if self.key_is(&k, b"time") {
            EventKey::Time
        } else if self.key_is(&k, b"samplerate") {
            EventKey::Samplerate
        } else {
            EventKey::Other
        };
        match key {
            EventKey::Data => {
                ev.scan.data_seen += 1;
                if self.peek() == Some(b'{') {
                    self.data_object(depth, opts, &mut ev.scan)
                } else {
                    self.wrong_type(depth, &mut ev.scan)
                }
            }
            EventKey::Time => {
                ev.time = match self.peek() {
                    Some(b'"') => {
                        let s = self.string()?;
                        Some(TimeRepr::Str(s.start, s.end, s.has_escape))
                    }
                    Some(b'-' | b'0'..=b'9') => {
                        let n = self.number()?;
                        Some(TimeRepr::Num(n.start, n.end))
                    }
                    Some(b'n') => {
                        self.literal(b"null")?;
                        None
                    }
                    _ => return self.wrong_type(depth, &mut ev.scan),
                };
                Ok(())
            }
            EventKey::Samplerate => {
                ev.samplerate = match self.peek() {
                    Some(b'-' | b'0'..=b'9') => {
                        let n = self.number()?;
                        let t = &self.b[n.start..n.end];
                        let sr = if n.integer {
                            match n.magnitude {
                                Some(0) => Some(0),
                                Some(m) if !n.negative => Some(m),
                                _ => None,
                            }
                        } else {
                            std::str::from_utf8(t)
                                .ok()
                                .and_then(|t| t.parse::<f64>().ok())
                                .and_then(samplerate_from_f64)
                        };
                        let Some(sr) = sr else {
                            ev.scan.violate(ERR_MALFORMED);
                            return Ok(());
                        };
                        Some(sr)
                    }
                    Some(b'n') => {
                        self.literal(b"null")?;
                        None
                    }
                    _ => return self.wrong_type(depth, &mut ev.scan),
                };
                Ok(())
            }
            EventKey::Other => self.skip_value(depth),
        }
    }

    /// Scans the `data` object (current byte `{`): counts fields, checks
    /// strings at any depth, captures the tracked integer.
    fn data_object(&mut self, depth: usize, opts: ScanOptions<'_>, ev: &mut EventScan) -> R<()> {
        let mut fields = 0usize;
        self.object(depth, |s, depth, k| {
            fields += 1;
            if fields == MAX_FIELDS + 1 {
                ev.violate(ERR_TOO_MANY_COLUMNS);
            }
            let tracked = match opts.track {
                Some(t) => s.key_is(&k, t.as_bytes()),
                None => false,
            };
            if tracked && matches!(s.peek(), Some(b'-' | b'0'..=b'9')) {
                let n = s.number()?;
                ev.tracked = match (n.magnitude, n.negative) {
                    (Some(m), false) => Some(m),
                    // Negative integers are tracked by their i64 bit pattern.
                    (Some(m), true) if m <= 1 << 63 => Some((m as i64).wrapping_neg() as u64),
                    _ => None,
                };
                Ok(())
            } else if let Some(b'{' | b'[') = s.peek() {
                s.value(depth, &mut ev.violation, true)
            } else {
                // Scalars (the usual case) inline, without a call.
                s.scalar(&mut ev.violation, true)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::test_opts as opts;
    use crate::scan::{ERR_STRING_TOO_LONG, ERR_TOO_MANY_COLUMNS};

    fn scan(body: &str, want: bool) -> Result<Vec<EventCheck>, &'static str> {
        let mut out = Vec::new();
        scan_batch(body.as_bytes(), opts(want), &mut out).map(|()| out)
    }

    #[test]
    fn basic_batch() {
        for want in [false, true] {
            let v = scan(
                r#" [ {"data":{"a":1,"seq":7,"s":"x\"y"},"time":"2024-01-01T00:00:00Z","samplerate":3} , {"data":{}} ] "#,
                want,
            )
            .unwrap();
            assert_eq!(v.len(), 2);
            assert!(v[0].error.is_none());
            assert_eq!(v[0].tracked, Some(7));
            assert!(v[1].error.is_none());
            if want {
                let p = v[0].parsed.as_ref().unwrap();
                assert_eq!(p.time.as_deref(), Some("2024-01-01T00:00:00Z"));
                assert_eq!(p.samplerate, Some(3));
                assert_eq!(p.data["s"], "x\"y");
            }
        }
    }

    #[test]
    fn request_level_errors() {
        for body in [
            "",
            "[]",
            "{}",
            "[",
            "[1,]",
            "[{}] x",
            "nul",
            "\"a\"",
            "[{\"data\":{}}",
            "[,]",
            "[{\"data\":{}},,{}]",
            "[{\"data\":{\"a\":1e999}}]",
            "[{\"data\":{\"a\":\"\\ud800\"}}]",
            "[{\"data\":{\"a\":\"\u{1}\"}}]",
            "[{\"data\":{\"a\":01}}]",
            "[{\"data\":{\"a\":1.}}]",
            "[{\"data\":{\"a\":tru}}]",
            "[{\"data\":{\"a\" 1}}]",
            "[{\"data\":{\"a\":1,}}]",
        ] {
            assert_eq!(scan(body, false).err(), Some(ERR_MALFORMED), "{body}");
        }
        let mut out = Vec::new();
        assert!(scan_batch(b"[{\"data\":{\"a\":\"\xff\"}}]", opts(false), &mut out).is_err());
    }

    #[test]
    fn per_event_errors() {
        let v = scan(
            r#"[1, {"x":1}, {"data":[]}, {"data":null}, {"data":{},"time":[]}, {"data":{},"samplerate":-1}, {"data":{},"data":{}}, {"data":{},"samplerate":"2"}, {"data":{"ok":true},"samplerate":2.0}]"#,
            false,
        )
        .unwrap();
        assert_eq!(v.len(), 9);
        for c in &v[..8] {
            assert_eq!(c.error, Some(ERR_MALFORMED));
        }
        assert!(v[8].error.is_none());
    }

    #[test]
    fn limits() {
        let mut fields = String::from("{");
        for i in 0..2001 {
            if i > 0 {
                fields.push(',');
            }
            fields.push_str(&format!("\"f{i}\":{i}"));
        }
        fields.push('}');
        let body = format!(r#"[{{"data":{fields}}}]"#);
        assert_eq!(
            scan(&body, false).unwrap()[0].error,
            Some(ERR_TOO_MANY_COLUMNS)
        );
        let long = "a".repeat(MAX_STRING + 1);
        let body = format!(r#"[{{"data":{{"a":{{"b":["{long}"]}}}}}}]"#);
        assert_eq!(
            scan(&body, false).unwrap()[0].error,
            Some(ERR_STRING_TOO_LONG)
        );
        let ok = "a".repeat(MAX_STRING);
        let body = format!(r#"[{{"data":{{"a":"{ok}"}}}}]"#);
        assert!(scan(&body, false).unwrap()[0].error.is_none());
        // Decoded length counts: 65,536 bytes written with escapes are fine,
        // 65,537 are not (mixing 1-, 2-, 3- and 4-byte escapes).
        let unit = "\\u00e9\\u20ac\\ud83d\\ude00\\n"; // 2 + 3 + 4 + 1 = 10 bytes
        let s = format!("{}{}", unit.repeat(6553), "abcdef");
        let body = format!(r#"[{{"data":{{"a":"{s}"}}}},{{"data":{{"a":"{s}x"}}}}]"#);
        let v = scan(&body, true).unwrap();
        assert!(v[0].error.is_none());
        assert_eq!(
            v[0].parsed.as_ref().unwrap().data["a"]
                .as_str()
                .unwrap()
                .len(),
            65_536
        );
        assert_eq!(v[1].error, Some(ERR_STRING_TOO_LONG));
    }

    #[test]
    fn times_and_escaped_keys() {
        let v = scan(
            r#"[{"data":{},"time":1714558272},{"data":{},"time":1714558272.5},{"d\u0061ta":{"s\u0065q":9},"time":"a\"b"}]"#,
            true,
        )
        .unwrap();
        let t: Vec<_> = v
            .iter()
            .map(|c| c.parsed.as_ref().unwrap().time.clone())
            .collect();
        assert_eq!(t[0].as_deref(), Some("2024-05-01T10:11:12Z"));
        assert_eq!(t[1].as_deref(), Some("2024-05-01T10:11:12.5Z"));
        assert_eq!(t[2].as_deref(), Some("a\"b"));
        assert_eq!(v[2].tracked, Some(9));
    }

    #[test]
    fn nesting_limit_matches_serde_json() {
        for depth in [120, 126, 127, 128, 129, 5000] {
            let body = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            let serde = serde_json::from_str::<Value>(&body).is_ok();
            assert_eq!(is_valid_json(body.as_bytes()), serde, "depth {depth}");
        }
    }

    /// Deterministic xorshift.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
            xs[(self.next() % xs.len() as u64) as usize]
        }
    }

    fn gen(r: &mut Rng, depth: usize, out: &mut String) {
        const ATOMS: &[&str] = &[
            "0",
            "-0",
            "1",
            "-12",
            "3.25",
            "1e5",
            "1E-5",
            "-2.5e+3",
            "1e308",
            "1e309",
            "2e-400",
            "18446744073709551616",
            "true",
            "false",
            "null",
            "\"\"",
            "\"abc\"",
            "\"a\\\"b\"",
            "\"\\u00e9\"",
            "\"\\ud83d\\ude00\"",
            "\"\\ud83d\"",
            "\"\\ude00\"",
            "\"\\ud83dx\"",
            "\"\\ud83d\\u0041\"",
            "\"\\x\"",
            "\"\\u12\"",
            "\"é✓😀\"",
            "\"tab\there\"",
            "01",
            "1.",
            ".5",
            "+1",
            "-",
            "tru",
            "nul",
            "\"unterminated",
            "1.5e",
            "0x10",
            "[]",
            "{}",
        ];
        match r.next() % 6 {
            0 | 1 if depth < 4 => {
                out.push('[');
                for i in 0..r.next() % 4 {
                    if i > 0 {
                        out.push_str(r.pick(&[",", ",", ",", " , ", ",,", ""]));
                    }
                    gen(r, depth + 1, out);
                }
                out.push_str(r.pick(&["]", "]", "]", " ]", "}", ""]));
            }
            2 if depth < 4 => {
                out.push('{');
                for i in 0..r.next() % 4 {
                    if i > 0 {
                        out.push_str(r.pick(&[",", ",", ",", "\n,", ""]));
                    }
                    out.push_str(r.pick(&["\"k\"", "\"k\\n\"", "\"\"", "k", "1"]));
                    out.push_str(r.pick(&[":", ":", ":", " : ", ""]));
                    gen(r, depth + 1, out);
                }
                out.push_str(r.pick(&["}", "}", "}", "\t}", "]", ""]));
            }
            _ => out.push_str(r.pick(ATOMS)),
        }
    }

    #[test]
    fn differential_against_serde_json() {
        let mut r = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut valid, mut invalid) = (0, 0);
        for _ in 0..30_000 {
            let mut s = String::new();
            gen(&mut r, 0, &mut s);
            if r.next() % 8 == 0 {
                s.push_str(r.pick(&[" ", "x", "\n", "]"]));
            }
            let mut bytes = s.into_bytes();
            if r.next() % 10 == 0 && !bytes.is_empty() {
                let p = (r.next() % bytes.len() as u64) as usize;
                bytes[p] = r.next() as u8;
            }
            let serde = serde_json::from_slice::<Value>(&bytes).is_ok();
            assert_eq!(
                is_valid_json(&bytes),
                serde,
                "{:?}",
                String::from_utf8_lossy(&bytes)
            );
            if serde {
                valid += 1;
            } else {
                invalid += 1;
            }
        }
        assert!(valid > 5000 && invalid > 5000, "{valid} {invalid}");
    }

    /// Mutated batches: never a panic, and recording (values wanted) never
    /// changes a verdict.
    #[test]
    fn mutated_batches_same_verdicts_with_and_without_values() {
        let base = br#"[{"data":{"seq":1,"s":"a\u00e9b","n":[1,2.5,{"x":null}],"t":true},"time":"2024-01-01T00:00:00Z","samplerate":2},{"data":{"seq":-3,"e":"\ud83d\ude00"},"time":1714558272.5},{"data":{}},{"time":"x","data":{"k":"v"},"other":[1]}]"#;
        let mut r = Rng(0xfeed);
        let mut accepted_any = 0;
        for i in 0..6000 {
            let mut b = base.to_vec();
            for _ in 0..1 + r.next() % 2 {
                let p = (r.next() % b.len() as u64) as usize;
                match r.next() % 3 {
                    0 => b[p] = r.next() as u8,
                    1 => {
                        b.remove(p);
                    }
                    _ => b.insert(
                        p,
                        *b"\"{}[],:0-e.\\ "
                            .get((r.next() % 14) as usize)
                            .unwrap_or(&b' '),
                    ),
                }
            }
            let (mut a, mut v) = (Vec::new(), Vec::new());
            let ra = scan_batch(&b, opts(false), &mut a);
            let rv = scan_batch(&b, opts(true), &mut v);
            assert_eq!(ra.is_ok(), rv.is_ok(), "{}", String::from_utf8_lossy(&b));
            if ra.is_ok() {
                // Never accept what serde_json would reject.
                assert!(serde_json::from_slice::<Value>(&b).is_ok());
                let ea: Vec<_> = a.iter().map(|c| (c.error, c.tracked)).collect();
                let ev: Vec<_> = v.iter().map(|c| (c.error, c.tracked)).collect();
                assert_eq!(ea, ev, "{}", String::from_utf8_lossy(&b));
                accepted_any += a.iter().filter(|c| c.error.is_none()).count();
            }
            let _ = scan_single(&b[1..], opts(i % 2 == 0));
        }
        assert!(accepted_any > 1000, "{accepted_any}");
    }

    #[test]
    fn fast_path_special_detection() {
        // The first special byte is found exactly, whatever follows it.
        let mut r = Rng(7);
        for _ in 0..100_000 {
            let w = r.next().to_le_bytes();
            let first = w.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            let m = special_mask(u64::from_le_bytes(w));
            assert_eq!(
                first.map(|p| p as u32),
                (m != 0).then(|| m.trailing_zeros() / 8)
            );
        }
        for b in 0u8..=255 {
            for pos in 0..8 {
                let mut w = [b'a'; 8];
                w[pos] = b;
                let special = b == b'"' || b == b'\\' || b < 0x20;
                let m = special_mask(u64::from_le_bytes(w));
                assert_eq!(m != 0, special, "{b} at {pos}");
                if special {
                    assert_eq!(m.trailing_zeros() / 8, pos as u32);
                }
            }
        }
    }

    #[test]
    fn stop_and_digit_masks_are_exact() {
        // The first flagged byte is found exactly, whatever follows it.
        let stop = |b: u8| b == b'"' || b == b'\\' || !(0x20..0x80).contains(&b);
        let non_digit = |b: u8| !b.is_ascii_digit();
        let mut r = Rng(11);
        for i in 0..200_000 {
            let mut w = r.next().to_le_bytes();
            if i % 2 == 0 {
                // Mostly plain text or digits, so the first hit is anywhere.
                for b in w.iter_mut() {
                    if r.next() % 4 != 0 {
                        *b = if i % 4 == 0 {
                            b'0' + (r.next() % 10) as u8
                        } else {
                            0x20 + (r.next() % 0x60) as u8
                        };
                    }
                }
            }
            let x = u64::from_le_bytes(w);
            for (mask, is) in [
                (stop_mask(x), &stop as &dyn Fn(u8) -> bool),
                (non_digit_mask(x), &non_digit),
            ] {
                let first = w.iter().position(|&b| is(b));
                assert_eq!(
                    first.map(|p| p as u32),
                    (mask != 0).then(|| mask.trailing_zeros() / 8),
                    "{w:?}"
                );
            }
        }
        // Every byte at every position, among bytes the mask passes over.
        type Mask = fn(u64) -> u64;
        type Flagged = fn(u8) -> bool;
        let cases: [(Mask, Flagged, u8); 2] =
            [(stop_mask, stop, b'a'), (non_digit_mask, non_digit, b'7')];
        for (mask_of, is, filler) in cases {
            for b in 0u8..=255 {
                for pos in 0..8 {
                    let mut w = [filler; 8];
                    w[pos] = b;
                    let m = mask_of(u64::from_le_bytes(w));
                    assert_eq!(m != 0, is(b), "{b} at {pos}");
                    if m != 0 {
                        assert_eq!(m.trailing_zeros() / 8, pos as u32);
                    }
                }
            }
        }
    }

    /// Scans `[{"data":{"k":<value>,"seq":<seq>}}]` (values wanted) and
    /// checks it against serde_json: same acceptance, same decoded value,
    /// same tracked number. Also checks the value alone (at the very end of
    /// the input, where the word-at-a-time loops run out).
    fn check_value(value: &[u8], seq: &[u8]) {
        let mut body = br#"[{"data":{"k":"#.to_vec();
        body.extend_from_slice(value);
        body.extend_from_slice(br#","seq":"#);
        body.extend_from_slice(seq);
        body.extend_from_slice(br#"}}]"#);
        let show = || {
            let s = String::from_utf8_lossy(&body);
            s.chars().take(300).collect::<String>()
        };
        let serde = serde_json::from_slice::<Value>(&body)
            .ok()
            .map(|v| v[0]["data"].clone());
        let mut out = Vec::new();
        let res = scan_batch(&body, opts(true), &mut out);
        assert_eq!(res.is_ok(), serde.is_some(), "{}", show());
        let alone = serde_json::from_slice::<Value>(value).is_ok();
        assert_eq!(
            is_valid_json(value),
            alone,
            "{}",
            String::from_utf8_lossy(value)
        );
        let Some(serde) = serde else { return };
        assert_eq!(out.len(), 1);
        let want_len = serde["k"].as_str().map_or(0, str::len);
        if want_len > MAX_STRING {
            assert_eq!(out[0].error, Some(ERR_STRING_TOO_LONG), "{}", show());
            return;
        }
        assert_eq!(out[0].error, None, "{}", show());
        assert_eq!(
            out[0].parsed.as_ref().unwrap().data["k"],
            serde["k"],
            "{}",
            show()
        );
        // Integers that fit a u64, or an i64 (by its bit pattern; "-0" too).
        let seq = std::str::from_utf8(seq).unwrap();
        let want_tracked = if seq.bytes().all(|c| c == b'-' || c.is_ascii_digit()) {
            seq.parse::<u64>()
                .ok()
                .or_else(|| seq.parse::<i64>().ok().map(|v| v as u64))
        } else {
            None
        };
        assert_eq!(out[0].tracked, want_tracked, "{}", show());
    }

    #[test]
    fn strings_with_specials_at_every_offset() {
        let specials: &[&[u8]] = &[
            b"\\\"",
            b"\\\\",
            b"\\/",
            b"\\n",
            b"\\t",
            b"\\u0041",
            b"\\u00e9",
            b"\\u20ac",
            b"\\ud83d\\ude00",
            b"\\ud83d",
            b"\\ude00",
            b"\\ud83d\\u0041",
            b"\\x",
            b"\\u12",
            b"\\",
            "é".as_bytes(),
            "€".as_bytes(),
            "😀".as_bytes(),
            "\u{7f}".as_bytes(),
            "\u{80}".as_bytes(),
            "\u{7ff}\u{800}\u{ffff}\u{10000}\u{10ffff}".as_bytes(),
            b"\"",
            b"\x01",
            b"\x1f",
            b"\n",
            b"\xff",
            b"\x80",
            b"\xc3",
            b"\xc3(",
            b"\xc0\x80",
            b"\xed\xa0\x80",
            b"\xf4\x90\x80\x80",
            b"\xf5\x80\x80\x80",
            b"\xe2\x82",
            b"\xe2\x82\xac\xe2\x82",
        ];
        for pre in 0..40 {
            for post in [0, 1, 7, 8, 9, 15, 16, 17, 31] {
                for sp in specials {
                    let mut v = vec![b'"'];
                    v.extend((0..pre).map(|i| b'a' + (i % 26) as u8));
                    v.extend_from_slice(sp);
                    v.extend((0..post).map(|i| b'A' + (i % 26) as u8));
                    v.push(b'"');
                    check_value(&v, b"1");
                    // Unterminated, cut anywhere near the special.
                    for cut in (1..4.min(v.len())).filter(|_| *sp != b"\"") {
                        assert!(!is_valid_json(&v[..v.len() - cut]));
                    }
                }
            }
        }
    }

    #[test]
    fn random_strings_match_serde_json() {
        let pieces: &[&[u8]] = &[
            b"a",
            b"xyz",
            b"0123456789abcdef",
            b" ",
            b"\\\"",
            b"\\\\",
            b"\\n",
            b"\\u00e9",
            b"\\ud83d\\ude00",
            b"\\ud83d",
            "é".as_bytes(),
            "✓".as_bytes(),
            "😀".as_bytes(),
            b"\xff",
            b"\xc3",
            b"\x80",
            b"\x01",
            b"\"",
        ];
        let mut r = Rng(0x5eed);
        for _ in 0..20_000 {
            let mut v = vec![b'"'];
            for _ in 0..r.next() % 12 {
                let p = pieces[(r.next() % pieces.len() as u64) as usize];
                // Mostly valid pieces, so many strings are accepted.
                if r.next() % 4 == 0 || p.len() > 1 || p[0].is_ascii_alphanumeric() {
                    v.extend_from_slice(p);
                }
            }
            v.push(b'"');
            check_value(&v, b"7");
        }
    }

    #[test]
    fn string_length_limit_counts_utf8_bytes() {
        // 2-byte characters: 32,768 of them are exactly the limit.
        let ok = format!("\"{}\"", "é".repeat(MAX_STRING / 2));
        check_value(ok.as_bytes(), b"1");
        let over = format!("\"{}a\"", "é".repeat(MAX_STRING / 2));
        check_value(over.as_bytes(), b"1");
        let mut out = Vec::new();
        let body = format!(r#"[{{"data":{{"k":{ok}}}}},{{"data":{{"k":{over}}}}}]"#);
        scan_batch(body.as_bytes(), opts(false), &mut out).unwrap();
        assert_eq!(out[0].error, None);
        assert_eq!(out[1].error, Some(ERR_STRING_TOO_LONG));
    }

    #[test]
    fn non_ascii_outside_strings_is_malformed() {
        for body in [
            "[{\"data\":{}}]\u{a0}",
            "\u{a0}[{\"data\":{}}]",
            "[{\"data\":{\"a\":\u{e9}}}]",
            "[{\"data\":{é:1}}]",
            "[{\"data\":{\"a\":1\u{2028}}}]",
        ] {
            let mut out = Vec::new();
            assert_eq!(
                scan_batch(body.as_bytes(), opts(false), &mut out),
                Err(ERR_MALFORMED),
                "{body}"
            );
        }
        let mut out = Vec::new();
        for body in [
            &b"[{\"data\":{\"a\":1}}]\xff"[..],
            b"[{\"data\":{\"a\":1}}\xff]",
            b"[{\"d\xffta\":{}}]",
            b"[{\"data\":{\"\xc3\":1}}]",
            b"[{\"data\":{},\"time\":\"\xe2\x82\"}]",
        ] {
            assert_eq!(scan_batch(body, opts(false), &mut out), Err(ERR_MALFORMED));
        }
        // Non-ASCII keys, times and values are fine.
        let v = scan(
            r#"[{"data":{"sé":"✓😀","seq":3},"time":"2024-01-01T00:00:00Z é"}]"#,
            true,
        )
        .unwrap();
        assert_eq!(v[0].error, None);
        assert_eq!(v[0].tracked, Some(3));
        let p = v[0].parsed.as_ref().unwrap();
        assert_eq!(p.data["sé"], "✓😀");
        assert_eq!(p.time.as_deref(), Some("2024-01-01T00:00:00Z é"));
    }

    #[test]
    fn numbers_in_every_form() {
        let mut forms: Vec<String> = [
            "0",
            "-0",
            "1",
            "-1",
            "7",
            "10",
            "-10",
            "0.5",
            "-0.0",
            "1.25",
            "3.0",
            "1e5",
            "1E5",
            "1e+5",
            "1e-5",
            "1E+05",
            "-2.5e-3",
            "0e0",
            "0.0e-0",
            "1e308",
            "1e309",
            "-1e309",
            "2e-400",
            "1.7976931348623157e308",
            "1.8e308",
            "00",
            "01",
            "-01",
            "1.",
            "-",
            "-.5",
            ".5",
            "+1",
            "1e",
            "1e+",
            "1e-",
            "1.e5",
            "1.5e",
            "--1",
            "1-",
            "0x10",
            "1.5.5",
            "1ee5",
            "NaN",
            "Infinity",
            "-Infinity",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Integers of every length, around the u64 and i64 limits.
        for n in 1..=25 {
            forms.push("9".repeat(n));
            forms.push(format!("-{}", "9".repeat(n)));
            forms.push(format!("1{}", "0".repeat(n - 1)));
            forms.push(format!("{}.{}", "1".repeat(n), "2".repeat(n)));
            forms.push(format!("{}e{}", "3".repeat(n), n));
        }
        for s in [
            u64::MAX.to_string(),
            (u64::MAX as u128 + 1).to_string(),
            i64::MAX.to_string(),
            i64::MIN.to_string(),
            (i64::MIN as i128 - 1).to_string(),
            format!("-{}", u64::MAX),
        ] {
            forms.push(s);
        }
        // Long mantissas: over 300 digits only overflows when the value does.
        forms.push("1".repeat(300));
        forms.push("1".repeat(308));
        forms.push("1".repeat(309));
        forms.push("1".repeat(400));
        forms.push(format!("0.{}", "1".repeat(400)));
        forms.push(format!("{}.{}", "1".repeat(200), "1".repeat(200)));
        forms.push(format!("{}e-200", "1".repeat(400)));
        for f in &forms {
            check_value(f.as_bytes(), b"1");
            check_value(b"1", f.as_bytes());
            // Every following byte that can end a number, and some that
            // cannot.
            for end in [" ", "]", "}", ",", "x", ".", "e", "-", "\"", "é"] {
                let v = format!("[{f}{end}");
                let serde = serde_json::from_str::<Value>(&format!("{v}]")).is_ok();
                assert_eq!(is_valid_json(format!("{v}]").as_bytes()), serde, "{v}]");
            }
        }
    }

    #[test]
    fn tracked_numbers_and_sample_rates() {
        for (seq, want) in [
            ("0", Some(0)),
            ("-0", Some(0)),
            ("5", Some(5)),
            ("-5", Some(-5i64 as u64)),
            ("1234567890123456789", Some(1_234_567_890_123_456_789)),
            ("18446744073709551615", Some(u64::MAX)),
            ("18446744073709551616", None),
            ("99999999999999999999", None),
            ("9223372036854775808", Some(1 << 63)),
            ("-9223372036854775808", Some(1 << 63)),
            ("-9223372036854775809", None),
            ("123456789012345678901234567890", None),
            ("5.0", None),
            ("5e0", None),
            ("\"5\"", None),
            ("true", None),
            ("[5]", None),
            ("{\"seq\":5}", None),
        ] {
            let v = scan(&format!(r#"[{{"data":{{"seq":{seq}}}}}]"#), false).unwrap();
            assert_eq!(v[0].tracked, want, "{seq}");
            assert_eq!(v[0].error, None);
        }
        for (sr, want) in [
            ("1", Some(Some(1))),
            ("0", Some(Some(0))),
            ("-0", Some(Some(0))),
            ("100", Some(Some(100))),
            ("2.0", Some(Some(2))),
            ("1e2", Some(Some(100))),
            ("18446744073709551615", Some(Some(u64::MAX))),
            ("null", Some(None)),
            ("-1", None),
            ("2.5", None),
            ("1e400", None),
        ] {
            let body = format!(r#"[{{"data":{{}},"samplerate":{sr}}}]"#);
            match scan(&body, true) {
                Ok(v) => match want {
                    Some(w) => {
                        assert_eq!(v[0].error, None, "{sr}");
                        assert_eq!(v[0].parsed.as_ref().unwrap().samplerate, w, "{sr}");
                    }
                    None => assert_eq!(v[0].error, Some(ERR_MALFORMED), "{sr}"),
                },
                Err(e) => {
                    assert_eq!(e, ERR_MALFORMED);
                    assert!(serde_json::from_str::<Value>(&body).is_err(), "{sr}");
                }
            }
        }
    }

    #[test]
    fn nested_values_in_data() {
        let long = "x".repeat(MAX_STRING + 1);
        for (data, ok) in [
            (
                r#"{"a":{"b":[1,-2.5e3,"s",true,false,null,{"c":[[],{}]}]}}"#.to_owned(),
                true,
            ),
            (
                r#"{"a":[{"b":"\u00e9\ud83d\ude00"}],"seq":2}"#.to_owned(),
                true,
            ),
            (format!(r#"{{"a":[[{{"b":"{long}"}}]]}}"#), false),
            (format!(r#"{{"a":{{"{long}":1}}}}"#), true), // keys are not values
            (format!(r#"{{"a":[1,2,3,"{long}"],"b":"{long}"}}"#), false),
        ] {
            let body = format!(r#"[{{"data":{data}}}]"#);
            for want in [false, true] {
                let v = scan(&body, want).unwrap();
                assert_eq!(v[0].error.is_none(), ok, "{data}");
                if !ok {
                    assert_eq!(v[0].error, Some(ERR_STRING_TOO_LONG));
                }
                if ok && want {
                    let serde: Value = serde_json::from_str(&data).unwrap();
                    assert_eq!(
                        Value::Object(v[0].parsed.as_ref().unwrap().data.clone()),
                        serde
                    );
                }
            }
        }
        for bad in [
            r#"{"a":[1,]}"#,
            r#"{"a":{"b"}}"#,
            r#"{"a":[1 2]}"#,
            r#"{"a":{"b":1,}}"#,
            r#"{"a":[}"#,
            r#"{"a":{]}"#,
            r#"{"a":[tru]}"#,
            r#"{"a":[nul]}"#,
            r#"{"a":[falsee]}"#,
        ] {
            let body = format!(r#"[{{"data":{bad}}}]"#);
            assert_eq!(scan(&body, false).err(), Some(ERR_MALFORMED), "{bad}");
        }
    }

    #[test]
    fn bench_body_scans_like_serde_json() {
        let body = bench::bench_body();
        let parsed: Vec<Value> = serde_json::from_str(&body).unwrap();
        let o = ScanOptions {
            want_values: true,
            track: Some("count"),
        };
        let mut v = Vec::new();
        scan_batch(body.as_bytes(), o, &mut v).unwrap();
        assert_eq!(v.len(), parsed.len());
        for (c, p) in v.iter().zip(&parsed) {
            assert_eq!(c.error, None);
            assert_eq!(c.tracked, p["data"]["count"].as_u64());
            assert_eq!(
                Value::Object(c.parsed.as_ref().unwrap().data.clone()),
                p["data"]
            );
            assert_eq!(c.parsed.as_ref().unwrap().samplerate, Some(1));
        }
    }
}

#[cfg(test)]
mod speed {
    use super::*;

    /// On-CPU nanoseconds of this thread (Linux), else wall time.
    fn cpu_ns() -> u64 {
        std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// `cargo test --release -p libhoney-receiver --lib scan_speed -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn scan_speed() {
        let mut body = String::from("[");
        for i in 0..1000u64 {
            if i > 0 {
                body.push(',');
            }
            body.push_str(&format!(
                r#"{{"data":{{"duration_ms":{},"host":"web-{:02}","http.status_code":200,"name":"GET /api/items","ok":true,"seq":{},"service.name":"checkout","trace.span_id":"{:016x}","trace.trace_id":"{:032x}","user_id":"user-{}"}},"time":"2024-05-01T10:11:12.{:09}Z"}}"#,
                1.25 + (i % 100) as f64 * 0.5,
                i % 16,
                i,
                i.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                (i as u128).wrapping_mul(0x1234_5678_9abc_def1_2345_6789),
                i % 5000,
                (i * 7919) % 1_000_000_000
            ));
        }
        body.push(']');
        let o = ScanOptions {
            want_values: false,
            track: Some("seq"),
        };
        let mut out = Vec::with_capacity(1000);
        let rounds: usize = std::env::var("SCAN_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2000);
        let t = cpu_ns();
        for _ in 0..rounds {
            out.clear();
            scan_batch(body.as_bytes(), o, &mut out).unwrap();
        }
        let el = (cpu_ns() - t) as f64 / 1e9;
        println!(
            "scan: {:.0} ns/event, {:.2} GB/s ({} bytes/event)",
            el * 1e9 / (rounds * 1000) as f64,
            (body.len() * rounds) as f64 / el / 1e9,
            body.len() / 1000
        );
        let t = cpu_ns();
        for _ in 0..rounds {
            assert!(std::str::from_utf8(body.as_bytes()).is_ok());
        }
        let el = (cpu_ns() - t) as f64 / 1e9;
        println!("utf8: {:.0} ns/event", el * 1e9 / (rounds * 1000) as f64);
        let z = zstd::bulk::compress(body.as_bytes(), 2).unwrap();
        let mut buf = Vec::new();
        let t = cpu_ns();
        for _ in 0..rounds {
            crate::decode::decode_into(crate::decode::Encoding::Zstd, &z, 5_000_000, &mut buf)
                .unwrap();
        }
        let el = (cpu_ns() - t) as f64 / 1e9;
        println!("zstd: {:.0} ns/event", el * 1e9 / (rounds * 1000) as f64);
    }
}

/// Instruction-count harness for the batch scan (load-independent):
///
/// ```text
/// export CARGO_TARGET_DIR=/work/target-helper-recv
/// cargo test --release -p libhoney-receiver --lib --no-run
/// SCAN_ROUNDS=200 valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
///   $CARGO_TARGET_DIR/release/deps/libhoney_receiver-<hash> \
///   json::bench::callgrind_batch --ignored --exact --test-threads=1
/// ```
///
/// Run it with `SCAN_ROUNDS=0` too: the difference, divided by
/// `rounds × 500`, is the scan's instructions per event.
/// The benchmark shape's per-event values (bench/peers/SHAPE.md), shared
/// with every sender of the end-to-end benchmark.
#[cfg(test)]
#[path = "../../../bench/e2e/src/values.rs"]
mod shape;

#[cfg(test)]
mod bench {
    use super::*;

    /// One batch body of 500 events shaped like the end-to-end benchmark's
    /// (`bench/peers/SHAPE.md`), with our SDK's envelope.
    pub(super) fn bench_body() -> String {
        let mut body = String::from("[");
        for i in 0..500u64 {
            if i > 0 {
                body.push(',');
            }
            let data = serde_json::json!({
                "service.name": "checkout",
                "endpoint": "/api/v1/cart/items",
                "method": shape::METHODS[(i % 4) as usize],
                "status_code": shape::status_code(i),
                "duration_ms": shape::duration_ms(i),
                "user_id": shape::user_id(i),
                "cache_hit": i % 3 == 0,
                "message": shape::MESSAGE,
                "trace.trace_id": shape::trace_id(i),
                "count": i,
            });
            body.push_str(&format!(
                r#"{{"data":{data},"samplerate":1,"time":"2024-05-01T10:11:12.{:09}Z"}}"#,
                (i * 7919) % 1_000_000_000
            ));
        }
        body.push(']');
        body
    }

    #[test]
    #[ignore]
    fn callgrind_batch() {
        let body = bench_body();
        let o = ScanOptions {
            want_values: false,
            track: Some("count"),
        };
        let rounds: usize = std::env::var("SCAN_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(200);
        let mut out = Vec::with_capacity(500);
        for _ in 0..rounds {
            out.clear();
            scan_batch(std::hint::black_box(body.as_bytes()), o, &mut out).unwrap();
            std::hint::black_box(&out);
        }
        if rounds > 0 {
            assert_eq!(out.len(), 500);
            assert!(out.iter().all(|c| c.error.is_none()));
            assert_eq!(out[499].tracked, Some(499));
        }
        println!("{} bytes/event", body.len() / 500);
    }
}
