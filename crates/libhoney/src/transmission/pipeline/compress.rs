//! Compression of batch bodies (zstd by default, gzip, or none), done once per
//! batch by the batcher, whichever driver runs it.
//!
//! zstd needs the `zstd` feature, gzip the `gzip` feature. `Config::resolve`
//! refuses a compression this build lacks, so a `Compressor` only ever gets
//! one it has; were it given another, it would send the body uncompressed
//! (and say so: no `Content-Encoding`), never mislabelled.

#[cfg(feature = "gzip")]
use std::io::Write;

use crate::config::Compression;

/// Compresses batch bodies, keeping one zstd context: `Http`'s batcher owns
/// one, the tokio transmission keeps a pool for its batch tasks.
pub(crate) struct Compressor {
    kind: Compression,
    #[cfg_attr(not(feature = "gzip"), allow(dead_code))]
    level: i32,
    #[cfg(feature = "zstd")]
    zstd: Option<zstd::bulk::Compressor<'static>>,
}

impl Compressor {
    pub(crate) fn new(kind: Compression, level: i32) -> Self {
        Compressor {
            kind,
            level,
            #[cfg(feature = "zstd")]
            zstd: match kind {
                Compression::Zstd => zstd::bulk::Compressor::new(level).ok(),
                _ => None,
            },
        }
    }

    /// The body to send and its `Content-Encoding`. If compression fails (it
    /// should not), the body goes uncompressed rather than not at all.
    pub(crate) fn compress(&mut self, body: Vec<u8>) -> (Vec<u8>, Option<&'static str>) {
        match self.compress_slice(&body) {
            Some((out, encoding)) => (out, Some(encoding)),
            None => (body, None),
        }
    }

    /// The compressed body and its `Content-Encoding`; `None` to send `body`
    /// as it is (no compression configured, or compression failed).
    pub(crate) fn compress_slice(&mut self, body: &[u8]) -> Option<(Vec<u8>, &'static str)> {
        match self.kind {
            #[cfg(feature = "zstd")]
            Compression::Zstd => {
                let out = self.zstd.as_mut()?.compress(body).ok()?;
                Some((out, "zstd"))
            }
            #[cfg(feature = "gzip")]
            Compression::Gzip => {
                let level = flate2::Compression::new(self.level.clamp(0, 9) as u32);
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4 + 64), level);
                enc.write_all(body).ok()?;
                Some((enc.finish().ok()?, "gzip"))
            }
            // Also a compression this build lacks (refused by
            // `Config::resolve`, so never reached): sent as it is.
            _ => {
                let _ = body;
                None
            }
        }
    }
}
