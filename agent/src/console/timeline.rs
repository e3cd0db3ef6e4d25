//! The trail as a timeline (`GET /timeline`): what each agent session
//! did, read from the local trail with the permissions of the user who
//! started the console (as `airlock audit export` reads it: root, or a
//! member of `audit.group`), or in fleet mode every host's from the
//! fleet's database, for approvers. Owns the page (`serve`), its query
//! (`Query`: the filters), grouping records into sessions and model turns
//! (`group`) and their rendering (`render`). Nothing here writes or
//! decides.

mod group;
mod render;

use std::path::Path;
use std::time::{Duration, SystemTime};

use http::{Response, StatusCode};

use super::reply::{Body, notice, respond};
use super::server::Shared;
use super::session::Session;
use super::source::Source;
use crate::audit::query::{self, Filter};
use crate::core::Glob;
use crate::host::HostPattern;

pub(super) use group::Timeline;
pub(super) use render::page;

/// Why there is no timeline to show.
#[derive(Debug, thiserror::Error)]
pub(super) enum TimelineError {
    /// A filter the page sent cannot be read.
    #[error("{0}")]
    Filter(String),
    /// The trail cannot be read by the console's user (not root, not in
    /// `audit.group`), or not at all.
    #[error("cannot read the trail: {0}")]
    Read(#[source] std::io::Error),
    /// Nothing at `audit.path`: the console was given another
    /// configuration than the daemon's, or nothing was recorded yet.
    #[error(
        "there is no trail at {0} (audit.path): start the console with the daemon's configuration"
    )]
    Missing(std::path::PathBuf),
    /// The fleet's database (fleet mode) could not be read: down, or the
    /// console's role is not a reader.
    #[error("cannot read the fleet's trail: {0}")]
    Fleet(#[source] crate::fleet::FleetError),
}

impl TimelineError {
    /// The page's status: what the viewer asked for is wrong (400), not
    /// theirs to read (403), not there (404), or a failure (500, 502).
    pub(super) fn status(&self) -> http::StatusCode {
        match self {
            Self::Filter(_) => http::StatusCode::BAD_REQUEST,
            Self::Read(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                http::StatusCode::FORBIDDEN
            }
            Self::Read(_) => http::StatusCode::INTERNAL_SERVER_ERROR,
            Self::Missing(_) => http::StatusCode::NOT_FOUND,
            Self::Fleet(_) => http::StatusCode::BAD_GATEWAY,
        }
    }
}

/// What is shown when the page names no `since`: the last day.
const DEFAULT_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// Most entries a page shows: the newest that match.
const MAX_ENTRIES: usize = 2000;
/// A file last written this long before the window's start is read for
/// its session records only: an exchange that began in it and ended in
/// the window (longer than this, across a rotation) is shown without its
/// request record.
const OLD_MARGIN: Duration = Duration::from_secs(3600);
/// What only a session record's line holds (the trail is compact JSON).
const SESSION_LINE: &[u8] = b"\"kind\":\"session\"";

/// The timeline's filters, as the page's form sends them (every field
/// optional; empty is absent).
#[derive(Debug, Default)]
pub(super) struct Query {
    /// The machine (`origin.host`).
    pub host: Option<String>,
    /// The local user (`process.user`) or uid.
    pub user: Option<String>,
    pub identity: Option<String>,
    pub operation: Option<String>,
    /// `allow`, `deny` or `approve`.
    pub decision: Option<String>,
    /// The target host (`request.host`, a pattern).
    pub target: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
}

impl Query {
    /// From the page's query string; unknown keys are ignored.
    pub(super) fn parse(pairs: Vec<(String, String)>) -> Self {
        let mut q = Self::default();
        for (k, v) in pairs {
            let v = Some(v.trim().to_owned()).filter(|v| !v.is_empty());
            match k.as_str() {
                "host" => q.host = v,
                "user" => q.user = v,
                "identity" => q.identity = v,
                "operation" => q.operation = v,
                "decision" => q.decision = v,
                "target" => q.target = v,
                "since" => q.since = v,
                "until" => q.until = v,
                _ => {}
            }
        }
        q
    }

    /// The trail filter it asks for, or what is wrong with it.
    fn filter(&self) -> Result<Filter, String> {
        let time = |s: &Option<String>| s.as_deref().map(query::parse_time).transpose();
        let decision = match self.decision.as_deref() {
            None => None,
            Some(d @ ("allow" | "deny" | "approve")) => Some(d.to_owned()),
            Some(other) => return Err(format!("decision {other:?}: allow, deny or approve")),
        };
        Ok(Filter {
            since: Some(time(&self.since)?.unwrap_or_else(|| SystemTime::now() - DEFAULT_WINDOW)),
            until: time(&self.until)?,
            host: self
                .target
                .as_deref()
                .map(HostPattern::parse)
                .transpose()
                .map_err(|e| format!("target {e}"))?,
            identity: self.identity.as_deref().map(|g| Glob::new(g, true)),
            operation: self.operation.as_deref().map(|g| Glob::new(g, true)),
            decision,
            ..Filter::default()
        })
    }

    /// What the trail filter cannot say: the machine and the local user.
    fn also(&self, r: &serde_json::Value) -> bool {
        self.host
            .as_deref()
            .is_none_or(|h| r["origin"]["host"].as_str() == Some(h))
            && self.user.as_deref().is_none_or(|u| {
                let p = &r["process"];
                p["user"].as_str() == Some(u)
                    || p["uid"].as_u64().is_some_and(|uid| uid.to_string() == u)
            })
    }
}

/// `GET /timeline?…`: the trail grouped into agent sessions — this
/// host's, read as the console's user on a blocking thread (single-host
/// mode), or every host's from the fleet's database, for approvers only
/// (fleet mode).
pub(super) async fn serve(shared: &Shared, session: &Session, query: &str) -> Response<Body> {
    let viewer = super::server::viewer(shared, session);
    if let Some(why) = shared.source.refusal(session.person.as_ref()) {
        return notice(StatusCode::FORBIDDEN, "The timeline is for approvers", &why);
    }
    let q = Query::parse(super::decide::form(query.as_bytes()));
    let (q, t) = match &shared.source {
        Source::Host(_) => {
            let current = shared.trail.clone();
            let read = tokio::task::spawn_blocking(move || {
                let t = read(&current, &q);
                (q, t)
            })
            .await;
            let Ok(read) = read else {
                return notice(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "No timeline",
                    "Reading the trail failed.",
                );
            };
            read
        }
        Source::Fleet { fleet, .. } => {
            let t = read_fleet(fleet, &q).await;
            (q, t)
        }
    };
    let status = t.as_ref().err().map_or(StatusCode::OK, |e| e.status());
    let page = page(&viewer, &session.csrf, &q, &t);
    respond(status, "text/html; charset=utf-8", page)
}

/// Reads the trail whose current file is `current` (and its rotated
/// files) into the sessions `q` asks for. Blocking: call from a blocking
/// thread.
pub(super) fn read(current: &Path, q: &Query) -> Result<Timeline, TimelineError> {
    let filter = q.filter().map_err(TimelineError::Filter)?;
    // A directory the user may not list looks like an empty trail to the
    // listing: say it is unreadable instead.
    if let Err(e) = std::fs::metadata(current)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        return Err(TimelineError::Read(e));
    }
    let trail = crate::audit::files::trail(current);
    if trail.is_empty() {
        return Err(TimelineError::Missing(current.to_owned()));
    }
    // The trail is kept whole by default (`audit.retain_bytes = 0`): files
    // last written well before the window hold nothing to show, only the
    // sessions of connections still open in it. Of those, only session
    // records are parsed.
    let old_before = filter.since.map(|s| s - OLD_MARGIN);
    let (old, recent): (Vec<_>, Vec<_>) = trail.into_iter().partition(|f| {
        let written = std::fs::metadata(f).and_then(|m| m.modified()).ok();
        matches!((written, old_before), (Some(w), Some(b)) if w < b)
    });
    let mut joiner = query::Joiner::default();
    let finder = memchr::memmem::Finder::new(SESSION_LINE);
    query::each_record_where(
        &old,
        |line| finder.find(line).is_some(),
        |line, r| {
            joiner.push(line, r);
            Ok(())
        },
    )
    .map_err(TimelineError::Read)?;
    let mut timeline = group::Collect::new(MAX_ENTRIES);
    let mut show = |r: serde_json::Value| {
        if group::shown(&r) && filter.matches(&r) && q.also(&r) {
            timeline.push(r);
        }
    };
    query::each_record(&recent, |line, r| {
        if let Some(joined) = joiner.push(line, r) {
            show(joined.record);
        }
        Ok(())
    })
    .map_err(TimelineError::Read)?;
    joiner.finish().into_iter().for_each(|j| show(j.record));
    Ok(timeline.finish())
}

/// Every host's trail as shipped to the fleet's database (fleet mode)
/// into the sessions `q` asks for: the same filters and grouping, the
/// exchanges already joined by the hosts' shippers. The console's role
/// reads as `airlock_reader`.
pub(super) async fn read_fleet(
    fleet: &crate::config::FleetConfig,
    q: &Query,
) -> Result<Timeline, TimelineError> {
    let filter = q.filter().map_err(TimelineError::Filter)?;
    let mut timeline = group::Collect::new(MAX_ENTRIES);
    crate::fleet::search(fleet, &filter, q.host.as_deref(), |r| {
        if group::shown(r) && q.also(r) {
            timeline.push(r.clone());
        }
        true
    })
    .await
    .map_err(TimelineError::Fleet)?;
    Ok(timeline.finish())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pairs(kv: &[(&str, &str)]) -> Vec<(String, String)> {
        kv.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn filters_read_from_the_form_and_bad_ones_say_why() {
        let q = Query::parse(pairs(&[
            ("user", "dev"),
            ("decision", "deny"),
            ("operation", "Microsoft.Resources/*"),
            ("since", ""),
            ("x", "ignored"),
        ]));
        assert_eq!(q.user.as_deref(), Some("dev"));
        assert_eq!(q.since, None, "empty is absent");
        let f = q.filter().unwrap();
        assert!(f.since.is_some(), "the last day unless asked otherwise");
        assert_eq!(f.decision.as_deref(), Some("deny"));
        let bad = Query::parse(pairs(&[("decision", "maybe")]));
        assert!(bad.filter().unwrap_err().contains("allow, deny or approve"));
        let bad = Query::parse(pairs(&[("since", "yesterday-ish")]));
        assert!(bad.filter().unwrap_err().contains("RFC 3339"));
    }

    #[test]
    fn the_trail_is_read_joined_and_filtered() {
        let dir = crate::scratch_dir("timeline-read");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.jsonl");
        let now = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let agent = json!({"pid": 7, "start": "2026-12-06T18:00:00.000Z"});
        let lines = [
            json!({"kind": "session", "id": "s1", "ts": now, "origin": {"host": "h1"},
                   "process": {"pid": 9, "comm": "az", "user": "dev", "uid": 1000, "agent": agent}}),
            json!({"kind": "http", "phase": "request", "id": "e1", "session": "s1", "ts": now,
                   "request": {"method": "DELETE", "operation": {"name": "Microsoft.Resources/resourceGroups/delete"}},
                   "decision": {"action": "deny"}}),
            json!({"kind": "http", "phase": "response", "id": "e1", "session": "s1", "ts": now,
                   "response": {"status": 403}}),
            json!({"kind": "agent", "event": "start", "ts": now}),
        ];
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(&path, text).unwrap();

        let t = read(&path, &Query::default()).unwrap();
        assert_eq!(t.sessions.len(), 1);
        let call = &t.sessions[0].turns[0].calls[0];
        assert_eq!(call["process"]["comm"], "az", "joined with its session");
        assert_eq!(call["response"]["status"], 403);
        assert_eq!(t.sessions[0].counts.denied, 1);

        let q = Query::parse(pairs(&[("user", "root")]));
        assert!(read(&path, &q).unwrap().sessions.is_empty());
        let q = Query::parse(pairs(&[
            ("since", "2026-01-01T00:00:00Z"),
            ("until", "2026-01-02T00:00:00Z"),
        ]));
        assert!(read(&path, &q).unwrap().sessions.is_empty());
        let missing = read(&dir.join("none.jsonl"), &Query::default()).unwrap_err();
        assert!(matches!(missing, TimelineError::Missing(_)), "{missing}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn old_files_are_read_for_their_sessions_only() {
        let dir = crate::scratch_dir("timeline-old");
        std::fs::create_dir_all(&dir).unwrap();
        let current = dir.join("audit.jsonl");
        let rotated = crate::audit::files::rotated_name(&current, 3);
        let now = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let then = "2026-01-01T00:00:00.000Z";
        let lines = |records: &[serde_json::Value]| -> String {
            records.iter().map(|r| format!("{r}\n")).collect()
        };
        // A long-lived connection's session, written days ago; the
        // exchange on it happens now. The old file's other records are not
        // even parsed: an exchange in it is not shown, whatever its `ts`
        // (a file's records are older than its last write).
        let agent = json!({"pid": 7, "start": then});
        std::fs::write(
            &rotated,
            lines(&[
                json!({"kind": "session", "id": "s1", "ts": then, "origin": {"host": "h1"},
                       "process": {"pid": 9, "comm": "copilot", "agent": agent}}),
                json!({"kind": "http", "phase": "request", "id": "e0", "session": "s1", "ts": now}),
                json!({"kind": "http", "phase": "response", "id": "e0", "session": "s1", "ts": now}),
            ]),
        )
        .unwrap();
        let file = std::fs::File::options().write(true).open(&rotated).unwrap();
        file.set_modified(SystemTime::now() - Duration::from_secs(3 * 24 * 3600))
            .unwrap();
        std::fs::write(
            &current,
            lines(&[
                json!({"kind": "http", "phase": "request", "id": "e1", "session": "s1", "ts": now,
                       "decision": {"action": "allow"}}),
                json!({"kind": "http", "phase": "response", "id": "e1", "session": "s1", "ts": now,
                       "response": {"status": 200}}),
            ]),
        )
        .unwrap();
        let t = read(&current, &Query::default()).unwrap();
        assert_eq!(t.sessions.len(), 1, "{t:#?}");
        assert_eq!(t.sessions[0].turns[0].calls.len(), 1, "{t:#?}");
        let call = &t.sessions[0].turns[0].calls[0];
        assert_eq!(call["id"], "e1");
        assert_eq!(
            call["process"]["comm"], "copilot",
            "its session, from the old file"
        );
        assert!(matches!(
            t.sessions[0].key,
            group::Key::Agent { pid: 7, .. }
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_session_records_line_is_what_the_old_files_are_searched_for() {
        // The trail's own serialisation of the kind, compact.
        let line =
            serde_json::to_vec(&json!({"kind": crate::core::record::RecordKind::Session})).unwrap();
        assert!(memchr::memmem::find(&line, SESSION_LINE).is_some());
    }

    #[test]
    fn host_and_user_match_the_machine_and_the_local_user() {
        let r = json!({"origin": {"host": "build-7"}, "process": {"user": "dev", "uid": 1000}});
        let q = |kv: &[(&str, &str)]| Query::parse(pairs(kv));
        assert!(q(&[("host", "build-7"), ("user", "dev")]).also(&r));
        assert!(q(&[("user", "1000")]).also(&r));
        assert!(!q(&[("host", "build-8")]).also(&r));
        assert!(!q(&[("user", "root")]).also(&r));
    }
}
