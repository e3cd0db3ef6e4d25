//! The agent as the attack tests run it: inside the captured cgroup, as an
//! unprivileged user (`nobody`: no root, no sudo, no supplementary
//! groups), trusting airlock's CA from a file that user can read.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::TestCgroup;

/// The agent's uid: `nobody`.
pub const AGENT_UID: u32 = 65534;

/// `dir/public`, a directory the agent's uid can read (as `dir` itself).
pub fn public(dir: &Path) -> PathBuf {
    let public = dir.join("public");
    std::fs::create_dir_all(&public).unwrap();
    for d in [dir, &public] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    public
}

/// A file anyone may read.
pub fn readable(file: &Path) {
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
}

/// A copy of `ca` in `dir/public` the agent's uid can read.
pub fn published(dir: &Path, ca: &Path) -> PathBuf {
    let copy = public(dir).join("airlock-ca.pem");
    std::fs::copy(ca, &copy).unwrap();
    readable(&copy);
    copy
}

/// `program` started in `cg` (entered as root), then running as `uid`
/// with no supplementary groups.
pub fn as_user(cg: &TestCgroup, uid: u32, program: &str) -> tokio::process::Command {
    let mut cmd = cg.command("setpriv");
    cmd.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .args(["--clear-groups", program]);
    cmd
}

/// curl as `uid` in `cg`; it prints the status on a last line of its own.
pub fn curl_as(cg: &TestCgroup, uid: u32) -> tokio::process::Command {
    let mut cmd = as_user(cg, uid, "curl");
    cmd.args(["-sS", "--max-time", "20", "-w", "\n%{http_code}"]);
    cmd
}
