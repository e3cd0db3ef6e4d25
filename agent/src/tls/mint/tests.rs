use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls_pki_types::{ServerName, UnixTime};

use super::*;
use crate::host::InterceptList;

fn cache(
    tag: &str,
    intercept: &[&str],
    capacity: usize,
) -> (Arc<LeafCache>, CertificateDer<'static>) {
    let dir = crate::scratch_dir(&format!("mint-{tag}"));
    let ca = CertificateAuthority::create(&dir, &InterceptList::parse(intercept).unwrap()).unwrap();
    let root = ca.cert_der().clone();
    std::fs::remove_dir_all(&dir).unwrap();
    (
        Arc::new(LeafCache::new(Arc::new(ca), capacity).unwrap()),
        root,
    )
}

fn verify(
    root: &CertificateDer<'static>,
    key: &CertifiedKey,
    name: &str,
) -> Result<(), rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    let v = rustls::client::WebPkiServerVerifier::builder_with_provider(
        roots.into(),
        crate::tls::provider(),
    )
    .build()
    .unwrap();
    v.verify_server_cert(
        &key.cert[0],
        &key.cert[1..],
        &ServerName::try_from(name.to_owned()).unwrap(),
        &[],
        UnixTime::now(),
    )
    .map(|_| ())
}

#[tokio::test]
async fn concurrent_handshakes_for_one_name_mint_once() {
    let (leaves, root) = cache("once", &["*.azure.com"], 16);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let l = leaves.clone();
        tasks.spawn(async move { l.get("Management.Azure.com").await.unwrap() });
    }
    let keys: Vec<Arc<CertifiedKey>> = tasks.join_all().await;
    assert!(
        keys.iter().all(|k| Arc::ptr_eq(k, &keys[0])),
        "one mint shared by all"
    );
    verify(&root, &keys[0], "management.azure.com").unwrap();
}

#[tokio::test]
async fn name_constraints_bind_what_the_ca_can_vouch_for() {
    let (leaves, root) = cache("constraints", &["*.azure.com"], 16);
    let outside = leaves.get("www.example.com").await.unwrap();
    let e = verify(&root, &outside, "www.example.com").unwrap_err();
    assert!(format!("{e:?}").contains("NameConstraint"), "{e:?}");
    let ip = leaves.get("20.1.2.3").await.unwrap();
    assert!(
        verify(&root, &ip, "20.1.2.3").is_err(),
        "IPs are excluded unless listed"
    );

    let (leaves, root) = cache("ip", &["20.1.2.3"], 16);
    verify(&root, &leaves.get("20.1.2.3").await.unwrap(), "20.1.2.3").unwrap();
}

/// OpenSSL (Python's `ssl`, curl builds on it) accepts an intercepted IP
/// literal's leaf under the name-constrained CA, as rustls does.
#[tokio::test]
async fn openssl_accepts_ip_leaves_under_the_constraints() {
    let (leaves, root) = cache("openssl-ip", &["*.azure.com", "127.0.0.1"], 16);
    let leaf = leaves.get("127.0.0.1").await.unwrap();
    let dir = crate::scratch_dir("mint-openssl-ip");
    std::fs::create_dir_all(&dir).unwrap();
    let pem = |der: &[u8]| {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            lines.join("\n")
        )
    };
    std::fs::write(dir.join("ca.pem"), pem(&root)).unwrap();
    std::fs::write(dir.join("leaf.pem"), pem(&leaf.cert[0])).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["verify", "-x509_strict", "-CAfile"])
        .arg(dir.join("ca.pem"))
        .args(["-verify_ip", "127.0.0.1"])
        .arg(dir.join("leaf.pem"))
        .output()
        .expect("openssl (cargo xtask test installs it)");
    std::fs::remove_dir_all(&dir).unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
}

#[tokio::test]
async fn cache_is_bounded() {
    let (leaves, _) = cache("lru", &["*.azure.com"], 2);
    let a = leaves.get("a.azure.com").await.unwrap();
    leaves.get("b.azure.com").await.unwrap();
    leaves.get("c.azure.com").await.unwrap();
    let a2 = leaves.get("a.azure.com").await.unwrap();
    assert!(!Arc::ptr_eq(&a, &a2), "evicted and minted again");
    assert_eq!(leaves.slots.lock().unwrap().len(), 2);
}
