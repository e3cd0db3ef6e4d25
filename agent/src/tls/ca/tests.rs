use std::os::unix::fs::PermissionsExt;

use super::*;

fn tmp(tag: &str) -> PathBuf {
    crate::scratch_dir(&format!("ca-{tag}"))
}

fn intercept(list: &[&str]) -> InterceptList {
    InterceptList::parse(list).unwrap()
}

#[test]
fn created_once_then_reused_with_private_key_0600() {
    let dir = tmp("reuse");
    let list = intercept(&["*.azure.com", "login.microsoftonline.com"]);
    let first = CertificateAuthority::load_or_create(&dir, &list).unwrap();
    let mode = |p: PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(first.files().key()), 0o600);
    assert_eq!(mode(dir.clone()), 0o700);
    let again = CertificateAuthority::load_or_create(&dir, &list).unwrap();
    assert_eq!(first.fingerprint(), again.fingerprint());
    assert_eq!(first.fingerprint().len(), 32 * 3 - 1);
    assert!(again.uncovered(&list).is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn reports_patterns_outside_its_constraints() {
    let dir = tmp("uncovered");
    let ca = CertificateAuthority::create(&dir, &intercept(&["*.azure.com"])).unwrap();
    let wider = intercept(&["management.azure.com", "*.windows.net", "20.1.2.3"]);
    assert_eq!(ca.uncovered(&wider), ["*.windows.net", "20.1.2.3"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn mismatched_key_is_refused() {
    let (a, b) = (tmp("a"), tmp("b"));
    let list = intercept(&["*.azure.com"]);
    CertificateAuthority::create(&a, &list).unwrap();
    CertificateAuthority::create(&b, &list).unwrap();
    std::fs::copy(b.join("ca.key"), a.join("ca.key")).unwrap();
    let e = CertificateAuthority::load(&a).unwrap_err().to_string();
    assert!(e.contains("not the key of ca.crt"), "{e}");
    let missing = CertificateAuthority::load(&tmp("none"))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("airlock ca init"), "{missing}");
    std::fs::remove_dir_all(&a).unwrap();
    std::fs::remove_dir_all(&b).unwrap();
}
