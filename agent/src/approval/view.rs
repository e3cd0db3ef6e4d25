//! What the admin API shows of held requests, grants and the service: the
//! JSON shapes of docs/admin-api.md.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use super::{Grant, HeldRequest, Slot};
use crate::core::Approver;

/// A held request, with everything an approver needs to decide.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct HeldView {
    /// The request as the data path described it (id, rule, reason,
    /// operation, method, masked URL, identity, process, body excerpt).
    #[serde(flatten)]
    pub request: Arc<HeldRequest>,
    /// Who a window grant from this request would cover.
    pub identity_key: String,
    /// RFC 3339.
    pub requested_at: String,
    pub waiting_s: u64,
    /// Seconds left before it is denied as expired.
    pub remaining_s: u64,
}

/// A window grant in force.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct GrantView {
    pub id: String,
    pub identity_key: String,
    pub rule: String,
    pub operation: String,
    /// The resources it covers (a prefix of their paths).
    pub scope: String,
    pub by: Approver,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The held request whose approval created it.
    pub request_id: String,
    pub created_at: String,
    pub expires_at: String,
    pub remaining_s: u64,
    /// Requests it has let through.
    pub uses: u64,
}

/// The `approvals` member of `GET /v1/status`.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Status {
    pub held: usize,
    pub grants: usize,
    /// With `[fleet]`: whether holds reach the fleet's approvers now
    /// (false: they are decided on this host only until it is back).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet: Option<bool>,
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

pub(super) fn held(s: &Slot, now: Instant) -> HeldView {
    let waited = now.saturating_duration_since(s.since);
    HeldView {
        request: s.request.clone(),
        identity_key: s.key.clone(),
        requested_at: rfc3339(s.at),
        waiting_s: waited.as_secs(),
        remaining_s: s.timeout.saturating_sub(waited).as_secs(),
    }
}

pub(super) fn grant(g: &Grant, now: Instant) -> GrantView {
    let remaining = g.until.saturating_duration_since(now);
    GrantView {
        id: g.id.clone(),
        identity_key: g.key.clone(),
        rule: g.rule.clone(),
        operation: g.operation.clone(),
        scope: g.scope.clone(),
        by: g.by.clone(),
        reason: g.reason.clone(),
        request_id: g.request_id.clone(),
        created_at: rfc3339(g.created),
        expires_at: rfc3339(g.created + g.window),
        remaining_s: round_up(remaining),
        uses: g.uses,
    }
}

/// Whole seconds, rounded up, so a live grant never shows 0.
fn round_up(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}
