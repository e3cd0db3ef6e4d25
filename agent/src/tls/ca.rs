//! The local CA: created once in `tls.ca_dir` (key 0600), reused after.
//! It is name-constrained to the intercepted domains, so its key cannot
//! vouch for the rest of the internet even if stolen. Rotated in two steps:
//! a new CA mints at once while the previous certificate stays trusted
//! (published beside it) until the rotation is finished.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType, GeneralSubtree,
    IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::TlsError;
use crate::host::{HostPattern, InterceptList};

const CA_VALIDITY: Duration = Duration::from_secs(5 * 365 * 24 * 3600);
const COMMON_NAME: &str = "airlock interception CA";
const ORGANIZATION: &str = "airlock";

/// Where the CA's files live inside `tls.ca_dir`.
#[derive(Clone, Debug)]
pub struct CaFiles {
    pub dir: PathBuf,
}

impl CaFiles {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
        }
    }
    /// The CA certificate (PEM): what clients must trust.
    pub fn cert(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    /// The CA key (PEM, 0600).
    pub fn key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    /// The intercept patterns the CA was constrained to, one per line.
    pub fn constraints(&self) -> PathBuf {
        self.dir.join("ca.constraints")
    }
    /// During a rotation: the previous CA's certificate, still trusted.
    pub fn previous(&self) -> PathBuf {
        self.dir.join("previous.crt")
    }
}

/// The loaded CA, able to sign leaves.
pub struct CertificateAuthority {
    files: CaFiles,
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
    constrained_to: Vec<String>,
    /// During a rotation, the previous CA's certificate (PEM).
    previous_pem: Option<String>,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("dir", &self.files.dir)
            .field("constrained_to", &self.constrained_to)
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// Loads the CA in `dir`, creating it (constrained to `intercept`) if
    /// there is none yet.
    pub fn load_or_create(dir: &Path, intercept: &InterceptList) -> Result<Self, TlsError> {
        if CaFiles::new(dir).key().exists() {
            Self::load(dir)
        } else {
            Self::create(dir, intercept)
        }
    }

    /// Creates a new CA in `dir`, replacing any there.
    pub fn create(dir: &Path, intercept: &InterceptList) -> Result<Self, TlsError> {
        let files = CaFiles::new(dir);
        let io = |op, path: &Path| {
            let path = path.to_owned();
            move |source| TlsError::Io { path, op, source }
        };
        // Only the CA's own directory is private: its parent usually also
        // holds `tls.public_dir`, which every user must reach.
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent).map_err(io("create", parent))?;
        }
        DirBuilder::new()
            .mode(0o700)
            .create(dir)
            .or_else(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => Ok(()),
                _ => Err(e),
            })
            .map_err(io("create", dir))?;
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| bad(dir, e))?;
        let mut params = ca_params();
        let now = SystemTime::now();
        params.not_before = (now - Duration::from_secs(3600)).into();
        params.not_after = (now + CA_VALIDITY).into();
        params.name_constraints = Some(name_constraints(intercept));
        let cert = params.self_signed(&key).map_err(|e| bad(dir, e))?;
        write_private(&files.key(), key.serialize_pem().as_bytes())
            .map_err(io("write", &files.key()))?;
        std::fs::write(files.cert(), cert.pem()).map_err(io("write", &files.cert()))?;
        let patterns: String = intercept
            .patterns()
            .iter()
            .map(|p| format!("{p}\n"))
            .collect();
        std::fs::write(files.constraints(), patterns).map_err(io("write", &files.constraints()))?;
        tracing::info!(dir = %dir.display(), "created a new CA");
        Self::load(dir)
    }

    /// Starts a rotation: a new CA (constrained to `intercept`) replaces the
    /// current one for minting, and the current certificate is kept as
    /// `previous.crt`, still published, so clients that trust either keep
    /// working until [`finish_rotation`](Self::finish_rotation). The old
    /// key is deleted: nothing is signed with it again.
    pub fn rotate(dir: &Path, intercept: &InterceptList) -> Result<Self, TlsError> {
        let files = CaFiles::new(dir);
        let current = Self::load(dir)?;
        if current.previous_pem.is_some() {
            return Err(bad(
                dir,
                "a rotation is already under way: finish it first (`airlock ca rotate --finish`)",
            ));
        }
        let io = |op, path: PathBuf| move |source| TlsError::Io { path, op, source };
        std::fs::write(files.previous(), current.cert_pem.as_bytes())
            .map_err(io("write", files.previous()))?;
        Self::create(dir, intercept)
    }

    /// Ends a rotation: the previous certificate is no longer trusted.
    pub fn finish_rotation(dir: &Path) -> Result<Self, TlsError> {
        let files = CaFiles::new(dir);
        match std::fs::remove_file(files.previous()) {
            Ok(()) => Self::load(dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(bad(dir, "no rotation is under way"))
            }
            Err(source) => Err(TlsError::Io {
                path: files.previous(),
                op: "remove",
                source,
            }),
        }
    }

    /// Loads the CA in `dir` and checks that its key and certificate belong
    /// together (a leaf it signs verifies against the certificate).
    pub fn load(dir: &Path) -> Result<Self, TlsError> {
        let files = CaFiles::new(dir);
        if !files.key().exists() {
            return Err(TlsError::NoCa(dir.to_owned()));
        }
        let read = |path: PathBuf| {
            std::fs::read_to_string(&path).map_err(|source| TlsError::Io {
                path,
                op: "read",
                source,
            })
        };
        let key = KeyPair::from_pem(&read(files.key())?).map_err(|e| bad(dir, e))?;
        let cert_pem = read(files.cert())?;
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| bad(dir, format!("ca.crt: {e}")))?;
        let constrained_to = read(files.constraints())
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect();
        let previous_pem = if files.previous().exists() {
            let pem = read(files.previous())?;
            CertificateDer::from_pem_slice(pem.as_bytes())
                .map_err(|e| bad(dir, format!("previous.crt: {e}")))?;
            Some(pem)
        } else {
            None
        };
        let ca = Self {
            files,
            cert_der,
            cert_pem,
            issuer: Issuer::new(ca_params(), key),
            constrained_to,
            previous_pem,
        };
        ca.self_check()?;
        Ok(ca)
    }

    pub fn files(&self) -> &CaFiles {
        &self.files
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// What clients must trust, PEM: this CA, and during a rotation the
    /// previous one after it.
    pub fn trusted_pem(&self) -> String {
        let mut pem = self.cert_pem.clone();
        if let Some(previous) = &self.previous_pem {
            if !pem.ends_with('\n') {
                pem.push('\n');
            }
            pem.push_str(previous);
        }
        pem
    }

    /// Whether a rotation is under way.
    pub fn rotating(&self) -> bool {
        self.previous_pem.is_some()
    }

    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// When the CA certificate expires (clients refuse its leaves after).
    pub fn not_after(&self) -> Option<SystemTime> {
        super::validity::not_after(&self.cert_der)
    }

    /// SHA-256 of the certificate, hex, as `openssl x509 -fingerprint` shows it.
    pub fn fingerprint(&self) -> String {
        let d = ring::digest::digest(&ring::digest::SHA256, &self.cert_der);
        d.as_ref()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }

    /// Intercept patterns the CA's name constraints do not cover: clients
    /// will reject certificates for them until the CA is re-created.
    pub fn uncovered(&self, intercept: &InterceptList) -> Vec<String> {
        let covered: Vec<HostPattern> = self
            .constrained_to
            .iter()
            .filter_map(|p| HostPattern::parse(p).ok())
            .collect();
        intercept
            .patterns()
            .iter()
            .filter(|p| !covered.iter().any(|c| covers(c, p)))
            .map(ToString::to_string)
            .collect()
    }

    pub(super) fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }

    /// ca.key must be the key of ca.crt: the certificate's DER carries the
    /// public key verbatim, so a key from another CA is caught here rather
    /// than as unexplained handshake failures in every client.
    fn self_check(&self) -> Result<(), TlsError> {
        let public = self.issuer.key().public_key_raw();
        if self.cert_der.windows(public.len()).any(|w| w == public) {
            Ok(())
        } else {
            Err(bad(&self.files.dir, "ca.key is not the key of ca.crt"))
        }
    }
}

/// The CA's fixed identity: reloading rebuilds these exact fields, which is
/// all rcgen needs to sign as the CA (subject and key identifier method).
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, COMMON_NAME);
    dn.push(DnType::OrganizationName, ORGANIZATION);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// DNS subtrees for the intercepted domains; IP subtrees only for IP
/// literals in the list, every other address excluded.
fn name_constraints(intercept: &InterceptList) -> NameConstraints {
    let mut permitted = Vec::new();
    let mut ips = false;
    for p in intercept.patterns() {
        permitted.push(match p {
            HostPattern::Suffix(d) | HostPattern::Exact(d) => GeneralSubtree::DnsName(d.clone()),
            HostPattern::Ip(ip) => {
                ips = true;
                GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(
                    *ip,
                    if ip.is_ipv4() { 32 } else { 128 },
                ))
            }
        });
    }
    // Constraints apply per name type: with no DNS subtree at all, DNS
    // names would be unconstrained. `invalid.` (RFC 6761) matches nothing.
    if !permitted
        .iter()
        .any(|g| matches!(g, GeneralSubtree::DnsName(_)))
    {
        permitted.push(GeneralSubtree::DnsName("invalid".into()));
    }
    let excluded = if ips {
        Vec::new()
    } else {
        vec![
            GeneralSubtree::IpAddress(CidrSubnet::from_v4_prefix([0; 4], 0)),
            GeneralSubtree::IpAddress(CidrSubnet::from_v6_prefix([0; 16], 0)),
        ]
    };
    NameConstraints {
        permitted_subtrees: permitted,
        excluded_subtrees: excluded,
    }
}

/// Whether a CA constrained to `by` may sign for everything `p` matches
/// (a DNS subtree covers the name and all names below it).
fn covers(by: &HostPattern, p: &HostPattern) -> bool {
    let under = |name: &str, domain: &str| name == domain || name.ends_with(&format!(".{domain}"));
    match (by, p) {
        (
            HostPattern::Suffix(d) | HostPattern::Exact(d),
            HostPattern::Suffix(n) | HostPattern::Exact(n),
        ) => under(n, d),
        (HostPattern::Ip(a), HostPattern::Ip(b)) => a == b,
        _ => false,
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let _ = std::fs::remove_file(path);
    let mut f = OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn bad(dir: &Path, why: impl std::fmt::Display) -> TlsError {
    TlsError::BadCa {
        dir: dir.to_owned(),
        why: why.to_string(),
    }
}

#[cfg(test)]
mod tests;
