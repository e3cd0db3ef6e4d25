//! Identity and policy end to end: real curl in a captured cgroup sends
//! bearer tokens, SharedKey and SAS credentials to an ARM/Storage-shaped
//! HTTPS upstream through airlock, which validates tokens against a real
//! OIDC issuer on loopback HTTPS and applies the shipped (or a test's)
//! policies. A refused request must never reach the upstream.

use std::path::PathBuf;

use airlock::IssuerConfig;
use airlock_tests::oidc::{Attack, OidcIssuer, SigningKey, TokenBuilder};
use airlock_tests::pki::TestPki;
use airlock_tests::tls_upstream::TlsUpstream;
use airlock_tests::{Running, TempDir, TestCgroup, finish, privileged};
use serde_json::{Value, json};

const ARM: &str = "management.azure.com";
const BLOB: &str = "acct1.blob.core.windows.net";
const AUDIENCE: &str = "https://management.azure.com";
const RG: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg1";

struct Env {
    cg: TestCgroup,
    up: TlsUpstream,
    idp: OidcIssuer,
    airlock: Running,
    tmp: TempDir,
}

struct Options {
    issuers: bool,
    policy_dir: Option<PathBuf>,
    min_refresh_s: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            issuers: true,
            policy_dir: None,
            min_refresh_s: 30,
        }
    }
}

async fn setup(tag: &str, key: &SigningKey, o: Options) -> Env {
    let tmp = TempDir::new(tag);
    let pki = TestPki::new("airlock identity test upstream CA");
    let up = TlsUpstream::start(
        pki.server_config(&[ARM, BLOB], &[b"h2", b"http/1.1"]),
        &["127.0.0.1:0".parse().unwrap()],
    )
    .await;
    let idp = OidcIssuer::start("localhost").await;
    idp.publish(key);
    let (up_dir, idp_dir) = (tmp.path().join("upstream"), tmp.path().join("idp"));
    std::fs::create_dir_all(&up_dir).unwrap();
    std::fs::create_dir_all(&idp_dir).unwrap();
    let roots = vec![pki.write_ca(&up_dir), idp.write_ca(&idp_dir)];
    let issuer = idp.entra_issuer();
    let cg = TestCgroup::new(tag);
    let airlock = Running::start_with(Running::capture(&cg, &[up.port()]), |c| {
        c.tls.upstream_roots = roots;
        c.identity.jwks_min_refresh_s = o.min_refresh_s;
        if o.issuers {
            c.identity.issuers = vec![IssuerConfig {
                issuer,
                audiences: vec![AUDIENCE.into()],
                jwks_uri: None,
            }];
        }
        c.policy.dir = o.policy_dir;
        c.policy.poll_ms = 100;
        // Nobody approves in these tests: holds end quickly, as expired.
        c.approval.timeout = "1s".into();
    })
    .await;
    Env {
        cg,
        up,
        idp,
        airlock,
        tmp,
    }
}

/// What curl got back: status and JSON body.
#[derive(Debug)]
struct Reply {
    status: u16,
    body: Value,
}

/// curl `method https://host:port/path` from the cgroup with `headers`.
async fn call(env: &Env, method: &str, host: &str, path: &str, headers: &[String]) -> Reply {
    let mut cmd = env.airlock.client(&env.cg, "curl");
    cmd.args([
        "-sS",
        "-g",
        "--max-time",
        "20",
        "-X",
        method,
        "-w",
        "\n%{http_code}",
    ])
    .arg("--resolve")
    .arg(format!("{host}:{}:127.0.0.1", env.up.port()));
    for h in headers {
        cmd.arg("-H").arg(h);
    }
    cmd.arg(format!("https://{host}:{}{path}", env.up.port()));
    let out = finish(cmd).await;
    assert!(out.status.success(), "curl failed: {out:?}");
    let (body, status) = out.stdout.rsplit_once('\n').expect("status line");
    Reply {
        status: status.trim().parse().unwrap(),
        body: serde_json::from_str(body).unwrap_or(Value::Null),
    }
}

async fn bearer(env: &Env, method: &str, path: &str, token: &str) -> Reply {
    call(
        env,
        method,
        ARM,
        path,
        &[format!("Authorization: Bearer {token}")],
    )
    .await
}

/// The request-phase record with this audit id.
async fn record(env: &Env, id: &str) -> Value {
    let recs = airlock_tests::daemon::wait_for(&env.airlock.audit_path, |r| {
        r.iter().any(|r| r["id"] == id)
    })
    .await;
    recs.into_iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no audit record {id}"))
}

/// The newest completed exchange's record.
async fn last_exchange(env: &Env, n: usize) -> Value {
    env.airlock.exchanges(n).await.pop().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_tokens_pass_and_every_attack_token_is_refused_with_its_reason() {
    if !privileged("valid_tokens_pass_and_every_attack_token_is_refused_with_its_reason") {
        return;
    }
    let rsa = SigningKey::rsa("rsa-1");
    let env = setup("idattack", &rsa, Options::default()).await;
    let ec = SigningKey::ec("ec-1");
    env.idp.publish(&ec);
    let good = TokenBuilder::entra(&env.idp.entra_issuer(), AUDIENCE)
        .claims(json!({"upn": "dev@contoso.example", "groups": ["g-platform"]}));

    for (n, key) in [&rsa, &ec].into_iter().enumerate() {
        let token = good.sign(key);
        let r = bearer(&env, "GET", RG, &token).await;
        assert_eq!(r.status, 200, "{} token refused: {:?}", key.alg(), r.body);
        let rec = last_exchange(&env, n + 1).await;
        let id = &rec["identity"];
        assert_eq!(id["kind"], "jwt");
        assert_eq!(id["verified"], true, "{id}");
        assert_eq!(id["upn"], "dev@contoso.example");
        assert_eq!(id["groups"], json!(["g-platform"]));
        assert_eq!(id["tenant"], airlock_tests::oidc::TENANT_ID);
        assert!(id["fingerprint"].as_str().unwrap().starts_with("sha256:"));
        assert!(id.get("error").is_none());
        assert_eq!(rec["decision"]["action"], "allow");
        assert_eq!(
            rec["request"]["operation"]["name"],
            "Microsoft.Resources/subscriptions/resourceGroups/read"
        );
        let text = std::fs::read_to_string(&env.airlock.audit_path).unwrap();
        assert!(
            !text.contains(&token) && !text.contains(token.split('.').nth(2).unwrap()),
            "the token itself is never in the audit"
        );
    }

    let forwarded = env.up.requests();
    for attack in Attack::ALL {
        let expected = match attack {
            Attack::Expired => "token expired",
            Attack::NotYetValid => "not yet valid",
            Attack::WrongAudience => "audience not accepted",
            Attack::WrongIssuer => "is not trusted",
            Attack::AlgNone => "algorithm \"none\" is not allowed",
            Attack::Hs256KeyConfusion => "algorithm \"HS256\" is not allowed",
            Attack::UnknownKid => "no signing key",
            Attack::TamperedPayload | Attack::ImpostorKey => "signature invalid",
        };
        let token = good.attack(&rsa, attack);
        let r = bearer(&env, "GET", RG, &token).await;
        assert_eq!(r.status, 403, "{attack:?} was not refused: {:?}", r.body);
        assert_eq!(r.body["rule"], "invalid-token", "{attack:?}: {}", r.body);
        assert_eq!(r.body["error"]["code"], "PolicyDenied");
        let id = r.body["id"].as_str().expect("audit id in the 403 body");
        let rec = record(&env, id).await;
        assert_eq!(rec["decision"]["action"], "deny");
        let why = rec["identity"]["error"].as_str().unwrap_or_default();
        assert!(
            why.contains(expected),
            "{attack:?}: identity.error {why:?} should say {expected:?}"
        );
        assert_eq!(rec["identity"]["verified"], false);
    }
    assert_eq!(
        env.up.requests(),
        forwarded,
        "no refused request reached the upstream"
    );
    drop(env.tmp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_is_fetched_on_unknown_kid_and_last_good_keys_survive_an_outage() {
    if !privileged("a_rotated_key_is_fetched_on_unknown_kid_and_last_good_keys_survive_an_outage") {
        return;
    }
    let k1 = SigningKey::ec("k1");
    let env = setup(
        "idrotate",
        &k1,
        Options {
            min_refresh_s: 0,
            ..Options::default()
        },
    )
    .await;
    let tokens = TokenBuilder::entra(&env.idp.entra_issuer(), AUDIENCE);
    assert_eq!(bearer(&env, "GET", RG, &tokens.sign(&k1)).await.status, 200);
    let fetches = env.idp.jwks_fetches();

    // The issuer rotates: k2 is published, k1 withdrawn.
    let k2 = SigningKey::rsa("k2");
    env.idp.publish(&k2);
    env.idp.unpublish("k1");
    let r = bearer(&env, "GET", RG, &tokens.sign(&k2)).await;
    assert_eq!(r.status, 200, "new kid picked up: {:?}", r.body);
    assert_eq!(
        env.idp.jwks_fetches(),
        fetches + 1,
        "one refresh for the unknown kid"
    );

    // The key endpoint fails: the keys already known still work.
    env.idp.set_jwks_failing(true);
    let unknown = SigningKey::ec("k3");
    assert_eq!(
        bearer(&env, "GET", RG, &tokens.sign(&unknown)).await.status,
        403
    );
    let r = bearer(&env, "GET", RG, &tokens.sign(&k2)).await;
    assert_eq!(r.status, 200, "last good keys kept: {:?}", r.body);
}

/// The issuer's key endpoint is down from the start: tokens cannot be
/// verified, so they are refused (fail closed) and the record says why;
/// once it is back, the same token passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_down_from_the_start_refuses_until_it_is_back() {
    if !privileged("jwks_down_from_the_start_refuses_until_it_is_back") {
        return;
    }
    let k1 = SigningKey::ec("k1");
    let env = setup(
        "idjwksdown",
        &k1,
        Options {
            min_refresh_s: 0,
            ..Options::default()
        },
    )
    .await;
    env.idp.set_jwks_failing(true);
    let token = TokenBuilder::entra(&env.idp.entra_issuer(), AUDIENCE).sign(&k1);
    let r = bearer(&env, "GET", RG, &token).await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    let rec = last_exchange(&env, 1).await;
    assert_eq!(rec["identity"]["verified"], false, "{rec}");
    assert!(rec["identity"]["error"].is_string(), "{rec}");
    env.idp.set_jwks_failing(false);
    let r = bearer(&env, "GET", RG, &token).await;
    assert_eq!(
        r.status, 200,
        "keys fetched once the endpoint is back: {:?}",
        r.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kid_refreshes_are_rate_limited() {
    if !privileged("unknown_kid_refreshes_are_rate_limited") {
        return;
    }
    let k1 = SigningKey::ec("k1");
    let env = setup("idratelimit", &k1, Options::default()).await;
    let tokens = TokenBuilder::entra(&env.idp.entra_issuer(), AUDIENCE);
    assert_eq!(bearer(&env, "GET", RG, &tokens.sign(&k1)).await.status, 200);
    let fetches = env.idp.jwks_fetches();
    for n in 0..5 {
        let forged = SigningKey::ec(&format!("forged-{n}"));
        assert_eq!(
            bearer(&env, "GET", RG, &tokens.sign(&forged)).await.status,
            403
        );
    }
    assert!(
        env.idp.jwks_fetches() <= fetches + 1,
        "five unknown kids within the rate limit caused {} fetches",
        env.idp.jwks_fetches() - fetches
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_membership_decides_and_overage_is_not_membership() {
    if !privileged("group_membership_decides_and_overage_is_not_membership") {
        return;
    }
    let dir = TempDir::new("idgroups-policy");
    std::fs::write(
        dir.path().join("10-groups.toml"),
        r#"
[defaults]
action = "allow"

[[rule]]
name = "platform-may-write"
action = "allow"
reason = "platform team"
identity.groups = "g-platform"
identity.verified = true
request.method = ["PUT", "DELETE"]

[[rule]]
name = "others-read-only"
action = "deny"
reason = "only the platform team changes resources"
request.method = ["PUT", "DELETE", "PATCH", "POST"]
"#,
    )
    .unwrap();
    let key = SigningKey::ec("k1");
    let env = setup(
        "idgroups",
        &key,
        Options {
            policy_dir: Some(dir.path().to_owned()),
            ..Options::default()
        },
    )
    .await;
    let tokens = TokenBuilder::entra(&env.idp.entra_issuer(), AUDIENCE);
    let member = tokens
        .clone()
        .claims(json!({"groups": ["g-other", "g-platform"]}));
    let outsider = tokens.clone().claims(json!({"groups": ["g-other"]}));
    let overage = tokens.claims(json!({"groups": null, "_claim_names": {"groups": "src1"},
        "_claim_sources": {"src1": {"endpoint": "https://graph.microsoft.com/v1.0/users/x/getMemberObjects"}}}));

    let r = bearer(&env, "PUT", RG, &member.sign(&key)).await;
    assert_ne!(r.status, 403, "member allowed: {:?}", r.body);
    let r = bearer(&env, "PUT", RG, &outsider.sign(&key)).await;
    assert_eq!(
        (r.status, r.body["rule"].as_str()),
        (403, Some("others-read-only"))
    );
    let r = bearer(&env, "PUT", RG, &overage.sign(&key)).await;
    assert_eq!(
        (r.status, r.body["rule"].as_str()),
        (403, Some("others-read-only"))
    );
    let rec = record(&env, r.body["id"].as_str().unwrap()).await;
    assert_eq!(
        rec["identity"]["groups_overage"], true,
        "{}",
        rec["identity"]
    );
    assert_eq!(
        bearer(&env, "GET", RG, &outsider.sign(&key)).await.status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_shared_key_and_long_lived_sas_are_refused() {
    if !privileged("storage_shared_key_and_long_lived_sas_are_refused") {
        return;
    }
    let key = SigningKey::ec("k1");
    let env = setup(
        "idstorage",
        &key,
        Options {
            issuers: false,
            ..Options::default()
        },
    )
    .await;
    let forwarded = env.up.requests();
    let shared = [
        "Authorization: SharedKey acct1:bXlzaWduYXR1cmU=".to_owned(),
        "x-ms-version: 2023-11-03".to_owned(),
    ];
    let r = call(&env, "GET", BLOB, "/c1/blob.txt", &shared).await;
    assert_eq!(
        (r.status, r.body["rule"].as_str()),
        (403, Some("storage-shared-key"))
    );
    let rec = record(&env, r.body["id"].as_str().unwrap()).await;
    assert_eq!(rec["identity"]["kind"], "shared_key");
    assert_eq!(rec["identity"]["account"], "acct1");
    assert_eq!(rec["request"]["operation"]["name"], "storage.blob.get");

    let now = std::time::SystemTime::now();
    let at = |secs: u64| {
        humantime::format_rfc3339_seconds(now + std::time::Duration::from_secs(secs)).to_string()
    };
    let sas = |se: Option<String>| {
        let mut q = "sv=2022-11-02&sr=b&sp=r&sig=c2lnbmF0dXJlLXNlY3JldA%3D%3D".to_owned();
        if let Some(se) = se {
            q.push_str(&format!("&se={}", se.replace(':', "%3A")));
        }
        format!("/c1/blob.txt?{q}")
    };
    let r = call(&env, "GET", BLOB, &sas(Some(at(7 * 24 * 3600))), &[]).await;
    assert_eq!(
        (r.status, r.body["rule"].as_str()),
        (403, Some("sas-long-lived"))
    );
    let r = call(&env, "GET", BLOB, &sas(None), &[]).await;
    assert_eq!(
        (r.status, r.body["rule"].as_str()),
        (403, Some("sas-long-lived")),
        "no expiry"
    );
    assert_eq!(
        env.up.requests(),
        forwarded,
        "nothing refused was forwarded"
    );

    let r = call(&env, "GET", BLOB, &sas(Some(at(3600))), &[]).await;
    assert_eq!(r.status, 200, "a one-hour SAS is fine: {:?}", r.body);
    let rec = last_exchange(&env, 1).await;
    assert_eq!(rec["identity"]["kind"], "sas");
    assert_eq!(rec["identity"]["sas"]["sp"], "r");
    let text = std::fs::read_to_string(&env.airlock.audit_path).unwrap();
    assert!(
        !text.contains("c2lnbmF0dXJlLXNlY3JldA"),
        "a SAS sig is never in the audit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_issuers_tokens_are_recorded_unverified_and_allowed() {
    if !privileged("without_issuers_tokens_are_recorded_unverified_and_allowed") {
        return;
    }
    let key = SigningKey::ec("k1");
    let env = setup(
        "idnoissuer",
        &key,
        Options {
            issuers: false,
            ..Options::default()
        },
    )
    .await;
    let token =
        TokenBuilder::entra(&env.idp.entra_issuer(), AUDIENCE).attack(&key, Attack::Expired);
    let r = bearer(&env, "GET", RG, &token).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let id = last_exchange(&env, 1).await["identity"].clone();
    assert_eq!(
        (id["kind"].as_str(), id["verified"].as_bool()),
        (Some("jwt"), Some(false))
    );
    assert!(
        id.get("error").is_none(),
        "nothing was checked, so nothing failed: {id}"
    );
    assert_eq!(env.idp.jwks_fetches(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn high_risk_operations_are_held_not_forwarded() {
    if !privileged("high_risk_operations_are_held_not_forwarded") {
        return;
    }
    let key = SigningKey::ec("k1");
    let env = setup("idhighrisk", &key, Options::default()).await;
    let token = TokenBuilder::entra(&env.idp.entra_issuer(), AUDIENCE).sign(&key);
    let forwarded = env.up.requests();
    let r = bearer(&env, "DELETE", "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/rg1?api-version=2021-04-01", &token).await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert_eq!(r.body["rule"], "resource-group-delete");
    assert_eq!(r.body["error"]["code"], "ApprovalExpired");
    assert_eq!(r.body["outcome"], "expired");
    assert_eq!(env.up.requests(), forwarded);
    let rec = record(&env, r.body["id"].as_str().unwrap()).await;
    assert_eq!(rec["decision"]["action"], "approve");
    assert_eq!(
        rec["request"]["operation"]["name"],
        "Microsoft.Resources/subscriptions/resourceGroups/delete"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_policy_is_rejected_and_the_previous_one_stays_live() {
    if !privileged("a_broken_policy_is_rejected_and_the_previous_one_stays_live") {
        return;
    }
    let dir = TempDir::new("idreload-policy");
    let file = dir.path().join("10-rules.toml");
    std::fs::write(&file, "[defaults]\naction = \"allow\"\n").unwrap();
    let key = SigningKey::ec("k1");
    let env = setup(
        "idreload",
        &key,
        Options {
            issuers: false,
            policy_dir: Some(dir.path().to_owned()),
            ..Options::default()
        },
    )
    .await;
    assert_eq!(call(&env, "GET", ARM, RG, &[]).await.status, 200);

    std::fs::write(
        &file,
        "[defaults]\naction = \"allow\"\n\n[[rule]]\nname = \"freeze\"\naction = \"deny\"\nreason = \"change freeze\"\nrequest.host = \"management.azure.com\"\n",
    )
    .unwrap();
    let reloaded = airlock_tests::daemon::wait_for(&env.airlock.audit_path, |r| {
        r.iter().any(|r| r["event"] == "policy_reload")
    })
    .await;
    assert!(
        reloaded.iter().any(|r| r["event"] == "policy_reload"),
        "reload audited"
    );
    let r = call(&env, "GET", ARM, RG, &[]).await;
    assert_eq!(
        (r.status, r.body["reason"].as_str()),
        (403, Some("change freeze"))
    );

    std::fs::write(
        &file,
        "[[rule]]\nname = \"freeze\"\naction = \"deny\"\nreason = \"x\"\nrequest.hots = \"typo\"\n",
    )
    .unwrap();
    let rejected = airlock_tests::daemon::wait_for(&env.airlock.audit_path, |r| {
        r.iter().any(|r| r["event"] == "policy_rejected")
    })
    .await;
    let rejected = rejected
        .iter()
        .find(|r| r["event"] == "policy_rejected")
        .expect("rejection audited");
    let detail = rejected["detail"].as_str().unwrap();
    assert!(
        detail.contains("10-rules.toml:5:") && detail.contains("hots"),
        "{detail}"
    );
    let r = call(&env, "GET", ARM, RG, &[]).await;
    assert_eq!(
        (r.status, r.body["reason"].as_str()),
        (403, Some("change freeze")),
        "old policy still live"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_azure_token_obtained_with_a_github_assertion_is_attributed_to_the_run() {
    if !privileged("an_azure_token_obtained_with_a_github_assertion_is_attributed_to_the_run") {
        return;
    }
    const ENTRA: &str = "login.microsoftonline.com";
    let tmp = TempDir::new("idgithub");
    let pki = TestPki::new("airlock github-link test upstream CA");
    let up = TlsUpstream::start(
        pki.server_config(&[ARM], &[b"h2", b"http/1.1"]),
        &["127.0.0.1:0".parse().unwrap()],
    )
    .await;
    // Entra itself, reached through airlock like any intercepted host.
    let entra = OidcIssuer::start(ENTRA).await;
    let entra_key = SigningKey::rsa("entra-1");
    entra.publish(&entra_key);
    let (up_dir, entra_dir) = (tmp.path().join("upstream"), tmp.path().join("entra"));
    std::fs::create_dir_all(&up_dir).unwrap();
    std::fs::create_dir_all(&entra_dir).unwrap();
    let roots = vec![pki.write_ca(&up_dir), entra.write_ca(&entra_dir)];
    let cg = TestCgroup::new("idgithub");
    let airlock = Running::start_with(Running::capture(&cg, &[up.port(), entra.port()]), |c| {
        c.tls.upstream_roots = roots;
    })
    .await;

    // The workflow's GitHub OIDC token, exchanged for an Azure token.
    let github = SigningKey::ec("gh-1");
    let assertion = TokenBuilder::github(
        "https://token.actions.githubusercontent.com",
        "api://AzureADTokenExchange",
    )
    .sign(&github);
    let tenant = airlock_tests::oidc::TENANT_ID;
    let mut cmd = airlock.client(&cg, "curl");
    cmd.args(["-sS", "--max-time", "20", "--resolve"])
        .arg(format!("{ENTRA}:{}:127.0.0.1", entra.port()))
        .args([
            "--data-urlencode",
            "client_id=3c9b1f7e-5a2d-4e8b-9c6f-1a0d7e4b2f58",
        ])
        .args([
            "--data-urlencode",
            "scope=https://management.azure.com/.default",
        ])
        .args(["--data-urlencode", "grant_type=client_credentials"])
        .args([
            "--data-urlencode",
            "client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ])
        .arg("--data-urlencode")
        .arg(format!("client_assertion={assertion}"))
        .arg(format!(
            "https://{ENTRA}:{}/{tenant}/oauth2/v2.0/token",
            entra.port()
        ));
    let out = finish(cmd).await;
    assert!(out.status.success(), "{out:?}");
    let issued: Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    let access_token = issued["access_token"]
        .as_str()
        .expect("Entra issued a token");
    assert_eq!(
        entra.last_assertion().as_deref(),
        Some(assertion.as_str()),
        "form relayed intact"
    );

    let login = airlock.exchanges(1).await.pop().unwrap();
    assert_eq!(login["request"]["operation"]["name"], "entra.token");
    assert_eq!(
        login["identity"]["github"]["repository"], "org/repo",
        "{}",
        login["identity"]
    );

    // A later ARM call with that Azure token is attributed to the run.
    let mut cmd = airlock.client(&cg, "curl");
    cmd.args(["-sS", "--max-time", "20", "--resolve"])
        .arg(format!("{ARM}:{}:127.0.0.1", up.port()))
        .arg("-H")
        .arg(format!("Authorization: Bearer {access_token}"))
        .arg(format!("https://{ARM}:{}{RG}", up.port()));
    assert!(finish(cmd).await.status.success());
    let call = airlock.exchanges(2).await.pop().unwrap();
    let gh = &call["identity"]["github"];
    assert_eq!(gh["repository"], "org/repo", "{}", call["identity"]);
    assert_eq!(gh["actor"], "octocat");
    assert_eq!(gh["workflow"], "CI");
    assert!(gh["run_id"].is_string());
    assert_eq!(
        gh["via"], login["identity"]["fingerprint"],
        "linked through the assertion"
    );
    let text = std::fs::read_to_string(&airlock.audit_path).unwrap();
    assert!(
        !text.contains(access_token) && !text.contains(&assertion),
        "no token in the audit"
    );
}
