//! The console's pages, rendered on the server: the held requests as an
//! approver needs to see them, the sign-in and refusal pages. Everything
//! a held request carries (URL, command line, body excerpt, names) is the
//! agent's to choose, so every string goes through [`escape`]; the pages
//! have no inline script or style (the CSP forbids both).

use std::fmt::Write;

use serde_json::Value;

/// `s` safe as HTML text and as a quoted attribute value. `\r` is written
/// as a reference so a fragment has no line ending but `\n` (server-sent
/// events split on every kind).
pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page around `body`.
pub(super) fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><link rel=\"stylesheet\" href=\"/app.css\">\
         <script src=\"/app.js\" defer></script></head>\n<body>{body}</body></html>\n",
        escape(title)
    )
}

/// Who is signed in, for the page's header: the user who runs the
/// console (single-host) or the person the issuer signed in (fleet).
#[derive(Clone, Debug)]
pub(super) struct Viewer {
    pub user: String,
    /// `uid 0 on dev1`, `via https://login.example/…`.
    pub detail: String,
    /// Why this viewer may not decide, when they may not.
    pub refusal: Option<String>,
    /// Whether the timeline is offered: this host's trail, single-host
    /// mode only.
    pub timeline: bool,
}

/// The header every signed-in page has: the two views, who is signed in;
/// `active`: `pending` or `timeline`. The pending page's live indicator
/// is filled by its script.
pub(super) fn nav(viewer: &Viewer, active: &str, csrf: &str) -> String {
    let link = |href: &str, name: &str, text: &str| {
        let current = if name == active {
            " aria-current=\"page\""
        } else {
            ""
        };
        format!("<a href=\"{href}\"{current}>{text}</a>")
    };
    format!(
        "<header class=\"top\"><h1>airlock</h1><nav>{}{}</nav><span class=\"who\">signed in as <b>{}</b> ({})</span>{}\
         <form method=\"post\" action=\"/logout\" class=\"signout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <button type=\"submit\" class=\"signout\">Sign out</button></form></header>\n",
        link("/", "pending", "Pending approvals"),
        if viewer.timeline {
            link("/timeline", "timeline", "Timeline")
        } else {
            String::new()
        },
        escape(&viewer.user),
        escape(&viewer.detail),
        if active == "pending" {
            "<span id=\"live\" class=\"live\">connecting…</span>"
        } else {
            ""
        },
        escape(csrf)
    )
}

/// What the console knows of the held requests at one moment.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Held {
    /// The daemon's list (its JSON: docs/admin-api.md).
    List(Vec<Value>),
    /// The daemon could not be asked.
    Unreachable(String),
}

/// The pending-approvals page; `aged`: seconds since `held` was read.
pub(super) fn index(
    viewer: &Viewer,
    held: &Held,
    csrf: &str,
    flash: Option<(bool, &str)>,
    aged: u64,
) -> String {
    let mut body = nav(viewer, "pending", csrf);
    body.push_str("<main>");
    if let Some(why) = &viewer.refusal {
        let _ = write!(
            body,
            "<p id=\"refusal\" class=\"flash refused\">{}</p>",
            escape(why)
        );
    }
    if let Some((ok, text)) = flash {
        let _ = write!(
            body,
            "<p id=\"flash\" class=\"flash {}\" role=\"status\">{}</p>",
            if ok { "ok" } else { "refused" },
            escape(text)
        );
    }
    let _ = write!(
        body,
        "<h2>Pending approvals</h2>\n<div id=\"held\">{}</div></main>",
        held_fragment(held, csrf, aged)
    );
    page("airlock — pending approvals", &body)
}

/// The list of held requests, as the page shows it and as `/events`
/// sends it; `aged`: seconds since `held` was read (time left shrinks).
pub(super) fn held_fragment(held: &Held, csrf: &str, aged: u64) -> String {
    let list = match held {
        Held::Unreachable(why) => {
            return format!(
                "<p class=\"error\">The daemon cannot be asked: {}</p>",
                escape(why)
            );
        }
        Held::List(list) => list,
    };
    if list.is_empty() {
        return "<p class=\"empty\">Nothing is held.</p>".to_owned();
    }
    list.iter().map(|v| card(v, csrf, aged)).collect()
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

/// `4m05s`, `1h02m`, `42s`.
pub(super) fn left(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
    }
}

/// One held request: everything an approver decides on, then the forms.
fn card(v: &Value, csrf: &str, aged: u64) -> String {
    let id = escape(s(v, "id"));
    let remaining = v["remaining_s"].as_u64().unwrap_or(0).saturating_sub(aged);
    let mut out = format!(
        "<article class=\"held\" id=\"h-{id}\" data-id=\"{id}\">\
         <header><h3>{}</h3><span class=\"left\" data-left=\"{remaining}\">{} left</span></header>\
         <p class=\"request\"><code>{} {}</code></p><dl>",
        escape(s(v, "operation")),
        left(remaining),
        escape(s(v, "method")),
        escape(s(v, "url")),
    );
    let mut row = |name: &str, html: String| {
        if !html.is_empty() {
            let _ = write!(out, "<dt>{name}</dt><dd>{html}</dd>");
        }
    };
    // Fleet mode: the host that holds it.
    row("Held on", escape(s(v, "host")));
    row("Target host", escape(s(v, "target_host")));
    row("Resource", code(s(v, "resource")));
    row(
        "Rule",
        format!(
            "<b>{}</b> — {}",
            escape(s(v, "rule")),
            escape(s(v, "reason"))
        ),
    );
    row("Identity", identity(&v["identity"]));
    row("Grant key", code(s(v, "identity_key")));
    row("Process", process(&v["process"]));
    row("Held since", escape(s(v, "requested_at")));
    if let Some(body) = v["body_excerpt"].as_str() {
        let _ = write!(
            out,
            "</dl><details open><summary>Request body (masked)</summary><pre>{}</pre></details>",
            escape(body)
        );
    } else {
        out.push_str("</dl>");
    }
    let csrf = escape(csrf);
    let _ = write!(
        out,
        "<div class=\"decide\">\
         <form method=\"post\" action=\"/approve\" class=\"approve\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"id\" value=\"{id}\">\
         <label>Reason <input name=\"reason\" autocomplete=\"off\"></label>\
         <label>Grant for <input name=\"for\" placeholder=\"30m (blank: this request only)\" autocomplete=\"off\"></label>\
         <label>Scope <input name=\"scope\" placeholder=\"default: this resource\" autocomplete=\"off\"></label>\
         <button type=\"submit\" class=\"approve\">Approve</button></form>\
         <form method=\"post\" action=\"/deny\" class=\"deny\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"id\" value=\"{id}\">\
         <label>Reason <input name=\"reason\" required autocomplete=\"off\"></label>\
         <button type=\"submit\" class=\"deny\">Deny</button></form></div></article>"
    );
    out
}

fn code(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!("<code>{}</code>", escape(text))
    }
}

/// Who the credential says called: UPN or object id, kind, whether a
/// configured issuer verified it, groups, the GitHub run it came from.
fn identity(id: &Value) -> String {
    let mut parts = Vec::new();
    let name = ["upn", "oid", "app_id", "subject", "account"]
        .iter()
        .find_map(|k| id[*k].as_str());
    if let Some(n) = name {
        parts.push(format!("<b>{}</b>", escape(n)));
    }
    if let Some(kind) = id["kind"].as_str() {
        let verified = if id["verified"] == true {
            "verified"
        } else {
            "not verified"
        };
        parts.push(format!("{} ({verified})", escape(kind)));
    }
    if let Some(groups) = id["groups"].as_array().filter(|g| !g.is_empty()) {
        let names: Vec<String> = groups
            .iter()
            .map(|g| escape(g.as_str().unwrap_or("?")))
            .collect();
        parts.push(format!("groups: {}", names.join(", ")));
    }
    if let Some(gh) = id["github"].as_object() {
        let f = |k: &str| gh.get(k).and_then(Value::as_str).map(escape);
        let mut text = format!("GitHub: {}", f("actor").unwrap_or_else(|| "?".to_owned()));
        if let Some(repo) = f("repository") {
            let _ = write!(text, " in {repo}");
        }
        if let Some(run) = f("run_id") {
            let _ = write!(text, " (run {run})");
        }
        parts.push(text);
    }
    parts.join("<br>")
}

/// The calling process and its parent, as the held view has them.
fn process(p: &Value) -> String {
    let mut out = format!(
        "<b>{}</b> pid {}",
        escape(p["comm"].as_str().unwrap_or("?")),
        p["pid"]
    );
    if let Some(ppid) = p["ppid"].as_u64() {
        let _ = write!(out, " (parent pid {ppid})");
    }
    let _ = write!(
        out,
        ", {} uid {}",
        escape(p["user"].as_str().unwrap_or("")),
        p["uid"]
    );
    for (label, key) in [("exe", "exe"), ("command", "cmdline"), ("cgroup", "cgroup")] {
        if let Some(v) = p[key].as_str().filter(|v| !v.is_empty()) {
            let _ = write!(out, "<br>{label}: <code>{}</code>", escape(v));
        }
    }
    // The session it belongs to, as the kernel tracked it (it survives
    // the parents below exiting).
    let agent = &p["agent"];
    if let Some(pid) = agent["pid"].as_u64() {
        let _ = write!(out, "<br>agent session: pid {pid}");
        if let Some(exe) = agent["exe"].as_str() {
            let _ = write!(out, " <code>{}</code>", escape(exe));
        }
        let _ = write!(
            out,
            ", started {}",
            escape(agent["start"].as_str().unwrap_or("?"))
        );
    }
    if let Some(parents) = p["parents"].as_array().filter(|a| !a.is_empty()) {
        out.push_str("<ol class=\"parents\">");
        for a in parents {
            let _ = write!(
                out,
                "<li>started by <b>{}</b> pid {}",
                escape(a["comm"].as_str().unwrap_or("?")),
                a["pid"]
            );
            if let Some(cmd) = a["cmdline"].as_str() {
                let _ = write!(out, " <code>{}</code>", escape(cmd));
            }
            out.push_str("</li>");
        }
        out.push_str("</ol>");
    }
    out
}

/// A page that says only why: for a refused caller, a spent login link,
/// a missing session.
pub(super) fn notice(title: &str, text: &str) -> String {
    page(
        title,
        &format!(
            "<main class=\"notice\"><h1>{}</h1><p>{}</p></main>",
            escape(title),
            escape(text)
        ),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn held(url: &str) -> Value {
        json!({
            "id": "r-1\"><b>", "operation": "Microsoft.Resources/subscriptions/resourceGroups/delete",
            "method": "DELETE", "url": url, "target_host": "management.azure.com",
            "resource": "/subscriptions/s/resourceGroups/rg", "rule": "hold-rg-delete",
            "reason": "deleting a resource group <needs> a human", "identity_key": "uid:65534",
            "identity": { "kind": "bearer", "verified": true, "upn": "dev@contoso.com",
                          "groups": ["g1", "<g2>"],
                          "github": { "actor": "octo", "repository": "contoso/app", "run_id": "42" } },
            "process": { "pid": 4242, "ppid": 4200, "uid": 65534, "user": "nobody", "comm": "curl",
                         "exe": "/usr/bin/curl", "cmdline": "curl -X DELETE 'https://x/<script>'\r\nnext",
                         "cgroup": "/agents/a",
                         "agent": { "pid": 4100, "start": "2026-12-06T15:00:00.120Z", "exe": "/usr/bin/node" },
                         "parents": [{ "pid": 4200, "comm": "bash", "cmdline": "bash -c <x>" },
                                     { "pid": 4100, "comm": "copilot", "cmdline": null }] },
            "body_excerpt": "{\"a\":\"</pre><script>alert(1)</script>\"}",
            "requested_at": "2026-12-06T16:00:00Z", "waiting_s": 3, "remaining_s": 297
        })
    }

    #[test]
    fn escaping_covers_text_and_attributes() {
        assert_eq!(
            escape(r#"<a href="x" onclick='y'>&amp;</a>"#),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;"
        );
        assert_eq!(escape("a\r\nb"), "a&#13;\nb");
        assert_eq!(escape("dév ✓"), "dév ✓");
    }

    #[test]
    fn a_script_in_a_held_request_is_shown_as_text() {
        let v = held("https://management.azure.com/x?<script>alert('url')</script>");
        let html = held_fragment(&Held::List(vec![v]), "c0ffee", 0);
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("\r"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(&#39;url&#39;)&lt;/script&gt;"),
            "{html}"
        );
        assert!(html.contains("&lt;/pre&gt;&lt;script&gt;"), "{html}");
        assert!(html.contains("id=\"h-r-1&quot;&gt;&lt;b&gt;\""), "{html}");
        assert!(html.contains("&lt;g2&gt;"), "{html}");
        assert!(!html.contains("<b>\""), "{html}");
    }

    #[test]
    fn a_card_shows_what_an_approver_needs_and_carries_the_csrf_token() {
        let html = held_fragment(&Held::List(vec![held("https://m/x")]), "c0ffee", 7);
        for want in [
            "Microsoft.Resources/subscriptions/resourceGroups/delete",
            "DELETE https://m/x",
            "management.azure.com",
            "/subscriptions/s/resourceGroups/rg",
            "hold-rg-delete",
            "dev@contoso.com",
            "bearer (verified)",
            "groups: g1",
            "GitHub: octo in contoso/app (run 42)",
            "<b>curl</b> pid 4242 (parent pid 4200), nobody uid 65534",
            "/usr/bin/curl",
            "/agents/a",
            "<li>started by <b>bash</b> pid 4200 <code>bash -c &lt;x&gt;</code></li>",
            "<li>started by <b>copilot</b> pid 4100</li>",
            "agent session: pid 4100 <code>/usr/bin/node</code>, started 2026-12-06T15:00:00.120Z",
            "uid:65534",
            "data-left=\"290\"",
            "4m50s left",
            "name=\"csrf\" value=\"c0ffee\"",
            "action=\"/approve\"",
            "action=\"/deny\"",
            "name=\"reason\" required",
        ] {
            assert!(html.contains(want), "{want} missing: {html}");
        }
        assert_eq!(html.matches("value=\"c0ffee\"").count(), 2, "both forms");
    }

    #[test]
    fn empty_and_unreachable_say_so() {
        assert!(held_fragment(&Held::List(vec![]), "c", 0).contains("Nothing is held"));
        let html = held_fragment(&Held::Unreachable("connect: <refused>".into()), "c", 0);
        assert!(
            html.contains("cannot be asked: connect: &lt;refused&gt;"),
            "{html}"
        );
    }

    #[test]
    fn pages_load_only_their_own_assets() {
        let viewer = Viewer {
            user: "alice<".into(),
            detail: "uid 1000 on dev1".into(),
            refusal: Some("alice< is not in approval.approvers".into()),
            timeline: true,
        };
        let html = index(
            &viewer,
            &Held::List(vec![]),
            "c",
            Some((false, "refused: <x>")),
            0,
        );
        assert!(html.contains("src=\"/app.js\""));
        assert!(html.contains("href=\"/app.css\""));
        assert!(!html.contains("<script>"), "no inline script");
        assert!(!html.contains("style="), "no inline style");
        assert!(!html.contains("http"), "no third-party assets: {html}");
        assert!(html.contains("<b>alice&lt;</b> (uid 1000 on dev1)"));
        assert!(html.contains("alice&lt; is not in approval.approvers"));
        assert!(html.contains("class=\"flash refused\""));
        assert!(html.contains("refused: &lt;x&gt;"));
    }

    #[test]
    fn time_left_reads_like_a_clock() {
        assert_eq!(left(5), "5s");
        assert_eq!(left(185), "3m05s");
        assert_eq!(left(3720), "1h02m");
    }
}
