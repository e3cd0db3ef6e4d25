use std::time::Duration;

use serde_json::Value;

use super::webhook::{Notice, deliver};
use super::*;

use super::fixture::*;

#[tokio::test]
async fn approve_once_then_the_next_request_is_held_again() {
    let f = Fixture::simple("once");
    let h = f.spawn_hold(request("r1", OP, 1001), LONG);
    f.held("r1").await;
    let listed = f.approvals.list();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].identity_key, "oid:oid-1");
    f.approvals
        .approve("r1", &Caller::uid(1000), rel(None, Some("ok".into())))
        .unwrap();
    let out = h.await.unwrap();
    assert!(
        matches!(&out, Outcome::Approved { by, grant: None } if by.user.as_deref() == Some("alice")),
        "{out:?}"
    );
    assert!(f.approvals.list().is_empty());
    let h = f.spawn_hold(request("r2", OP, 1001), LONG);
    f.held("r2").await;
    f.approvals
        .deny("r2", &Caller::uid(1000), "not now")
        .unwrap();
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
        .approve(
            "r1",
            &Caller::uid(1000),
            rel(Some(Duration::from_secs(600)), None),
        )
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
    f.approvals
        .deny("r3", &Caller::uid(1000), "no exec")
        .unwrap();
    h.await.unwrap();
    // Revoked: held again.
    f.approvals
        .revoke(&gid, &Caller::uid(1002), Some("done".into()))
        .unwrap();
    assert!(f.approvals.grants().is_empty());
    let h = f.spawn_hold(request("r4", OP, 1001), LONG);
    f.held("r4").await;
    f.approvals.deny("r4", &Caller::uid(1000), "over").unwrap();
    h.await.unwrap();
    assert!(matches!(
        f.approvals.revoke(&gid, &Caller::uid(1000), None),
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
            uid: Some(1000),
            user: Some("alice".into()),
            role: None,
            host: None,
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
        f.approvals.deny("r1", &Caller::uid(1000), "  "),
        Err(ApprovalError::BadRequest(_))
    ));
    f.approvals
        .deny("r1", &Caller::uid(1000), "too risky")
        .unwrap();
    let out = h.await.unwrap();
    assert!(matches!(&out, Outcome::Denied { reason, .. } if reason == "too risky"));
    // A second decision: already decided, not "unknown".
    assert!(matches!(
        f.approvals
            .approve("r1", &Caller::uid(1000), rel(None, None)),
        Err(ApprovalError::AlreadyDecided {
            outcome: "denied",
            ..
        })
    ));
    assert!(matches!(
        f.approvals
            .approve("nope", &Caller::uid(1000), rel(None, None)),
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
        f.approvals
            .approve("r1", &Caller::uid(1000), rel(None, None)),
        Err(ApprovalError::AlreadyDecided {
            outcome: "abandoned",
            ..
        })
    ));
    let recs = f.records().await;
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[1]["event"], "abandoned");
    assert_eq!(recs[1]["request_id"], "r1");
    assert!(f.approvals.outcome_totals().contains(&("abandoned", 1)));
}

#[tokio::test]
async fn many_holds_are_decided_independently() {
    let f = Fixture::simple("many");
    // Four identities, five each: within the per-identity bound.
    let handles: Vec<_> = (0..20)
        .map(|i| {
            f.spawn_hold(
                request_by(&format!("r{i}"), &format!("oid-{}", i % 4)),
                LONG,
            )
        })
        .collect();
    for i in 0..20 {
        f.held(&format!("r{i}")).await;
    }
    assert_eq!(f.approvals.status().held, 20);
    for i in 0..20 {
        let id = format!("r{i}");
        if i % 2 == 0 {
            f.approvals
                .approve(&id, &Caller::uid(1000), rel(None, None))
                .unwrap();
        } else {
            f.approvals.deny(&id, &Caller::uid(1000), "odd").unwrap();
        }
    }
    for (i, h) in handles.into_iter().enumerate() {
        let out = h.await.unwrap();
        if i % 2 == 0 {
            assert!(matches!(out, Outcome::Approved { .. }), "{out:?}");
        } else {
            assert!(matches!(out, Outcome::Denied { .. }), "{out:?}");
        }
    }
    assert_eq!(f.approvals.status().held, 0);
}

#[tokio::test]
async fn self_approval_is_refused_unless_allowed() {
    let f = Fixture::simple("self");
    let h = f.spawn_hold(request("r1", OP, 1000), LONG);
    f.held("r1").await;
    assert!(matches!(
        f.approvals
            .approve("r1", &Caller::uid(1000), rel(None, None)),
        Err(ApprovalError::SelfApproval(_))
    ));
    // Still held; denying one's own agent is allowed.
    f.approvals
        .deny("r1", &Caller::uid(1000), "my mistake")
        .unwrap();
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
    f.approvals
        .approve("r1", &Caller::uid(1000), rel(None, None))
        .unwrap();
    assert!(matches!(h.await.unwrap(), Outcome::Approved { .. }));
}

#[tokio::test]
async fn outsiders_are_refused_and_audited() {
    let f = Fixture::simple("outsider");
    let h = f.spawn_hold(request("r1", OP, 1001), LONG);
    f.held("r1").await;
    // bob is not listed; root is not listed; an unknown uid has no name.
    for uid in [1001, 0, 4321] {
        assert!(matches!(
            f.approvals
                .approve("r1", &Caller::uid(uid), rel(None, None)),
            Err(ApprovalError::NotApprover(_))
        ));
    }
    assert!(matches!(
        f.approvals.deny("r1", &Caller::uid(1001), "x"),
        Err(ApprovalError::NotApprover(_))
    ));
    assert!(matches!(
        f.approvals.revoke("g-1", &Caller::uid(1001), None),
        Err(ApprovalError::NotApprover(_))
    ));
    // dave is in sre by primary gid, carol as a listed member.
    f.approvals
        .approve("r1", &Caller::uid(1003), rel(None, None))
        .unwrap();
    h.await.unwrap();
    let recs = f.records().await;
    let refused: Vec<&Value> = recs.iter().filter(|r| r["event"] == "refused").collect();
    assert_eq!(refused.len(), 5);
    assert_eq!(refused[0]["by"]["user"], "bob");
    assert_eq!(refused[1]["by"]["user"], "root");
    assert_eq!(refused[2]["by"]["uid"], 4321);
    assert!(refused[2]["by"].get("user").is_none());
    assert_eq!(refused[4]["grant_id"], "g-1");
    assert_eq!(f.approvals.status().held, 0);
    assert!(f.approvals.outcome_totals().contains(&("approved", 1)));
}

#[test]
fn groups_and_names_from_file_text() {
    let db = UserDb::parse(PASSWD, GROUP);
    assert_eq!(db.user_name(1000).as_deref(), Some("alice"));
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
            f.approvals
                .approve("r1", &Caller::uid(1000), rel(Some(w), None)),
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

#[tokio::test]
async fn holds_past_the_bounds_are_refused_at_once_and_others_still_held() {
    let config = ApprovalConfig {
        approvers: vec!["alice".into()],
        max_held: 3,
        max_held_per_identity: 2,
        ..ApprovalConfig::default()
    };
    let f = Fixture::with_config("bounds", config, UserDb::parse(PASSWD, GROUP));
    let _a = f.spawn_hold(request_by("a1", "oid-a"), LONG);
    let _b = f.spawn_hold(request_by("a2", "oid-a"), LONG);
    f.held("a1").await;
    f.held("a2").await;
    // The agent floods as one identity: refused at once, nothing held.
    let out = f.approvals.hold(request_by("a3", "oid-a"), LONG).await;
    let Outcome::TooManyHeld { limit } = out else {
        panic!("{out:?}")
    };
    assert!(limit.contains("approval.max_held_per_identity"), "{limit}");
    // Someone else is still heard, until the total bound.
    let _c = f.spawn_hold(request_by("b1", "oid-b"), LONG);
    f.held("b1").await;
    let out = f.approvals.hold(request_by("c1", "oid-c"), LONG).await;
    assert!(
        matches!(&out, Outcome::TooManyHeld { limit } if limit.contains("approval.max_held")),
        "{out:?}"
    );
    assert_eq!(f.approvals.status().held, 3);
    let recs = f.records().await;
    let overflow: Vec<&Value> = recs.iter().filter(|r| r["event"] == "overflow").collect();
    assert_eq!(overflow.len(), 2);
    assert_eq!(overflow[0]["request_id"], "a3");
    assert_eq!(overflow[0]["identity_key"], "oid:oid-a");
    assert_eq!(
        serde_json::to_value(&out).unwrap()["outcome"],
        "too_many_held"
    );
}

#[tokio::test]
async fn a_captured_process_decides_nothing_whatever_its_uid() {
    let f = Fixture::simple("captured");
    let h = f.spawn_hold(request("r1", OP, 1001), LONG);
    f.held("r1").await;
    // alice is an approver, but this call comes from the agent's cgroup.
    let agent = Caller {
        uid: 1000,
        captured: Some("it runs in the capture cgroup /agent".into()),
    };
    for e in [
        f.approvals
            .approve("r1", &agent, rel(Some(Duration::from_secs(60)), None)),
        f.approvals.deny("r1", &agent, "noise"),
    ] {
        let e = e.unwrap_err();
        assert!(matches!(e, ApprovalError::CapturedApprover { .. }), "{e}");
        assert_eq!(e.http(), (403, "captured_approver"));
    }
    assert!(matches!(
        f.approvals.revoke("g-1", &agent, None),
        Err(ApprovalError::CapturedApprover { .. })
    ));
    assert_eq!(f.approvals.status().held, 1, "still held");
    f.approvals
        .approve("r1", &Caller::uid(1000), rel(None, None))
        .unwrap();
    h.await.unwrap();
    let recs = f.records().await;
    let refused: Vec<&Value> = recs.iter().filter(|r| r["event"] == "refused").collect();
    assert_eq!(refused.len(), 3);
    assert_eq!(refused[0]["by"]["user"], "alice");
    assert!(
        refused[0]["reason"]
            .as_str()
            .unwrap()
            .contains("captured process (it runs in the capture cgroup /agent)"),
        "{}",
        refused[0]
    );
}

#[tokio::test]
async fn a_window_grant_covers_its_scope_only() {
    let f = Fixture::simple("scope");
    let in_rg = |id: &str, rg: &str| {
        let mut r = request(id, OP, 1001);
        r.resource = format!("/subscriptions/s/resourceGroups/{rg}");
        r
    };
    // Default scope: the held request's own resource.
    let h = f.spawn_hold(in_rg("r1", "rg1"), LONG);
    f.held("r1").await;
    f.approvals
        .approve(
            "r1",
            &Caller::uid(1000),
            rel(Some(Duration::from_secs(600)), None),
        )
        .unwrap();
    h.await.unwrap();
    let grants = f.approvals.grants();
    assert_eq!(grants[0].scope, "/subscriptions/s/resourceGroups/rg1");
    let out = f.approvals.hold(in_rg("r2", "RG1"), LONG).await;
    assert!(
        matches!(out, Outcome::Approved { grant: Some(_), .. }),
        "the same resource (case ignored) goes through: {out:?}"
    );
    let other = f.spawn_hold(in_rg("r3", "rg2"), LONG);
    f.held("r3").await;
    // A scope must cover the request it is given for, and be a scope.
    for (scope, why) in [
        ("/subscriptions/t", "does not cover"),
        ("namespace/payments", "Kubernetes"),
        ("rg2", "is not a scope"),
    ] {
        let e = f
            .approvals
            .approve(
                "r3",
                &Caller::uid(1000),
                Release {
                    window: Some(Duration::from_secs(600)),
                    scope: Some(scope.into()),
                    reason: None,
                },
            )
            .unwrap_err();
        assert!(e.to_string().contains(why), "{scope}: {e}");
    }
    let e = f
        .approvals
        .approve(
            "r3",
            &Caller::uid(1000),
            Release {
                window: None,
                scope: Some("/subscriptions/s".into()),
                reason: None,
            },
        )
        .unwrap_err();
    assert!(e.to_string().contains("window"), "{e}");
    // A subscription-wide grant from it covers every group in it.
    f.approvals
        .approve(
            "r3",
            &Caller::uid(1000),
            Release {
                window: Some(Duration::from_secs(600)),
                scope: Some("/subscriptions/s/".into()),
                reason: Some("cleanup day".into()),
            },
        )
        .unwrap();
    other.await.unwrap();
    let out = f.approvals.hold(in_rg("r4", "rg9"), LONG).await;
    assert!(
        matches!(out, Outcome::Approved { grant: Some(_), .. }),
        "{out:?}"
    );
    let recs = f.records().await;
    let granted: Vec<&Value> = recs.iter().filter(|r| r["event"] == "granted").collect();
    assert_eq!(granted[1]["scope"], "/subscriptions/s");
}

#[test]
fn webhook_notices_are_signed_as_github_signs_and_name_the_target() {
    // RFC 4231 test case 2: key "Jefe".
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"Jefe");
    let headers = super::webhook::signature(b"what do ya want for nothing?", Some(&key));
    assert_eq!(
        headers,
        [(
            "X-Airlock-Signature-256",
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843".to_owned()
        )]
    );
    assert!(super::webhook::signature(b"x", None).is_empty());
    let notice = Notice::new(&request("r1", OP, 1001), LONG);
    let v = serde_json::to_value(&notice).unwrap();
    assert_eq!(v["target_host"], "management.azure.com");
    assert_eq!(v["resource"], "/subscriptions/s/resourcegroups/rg1");
    assert!(v.get("body_excerpt").is_none(), "no body to a third party");
}

#[test]
fn the_webhook_key_must_be_a_key() {
    let dir = crate::scratch_dir("webhook-key");
    std::fs::create_dir_all(&dir).unwrap();
    let short = dir.join("short");
    std::fs::write(&short, "abc\n").unwrap();
    assert!(
        webhook_key(&short)
            .unwrap_err()
            .to_string()
            .contains("shorter than 16")
    );
    assert!(webhook_key(&dir.join("missing")).is_err());
    let good = dir.join("good");
    std::fs::write(&good, "0123456789abcdef0123\n").unwrap();
    assert!(webhook_key(&good).is_ok());
    std::fs::remove_dir_all(&dir).unwrap();
}
