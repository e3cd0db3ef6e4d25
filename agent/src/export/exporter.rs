//! The exporter: follows the local trail (never the writer's queue: a
//! receiver that is slow or gone delays only the copy, never traffic),
//! turns it into messages, sends them, and keeps a cursor of what is
//! delivered, so a restart resumes. Delivery is at least once: what is not
//! proven delivered when a connection fails goes again on the next, and
//! receivers drop duplicates by `trail` and `seq`. Its progress holds back
//! retention; its state is in `status` and the metrics.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::cursor::{self, Cursor};
use super::link::{Link, Proof, Sent};
use super::reading::Reading;
use super::{ExportError, message};
use crate::audit::{AuditLog, RetentionHold};
use crate::config::{SyslogConfig, SyslogTarget};
use crate::core::lock;

/// How often an idle exporter looks for new records.
const POLL: Duration = Duration::from_millis(200);
/// The cursor is written at most this often (and at the end).
const SAVE_EVERY: Duration = Duration::from_secs(1);
/// Messages awaiting their proof, at most: RELP answers within a window
/// (librelp's own default); a stream holds what it wrote in its last
/// [`super::stream::SETTLE`], bounded in bytes too.
const RELP_WINDOW: usize = 128;
const STREAM_WINDOW: usize = 100_000;
const WINDOW_BYTES: usize = 32 << 20;
/// Records read at a time.
const READ_RECORDS: usize = 512;

/// What the exporter says about itself (`status.export.syslog`, metrics).
#[derive(Debug, Default)]
pub(crate) struct ExportStats {
    target: String,
    connected: AtomicBool,
    /// Every message through this seq is delivered.
    delivered_seq: AtomicU64,
    /// Messages made (each once, however often it is sent).
    messages: AtomicU64,
    /// Messages cut to fit the cap.
    truncated: AtomicU64,
    /// Messages lost for good: a UDP send refused, a RELP receiver's
    /// refusal.
    dropped: AtomicU64,
    error: Mutex<Option<String>>,
}

impl ExportStats {
    pub(crate) fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    pub(crate) fn delivered_seq(&self) -> u64 {
        self.delivered_seq.load(Ordering::Relaxed)
    }

    /// Records on disk not delivered yet.
    pub(crate) fn lag(&self, local_seq: u64) -> u64 {
        local_seq.saturating_sub(self.delivered_seq())
    }

    pub(crate) fn messages(&self) -> u64 {
        self.messages.load(Ordering::Relaxed)
    }

    pub(crate) fn truncated(&self) -> u64 {
        self.truncated.load(Ordering::Relaxed)
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// `status.export.syslog`, given the chain head on disk.
    pub(crate) fn status(&self, local_seq: u64) -> Value {
        serde_json::json!({
            "target": self.target,
            "connected": self.connected(),
            "delivered_seq": self.delivered_seq(),
            "lag_records": self.lag(local_seq),
            "messages": self.messages(),
            "truncated": self.truncated(),
            "dropped": self.dropped(),
            "error": *lock(&self.error),
        })
    }
}

/// Exports one trail, the one `audit` writes.
#[derive(Debug)]
pub(crate) struct Exporter {
    config: SyslogConfig,
    target: SyslogTarget,
    audit: AuditLog,
    stats: Arc<ExportStats>,
    hold: RetentionHold,
    cursor_path: PathBuf,
}

/// A message and what is known of it.
struct Outgoing {
    key: u64,
    at: u64,
    bytes: Vec<u8>,
    sent: Option<Instant>,
    done: bool,
}

/// Messages made and not yet proven delivered, in order.
#[derive(Default)]
struct Outbox {
    items: VecDeque<Outgoing>,
    bytes: usize,
    next_key: u64,
}

impl Outbox {
    fn room(&self, proof: Proof) -> usize {
        let max = match proof {
            Proof::Answered => RELP_WINDOW,
            Proof::Settled(_) | Proof::Sent => STREAM_WINDOW,
        };
        if self.bytes >= WINDOW_BYTES {
            return 0;
        }
        max.saturating_sub(self.items.len())
    }

    fn push(&mut self, at: u64, bytes: Vec<u8>) -> u64 {
        let key = self.next_key;
        self.next_key += 1;
        self.bytes += bytes.len();
        self.items.push_back(Outgoing {
            key,
            at,
            bytes,
            sent: None,
            done: false,
        });
        key
    }

    fn done(&mut self, key: u64) {
        if let Ok(i) = self.items.binary_search_by_key(&key, |m| m.key) {
            self.items[i].done = true;
        }
    }

    /// Marks what a stream has held long enough.
    fn settle(&mut self, after: Duration) {
        for m in &mut self.items {
            match m.sent {
                Some(t) if t.elapsed() >= after => m.done = true,
                _ => break,
            }
        }
    }

    /// Drops the delivered messages at the front; the last seq through
    /// which everything is delivered, `read_through` when nothing waits.
    fn delivered(&mut self, read_through: u64) -> u64 {
        while self.items.front().is_some_and(|m| m.done) {
            let m = self.items.pop_front().expect("a front");
            self.bytes -= m.bytes.len();
        }
        self.items.front().map_or(read_through, |m| m.at - 1)
    }
}

/// Everything that lives across connections.
struct State {
    reading: Reading,
    outbox: Outbox,
    cursor: Cursor,
    saved: Cursor,
    saved_at: Instant,
}

impl Exporter {
    pub(crate) fn new(config: SyslogConfig, audit: AuditLog) -> Self {
        let target = config.target().expect("validated at load");
        // Nothing is removed by retention before it is delivered.
        let hold = audit.hold_retention();
        Self {
            stats: Arc::new(ExportStats {
                target: config.target.clone(),
                ..ExportStats::default()
            }),
            cursor_path: cursor::path_for(audit.path()),
            config,
            target,
            audit,
            hold,
        }
    }

    pub(crate) fn stats(&self) -> Arc<ExportStats> {
        self.stats.clone()
    }

    /// Exports until `stop` turns true and everything written is
    /// delivered (the caller bounds how long it waits for that);
    /// reconnects with backoff meanwhile.
    pub(crate) async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let trail = self.audit.stats().trail.unwrap_or_default();
        let cursor = Cursor::load(&self.cursor_path, &trail);
        self.hold.release_through(cursor.resume - 1);
        self.stats
            .delivered_seq
            .store(cursor.delivered, Ordering::Relaxed);
        let mut state = State {
            reading: Reading::new(self.audit.path(), &cursor),
            outbox: Outbox::default(),
            saved: cursor.clone(),
            cursor,
            saved_at: Instant::now(),
        };
        let mut backoff = crate::core::Backoff::default();
        loop {
            let began = Instant::now();
            let result = self.session(&mut state, &mut stop).await;
            self.stats.connected.store(false, Ordering::Relaxed);
            self.save(&mut state, true).await;
            let e = match result {
                Ok(()) => return,
                Err(e) => e,
            };
            let text = e.to_string();
            if crate::core::new_error(&self.stats.error, &text) {
                tracing::warn!(error = %text, target = %self.config.target, "syslog: export stopped; retrying");
            }
            if backoff.pause(began, &mut stop).await {
                return;
            }
        }
    }

    /// One connection: what was not proven delivered goes first, then the
    /// trail as it grows, until an error, or until stopped with nothing
    /// left.
    async fn session(
        &self,
        state: &mut State,
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), ExportError> {
        let mut link = Link::connect(&self.config, &self.target).await?;
        let proof = link.proof();
        self.stats.connected.store(true, Ordering::Relaxed);
        if lock(&self.stats.error).take().is_some() {
            tracing::info!(target = %self.config.target, "syslog: exporting again");
        }
        // Whatever the last connection took is not proven: all of it goes
        // again.
        for m in &mut state.outbox.items {
            m.sent = None;
        }
        let (facility, cap) = (self.config.facility_code(), self.config.cap());
        loop {
            let room = state.outbox.room(proof);
            let mut idle = room == 0;
            if room > 0 {
                let items = state.reading.next(room.min(READ_RECORDS)).await?;
                idle = items.is_empty();
                // Into the outbox before anything is sent: read from the
                // trail, a message is kept until it is proven delivered,
                // whatever fails meanwhile.
                for item in items {
                    let m = message::format(&item.record, facility, cap);
                    self.stats.messages.fetch_add(1, Ordering::Relaxed);
                    if m.truncated {
                        self.stats.truncated.fetch_add(1, Ordering::Relaxed);
                    }
                    state.outbox.push(item.at, m.bytes);
                }
            }
            // Messages are sent in order: the unsent ones are the last.
            let first = state.outbox.items.partition_point(|m| m.sent.is_some());
            for m in state.outbox.items.range_mut(first..) {
                let sent = link.send(m.key, &m.bytes).await?;
                self.sent(m, proof, sent);
            }
            if let Proof::Settled(after) = proof {
                state.outbox.settle(after);
            }
            self.progress(state).await;
            if *stop.borrow() && idle && room > 0 {
                // Everything written is read: the last answers, then a
                // clean end, which for a stream proves it was all read.
                if state.outbox.items.is_empty() || proof != Proof::Answered {
                    link.close().await?;
                    for m in &mut state.outbox.items {
                        m.done = true;
                    }
                    self.progress(state).await;
                    return Ok(());
                }
            }
            if idle {
                let stopping = *stop.borrow();
                tokio::select! {
                    answer = link.answer() => {
                        let (key, taken) = answer?;
                        state.outbox.done(key);
                        if !taken {
                            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                            tracing::error!(target = %self.config.target, "syslog: the receiver refused a message; it is not sent again");
                        }
                    }
                    () = tokio::time::sleep(POLL) => {}
                    _ = stop.changed(), if !stopping => {}
                }
            }
        }
    }

    /// Notes a message handed to the link.
    fn sent(&self, m: &mut Outgoing, proof: Proof, sent: Sent) {
        m.sent = Some(Instant::now());
        if sent == Sent::Dropped {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
        if proof == Proof::Sent || sent == Sent::Dropped {
            m.done = true;
        }
    }

    /// Moves the cursor to what is delivered; the retention hold with it.
    async fn progress(&self, state: &mut State) {
        let delivered = state
            .outbox
            .delivered(state.reading.read_through())
            .max(state.cursor.delivered);
        let resume = state.reading.resume(delivered);
        self.stats.delivered_seq.store(delivered, Ordering::Relaxed);
        state.cursor.delivered = delivered;
        state.cursor.resume = resume;
        self.hold.release_through(resume - 1);
        self.save(state, false).await;
    }

    /// Writes the cursor when it moved: at most every [`SAVE_EVERY`], or
    /// now when `now`.
    async fn save(&self, state: &mut State, now: bool) {
        if state.cursor == state.saved || (!now && state.saved_at.elapsed() < SAVE_EVERY) {
            return;
        }
        let (cursor, path) = (state.cursor.clone(), self.cursor_path.clone());
        let saved = tokio::task::spawn_blocking(move || cursor.save(&path))
            .await
            .map_err(|e| ExportError::Io(std::io::Error::other(e)))
            .and_then(|r| r);
        match saved {
            Ok(()) => state.saved = state.cursor.clone(),
            Err(e) => {
                tracing::warn!(error = %e, "syslog: the cursor cannot be written; a restart sends more again")
            }
        }
        state.saved_at = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outbox_says_delivered_through_the_first_message_not_proven() {
        let mut o = Outbox::default();
        assert_eq!(o.delivered(7), 7, "nothing waits: all read is delivered");
        let a = o.push(8, vec![0; 10]);
        let b = o.push(8, vec![0; 10]);
        let c = o.push(11, vec![0; 10]);
        o.done(b);
        o.done(c);
        assert_eq!(o.delivered(12), 7, "one message of seq 8 is not answered");
        o.done(a);
        assert_eq!(o.delivered(12), 12);
        assert_eq!((o.items.len(), o.bytes), (0, 0));
        assert_eq!(o.room(Proof::Answered), RELP_WINDOW);
        o.push(13, vec![0; WINDOW_BYTES]);
        assert_eq!(o.room(Proof::Settled(Duration::ZERO)), 0, "full by bytes");
        o.items[0].sent = Some(Instant::now());
        o.settle(Duration::ZERO);
        assert_eq!(o.delivered(13), 13);
    }
}
