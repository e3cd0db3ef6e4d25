//! A throwaway certificate authority, generated per test at runtime, so TLS
//! tests never depend on files in the tree or on the host's trust store.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// ALPN ids as servers and clients list them.
pub const H2: &[u8] = b"h2";
pub const HTTP11: &[u8] = b"http/1.1";

/// The ring provider, named explicitly: the process has no default provider
/// installed, and airlock must not rely on one either.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn p256() -> KeyPair {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("generate P-256 key")
}

fn pkcs8(key: &KeyPair) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()))
}

/// Server-certificate parameters: SANs from `names` (IP SANs for names that
/// parse as addresses — rcgen decides that), CN = first name.
fn leaf_params(names: &[&str]) -> CertificateParams {
    let sans: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params =
        CertificateParams::new(sans).unwrap_or_else(|e| panic!("leaf names {names:?}: {e}"));
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, names.first().copied().unwrap_or("leaf"));
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params
}

/// Base64 of the SHA-256 of `key`'s SubjectPublicKeyInfo, as Chromium's
/// `--ignore-certificate-errors-spki-list` takes it.
fn pin(key: &KeyPair) -> String {
    use base64::Engine;
    use rcgen::PublicKeyData;
    let spki = ring::digest::digest(&ring::digest::SHA256, &key.subject_public_key_info());
    base64::engine::general_purpose::STANDARD.encode(spki.as_ref())
}

fn server_config_from(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    alpn: &[&[u8]],
) -> Arc<ServerConfig> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server cert and key match");
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A CA (ECDSA P-256) that issues server certificates for tests.
pub struct TestPki {
    ca: CertifiedIssuer<'static, KeyPair>,
    ca_pem: String,
}

impl fmt::Debug for TestPki {
    // The signing key stays out of test output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestPki").finish_non_exhaustive()
    }
}

impl TestPki {
    /// A fresh CA whose subject CN is `name`.
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(params, p256()).expect("self-sign test CA");
        let ca_pem = ca.pem();
        Self { ca, ca_pem }
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.ca.der().clone()
    }

    /// Writes the CA as `ca.pem` in `dir` (for curl `--cacert`, ws-client,
    /// or airlock's upstream trust configuration).
    pub fn write_ca(&self, dir: &Path) -> PathBuf {
        let path = dir.join("ca.pem");
        std::fs::write(&path, &self.ca_pem)
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// A fresh server certificate for `names`; chain = [leaf, ca].
    pub fn leaf(&self, names: &[&str]) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let key = p256();
        let cert = leaf_params(names)
            .signed_by(&key, &self.ca)
            .expect("sign leaf");
        (vec![cert.der().clone(), self.ca_der()], pkcs8(&key))
    }

    /// A server certificate for `names` (chain: leaf, CA) and its key as
    /// PEM files `server.crt` and `server.key` in `dir`, for servers that
    /// read files (PostgreSQL).
    pub fn write_leaf(&self, dir: &Path, names: &[&str]) -> (PathBuf, PathBuf) {
        let (crt, key, _) = self.write_pinned_leaf(dir, names);
        (crt, key)
    }

    /// [`TestPki::write_leaf`], and the leaf key's pin (see
    /// [`TestPki::pinned_server_config`]).
    pub fn write_pinned_leaf(&self, dir: &Path, names: &[&str]) -> (PathBuf, PathBuf, String) {
        let key = p256();
        let cert = leaf_params(names)
            .signed_by(&key, &self.ca)
            .expect("sign leaf");
        let (crt, pem) = (dir.join("server.crt"), dir.join("server.key"));
        std::fs::write(&crt, cert.pem() + &self.ca_pem).expect("write server.crt");
        std::fs::write(&pem, key.serialize_pem()).expect("write server.key");
        (crt, pem, pin(&key))
    }

    /// A server presenting a leaf for `names` issued by this CA.
    pub fn server_config(&self, names: &[&str], alpn: &[&[u8]]) -> Arc<ServerConfig> {
        let (chain, key) = self.leaf(names);
        server_config_from(chain, key, alpn)
    }

    /// [`TestPki::server_config`], and the leaf key's pin as Chromium's
    /// `--ignore-certificate-errors-spki-list` takes it: base64 of the
    /// SHA-256 of its SubjectPublicKeyInfo. (Chromium reads its trust from
    /// an NSS database the harness has no tool to write; a pin trusts this
    /// one server's key and nothing else.)
    pub fn pinned_server_config(
        &self,
        names: &[&str],
        alpn: &[&[u8]],
    ) -> (Arc<ServerConfig>, String) {
        let key = p256();
        let cert = leaf_params(names)
            .signed_by(&key, &self.ca)
            .expect("sign leaf");
        let chain = vec![cert.der().clone(), self.ca_der()];
        (server_config_from(chain, pkcs8(&key), alpn), pin(&key))
    }

    /// A client that trusts this CA and nothing else.
    pub fn client_config(&self, alpn: &[&[u8]]) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der()).expect("add test CA to roots");
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }

    /// A server whose certificate is self-signed by a throwaway key, so no
    /// test CA vouches for it: an "untrusted upstream".
    pub fn self_signed_server_config(names: &[&str], alpn: &[&[u8]]) -> Arc<ServerConfig> {
        let key = p256();
        let cert = leaf_params(names)
            .self_signed(&key)
            .expect("self-sign leaf");
        server_config_from(vec![cert.der().clone()], pkcs8(&key), alpn)
    }
}
