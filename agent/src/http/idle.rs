//! An upstream that goes silent: while airlock waits for the next frame of
//! a response body, at most `proxy.response_idle_ms` may pass without one;
//! then the body fails (the client's response is cut, never ended cleanly)
//! and the exchange is recorded with why. Only time spent waiting for the
//! upstream counts: the timer runs while the inner body is pending, so a
//! client slow to read is never mistaken for a silent upstream.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};

use super::BoxError;

pub(super) struct Idle<B> {
    inner: B,
    limit: Option<Duration>,
    /// Made at the first wait and reset for each later one: a long
    /// stream of frames costs one timer, not one per frame.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The timer runs: the inner body was pending when last polled.
    waiting: bool,
}

impl<B> std::fmt::Debug for Idle<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idle")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl<B> Idle<B> {
    /// `inner`, failing after `limit` without a frame (`None`: never).
    pub(super) fn new(inner: B, limit: Option<Duration>) -> Self {
        Self {
            inner,
            limit,
            timer: None,
            waiting: false,
        }
    }
}

/// Why an exchange failed when its upstream went silent.
pub(super) fn silence(limit: Duration) -> String {
    format!(
        "the upstream sent nothing for {} ms (proxy.response_idle_ms)",
        limit.as_millis()
    )
}

impl<B> HttpBody for Idle<B>
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
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            self.waiting = false;
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let Some(limit) = self.limit else {
            return Poll::Pending;
        };
        let this = &mut *self;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if !std::mem::replace(&mut this.waiting, true) {
            timer.as_mut().reset(tokio::time::Instant::now() + limit);
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.waiting = false;
                Poll::Ready(Some(Err(silence(limit).into())))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
