//! Where log lines go and how they are marked: standard error, each line
//! written whole, prefixed with its syslog priority (`<3>` error … `<7>`
//! debug, sd-daemon(3)) when standard error is the journal, so `journalctl
//! -p warning` finds airlock's warnings; colours only on a terminal.

use std::io::{IsTerminal, Write};
use std::os::unix::fs::MetadataExt;

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

#[cfg(test)]
mod tests {
    use super::*;

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
