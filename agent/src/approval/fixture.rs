//! What the approval tests and the admin API's tests share: a registry
//! over a scratch audit log, with its users from fixed text.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::{Approvals, HeldRequest, Release, Users};
use crate::audit::AuditLog;
use crate::config::{ApprovalConfig, AuditConfig, Durability};
use crate::core::{Identity, Outcome, ProcessInfo};
use crate::users::UserDb;

pub(crate) const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/bash
# a comment
alice:x:1000:1000::/home/alice:/bin/sh
bob:x:1001:1001::/home/bob:/bin/sh
carol:x:1002:1002::/home/carol:/bin/sh
dave:x:1003:2000::/home/dave:/bin/sh
broken line
";
pub(crate) const GROUP: &str = "\
root:x:0:
alice:x:1000:
sre:x:2000:carol, erin
wheel:x:10:alice
";

pub(crate) struct Fixture {
    pub(crate) approvals: Arc<Approvals>,
    pub(crate) audit: AuditLog,
    pub(crate) path: PathBuf,
}

impl Fixture {
    pub(crate) fn new(tag: &str, approvers: &[&str], allow_self: bool, db: UserDb) -> Self {
        let config = ApprovalConfig {
            approvers: approvers.iter().map(|s| (*s).to_owned()).collect(),
            allow_self,
            ..ApprovalConfig::default()
        };
        Self::with_config(tag, config, db)
    }

    pub(crate) fn with_config(tag: &str, config: ApprovalConfig, db: UserDb) -> Self {
        let dir = crate::scratch_dir(&format!("approval-{tag}"));
        let path = dir.join("audit.jsonl");
        let audit = AuditLog::open(&AuditConfig {
            path: path.clone(),
            durability: Durability::Written,
            ..AuditConfig::default()
        })
        .unwrap();
        let approvals = Arc::new(Approvals::build(
            &config,
            audit.clone(),
            Users::Fixed(db),
            None,
            None,
        ));
        Self {
            approvals,
            audit,
            path,
        }
    }

    pub(crate) fn simple(tag: &str) -> Self {
        Self::new(
            tag,
            &["alice", "group:sre"],
            false,
            UserDb::parse(PASSWD, GROUP),
        )
    }

    /// The `approval` records written so far.
    pub(crate) async fn records(&self) -> Vec<Value> {
        self.audit.sync().await.unwrap();
        std::fs::read_to_string(&self.path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|r| r["kind"] == "approval")
            .collect()
    }

    pub(crate) async fn events(&self) -> Vec<String> {
        self.records()
            .await
            .iter()
            .map(|r| r["event"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Waits until `id` is listed as held.
    pub(crate) async fn held(&self, id: &str) {
        for _ in 0..500 {
            if self.approvals.get(id).is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        panic!("{id} was never held");
    }

    pub(crate) fn spawn_hold(
        &self,
        req: HeldRequest,
        timeout: Duration,
    ) -> tokio::task::JoinHandle<Outcome> {
        let a = self.approvals.clone();
        tokio::spawn(async move { a.hold(req, timeout).await })
    }
}

pub(crate) fn request(id: &str, operation: &str, uid: u32) -> HeldRequest {
    HeldRequest {
        id: id.to_owned(),
        rule: "resource-group-delete".into(),
        reason: "deletes everything in it".into(),
        operation: operation.to_owned(),
        method: "DELETE".into(),
        url: "https://management.azure.com/subscriptions/s/resourcegroups/rg1".into(),
        target_host: "management.azure.com".into(),
        resource: "/subscriptions/s/resourcegroups/rg1".into(),
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

/// An approval as an approver gives it (no scope: the request's own).
pub(crate) fn rel(window: Option<Duration>, reason: Option<String>) -> Release {
    Release {
        window,
        scope: None,
        reason,
    }
}

/// `request`, made with a token for object id `oid` (another identity).
pub(crate) fn request_by(id: &str, oid: &str) -> HeldRequest {
    let mut r = request(id, OP, 1001);
    Arc::make_mut(&mut r.identity).oid = Some(oid.to_owned());
    r
}

pub(crate) const OP: &str = "Microsoft.Resources/subscriptions/resourceGroups/delete";
pub(crate) const LONG: Duration = Duration::from_secs(60);

/// The test's own uid and gid, as the kernel reports them over the socket.
pub(crate) fn me() -> (u32, u32) {
    let m = std::fs::metadata("/proc/self").unwrap();
    (m.uid(), m.gid())
}

pub(crate) fn my_db() -> UserDb {
    let (uid, gid) = me();
    UserDb::parse(&format!("me:x:{uid}:{gid}::/:/bin/sh\n"), "")
}
