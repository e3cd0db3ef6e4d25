//! `[approval]` (who may release held requests, how long they wait, where
//! new holds are announced) and `[admin]` (the local socket that serves the
//! approvals API).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How long a held request waits for a human when its rule names no
/// timeout.
pub(crate) const DEFAULT_APPROVAL_TIMEOUT: &str = "5m";
/// Requests held at once, in all and per identity: an agent that floods
/// holds is refused at once (429) instead of growing memory and burying
/// the approvers' queue.
pub(crate) const DEFAULT_MAX_HELD: usize = 100;
pub(crate) const DEFAULT_MAX_HELD_PER_IDENTITY: usize = 10;
/// Where the admin API listens.
pub(crate) const DEFAULT_ADMIN_SOCKET: &str = "/run/airlock/admin.sock";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalConfig {
    /// User names and `group:NAME` entries (Unix groups) allowed to approve
    /// or deny held requests. Empty: nobody can, so every held request
    /// times out and is denied.
    pub approvers: Vec<String>,
    /// Wait for a decision (humantime: `"5m"`, `"90s"`); a rule's own
    /// `timeout` wins.
    pub timeout: String,
    /// Let an approver release a request made by a process running under
    /// their own uid (off: the agent's user cannot approve its own agent).
    pub allow_self: bool,
    /// `https://` URL that receives a JSON POST for every new hold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// File holding the webhook's HMAC-SHA256 key: each POST is signed
    /// (`X-Airlock-Signature-256: sha256=<hex>`). Read at start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret_file: Option<PathBuf>,
    /// Requests held at once, in all; past it, one more that would be
    /// held is refused at once (429 `TooManyHeld`).
    pub max_held: usize,
    /// Requests held at once for one identity (the grant key).
    pub max_held_per_identity: usize,
}

impl Default for ApprovalConfig {
    fn default() -> Self {
        Self {
            approvers: Vec::new(),
            timeout: DEFAULT_APPROVAL_TIMEOUT.to_owned(),
            allow_self: false,
            webhook_url: None,
            webhook_secret_file: None,
            max_held: DEFAULT_MAX_HELD,
            max_held_per_identity: DEFAULT_MAX_HELD_PER_IDENTITY,
        }
    }
}

impl ApprovalConfig {
    /// Settings here that weaken a security default, said out loud
    /// (`allow_self` weakens only with some capture selections: see
    /// `Config::weakened`).
    pub(super) fn weakened(&self, out: &mut Vec<&'static str>) {
        if self.webhook_url.is_some() && self.webhook_secret_file.is_none() {
            out.push(
                "approval.webhook_url without approval.webhook_secret_file: notices are not signed, so the relay cannot tell them from forged ones",
            );
        }
    }

    /// The validated `timeout`.
    pub fn timeout(&self) -> Duration {
        humantime::parse_duration(&self.timeout).expect("validated at load")
    }

    pub(super) fn validate(&self) -> Result<(), (&'static str, String)> {
        match humantime::parse_duration(&self.timeout) {
            Ok(d) if d.is_zero() => {
                return Err(("approval.timeout", "must be longer than 0s".to_owned()));
            }
            Ok(_) => {}
            Err(e) => {
                return Err((
                    "approval.timeout",
                    format!("{:?} is not a duration such as \"5m\": {e}", self.timeout),
                ));
            }
        }
        for a in &self.approvers {
            let name = a.strip_prefix("group:").unwrap_or(a);
            if name.trim().is_empty() || name.contains([':', ' ', '\n']) {
                return Err((
                    "approval.approvers",
                    format!("{a:?} is not a user name or group:NAME"),
                ));
            }
        }
        if self.max_held == 0 || self.max_held_per_identity == 0 {
            return Err((
                if self.max_held == 0 {
                    "approval.max_held"
                } else {
                    "approval.max_held_per_identity"
                },
                "must be at least 1".to_owned(),
            ));
        }
        if self.webhook_secret_file.is_some() && self.webhook_url.is_none() {
            return Err((
                "approval.webhook_secret_file",
                "signs webhook notices: set approval.webhook_url too".to_owned(),
            ));
        }
        if let Some(f) = &self.webhook_secret_file
            && !f.is_absolute()
        {
            return Err((
                "approval.webhook_secret_file",
                "must be an absolute path".to_owned(),
            ));
        }
        if let Some(url) = &self.webhook_url {
            let ok = url
                .parse::<http::Uri>()
                .is_ok_and(|u| u.scheme_str() == Some("https") && u.host().is_some());
            if !ok {
                return Err((
                    "approval.webhook_url",
                    format!("{url:?} is not an https:// URL"),
                ));
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Unix socket of the admin API (mode 0660; its directory is created
    /// 0750 if missing).
    pub socket: PathBuf,
    /// Group (name or gid) that owns the socket, so its members can reach
    /// the API without root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Also serve `GET /metrics` (and nothing else) on this TCP address,
    /// for a Prometheus scraper. The metrics name operations and detectors,
    /// never secrets; keep it on loopback or a management network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<std::net::SocketAddr>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            socket: PathBuf::from(DEFAULT_ADMIN_SOCKET),
            group: None,
            metrics_listen: None,
        }
    }
}

impl AdminConfig {
    pub(super) fn validate(&self) -> Result<(), (&'static str, String)> {
        if !self.socket.is_absolute() {
            return Err(("admin.socket", "must be an absolute path".to_owned()));
        }
        if self.group.as_deref().is_some_and(|g| g.trim().is_empty()) {
            return Err(("admin.group", "must not be empty".to_owned()));
        }
        Ok(())
    }
}
