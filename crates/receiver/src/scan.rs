//! Shared vocabulary of the body scanners (JSON and msgpack): limits, error
//! strings and the per-event result.

use serde_json::{Map, Value};

pub(crate) use crate::{MAX_EVENT_BYTES as MAX_EVENT, MAX_FIELDS, MAX_STRING_BYTES as MAX_STRING};
/// Deepest nesting of arrays/objects accepted inside an event (msgpack; JSON
/// uses serde_json's own limit of 128).
pub(crate) const MAX_DEPTH: usize = 128;

/// The API's error for bodies (or events) that cannot be parsed.
pub(crate) const ERR_MALFORMED: &str = "Request body is malformed and cannot be read.";
/// The API's error for an empty body.
pub(crate) const ERR_EMPTY: &str = "Request body should not be empty.";
/// The API's error for a body over the size limit.
pub(crate) const ERR_TOO_LARGE: &str = "Request body is too large.";
/// The API's error for an event with too many fields.
pub(crate) const ERR_TOO_MANY_COLUMNS: &str = "Event has too many columns.";
/// Error for a string value over [`MAX_STRING`] bytes.
pub(crate) const ERR_STRING_TOO_LONG: &str =
    "Event has a string field value longer than 65536 bytes.";
/// Error for an event over [`MAX_EVENT`] bytes.
pub(crate) const ERR_EVENT_TOO_LARGE: &str =
    "Event exceeds the maximum event size of 1000000 bytes.";

/// What the scanners should extract besides validating.
#[derive(Clone, Copy)]
pub(crate) struct ScanOptions<'a> {
    /// Build `serde_json` values for accepted events (recording/printing).
    pub want_values: bool,
    /// Name of the data field whose integer value is tracked.
    pub track: Option<&'a str>,
}

/// The content of an event, extracted only when values are wanted.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub data: Map<String, Value>,
    pub time: Option<String>,
    pub samplerate: Option<u64>,
}

/// The verdict on one event.
#[derive(Debug, Default)]
pub(crate) struct EventCheck {
    /// `None` = valid (would get status 202).
    pub error: Option<&'static str>,
    /// Value of the tracked field, if present and integral.
    pub tracked: Option<u64>,
    /// Extracted content (valid events, when values are wanted).
    pub parsed: Option<Parsed>,
}

impl EventCheck {
    pub(crate) fn invalid(error: &'static str) -> Self {
        EventCheck {
            error: Some(error),
            tracked: None,
            parsed: None,
        }
    }

    pub(crate) fn valid(tracked: Option<u64>, parsed: Option<Parsed>) -> Self {
        EventCheck {
            error: None,
            tracked,
            parsed,
        }
    }
}

/// What a scanner's validating pass found in one event.
#[derive(Default)]
pub(crate) struct EventScan {
    /// The first rule the event breaks.
    pub violation: Option<&'static str>,
    /// How many `data` members it has (exactly one is valid).
    pub data_seen: u32,
    /// Value of the tracked field, if present and integral.
    pub tracked: Option<u64>,
}

impl EventScan {
    /// Records `e`, unless the event already broke a rule.
    pub(crate) fn violate(&mut self, e: &'static str) {
        if self.violation.is_none() {
            self.violation = Some(e);
        }
    }

    /// The verdict on a batch event whose encoding is `encoded_len` bytes:
    /// the first rule it breaks; else, when values are wanted, what `values`
    /// builds; else valid.
    #[inline(always)]
    pub(crate) fn verdict(
        &self,
        encoded_len: usize,
        opts: ScanOptions<'_>,
        values: impl FnOnce() -> EventCheck,
    ) -> EventCheck {
        if encoded_len > MAX_EVENT {
            EventCheck::invalid(ERR_EVENT_TOO_LARGE)
        } else if let Some(e) = self.violation {
            EventCheck::invalid(e)
        } else if self.data_seen != 1 {
            EventCheck::invalid(ERR_MALFORMED)
        } else if opts.want_values {
            values()
        } else {
            EventCheck::valid(self.tracked, None)
        }
    }
}

/// The options the scanners' unit tests use: values wanted or not, `seq`
/// tracked.
#[cfg(test)]
pub(crate) fn test_opts(want_values: bool) -> ScanOptions<'static> {
    ScanOptions {
        want_values,
        track: Some("seq"),
    }
}

/// Converts a JSON value holding a sample rate into `u64`.
pub(crate) fn samplerate_from_f64(f: f64) -> Option<u64> {
    if f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f <= u64::MAX as f64 {
        Some(f as u64)
    } else {
        None
    }
}
