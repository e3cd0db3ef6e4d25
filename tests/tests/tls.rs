//! TLS interception end to end: real curl and a real WebSocket client in a
//! captured cgroup, airlock in-process, HTTPS upstreams with their own CA.

use std::path::Path;

use airlock_tests::agent::{AGENT_UID, as_user};
use airlock_tests::pki::TestPki;
use airlock_tests::tls_upstream::TlsUpstream;
use airlock_tests::{Finished, Running, Talking, TempDir, TestCgroup, finish, privileged};
use serde_json::{Value, json};

/// Intercepted by the default `proxy.intercept` list (`*.azure.com`).
const AZURE: &str = "api.airlock-test.azure.com";
/// Not intercepted: spliced through, to what airlock's resolver says the
/// name is (`/etc/hosts`: the test's loopback upstream).
const OTHER: &str = "localhost";

struct Env {
    cg: TestCgroup,
    up: TlsUpstream,
    airlock: Running,
    _tmp: TempDir,
}

/// An upstream for `name` (serving `alpn`, or self-signed when
/// `trusted` is false), and airlock capturing its port and trusting the
/// upstream's CA.
async fn setup(tag: &str, name: &str, trusted: bool) -> (Env, TestPki) {
    setup_with(tag, name, trusted, |_| {}).await
}

/// As [`setup`], with airlock's config adjusted further.
async fn setup_with(
    tag: &str,
    name: &str,
    trusted: bool,
    adjust: impl FnOnce(&mut airlock::Config),
) -> (Env, TestPki) {
    let tmp = TempDir::new(tag);
    let pki = TestPki::new("airlock test upstream CA");
    let config = if trusted {
        pki.server_config(&[name], &[b"h2", b"http/1.1"])
    } else {
        TestPki::self_signed_server_config(&[name], &[b"h2", b"http/1.1"])
    };
    let up = TlsUpstream::start(config, &["127.0.0.1:0".parse().unwrap()]).await;
    let roots = pki.write_ca(tmp.path());
    let cg = TestCgroup::new(tag);
    let airlock = Running::start_with(Running::capture(&cg, &[up.port()]), |c| {
        c.tls.upstream_roots = vec![roots];
        adjust(c);
    })
    .await;
    (
        Env {
            cg,
            up,
            airlock,
            _tmp: tmp,
        },
        pki,
    )
}

/// curl in the cgroup, as the agent (`nobody`), for
/// `https://name:port/path`, trusting `ca`: airlock's through exactly the
/// variables `airlock ca env` prints, any other with `--cacert`.
async fn curl(env: &Env, name: &str, path: &str, ca: Option<&Path>, extra: &[&str]) -> Finished {
    let mut cmd = match ca {
        Some(ca) if ca == env.airlock.ca_cert() => env.airlock.client(&env.cg, "curl"),
        _ => as_user(&env.cg, AGENT_UID, "curl"),
    };
    cmd.args(["-sS", "--max-time", "20", "--resolve"])
        .arg(format!("{name}:{}:127.0.0.1", env.up.port()))
        .args(extra);
    if let Some(ca) = ca.filter(|ca| *ca != env.airlock.ca_cert()) {
        cmd.arg("--cacert").arg(ca);
    }
    cmd.arg(format!("https://{name}:{}{path}", env.up.port()));
    finish(cmd).await
}

fn json(out: &Finished) -> Value {
    assert!(out.status.success(), "curl failed: {out:?}");
    serde_json::from_str(out.stdout.lines().next().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_and_http2_are_decrypted_audited_and_reencrypted() {
    if !privileged("http1_and_http2_are_decrypted_audited_and_reencrypted") {
        return;
    }
    let (env, _) = setup("h1h2", AZURE, true).await;
    let ca = env.airlock.ca_cert();

    let h1 = curl(
        &env,
        AZURE,
        "/info?api-version=2023-01-01",
        Some(&ca),
        &["--http1.1", "-w", "\n%{http_version}"],
    )
    .await;
    let body = json(&h1);
    assert_eq!(body["version"], "HTTP/1.1");
    assert_eq!(
        body["alpn"], "http/1.1",
        "upstream ALPN mirrors the client's"
    );
    assert_eq!(h1.stdout.lines().last(), Some("1.1"));
    assert!(
        body["headers"]["user-agent"]
            .as_str()
            .unwrap()
            .starts_with("curl/")
    );

    let h2 = curl(
        &env,
        AZURE,
        "/info",
        Some(&ca),
        &["--http2", "-w", "\n%{http_version}"],
    )
    .await;
    let body = json(&h2);
    assert_eq!(body["version"], "HTTP/2.0");
    assert_eq!(body["alpn"], "h2");
    assert_eq!(h2.stdout.lines().last(), Some("2"));

    let recs = env.airlock.exchanges(2).await;
    assert_eq!(recs.len(), 2, "{recs:#?}");
    let r = &recs[0];
    assert_eq!(r["process"]["pid"], h1.pid);
    assert_eq!(r["process"]["comm"], "curl");
    assert_eq!(r["request"]["method"], "GET");
    assert_eq!(r["request"]["host"], AZURE);
    assert_eq!(r["request"]["port"], env.up.port());
    assert_eq!(r["request"]["path"], "/info");
    assert_eq!(r["request"]["query"], "api-version=2023-01-01");
    // The request record (same id) was made durable before forwarding and
    // carries the headers.
    let all = env.airlock.records();
    let req = all
        .iter()
        .find(|x| x["phase"] == "request" && x["id"] == r["id"])
        .expect("request-phase record");
    assert!(req["seq"].as_u64() < r["seq"].as_u64());
    assert!(req["response"].is_null());
    assert!(
        req["request"]["headers"]["user-agent"]
            .as_str()
            .unwrap()
            .starts_with("curl/")
    );
    assert_eq!(r["response"]["body"]["bytes"], r["response"]["bytes"]);
    assert_eq!(r["response"]["body"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(r["response"]["status"], 200);
    assert!(r["response"]["bytes"].as_u64().unwrap() > 50, "{r}");
    assert_eq!(r["tls"]["sni"], AZURE);
    assert_eq!(r["tls"]["alpn"], "http/1.1");
    assert_eq!(recs[1]["tls"]["alpn"], "h2");
    assert_eq!(recs[1]["process"]["pid"], h2.pid);
    assert!(r["id"].is_string() && r["ts"].is_string());
    env.airlock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_streams_stay_multiplexed_on_one_connection() {
    if !privileged("http2_streams_stay_multiplexed_on_one_connection") {
        return;
    }
    let (env, _) = setup("mux", AZURE, true).await;
    let base = format!("https://{AZURE}:{}", env.up.port());
    let mut cmd = env.airlock.client(&env.cg, "curl");
    cmd.args([
        "-sS",
        "--http2",
        "--parallel",
        "--parallel-max",
        "6",
        "--max-time",
        "20",
    ])
    .arg("--resolve")
    .arg(format!("{AZURE}:{}:127.0.0.1", env.up.port()))
    .args(["-w", "\n"]);
    for i in 0..6 {
        cmd.arg(format!("{base}/slow?ms=300&n={i}"));
    }
    let out = finish(cmd).await;
    assert!(out.status.success(), "{out:?}");
    // Parallel transfers may interleave their -w newlines: read a stream of
    // JSON values instead of lines.
    let bodies: Vec<Value> = serde_json::Deserializer::from_str(&out.stdout)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(bodies.len(), 6, "{}", out.stdout);
    assert!(
        bodies
            .iter()
            .all(|b| b["version"] == "HTTP/2.0" && b["conn"] == bodies[0]["conn"]),
        "{bodies:#?}"
    );
    assert!(
        bodies
            .iter()
            .any(|b| b["in_flight_peak"].as_u64().unwrap() >= 2),
        "streams were not concurrent through airlock: {bodies:#?}"
    );
    assert_eq!(
        env.up.connections(),
        1,
        "six streams, one upstream connection"
    );
    assert_eq!(env.airlock.exchanges(6).await.len(), 6);
    env.airlock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrade_is_relayed_after_101() {
    if !privileged("websocket_upgrade_is_relayed_after_101") {
        return;
    }
    let (env, _) = setup("ws", AZURE, true).await;
    let mut cmd = as_user(&env.cg, AGENT_UID, env!("CARGO_BIN_EXE_ws-client"));
    cmd.env("WS_CONNECT", format!("127.0.0.1:{}", env.up.port()))
        .arg(format!("wss://{AZURE}:{}/ws", env.up.port()))
        .arg(env.airlock.ca_cert())
        .args(["hello", "kubectl exec"]);
    let out = finish(cmd).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        ["echo:hello", "echo:kubectl exec"]
    );
    let recs = env.airlock.exchanges(1).await;
    let r = &recs[0];
    assert_eq!(r["response"]["status"], 101);
    assert_eq!(r["upgraded"], true);
    assert_eq!(r["request"]["path"], "/ws");
    assert!(
        r["request"]["body"]["bytes"].as_u64().unwrap() > 10,
        "frames counted: {r}"
    );
    assert!(
        r["response"]["bytes"].as_u64().unwrap() > 10,
        "frames counted: {r}"
    );
    env.airlock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_hosts_pass_through_with_the_upstream_certificate() {
    if !privileged("other_hosts_pass_through_with_the_upstream_certificate") {
        return;
    }
    let (env, pki) = setup("pass", OTHER, true).await;
    let tmp = TempDir::new("pass-ca");
    let upstream_ca = pki.write_ca(tmp.path());
    // The client sees the upstream's own certificate...
    let body = json(&curl(&env, OTHER, "/info", Some(&upstream_ca), &[]).await);
    assert_eq!(body["path"], "/info");
    // ...and not one minted by airlock.
    let minted = curl(&env, OTHER, "/info", Some(&env.airlock.ca_cert()), &[]).await;
    assert!(
        !minted.status.success(),
        "airlock's CA must not verify a passthrough host: {minted:?}"
    );

    let recs = env.airlock.records_of("tls_passthrough", 2).await;
    assert_eq!(recs.len(), 2, "{recs:#?}");
    assert_eq!(recs[0]["sni"], OTHER);
    assert_eq!(recs[0]["process"]["comm"], "curl");
    assert!(recs[0]["bytes_in"].as_u64().unwrap() > 100);
    assert!(
        env.airlock.exchanges(0).await.is_empty(),
        "passthrough is not decrypted"
    );
    env.airlock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_upstream_gets_502_and_nothing_forwarded() {
    if !privileged("untrusted_upstream_gets_502_and_nothing_forwarded") {
        return;
    }
    let (env, _) = setup("untrusted", AZURE, false).await;
    let out = curl(
        &env,
        AZURE,
        "/count",
        Some(&env.airlock.ca_cert()),
        &["-X", "POST", "--data", "secret=1", "-w", "\n%{http_code}"],
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout.lines().last(), Some("502"));
    let body: Value = serde_json::from_str(out.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "UpstreamTlsFailed");
    assert!(
        body["error"]["message"].as_str().unwrap().contains(AZURE),
        "{body}"
    );
    assert_eq!(
        env.up.requests(),
        0,
        "nothing may reach an unverified upstream"
    );
    let recs = env.airlock.exchanges(1).await;
    assert_eq!(recs[0]["response"]["status"], 502);
    assert!(
        recs[0]["error"]
            .as_str()
            .unwrap()
            .starts_with("UpstreamTlsFailed"),
        "{}",
        recs[0]
    );
    env.airlock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_that_distrusts_the_ca_is_recorded() {
    if !privileged("client_that_distrusts_the_ca_is_recorded") {
        return;
    }
    let (env, pki) = setup("distrust", AZURE, true).await;
    let tmp = TempDir::new("distrust-ca");
    // The client trusts only the upstream's CA, as a pinning client would.
    let out = curl(&env, AZURE, "/info", Some(&pki.write_ca(tmp.path())), &[]).await;
    assert!(!out.status.success(), "{out:?}");
    let recs = env.airlock.records_of("tls_client_refused", 1).await;
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["process"]["pid"], out.pid);
    assert_eq!(recs[0]["sni"], AZURE);
    assert!(recs[0]["hint"].as_str().unwrap().contains("airlock ca env"));
    env.airlock.stop().await;
}

/// Completes the handshake without judging the certificate, then closes
/// without a request — with a close_notify (`notify`) or without: what
/// .NET does when it checks the certificate only after the handshake and
/// does not trust it.
const CLOSE_AFTER_HANDSHAKE: &str = r#"
import socket, ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
t = ctx.wrap_socket(s, server_hostname=sys.argv[1])
print(t.version(), flush=True)
if sys.argv[3] == "notify":
    try:
        t.unwrap()  # sends close_notify; airlock just closes
    except ssl.SSLError:
        pass
t.close()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_closes_after_the_handshake_without_a_request_is_recorded_as_refusing() {
    if !privileged(
        "a_client_that_closes_after_the_handshake_without_a_request_is_recorded_as_refusing",
    ) {
        return;
    }
    let (env, _) = setup("closeafter", AZURE, true).await;
    let mut pids = Vec::new();
    for how in ["notify", "fin"] {
        let mut cmd = env.airlock.client(&env.cg, "/usr/bin/python3");
        cmd.args(["-c", CLOSE_AFTER_HANDSHAKE, AZURE])
            .arg(env.up.port().to_string())
            .arg(how);
        let out = finish(cmd).await;
        assert!(out.status.success(), "{out:?}");
        assert_eq!(out.stdout.trim(), "TLSv1.3", "{how}");
        pids.push(out.pid);
    }
    let recs = env.airlock.records_of("tls_client_refused", 2).await;
    assert_eq!(recs.len(), 2, "{recs:?}");
    for (rec, pid) in recs.iter().zip(&pids) {
        assert_eq!(rec["process"]["pid"], *pid);
        assert_eq!(rec["sni"], AZURE);
        let error = rec["error"].as_str().unwrap();
        assert!(
            error.contains(
                "closed the connection after the TLS handshake without sending a request"
            ),
            "{error}"
        );
        assert!(rec["hint"].as_str().unwrap().contains("airlock ca env"));
    }
    assert_eq!(env.up.requests(), 0);
    env.airlock.stop().await;
}

/// Sends a ClientHello for `AZURE`, reads airlock's answer (its certificate
/// among it), then resets the connection without a word: what a client
/// killed mid-handshake, or a load generator stopping, looks like.
const ABANDON_HANDSHAKE: &str = r#"
import socket, ssl, struct, sys
ctx = ssl.create_default_context()
incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = ctx.wrap_bio(incoming, outgoing, server_hostname=sys.argv[1])
s = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
try:
    tls.do_handshake()
except ssl.SSLWantReadError:
    pass
s.sendall(outgoing.read())
print(len(s.recv(65536)) > 0, flush=True)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_gone_mid_handshake_is_not_recorded_as_refusing_the_certificate() {
    if !privileged("client_gone_mid_handshake_is_not_recorded_as_refusing_the_certificate") {
        return;
    }
    let (env, _) = setup("abandon", AZURE, true).await;
    let mut cmd = env.airlock.client(&env.cg, "/usr/bin/python3");
    cmd.args(["-c", ABANDON_HANDSHAKE, AZURE])
        .arg(env.up.port().to_string());
    let out = finish(cmd).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout.trim(), "True", "airlock answered the hello");
    let recs = env.airlock.connections(1).await;
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0]["process"]["pid"], out.pid);
    assert_eq!(recs[0]["sni"], AZURE);
    let error = recs[0]["error"].as_str().unwrap();
    assert!(
        error.starts_with("TLS handshake with the client not completed"),
        "{error}"
    );
    let refused = env.airlock.records();
    assert!(
        !refused.iter().any(|r| r["kind"] == "tls_client_refused"),
        "{refused:?}"
    );
    env.airlock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_upstream_gets_a_502_naming_it() {
    if !privileged("unreachable_upstream_gets_a_502_naming_it") {
        return;
    }
    // A captured port where nothing listens.
    let closed = airlock_tests::daemon::free_port("127.0.0.1");
    let cg = TestCgroup::new("unreachable");
    let airlock = Running::start(Running::capture(&cg, &[closed])).await;
    let mut cmd = airlock.client(&cg, "curl");
    cmd.args(["-sS", "--max-time", "20", "-w", "\n%{http_code}"])
        .arg("--resolve")
        .arg(format!("{AZURE}:{closed}:127.0.0.1"))
        .arg(format!("https://{AZURE}:{closed}/subscriptions"));
    let out = finish(cmd).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout.lines().last(), Some("502"));
    let body: Value = serde_json::from_str(out.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "UpstreamUnreachable");
    let recs = airlock.exchanges(1).await;
    assert_eq!(recs[0]["response"]["status"], 502);
    assert_eq!(recs[0]["request"]["path"], "/subscriptions");
    airlock.stop().await;
}

/// The upstream connection is made with the client's handshake, but HTTP
/// on it starts with the first request. If the upstream hangs up while the
/// client is still idle, that first request goes out on a fresh dial.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_hangs_up_on_an_idle_client_is_dialled_again() {
    if !privileged("an_upstream_that_hangs_up_on_an_idle_client_is_dialled_again") {
        return;
    }
    let (env, _) = setup("hangup", AZURE, true).await;
    env.up.hang_up_next();
    let mut client = silent_client(&env, "/after-idle").await;
    // Both handshakes are done; the upstream counts its side once it has
    // read airlock's Finished, and then hangs up.
    let deadline = tokio::time::Instant::now() + airlock_tests::WAIT;
    while env.up.connections() == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(env.up.connections(), 1);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(speak(&mut client).await, "HTTP/1.1 200 OK");
    assert_eq!(
        env.up.connections(),
        2,
        "the request went out on a new connection"
    );
    let recs = env.airlock.exchanges(1).await;
    assert_eq!(recs[0]["response"]["status"], 200);
    assert!(recs[0]["error"].is_null(), "{}", recs[0]);
    env.airlock.stop().await;
}

/// A client connection that ends leaves its upstream connection idle in
/// airlock's pool: the next client connection to the same host, offering
/// the same protocols, is served on it (no second upstream handshake),
/// and one offering other protocols gets its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consecutive_client_connections_share_one_upstream_connection() {
    if !privileged("consecutive_client_connections_share_one_upstream_connection") {
        return;
    }
    let (env, _) = setup("pool", AZURE, true).await;
    let ca = env.airlock.ca_cert();
    let mut seen = Vec::new();
    for (i, version) in ["--http1.1", "--http1.1", "--http2", "--http2", "--http1.1"]
        .into_iter()
        .enumerate()
    {
        let body = json(&curl(&env, AZURE, &format!("/pooled/{i}"), Some(&ca), &[version]).await);
        seen.push((body["conn"].as_u64().unwrap(), body["version"].clone()));
    }
    assert_eq!(
        seen,
        [
            (1, json!("HTTP/1.1")),
            (1, json!("HTTP/1.1")),
            (2, json!("HTTP/2.0")),
            (2, json!("HTTP/2.0")),
            (1, json!("HTTP/1.1")),
        ],
        "five client connections, two upstream connections (one per ALPN offer)"
    );
    assert_eq!(env.up.connections(), 2);
    let recs = env.airlock.exchanges(5).await;
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r["request"]["path"], format!("/pooled/{i}"), "{r}");
        assert_eq!(r["response"]["status"], 200, "{r}");
    }
    env.airlock.stop().await;
}

/// A python3 client (as the agent) that completes its TLS handshake with
/// airlock for `AZURE`, offering HTTP/1.1, says `up`, and stays silent
/// until [`speak`] tells it to send `GET path`.
async fn silent_client(env: &Env, path: &str) -> Talking {
    let script = format!(
        "import socket, ssl, sys\n\
         ctx = ssl.create_default_context(cafile={ca:?})\n\
         ctx.set_alpn_protocols(['http/1.1'])\n\
         s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', {port})), server_hostname={name:?})\n\
         print('up', flush=True); sys.stdin.readline()\n\
         s.sendall(b'GET {path} HTTP/1.1\\r\\nHost: {name}\\r\\nConnection: close\\r\\n\\r\\n')\n\
         data = b''\n\
         while True:\n    chunk = s.recv(65536)\n    if not chunk: break\n    data += chunk\n\
         print(data.split(b'\\r\\n')[0].decode(), flush=True)\n",
        ca = env.airlock.ca_cert().display().to_string(),
        port = env.up.port(),
        name = AZURE,
    );
    let mut client = python_client(env, &script);
    assert_eq!(client.line().await, "up");
    client
}

/// A python3 `script` run as the agent, its stdin piped (the script waits
/// on it for when to go on).
fn python_client(env: &Env, script: &str) -> Talking {
    let mut cmd = env.airlock.client(&env.cg, "/usr/bin/python3");
    cmd.args(["-c", script]).stdin(std::process::Stdio::piped());
    Talking::spawn(cmd)
}

/// Lets a waiting python client go on; the line it prints then.
async fn speak(client: &mut Talking) -> String {
    let mut stdin = client.child.stdin.take().unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stdin, b"go\n")
        .await
        .unwrap();
    client.line().await
}

/// A client that holds its connection open without asking anything holds
/// no upstream connection: once it has been silent a moment, its upstream
/// connection serves another client, and its own request, when it comes,
/// still goes out (on a kept or a new connection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_holds_no_upstream_connection() {
    if !privileged("a_silent_client_holds_no_upstream_connection") {
        return;
    }
    let (env, _) = setup("silent", AZURE, true).await;
    let mut silent = silent_client(&env, "/late").await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let ca = env.airlock.ca_cert();
    let body = json(&curl(&env, AZURE, "/meanwhile", Some(&ca), &["--http1.1"]).await);
    assert_eq!(
        body["conn"], 1,
        "the silent client's upstream connection served the other client: {body}"
    );
    assert_eq!(env.up.connections(), 1);
    assert_eq!(speak(&mut silent).await, "HTTP/1.1 200 OK");
    let recs = env.airlock.exchanges(2).await;
    let paths: Vec<_> = recs.iter().map(|r| r["request"]["path"].clone()).collect();
    assert_eq!(paths, [json!("/meanwhile"), json!("/late")]);
    for r in &recs {
        assert_eq!(r["response"]["status"], 200, "{r}");
    }
    env.airlock.stop().await;
}

/// The records of a process in a CI job name the job as the job's runner
/// started it: from the environment of the step that GitHub's
/// `Runner.Worker` started, never from the calling process's own, and not
/// from a fake `Runner.Worker` the agent starts below itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ci_jobs_records_name_the_job_its_runner_started_not_what_the_agent_claims() {
    if !privileged("a_ci_jobs_records_name_the_job_its_runner_started_not_what_the_agent_claims") {
        return;
    }
    let (env, _) = setup("ci", AZURE, true).await;
    let dir = TempDir::new("ci-runner");
    let d = dir.path().display();
    let fetch = |path: &str| {
        format!(
            "curl -sS --max-time 20 --resolve {AZURE}:{port}:127.0.0.1 https://{AZURE}:{port}{path}",
            port = env.up.port()
        )
    };
    // The worker starts the step with the job's variables.
    std::fs::write(
        dir.path().join("job.sh"),
        format!(
            "GITHUB_REPOSITORY=octo/app GITHUB_WORKFLOW=ci GITHUB_RUN_ID=42 GITHUB_JOB=build \
             GITHUB_ACTOR=dev /bin/sh {d}/step.sh\nexit $?\n"
        ),
    )
    .unwrap();
    // The step (the agent) claims another job, then starts a fake worker
    // with a forged step below it.
    std::fs::write(
        dir.path().join("step.sh"),
        format!(
            "GITHUB_REPOSITORY=evil/forged GITHUB_ACTOR=mallory {} || exit 1\n\
             {d}/fake/Runner.Worker {d}/forged.sh\n",
            fetch("/ci/direct")
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("forged.sh"),
        format!(
            "GITHUB_REPOSITORY=evil/nested GITHUB_RUN_ID=1 /bin/sh -c '{}'\n",
            fetch("/ci/nested")
        ),
    )
    .unwrap();
    let worker = dir.alias("Runner.Worker", "/bin/sh");
    std::fs::create_dir(dir.path().join("fake")).unwrap();
    std::os::unix::fs::symlink("/bin/sh", dir.path().join("fake/Runner.Worker")).unwrap();
    let mut job = env.airlock.client(&env.cg, worker.to_str().unwrap());
    job.arg(dir.path().join("job.sh"));
    let out = finish(job).await;
    assert!(out.status.success(), "{out:?}");
    // Outside any job: no `ci`.
    let ca = env.airlock.ca_cert();
    json(&curl(&env, AZURE, "/ci/none", Some(&ca), &[]).await);
    let recs = env.airlock.exchanges(3).await;
    let by_path = |p: &str| {
        recs.iter()
            .find(|r| r["request"]["path"] == p)
            .unwrap_or_else(|| panic!("no exchange for {p}: {recs:?}"))
    };
    let job = json!({"provider": "github", "repository": "octo/app", "workflow": "ci",
                     "run_id": "42", "job": "build", "actor": "dev"});
    for path in ["/ci/direct", "/ci/nested"] {
        let r = by_path(path);
        assert_eq!(r["ci"], job, "{r}");
        assert_eq!(r["process"]["comm"], "curl", "{r}");
    }
    assert!(by_path("/ci/none").get("ci").is_none());
    env.airlock.stop().await;
}

/// A keep-alive client idle between requests (an HTTP library's pooled
/// connection) holds no upstream connection either: a second after its
/// answer, its upstream connection serves another client, and its next
/// request still goes out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keep_alive_client_idle_between_requests_holds_no_upstream_connection() {
    if !privileged("a_keep_alive_client_idle_between_requests_holds_no_upstream_connection") {
        return;
    }
    let (env, _) = setup("keepalive", AZURE, true).await;
    let script = format!(
        "import http.client, json, socket, ssl, sys\n\
         ctx = ssl.create_default_context(cafile={ca:?})\n\
         ctx.set_alpn_protocols(['http/1.1'])\n\
         c = http.client.HTTPConnection({name:?}, {port})\n\
         c.sock = ctx.wrap_socket(socket.create_connection(('127.0.0.1', {port})), server_hostname={name:?})\n\
         def get(p):\n    c.request('GET', p)\n    r = c.getresponse()\n    return r.status, json.loads(r.read())['conn']\n\
         print(*get('/first'), flush=True); sys.stdin.readline()\n\
         print(*get('/second'), flush=True)\n",
        ca = env.airlock.ca_cert().display().to_string(),
        port = env.up.port(),
        name = AZURE,
    );
    let mut client = python_client(&env, &script);
    assert_eq!(client.line().await, "200 1");
    // Idle past the release (a second), the connection stays open.
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    let ca = env.airlock.ca_cert();
    let body = json(&curl(&env, AZURE, "/meanwhile", Some(&ca), &["--http1.1"]).await);
    assert_eq!(
        body["conn"], 1,
        "the idle client's upstream connection served the other client: {body}"
    );
    assert_eq!(env.up.connections(), 1);
    let second = speak(&mut client).await;
    assert!(second.starts_with("200 "), "{second}");
    let recs = env.airlock.exchanges(3).await;
    let paths: Vec<_> = recs.iter().map(|r| r["request"]["path"].clone()).collect();
    assert_eq!(
        paths,
        [json!("/first"), json!("/meanwhile"), json!("/second")]
    );
    for r in &recs {
        assert_eq!(r["response"]["status"], 200, "{r}");
        assert!(r["error"].is_null(), "{r}");
    }
    env.airlock.stop().await;
}

/// A pooled connection the upstream closed while it sat idle is not used:
/// the next client's request goes out on a new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_connection_the_upstream_closed_is_not_reused() {
    if !privileged("a_pooled_connection_the_upstream_closed_is_not_reused") {
        return;
    }
    let (env, _) = setup("poolclosed", AZURE, true).await;
    env.up.hang_up_next();
    // A client that completes its handshake and leaves without a request:
    // its upstream connection (hung up on by the upstream) is parked.
    let script = format!(
        "import socket, ssl\n\
         ctx = ssl.create_default_context(cafile={ca:?})\n\
         ctx.set_alpn_protocols(['http/1.1'])\n\
         s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', {port})), server_hostname={name:?})\n\
         s.close()\n",
        ca = env.airlock.ca_cert().display().to_string(),
        port = env.up.port(),
        name = AZURE,
    );
    let mut cmd = env.airlock.client(&env.cg, "/usr/bin/python3");
    cmd.args(["-c", &script]);
    let out = finish(cmd).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(env.up.connections(), 1);
    let ca = env.airlock.ca_cert();
    let body = json(&curl(&env, AZURE, "/after-hang-up", Some(&ca), &["--http1.1"]).await);
    assert_eq!(body["conn"], 2, "{body}");
    let recs = env.airlock.exchanges(1).await;
    assert_eq!(recs[0]["response"]["status"], 200);
    assert!(recs[0]["error"].is_null(), "{}", recs[0]);
    env.airlock.stop().await;
}

/// TLS that names no server (a client dialling an address) cannot be told
/// apart from TLS to an intercepted host, so it is decrypted: an agent
/// cannot reach Azure unaudited by dialling its address with `Host:` set
/// and verification off. A `Host` naming a host on such a connection is
/// misdirected (421); one naming the address itself goes on, and upstream
/// airlock verifies the certificate against the address, which the host's
/// certificate does not name (502). Both are recorded, and nothing reaches
/// the upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_without_a_server_name_is_decrypted_not_spliced() {
    if !privileged("tls_without_a_server_name_is_decrypted_not_spliced") {
        return;
    }
    let dodge = |env: &Env| {
        let mut cmd = as_user(&env.cg, AGENT_UID, "curl");
        cmd.args(["-sS", "-k", "--max-time", "20", "-H"])
            .arg(format!("Host: {AZURE}"))
            .args(["-w", "\n%{http_code}"])
            .arg(format!("https://127.0.0.1:{}/subscriptions", env.up.port()));
        finish(cmd)
    };
    let (env, _) = setup("nosni", AZURE, true).await;
    let out = dodge(&env).await;
    assert_eq!(out.stdout.lines().last(), Some("421"), "{out:?}");
    let body: Value = serde_json::from_str(out.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "MisdirectedRequest", "{body}");
    let mut direct = as_user(&env.cg, AGENT_UID, "curl");
    direct
        .args(["-sS", "-k", "--max-time", "20", "-w", "\n%{http_code}"])
        .arg(format!("https://127.0.0.1:{}/subscriptions", env.up.port()));
    let out = finish(direct).await;
    assert_eq!(out.stdout.lines().last(), Some("502"), "{out:?}");
    let body: Value = serde_json::from_str(out.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "UpstreamTlsFailed", "{body}");
    assert_eq!(env.up.requests(), 0, "nothing reached the upstream");
    let recs = env.airlock.exchanges(2).await;
    assert_eq!(recs.len(), 2, "{recs:#?}");
    for rec in &recs {
        assert_eq!(rec["request"]["path"], "/subscriptions");
        assert!(rec["tls"]["sni"].is_null(), "{rec}");
    }
    let statuses: Vec<&Value> = recs.iter().map(|r| &r["response"]["status"]).collect();
    assert!(statuses.contains(&&Value::from(421)) && statuses.contains(&&Value::from(502)));
    env.airlock.stop().await;

    // The old rule, by choice: spliced unless the address is listed, and
    // the start record says so.
    let (env, _) = setup_with("nosni-off", AZURE, true, |c| {
        c.proxy.intercept_without_sni = false;
    })
    .await;
    let out = dodge(&env).await;
    assert_eq!(out.stdout.lines().last(), Some("200"), "{out:?}");
    assert_eq!(env.up.requests(), 1);
    let passed = env.airlock.records_of("tls_passthrough", 1).await;
    assert!(passed[0]["sni"].is_null(), "{}", passed[0]);
    let start = env
        .airlock
        .records()
        .into_iter()
        .find(|r| r["kind"] == "agent" && r["event"] == "start")
        .unwrap();
    assert!(
        start["weakened"].as_array().unwrap().iter().any(|w| w
            .as_str()
            .unwrap()
            .starts_with("proxy.intercept_without_sni = false")),
        "{start}"
    );
    env.airlock.stop().await;
}

/// airlock reads a process's details from /proc once per run of a program
/// and reuses them for its next connections; a process that execs another
/// program (same pid, same name) is read again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_that_execs_is_attributed_to_its_new_command_line() {
    if !privileged("a_process_that_execs_is_attributed_to_its_new_command_line") {
        return;
    }
    let (env, _) = setup("exec", AZURE, true).await;
    let script = env._tmp.path().join("get.py");
    std::fs::write(
        &script,
        format!(
            "import os, socket, ssl, sys\n\
             def get(step):\n\
             \x20   ctx = ssl.create_default_context(cafile={ca:?})\n\
             \x20   s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', {port})), server_hostname={name:?})\n\
             \x20   s.sendall(('GET /' + step + ' HTTP/1.1\\r\\nHost: {name}\\r\\nConnection: close\\r\\n\\r\\n').encode())\n\
             \x20   while s.recv(65536): pass\n\
             get(sys.argv[1])\n\
             get(sys.argv[1])\n\
             if sys.argv[1] == 'before-exec':\n\
             \x20   os.execv(sys.executable, [sys.executable, sys.argv[0], 'after-exec'])\n",
            ca = env.airlock.ca_cert().display().to_string(),
            port = env.up.port(),
            name = AZURE,
        ),
    )
    .unwrap();
    let mut cmd = env.airlock.client(&env.cg, "/usr/bin/python3");
    cmd.arg(&script).arg("before-exec");
    let out = finish(cmd).await;
    assert!(out.status.success(), "{out:?}");
    let recs = env.airlock.exchanges(4).await;
    let seen: Vec<(String, String)> = recs
        .iter()
        .map(|r| {
            let cmdline = r["process"]["cmdline"].as_str().unwrap_or_default();
            let step = cmdline.rsplit(' ').next().unwrap_or_default();
            (
                r["request"]["path"].as_str().unwrap().to_owned(),
                step.to_owned(),
            )
        })
        .collect();
    let want = |p: &str| (format!("/{p}"), p.to_owned());
    assert_eq!(
        seen,
        [
            want("before-exec"),
            want("before-exec"),
            want("after-exec"),
            want("after-exec")
        ],
        "{recs:#?}"
    );
    assert!(
        recs.iter()
            .all(|r| r["process"]["pid"] == recs[0]["process"]["pid"]
                && r["process"]["comm"] == "python3"),
        "one process, one name, two programs: {recs:#?}"
    );
    env.airlock.stop().await;
}

/// A client's second connection resumes its TLS session (an abbreviated
/// handshake: no certificate, no signature), whether it sent a server
/// name or dialled an address without one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_resume_their_tls_sessions_with_and_without_a_server_name() {
    if !privileged("clients_resume_their_tls_sessions_with_and_without_a_server_name") {
        return;
    }
    let (env, _) = setup("resume", AZURE, true).await;
    let script = format!(
        "import socket, ssl\n\
         named = ssl.create_default_context(cafile={ca:?})\n\
         # airlock's CA is constrained to the intercepted names: a client\n\
         # dialling an address gets a leaf only a non-verifying one (wrk,\n\
         # curl -k) accepts.\n\
         unverified = ssl._create_unverified_context()\n\
         def get(name, session):\n\
         \x20   ctx = named if name == {host:?} else unverified\n\
         \x20   ctx.set_alpn_protocols(['http/1.1'])\n\
         \x20   s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', {port})), server_hostname=name, session=session)\n\
         \x20   s.sendall(b'GET /resume HTTP/1.1\\r\\nHost: {host}\\r\\nConnection: close\\r\\n\\r\\n')\n\
         \x20   while s.recv(65536): pass\n\
         \x20   return s\n\
         for name in [{host:?}, '127.0.0.1']:\n\
         \x20   first = get(name, None)\n\
         \x20   again = get(name, first.session)\n\
         \x20   print(name, first.session_reused, again.session_reused, flush=True)\n",
        ca = env.airlock.ca_cert().display().to_string(),
        port = env.up.port(),
        host = AZURE,
    );
    let mut cmd = env.airlock.client(&env.cg, "/usr/bin/python3");
    cmd.args(["-c", &script]);
    let out = finish(cmd).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        [
            format!("{AZURE} False True"),
            "127.0.0.1 False True".to_owned()
        ],
        "{out:?}"
    );
    env.airlock.stop().await;
}

/// An upstream that cuts its answer mid-body: the client's response ends
/// with an error too (never a clean, shorter body), the record says so,
/// and the next request is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_cut_mid_body_fails_the_response_and_is_recorded() {
    if !privileged("an_upstream_cut_mid_body_fails_the_response_and_is_recorded") {
        return;
    }
    let (env, _pki) = setup("cutbody", AZURE, true).await;
    let ca = env.airlock.ca_cert();
    for http in ["--http1.1", "--http2"] {
        let out = curl(
            &env,
            AZURE,
            "/truncated/100000",
            Some(&ca),
            &[http, "-o", "/dev/null"],
        )
        .await;
        let rec = env
            .airlock
            .exchanges(1)
            .await
            .into_iter()
            .rfind(|r| r["request"]["path"] == "/truncated/100000")
            .unwrap();
        assert!(
            !out.status.success(),
            "{http}: a cut body must fail the client: {out:?} {rec}"
        );
        assert!(rec["error"].is_string(), "{http}: {rec}");
        assert!(
            rec["response"]["body"]["sha256"].is_null(),
            "{http}: no digest of a cut body: {rec}"
        );
        let next = curl(&env, AZURE, "/info", Some(&ca), &[http]).await;
        assert!(next.status.success(), "{http}: {next:?}");
    }
}

/// An upstream that goes silent — before its answer, or in the middle of
/// its body — is given up on after `proxy.response_idle_ms`: 504 before
/// the headers, a cut response after; both recorded; the next request is
/// served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_upstream_is_given_up_on() {
    if !privileged("a_silent_upstream_is_given_up_on") {
        return;
    }
    let (env, _pki) = setup_with("stall", AZURE, true, |c| {
        c.proxy.response_idle_ms = 500;
    })
    .await;
    let ca = env.airlock.ca_cert();
    let started = std::time::Instant::now();
    let out = curl(
        &env,
        AZURE,
        "/slow?ms=5000",
        Some(&ca),
        &["-w", "\n%{http_code}"],
    )
    .await;
    assert!(out.stdout.ends_with("\n504"), "{out:?}");
    assert!(out.stdout.contains("UpstreamTimeout"), "{out:?}");
    let out = curl(&env, AZURE, "/stall/1000", Some(&ca), &["-o", "/dev/null"]).await;
    assert!(
        !out.status.success(),
        "a stalled body must fail the client: {out:?}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "given up on after the idle limit, not the upstream's pace"
    );
    let recs = env.airlock.exchanges(2).await;
    for path in ["/slow", "/stall/1000"] {
        let rec = recs.iter().find(|r| r["request"]["path"] == path).unwrap();
        assert!(
            rec["error"]
                .as_str()
                .is_some_and(|e| e.contains("proxy.response_idle_ms")),
            "{rec}"
        );
    }
    let next = curl(&env, AZURE, "/info", Some(&ca), &[]).await;
    assert!(next.status.success(), "{next:?}");
}

/// A host whose only way out is a corporate proxy: with
/// `proxy.upstream_proxy` airlock dials its upstreams through it with
/// `CONNECT name:port` and the password from its file, intercepted and
/// passed-through connections alike; `proxy.no_proxy` hosts go direct; a
/// proxy that refuses airlock is a 502 that names the refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstreams_are_reached_through_the_configured_proxy() {
    if !privileged("upstreams_are_reached_through_the_configured_proxy") {
        return;
    }
    const OTHER: &str = "other.example";
    let tmp = TempDir::new("upproxy");
    let pki = TestPki::new("upstream proxy test CA");
    let up = TlsUpstream::start(
        pki.server_config(&[AZURE, OTHER], &[b"http/1.1"]),
        &["127.0.0.1:0".parse().unwrap()],
    )
    .await;
    let corporate = airlock_tests::ConnectProxy::start(
        &[(AZURE, up.addr()), (OTHER, up.addr())],
        Some("airlock:s3cret"),
    )
    .await;
    let roots = pki.write_ca(tmp.path());
    let good = tmp.path().join("password");
    std::fs::write(&good, "s3cret\n").unwrap();
    let bad = tmp.path().join("wrong");
    std::fs::write(&bad, "guess\n").unwrap();
    let cg = TestCgroup::new("upproxy");
    let start = |no_proxy: &[&str], password: &Path| {
        let (roots, password) = (roots.clone(), password.to_owned());
        let no_proxy: Vec<String> = no_proxy.iter().map(|s| (*s).to_owned()).collect();
        let proxy = format!("http://airlock@127.0.0.1:{}", corporate.port());
        Running::start_with(Running::capture(&cg, &[up.port()]), move |c| {
            c.tls.upstream_roots = vec![roots];
            c.proxy.upstream_proxy = Some(proxy);
            c.proxy.upstream_proxy_password_file = Some(password);
            c.proxy.no_proxy = no_proxy;
        })
    };
    let fetch = |name: &str, ca: &Path| {
        let mut cmd = as_user(&cg, AGENT_UID, "curl");
        cmd.args(["-sS", "--max-time", "20", "--resolve"])
            .arg(format!("{name}:{}:127.0.0.1", up.port()))
            .arg("--cacert")
            .arg(ca)
            .arg(format!("https://{name}:{}/info", up.port()));
        finish(cmd)
    };
    let via = |name: &str| format!("{name}:{}", up.port());

    let airlock = start(&[], &good).await;
    let out = fetch(AZURE, &airlock.ca_cert()).await;
    assert_eq!(json(&out)["host"], format!("{AZURE}:{}", up.port()));
    // Not intercepted: spliced, through the proxy too.
    let spliced = fetch(OTHER, &roots).await;
    assert!(spliced.status.success(), "{spliced:?}");
    assert_eq!(corporate.seen(), [via(AZURE), via(OTHER)]);
    airlock.stop().await;

    let airlock = start(&[AZURE], &good).await;
    let out = fetch(AZURE, &airlock.ca_cert()).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(corporate.seen().len(), 2, "no_proxy: direct");
    airlock.stop().await;

    let airlock = start(&[], &bad).await;
    let before = up.requests();
    let mut cmd = airlock.client(&cg, "curl");
    cmd.args([
        "-sS",
        "--max-time",
        "20",
        "-w",
        "\n%{http_code}",
        "--resolve",
    ])
    .arg(format!("{AZURE}:{}:127.0.0.1", up.port()))
    .arg(format!("https://{AZURE}:{}/info", up.port()));
    let out = finish(cmd).await;
    let (body, status) = out.stdout.rsplit_once('\n').unwrap();
    assert_eq!(status, "502", "{out:?}");
    assert!(body.contains("407 Proxy Authentication Required"), "{body}");
    assert_eq!(
        up.requests(),
        before,
        "refused by the proxy: nothing reached the upstream"
    );
    airlock.stop().await;
}
