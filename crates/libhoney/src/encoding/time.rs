//! RFC 3339 timestamps in UTC, without a date-time dependency.

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds and nanoseconds since the Unix epoch (negative seconds before it).
pub(crate) fn unix_parts(t: SystemTime) -> (i64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(e) => {
            let d = e.duration();
            let (s, n) = (d.as_secs() as i64, d.subsec_nanos());
            if n == 0 {
                (-s, 0)
            } else {
                (-s - 1, 1_000_000_000 - n)
            }
        }
    }
}

/// Whether `t` can be written as an RFC 3339 timestamp (years 0000 to 9999).
/// `send` refuses an event whose time cannot
/// ([`SendError::TimestampOutOfRange`](crate::SendError::TimestampOutOfRange)).
/// Two comparisons with bounds computed once: about 30 instructions per
/// event, where converting `t` to seconds first cost 80 (callgrind,
/// `libhoney-bench floor --events 100000` against 200000: 8,751 per event
/// without the check, 8,831 with the conversion, 8,780 with this).
#[inline]
pub(crate) fn in_rfc3339_range(t: SystemTime) -> bool {
    type Bounds = (Option<SystemTime>, Option<SystemTime>);
    static BOUNDS: OnceLock<Bounds> = OnceLock::new();
    let (first, last) = BOUNDS.get_or_init(|| {
        // 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999999999Z; a bound
        // this platform's `SystemTime` cannot hold limits nothing.
        (
            UNIX_EPOCH.checked_sub(std::time::Duration::from_secs(62_167_219_200)),
            UNIX_EPOCH.checked_add(std::time::Duration::new(253_402_300_799, 999_999_999)),
        )
    });
    first.is_none_or(|f| f <= t) && last.is_none_or(|l| t <= l)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn push2(out: &mut Vec<u8>, v: u32) {
    out.push(b'0' + (v / 10) as u8);
    out.push(b'0' + (v % 10) as u8);
}

/// Writes `YYYY-MM-DDTHH:MM:SS` for years 0 to 9999; `None` for others.
fn date_time_prefix(secs: i64) -> Option<[u8; 19]> {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return None;
    }
    let mut v = Vec::with_capacity(19);
    let y = y as u32;
    push2(&mut v, y / 100);
    push2(&mut v, y % 100);
    v.push(b'-');
    push2(&mut v, m);
    v.push(b'-');
    push2(&mut v, d);
    v.push(b'T');
    push2(&mut v, sod / 3600);
    v.push(b':');
    push2(&mut v, sod / 60 % 60);
    v.push(b':');
    push2(&mut v, sod % 60);
    v.try_into().ok()
}

thread_local! {
    /// The date-time text of the last second formatted on this thread: events
    /// arrive in time order, so most share it and skip the calendar arithmetic.
    static LAST_SECOND: Cell<(i64, [u8; 19])> = const { Cell::new((i64::MIN, [0; 19])) };
}

/// Writes `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` into the first 30 bytes of `buf`
/// (in place: a text built on the stack and then copied stalls the copy's
/// loads on the stores just made); false, and `buf` unspecified, for years
/// outside 0 to 9999.
#[inline]
pub(crate) fn put_rfc3339(t: SystemTime, buf: &mut [u8]) -> bool {
    let (secs, nanos) = unix_parts(t);
    let prefix = LAST_SECOND.with(|c| {
        let (s, text) = c.get();
        if s == secs {
            return Some(text);
        }
        let text = date_time_prefix(secs)?;
        c.set((secs, text));
        Some(text)
    });
    let Some(prefix) = prefix else {
        return false;
    };
    buf[..19].copy_from_slice(&prefix);
    buf[19] = b'.';
    buf[20] = b'0' + (nanos / 100_000_000) as u8;
    buf[21..29].copy_from_slice(&eight_digits(nanos % 100_000_000));
    buf[29] = b'Z';
    true
}

/// The eight decimal digits of `v < 10^8`, computed in parallel in one word:
/// split into two halves of four digits, each of those into two of two, and
/// each of those into tens and ones (dividing by multiplying and shifting,
/// exact for these ranges).
#[inline]
fn eight_digits(v: u32) -> [u8; 8] {
    debug_assert!(v < 100_000_000);
    let (hi, lo) = (u64::from(v / 10_000), u64::from(v % 10_000));
    // Four-digit groups in 32-bit lanes, the leading one lowest (first in memory).
    let x = hi | lo << 32;
    // Per 32-bit lane: n / 100 == (n * 5243) >> 19 for n < 10^4.
    let hundreds = ((x * 5243) >> 19) & 0x0000_007F_0000_007F;
    let x = hundreds | (x - hundreds * 100) << 16;
    // Per 16-bit lane: n / 10 == (n * 103) >> 10 for n < 100.
    let tens = ((x * 103) >> 10) & 0x000F_000F_000F_000F;
    let x = tens | (x - tens * 10) << 8;
    (x | 0x3030_3030_3030_3030).to_le_bytes()
}

/// Appends `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
pub(crate) fn write_rfc3339(out: &mut Vec<u8>, t: SystemTime) {
    let len = out.len();
    out.extend_from_slice(&[b'0'; 30]);
    if put_rfc3339(t, &mut out[len..]) {
        return;
    }
    out.truncate(len);
    let (secs, nanos) = unix_parts(t);
    write_date_time_slow(out, secs);
    out.push(b'.');
    let mut n = nanos;
    let mut digits = [b'0'; 9];
    for slot in digits.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&digits);
    out.push(b'Z');
}

/// The date-time part for any year (negative or past 9999), uncached. Events
/// never take this path (`send` refuses their times: `in_rfc3339_range`);
/// it keeps the encoder total.
fn write_date_time_slow(out: &mut Vec<u8>, secs: i64) {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    let (y, m, d) = civil_from_days(days);
    super::json::write_i64(out, y);
    out.push(b'-');
    push2(out, m);
    out.push(b'-');
    push2(out, d);
    out.push(b'T');
    push2(out, sod / 3600);
    out.push(b':');
    push2(out, sod / 60 % 60);
    out.push(b':');
    push2(out, sod % 60);
}

/// The RFC 3339 form as a `String`.
#[cfg(test)]
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let mut v = Vec::with_capacity(30);
    write_rfc3339(&mut v, t);
    String::from_utf8(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn known_instants() {
        let at = |s: u64, n: u32| UNIX_EPOCH + Duration::new(s, n);
        assert_eq!(rfc3339(at(0, 0)), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339(at(1_357_038_671, 0)),
            "2013-01-01T11:11:11.000000000Z"
        );
        assert_eq!(
            rfc3339(at(951_782_400, 5)),
            "2000-02-29T00:00:00.000000005Z"
        );
        assert_eq!(
            rfc3339(at(4_102_444_799, 999_999_999)),
            "2099-12-31T23:59:59.999999999Z"
        );
        // The same second twice (cached), then a different one.
        assert_eq!(rfc3339(at(0, 7)), "1970-01-01T00:00:00.000000007Z");
        assert_eq!(rfc3339(at(0, 8)), "1970-01-01T00:00:00.000000008Z");
        assert_eq!(
            rfc3339(at(253_402_300_800, 0)),
            "10000-01-01T00:00:00.000000000Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH - Duration::new(1, 500_000_000)),
            "1969-12-31T23:59:58.500000000Z"
        );
    }

    #[test]
    fn sub_second_digits_and_the_cached_second() {
        let at = |s: u64, n: u32| UNIX_EPOCH + Duration::new(s, n);
        let s = 1_700_000_000; // 2023-11-14T22:13:20Z
        for n in (0..1_000_000_000)
            .step_by(999_983)
            .chain([1, 9, 10, 99_999_999, 999_999_999])
        {
            let want = format!("2023-11-14T22:13:20.{n:09}Z");
            assert_eq!(rfc3339(at(s, n)), want);
            // The same second again (cached), then the next and back.
            assert_eq!(rfc3339(at(s, n)), want);
            assert_eq!(
                rfc3339(at(s + 1, n)),
                format!("2023-11-14T22:13:21.{n:09}Z")
            );
        }
        for v in (0..100_000_000).step_by(9_973).chain([99_999_999]) {
            assert_eq!(eight_digits(v), *format!("{v:08}").as_bytes());
        }
        // Before 1970, and the cache must not confuse other threads' seconds.
        assert_eq!(
            rfc3339(UNIX_EPOCH - Duration::new(86_400, 0)),
            "1969-12-31T00:00:00.000000000Z"
        );
        std::thread::spawn(move || {
            assert_eq!(rfc3339(at(0, 1)), "1970-01-01T00:00:00.000000001Z");
        })
        .join()
        .unwrap();
        assert_eq!(rfc3339(at(s, 5)), "2023-11-14T22:13:20.000000005Z");
    }

    #[test]
    fn years_outside_0_to_9999_take_the_slow_path() {
        // 10000-01-01T00:00:00Z, and the day before 0000-01-01.
        let y10k = UNIX_EPOCH + Duration::new(253_402_300_800, 5);
        assert_eq!(rfc3339(y10k), "10000-01-01T00:00:00.000000005Z");
        let before_year_0 = UNIX_EPOCH - Duration::new(62_167_219_200 + 86_400, 0);
        assert_eq!(rfc3339(before_year_0), "-1-12-31T00:00:00.000000000Z");
    }

    #[test]
    fn agrees_with_a_day_by_day_walk() {
        // Walk every day from 1900 to 2200 and check the calendar arithmetic.
        let mut y = 1900i64;
        let (mut m, mut d) = (1u32, 1u32);
        let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let start = -25_567i64; // 1900-01-01
        for days in start..start + 300 * 366 {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            let len = match m {
                1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
                4 | 6 | 9 | 11 => 30,
                _ => {
                    if leap(y) {
                        29
                    } else {
                        28
                    }
                }
            };
            d += 1;
            if d > len {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }
}
