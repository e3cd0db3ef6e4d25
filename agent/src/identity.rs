//! Who is calling: the credential on each intercepted request, recognised
//! (Entra/OIDC bearer JWT, Storage SharedKey, SAS), validated where airlock
//! can (JWTs against configured issuers' JWKS), and reduced to the
//! [`Identity`] the audit record and policy see. A token itself is never
//! kept: only its kind, its claims and a short fingerprint.

mod cache;
pub(crate) mod crypto;
mod fetch;
pub(crate) mod jwks;
pub(crate) mod jwt;
mod link;
pub(crate) mod storage;
#[cfg(test)]
mod tests;

pub(crate) use fetch::Fetcher;
pub(crate) use link::{Links, client_assertion, form_field};

use std::sync::Arc;

use crate::config::IdentityConfig;
use crate::core::lock;
use crate::core::{CredentialKind, Identity};
use crate::tls::UpstreamTls;

/// The caller of a request to an instance metadata service: the managed
/// identity it asks for (the request carries no credential; the host's
/// identity is what answers it).
pub(crate) fn managed(query: Option<&str>) -> Identity {
    let asked = crate::operation::imds::asked_identity(query);
    Identity {
        kind: CredentialKind::ManagedIdentity,
        app_id: asked.client_id,
        oid: asked.object_id,
        msi_resource: asked.resource_id,
        ..Identity::default()
    }
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
        let mut tasks = lock(&self.refresh);
        tasks.extend(
            self.issuers
                .iter()
                .map(|i| i.clone().spawn_refresh().abort_handle()),
        );
    }

    /// The identity behind every credential `headers`/`query` carry. The
    /// first found — `Authorization`, else a SAS in the query, else a
    /// Kubernetes bearer token in `Sec-WebSocket-Protocol` — is the
    /// request's; each other one the upstream will receive is in `also`,
    /// so none of them escapes judgement.
    pub(crate) async fn identify(
        &self,
        headers: &http::HeaderMap,
        query: Option<&str>,
    ) -> Identity {
        let mut found = Vec::new();
        if let Some(auth) = header(headers, http::header::AUTHORIZATION.as_str()).next()
            && let Some(id) = self.authorization(auth).await
        {
            found.push(id);
        }
        found.extend(query.and_then(storage::sas));
        // ARM: up to three more tenants' tokens, `Bearer a, Bearer b`.
        for value in header(headers, "x-ms-authorization-auxiliary") {
            for auth in value.split(',') {
                found.extend(self.authorization(auth).await);
            }
        }
        // Storage Copy From URL: the source's token, or a SAS in its URL.
        for auth in header(headers, "x-ms-copy-source-authorization") {
            found.extend(self.authorization(auth).await);
        }
        for source in header(headers, "x-ms-copy-source") {
            found.extend(source.split_once('?').and_then(|(_, q)| storage::sas(q)));
        }
        for token in websocket_bearers(headers) {
            found.push(self.bearer(&token).await);
        }
        let mut each = found.into_iter();
        let mut identity = each.next().unwrap_or_default();
        identity.also = each.collect();
        identity
    }

    /// One `Authorization` value; `None` for a scheme airlock does not read.
    async fn authorization(&self, auth: &str) -> Option<Identity> {
        let auth = auth.trim();
        let (scheme, rest) = auth.split_once(' ').unwrap_or((auth, ""));
        let rest = rest.trim();
        // GitHub's own scheme for OAuth and personal tokens.
        if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token") {
            return Some(self.bearer(rest).await);
        }
        if let Some(id) = storage::shared_key(scheme, rest) {
            return Some(id);
        }
        scheme.eq_ignore_ascii_case("basic").then(|| Identity {
            kind: CredentialKind::Basic,
            fingerprint: Some(fingerprint(rest)),
            ..Identity::default()
        })
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

/// ID tokens of one issuer for one client (the fleet console's sign-in),
/// checked as bearer tokens are: a key from the issuer's JWKS (found by
/// discovery), an allowed algorithm, `iss` exact, `aud` the client id,
/// `exp`/`nbf` within `identity.leeway_s`.
#[derive(Debug)]
pub(crate) struct IdTokens {
    issuer: Arc<jwt::Issuer>,
    leeway_s: u64,
}

impl IdTokens {
    pub(crate) fn new(
        issuer: &str,
        client_id: &str,
        config: &IdentityConfig,
        fetcher: Arc<Fetcher>,
    ) -> Self {
        crypto::install();
        let c = crate::config::IssuerConfig {
            issuer: issuer.to_owned(),
            audiences: vec![client_id.to_owned()],
            jwks_uri: None,
        };
        Self {
            issuer: Arc::new(jwt::Issuer::new(&c, fetcher, config)),
            leeway_s: config.leeway_s,
        }
    }

    /// The token's claims when it is valid; why not, else. (The `nonce`
    /// is the caller's to check: it knows which one it sent.)
    pub(crate) async fn check(&self, token: &str) -> Result<serde_json::Value, String> {
        jwt::verified_claims(token, &self.issuer, self.leeway_s).await
    }
}

/// The values of header `name` that are text.
fn header<'a>(headers: &'a http::HeaderMap, name: &str) -> impl Iterator<Item = &'a str> {
    headers.get_all(name).iter().filter_map(|v| v.to_str().ok())
}

fn websocket_bearers(headers: &http::HeaderMap) -> Vec<String> {
    use base64::Engine;
    header(headers, http::header::SEC_WEBSOCKET_PROTOCOL.as_str())
        .flat_map(|v| v.split(','))
        .filter_map(|p| p.trim().strip_prefix(crate::redact::K8S_WEBSOCKET_BEARER))
        .filter_map(|b64| {
            let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(b64.trim_end_matches('='))
                .ok()?;
            String::from_utf8(raw).ok()
        })
        .collect()
}

/// `sha256:` + 16 hex digits of SHA-256(`secret`).
pub(crate) fn fingerprint(secret: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, secret.as_bytes());
    let mut out = String::with_capacity(23);
    out.push_str("sha256:");
    for b in &digest.as_ref()[..8] {
        out.push_str(&format!("{b:02x}"));
    }
    out
}
