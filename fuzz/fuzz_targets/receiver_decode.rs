//! Body decoding (gzip, zstd): arbitrary bytes as a compressed body never
//! panic and never decode past the limit; and arbitrary bytes compressed
//! by flate2 or zstd decode back to themselves.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use libhoney_receiver::__fuzz::decode_body;

const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let coding = ["gzip", "zstd", "x-gzip", "identity", "br"][usize::from(sel) % 5];
    if let Ok(out) = decode_body(Some(coding), rest, LIMIT) {
        assert!(out.len() <= LIMIT);
    }
    // A small limit must hold too (bombs are refused, not truncated).
    if let Ok(out) = decode_body(Some(coding), rest, 64) {
        assert!(out.len() <= 64);
    }
    // Round trips.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(rest).unwrap();
    let gz = gz.finish().unwrap();
    assert_eq!(decode_body(Some("gzip"), &gz, LIMIT).as_deref(), Ok(rest));
    let zs = zstd::bulk::compress(rest, 1).unwrap();
    assert_eq!(decode_body(Some("zstd"), &zs, LIMIT).as_deref(), Ok(rest));
    let mut streamed = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    streamed.write_all(rest).unwrap();
    let streamed = streamed.finish().unwrap();
    assert_eq!(decode_body(Some("zstd"), &streamed, LIMIT).as_deref(), Ok(rest));
});
