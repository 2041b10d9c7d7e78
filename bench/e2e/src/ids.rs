//! The two per-event strings of the benchmark shape (bench/peers/SHAPE.md),
//! built without `format!`: each is written once into a `String` of its exact
//! length. Shared, by `#[path]`, by every Rust sender of the benchmark (this
//! SDK's and the libhoney-rust 0.1.6 peer's), so that the application's own
//! work is the same for all and small next to the SDK's.

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `"user-"` + decimal(`i % 10000`), no padding.
pub fn user_id(i: u64) -> String {
    let mut n = i % 10_000;
    let mut digits = [0u8; 4];
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let mut s = String::with_capacity(5 + len);
    s.push_str("user-");
    for &d in digits[..len].iter().rev() {
        s.push(char::from(d));
    }
    s
}

/// 32 lowercase hex digits: `{:016x}{:016x}` of `i * 0x9E3779B97F4A7C15` (wrapping) and `i`.
pub fn trace_id(i: u64) -> String {
    let mut s = String::with_capacity(32);
    for word in [i.wrapping_mul(0x9E37_79B9_7F4A_7C15), i] {
        for shift in (0..16).rev() {
            s.push(char::from(HEX[((word >> (shift * 4)) & 15) as usize]));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    // Paths, not `use super::*`: this file is also compiled into a bench
    // target, where `#[test]` functions are left out and the import would be unused.
    #[test]
    fn same_strings_as_format() {
        for i in [0, 1, 9, 10, 99, 9_999, 10_000, 123_456_789, u64::MAX] {
            assert_eq!(super::user_id(i), format!("user-{}", i % 10_000));
            let want = format!("{:016x}{:016x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15), i);
            assert_eq!(super::trace_id(i), want);
        }
    }
}
