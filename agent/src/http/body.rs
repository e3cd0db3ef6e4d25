//! Bodies relayed frame by frame (never buffered whole), counted on the way;
//! a response body ending — or being dropped — ends its exchange.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};

use super::BoxError;
use super::exchange::Exchange;

/// The next thing a wrapped body yields, as every wrapper here sorts it.
pub(super) enum Step {
    Data(Bytes),
    /// Trailers (or any frame that is not data): passed on as they are.
    Other(Frame<Bytes>),
    Failed(BoxError),
    End,
}

/// Polls `inner` for its next frame; the skeleton of every body wrapper's
/// `poll_frame` (counting, masking, decoding and encoding).
pub(super) fn next_step<B>(inner: &mut B, cx: &mut Context<'_>) -> Poll<Step>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    Poll::Ready(match std::task::ready!(Pin::new(inner).poll_frame(cx)) {
        Some(Ok(frame)) => match frame.into_data() {
            Ok(data) => Step::Data(data),
            Err(frame) => Step::Other(frame),
        },
        Some(Err(e)) => Step::Failed(e.into()),
        None => Step::End,
    })
}

/// Which counter a body feeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Side {
    Request,
    /// The response: its end (or drop) finishes the exchange.
    Response,
}

#[derive(Debug)]
pub(super) struct Counted<B: HttpBody> {
    inner: B,
    exchange: Arc<Exchange>,
    side: Side,
    /// SHA-256 of the bytes as they pass, finished at the body's end.
    digest: Option<DigestCtx>,
    /// This body's end has been reported to the exchange.
    closed: bool,
    /// The first bytes, kept for the exchange to read at the end (a token
    /// response); `None` for ordinary bodies, which are never held.
    kept: Option<Vec<u8>>,
    keep_limit: usize,
}

/// ring's context, given a Debug so the body can derive one.
struct DigestCtx(ring::digest::Context);

impl std::fmt::Debug for DigestCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("sha256")
    }
}

impl<B: HttpBody> Counted<B> {
    pub(super) fn new(inner: B, exchange: Arc<Exchange>, side: Side) -> Self {
        exchange.body_opened(side == Side::Response);
        Self {
            inner,
            exchange,
            side,
            digest: Some(DigestCtx(ring::digest::Context::new(&ring::digest::SHA256))),
            closed: false,
            kept: None,
            keep_limit: 0,
        }
    }

    /// Also keeps up to `limit` bytes and hands them to the exchange when
    /// the body has passed whole (relaying is not delayed).
    pub(super) fn keeping(mut self, limit: usize) -> Self {
        self.kept = Some(Vec::new());
        self.keep_limit = limit;
        self
    }

    /// Tells the exchange this body is over (once): it is recorded when
    /// both bodies are, so a request body still streaming after an early
    /// response is counted in full.
    fn close(&mut self) {
        if !std::mem::replace(&mut self.closed, true) {
            self.exchange.body_closed(self.side == Side::Response);
        }
    }

    /// Hands the digest to the exchange once the whole body has passed.
    /// hyper stops polling a body that says it is at its end, so this runs
    /// both on `None` and on drop at the end.
    fn seal_digest(&mut self) {
        if let Some(d) = self.digest.take() {
            let hex = crate::core::hex(d.0.finish().as_ref());
            self.exchange.set_sha256(self.side == Side::Response, hex);
            if let Some(kept) = self.kept.take() {
                self.exchange.body_kept(&kept);
            }
        }
    }

    fn counter(&self) -> &AtomicU64 {
        match self.side {
            Side::Request => &self.exchange.request_bytes,
            Side::Response => &self.exchange.response_bytes,
        }
    }
}

impl<B> HttpBody for Counted<B>
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
        Poll::Ready(match std::task::ready!(next_step(&mut self.inner, cx)) {
            Step::Data(data) => {
                self.counter()
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
                if let Some(d) = &mut self.digest {
                    d.0.update(&data);
                }
                let limit = self.keep_limit;
                if let Some(kept) = &mut self.kept {
                    let room = limit.saturating_sub(kept.len());
                    kept.extend_from_slice(&data[..data.len().min(room)]);
                }
                Some(Ok(Frame::data(data)))
            }
            Step::Other(frame) => Some(Ok(frame)),
            Step::Failed(e) => {
                let side = if self.side == Side::Request {
                    "request"
                } else {
                    "response"
                };
                self.exchange.set_error(format!("{side} body: {e}"));
                Some(Err(e))
            }
            Step::End => {
                self.seal_digest();
                self.close();
                None
            }
        })
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B: HttpBody> Drop for Counted<B> {
    fn drop(&mut self) {
        if self.inner.is_end_stream() {
            self.seal_digest();
        } else if !self.closed {
            // Dropped before its end (an empty body is at its end without
            // ever being polled).
            self.exchange.set_error(match self.side {
                Side::Response => "response not completed: the client went away",
                Side::Request => "request body not completely sent upstream",
            });
        }
        self.close();
    }
}
