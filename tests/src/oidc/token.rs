//! Tokens to present to airlock: Entra ID v2 access tokens and GitHub
//! Actions OIDC tokens with realistic claims, and the attack tokens a
//! validator must reject.

use std::time::Duration;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{Value, json};

use super::{SigningKey, b64url, compact, now};

/// The tenant of default Entra claims; an issuer prefix `/{TENANT_ID}/v2.0`
/// mimics `https://login.microsoftonline.com/{tid}/v2.0`.
pub const TENANT_ID: &str = "8a3f5e2c-1b7d-4c9e-a6f0-2d4b8e1c7a35";
/// Another tenant: Entra signs every tenant's tokens with the same keys, so
/// only `iss`/`tid` tell a foreign tenant's token apart.
pub const OTHER_TENANT_ID: &str = "f0e1d2c3-b4a5-4968-8776-655443322110";
/// The calling application (`azp`/`appid`) of default Entra claims.
pub const CLIENT_ID: &str = "3c9b1f7e-5a2d-4e8b-9c6f-1a0d7e4b2f58";
/// How far outside its validity window an expired or not-yet-valid attack
/// token is: beyond any sane clock-skew leeway (jsonwebtoken's default is 60 s).
pub const ATTACK_SKEW: Duration = Duration::from_secs(600);

/// Lifetime of default tokens (Entra issues 60–90 minutes).
const LIFETIME: u64 = 3600;

/// A claim set (over realistic defaults) and header overrides, signed on
/// demand.
#[derive(Debug, Clone)]
pub struct TokenBuilder {
    header: Value,
    claims: Value,
}

/// Ways a token can be wrong, each made by [`TokenBuilder::attack`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attack {
    /// `exp` [`ATTACK_SKEW`] in the past.
    Expired,
    /// `nbf` [`ATTACK_SKEW`] in the future.
    NotYetValid,
    /// `aud` of another resource.
    WrongAudience,
    /// `iss` (and `tid`, if present) of [`OTHER_TENANT_ID`], signed by the
    /// genuine key, as another Entra tenant's token would be.
    WrongIssuer,
    /// `alg: none` and an empty signature.
    AlgNone,
    /// `alg: HS256`, HMAC keyed with the signing key's public PEM
    /// ([`SigningKey::public_pem`]): a verifier that takes `alg` from the
    /// token would treat its public key as the shared secret.
    Hs256KeyConfusion,
    /// Validly signed, but the header names a `kid` nobody published.
    UnknownKid,
    /// The genuine signature of these claims over a payload that grants
    /// more (`sub` and `roles` changed).
    TamperedPayload,
    /// Signed by a different key that claims the genuine key's `kid`.
    ImpostorKey,
}

impl Attack {
    pub const ALL: [Attack; 9] = [
        Attack::Expired,
        Attack::NotYetValid,
        Attack::WrongAudience,
        Attack::WrongIssuer,
        Attack::AlgNone,
        Attack::Hs256KeyConfusion,
        Attack::UnknownKid,
        Attack::TamperedPayload,
        Attack::ImpostorKey,
    ];
}

impl TokenBuilder {
    /// An Entra ID v2 access token for `audience` (a user's, delegated),
    /// valid from now for an hour, with a fresh `uti`.
    pub fn entra(issuer: &str, audience: &str) -> Self {
        let now = now();
        Self::with_claims(json!({
            "aud": audience,
            "iss": issuer,
            "iat": now,
            "nbf": now,
            "exp": now + LIFETIME,
            "azp": CLIENT_ID,
            "appid": CLIENT_ID,
            "azpacr": "0",
            "idtyp": "user",
            "name": "Alice Example",
            "oid": "d4c7b2a1-6e5f-4a3b-8c9d-0e1f2a3b4c5d",
            "sub": "kX9zq3Lr0mT2vB6wY1uH8nP4sD7fG5jA0cE2iO9lQ3t",
            "tid": TENANT_ID,
            "upn": "alice@contoso.test",
            "groups": ["5b8e2f1a-9c3d-4e7f-a0b6-c1d2e3f4a5b6"],
            "roles": [],
            "scp": "user_impersonation",
            "uti": b64url(&random::<16>()),
            "ver": "2.0",
        }))
    }

    /// A GitHub Actions OIDC token for `audience`, from a push workflow on
    /// `org/repo`'s main branch. The real issuer is
    /// `https://token.actions.githubusercontent.com`; tests pass their
    /// loopback issuer's URL instead.
    pub fn github(issuer: &str, audience: &str) -> Self {
        let now = now();
        let jti = random::<16>();
        let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let jti = [&jti[..4], &jti[4..6], &jti[6..8], &jti[8..10], &jti[10..]].map(hex);
        Self::with_claims(json!({
            "aud": audience,
            "iss": issuer,
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "jti": jti.join("-"),
            "sub": "repo:org/repo:ref:refs/heads/main",
            "ref": "refs/heads/main",
            "ref_type": "branch",
            "repository": "org/repo",
            "repository_id": "123456789",
            "repository_owner": "org",
            "repository_owner_id": "987654",
            "repository_visibility": "private",
            "actor": "octocat",
            "actor_id": "583231",
            "workflow": "CI",
            "workflow_ref": "org/repo/.github/workflows/ci.yml@refs/heads/main",
            "job_workflow_ref": "org/repo/.github/workflows/ci.yml@refs/heads/main",
            "event_name": "push",
            "run_id": "9876543210",
            "run_number": "42",
            "run_attempt": "1",
            "runner_environment": "github-hosted",
        }))
    }

    fn with_claims(claims: Value) -> Self {
        let header = json!({});
        Self { header, claims }
    }

    /// Merges `overrides` (an object) over the claims; a `null` removes a
    /// claim, to test one that is missing.
    pub fn claims(mut self, overrides: Value) -> Self {
        merge(&mut self.claims, overrides);
        self
    }

    /// Merges `overrides` over the header this builder signs with (by
    /// default `{"typ":"JWT","alg":…,"kid":…}` from the key).
    pub fn header(mut self, overrides: Value) -> Self {
        merge(&mut self.header, overrides);
        self
    }

    /// Expired `by` ago, issued an hour before that.
    pub fn expired(self, by: Duration) -> Self {
        let exp = now() - by.as_secs();
        let iat = exp - LIFETIME;
        self.claims(json!({ "exp": exp, "iat": iat, "nbf": iat }))
    }

    /// Valid only `by` from now.
    pub fn not_yet_valid(self, by: Duration) -> Self {
        let nbf = now() + by.as_secs();
        self.claims(json!({ "nbf": nbf, "exp": nbf + LIFETIME }))
    }

    /// The claims as they will be signed.
    pub fn claim_set(&self) -> &Value {
        &self.claims
    }

    /// A token signed by `key`, its header naming `key`'s alg and kid.
    pub fn sign(&self, key: &SigningKey) -> String {
        key.sign(&self.header_for(key), &self.claims)
    }

    fn header_for(&self, key: &SigningKey) -> Value {
        let mut header = json!({ "typ": "JWT", "alg": key.alg(), "kid": key.kid() });
        merge(&mut header, self.header.clone());
        header
    }

    /// This token turned into `attack`, against a verifier that trusts `key`.
    /// [`Attack::ImpostorKey`] with an RSA key generates one (~100 ms).
    pub fn attack(&self, key: &SigningKey, attack: Attack) -> String {
        match attack {
            Attack::Expired => self.clone().expired(ATTACK_SKEW).sign(key),
            Attack::NotYetValid => self.clone().not_yet_valid(ATTACK_SKEW).sign(key),
            Attack::WrongAudience => {
                let aud = json!({ "aud": "api://not-the-audience-you-want" });
                self.clone().claims(aud).sign(key)
            }
            Attack::WrongIssuer => self.foreign_tenant().sign(key),
            Attack::AlgNone => {
                let mut header = self.header_for(key);
                header["alg"] = "none".into();
                compact(&header, &self.claims, |_| Vec::new())
            }
            Attack::Hs256KeyConfusion => {
                let mut header = self.header_for(key);
                header["alg"] = "HS256".into();
                let secret = hmac::Key::new(hmac::HMAC_SHA256, key.public_pem().as_bytes());
                compact(&header, &self.claims, |input| {
                    hmac::sign(&secret, input).as_ref().to_vec()
                })
            }
            Attack::UnknownKid => {
                let kid = json!({ "kid": format!("{}-unpublished", key.kid()) });
                self.clone().header(kid).sign(key)
            }
            Attack::TamperedPayload => {
                let genuine = self.sign(key);
                let (header, rest) = genuine.split_once('.').unwrap();
                let (_, sig) = rest.split_once('.').unwrap();
                let more = json!({ "sub": "mallory", "roles": ["Admin"] });
                let forged = self.clone().claims(more).claims;
                format!("{header}.{}.{sig}", b64url(forged.to_string().as_bytes()))
            }
            Attack::ImpostorKey => self.sign(&key.impostor()),
        }
    }

    fn foreign_tenant(&self) -> Self {
        let iss = self.claims["iss"].as_str().expect("iss claim");
        let iss = if iss.contains(TENANT_ID) {
            iss.replace(TENANT_ID, OTHER_TENANT_ID)
        } else {
            format!("{iss}/{OTHER_TENANT_ID}")
        };
        let mut wrong = json!({ "iss": iss });
        if self.claims.get("tid").is_some() {
            wrong["tid"] = OTHER_TENANT_ID.into();
        }
        self.clone().claims(wrong)
    }
}

/// Top-level merge of `overrides` into `base` (both objects); `null` removes.
fn merge(base: &mut Value, overrides: Value) {
    let base = base.as_object_mut().expect("claims are an object");
    let Value::Object(overrides) = overrides else {
        panic!("overrides must be a JSON object, not {overrides}");
    };
    for (k, v) in overrides {
        if v.is_null() {
            base.remove(&k);
        } else {
            base.insert(k, v);
        }
    }
}

pub(super) fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("system randomness");
    bytes
}
