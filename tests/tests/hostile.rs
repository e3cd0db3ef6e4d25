//! A prompt-injected agent, tried from inside the captured cgroup as an
//! unprivileged user: each request is shaped to slip past airlock's
//! judgement. Each must be refused with a JSON error, recorded, and never
//! reach the upstream (which counts what it receives).

use std::path::PathBuf;

use airlock_tests::agent::{AGENT_UID, curl_as, public, readable};
use airlock_tests::{
    FakeImds, Intercepted as Env, Running, TempDir, TestCgroup, TestPki, TlsUpstream, WAIT, finish,
    privileged,
};
use serde_json::Value;

const ARM: &str = "management.azure.com";
const BLOB: &str = "acct1.blob.core.windows.net";
const VAULT: &str = "kv1.vault.azure.net";
const AKS: &str = "aks1-dns.hcp.westeurope.azmk8s.io";
const GRAPH: &str = "graph.microsoft.com";
const RG: &str = "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/rg1";

async fn setup(tag: &str) -> (Env, PathBuf) {
    setup_with(tag, |_| {}).await
}

/// An upstream for every host these tests call and airlock (`adjust`ed)
/// in front of it; airlock's CA where the agent's uid can read it.
async fn setup_with(tag: &str, adjust: impl FnOnce(&mut airlock::Config)) -> (Env, PathBuf) {
    let env = Env::start(tag, &[ARM, BLOB, VAULT, AKS, GRAPH], adjust).await;
    let ca = env.airlock.ca_cert();
    (env, ca)
}

/// curl as the agent, from the cgroup, to `https://{host}{path}` (the name
/// resolved to the upstream), trusting airlock's CA; extra options after.
fn curl(
    env: &Env,
    ca: &PathBuf,
    host: &str,
    path: &str,
    extra: &[&str],
) -> tokio::process::Command {
    let mut cmd = curl_as(&env.cg, AGENT_UID);
    cmd.arg("--path-as-is")
        .arg("--resolve")
        .arg(format!("{host}:{}:127.0.0.1", env.up.port()))
        .arg("--cacert")
        .arg(ca)
        .arg(format!("https://{host}:{}{path}", env.up.port()))
        .args(extra);
    cmd
}

/// Runs `cmd`; the status and the JSON body airlock answered with.
async fn refused(env: &Env, cmd: tokio::process::Command) -> (u16, Value) {
    let before = env.up.requests();
    let out = finish(cmd).await;
    assert!(out.status.success(), "{out:?}");
    let (body, status) = out.stdout.rsplit_once('\n').unwrap();
    let body: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(body["error"]["source"], "airlock", "{body}");
    assert_eq!(env.up.requests(), before, "the upstream saw it: {body}");
    (status.parse().unwrap(), body)
}

/// The exchange airlock refused as `id`, as `airlock audit export` joins it.
async fn record(env: &Env, id: &Value) -> Value {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let found = airlock_tests::daemon::exported(&env.airlock.audit_path)
            .into_iter()
            .find(|r| r["id"] == *id && r["phase"] == "response");
        if let Some(r) = found {
            return r;
        }
        assert!(std::time::Instant::now() < deadline, "no record of {id}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_other_than_the_server_name_is_misdirected() {
    if !privileged("a_host_other_than_the_server_name_is_misdirected") {
        return;
    }
    let (env, ca) = setup("hostile-host").await;
    // Judged as Storage, served as Resource Manager: not any more.
    for http in ["--http1.1", "--http2"] {
        let host = format!("Host: {BLOB}");
        let (status, body) = refused(
            &env,
            curl(
                &env,
                &ca,
                ARM,
                &format!("{RG}?api-version=2021-04-01"),
                &[http, "-X", "DELETE", "-H", &host],
            ),
        )
        .await;
        assert_eq!(status, 421, "{http}: {body}");
        assert_eq!(body["error"]["code"], "MisdirectedRequest");
        let rec = record(&env, &body["id"]).await;
        assert_eq!(rec["response"]["status"], 421);
        assert!(
            rec["error"]
                .as_str()
                .unwrap()
                .contains("MisdirectedRequest"),
            "{rec}"
        );
    }
    // No server name (an address dialled): a host name in Host is refused
    // before any upstream is asked.
    let mut cmd = curl_as(&env.cg, AGENT_UID);
    cmd.args(["-k", "-H"])
        .arg(format!("Host: {ARM}"))
        .arg(format!("https://127.0.0.1:{}{RG}", env.up.port()));
    let (status, body) = refused(&env, cmd).await;
    assert_eq!(status, 421, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_policy_would_misread_are_refused() {
    if !privileged("paths_policy_would_misread_are_refused") {
        return;
    }
    let (env, ca) = setup("hostile-path").await;
    for path in [
        format!("{RG}/.?api-version=2021-04-01"),
        format!("{RG}/x/..?api-version=2021-04-01"),
        format!("{RG}/%2e?api-version=2021-04-01"),
        "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590%2FresourceGroups%2Frg1?api-version=2021-04-01".to_owned(),
    ] {
        let (status, body) =
            refused(&env, curl(&env, &ca, ARM, &path, &["-X", "DELETE"])).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["code"], "NonCanonicalPath", "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_hidden_or_doubled_are_judged_or_refused() {
    if !privileged("credentials_hidden_or_doubled_are_judged_or_refused") {
        return;
    }
    let (env, ca) = setup("hostile-creds").await;
    // A SAS valid for years (the shipped policy refuses it), behind a
    // bearer token that `Connection` would strip on the way out: what is
    // judged is what the upstream would get — the SAS.
    let sas =
        "restype=container&comp=list&sv=2022-11-02&sp=rl&se=2031-01-01T00:00:00Z&sig=c2lnbmF0dXJl";
    let (status, body) = refused(
        &env,
        curl(
            &env,
            &ca,
            BLOB,
            &format!("/c?{sas}"),
            &[
                "--http1.1",
                "-H",
                "Authorization: Bearer opaque-token-the-upstream-never-gets",
                "-H",
                "Connection: authorization",
            ],
        ),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["rule"], "sas-long-lived", "{body}");
    let rec = record(&env, &body["id"]).await;
    assert_eq!(rec["identity"]["kind"], "sas", "{rec}");

    // Both a bearer token and the SAS reach the upstream (HTTP/2 has no
    // Connection header): both are judged, and the stricter decision
    // stands. So is a long-lived SAS in a Copy From URL's source.
    let (status, body) = refused(
        &env,
        curl(
            &env,
            &ca,
            BLOB,
            &format!("/c?{sas}"),
            &["--http2", "-H", "Authorization: Bearer opaque-token"],
        ),
    )
    .await;
    assert_eq!(
        (status, &body["rule"]),
        (403, &"sas-long-lived".into()),
        "{body}"
    );
    let rec = record(&env, &body["id"]).await;
    assert_eq!(rec["identity"]["kind"], "bearer", "{rec}");
    assert_eq!(rec["identity"]["also"][0]["kind"], "sas", "{rec}");
    let source = format!("x-ms-copy-source: https://src.blob.core.windows.net/c/b?{sas}");
    let (status, body) = refused(
        &env,
        curl(
            &env,
            &ca,
            BLOB,
            "/c/copy",
            &[
                "-X",
                "PUT",
                "-H",
                "Authorization: Bearer opaque-token",
                "-H",
                &source,
            ],
        ),
    )
    .await;
    assert_eq!(
        (status, &body["rule"]),
        (403, &"sas-long-lived".into()),
        "{body}"
    );

    // Two Authorization headers, or one SAS parameter twice: which one
    // the server reads is its business; airlock refuses to guess.
    let (status, body) = refused(
        &env,
        curl(
            &env,
            &ca,
            ARM,
            &format!("{RG}?api-version=2021-04-01"),
            &[
                "-H",
                "Authorization: Bearer a",
                "-H",
                "Authorization: Bearer b",
            ],
        ),
    )
    .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &"AmbiguousCredential".into())
    );
    let (status, body) = refused(
        &env,
        curl(
            &env,
            &ca,
            BLOB,
            "/c/b?sv=2022-11-02&se=2026-01-01T00:00:00Z&sig=a&se=2031-01-01T00:00:00Z",
            &[],
        ),
    )
    .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &"AmbiguousCredential".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trail_keeps_no_secret_the_agent_sent() {
    if !privileged("the_trail_keeps_no_secret_the_agent_sent") {
        return;
    }
    let (env, ca) = setup("hostile-trail").await;
    let secrets = [
        "kv-secret-value-1",
        "cGFzc3dvcmQtMg==",
        "plain-token-3",
        "app-setting-secret-4",
        "deploy-param-secret-5",
        "opaque-agent-token-6",
        "c2FzLXNpZy03",
        "oauth2-bearer-token-8",
        // Too short and shapeless for any detector: known as the request's own.
        "tok-s3cr3t-9",
    ];
    let dir = ca.parent().unwrap().to_owned();
    let sub = "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/rg1/providers";
    let calls = [
        (
            VAULT,
            "PUT",
            "/secrets/db?api-version=7.4".to_owned(),
            format!(r#"{{"value":"{}"}}"#, secrets[0]),
        ),
        (
            AKS,
            "POST",
            "/api/v1/namespaces/default/secrets".to_owned(),
            format!(
                r#"{{"kind":"Secret","metadata":{{"name":"db"}},"data":{{"password":"{}"}},"stringData":{{"token":"{}"}}}}"#,
                secrets[1], secrets[2]
            ),
        ),
        (
            ARM,
            "PUT",
            format!("{sub}/Microsoft.Web/sites/app1/config/appsettings?api-version=2022-03-01"),
            format!(
                r#"{{"properties":{{"DB_PASSWORD":"{}","MODE":"prod"}}}}"#,
                secrets[3]
            ),
        ),
        (
            ARM,
            "PUT",
            format!("{sub}/Microsoft.Resources/deployments/d1?api-version=2021-04-01"),
            format!(
                r#"{{"properties":{{"mode":"Incremental","parameters":{{"adminPassword":{{"value":"{}"}}}}}}}}"#,
                secrets[4]
            ),
        ),
    ];
    for (i, (host, method, path, body)) in calls.iter().enumerate() {
        // The body from a file, as the CLIs send it: a secret typed into a
        // command line is the command line's problem (security.md).
        let file = dir.join(format!("body-{i}.json"));
        std::fs::write(&file, body).unwrap();
        readable(&file);
        let auth = format!("Authorization: Bearer {}", secrets[5]);
        let out = finish(curl(
            &env,
            &ca,
            host,
            path,
            &[
                "-X",
                method,
                "-H",
                "content-type: application/json",
                // Azure answers {"id":"ok"}.
                "-H",
                "x-test-respond: eyJpZCI6Im9rIn0=",
                "-H",
                &auth,
                "--data-binary",
                &format!("@{}", file.display()),
            ],
        ))
        .await;
        assert!(out.stdout.ends_with("200"), "{host}{path}: {out:?}");
    }
    let out = finish(curl(
        &env,
        &ca,
        BLOB,
        &format!(
            "/c/b?sv=2022-11-02&sp=r&se=2026-12-06T23:00:00Z&sig={}",
            secrets[6]
        ),
        &["--oauth2-bearer", secrets[7]],
    ))
    .await;
    assert!(out.status.success(), "{out:?}");
    // An upstream that echoes the request's headers back (as this one
    // does) cannot put the agent's own token in the response excerpt.
    let auth = format!("Authorization: Bearer {}", secrets[8]);
    let out = finish(curl(&env, &ca, BLOB, "/c/echo", &["-H", &auth])).await;
    assert!(
        out.stdout.contains(secrets[8]),
        "the client sees its own token: {out:?}"
    );
    env.airlock.exchanges(6).await;
    let trail = std::fs::read_to_string(&env.airlock.audit_path).unwrap();
    for secret in secrets {
        let line = trail.lines().find(|l| l.contains(secret));
        assert!(line.is_none(), "{secret} is in the trail: {line:?}");
    }
    assert!(
        trail.contains("airlock:masked:key-vault-secret:")
            && trail.contains("airlock:masked:kubernetes-secret:")
            && trail.contains("airlock:masked:app-setting:")
            && trail.contains("airlock:masked:deployment-parameter:"),
        "the excerpts are kept, masked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_harmless_name_reaches_only_its_own_server() {
    if !privileged("a_harmless_name_reaches_only_its_own_server") {
        return;
    }
    // "Azure" at 127.0.0.2, and the harmless name's own server (localhost:
    // 127.0.0.1 to airlock's resolver) on the same port; each presents one
    // certificate for both names, as a CDN front end would.
    let tmp = TempDir::new("hostile-front");
    let pki = TestPki::new("front upstream CA");
    let names = ["localhost", ARM];
    let azure = TlsUpstream::start(
        pki.server_config(&names, &[b"http/1.1"]),
        &["127.0.0.2:0".parse().unwrap()],
    )
    .await;
    let port = azure.port();
    let harmless = TlsUpstream::start(
        pki.server_config(&names, &[b"http/1.1"]),
        &[format!("127.0.0.1:{port}").parse().unwrap()],
    )
    .await;
    let roots = pki.write_ca(&public(tmp.path()));
    readable(&roots);
    let cg = TestCgroup::new("hostile-front");
    let airlock = Running::start(Running::capture(&cg, &[port])).await;
    let mut cmd = curl_as(&cg, AGENT_UID);
    cmd.arg("--resolve")
        .arg(format!("localhost:{port}:127.0.0.2"))
        .arg("--cacert")
        .arg(&roots)
        .args(["-H", &format!("Host: {ARM}")])
        .arg(format!("https://localhost:{port}{RG}"));
    let out = finish(cmd).await;
    assert!(out.stdout.ends_with("\n200"), "{out:?}");
    assert_eq!(
        (azure.connections(), harmless.requests()),
        (0, 1),
        "the harmless name's server answered, not the address dialled"
    );
    let rec = &airlock.records_of("tls_passthrough", 1).await[0];
    assert_eq!(rec["sni"], "localhost");
    assert_eq!(rec["dst"]["ip"], "127.0.0.2", "{rec}");
    assert_eq!(rec["relayed_to"]["ip"], "127.0.0.1", "{rec}");

    // Plain TCP on the captured port: refused and recorded.
    let mut cmd = curl_as(&cg, AGENT_UID);
    cmd.arg(format!("http://127.0.0.2:{port}/"));
    let out = finish(cmd).await;
    assert!(!out.status.success(), "{out:?}");
    let rec = airlock
        .connections(1)
        .await
        .into_iter()
        .find(|r| r["error"].as_str().is_some_and(|e| e.contains("not TLS")))
        .expect("a record of the refusal");
    assert!(
        rec["error"].as_str().unwrap().contains("proxy.non_tls"),
        "{rec}"
    );
    assert_eq!(azure.connections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_block_mode_only_listed_endpoints_are_reached() {
    if !privileged("in_block_mode_only_listed_endpoints_are_reached") {
        return;
    }
    let tmp = TempDir::new("hostile-block");
    let pki = TestPki::new("block upstream CA");
    let up = TlsUpstream::start(
        pki.server_config(&["localhost"], &[b"http/1.1"]),
        &["127.0.0.1:0".parse().unwrap()],
    )
    .await;
    let roots = pki.write_ca(&public(tmp.path()));
    readable(&roots);
    let policies = tmp.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    // A CI runner's egress list: root's tools may reach localhost, nothing
    // else reaches anything.
    std::fs::write(
        policies.join("10-egress.toml"),
        "[defaults]\naction = \"deny\"\nreason = \"not an allowed endpoint\"\n\n\
         [[rule]]\nname = \"runner-tools\"\naction = \"allow\"\nreason = \"listed\"\n\
         tls.sni = \"localhost\"\nprocess.uid = 0\n",
    )
    .unwrap();
    let cg = TestCgroup::new("hostile-block");
    let airlock = Running::start_with(Running::capture(&cg, &[up.port()]), |c| {
        c.policy.dir = Some(policies.clone());
    })
    .await;
    let fetch = |uid: u32| {
        let mut cmd = curl_as(&cg, uid);
        cmd.arg("--cacert")
            .arg(&roots)
            .arg(format!("https://localhost:{}/", up.port()));
        finish(cmd)
    };
    let out = fetch(0).await;
    assert!(out.status.success(), "the listed endpoint: {out:?}");
    let out = fetch(AGENT_UID).await;
    assert!(!out.status.success(), "the agent reached it: {out:?}");
    assert_eq!(up.requests(), 1, "only the listed caller's request arrived");
    let recs = airlock.records_of("tls_passthrough", 2).await;
    let refused = recs
        .iter()
        .find(|r| r["decision"]["action"] == "deny")
        .unwrap_or_else(|| panic!("{recs:#?}"));
    assert_eq!(refused["process"]["uid"], AGENT_UID);
    assert_eq!(refused["decision"]["reason"], "not an allowed endpoint");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("refused by policy")
    );
    let allowed = recs
        .iter()
        .find(|r| r["decision"]["action"] == "allow")
        .unwrap();
    assert_eq!(allowed["decision"]["rule"], "runner-tools");

    // The job's summary names what was blocked and the command that tried.
    let config = tmp.path().join("airlock.toml");
    std::fs::write(
        &config,
        format!(
            "[audit]\npath = {:?}\n",
            airlock.audit_path.display().to_string()
        ),
    )
    .unwrap();
    let summary = |format: &str| {
        let out = std::process::Command::new(airlock_tests::daemon::airlock_bin())
            .arg("audit")
            .arg("--config")
            .arg(&config)
            .args(["summary", "--since", "1h", "--format", format])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let json: Value = serde_json::from_str(&summary("json")).unwrap();
    let blocked = json["blocked"].as_array().unwrap();
    assert_eq!(blocked.len(), 1, "{json:#}");
    assert_eq!(blocked[0]["what"], "TLS to localhost");
    assert_eq!(blocked[0]["user"], "nobody");
    assert!(
        blocked[0]["command"].as_str().unwrap().starts_with("curl "),
        "{json:#}"
    );
    assert!(
        blocked[0]["why"]
            .as_str()
            .unwrap()
            .contains("not an allowed endpoint")
    );
    let markdown = summary("markdown");
    assert!(markdown.contains("**1 blocked**"), "{markdown}");
    assert!(
        markdown.contains("| TLS to localhost | refused by policy"),
        "{markdown}"
    );
}

/// A private key, as an upload would carry it.
const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n-----END PRIVATE KEY-----\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_scanned_whatever_they_claim_to_be() {
    if !privileged("uploads_are_scanned_whatever_they_claim_to_be") {
        return;
    }
    // Bodies past 16 KiB are scanned as they stream.
    let (env, ca) = setup_with("hostile-scan", |c| {
        c.masking.scan_before_forward_bytes = 16 * 1024;
    })
    .await;
    let dir = ca.parent().unwrap().to_owned();
    let gzip = |data: &[u8]| {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    };
    // Filler that carries no secret: long enough to stream.
    let filler: String = (0..4000)
        .map(|i| format!("line {i} of a build log\n"))
        .collect();
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        // The Storage SDK's own label for an upload.
        (
            "small, octet-stream",
            PEM.as_bytes().to_vec(),
            vec!["-H", "content-type: application/octet-stream"],
        ),
        (
            "small, gzip",
            gzip(PEM.as_bytes()),
            vec!["-H", "content-encoding: gzip"],
        ),
        // Streamed, the key at the very end: over HTTP/1.1 and HTTP/2,
        // with a length and chunked.
        (
            "streamed, HTTP/1.1",
            format!("{filler}{PEM}").into_bytes(),
            vec!["--http1.1"],
        ),
        (
            "streamed, chunked",
            format!("{filler}{PEM}").into_bytes(),
            vec!["--http1.1", "-H", "transfer-encoding: chunked"],
        ),
        (
            "streamed, HTTP/2",
            format!("{filler}{PEM}").into_bytes(),
            vec!["--http2"],
        ),
        (
            "streamed, gzip",
            gzip(format!("{filler}{PEM}{filler}").as_bytes()),
            vec!["-H", "content-encoding: gzip"],
        ),
    ];
    for (i, (what, body, extra)) in cases.iter().enumerate() {
        let file = dir.join(format!("upload-{i}"));
        std::fs::write(&file, body).unwrap();
        readable(&file);
        let mut args = vec!["-X", "PUT", "--data-binary"];
        let at = format!("@{}", file.display());
        args.push(&at);
        args.extend(extra.iter().copied());
        let before = env.up.bodies();
        let out = finish(curl(&env, &ca, BLOB, "/count", &args)).await;
        assert!(out.stdout.ends_with("403"), "{what}: {out:?}");
        let (body, _) = out.stdout.rsplit_once('\n').unwrap();
        let body: Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["rule"], "key-material-upload", "{what}: {body}");
        assert_eq!(
            env.up.bodies(),
            before,
            "{what}: the upstream got the whole body"
        );
        let rec = record(&env, &body["id"]).await;
        assert_eq!(rec["decision"]["action"], "deny", "{what}: {rec}");
        assert_eq!(
            rec["request"]["masked"]["detectors"]["private-key"], 1,
            "{what}: {rec}"
        );
    }
    // A coding airlock cannot decode cannot be judged: refused, not relayed.
    let file = dir.join("zstd");
    std::fs::write(&file, PEM).unwrap();
    readable(&file);
    let at = format!("@{}", file.display());
    let (status, body) = refused(
        &env,
        curl(
            &env,
            &ca,
            BLOB,
            "/count",
            &[
                "-X",
                "PUT",
                "--data-binary",
                &at,
                "-H",
                "content-encoding: zstd",
            ],
        ),
    )
    .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &"BadRequestBody".into()),
        "{body}"
    );
    // The same streamed upload without the key goes through, whole.
    let file = dir.join("clean");
    std::fs::write(&file, format!("{filler}{filler}")).unwrap();
    readable(&file);
    for http in ["--http1.1", "--http2"] {
        let before = env.up.bodies();
        let at = format!("@{}", file.display());
        let out = finish(curl(
            &env,
            &ca,
            BLOB,
            "/count",
            &["-X", "PUT", "--data-binary", &at, http],
        ))
        .await;
        assert!(out.stdout.ends_with("200"), "{http}: {out:?}");
        assert_eq!(env.up.bodies(), before + 1, "{http}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_masked_whatever_format_they_are_asked_in() {
    if !privileged("secrets_are_masked_whatever_format_they_are_asked_in") {
        return;
    }
    use base64::Engine;
    let (env, ca) = setup("hostile-format").await;
    let secret = "/api/v1/namespaces/default/secrets/db";
    let get = |headers: &[&str]| {
        let mut args = vec![];
        for h in headers {
            args.push("-H");
            args.push(*h);
        }
        let args: Vec<String> = args.into_iter().map(str::to_owned).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        finish(curl(&env, &ca, AKS, secret, &args))
    };
    // YAML, protobuf and a Range are asked for as JSON, whole; a Table
    // stays a Table.
    for (accept, sent) in [
        ("application/yaml", "application/json"),
        (
            "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io",
            "application/json;as=Table;v=v1;g=meta.k8s.io",
        ),
    ] {
        let out = get(&[&format!("Accept: {accept}"), "Range: bytes=0-15"]).await;
        let (body, status) = out.stdout.rsplit_once('\n').unwrap();
        assert_eq!(status, "200", "{out:?}");
        let seen: Value = serde_json::from_str(body).unwrap();
        assert_eq!(seen["headers"]["accept"], sent, "{seen}");
        assert!(seen["headers"].get("range").is_none(), "{seen}");
    }
    // A Table whose rows carry whole Secrets (includeObject=Object).
    let password = "dGFibGUtcm93LXNlY3JldC0x";
    let table = serde_json::json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1",
        "rows": [{"cells": ["db", "Opaque", 1], "object": {"kind": "Secret",
            "metadata": {"name": "db"}, "data": {"password": password}}}]});
    let b64 = base64::engine::general_purpose::STANDARD.encode(table.to_string());
    let out = get(&[
        "Accept: application/json;as=Table;v=v1;g=meta.k8s.io",
        &format!("x-test-respond: {b64}"),
        "x-test-content-type: application/json",
    ])
    .await;
    assert!(out.stdout.ends_with("200"), "{out:?}");
    assert!(!out.stdout.contains(password), "{out:?}");
    assert!(
        out.stdout.contains("airlock:masked:kubernetes-secret:"),
        "{out:?}"
    );
    // An upstream that answers YAML anyway is not relayed.
    let yaml = "apiVersion: v1\nkind: Secret\ndata:\n  password: eWFtbC1zZWNyZXQtMg==\n";
    let b64 = base64::engine::general_purpose::STANDARD.encode(yaml);
    let out = get(&[
        &format!("x-test-respond: {b64}"),
        "x-test-content-type: application/yaml",
    ])
    .await;
    let (body, status) = out.stdout.rsplit_once('\n').unwrap();
    assert_eq!(status, "502", "{out:?}");
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["error"]["code"], "UnmaskableResponse", "{body}");
    env.airlock.exchanges(4).await;
    let trail = std::fs::read_to_string(&env.airlock.audit_path).unwrap();
    assert!(!trail.contains("eWFtbC1zZWNyZXQtMg") && !trail.contains(password));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_inside_envelopes_are_judged_one_by_one() {
    if !privileged("requests_inside_envelopes_are_judged_one_by_one") {
        return;
    }
    // Held requests expire at once: nobody approves in this test.
    let (env, ca) = setup_with("hostile-envelope", |c| {
        c.approval.timeout = "1s".into();
    })
    .await;
    let post = |host: &'static str, path: &str, content_type: &str, body: String| {
        let ct = format!("content-type: {content_type}");
        let extra = ["-X", "POST", "-H", &ct, "--data-binary", &body];
        finish(curl(&env, &ca, host, path, &extra))
    };
    let status = |out: &airlock_tests::Finished| -> (String, Value) {
        let (body, status) = out.stdout.rsplit_once('\n').unwrap();
        (
            status.to_owned(),
            serde_json::from_str(body).unwrap_or(Value::Null),
        )
    };
    let before = env.up.requests();
    // A resource group delete inside an ARM batch is held like one sent alone.
    let batch = serde_json::json!({"requests": [
        {"httpMethod": "GET", "url": format!("{RG}/providers/Microsoft.Web/sites?api-version=2022-03-01")},
        {"httpMethod": "DELETE", "url": format!("https://{ARM}{RG}?api-version=2021-04-01")},
    ]});
    let out = post(
        ARM,
        "/batch?api-version=2020-06-01",
        "application/json",
        batch.to_string(),
    )
    .await;
    let (code, body) = status(&out);
    assert_eq!(code, "403", "{out:?}");
    assert_eq!(body["rule"], "resource-group-delete", "{body}");
    let rec = record(&env, &body["id"]).await;
    let inner = rec["request"]["inner"].as_array().unwrap();
    assert_eq!(inner.len(), 2, "{rec}");
    assert_eq!(
        inner[1]["operation"],
        "Microsoft.Resources/subscriptions/resourceGroups/delete"
    );
    assert_eq!(inner[1]["decision"]["action"], "approve");
    assert_eq!(rec["approval"]["outcome"], "expired", "{rec}");

    // A Complete-mode deployment is held too.
    let deployment =
        serde_json::json!({"properties": {"mode": "Complete", "template": {"resources": []}}});
    let deployment = deployment.to_string();
    let path = format!("{RG}/providers/Microsoft.Resources/deployments/d1?api-version=2021-04-01");
    let extra = [
        "-X",
        "PUT",
        "-H",
        "content-type: application/json",
        "--data-binary",
        &deployment,
    ];
    let cmd = curl(&env, &ca, ARM, &path, &extra);
    let (code, body) = status(&finish(cmd).await);
    assert_eq!(
        (code.as_str(), &body["rule"]),
        ("403", &"deployment-complete-mode".into()),
        "{body}"
    );

    // A malformed envelope is refused, not guessed at.
    let out = post(
        ARM,
        "/batch?api-version=2020-06-01",
        "application/json",
        "{\"requests\": 1}".into(),
    )
    .await;
    assert_eq!(status(&out).0, "400", "{out:?}");
    let out = post(BLOB, "/?comp=batch", "multipart/mixed", "--x\r\n".into()).await;
    assert_eq!(status(&out).0, "400", "{out:?}");
    // An inner path that would be read two ways refuses the envelope.
    let sneaky = serde_json::json!({"requests": [{"httpMethod": "DELETE", "url": format!("{RG}/.?api-version=2021-04-01")}]});
    let out = post(
        ARM,
        "/batch?api-version=2020-06-01",
        "application/json",
        sneaky.to_string(),
    )
    .await;
    assert_eq!(status(&out).0, "400", "{out:?}");
    assert_eq!(
        env.up.requests(),
        before,
        "no envelope above reached the upstream"
    );

    // A blob batch: each subrequest named in the record, and forwarded.
    let blob_batch = "--batch_1\r\nContent-Type: application/http\r\nContent-ID: 0\r\n\r\nDELETE /c/b1 HTTP/1.1\r\n\r\n\r\n--batch_1--\r\n";
    let out = post(
        BLOB,
        "/?comp=batch",
        "multipart/mixed; boundary=batch_1",
        blob_batch.into(),
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    let recs = env.airlock.exchanges(6).await;
    let rec = recs
        .iter()
        .find(|r| {
            r["request"]["operation"]["name"] == "storage.service.batch"
                && r["response"]["status"] != 400
        })
        .unwrap_or_else(|| panic!("{recs:#?}"));
    assert_eq!(
        rec["request"]["inner"][0]["operation"], "storage.blob.delete",
        "{rec}"
    );
    assert_eq!(env.up.requests(), before + 1);

    // An account's keys asked for inside an ARM batch come back masked, as
    // they would alone.
    use base64::Engine;
    let key = "c2Vjb25kLWFjY291bnQta2V5LWluLWEtYmF0Y2g=";
    let answer = serde_json::json!({"responses": [{"name": "k", "httpStatusCode": 200,
        "content": {"keys": [{"keyName": "key1", "value": key, "permissions": "FULL"}]}}]});
    let b64 = base64::engine::general_purpose::STANDARD.encode(answer.to_string());
    let list_keys = serde_json::json!({"requests": [{"httpMethod": "POST", "name": "k",
        "url": format!("{RG}/providers/Microsoft.Storage/storageAccounts/acct1/listKeys?api-version=2023-01-01")}]});
    let respond = format!("x-test-respond: {b64}");
    let list_keys = list_keys.to_string();
    let extra = [
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "-H",
        &respond,
        "--data-binary",
        &list_keys,
    ];
    let cmd = curl(&env, &ca, ARM, "/batch?api-version=2020-06-01", &extra);
    let out = finish(cmd).await;
    assert!(!out.stdout.contains(key), "{out:?}");
    let (got, _) = out.stdout.rsplit_once('\n').unwrap();
    let got: Value = serde_json::from_str(got).unwrap();
    let masked = got["responses"][0]["content"]["keys"][0]["value"]
        .as_str()
        .unwrap();
    assert!(
        masked.starts_with("airlock:masked:storage-account-key:"),
        "{got}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_changes_through_graph_are_held() {
    if !privileged("directory_changes_through_graph_are_held") {
        return;
    }
    let (env, ca) = setup_with("hostile-graph", |c| {
        c.approval.timeout = "1s".into();
    })
    .await;
    let post = |path: &str, body: &str| {
        let extra = [
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "--data-binary",
            body,
        ];
        let cmd = curl(&env, &ca, GRAPH, path, &extra);
        finish(cmd)
    };
    for (path, body, rule) in [
        (
            "/v1.0/applications/0c9a/addPassword",
            r#"{"passwordCredential":{"displayName":"ci"}}"#,
            "graph-app-credential",
        ),
        (
            "/v1.0/roleManagement/directory/roleAssignments",
            r#"{"roleDefinitionId":"62e90394-69f5-4237-9190-012177145e10","principalId":"p1","directoryScopeId":"/"}"#,
            "graph-directory-role",
        ),
        // The same, inside a $batch.
        (
            "/v1.0/$batch",
            r#"{"requests":[{"id":"1","method":"GET","url":"/me"},{"id":"2","method":"POST","url":"applications/0c9a/addPassword","body":{},"headers":{"content-type":"application/json"}}]}"#,
            "graph-app-credential",
        ),
    ] {
        let out = post(path, body).await;
        let (text, status) = out.stdout.rsplit_once('\n').unwrap();
        assert_eq!(status, "403", "{path}: {out:?}");
        let v: Value = serde_json::from_str(text).unwrap();
        assert_eq!(v["rule"], rule, "{path}: {v}");
        assert_eq!(v["outcome"], "expired", "{path}: {v}");
    }
    assert_eq!(env.up.requests(), 0, "nothing reached the directory");
}

/// A user-assigned identity the agent may not use.
const DENIED_IDENTITY: &str = "7e57d0e5-0000-4000-8000-00000000dead";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_identity_tokens_are_judged_and_kept_out_of_the_trail() {
    if !privileged("managed_identity_tokens_are_judged_and_kept_out_of_the_trail") {
        return;
    }
    let tmp = TempDir::new("hostile-imds");
    // 127.0.0.77 stands in for 169.254.169.254: plain HTTP, no TLS.
    let imds = FakeImds::on("127.0.0.77").await;
    let policies = tmp.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(
        policies.join("10-imds.toml"),
        format!(
            "[defaults]\naction = \"allow\"\n\n\
             [[rule]]\nname = \"no-deploy-identity\"\naction = \"deny\"\n\
             reason = \"the deployment identity is not for agents\"\n\
             request.operation = \"imds.token\"\nidentity.app_id = \"{DENIED_IDENTITY}\"\n"
        ),
    )
    .unwrap();
    let cg = TestCgroup::new("hostile-imds");
    // Port 443 is captured for TLS; the metadata address whatever its port.
    let airlock = Running::start_with(Running::capture(&cg, &[443]), |c| {
        c.capture.imds = vec![imds.addr()];
        c.policy.dir = Some(policies.clone());
    })
    .await;
    let arm = "resource=https%3A%2F%2Fmanagement.azure.com%2F";
    let token_url = |query: &str| {
        format!(
            "http://{}/metadata/identity/oauth2/token?api-version=2018-02-01&{query}",
            imds.addr()
        )
    };
    let ask = |url: String, extra: &[&str]| {
        let mut cmd = curl_as(&cg, AGENT_UID);
        cmd.args(["-H", "Metadata: true"]).args(extra).arg(url);
        finish(cmd)
    };
    let split = |out: &airlock_tests::Finished| {
        assert!(out.status.success(), "{out:?}");
        let (body, status) = out.stdout.rsplit_once('\n').unwrap();
        let body: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {out:?}"));
        (status.parse::<u16>().unwrap(), body)
    };

    // The host's own identity: the agent gets its token intact; the trail
    // names the request and the identity, and keeps no token.
    let (status, body) = split(&ask(token_url(arm), &[]).await);
    assert_eq!(status, 200, "{body}");
    let token = airlock_tests::imds::token_for("https://management.azure.com/");
    assert_eq!(body["access_token"], token.as_str());
    assert_eq!(imds.requests(), 1);
    let rec = airlock.exchanges(1).await.remove(0);
    assert_eq!(rec["request"]["operation"]["name"], "imds.token", "{rec}");
    assert_eq!(rec["request"]["operation"]["service"], "imds");
    assert_eq!(
        rec["request"]["operation"]["audience"],
        "https://management.azure.com/"
    );
    assert_eq!(rec["identity"]["kind"], "managed_identity", "{rec}");
    assert_eq!(rec["process"]["uid"], AGENT_UID);
    assert_eq!(rec["response"]["status"], 200);
    let trail = std::fs::read_to_string(&airlock.audit_path).unwrap();
    let signature = token.rsplit('.').next().unwrap();
    assert!(!trail.contains(signature), "the token is in the trail");
    assert!(
        rec["response"]["body"]["excerpt"]
            .as_str()
            .is_some_and(|e| e.contains("access_token")),
        "{rec}"
    );

    // An identity policy keeps from the agent: refused before the service
    // is asked, by client id, whatever else the request says.
    let before = imds.requests();
    let (status, body) = split(
        &ask(
            token_url(&format!("{arm}&client_id={DENIED_IDENTITY}")),
            &[],
        )
        .await,
    );
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["source"], "airlock");
    // Named twice, two ways: which one the service reads is not a guess
    // airlock makes.
    let (status, body) = split(
        &ask(
            token_url(&format!(
                "{arm}&client_id={DENIED_IDENTITY}&client_id=0f6c5a2e-0000-4000-8000-0000000000aa"
            )),
            &[],
        )
        .await,
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "AmbiguousCredential");
    // Another host named on the metadata connection.
    let (status, body) = split(&ask(token_url(arm), &["-H", "Host: management.azure.com"]).await);
    assert_eq!(status, 421, "{body}");
    assert_eq!(imds.requests(), before, "the service saw a refused request");
    let recs = airlock.exchanges(4).await;
    let denied = recs
        .iter()
        .find(|r| r["decision"]["action"] == "deny")
        .unwrap_or_else(|| panic!("{recs:#?}"));
    assert_eq!(denied["identity"]["app_id"], DENIED_IDENTITY);
    assert_eq!(denied["decision"]["rule"], "no-deploy-identity");

    // The rest of the service is named too.
    let (status, body) = split(
        &ask(
            format!(
                "http://{}/metadata/instance?api-version=2021-02-01",
                imds.addr()
            ),
            &[],
        )
        .await,
    );
    assert_eq!(status, 200, "{body}");
    let recs = airlock.exchanges(5).await;
    assert!(
        recs.iter()
            .any(|r| r["request"]["operation"]["name"] == "imds.instance"),
        "{recs:#?}"
    );
}
