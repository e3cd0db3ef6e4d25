//! A real OIDC issuer on loopback HTTPS, shaped like Microsoft Entra ID (and
//! able to mint GitHub Actions-shaped tokens), for the tests of airlock's
//! bearer-token validation: discovery, a JWKS whose keys a test rotates at
//! runtime, Entra's client-credentials token endpoint, and signing keys that
//! make valid tokens and the usual attack tokens.
//!
//! Nothing here validates tokens: the point is that airlock does, against an
//! issuer it reaches over real TLS.

mod code;
mod key;
mod server;
mod token;

pub use key::SigningKey;
pub use server::OidcIssuer;
pub use token::{ATTACK_SKEW, Attack, CLIENT_ID, OTHER_TENANT_ID, TENANT_ID, TokenBuilder};

use serde_json::Value;

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Unpadded base64url (RFC 7515 §2), as JWS and JWK use it. Local, so the
/// harness does not pull in a codec just for this.
pub fn b64url(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, &b| n << 8 | u32::from(b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(char::from(B64URL[(n >> (18 - 6 * i)) as usize & 63]));
        }
    }
    out
}

/// Inverse of [`b64url`]; panics on anything else (padding included).
pub fn b64url_decode(s: &str) -> Vec<u8> {
    let sextet = |c: u8| {
        let i = B64URL.iter().position(|&a| a == c);
        i.unwrap_or_else(|| panic!("{c:?} is not base64url in {s:?}")) as u32
    };
    assert_ne!(s.len() % 4, 1, "base64url of impossible length: {s:?}");
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.as_bytes().chunks(4) {
        let n = chunk.iter().fold(0, |n, &c| n << 6 | sextet(c)) << (6 * (4 - chunk.len()));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

/// The claims of a compact JWS, read without checking anything: for tests
/// that look at what the issuer minted.
pub fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("compact JWS has a payload");
    serde_json::from_slice(&b64url_decode(payload)).expect("payload is JSON")
}

/// `b64url(header).b64url(claims).b64url(sign(signing input))`.
fn compact(header: &Value, claims: &Value, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let sig = sign(input.as_bytes());
    format!("{input}.{}", b64url(&sig))
}

/// Seconds since the Unix epoch, as JWT time claims count.
fn now() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.expect("clock after 1970").as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b64url_round_trips_every_length() {
        // RFC 4648 §10 vectors, in the URL-safe alphabet and unpadded.
        let vectors = ["", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"];
        for (i, want) in vectors.iter().enumerate() {
            assert_eq!(b64url(&b"foobar"[..i]), *want);
            assert_eq!(b64url_decode(want), &b"foobar"[..i]);
        }
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(b64url_decode(&b64url(&all)), all);
        assert_eq!(b64url(&[0xfb, 0xff]), "-_8");
    }
}
