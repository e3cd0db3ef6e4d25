//! `airlock status` for a human: the status JSON as a short report.

use std::fmt::Write;

use serde_json::Value;

/// Renders `GET /v1/status`; members the daemon did not send are skipped.
pub fn render(v: &Value) -> String {
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    };
    let list = |v: &Value| {
        v.as_array()
            .map(|a| a.iter().map(s).collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "airlock {} (pid {}), up {}s since {}",
        s(&v["version"]),
        s(&v["pid"]),
        s(&v["uptime_s"]),
        s(&v["started"])
    );
    let c = &v["capture"];
    if c.is_object() {
        let programs: Vec<String> = c["programs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| format!("{}#{}", s(&p["name"]), s(&p["id"])))
            .collect();
        let sel = &c["selection"];
        let _ = writeln!(
            out,
            "capture   cgroup {} (fail_mode {}), {} programs: {}",
            s(&c["cgroup"]),
            s(&c["fail_mode"]),
            programs.len(),
            programs.join(" ")
        );
        let _ = writeln!(
            out,
            "          selects comm [{}] uid [{}] ports [{}] follow_children {}; {} processes followed, {} sockets tracked, {} redirects",
            list(&sel["comm"]),
            list(&sel["uid"]),
            list(&sel["ports"]),
            s(&sel["follow_children"]),
            s(&c["tracked_processes"]),
            s(&c["tracked_sockets"]),
            s(&c["redirects"])
        );
    }
    let p = &v["proxy"];
    if p.is_object() {
        let _ = writeln!(
            out,
            "proxy     listening on {}; intercepts {}",
            list(&p["listen"]),
            list(&p["intercept"])
        );
    }
    let ca = &v["ca"];
    if ca.is_object() {
        let _ = writeln!(
            out,
            "ca        {} expires {}\n          SHA-256 {}",
            s(&ca["cert"]),
            s(&ca["not_after"]),
            s(&ca["fingerprint"])
        );
    }
    let pol = &v["policy"];
    if pol.is_object() {
        let _ = writeln!(
            out,
            "policy    version {} ({}: {}; rules: {}), loaded {}",
            s(&pol["version"]),
            s(&pol["source"]),
            list(&pol["files"]),
            s(&pol["rules"]),
            s(&pol["loaded"])
        );
    }
    let a = &v["audit"];
    if a.is_object() {
        let health = if a["healthy"] == Value::Bool(true) {
            "writable"
        } else {
            "NOT WRITABLE: intercepted requests are refused"
        };
        let _ = writeln!(
            out,
            "audit     {} ({health}), trail {}, chain head seq {} {}",
            s(&a["path"]),
            s(&a["trail"]),
            s(&a["seq"]),
            s(&a["head"])
        );
    }
    let f = &v["fleet"];
    if f.is_object() {
        let state = match (f["connected"].as_bool(), f["error"].as_str()) {
            (Some(true), _) => "connected".to_owned(),
            (_, Some(e)) => format!("NOT SHIPPING: {e}"),
            _ => "connecting".to_owned(),
        };
        let _ = writeln!(
            out,
            "fleet     {state}, shipped through seq {}, {} record(s) behind ({}s), {} chain break(s)",
            s(&f["shipped_seq"]),
            s(&f["lag_records"]),
            s(&f["lag_seconds"]),
            s(&f["chain_breaks"])
        );
    }
    let x = &v["export"]["syslog"];
    if x.is_object() {
        let state = match (x["connected"].as_bool(), x["error"].as_str()) {
            (Some(true), _) => "connected".to_owned(),
            (_, Some(e)) => format!("NOT SENDING: {e}"),
            _ => "connecting".to_owned(),
        };
        let _ = writeln!(
            out,
            "syslog    {} {state}, delivered through seq {}, {} record(s) behind, {} truncated, {} dropped",
            s(&x["target"]),
            s(&x["delivered_seq"]),
            s(&x["lag_records"]),
            s(&x["truncated"]),
            s(&x["dropped"])
        );
    }
    let _ = writeln!(
        out,
        "approvals {} held, {} grants{}",
        s(&v["approvals"]["held"]),
        s(&v["approvals"]["grants"]),
        match v["approvals"]["fleet"].as_bool() {
            Some(true) => ", published to the fleet",
            Some(false) => ", FLEET UNAVAILABLE: decided on this host only",
            None => "",
        }
    );
    let _ = writeln!(
        out,
        "traffic   {} requests, {} connections open",
        s(&v["traffic"]["requests"]),
        s(&v["traffic"]["connections_open"])
    );
    let pr = &v["privileges"];
    if pr.is_object() {
        let seccomp = if pr["seccomp"] == Value::Bool(true) {
            format!(
                "{} system calls denied",
                pr["denied_syscalls"].as_array().map_or(0, Vec::len)
            )
        } else {
            "no seccomp filter".to_owned()
        };
        let _ = writeln!(
            out,
            "privilege uid {}, capabilities [{}]; {seccomp}",
            s(&pr["uid"]),
            list(&pr["capabilities"])
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_status_renders_what_it_has() {
        let v = serde_json::json!({
            "version": "1.0", "pid": 7, "uptime_s": 3, "started": "2026-01-01T00:00:00Z",
            "approvals": { "held": 2, "grants": 0 },
            "traffic": { "requests": 5, "connections_open": 1 },
            "audit": { "path": "/var/log/airlock/audit.jsonl", "healthy": false, "seq": 9, "head": "ab", "trail": "7f" },
            "fleet": { "connected": false, "error": "PostgreSQL: connection refused", "shipped_seq": 4,
                       "lag_records": 5, "lag_seconds": 12, "chain_breaks": 0 },
            "export": { "syslog": { "target": "relp://siem:2514", "connected": false,
                       "error": "the receiver closed the connection", "delivered_seq": 6,
                       "lag_records": 3, "truncated": 1, "dropped": 0 } },
        });
        let text = render(&v);
        assert!(text.starts_with("airlock 1.0 (pid 7)"), "{text}");
        assert!(text.contains("approvals 2 held, 0 grants"), "{text}");
        assert!(text.contains("NOT WRITABLE"), "{text}");
        assert!(text.contains("trail 7f, chain head seq 9 ab"), "{text}");
        assert!(!text.contains("capture"), "{text}");
        assert!(
            text.contains("fleet     NOT SHIPPING: PostgreSQL: connection refused, shipped through seq 4, 5 record(s) behind (12s)"),
            "{text}"
        );
        assert!(
            text.contains("syslog    relp://siem:2514 NOT SENDING: the receiver closed the connection, delivered through seq 6, 3 record(s) behind, 1 truncated, 0 dropped"),
            "{text}"
        );
    }
}
