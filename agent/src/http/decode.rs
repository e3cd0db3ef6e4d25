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
pub(crate) use codec::Decoder;
pub(crate) use encode::Encoder;

/// Decoded bytes handed on per frame, at most (a bomb streams in steps of
/// this size and never sits in memory whole).
pub(crate) const DECODE_STEP: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Stacked (`gzip, br`) or unknown (`zstd`) codings are not decoded.
    #[error("Content-Encoding {0:?} is not decoded by airlock (gzip, deflate and br are)")]
    Unsupported(String),
    #[error("compressed body is corrupt: {0}")]
    Corrupt(String),
    #[error("re-encoding the masked body: {0}")]
    Encode(String),
}

/// A body whose data frames are decoded from a content coding (or passed
/// as they are, without a decoder: one body type either way, no boxing).
pub(super) struct Decoded<B> {
    inner: B,
    decoder: Option<Decoder>,
    ended: bool,
}

impl<B> std::fmt::Debug for Decoded<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoded")
            .field("decoder", &self.decoder)
            .finish_non_exhaustive()
    }
}

impl<B> Decoded<B> {
    pub(super) fn new(inner: B, decoder: Option<Decoder>) -> Self {
        Self {
            inner,
            decoder,
            ended: false,
        }
    }
}

impl<B> HttpBody for Decoded<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let Some(decoder) = this.decoder.as_mut() else {
            return Pin::new(&mut this.inner).poll_frame(cx).map_err(Into::into);
        };
        loop {
            if decoder.pending() {
                let out = decoder.step(DECODE_STEP)?;
                if !out.is_empty() {
                    return Poll::Ready(Some(Ok(Frame::data(out.into()))));
                }
                // Nothing decodable from what is queued: more input needed.
            }
            if this.ended {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => decoder.feed(&data),
                    Err(trailers) => return Poll::Ready(Some(Ok(trailers))),
                },
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
                Poll::Ready(None) => {
                    this.ended = true;
                    // Truncated input is an error, not silently short output.
                    let rest = decoder.finish()?;
                    if !rest.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(rest.into()))));
                    }
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.decoder {
            Some(d) => self.ended && !d.pending(),
            None => self.inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self.decoder {
            // The decoded length is not known until the end.
            Some(_) => SizeHint::default(),
            None => self.inner.size_hint(),
        }
    }
}

/// A body encoded into a content coding as it streams (or passed as it
/// is, without an encoder).
pub(super) struct Encoded<B> {
    inner: B,
    encoder: Option<Encoder>,
    ended: bool,
}

impl<B> std::fmt::Debug for Encoded<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoded")
            .field("encoder", &self.encoder)
            .finish_non_exhaustive()
    }
}

impl<B> Encoded<B> {
    pub(super) fn new(inner: B, encoder: Option<Encoder>) -> Self {
        Self {
            inner,
            encoder,
            ended: false,
        }
    }
}

impl<B> HttpBody for Encoded<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let Some(encoder) = this.encoder.as_mut() else {
            return Pin::new(&mut this.inner).poll_frame(cx).map_err(Into::into);
        };
        loop {
            if this.ended {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        let out = encoder.push(&data)?;
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(out.into()))));
                        }
                    }
                    Err(trailers) => return Poll::Ready(Some(Ok(trailers))),
                },
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
                Poll::Ready(None) => {
                    this.ended = true;
                    let rest = encoder.finish()?;
                    if !rest.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(rest.into()))));
                    }
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self.encoder {
            Some(_) => self.ended,
            None => self.inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self.encoder {
            Some(_) => SizeHint::default(),
            None => self.inner.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests;
