//! The `approval` audit record: one per step of a hold's or a grant's life.
//! Field names are a contract (docs/audit.md).

use serde::Serialize;

use crate::core::Approver;
use crate::core::record::RecordKind;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Event {
    /// A request was held for a human.
    Requested,
    /// An approver released it (once, or with a window grant).
    Approved,
    /// An approver refused it.
    Denied,
    /// Nobody decided within the timeout: denied.
    Expired,
    /// The client went away while held; nothing was forwarded.
    Abandoned,
    /// A window grant was created.
    Granted,
    /// A live grant let a request through without holding it.
    Used,
    /// A grant was ended before its time.
    Revoked,
    /// Someone not allowed to decide tried to.
    Refused,
    /// Not held: too many requests were held already (answered 429).
    Overflow,
}

impl Event {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Expired => "expired",
            Self::Abandoned => "abandoned",
            Self::Granted => "granted",
            Self::Used => "used",
            Self::Revoked => "revoked",
            Self::Refused => "refused",
            Self::Overflow => "overflow",
        }
    }
}

/// `kind: "approval"`.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ApprovalRecord {
    pub kind: RecordKind,
    pub event: Event,
    /// The held request's audit `id` (its `http` records share it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The grant created, used or revoked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
    /// Who acted (approved, denied, revoked, or was refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<Approver>,
    /// The approver's reason; why a refusal happened; the rule's reason on
    /// `requested`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Grant key: who the grant covers (see `approval::identity_key`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_key: Option<String>,
    /// `granted`: the resources the grant covers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// `requested`: how long it may wait; `granted`: the window. Seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<u64>,
    /// How long the request had waited when decided, milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waited_ms: Option<u64>,
}

impl ApprovalRecord {
    pub(crate) fn new(event: Event) -> Self {
        Self {
            kind: RecordKind::Approval,
            event,
            request_id: None,
            grant_id: None,
            by: None,
            reason: None,
            rule: None,
            operation: None,
            identity_key: None,
            scope: None,
            duration_s: None,
            waited_ms: None,
        }
    }
}
