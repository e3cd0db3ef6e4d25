//! One memory budget for the request bodies airlock reads whole before
//! forwarding them (scan-before-forward, envelopes, token forms, model
//! prompts): `proxy.body_buffer_bytes` in all. A body that would pass it
//! is refused at once (503 `Overloaded`) rather than read, so a flood of
//! uploads costs a bounded amount of memory and other requests go on.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::Full;

#[derive(Debug)]
pub(crate) struct BodyBudget {
    max: usize,
    used: AtomicUsize,
}

impl BodyBudget {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            used: AtomicUsize::new(0),
        })
    }

    /// `n` bytes of the budget until the reservation is dropped, if they
    /// are free.
    pub(super) fn reserve(self: &Arc<Self>, n: usize) -> Option<Reservation> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|total| *total <= self.max)
            })
            .ok()?;
        Some(Reservation {
            budget: self.clone(),
            n,
        })
    }

    /// Bytes reserved now.
    #[cfg(test)]
    fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

/// Part of the budget, given back when dropped.
#[derive(Debug)]
pub(super) struct Reservation {
    budget: Arc<BodyBudget>,
    n: usize,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.n, Ordering::AcqRel);
    }
}

/// A body read whole, holding its reservation until it has been sent on
/// (or dropped).
#[derive(Debug)]
pub(super) struct Buffered {
    body: Full<Bytes>,
    _reservation: Reservation,
}

impl Buffered {
    pub(super) fn new(bytes: Bytes, reservation: Reservation) -> Self {
        Self {
            body: Full::new(bytes),
            _reservation: reservation,
        }
    }
}

impl HttpBody for Buffered {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_fit_the_budget_and_come_back() {
        let budget = BodyBudget::new(100);
        let a = budget.reserve(60).unwrap();
        assert!(budget.reserve(41).is_none(), "past the budget");
        let b = budget.reserve(40).unwrap();
        assert_eq!(budget.used(), 100);
        drop(a);
        assert_eq!(budget.used(), 40);
        let body = Buffered::new(Bytes::from_static(b"x"), budget.reserve(60).unwrap());
        assert!(budget.reserve(1).is_none());
        drop(body);
        drop(b);
        assert_eq!(budget.used(), 0);
        assert!(budget.reserve(usize::MAX).is_none(), "no overflow");
    }
}
