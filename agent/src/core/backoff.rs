//! Reconnection backoff for airlock's own connections to outside services
//! (the fleet's database, a syslog receiver): from half a second, doubling,
//! to 30 s; back to the start after a connection that lasted longer than
//! that, so one outage does not slow the next reconnect.

use std::sync::Mutex;
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

    /// Waits as [`Backoff::after`] says, unless `stop` is or turns true:
    /// whether it did (the task then ends).
    pub(crate) async fn pause(
        &mut self,
        began: Instant,
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> bool {
        if *stop.borrow() {
            return true;
        }
        tokio::select! {
            () = tokio::time::sleep(self.after(began)) => {}
            _ = stop.changed() => {}
        }
        *stop.borrow()
    }
}

/// Keeps `text` as a reconnecting task's last error (what its status
/// shows); whether it is a new one, so the log says each error once, not
/// at every retry.
pub(crate) fn new_error(last: &Mutex<Option<String>>, text: &str) -> bool {
    let before = super::lock(last).replace(text.to_owned());
    before.as_deref() != Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_is_new_once() {
        let last = Mutex::new(None);
        assert!(new_error(&last, "refused"));
        assert!(!new_error(&last, "refused"));
        assert!(new_error(&last, "timed out"));
        assert_eq!(super::super::lock(&last).as_deref(), Some("timed out"));
    }

    #[tokio::test]
    async fn a_pause_ends_with_the_stop() {
        let (tx, mut stop) = tokio::sync::watch::channel(false);
        let mut b = Backoff::default();
        let waiting = tokio::spawn(async move { b.pause(Instant::now(), &mut stop).await });
        tx.send(true).unwrap();
        let stopped = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        assert!(stopped.unwrap().unwrap(), "stopped before the 500 ms wait");
        let (_tx, mut stop) = tokio::sync::watch::channel(true);
        assert!(Backoff::default().pause(Instant::now(), &mut stop).await);
    }

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
