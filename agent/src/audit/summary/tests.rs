use serde_json::{Value, json};

use super::*;

fn http(ts: &str, extra: Value) -> Value {
    let mut r = json!({
        "ts": ts, "kind": "http", "phase": "response",
        "process": { "pid": 4242, "uid": 1001, "user": "runner", "comm": "az",
                     "cmdline": "az group delete -n rg-prod --yes" },
        "request": { "method": "DELETE", "host": "management.azure.com",
                     "path": "/subscriptions/s/resourcegroups/rg-prod",
                     "operation": { "name": "Microsoft.Resources/subscriptions/resourceGroups/delete" } },
        "response": { "status": 200 },
        "decision": { "action": "allow", "reason": "no rule matched" }
    });
    for (k, v) in extra.as_object().unwrap() {
        r[k] = v.clone();
    }
    r
}

fn summary(records: &[Value]) -> Summary {
    let mut s = Summary::default();
    for r in records {
        s.add(r);
    }
    s
}

#[test]
fn every_way_a_request_ends_is_counted_and_what_was_stopped_is_listed() {
    let s = summary(&[
        http(
            "2026-12-06T10:00:00Z",
            json!({
                "response": { "status": 200, "masked": { "count": 2, "detectors": { "storage-account-key": 2 } } },
                "request": { "method": "POST", "host": "management.azure.com", "path": "/x/listKeys",
                             "operation": { "name": "Microsoft.Storage/storageAccounts/listKeys/action" } }
            }),
        ),
        http(
            "2026-12-06T10:00:01Z",
            json!({
                "response": { "status": 403 },
                "decision": { "action": "deny", "rule": "storage-shared-key", "reason": "account keys are not for agents" },
                "error": "PolicyDenied: account keys are not for agents"
            }),
        ),
        http(
            "2026-12-06T10:00:02Z",
            json!({
                "response": { "status": 403 },
                "decision": { "action": "approve", "rule": "resource-group-delete", "reason": "r" },
                "approval": { "outcome": "denied", "by": { "uid": 0, "user": "root" }, "reason": "rg-prod stays" },
                "error": "ApprovalDenied: rg-prod stays"
            }),
        ),
        http(
            "2026-12-06T10:00:03Z",
            json!({
                "response": { "status": 202 },
                "decision": { "action": "approve", "rule": "resource-group-delete", "reason": "r" },
                "approval": { "outcome": "approved", "by": { "uid": 1000 } }
            }),
        ),
        http(
            "2026-12-06T10:00:04Z",
            json!({
                "request": { "method": "DELETE", "host": "acct.blob.core.windows.net", "path": "/c/b" },
                "response": { "status": 421 },
                "decision": null,
                "error": "MisdirectedRequest: the request names host \"acct.blob.core.windows.net\""
            }),
        ),
        http(
            "2026-12-06T10:00:05Z",
            json!({
                "response": { "status": 502 }, "error": "UpstreamUnreachable: cannot connect"
            }),
        ),
        json!({ "ts": "2026-12-06T10:00:06Z", "kind": "tls_passthrough", "sni": "paste.example",
                "process": { "pid": 9, "uid": 1001, "comm": "curl", "cmdline": "curl https://paste.example" },
                "dst": { "ip": "203.0.113.9", "port": 443 }, "bytes_out": 0, "bytes_in": 0,
                "decision": { "action": "deny", "reason": "not an allowed endpoint" },
                "error": "refused by policy: not an allowed endpoint" }),
        // Relayed, then ended with an error: not blocked.
        json!({ "ts": "2026-12-06T10:00:07Z", "kind": "tls_passthrough", "sni": "github.com",
                "process": { "pid": 9, "uid": 1001, "comm": "git" },
                "dst": { "ip": "140.82.121.3", "port": 443 }, "bytes_out": 900, "bytes_in": 5000,
                "decision": { "action": "allow", "reason": "r" }, "error": "connection reset" }),
        json!({ "ts": "2026-12-06T10:00:08Z", "kind": "tls_client_refused", "sni": "management.azure.com" }),
    ]);
    assert_eq!(s.requests, 6);
    assert_eq!(s.from.as_deref(), Some("2026-12-06T10:00:00Z"));
    assert_eq!(s.to.as_deref(), Some("2026-12-06T10:00:08Z"));
    let delete = s
        .operations
        .iter()
        .find(|c| c.operation == "Microsoft.Resources/subscriptions/resourceGroups/delete")
        .unwrap();
    assert_eq!(
        (
            delete.allowed,
            delete.approved,
            delete.held_refused,
            delete.denied,
            delete.failed
        ),
        (0, 1, 1, 1, 1)
    );
    let unnamed = s
        .operations
        .iter()
        .find(|c| c.operation.starts_with("(not named"))
        .unwrap();
    assert_eq!(unnamed.refused, 1);
    let whats: Vec<&str> = s.blocked.iter().map(|b| b.what.as_str()).collect();
    assert_eq!(
        whats,
        [
            "Microsoft.Resources/subscriptions/resourceGroups/delete",
            "Microsoft.Resources/subscriptions/resourceGroups/delete",
            "DELETE https://acct.blob.core.windows.net/c/b",
            "TLS to paste.example",
        ]
    );
    assert_eq!(
        s.blocked[0].why,
        "rule storage-shared-key: account keys are not for agents"
    );
    assert_eq!(s.blocked[1].why, "held (resource-group-delete), denied");
    assert_eq!(s.blocked[0].command, "az group delete -n rg-prod --yes");
    assert_eq!(s.blocked[3].user.as_deref(), Some("1001"));
    let outcomes: Vec<(&str, Option<&str>)> = s
        .held
        .iter()
        .map(|h| (h.outcome.as_str(), h.by.as_deref()))
        .collect();
    assert_eq!(
        outcomes,
        [("denied", Some("root")), ("approved", Some("uid 1000"))]
    );
    assert_eq!(s.masked.get("storage-account-key"), Some(&2));
    assert_eq!(s.tls_client_refused, 1);

    let md = s.markdown();
    assert!(
        md.contains("6 request(s) · **4 blocked** · 2 held for approval · 2 secret(s) masked"),
        "{md}"
    );
    assert!(
        md.contains("| `az group delete -n rg-prod --yes` (pid 4242) | runner |"),
        "{md}"
    );
    assert!(md.contains("### Held for approval"), "{md}");
    assert!(md.contains("| storage-account-key | 2 |"), "{md}");
    assert!(md.contains("refused airlock's certificate"), "{md}");
}

#[test]
fn what_a_command_line_carries_cannot_break_the_table() {
    let s = summary(&[http(
        "2026-12-06T10:00:00Z",
        json!({
            "process": { "pid": 1, "comm": "sh", "cmdline": "sh -c `echo a|b`\nrm -rf /" },
            "response": { "status": 403 },
            "decision": { "action": "deny", "rule": "r|x", "reason": "why" },
            "error": "PolicyDenied: why"
        }),
    )]);
    let md = s.markdown();
    let row = md.lines().find(|l| l.contains("sh -c")).unwrap();
    assert_eq!(
        row,
        "| 2026-12-06T10:00:00Z | `sh -c 'echo a\\|b' rm -rf /` (pid 1) | - | Microsoft.Resources/subscriptions/resourceGroups/delete | rule r\\|x: why |"
    );
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["blocked"][0]["pid"], 1);
}

#[test]
fn a_request_refused_because_the_queue_was_full_was_never_held() {
    let s = summary(&[http(
        "2026-12-06T10:00:00Z",
        json!({
            "response": { "status": 429 },
            "decision": { "action": "approve", "rule": "resource-group-delete", "reason": "r" },
            "approval": { "outcome": "too_many_held" },
            "error": "TooManyHeld: approval.max_held (100) requests are held"
        }),
    )]);
    let delete = &s.operations[0];
    assert_eq!((delete.refused, delete.held_refused), (1, 0));
}

#[test]
fn an_empty_window_says_so() {
    let md = Summary::default().markdown();
    assert!(md.contains("0 request(s) · **0 blocked**"), "{md}");
    assert!(md.contains("nothing in this window"), "{md}");
    assert!(!md.contains("###"), "{md}");
}
