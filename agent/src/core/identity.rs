//! The caller as a request's credential describes it: `identity` in the
//! audit record, what policy rules match and grants are keyed by.

use serde::Serialize;

/// What kind of credential a request carried.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// No credential at all.
    #[default]
    None,
    /// A bearer JWT (Entra ID, GitHub Actions OIDC, any OIDC issuer).
    Jwt,
    /// A bearer token that is not a JWT (opaque).
    Bearer,
    /// Azure Storage `SharedKey`/`SharedKeyLite`: the account key itself
    /// signed the request.
    SharedKey,
    /// An Azure Storage shared access signature in the query.
    Sas,
    /// HTTP Basic.
    Basic,
    /// A managed identity's token asked of an instance metadata service:
    /// no credential in the request, the host's identity is the caller.
    ManagedIdentity,
}

impl CredentialKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Jwt => "jwt",
            Self::Bearer => "bearer",
            Self::SharedKey => "shared_key",
            Self::Sas => "sas",
            Self::Basic => "basic",
            Self::ManagedIdentity => "managed_identity",
        }
    }
}

/// The caller as far as airlock can tell; `identity` in the audit record.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Identity {
    pub kind: CredentialKind,
    /// The signature was checked against a configured issuer's keys and
    /// every claim check passed.
    pub verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oid: Option<String>,
    /// `upn`, else `unique_name`, else `preferred_username`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upn: Option<String>,
    /// `appid` (v1) or `azp` (v2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// `app` or `user` (Entra `idtyp`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idtyp: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// The token had too many groups to carry them (`_claim_names`): the
    /// list above is incomplete, not empty.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub groups_overage: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Entra directory role template ids.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub wids: Vec<String>,
    /// Managed identity: the user-assigned identity asked for by its ARM
    /// resource id (`msi_res_id`); its client id is `app_id`, its object
    /// id `oid`, and none of the three is the system-assigned identity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msi_resource: Option<String>,
    /// Storage account named by a SharedKey header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// When the credential stops being valid (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// `sha256:` and the first 16 hex digits of the credential's hash:
    /// enough to correlate records, useless to replay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Why validation failed (absent when it passed or was not attempted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub github: Option<GithubInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sas: Option<SasInfo>,
    /// Every other credential the request carries, which the upstream
    /// receives too (a SAS beside a bearer token, ARM's auxiliary tokens,
    /// Storage's copy-source credentials): each is judged like this one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<Identity>,
}

impl Identity {
    /// A credential that failed validation (as opposed to one airlock had no
    /// issuer to check against).
    pub fn invalid(&self) -> bool {
        self.error.is_some()
    }
}

/// A GitHub Actions workflow run: from a GitHub OIDC token, or linked to an
/// Azure token that such a token obtained.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GithubInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_workflow_ref: Option<String>,
    /// Fingerprint of the GitHub token, when this was linked through a
    /// token exchange.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

/// The parameters of a shared access signature (never its `sig`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SasInfo {
    /// Service version `sv`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sv: Option<String>,
    /// Permissions `sp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sp: Option<String>,
    /// Start `st` and expiry `se`, as given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub st: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub se: Option<String>,
    /// User delegation: the Entra object id that signed the delegation key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skoid: Option<String>,
    /// Lifetime from `st` (or now) to `se`, seconds; absent when there is
    /// no parseable expiry, which policy treats as unbounded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifetime_s: Option<i64>,
}
