//! Signature verification for `jsonwebtoken`, backed by `ring` — the same
//! crypto library rustls and the CA already use, so JWT validation adds no
//! second implementation of RSA and ECDSA to audit. Verification only:
//! airlock never signs a JWT, and HMAC (`HS*`) is deliberately absent, so a
//! token can never be "verified" with a public key used as an HMAC secret.

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::jwk::ThumbprintHash;
use jsonwebtoken::signature::{Error as SignatureError, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::signature::{self as sig, RsaPublicKeyComponents, UnparsedPublicKey};

/// The asymmetric algorithms airlock accepts; everything else (`none`,
/// `HS*`) is refused before any key is looked at.
pub(crate) const ALLOWED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: no_signer,
    verifier_factory: verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: |_| Err(ErrorKind::InvalidKeyFormat.into()),
        rsa_pub_components_from_public_key: |_| Err(ErrorKind::InvalidKeyFormat.into()),
        ec_pub_components_from_private_key: |_, _| Err(ErrorKind::InvalidKeyFormat.into()),
        ed_pub_components_from_private_key: |_, _| Err(ErrorKind::InvalidKeyFormat.into()),
        compute_digest,
    },
};

/// Makes `ring` jsonwebtoken's process-wide provider. Idempotent: a second
/// call finds it installed.
pub(crate) fn install() {
    let _ = PROVIDER.install_default();
}

fn no_signer(_: &Algorithm, _: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    Err(ErrorKind::UnsupportedAlgorithm.into())
}

fn compute_digest(data: &[u8], hash: ThumbprintHash) -> Result<Vec<u8>> {
    let alg = match hash {
        ThumbprintHash::SHA256 => &ring::digest::SHA256,
        ThumbprintHash::SHA384 => &ring::digest::SHA384,
        ThumbprintHash::SHA512 => &ring::digest::SHA512,
        _ => return Err(ErrorKind::UnsupportedAlgorithm.into()),
    };
    Ok(ring::digest::digest(alg, data).as_ref().to_vec())
}

/// One algorithm bound to one public key.
struct RingVerifier {
    alg: Algorithm,
    key: PublicKey,
}

enum PublicKey {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
        params: &'static sig::RsaParameters,
    },
    /// A SEC1 uncompressed point (0x04 || x || y).
    Ec {
        bytes: Vec<u8>,
        params: &'static sig::EcdsaVerificationAlgorithm,
    },
    Ed25519(Vec<u8>),
}

fn verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    use Algorithm::*;
    let rsa = |params| Some((AlgorithmFamily::Rsa, Some(params), None));
    let ec = |params| Some((AlgorithmFamily::Ec, None, Some(params)));
    let (family, rsa_params, ec_params) = match alg {
        RS256 => rsa(&sig::RSA_PKCS1_2048_8192_SHA256),
        RS384 => rsa(&sig::RSA_PKCS1_2048_8192_SHA384),
        RS512 => rsa(&sig::RSA_PKCS1_2048_8192_SHA512),
        PS256 => rsa(&sig::RSA_PSS_2048_8192_SHA256),
        PS384 => rsa(&sig::RSA_PSS_2048_8192_SHA384),
        PS512 => rsa(&sig::RSA_PSS_2048_8192_SHA512),
        ES256 => ec(&sig::ECDSA_P256_SHA256_FIXED),
        ES384 => ec(&sig::ECDSA_P384_SHA384_FIXED),
        EdDSA => Some((AlgorithmFamily::Ed, None, None)),
        // HMAC (and anything added later) is never accepted.
        _ => None,
    }
    .ok_or(ErrorKind::InvalidAlgorithm)?;
    // The key's family must be the algorithm's: an RSA key never checks an
    // ECDSA signature, whatever the header claims.
    if key.family() != family {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    let key = match (key.kind(), rsa_params, ec_params) {
        (DecodingKeyKind::RsaModulusExponent { n, e }, Some(params), _) => PublicKey::Rsa {
            n: n.clone(),
            e: e.clone(),
            params,
        },
        (DecodingKeyKind::SecretOrDer(raw), None, Some(params)) => PublicKey::Ec {
            bytes: raw.clone(),
            params,
        },
        (DecodingKeyKind::SecretOrDer(raw), None, None) => PublicKey::Ed25519(raw.clone()),
        // Keys reach airlock only as JWKs, so RSA arrives as (n, e); any
        // other pairing is not a key this provider takes.
        _ => return Err(ErrorKind::InvalidKeyFormat.into()),
    };
    Ok(Box::new(RingVerifier { alg: *alg, key }))
}

impl Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> std::result::Result<(), SignatureError> {
        let verified = match &self.key {
            PublicKey::Rsa { n, e, params } => {
                RsaPublicKeyComponents { n, e }.verify(params, msg, signature)
            }
            PublicKey::Ec { bytes, params } => {
                UnparsedPublicKey::new(*params, bytes).verify(msg, signature)
            }
            PublicKey::Ed25519(bytes) => {
                UnparsedPublicKey::new(&sig::ED25519, bytes).verify(msg, signature)
            }
        };
        verified.map_err(|_| SignatureError::new())
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}
