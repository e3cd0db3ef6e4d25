//! GitHub Actions → Azure attribution. A workflow that logs in to Azure
//! with OIDC federation sends its GitHub token as a `client_assertion` to
//! the Entra token endpoint and gets an Azure access token back. airlock
//! sees both sides of that exchange and remembers, by the Azure token's
//! fingerprint, which run obtained it — so every later call made with that
//! token is attributed to the GitHub actor, repository and run.

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use lru::LruCache;

use super::GithubInfo;
use super::storage::percent_decode;

/// Links remembered at once; the oldest go first.
const CAPACITY: usize = 4096;
/// An Azure token lives at most a day; a link never outlives that.
const MAX_LINK_LIFETIME: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug)]
pub struct Links {
    by_fingerprint: Mutex<LruCache<String, (GithubInfo, SystemTime)>>,
}

impl Default for Links {
    fn default() -> Self {
        Self {
            by_fingerprint: Mutex::new(LruCache::new(
                NonZeroUsize::new(CAPACITY).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }
}

impl Links {
    /// Attributes the token with `fingerprint` to `run` for `lifetime`.
    pub fn insert(&self, fingerprint: String, run: GithubInfo, lifetime: Duration) {
        let until = SystemTime::now() + lifetime.min(MAX_LINK_LIFETIME);
        let mut map = self
            .by_fingerprint
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.put(fingerprint, (run, until));
    }

    /// Reads an Entra token response (`{"access_token": …, "expires_in":
    /// …}`) and links the token it issued to `run`; anything else (an error
    /// response, no token) links nothing.
    pub fn issued(&self, run: GithubInfo, response: &[u8]) -> bool {
        let Ok(body) = serde_json::from_slice::<serde_json::Value>(response) else {
            return false;
        };
        let Some(token) = body["access_token"].as_str() else {
            return false;
        };
        // `expires_in` is a number, or a string in the v1 endpoint.
        let secs = body["expires_in"]
            .as_u64()
            .or_else(|| body["expires_in"].as_str()?.parse().ok())
            .unwrap_or(3600);
        self.insert(super::fingerprint(token), run, Duration::from_secs(secs));
        true
    }

    pub fn get(&self, fingerprint: &str) -> Option<GithubInfo> {
        let mut map = self
            .by_fingerprint
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match map.get(fingerprint) {
            Some((run, until)) if SystemTime::now() < *until => Some(run.clone()),
            Some(_) => {
                map.pop(fingerprint);
                None
            }
            None => None,
        }
    }
}

/// The `client_assertion` of a token request form (RFC 7523), if it is a
/// JWT-bearer assertion.
pub fn client_assertion(form: &[u8]) -> Option<String> {
    let kind = form_field(form, "client_assertion_type")?;
    (kind == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        .then(|| form_field(form, "client_assertion"))
        .flatten()
}

/// One field of an `application/x-www-form-urlencoded` body, decoded.
pub fn form_field(form: &[u8], name: &str) -> Option<String> {
    let form = std::str::from_utf8(form).ok()?;
    form.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}
