//! Turning the outcome of a batch into exactly one response per event: the
//! API's per-event statuses (JSON or msgpack), a whole-request failure, or a
//! transport failure. Both drivers answer through [`answer_batch`].
//!
//! Bounds: an answer is read up to [`max_answer_bytes`] (proportional to the
//! batch), and every text copied into a response (an error message, the
//! server's body) is cut to [`MAX_ERROR_TEXT`] bytes, so a hostile or broken
//! server cannot make a batch's responses hold more than about
//! `events × MAX_ERROR_TEXT` bytes.

use std::time::Duration;

use super::retry::FailureKind;
use crate::config::Encoding;
use crate::response::{Metadata, Responder, Response, ResponseError, TransportError};

/// The most bytes of any text (server body, error message, a status item)
/// copied into a response or a log line.
pub(crate) const MAX_ERROR_TEXT: usize = 1024;

/// The most bytes of an answer's body read for a batch of `events` events:
/// 64 KiB plus 1 KiB per event (a status item with a long error message),
/// at most 16 MiB. A larger answer fails the attempt as a protocol error.
pub(crate) fn max_answer_bytes(events: usize) -> usize {
    (64 * 1024usize)
        .saturating_add(events.saturating_mul(1024))
        .min(16 * 1024 * 1024)
}

/// `text` cut to at most `max` bytes at a character boundary, with `…`
/// where it was cut.
pub(crate) fn cut_text(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// [`cut_text`] of bytes that may not be UTF-8 (only the first `max + 4`
/// bytes are read).
pub(crate) fn cut_lossy(bytes: &[u8], max: usize) -> String {
    cut_text(
        &String::from_utf8_lossy(&bytes[..bytes.len().min(max + 4)]),
        max,
    )
}

/// `text` cut to at most [`MAX_ERROR_TEXT`] bytes ([`cut_text`]).
pub(crate) fn bounded_text(text: &str) -> String {
    cut_text(text, MAX_ERROR_TEXT)
}

/// [`bounded_text`] of bytes that may not be UTF-8.
fn bounded_lossy(bytes: &[u8]) -> String {
    cut_lossy(bytes, MAX_ERROR_TEXT)
}

/// The `Content-Type` of a body asked to be in `enc` (the encoding it is
/// [written](crate::encoding::written) in).
pub(crate) fn content_type(enc: Encoding) -> &'static str {
    match crate::encoding::written(enc) {
        Encoding::Json => "application/json",
        Encoding::Msgpack => "application/msgpack",
    }
}

/// How a batch's sending ended.
#[derive(Clone)]
pub(crate) enum Outcome {
    /// The server answered.
    Http {
        status: u16,
        body: Vec<u8>,
        msgpack: bool,
    },
    /// No answer: the transport failed (after retries).
    Transport { kind: FailureKind, message: String },
    /// Not sent: the client was closed (or gave up on its close) first.
    Abandoned(String),
}

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
        Outcome::Transport { kind, message } => {
            let message = bounded_text(&message);
            log::debug!(target: "libhoney", "a batch of {n} events failed ({kind:?}): {message}");
            let error = TransportError::new(kind.public(), message);
            each(&mut |m| {
                Response::failure(m, ResponseError::Transport(error.clone()))
                    .with_duration(duration)
            })
        }
        Outcome::Abandoned(message) => {
            let error = super::closed_error(&bounded_text(&message));
            each(&mut |m| Response::failure(m, error.clone()).with_duration(duration))
        }
        Outcome::Http { status, body, .. } if !(200..300).contains(&status) => {
            let mut text = bounded_lossy(&body);
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
                            let msg = match error {
                                Some(e) => bounded_text(&e),
                                None => format!("status {s}"),
                            };
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
    match parse_plain_statuses(body) {
        Some(statuses) => Ok(statuses),
        None => parse_general_statuses(body),
    }
}

/// The general path of [`parse_statuses_json`]: any valid JSON, read into a
/// tree (serde_json's recursion limit of 128 bounds its depth).
fn parse_general_statuses(body: &[u8]) -> Result<Vec<EventStatus>, String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let arr = v.as_array().ok_or("not a JSON array")?;
    arr.iter()
        .map(|item| {
            let obj = item
                .as_object()
                .ok_or_else(|| bounded_text(&format!("an item is not an object: {item}")))?;
            let member = |name: &str| {
                obj.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v)
            };
            let status = member("status")
                .and_then(|s| s.as_u64())
                .and_then(|s| u16::try_from(s).ok())
                .ok_or_else(|| bounded_text(&format!("an item has no valid status: {item}")))?;
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
            // JSON's white space (not `is_ascii_whitespace`, which takes a form feed too).
            while self
                .b
                .get(self.i)
                .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
            {
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
            // JSON has no leading zeros: `0202` is for the general path to refuse.
            if self.i == start || (self.b[start] == b'0' && self.i - start > 1) {
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
/// nil or empty error means none. Needs no msgpack library (so it works in
/// a build without the `msgpack` feature too).
pub(crate) fn parse_statuses_msgpack(body: &[u8]) -> Result<Vec<EventStatus>, String> {
    let mut rd = body;
    let bad = |what: &str| format!("bad msgpack statuses: {what}");
    let n = mp_array_len(&mut rd).ok_or_else(|| bad("not an array"))?;
    // Each item takes at least a byte: an array claiming more than the body
    // holds reserves no more than the body's length.
    let mut out = Vec::with_capacity(n.min(rd.len()));
    for _ in 0..n {
        let fields = mp_map_len(&mut rd).ok_or_else(|| bad("item is not a map"))?;
        let mut status = None;
        let mut error = None;
        for _ in 0..fields {
            let key = mp_str(&mut rd).ok_or_else(|| bad("key is not a string"))?;
            if key.eq_ignore_ascii_case(b"status") {
                let s = mp_uint(&mut rd).ok_or_else(|| bad("status is not an integer"))?;
                status = u16::try_from(s).ok();
            } else if key.eq_ignore_ascii_case(b"error") {
                if rd.first() == Some(&0xc0) {
                    rd = &rd[1..];
                    error = None;
                } else {
                    let s = mp_str(&mut rd).ok_or_else(|| bad("error is not a string"))?;
                    error = Some(bounded_lossy(s)).filter(|s| !s.is_empty());
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

/// Reads a msgpack array's header: its number of items.
fn mp_array_len(rd: &mut &[u8]) -> Option<usize> {
    let tag = *rd.first()?;
    *rd = &rd[1..];
    match tag {
        0x90..=0x9f => Some(usize::from(tag & 0x0f)),
        0xdc => mp_len(rd, 2),
        0xdd => mp_len(rd, 4),
        _ => None,
    }
}

/// Reads a msgpack map's header: its number of key-value pairs.
fn mp_map_len(rd: &mut &[u8]) -> Option<usize> {
    let tag = *rd.first()?;
    *rd = &rd[1..];
    match tag {
        0x80..=0x8f => Some(usize::from(tag & 0x0f)),
        0xde => mp_len(rd, 2),
        0xdf => mp_len(rd, 4),
        _ => None,
    }
}

/// Reads a msgpack integer that is not negative, in any of its widths.
fn mp_uint(rd: &mut &[u8]) -> Option<u64> {
    let tag = *rd.first()?;
    *rd = &rd[1..];
    let (n, signed) = match tag {
        0x00..=0x7f => return Some(u64::from(tag)),
        0xcc => (1, false),
        0xcd => (2, false),
        0xce => (4, false),
        0xcf => (8, false),
        0xd0 => (1, true),
        0xd1 => (2, true),
        0xd2 => (4, true),
        0xd3 => (8, true),
        _ => return None,
    };
    let b = mp_take(rd, n)?;
    if signed && b[0] & 0x80 != 0 {
        return None;
    }
    Some(b.iter().fold(0u64, |acc, &x| acc << 8 | u64::from(x)))
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

/// Skips one msgpack value of any kind. Lengths are saturated, not added:
/// a 32-bit map length doubled, or an ext length plus its type byte, would
/// overflow a 32-bit `usize` (a saturated length is then longer than any
/// body, so the value fails to read).
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
        0xde => (0, mp_len(rd, 2)?.saturating_mul(2)),
        0xdf => (0, mp_len(rd, 4)?.saturating_mul(2)),
        0xd4 => (2, 0),
        0xd5 => (3, 0),
        0xd6 => (5, 0),
        0xd7 => (9, 0),
        0xd8 => (17, 0),
        0xc7 => (mp_len(rd, 1)?.saturating_add(1), 0),
        0xc8 => (mp_len(rd, 2)?.saturating_add(1), 0),
        0xc9 => (mp_len(rd, 4)?.saturating_add(1), 0),
        _ => return None, // 0xc1, never used
    };
    mp_take(rd, skip)?;
    for _ in 0..items {
        mp_skip(rd, depth + 1)?;
    }
    Some(())
}

/// Hooks for the fuzz targets in `fuzz/` (through `libhoney::__fuzz`).
pub(crate) mod fuzz {
    use super::*;

    /// The responses a batch of `events` events gets when the server
    /// answers `status` with `body`.
    pub(crate) fn answer(status: u16, body: &[u8], msgpack: bool, events: usize) -> Vec<Response> {
        let outcome = Outcome::Http {
            status,
            body: body.to_vec(),
            msgpack,
        };
        batch_responses((0..events).map(|_| None).collect(), outcome, Duration::ZERO)
    }

    /// A status as `(status, error)`.
    pub(crate) type Status = (u16, Option<String>);

    fn plain(v: Vec<EventStatus>) -> Vec<Status> {
        v.into_iter().map(|s| (s.status, s.error)).collect()
    }

    /// The JSON statuses read by the fast path (`None` when it declines)
    /// and by the general path.
    pub(crate) fn json_both_paths(
        body: &[u8],
    ) -> (Option<Vec<Status>>, Result<Vec<Status>, String>) {
        (
            parse_plain_statuses(body).map(plain),
            parse_general_statuses(body).map(plain),
        )
    }

    /// The statuses read from a JSON (`msgpack == false`) or msgpack body.
    pub(crate) fn statuses(body: &[u8], msgpack: bool) -> Result<Vec<Status>, String> {
        if msgpack {
            parse_statuses_msgpack(body).map(plain)
        } else {
            parse_statuses_json(body).map(plain)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::TransportErrorKind;

    #[test]
    fn transport_failures_keep_their_kind_and_a_bounded_message() {
        let long = "x".repeat(10 * MAX_ERROR_TEXT);
        let out = batch_responses(
            vec![None, None],
            Outcome::Transport {
                kind: FailureKind::Tls,
                message: format!("certificate: {long}"),
            },
            Duration::ZERO,
        );
        assert_eq!(out.len(), 2);
        for r in &out {
            match &r.error {
                Some(ResponseError::Transport(e)) => {
                    assert_eq!(e.kind(), TransportErrorKind::Tls);
                    assert!(e.starts_with("certificate: "));
                    assert!(e.len() <= MAX_ERROR_TEXT + '…'.len_utf8(), "{}", e.len());
                }
                other => panic!("{other:?}"),
            }
        }
        let out = batch_responses(
            vec![None],
            Outcome::Abandoned("closed first".into()),
            Duration::ZERO,
        );
        assert!(
            matches!(&out[0].error, Some(ResponseError::Transport(e)) if e.kind() == TransportErrorKind::Closed)
        );
    }

    #[test]
    fn a_huge_status_item_or_body_is_cut_in_every_response() {
        let huge = "y".repeat(1 << 20);
        let body = format!(r#"[{{"status":202,"x":"{huge}"}},{{"nope":1}}]"#);
        let out = batch_responses(
            vec![None, None],
            Outcome::Http {
                status: 200,
                body: body.into_bytes(),
                msgpack: false,
            },
            Duration::ZERO,
        );
        for r in &out {
            let text = match &r.error {
                Some(ResponseError::MalformedResponse(m)) => m.len(),
                other => panic!("{other:?}"),
            };
            assert!(text <= MAX_ERROR_TEXT + 4, "{text}");
        }
        let out = batch_responses(
            vec![None],
            Outcome::Http {
                status: 500,
                body: huge.into_bytes(),
                msgpack: false,
            },
            Duration::ZERO,
        );
        assert!(
            out[0].body.len() <= MAX_ERROR_TEXT + 4,
            "{}",
            out[0].body.len()
        );
        assert_eq!(max_answer_bytes(500), 64 * 1024 + 500 * 1024);
        assert_eq!(max_answer_bytes(usize::MAX), 16 * 1024 * 1024);
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
            // Not JSON: a leading zero, a form feed as white space.
            br#"[{"status":0202}]"#,
            b"\x0c[]",
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

    /// An array header claiming 4,294,967,295 items in a body of 15 bytes
    /// reserves by what the body can hold: the claim itself would ask
    /// for over 100 GB at once, which aborts the process, test harness and
    /// all (checked by reserving the claim: "memory allocation failed").
    #[test]
    fn statuses_msgpack_claiming_more_items_than_bytes() {
        let mut b = vec![0xdd, 0xff, 0xff, 0xff, 0xff, 0x81, 0xa6];
        b.extend_from_slice(b"status");
        b.extend([0xcc, 0xca]);
        let err = parse_statuses_msgpack(&b).unwrap_err();
        assert!(err.contains("bad msgpack statuses"), "{err}");
        // The same claim through the whole answer path: one error response per event.
        let responses = crate::__fuzz::answer(202, &b, true, 3);
        assert_eq!(responses.len(), 3);
        assert!(responses.iter().all(|r| r.error.is_some()), "{responses:?}");
    }

    /// Headers and integers of every width, written by hand: the reader needs
    /// no msgpack library, and these run in every build.
    #[test]
    fn statuses_msgpack_of_every_width() {
        let status = |int: &[u8]| {
            let mut item = vec![0x81, 0xa6];
            item.extend_from_slice(b"status");
            item.extend_from_slice(int);
            item
        };
        let mut b = vec![0xdc, 0x00, 0x04]; // array 16
        b.extend(status(&[0xcd, 0x00, 0xca])); // uint 16: 202
        b.extend(status(&[0xd0, 0x7f])); // int 8: 127
        b.extend(status(&[0xd3, 0, 0, 0, 0, 0, 0, 0x01, 0x90])); // int 64: 400
        b.extend([0xde, 0x00, 0x01, 0xa6]); // map 16
        b.extend_from_slice(b"STATUS");
        b.extend([0xce, 0, 0, 0x01, 0xf5]); // uint 32: 501
        let got: Vec<u16> = parse_statuses_msgpack(&b)
            .unwrap()
            .iter()
            .map(|s| s.status)
            .collect();
        assert_eq!(got, [202, 127, 400, 501]);
        let mut c = vec![0xdd, 0, 0, 0, 0x01]; // array 32
        c.extend([0xdf, 0, 0, 0, 0x01, 0xa6]); // map 32
        c.extend_from_slice(b"status");
        c.push(0x05);
        assert_eq!(parse_statuses_msgpack(&c).unwrap()[0].status, 5);
        // Negative, too wide for a status, or not an integer: no status.
        for bad in [
            &[0xff][..],
            &[0xd0, 0x80],
            &[0xd1, 0xff, 0x38],
            &[0xca, 0, 0, 0, 0],
        ] {
            let mut b = vec![0x91];
            b.extend(status(bad));
            assert!(parse_statuses_msgpack(&b).is_err(), "{bad:?}");
        }
        let mut wide = vec![0x91];
        wide.extend(status(&[0xce, 0, 0x01, 0, 0])); // 65,536
        assert!(parse_statuses_msgpack(&wide).is_err());
        assert!(parse_statuses_msgpack(&[0x81]).is_err()); // a map, not an array
        assert!(parse_statuses_msgpack(&[0x91, 0x90]).is_err()); // an item that is no map
    }

    #[test]
    #[cfg(feature = "msgpack")]
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
    #[cfg(feature = "msgpack")]
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
}
