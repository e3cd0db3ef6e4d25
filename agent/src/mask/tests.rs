//! Masking: every detector with positives and negatives, secrets split at
//! every byte, each structure-aware operation with an Azure-shaped
//! response, and a corpus of ordinary traffic that must pass untouched.

use base64::Engine;
use bytes::Bytes;
use serde_json::{Value, json};

use super::*;

/// 64 bytes as base64: 86 characters and `==`, like a real account key.
static STORAGE_KEY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let bytes: Vec<u8> = (0u8..64)
        .map(|i| i.wrapping_mul(97).wrapping_add(13))
        .collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
});
const PEM: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx4VdK0r7nW1q2Z3y\n4Vd9kLq1m2N3o4P5q6R7s8T9u0V1w2X3\n-----END RSA PRIVATE KEY-----";
const JWT: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyIiwiYXVkIjoiYXBpIn0.c2lnbmF0dXJlLWJ5dGVzLWhlcmU";

fn masker() -> Masker {
    Masker::ephemeral()
}

/// (detector, text containing exactly one secret, the secret).
fn positives() -> Vec<(&'static str, String, String)> {
    let gh = format!("ghp_{}", "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8");
    let pat = format!(
        "github_pat_{}",
        "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ab"
    );
    vec![
        ("storage-account-key", format!("{{\"key\":\"{}\"}}", *STORAGE_KEY), STORAGE_KEY.clone()),
        ("storage-connection-string", "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=c2VjcmV0LWtleS12YWx1ZQ==;EndpointSuffix=core.windows.net".into(), "c2VjcmV0LWtleS12YWx1ZQ==".into()),
        ("shared-access-key", "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey=YWJjZGVmZ2hpams=".into(), "YWJjZGVmZ2hpams=".into()),
        ("sas-signature", "https://a.blob.core.windows.net/c/b?sv=2022-11-02&sp=r&sig=AbCdEf%2BgH1%3D&se=2026".into(), "AbCdEf%2BgH1%3D".into()),
        ("entra-client-secret", "secret: Abc8Q~dEfGhIjKlMnOpQrStUvWxYz0123456789 done".into(), "Abc8Q~dEfGhIjKlMnOpQrStUvWxYz0123456789".into()),
        ("jwt", format!("token={JWT}&x=1"), JWT.into()),
        ("bearer-token", "Authorization: Bearer gho_opaqueTokenValue1234567890".into(), "gho_opaqueTokenValue1234567890".into()),
        ("private-key", format!("key:\n{PEM}\nend"), PEM.into()),
        ("github-token", format!("GITHUB_TOKEN={gh}\n"), gh),
        ("github-token", format!("x {pat} y"), pat),
        ("aws-access-key", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n".into(), "AKIAIOSFODNN7EXAMPLE".into()),
        ("secret-named-value", "{\"clientSecret\": \"q7V!x2Lm#9Rt$4Kp@8Zw\"}".into(), "q7V!x2Lm#9Rt$4Kp@8Zw".into()),
        ("secret-named-value", "grant_type=client_credentials&client_secret=demo~Q8d.Sq9vL2mN7pR4&scope=x".into(), "demo~Q8d.Sq9vL2mN7pR4".into()),
        ("secret-named-value", "export DB_PASSWORD=Tr0ub4dor9x\n".into(), "Tr0ub4dor9x".into()),
    ]
}

#[test]
fn every_detector_finds_its_secret_and_keeps_the_rest() {
    let m = masker();
    for (detector, text, secret) in positives() {
        let (out, f) = m.mask_text(&text);
        assert!(!out.contains(&secret), "{detector}: {out}");
        assert!(
            f.detectors.contains_key(detector),
            "{detector} not named in {f:?} for {text}"
        );
        let token = m.token(detector, secret.as_bytes());
        assert!(out.contains(&token), "{detector}: {out} lacks {token}");
        // Only the secret changed.
        let prefix = &text[..text.find(&secret).unwrap()];
        assert!(out.starts_with(prefix), "{detector}: {out}");
    }
}

#[test]
fn ordinary_traffic_passes_untouched() {
    let corpus = [
        // ARM resource ids, GUIDs, ETags, timestamps.
        r#"{"value":[{"id":"/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/rg-app/providers/Microsoft.Storage/storageAccounts/stapp","name":"stapp","type":"Microsoft.Storage/storageAccounts","location":"westeurope","etag":"W/\"datetime'2026-11-28T10%3A00%3A00.123Z'\"","properties":{"provisioningState":"Succeeded","primaryEndpoints":{"blob":"https://stapp.blob.core.windows.net/"},"keyCreationTime":{"key1":"2026-10-01T08:00:00.0000000Z"}}}]}"#,
        // Storage XML listing with Content-MD5 and ETags.
        r#"<?xml version="1.0" encoding="utf-8"?><EnumerationResults><Blobs><Blob><Name>app.zip</Name><Properties><Etag>0x8DCF1A2B3C4D5E6</Etag><Content-MD5>1B2M2Y8AsgTpgAmY7PhCfg==</Content-MD5><Content-CRC64>AAAAAAAAAAA=</Content-CRC64></Properties></Blob></Blobs></EnumerationResults>"#,
        // Kubernetes pod list.
        r#"{"kind":"PodList","apiVersion":"v1","items":[{"metadata":{"name":"api-7d9f","uid":"9c1e4f2a-7b3d-4e8f-a6c5-1d2e3f4a5b6c","resourceVersion":"48213"},"spec":{"serviceAccountName":"default","containers":[{"image":"mcr.microsoft.com/dotnet/aspnet:8.0@sha256:3f0c9b1d2e3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c"}]}}]}"#,
        // Key Vault key metadata (a public key, key ids).
        r#"{"key":{"kid":"https://kv.vault.azure.net/keys/k1/6a1d4e7f2b8c4d9e","kty":"RSA","key_ops":["sign"],"n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB"},"attributes":{"enabled":true}}"#,
        // A build log and ordinary prose.
        "Step 3/9 : RUN dotnet publish -c Release -o /app\nSuccessfully built 3f0c9b1d2e3a\nThe key to good caching is a stable key; token counts were 1234.",
        // Hashes and base64 of non-random bytes.
        r#"{"sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","keyId":"k1","keyType":"RSA","tokenType":"Bearer","publicKey":"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEx4VdK0r7nW1q2Z3y4Vd9kLq1m2N3o4P5"}"#,
    ];
    let m = masker();
    for text in corpus {
        let (out, f) = m.mask_text(text);
        assert_eq!(out, text, "changed: {f:?}");
    }
}

#[test]
fn a_secret_split_at_any_byte_is_still_masked() {
    let m = masker();
    for (detector, text, secret) in positives() {
        let padded = format!(
            "{}{text}{}",
            "x".repeat(3 * MAX_SECRET / 2),
            " tail".repeat(10)
        );
        let bytes = padded.as_bytes();
        let at = padded.find(&secret).unwrap();
        for split in (at.saturating_sub(2)..=at + secret.len() + 1).step_by(1) {
            let mut s = m.request(Some("text/plain"), Mode::Mask).unwrap();
            let mut out = Vec::new();
            out.extend_from_slice(&s.push(&Bytes::copy_from_slice(&bytes[..split])));
            out.extend_from_slice(&s.push(&Bytes::copy_from_slice(&bytes[split..])));
            out.extend_from_slice(&s.finish());
            let out = String::from_utf8(out).unwrap();
            assert!(!out.contains(&secret), "{detector} split at {split}");
            assert!(
                s.findings().detectors.contains_key(detector),
                "{detector} split at {split}"
            );
            assert!(out.ends_with(" tail") && out.starts_with("xxx"));
        }
    }
}

#[test]
fn one_byte_at_a_time() {
    let m = masker();
    let text = format!("a {JWT} b AccountKey={}; c", *STORAGE_KEY);
    let mut s = m.response("http.get", Some("text/plain")).unwrap();
    let mut out = Vec::new();
    for b in text.as_bytes() {
        out.extend_from_slice(&s.push(&Bytes::copy_from_slice(&[*b])));
    }
    out.extend_from_slice(&s.finish());
    let out = String::from_utf8(out).unwrap();
    assert!(
        !out.contains(JWT) && !out.contains(STORAGE_KEY.as_str()),
        "{out}"
    );
    assert!(out.starts_with("a airlock:masked:jwt:") && out.ends_with("; c"));
}

fn structured(operation: &str, body: &Value) -> (Value, Findings) {
    let mut s = masker()
        .response(operation, Some("application/json; charset=utf-8"))
        .unwrap();
    let text = body.to_string();
    let (a, b) = text.as_bytes().split_at(text.len() / 2);
    let mut out = s.push(&Bytes::copy_from_slice(a)).to_vec();
    out.extend_from_slice(&s.push(&Bytes::copy_from_slice(b)));
    out.extend_from_slice(&s.finish());
    let v: Value =
        serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{operation}: not JSON: {e}"));
    (v, s.findings().clone())
}

fn masked(v: &Value) -> bool {
    v.as_str().is_some_and(|s| s.starts_with("airlock:masked:"))
}

#[test]
fn known_operations_are_masked_by_structure_and_stay_json() {
    let (v, f) = structured(
        "Microsoft.Storage/storageAccounts/listKeys/action",
        &json!({"keys":[{"creationTime":"2026-10-01T08:00:00Z","keyName":"key1","value":"short-but-secret","permissions":"FULL"}]}),
    );
    assert!(masked(&v["keys"][0]["value"]) && v["keys"][0]["keyName"] == "key1" && f.count == 1);

    let (v, _) = structured(
        "Microsoft.Web/sites/config/list/action",
        &json!({"properties":{"AzureWebJobsStorage":"UseDevelopmentStorage=true","DB":{"value":"Server=x;Password=p","type":"SQLAzure"}}}),
    );
    assert!(
        masked(&v["properties"]["AzureWebJobsStorage"]) && masked(&v["properties"]["DB"]["value"])
    );
    assert_eq!(v["properties"]["DB"]["type"], "SQLAzure");

    let (v, _) = structured(
        "Microsoft.Web/sites/host/listkeys/action",
        &json!({"masterKey":"m","functionKeys":{"default":"f"},"systemKeys":{"durabletask_extension":"s"}}),
    );
    assert!(
        masked(&v["masterKey"])
            && masked(&v["functionKeys"]["default"])
            && masked(&v["systemKeys"]["durabletask_extension"])
    );

    let (v, _) = structured(
        "keyvault.secrets.get",
        &json!({"value":"hunter2","id":"https://kv.vault.azure.net/secrets/db/1"}),
    );
    assert!(masked(&v["value"]) && v["id"] == "https://kv.vault.azure.net/secrets/db/1");

    let (v, _) = structured(
        "k8s.secrets.list",
        &json!({"kind":"SecretList","items":[{"metadata":{"name":"a"},"data":{"password":"aHVudGVyMg=="},"type":"Opaque"}]}),
    );
    assert!(masked(&v["items"][0]["data"]["password"]) && v["items"][0]["metadata"]["name"] == "a");

    let (v, _) = structured(
        "Microsoft.ServiceBus/namespaces/authorizationRules/listKeys/action",
        &json!({"primaryConnectionString":"Endpoint=sb://x/;SharedAccessKeyName=R;SharedAccessKey=k","keyName":"R","primaryKey":"k"}),
    );
    assert!(
        masked(&v["primaryConnectionString"]) && masked(&v["primaryKey"]) && v["keyName"] == "R"
    );
}

#[test]
fn a_kubeconfig_stays_a_kubeconfig_without_credentials() {
    let kubeconfig = "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: LS0tQ0E=\n    server: https://aks.hcp.westeurope.azmk8s.io:443\n  name: aks\nusers:\n- name: clusterAdmin\n  user:\n    client-certificate-data: LS0tQ0VSVA==\n    client-key-data: LS0tS0VZLS0t\n    token: 0123456789abcdef0123456789abcdef\n";
    let b64 = base64::engine::general_purpose::STANDARD.encode(kubeconfig);
    let (v, f) = structured(
        "Microsoft.ContainerService/managedClusters/listClusterAdminCredential/action",
        &json!({"kubeconfigs":[{"name":"clusterAdmin","value":b64}]}),
    );
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(v["kubeconfigs"][0]["value"].as_str().unwrap())
        .unwrap();
    let text = String::from_utf8(decoded).unwrap();
    assert!(
        !text.contains("LS0tS0VZLS0t") && !text.contains("0123456789abcdef0123"),
        "{text}"
    );
    assert!(text.contains("server: https://aks.hcp.westeurope.azmk8s.io:443"));
    assert!(
        text.contains("client-certificate-data: LS0tQ0VSVA=="),
        "certificates are not secrets"
    );
    assert!(text.contains("    token: airlock:masked:kubeconfig-credential:"));
    assert_eq!(f.detectors["kubeconfig-credential"], 2);
}

#[test]
fn watch_events_are_masked_line_by_line() {
    let mut s = masker()
        .response("k8s.secrets.watch", Some("application/json"))
        .unwrap();
    let ev = |n: u32| {
        format!(
            "{{\"type\":\"ADDED\",\"object\":{{\"kind\":\"Secret\",\"metadata\":{{\"name\":\"s{n}\"}},\"data\":{{\"k\":\"c2VjcmV0{n}\"}}}}}}\n"
        )
    };
    let stream = format!("{}{}", ev(1), ev(2));
    let (a, b) = stream.split_at(ev(1).len() + 10);
    let first = s.push(&Bytes::copy_from_slice(a.as_bytes()));
    assert!(
        String::from_utf8_lossy(&first).ends_with('\n'),
        "a complete event goes on at once"
    );
    let mut out = first.to_vec();
    out.extend_from_slice(&s.push(&Bytes::copy_from_slice(b.as_bytes())));
    out.extend_from_slice(&s.finish());
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.lines().count(), 2);
    assert!(!text.contains("c2VjcmV0"), "{text}");
}

#[test]
fn fingerprints_are_keyed_and_stable() {
    let m = masker();
    assert_eq!(m.token("jwt", b"a"), m.token("jwt", b"a"));
    assert_ne!(m.token("jwt", b"a"), m.token("jwt", b"b"));
    assert_ne!(
        m.token("jwt", b"a"),
        masker().token("jwt", b"a"),
        "another host, another key"
    );
}

#[test]
fn the_key_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = crate::scratch_dir("mask-key");
    let path = dir.join("masking.key");
    let a = Masker::load_or_create(&path).unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let b = Masker::load_or_create(&path).unwrap();
    assert_eq!(
        a.token("x", b"s"),
        b.token("x", b"s"),
        "the same key after a restart"
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(
        Masker::load_or_create(&path)
            .unwrap_err()
            .to_string()
            .contains("chmod 600")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn binary_bodies_are_not_scanned_and_scan_mode_changes_nothing() {
    let m = masker();
    assert!(
        m.response("storage.blob.get", Some("application/octet-stream"))
            .is_none()
    );
    assert!(m.response("storage.blob.get", Some("image/png")).is_none());
    let mut s = m.request(Some("application/json"), Mode::Scan).unwrap();
    let body = Bytes::from(format!("{{\"key\":\"{PEM}\"}}"));
    assert_eq!(s.push(&body), body, "scan passes the bytes on at once");
    assert!(s.finish().is_empty());
    assert!(s.findings().has_key_material());
}

#[test]
fn masked_excerpts_are_cut_on_a_character_boundary_without_rescanning() {
    assert_eq!(
        masked_excerpt("abc€def".as_bytes().to_vec(), 4).as_deref(),
        Some("abc")
    );
    assert_eq!(
        masked_excerpt(b"short".to_vec(), 4096).as_deref(),
        Some("short")
    );
    assert_eq!(masked_excerpt(Vec::new(), 10), None);
    assert_eq!(masked_excerpt(b"x".to_vec(), 0), None);
    assert_eq!(
        masked_excerpt(vec![b'a', 0xff, b'b'], 10).as_deref(),
        Some("a\u{fffd}b")
    );
}

#[test]
fn request_excerpts_lose_the_secrets_the_request_exists_to_set() {
    let m = Masker::ephemeral();
    for (operation, body, secret) in [
        (
            "keyvault.secrets.set",
            r#"{"value":"kv-secret-value-1","contentType":"text/plain"}"#,
            "kv-secret-value-1",
        ),
        (
            "k8s.secrets.create",
            r#"{"kind":"Secret","metadata":{"name":"db"},"data":{"password":"cGFzc3dvcmQx"},"stringData":{"token":"plain-token-2"}}"#,
            "cGFzc3dvcmQx",
        ),
        (
            "k8s.secrets.create",
            r#"{"kind":"Secret","stringData":{"token":"plain-token-2"}}"#,
            "plain-token-2",
        ),
        (
            "Microsoft.Web/sites/config/write",
            r#"{"properties":{"DB_PASSWORD":"app-setting-secret-3","MODE":"x"}}"#,
            "app-setting-secret-3",
        ),
        (
            "Microsoft.Resources/deployments/write",
            r#"{"properties":{"mode":"Incremental","parameters":{"adminPassword":{"value":"deploy-secret-4"}}}}"#,
            "deploy-secret-4",
        ),
    ] {
        let excerpt = m.request_excerpt(operation, body.as_bytes(), 4096).unwrap();
        assert!(!excerpt.contains(secret), "{operation}: {excerpt}");
        assert!(excerpt.contains("airlock:masked:"), "{excerpt}");
        serde_json::from_str::<serde_json::Value>(&excerpt).expect("still JSON");
    }
    // Such a body that is not JSON keeps nothing rather than the secret.
    assert_eq!(
        m.request_excerpt("keyvault.secrets.set", b"value=kv-secret", 4096),
        None
    );
    // Other requests: the detectors, as before.
    assert_eq!(
        m.request_excerpt("storage.blob.put", b"hello", 4096)
            .as_deref(),
        Some("hello")
    );
}

#[test]
fn a_new_application_secret_never_reaches_the_agent() {
    let m = Masker::ephemeral();
    let body = br#"{"customKeyIdentifier":null,"displayName":"ci","keyId":"k1","secretText":"Qm8Q~app-secret-value-1234567890abcdef","hint":"Qm8"}"#;
    let mut s = m
        .response(
            "graph.applications.addPassword.create",
            Some("application/json"),
        )
        .unwrap();
    let mut out = s.push(&bytes::Bytes::from_static(body)).to_vec();
    out.extend_from_slice(&s.finish());
    let out = String::from_utf8(out).unwrap();
    assert!(!out.contains("app-secret-value"), "{out}");
    assert!(out.contains("airlock:masked:client-secret:"), "{out}");
}

#[test]
fn a_batch_answer_is_masked_as_if_each_had_come_alone() {
    let m = Masker::ephemeral();
    let ops = [
        "graph.users.read".to_owned(),
        "graph.applications.addPassword.create".to_owned(),
    ];
    let body = br#"{"responses":[{"id":"2","status":200,"body":{"keyId":"k","secretText":"Qm8Q~batched-secret-0987654321"}},{"id":"1","status":200,"body":{"displayName":"dev"}}]}"#;
    let mut s = m.batch_response(&ops).unwrap();
    let mut out = s.push(&bytes::Bytes::from_static(body)).to_vec();
    out.extend_from_slice(&s.finish());
    let out = String::from_utf8(out).unwrap();
    assert!(!out.contains("batched-secret"), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("still JSON");
    assert_eq!(v["responses"][1]["body"]["displayName"], "dev");
    assert!(m.batch_response(&["graph.users.read".to_owned()]).is_none());
}
