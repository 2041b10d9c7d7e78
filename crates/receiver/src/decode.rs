//! `Content-Encoding` handling: gzip and zstd, with an output size limit
//! enforced while decompressing (so a compression bomb costs at most
//! `limit + 1` bytes of memory).

use std::cell::RefCell;
use std::io::Read;

/// A request body's content coding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Identity,
    Gzip,
    Zstd,
    Unsupported,
}

impl Encoding {
    /// Parses a `Content-Encoding` header value (case-insensitive).
    pub(crate) fn from_header(v: Option<&str>) -> Encoding {
        match v.map(str::trim) {
            None | Some("") => Encoding::Identity,
            Some(v) if v.eq_ignore_ascii_case("identity") => Encoding::Identity,
            Some(v) if v.eq_ignore_ascii_case("gzip") || v.eq_ignore_ascii_case("x-gzip") => {
                Encoding::Gzip
            }
            Some(v) if v.eq_ignore_ascii_case("zstd") => Encoding::Zstd,
            Some(_) => Encoding::Unsupported,
        }
    }
}

/// Why a body could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// The decoded body would exceed the limit.
    TooLarge,
    /// Corrupt or truncated compressed data, or an unsupported coding.
    Malformed,
}

thread_local! {
    static ZSTD: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// Decodes a compressed `wire` body into `out` (which is cleared first).
/// `Identity` is the caller's business (no copy needed) and is rejected here.
pub(crate) fn decode_into(
    enc: Encoding,
    wire: &[u8],
    limit: usize,
    out: &mut Vec<u8>,
) -> Result<(), DecodeError> {
    out.clear();
    match enc {
        Encoding::Gzip => {
            let dec = flate2::read::MultiGzDecoder::new(wire);
            read_limited(dec, limit, out)
        }
        Encoding::Zstd => decode_zstd(wire, limit, out),
        Encoding::Identity | Encoding::Unsupported => Err(DecodeError::Malformed),
    }
}

fn read_limited<R: Read>(r: R, limit: usize, out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let cap = (limit as u64).saturating_add(1);
    match r.take(cap).read_to_end(out) {
        Ok(_) if out.len() > limit => Err(DecodeError::TooLarge),
        Ok(_) => Ok(()),
        Err(_) => Err(DecodeError::Malformed),
    }
}

fn decode_zstd(wire: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), DecodeError> {
    // Fast path: a single frame that declares its size (what libhoney-go and
    // zstd's one-shot APIs produce) is decoded in one call with a reused
    // context and no intermediate buffers.
    if let Ok(Some(n)) = zstd::zstd_safe::get_frame_content_size(wire) {
        if n > limit as u64 {
            return Err(DecodeError::TooLarge);
        }
        out.reserve(n as usize);
        let done = ZSTD.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.is_none() {
                *slot = zstd::bulk::Decompressor::new().ok();
            }
            match slot.as_mut() {
                Some(d) => d.decompress_to_buffer(wire, out).is_ok(),
                None => false,
            }
        });
        if done && out.len() <= limit {
            return Ok(());
        }
        out.clear();
    }
    // General path: several frames, unknown sizes, or corrupt data.
    let dec = zstd::stream::read::Decoder::with_buffer(wire).map_err(|_| DecodeError::Malformed)?;
    read_limited(dec, limit, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn roundtrips_and_limits() {
        let data = b"[{\"data\":{\"a\":1}}]".repeat(100);
        let mut out = Vec::new();
        let z = zstd::bulk::compress(&data, 3).unwrap();
        decode_into(Encoding::Zstd, &z, 10_000, &mut out).unwrap();
        assert_eq!(out, data);
        assert_eq!(
            decode_into(Encoding::Zstd, &z, 100, &mut out),
            Err(DecodeError::TooLarge)
        );
        // Streaming zstd (no content size in the header).
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
        enc.write_all(&data).unwrap();
        let zs = enc.finish().unwrap();
        decode_into(Encoding::Zstd, &zs, 10_000, &mut out).unwrap();
        assert_eq!(out, data);
        assert_eq!(
            decode_into(Encoding::Zstd, &zs, 100, &mut out),
            Err(DecodeError::TooLarge)
        );
        let g = gzip(&data);
        decode_into(Encoding::Gzip, &g, 10_000, &mut out).unwrap();
        assert_eq!(out, data);
        assert_eq!(
            decode_into(Encoding::Gzip, &g, 100, &mut out),
            Err(DecodeError::TooLarge)
        );
    }

    #[test]
    fn corrupt_inputs() {
        let data = b"hello world hello world hello world".repeat(50);
        let z = zstd::bulk::compress(&data, 3).unwrap();
        let g = gzip(&data);
        let mut out = Vec::new();
        for cut in [0, 1, 5, z.len() / 2, z.len() - 1] {
            assert!(decode_into(Encoding::Zstd, &z[..cut], 1 << 20, &mut out).is_err());
        }
        for cut in [1, 5, g.len() / 2, g.len() - 1] {
            assert!(decode_into(Encoding::Gzip, &g[..cut], 1 << 20, &mut out).is_err());
        }
        assert!(decode_into(Encoding::Zstd, b"not zstd at all", 1 << 20, &mut out).is_err());
        assert!(decode_into(Encoding::Gzip, b"not gzip at all", 1 << 20, &mut out).is_err());
    }

    #[test]
    fn header_parsing() {
        assert_eq!(Encoding::from_header(None), Encoding::Identity);
        assert_eq!(Encoding::from_header(Some(" ZSTD ")), Encoding::Zstd);
        assert_eq!(Encoding::from_header(Some("gzip")), Encoding::Gzip);
        assert_eq!(Encoding::from_header(Some("br")), Encoding::Unsupported);
    }
}
