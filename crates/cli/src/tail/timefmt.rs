//! Timestamps from log fields: RFC 3339, Unix epochs, and a strftime subset,
//! parsed without a date library (civil date to days by Howard Hinnant's
//! `days_from_civil`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libhoney::Value;

/// How to read a time field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeFormat {
    /// RFC 3339 text, or a number of Unix seconds (integer or fractional).
    Auto,
    /// RFC 3339 (`T` or a space between date and time; `Z` or an offset; no offset = UTC).
    Rfc3339,
    /// Unix seconds.
    Unix,
    /// Unix milliseconds.
    UnixMs,
    /// Unix microseconds.
    UnixUs,
    /// Unix nanoseconds.
    UnixNs,
    /// A strftime pattern: `%Y %m %d %e %H %M %S %f %z %Z %b %T %F %s %%`;
    /// `%S` also takes a fraction (`05.123`). Without `%z` the time is UTC.
    Pattern(String),
}

/// nginx's and Apache's `$time_local`: `10/Oct/2000:13:55:36 -0700`.
pub const COMMON_LOG: &str = "%d/%b/%Y:%H:%M:%S %z";

impl TimeFormat {
    /// Reads a `--time-format` value.
    ///
    /// # Errors
    /// An unknown name that is not a pattern (no `%`), or a pattern with an
    /// unsupported directive.
    pub fn from_flag(s: &str) -> Result<TimeFormat, String> {
        Ok(match s {
            "auto" => TimeFormat::Auto,
            "rfc3339" | "iso8601" => TimeFormat::Rfc3339,
            "unix" | "epoch" => TimeFormat::Unix,
            "unix_ms" => TimeFormat::UnixMs,
            "unix_us" => TimeFormat::UnixUs,
            "unix_ns" => TimeFormat::UnixNs,
            "common_log" => TimeFormat::Pattern(COMMON_LOG.to_owned()),
            p if p.contains('%') => {
                let mut chars = p.chars();
                while let Some(c) = chars.next() {
                    if c == '%' {
                        match chars.next() {
                            Some('Y' | 'm' | 'd' | 'e' | 'H' | 'M' | 'S' | 'f' | 'z' | 'Z'
                            | 'b' | 'T' | 'F' | 's' | '%') => {}
                            other => {
                                return Err(format!(
                                    "unsupported directive %{} in --time-format {p:?}",
                                    other.map(String::from).unwrap_or_default()
                                ))
                            }
                        }
                    }
                }
                TimeFormat::Pattern(p.to_owned())
            }
            other => {
                return Err(format!(
                "unknown --time-format {other:?}: use auto, rfc3339, unix, unix_ms, unix_us, unix_ns, common_log or a strftime pattern"
            ))
            }
        })
    }

    /// The time in a field value, if it can be read in this format.
    pub fn parse_value(&self, v: &Value) -> Option<SystemTime> {
        match v {
            Value::String(s) => self.parse_str(s),
            Value::Int(i) => self.epoch(*i as f64),
            Value::UInt(u) => self.epoch(*u as f64),
            Value::Float(f) => self.epoch(*f),
            _ => None,
        }
    }

    /// The time in a text, if it can be read in this format.
    pub fn parse_str(&self, s: &str) -> Option<SystemTime> {
        let s = s.trim();
        match self {
            TimeFormat::Auto => rfc3339(s).or_else(|| self.epoch(s.parse().ok()?)),
            TimeFormat::Rfc3339 => rfc3339(s),
            TimeFormat::Unix | TimeFormat::UnixMs | TimeFormat::UnixUs | TimeFormat::UnixNs => {
                self.epoch(s.parse().ok()?)
            }
            TimeFormat::Pattern(p) => pattern(p, s),
        }
    }

    fn epoch(&self, n: f64) -> Option<SystemTime> {
        let secs = match self {
            TimeFormat::UnixMs => n / 1e3,
            TimeFormat::UnixUs => n / 1e6,
            TimeFormat::UnixNs => n / 1e9,
            TimeFormat::Auto | TimeFormat::Unix => n,
            _ => return None,
        };
        from_secs_f64(secs)
    }
}

fn from_secs_f64(secs: f64) -> Option<SystemTime> {
    if !secs.is_finite() || secs.abs() > 253_402_300_799.0 {
        return None; // outside 0000..9999, which the SDK refuses anyway
    }
    if secs >= 0.0 {
        UNIX_EPOCH.checked_add(Duration::from_secs_f64(secs))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs_f64(-secs))
    }
}

fn rfc3339(s: &str) -> Option<SystemTime> {
    pattern("%Y-%m-%dT%H:%M:%S%z", s).or_else(|| pattern("%Y-%m-%d %H:%M:%S%z", s))
}

/// Days from 1970-01-01 to a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn digits(&mut self, min: usize, max: usize) -> Option<i64> {
        let start = self.i;
        while self.i < self.s.len() && self.i - start < max && self.s[self.i].is_ascii_digit() {
            self.i += 1;
        }
        if self.i - start < min {
            return None;
        }
        std::str::from_utf8(&self.s[start..self.i])
            .ok()?
            .parse()
            .ok()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn fraction(&mut self) -> u32 {
        let start = self.i;
        let mut nanos: u64 = 0;
        while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
            if self.i - start < 9 {
                nanos = nanos * 10 + u64::from(self.s[self.i] - b'0');
            }
            self.i += 1;
        }
        let n = (self.i - start).min(9);
        (nanos * 10u64.pow((9 - n) as u32)) as u32
    }
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

fn pattern(p: &str, s: &str) -> Option<SystemTime> {
    let (mut y, mut mo, mut d, mut h, mut mi, mut sec, mut nanos) =
        (1970i64, 1u32, 1u32, 0, 0, 0, 0u32);
    let mut offset_secs: i64 = 0;
    let mut epoch: Option<i64> = None;
    let mut c = Cursor {
        s: s.as_bytes(),
        i: 0,
    };
    let pb = p.as_bytes();
    let mut k = 0;
    while k < pb.len() {
        if pb[k] != b'%' {
            if !c.eat(pb[k]) {
                return None;
            }
            k += 1;
            continue;
        }
        k += 1;
        match *pb.get(k)? {
            b'Y' => {
                let neg = c.eat(b'-');
                let v = c.digits(4, 4)?;
                y = if neg { -v } else { v };
            }
            b'm' => mo = u32::try_from(c.digits(1, 2)?).ok()?,
            b'd' => d = u32::try_from(c.digits(1, 2)?).ok()?,
            b'e' => {
                c.eat(b' ');
                d = u32::try_from(c.digits(1, 2)?).ok()?;
            }
            b'H' => h = c.digits(1, 2)?,
            b'M' => mi = c.digits(1, 2)?,
            b'S' => {
                sec = c.digits(1, 2)?;
                if c.eat(b'.') || c.eat(b',') {
                    nanos = c.fraction();
                }
            }
            b'f' => nanos = c.fraction(),
            b'T' => {
                h = c.digits(1, 2)?;
                c.eat(b':').then_some(())?;
                mi = c.digits(1, 2)?;
                c.eat(b':').then_some(())?;
                sec = c.digits(1, 2)?;
                if c.eat(b'.') {
                    nanos = c.fraction();
                }
            }
            b'F' => {
                y = c.digits(4, 4)?;
                c.eat(b'-').then_some(())?;
                mo = u32::try_from(c.digits(1, 2)?).ok()?;
                c.eat(b'-').then_some(())?;
                d = u32::try_from(c.digits(1, 2)?).ok()?;
            }
            b'b' => {
                let rest = c.s.get(c.i..c.i + 3)?;
                let name = std::str::from_utf8(rest).ok()?.to_ascii_lowercase();
                mo = MONTHS.iter().position(|m| *m == name)? as u32 + 1;
                c.i += 3;
            }
            b'z' | b'Z' => {
                if c.eat(b'Z') || c.eat(b'z') || (c.i == c.s.len() && pb[k] == b'Z') {
                    offset_secs = 0;
                } else {
                    let sign = if c.eat(b'+') {
                        1
                    } else if c.eat(b'-') {
                        -1
                    } else if c.i == c.s.len() {
                        // No offset at all: UTC (RFC 3339 requires one, logs often omit it).
                        k += 1;
                        continue;
                    } else {
                        return None;
                    };
                    let oh = c.digits(2, 2)?;
                    c.eat(b':');
                    let om = c.digits(2, 2)?;
                    offset_secs = sign * (oh * 3600 + om * 60);
                }
            }
            b's' => {
                let neg = c.eat(b'-');
                let v = c.digits(1, 19)?;
                epoch = Some(if neg { -v } else { v });
            }
            b'%' => c.eat(b'%').then_some(())?,
            _ => return None,
        }
        k += 1;
    }
    if c.i != c.s.len() {
        return None;
    }
    if let Some(e) = epoch {
        return from_secs_f64(e as f64 + f64::from(nanos) / 1e9);
    }
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset_secs;
    let base = if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs as u64))?
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))?
    };
    base.checked_add(Duration::from_nanos(u64::from(nanos)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(t: SystemTime) -> f64 {
        t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
    }

    #[test]
    fn rfc3339_forms() {
        let f = TimeFormat::Rfc3339;
        assert_eq!(secs(f.parse_str("1970-01-01T00:00:00Z").unwrap()), 0.0);
        assert_eq!(
            secs(f.parse_str("2000-10-10T13:55:36Z").unwrap()),
            971_186_136.0
        );
        assert_eq!(
            secs(f.parse_str("2000-10-10T13:55:36-07:00").unwrap()),
            971_186_136.0 + 7.0 * 3600.0
        );
        assert_eq!(
            secs(f.parse_str("2000-10-10 13:55:36.250Z").unwrap()),
            971_186_136.25
        );
        assert_eq!(
            secs(f.parse_str("2000-10-10T13:55:36").unwrap()),
            971_186_136.0
        );
        assert!(f.parse_str("2000-13-10T13:55:36Z").is_none());
        assert!(f.parse_str("yesterday").is_none());
        assert!(f.parse_str("2000-10-10T13:55:36Zjunk").is_none());
    }

    #[test]
    fn common_log_and_patterns() {
        let f = TimeFormat::from_flag("common_log").unwrap();
        assert_eq!(
            secs(f.parse_str("10/Oct/2000:13:55:36 -0700").unwrap()),
            971_186_136.0 + 7.0 * 3600.0
        );
        let f = TimeFormat::from_flag("%F %T").unwrap();
        assert_eq!(
            secs(f.parse_str("2000-10-10 13:55:36").unwrap()),
            971_186_136.0
        );
        assert_eq!(
            secs(
                TimeFormat::from_flag("%s")
                    .unwrap()
                    .parse_str("12")
                    .unwrap()
            ),
            12.0
        );
        assert!(TimeFormat::from_flag("%Q").is_err());
        assert!(TimeFormat::from_flag("fortnightly").is_err());
    }

    #[test]
    fn epochs_and_values() {
        assert_eq!(
            secs(TimeFormat::Auto.parse_value(&Value::Int(10)).unwrap()),
            10.0
        );
        assert_eq!(secs(TimeFormat::Auto.parse_str("1.5").unwrap()), 1.5);
        assert_eq!(
            secs(TimeFormat::UnixMs.parse_value(&Value::Int(1500)).unwrap()),
            1.5
        );
        assert_eq!(
            secs(TimeFormat::UnixNs.parse_value(&Value::Float(2e9)).unwrap()),
            2.0
        );
        assert!(TimeFormat::Unix.parse_value(&Value::Bool(true)).is_none());
        assert!(TimeFormat::Unix
            .parse_value(&Value::Float(f64::NAN))
            .is_none());
        assert!(TimeFormat::Unix.parse_value(&Value::Float(1e300)).is_none());
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
    }
}
