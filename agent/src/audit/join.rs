//! Readers join what the trail says once: an intercepted connection's
//! `session` record (process, src, dst, proxy, tls), an exchange's
//! `request` record and its `response` record (only what is new) merge
//! back into one object per exchange — the shape the two records of an
//! exchange had together before the trail went lean, so `audit export`,
//! `tail`, `search` and `summary` read whole exchanges. Other records pass
//! through as they are.

use std::collections::HashMap;
use std::num::NonZeroUsize;

use serde_json::Value;

/// Sessions remembered for the exchanges that name them, most recently
/// used kept: a session is a connection, and a trail holds millions. One
/// evicted and named again (a connection idle past this many others) joins
/// without its context, and says so (`session_missing`).
const SESSIONS: usize = 100_000;

/// One joined item: an exchange or another record, with the raw lines it
/// is made of (a session line comes with every exchange naming it; a
/// printer of raw records prints each once).
#[derive(Debug)]
pub struct Joined {
    pub record: Value,
    /// `(session id, its line)` for an exchange whose session is known.
    pub session: Option<(String, std::sync::Arc<str>)>,
    /// Its own lines: the request record's and the response record's, or
    /// the record's.
    pub lines: Vec<String>,
}

/// Joins records fed in trail order.
#[derive(Debug)]
pub struct Joiner {
    sessions: lru::LruCache<String, (std::sync::Arc<str>, Value)>,
    /// Request records whose response record has not come yet, by id,
    /// with when each came (for [`Joiner::finish`]'s order).
    pending: HashMap<String, (u64, Value, String)>,
    /// Request records seen.
    arrived: u64,
}

impl Default for Joiner {
    fn default() -> Self {
        Self {
            sessions: lru::LruCache::new(NonZeroUsize::new(SESSIONS).expect("non-zero")),
            pending: HashMap::new(),
            arrived: 0,
        }
    }
}

impl Joiner {
    /// Feeds one record (`line` is its text); returns what it completes.
    pub fn push(&mut self, line: &str, record: Value) -> Option<Joined> {
        let id = record["id"].as_str().unwrap_or_default().to_owned();
        match (record["kind"].as_str(), record["phase"].as_str()) {
            (Some("session"), _) => {
                let mut context = record;
                if let Some(o) = context.as_object_mut() {
                    // What an exchange takes from its session: the context,
                    // not the session record's own chain fields.
                    for own in ["kind", "id", "seq", "ts", "prev", "hash"] {
                        o.remove(own);
                    }
                }
                self.sessions.put(id, (line.into(), context));
                None
            }
            (Some("http"), Some("request")) => {
                self.arrived += 1;
                self.pending
                    .insert(id, (self.arrived, record, line.to_owned()));
                None
            }
            (Some("http"), _) => {
                let mut lines = Vec::with_capacity(2);
                let mut joined = match self.pending.remove(&id) {
                    Some((_, request, request_line)) => {
                        lines.push(request_line);
                        let mut joined = request;
                        merge(&mut joined, record);
                        joined
                    }
                    None => record,
                };
                lines.push(line.to_owned());
                let session = self.with_session(&mut joined);
                Some(Joined {
                    record: joined,
                    session,
                    lines,
                })
            }
            _ => Some(Joined {
                record,
                session: None,
                lines: vec![line.to_owned()],
            }),
        }
    }

    /// Request records no response record followed (airlock stopped, or
    /// the exchange is still open), in the order they came, joined with
    /// their sessions.
    pub fn finish(mut self) -> Vec<Joined> {
        let mut left: Vec<_> = std::mem::take(&mut self.pending).into_values().collect();
        left.sort_unstable_by_key(|(arrived, ..)| *arrived);
        left.into_iter()
            .map(|(_, mut record, line)| {
                let session = self.with_session(&mut record);
                Joined {
                    record,
                    session,
                    lines: vec![line],
                }
            })
            .collect()
    }

    /// Whether the session `id` is remembered.
    pub fn knows_session(&self, id: &str) -> bool {
        self.sessions.contains(id)
    }

    /// The request record `id` that is waiting for its response, joined
    /// with its session: the exchange as far as it has come (a reader
    /// that keeps exchanges as they happen writes it before the answer).
    pub fn so_far(&mut self, id: &str) -> Option<Value> {
        let mut record = self.pending.get(id)?.1.clone();
        self.with_session(&mut record);
        Some(record)
    }

    /// Puts the context of the session `record` names into it (the
    /// exchange's own fields win); says so when the session is unknown.
    fn with_session(&mut self, record: &mut Value) -> Option<(String, std::sync::Arc<str>)> {
        let id = record["session"].as_str()?.to_owned();
        let Some((line, context)) = self.sessions.get(&id) else {
            record["session_missing"] = Value::Bool(true);
            return None;
        };
        // The exchange's own fields first (and they win), then its context.
        if let (Some(own), Value::Object(context)) = (record.as_object_mut(), context) {
            for (k, v) in context {
                if !own.contains_key(k) {
                    own.insert(k.clone(), v.clone());
                }
            }
        }
        Some((id, line.clone()))
    }
}

/// Merges `from` into `into`: objects field by field, recursively (a
/// response record's `request.body` joins its request record's
/// `request`); anything else is replaced.
pub fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        a.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn push(j: &mut Joiner, v: Value) -> Option<Joined> {
        j.push(&v.to_string(), v)
    }

    #[test]
    fn an_exchange_joins_its_session_request_and_response() {
        let mut j = Joiner::default();
        let session = json!({"kind": "session", "id": "s1", "seq": 1, "process": {"pid": 7},
            "src": {"ip": "127.0.0.1", "port": 4000}, "dst": {"ip": "10.0.0.1", "port": 443},
            "tls": {"sni": "management.azure.com", "alpn": "h2"}});
        assert!(push(&mut j, session).is_none());
        let request = json!({"kind": "http", "phase": "request", "id": "e1", "seq": 2,
            "session": "s1", "identity": {"upn": "dev@contoso.example"},
            "request": {"method": "GET", "host": "management.azure.com", "path": "/x",
                        "headers": {"accept": "*/*"}},
            "decision": {"action": "allow", "reason": "r"}});
        assert!(push(&mut j, request).is_none());
        let agent = push(
            &mut j,
            json!({"kind": "agent", "event": "policy_reload", "seq": 3}),
        )
        .expect("other records pass through");
        assert_eq!(agent.record["event"], "policy_reload");
        let response = json!({"kind": "http", "phase": "response", "id": "e1", "seq": 4,
            "session": "s1", "request": {"body": {"bytes": 0}},
            "response": {"status": 200, "bytes": 10}, "duration_ms": 3});
        let joined = push(&mut j, response).expect("the response completes it");
        let r = &joined.record;
        assert_eq!(r["phase"], "response");
        assert_eq!(r["seq"], 4, "the response record's own fields win");
        assert_eq!(r["process"]["pid"], 7);
        assert_eq!(r["dst"]["port"], 443);
        assert_eq!(r["tls"]["alpn"], "h2");
        assert_eq!(r["identity"]["upn"], "dev@contoso.example");
        assert_eq!(r["request"]["method"], "GET");
        assert_eq!(r["request"]["headers"]["accept"], "*/*");
        assert_eq!(r["request"]["body"]["bytes"], 0);
        assert_eq!(r["response"]["status"], 200);
        assert_eq!(r["decision"]["action"], "allow");
        assert!(r.get("session_missing").is_none());
        assert_eq!(joined.lines.len(), 2);
        assert_eq!(joined.session.as_ref().map(|s| s.0.as_str()), Some("s1"));
        assert!(j.finish().is_empty());
    }

    #[test]
    fn a_request_never_answered_and_an_unknown_session_are_said() {
        let mut j = Joiner::default();
        for id in ["e9", "e1", "e5"] {
            push(
                &mut j,
                json!({"kind": "http", "phase": "request", "id": id,
                "session": "gone", "request": {"method": "DELETE"}}),
            );
        }
        let left = j.finish();
        let ids: Vec<&Value> = left.iter().map(|l| &l.record["id"]).collect();
        assert_eq!(ids, ["e9", "e1", "e5"], "in the order they came");
        assert_eq!(left[0].record["phase"], "request");
        assert_eq!(left[0].record["session_missing"], true);
    }

    #[test]
    fn records_from_before_sessions_join_as_they_are() {
        let mut j = Joiner::default();
        push(
            &mut j,
            json!({"kind": "http", "phase": "request", "id": "e1",
            "process": {"pid": 1}, "request": {"method": "GET"}}),
        );
        let joined = push(
            &mut j,
            json!({"kind": "http", "phase": "response", "id": "e1",
            "process": {"pid": 1}, "request": {"method": "GET"}, "response": {"status": 204}}),
        )
        .unwrap();
        assert_eq!(joined.record["process"]["pid"], 1);
        assert_eq!(joined.record["response"]["status"], 204);
        assert!(joined.record.get("session_missing").is_none());
    }
}
