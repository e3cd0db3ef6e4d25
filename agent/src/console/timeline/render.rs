//! The timeline page: the filters' form, then each session — who and
//! what it was, its counts — and its turns: the model call (the last
//! message that prompted it, its answer, the tool calls it emitted) and
//! the calls made after it, each with its decision and status badges.
//! Every string is the agent's to choose: all of it goes through
//! `escape`.

use std::fmt::Write;

use serde_json::Value;

use super::super::html::{self, Viewer, escape, nav};
use super::group::{Key, Session, Timeline, Turn};
use super::{Query, TimelineError};

/// Longest text of a message, an answer or a tool call's arguments shown.
const TEXT: usize = 600;

/// The whole page: `timeline`, or why it could not be read.
pub(in crate::console) fn page(
    viewer: &Viewer,
    csrf: &str,
    q: &Query,
    timeline: &Result<Timeline, TimelineError>,
) -> String {
    let mut body = nav(viewer, "timeline", csrf);
    body.push_str("<main class=\"timeline\"><h2>Timeline</h2>");
    form(&mut body, q);
    match timeline {
        Err(why) => {
            let _ = write!(body, "<p class=\"error\">{}</p>", escape(&why.to_string()));
        }
        Ok(t) if t.sessions.is_empty() => {
            body.push_str("<p class=\"empty\">Nothing in the trail matches.</p>");
        }
        Ok(t) => {
            if t.cut > 0 {
                let _ = write!(
                    body,
                    "<p class=\"empty\">The newest entries are shown; {} older ones that match are not (narrow the filters or the time).</p>",
                    t.cut
                );
            }
            for s in &t.sessions {
                session(&mut body, s);
            }
        }
    }
    body.push_str("</main>");
    html::page("airlock — timeline", &body)
}

fn form(out: &mut String, q: &Query) {
    let field = |name: &str, label: &str, value: &Option<String>, hint: &str| {
        format!(
            "<label>{label} <input name=\"{name}\" value=\"{}\" placeholder=\"{hint}\" autocomplete=\"off\"></label>",
            escape(value.as_deref().unwrap_or(""))
        )
    };
    let decision = q.decision.as_deref().unwrap_or("");
    let option = |v: &str, text: &str| {
        let selected = if v == decision { " selected" } else { "" };
        format!("<option value=\"{v}\"{selected}>{text}</option>")
    };
    let _ = write!(
        out,
        "<form method=\"get\" action=\"/timeline\" class=\"filters\">{}{}{}{}{}<label>Decision <select name=\"decision\">{}{}{}{}</select></label>{}{}<button type=\"submit\" class=\"filter\">Show</button></form>",
        field("host", "Host", &q.host, "machine name (origin.host)"),
        field("user", "User", &q.user, "local user or uid"),
        field(
            "identity",
            "Identity",
            &q.identity,
            "upn, oid, app id, actor (glob)"
        ),
        field(
            "operation",
            "Operation",
            &q.operation,
            "Microsoft.Storage/*"
        ),
        field("target", "Target host", &q.target, "*.vault.azure.net"),
        option("", "any"),
        option("allow", "allow"),
        option("deny", "deny"),
        option("approve", "held for approval"),
        field("since", "Since", &q.since, "24h, or 2026-12-06T09:00:00Z"),
        field("until", "Until", &q.until, "now"),
    );
}

fn session(out: &mut String, s: &Session) {
    let p = &s.process;
    let title = match &s.key {
        Key::Agent { host, pid, start } => {
            let exe = p["agent"]["exe"]
                .as_str()
                .map_or_else(String::new, |e| format!(" <code>{}</code>", escape(e)));
            format!(
                "Agent session: pid {pid}{exe}, started {} on {}",
                escape(start),
                escape(host)
            )
        }
        Key::Ci { host, .. } => {
            let ci = &s.ci;
            let f = |k: &str| escape(ci[k].as_str().unwrap_or("?"));
            format!(
                "CI job: {} {} run {} job {} on {}",
                f("provider"),
                f("repository"),
                f("run_id"),
                f("job"),
                escape(host)
            )
        }
        Key::Process { host, pid } => format!(
            "Process {} pid {pid} (no agent selected) on {}",
            escape(p["comm"].as_str().unwrap_or("?")),
            escape(host)
        ),
    };
    let user = p["user"]
        .as_str()
        .map_or_else(|| format!("uid {}", p["uid"]), escape);
    let c = &s.counts;
    let _ = write!(
        out,
        "<section class=\"session\"><header><h3>{title}</h3>\
         <p class=\"meta\">as <b>{user}</b>, {} → {} · \
         <span class=\"badge allow\">{} allowed</span> <span class=\"badge deny\">{} denied</span> \
         <span class=\"badge approve\">{} held</span> <span class=\"badge model\">{} model calls</span></p></header><ol class=\"turns\">",
        escape(to_ms(&s.first)),
        escape(to_ms(&s.last)),
        c.allowed,
        c.denied,
        c.held,
        c.model_calls
    );
    for t in &s.turns {
        turn(out, t);
    }
    out.push_str("</ol></section>");
}

fn turn(out: &mut String, t: &Turn) {
    out.push_str("<li class=\"turn\">");
    if let Some(m) = &t.model {
        model(out, m);
    }
    if !t.calls.is_empty() {
        out.push_str("<ol class=\"calls\">");
        for c in &t.calls {
            call(out, c);
        }
        out.push_str("</ol>");
    }
    out.push_str("</li>");
}

/// A model call as a line of conversation.
fn model(out: &mut String, m: &Value) {
    let name = m["model"]
        .as_str()
        .or(m["prompt"]["model"].as_str())
        .unwrap_or("model");
    let _ = write!(
        out,
        "<div class=\"model\"><p class=\"line\"><span class=\"time\">{}</span> <span class=\"badge model\">{}</span> {} <span class=\"badge status{}\">{}</span></p>",
        escape(time(m)),
        escape(name),
        escape(m["host"].as_str().unwrap_or("")),
        status_class(&m["status"]),
        m["status"]
    );
    // The record keeps each message's text (`model::prompt`): the last
    // one that says something is what prompted this call.
    let said = |v: &&Value| v["content"].as_str().is_some_and(|t| !t.is_empty());
    if let Some(last) = m["prompt"]["messages"]
        .as_array()
        .and_then(|msgs| msgs.iter().rev().find(said))
    {
        let _ = write!(
            out,
            "<div class=\"said\"><b>{}</b>: {}</div>",
            escape(last["role"].as_str().unwrap_or("?")),
            escape(&cut(last["content"].as_str().unwrap_or("")))
        );
    }
    if let Some(text) = m["output"]["text"].as_str().filter(|t| !t.is_empty()) {
        let _ = write!(
            out,
            "<div class=\"said answer\"><b>assistant</b>: {}</div>",
            escape(&cut(text))
        );
    }
    if let Some(calls) = m["output"]["tool_calls"].as_array() {
        for c in calls {
            let args = match &c["arguments"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let _ = write!(
                out,
                "<div class=\"tool\">tool call <b>{}</b> <code>{}</code></div>",
                escape(c["name"].as_str().unwrap_or("?")),
                escape(&cut(&args))
            );
        }
    }
    out.push_str("</div>");
}

/// One exchange or connection: time, badges, what was asked, by whom.
fn call(out: &mut String, r: &Value) {
    let req = &r["request"];
    let what = match r["kind"].as_str() {
        Some("http") => format!(
            "<b>{}</b> <code>{} {}{}</code>",
            escape(req["operation"]["name"].as_str().unwrap_or("")),
            escape(req["method"].as_str().unwrap_or("")),
            escape(req["host"].as_str().unwrap_or("")),
            escape(req["path"].as_str().unwrap_or(""))
        ),
        Some(kind) => format!(
            "<b>{}</b> <code>{}</code>{}",
            escape(kind),
            escape(r["sni"].as_str().unwrap_or("")),
            r["error"]
                .as_str()
                .map_or_else(String::new, |e| format!(" — {}", escape(e)))
        ),
        None => String::new(),
    };
    let mut badges = String::new();
    if let Some(action) = r["decision"]["action"].as_str() {
        let _ = write!(
            badges,
            "<span class=\"badge {0}\" title=\"{1}\">{0}</span>",
            escape(action),
            escape(r["decision"]["rule"].as_str().unwrap_or("default"))
        );
    }
    if let Some(outcome) = r["approval"]["outcome"].as_str() {
        let by = &r["approval"]["by"];
        let who = by["user"].as_str().or(by["role"].as_str()).unwrap_or("");
        let _ = write!(
            badges,
            " <span class=\"badge outcome {0}\">{0}{1}</span>",
            escape(outcome),
            if who.is_empty() {
                String::new()
            } else {
                format!(" by {}", escape(who))
            }
        );
    }
    if !r["response"]["status"].is_null() {
        let status = &r["response"]["status"];
        let _ = write!(
            badges,
            " <span class=\"badge status{}\">{status}</span>",
            status_class(status)
        );
    }
    let p = &r["process"];
    let id = &r["identity"];
    let who = ["upn", "oid", "app_id", "account"]
        .iter()
        .find_map(|k| id[*k].as_str())
        .or(id["github"]["actor"].as_str());
    let _ = write!(
        out,
        "<li class=\"call\"><span class=\"time\">{}</span> {badges} {what}<br><span class=\"by\">{} pid {}{}</span></li>",
        escape(time(r)),
        escape(p["comm"].as_str().unwrap_or("?")),
        p["pid"],
        who.map_or_else(String::new, |w| format!(" as {}", escape(w)))
    );
}

/// `HH:MM:SS.mmm` of a record's RFC 3339 `ts`.
fn time(r: &Value) -> &str {
    let ts = r["ts"].as_str().unwrap_or("");
    ts.get(11..23).unwrap_or(ts)
}

/// An RFC 3339 `ts` to the millisecond (the trail keeps nanoseconds).
fn to_ms(ts: &str) -> &str {
    ts.get(..23).unwrap_or(ts)
}

fn status_class(status: &Value) -> &'static str {
    match status.as_u64() {
        Some(200..=399) => " ok",
        Some(_) => " bad",
        None => "",
    }
}

/// `s` cut to [`TEXT`] bytes on a character, marked when it was.
fn cut(s: &str) -> String {
    let kept = crate::core::truncate(s, TEXT);
    if kept.len() == s.len() {
        kept.to_owned()
    } else {
        format!("{kept}…")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::group::{Collect, Timeline};
    use super::*;

    fn viewer() -> Viewer {
        Viewer {
            user: "dev".into(),
            detail: "uid 1000 on h1".into(),
            refusal: None,
            timeline: true,
        }
    }

    fn timeline(records: Vec<Value>) -> Timeline {
        let mut c = Collect::new(100);
        records.into_iter().for_each(|r| c.push(r));
        c.finish()
    }

    #[test]
    fn a_session_reads_as_a_conversation_with_badges_and_nothing_unescaped() {
        let agent =
            json!({"pid": 800, "start": "2026-12-06T18:00:00.000Z", "exe": "/usr/bin/node"});
        let t = timeline(vec![
            json!({"kind": "model", "ts": "2026-12-06T18:01:02.345Z", "origin": {"host": "h1"},
                   "model": "gpt-4.1", "host": "api.githubcopilot.com", "status": 200,
                   "process": {"pid": 800, "comm": "node", "user": "dev", "agent": agent},
                   "prompt": {"messages": [{"role": "user", "content": "delete <script>alert(1)</script> rg"}]},
                   "output": {"text": "", "tool_calls": [{"name": "bash", "arguments": "{\"command\":\"az group delete -n rg\"}"}]}}),
            json!({"kind": "http", "ts": "2026-12-06T18:01:03.000Z", "id": "e1", "origin": {"host": "h1"},
                   "process": {"pid": 901, "comm": "az", "agent": agent},
                   "identity": {"upn": "dev@contoso.com"},
                   "request": {"method": "DELETE", "host": "management.azure.com", "path": "/subscriptions/s/resourcegroups/rg",
                               "operation": {"name": "Microsoft.Resources/resourceGroups/delete"}},
                   "decision": {"action": "approve", "rule": "rg-delete"},
                   "approval": {"outcome": "denied", "by": {"user": "lead"}},
                   "response": {"status": 403}}),
        ]);
        let html = page(&viewer(), "c0ffee", &Query::default(), &Ok(t));
        assert!(
            html.contains("Agent session: pid 800 <code>/usr/bin/node</code>"),
            "{html}"
        );
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!html.contains("<script>alert"));
        assert!(html.contains("tool call <b>bash</b>"));
        assert!(html.contains("<span class=\"badge approve\" title=\"rg-delete\">approve</span>"));
        assert!(html.contains("denied by lead"));
        assert!(html.contains("<span class=\"badge status bad\">403</span>"));
        assert!(html.contains("as dev@contoso.com"));
        assert!(html.contains("18:01:03.000"));
        assert!(
            html.contains("action=\"/logout\"") && html.contains("name=\"csrf\" value=\"c0ffee\""),
            "sign-out is a form with the session's token"
        );
    }

    #[test]
    fn an_unreadable_trail_and_an_empty_one_say_so() {
        let html = page(
            &viewer(),
            "c0ffee",
            &Query::default(),
            &Err(TimelineError::Read(std::io::Error::from(
                std::io::ErrorKind::PermissionDenied,
            ))),
        );
        assert!(
            html.contains("cannot read the trail: permission denied"),
            "{html}"
        );
        let html = page(
            &viewer(),
            "c0ffee",
            &Query::default(),
            &Ok(Timeline::default()),
        );
        assert!(html.contains("Nothing in the trail matches"));
    }

    #[test]
    fn long_text_is_cut_on_a_character() {
        let s = "é".repeat(TEXT);
        let c = cut(&s);
        assert!(c.ends_with('…') && c.len() <= TEXT + '…'.len_utf8());
    }
}
