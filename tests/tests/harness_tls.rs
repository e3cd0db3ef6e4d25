//! The TLS harness on its own, without airlock: the test CA, the HTTPS
//! upstream's routes, the ws-client binary and real curl all agree. If these
//! fail, TLS interception tests would fail for reasons unrelated to airlock.

use airlock_tests::body::PatternBody;
use airlock_tests::https::HttpsConn;
use airlock_tests::pki::{H2, HTTP11};
use airlock_tests::tls_upstream::DEFAULT_ALPN;
use airlock_tests::{TempDir, TestPki, TlsUpstream, finish, https};
use bytes::Bytes;
use http::Request;
use http_body_util::Empty;
use serde_json::Value;

const NAME: &str = "management.airlock-test.azure.com";

async fn upstream(pki: &TestPki) -> TlsUpstream {
    TlsUpstream::on(pki.server_config(&[NAME], DEFAULT_ALPN), "127.0.0.1").await
}

fn url(up: &TlsUpstream, path: &str) -> String {
    format!("https://{NAME}:{}{path}", up.port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_over_h2_and_http11_follows_client_alpn() {
    let pki = TestPki::new("harness CA");
    let up = upstream(&pki).await;

    let resp = https::get(
        pki.client_config(&[H2, HTTP11]),
        up.addr(),
        &url(&up, "/info?a=1"),
    )
    .await;
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert!(resp.headers().contains_key("x-ms-request-id"));
    let h2 = https::json(resp).await;
    assert_eq!(h2["version"], "HTTP/2.0", "{h2}");
    assert_eq!(h2["alpn"], "h2");
    assert_eq!(h2["path"], "/info?a=1");
    assert_eq!(h2["host"], format!("{NAME}:{}", up.port()));
    assert_eq!(h2["method"], "GET");

    let resp = https::get(pki.client_config(&[HTTP11]), up.addr(), &url(&up, "/info")).await;
    let h1 = https::json(resp).await;
    assert_eq!(h1["version"], "HTTP/1.1", "{h1}");
    assert_eq!(h1["alpn"], "http/1.1");
    assert_eq!(h1["headers"]["host"], format!("{NAME}:{}", up.port()));
    assert_ne!(
        h1["conn"], h2["conn"],
        "each request dialed its own connection"
    );
    assert_eq!(up.connections(), 2);
    assert_eq!(up.requests(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_upload_is_counted() {
    const SIZE: u64 = 5 * 1024 * 1024;
    let pki = TestPki::new("harness CA");
    let up = upstream(&pki).await;
    for alpn in [H2, HTTP11] {
        let req = Request::post(url(&up, "/count"))
            .body(PatternBody::new(SIZE))
            .unwrap();
        let resp = https::send(pki.client_config(&[alpn]), up.addr(), req).await;
        assert_eq!(https::json(resp).await["bytes"], SIZE, "over {alpn:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_download_has_exact_length_and_pattern() {
    let pki = TestPki::new("harness CA");
    let up = upstream(&pki).await;
    for alpn in [H2, HTTP11] {
        let resp = https::get(
            pki.client_config(&[alpn]),
            up.addr(),
            &url(&up, "/bytes/3000000"),
        )
        .await;
        assert_eq!(resp.headers()["content-length"], "3000000");
        assert_eq!(resp.headers()["content-type"], "application/octet-stream");
        assert_eq!(https::pattern_len(resp).await, 3_000_000, "over {alpn:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_streams_run_concurrently_on_one_connection() {
    let pki = TestPki::new("harness CA");
    let up = upstream(&pki).await;
    let conn = HttpsConn::open(pki.client_config(&[H2]), up.addr(), NAME).await;
    assert!(matches!(conn, HttpsConn::H2(_)));
    // Concurrency is counted by the server (requests in flight at once),
    // never inferred from timings.
    let mut all = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (mut conn, u) = (conn.stream(), url(&up, "/slow?ms=400"));
        let req = Request::get(u).body(Empty::<Bytes>::new()).unwrap();
        all.spawn(async move { https::json(conn.send(req).await).await });
    }
    let bodies: Vec<Value> = all.join_all().await;
    assert!(
        bodies
            .iter()
            .any(|b| b["in_flight_peak"].as_u64().unwrap() >= 2),
        "streams were served one at a time: {bodies:#?}"
    );
    assert!(
        bodies
            .iter()
            .all(|b| b["conn"] == 1 && b["path"] == "/slow?ms=400"),
        "{bodies:#?}"
    );
    assert_eq!(up.connections(), 1);
    assert_eq!(up.requests(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_client_binary_echoes_through_tls() {
    let pki = TestPki::new("harness CA");
    let up = upstream(&pki).await;
    let tmp = TempDir::new("harness-ws");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_ws-client"));
    cmd.env("WS_CONNECT", up.addr().to_string())
        .arg(format!("wss://{NAME}:{}/ws", up.port()))
        .arg(pki.write_ca(tmp.path()))
        .args(["hello", "kubectl exec"]);
    let out = finish(cmd).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        ["echo:hello", "echo:kubectl exec"]
    );
    assert_eq!(up.requests(), 1, "one handshake request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_client_rejects_an_untrusted_server() {
    let pki = TestPki::new("harness CA");
    let config = TestPki::self_signed_server_config(&[NAME], &[HTTP11]);
    let up = TlsUpstream::on(config, "127.0.0.1").await;
    let tmp = TempDir::new("harness-ws-untrusted");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_ws-client"));
    cmd.env("WS_CONNECT", up.addr().to_string())
        .arg(format!("wss://{NAME}:{}/ws", up.port()))
        .arg(pki.write_ca(tmp.path()))
        .arg("hello");
    let out = finish(cmd).await;
    assert!(!out.status.success(), "{out:?}");
    assert!(out.stderr.contains("ws-client:"), "{out:?}");
    assert_eq!(
        up.connections(),
        0,
        "a refused handshake is not a connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_curl_negotiates_each_version() {
    let pki = TestPki::new("harness CA");
    let up = upstream(&pki).await;
    let tmp = TempDir::new("harness-curl");
    let ca = pki.write_ca(tmp.path());
    for (flag, version, alpn) in [
        ("--http1.1", "HTTP/1.1", "http/1.1"),
        ("--http2", "HTTP/2.0", "h2"),
    ] {
        let mut cmd = tokio::process::Command::new("curl");
        cmd.args(["-sS", "--max-time", "10", flag, "--cacert"])
            .arg(&ca)
            .arg("--resolve")
            .arg(format!("{NAME}:{}:127.0.0.1", up.port()))
            .arg(url(&up, "/info"));
        let out = finish(cmd).await;
        assert!(out.status.success(), "{out:?}");
        let body: Value =
            serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
        assert_eq!(body["version"], version, "{flag}: {body}");
        assert_eq!(body["alpn"], alpn, "{flag}: {body}");
        assert!(
            body["headers"]["user-agent"]
                .as_str()
                .unwrap()
                .starts_with("curl/")
        );
    }
}
