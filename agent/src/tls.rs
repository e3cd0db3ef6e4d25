//! TLS on both sides of the proxy: the local CA and the leaves it mints
//! for clients, and verified client configs for upstreams.

mod ca;
mod check;
mod mint;
mod trust;
mod upstream;
mod validity;

pub use ca::{CaFiles, CertificateAuthority};
pub use check::{Outcome as ProbeOutcome, Probe, ProbeUser, check as check_runtimes};
pub(crate) use mint::{ClientTls, DEFAULT_LEAF_CACHE, LeafCache};
pub use trust::{PublicFiles, install_system, publish, runtime_env};
pub use upstream::UpstreamTls;
pub(crate) use upstream::{add_pem_roots, system_roots, verifying_config};

use std::path::PathBuf;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;

/// Protocols airlock speaks inside TLS, as ALPN ids.
pub(crate) const ALPN_H2: &[u8] = b"h2";
pub(crate) const ALPN_HTTP11: &[u8] = b"http/1.1";

/// The one crypto provider used everywhere (ring): no process default is
/// installed, so every config names it. Its suites are ring's, with
/// AES-128-GCM first (as Go's crypto/tls and BoringSSL order them): the
/// key schedule then runs on SHA-256, which this class of CPU does in
/// hardware, instead of SHA-384, which it does not (4% of airlock's CPU
/// per new connection), and each record costs fewer AES rounds.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    use rustls::CipherSuite as S;
    let mut p = rustls::crypto::ring::default_provider();
    // Stable: the order among the rest is ring's.
    p.cipher_suites.sort_by_key(|s| {
        !matches!(
            s.suite(),
            S::TLS13_AES_128_GCM_SHA256
                | S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                | S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        )
    });
    Arc::new(p)
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: cannot {op}: {source}", path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("no CA in {}: run `airlock ca init`", .0.display())]
    NoCa(PathBuf),
    #[error("the CA in {}: {why}", dir.display())]
    BadCa { dir: PathBuf, why: String },
    #[error("minting a certificate for {name}: {why}")]
    Mint { name: String, why: String },
    #[error("upstream roots {}: {why}", path.display())]
    Roots { path: PathBuf, why: String },
    #[error("airlock ca check: {0}")]
    Check(String),
    #[error(transparent)]
    Rustls(#[from] rustls::Error),
}
