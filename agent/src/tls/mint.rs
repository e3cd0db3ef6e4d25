//! Leaf certificates for intercepted names, minted on demand by the local
//! CA and cached (bounded LRU); concurrent handshakes for one name mint it
//! once. All leaves share one in-memory key, generated at start and never
//! written anywhere: minting is then one signature, not a key generation.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use lru::LruCache;
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::sync::OnceCell;

use super::{ALPN_H2, ALPN_HTTP11, CertificateAuthority, TlsError};
use crate::core::{lock, read_lock, write_lock};

/// Minted leaves kept.
pub(crate) const DEFAULT_LEAF_CACHE: usize = 4096;
/// Leaf lifetime: short, since they are re-minted for free.
pub(super) const LEAF_VALIDITY: Duration = Duration::from_secs(24 * 3600);
/// Backdating against client clock skew; also the renewal margin.
const LEAF_SKEW: Duration = Duration::from_secs(3600);

type Slot = Arc<OnceCell<(Arc<CertifiedKey>, SystemTime)>>;

/// The cache of minted leaves.
pub(crate) struct LeafCache {
    /// Replaced when the CA is rotated (at a reload).
    ca: RwLock<Arc<CertificateAuthority>>,
    leaf_key: KeyPair,
    signing: Arc<dyn rustls::sign::SigningKey>,
    slots: Mutex<LruCache<String, Slot>>,
}

impl std::fmt::Debug for LeafCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeafCache").finish_non_exhaustive()
    }
}

impl LeafCache {
    pub(crate) fn new(ca: Arc<CertificateAuthority>, capacity: usize) -> Result<Self, TlsError> {
        let mint_err = |why: String| TlsError::Mint {
            name: "(leaf key)".into(),
            why,
        };
        let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| mint_err(e.to_string()))?;
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let signing = super::provider()
            .key_provider
            .load_private_key(der)
            .map_err(|e| mint_err(e.to_string()))?;
        let capacity = NonZeroUsize::new(capacity.max(1)).expect("max(1)");
        Ok(Self {
            ca: RwLock::new(ca),
            leaf_key,
            signing,
            slots: Mutex::new(LruCache::new(capacity)),
        })
    }

    /// The leaf for `name` (a DNS name or IP literal), minting it once.
    pub(crate) async fn get(&self, name: &str) -> Result<Arc<CertifiedKey>, TlsError> {
        let name = name.to_ascii_lowercase();
        loop {
            let slot = self.slot(&name);
            let (key, expires) = slot
                .get_or_try_init(|| async { self.mint(&name) })
                .await?
                .clone();
            if SystemTime::now() + LEAF_SKEW < expires {
                return Ok(key);
            }
            // Close to expiry: drop this slot (if still ours) and mint anew.
            let mut slots = lock(&self.slots);
            if slots.peek(&name).is_some_and(|s| Arc::ptr_eq(s, &slot)) {
                slots.pop(&name);
            }
        }
    }

    /// The CA that mints now.
    pub(crate) fn ca(&self) -> Arc<CertificateAuthority> {
        read_lock(&self.ca).clone()
    }

    /// Mints with `ca` from now on; leaves of the previous CA are dropped
    /// (clients that already hold one keep their connection).
    pub(crate) fn replace_ca(&self, ca: CertificateAuthority) {
        *write_lock(&self.ca) = Arc::new(ca);
        lock(&self.slots).clear();
    }

    /// An already-minted leaf, without waiting (for the SNI resolver).
    fn cached(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        let mut slots = lock(&self.slots);
        slots
            .get(&name.to_ascii_lowercase())?
            .get()
            .map(|(k, _)| k.clone())
    }

    fn slot(&self, name: &str) -> Slot {
        let mut slots = lock(&self.slots);
        slots.get_or_insert(name.to_owned(), Slot::default).clone()
    }

    fn mint(&self, name: &str) -> Result<(Arc<CertifiedKey>, SystemTime), TlsError> {
        let ca = self.ca();
        let leaf = sign_leaf(&ca, name, &self.leaf_key)?;
        let chain = vec![leaf, ca.cert_der().clone()];
        tracing::debug!(name, "minted leaf certificate");
        Ok((
            Arc::new(CertifiedKey::new(chain, self.signing.clone())),
            SystemTime::now() + LEAF_VALIDITY,
        ))
    }
}

/// Signs a leaf for `name` with `key` as its subject key.
pub(super) fn sign_leaf(
    ca: &CertificateAuthority,
    name: &str,
    key: &KeyPair,
) -> Result<CertificateDer<'static>, TlsError> {
    let err = |e: rcgen::Error| TlsError::Mint {
        name: name.to_owned(),
        why: e.to_string(),
    };
    let mut params = CertificateParams::default();
    let ip = name.parse::<std::net::IpAddr>().ok();
    params.subject_alt_names = vec![match ip {
        Some(ip) => SanType::IpAddress(ip),
        None => SanType::DnsName(name.to_owned().try_into().map_err(err)?),
    }];
    let mut dn = DistinguishedName::new();
    // An IP leaf has no common name: OpenSSL checks a CN that looks like
    // a host name against the CA's DNS name constraints, and `127.0.0.1`
    // would then violate them (the SAN alone names the address).
    if ip.is_none() {
        dn.push(DnType::CommonName, name);
    }
    params.distinguished_name = dn;
    let now = SystemTime::now();
    params.not_before = (now - LEAF_SKEW).into();
    params.not_after = (now + LEAF_VALIDITY).into();
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    // Serials must differ per certificate: random, positive, 16 bytes.
    let mut serial = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut serial).map_err(
        |_| TlsError::Mint {
            name: name.to_owned(),
            why: "no randomness for the serial".into(),
        },
    )?;
    serial[0] &= 0x7f;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    Ok(params
        .signed_by(key, ca.issuer())
        .map_err(err)?
        .der()
        .clone())
}

/// TLS sessions kept for clients to resume (an abbreviated handshake: no
/// certificate, no signature), across every client-facing config. Each
/// full handshake stores two (rustls sends two TLS 1.3 tickets, each good
/// once); 512 is what the three per-ALPN caches held before they were one,
/// and bounds the cache near 128 KiB.
const RESUMABLE_SESSIONS: usize = 512;

/// The client-facing side: one server config per ALPN answer, sharing the
/// leaf cache through an SNI resolver, and one session cache shared by
/// them and by the configs made for clients that send no SNI — each of
/// those is new, and with a cache of its own none of them could resume.
#[derive(Debug)]
pub(crate) struct ClientTls {
    leaves: Arc<LeafCache>,
    h2: Arc<ServerConfig>,
    http11: Arc<ServerConfig>,
    none: Arc<ServerConfig>,
    sessions: Arc<dyn rustls::server::StoresServerSessions>,
}

#[derive(Debug)]
struct SniResolver(Arc<LeafCache>);

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name()?;
        // Minted before the handshake started; mint here only if it was
        // evicted in between.
        self.0
            .cached(name)
            .or_else(|| self.0.mint(name).ok().map(|(k, _)| k))
    }
}

impl ClientTls {
    pub(crate) fn new(leaves: Arc<LeafCache>) -> Result<Self, TlsError> {
        let sessions: Arc<dyn rustls::server::StoresServerSessions> =
            rustls::server::ServerSessionMemoryCache::new(RESUMABLE_SESSIONS);
        let config = |alpn: &[&[u8]]| -> Result<Arc<ServerConfig>, TlsError> {
            let mut c = ServerConfig::builder_with_provider(super::provider())
                .with_safe_default_protocol_versions()?
                .with_no_client_auth()
                .with_cert_resolver(Arc::new(SniResolver(leaves.clone())));
            c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
            c.session_storage = sessions.clone();
            // The provider's order: see `tls::provider`.
            c.ignore_client_order = true;
            Ok(Arc::new(c))
        };
        Ok(Self {
            h2: config(&[ALPN_H2])?,
            http11: config(&[ALPN_HTTP11])?,
            none: config(&[])?,
            leaves: leaves.clone(),
            sessions,
        })
    }

    /// The config answering with `alpn` (what the upstream chose), for a
    /// client that sent SNI `sni`; without SNI, a one-off config for the
    /// IP literal `fallback_name`.
    pub(crate) async fn config(
        &self,
        sni: Option<&str>,
        fallback_name: &str,
        alpn: Option<&[u8]>,
    ) -> Result<Arc<ServerConfig>, TlsError> {
        let key = self.leaves.get(sni.unwrap_or(fallback_name)).await?;
        let shared = match alpn {
            Some(ALPN_H2) => &self.h2,
            Some(ALPN_HTTP11) => &self.http11,
            _ => &self.none,
        };
        if sni.is_some() {
            return Ok(shared.clone());
        }
        let mut c = ServerConfig::builder_with_provider(super::provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Fixed(key)));
        c.alpn_protocols = shared.alpn_protocols.clone();
        c.ignore_client_order = true;
        c.session_storage = self.sessions.clone();
        Ok(Arc::new(c))
    }
}

#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

#[cfg(test)]
mod tests;
