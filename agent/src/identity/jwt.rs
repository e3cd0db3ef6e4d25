//! Bearer JWTs: the claims airlock records (Entra ID v1/v2, GitHub Actions
//! OIDC) and their validation against a configured issuer — allowed
//! asymmetric algorithm, key from the issuer's JWKS by `kid`, the JWK's own
//! `alg` honoured, `iss` exact, `aud` listed, `exp`/`nbf` within leeway.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::Value;

use super::crypto::ALLOWED;
use super::fetch::Fetcher;
use super::jwks::{Jwks, Source};
use crate::config::{IdentityConfig, IssuerConfig};
use crate::core::{CredentialKind, GithubInfo, Identity};

/// The real GitHub Actions OIDC issuer.
pub(super) const GITHUB_ACTIONS_ISSUER: &str = "https://token.actions.githubusercontent.com";
/// Stands for the tenant id in a multi-tenant issuer.
const TENANT_PLACEHOLDER: &str = "{tid}";

/// One trusted issuer and its keys.
#[derive(Debug)]
pub(super) struct Issuer {
    issuer: String,
    audiences: Vec<String>,
    jwks: Arc<Jwks>,
}

impl Issuer {
    pub(super) fn new(c: &IssuerConfig, fetcher: Arc<Fetcher>, config: &IdentityConfig) -> Self {
        let templated = c.issuer.contains(TENANT_PLACEHOLDER);
        let source = match &c.jwks_uri {
            Some(uri) => Source::Jwks(uri.clone()),
            None => Source::Discovery {
                url: format!(
                    "{}/.well-known/openid-configuration",
                    c.issuer
                        .replace(TENANT_PLACEHOLDER, "common")
                        .trim_end_matches('/')
                ),
                // A multi-tenant document names the template, not a tenant.
                expect_issuer: (!templated).then(|| c.issuer.clone()),
            },
        };
        let jwks = Jwks::new(
            source,
            fetcher,
            Duration::from_secs(config.jwks_refresh_s),
            Duration::from_secs(config.jwks_min_refresh_s),
        );
        Self {
            issuer: c.issuer.clone(),
            audiences: c.audiences.clone(),
            jwks: Arc::new(jwks),
        }
    }

    pub(super) fn spawn_refresh(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.jwks.clone().run_schedule())
    }

    /// `iss` exactly, or the template with `{tid}` as the token's `tid`.
    fn accepts(&self, iss: &str, tid: Option<&str>) -> bool {
        if !self.issuer.contains(TENANT_PLACEHOLDER) {
            return self.issuer == iss;
        }
        tid.is_some_and(|t| !t.is_empty() && self.issuer.replace(TENANT_PLACEHOLDER, t) == iss)
    }
}

/// The token's identity and, when it may be cached, until when.
pub(super) async fn identify(
    token: &str,
    issuers: &[Arc<Issuer>],
    leeway_s: u64,
) -> (Identity, Option<SystemTime>) {
    let Some((header, claims)) = split(token) else {
        return (
            Identity {
                kind: CredentialKind::Bearer,
                ..Identity::default()
            },
            None,
        );
    };
    let mut id = from_claims(&claims);
    let expires = claims["exp"].as_u64().map(epoch);
    if issuers.is_empty() {
        // Nothing to check against: recorded as claimed, and said so.
        return (id, expires);
    }
    match validate(token, &header, &claims, issuers, leeway_s).await {
        Ok(()) => {
            id.verified = true;
            (id, expires)
        }
        Err(why) => {
            id.error = Some(why);
            (id, None)
        }
    }
}

/// The claims of `token` once it validates against `issuer` (exactly as a
/// bearer token's: the fleet console's ID tokens); why not, else.
pub(super) async fn verified_claims(
    token: &str,
    issuer: &Arc<Issuer>,
    leeway_s: u64,
) -> Result<Value, String> {
    let (header, claims) = split(token).ok_or("not a JWT")?;
    validate(
        token,
        &header,
        &claims,
        std::slice::from_ref(issuer),
        leeway_s,
    )
    .await?;
    Ok(claims)
}

/// Header and payload of a compact JWS, or `None` if `token` is not one.
pub(crate) fn split(token: &str) -> Option<(Value, Value)> {
    let mut parts = token.split('.');
    let (h, p, _sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let decode = |s: &str| -> Option<Value> {
        let v: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(s).ok()?).ok()?;
        v.is_object().then_some(v)
    };
    let header = decode(h)?;
    header.get("alg")?;
    Some((header, decode(p)?))
}

async fn validate(
    token: &str,
    header: &Value,
    claims: &Value,
    issuers: &[Arc<Issuer>],
    leeway_s: u64,
) -> Result<(), String> {
    let iss = claims["iss"].as_str().ok_or("token has no iss claim")?;
    let issuer = issuers
        .iter()
        .find(|i| i.accepts(iss, claims["tid"].as_str()))
        .ok_or_else(|| format!("issuer {iss:?} is not trusted"))?;
    let alg_name = header["alg"].as_str().unwrap_or("");
    let alg: Algorithm = alg_name
        .parse()
        .ok()
        .filter(|a| ALLOWED.contains(a))
        .ok_or_else(|| format!("algorithm {alg_name:?} is not allowed"))?;
    let kid = header["kid"].as_str();
    let key = issuer.jwks.key(kid).await.ok_or_else(|| {
        format!(
            "no signing key {:?} at {:?}",
            kid.unwrap_or(""),
            issuer.issuer
        )
    })?;
    if !key.allows(alg) {
        return Err(format!("algorithm {alg_name} does not match the key's"));
    }
    let mut v = Validation::new(alg);
    v.set_issuer(&[iss]);
    v.set_audience(&issuer.audiences);
    v.set_required_spec_claims(&["exp", "iss", "aud"]);
    v.leeway = leeway_s;
    v.validate_nbf = true;
    jsonwebtoken::decode::<Value>(token, &key.key, &v)
        .map(drop)
        .map_err(|e| describe(e.kind()))
}

/// Stable, readable reasons (shown to callers and matched by tests).
fn describe(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "token expired".into(),
        ErrorKind::ImmatureSignature => "token not yet valid (nbf)".into(),
        ErrorKind::InvalidAudience => "audience not accepted".into(),
        ErrorKind::InvalidIssuer => "issuer not accepted".into(),
        ErrorKind::InvalidSignature => "signature invalid".into(),
        ErrorKind::InvalidAlgorithm => "algorithm does not match the key".into(),
        ErrorKind::MissingRequiredClaim(c) => format!("token has no {c} claim"),
        other => format!("token rejected: {other:?}"),
    }
}

/// The recorded claims (not yet known to be true).
pub(crate) fn from_claims(c: &Value) -> Identity {
    let s = |k: &str| c[k].as_str().map(str::to_owned);
    let list = |k: &str| -> Vec<String> {
        match &c[k] {
            Value::Array(a) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    };
    // Entra: too many groups → `_claim_names.groups` points elsewhere
    // (v2), or `hasgroups: true` (implicit flow).
    let overage = c["_claim_names"]["groups"].is_string() || c["hasgroups"] == Value::Bool(true);
    let github = s("repository").is_some() && s("run_id").is_some()
        || c["iss"].as_str() == Some(GITHUB_ACTIONS_ISSUER);
    Identity {
        kind: CredentialKind::Jwt,
        issuer: s("iss"),
        subject: s("sub"),
        oid: s("oid"),
        upn: s("upn")
            .or_else(|| s("unique_name"))
            .or_else(|| s("preferred_username")),
        app_id: s("appid").or_else(|| s("azp")),
        tenant: s("tid"),
        idtyp: s("idtyp"),
        groups: list("groups"),
        groups_overage: overage,
        roles: list("roles"),
        scopes: s("scp")
            .map(|v| v.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default(),
        wids: list("wids"),
        expires: c["exp"]
            .as_u64()
            .map(|e| humantime::format_rfc3339_seconds(epoch(e)).to_string()),
        github: github.then(|| GithubInfo {
            repository: s("repository"),
            actor: s("actor"),
            workflow: s("workflow"),
            run_id: s("run_id"),
            job_workflow_ref: s("job_workflow_ref"),
            via: None,
        }),
        ..Identity::default()
    }
}

/// Seconds since the epoch as a time, clamped to the last second RFC 3339
/// can write (a hostile `exp` must not overflow anything).
pub(super) fn epoch(secs: u64) -> SystemTime {
    const LAST_RFC3339_SECOND: u64 = 253_402_300_799;
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs.min(LAST_RFC3339_SECOND))
}
