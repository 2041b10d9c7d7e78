//! The per-event values of the benchmark shape (bench/peers/SHAPE.md), one
//! formula for every Rust user of it: this SDK's sender and benches, the
//! libhoney-rust 0.1.6 peer, and the receiver's scan benchmark (each includes
//! this file by `#[path]`; it needs nothing but `std`).
//!
//! The two strings are built without `format!`: each is written once into a
//! `String` of its exact length, so that the application's own work is the
//! same for every sender and small next to the SDK's.

/// `message`: exactly 60 characters.
pub const MESSAGE: &str = "request handled by the checkout service without any trouble.";

/// `method`: one of four, by `i % 4`.
pub const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];

/// `status_code`: 500 for every 100th event, 404 for every other 10th, else 200.
pub fn status_code(i: u64) -> u16 {
    if i % 100 == 0 {
        500
    } else if i % 10 == 0 {
        404
    } else {
        200
    }
}

/// `duration_ms`: always a float, one multiply then one add.
pub fn duration_ms(i: u64) -> f64 {
    (i % 1000) as f64 * 0.731 + 0.5
}

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
    fn same_values_as_the_formula() {
        assert_eq!(super::MESSAGE.len(), 60);
        assert_eq!(super::status_code(300), 500);
        assert_eq!(super::status_code(310), 404);
        assert_eq!(super::status_code(311), 200);
        assert_eq!(super::duration_ms(0), 0.5);
        assert_eq!(super::duration_ms(1001), super::duration_ms(1));

        for i in [0, 1, 9, 10, 99, 9_999, 10_000, 123_456_789, u64::MAX] {
            assert_eq!(super::user_id(i), format!("user-{}", i % 10_000));
            let want = format!("{:016x}{:016x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15), i);
            assert_eq!(super::trace_id(i), want);
        }
    }
}
