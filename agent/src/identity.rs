//! Who is calling: the credential on each intercepted request, recognised
//! (Entra/OIDC bearer JWT, Storage SharedKey, SAS), validated where airlock
//! can (JWTs against configured issuers' JWKS), and reduced to the
//! [`Identity`] the audit record and policy see. A token itself is never
//! kept: only its kind, its claims and a short fingerprint.

mod cache;
pub mod crypto;
mod fetch;
mod jwks;
mod jwt;
mod link;
mod storage;
#[cfg(test)]
mod tests;

pub use fetch::{FetchError, Fetcher};
pub use link::{Links, client_assertion, form_field};

use std::sync::Arc;

use serde::Serialize;

use crate::config::IdentityConfig;
use crate::tls::UpstreamTls;

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

/// Identifies the caller of each request: owns the issuers' key caches, the
/// validated-token cache and the GitHub→Azure token links.
#[derive(Debug)]
pub struct Identifier {
    issuers: Vec<Arc<jwt::Issuer>>,
    leeway_s: u64,
    cache: cache::TokenCache,
    /// Shared with the identifier a config reload replaces this one with.
    links: Arc<Links>,
    /// The key refresh tasks; they end with this identifier.
    refresh: std::sync::Mutex<Vec<tokio::task::AbortHandle>>,
}

impl Drop for Identifier {
    fn drop(&mut self) {
        for task in self
            .refresh
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }
}

impl Identifier {
    /// Builds the identifier; key sets are fetched on first use and then on
    /// the configured schedule ([`Identifier::start_refresh`]). `links` are
    /// the GitHub→Azure attributions, kept across reloads.
    pub fn new(config: &IdentityConfig, tls: Arc<UpstreamTls>, links: Arc<Links>) -> Self {
        crypto::install();
        let fetcher = Arc::new(fetch::Fetcher::new(tls));
        let issuers = config
            .issuers
            .iter()
            .map(|c| Arc::new(jwt::Issuer::new(c, fetcher.clone(), config)))
            .collect();
        Self {
            issuers,
            leeway_s: config.leeway_s,
            cache: cache::TokenCache::new(config.token_cache),
            links,
            refresh: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Refreshes every issuer's keys now and then on its schedule, for as
    /// long as this identifier lives.
    pub fn start_refresh(&self) {
        let mut tasks = self.refresh.lock().unwrap_or_else(|p| p.into_inner());
        tasks.extend(
            self.issuers
                .iter()
                .map(|i| i.clone().spawn_refresh().abort_handle()),
        );
    }

    /// The identity behind `headers`/`query`.
    pub async fn identify(&self, headers: &http::HeaderMap, query: Option<&str>) -> Identity {
        let auth = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if let Some(auth) = auth {
            let (scheme, rest) = auth.trim().split_once(' ').unwrap_or((auth, ""));
            let rest = rest.trim();
            // GitHub's own scheme for OAuth and personal tokens.
            if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token") {
                return self.bearer(rest).await;
            }
            if let Some(id) = storage::shared_key(scheme, rest) {
                return id;
            }
            if scheme.eq_ignore_ascii_case("basic") {
                return Identity {
                    kind: CredentialKind::Basic,
                    fingerprint: Some(fingerprint(rest)),
                    ..Identity::default()
                };
            }
        }
        if let Some(id) = query.and_then(storage::sas) {
            return id;
        }
        Identity::default()
    }

    /// A bearer token: validated JWT, unverified JWT, or opaque.
    pub async fn bearer(&self, token: &str) -> Identity {
        // A cached identity carries its token's fingerprint already: one
        // SHA-256 of the token per request (the cache key), not two.
        let mut id = match self.cache.get(token) {
            Some(id) => id,
            None => {
                let (mut id, cache_until) =
                    jwt::identify(token, &self.issuers, self.leeway_s).await;
                id.fingerprint = Some(fingerprint(token));
                if let Some(until) = cache_until {
                    self.cache.put(token, id.clone(), until);
                }
                id
            }
        };
        if id.github.is_none() {
            id.github = self
                .links
                .get(id.fingerprint.as_deref().unwrap_or_default());
        }
        id
    }

    /// Tokens obtained with a GitHub OIDC assertion, attributed to its run.
    pub fn links(&self) -> &Arc<Links> {
        &self.links
    }

    /// Whether any issuer is configured (else nothing can be verified).
    pub fn has_issuers(&self) -> bool {
        !self.issuers.is_empty()
    }
}

/// `sha256:` + 16 hex digits of SHA-256(`secret`).
pub fn fingerprint(secret: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, secret.as_bytes());
    let mut out = String::with_capacity(23);
    out.push_str("sha256:");
    for b in &digest.as_ref()[..8] {
        out.push_str(&format!("{b:02x}"));
    }
    out
}
