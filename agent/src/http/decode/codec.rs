//! Content-Encoding: gzip, deflate (zlib-wrapped, or raw as some servers
//! send it) and br, decoded incrementally so compressed bodies can be
//! masked. Decoding is pull-driven and bounded: each [`Decoder::step`]
//! produces at most about `budget` bytes however much the queued input
//! expands, so a decompression bomb costs time, never memory.

use std::io::Write;

use brotli_decompressor::{BrotliDecompressStream, BrotliResult, BrotliState, StandardAlloc};
use flate2::write::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};

use super::DecodeError;

/// Brotli output is produced into a buffer of this size per call.
const BROTLI_OUT: usize = 32 * 1024;

type Brotli = BrotliState<StandardAlloc, StandardAlloc, StandardAlloc>;

enum Kind {
    Gzip(MultiGzDecoder<Vec<u8>>),
    Zlib(ZlibDecoder<Vec<u8>>),
    Raw(DeflateDecoder<Vec<u8>>),
    /// `deflate` before its first two bytes tell zlib from raw.
    Deflate,
    Brotli {
        state: Box<Brotli>,
        /// The decoder holds output it could not hand out yet.
        more_output: bool,
        done: bool,
    },
}

/// An incremental decoder with its queued, not yet decoded input.
pub(crate) struct Decoder {
    kind: Kind,
    queued: Vec<u8>,
    pos: usize,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            Kind::Gzip(_) => "gzip",
            Kind::Zlib(_) => "zlib",
            Kind::Raw(_) => "raw-deflate",
            Kind::Deflate => "deflate",
            Kind::Brotli { .. } => "br",
        };
        f.debug_struct("Decoder")
            .field("kind", &kind)
            .field("queued", &(self.queued.len() - self.pos))
            .finish()
    }
}

impl Decoder {
    /// A decoder for a `Content-Encoding` value; `Ok(None)` for `identity`
    /// or none. Stacked or unknown encodings cannot be scanned: an error,
    /// so the caller can refuse rather than pass them unscanned.
    pub(crate) fn new(encoding: Option<&str>) -> Result<Option<Self>, DecodeError> {
        let Some(enc) = encoding.map(str::trim).filter(|e| !e.is_empty()) else {
            return Ok(None);
        };
        let kind = match enc.to_ascii_lowercase().as_str() {
            "identity" => return Ok(None),
            "gzip" | "x-gzip" => Kind::Gzip(MultiGzDecoder::new(Vec::new())),
            "deflate" => Kind::Deflate,
            "br" => Kind::Brotli {
                // Strict: the RFC 7932 window (≤ 16 MiB), not the 1 GiB
                // "large window" extension.
                state: Box::new(BrotliState::new_strict(
                    StandardAlloc::default(),
                    StandardAlloc::default(),
                    StandardAlloc::default(),
                )),
                more_output: false,
                done: false,
            },
            _ => return Err(DecodeError::Unsupported(enc.to_owned())),
        };
        Ok(Some(Self {
            kind,
            queued: Vec::new(),
            pos: 0,
        }))
    }

    /// Queues compressed input.
    pub(crate) fn feed(&mut self, chunk: &[u8]) {
        self.queued.drain(..self.pos);
        self.pos = 0;
        self.queued.extend_from_slice(chunk);
    }

    /// Whether queued input or held output remains for [`Self::step`].
    pub(crate) fn pending(&self) -> bool {
        match self.kind {
            Kind::Brotli {
                more_output, done, ..
            } => !done && (more_output || self.pos < self.queued.len()),
            // Two bytes tell zlib from raw deflate.
            Kind::Deflate => self.queued.len() - self.pos >= 2,
            _ => self.pos < self.queued.len(),
        }
    }

    /// Decodes queued input into at most about `budget` bytes (plus one
    /// internal buffer, 32 KiB).
    pub(crate) fn step(&mut self, budget: usize) -> Result<Vec<u8>, DecodeError> {
        let mut out = Vec::new();
        if matches!(self.kind, Kind::Deflate) {
            let input = &self.queued[self.pos..];
            if input.len() < 2 {
                return Ok(out);
            }
            let zlib = input[0] & 0x0f == 8
                && input[0] >> 4 <= 7
                && (u16::from(input[0]) << 8 | u16::from(input[1])) % 31 == 0;
            self.kind = if zlib {
                Kind::Zlib(ZlibDecoder::new(Vec::new()))
            } else {
                Kind::Raw(DeflateDecoder::new(Vec::new()))
            };
        }
        match &mut self.kind {
            Kind::Gzip(d) => flate_step(d, &self.queued, &mut self.pos, budget, &mut out)?,
            Kind::Zlib(d) => flate_step(d, &self.queued, &mut self.pos, budget, &mut out)?,
            Kind::Raw(d) => flate_step(d, &self.queued, &mut self.pos, budget, &mut out)?,
            Kind::Deflate => {}
            Kind::Brotli {
                state,
                more_output,
                done,
            } => {
                let mut buf = vec![0u8; BROTLI_OUT];
                while !*done && out.len() < budget && (*more_output || self.pos < self.queued.len())
                {
                    let mut avail_in = self.queued.len() - self.pos;
                    let mut in_off = self.pos;
                    let mut avail_out = buf.len();
                    let mut out_off = 0;
                    let mut total = 0;
                    let r = BrotliDecompressStream(
                        &mut avail_in,
                        &mut in_off,
                        &self.queued,
                        &mut avail_out,
                        &mut out_off,
                        &mut buf,
                        &mut total,
                        state,
                    );
                    self.pos = in_off;
                    out.extend_from_slice(&buf[..out_off]);
                    *more_output = false;
                    match r {
                        BrotliResult::NeedsMoreInput => break,
                        BrotliResult::NeedsMoreOutput => *more_output = true,
                        BrotliResult::ResultSuccess => {
                            *done = true;
                            // Bytes after the end of the stream are ignored.
                            self.pos = self.queued.len();
                        }
                        BrotliResult::ResultFailure => {
                            return Err(DecodeError::Corrupt("invalid brotli stream".into()));
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// The end of the input: the rest of the output, or an error if the
    /// stream is truncated. Call only when not [`Self::pending`].
    pub(crate) fn finish(&mut self) -> Result<Vec<u8>, DecodeError> {
        let truncated = || DecodeError::Corrupt("truncated compressed body".into());
        match &mut self.kind {
            Kind::Gzip(d) => flate_finish(d),
            Kind::Zlib(d) => flate_finish(d),
            Kind::Raw(d) => flate_finish(d),
            // One byte or none of a deflate body: nothing decodable.
            Kind::Deflate if self.queued.len() == self.pos => Ok(Vec::new()),
            Kind::Deflate => Err(truncated()),
            Kind::Brotli { done: true, .. } => Ok(Vec::new()),
            Kind::Brotli { .. } => Err(truncated()),
        }
    }
}

/// Feeds flate2 writer-decoders: each `write` decodes into a 32 KiB buffer
/// and hands the previous one to our `Vec`, so output grows by bounded steps.
fn flate_step<D: Flate>(
    d: &mut D,
    queued: &[u8],
    pos: &mut usize,
    budget: usize,
    out: &mut Vec<u8>,
) -> Result<(), DecodeError> {
    while *pos < queued.len() && out.len() < budget {
        let n = d
            .write(&queued[*pos..])
            .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
        out.append(d.inner());
        if n == 0 {
            // The stream has ended; trailing bytes are ignored.
            *pos = queued.len();
        }
        *pos += n;
    }
    if *pos >= queued.len() {
        // Drain what the decoder holds so streamed bodies (WATCH) are not
        // delayed until the next chunk; with its input consumed, inflate
        // holds at most one buffer.
        d.flush().map_err(|e| DecodeError::Corrupt(e.to_string()))?;
        out.append(d.inner());
    }
    Ok(())
}

fn flate_finish<D: Flate>(d: &mut D) -> Result<Vec<u8>, DecodeError> {
    d.end().map_err(|e| DecodeError::Corrupt(e.to_string()))?;
    Ok(std::mem::take(d.inner()))
}

/// What the three flate2 writer-decoders share but no flate2 trait names.
trait Flate: Write {
    /// The output written so far.
    fn inner(&mut self) -> &mut Vec<u8>;
    /// Checks the stream is complete and flushes its last output.
    fn end(&mut self) -> std::io::Result<()>;
}

macro_rules! flate {
    ($($t:ty),*) => {$(
        impl Flate for $t {
            fn inner(&mut self) -> &mut Vec<u8> {
                self.get_mut()
            }
            fn end(&mut self) -> std::io::Result<()> {
                self.try_finish()
            }
        }
    )*};
}
flate!(
    MultiGzDecoder<Vec<u8>>,
    ZlibDecoder<Vec<u8>>,
    DeflateDecoder<Vec<u8>>
);
