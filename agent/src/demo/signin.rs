//! The demo's Entra ID signing people in: the authorization-code flow with
//! PKCE (S256) the fleet console's sign-in uses, at
//! `https://127.0.0.1:PORT/{tenant}/v2.0` (the demo has no DNS, and its
//! issuer is reached by address). It signs in one person, the demo's
//! approver, at once — as an issuer does for a user already signed in —
//! and checks what a real one checks: the client, its secret, the
//! redirect URI and the code verifier against the challenge, each code once.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::entra::{Signer, TENANT};
use crate::core::{lock, percent_decode};

/// The person the demo's approver signs in as.
pub(super) const APPROVER: &str = "lead@contoso.example";
pub(super) const APPROVER_OID: &str = "1e2d3c4b-5a69-4788-9a0b-c1d2e3f40516";
/// The fleet console's registration at the demo's Entra ID.
pub(super) const CLIENT_ID: &str = "5b0f2c1e-7a3d-4e8f-9c6b-2d1a0e9f8c7b";
pub(super) const CLIENT_SECRET: &str = "demo-console~Xk3.Pq8vN1mR6tW2yZ5aB7cD9eF0gH4j";

/// Codes handed out and not yet redeemed.
#[derive(Debug, Default)]
pub(super) struct Codes(Mutex<HashMap<String, Pending>>);

#[derive(Debug)]
struct Pending {
    redirect_uri: String,
    nonce: String,
    challenge: String,
}

/// The issuer at `base` (`https://127.0.0.1:PORT`), as its discovery
/// document names it.
pub(super) fn issuer(base: &str) -> String {
    format!("{base}/{TENANT}/v2.0")
}

/// `{issuer}/.well-known/openid-configuration` when asked by address.
pub(super) fn discovery(base: &str) -> Value {
    json!({
        "issuer": issuer(base),
        "authorization_endpoint": format!("{base}/{TENANT}/oauth2/v2.0/authorize"),
        "token_endpoint": format!("{base}/{TENANT}/oauth2/v2.0/token"),
        "jwks_uri": format!("{base}/{TENANT}/discovery/v2.0/keys"),
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "id_token_signing_alg_values_supported": ["ES256"],
    })
}

/// `GET …/authorize?…`: where to send the browser back — the redirect URI
/// with a code and the state — or why not.
pub(super) fn authorize(codes: &Codes, query: &str) -> Result<String, String> {
    let q = form(query);
    let get = |k: &str| q.get(k).cloned().ok_or(format!("{k} is missing"));
    if get("client_id")? != CLIENT_ID {
        return Err("AADSTS700016: unknown client".into());
    }
    if get("response_type")? != "code" || get("code_challenge_method")? != "S256" {
        return Err("AADSTS900144: code flow with S256 only".into());
    }
    let redirect_uri = get("redirect_uri")?;
    let mut raw = [0u8; 24];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut raw)
        .map_err(|_| "no randomness")?;
    let code = URL_SAFE_NO_PAD.encode(raw);
    lock(&codes.0).insert(
        code.clone(),
        Pending {
            redirect_uri: redirect_uri.clone(),
            nonce: get("nonce")?,
            challenge: get("code_challenge")?,
        },
    );
    // The state goes back exactly as it came (still encoded).
    let state = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("state="))
        .ok_or("state is missing")?;
    Ok(format!("{redirect_uri}?code={code}&state={state}"))
}

/// `POST …/token` with `grant_type=authorization_code`: an ID token for
/// the approver, or Entra's error.
pub(super) fn redeem(
    codes: &Codes,
    signer: &Signer,
    base: &str,
    body: &str,
) -> Result<Value, String> {
    let f = form(body);
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    if get("client_id") != CLIENT_ID || get("client_secret") != CLIENT_SECRET {
        return Err("AADSTS7000215: invalid client secret".into());
    }
    let pending = lock(&codes.0)
        .remove(get("code"))
        .ok_or("AADSTS70008: the code was already redeemed or is unknown")?;
    if pending.redirect_uri != get("redirect_uri") {
        return Err("AADSTS50148: redirect_uri does not match".into());
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, get("code_verifier").as_bytes());
    if URL_SAFE_NO_PAD.encode(digest.as_ref()) != pending.challenge {
        return Err("AADSTS501481: the Code_Verifier does not match the code_challenge".into());
    }
    let id_token = signer.id_token(&issuer(base), CLIENT_ID, &pending.nonce);
    Ok(json!({ "token_type": "Bearer", "expires_in": 3599, "id_token": id_token }))
}

fn form(s: &str) -> HashMap<String, String> {
    s.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (percent_decode(k), percent_decode(v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The code in a redirect back from `authorize`.
    fn code_in(back: &str) -> String {
        let query = back.split_once('?').unwrap().1;
        form(query).remove("code").unwrap()
    }

    fn challenge(verifier: &str) -> String {
        URL_SAFE_NO_PAD.encode(ring::digest::digest(
            &ring::digest::SHA256,
            verifier.as_bytes(),
        ))
    }

    #[test]
    fn a_code_is_redeemed_once_with_its_verifier() {
        let (codes, signer) = (Codes::default(), Signer::new().unwrap());
        let base = "https://127.0.0.1:4443";
        let query = format!(
            "client_id={CLIENT_ID}&response_type=code&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcallback&state=s%201&nonce=n1&code_challenge={}&code_challenge_method=S256",
            challenge("v-right")
        );
        let back = authorize(&codes, &query).unwrap();
        assert!(
            back.starts_with("http://127.0.0.1:9/callback?code="),
            "{back}"
        );
        assert!(back.ends_with("&state=s%201"), "{back}");
        let code = code_in(&back);
        let body = |verifier: &str, secret: &str| {
            format!(
                "grant_type=authorization_code&client_id={CLIENT_ID}&client_secret={secret}&code={code}&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcallback&code_verifier={verifier}"
            )
        };
        assert!(
            redeem(&codes, &signer, base, &body("v-right", "wrong"))
                .unwrap_err()
                .contains("secret")
        );
        assert!(
            redeem(&codes, &signer, base, &body("v-wrong", CLIENT_SECRET))
                .unwrap_err()
                .contains("Code_Verifier")
        );
        // The failed redemption spent it.
        assert!(
            redeem(&codes, &signer, base, &body("v-right", CLIENT_SECRET))
                .unwrap_err()
                .contains("AADSTS70008")
        );

        let back = authorize(&codes, &query).unwrap();
        let code = code_in(&back);
        let ok = format!(
            "grant_type=authorization_code&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}&code={code}&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcallback&code_verifier=v-right"
        );
        let answer = redeem(&codes, &signer, base, &ok).unwrap();
        let token = answer["id_token"].as_str().unwrap();
        let claims: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(claims["nonce"], "n1");
        assert_eq!(claims["aud"], CLIENT_ID);
        assert_eq!(claims["iss"], issuer(base));
        assert_eq!(claims["preferred_username"], APPROVER);
    }
}
