//! Processes, cgroups, ports and the machine: the plumbing every bench
//! configuration shares.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Stops the child when the bench ends, however it ends: SIGTERM first,
/// so an nginx master stops its workers (killed outright, it would leave
/// them running, orphaned), then SIGKILL if it lingers. airlock has its own
/// guard, which also checks it unpinned its programs.
pub(crate) struct Guard(pub(crate) Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if !terminate(&mut self.0, Duration::from_secs(5)) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Sends SIGTERM (std only offers SIGKILL) and waits up to `patience`;
/// true if the process exited in time.
pub(crate) fn terminate(child: &mut Child, patience: Duration) -> bool {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return true;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// The bench's capture cgroup, under the cgroup2 mount (findmnt finds it on
/// unified and hybrid hosts alike); removed at the end.
pub(crate) struct Cgroup(pub(crate) PathBuf);

impl Cgroup {
    pub(crate) fn create() -> anyhow::Result<Self> {
        let out = Command::new("findmnt")
            .args(["-n", "-t", "cgroup2", "-o", "TARGET"])
            .output()?;
        let mount = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .map(str::to_owned)
            .context("no cgroup2 mount")?;
        let dir = Path::new(&mount).join(format!("airlock-bench-{}", std::process::id()));
        std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self(dir))
    }

    /// A shell prefix that moves the shell into this cgroup before it execs
    /// the real command, so that command is captured from its first connect.
    pub(crate) fn enter(&self) -> String {
        format!("echo $$ > {}/cgroup.procs && ", self.0.display())
    }
}

/// `python3 -c script`, started inside `cgroup` when given (the caller adds
/// the script's arguments).
pub(crate) fn python(cgroup: Option<&Cgroup>, script: &str) -> std::process::Command {
    let enter = cgroup.map(Cgroup::enter).unwrap_or_default();
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(format!("{enter}exec python3 -c \"$@\""))
        .args(["python3", script]);
    cmd
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0.join("cgroup.kill"), "1");
        for _ in 0..100 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`.
pub(crate) fn wait_port(port: u16, what: &str, patience: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("{what} did not listen on port {port} within {patience:?}")
}

/// VmRSS of `pid`, KiB.
pub(crate) fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no VmRSS")
}

pub(crate) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "{cores} cores ({cpu}), Linux {}, load average at the end {load}",
        kernel.trim()
    )
}

pub(crate) fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd.status().with_context(|| format!("{cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?}: {status}");
    }
    Ok(())
}
