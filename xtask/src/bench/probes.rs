//! Two figures wrk cannot give: airlock's memory per idle intercepted TLS
//! connection, and what its eBPF programs cost a process they do not
//! select. Both drive a small python3 script inside the capture cgroup.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};

use super::airlock::{Airlock, Settings};
use super::jwt::Issuer;
use super::sys::{Cgroup, free_port, python, rss_kib};
use super::wrk::Figures;

/// Opens TLS connections through airlock (SNI-less, as for any IP name),
/// completes the handshakes and holds them; says `warm` after a few
/// throwaway connections (the leaf is minted, pools are warm) and `held`
/// once all are open, then sends one request on each (keep-alive, with the
/// bearer token) and says `used` with how many were answered 200, each
/// time waiting for a line on stdin.
///
/// It does not verify airlock's leaf (wrk does not either): OpenSSL rejects
/// it with "permitted subtree violation" — airlock's CA permits only
/// `IP:127.0.0.1` and `DNS:invalid`, and OpenSSL checks the leaf's CN
/// `127.0.0.1` as a DNS name. A finding about IP-literal intercepts, not
/// something the memory figure depends on.
const IDLE_SCRIPT: &str = r#"
import http.client, resource, socket, ssl, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
port, ca, n, token = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
def conn():
    s = socket.create_connection(("127.0.0.1", port))
    return ctx.wrap_socket(s, server_hostname="127.0.0.1")
for _ in range(20):
    conn().close()
print("warm", flush=True); sys.stdin.readline()
held = [conn() for _ in range(n)]
print("held", len(held), flush=True); sys.stdin.readline()
def use(s):
    c = http.client.HTTPConnection("127.0.0.1", port)
    c.sock = s
    c.request("GET", "/small.json", headers={"Authorization": "Bearer " + token})
    r = c.getresponse()
    r.read()
    return r.status
statuses = [use(s) for s in held]
print("used", statuses.count(200), flush=True); sys.stdin.readline()
"#;

/// Times `n` connect() + accept() + close() on loopback (RST on close, so
/// no TIME_WAIT piles up) and prints microseconds per connect.
const CONNECT_SCRIPT: &str = r#"
import socket, struct, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", port)); l.listen(128)
linger = struct.pack("ii", 1, 0)
def once():
    c = socket.socket()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
    c.connect(("127.0.0.1", port))
    a, _ = l.accept()
    c.close(); a.close()
for _ in range(500):
    once()
t = time.perf_counter()
for _ in range(n):
    once()
print((time.perf_counter() - t) / n * 1e6)
"#;

/// airlock's resident memory with `conns` idle intercepted connections.
#[derive(Debug)]
pub(crate) struct Idle {
    pub(crate) conns: usize,
    pub(crate) before_kib: u64,
    pub(crate) after_kib: u64,
    /// Holding the same connections idle again after one request each
    /// (keep-alive).
    pub(crate) after_use_kib: u64,
    /// airlock's open file descriptors, before, holding the connections,
    /// and holding them after a request each: two per connection means
    /// each idle client holds an upstream one.
    pub(crate) fds: (usize, usize, usize),
}

impl Idle {
    pub(crate) fn per_conn_kib(&self) -> f64 {
        self.after_kib.saturating_sub(self.before_kib) as f64 / self.conns as f64
    }

    /// Per connection, idle after one request (keep-alive).
    pub(crate) fn per_used_conn_kib(&self) -> f64 {
        self.after_use_kib.saturating_sub(self.before_kib) as f64 / self.conns as f64
    }
}

/// Starts a fresh airlock (full pipeline, `written`) so earlier load has
/// not already grown its heap, and reads its VmRSS before and after the
/// script opens `conns` connections to the upstream through it.
pub(crate) fn idle(
    bin: &Path,
    work: &Path,
    cgroup: &Cgroup,
    port: u16,
    issuer: &Issuer,
    token: &str,
    conns: usize,
) -> anyhow::Result<Idle> {
    let settings = Settings::full("written", Some(issuer));
    let airlock = Airlock::start(bin, work, "idle", cgroup, &[port], &settings)?;
    let ca = airlock.ca_dir.join("ca.crt");
    let mut child = python(Some(cgroup), IDLE_SCRIPT)
        .arg(port.to_string())
        .arg(&ca)
        .arg(conns.to_string())
        .arg(token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the idle-connection script")?;
    let mut stdin = child.stdin.take().context("stdin")?;
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let mut expect = |word: &str| -> anyhow::Result<String> {
        match lines.next() {
            Some(Ok(l)) if l.starts_with(word) => Ok(l),
            other => bail!("idle-connection script: expected {word:?}, got {other:?}"),
        }
    };
    // Let airlock finish with each step (upstream handshakes, records)
    // before reading its memory.
    expect("warm")?;
    std::thread::sleep(Duration::from_millis(500));
    let before_kib = rss_kib(airlock.pid())?;
    let fds_before = open_fds(airlock.pid());
    writeln!(stdin)?;
    expect("held")?;
    std::thread::sleep(Duration::from_secs(1));
    let after_kib = rss_kib(airlock.pid())?;
    let fds_after = open_fds(airlock.pid());
    writeln!(stdin)?;
    let used = expect("used")?;
    if used != format!("used {conns}") {
        bail!("idle-connection script: not every request was answered 200 ({used})");
    }
    // Past the keep-alive release (`http::release`, a second).
    std::thread::sleep(Duration::from_secs(2));
    let after_use_kib = rss_kib(airlock.pid())?;
    let fds_after_use = open_fds(airlock.pid());
    writeln!(stdin)?;
    let status = child.wait()?;
    if !status.success() {
        bail!("idle-connection script: {status}");
    }
    airlock.stop()?;
    Ok(Idle {
        conns,
        before_kib,
        after_kib,
        after_use_kib,
        fds: (fds_before, fds_after, fds_after_use),
    })
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// µs per connect for a process airlock does not select, without airlock
/// and with its programs attached, one sample of each per round.
#[derive(Debug)]
pub(crate) struct ConnectCost {
    pub(crate) connects: usize,
    pub(crate) without: Vec<f64>,
    pub(crate) with: Vec<f64>,
}

/// airlock selects `wrk` only; the timing process is python3 in the same
/// cgroup, connecting to a captured port, so the programs run their whole
/// selection for every connect and let it through.
pub(crate) fn connect_cost(
    bin: &Path,
    work: &Path,
    cgroup: &Cgroup,
    connects: usize,
    rounds: usize,
) -> anyhow::Result<ConnectCost> {
    let port = free_port()?;
    let settings = Settings {
        comm: Some("wrk"),
        ..Settings::full("written", None)
    };
    let mut cost = ConnectCost {
        connects,
        without: Vec::new(),
        with: Vec::new(),
    };
    for _ in 0..rounds {
        cost.without.push(time_connects(cgroup, port, connects)?);
        let airlock = Airlock::start(bin, work, "connect", cgroup, &[port], &settings)?;
        let with = time_connects(cgroup, port, connects);
        airlock.stop()?;
        cost.with.push(with?);
    }
    Ok(cost)
}

fn time_connects(cgroup: &Cgroup, port: u16, n: usize) -> anyhow::Result<f64> {
    let out = python(Some(cgroup), CONNECT_SCRIPT)
        .args([port.to_string(), n.to_string()])
        .output()
        .context("running the connect script")?;
    if !out.status.success() {
        bail!(
            "connect script: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("connect script output")
}

/// Median and half the range of plain numbers.
pub(crate) fn median(xs: &[f64]) -> (f64, f64) {
    let v: Vec<Figures> = xs
        .iter()
        .map(|&rps| Figures {
            rps,
            ..Figures::default()
        })
        .collect();
    super::wrk::median(&v, |f| f.rps)
}
