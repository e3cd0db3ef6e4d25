//! Streaming bodies of a known length, produced chunk by chunk so that large
//! transfers never sit whole in memory on either side of a test.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// Size of each frame a [`PatternBody`] yields.
pub const CHUNK: usize = 64 * 1024;

/// Byte `i` of every pattern stream: its offset modulo 256. `CHUNK` is a
/// multiple of 256, so every full chunk is the same bytes and can be shared.
pub fn pattern_byte(i: u64) -> u8 {
    (i % 256) as u8
}

/// `len` bytes of the repeating pattern, in [`CHUNK`]-sized frames, with an
/// exact size hint (hyper turns that into Content-Length).
#[derive(Debug)]
pub struct PatternBody {
    remaining: u64,
    chunk: Bytes,
}

impl PatternBody {
    pub fn new(len: u64) -> Self {
        let chunk: Vec<u8> = (0..CHUNK as u64).map(pattern_byte).collect();
        Self {
            remaining: len,
            chunk: Bytes::from(chunk),
        }
    }
}

impl Body for PatternBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = self.remaining.min(CHUNK as u64);
        self.remaining -= n;
        // A refcounted slice of the shared chunk: no copy per frame.
        Poll::Ready(Some(Ok(Frame::data(self.chunk.slice(..n as usize)))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}
