//! Making clients trust the CA: the system store (`airlock ca install`),
//! and the variables for runtimes that ignore it (`airlock ca env`).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{CaFiles, TlsError};

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

/// Writes `bundle.pem`: the system roots followed by the CA, so that a
/// variable replacing the store does not lose the public roots.
pub(super) fn write_bundle(files: &CaFiles, ca_pem: &str) -> Result<(), TlsError> {
    let mut bundle = SYSTEM_BUNDLES
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    if !bundle.is_empty() && !bundle.ends_with('\n') {
        bundle.push('\n');
    }
    bundle.push_str(ca_pem);
    std::fs::write(files.bundle(), bundle).map_err(|source| TlsError::Io {
        path: files.bundle(),
        op: "write",
        source,
    })
}

/// Adds the CA to the system trust store; returns what was done.
pub fn install_system(files: &CaFiles) -> Result<String, TrustError> {
    let (dir, name, tool, args): (&str, &str, &'static str, &[&str]) =
        if which("update-ca-certificates") {
            (
                "/usr/local/share/ca-certificates",
                "airlock.crt",
                "update-ca-certificates",
                &[],
            )
        } else if which("update-ca-trust") {
            (
                "/etc/pki/ca-trust/source/anchors",
                "airlock.pem",
                "update-ca-trust",
                &["extract"],
            )
        } else {
            return Err(TrustError::NoTool);
        };
    let target = Path::new(dir).join(name);
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| TrustError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(Path::new(dir)))?;
    std::fs::copy(files.cert(), &target).map_err(io(&target))?;
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
        target.display()
    ))
}

/// Lines for a service drop-in or a shell, for runtimes that do not read
/// the system store: Node (Copilot) adds to its roots; Python/`az` and
/// OpenSSL-based tools replace theirs, hence the bundle.
pub fn runtime_env(files: &CaFiles) -> String {
    format!(
        "NODE_EXTRA_CA_CERTS={}\nREQUESTS_CA_BUNDLE={}\nSSL_CERT_FILE={}\n",
        files.cert().display(),
        files.bundle().display(),
        files.bundle().display()
    )
}

fn which(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}
