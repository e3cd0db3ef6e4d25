//! The OIDC issuer harness on its own, without airlock: discovery and JWKS
//! over real HTTPS, tokens that verify (with ring, from the published JWK
//! components alone), attack tokens that are exactly what they claim to be,
//! key rotation, the Entra-shaped token endpoint and its authorization-code
//! flow (client, redirect URI, PKCE S256). If these fail, token
//! validation tests would fail for reasons unrelated to airlock.

use airlock_tests::oidc::{
    ATTACK_SKEW, CLIENT_ID, OTHER_TENANT_ID, TENANT_ID, b64url_decode, claims_of,
};
use airlock_tests::{Attack, OidcIssuer, SigningKey, TempDir, TokenBuilder, finish, https};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents, UnparsedPublicKey,
};
use serde_json::{Value, json};

/// A `.test` name, as airlock's tests would resolve to the issuer.
const HOST: &str = "login.microsoftonline.test";
const AUDIENCE: &str = "api://airlock";

async fn get(issuer: &OidcIssuer, url: &str) -> (StatusCode, Value) {
    let resp = https::get(issuer.client_config(), issuer.addr(), url).await;
    (resp.status(), https::json(resp).await)
}

async fn jwks(issuer: &OidcIssuer) -> Value {
    let (status, doc) = get(issuer, &format!("{}/discovery/keys", issuer.entra_issuer())).await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    doc
}

fn kids(jwks: &Value) -> Vec<&str> {
    let keys = jwks["keys"].as_array().expect("keys array");
    keys.iter().map(|k| k["kid"].as_str().unwrap()).collect()
}

/// What a careful validator's signature check does: the key named by the
/// header's `kid`, used only with the `alg` the JWK declares.
fn verifies(jwks: &Value, token: &str) -> bool {
    let (input, sig) = token.rsplit_once('.').expect("compact JWS");
    let header: Value = serde_json::from_slice(&b64url_decode(input.split('.').next().unwrap()))
        .expect("header is JSON");
    let keys = jwks["keys"].as_array().unwrap();
    let Some(jwk) = keys.iter().find(|k| k["kid"] == header["kid"]) else {
        return false;
    };
    if header["alg"] != jwk["alg"] {
        return false;
    }
    let field = |name: &str| b64url_decode(jwk[name].as_str().unwrap());
    let (input, sig) = (input.as_bytes(), b64url_decode(sig));
    let ok = match jwk["kty"].as_str().unwrap() {
        "RSA" => {
            let key = RsaPublicKeyComponents {
                n: field("n"),
                e: field("e"),
            };
            key.verify(&RSA_PKCS1_2048_8192_SHA256, input, &sig)
        }
        "EC" => {
            assert_eq!(jwk["crv"], "P-256");
            let point = [vec![4], field("x"), field("y")].concat();
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point).verify(input, &sig)
        }
        kty => panic!("unexpected kty {kty}"),
    };
    ok.is_ok()
}

fn unix_now() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.unwrap().as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_and_jwks_over_https() {
    let issuer = OidcIssuer::start(HOST).await;
    let (rsa, ec) = (SigningKey::rsa("rsa-1"), SigningKey::ec("ec-1"));
    issuer.publish(&rsa);
    issuer.publish(&ec);
    let entra = issuer.entra_issuer();
    assert_eq!(
        entra,
        format!("https://{HOST}:{}/{TENANT_ID}/v2.0", issuer.port())
    );

    let (status, doc) = get(
        &issuer,
        &format!("{entra}/.well-known/openid-configuration"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["issuer"], entra);
    assert_eq!(doc["jwks_uri"], format!("{entra}/discovery/keys"));
    assert_eq!(doc["token_endpoint"], format!("{entra}/oauth2/v2.0/token"));
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        json!(["RS256", "ES256"])
    );

    // Any prefix is an issuer; the empty one is the origin itself (GitHub's shape).
    let (_, root) = get(
        &issuer,
        &format!("{}/.well-known/openid-configuration", issuer.url()),
    )
    .await;
    assert_eq!(root["issuer"], issuer.url());
    assert_eq!(root["jwks_uri"], format!("{}/discovery/keys", issuer.url()));
    assert_eq!(issuer.discovery_fetches(), 2);

    let (status, keys) = get(&issuer, doc["jwks_uri"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(kids(&keys), ["rsa-1", "ec-1"]);
    assert_eq!(keys["keys"][0], rsa.jwk());
    assert_eq!(keys["keys"][1], ec.jwk());
    assert_eq!(keys["keys"][0]["e"], "AQAB", "65537, no leading zeros");
    assert_eq!(
        b64url_decode(keys["keys"][0]["n"].as_str().unwrap()).len(),
        256
    );
    assert_eq!(issuer.jwks_fetches(), 1);

    // Real curl, trusting the written CA file, sees the same document.
    let tmp = TempDir::new("harness-oidc");
    let ca = issuer.write_ca(tmp.path());
    assert_eq!(std::fs::read_to_string(&ca).unwrap(), issuer.ca_pem());
    let mut cmd = tokio::process::Command::new("curl");
    cmd.args(["-sS", "--max-time", "10", "--cacert"])
        .arg(&ca)
        .arg("--resolve")
        .arg(format!("{HOST}:{}:127.0.0.1", issuer.port()))
        .arg(doc["jwks_uri"].as_str().unwrap());
    let out = finish(cmd).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(serde_json::from_str::<Value>(&out.stdout).unwrap(), keys);
    assert_eq!(issuer.jwks_fetches(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_verify_against_the_published_jwks_and_forgeries_do_not() {
    let issuer = OidcIssuer::start("localhost").await;
    for key in [SigningKey::rsa("rsa-1"), SigningKey::ec("ec-1")] {
        issuer.publish(&key);
        let jwks = jwks(&issuer).await;
        let builder = TokenBuilder::entra(&issuer.entra_issuer(), AUDIENCE);
        let token = builder.sign(&key);
        assert!(verifies(&jwks, &token), "{} token", key.alg());
        assert_eq!(&claims_of(&token), builder.claim_set());

        for attack in Attack::ALL {
            let forged = builder.attack(&key, attack);
            let claims = claims_of(&forged);
            // Claim attacks carry a genuine signature, so only claim checks
            // can reject them; the rest must fail the signature check.
            let genuine = matches!(
                attack,
                Attack::Expired | Attack::NotYetValid | Attack::WrongAudience | Attack::WrongIssuer
            );
            assert_eq!(
                verifies(&jwks, &forged),
                genuine,
                "{attack:?} {}",
                key.alg()
            );
            let (now, skew) = (unix_now(), ATTACK_SKEW.as_secs());
            match attack {
                Attack::Expired => assert!(claims["exp"].as_u64().unwrap() + skew <= now),
                // A little slack for the seconds this test may take.
                Attack::NotYetValid => assert!(claims["nbf"].as_u64().unwrap() + 10 >= now + skew),
                Attack::WrongAudience => assert_ne!(claims["aud"], AUDIENCE),
                Attack::WrongIssuer => {
                    let iss = format!("https://localhost:{}/{OTHER_TENANT_ID}/v2.0", issuer.port());
                    assert_eq!(claims["iss"], iss);
                    assert_eq!(claims["tid"], OTHER_TENANT_ID);
                }
                Attack::AlgNone => assert!(forged.ends_with('.'), "{forged}"),
                Attack::Hs256KeyConfusion => {
                    let secret = key.public_pem();
                    assert!(secret.starts_with("-----BEGIN PUBLIC KEY-----\n"));
                    let hmac = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
                    let (input, sig) = forged.rsplit_once('.').unwrap();
                    ring::hmac::verify(&hmac, input.as_bytes(), &b64url_decode(sig))
                        .expect("HMAC keyed with the public PEM");
                }
                Attack::TamperedPayload => {
                    assert_eq!(claims["roles"], json!(["Admin"]));
                    let sig = |t: &str| t.rsplit_once('.').unwrap().1.to_owned();
                    // ECDSA signatures are randomized; RSA PKCS#1 v1.5 is not.
                    if key.alg() == "RS256" {
                        assert_eq!(sig(&forged), sig(&token), "the genuine signature");
                    }
                }
                Attack::UnknownKid | Attack::ImpostorKey => {}
            }
        }
        issuer.unpublish(key.kid());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_tokens_and_claim_overrides() {
    let issuer = OidcIssuer::start("localhost").await;
    let key = SigningKey::ec("gh");
    issuer.publish(&key);
    let token = TokenBuilder::github(&issuer.url(), "api://AzureADTokenExchange")
        .claims(json!({ "actor": "mona", "run_id": null }))
        .sign(&key);
    assert!(verifies(&jwks(&issuer).await, &token));
    let claims = claims_of(&token);
    assert_eq!(claims["iss"], issuer.url());
    assert_eq!(claims["aud"], "api://AzureADTokenExchange");
    assert_eq!(claims["sub"], "repo:org/repo:ref:refs/heads/main");
    assert_eq!(claims["repository"], "org/repo");
    assert_eq!(claims["actor"], "mona", "overridden");
    assert!(claims.get("run_id").is_none(), "null removes a claim");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_changes_the_jwks_and_a_failing_jwks_answers_500() {
    let issuer = OidcIssuer::start("localhost").await;
    let (old, new) = (SigningKey::rsa("2024"), SigningKey::rsa("2025"));
    issuer.publish(&old);
    let token = TokenBuilder::entra(&issuer.entra_issuer(), AUDIENCE).sign(&old);
    assert_eq!(kids(&jwks(&issuer).await), ["2024"]);

    issuer.publish(&new);
    let both = jwks(&issuer).await;
    assert_eq!(kids(&both), ["2024", "2025"]);
    assert!(verifies(&both, &token));

    issuer.unpublish("2024");
    let rotated = jwks(&issuer).await;
    assert_eq!(kids(&rotated), ["2025"]);
    assert!(
        !verifies(&rotated, &token),
        "old key's token after rotation"
    );

    issuer.set_jwks_failing(true);
    let url = format!("{}/discovery/keys", issuer.entra_issuer());
    let (status, _) = get(&issuer, &url).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    issuer.set_jwks_failing(false);
    assert_eq!(kids(&jwks(&issuer).await), ["2025"]);
    assert_eq!(issuer.jwks_fetches(), 5, "failed fetches count too");
}

async fn token_request(issuer: &OidcIssuer, form: &str) -> (StatusCode, String, Value) {
    let url = format!("{}/oauth2/v2.0/token", issuer.entra_issuer());
    let req = Request::post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(form.to_owned())))
        .unwrap();
    let resp = https::send(issuer.client_config(), issuer.addr(), req).await;
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
    (resp.status(), content_type, https::json(resp).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_endpoint_mints_for_a_client_assertion_and_rejects_without() {
    let issuer = OidcIssuer::start("localhost").await;
    let key = SigningKey::rsa("entra");
    issuer.publish(&key);
    let assertion = TokenBuilder::github(&issuer.url(), "api://AzureADTokenExchange").sign(&key);
    let base = format!(
        "client_id={CLIENT_ID}&scope=api%3A%2F%2Fairlock%2F.default\
         &grant_type=client_credentials\
         &client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
    );

    let (status, content_type, body) =
        token_request(&issuer, &format!("{base}&client_assertion={assertion}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(content_type, "application/json; charset=utf-8");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(body["ext_expires_in"], 3599);
    assert_eq!(issuer.last_assertion(), Some(assertion));
    let access = body["access_token"].as_str().unwrap();
    assert!(verifies(&jwks(&issuer).await, access));
    let claims = claims_of(access);
    assert_eq!(claims["iss"], issuer.entra_issuer());
    assert_eq!(claims["aud"], AUDIENCE, "scope without /.default");
    assert_eq!(claims["appid"], CLIENT_ID);
    assert_eq!(claims["oid"], CLIENT_ID);
    assert_eq!(claims["idtyp"], "app");
    assert!(claims.get("upn").is_none(), "app tokens name no user");

    let (_, _, again) = token_request(&issuer, &format!("{base}&client_assertion=x.y.z")).await;
    let again = claims_of(again["access_token"].as_str().unwrap());
    assert_ne!(again["uti"], claims["uti"], "a fresh uti per token");
    assert_eq!(issuer.last_assertion().as_deref(), Some("x.y.z"));

    let (status, _, err) = token_request(&issuer, &base).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"], "invalid_request");
    let description = err["error_description"].as_str().unwrap();
    assert!(description.starts_with("AADSTS900144: "), "{description}");
    assert!(description.contains("'client_assertion'"), "{description}");
    assert_eq!(issuer.last_assertion().as_deref(), Some("x.y.z"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorization_code_flow_checks_the_client_the_redirect_and_pkce() {
    let issuer = OidcIssuer::start("localhost").await;
    let key = SigningKey::ec("entra");
    issuer.publish(&key);
    issuer.register_client("console", "s3cret");
    issuer.sign_in_as(json!({ "preferred_username": "alice@contoso.test", "groups": ["g-1"] }));
    let redirect = "http://127.0.0.1:8765/callback";
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    // RFC 7636 appendix B: this verifier's S256 challenge.
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let (status, to) = authorize(&issuer, "someone-else", challenge).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "never back to an unknown client"
    );
    assert_eq!(to, None);
    let (status, to) = authorize(&issuer, "console", challenge).await;
    assert_eq!(status, StatusCode::FOUND);
    let to = to.unwrap();
    assert!(to.starts_with(&format!("{redirect}?code=")), "{to}");
    assert!(to.ends_with("&state=st-1"), "{to}");
    let code = to.split(['=', '&']).nth(1).unwrap().to_owned();
    let form = |verifier: &str, secret: &str, code: &str| {
        format!(
            "grant_type=authorization_code&code={code}&client_id=console&client_secret={secret}\
             &redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcallback&code_verifier={verifier}"
        )
    };
    let (status, _, err) = token_request(&issuer, &form(verifier, "wrong", &code)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{err}");
    let (status, _, err) = token_request(&issuer, &form("another-verifier", "s3cret", &code)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["error"], "invalid_grant");
    // A failed redemption spends the code, as Entra's does.
    let (status, _, err) = token_request(&issuer, &form(verifier, "s3cret", &code)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");

    let (_, to) = authorize(&issuer, "console", challenge).await;
    let code = to.unwrap().split(['=', '&']).nth(1).unwrap().to_owned();
    let (status, _, body) = token_request(&issuer, &form(verifier, "s3cret", &code)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id_token = body["id_token"].as_str().unwrap();
    assert!(verifies(&jwks(&issuer).await, id_token));
    let claims = claims_of(id_token);
    assert_eq!(claims["iss"], issuer.entra_issuer());
    assert_eq!(claims["aud"], "console");
    assert_eq!(claims["nonce"], "n-1");
    assert_eq!(claims["preferred_username"], "alice@contoso.test");
    assert_eq!(claims["groups"], json!(["g-1"]));
    let (status, _, _) = token_request(&issuer, &form(verifier, "s3cret", &code)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a code is redeemed once");
}

/// The authorization endpoint asked for a code for `client`: its status
/// and where it sends the browser.
async fn authorize(
    issuer: &OidcIssuer,
    client: &str,
    challenge: &str,
) -> (StatusCode, Option<String>) {
    let url = format!(
        "{}/oauth2/v2.0/authorize?response_type=code&client_id={client}\
         &redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcallback&scope=openid%20profile\
         &state=st-1&nonce=n-1&code_challenge={challenge}&code_challenge_method=S256",
        issuer.entra_issuer()
    );
    let resp = https::get(issuer.client_config(), issuer.addr(), &url).await;
    let to = resp
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    (resp.status(), to)
}
