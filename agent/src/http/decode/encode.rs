//! Re-encoding a masked body in the coding it arrived in (gzip, deflate),
//! so what the client stores or checks is still the coded representation
//! the upstream sent — a blob stored with `Content-Encoding: gzip` is
//! still saved compressed. Each frame is sync-flushed: a streamed response
//! (a Kubernetes WATCH) is not held back waiting for a full block.

use std::io::Write;

use flate2::Compression;
use flate2::write::{GzEncoder, ZlibEncoder};

use super::DecodeError;

/// A streaming gzip or zlib (`deflate`) encoder; each encoder writes its
/// output into its own `Vec`, taken out as it is handed on.
pub(crate) enum Encoder {
    Gzip(GzEncoder<Vec<u8>>),
    Zlib(ZlibEncoder<Vec<u8>>),
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Gzip(_) => "Encoder(gzip)",
            Self::Zlib(_) => "Encoder(deflate)",
        })
    }
}

impl Encoder {
    /// An encoder for a `Content-Encoding` airlock can produce; `None`
    /// for others (br: relayed decoded, without the header).
    pub(crate) fn new(encoding: &str) -> Option<Self> {
        // Fast: the body was compressed once already; this only restores
        // its coding.
        let level = Compression::fast();
        match encoding.trim().to_ascii_lowercase().as_str() {
            "gzip" | "x-gzip" => Some(Self::Gzip(GzEncoder::new(Vec::new(), level))),
            "deflate" => Some(Self::Zlib(ZlibEncoder::new(Vec::new(), level))),
            _ => None,
        }
    }

    /// Encodes `data` and flushes it into the output ([`Self::take`]).
    pub(crate) fn push(&mut self, data: &[u8]) -> Result<(), DecodeError> {
        let result = match self {
            Self::Gzip(e) => e.write_all(data).and_then(|()| e.flush()),
            Self::Zlib(e) => e.write_all(data).and_then(|()| e.flush()),
        };
        result.map_err(|e| DecodeError::Encode(e.to_string()))
    }

    /// The output so far, if any.
    pub(crate) fn take(&mut self) -> Option<Vec<u8>> {
        let out = std::mem::take(self.output());
        (!out.is_empty()).then_some(out)
    }

    /// Ends the stream (trailer, checksum): the last output.
    pub(crate) fn finish(&mut self) -> Result<Vec<u8>, DecodeError> {
        let result = match self {
            Self::Gzip(e) => e.try_finish(),
            Self::Zlib(e) => e.try_finish(),
        };
        result.map_err(|e| DecodeError::Encode(e.to_string()))?;
        Ok(std::mem::take(self.output()))
    }

    fn output(&mut self) -> &mut Vec<u8> {
        match self {
            Self::Gzip(e) => e.get_mut(),
            Self::Zlib(e) => e.get_mut(),
        }
    }
}
