//! Reading the trail: its records streamed file by file, joined into
//! whole exchanges (`join`), filters for `airlock audit search`/`tail`,
//! and the compact one-line rendering a person scans.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::Value;

use crate::core::Glob;
use crate::host::HostPattern;

pub use super::join::{Joined, Joiner, merge};

/// Calls `each` with every complete record of `files`, in order: its line
/// (without the newline) and its JSON. Streamed, so a rotated file of any
/// size costs one line of memory. A last line still being appended (no
/// newline yet) is not a record yet; lines that are not JSON (a crash
/// fragment, an edit) are skipped: `audit verify` is what reports them.
pub fn each_record(
    files: &[PathBuf],
    each: impl FnMut(&str, Value) -> std::io::Result<()>,
) -> std::io::Result<()> {
    each_record_where(files, |_| true, each)
}

/// [`each_record`] for the lines `keep` accepts on their bytes, before
/// they are parsed: a reader that wants one kind of record out of large
/// files parses only the lines that may be one.
pub fn each_record_where(
    files: &[PathBuf],
    keep: impl Fn(&[u8]) -> bool,
    mut each: impl FnMut(&str, Value) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut line = Vec::with_capacity(8192);
    for file in files {
        let at = |e: std::io::Error| in_file(file, e);
        let mut reader = std::io::BufReader::new(std::fs::File::open(file).map_err(at)?);
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line).map_err(at)? == 0 {
                break;
            }
            let Some(complete) = line.strip_suffix(b"\n") else {
                break;
            };
            if !keep(complete) {
                continue;
            }
            // Valid JSON is valid UTF-8, so the text of a parsed line is at hand.
            if let (Ok(record), Ok(text)) = (
                serde_json::from_slice::<Value>(complete),
                std::str::from_utf8(complete),
            ) {
                each(text, record)?;
            }
        }
    }
    Ok(())
}

/// Calls `each` with every exchange (joined with its session and both its
/// records) and every other record of `files`, in order; exchanges whose
/// response record never came last.
pub fn each_joined(
    files: &[PathBuf],
    mut each: impl FnMut(Joined) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut joiner = Joiner::default();
    each_record(files, |line, record| match joiner.push(line, record) {
        Some(joined) => each(joined),
        None => Ok(()),
    })?;
    joiner.finish().into_iter().try_for_each(each)
}

/// The whole of `files` as [`each_joined`] reads it.
pub fn joined(files: &[PathBuf]) -> std::io::Result<Vec<Value>> {
    let mut all = Vec::new();
    each_joined(files, |j| {
        all.push(j.record);
        Ok(())
    })?;
    Ok(all)
}

fn in_file(file: &Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("reading {}: {e}", file.display()))
}

/// Conditions a record must all meet.
#[derive(Debug, Default)]
pub struct Filter {
    pub since: Option<SystemTime>,
    pub until: Option<SystemTime>,
    pub kind: Option<String>,
    pub comm: Option<String>,
    pub uid: Option<u32>,
    /// Host pattern (`*.blob.core.windows.net`, exact name).
    pub host: Option<HostPattern>,
    pub method: Option<String>,
    /// Substring of the request path (a subscription id, a container).
    pub path: Option<String>,
    pub status: Option<u16>,
    /// Who: matches the identity's upn, oid, app id, subject, SharedKey
    /// account or GitHub actor/repository (glob, any case).
    pub identity: Option<Glob>,
    /// Any of the token's groups (glob).
    pub group: Option<Glob>,
    /// Operation name glob (`Microsoft.Storage/*`, `k8s.pods.*`).
    pub operation: Option<Glob>,
    /// `allow`, `deny` or `approve`.
    pub decision: Option<String>,
}

impl Filter {
    pub fn matches(&self, r: &Value) -> bool {
        let str_is = |v: &Value, want: &Option<String>| {
            want.as_ref()
                .is_none_or(|w| v.as_str().is_some_and(|s| s.eq_ignore_ascii_case(w)))
        };
        let ts = r["ts"]
            .as_str()
            .and_then(|t| humantime::parse_rfc3339(t).ok());
        self.since.is_none_or(|s| ts.is_some_and(|t| t >= s))
            && self.until.is_none_or(|u| ts.is_some_and(|t| t <= u))
            && str_is(&r["kind"], &self.kind)
            && str_is(&r["process"]["comm"], &self.comm)
            && self
                .uid
                .is_none_or(|u| r["process"]["uid"].as_u64() == Some(u64::from(u)))
            && self
                .host
                .as_ref()
                .is_none_or(|h| host_of(r).is_some_and(|x| h.matches(x)))
            && str_is(&r["request"]["method"], &self.method)
            && self.path.as_ref().is_none_or(|p| {
                r["request"]["path"]
                    .as_str()
                    .is_some_and(|x| x.contains(p.as_str()))
            })
            && self
                .status
                .is_none_or(|s| r["response"]["status"].as_u64() == Some(u64::from(s)))
            && self.identity.as_ref().is_none_or(|g| {
                let id = &r["identity"];
                let gh = &id["github"];
                [
                    &id["upn"],
                    &id["oid"],
                    &id["app_id"],
                    &id["subject"],
                    &id["account"],
                    &gh["actor"],
                    &gh["repository"],
                ]
                .iter()
                .any(|v| v.as_str().is_some_and(|s| g.matches(s)))
            })
            && self.group.as_ref().is_none_or(|g| {
                r["identity"]["groups"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|v| v.as_str().is_some_and(|s| g.matches(s))))
            })
            && self.operation.as_ref().is_none_or(|g| {
                r["request"]["operation"]["name"]
                    .as_str()
                    .is_some_and(|s| g.matches(s))
            })
            && str_is(&r["decision"]["action"], &self.decision)
    }
}

/// Who a record's identity names, briefly: the user, else the app, the
/// GitHub actor, the storage account, or the credential kind.
fn who(r: &Value) -> String {
    let id = &r["identity"];
    let gh = &id["github"];
    let name = [
        &id["upn"],
        &gh["actor"],
        &id["app_id"],
        &id["account"],
        &id["kind"],
    ]
    .into_iter()
    .find_map(Value::as_str)
    .unwrap_or("-");
    let mark = match (id["verified"].as_bool(), id["error"].is_string()) {
        (_, true) => "!",
        (Some(false), _) if id["kind"] != "none" => "?",
        _ => "",
    };
    format!("{name}{mark}")
}

fn host_of(r: &Value) -> Option<&str> {
    r["request"]["host"].as_str().or(r["sni"].as_str())
}

/// The table header for [`row`].
/// IDENTITY ends in `?` when unverified, `!` when it failed validation.
/// USER is the local user (`process.user`), else the uid.
pub const HEADER: &str = "TIME                     KIND              PID     PROCESS          USER     IDENTITY                  DECISION  STATUS  OPERATION / REQUEST";

/// One record as a table row: time, kind, process, status, what was asked.
pub fn row(r: &Value) -> String {
    let ts = r["ts"].as_str().unwrap_or("");
    let time = ts.get(..23).unwrap_or(ts);
    let p = &r["process"];
    let status = r["response"]["status"]
        .as_u64()
        .map_or("-".to_owned(), |s| s.to_string());
    let what = match r["kind"].as_str() {
        Some("http") => match r["request"]["operation"]["name"].as_str() {
            Some(op) => format!("{op}  {}", row_request(r)),
            None => row_request(r),
        },
        Some("agent") => format!("airlock {}", r["event"].as_str().unwrap_or("")),
        Some("model") => model_row(r),
        _ => format!(
            "{} {}:{}",
            r["sni"].as_str().unwrap_or(""),
            r["dst"]["ip"].as_str().unwrap_or(""),
            r["dst"]["port"]
        ),
    };
    let kind = match (r["kind"].as_str(), r["phase"].as_str()) {
        (Some("http"), Some("request")) => "http (request)".to_owned(),
        (k, _) => k.unwrap_or("?").to_owned(),
    };
    let error = r["error"]
        .as_str()
        .map(|e| format!("  [{e}]"))
        .unwrap_or_default();
    format!(
        "{time:<24} {kind:<17} {:<7} {:<16} {:<8} {:<25} {:<9} {status:<7} {what}{error}",
        p["pid"].as_u64().map_or("-".into(), |v| v.to_string()),
        p["comm"].as_str().unwrap_or("-"),
        p["user"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| p["uid"].as_u64().map(|v| v.to_string()))
            .unwrap_or_else(|| "-".into()),
        if r["kind"] == "http" || r["kind"] == "model" {
            who(r)
        } else {
            "-".to_owned()
        },
        r["decision"]["action"].as_str().unwrap_or("-"),
    )
}

/// A model call as a line of conversation: model, the last thing the user
/// said (first line), how much the model emitted, tools it called.
fn model_row(r: &Value) -> String {
    let said = r["prompt"]["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .and_then(|c| c.lines().next())
        .unwrap_or("");
    let said = crate::core::truncate(said, 60);
    let tools: Vec<&str> = r["output"]["tool_calls"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    let tools = if tools.is_empty() {
        String::new()
    } else {
        format!(" tools: {}", tools.join(","))
    };
    let masked = match r["masked"]["count"].as_u64() {
        Some(n) if n > 0 => format!(" [{n} secret(s) masked out of the prompt]"),
        _ => String::new(),
    };
    format!(
        "{} {:?} -> {} B emitted{tools}{masked}",
        r["model"].as_str().unwrap_or("?"),
        said,
        r["output"]["bytes"].as_u64().unwrap_or(0),
    )
}

/// `METHOD https://host/path?query` of an `http` record.
pub fn row_request(r: &Value) -> String {
    let q = &r["request"];
    let query = q["query"]
        .as_str()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    format!(
        "{} https://{}{}{query}",
        q["method"].as_str().unwrap_or("?"),
        q["host"].as_str().unwrap_or("?"),
        q["path"].as_str().unwrap_or("")
    )
}

/// `--since`/`--until`: an RFC 3339 time, or a duration ago (`90m`, `24h`).
pub fn parse_time(s: &str) -> Result<SystemTime, String> {
    humantime::parse_rfc3339_weak(s)
        .or_else(|_| humantime::parse_duration(s).map(|d| SystemTime::now() - d))
        .map_err(|_| format!("{s:?} is neither an RFC 3339 time nor a duration such as 24h"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rec() -> Value {
        json!({
            "ts": "2026-11-28T10:00:00.123456789Z", "kind": "http", "phase": "response",
            "process": { "pid": 42, "comm": "az", "uid": 1001 },
            "request": { "method": "DELETE", "host": "management.azure.com",
                         "path": "/subscriptions/0b1f/resourceGroups/rg-app", "query": "api-version=2021-04-01" },
            "response": { "status": 202 },
            "identity": { "kind": "jwt", "verified": true, "upn": "dev@contoso.com", "groups": ["g-ops"],
                          "github": { "repository": "org/infra", "actor": "octocat" } },
            "decision": { "action": "approve", "rule": "resource-group-delete", "reason": "r" }
        })
    }

    #[test]
    fn records_stream_across_files_and_skip_what_is_not_a_whole_record() {
        let dir = crate::scratch_dir("query-stream");
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("audit.jsonl.1"), dir.join("audit.jsonl"));
        std::fs::write(&a, "{\"seq\":1}\nnot json\n{\"seq\":2,\"s\":\"é\"}\n").unwrap();
        // The live file ends inside a record still being written, cut in
        // the middle of a two-byte character.
        let mut live = b"{\"seq\":3}\n{\"seq\":4,\"s\":\"".to_vec();
        live.push("é".as_bytes()[0]);
        std::fs::write(&b, live).unwrap();
        let mut seen = Vec::new();
        each_record(&[a, b], |line, r| {
            seen.push((line.to_owned(), r["seq"].as_u64().unwrap()));
            Ok(())
        })
        .unwrap();
        let seqs: Vec<u64> = seen.iter().map(|s| s.1).collect();
        assert_eq!(seqs, [1, 2, 3]);
        assert_eq!(seen[1].0, "{\"seq\":2,\"s\":\"é\"}");
        let e = each_record(&[dir.join("gone")], |_, _| Ok(())).unwrap_err();
        assert!(e.to_string().contains("gone"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn filters_combine() {
        let r = rec();
        let mut f = Filter {
            comm: Some("az".into()),
            path: Some("/subscriptions/0b1f".into()),
            host: Some(HostPattern::parse("*.azure.com").unwrap()),
            since: Some(parse_time("2026-11-28T09:00:00Z").unwrap()),
            ..Filter::default()
        };
        assert!(f.matches(&r));
        f.status = Some(200);
        assert!(!f.matches(&r));
        f.status = None;
        f.until = Some(parse_time("2026-11-28T09:30:00Z").unwrap());
        assert!(!f.matches(&r));
        assert!(parse_time("24h").is_ok() && parse_time("yesterday-ish").is_err());
        f.until = None;
        f.identity = Some(Glob::new("DEV@*", true));
        f.group = Some(Glob::new("g-ops", true));
        f.operation = Some(Glob::new("http.*", true));
        assert!(!f.matches(&r), "no operation recorded");
        f.operation = None;
        f.decision = Some("approve".into());
        assert!(f.matches(&r));
        f.identity = Some(Glob::new("org/infra", true));
        assert!(f.matches(&r), "the GitHub repository names who too");
        f.group = Some(Glob::new("g-dev", true));
        assert!(!f.matches(&r));
    }

    #[test]
    fn model_calls_read_like_a_conversation() {
        let r = json!({
            "ts": "2026-11-28T10:00:00.123456789Z", "kind": "model",
            "process": { "pid": 7, "comm": "node", "uid": 1000, "user": "dev" },
            "identity": { "kind": "bearer", "verified": false, "github": { "actor": "octocat" } },
            "model": "gpt-4o",
            "prompt": { "messages": [ {"role": "system", "content": "be brief"}, {"role": "user", "content": "write a bicep file\nfor storage"} ] },
            "output": { "bytes": 812, "tool_calls": [ {"name": "create_file"} ] }
        });
        let row = row(&r);
        assert!(
            row.contains("gpt-4o \"write a bicep file\" -> 812 B emitted tools: create_file"),
            "{row}"
        );
        // Who prompted: the local user and the GitHub account.
        assert!(row.contains(" dev      octocat? "), "{row}");
    }

    #[test]
    fn rows_read_like_a_log() {
        let row = row(&rec());
        assert!(row.starts_with("2026-11-28T10:00:00.123  http "), "{row}");
        assert!(row.contains(" az ") && row.contains(" 202 "), "{row}");
        assert!(
            row.contains(" dev@contoso.com ") && row.contains(" approve "),
            "{row}"
        );
        assert!(row.ends_with("DELETE https://management.azure.com/subscriptions/0b1f/resourceGroups/rg-app?api-version=2021-04-01"), "{row}");
    }
}
