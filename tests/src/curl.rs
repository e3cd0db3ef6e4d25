//! Real curl as the captured client, and what its output proves.

use std::ffi::OsStr;
use std::net::SocketAddr;

use serde_json::Value;

use crate::{Finished, TestCgroup};

/// `-w` suffix: curl's local port, and the peer address curl got from
/// getpeername() (which airlock's hook rewrites to the original destination).
pub const WRITE_OUT: &str = "\n%{local_port} %{remote_ip} %{remote_port}";

/// `program` (curl, or curl under another name) fetching `url` from inside
/// `cgroup`.
pub fn curl_in(
    cgroup: &TestCgroup,
    program: impl AsRef<OsStr>,
    url: &str,
) -> tokio::process::Command {
    let mut cmd = cgroup.command(program);
    cmd.args(["-sS", "-g", "--max-time", "10", "-w", WRITE_OUT, url]);
    cmd
}

/// The curl options for a script to run curl itself (a process the test
/// does not wait for) and leave what it saw in `out`: it writes
/// `{out}.tmp` and renames it, so [`Fetched::from_file`] never reads half.
pub fn curl_to_file(url: &str, out: &std::path::Path) -> String {
    format!(
        "curl -sS --max-time 10 -w '\\n%{{local_port}} %{{remote_ip}} %{{remote_port}}' {url} > {o}.tmp; mv {o}.tmp {o}",
        o = out.display()
    )
}

/// What one curl run saw.
#[derive(Debug)]
pub struct Fetched {
    pub pid: u32,
    /// The upstream's report: where it was reached and from where.
    pub upstream_local: SocketAddr,
    pub upstream_peer: SocketAddr,
    /// curl's own socket.
    pub local_port: u16,
    /// What getpeername() told curl.
    pub remote: SocketAddr,
}

impl Fetched {
    /// What a curl run by a script ([`curl_to_file`]) saw, once its file
    /// is there (waited for up to [`crate::WAIT`]).
    pub async fn from_file(out: &std::path::Path) -> Self {
        let deadline = tokio::time::Instant::now() + crate::WAIT;
        while !out.exists() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        let stdout = std::fs::read_to_string(out)
            .unwrap_or_else(|e| panic!("{}: the curl never finished: {e}", out.display()));
        Self::parse(&Finished {
            pid: 0,
            status: std::process::ExitStatus::default(),
            stdout,
            stderr: String::new(),
        })
    }

    pub fn parse(out: &Finished) -> Self {
        assert!(out.status.success(), "curl failed: {out:?}");
        let (body, tail) = out.stdout.rsplit_once('\n').expect("curl -w line");
        let body: Value =
            serde_json::from_str(body).unwrap_or_else(|e| panic!("body {body:?}: {e}"));
        let mut parts = tail.split_whitespace();
        let local_port = parts.next().unwrap().parse().unwrap();
        let ip: std::net::IpAddr = parts.next().unwrap().parse().unwrap();
        let port = parts.next().unwrap().parse().unwrap();
        Self {
            pid: out.pid,
            upstream_local: body["local"].as_str().unwrap().parse().unwrap(),
            upstream_peer: body["peer"].as_str().unwrap().parse().unwrap(),
            local_port,
            remote: SocketAddr::new(ip, port),
        }
    }

    /// The upstream saw someone other than curl's socket: airlock relayed it.
    /// (airlock's upstream socket may, rarely, draw the same ephemeral port
    /// as curl's; tests of many connections check the audit instead.)
    pub fn proxied(&self) -> bool {
        self.upstream_peer.port() != self.local_port
    }
}
