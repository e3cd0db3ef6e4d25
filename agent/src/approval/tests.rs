use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::webhook::{Notice, deliver};
use super::*;
use crate::config::{AdminConfig, AuditConfig, Durability};

const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/bash
# a comment
alice:x:1000:1000::/home/alice:/bin/sh
bob:x:1001:1001::/home/bob:/bin/sh
carol:x:1002:1002::/home/carol:/bin/sh
dave:x:1003:2000::/home/dave:/bin/sh
broken line
";
const GROUP: &str = "\
root:x:0:
alice:x:1000:
sre:x:2000:carol, erin
wheel:x:10:alice
";

struct Fixture {
    approvals: Arc<Approvals>,
    audit: AuditLog,
    path: PathBuf,
}

impl Fixture {
    fn new(tag: &str, approvers: &[&str], allow_self: bool, db: UserDb) -> Self {
        let dir = crate::scratch_dir(&format!("approval-{tag}"));
        let path = dir.join("audit.jsonl");
        let audit = AuditLog::open(&AuditConfig {
            path: path.clone(),
            durability: Durability::Written,
            ..AuditConfig::default()
        })
        .unwrap();
        let config = ApprovalConfig {
            approvers: approvers.iter().map(|s| (*s).to_owned()).collect(),
            allow_self,
            ..ApprovalConfig::default()
        };
        let approvals = Arc::new(Approvals::build(
            &config,
            audit.clone(),
            Users::Fixed(db),
            None,
        ));
        Self {
            approvals,
            audit,
            path,
        }
    }

    fn simple(tag: &str) -> Self {
        Self::new(
            tag,
            &["alice", "group:sre"],
            false,
            UserDb::parse(PASSWD, GROUP),
        )
    }

    /// The `approval` records written so far.
    async fn records(&self) -> Vec<Value> {
        self.audit.sync().await.unwrap();
        std::fs::read_to_string(&self.path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|r| r["kind"] == "approval")
            .collect()
    }

    async fn events(&self) -> Vec<String> {
        self.records()
            .await
            .iter()
            .map(|r| r["event"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Waits until `id` is listed as held.
    async fn held(&self, id: &str) {
        for _ in 0..500 {
            if self.approvals.get(id).is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        panic!("{id} was never held");
    }

    fn spawn_hold(&self, req: HeldRequest, timeout: Duration) -> tokio::task::JoinHandle<Outcome> {
        let a = self.approvals.clone();
        tokio::spawn(async move { a.hold(req, timeout).await })
    }
}

fn request(id: &str, operation: &str, uid: u32) -> HeldRequest {
    HeldRequest {
        id: id.to_owned(),
        rule: "resource-group-delete".into(),
        reason: "deletes everything in it".into(),
        operation: operation.to_owned(),
        method: "DELETE".into(),
        url: "https://management.azure.com/subscriptions/s/resourcegroups/rg1".into(),
        identity: Arc::new(Identity {
            kind: crate::core::CredentialKind::Jwt,
            verified: true,
            oid: Some("oid-1".into()),
            upn: Some("dev@contoso.com".into()),
            fingerprint: Some("sha256:00".into()),
            ..Identity::default()
        }),
        process: Arc::new(ProcessInfo {
            pid: 4242,
            uid,
            comm: "az".into(),
            ..ProcessInfo::default()
        }),
        body_excerpt: None,
    }
}

const OP: &str = "Microsoft.Resources/subscriptions/resourceGroups/delete";
const LONG: Duration = Duration::from_secs(60);

#[tokio::test]
async fn approve_once_then_the_next_request_is_held_again() {
    let f = Fixture::simple("once");
    let h = f.spawn_hold(request("r1", OP, 1001), LONG);
    f.held("r1").await;
    let listed = f.approvals.list();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].identity_key, "oid:oid-1");
    f.approvals
        .approve("r1", 1000, None, Some("ok".into()))
        .unwrap();
    let out = h.await.unwrap();
    assert!(
        matches!(&out, Outcome::Approved { by, grant: None } if by.user.as_deref() == Some("alice")),
        "{out:?}"
    );
    assert!(f.approvals.list().is_empty());
    let h = f.spawn_hold(request("r2", OP, 1001), LONG);
    f.held("r2").await;
    f.approvals.deny("r2", 1000, "not now").unwrap();
    h.await.unwrap();
    let recs = f.records().await;
    let approved = recs.iter().find(|r| r["event"] == "approved").unwrap();
    assert_eq!(approved["request_id"], "r1");
    assert_eq!(approved["by"]["user"], "alice");
    assert_eq!(approved["by"]["uid"], 1000);
    assert_eq!(approved["reason"], "ok");
    assert_eq!(approved["rule"], "resource-group-delete");
    assert_eq!(approved["operation"], OP);
    assert_eq!(
        f.events().await,
        ["requested", "approved", "requested", "denied"]
    );
}

#[tokio::test]
async fn a_window_grant_lets_identical_requests_through_until_revoked() {
    let f = Fixture::simple("grant");
    let h = f.spawn_hold(request("r1", OP, 1001), LONG);
    f.held("r1").await;
    let out = f
        .approvals
        .approve("r1", 1000, Some(Duration::from_secs(600)), None)
        .unwrap();
    let Outcome::Approved {
        grant: Some(gid), ..
    } = out
    else {
        panic!("{out:?}")
    };
    assert_eq!(h.await.unwrap(), out_with(&gid));
    // Same identity, rule, operation: through at once, audited `used`.
    let second = f.approvals.hold(request("r2", OP, 1001), LONG).await;
    assert_eq!(second, out_with(&gid));
    let grants = f.approvals.grants();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].uses, 1);
    assert!(grants[0].remaining_s > 590);
    // Another operation is still held.
    let h = f.spawn_hold(request("r3", "k8s.pods.exec", 1001), LONG);
    f.held("r3").await;
    f.approvals.deny("r3", 1000, "no exec").unwrap();
    h.await.unwrap();
    // Revoked: held again.
    f.approvals.revoke(&gid, 1002, Some("done".into())).unwrap();
    assert!(f.approvals.grants().is_empty());
    let h = f.spawn_hold(request("r4", OP, 1001), LONG);
    f.held("r4").await;
    f.approvals.deny("r4", 1000, "over").unwrap();
    h.await.unwrap();
    assert!(matches!(
        f.approvals.revoke(&gid, 1000, None),
        Err(ApprovalError::NoGrant(_))
    ));
    let recs = f.records().await;
    let events: Vec<&str> = recs.iter().map(|r| r["event"].as_str().unwrap()).collect();
    assert_eq!(
        events,
        [
            "requested",
            "approved",
            "granted",
            "used",
            "requested",
            "denied",
            "revoked",
            "requested",
            "denied"
        ]
    );
    let granted = &recs[2];
    assert_eq!(granted["grant_id"], gid.as_str());
    assert_eq!(granted["duration_s"], 600);
    assert_eq!(granted["identity_key"], "oid:oid-1");
    assert_eq!(recs[3]["grant_id"], gid.as_str());
    assert_eq!(recs[3]["request_id"], "r2");
    assert_eq!(recs[6]["by"]["user"], "carol");
    assert_eq!(recs[6]["reason"], "done");
}

fn out_with(gid: &str) -> Outcome {
    Outcome::Approved {
        by: Approver {
            uid: 1000,
            user: Some("alice".into()),
        },
        grant: Some(gid.to_owned()),
    }
}

#[tokio::test]
async fn deny_needs_a_reason_and_carries_it() {
    let f = Fixture::simple("deny");
    let h = f.spawn_hold(request("r1", OP, 1001), LONG);
    f.held("r1").await;
    assert!(matches!(
        f.approvals.deny("r1", 1000, "  "),
        Err(ApprovalError::BadRequest(_))
    ));
    f.approvals.deny("r1", 1000, "too risky").unwrap();
    let out = h.await.unwrap();
    assert!(matches!(&out, Outcome::Denied { reason, .. } if reason == "too risky"));
    // A second decision: already decided, not "unknown".
    assert!(matches!(
        f.approvals.approve("r1", 1000, None, None),
        Err(ApprovalError::AlreadyDecided {
            outcome: "denied",
            ..
        })
    ));
    assert!(matches!(
        f.approvals.approve("nope", 1000, None, None),
        Err(ApprovalError::NotFound(_))
    ));
}

#[tokio::test]
async fn nobody_deciding_expires() {
    let f = Fixture::simple("expire");
    let out = f
        .approvals
        .hold(request("r1", OP, 1001), Duration::from_millis(30))
        .await;
    assert_eq!(out, Outcome::Expired);
    assert!(f.approvals.list().is_empty());
    let recs = f.records().await;
    assert_eq!(recs[1]["event"], "expired");
    assert!(recs[1]["waited_ms"].as_u64().unwrap() >= 30);
    assert_eq!(recs[0]["duration_s"], 0);
}

#[tokio::test]
async fn dropping_the_hold_is_abandoned() {
    let f = Fixture::simple("abandon");
    let h = f.spawn_hold(request("r1", OP, 1001), LONG);
    f.held("r1").await;
    h.abort();
    let _ = h.await;
    assert!(f.approvals.list().is_empty());
    assert!(matches!(
        f.approvals.approve("r1", 1000, None, None),
        Err(ApprovalError::AlreadyDecided {
            outcome: "abandoned",
            ..
        })
    ));
    let recs = f.records().await;
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[1]["event"], "abandoned");
    assert_eq!(recs[1]["request_id"], "r1");
    let mut m = crate::telemetry::Exposition::default();
    f.approvals.metrics(&mut m);
    assert!(
        m.finish()
            .contains("airlock_approvals_total{outcome=\"abandoned\"} 1")
    );
}

#[tokio::test]
async fn many_holds_are_decided_independently() {
    let f = Fixture::simple("many");
    let handles: Vec<_> = (0..20)
        .map(|i| f.spawn_hold(request(&format!("r{i}"), OP, 1001), LONG))
        .collect();
    for i in 0..20 {
        f.held(&format!("r{i}")).await;
    }
    assert_eq!(f.approvals.status().held, 20);
    for i in 0..20 {
        let id = format!("r{i}");
        if i % 2 == 0 {
            f.approvals.approve(&id, 1000, None, None).unwrap();
        } else {
            f.approvals.deny(&id, 1000, "odd").unwrap();
        }
    }
    for (i, h) in handles.into_iter().enumerate() {
        let out = h.await.unwrap();
        assert_eq!(out.as_str(), if i % 2 == 0 { "approved" } else { "denied" });
    }
    assert_eq!(f.approvals.status().held, 0);
}

#[tokio::test]
async fn self_approval_is_refused_unless_allowed() {
    let f = Fixture::simple("self");
    let h = f.spawn_hold(request("r1", OP, 1000), LONG);
    f.held("r1").await;
    assert!(matches!(
        f.approvals.approve("r1", 1000, None, None),
        Err(ApprovalError::SelfApproval(_))
    ));
    // Still held; denying one's own agent is allowed.
    f.approvals.deny("r1", 1000, "my mistake").unwrap();
    h.await.unwrap();
    let recs = f.records().await;
    assert_eq!(recs[1]["event"], "refused");
    assert_eq!(recs[1]["by"]["user"], "alice");
    assert!(
        recs[1]["reason"]
            .as_str()
            .unwrap()
            .contains("self-approval")
    );

    let f = Fixture::new("self-ok", &["alice"], true, UserDb::parse(PASSWD, GROUP));
    let h = f.spawn_hold(request("r1", OP, 1000), LONG);
    f.held("r1").await;
    f.approvals.approve("r1", 1000, None, None).unwrap();
    assert_eq!(h.await.unwrap().as_str(), "approved");
}

#[tokio::test]
async fn outsiders_are_refused_and_audited() {
    let f = Fixture::simple("outsider");
    let h = f.spawn_hold(request("r1", OP, 1001), LONG);
    f.held("r1").await;
    // bob is not listed; root is not listed; an unknown uid has no name.
    for uid in [1001, 0, 4321] {
        assert!(matches!(
            f.approvals.approve("r1", uid, None, None),
            Err(ApprovalError::NotApprover(_))
        ));
    }
    assert!(matches!(
        f.approvals.deny("r1", 1001, "x"),
        Err(ApprovalError::NotApprover(_))
    ));
    assert!(matches!(
        f.approvals.revoke("g-1", 1001, None),
        Err(ApprovalError::NotApprover(_))
    ));
    // dave is in sre by primary gid, carol as a listed member.
    f.approvals.approve("r1", 1003, None, None).unwrap();
    h.await.unwrap();
    let recs = f.records().await;
    let refused: Vec<&Value> = recs.iter().filter(|r| r["event"] == "refused").collect();
    assert_eq!(refused.len(), 5);
    assert_eq!(refused[0]["by"]["user"], "bob");
    assert_eq!(refused[1]["by"]["user"], "root");
    assert_eq!(refused[2]["by"]["uid"], 4321);
    assert!(refused[2]["by"].get("user").is_none());
    assert_eq!(refused[4]["grant_id"], "g-1");
    let mut m = crate::telemetry::Exposition::default();
    f.approvals.metrics(&mut m);
    let m = m.finish();
    assert!(m.contains("airlock_approvals_held 0"), "{m}");
    assert!(
        m.contains("airlock_approvals_total{outcome=\"approved\"} 1"),
        "{m}"
    );
}

#[test]
fn groups_and_names_from_file_text() {
    let db = UserDb::parse(PASSWD, GROUP);
    assert_eq!(db.user_name(1000), Some("alice"));
    assert_eq!(db.user_name(99), None);
    assert!(db.in_group(1002, "sre"));
    assert!(db.in_group(1003, "sre"));
    assert!(!db.in_group(1000, "sre"));
    assert!(db.in_group(1000, "wheel"));
    assert!(!db.in_group(1000, "nosuch"));
    assert_eq!(db.group_id("sre"), Some(2000));
    assert_eq!(db.group_id("77"), Some(77));
    let a = Approvers::new(&["group:wheel".into(), "root".into()]);
    assert!(a.admits(1000, &db));
    assert!(a.admits(0, &db));
    assert!(!a.admits(1001, &db));
    assert!(!Approvers::new(&[]).admits(0, &db));
}

#[test]
fn grant_keys_trust_only_verified_claims() {
    let p = ProcessInfo {
        uid: 7,
        ..ProcessInfo::default()
    };
    let mut id = Identity {
        verified: true,
        upn: Some("u@x".into()),
        app_id: Some("app".into()),
        fingerprint: Some("sha256:ab".into()),
        ..Identity::default()
    };
    assert_eq!(identity_key(&id, &p), "upn:u@x");
    id.verified = false;
    assert_eq!(identity_key(&id, &p), "sha256:ab");
    assert_eq!(identity_key(&Identity::default(), &p), "uid:7");
}

#[tokio::test]
async fn grant_windows_are_bounded() {
    let f = Fixture::simple("window");
    for w in [Duration::ZERO, MAX_GRANT + Duration::from_secs(1)] {
        assert!(matches!(
            f.approvals.approve("r1", 1000, Some(w), None),
            Err(ApprovalError::BadRequest(_))
        ));
    }
}

#[tokio::test]
async fn webhook_retries_with_backoff_then_gives_up() {
    let notice = Notice::new(&request("r1", OP, 1001), LONG);
    assert_eq!(notice.event, "approval_requested");
    let json = serde_json::to_value(&notice).unwrap();
    assert!(json.get("body_excerpt").is_none());
    assert_eq!(json["identity_key"], "oid:oid-1");
    let calls = std::sync::atomic::AtomicU32::new(0);
    let flaky = |_: &Notice| {
        let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move { if n < 2 { Err("503".to_owned()) } else { Ok(()) } }
    };
    assert!(deliver(&notice, flaky, Duration::from_millis(1)).await);
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
    calls.store(0, std::sync::atomic::Ordering::SeqCst);
    let down = |_: &Notice| {
        calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async { Err("refused".to_owned()) }
    };
    assert!(!deliver(&notice, down, Duration::from_millis(1)).await);
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 5);
}

/// The test's own uid and gid, as the kernel reports them over the socket.
fn me() -> (u32, u32) {
    let m = std::fs::metadata("/proc/self").unwrap();
    (m.uid(), m.gid())
}

fn my_db() -> UserDb {
    let (uid, gid) = me();
    UserDb::parse(&format!("me:x:{uid}:{gid}::/:/bin/sh\n"), "")
}

#[tokio::test]
async fn admin_socket_end_to_end() {
    let (uid, gid) = me();
    let f = Fixture::new("admin", &["me"], false, my_db());
    let dir = f.path.parent().unwrap().join("run/sub");
    let config = AdminConfig {
        socket: dir.join("admin.sock"),
        group: Some(gid.to_string()),
        ..Default::default()
    };
    let server = f
        .approvals
        .clone()
        .serve_admin(&config, Default::default())
        .await
        .unwrap();
    let meta = std::fs::metadata(&config.socket).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(meta.gid(), gid);
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o750
    );
    let serving = tokio::spawn(server.run());
    // A live socket: a second airlock must not take it over.
    assert!(matches!(
        f.approvals
            .clone()
            .serve_admin(&config, Default::default())
            .await,
        Err(ApprovalError::AlreadyRunning(_))
    ));
    let c = AdminClient::new(&config.socket);
    assert_eq!(c.status().await.unwrap()["approvals"]["held"], 0);

    let h = f.spawn_hold(request("r1", OP, uid), LONG);
    f.held("r1").await;
    let list = c.list().await.unwrap();
    assert_eq!(list.len(), 1);
    for key in [
        "id",
        "rule",
        "reason",
        "operation",
        "method",
        "url",
        "identity",
        "identity_key",
        "process",
        "requested_at",
        "waiting_s",
        "remaining_s",
    ] {
        assert!(list[0].get(key).is_some(), "{key} missing: {}", list[0]);
    }
    assert_eq!(c.show("r1").await.unwrap()["process"]["uid"], uid);
    assert!(approvals_table(&list).contains("dev@contoso.com"));

    // SO_PEERCRED says the request's process runs as us: refused.
    let e = c.approve("r1", Some("10m"), None).await.unwrap_err();
    assert!(
        matches!(&e, ApprovalError::Api { status: 403, code, .. } if code == "self_approval"),
        "{e}"
    );
    let e = c.approve("r1", Some("soon"), None).await.unwrap_err();
    assert!(matches!(e, ApprovalError::Api { status: 400, .. }), "{e}");
    let e = c.show("zzz").await.unwrap_err();
    assert!(matches!(e, ApprovalError::Api { status: 404, .. }), "{e}");
    let e = c.deny("r1", "").await.unwrap_err();
    assert!(matches!(e, ApprovalError::Api { status: 400, .. }), "{e}");
    let metrics = c.metrics().await.unwrap();
    assert!(metrics.contains("airlock_approvals_held 1"), "{metrics}");
    assert!(
        metrics.contains("# TYPE airlock_grants_active gauge"),
        "{metrics}"
    );
    // curl speaks to it too, and sees the same JSON error shape.
    // (async: the server runs on this test's own runtime thread)
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", "--unix-socket"])
        .arg(&config.socket)
        .args([
            "-X",
            "POST",
            "-d",
            "{}",
            "http://airlock/v1/approvals/r1/deny",
        ])
        .output()
        .await
        .expect("curl (cargo xtask test installs it)");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["code"], "bad_request");
    let v = c.deny("r1", "not today").await.unwrap();
    assert_eq!(v["outcome"], "denied");
    assert_eq!(v["by"]["user"], "me");
    assert!(matches!(h.await.unwrap(), Outcome::Denied { .. }));
    let e = c.deny("r1", "again").await.unwrap_err();
    assert!(matches!(e, ApprovalError::Api { status: 409, .. }), "{e}");

    serving.abort();
    let _ = serving.await;
    assert!(!config.socket.exists(), "socket removed with the server");
}

#[tokio::test]
async fn admin_socket_self_approval_with_allow_self() {
    let (uid, _) = me();
    let f = Fixture::new("admin-self", &["me"], true, my_db());
    let config = AdminConfig {
        socket: f.path.parent().unwrap().join("admin.sock"),
        group: None,
        ..Default::default()
    };
    // A stale socket file from a previous run is replaced.
    drop(std::os::unix::net::UnixListener::bind(&config.socket).unwrap());
    assert!(config.socket.exists());
    let server = f
        .approvals
        .clone()
        .serve_admin(&config, Default::default())
        .await
        .unwrap();
    let serving = tokio::spawn(server.run());
    let c = AdminClient::new(&config.socket);
    let h = f.spawn_hold(request("r1", OP, uid), LONG);
    f.held("r1").await;
    let v = c
        .approve("r1", Some("30m"), Some("incident 42"))
        .await
        .unwrap();
    assert_eq!(v["outcome"], "approved");
    let gid = v["grant_id"].as_str().unwrap().to_owned();
    assert_eq!(v["grant"]["id"], gid.as_str());
    assert_eq!(v["grant"]["reason"], "incident 42");
    assert!(matches!(
        h.await.unwrap(),
        Outcome::Approved { grant: Some(_), .. }
    ));
    let grants = c.grants().await.unwrap();
    assert_eq!(grants.len(), 1);
    assert!(grants_table(&grants).contains(&gid));
    let v = c.revoke(&gid, None).await.unwrap();
    assert_eq!(v["outcome"], "revoked");
    assert!(c.grants().await.unwrap().is_empty());
    let e = c.revoke(&gid, None).await.unwrap_err();
    assert!(matches!(e, ApprovalError::Api { status: 404, .. }), "{e}");
    serving.abort();
}

#[tokio::test]
async fn a_non_socket_file_is_never_replaced() {
    let f = Fixture::simple("notsock");
    let socket = f.path.parent().unwrap().join("admin.sock");
    std::fs::write(&socket, "data").unwrap();
    let config = AdminConfig {
        socket: socket.clone(),
        group: None,
        ..Default::default()
    };
    assert!(matches!(
        f.approvals
            .clone()
            .serve_admin(&config, Default::default())
            .await,
        Err(ApprovalError::Socket { op: "replace", .. })
    ));
    assert_eq!(std::fs::read_to_string(&socket).unwrap(), "data");
}
