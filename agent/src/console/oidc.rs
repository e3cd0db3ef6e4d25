//! OpenID Connect for the fleet console's sign-in (authorization code with
//! PKCE, RFC 7636 S256): the issuer's endpoints from its discovery
//! document, the authorization request, the code exchanged at the token
//! endpoint with the client secret and the code verifier, and the ID
//! token checked — signature, `iss`, `aud`, `exp` by [`IdTokens`] (the
//! same validation as an agent's bearer tokens), the `nonce` here. Every
//! request to the issuer is HTTPS verified against the roots airlock
//! trusts issuers with (system roots and `tls.upstream_roots`).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};
use serde::Deserialize;
use serde_json::Value;

use super::ConsoleError;
use super::session::same;
use crate::config::Config;
use crate::identity::{Fetcher, IdTokens};

/// The person an ID token names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Person {
    /// What the page and the trail call them: `preferred_username`, else
    /// `upn`, else the object id.
    pub name: String,
    pub upn: Option<String>,
    pub oid: Option<String>,
    /// Group object ids (`groups`).
    pub groups: Vec<String>,
    /// The token had too many groups to carry them (Entra's overage): no
    /// `group:` entry can match.
    pub groups_overage: bool,
}

impl Person {
    /// Every name an `approval.approvers` user entry may give them by.
    pub(super) fn names(&self) -> Vec<&str> {
        [Some(&self.name), self.upn.as_ref(), self.oid.as_ref()]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect()
    }
}

/// One sign-in under way: what the authorization request carried, kept
/// until the browser comes back to `/callback`.
#[derive(Clone, Debug)]
pub(super) struct Attempt {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
}

impl Attempt {
    /// Fresh `state`, `nonce` and code verifier: 256 bits each.
    pub(super) fn new(rng: &SystemRandom) -> Result<Self, ConsoleError> {
        let r = || {
            let mut b = [0u8; 32];
            rng.fill(&mut b).map_err(|_| ConsoleError::Random)?;
            Ok::<_, ConsoleError>(URL_SAFE_NO_PAD.encode(b))
        };
        Ok(Self {
            state: r()?,
            nonce: r()?,
            verifier: r()?,
        })
    }

    /// Whether the callback's `state` is this attempt's (constant time).
    pub(super) fn state_is(&self, given: &str) -> bool {
        same(self.state.as_bytes(), given.as_bytes())
    }
}

/// RFC 7636 S256: `BASE64URL(SHA256(verifier))`.
pub(super) fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()))
}

/// The issuer as the console uses it.
#[derive(Debug)]
pub(super) struct Provider {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    client_id: String,
    client_secret: String,
    redirect_uri: String,
    fetcher: Arc<Fetcher>,
    tokens: IdTokens,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
}

impl Provider {
    /// Reads the client secret and the issuer's discovery document;
    /// `origin` is the console's own (`https://console.example:8443`).
    pub(super) async fn discover(config: &Config, origin: &str) -> Result<Self, ConsoleError> {
        let c = &config.console;
        let (Some(issuer), Some(client_id), Some(secret_file)) =
            (&c.issuer, &c.client_id, &c.client_secret_file)
        else {
            return Err(ConsoleError::Oidc(
                "console.issuer, client_id and client_secret_file are all needed".into(),
            ));
        };
        let client_secret = std::fs::read_to_string(secret_file)
            .map_err(|e| {
                ConsoleError::Oidc(format!(
                    "console.client_secret_file {}: {e}",
                    secret_file.display()
                ))
            })?
            .lines()
            .next()
            .unwrap_or("")
            .to_owned();
        let tls = crate::tls::UpstreamTls::new(&config.tls.upstream_roots)
            .map_err(|e| ConsoleError::Oidc(e.to_string()))?
            .with_route(
                crate::egress::Route::from_config(&config.proxy)
                    .map_err(|e| ConsoleError::Oidc(e.to_string()))?,
            );
        let fetcher = Arc::new(Fetcher::new(Arc::new(tls)));
        let issuer = issuer.trim_end_matches('/');
        let url = format!("{issuer}/.well-known/openid-configuration");
        let doc: Discovery = fetcher
            .json(&url)
            .await
            .map_err(|e| ConsoleError::Oidc(format!("discovery: {e}")))?;
        // OIDC Discovery §4.3: the document must be the issuer's own.
        if doc.issuer.trim_end_matches('/') != issuer {
            return Err(ConsoleError::Oidc(format!(
                "{url} names issuer {:?}, not {issuer:?}",
                doc.issuer
            )));
        }
        for (name, endpoint) in [
            ("authorization_endpoint", &doc.authorization_endpoint),
            ("token_endpoint", &doc.token_endpoint),
        ] {
            if !endpoint.starts_with("https://") {
                return Err(ConsoleError::Oidc(format!(
                    "{url}: {name} {endpoint:?} is not https://"
                )));
            }
        }
        Ok(Self {
            issuer: issuer.to_owned(),
            tokens: IdTokens::new(&doc.issuer, client_id, &config.identity, fetcher.clone()),
            authorization_endpoint: doc.authorization_endpoint,
            token_endpoint: doc.token_endpoint,
            client_id: client_id.clone(),
            client_secret,
            redirect_uri: format!("{origin}/callback"),
            fetcher,
        })
    }

    pub(super) fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Where `/login` sends the browser for `attempt`.
    pub(super) fn authorize_url(&self, attempt: &Attempt) -> String {
        let sep = if self.authorization_endpoint.contains('?') {
            '&'
        } else {
            '?'
        };
        format!(
            "{}{sep}{}",
            self.authorization_endpoint,
            encode_form(&[
                ("response_type", "code"),
                ("client_id", &self.client_id),
                ("redirect_uri", &self.redirect_uri),
                ("scope", "openid profile"),
                ("state", &attempt.state),
                ("nonce", &attempt.nonce),
                ("code_challenge", &challenge(&attempt.verifier)),
                ("code_challenge_method", "S256"),
            ])
        )
    }

    /// Exchanges `code` for an ID token and checks it: the person it
    /// names, or why there is none.
    pub(super) async fn sign_in(&self, code: &str, attempt: &Attempt) -> Result<Person, String> {
        let form = encode_form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &self.redirect_uri),
            ("client_id", &self.client_id),
            ("client_secret", &self.client_secret),
            ("code_verifier", &attempt.verifier),
        ]);
        let (status, answer) = self
            .fetcher
            .post_form(&self.token_endpoint, form)
            .await
            .map_err(|e| format!("the token endpoint: {e}"))?;
        if !(200..300).contains(&status) {
            return Err(format!(
                "the issuer refused the code (HTTP {status}): {} {}",
                answer["error"].as_str().unwrap_or("?"),
                answer["error_description"].as_str().unwrap_or("")
            ));
        }
        let token = answer["id_token"]
            .as_str()
            .ok_or("the issuer's answer has no id_token")?;
        let claims = self
            .tokens
            .check(token)
            .await
            .map_err(|e| format!("the ID token is not valid: {e}"))?;
        person(&claims, &attempt.nonce, &self.client_id)
    }
}

/// The person of a validated ID token whose `nonce` must be `nonce`, and
/// whose authorized party, when it names one, is this console
/// (`client_id`: OpenID Connect Core 3.1.3.7).
fn person(claims: &Value, nonce: &str, client_id: &str) -> Result<Person, String> {
    let given = claims["nonce"].as_str().unwrap_or("");
    if !same(given.as_bytes(), nonce.as_bytes()) {
        return Err("the ID token's nonce is not this sign-in's".into());
    }
    if let Some(azp) = claims["azp"].as_str()
        && azp != client_id
    {
        return Err(format!(
            "the ID token was issued to another client (azp {azp}), not this console"
        ));
    }
    let s = |k: &str| {
        claims[k]
            .as_str()
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let (upn, oid) = (s("upn"), s("oid"));
    let name = s("preferred_username")
        .or_else(|| upn.clone())
        .or_else(|| oid.clone())
        .ok_or("the ID token names nobody (no preferred_username, upn or oid)")?;
    let groups = claims["groups"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|g| g.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let groups_overage =
        claims["_claim_names"]["groups"].is_string() || claims["hasgroups"] == Value::Bool(true);
    Ok(Person {
        name,
        upn,
        oid,
        groups,
        groups_overage,
    })
}

/// `k=v&…`, each percent-encoded but for RFC 3986's unreserved bytes.
fn encode_form(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        let mut out = String::with_capacity(s.len());
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn pkce_s256_is_rfc_7636s_appendix_b() {
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn an_attempt_is_fresh_and_its_state_must_match_exactly() {
        let rng = SystemRandom::new();
        let (a, b) = (Attempt::new(&rng).unwrap(), Attempt::new(&rng).unwrap());
        assert_eq!(a.state.len(), 43, "256 bits, base64url");
        assert_ne!(a.state, b.state);
        assert_ne!(a.nonce, a.state);
        assert_ne!(a.verifier, a.nonce);
        // RFC 7636 §4.1: 43 to 128 unreserved characters.
        assert!(a.verifier.len() >= 43);
        assert!(a.state_is(&a.state.clone()));
        assert!(!a.state_is(&b.state));
        assert!(!a.state_is(""));
        assert!(!a.state_is(&a.state[..42]));
        assert!(!a.state_is(&format!("{}x", a.state)));
    }

    #[test]
    fn the_id_token_must_carry_this_sign_ins_nonce_and_name_someone() {
        let claims = json!({"nonce": "n-1", "preferred_username": "alice@contoso.test",
            "upn": "alice@contoso.test", "oid": "o-1", "groups": ["g-1", "g-2"]});
        let p = person(&claims, "n-1", "c").unwrap();
        assert_eq!(p.name, "alice@contoso.test");
        assert_eq!(p.oid.as_deref(), Some("o-1"));
        assert_eq!(p.groups, ["g-1", "g-2"]);
        assert!(!p.groups_overage);
        assert_eq!(
            p.names(),
            ["alice@contoso.test", "alice@contoso.test", "o-1"]
        );
        for nonce in ["n-2", "", "n-1 "] {
            assert!(person(&claims, nonce, "c").unwrap_err().contains("nonce"));
        }
        assert!(person(&json!({"preferred_username": "a"}), "n-1", "c").is_err());
        let p = person(
            &json!({"nonce": "n", "oid": "o-9", "hasgroups": true}),
            "n",
            "c",
        )
        .unwrap();
        assert_eq!(p.name, "o-9");
        assert!(p.groups_overage);
        assert!(
            person(&json!({"nonce": "n"}), "n", "c")
                .unwrap_err()
                .contains("names nobody")
        );
        // Issued to another client, whatever its audience says.
        let other = json!({"nonce": "n", "oid": "o-1", "azp": "someone-else"});
        assert!(
            person(&other, "n", "c")
                .unwrap_err()
                .contains("another client")
        );
        let ours = json!({"nonce": "n", "oid": "o-1", "azp": "c"});
        assert!(person(&ours, "n", "c").is_ok());
    }

    #[test]
    fn the_authorization_request_carries_pkce_state_and_nonce() {
        let attempt = Attempt {
            state: "s t".into(),
            nonce: "n&1".into(),
            verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into(),
        };
        let q = encode_form(&[
            ("redirect_uri", "http://127.0.0.1:8765/callback"),
            ("scope", "openid profile"),
            ("state", &attempt.state),
            ("nonce", &attempt.nonce),
            ("code_challenge", &challenge(&attempt.verifier)),
        ]);
        assert_eq!(
            q,
            "redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcallback&scope=openid%20profile&state=s%20t&nonce=n%261&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
