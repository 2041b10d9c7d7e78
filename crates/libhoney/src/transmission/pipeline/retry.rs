//! When to try a batch again: the retry policy both drivers follow, as a state
//! machine fed with the outcome of each attempt and the time ([`Retries`]).
//!
//! A driver only performs the attempt and the wait: it calls
//! [`Retries::after`] with what happened, and either sleeps for the delay it
//! is given (cut short by a close that gives up) or answers the batch with
//! the [`Outcome`] it is given. So retry timing, deadlines, `Retry-After`
//! and the classification of failures are written once, and tested here with
//! a fake clock.

use std::time::{Duration, Instant, SystemTime};

use super::answer::Outcome;
use crate::config::Config;
use crate::response::TransportErrorKind;

/// Why an attempt got no answer, as the driver saw it. Every kind but
/// [`FailureKind::Tls`] and [`FailureKind::Refused`] is worth another try.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// No answer within `request_timeout`.
    Timeout,
    /// The connection could not be opened, or was lost.
    Connection,
    /// The host name could not be resolved (as ureq tells `Http`; `Tokio`'s
    /// lookups fail with a plain I/O error, reported as `Connection`).
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    Dns,
    /// TLS failed: a certificate that does not verify, or a handshake the
    /// server refuses. Retrying cannot help.
    Tls,
    /// The proxy could not be used (a transient failure of the proxy itself).
    Proxy,
    /// The answer broke HTTP, or was larger than the SDK reads.
    Protocol,
    /// A failure that retrying cannot help (a request that cannot be built,
    /// a proxy that refuses our credentials).
    Refused,
}

impl FailureKind {
    /// The kind users see on the response.
    pub(crate) fn public(self) -> TransportErrorKind {
        match self {
            FailureKind::Timeout => TransportErrorKind::Timeout,
            FailureKind::Connection => TransportErrorKind::Connect,
            FailureKind::Dns => TransportErrorKind::Dns,
            FailureKind::Tls => TransportErrorKind::Tls,
            FailureKind::Proxy => TransportErrorKind::Proxy,
            FailureKind::Protocol => TransportErrorKind::Protocol,
            FailureKind::Refused => TransportErrorKind::Refused,
        }
    }

    /// Whether another attempt may succeed.
    pub(crate) fn transient(self) -> bool {
        !matches!(self, FailureKind::Tls | FailureKind::Refused)
    }
}

/// What happened to one attempt.
pub(crate) enum Attempt {
    /// The server answered (any status).
    Answered {
        status: u16,
        /// The `Retry-After` header, as sent.
        retry_after: Option<String>,
        /// Whether the answer's `Content-Type` is msgpack.
        msgpack: bool,
        body: Vec<u8>,
    },
    /// No answer.
    Failed { kind: FailureKind, message: String },
}

/// What the driver does next with a batch.
pub(crate) enum Next {
    /// Wait `delay` (or until a close gives up), then try again. `failed`
    /// is how this attempt ended: what the events get if a close gives up
    /// during the wait ([`Claim::retrying`](super::flight::Claim::retrying)).
    Retry { delay: Duration, failed: Outcome },
    /// Answer the batch's events with this.
    Done(Outcome),
}

/// The attempts of one batch: started when its first attempt starts.
pub(crate) struct Retries {
    policy: RetryPolicy,
    started: Instant,
    attempt: u32,
}

impl Retries {
    pub(crate) fn new(policy: RetryPolicy, now: Instant) -> Self {
        Retries {
            policy,
            started: now,
            attempt: 1,
        }
    }

    /// How many attempts were made (or are being made).
    pub(crate) fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Decides after an attempt, at `now` (`wall` is the wall clock, for a
    /// `Retry-After` given as a date).
    pub(crate) fn after(&mut self, attempt: Attempt, now: Instant, wall: SystemTime) -> Next {
        let (outcome, retryable, retry_after) = match attempt {
            Attempt::Answered {
                status,
                retry_after,
                msgpack,
                body,
            } => {
                let after = retry_after
                    .as_deref()
                    .and_then(|v| parse_retry_after(v, wall));
                let outcome = Outcome::Http {
                    status,
                    body,
                    msgpack,
                };
                (outcome, is_retryable_status(status), after)
            }
            Attempt::Failed { kind, message } => {
                let message = if self.attempt > 1 {
                    format!("{message} (after {} attempts)", self.attempt)
                } else {
                    message
                };
                (Outcome::Transport { kind, message }, kind.transient(), None)
            }
        };
        if retryable {
            let elapsed = now.saturating_duration_since(self.started);
            if let Some(delay) = self.policy.next_delay(self.attempt, elapsed, retry_after) {
                self.attempt += 1;
                return Next::Retry {
                    delay,
                    failed: outcome,
                };
            }
        }
        Next::Done(outcome)
    }
}

/// When and how often to retry.
#[derive(Clone, Debug)]
pub(crate) struct RetryPolicy {
    pub(crate) max_attempts: u32,
    pub(crate) deadline: Duration,
    pub(crate) base: Duration,
    pub(crate) max: Duration,
}

impl RetryPolicy {
    pub(crate) fn from_config(c: &Config) -> Self {
        RetryPolicy {
            max_attempts: c.max_attempts.unwrap_or(u32::MAX),
            deadline: c.retry_deadline,
            base: c.retry_base_delay,
            max: c.retry_max_delay,
        }
    }

    /// The delay before attempt `attempt + 1`, or `None` to give up.
    /// `retry_after` (from the server) replaces the backoff; if it would pass
    /// the deadline, the batch gives up now.
    pub(crate) fn next_delay(
        &self,
        attempt: u32,
        elapsed: Duration,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let delay = match retry_after {
            Some(d) => d,
            None => {
                let exp = self
                    .base
                    .saturating_mul(1u32 << (attempt - 1).min(20))
                    .min(self.max);
                // Jitter: uniformly between half and the whole delay.
                let half = exp / 2;
                half + Duration::from_nanos(fastrand::u64(0..=(exp - half).as_nanos() as u64))
            }
        };
        if elapsed + delay > self.deadline {
            return None;
        }
        Some(delay)
    }
}

/// Statuses worth retrying: timeouts, rate limits and transient server errors.
pub(crate) fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// The longest `Retry-After` taken as given (a day); longer ones are cut to
/// it (the retry deadline usually ends the wait far sooner).
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// Parses `Retry-After`: seconds (integer or decimal) or an HTTP date; at
/// most [`MAX_RETRY_AFTER`] either way.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(
                secs.min(MAX_RETRY_AFTER.as_secs_f64()),
            ));
        }
        return None;
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after(" 0.5 ", now),
            Some(Duration::from_millis(500))
        );
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        let date = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(7)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(7));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        // A date years ahead, or 10^9 seconds: a day at most.
        let far = httpdate::fmt_http_date(now + Duration::from_secs(1_000_000_000));
        assert_eq!(parse_retry_after(&far, now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("1e9", now), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn backoff_grows_with_jitter_and_respects_limits() {
        let p = RetryPolicy {
            max_attempts: 5,
            deadline: Duration::from_secs(10),
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        for _ in 0..100 {
            let d1 = p.next_delay(1, Duration::ZERO, None).unwrap();
            assert!(
                d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100),
                "{d1:?}"
            );
            let d3 = p.next_delay(3, Duration::ZERO, None).unwrap();
            assert!(
                d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400),
                "{d3:?}"
            );
            let d4 = p.next_delay(4, Duration::ZERO, None).unwrap();
            assert!(d4 <= Duration::from_secs(1), "capped: {d4:?}");
        }
        assert_eq!(
            p.next_delay(5, Duration::ZERO, None),
            None,
            "out of attempts"
        );
        assert_eq!(
            p.next_delay(1, Duration::ZERO, Some(Duration::from_secs(3))),
            Some(Duration::from_secs(3)),
            "Retry-After wins"
        );
        assert_eq!(
            p.next_delay(1, Duration::from_secs(8), Some(Duration::from_secs(3))),
            None,
            "past the deadline"
        );
    }

    fn policy(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            deadline: Duration::from_secs(60),
            base: Duration::from_millis(100),
            max: Duration::from_secs(5),
        }
    }

    fn failed(kind: FailureKind) -> Attempt {
        Attempt::Failed {
            kind,
            message: format!("{kind:?}"),
        }
    }

    fn answered(status: u16, retry_after: Option<&str>) -> Attempt {
        Attempt::Answered {
            status,
            retry_after: retry_after.map(str::to_string),
            msgpack: false,
            body: b"[]".to_vec(),
        }
    }

    /// Runs attempts on a fake clock: each attempt takes `attempt_time`, and
    /// `outcome(t)` says how the attempt started at `t` (from the first) ends.
    /// Returns the final outcome, the attempts made and when it ended.
    fn run(
        policy: RetryPolicy,
        attempt_time: Duration,
        outcome: impl Fn(Duration) -> Attempt,
    ) -> (Outcome, u32, Duration) {
        let t0 = Instant::now();
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut t = Duration::ZERO;
        let mut r = Retries::new(policy, t0);
        loop {
            let a = outcome(t);
            t += attempt_time;
            match r.after(a, t0 + t, wall + t) {
                Next::Done(o) => return (o, r.attempts(), t),
                Next::Retry { delay, .. } => t += delay,
            }
        }
    }

    #[test]
    fn an_outage_of_ten_seconds_is_ridden_out_by_default() {
        let back = Duration::from_secs(10);
        let (o, attempts, t) = run(policy(u32::MAX), Duration::from_millis(2), |t| {
            if t < back {
                failed(FailureKind::Connection)
            } else {
                answered(200, None)
            }
        });
        assert!(matches!(o, Outcome::Http { status: 200, .. }));
        // Capped backoff: back within one maximum delay of the outage's end.
        assert!(
            t >= back && t <= back + Duration::from_secs(5) + Duration::from_millis(10),
            "{t:?}"
        );
        assert!(
            attempts > 3,
            "more than the old fixed 3 attempts: {attempts}"
        );
    }

    #[test]
    fn a_lasting_outage_ends_at_the_deadline_with_the_last_failure() {
        let (o, attempts, t) = run(policy(u32::MAX), Duration::from_millis(2), |_| {
            failed(FailureKind::Timeout)
        });
        match o {
            Outcome::Transport { kind, message } => {
                assert_eq!(kind, FailureKind::Timeout);
                assert!(
                    message.contains(&format!("after {attempts} attempts")),
                    "{message}"
                );
            }
            _ => panic!("not a transport failure"),
        }
        assert!(
            t <= Duration::from_secs(60),
            "never past the deadline: {t:?}"
        );
        assert!(
            t >= Duration::from_secs(55),
            "retried until close to it: {t:?}"
        );
    }

    #[test]
    fn max_attempts_caps_the_retries() {
        let (_, attempts, _) = run(policy(3), Duration::ZERO, |_| answered(503, None));
        assert_eq!(attempts, 3);
        let (_, attempts, _) = run(policy(1), Duration::ZERO, |_| answered(503, None));
        assert_eq!(attempts, 1);
    }

    #[test]
    fn tls_and_refused_failures_and_client_errors_are_not_retried() {
        for kind in [FailureKind::Tls, FailureKind::Refused] {
            let (o, attempts, _) = run(policy(u32::MAX), Duration::ZERO, |_| failed(kind));
            assert_eq!(attempts, 1, "{kind:?}");
            assert!(matches!(o, Outcome::Transport { kind: k, .. } if k == kind));
        }
        for status in [400, 401, 403, 404, 413] {
            let (o, attempts, _) =
                run(policy(u32::MAX), Duration::ZERO, |_| answered(status, None));
            assert_eq!(attempts, 1, "{status}");
            assert!(matches!(o, Outcome::Http { status: s, .. } if s == status));
        }
    }

    #[test]
    fn retry_after_is_followed_unless_it_points_past_the_deadline() {
        // 429 with Retry-After: 2 twice, then accepted: waits exactly 2 s each time.
        let (o, attempts, t) = run(policy(u32::MAX), Duration::ZERO, |t| {
            if t < Duration::from_secs(4) {
                answered(429, Some("2"))
            } else {
                answered(200, None)
            }
        });
        assert!(matches!(o, Outcome::Http { status: 200, .. }));
        assert_eq!((attempts, t), (3, Duration::from_secs(4)));
        // As an HTTP date, 30 s ahead.
        let mut r = Retries::new(policy(u32::MAX), Instant::now());
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let date = httpdate::fmt_http_date(wall + Duration::from_secs(30));
        match r.after(answered(503, Some(&date)), Instant::now(), wall) {
            Next::Retry { delay, failed } => {
                assert_eq!(delay, Duration::from_secs(30));
                assert!(matches!(failed, Outcome::Http { status: 503, .. }));
            }
            Next::Done(_) => panic!("retried"),
        }
        // Past the deadline: given up at once, with the server's answer.
        let (o, attempts, _) = run(policy(u32::MAX), Duration::ZERO, |_| {
            answered(503, Some("3600"))
        });
        assert_eq!(attempts, 1);
        assert!(matches!(o, Outcome::Http { status: 503, .. }));
    }

    #[test]
    fn retryable_statuses() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(is_retryable_status(s));
        }
        for s in [200, 400, 401, 403, 404, 413, 501] {
            assert!(!is_retryable_status(s));
        }
    }
}
