//! airlock under test: its configuration, a guard that always stops it with
//! SIGTERM (with `capture.fail_mode = "closed"` a SIGKILL would leave its
//! programs pinned and the cgroup's connects failing), and the checks on
//! its audit trail that prove the bench measured the whole pipeline.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::jwt::{AUDIENCE, Issuer};
use super::sys::{Cgroup, terminate};

/// How long a graceful stop may take (drain, final audit record, unpin).
const STOP_PATIENCE: Duration = Duration::from_secs(20);
/// `capture.pin_dir`'s default: `closed` pins links in `{cgroup inode}/{pid}`.
const PIN_DIR: &str = "/sys/fs/bpf/airlock";

/// What differs between the airlock configurations the bench runs.
pub(crate) struct Settings<'a> {
    /// `audit.durability`.
    pub(crate) durability: &'a str,
    /// `capture.comm`; none captures every process in the cgroup.
    pub(crate) comm: Option<&'a str>,
    /// Validate bearer JWTs against this issuer.
    pub(crate) issuer: Option<&'a Issuer>,
    /// Mask responses (the shipped policies); off: one rule that allows
    /// everything with `response = "pass"`, to show what masking costs.
    pub(crate) masking: bool,
    /// Treat 127.0.0.1 as a model host (`[model] hosts`).
    pub(crate) model: bool,
    /// Body excerpts in the records; off: `audit.body_excerpt_bytes = 0`,
    /// to show what they cost.
    pub(crate) excerpts: bool,
}

impl<'a> Settings<'a> {
    /// The full pipeline for every process in the cgroup: masking on, no
    /// model hosts.
    pub(crate) fn full(durability: &'a str, issuer: Option<&'a Issuer>) -> Self {
        Self {
            durability,
            comm: None,
            issuer,
            masking: true,
            model: false,
            excerpts: true,
        }
    }
}

pub(crate) struct Airlock {
    child: Option<Child>,
    /// Where this airlock's links are pinned while it runs.
    pins: PathBuf,
    pub(crate) audit: PathBuf,
    pub(crate) ca_dir: PathBuf,
}

impl Airlock {
    /// Starts airlock capturing `ports` in `cgroup`, intercepting TLS to
    /// 127.0.0.1 and trusting the bench CA upstream, and waits for its
    /// `start` record. `name` keeps each configuration's files apart.
    pub(crate) fn start(
        bin: &Path,
        work: &Path,
        name: &str,
        cgroup: &Cgroup,
        ports: &[u16],
        settings: &Settings,
    ) -> anyhow::Result<Self> {
        let audit = work.join(format!("audit-{name}.jsonl"));
        let ca_dir = work.join("airlock-ca");
        let config = config(work, &audit, &ca_dir, cgroup, ports, settings)?;
        let path = work.join(format!("airlock-{name}.toml"));
        std::fs::write(&path, config)?;
        // The default log level, as shipped: the trail records every
        // exchange, so the log has no line per request to cost anything.
        let child = Command::new(bin)
            .args(["run", "--config"])
            .arg(&path)
            .spawn()
            .context("starting airlock")?;
        let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&cgroup.0)?);
        let pins = Path::new(PIN_DIR).join(format!("{inode}/{}", child.id()));
        let mut airlock = Self {
            child: Some(child),
            pins,
            audit,
            ca_dir,
        };
        airlock.wait_ready()?;
        Ok(airlock)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The time airlock's threads have run so far, to the nanosecond (the
    /// first field of `/proc/PID/task/*/schedstat`; a thread that exited
    /// meanwhile takes its share with it): fine enough to time one call.
    pub(crate) fn cpu(&self) -> anyhow::Result<Duration> {
        let mut ns = 0u64;
        for task in std::fs::read_dir(format!("/proc/{}/task", self.pid()))? {
            let stat = std::fs::read_to_string(task?.path().join("schedstat")).unwrap_or_default();
            ns += stat
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
        Ok(Duration::from_nanos(ns))
    }

    /// Waits for the `start` record; fails at once if airlock exits first.
    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!("airlock exited before it started: {status}");
            }
            if std::fs::read_to_string(&self.audit).is_ok_and(|t| t.contains("\"start\"")) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("airlock did not start within 20 s")
    }

    /// Stops airlock gracefully (SIGTERM: drain, unpin, `stop` record) and
    /// checks it left no pinned link behind. Returns the CPU time airlock
    /// used until then (all threads, user + system).
    pub(crate) fn stop(mut self) -> anyhow::Result<Duration> {
        let mut child = self.child.take().context("already stopped")?;
        let cpu = cpu_time(child.id())?;
        if !terminate(&mut child, STOP_PATIENCE) {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "airlock ignored SIGTERM for {STOP_PATIENCE:?}; killed (its links may stay pinned)"
            );
        }
        // The next configuration's traffic must not meet a dead redirect.
        if self.pins.exists() {
            bail!(
                "airlock stopped but left its links pinned in {}",
                self.pins.display()
            );
        }
        Ok(cpu)
    }
}

/// User + system CPU time of `pid` and its children (nginx's master and
/// workers) so far.
pub(crate) fn tree_cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let mut total = cpu_time(pid)?;
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            total += cpu_time(child).unwrap_or_default();
        }
    }
    Ok(total)
}

/// User + system CPU time of a process so far (`/proc/PID/stat` fields 14
/// and 15, in USER_HZ clock ticks: 1/100 s on x86-64 and arm64).
fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces: fields are counted after its ')'.
    let rest = stat.rsplit_once(')').context("/proc/PID/stat")?.1;
    let field = |n: usize| -> anyhow::Result<u64> {
        Ok(rest
            .split_whitespace()
            .nth(n - 3)
            .context("/proc/PID/stat field")?
            .parse()?)
    };
    Ok(Duration::from_millis((field(14)? + field(15)?) * 10))
}

impl Drop for Airlock {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take()
            && !terminate(&mut child, STOP_PATIENCE)
        {
            eprintln!(
                "xtask bench: airlock ignored SIGTERM; killing it (its links may stay pinned)"
            );
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn config(
    work: &Path,
    audit: &Path,
    ca_dir: &Path,
    cgroup: &Cgroup,
    ports: &[u16],
    s: &Settings,
) -> anyhow::Result<String> {
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    // Port 0: other airlocks (tests, demo) may be running on this host.
    let mut c = format!(
        "[capture]\ncgroup = {:?}\nports = [{}]\n",
        cgroup.0,
        ports.join(", ")
    );
    if let Some(comm) = s.comm {
        writeln!(c, "comm = [{comm:?}]")?;
    }
    write!(
        c,
        "[proxy]\nlisten = \"127.0.0.1:0\"\nlisten6 = \"[::1]:0\"\n\
         intercept = [\"127.0.0.1\", \"*.{}\"]\n\
         [tls]\nca_dir = {ca_dir:?}\npublic_dir = {:?}\nupstream_roots = [{:?}]\n\
         [audit]\npath = {audit:?}\ndurability = \"{}\"\n{}\
         [masking]\nkey_file = {:?}\n[admin]\nsocket = {:?}\n",
        super::handshakes::DOMAIN,
        work.join("airlock-public"),
        work.join("ca.crt"),
        s.durability,
        if s.excerpts {
            ""
        } else {
            "body_excerpt_bytes = 0\n"
        },
        work.join("masking.key"),
        work.join("admin.sock"),
    )?;
    if s.model {
        writeln!(c, "[model]\nhosts = [\"127.0.0.1\"]")?;
    }
    if !s.masking {
        let dir = work.join("policies-pass");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join("00-pass.toml"),
            "[[rule]]\nname = \"bench-pass\"\naction = \"allow\"\nresponse = \"pass\"\n\
             reason = \"bench: responses relayed unmasked\"\n",
        )?;
        writeln!(c, "[policy]\ndir = {dir:?}")?;
    }
    if let Some(issuer) = s.issuer {
        write!(
            c,
            "[[identity.issuer]]\nissuer = \"{}\"\naudiences = [\"{AUDIENCE}\"]\njwks_uri = \"{}\"\n",
            issuer.issuer(),
            issuer.jwks_uri()
        )?;
    }
    Ok(c)
}

/// What the audit trail says about the requests of one configuration.
#[derive(Debug, Default)]
pub(crate) struct Trail {
    pub(crate) records: usize,
    /// Request-phase HTTP records: one per request airlock forwarded.
    pub(crate) requests: usize,
    pub(crate) verified: usize,
    /// airlock's CPU time over the whole configuration's run.
    pub(crate) cpu: Duration,
}

impl Trail {
    /// airlock's CPU time per request it forwarded.
    pub(crate) fn cpu_per_request(&self) -> Duration {
        self.cpu / u32::try_from(self.requests.max(1)).unwrap_or(u32::MAX)
    }
}

/// Reads the whole trail (rotated files too) and fails unless every
/// request it records carried a verified identity: a bench of the full
/// pipeline that did not validate the token measured something else. The
/// rotated files (gigabytes after a full run) are removed once read.
pub(crate) fn check_trail(audit: &Path) -> anyhow::Result<Trail> {
    use std::io::BufRead;
    let dir = audit.parent().context("audit dir")?;
    let name = audit.file_name().context("audit name")?.to_string_lossy();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{name}.")))
        })
        .collect();
    files.sort();
    let rotated = files.len();
    files.push(audit.to_owned());
    let mut trail = Trail::default();
    for file in &files {
        let reader = std::io::BufReader::new(
            std::fs::File::open(file).with_context(|| format!("reading {}", file.display()))?,
        );
        for line in reader.lines() {
            trail.tally(&line?);
        }
    }
    for file in &files[..rotated] {
        let _ = std::fs::remove_file(file);
    }
    if trail.requests == 0 {
        bail!(
            "{}: no HTTP request recorded: nothing was intercepted",
            audit.display()
        );
    }
    if trail.verified != trail.requests {
        bail!(
            "{}: {} of {} requests had no verified identity",
            audit.display(),
            trail.requests - trail.verified,
            trail.requests
        );
    }
    Ok(trail)
}

impl Trail {
    fn tally(&mut self, line: &str) {
        self.records += 1;
        if line.contains("\"kind\":\"http\"") && line.contains("\"phase\":\"request\"") {
            self.requests += 1;
            if line.contains("\"verified\":true") {
                self.verified += 1;
            } else if self.requests - self.verified == 1 {
                eprintln!("xtask bench: a request record without a verified identity:\n{line}");
            }
        }
    }
}
