//! The trail read as messages: the files followed from a seq on
//! (`audit::tail`), joined (`audit::join`) into one object per exchange —
//! its session, request and response — and every other record as it is.
//! Each message is placed at the seq of the record that completed it, so
//! messages come in the order of those seqs and "delivered through N" has
//! one meaning.
//!
//! It also says where reading must start again to rebuild what is not
//! delivered yet: at the first request still waiting for its response,
//! or at a session record such an exchange, or one used lately, needs.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::ExportError;
use super::cursor::Cursor;
use crate::audit::query::Joiner;
use crate::audit::tail::{Line, Tail};

/// A session unused this long is not held for a restart: an exchange on
/// it after a crash joins without its context (`session_missing`).
const SESSION_KEEP: Duration = Duration::from_secs(600);

/// One message to send: the record (joined) and its place.
#[derive(Debug)]
pub(super) struct Item {
    pub(super) at: u64,
    pub(super) record: Value,
}

/// The reading state, moved to a blocking thread for each read (reading,
/// parsing and joining are work the async threads, which serve traffic,
/// should not do) and back.
pub(super) struct Reading(Option<Reader>);

impl Reading {
    pub(super) fn new(audit: &Path, cursor: &Cursor) -> Self {
        Self(Some(Reader::new(audit, cursor)))
    }

    fn reader(&mut self) -> &mut Reader {
        self.0.as_mut().expect("put back after each read")
    }

    /// The last seq read.
    pub(super) fn read_through(&mut self) -> u64 {
        self.reader().read_through
    }

    /// The messages of up to `max` more records; none when the trail has
    /// no more yet.
    pub(super) async fn next(&mut self, max: usize) -> Result<Vec<Item>, ExportError> {
        let mut reader = self.0.take().expect("put back after each read");
        let (reader, items) = tokio::task::spawn_blocking(move || {
            let items = reader.read(max);
            (reader, items)
        })
        .await
        .map_err(|e| ExportError::Trail(std::io::Error::other(e)))?;
        self.0 = Some(reader);
        items
    }

    /// Where reading must start again, once everything through
    /// `delivered` is delivered.
    pub(super) fn resume(&mut self, delivered: u64) -> u64 {
        self.reader().resume_at(delivered, Instant::now())
    }
}

struct Reader {
    tail: Tail,
    joiner: Joiner,
    /// Requests waiting for their response: their seq and session, by id.
    open: HashMap<String, (u64, Option<String>)>,
    /// Sessions seen: their seq and when last used, by id.
    sessions: HashMap<String, (u64, Instant)>,
    read_through: u64,
    /// Messages through here were delivered before: not made again.
    skip_through: u64,
}

impl Reader {
    fn new(audit: &Path, cursor: &Cursor) -> Self {
        Self {
            tail: Tail::new(audit, cursor.resume),
            joiner: Joiner::default(),
            open: HashMap::new(),
            sessions: HashMap::new(),
            read_through: cursor.resume - 1,
            skip_through: cursor.delivered,
        }
    }

    /// The messages of up to `max` more records (blocking).
    fn read(&mut self, max: usize) -> Result<Vec<Item>, ExportError> {
        let mut out = Vec::new();
        for line in self.tail.read(max).map_err(ExportError::Trail)? {
            self.take(line, &mut out);
        }
        Ok(out)
    }

    fn take(&mut self, line: Line, out: &mut Vec<Item>) {
        self.read_through = line.seq;
        // A line that is not a sealed record is the chain's business
        // (`audit verify`), not the SIEM's.
        let record = match serde_json::from_str::<Value>(&line.text) {
            Ok(r) if r["seq"].as_u64() == Some(line.seq) => r,
            _ => return,
        };
        let at = line.seq;
        let skip = self.skip_through;
        let mut emit = |record: Value| {
            if at > skip {
                out.push(Item { at, record });
            }
        };
        let id = record["id"].as_str().unwrap_or_default().to_owned();
        let session = record["session"].as_str().map(str::to_owned);
        let now = Instant::now();
        match (record["kind"].as_str(), record["phase"].as_str()) {
            (Some("agent"), _) if record["event"] == "start" => {
                // A new run: the last one's connections are gone, and its
                // requests that no response followed end here.
                for j in std::mem::take(&mut self.joiner).finish() {
                    emit(j.record);
                }
                self.open.clear();
                self.sessions.clear();
            }
            (Some("session"), _) => {
                self.sessions.insert(id, (at, now));
            }
            (Some("http"), Some("request")) => {
                self.open.insert(id, (at, session.clone()));
            }
            (Some("http"), _) => {
                self.open.remove(&id);
            }
            _ => {}
        }
        if let Some(s) = session.and_then(|s| self.sessions.get_mut(&s)) {
            s.1 = now;
        }
        if let Some(j) = self.joiner.push(&line.text, record) {
            emit(j.record);
        }
    }

    fn resume_at(&mut self, delivered: u64, now: Instant) -> u64 {
        let needed: HashSet<&str> = self
            .open
            .values()
            .filter_map(|(_, s)| s.as_deref())
            .collect();
        self.sessions.retain(|id, (_, used)| {
            now.duration_since(*used) < SESSION_KEEP || needed.contains(id.as_str())
        });
        self.open
            .values()
            .map(|(seq, _)| *seq)
            .chain(self.sessions.values().map(|(seq, _)| *seq))
            .fold(delivered.min(self.read_through) + 1, u64::min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(seq: u64, rest: &str) -> Line {
        Line {
            seq,
            text: format!("{{\"seq\":{seq},{rest}}}"),
        }
    }

    fn reading(delivered: u64) -> Reader {
        Reader::new(
            Path::new("/nonexistent/audit.jsonl"),
            &Cursor {
                trail: "t".into(),
                delivered,
                resume: 1,
            },
        )
    }

    #[test]
    fn exchanges_join_and_reading_resumes_at_what_is_still_needed() {
        let mut r = reading(0);
        let mut out = Vec::new();
        r.take(line(1, r#""kind":"agent","event":"start""#), &mut out);
        r.take(
            line(2, r#""kind":"session","id":"s1","process":{"pid":7}"#),
            &mut out,
        );
        r.take(
            line(
                3,
                r#""kind":"http","phase":"request","id":"e1","session":"s1""#,
            ),
            &mut out,
        );
        assert_eq!(out.len(), 1, "the start record; the exchange is open");
        assert_eq!(
            r.resume_at(3, Instant::now()),
            2,
            "the open exchange's session"
        );
        r.take(line(4, r#""kind":"http","phase":"response","id":"e1","session":"s1","response":{"status":200}"#), &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].at, 4);
        assert_eq!(out[1].record["process"]["pid"], 7);
        assert_eq!(out[1].record["response"]["status"], 200);
        assert_eq!(
            r.resume_at(4, Instant::now()),
            2,
            "a session used lately is kept"
        );
        assert_eq!(
            r.resume_at(1, Instant::now()),
            2,
            "what is not delivered comes first"
        );
        assert_eq!(r.resume_at(4, Instant::now() + SESSION_KEEP), 5);
        r.take(line(5, "garbage"), &mut out);
        assert_eq!((out.len(), r.read_through), (2, 5));
    }

    #[test]
    fn a_new_run_ends_the_last_ones_open_requests_and_delivered_ones_are_not_made_again() {
        let mut r = reading(3);
        let mut out = Vec::new();
        r.take(
            line(2, r#""kind":"http","phase":"request","id":"e1""#),
            &mut out,
        );
        r.take(line(3, r#""kind":"agent","event":"stop""#), &mut out);
        assert!(out.is_empty(), "delivered before");
        r.take(line(4, r#""kind":"agent","event":"start""#), &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(
            (out[0].at, &out[0].record["phase"]),
            (4, &Value::from("request"))
        );
        assert_eq!(out[1].record["event"], "start");
        assert_eq!(
            r.resume_at(4, Instant::now()),
            5,
            "nothing is open any more"
        );
    }
}
