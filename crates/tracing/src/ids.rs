//! Trace and span identifiers, and the W3C `traceparent` header.

use std::fmt;
use std::str::FromStr;

/// A 128-bit trace id, shared by every span of one trace. Sent as
/// `trace.trace_id`: 32 lowercase hex digits. Never zero.
///
/// ```
/// use libhoney_tracing::TraceId;
/// let id: TraceId = "4bf92f3577b34da6a3ce929d0e0e4736".parse().unwrap();
/// assert_eq!(id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// assert!("00000000000000000000000000000000".parse::<TraceId>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId(u128);

/// A 64-bit span id, unique to one span. Sent as `trace.span_id` (and as the
/// children's `trace.parent_id`): 16 lowercase hex digits. Never zero.
///
/// ```
/// use libhoney_tracing::SpanId;
/// let id = SpanId::new(0xab).unwrap();
/// assert_eq!(id.to_string(), "00000000000000ab");
/// assert_eq!("00000000000000AB".parse::<SpanId>().unwrap(), id);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId(u64);

/// Why a trace id, span id or `traceparent` header could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseIdError(());

impl fmt::Display for ParseIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a valid non-zero hex trace or span id")
    }
}

impl std::error::Error for ParseIdError {}

/// Parses exactly `digits` hex digits (either case); `None` otherwise.
fn parse_hex(s: &str, digits: usize) -> Option<u128> {
    if s.len() != digits || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u128::from_str_radix(s, 16).ok()
}

impl TraceId {
    /// The id from its number; `None` for zero (invalid in W3C Trace Context).
    pub const fn new(id: u128) -> Option<TraceId> {
        if id == 0 {
            None
        } else {
            Some(TraceId(id))
        }
    }

    /// A new random id, from `fastrand`'s thread-local generator: a few
    /// nanoseconds, no lock, no system call. Unpredictable enough to avoid
    /// collisions, not meant to be secret.
    pub fn random() -> TraceId {
        loop {
            if let Some(id) = TraceId::new(fastrand::u128(..)) {
                return id;
            }
        }
    }

    /// The id as a number.
    pub const fn to_u128(self) -> u128 {
        self.0
    }

    /// Whether a trace with this id is kept at sample rate `rate` (one trace
    /// in `rate`): true when the low 64 bits of the id are a multiple of
    /// `rate`. Every span of a trace has the same id, so a trace is kept or
    /// dropped whole, in every process that uses this rule. Rates 0 and 1
    /// keep everything.
    ///
    /// ```
    /// use libhoney_tracing::TraceId;
    /// assert!(TraceId::new(8).unwrap().is_sampled(4));
    /// assert!(!TraceId::new(9).unwrap().is_sampled(4));
    /// assert!(TraceId::new(9).unwrap().is_sampled(1));
    /// ```
    pub fn is_sampled(self, rate: u32) -> bool {
        rate <= 1 || (self.0 as u64) % u64::from(rate) == 0
    }
}

impl SpanId {
    /// The id from its number; `None` for zero (invalid in W3C Trace Context).
    pub const fn new(id: u64) -> Option<SpanId> {
        if id == 0 {
            None
        } else {
            Some(SpanId(id))
        }
    }

    /// A new random id (see [`TraceId::random`] for the cost).
    pub fn random() -> SpanId {
        loop {
            if let Some(id) = SpanId::new(fastrand::u64(..)) {
                return id;
            }
        }
    }

    /// The id as a number.
    pub const fn to_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}

impl FromStr for TraceId {
    type Err = ParseIdError;
    /// Exactly 32 hex digits, either case, not all zero.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex(s, 32)
            .and_then(TraceId::new)
            .ok_or(ParseIdError(()))
    }
}

impl FromStr for SpanId {
    type Err = ParseIdError;
    /// Exactly 16 hex digits, either case, not all zero.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex(s, 16)
            .and_then(|v| SpanId::new(v as u64))
            .ok_or(ParseIdError(()))
    }
}

/// Where a span sits in a trace: its trace id, a span id, and whether the
/// trace was sampled. It is what crosses process boundaries.
///
/// - Incoming: parse the caller's header with
///   [`from_traceparent`](TraceContext::from_traceparent) and hand it to
///   [`SpanExt::set_remote_parent`](crate::SpanExt::set_remote_parent); here
///   `span_id` is the *caller's* span, which becomes the parent.
/// - Outgoing: [`SpanExt::trace_context`](crate::SpanExt::trace_context)
///   gives this span's own ids; send
///   [`to_traceparent`](TraceContext::to_traceparent) to the callee.
///
/// ```
/// use libhoney_tracing::TraceContext;
/// let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
/// let ctx = TraceContext::from_traceparent(header).unwrap();
/// assert_eq!(ctx.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// assert_eq!(ctx.span_id.to_string(), "00f067aa0ba902b7");
/// assert!(ctx.sampled);
/// assert_eq!(ctx.to_traceparent(), header);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct TraceContext {
    /// The trace's id.
    pub trace_id: TraceId,
    /// A span's id: the remote parent's for an incoming context, this span's
    /// own for an outgoing one.
    pub span_id: SpanId,
    /// The W3C `sampled` flag. Incoming, it is informational: this layer
    /// decides by its own rule on the trace id ([`TraceId::is_sampled`]).
    /// Outgoing, it says whether this layer keeps the trace.
    pub sampled: bool,
}

impl TraceContext {
    /// A context with the `sampled` flag set.
    pub fn new(trace_id: TraceId, span_id: SpanId) -> TraceContext {
        TraceContext {
            trace_id,
            span_id,
            sampled: true,
        }
    }

    /// Parses a W3C Trace Context `traceparent` header value:
    /// `{version}-{trace-id}-{parent-id}-{flags}`, e.g.
    /// `00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01`.
    ///
    /// Returns `None` when the value is malformed: wrong lengths, non-hex
    /// digits, an all-zero id, version `ff`, or version `00` with extra parts.
    /// Versions above `00` are read by their first four parts, as the spec
    /// asks. Hex digits are accepted in either case; surrounding whitespace is
    /// ignored. Costs no allocation.
    pub fn from_traceparent(header: &str) -> Option<TraceContext> {
        let header = header.trim();
        let mut parts = header.splitn(5, '-');
        let version = parse_hex(parts.next()?, 2)?;
        let trace_id = parts.next()?.parse().ok()?;
        let span_id = parts.next()?.parse().ok()?;
        let flags = parse_hex(parts.next()?, 2)?;
        let rest = parts.next();
        match (version, rest) {
            (0xff, _) => return None,
            (0, Some(_)) => return None,
            _ => {}
        }
        Some(TraceContext {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    /// Formats the context as a version-00 `traceparent` header value.
    pub fn to_traceparent(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            self.trace_id,
            self.span_id,
            u8::from(self.sampled)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_parsing() {
        let ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert!(TraceContext::from_traceparent(ok).is_some());
        assert!(TraceContext::from_traceparent(&format!("  {ok}\n")).is_some());
        let upper = "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-00";
        let c = TraceContext::from_traceparent(upper).unwrap();
        assert!(!c.sampled);
        assert_eq!(c.trace_id.to_u128(), 0x4bf92f3577b34da6a3ce929d0e0e4736);
        // Future versions may add parts; version 00 may not.
        assert!(TraceContext::from_traceparent(&format!("01{}-extra", &ok[2..])).is_some());
        for bad in [
            "",
            "00",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        ] {
            assert!(TraceContext::from_traceparent(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn random_ids_are_nonzero_and_formatted() {
        for _ in 0..1000 {
            let t = TraceId::random().to_string();
            let s = SpanId::random().to_string();
            assert_eq!(t.len(), 32);
            assert_eq!(s.len(), 16);
            assert!(t
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            assert_eq!(t.parse::<TraceId>().unwrap().to_string(), t);
            assert_eq!(s.parse::<SpanId>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn sampling_rule() {
        let id = |n| TraceId::new(n).unwrap();
        assert!(id(12).is_sampled(0));
        assert!(id(12).is_sampled(3));
        assert!(!id(13).is_sampled(3));
        // Only the low 64 bits count.
        assert!(id((7u128 << 64) | 12).is_sampled(3));
    }
}
