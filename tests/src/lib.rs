//! Harness for airlock's integration tests: privilege gating, throwaway
//! cgroups, loopback upstreams (plain and TLS), a test CA, an OIDC issuer,
//! an in-process airlock, and the daemon and helper binaries.

pub mod body;
pub mod cgroup;
pub mod curl;
pub mod daemon;
pub mod fs;
pub mod https;
pub mod intercepted;
pub mod oidc;
pub mod pki;
pub mod privileged;
pub mod running;
pub mod tls_upstream;
pub mod upstream;

pub use cgroup::TestCgroup;
pub use curl::{Fetched, curl_in};
pub use fs::TempDir;
pub use intercepted::Intercepted;
pub use oidc::{Attack, OidcIssuer, SigningKey, TokenBuilder};
pub use pki::TestPki;
pub use privileged::privileged;
pub use running::Running;
pub use tls_upstream::TlsUpstream;
pub use upstream::Upstream;

use std::time::Duration;

/// Everything a test waits for is bounded by this.
pub const WAIT: Duration = Duration::from_secs(20);

/// Output of a finished child process.
#[derive(Debug)]
pub struct Finished {
    pub pid: u32,
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to completion (bounded by [`WAIT`]), capturing its output.
pub async fn finish(mut cmd: tokio::process::Command) -> Finished {
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let pid = child.id().expect("child pid");
    let out = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{cmd:?} did not finish within {WAIT:?}"))
        .expect("wait for child");
    Finished {
        pid,
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
