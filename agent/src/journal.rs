//! Where log lines go and how they are marked: standard error, each line
//! written whole, prefixed with its syslog priority (`<3>` error … `<7>`
//! debug, sd-daemon(3)) when standard error is the journal, so `journalctl
//! -p warning` finds airlock's warnings; colours only on a terminal. And
//! how often a line a client can cause at will is written ([`Throttle`]):
//! the trail records every event, the log must not become the agent's
//! megaphone (or spend journald's rate limit on it).

use std::io::{IsTerminal, Write};
use std::os::unix::fs::MetadataExt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// Makes one [`Line`] per event.
#[derive(Clone, Copy, Debug)]
pub struct LogWriter {
    journal: bool,
}

impl LogWriter {
    /// Standard error as it is now: the journal's when `JOURNAL_STREAM`
    /// names the same file (systemd sets it for the service, and a child
    /// that inherits the variable but not the stream must not prefix).
    pub fn stderr() -> Self {
        Self {
            journal: is_journal(std::env::var("JOURNAL_STREAM").ok().as_deref()),
        }
    }

    /// Whether lines may carry colour codes: on a terminal only.
    pub fn ansi(&self) -> bool {
        !self.journal && std::io::stderr().is_terminal()
    }
}

/// `JOURNAL_STREAM` is `DEVICE:INODE` of the stream systemd connected.
fn is_journal(stream: Option<&str>) -> bool {
    let Some((dev, ino)) = stream.and_then(|s| s.split_once(':')) else {
        return false;
    };
    std::fs::metadata("/proc/self/fd/2")
        .is_ok_and(|m| dev.parse() == Ok(m.dev()) && ino.parse() == Ok(m.ino()))
}

/// The syslog priority of a level.
fn priority(level: &Level) -> &'static [u8] {
    match *level {
        Level::ERROR => b"<3>",
        Level::WARN => b"<4>",
        Level::INFO => b"<6>",
        _ => b"<7>",
    }
}

/// One event's text, written to standard error in one call when dropped
/// (lines from several threads never interleave).
#[derive(Debug)]
pub struct Line {
    buf: Vec<u8>,
}

impl Write for Line {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        let _ = std::io::stderr().lock().write_all(&self.buf);
    }
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line { buf: Vec::new() }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Line {
        let mut buf = Vec::with_capacity(256);
        if self.journal {
            buf.extend_from_slice(priority(meta.level()));
        }
        Line { buf }
    }
}

/// Lets a log line through at most once per interval, counting the ones
/// held back (a static per call site).
#[derive(Debug)]
pub(crate) struct Throttle {
    every_ms: u64,
    /// When a line last went through, milliseconds since [`epoch`] + 1
    /// (0: never).
    last: AtomicU64,
    held: AtomicU64,
}

/// The process's clock origin for throttles.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl Throttle {
    pub(crate) const fn new(every: Duration) -> Self {
        Self {
            every_ms: every.as_millis() as u64,
            last: AtomicU64::new(0),
            held: AtomicU64::new(0),
        }
    }

    /// `Some(lines held back since the last one)` when this one may be
    /// written; `None` (and counted) when it must not.
    pub(crate) fn admit(&self) -> Option<u64> {
        let now = u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX) + 1;
        let last = self.last.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < self.every_ms
            || self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            self.held.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(self.held.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttle_lets_one_line_through_per_interval_and_counts_the_rest() {
        let t = Throttle::new(Duration::from_millis(200));
        assert_eq!(t.admit(), Some(0));
        for _ in 0..1000 {
            assert_eq!(t.admit(), None);
        }
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(t.admit(), Some(1000));
        assert_eq!(t.admit(), None);
    }

    #[test]
    fn only_the_stream_systemd_connected_is_the_journal() {
        assert!(!is_journal(None));
        assert!(!is_journal(Some("garbage")));
        assert!(!is_journal(Some("0:0")));
        let m = std::fs::metadata("/proc/self/fd/2").unwrap();
        assert!(is_journal(Some(&format!("{}:{}", m.dev(), m.ino()))));
        assert_eq!(priority(&Level::WARN), b"<4>");
        assert_eq!(priority(&Level::TRACE), b"<7>");
    }
}
