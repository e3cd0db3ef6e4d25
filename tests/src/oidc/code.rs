//! The issuer's authorization-code flow, for the fleet console's sign-in:
//! its authorization endpoint signs in at once as the user the test chose
//! and sends the browser back with a code; its token endpoint exchanges
//! that code — client secret, redirect URI and PKCE S256 checked — for an
//! ID token carrying the request's nonce.

use std::collections::HashMap;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};

use super::server::{Resp, State, entra_error, json};
use super::token::random;
use super::{TokenBuilder, b64url};

/// What a code was issued for.
#[derive(Debug, Clone)]
pub(super) struct Grant {
    issuer: String,
    client_id: String,
    redirect_uri: String,
    challenge: String,
    nonce: Option<String>,
    user: Value,
}

/// The authorization endpoint: the user the test chose is signed in at
/// once, and the browser sent back to `redirect_uri` with a code for
/// this request (or an `error`, as Entra sends one).
pub(super) fn authorize(state: &State, prefix: &str, q: &HashMap<String, String>) -> Resp {
    let back = |redirect_uri: &str, params: &[(&str, &str)]| {
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect();
        Response::builder()
            .status(StatusCode::FOUND)
            .header(
                http::header::LOCATION,
                format!("{redirect_uri}?{}", query.join("&")),
            )
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    let (client_id, redirect_uri, st) = (get("client_id"), get("redirect_uri"), get("state"));
    if redirect_uri.is_empty() || !state.clients.lock().unwrap().contains_key(client_id) {
        // Entra shows its own error page: never a redirect to an unknown place.
        return json(
            StatusCode::BAD_REQUEST,
            json!({ "error": "invalid_client" }),
        );
    }
    if get("response_type") != "code"
        || get("code_challenge_method") != "S256"
        || get("code_challenge").is_empty()
        || !get("scope").split(' ').any(|s| s == "openid")
    {
        return back(
            redirect_uri,
            &[
                ("error", "invalid_request"),
                ("error_description", "AADSTS900144: bad request"),
                ("state", st),
            ],
        );
    }
    let Some(user) = state.user.lock().unwrap().clone() else {
        return back(
            redirect_uri,
            &[
                ("error", "access_denied"),
                ("error_description", "AADSTS50105: nobody is signed in"),
                ("state", st),
            ],
        );
    };
    let code = b64url(&random::<32>());
    state.codes.lock().unwrap().insert(
        code.clone(),
        Grant {
            issuer: format!("{}{prefix}", state.origin),
            client_id: client_id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            challenge: get("code_challenge").to_owned(),
            nonce: q.get("nonce").cloned(),
            user,
        },
    );
    back(redirect_uri, &[("code", &code), ("state", st)])
}

/// The authorization-code grant: the client and its secret, the code
/// (once), the redirect URI it was issued for, and PKCE S256 — the
/// verifier's SHA-256 must be the challenge — then an ID token for the
/// user, carrying the request's nonce.
pub(super) fn redeem(state: &State, prefix: &str, form: &HashMap<String, String>) -> Resp {
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let invalid =
        |code: u32, msg: &str| entra_error(StatusCode::BAD_REQUEST, "invalid_grant", code, msg);
    let secret = state.clients.lock().unwrap().get(get("client_id")).cloned();
    if secret.is_none_or(|s| s != get("client_secret")) {
        return entra_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            "Invalid client secret provided.",
        );
    }
    let Some(grant) = state.codes.lock().unwrap().remove(get("code")) else {
        return invalid(
            70008,
            "The provided authorization code or refresh token has expired or was used already.",
        );
    };
    if grant.client_id != get("client_id") || grant.issuer != format!("{}{prefix}", state.origin) {
        return invalid(70000, "The code was issued to another client.");
    }
    if grant.redirect_uri != get("redirect_uri") {
        return invalid(
            50148,
            "The redirect_uri does not match the one the code was issued for.",
        );
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, get("code_verifier").as_bytes());
    if b64url(digest.as_ref()) != grant.challenge {
        return invalid(
            501481,
            "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
        );
    }
    let Some(key) = state.keys.lock().unwrap().last().cloned() else {
        return entra_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            50001,
            "No signing key published.",
        );
    };
    let mut claims = grant.user.clone();
    claims["nonce"] = grant.nonce.map_or(Value::Null, Value::from);
    // An ID token: for the client (its audience and authorized party), no
    // scopes.
    claims["scp"] = Value::Null;
    claims["idtyp"] = Value::Null;
    claims["azp"] = Value::from(grant.client_id.as_str());
    let id_token = TokenBuilder::entra(&grant.issuer, &grant.client_id)
        .claims(claims)
        .sign(&key);
    json(
        StatusCode::OK,
        json!({ "token_type": "Bearer", "expires_in": 3599, "scope": "openid profile", "id_token": id_token }),
    )
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
