//! Harness for airlock's integration tests: privilege gating, throwaway
//! cgroups, loopback upstreams (plain and TLS, a metadata service), a test
//! CA, an OIDC issuer, an in-process airlock, the daemon and helper
//! binaries, the servers the trail goes to (PostgreSQL, rsyslog), and a
//! real browser (Chromium over WebDriver).

pub mod agent;
pub mod body;
pub mod cgroup;
pub mod connect_proxy;
pub mod console;
pub mod curl;
pub mod daemon;
pub mod fs;
pub mod held;
pub mod https;
pub mod imds;
pub mod intercepted;
pub mod oidc;
pub mod pki;
pub mod postgres;
pub mod privileged;
pub mod rsyslog;
pub mod running;
pub mod tls_upstream;
pub mod upstream;
pub mod webdriver;

pub use cgroup::TestCgroup;
pub use connect_proxy::ConnectProxy;
pub use curl::{Fetched, curl_in};
pub use fs::TempDir;
pub use imds::FakeImds;
pub use intercepted::Intercepted;
pub use oidc::{Attack, OidcIssuer, SigningKey, TokenBuilder};
pub use pki::TestPki;
pub use postgres::Postgres;
pub use privileged::privileged;
pub use rsyslog::Rsyslog;
pub use running::Running;
pub use tls_upstream::TlsUpstream;
pub use upstream::Upstream;
pub use webdriver::Browser;

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
pub async fn finish(cmd: tokio::process::Command) -> Finished {
    finish_within(cmd, WAIT).await
}

/// As [`finish`], bounded by `bound`: for transfers whose time is the
/// machine's, not airlock's to promise (the bound is a hang guard; speed is
/// the bench's to show).
pub async fn finish_within(mut cmd: tokio::process::Command, bound: Duration) -> Finished {
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let pid = child.id().expect("child pid");
    let out = tokio::time::timeout(bound, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{cmd:?} did not finish within {bound:?}"))
        .expect("wait for child");
    Finished {
        pid,
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A running child whose stdout a test reads line by line (a scripted
/// client that says how far it got). Killed when dropped.
#[derive(Debug)]
pub struct Talking {
    pub child: tokio::process::Child,
    out: tokio::io::BufReader<tokio::process::ChildStdout>,
}

impl Talking {
    /// Starts `cmd` with its stdout piped (stdin is left as the caller set it).
    pub fn spawn(mut cmd: tokio::process::Command) -> Self {
        cmd.stdout(std::process::Stdio::piped()).kill_on_drop(true);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let out = tokio::io::BufReader::new(child.stdout.take().expect("piped stdout"));
        Self { child, out }
    }

    /// Its next line, trimmed (bounded by [`WAIT`]; empty at end of output).
    pub async fn line(&mut self) -> String {
        let mut line = String::new();
        tokio::time::timeout(
            WAIT,
            tokio::io::AsyncBufReadExt::read_line(&mut self.out, &mut line),
        )
        .await
        .unwrap_or_else(|_| panic!("no line from the child within {WAIT:?}"))
        .expect("read the child's stdout");
        line.trim().to_owned()
    }
}
