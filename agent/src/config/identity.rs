//! `[identity]`: which token issuers airlock trusts, and how it checks them.

use serde::{Deserialize, Serialize};

/// Clock skew tolerated on `exp`/`nbf`, seconds.
pub(super) const DEFAULT_LEEWAY_S: u64 = 60;
/// Scheduled JWKS refresh, seconds.
pub(super) const DEFAULT_JWKS_REFRESH_S: u64 = 3600;
/// Least time between two refreshes forced by an unknown `kid`, seconds:
/// a flood of forged `kid`s must not become a flood of fetches.
pub(super) const DEFAULT_JWKS_MIN_REFRESH_S: u64 = 30;
/// Validated tokens remembered (by hash) until they expire.
pub(super) const DEFAULT_TOKEN_CACHE: usize = 10_000;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    pub leeway_s: u64,
    pub jwks_refresh_s: u64,
    pub jwks_min_refresh_s: u64,
    pub token_cache: usize,
    /// Trusted issuers. None: tokens are recorded with `verified: false`.
    #[serde(rename = "issuer", skip_serializing_if = "Vec::is_empty")]
    pub issuers: Vec<IssuerConfig>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            leeway_s: DEFAULT_LEEWAY_S,
            jwks_refresh_s: DEFAULT_JWKS_REFRESH_S,
            jwks_min_refresh_s: DEFAULT_JWKS_MIN_REFRESH_S,
            token_cache: DEFAULT_TOKEN_CACHE,
            issuers: Vec::new(),
        }
    }
}

/// `[[identity.issuer]]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The exact `iss` accepted. `{tid}` stands for any tenant id and must
    /// equal the token's `tid` claim (Entra multi-tenant issuers).
    pub issuer: String,
    /// `aud` values accepted; at least one.
    pub audiences: Vec<String>,
    /// Where the signing keys are; default: OIDC discovery at
    /// `{issuer}/.well-known/openid-configuration` (`{tid}` as `common`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
}

impl IdentityConfig {
    pub(super) fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.jwks_refresh_s == 0 {
            return Err(("identity.jwks_refresh_s", "must be at least 1".to_owned()));
        }
        if self.token_cache == 0 {
            return Err(("identity.token_cache", "must be at least 1".to_owned()));
        }
        for i in &self.issuers {
            if !i.issuer.starts_with("https://") {
                return Err((
                    "identity.issuer",
                    format!("{:?} is not an https:// URL", i.issuer),
                ));
            }
            if i.audiences.is_empty() {
                return Err((
                    "identity.issuer",
                    format!("{:?}: audiences must list at least one value", i.issuer),
                ));
            }
            if let Some(uri) = &i.jwks_uri
                && !uri.starts_with("https://")
            {
                return Err((
                    "identity.issuer",
                    format!("jwks_uri {uri:?} is not an https:// URL"),
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = self.issuers.iter().find(|i| !seen.insert(&i.issuer)) {
            return Err((
                "identity.issuer",
                format!("{:?} is configured twice", dup.issuer),
            ));
        }
        Ok(())
    }
}
