//! Request bodies scanned for secrets by their bytes, whatever their label
//! says, decoded first when they carry a `Content-Encoding` (`Scan`, for
//! bodies read whole too); and a body too large to read before forwarding,
//! scanned as it streams (`Scanned`). When what it carries makes policy
//! refuse the request, the body fails instead of ending, so the upstream
//! never sees a complete request (HTTP/2: `RST_STREAM`; HTTP/1.1: the
//! connection closes short of the announced length or the last chunk) and
//! commits nothing. The last chunk is held back until the scan of the whole
//! body is done, so a secret at its very end is judged before the body can
//! end cleanly.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};

use super::BoxError;
use super::body::{Step, next_step};
use super::decode::{Coding, Decoder};
use super::exchange::{Exchange, Seen};
use crate::gate::Rejudge;
use crate::mask::StreamMasker;

/// Most bytes a compressed request body may decode to: past it, it
/// cannot be judged (a decompression bomb), so it is not forwarded.
const MAX_DECODED: u64 = 1 << 30;

/// The scan of one body, as its bytes come: decoded first with a decoder.
#[derive(Debug)]
pub(super) struct Scan {
    scanner: StreamMasker,
    decoder: Option<Decoder>,
    decoded: u64,
}

impl Scan {
    pub(super) fn new(scanner: StreamMasker, decoder: Option<Decoder>) -> Self {
        Self {
            scanner,
            decoder,
            decoded: 0,
        }
    }

    /// Scans `data` as sent.
    pub(super) fn push(&mut self, data: &Bytes) -> Result<(), BoxError> {
        let Some(decoder) = self.decoder.as_mut() else {
            self.scanner.push(data);
            return Ok(());
        };
        decoder.input(data)?;
        while let Some(out) = self
            .decoder
            .as_mut()
            .map(Coding::output)
            .transpose()?
            .flatten()
        {
            self.decoded_push(out)?;
        }
        Ok(())
    }

    /// The rest of the scan, at the body's end.
    pub(super) fn finish(&mut self) -> Result<(), BoxError> {
        if let Some(rest) = self.decoder.as_mut().map(Coding::end).transpose()? {
            self.decoded_push(rest)?;
        }
        self.scanner.finish();
        Ok(())
    }

    /// Decoded bytes to the scanner, counted against [`MAX_DECODED`].
    fn decoded_push(&mut self, out: Vec<u8>) -> Result<(), BoxError> {
        self.decoded += out.len() as u64;
        if self.decoded > MAX_DECODED {
            return Err(format!(
                "the request body decodes to more than {} MiB: it cannot be scanned, so it is not forwarded",
                MAX_DECODED >> 20
            )
            .into());
        }
        self.scanner.push(&Bytes::from(out));
        Ok(())
    }

    pub(super) fn findings(&self) -> &crate::core::Findings {
        self.scanner.findings()
    }
}

pub(super) struct Scanned<B> {
    inner: B,
    /// The body's `Content-Encoding` is undone for the scan only: the bytes
    /// forwarded are the ones sent.
    scan: Scan,
    judge: Rejudge,
    exchange: Arc<Exchange>,
    /// Findings already judged.
    judged: u32,
    /// The latest chunk, sent on once the next one (or the end) was seen.
    held: Option<Bytes>,
    /// Trailers, which end the data: sent after the held chunk.
    trailers: Option<Frame<Bytes>>,
    /// The first bytes, for the excerpt (none for an encoded or binary
    /// body).
    head: Vec<u8>,
    excerpt_bytes: usize,
    ended: bool,
}

impl<B> std::fmt::Debug for Scanned<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scanned").finish_non_exhaustive()
    }
}

impl<B> Scanned<B> {
    pub(super) fn new(
        inner: B,
        scan: Scan,
        judge: Rejudge,
        exchange: Arc<Exchange>,
        excerpt_bytes: usize,
    ) -> Self {
        Self {
            inner,
            scan,
            judge,
            exchange,
            judged: 0,
            held: None,
            trailers: None,
            head: Vec::new(),
            excerpt_bytes,
            ended: false,
        }
    }

    /// Policy asked again when the scan found something new; an error that
    /// fails the body when it refuses.
    fn judge(&mut self) -> Result<(), BoxError> {
        let findings = self.scan.findings();
        if findings.count == self.judged {
            return Ok(());
        }
        self.judged = findings.count;
        let found: Vec<&'static str> = findings.detectors.keys().copied().collect();
        match self.judge.refuses(&found) {
            None => Ok(()),
            Some(decision) => {
                let why = format!(
                    "the request body carries {}: refused by policy ({})",
                    found.join(", "),
                    decision.reason
                );
                self.exchange.refuse_midstream(decision);
                Err(why.into())
            }
        }
    }

    fn keep(&mut self, data: &[u8]) {
        if self.excerpt_bytes == 0 {
            return;
        }
        // Past the excerpt, a secret's worth more: one cut at the excerpt's
        // end is still masked whole before the excerpt is cut.
        let room = (self.excerpt_bytes + crate::mask::MAX_SECRET).saturating_sub(self.head.len());
        self.head.extend_from_slice(&data[..data.len().min(room)]);
    }

    /// What was seen, for the record (also when the body is cut short).
    fn report(&mut self) {
        let excerpt = self
            .exchange
            .ctx()
            .masker
            .excerpt(&self.head, self.excerpt_bytes);
        let findings = Some(self.scan.findings().clone());
        self.exchange.set_seen(false, Seen { excerpt, findings });
    }
}

impl<B> HttpBody for Scanned<B>
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
        loop {
            if this.ended {
                let next = match this.held.take() {
                    Some(h) => Some(Frame::data(h)),
                    None => this.trailers.take(),
                };
                return Poll::Ready(next.map(Ok));
            }
            let trailers = match std::task::ready!(next_step(&mut this.inner, cx)) {
                Step::Data(data) => {
                    this.keep(&data);
                    if let Err(e) = this.scan.push(&data).and_then(|()| this.judge()) {
                        return Poll::Ready(Some(Err(e)));
                    }
                    if let Some(before) = this.held.replace(data) {
                        return Poll::Ready(Some(Ok(Frame::data(before))));
                    }
                    continue;
                }
                Step::Failed(e) => return Poll::Ready(Some(Err(e))),
                // Trailers end the data as the end does.
                Step::Other(frame) => Some(frame),
                Step::End => None,
            };
            let judged = this.scan.finish().and_then(|()| this.judge());
            this.report();
            if let Err(e) = judged {
                return Poll::Ready(Some(Err(e)));
            }
            this.trailers = trailers;
            this.ended = true;
        }
    }

    fn is_end_stream(&self) -> bool {
        // An empty body is at its end before it is polled (hyper may never
        // poll it): nothing is held, and there is nothing to scan.
        self.held.is_none() && self.trailers.is_none() && (self.ended || self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        // The same bytes go on: the length is the client's.
        self.inner.size_hint()
    }
}

impl<B> Drop for Scanned<B> {
    fn drop(&mut self) {
        if !self.ended {
            self.report();
        }
    }
}
