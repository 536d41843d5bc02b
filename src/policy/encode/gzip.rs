//! [`Gzip`]: request compression options, and the compressor.

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;

use crate::error::Error;

/// gzip request compression, set with [`Builder::gzip`](crate::Builder::gzip). Bodies of at
/// least `min_bytes` are compressed and sent with `Content-Encoding: gzip`; smaller ones are
/// sent plain (compressing them costs more than it saves).
///
/// ```
/// let guard = posthaste::builder("http://127.0.0.1:9/ingest")
///     .batch(posthaste::Batch::new())
///     .gzip(posthaste::Gzip::new().min_bytes(4096))
///     .start()?;
/// # drop(guard);
/// # Ok::<(), posthaste::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gzip {
    pub(super) min_bytes: usize,
    pub(super) level: u32,
}

impl Default for Gzip {
    fn default() -> Gzip {
        Gzip { min_bytes: 1024, level: 1 }
    }
}

impl Gzip {
    /// gzip at level 1 for bodies of 1 KiB and more.
    pub fn new() -> Gzip {
        Gzip::default()
    }

    /// Bodies smaller than this are sent uncompressed. Defaults to 1024.
    pub fn min_bytes(mut self, bytes: usize) -> Gzip {
        self.min_bytes = bytes;
        self
    }

    /// The compression level, 1 (fastest) to 9 (smallest). Level 1 already shrinks typical
    /// JSON events several times over at a fraction of the CPU of level 6. Defaults to 1.
    pub fn level(mut self, level: u32) -> Gzip {
        self.level = level;
        self
    }

    pub(super) fn validate(&self) -> Result<(), Error> {
        if !(1..=9).contains(&self.level) {
            return Err(Error::InvalidOption {
                option: "gzip.level",
                reason: format!("{} is not within 1..=9", self.level),
            });
        }
        Ok(())
    }
}

/// gzip-compresses `input` into `out` (cleared first).
pub(crate) fn gzip(input: &[u8], level: u32, out: &mut Vec<u8>) {
    out.clear();
    let mut encoder = GzEncoder::new(std::mem::take(out), Compression::new(level));
    // Writing into a `Vec` cannot fail.
    let _ = encoder.write_all(input);
    *out = encoder.finish().unwrap_or_default();
}
