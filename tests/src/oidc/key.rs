//! Token-signing keys: RSA 2048 (RS256) as Entra and GitHub use, and P-256
//! (ES256), each with the JWK an issuer publishes for it.

use std::fmt;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;

use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
    RsaPublicKeyComponents,
};
use serde_json::{Value, json};

use super::{b64url, compact};

/// A private signing key and its `kid`. Cheap to clone (shared).
#[derive(Clone)]
pub struct SigningKey(Arc<Inner>);

struct Inner {
    kid: String,
    /// The private key's DER (PKCS#8, or PKCS#1 for RSA), kept to hand to
    /// `openssl` for the public key's PEM.
    der: Vec<u8>,
    pair: Pair,
}

enum Pair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

impl fmt::Debug for SigningKey {
    // The private key stays out of test output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid())
            .field("alg", &self.alg())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh RSA 2048 key for RS256. ring cannot generate RSA keys, so the
    /// `openssl` CLI does (about 100 ms).
    pub fn rsa(kid: &str) -> Self {
        let der = openssl(
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-outform",
                "DER",
            ],
            &[],
        );
        // OpenSSL 3 writes the traditional PKCS#1 RSAPrivateKey here, not
        // PKCS#8; take either.
        let pair = RsaKeyPair::from_pkcs8(&der).or_else(|_| RsaKeyPair::from_der(&der));
        let pair = pair.expect("openssl's DER RSA key");
        Self::new(kid, der, Pair::Rsa(pair))
    }

    /// A fresh P-256 key for ES256.
    pub fn ec(kid: &str) -> Self {
        let rng = SystemRandom::new();
        let alg = &ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("generate P-256 key");
        let pkcs8 = pkcs8.as_ref().to_vec();
        let pair = EcdsaKeyPair::from_pkcs8(alg, &pkcs8, &rng).expect("ring's own PKCS#8");
        Self::new(kid, pkcs8, Pair::Ec(pair))
    }

    fn new(kid: &str, der: Vec<u8>, pair: Pair) -> Self {
        let kid = kid.to_owned();
        Self(Arc::new(Inner { kid, der, pair }))
    }

    /// A different key of the same kind and `kid`: what an attacker who
    /// copied the kid from the JWKS would sign with.
    pub(super) fn impostor(&self) -> Self {
        match self.0.pair {
            Pair::Rsa(_) => Self::rsa(self.kid()),
            Pair::Ec(_) => Self::ec(self.kid()),
        }
    }

    pub fn kid(&self) -> &str {
        &self.0.kid
    }

    /// The JWS `alg` this key signs with.
    pub fn alg(&self) -> &'static str {
        match self.0.pair {
            Pair::Rsa(_) => "RS256",
            Pair::Ec(_) => "ES256",
        }
    }

    /// The public key as a JWKS entry.
    pub fn jwk(&self) -> Value {
        let (kid, alg) = (self.kid(), self.alg());
        match &self.0.pair {
            Pair::Rsa(pair) => {
                let c = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
                json!({
                    "kty": "RSA", "use": "sig", "kid": kid, "alg": alg,
                    "n": b64url(&c.n), "e": b64url(&c.e),
                })
            }
            Pair::Ec(pair) => {
                // Uncompressed point: 0x04 || x || y, 32 bytes each.
                let point = pair.public_key().as_ref();
                assert_eq!((point.len(), point[0]), (65, 4), "uncompressed P-256 point");
                json!({
                    "kty": "EC", "crv": "P-256", "use": "sig", "kid": kid, "alg": alg,
                    "x": b64url(&point[1..33]), "y": b64url(&point[33..]),
                })
            }
        }
    }

    /// The compact JWS of `claims` under `header`, signed with this key
    /// whatever `header` says (so a test can lie in the header).
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        compact(header, claims, |input| self.signature(input))
    }

    fn signature(&self, input: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.0.pair {
            Pair::Rsa(pair) => {
                let mut sig = vec![0; pair.public().modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, input, &mut sig)
                    .expect("RSA sign");
                sig
            }
            // FIXED signing gives r || s, the JWS encoding (not ASN.1).
            Pair::Ec(pair) => pair
                .sign(&rng, input)
                .expect("ECDSA sign")
                .as_ref()
                .to_vec(),
        }
    }

    /// The public key as PEM SubjectPublicKeyInfo (`-----BEGIN PUBLIC
    /// KEY-----`, trailing newline included), as `openssl pkey -pubout`
    /// writes it: the file a verifier would be configured with, and so the
    /// HMAC secret of the HS256 key-confusion attack.
    pub fn public_pem(&self) -> String {
        let pem = openssl(&["pkey", "-inform", "DER", "-pubout"], &self.0.der);
        String::from_utf8(pem).expect("PEM is ASCII")
    }
}

/// Runs `openssl args` with `stdin`, returning its stdout; panics on failure.
fn openssl(args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn openssl {args:?} (is the CLI installed?): {e}"));
    // Small enough for the pipe buffer, so writing before reading is safe.
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().expect("wait for openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
