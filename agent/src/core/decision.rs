//! What airlock decided about a request: the policy's `decision` and, for a
//! held request, the approval's `outcome` and who gave it.

use std::time::Duration;

use serde::Serialize;

/// What a rule decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Allow,
    Deny,
    /// Held until a human approves or denies it (or it times out → deny).
    Approve,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::Approve => "approve",
        }
    }

    /// How much it holds back: of two decisions about one request, the
    /// stricter stands (deny over approve over allow).
    pub(crate) fn strictness(self) -> u8 {
        match self {
            Self::Allow => 0,
            Self::Approve => 1,
            Self::Deny => 2,
        }
    }
}

/// The outcome; `decision` in the audit record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub action: Action,
    /// The rule that matched; absent when the default applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    pub reason: String,
    #[serde(skip)]
    pub timeout: Option<Duration>,
    /// Said only when it is `pass`.
    #[serde(skip_serializing_if = "ResponseMasking::is_mask")]
    pub response: ResponseMasking,
}

/// What reaches the client of an allowed request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMasking {
    /// Secrets in the response are masked (the default).
    #[default]
    Mask,
    /// The response is relayed as is.
    Pass,
}

impl ResponseMasking {
    fn is_mask(&self) -> bool {
        *self == Self::Mask
    }
}

/// How a hold ended (abandonment has no outcome: the future was dropped).
/// As JSON: `{"outcome": "approved", "by": {…}, "grant_id": …}`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub(crate) enum Outcome {
    /// Forward the request unchanged. `grant`: the window grant this
    /// approval created, or the live one that let the request through.
    Approved {
        by: Approver,
        #[serde(rename = "grant_id", skip_serializing_if = "Option::is_none")]
        grant: Option<String>,
    },
    /// Answer 403.
    Denied { by: Approver, reason: String },
    /// Nobody decided in time: answer 403.
    Expired,
    /// The hold could not be recorded: answer 503, forward nothing.
    AuditUnavailable,
    /// Not held: `limit` says which bound was reached. Answer 429.
    TooManyHeld { limit: String },
}

/// Longest window an approver may grant: a grant is a standing exception
/// to policy and should not outlive a working day. The fleet's decisions
/// table holds the same bound.
pub(crate) const MAX_GRANT: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Whoever decided: through the admin socket, or from the fleet's
/// database; `by` in approval records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Approver {
    /// From the kernel (SO_PEERCRED), not from the client; absent for a
    /// decision from the fleet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// From `/etc/passwd`; absent when the uid has no entry. For a fleet
    /// decision, the OS user the deciding command said it ran as.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// A fleet decision: the database role that made it, as PostgreSQL
    /// authenticated it (what makes it a decision).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// A fleet decision: the host the deciding command said it ran on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}
