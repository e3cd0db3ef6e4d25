//! Watching a response body as it passes: masking it before it reaches
//! the client, and keeping the masked excerpt the audit record carries.
//! What was seen is handed to the exchange when the body ends. (Request
//! bodies are scanned by `super::scan`.)

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};

use super::BoxError;
use super::body::{Step, next_step};
use super::exchange::{Exchange, Seen};
use crate::mask::{MAX_SECRET, StreamMasker};

pub(super) struct Tap<B> {
    inner: B,
    masker: Option<StreamMasker>,
    exchange: Arc<Exchange>,
    /// The first bytes as sent on, for the excerpt (masked again at the
    /// end, with look-ahead so no secret is cut in half unseen).
    head: Vec<u8>,
    excerpt_bytes: usize,
    /// The masker's final output, still to be sent.
    tail: Option<Bytes>,
    done: bool,
    /// A model call's output, rebuilt from what the client receives.
    model: Option<crate::model::Reassembler>,
}

impl<B> std::fmt::Debug for Tap<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tap").finish_non_exhaustive()
    }
}

impl<B> Tap<B> {
    /// `masker`: masks (none: only the excerpt is kept). `excerpt`: whether
    /// this is text worth an excerpt.
    pub(super) fn new(
        inner: B,
        masker: Option<StreamMasker>,
        exchange: Arc<Exchange>,
        excerpt: bool,
    ) -> Self {
        let excerpt_bytes = if excerpt {
            exchange.ctx().excerpt_bytes
        } else {
            0
        };
        Self {
            inner,
            masker,
            exchange,
            head: Vec::new(),
            excerpt_bytes,
            tail: None,
            done: false,
            model: None,
        }
    }

    /// Also reassembles a model's output from the bytes passing through.
    pub(super) fn reassembling(mut self) -> Self {
        self.model = Some(self.exchange.gate().models().reassembler());
        self
    }

    fn changes_bytes(&self) -> bool {
        self.masker
            .as_ref()
            .is_some_and(StreamMasker::changes_bytes)
    }

    fn keep(&mut self, out: &[u8]) {
        if let Some(model) = self.model.as_mut() {
            model.feed(out);
        }
        let room = (self.excerpt_bytes + MAX_SECRET).saturating_sub(self.head.len());
        if self.excerpt_bytes > 0 && room > 0 {
            self.head.extend_from_slice(&out[..out.len().min(room)]);
        }
    }

    /// Reports what was seen (once).
    fn report(&mut self) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let excerpt = if self.changes_bytes() {
            crate::mask::masked_excerpt(std::mem::take(&mut self.head), self.excerpt_bytes)
        } else {
            self.exchange
                .ctx()
                .masker
                .excerpt(&self.head, self.excerpt_bytes)
        };
        let findings = self.masker.as_ref().map(|m| m.findings().clone());
        self.exchange.set_seen(true, Seen { excerpt, findings });
        if let Some(model) = self.model.take() {
            let cap = self.exchange.gate().models().text_bytes();
            self.exchange
                .set_output(model.finish(&self.exchange.ctx().masker, cap));
        }
    }
}

impl<B> HttpBody for Tap<B>
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
        loop {
            if let Some(tail) = self.tail.take() {
                return Poll::Ready(Some(Ok(Frame::data(tail))));
            }
            if self.done {
                return Poll::Ready(None);
            }
            match std::task::ready!(next_step(&mut self.inner, cx)) {
                Step::Data(frame) => {
                    let out = match self.masker.as_mut() {
                        Some(m) => m.push(&frame),
                        None => frame,
                    };
                    self.keep(&out);
                    if self.masker.is_none() && self.inner.is_end_stream() {
                        // hyper polls no further a body that says it is at
                        // its end, and the exchange is recorded when it is
                        // dropped: what was seen is reported now.
                        self.report();
                    }
                    if out.is_empty() {
                        // Held back for look-ahead: read on.
                        continue;
                    }
                    return Poll::Ready(Some(Ok(Frame::data(out))));
                }
                // Trailers pass as they are.
                Step::Other(frame) => return Poll::Ready(Some(Ok(frame))),
                Step::Failed(e) => return Poll::Ready(Some(Err(e))),
                Step::End => {
                    let rest = self
                        .masker
                        .as_mut()
                        .map(StreamMasker::finish)
                        .unwrap_or_default();
                    self.keep(&rest);
                    self.report();
                    if !rest.is_empty() {
                        self.tail = Some(rest);
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        if self.changes_bytes() {
            self.done && self.tail.is_none()
        } else {
            self.tail.is_none() && self.inner.is_end_stream()
        }
    }

    fn size_hint(&self) -> SizeHint {
        if self.changes_bytes() {
            // Masking can change the length: nothing is promised.
            SizeHint::default()
        } else {
            self.inner.size_hint()
        }
    }
}

impl<B> Drop for Tap<B> {
    fn drop(&mut self) {
        // A body cut short still gets its excerpt and findings recorded.
        self.report();
    }
}
