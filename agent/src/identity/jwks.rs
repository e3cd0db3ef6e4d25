//! One issuer's signing keys: found by OIDC discovery or a configured
//! `jwks_uri`, refreshed on a schedule and when a token names a `kid` not
//! yet known (key rotation). Concurrent refreshes collapse into one, forced
//! refreshes are rate-limited, and a failed fetch keeps the last good keys.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use super::fetch::{FetchError, Fetcher};
use crate::core::{lock, read_lock, write_lock};

/// A usable verification key and the algorithm it is pinned to, if any.
#[derive(Clone, Debug)]
pub(super) struct Key {
    pub key: DecodingKey,
    pub alg: Option<KeyAlgorithm>,
}

impl Key {
    /// The JWK's own `alg`, when it has one, must be the token's.
    pub(super) fn allows(&self, alg: Algorithm) -> bool {
        self.alg.is_none_or(|a| a == KeyAlgorithm::from(alg))
    }
}

#[derive(Debug, Default)]
struct KeySet {
    by_kid: HashMap<String, Key>,
    /// Keys published without a `kid` (tried only for tokens without one).
    anonymous: Vec<Key>,
}

/// Where the key set comes from.
#[derive(Debug)]
pub(super) enum Source {
    /// `{issuer}/.well-known/openid-configuration`, whose `issuer` must be
    /// `expect_issuer` when given (OIDC Discovery §4.3).
    Discovery {
        url: String,
        expect_issuer: Option<String>,
    },
    Jwks(String),
}

#[derive(Debug, thiserror::Error)]
pub(super) enum JwksError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("discovery document at {url} names issuer {found:?}, not {expected:?}")]
    IssuerMismatch {
        url: String,
        found: String,
        expected: String,
    },
    #[error("{url}: no usable signing key in the key set")]
    Empty { url: String },
}

#[derive(Debug)]
pub(super) struct Jwks {
    source: Source,
    fetcher: Arc<Fetcher>,
    keys: RwLock<Arc<KeySet>>,
    /// Learned from discovery, so later refreshes skip that round trip.
    jwks_uri: Mutex<Option<String>>,
    /// Held while fetching: concurrent refreshes wait and reuse the result.
    refreshing: tokio::sync::Mutex<()>,
    /// When the last fetch attempt ended.
    last_attempt: Mutex<Option<Instant>>,
    min_forced_interval: Duration,
    interval: Duration,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

impl Jwks {
    pub(super) fn new(
        source: Source,
        fetcher: Arc<Fetcher>,
        interval: Duration,
        min_forced_interval: Duration,
    ) -> Self {
        Self {
            source,
            fetcher,
            keys: RwLock::default(),
            jwks_uri: Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
            last_attempt: Mutex::new(None),
            min_forced_interval,
            interval,
        }
    }

    /// The key for `kid`, refreshing once (subject to the rate limit) when
    /// it is not known.
    pub(super) async fn key(&self, kid: Option<&str>) -> Option<Key> {
        if let Some(k) = self.lookup(kid) {
            return Some(k);
        }
        self.refresh(true).await;
        self.lookup(kid)
    }

    fn lookup(&self, kid: Option<&str>) -> Option<Key> {
        let set = read_lock(&self.keys).clone();
        match kid {
            Some(kid) => set.by_kid.get(kid).cloned(),
            // Without a kid, only an unambiguous key will do.
            None => match (set.anonymous.as_slice(), set.by_kid.len()) {
                ([only], 0) => Some(only.clone()),
                ([], 1) => set.by_kid.values().next().cloned(),
                _ => None,
            },
        }
    }

    /// Refreshes forever on the schedule (the first one right away).
    pub(super) async fn run_schedule(self: Arc<Self>) {
        loop {
            self.refresh(false).await;
            tokio::time::sleep(self.interval).await;
        }
    }

    /// Fetches the key set. `forced` (an unknown kid) is skipped when the
    /// last attempt was too recent; any caller that waited on a refresh in
    /// flight takes its result instead of fetching again.
    pub(super) async fn refresh(&self, forced: bool) {
        let asked = Instant::now();
        let _guard = self.refreshing.lock().await;
        let last = *lock(&self.last_attempt);
        if let Some(prev) = last {
            if prev >= asked {
                return;
            }
            if forced && prev.elapsed() < self.min_forced_interval {
                tracing::debug!(source = ?self.source, "key refresh rate-limited");
                return;
            }
        }
        let result = self.fetch().await;
        // Stamped when the attempt ends: a caller that asked while it ran
        // sees a fresher stamp and takes this result.
        *lock(&self.last_attempt) = Some(Instant::now());
        match result {
            Ok(set) => {
                tracing::info!(source = ?self.source, keys = set.by_kid.len() + set.anonymous.len(), "signing keys loaded");
                *write_lock(&self.keys) = Arc::new(set);
            }
            Err(e) => {
                tracing::warn!(error = %e, "signing keys not refreshed; keeping the last good set")
            }
        }
    }

    async fn fetch(&self) -> Result<KeySet, JwksError> {
        let known = lock(&self.jwks_uri).clone();
        let uri = match (&self.source, known) {
            (Source::Jwks(uri), _) => uri.clone(),
            (Source::Discovery { .. }, Some(uri)) => uri,
            (Source::Discovery { url, expect_issuer }, None) => {
                let doc: Discovery = self.fetcher.json(url).await?;
                if let Some(expected) = expect_issuer
                    && doc.issuer != *expected
                {
                    return Err(JwksError::IssuerMismatch {
                        url: url.clone(),
                        found: doc.issuer,
                        expected: expected.clone(),
                    });
                }
                *lock(&self.jwks_uri) = Some(doc.jwks_uri.clone());
                doc.jwks_uri
            }
        };
        let raw: RawSet = self.fetcher.json(&uri).await?;
        let set = parse_set(raw.keys);
        if set.by_kid.is_empty() && set.anonymous.is_empty() {
            return Err(JwksError::Empty { url: uri });
        }
        Ok(set)
    }
}

/// How many signing keys airlock would use from a JWKS document; `None`:
/// not one.
pub(crate) fn usable_keys(document: &[u8]) -> Option<usize> {
    let raw: RawSet = serde_json::from_slice(document).ok()?;
    let set = parse_set(raw.keys);
    Some(set.by_kid.len() + set.anonymous.len())
}

/// Keeps the signing keys airlock can use; one odd key (an encryption key,
/// an unknown type) does not spoil the set.
fn parse_set(raw: Vec<serde_json::Value>) -> KeySet {
    let mut set = KeySet::default();
    for value in raw {
        let jwk: Jwk = match serde_json::from_value(value) {
            Ok(j) => j,
            Err(e) => {
                tracing::debug!(error = %e, "skipping a JWK airlock cannot read");
                continue;
            }
        };
        if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
            continue;
        }
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            continue;
        };
        if key.family() == jsonwebtoken::AlgorithmFamily::Hmac {
            // A symmetric key in a public key set is never trusted.
            continue;
        }
        let key = Key {
            key,
            alg: jwk.common.key_algorithm,
        };
        match jwk.common.key_id {
            Some(kid) => {
                set.by_kid.insert(kid, key);
            }
            None => set.anonymous.push(key),
        }
    }
    set
}
