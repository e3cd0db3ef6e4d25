//! Reconnection backoff for airlock's own connections to outside services
//! (the fleet's database, a syslog receiver): from half a second, doubling,
//! to 30 s; back to the start after a connection that lasted longer than
//! that, so one outage does not slow the next reconnect.

use std::time::{Duration, Instant};

const FIRST: Duration = Duration::from_millis(500);
const MAX: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: FIRST }
    }
}

impl Backoff {
    /// How long to wait after a connection begun at `began` ended.
    pub(crate) fn after(&mut self, began: Instant) -> Duration {
        if began.elapsed() > MAX {
            self.next = FIRST;
        }
        let wait = self.next;
        self.next = (self.next * 2).min(MAX);
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_its_bound_and_starts_over_after_a_long_connection() {
        let mut b = Backoff::default();
        let now = Instant::now();
        let waits: Vec<u64> = (0..9).map(|_| b.after(now).as_millis() as u64).collect();
        assert_eq!(
            waits,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        let long_ago = now.checked_sub(MAX + Duration::from_secs(1)).unwrap();
        assert_eq!(b.after(long_ago), FIRST);
    }
}
