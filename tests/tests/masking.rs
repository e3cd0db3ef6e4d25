//! Masking end to end: real curl in a captured cgroup, an Azure-shaped
//! HTTPS upstream that answers what the test tells it to, and airlock in
//! between. The client never sees the secrets; the audit never holds them.

use airlock_tests::{Intercepted as Env, TempDir, finish, privileged};
use serde_json::{Value, json};

const ARM: &str = "management.azure.com";
const BLOB: &str = "acct1.blob.core.windows.net";
const LIST_KEYS: &str = "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct1/listKeys?api-version=2023-01-01";

async fn setup(tag: &str) -> Env {
    Env::start(tag, &[ARM, BLOB], |_| {}).await
}

/// curl from the cgroup to `https://{host}{path}` through airlock, as the
/// agent (`nobody`, `airlock ca env`'s variables); the caller adds the rest
/// (curl takes options after the URL).
fn curl(env: &Env, host: &str, path: &str) -> tokio::process::Command {
    let mut cmd = env.airlock.client(&env.cg, "curl");
    cmd.args(["-sS", "--max-time", "20", "--resolve"])
        .arg(format!("{host}:{}:127.0.0.1", env.up.port()))
        .arg(format!("https://{host}:{}{path}", env.up.port()));
    cmd
}

/// One request from the cgroup; the upstream answers `answer`.
#[derive(Clone, Copy, Default)]
struct Call<'a> {
    method: &'a str,
    host: &'a str,
    path: &'a str,
    content_type: &'a str,
    body: &'a str,
    answer: &'a str,
    headers: &'a [&'a str],
}

async fn call(env: &Env, c: Call<'_>) -> (u16, String) {
    use base64::Engine;
    let mut cmd = curl(env, c.host, c.path);
    cmd.args(["-X", c.method, "-w", "\n%{http_code}"])
        .arg("-H")
        .arg(format!(
            "x-test-respond: {}",
            base64::engine::general_purpose::STANDARD.encode(c.answer)
        ))
        .arg("-H")
        .arg(format!("content-type: {}", c.content_type))
        .arg("--data-binary")
        .arg(c.body);
    for h in c.headers {
        cmd.arg("-H").arg(h);
    }
    let out = finish(cmd).await;
    assert!(out.status.success(), "{out:?}");
    let (body, status) = out.stdout.rsplit_once('\n').unwrap();
    (status.parse().unwrap(), body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_keys_reaches_the_agent_masked_and_still_json() {
    if !privileged("list_keys_reaches_the_agent_masked_and_still_json") {
        return;
    }
    let env = setup("masklistkeys").await;
    let keys = json!({"keys": [
        {"creationTime": "2026-10-01T08:00:00.0000000Z", "keyName": "key1", "value": "first-account-key-value", "permissions": "FULL"},
        {"creationTime": "2026-10-01T08:00:00.0000000Z", "keyName": "key2", "value": "second-account-key-value", "permissions": "FULL"}
    ]});
    let (status, body) = call(
        &env,
        Call {
            method: "POST",
            host: ARM,
            path: LIST_KEYS,
            content_type: "application/json",
            answer: &keys.to_string(),
            ..Call::default()
        },
    )
    .await;
    assert_eq!(status, 200);
    let got: Value = serde_json::from_str(&body).expect("still JSON");
    for k in got["keys"].as_array().unwrap() {
        assert!(
            k["value"]
                .as_str()
                .unwrap()
                .starts_with("airlock:masked:storage-account-key:"),
            "{got}"
        );
    }
    assert_eq!(got["keys"][1]["keyName"], "key2", "the rest is intact");
    let rec = env.airlock.exchanges(1).await.pop().unwrap();
    assert_eq!(rec["response"]["masked"]["count"], 2, "{}", rec["response"]);
    let excerpt = rec["response"]["body"]["excerpt"].as_str().unwrap();
    assert!(
        excerpt.contains("airlock:masked:storage-account-key:"),
        "{excerpt}"
    );
    let text = std::fs::read_to_string(&env.airlock.audit_path).unwrap();
    assert!(
        !text.contains("second-account-key-value"),
        "a key in the audit trail"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_text_response_is_scanned_and_a_key_upload_is_refused() {
    if !privileged("any_text_response_is_scanned_and_a_key_upload_is_refused") {
        return;
    }
    let env = setup("maskdetect").await;
    // A connection string in an ordinary response (here: a config blob).
    let conn = "DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey=bm90LWEtcmVhbC1rZXktYnV0LXNlY3JldA==;EndpointSuffix=core.windows.net";
    let (status, body) = call(
        &env,
        Call {
            method: "GET",
            host: BLOB,
            path: "/config/app.env",
            content_type: "text/plain",
            answer: &format!("STORAGE={conn}\nDEBUG=1\n"),
            ..Call::default()
        },
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains("bm90LWEtcmVhbC1rZXkt"), "{body}");
    assert!(
        body.contains("AccountKey=airlock:masked:storage-connection-string:")
            && body.ends_with("DEBUG=1\n"),
        "{body}"
    );

    // A private key leaving in an upload is refused and never forwarded.
    let forwarded = env.up.requests();
    let pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n-----END PRIVATE KEY-----\n";
    let (status, body) = call(
        &env,
        Call {
            method: "PUT",
            host: BLOB,
            path: "/backup/id_rsa",
            content_type: "text/plain",
            body: pem,
            ..Call::default()
        },
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let refusal: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(refusal["rule"], "key-material-upload");
    assert_eq!(
        env.up.requests(),
        forwarded,
        "the upload reached the upstream"
    );
    let rec = airlock_tests::daemon::wait_for(&env.airlock.audit_path, |r| {
        r.iter().any(|r| r["id"] == refusal["id"])
    })
    .await;
    let rec = rec.iter().find(|r| r["id"] == refusal["id"]).unwrap();
    assert_eq!(
        rec["request"]["masked"]["detectors"]["private-key"], 1,
        "{rec}"
    );
    let text = std::fs::read_to_string(&env.airlock.audit_path).unwrap();
    assert!(
        !text.contains("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj"),
        "a key in the audit trail"
    );
    assert!(
        !text.contains("bm90LWEtcmVhbC1rZXkt"),
        "a key in the audit trail"
    );
}

/// The upstream answers `body` under `Content-Encoding: encoding` (bytes
/// already coded); curl gets what airlock relays, headers first.
async fn call_coded(
    env: &Env,
    host: &str,
    path: &str,
    ct: &str,
    encoding: &str,
    body: &[u8],
) -> (String, Vec<u8>) {
    use base64::Engine;
    let dir = TempDir::new("coded");
    // The agent writes what it received here.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let (headers, out) = (dir.path().join("headers"), dir.path().join("body"));
    let mut cmd = curl(env, host, path);
    cmd.args(["-X", "POST", "--data-binary", "{}"])
        .arg("-D")
        .arg(&headers)
        .arg("-o")
        .arg(&out)
        .arg("-H")
        .arg(format!(
            "x-test-respond: {}",
            base64::engine::general_purpose::STANDARD.encode(body)
        ))
        .arg("-H")
        .arg(format!("content-type: {ct}"))
        .arg("-H")
        .arg(format!("x-test-content-encoding: {encoding}"));
    let done = finish(cmd).await;
    assert!(done.status.success(), "{done:?}");
    (
        std::fs::read_to_string(headers)
            .unwrap()
            .to_ascii_lowercase(),
        std::fs::read(out).unwrap(),
    )
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap_or_else(|e| panic!("not gzip: {e}"));
    out
}

fn brotli(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut out = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
        w.write_all(data).unwrap();
    }
    out
}

/// airlock asks for identity encoding; an upstream that compresses anyway
/// gets its gzip/deflate/br body decoded and masked (gzip stays gzip for
/// the client; br arrives decoded). A coding airlock cannot decode is
/// refused where secrets are expected and relayed, marked unscanned,
/// elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_responses_are_decoded_and_masked() {
    if !privileged("compressed_responses_are_decoded_and_masked") {
        return;
    }
    let env = setup("maskgzip").await;
    let keys = json!({"keys": [
        {"keyName": "key1", "value": "first-account-key-value", "permissions": "FULL"}
    ]})
    .to_string();

    // gzip: the client receives gzip, and inside it the key is masked.
    let (headers, body) = call_coded(
        &env,
        ARM,
        LIST_KEYS,
        "application/json",
        "gzip",
        &gzip(keys.as_bytes()),
    )
    .await;
    assert!(
        headers.starts_with("http/1.1 200") || headers.starts_with("http/2 200"),
        "{headers}"
    );
    assert!(headers.contains("content-encoding: gzip"), "{headers}");
    let got: Value = serde_json::from_slice(&gunzip(&body)).expect("masked JSON inside gzip");
    assert!(
        got["keys"][0]["value"]
            .as_str()
            .unwrap()
            .starts_with("airlock:masked:storage-account-key:"),
        "{got}"
    );
    let rec = env.airlock.exchanges(1).await.pop().unwrap();
    assert_eq!(rec["response"]["masked"]["count"], 1, "{}", rec["response"]);
    assert!(
        rec["response"]["body"]["excerpt"]
            .as_str()
            .unwrap()
            .contains("airlock:masked:"),
        "the excerpt is of the decoded text: {}",
        rec["response"]
    );

    // br: decoded on the way, relayed without Content-Encoding.
    let token = format!("ghp_{}", "Zx9".repeat(12));
    let text = format!("notes: the deploy token is {token}\n");
    let (headers, body) = call_coded(
        &env,
        BLOB,
        "/c/notes.txt",
        "text/plain",
        "br",
        &brotli(text.as_bytes()),
    )
    .await;
    assert!(!headers.contains("content-encoding"), "{headers}");
    let body = String::from_utf8(body).unwrap();
    assert!(
        body.starts_with("notes: the deploy token is airlock:masked:github-token:"),
        "{body}"
    );
    assert!(!body.contains(&token));

    // A coding airlock cannot decode: refused where secrets are expected...
    let (headers, body) = call_coded(
        &env,
        ARM,
        LIST_KEYS,
        "application/json",
        "zstd",
        keys.as_bytes(),
    )
    .await;
    assert!(headers.contains(" 502"), "{headers}");
    assert!(String::from_utf8_lossy(&body).contains("UnmaskableResponse"));
    // ...relayed as it is elsewhere, and the record says it was not scanned.
    let (headers, body) = call_coded(
        &env,
        BLOB,
        "/c/notes.txt",
        "text/plain",
        "zstd",
        b"plain words",
    )
    .await;
    assert!(headers.contains(" 200"), "{headers}");
    assert_eq!(body, b"plain words");
    let rec = env.airlock.exchanges(4).await.pop().unwrap();
    assert_eq!(
        rec["response"]["masked"]["detectors"]["not-scanned-compressed"], 1,
        "{}",
        rec["response"]
    );
    let trail = std::fs::read_to_string(&env.airlock.audit_path).unwrap();
    assert!(!trail.contains("first-account-key-value") && !trail.contains(&token));

    // What the upstream was asked for: identity, whatever the client said.
    let mut cmd = curl(&env, BLOB, "/c?comp=list");
    cmd.arg("--compressed");
    let out = finish(cmd).await;
    let seen: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(seen["headers"]["accept-encoding"], "identity", "{seen}");
}

/// A HEAD response describes a body it does not carry: its Content-Length
/// reaches the client untouched (azcopy and az read blob sizes this way).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_responses_keep_their_content_length() {
    if !privileged("head_responses_keep_their_content_length") {
        return;
    }
    let env = setup("maskhead").await;
    let fetch = |version: &'static str| {
        let mut cmd = curl(&env, BLOB, "/c/blob.bin");
        cmd.args(["-D", "-", "-o", "/dev/null", "-I", version]);
        finish(cmd)
    };
    for version in ["--http1.1", "--http2"] {
        let head = fetch(version).await;
        assert!(head.status.success(), "{version}: {head:?}");
        let length = |out: &str| {
            out.lines().find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().to_owned())
            })
        };
        let got = length(&head.stdout)
            .unwrap_or_else(|| panic!("no content-length on HEAD ({version}):\n{}", head.stdout));
        assert_ne!(got, "0", "{version}: {}", head.stdout);
    }
}
