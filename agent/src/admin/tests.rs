use std::os::unix::fs::{MetadataExt, PermissionsExt};

use serde_json::Value;

use super::*;
use crate::approval::fixture::*;
use crate::config::AdminConfig;
use crate::core::Outcome;

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
    let server = AdminServer::bind(f.approvals.clone(), &config, Default::default())
        .await
        .unwrap();
    let meta = std::fs::metadata(&config.socket).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(meta.gid(), gid);
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o750
    );
    let serving = tokio::spawn(server.run(None));
    // A live socket: a second airlock must not take it over.
    assert!(matches!(
        AdminServer::bind(f.approvals.clone(), &config, Default::default()).await,
        Err(AdminError::AlreadyRunning(_))
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
    let e = c.approve("r1", Some("10m"), None, None).await.unwrap_err();
    assert!(
        matches!(&e, AdminError::Api { status: 403, code, .. } if code == "self_approval"),
        "{e}"
    );
    let e = c.approve("r1", Some("soon"), None, None).await.unwrap_err();
    assert!(matches!(e, AdminError::Api { status: 400, .. }), "{e}");
    // Without capture nothing is captured, and a gone process is not
    // "not captured".
    let me = c.process(std::process::id()).await.unwrap();
    assert_eq!(me["captured"], false, "{me}");
    assert_eq!(me["tells_agent_apart"], false, "{me}");
    let e = c.process(u32::MAX - 1).await.unwrap_err();
    assert!(matches!(e, AdminError::Api { status: 404, .. }), "{e}");
    let e = c.show("zzz").await.unwrap_err();
    assert!(matches!(e, AdminError::Api { status: 404, .. }), "{e}");
    let e = c.deny("r1", "").await.unwrap_err();
    assert!(matches!(e, AdminError::Api { status: 400, .. }), "{e}");
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
    assert!(matches!(e, AdminError::Api { status: 409, .. }), "{e}");

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
    let server = AdminServer::bind(f.approvals.clone(), &config, Default::default())
        .await
        .unwrap();
    let serving = tokio::spawn(server.run(None));
    let c = AdminClient::new(&config.socket);
    let h = f.spawn_hold(request("r1", OP, uid), LONG);
    f.held("r1").await;
    let v = c
        .approve("r1", Some("30m"), None, Some("incident 42"))
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
    assert!(matches!(e, AdminError::Api { status: 404, .. }), "{e}");
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
        AdminServer::bind(f.approvals.clone(), &config, Default::default()).await,
        Err(AdminError::Socket { op: "replace", .. })
    ));
    assert_eq!(std::fs::read_to_string(&socket).unwrap(), "data");
}
