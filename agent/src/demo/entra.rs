//! The demo's Microsoft Entra ID: one ES256 signing key, its JWKS,
//! access tokens shaped like Entra v2 tokens (`oid`, `tid`, `upn`, `azp`,
//! `groups`, `scp`, `uti`), and ID tokens for people signing in
//! ([`super::signin`]).

use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};

pub(super) const TENANT: &str = "8a3f5e2c-1b7d-4c9e-a6f0-2d4b8e1c7a35";
const KID: &str = "airlock-demo-1";

/// Who the demo's tokens are issued to.
pub(super) const USER: &str = "dev@contoso.example";
const USER_OID: &str = "d4c7b2a1-6e5f-4a3b-8c9d-0e1f2a3b4c5d";
const APP_ID: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";

pub(super) struct Signer {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    /// Authorization codes handed out to browsers, not yet redeemed.
    pub(super) codes: super::signin::Codes,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &KID)
            .finish_non_exhaustive()
    }
}

impl Signer {
    pub(super) fn new() -> Result<Self, String> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|e| e.to_string())?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|e| e.to_string())?;
        Ok(Self {
            key,
            rng,
            codes: super::signin::Codes::default(),
        })
    }

    /// The issuer the tokens name (the real Entra v2 shape).
    pub(super) fn issuer() -> String {
        format!("https://login.microsoftonline.com/{TENANT}/v2.0")
    }

    pub(super) fn jwks(&self) -> Value {
        // Uncompressed SEC1 point: 0x04 || x || y.
        let point = self.key.public_key().as_ref();
        json!({ "keys": [{
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": KID,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        }]})
    }

    /// An access token for `audience`, valid from `valid_from` (relative to
    /// now, may be negative) for `lifetime`.
    pub(super) fn token(&self, audience: &str, offset_s: i64, lifetime: Duration) -> String {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let start = now + offset_s;
        let mut uti = [0u8; 16];
        let _ = ring::rand::SecureRandom::fill(&self.rng, &mut uti);
        let claims = json!({
            "aud": audience, "iss": Self::issuer(), "iat": start, "nbf": start,
            "exp": start + lifetime.as_secs() as i64,
            "oid": USER_OID, "tid": TENANT, "sub": USER_OID, "upn": USER,
            "azp": APP_ID, "idtyp": "user", "scp": "user_impersonation",
            "groups": ["6f1e0c3a-9b2d-4e7f-8a1c-5d3b2e0f9a47"],
            "uti": URL_SAFE_NO_PAD.encode(uti), "ver": "2.0",
        });
        self.sign(&claims)
    }

    /// An ID token from the issuer `iss` for the console registered as
    /// `client_id`, naming the demo's approver, carrying the sign-in's
    /// `nonce`.
    pub(super) fn id_token(&self, iss: &str, client_id: &str, nonce: &str) -> String {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.sign(&json!({
            "aud": client_id, "iss": iss, "iat": now, "nbf": now, "exp": now + 3600,
            "nonce": nonce, "oid": super::signin::APPROVER_OID, "tid": TENANT,
            "sub": super::signin::APPROVER_OID, "preferred_username": super::signin::APPROVER,
            "name": "Demo Lead", "ver": "2.0",
        }))
    }

    /// `claims` as a compact ES256 JWS.
    fn sign(&self, claims: &Value) -> String {
        let header = json!({ "typ": "JWT", "alg": "ES256", "kid": KID });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self
            .key
            .sign(&self.rng, input.as_bytes())
            .map(|s| URL_SAFE_NO_PAD.encode(s.as_ref()))
            .unwrap_or_default();
        format!("{input}.{sig}")
    }
}
