//! `airlock audit summary`: what a CI job or a session did, from its part
//! of the trail — operations by how they ended, what was held and who
//! decided, what was blocked and which command tried it, secrets masked —
//! as Markdown for `$GITHUB_STEP_SUMMARY`, or JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

/// Error codes of the answers airlock gives instead of forwarding (or
/// instead of relaying a response): the `code` of the JSON error body, and
/// the start of the record's `error`. A policy denial is told apart.
const REFUSED: &[&str] = &[
    "MisdirectedRequest",
    "AmbiguousHost",
    "NonCanonicalPath",
    "AmbiguousCredential",
    "BadRequestBody",
    "UnmaskableResponse",
    "AuditUnavailable",
    "TooManyHeld",
];

/// Most blocked or held requests listed one by one; the rest are counted.
const MAX_LISTED: usize = 200;
/// A command line is cut to this many characters in a listing.
const MAX_COMMAND: usize = 160;

/// How an exchange ended, as the summary counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    /// Forwarded (whatever the upstream answered).
    Allowed,
    /// Held, then approved (forwarded).
    Approved,
    /// Held, then denied or expired (not forwarded).
    HeldRefused,
    /// Refused by a policy rule.
    Denied,
    /// Refused before it was judged, or its answer refused.
    Refused,
    /// The upstream could not be reached or failed.
    Failed,
}

/// Counts of one operation, by fate.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct OperationCount {
    pub operation: String,
    pub allowed: u64,
    pub approved: u64,
    /// Held, then denied or expired.
    pub held_refused: u64,
    pub denied: u64,
    pub refused: u64,
    pub failed: u64,
}

/// A request or connection that did not go through, and who tried it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Blocked {
    pub ts: String,
    /// The operation, else the request, else the connection's server.
    pub what: String,
    /// The rule and its reason, the error, or how the hold ended.
    pub why: String,
    pub command: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// A request held for approval, and how it ended.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Held {
    pub ts: String,
    pub operation: String,
    pub command: String,
    /// `approved`, `denied`, `expired`, `audit_unavailable`.
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The whole summary; `--format json` prints it as is.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    /// The first and last record summarised.
    pub from: Option<String>,
    pub to: Option<String>,
    /// HTTP exchanges (each counted once, at its end).
    pub requests: u64,
    pub operations: Vec<OperationCount>,
    pub blocked: Vec<Blocked>,
    /// Blocked beyond those listed.
    pub blocked_unlisted: u64,
    pub held: Vec<Held>,
    pub held_unlisted: u64,
    /// Secrets masked, by detector: out of responses before the agent got
    /// them, out of model prompts before they left, and found in requests.
    pub masked: BTreeMap<String, u64>,
    /// Connections whose client refused airlock's certificate.
    pub tls_client_refused: u64,
    /// Model calls recorded.
    pub model_calls: u64,
}

impl Summary {
    /// Adds one record (those outside the window are the caller's to skip).
    pub fn add(&mut self, r: &Value) {
        if let Some(ts) = r["ts"].as_str() {
            self.from.get_or_insert_with(|| ts.to_owned());
            self.to = Some(ts.to_owned());
        }
        match (r["kind"].as_str(), r["phase"].as_str()) {
            (Some("http"), Some("response")) => self.exchange(r),
            (Some("connection" | "tls_passthrough"), _) => self.connection(r),
            (Some("tls_client_refused"), _) => self.tls_client_refused += 1,
            (Some("model"), _) => {
                self.model_calls += 1;
                self.count_masked(&r["masked"]);
            }
            _ => {}
        }
    }

    fn exchange(&mut self, r: &Value) {
        self.requests += 1;
        self.count_masked(&r["response"]["masked"]);
        self.count_masked(&r["request"]["masked"]);
        let fate = fate(r);
        let operation = r["request"]["operation"]["name"]
            .as_str()
            .unwrap_or("(not named: refused before it was judged)")
            .to_owned();
        let count = match self
            .operations
            .iter_mut()
            .find(|c| c.operation == operation)
        {
            Some(c) => c,
            None => {
                self.operations.push(OperationCount {
                    operation: operation.clone(),
                    ..OperationCount::default()
                });
                self.operations.last_mut().expect("just pushed")
            }
        };
        *match fate {
            Fate::Allowed => &mut count.allowed,
            Fate::Approved => &mut count.approved,
            Fate::HeldRefused => &mut count.held_refused,
            Fate::Denied => &mut count.denied,
            Fate::Refused => &mut count.refused,
            Fate::Failed => &mut count.failed,
        } += 1;
        let approval = &r["approval"];
        if let Some(outcome) = approval["outcome"].as_str() {
            if self.held.len() < MAX_LISTED {
                self.held.push(Held {
                    ts: ts(r),
                    operation: operation.clone(),
                    command: command(r),
                    outcome: outcome.to_owned(),
                    by: approval["by"]["user"]
                        .as_str()
                        .map(str::to_owned)
                        .or_else(|| approval["by"]["uid"].as_u64().map(|u| format!("uid {u}"))),
                    reason: approval["reason"].as_str().map(str::to_owned),
                });
            } else {
                self.held_unlisted += 1;
            }
        }
        if matches!(fate, Fate::HeldRefused | Fate::Denied | Fate::Refused) {
            let what = match r["request"]["operation"]["name"].as_str() {
                Some(op) => op.to_owned(),
                None => super::query::row_request(r),
            };
            let why = match fate {
                Fate::HeldRefused => format!(
                    "held ({}), {}",
                    r["decision"]["rule"].as_str().unwrap_or("?"),
                    approval["outcome"].as_str().unwrap_or("?")
                ),
                Fate::Denied => format!(
                    "rule {}: {}",
                    r["decision"]["rule"].as_str().unwrap_or("(default)"),
                    r["decision"]["reason"].as_str().unwrap_or("")
                ),
                _ => r["error"].as_str().unwrap_or("").to_owned(),
            };
            self.block(r, what, why);
        }
    }

    /// A connection refused (policy, a name that does not resolve, not
    /// TLS): listed as blocked. One that only ended with an error is not.
    fn connection(&mut self, r: &Value) {
        let denied = r["decision"]["action"].as_str() == Some("deny");
        let refused = r["bytes_out"].as_u64() == Some(0)
            && r["bytes_in"].as_u64() == Some(0)
            && r["error"].is_string();
        if !(denied || refused) {
            return;
        }
        let what = match r["sni"].as_str() {
            Some(sni) => format!("TLS to {sni}"),
            None => format!(
                "TCP to {}:{}",
                r["dst"]["ip"].as_str().unwrap_or("?"),
                r["dst"]["port"]
            ),
        };
        let why = r["error"]
            .as_str()
            .or(r["decision"]["reason"].as_str())
            .unwrap_or("")
            .to_owned();
        self.block(r, what, why);
    }

    fn block(&mut self, r: &Value, what: String, why: String) {
        if self.blocked.len() >= MAX_LISTED {
            self.blocked_unlisted += 1;
            return;
        }
        let p = &r["process"];
        self.blocked.push(Blocked {
            ts: ts(r),
            what,
            why,
            command: command(r),
            pid: p["pid"].as_u64(),
            user: p["user"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| p["uid"].as_u64().map(|u| u.to_string())),
        });
    }

    fn count_masked(&mut self, masked: &Value) {
        if let Some(detectors) = masked["detectors"].as_object() {
            for (name, n) in detectors {
                *self.masked.entry(name.clone()).or_default() += n.as_u64().unwrap_or(0);
            }
        }
    }

    /// Markdown: a heading, one line of totals, then a table per part
    /// (parts with nothing to say are left out).
    pub fn markdown(&self) -> String {
        let mut out = String::from("## airlock: what the agent did\n\n");
        let blocked = self.blocked.len() as u64 + self.blocked_unlisted;
        let held = self.held.len() as u64 + self.held_unlisted;
        let masked: u64 = self.masked.values().sum();
        let _ = writeln!(
            out,
            "{} request(s) · **{blocked} blocked** · {held} held for approval · {masked} secret(s) masked · {} model call(s){}\n",
            self.requests,
            self.model_calls,
            match (&self.from, &self.to) {
                (Some(f), Some(t)) => format!(" · {f} → {t}"),
                _ => " · the trail has nothing in this window".to_owned(),
            }
        );
        if !self.blocked.is_empty() {
            out.push_str(
                "### Blocked\n\n| time | command | user | what | why |\n|---|---|---|---|---|\n",
            );
            for b in &self.blocked {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} |",
                    cell(&b.ts),
                    code(&b.command, b.pid),
                    cell(b.user.as_deref().unwrap_or("-")),
                    cell(&b.what),
                    cell(&b.why)
                );
            }
            unlisted(&mut out, self.blocked_unlisted);
        }
        if !self.held.is_empty() {
            out.push_str("### Held for approval\n\n| time | command | operation | outcome | by | reason |\n|---|---|---|---|---|---|\n");
            for h in &self.held {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} |",
                    cell(&h.ts),
                    code(&h.command, None),
                    cell(&h.operation),
                    cell(&h.outcome),
                    cell(h.by.as_deref().unwrap_or("-")),
                    cell(h.reason.as_deref().unwrap_or("-"))
                );
            }
            unlisted(&mut out, self.held_unlisted);
        }
        if !self.operations.is_empty() {
            out.push_str("### Operations\n\n| operation | allowed | approved | held, refused | denied | refused | failed |\n|---|---:|---:|---:|---:|---:|---:|\n");
            let mut ops: Vec<&OperationCount> = self.operations.iter().collect();
            ops.sort_by(|a, b| a.operation.cmp(&b.operation));
            for c in ops {
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {} | {} | {} | {} | {} |",
                    cell(&c.operation).replace('`', "'"),
                    c.allowed,
                    c.approved,
                    c.held_refused,
                    c.denied,
                    c.refused,
                    c.failed
                );
            }
            out.push('\n');
        }
        if !self.masked.is_empty() {
            out.push_str("### Secrets masked\n\n| detector | count |\n|---|---:|\n");
            for (name, n) in &self.masked {
                let _ = writeln!(out, "| {} | {n} |", cell(name));
            }
            out.push('\n');
        }
        if self.tls_client_refused > 0 {
            let _ = writeln!(
                out,
                "{} connection(s) refused airlock's certificate: run `airlock ca env` and add its lines to the agent's environment.\n",
                self.tls_client_refused
            );
        }
        out
    }
}

/// How an `http` response record's exchange ended.
fn fate(r: &Value) -> Fate {
    let error_code = r["error"]
        .as_str()
        .map(|e| e.split(':').next().unwrap_or(""));
    match r["approval"]["outcome"].as_str() {
        Some("approved") => return Fate::Approved,
        // Never held: the queue was full, so it was refused at once.
        Some("too_many_held") => return Fate::Refused,
        Some(_) => return Fate::HeldRefused,
        None => {}
    }
    match error_code {
        Some("PolicyDenied") => Fate::Denied,
        Some(c) if REFUSED.contains(&c) => Fate::Refused,
        Some(c) if c.starts_with("Upstream") => Fate::Failed,
        _ if r["decision"]["action"] == "deny" => Fate::Denied,
        _ => Fate::Allowed,
    }
}

fn ts(r: &Value) -> String {
    r["ts"].as_str().unwrap_or("").to_owned()
}

/// The command line that made the request (as recorded: credentials
/// redacted), else the process name.
fn command(r: &Value) -> String {
    let p = &r["process"];
    let line = p["cmdline"]
        .as_str()
        .filter(|c| !c.is_empty())
        .or(p["comm"].as_str())
        .unwrap_or("?");
    crate::core::truncate(line, MAX_COMMAND).to_owned()
}

/// Text safe in a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

/// A command as inline code (backticks inside become quotes), with its pid.
fn code(command: &str, pid: Option<u64>) -> String {
    let pid = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
    format!("`{}`{pid}", cell(command).replace('`', "'"))
}

fn unlisted(out: &mut String, n: u64) {
    if n > 0 {
        let _ = writeln!(out, "\n… and {n} more (`airlock audit search` lists them).");
    }
    out.push('\n');
}

#[cfg(test)]
mod tests;
