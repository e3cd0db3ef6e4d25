//! The hand-off between the tasks that make records and the writer thread.
//! The writer is woken only when someone waits on it (a record that must
//! be durable before its request is forwarded, a sync) or when a batch has
//! piled up; other records (responses, connection ends) ride along with the
//! next wake-up or the writer's periodic tick. On a busy proxy that halves
//! the cross-thread wake-ups per request, which dominated the profile.

use crate::core::lock;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Why a message was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum PushError {
    /// The writer is not keeping up.
    Full,
    /// The writer is gone.
    Closed,
}

/// What the writer got.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Taken {
    /// Messages were moved into the caller's buffer.
    Some,
    /// Nothing arrived within the timeout.
    Timeout,
    /// Every sender is gone and the queue is empty.
    Closed,
}

#[derive(Debug)]
pub(super) struct Queue<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
    depth: usize,
    /// A backlog this long wakes the writer even without an urgent message.
    wake_at: usize,
}

#[derive(Debug)]
struct State<T> {
    items: Vec<T>,
    closed: bool,
    /// The writer is (about to be) waiting on `ready`.
    sleeping: bool,
}

impl<T> Queue<T> {
    pub(super) fn new(depth: usize, wake_at: usize) -> Self {
        Self {
            state: Mutex::new(State {
                items: Vec::with_capacity(wake_at),
                closed: false,
                sleeping: false,
            }),
            ready: Condvar::new(),
            depth,
            wake_at,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        lock(&self.state)
    }

    /// Queues `item`; wakes the writer if it sleeps and `urgent` (or a
    /// batch is waiting).
    pub(super) fn push(&self, item: T, urgent: bool) -> Result<(), PushError> {
        let mut s = self.lock();
        if s.closed {
            return Err(PushError::Closed);
        }
        if s.items.len() >= self.depth {
            return Err(PushError::Full);
        }
        s.items.push(item);
        let wake = s.sleeping && (urgent || s.items.len() >= self.wake_at);
        if wake {
            s.sleeping = false;
        }
        drop(s);
        if wake {
            self.ready.notify_one();
        }
        Ok(())
    }

    /// Moves everything queued into `into` (which must be empty), waiting
    /// up to `timeout` for something to arrive.
    pub(super) fn take(&self, into: &mut Vec<T>, timeout: Duration) -> Taken {
        let mut s = self.lock();
        if s.items.is_empty() && !s.closed {
            s.sleeping = true;
            s = self
                .ready
                .wait_timeout(s, timeout)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
            s.sleeping = false;
        }
        if !s.items.is_empty() {
            std::mem::swap(into, &mut s.items);
            Taken::Some
        } else if s.closed {
            Taken::Closed
        } else {
            Taken::Timeout
        }
    }

    /// No more messages will come: the writer drains what is left and ends.
    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn lazy_items_wait_for_an_urgent_one_or_the_tick() {
        let q = Arc::new(Queue::new(8, 4));
        let writer = {
            let q = q.clone();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                let start = Instant::now();
                assert_eq!(q.take(&mut got, Duration::from_secs(5)), Taken::Some);
                (got, start.elapsed())
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        q.push(1, false).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        q.push(2, true).unwrap();
        let (got, waited) = writer.join().unwrap();
        assert_eq!(got, [1, 2], "the lazy item rode along with the urgent one");
        assert!(
            waited >= Duration::from_millis(140),
            "not woken by the lazy item"
        );
    }

    #[test]
    fn a_backlog_wakes_the_writer_and_a_full_queue_refuses() {
        let q = Queue::new(3, 2);
        q.push(1, false).unwrap();
        q.push(2, false).unwrap();
        q.push(3, false).unwrap();
        assert_eq!(q.push(4, true), Err(PushError::Full));
        let mut got = Vec::new();
        assert_eq!(q.take(&mut got, Duration::from_millis(1)), Taken::Some);
        assert_eq!(got, [1, 2, 3]);
        got.clear();
        assert_eq!(q.take(&mut got, Duration::from_millis(1)), Taken::Timeout);
        q.push(5, false).unwrap();
        q.close();
        assert_eq!(q.push(6, true), Err(PushError::Closed));
        assert_eq!(
            q.take(&mut got, Duration::from_millis(1)),
            Taken::Some,
            "drained after close"
        );
        got.clear();
        assert_eq!(q.take(&mut got, Duration::from_millis(1)), Taken::Closed);
    }
}
