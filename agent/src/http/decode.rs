//! Compressed response bodies, decoded as they stream so they can be
//! masked, then encoded again. airlock asks upstreams for identity
//! encoding; this is for the ones that compress anyway (a blob stored with
//! `Content-Encoding: gzip` is served that way whatever the client asks).
//! gzip and deflate bodies reach the client masked in the same coding; a br
//! body reaches it decoded, without `Content-Encoding` (airlock carries no
//! brotli encoder; the client offered identity on the wire, since airlock
//! replaced its `Accept-Encoding`).

mod codec;
mod encode;

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};

use super::BoxError;
use super::body::{Step, next_step};
pub(crate) use codec::Decoder;
pub(crate) use encode::Encoder;

/// Decoded bytes handed on per frame, at most (a bomb streams in steps of
/// this size and never sits in memory whole).
pub(crate) const DECODE_STEP: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub(crate) enum DecodeError {
    /// Stacked (`gzip, br`) or unknown (`zstd`) codings are not decoded.
    #[error("Content-Encoding {0:?} is not decoded by airlock (gzip, deflate and br are)")]
    Unsupported(String),
    #[error("compressed body is corrupt: {0}")]
    Corrupt(String),
    #[error("re-encoding the masked body: {0}")]
    Encode(String),
}

/// One direction of a content coding, fed a frame at a time.
pub(crate) trait Coding {
    /// Takes the bytes of one frame.
    fn input(&mut self, data: &[u8]) -> Result<(), DecodeError>;
    /// Output ready to hand on, at most about [`DECODE_STEP`]; `None` when
    /// more input is needed.
    fn output(&mut self) -> Result<Option<Vec<u8>>, DecodeError>;
    /// The input has ended: whatever output remains (an error if the input
    /// was cut short).
    fn end(&mut self) -> Result<Vec<u8>, DecodeError>;
}

impl Coding for Decoder {
    fn input(&mut self, data: &[u8]) -> Result<(), DecodeError> {
        self.feed(data);
        Ok(())
    }

    fn output(&mut self) -> Result<Option<Vec<u8>>, DecodeError> {
        if !self.pending() {
            return Ok(None);
        }
        // Empty: nothing decodable from what is queued yet.
        let out = self.step(DECODE_STEP)?;
        Ok((!out.is_empty()).then_some(out))
    }

    fn end(&mut self) -> Result<Vec<u8>, DecodeError> {
        self.finish()
    }
}

impl Coding for Encoder {
    fn input(&mut self, data: &[u8]) -> Result<(), DecodeError> {
        self.push(data)
    }

    fn output(&mut self) -> Result<Option<Vec<u8>>, DecodeError> {
        Ok(self.take())
    }

    fn end(&mut self) -> Result<Vec<u8>, DecodeError> {
        self.finish()
    }
}

/// A body whose data frames go through a [`Coding`] (or pass as they are,
/// without one: one body type either way, no boxing).
pub(super) struct Recoded<B, C> {
    inner: B,
    coding: Option<C>,
    ended: bool,
}

/// A response body decoded from its content coding.
pub(super) type Decoded<B> = Recoded<B, Decoder>;
/// A (masked) body encoded back into its content coding.
pub(super) type Encoded<B> = Recoded<B, Encoder>;

impl<B, C: std::fmt::Debug> std::fmt::Debug for Recoded<B, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recoded")
            .field("coding", &self.coding)
            .finish_non_exhaustive()
    }
}

impl<B, C> Recoded<B, C> {
    pub(super) fn new(inner: B, coding: Option<C>) -> Self {
        Self {
            inner,
            coding,
            ended: false,
        }
    }
}

impl<B, C> HttpBody for Recoded<B, C>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
    C: Coding + Unpin,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let Some(coding) = this.coding.as_mut() else {
            return Pin::new(&mut this.inner).poll_frame(cx).map_err(Into::into);
        };
        loop {
            // Hand on what is ready before reading more.
            if let Some(out) = coding.output()? {
                return Poll::Ready(Some(Ok(Frame::data(out.into()))));
            }
            if this.ended {
                return Poll::Ready(None);
            }
            match std::task::ready!(next_step(&mut this.inner, cx)) {
                Step::Data(data) => coding.input(&data)?,
                Step::Other(trailers) => return Poll::Ready(Some(Ok(trailers))),
                Step::Failed(e) => return Poll::Ready(Some(Err(e))),
                Step::End => {
                    this.ended = true;
                    let rest = coding.end()?;
                    if !rest.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(rest.into()))));
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self.coding {
            // `end` hands out everything that remains.
            Some(_) => self.ended,
            None => self.inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self.coding {
            // The coded length is not known until the end.
            Some(_) => SizeHint::default(),
            None => self.inner.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests;
