//! The bench's token issuer: one ES256 key, its JWKS and OIDC discovery
//! document (served by the upstream nginx as static files), and one bearer
//! JWT that airlock must validate against them.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

const KID: &str = "airlock-bench-1";
/// The audience the token names and airlock's issuer entry accepts.
pub(crate) const AUDIENCE: &str = "https://management.azure.com";
/// Where the files live under the nginx root, and so in the URLs.
const DIR: &str = "bench";

pub(crate) struct Issuer {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    port: u16,
}

impl Issuer {
    pub(crate) fn new(port: u16) -> anyhow::Result<Self> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|e| anyhow::anyhow!("generating the issuer key: {e}"))?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|e| anyhow::anyhow!("loading the issuer key: {e}"))?;
        Ok(Self { key, rng, port })
    }

    /// The `iss` of the token, shaped like Entra v2's.
    pub(crate) fn issuer(&self) -> String {
        format!("https://127.0.0.1:{}/{DIR}/v2.0", self.port)
    }

    pub(crate) fn jwks_uri(&self) -> String {
        format!("https://127.0.0.1:{}/{DIR}/keys.json", self.port)
    }

    /// Writes the JWKS and the discovery document under nginx's `root`.
    pub(crate) fn publish(&self, root: &Path) -> anyhow::Result<()> {
        // Uncompressed SEC1 point: 0x04 || x || y.
        let point = self.key.public_key().as_ref();
        let jwks = format!(
            r#"{{"keys":[{{"kty":"EC","crv":"P-256","use":"sig","alg":"ES256","kid":"{KID}","x":"{}","y":"{}"}}]}}"#,
            URL_SAFE_NO_PAD.encode(&point[1..33]),
            URL_SAFE_NO_PAD.encode(&point[33..65]),
        );
        let discovery = format!(
            r#"{{"issuer":"{}","jwks_uri":"{}","id_token_signing_alg_values_supported":["ES256"]}}"#,
            self.issuer(),
            self.jwks_uri()
        );
        let dir = root.join(DIR);
        std::fs::create_dir_all(dir.join("v2.0/.well-known"))?;
        std::fs::write(dir.join("keys.json"), jwks)?;
        std::fs::write(dir.join("v2.0/.well-known/openid-configuration"), discovery)?;
        Ok(())
    }

    /// A user token valid for two hours: far longer than any bench run.
    pub(crate) fn token(&self) -> anyhow::Result<String> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let claims = format!(
            r#"{{"aud":"{AUDIENCE}","iss":"{}","iat":{now},"nbf":{now},"exp":{},"oid":"5b0c9a3e-2f41-4d8a-9c6e-7a1b3d5f0e92","tid":"3c9e1f7a-6b2d-4a8e-b5c0-9d4f2e1a7b63","sub":"bench","upn":"bench@contoso.example","azp":"04b07795-8ddb-461a-bbee-02f9e1bf7b46","idtyp":"user","scp":"user_impersonation","ver":"2.0"}}"#,
            self.issuer(),
            now + 7200
        );
        let header = format!(r#"{{"typ":"JWT","alg":"ES256","kid":"{KID}"}}"#);
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let sig = self
            .key
            .sign(&self.rng, input.as_bytes())
            .map_err(|e| anyhow::anyhow!("signing: {e}"))
            .context("the bench token")?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref())))
    }
}
