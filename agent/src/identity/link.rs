//! GitHub Actions → Azure attribution. A workflow that logs in to Azure
//! with OIDC federation sends its GitHub token as a `client_assertion` to
//! the Entra token endpoint and gets an Azure access token back. airlock
//! sees both sides of that exchange and remembers, by the Azure token's
//! fingerprint, which run obtained it — so every later call made with that
//! token is attributed to the GitHub actor, repository and run.
//!
//! The same for GitHub Copilot: an editor exchanges the user's GitHub
//! OAuth token for a short-lived Copilot session token
//! (`api.github.com/copilot_internal/v2/token`) and sends that to the model
//! API. The session token is linked to the OAuth token's fingerprint (`via`)
//! and, when airlock saw `GET /user` answered for that OAuth token, to the
//! account's `login` (`actor`).

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use lru::LruCache;

use crate::core::GithubInfo;
use crate::core::lock;
use crate::core::percent_decode;

/// Links remembered at once; the oldest go first.
const CAPACITY: usize = 4096;
/// An Azure token lives at most a day; a link never outlives that.
const MAX_LINK_LIFETIME: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug)]
pub struct Links {
    by_fingerprint: Mutex<LruCache<String, (GithubInfo, SystemTime)>>,
    /// GitHub logins by the fingerprint of an OAuth token `/user` was
    /// answered for.
    accounts: Mutex<LruCache<String, (String, SystemTime)>>,
}

/// How long a `/user` answer names the account behind an OAuth token.
const ACCOUNT_LIFETIME: Duration = Duration::from_secs(8 * 3600);

impl Default for Links {
    fn default() -> Self {
        let capacity = NonZeroUsize::new(CAPACITY).unwrap_or(NonZeroUsize::MIN);
        Self {
            by_fingerprint: Mutex::new(LruCache::new(capacity)),
            accounts: Mutex::new(LruCache::new(capacity)),
        }
    }
}

impl Links {
    /// Attributes the token with `fingerprint` to `run` for `lifetime`.
    pub fn insert(&self, fingerprint: String, run: GithubInfo, lifetime: Duration) {
        let until = SystemTime::now() + lifetime.min(MAX_LINK_LIFETIME);
        let mut map = lock(&self.by_fingerprint);
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

    /// Reads a `GET api.github.com/user` answer (`{"login": …}`) made with
    /// the OAuth token whose fingerprint is `oauth`.
    pub fn account_seen(&self, oauth: &str, response: &[u8]) -> bool {
        let Ok(body) = serde_json::from_slice::<serde_json::Value>(response) else {
            return false;
        };
        let Some(login) = body["login"].as_str() else {
            return false;
        };
        lock(&self.accounts).put(
            oauth.to_owned(),
            (login.to_owned(), SystemTime::now() + ACCOUNT_LIFETIME),
        );
        true
    }

    /// Reads a Copilot token answer (`{"token": …, "expires_at": unix}`)
    /// to a request made with the OAuth token whose fingerprint is `oauth`,
    /// and links the session token to it (and to its account, if known).
    pub fn copilot_issued(&self, oauth: &str, response: &[u8]) -> bool {
        let Ok(body) = serde_json::from_slice::<serde_json::Value>(response) else {
            return false;
        };
        let Some(token) = body["token"].as_str() else {
            return false;
        };
        let lifetime = match body["expires_at"].as_u64() {
            // Already expired: nothing to link.
            Some(at) => match (std::time::UNIX_EPOCH + Duration::from_secs(at))
                .duration_since(SystemTime::now())
            {
                Ok(left) => left,
                Err(_) => return false,
            },
            // Copilot tokens live about 30 minutes.
            None => Duration::from_secs(1800),
        };
        let actor = {
            let mut accounts = lock(&self.accounts);
            match accounts.get(oauth) {
                Some((login, until)) if SystemTime::now() < *until => Some(login.clone()),
                _ => None,
            }
        };
        let account = GithubInfo {
            actor,
            via: Some(oauth.to_owned()),
            ..GithubInfo::default()
        };
        self.insert(super::fingerprint(token), account, lifetime);
        true
    }

    /// What a token is linked to: the run or account a token it was
    /// exchanged for names, or — for a GitHub OAuth token itself, which
    /// the Copilot CLI sends straight to the model API — the account
    /// `/user` or `/copilot_internal/user` named for it.
    pub fn get(&self, fingerprint: &str) -> Option<GithubInfo> {
        {
            let mut map = lock(&self.by_fingerprint);
            match map.get(fingerprint) {
                Some((run, until)) if SystemTime::now() < *until => return Some(run.clone()),
                Some(_) => {
                    map.pop(fingerprint);
                }
                None => {}
            }
        }
        match lock(&self.accounts).get(fingerprint) {
            Some((login, until)) if SystemTime::now() < *until => Some(GithubInfo {
                actor: Some(login.clone()),
                ..GithubInfo::default()
            }),
            _ => None,
        }
    }
}

/// The `client_assertion` of a token request form (RFC 7523), if it is a
/// JWT-bearer assertion.
pub(crate) fn client_assertion(form: &[u8]) -> Option<String> {
    let kind = form_field(form, "client_assertion_type")?;
    (kind == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        .then(|| form_field(form, "client_assertion"))
        .flatten()
}

/// One field of an `application/x-www-form-urlencoded` body, decoded.
pub(crate) fn form_field(form: &[u8], name: &str) -> Option<String> {
    let form = std::str::from_utf8(form).ok()?;
    form.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}
