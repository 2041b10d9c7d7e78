//! Conversion of Unix epoch values into RFC 3339 strings, without a date crate.

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
///
/// Howard Hinnant's `civil_from_days` algorithm; valid for the whole `i64` day
/// range we can reach from an `i64` of seconds.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Formats `secs` seconds and `nanos` nanoseconds after the Unix epoch as an
/// RFC 3339 UTC timestamp, e.g. `2024-05-01T10:11:12.5Z`.
///
/// The fractional part is printed with trailing zeros removed (like Go's
/// `RFC3339Nano`) and omitted when it is zero. Returns `None` for years that
/// RFC 3339 cannot express (before 0000 or after 9999).
pub(crate) fn rfc3339_from_unix(secs: i64, nanos: u32) -> Option<String> {
    if nanos >= 1_000_000_000 {
        return None;
    }
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return None;
    }
    let (hh, mm, ss) = (sod / 3600, (sod % 3600) / 60, sod % 60);
    let mut out = format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}");
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    Some(out)
}

/// Converts an epoch number given as `f64` seconds into RFC 3339.
///
/// Returns `None` for NaN, infinities and out-of-range values.
pub(crate) fn rfc3339_from_f64(v: f64) -> Option<String> {
    if !v.is_finite() || v.abs() > 253_402_300_799.0 {
        return None;
    }
    let secs = v.floor();
    let mut nanos = ((v - secs) * 1e9).round() as i64;
    let mut secs = secs as i64;
    if nanos >= 1_000_000_000 {
        secs += 1;
        nanos -= 1_000_000_000;
    }
    // Float noise: keep microsecond precision at most for fractional inputs.
    let nanos = if nanos % 1000 != 0 && v.abs() > 1e6 {
        ((nanos + 500) / 1000 * 1000).min(999_999_000)
    } else {
        nanos
    };
    rfc3339_from_unix(secs, nanos as u32)
}

/// Interprets a header or JSON string value as an epoch number if it looks
/// like one; returns the RFC 3339 form, or `None` if it is not numeric.
pub(crate) fn epoch_str_to_rfc3339(s: &str) -> Option<String> {
    let t = s.trim();
    if t.is_empty()
        || !t
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return None;
    }
    if let Ok(i) = t.parse::<i64>() {
        return rfc3339_from_unix(i, 0);
    }
    t.parse::<f64>().ok().and_then(rfc3339_from_f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_zero() {
        assert_eq!(rfc3339_from_unix(0, 0).unwrap(), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn known_dates() {
        assert_eq!(
            rfc3339_from_unix(1_714_558_272, 123_000_000).unwrap(),
            "2024-05-01T10:11:12.123Z"
        );
        assert_eq!(
            rfc3339_from_unix(951_782_400, 0).unwrap(),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(rfc3339_from_unix(-1, 0).unwrap(), "1969-12-31T23:59:59Z");
        assert_eq!(
            rfc3339_from_unix(253_402_300_799, 999_999_999).unwrap(),
            "9999-12-31T23:59:59.999999999Z"
        );
        assert!(rfc3339_from_unix(253_402_300_800, 0).is_none());
        assert!(rfc3339_from_unix(i64::MIN, 0).is_none());
        assert!(rfc3339_from_unix(i64::MAX, 0).is_none());
    }

    #[test]
    fn floats_and_strings() {
        assert_eq!(rfc3339_from_f64(1.5).unwrap(), "1970-01-01T00:00:01.5Z");
        assert_eq!(
            rfc3339_from_f64(1_714_558_272.25).unwrap(),
            "2024-05-01T10:11:12.25Z"
        );
        assert!(rfc3339_from_f64(f64::NAN).is_none());
        assert!(rfc3339_from_f64(1e300).is_none());
        assert_eq!(
            epoch_str_to_rfc3339("1714558272").unwrap(),
            "2024-05-01T10:11:12Z"
        );
        assert!(epoch_str_to_rfc3339("2024-05-01T10:11:12Z").is_none());
        assert!(epoch_str_to_rfc3339("").is_none());
    }
}
