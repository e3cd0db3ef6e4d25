//! Making clients trust the CA: the files published for every user in
//! `tls.public_dir`, the system store (`airlock ca install`), and the
//! variables for runtimes that ignore it (`airlock ca env`).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{CertificateAuthority, TlsError};

/// System bundles, Debian/Ubuntu first, then Fedora/RHEL.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
];

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error(
        "no supported trust store: neither update-ca-certificates (Debian/Ubuntu) nor update-ca-trust (Fedora/RHEL) is installed"
    )]
    NoTool,
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{tool} failed: {status}")]
    Tool { tool: &'static str, status: String },
}

/// The files in `tls.public_dir`, readable by every user.
#[derive(Clone, Debug)]
pub struct PublicFiles {
    pub dir: PathBuf,
}

impl PublicFiles {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
        }
    }
    /// What clients must trust, alone (PEM): for variables that add to a
    /// runtime's roots (`NODE_EXTRA_CA_CERTS`).
    pub fn cert(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    /// The system roots followed by what clients must trust: for variables
    /// that replace a runtime's roots (`REQUESTS_CA_BUNDLE`,
    /// `SSL_CERT_FILE`, `CURL_CA_BUNDLE`).
    pub fn bundle(&self) -> PathBuf {
        self.dir.join("bundle.pem")
    }
}

/// Publishes what clients must trust in `dir` (0755; files 0644, each
/// replaced at once so a reader never sees half a file), with the bundle
/// rebuilt from today's system roots.
pub fn publish(dir: &Path, ca: &CertificateAuthority) -> Result<PublicFiles, TlsError> {
    let files = PublicFiles::new(dir);
    let io = |op, path: &Path| {
        let path = path.to_owned();
        move |source| TlsError::Io { path, op, source }
    };
    std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    // Explicitly: a service's umask (0077) would make it private.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .map_err(io("chmod", dir))?;
    let trusted = ca.trusted_pem();
    let mut bundle = SYSTEM_BUNDLES
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    if !bundle.is_empty() && !bundle.ends_with('\n') {
        bundle.push('\n');
    }
    bundle.push_str(&trusted);
    write_public(&files.cert(), trusted.as_bytes()).map_err(io("write", &files.cert()))?;
    write_public(&files.bundle(), bundle.as_bytes()).map_err(io("write", &files.bundle()))?;
    if let Some(closed) = dir
        .ancestors()
        .skip(1)
        .find(|d| std::fs::metadata(d).is_ok_and(|m| m.permissions().mode() & 0o001 == 0))
    {
        tracing::warn!(dir = %dir.display(), closed = %closed.display(),
            "other users cannot reach the published CA: a directory above it is closed to them (chmod o+x it)");
    }
    Ok(files)
}

/// Writes `path` (0644) through a temporary file renamed over it.
fn write_public(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".new");
    let tmp = path.with_file_name(name);
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o644)
        .open(&tmp)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Adds what clients must trust (the published `ca.crt`) to the system
/// trust store; returns what was done.
pub fn install_system(files: &PublicFiles) -> Result<String, TrustError> {
    let (dir, stem, ext, tool, args): (&str, &str, &str, &'static str, &[&str]) =
        if which("update-ca-certificates") {
            (
                "/usr/local/share/ca-certificates",
                "airlock",
                "crt",
                "update-ca-certificates",
                &[],
            )
        } else if which("update-ca-trust") {
            (
                "/etc/pki/ca-trust/source/anchors",
                "airlock",
                "pem",
                "update-ca-trust",
                &["extract"],
            )
        } else {
            return Err(TrustError::NoTool);
        };
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| TrustError::Io { path, source }
    };
    let trusted = std::fs::read_to_string(files.cert()).map_err(io(&files.cert()))?;
    std::fs::create_dir_all(dir).map_err(io(Path::new(dir)))?;
    // One certificate per file, as the stores expect: during a rotation,
    // the previous CA goes in `airlock-previous`, removed once finished.
    let certs = pem_certificates(&trusted);
    let mut installed = Vec::new();
    for (i, suffix) in ["", "-previous"].iter().enumerate() {
        let target = Path::new(dir).join(format!("{stem}{suffix}.{ext}"));
        match certs.get(i) {
            Some(pem) => {
                std::fs::write(&target, pem).map_err(io(&target))?;
                installed.push(target.display().to_string());
            }
            None => match std::fs::remove_file(&target) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io(&target)(e));
                }
                _ => {}
            },
        }
    }
    let status = Command::new(tool)
        .args(args)
        .status()
        .map_err(io(Path::new(tool)))?;
    if !status.success() {
        return Err(TrustError::Tool {
            tool,
            status: status.to_string(),
        });
    }
    Ok(format!(
        "installed {} as {} and ran {tool}",
        files.cert().display(),
        installed.join(" and ")
    ))
}

/// The PEM certificate blocks of `pem`, each ending in a newline.
fn pem_certificates(pem: &str) -> Vec<String> {
    const END: &str = "-----END CERTIFICATE-----";
    pem.split_inclusive(END)
        .filter_map(|block| {
            let start = block.find("-----BEGIN CERTIFICATE-----")?;
            block
                .ends_with(END)
                .then(|| format!("{}\n", &block[start..]))
        })
        .collect()
}

/// Lines for a service drop-in or a shell, for runtimes that do not read
/// the system store: Node (Copilot) adds to its roots; Python/`az`,
/// OpenSSL-based tools and curl (also the Copilot CLI's native
/// networking) replace theirs, hence the bundle.
pub fn runtime_env(files: &PublicFiles) -> String {
    env_pairs(files)
        .iter()
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect()
}

/// The variables of [`runtime_env`], as pairs.
pub(super) fn env_pairs(files: &PublicFiles) -> Vec<(String, String)> {
    let (cert, bundle) = (files.cert(), files.bundle());
    [
        ("NODE_EXTRA_CA_CERTS", &cert),
        ("REQUESTS_CA_BUNDLE", &bundle),
        ("SSL_CERT_FILE", &bundle),
        ("CURL_CA_BUNDLE", &bundle),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.display().to_string()))
    .collect()
}

fn which(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}
