//! Records into agent sessions and model turns. A session is what
//! `process.agent` names (one run of the selected process and everything
//! it started, on one host); without one, a CI job (`ci`), else the
//! process itself. Within a session, a model call starts a turn: the calls
//! that follow it, until the next model call, are what the agent did with
//! its answer (the processes its tool calls started). The model call's own
//! HTTP exchange is the model record, shown once.

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::Value;

/// Record kinds the timeline shows: exchanges, model calls, connections
/// airlock did not decrypt or that refused its certificate.
pub(super) fn shown(r: &Value) -> bool {
    matches!(
        r["kind"].as_str(),
        Some("http" | "model" | "connection" | "tls_passthrough" | "tls_client_refused")
    )
}

/// What names a session.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    /// `process.agent`: one run of the selected process on a host.
    Agent {
        host: String,
        pid: u64,
        start: String,
    },
    /// No agent (the whole cgroup is captured): the CI job.
    Ci { host: String, job: String },
    /// Neither: the process alone.
    Process { host: String, pid: u64 },
}

impl Key {
    fn of(r: &Value) -> Self {
        let host = r["origin"]["host"].as_str().unwrap_or("").to_owned();
        let p = &r["process"];
        let agent = &p["agent"];
        if let (Some(pid), Some(start)) = (agent["pid"].as_u64(), agent["start"].as_str()) {
            return Self::Agent {
                host,
                pid,
                start: start.to_owned(),
            };
        }
        let ci = &r["ci"];
        if ci.is_object() {
            let part = |k: &str| ci[k].as_str().unwrap_or("").to_owned();
            let job = [part("provider"), part("run_id"), part("job")].join("/");
            return Self::Ci { host, job };
        }
        Self::Process {
            host,
            pid: p["pid"].as_u64().unwrap_or(0),
        }
    }
}

/// One model call and what followed it; `model` is `None` for what came
/// before the session's first model call (or a session with none).
#[derive(Debug, Default)]
pub(crate) struct Turn {
    pub model: Option<Value>,
    pub calls: Vec<Value>,
}

/// One agent session's entries, in the order they were recorded.
#[derive(Debug)]
pub(crate) struct Session {
    pub key: Key,
    /// The first record's `process` (the agent's `exe`, the user).
    pub process: Value,
    pub ci: Value,
    pub first: String,
    pub last: String,
    pub turns: Vec<Turn>,
    pub counts: Counts,
}

/// Decisions over a session's exchanges.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub allowed: usize,
    pub denied: usize,
    pub held: usize,
    pub model_calls: usize,
}

/// Sessions with the newest activity first.
#[derive(Debug, Default)]
pub(crate) struct Timeline {
    pub sessions: Vec<Session>,
    /// Older matching entries left out: the page shows the newest.
    pub cut: usize,
}

/// Keeps the newest `max` entries as they are read.
pub(super) struct Collect {
    max: usize,
    entries: VecDeque<Value>,
    cut: usize,
}

impl Collect {
    pub(super) fn new(max: usize) -> Self {
        Self {
            max,
            entries: VecDeque::new(),
            cut: 0,
        }
    }

    pub(super) fn push(&mut self, r: Value) {
        if self.entries.len() == self.max {
            self.entries.pop_front();
            self.cut += 1;
        }
        self.entries.push_back(r);
    }

    pub(super) fn finish(self) -> Timeline {
        // A model call's exchange is its model record.
        let model_exchanges: HashSet<String> = self
            .entries
            .iter()
            .filter(|r| r["kind"] == "model")
            .filter_map(|r| r["exchange"].as_str().map(str::to_owned))
            .collect();
        let mut order: Vec<Key> = Vec::new();
        let mut by_key: HashMap<Key, Session> = HashMap::new();
        for r in self.entries {
            if r["kind"] == "http"
                && r["id"]
                    .as_str()
                    .is_some_and(|id| model_exchanges.contains(id))
            {
                continue;
            }
            let key = Key::of(&r);
            let ts = r["ts"].as_str().unwrap_or("").to_owned();
            let session = by_key.entry(key.clone()).or_insert_with(|| {
                order.push(key.clone());
                Session {
                    key,
                    process: r["process"].clone(),
                    ci: r["ci"].clone(),
                    first: ts.clone(),
                    last: String::new(),
                    turns: Vec::new(),
                    counts: Counts::default(),
                }
            });
            session.last = ts;
            session.add(r);
        }
        let mut sessions: Vec<Session> = order
            .into_iter()
            .filter_map(|k| by_key.remove(&k))
            .collect();
        sessions.sort_by(|a, b| b.last.cmp(&a.last));
        Timeline {
            sessions,
            cut: self.cut,
        }
    }
}

impl Session {
    fn add(&mut self, r: Value) {
        if r["kind"] == "model" {
            self.counts.model_calls += 1;
            self.turns.push(Turn {
                model: Some(r),
                calls: Vec::new(),
            });
            return;
        }
        match r["decision"]["action"].as_str() {
            Some("deny") => self.counts.denied += 1,
            Some("approve") => self.counts.held += 1,
            Some("allow") => self.counts.allowed += 1,
            _ => {}
        }
        if self.turns.is_empty() {
            self.turns.push(Turn::default());
        }
        if let Some(turn) = self.turns.last_mut() {
            turn.calls.push(r);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn call(ts: &str, agent: Option<u64>, op: &str, action: &str) -> Value {
        let mut process = json!({"pid": 900, "comm": "az", "user": "dev"});
        if let Some(pid) = agent {
            process["agent"] =
                json!({"pid": pid, "start": "2026-12-06T18:00:00.000Z", "exe": "/usr/bin/node"});
        }
        json!({"kind": "http", "ts": ts, "id": format!("x{ts}"), "origin": {"host": "h1"},
               "process": process, "request": {"operation": {"name": op}},
               "decision": {"action": action}, "response": {"status": 200}})
    }

    fn model(ts: &str, exchange: &str) -> Value {
        json!({"kind": "model", "ts": ts, "exchange": exchange, "origin": {"host": "h1"},
               "process": {"pid": 800, "comm": "node",
                           "agent": {"pid": 800, "start": "2026-12-06T18:00:00.000Z"}},
               "output": {"tool_calls": [{"name": "bash", "arguments": "{\"command\":\"az group delete\"}"}]}})
    }

    fn timeline(records: Vec<Value>, max: usize) -> Timeline {
        let mut c = Collect::new(max);
        records.into_iter().for_each(|r| c.push(r));
        c.finish()
    }

    #[test]
    fn an_agents_calls_are_one_session_in_turns_after_each_model_call() {
        let mut model_exchange = call("t2", Some(800), "model.chat.completions", "allow");
        model_exchange["id"] = json!("m1");
        let t = timeline(
            vec![
                call("t1", Some(800), "github.user", "allow"),
                model_exchange,
                model("t3", "m1"),
                call(
                    "t4",
                    Some(800),
                    "Microsoft.Resources/resourceGroups/delete",
                    "approve",
                ),
                call("t5", None, "Microsoft.Storage/blob/read", "allow"),
                call("t6", Some(800), "Microsoft.KeyVault/secrets/read", "deny"),
            ],
            100,
        );
        assert_eq!(t.sessions.len(), 2, "{t:#?}");
        let s = &t.sessions[0];
        assert!(matches!(&s.key, Key::Agent { pid: 800, host, .. } if host == "h1"));
        assert_eq!((s.first.as_str(), s.last.as_str()), ("t1", "t6"));
        assert_eq!(
            s.counts,
            Counts {
                allowed: 1,
                denied: 1,
                held: 1,
                model_calls: 1
            },
            "the model call's exchange is its model record, counted once"
        );
        assert_eq!(s.turns.len(), 2);
        assert!(s.turns[0].model.is_none());
        assert_eq!(s.turns[0].calls.len(), 1);
        let turn = &s.turns[1];
        assert_eq!(turn.model.as_ref().unwrap()["exchange"], "m1");
        let ops: Vec<&str> = turn
            .calls
            .iter()
            .map(|c| c["request"]["operation"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            ops,
            [
                "Microsoft.Resources/resourceGroups/delete",
                "Microsoft.KeyVault/secrets/read"
            ]
        );
        assert!(matches!(t.sessions[1].key, Key::Process { pid: 900, .. }));
    }

    #[test]
    fn a_ci_job_without_an_agent_is_one_session_and_the_newest_are_kept() {
        let mut a = call("t1", None, "op.a", "allow");
        a["ci"] = json!({"provider": "github", "run_id": "42", "job": "build"});
        let mut b = call("t2", None, "op.b", "allow");
        b["ci"] = a["ci"].clone();
        b["process"]["pid"] = json!(901);
        let t = timeline(vec![call("t0", None, "op.old", "allow"), a, b], 2);
        assert_eq!(t.cut, 1);
        assert_eq!(t.sessions.len(), 1);
        assert!(matches!(&t.sessions[0].key, Key::Ci { job, .. } if job == "github/42/build"));
        assert_eq!(t.sessions[0].turns[0].calls.len(), 2);
    }

    #[test]
    fn only_exchanges_model_calls_and_connections_are_shown() {
        for kind in [
            "http",
            "model",
            "connection",
            "tls_passthrough",
            "tls_client_refused",
        ] {
            assert!(shown(&json!({"kind": kind})), "{kind}");
        }
        for kind in ["session", "agent", "approval"] {
            assert!(!shown(&json!({"kind": kind})), "{kind}");
        }
    }
}
