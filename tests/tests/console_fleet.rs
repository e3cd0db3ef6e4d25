//! The approval console's fleet mode in a real browser: a host's daemon
//! ships its holds to a real PostgreSQL; `airlock console` with
//! `console.issuer`, serving HTTPS (`console.tls_cert`), signs people in against the test OpenID Connect
//! issuer over verified HTTPS (authorization code + PKCE S256), shows the
//! fleet's held request live, and decides through the database as its
//! own role for the person signed in. An approver by name approves
//! (forwarded once, the host's trail names them); a person matched only
//! by a `group:` entry denies; a person in neither sees the request but
//! cannot decide. A decision without the CSRF token, a tampered `state`,
//! a code redeemed with another verifier and an issuer's error open no
//! session and decide nothing.
//! With AIRLOCK_CONSOLE_SCREENSHOTS=DIR, the fleet view is saved there.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use airlock_tests::daemon::{airlock_bin, records, small_trail, spawn, wait_for};
use airlock_tests::held::ARM;
use airlock_tests::oidc::b64url;
use airlock_tests::postgres::OWNER;
use airlock_tests::{
    Browser, OidcIssuer, Postgres, SigningKey, TempDir, TestCgroup, TestPki, TlsUpstream, WAIT,
    console, finish, privileged,
};
use serde_json::{Value, json};

const CLIENT_ID: &str = "6f1e2d3c-4b5a-4978-8877-665544332211";
const SECRET: &str = "console-secret-1f2e3d";
/// The approvers' group (an Entra group object id).
const SRE_GROUP: &str = "0d9c8b7a-6f5e-4d3c-8b2a-1f0e9d8c7b6a";

fn person(name: &str, oid: &str, groups: &[&str]) -> Value {
    json!({ "preferred_username": name, "upn": name, "oid": oid, "name": name, "groups": groups })
}

/// The agent's `az group delete` on the host, waiting for its answer:
/// the status.
fn delete(dir: &Path, cg: &TestCgroup, up: &TlsUpstream) -> tokio::task::JoinHandle<String> {
    airlock_tests::held::delete_from(cg, &dir.join("public"), up)
}

/// Every CA curl trusts here (the console's and the issuer's), set once.
static CAS: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// One HTTP exchange by curl (as root, outside capture, not following
/// redirects), trusting [`CAS`]: status, headers, body.
async fn curl(url: &str, extra: &[&str]) -> (u16, String, String) {
    curl_with(tokio::process::Command::new("curl"), url, extra).await
}

async fn curl_with(
    mut cmd: tokio::process::Command,
    url: &str,
    extra: &[&str],
) -> (u16, String, String) {
    cmd.args(["-sS", "-i", "--max-time", "15", "--cacert"])
        .arg(CAS.get().expect("CAs written"))
        .args(extra)
        .arg(url);
    let out = finish(cmd).await;
    let (head, body) = out
        .stdout
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no answer from {url}: {out:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

/// Header `name`'s value in `head`.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// A sign-in started with curl: the attempt cookie (`name=value`) and
/// the issuer's authorization URL.
async fn start_sign_in(login: &str) -> (String, String) {
    let (status, head, _) = curl(login, &[]).await;
    assert_eq!(status, 303, "{head}");
    let cookie = header(&head, "set-cookie").expect("an attempt cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("Secure") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let to = header(&head, "location").expect("to the issuer").to_owned();
    for want in [
        "response_type=code",
        "code_challenge_method=S256",
        "scope=openid%20profile",
        "nonce=",
        "state=",
    ] {
        assert!(to.contains(want), "{want} missing: {to}");
    }
    (cookie.split(';').next().unwrap().to_owned(), to)
}

fn param<'a>(url: &'a str, name: &str) -> &'a str {
    url.split(['?', '&'])
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {name} in {url}"))
}

/// Signs `browser` in at the console as whoever the issuer signs in now;
/// waits for the live page.
async fn sign_in(browser: &Browser, login: &str) {
    browser.goto(login).await;
    browser.wait_for("#held", WAIT).await;
    let live = browser.wait_for("#live", WAIT).await;
    let deadline = Instant::now() + WAIT;
    while browser.text(&live).await.unwrap_or_default() != "live" {
        assert!(Instant::now() < deadline, "the event stream never opened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The id of the first held request the page shows, once it does.
async fn shown(browser: &Browser, seen: &[String]) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(card) = browser.find("article.held").await
            && let Some(id) = browser.property(&card, "id").await
            && let Some(id) = id.strip_prefix("h-")
            && !seen.iter().any(|s| s == id)
        {
            return id.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "nothing held shown: {}",
            browser.page_text().await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_approvers_sign_in_with_the_issuer_and_decide_every_hosts_holds() {
    if !privileged("fleet_approvers_sign_in_with_the_issuer_and_decide_every_hosts_holds") {
        return;
    }
    let shots = std::env::var_os("AIRLOCK_CONSOLE_SCREENSHOTS").map(PathBuf::from);
    let shots = shots.as_deref();

    // The fleet's database, a host shipping to it, holding for a human.
    let pki = TestPki::new("console fleet test CA");
    let work = TempDir::new("console-fleet");
    let pg = Postgres::start(work.path(), &pki);
    let owner = work.path().join("owner.toml");
    std::fs::write(&owner, pg.fleet_section(OWNER)).unwrap();
    let out = std::process::Command::new(airlock_bin())
        .args(["fleet", "migrate", "--config"])
        .arg(&owner)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    pg.role("runner_a", "airlock_host");
    pg.role("console_sre", "airlock_approver");
    let extra = format!(
        "{}[approval]\napprovers = [\"root\"]\ntimeout = \"60s\"\n",
        pg.fleet_section("runner_a")
    );
    let (dir, cg, up, host_config) = small_trail("console-fleet-host", &pki, &[ARM], &extra).await;
    let _daemon = spawn(&host_config);
    let audit = dir.path().join("audit.jsonl");
    wait_for(&audit, |r| r.iter().any(|r| r["event"] == "start")).await;
    let host_name = records(&audit)[0]["origin"]["host"]
        .as_str()
        .unwrap()
        .to_owned();

    // The issuer, the console's client at it, and the console.
    let issuer = OidcIssuer::start("localhost").await;
    issuer.publish(&SigningKey::ec("console-key-1"));
    issuer.register_client(CLIENT_ID, SECRET);
    let secret = work.path().join("client-secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let issuer_ca = issuer.write_ca(work.path());
    let port = airlock_tests::daemon::free_port("127.0.0.1");
    let certs = work.path().join("console-tls");
    std::fs::create_dir(&certs).unwrap();
    let (cert, key, console_pin) = pki.write_pinned_leaf(&certs, &["127.0.0.1"]);
    let bundle = work.path().join("cas.pem");
    std::fs::write(&bundle, format!("{}{}", pki.ca_pem(), issuer.ca_pem())).unwrap();
    CAS.set(bundle).unwrap();
    let config = work.path().join("console.toml");
    std::fs::write(
        &config,
        format!(
            "[admin]\nsocket = {:?}\n[tls]\nupstream_roots = [{issuer_ca:?}]\n\
             [approval]\napprovers = [\"alice@contoso.test\", \"group:{SRE_GROUP}\"]\n\
             [console]\nlisten = \"127.0.0.1:{port}\"\ntls_cert = {cert:?}\ntls_key = {key:?}\nissuer = {:?}\nclient_id = \"{CLIENT_ID}\"\n\
             client_secret_file = {secret:?}\n{}",
            dir.path().join("admin.sock"),
            issuer.entra_issuer(),
            pg.fleet_section("console_sre")
        ),
    )
    .unwrap();
    let c = console::start(&config, None).await;
    assert_eq!(c.login, format!("https://127.0.0.1:{port}/login"));
    let pins = [issuer.spki_pin(), console_pin.as_str()];

    // Alice signs in with the issuer; her page is live and empty.
    issuer.sign_in_as(person(
        "alice@contoso.test",
        "a11ce000-0000-4000-8000-000000000001",
        &["g-dev"],
    ));
    let alice = Browser::start_trusting(None, &pins).await;
    sign_in(&alice, &c.login).await;
    let text = alice.page_text().await;
    assert!(text.contains("signed in as alice@contoso.test"), "{text}");
    assert!(text.contains("Nothing is held"), "{text}");
    assert!(alice.find("#refusal").await.is_none(), "alice may decide");
    let cookies = alice.cookies().await;
    let cookie = cookies
        .iter()
        .find(|c| c["name"] == "airlock_console")
        .unwrap_or_else(|| panic!("no session cookie: {cookies:?}"));
    assert_eq!(cookie["httpOnly"], true, "{cookie}");
    assert_eq!(cookie["secure"], true, "{cookie}");
    assert_eq!(cookie["sameSite"], "Strict", "{cookie}");
    let session = format!("airlock_console={}", cookie["value"].as_str().unwrap());
    // The fleet's timeline needs a role that reads the fleet: an
    // approver's alone is told so by PostgreSQL, and the page says it.
    let timeline = format!("{}/timeline", c.origin);
    let (status, _, body) = curl(&timeline, &["-H", &format!("Cookie: {session}")]).await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("cannot read the fleet"), "{body}");
    assert!(body.contains("permission denied"), "{body}");
    let out = pg.sql(OWNER, "GRANT airlock_reader TO console_sre");
    assert!(out.status.success(), "{out:?}");

    // Bob (in no approvers' entry) and Carol (in the approvers' group).
    issuer.sign_in_as(person(
        "bob@contoso.test",
        "b0b00000-0000-4000-8000-000000000002",
        &["g-dev"],
    ));
    let bob = Browser::start_trusting(None, &pins).await;
    sign_in(&bob, &c.login).await;
    let refusal = bob.wait_for("#refusal", WAIT).await;
    let why = bob.text(&refusal).await.unwrap();
    assert!(
        why.contains("bob@contoso.test is not in approval.approvers"),
        "{why}"
    );
    issuer.sign_in_as(person(
        "carol@contoso.test",
        "ca201000-0000-4000-8000-000000000003",
        &[SRE_GROUP],
    ));
    let carol = Browser::start_trusting(None, &pins).await;
    sign_in(&carol, &c.login).await;
    assert!(
        carol.find("#refusal").await.is_none(),
        "carol may decide by her group"
    );

    // Held on the host → on every page, live; Bob cannot decide it.
    let mut seen = Vec::new();
    let first = delete(dir.path(), &cg, &up);
    let id = shown(&alice, &seen).await;
    let card = format!("article[data-id=\"{id}\"]");
    let text = alice
        .text(&alice.wait_for(&card, WAIT).await)
        .await
        .unwrap();
    for want in [
        "Microsoft.Resources/subscriptions/resourceGroups/delete",
        "rg-old",
        "curl",
        host_name.as_str(),
    ] {
        assert!(text.contains(want), "{want} not shown: {text}");
    }
    alice.save_screenshot(shots, "fleet-pending.png").await;
    let said = console::decide(&bob, &id, "approve", &[]).await;
    assert!(said.contains("not_approver"), "{said}");
    bob.save_screenshot(shots, "fleet-not-approver.png").await;
    assert_eq!(up.requests(), 0, "nothing forwarded");

    // Alice approves: forwarded exactly once; the host's trail names her
    // and the console's role.
    let said = console::decide(&alice, &id, "approve", &[("reason", "planned cleanup")]).await;
    assert!(
        said.contains(&format!(
            "{id}: approved on {host_name} by alice@contoso.test (database role console_sre)"
        )),
        "{said}"
    );
    alice.save_screenshot(shots, "fleet-approved.png").await;
    assert_eq!(
        first.await.unwrap(),
        "405",
        "forwarded: the upstream's answer"
    );
    assert_eq!(up.requests(), 1, "the upstream saw it exactly once");
    let trail = wait_for(&audit, |r| {
        r.iter()
            .any(|r| r["kind"] == "approval" && r["event"] == "approved")
    })
    .await;
    let rec = trail
        .iter()
        .find(|r| r["kind"] == "approval" && r["event"] == "approved")
        .unwrap();
    assert_eq!(rec["request_id"], id.as_str(), "{rec}");
    assert_eq!(rec["by"]["role"], "console_sre", "{rec}");
    assert_eq!(rec["by"]["user"], "alice@contoso.test", "{rec}");
    assert_eq!(rec["reason"], "planned cleanup", "{rec}");
    seen.push(id);

    // Every host's timeline, from the database: the approved deletion, with
    // who approved it, in the host's session; Bob, who may not decide,
    // may not read it either.
    let link = alice.wait_for("nav a[href=\"/timeline\"]", WAIT).await;
    alice.click(&link).await;
    let deadline = Instant::now() + WAIT;
    loop {
        alice.wait_for("main.timeline", WAIT).await;
        let text = alice.page_text().await;
        if text.contains("approved by alice@contoso.test") {
            assert!(text.contains(&format!("on {host_name}")), "{text}");
            assert!(
                text.contains("Microsoft.Resources/subscriptions/resourceGroups/delete"),
                "{text}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the approved deletion never reached the fleet's timeline: {text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        alice.goto(&timeline).await;
    }
    alice.save_screenshot(shots, "fleet-timeline.png").await;
    assert!(bob.find("a[href=\"/timeline\"]").await.is_none());
    bob.goto(&timeline).await;
    let text = bob.page_text().await;
    assert!(text.contains("The timeline is for approvers"), "{text}");
    assert!(!text.contains("resourceGroups/delete"), "{text}");
    for page in [&alice, &bob] {
        page.goto(&format!("{}/", c.origin)).await;
        page.wait_for("#held", WAIT).await;
    }

    // The next one carries Alice's own token (the agent she runs), as
    // ARM's auxiliary token beside another principal's: her approval is
    // self-approval all the same, refused, and it stays held. Carol, an
    // approver by her group only, denies it.
    let jwt = |oid: &str, upn: &str| {
        let claims = json!({ "oid": oid, "upn": upn, "exp": 4_102_444_800u64 });
        format!(
            "{}.{}.c2lnbmF0dXJl",
            b64url(br#"{"alg":"ES256","typ":"JWT"}"#),
            b64url(claims.to_string().as_bytes())
        )
    };
    let auth = format!(
        "Authorization: Bearer {}",
        jwt(
            "5e7b1ce0-0000-4000-8000-000000000009",
            "deploy-bot@contoso.test"
        )
    );
    let aux = format!(
        "x-ms-authorization-auxiliary: Bearer {}",
        jwt("a11ce000-0000-4000-8000-000000000001", "alice@contoso.test")
    );
    let second = airlock_tests::held::delete_from_with(
        &cg,
        &dir.path().join("public"),
        &up,
        &["-H", &auth, "-H", &aux],
    );
    let id = shown(&carol, &seen).await;
    let said = console::decide(&alice, &id, "approve", &[("reason", "mine, trust me")]).await;
    assert!(
        said.contains("the approver's own identity: self-approval is refused"),
        "{said}"
    );
    assert_eq!(up.requests(), 1, "her own request was not forwarded");
    let said = console::decide(&carol, &id, "deny", &[("reason", "not during the freeze")]).await;
    assert!(
        said.contains(&format!(
            "{id}: denied on {host_name} by carol@contoso.test"
        )),
        "{said}"
    );
    assert_eq!(second.await.unwrap(), "403");
    assert_eq!(up.requests(), 1, "the denied request was not forwarded");
    seen.push(id);

    // A third stays held: a decision without the page's CSRF token, or
    // from a process airlock captures, decides nothing.
    let third = delete(dir.path(), &cg, &up);
    let id = shown(&alice, &seen).await;
    let approve_url = format!("{}/approve", c.origin);
    let (status, _, body) = curl(
        &approve_url,
        &[
            "-H",
            &format!("Cookie: {session}"),
            "--data",
            &format!("id={id}"),
        ],
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("CSRF token is missing or wrong"), "{body}");
    let (status, _, body) = curl_with(
        cg.command("curl"),
        &format!("{}/", c.origin),
        &["-H", &format!("Cookie: {session}")],
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("is one airlock captures"), "{body}");

    // Sign-ins that must open no session.
    let no_session = |head: &str| {
        !head.lines().any(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie: airlock_console=")
        })
    };
    // A tampered state.
    let (attempt, to) = start_sign_in(&c.login).await;
    let (status, head, _) = curl(&to, &[]).await;
    assert_eq!(status, 302, "{head}");
    let back = header(&head, "location").unwrap().to_owned();
    let tampered = back.replace(param(&back, "state"), "tampered");
    let (status, head, body) = curl(&tampered, &["-H", &format!("Cookie: {attempt}")]).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("state is not this sign-in"), "{body}");
    assert!(no_session(&head), "{head}");
    // The genuine answer, after that, finds the attempt spent.
    let (status, head, body) = curl(&back, &["-H", &format!("Cookie: {attempt}")]).await;
    assert_eq!(status, 403, "{body}");
    assert!(no_session(&head), "{head}");
    // A code issued for another verifier (an injected code), redeemed
    // with this sign-in's: the issuer refuses, no session.
    let (attempt, to) = start_sign_in(&c.login).await;
    let other = b64url(
        ring::digest::digest(
            &ring::digest::SHA256,
            b"the attacker's own verifier, 43+ chars long",
        )
        .as_ref(),
    );
    let injected = to.replace(param(&to, "code_challenge"), &other);
    let (status, head, _) = curl(&injected, &[]).await;
    assert_eq!(status, 302, "{head}");
    let back = header(&head, "location").unwrap().to_owned();
    let (status, head, body) = curl(&back, &["-H", &format!("Cookie: {attempt}")]).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("Code_Verifier does not match"), "{body}");
    assert!(no_session(&head), "{head}");
    // The issuer's own refusal.
    let (attempt, to) = start_sign_in(&c.login).await;
    let refused = format!(
        "{}/callback?error=access_denied&error_description=AADSTS50105&state={}",
        c.origin,
        param(&to, "state")
    );
    let (status, head, body) = curl(&refused, &["-H", &format!("Cookie: {attempt}")]).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("The issuer said: access_denied"), "{body}");
    assert!(no_session(&head), "{head}");
    // No attempt cookie at all.
    let (status, head, _) = curl(&back, &[]).await;
    assert_eq!(status, 403);
    assert!(no_session(&head), "{head}");

    // Still held, nothing forwarded; then Alice lets it go.
    assert_eq!(up.requests(), 1);
    let said = console::decide(&alice, &id, "approve", &[]).await;
    assert!(said.contains("approved on"), "{said}");
    assert_eq!(third.await.unwrap(), "405");
    assert_eq!(up.requests(), 2);

    // Signing out: a forged sign-out (no CSRF token) ends nothing; the
    // page's own does, and her cookie opens nothing afterwards.
    let home = format!("{}/", c.origin);
    let logout = format!("{}/logout", c.origin);
    let (status, _, body) = curl(
        &logout,
        &["-H", &format!("Cookie: {session}"), "--data", ""],
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, _, _) = curl(&home, &["-H", &format!("Cookie: {session}")]).await;
    assert_eq!(status, 200, "still signed in");
    let out = alice.wait_for("button.signout", WAIT).await;
    alice.click(&out).await;
    let deadline = Instant::now() + WAIT;
    while !alice.page_text().await.contains("Signed out") {
        assert!(Instant::now() < deadline, "{}", alice.page_text().await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, _, body) = curl(&home, &["-H", &format!("Cookie: {session}")]).await;
    assert_eq!(status, 401, "the session ended: {body}");
    assert!(
        !alice
            .cookies()
            .await
            .iter()
            .any(|c| c["name"] == "airlock_console"),
        "the browser's cookie is cleared"
    );
}
