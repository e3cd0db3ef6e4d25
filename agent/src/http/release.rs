//! An HTTP/1.1 client idle between requests lets go of its upstream
//! connection (`UpstreamConn::release`): an agent's HTTP library keeps its
//! connections open in a pool for minutes, and each one would otherwise
//! hold an upstream socket, its TLS session and hyper's client state
//! (about 30 KiB) for nothing. The next request takes a kept connection or
//! dials.
//!
//! Idleness is seen where it happens, on the client's side: a read that
//! finds nothing looks at a timer on the same task, which is set from when
//! the client last talked and not re-armed per request, so a busy
//! connection costs a clock read per read and a timer wake-up a second.
//! HTTP/2 multiplexes, and its upstream connection cannot be told idle
//! from here: only HTTP/1.1 is wrapped.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use super::{UpstreamConn, UpstreamError};

/// How long a client may say nothing, between requests, before its
/// upstream connection is let go of. Longer than the post-handshake wait
/// (`proxy::mitm`): an agent thinking between calls comes back within a
/// second or so, and would otherwise often find the pool full and dial.
const RELEASE_AFTER: Duration = Duration::from_secs(1);

/// The client's IO, letting go of `upstream` while it is quiet.
pub(super) struct ReleaseWhenIdle<IO> {
    io: IO,
    upstream: Arc<Result<UpstreamConn, UpstreamError>>,
    /// When a read last found something.
    talked: Instant,
    /// Runs out [`RELEASE_AFTER`] after the client last talked, or later:
    /// it is not reset at every read (a keep-alive connection goes quiet
    /// after every request), but looked at when it runs out, and set again
    /// if the client talked meanwhile. Made at the first quiet read.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The upstream connection has been let go of, and the client has not
    /// talked since.
    released: bool,
}

impl<IO> ReleaseWhenIdle<IO> {
    pub(super) fn new(io: IO, upstream: Arc<Result<UpstreamConn, UpstreamError>>) -> Self {
        Self {
            io,
            upstream,
            talked: Instant::now(),
            timer: None,
            released: false,
        }
    }

    /// A read found nothing: let go of the upstream connection once the
    /// client has been quiet for [`RELEASE_AFTER`]. One still carrying an
    /// exchange (a response streaming while the client says nothing) is
    /// tried again later.
    fn quiet(&mut self, cx: &mut Context<'_>) {
        if self.released {
            return;
        }
        let due = self.talked + RELEASE_AFTER;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        loop {
            if timer.as_mut().poll(cx).is_pending() {
                return;
            }
            let now = Instant::now();
            if now < self.talked + RELEASE_AFTER {
                // It talked since the timer was set.
                timer.as_mut().reset(self.talked + RELEASE_AFTER);
                continue;
            }
            let done = match self.upstream.as_ref() {
                Ok(upstream) => upstream.release(),
                Err(_) => true,
            };
            if done {
                self.released = true;
                return;
            }
            timer.as_mut().reset(now + RELEASE_AFTER);
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for ReleaseWhenIdle<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let read = Pin::new(&mut this.io).poll_read(cx, buf);
        if read.is_pending() {
            this.quiet(cx);
        } else {
            this.talked = Instant::now();
            this.released = false;
        }
        read
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for ReleaseWhenIdle<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
