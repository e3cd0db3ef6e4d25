//! Announcing new holds: a JSON POST per held request to
//! `approval.webhook_url` (a Slack/Teams relay), from one spawned task fed
//! by a bounded queue, so the data path never waits for it. Failures are
//! retried with exponential backoff, then logged and dropped. With
//! `approval.webhook_secret_file`, each POST is signed as GitHub signs its
//! webhooks: `X-Airlock-Signature-256: sha256=<hex HMAC-SHA256 of the
//! body>`, so the relay can tell airlock's notices from forged ones.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ring::hmac;
use serde::Serialize;
use tokio::sync::mpsc;

use super::{HeldRequest, identity_key};
use crate::identity::Fetcher;
use crate::tls::UpstreamTls;

/// Notifications waiting to be sent; beyond this they are dropped (and
/// logged): a dead relay must not grow memory.
const QUEUE: usize = 256;
/// Attempts per notification, and the wait before the first retry
/// (doubled each time: 1s, 2s, 4s, 8s).
const TRIES: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// The header carrying the body's signature.
pub(super) const SIGNATURE_HEADER: &str = "X-Airlock-Signature-256";

/// The POST body. The body excerpt is left out: it goes to a third party.
#[derive(Clone, Debug, Serialize)]
pub(super) struct Notice {
    /// Always `approval_requested`.
    pub event: &'static str,
    /// The held request's id, for `airlock approvals approve ID`.
    pub id: String,
    /// Where it is held (this machine's host name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub rule: String,
    pub reason: String,
    pub operation: String,
    pub method: String,
    pub url: String,
    /// The host the request will go to.
    pub target_host: String,
    /// The resource it acts on (what a grant's scope covers).
    pub resource: String,
    pub identity_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub github_actor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub github_repository: Option<String>,
    pub comm: String,
    pub pid: u32,
    pub uid: u32,
    pub timeout_s: u64,
    /// A one-line summary for relays that post plain text.
    pub text: String,
}

impl Notice {
    pub(super) fn new(r: &HeldRequest, timeout: Duration) -> Self {
        let github = r.identity.github.as_ref();
        let key = identity_key(&r.identity, &r.process);
        Self {
            event: "approval_requested",
            id: r.id.clone(),
            host: crate::audit::origin::host_name(),
            rule: r.rule.clone(),
            reason: r.reason.clone(),
            operation: r.operation.clone(),
            method: r.method.clone(),
            url: r.url.clone(),
            target_host: r.target_host.clone(),
            resource: r.resource.clone(),
            text: format!(
                "airlock holds {} ({} {}) by {key} from {} (pid {}): rule {} — {}. Approve: airlock approvals approve {}",
                r.operation,
                r.method,
                r.target_host,
                r.process.comm,
                r.process.pid,
                r.rule,
                r.reason,
                r.id
            ),
            identity_key: key,
            github_actor: github.and_then(|g| g.actor.clone()),
            github_repository: github.and_then(|g| g.repository.clone()),
            comm: r.process.comm.clone(),
            pid: r.process.pid,
            uid: r.process.uid,
            timeout_s: timeout.as_secs(),
        }
    }
}

/// The sending side of the webhook task.
#[derive(Debug)]
pub(super) struct Webhook {
    tx: mpsc::Sender<Notice>,
}

impl Webhook {
    /// Starts the delivery task (inside the tokio runtime); notices are
    /// signed with `secret` when there is one.
    pub(super) fn spawn(url: String, tls: Arc<UpstreamTls>, secret: Option<hmac::Key>) -> Self {
        let (tx, mut rx) = mpsc::channel::<Notice>(QUEUE);
        let fetcher = Fetcher::new(tls);
        tokio::spawn(async move {
            while let Some(notice) = rx.recv().await {
                let send = |n: &Notice| {
                    let body = serde_json::to_vec(n).map(Bytes::from);
                    let (fetcher, url, secret) = (&fetcher, &url, &secret);
                    async move {
                        let body = body.map_err(|e| e.to_string())?;
                        let headers = signature(&body, secret.as_ref());
                        fetcher
                            .post_json(url, body, &headers)
                            .await
                            .map_err(|e| e.to_string())
                    }
                };
                deliver(&notice, send, FIRST_BACKOFF).await;
            }
        });
        Self { tx }
    }

    /// Queues a notice for `request`; never waits.
    pub(super) fn notify(&self, request: &HeldRequest, timeout: Duration) {
        if self.tx.try_send(Notice::new(request, timeout)).is_err() {
            tracing::warn!(
                id = %request.id,
                "approval webhook queue full or stopped: notification dropped"
            );
        }
    }
}

/// The signature header for `body` (none without a key).
pub(super) fn signature(body: &[u8], key: Option<&hmac::Key>) -> Vec<(&'static str, String)> {
    key.map(|k| {
        let tag = hmac::sign(k, body);
        (
            SIGNATURE_HEADER,
            format!("sha256={}", crate::core::hex(tag.as_ref())),
        )
    })
    .into_iter()
    .collect()
}

/// Sends `notice` up to [`TRIES`] times, waiting `backoff`, then twice as
/// long, between attempts. Returns whether it was delivered.
pub(super) async fn deliver<F, Fut>(notice: &Notice, mut send: F, backoff: Duration) -> bool
where
    F: FnMut(&Notice) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut wait = backoff;
    for attempt in 1..=TRIES {
        match send(notice).await {
            Ok(()) => return true,
            Err(e) if attempt == TRIES => {
                tracing::error!(id = %notice.id, error = %e, "approval webhook failed {TRIES} times: giving up");
            }
            Err(e) => {
                tracing::warn!(id = %notice.id, attempt, error = %e, "approval webhook failed; retrying");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        }
    }
    false
}
