//! Credential recognition and claim extraction without a network: the
//! end-to-end validation against a live issuer is in tests/tests/identity.rs.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::*;
use crate::config::{IdentityConfig, IssuerConfig};
use crate::core::GithubInfo;

fn jwt(header: Value, claims: Value) -> String {
    let enc = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.c2ln", enc(&header), enc(&claims))
}

fn identifier(issuers: &[&str]) -> Identifier {
    let config = IdentityConfig {
        issuers: issuers
            .iter()
            .map(|i| IssuerConfig {
                issuer: (*i).to_owned(),
                audiences: vec!["api://x".into()],
                // Unreachable on purpose: these tests never get keys.
                jwks_uri: Some("https://127.0.0.1:9/keys".into()),
            })
            .collect(),
        ..IdentityConfig::default()
    };
    Identifier::new(
        &config,
        Arc::new(UpstreamTls::new(&[]).unwrap()),
        Arc::default(),
    )
}

fn headers(auth: &str) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert(http::header::AUTHORIZATION, auth.parse().unwrap());
    h
}

#[tokio::test]
async fn entra_v1_claims_are_read_and_marked_unverified_without_issuers() {
    let token = jwt(
        json!({"alg": "RS256", "kid": "k"}),
        json!({
            "iss": "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/",
            "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "oid": "o-1", "unique_name": "dev@contoso.com", "appid": "app-1",
            "idtyp": "user", "groups": ["g1", "g2"], "roles": ["Reader"], "wids": ["w1"],
            "scp": "user_impersonation Files.Read", "exp": 4_102_444_800u64
        }),
    );
    let id = identifier(&[])
        .identify(&headers(&format!("Bearer {token}")), None)
        .await;
    assert_eq!(id.kind, CredentialKind::Jwt);
    assert!(!id.verified && id.error.is_none());
    assert_eq!(id.upn.as_deref(), Some("dev@contoso.com"));
    assert_eq!(id.app_id.as_deref(), Some("app-1"));
    assert_eq!(
        id.tenant.as_deref(),
        Some("72f988bf-86f1-41af-91ab-2d7cd011db47")
    );
    assert_eq!(id.groups, ["g1", "g2"]);
    assert_eq!(id.scopes, ["user_impersonation", "Files.Read"]);
    assert_eq!(id.expires.as_deref(), Some("2100-01-01T00:00:00Z"));
    assert!(id.fingerprint.unwrap().starts_with("sha256:"));
    assert!(!id.groups_overage);
}

#[tokio::test]
async fn groups_overage_is_recorded_not_treated_as_no_groups() {
    let token = jwt(
        json!({"alg": "RS256"}),
        json!({"iss": "x", "_claim_names": {"groups": "src1"}, "_claim_sources": {}}),
    );
    let id = identifier(&[]).bearer(&token).await;
    assert!(id.groups_overage && id.groups.is_empty());
}

#[tokio::test]
async fn rejections_that_need_no_keys() {
    let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let ids = identifier(&["https://login.microsoftonline.com/{tid}/v2.0"]);
    let claims = |iss: &str, tid: &str| json!({"iss": iss, "tid": tid, "aud": "api://x", "exp": 4_102_444_800u64});
    let v2 = format!("https://login.microsoftonline.com/{tenant}/v2.0");
    let cases = [
        (
            jwt(json!({"alg": "none"}), claims(&v2, tenant)),
            "algorithm \"none\" is not allowed",
        ),
        (
            jwt(json!({"alg": "HS256"}), claims(&v2, tenant)),
            "algorithm \"HS256\" is not allowed",
        ),
        (
            jwt(json!({"alg": "RS256"}), claims(&v2, "other-tenant")),
            "is not trusted",
        ),
        (
            jwt(
                json!({"alg": "RS256"}),
                claims("https://evil.example/", tenant),
            ),
            "is not trusted",
        ),
        (
            jwt(json!({"alg": "RS256"}), json!({"aud": "api://x"})),
            "no iss claim",
        ),
    ];
    for (token, why) in cases {
        let id = ids.bearer(&token).await;
        assert!(!id.verified);
        let err = id.error.unwrap_or_default();
        assert!(err.contains(why), "{err:?} should say {why:?}");
    }
}

#[tokio::test]
async fn opaque_bearer_shared_key_basic_and_nothing() {
    let ids = identifier(&[]);
    let id = ids
        .identify(
            &headers("Bearer gho_16C7e42F292c6912E7710c838347Ae178B4a"),
            None,
        )
        .await;
    assert_eq!((id.kind, id.verified), (CredentialKind::Bearer, false));
    let id = ids
        .identify(&headers("SharedKeyLite acct1:c2ln"), None)
        .await;
    assert_eq!(
        (id.kind, id.account.as_deref()),
        (CredentialKind::SharedKey, Some("acct1"))
    );
    let id = ids.identify(&headers("Basic Ym9iOnB3"), None).await;
    assert_eq!(id.kind, CredentialKind::Basic);
    let id = ids
        .identify(&http::HeaderMap::new(), Some("api-version=2023-01-01"))
        .await;
    assert_eq!(id, Identity::default());
}

#[tokio::test]
async fn sas_parameters_without_the_signature() {
    let ids = identifier(&[]);
    let q = "sv=2022-11-02&sr=b&sp=rw&st=2026-11-28T10%3A00%3A00Z&se=2026-11-28T12%3A00%3A00Z&skoid=o-9&sig=c2VjcmV0";
    let id = ids.identify(&http::HeaderMap::new(), Some(q)).await;
    assert_eq!(id.kind, CredentialKind::Sas);
    let sas = id.sas.clone().unwrap();
    assert_eq!(sas.sp.as_deref(), Some("rw"));
    assert_eq!(sas.lifetime_s, Some(7200));
    assert_eq!(sas.skoid.as_deref(), Some("o-9"));
    assert_eq!(id.expires.as_deref(), Some("2026-11-28T12:00:00Z"));
    assert!(!serde_json::to_string(&id).unwrap().contains("c2VjcmV0"));
    let bare_date = "sv=2022-11-02&se=2026-11-29&sig=x";
    let id = ids.identify(&http::HeaderMap::new(), Some(bare_date)).await;
    assert!(
        id.sas.unwrap().lifetime_s.is_some(),
        "a date-only expiry is an expiry"
    );
    let no_expiry = "sv=2022-11-02&sp=r&sig=x";
    let id = ids.identify(&http::HeaderMap::new(), Some(no_expiry)).await;
    assert_eq!(id.sas.unwrap().lifetime_s, None);
    assert_eq!(
        ids.identify(&http::HeaderMap::new(), Some("sig=only"))
            .await
            .kind,
        CredentialKind::None
    );
}

#[test]
fn hostile_exp_does_not_overflow() {
    let id = jwt::from_claims(&json!({"exp": u64::MAX}));
    assert_eq!(id.expires.as_deref(), Some("9999-12-31T23:59:59Z"));
}

#[test]
fn a_token_assertion_is_found_in_its_form_only_as_jwt_bearer() {
    let form = b"client_id=c&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=eyJ.a.b&grant_type=client_credentials";
    assert_eq!(client_assertion(form).as_deref(), Some("eyJ.a.b"));
    assert_eq!(client_assertion(b"client_assertion=eyJ.a.b"), None);
    assert_eq!(client_assertion(&[0xff, 0xfe]), None);
}

#[test]
fn links_follow_token_responses() {
    let links = Links::default();
    let run = GithubInfo {
        repository: Some("org/repo".into()),
        ..GithubInfo::default()
    };
    assert!(!links.issued(run.clone(), br#"{"error":"invalid_client"}"#));
    assert!(links.issued(
        run.clone(),
        br#"{"access_token":"tok","expires_in":"3599"}"#
    ));
    assert_eq!(links.get(&fingerprint("tok")), Some(run));
    assert_eq!(links.get(&fingerprint("other")), None);
}

#[test]
fn copilot_session_tokens_link_to_the_oauth_token_and_its_account() {
    let links = Links::default();
    let oauth = fingerprint("gho_example");
    // Without a /user answer, the link names the OAuth token only.
    assert!(links.copilot_issued(
        &oauth,
        br#"{"token":"tid=1;exp=2:ab","expires_at":4102444800}"#
    ));
    let linked = links.get(&fingerprint("tid=1;exp=2:ab")).unwrap();
    assert_eq!(
        (linked.actor, linked.via.as_deref()),
        (None, Some(oauth.as_str()))
    );
    assert!(links.account_seen(&oauth, br#"{"login":"octocat","id":1}"#));
    assert!(links.copilot_issued(
        &oauth,
        br#"{"token":"tid=3;exp=4:cd","expires_at":4102444800}"#
    ));
    let linked = links.get(&fingerprint("tid=3;exp=4:cd")).unwrap();
    assert_eq!(linked.actor.as_deref(), Some("octocat"));
    // Error answers and expired tokens link nothing.
    assert!(!links.copilot_issued(&oauth, br#"{"message":"Bad credentials"}"#));
    assert!(!links.account_seen(&oauth, b"not json"));
    assert!(!links.copilot_issued(&oauth, br#"{"token":"old","expires_at":1}"#));
    assert_eq!(links.get(&fingerprint("old")), None);
}

#[test]
fn an_oauth_token_sent_to_the_model_itself_names_its_account() {
    // The Copilot CLI: no token exchange; `copilot_internal/user` names
    // the account, then the OAuth token goes to the model API as is.
    let links = Links::default();
    let oauth = fingerprint("gho_cli");
    assert_eq!(links.get(&oauth), None);
    assert!(links.account_seen(
        &oauth,
        br#"{"login":"octocat","endpoints":{"api":"https://api.individual.githubcopilot.com"}}"#
    ));
    assert_eq!(
        links.get(&oauth).and_then(|g| g.actor).as_deref(),
        Some("octocat")
    );
    assert_eq!(links.get(&fingerprint("gho_other")), None);
}

#[tokio::test]
async fn every_credential_the_upstream_receives_is_identified() {
    use base64::Engine;
    let ids = identifier(&[]);
    let mut h = headers("Bearer primary-opaque-token");
    let kube = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("kube-token");
    for (name, value) in [
        (
            "x-ms-authorization-auxiliary",
            "Bearer aux-one, Bearer aux-two",
        ),
        ("x-ms-copy-source-authorization", "Bearer copy-source-token"),
        (
            "x-ms-copy-source",
            "https://src.blob.core.windows.net/c/b?sv=2022-11-02&se=2031-01-01&sig=c3Jj",
        ),
        (
            "sec-websocket-protocol",
            &format!(
                "v4.channel.k8s.io, {}{kube}",
                crate::redact::K8S_WEBSOCKET_BEARER
            ),
        ),
    ] {
        h.insert(
            http::HeaderName::from_static(name),
            http::HeaderValue::from_str(value).unwrap(),
        );
    }
    let id = ids
        .identify(&h, Some("sv=2022-11-02&se=2031-01-01&sig=cXVlcnk"))
        .await;
    assert_eq!(id.kind, CredentialKind::Bearer);
    let also: Vec<_> = id.also.iter().map(|a| a.kind).collect();
    assert_eq!(
        also,
        [
            CredentialKind::Sas,
            CredentialKind::Bearer,
            CredentialKind::Bearer,
            CredentialKind::Bearer,
            CredentialKind::Sas,
            CredentialKind::Bearer,
        ]
    );
    let prints: std::collections::HashSet<_> = std::iter::once(&id)
        .chain(&id.also)
        .map(|a| a.fingerprint.clone().unwrap())
        .collect();
    assert_eq!(prints.len(), 7, "seven different credentials");
    assert_eq!(
        id.also[5].fingerprint,
        Some(super::fingerprint("kube-token"))
    );
    // Without Authorization, a SAS is the request's own; a websocket
    // token alone is a bearer.
    let mut h = http::HeaderMap::new();
    h.insert(
        http::header::SEC_WEBSOCKET_PROTOCOL,
        http::HeaderValue::from_str(&format!("{}{kube}", crate::redact::K8S_WEBSOCKET_BEARER))
            .unwrap(),
    );
    let id = ids.identify(&h, None).await;
    assert_eq!((id.kind, id.also.len()), (CredentialKind::Bearer, 0));
}
