//! The agent as the attack tests run it: inside the captured cgroup, as an
//! unprivileged user (`nobody`: no root, no sudo, no supplementary
//! groups), trusting airlock's CA as `airlock ca env` says: the files
//! airlock publishes for every user.

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

/// `program` started in `cg` (entered as root), then running as `uid`
/// with no supplementary groups.
pub fn as_user(cg: &TestCgroup, uid: u32, program: &str) -> tokio::process::Command {
    let mut cmd = cg.command("setpriv");
    cmd.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .args(["--clear-groups", program]);
    cmd
}

/// The environment `airlock ca env` prints for the files airlock
/// publishes in `public_dir` (`tls.public_dir`).
pub fn ca_env(public_dir: &Path) -> Vec<(String, String)> {
    airlock::runtime_env(&airlock::PublicFiles::new(public_dir))
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// `program` in `cg` as the agent runs it: as `nobody`, trusting airlock
/// with exactly the environment `airlock ca env` prints for `public_dir`.
pub fn client(cg: &TestCgroup, public_dir: &Path, program: &str) -> tokio::process::Command {
    let mut cmd = as_user(cg, AGENT_UID, program);
    cmd.envs(ca_env(public_dir));
    cmd
}

/// curl as `uid` in `cg`; it prints the status on a last line of its own.
pub fn curl_as(cg: &TestCgroup, uid: u32) -> tokio::process::Command {
    let mut cmd = as_user(cg, uid, "curl");
    cmd.args(["-sS", "--max-time", "20", "-w", "\n%{http_code}"]);
    cmd
}
