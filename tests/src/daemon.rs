//! The real `airlock` binary, for tests of the daemon as users run it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::WAIT;

/// Path of the built `airlock` binary: `$AIRLOCK_BIN`, else next to this
/// test executable's `deps/` directory (where `cargo build` puts it).
pub fn airlock_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("AIRLOCK_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir.join("airlock");
    assert!(
        bin.exists(),
        "{} missing: run `cargo build -p airlock` first (cargo xtask test does), or set AIRLOCK_BIN",
        bin.display()
    );
    bin
}

/// A free TCP port on `ip` (bound then released: the daemon binds it next).
pub fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .expect("bind for a free port")
        .local_addr()
        .unwrap()
        .port()
}

/// Every record in the audit file at `path` (none if it does not exist yet).
/// Read while the daemon writes, the file may end in a line still being
/// appended: only lines with their newline are records yet.
pub fn records(path: &Path) -> Vec<Value> {
    let bytes = std::fs::read(path).unwrap_or_default();
    let complete = bytes
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(&[][..], |end| &bytes[..=end]);
    std::str::from_utf8(complete)
        .expect("audit lines are UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
        .collect()
}

/// The trail at `path` as `airlock audit export` prints it: every exchange
/// joined with its session and both its records, every other record as is.
pub fn exported(path: &Path) -> Vec<Value> {
    airlock::query::joined(&airlock::trail(path)).unwrap_or_default()
}

/// Completed HTTP exchanges of [`exported`], once there are at least `n`
/// (or at the deadline, whatever there is).
pub async fn wait_for_exchanges(path: &Path, n: usize) -> Vec<Value> {
    let done = |r: &Value| r["kind"] == "http" && r["phase"] == "response";
    wait_for_exported(path, |all| all.iter().filter(|r| done(r)).count() >= n)
        .await
        .into_iter()
        .filter(done)
        .collect()
}

/// [`exported`] once `what` holds for it, or at the deadline.
pub async fn wait_for_exported(path: &Path, what: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + crate::WAIT;
    loop {
        let all = exported(path);
        if what(&all) || tokio::time::Instant::now() > deadline {
            return all;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The records once `what` holds for them, or at the deadline.
pub async fn wait_for(path: &Path, what: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = records(path);
        if what(&r) || tokio::time::Instant::now() > deadline {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A test daemon's config: capturing `port` in `cgroup`, listening on
/// `listen` (IPv4, IPv6 ports), with its CA (`dir/ca`, published in
/// `dir/public`), audit trail
/// (`dir/audit.jsonl`), admin socket and masking key all in `dir`.
/// `capture`, `proxy` and `tls` are extra lines for those sections.
#[derive(Clone, Copy, Debug, Default)]
pub struct DaemonConfig<'a> {
    pub port: u16,
    pub listen: (u16, u16),
    pub capture: &'a str,
    pub proxy: &'a str,
    pub tls: &'a str,
}

impl DaemonConfig<'_> {
    /// The config text for a daemon whose state lives in `dir`.
    pub fn text(&self, dir: &Path, cgroup: &Path) -> String {
        format!(
            "[capture]\ncgroup = {cgroup:?}\nports = [{}]\n{}[proxy]\nlisten = \"127.0.0.1:{}\"\nlisten6 = \"[::1]:{}\"\n{}\
             [tls]\nca_dir = {:?}\npublic_dir = {:?}\n{}[audit]\npath = {:?}\n{}",
            self.port,
            self.capture,
            self.listen.0,
            self.listen.1,
            self.proxy,
            dir.join("ca"),
            dir.join("public"),
            self.tls,
            dir.join("audit.jsonl"),
            private_state(dir),
        )
    }
}

/// Both listener ports, free now (the daemon binds them next).
pub fn free_ports() -> (u16, u16) {
    (free_port("127.0.0.1"), free_port("::1"))
}

/// Writes a daemon config into `dir` capturing `port` in `cgroup`, with
/// `upstream_roots` trusted (see [`DaemonConfig`]); returns its path.
pub fn write_tls_config(dir: &Path, cgroup: &Path, port: u16, upstream_roots: &Path) -> PathBuf {
    let config = dir.join("airlock.toml");
    let tls = format!("upstream_roots = [{upstream_roots:?}]\n");
    let text = DaemonConfig {
        port,
        listen: free_ports(),
        tls: &tls,
        ..DaemonConfig::default()
    }
    .text(dir, cgroup);
    std::fs::write(&config, text).expect("write config");
    config
}

/// Config sections that keep a test daemon's admin socket and masking key
/// in `dir` (the defaults under /run and /var/lib are shared by every
/// daemon on the host).
pub fn private_state(dir: &Path) -> String {
    format!(
        "[admin]\nsocket = {:?}\n[masking]\nkey_file = {:?}\n",
        dir.join("admin.sock"),
        dir.join("masking.key")
    )
}

/// `airlock run --config config`, stopped when dropped.
pub fn spawn(config: &Path) -> Daemon {
    Daemon(
        tokio::process::Command::new(airlock_bin())
            .args(["run", "--log-level", "error", "--config"])
            .arg(config)
            .kill_on_drop(true)
            .spawn()
            .expect("start airlock"),
    )
}

/// A running daemon. Dropped, it gets SIGTERM and a moment to stop, as an
/// operator would stop it — so it unpins its programs (`fail_mode =
/// "closed"`) instead of leaving them behind like a crash would.
#[derive(Debug)]
pub struct Daemon(pub tokio::process::Child);

impl std::ops::Deref for Daemon {
    type Target = tokio::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Daemon {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// Sends `sig` (`"TERM"`, `"HUP"`, `"KILL"`) to `pid`; whether it was
/// delivered.
pub fn signal(pid: u32, sig: &str) -> bool {
    std::process::Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// Stops `daemon` as an operator would (SIGTERM) and waits for it, at
/// most [`WAIT`]; its exit status.
pub async fn terminate(daemon: &mut tokio::process::Child) -> std::process::ExitStatus {
    assert!(signal(daemon.id().expect("running"), "TERM"));
    tokio::time::timeout(WAIT, daemon.wait())
        .await
        .expect("stops in time")
        .expect("wait")
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let Some(pid) = self.0.id() else {
            return;
        };
        signal(pid, "TERM");
        for _ in 0..200 {
            if !matches!(self.0.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        // kill_on_drop ends it if SIGTERM did not.
    }
}

/// What a test of a reader that copies the trail elsewhere starts from:
/// the daemon's directory, its agent's cgroup, an upstream serving `names`
/// (HTTP/1.1, issued by `pki`), and the daemon's config — capturing that
/// upstream's port, its trail rotating at 64 KiB (so an outage spans a
/// rotation), `extra` sections after it.
pub async fn small_trail(
    tag: &str,
    pki: &crate::TestPki,
    names: &[&str],
    extra: &str,
) -> (
    crate::TempDir,
    crate::TestCgroup,
    crate::TlsUpstream,
    PathBuf,
) {
    let dir = crate::TempDir::new(tag);
    let cg = crate::TestCgroup::new(tag);
    let up = crate::TlsUpstream::start(
        pki.server_config(names, &[b"http/1.1"]),
        &["127.0.0.1:0".parse().unwrap()],
    )
    .await;
    let config = write_tls_config(dir.path(), cg.path(), up.port(), &pki.write_ca(dir.path()));
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[audit]\n", "[audit]\nrotate_bytes = 65536\n");
    std::fs::write(&config, text + extra).unwrap();
    (dir, cg, up, config)
}
