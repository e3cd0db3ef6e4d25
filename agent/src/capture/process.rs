//! Who made a captured connection: the kernel's record (pid, uid, comm,
//! cgroup id) enriched from /proc while the process is still there, and
//! kept per run of a program ([`ProcessCache`]) so a process opening many
//! connections is read once.

use crate::core::{Agent, Image, ProcessInfo};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::cgroup;
use crate::core::lock;

/// Longest command line kept; argv can be huge and is only for humans.
const MAX_CMDLINE_BYTES: usize = 4096;
/// How long what /proc said about a process is reused: its parent and
/// cgroup can change without an exec, and its user's name with the user
/// database.
const CACHE_FOR: Duration = Duration::from_secs(30);
/// Processes remembered at most.
const CACHE_ENTRIES: usize = 4096;

impl ProcessInfo {
    /// The kernel's view only; no /proc access.
    pub fn from_kernel(orig: &airlock_ebpf::Orig) -> Self {
        let comm_len = orig
            .comm
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(orig.comm.len());
        Self {
            pid: orig.tgid,
            tid: orig.pid,
            ppid: None,
            uid: orig.uid,
            user: None,
            gid: orig.gid,
            comm: String::from_utf8_lossy(&orig.comm[..comm_len]).into_owned(),
            exe: None,
            cmdline: None,
            cgroup: String::new(),
            cgroup_id: orig.cgroup_id,
            netns: (orig.netns != 0).then_some(orig.netns),
            // `start` and `exe` are read from the host in `enrich`.
            agent: (orig.agent != 0).then(|| Agent {
                pid: orig.agent,
                start: String::new(),
                exe: None,
                started: orig.agent_start,
            }),
            image: Image {
                started: orig.start_time,
                execs: orig.exec_id,
            },
            ci: None,
        }
    }

    /// Adds exe, cmdline, ppid and cgroup path from /proc, the user name
    /// from the user database, and the CI job (`capture::ci`). Blocking file reads: call from a
    /// blocking context. A process that already exited keeps the kernel's
    /// fields only.
    pub fn enrich(&mut self) {
        let base = format!("/proc/{}", self.pid);
        self.exe = std::fs::read_link(format!("{base}/exe"))
            .ok()
            .map(|p| p.to_string_lossy().into_owned());
        self.cmdline = std::fs::read(format!("{base}/cmdline"))
            .ok()
            .filter(|b| !b.is_empty())
            .map(|b| render_cmdline(&b));
        self.ppid = stat(self.pid).map(|s| s.ppid);
        if let Some(cg) = cgroup::cgroup_of(self.pid) {
            self.cgroup = cg;
        }
        self.user = crate::users::name_of(self.uid);
        self.ci = super::ci::job_of(self.pid).map(Arc::new);
        if let Some(agent) = &mut self.agent {
            agent.start = started_at(agent.started);
            agent.exe = if agent.pid == self.pid {
                self.exe.clone()
            } else {
                agent_exe(agent)
            };
        }
    }
}

/// The agent's executable, if the process with its pid is still that
/// run (a reused pid is another program).
fn agent_exe(agent: &Agent) -> Option<String> {
    let started = stat(agent.pid)?.started?;
    (started == agent.started / NS_PER_TICK).then_some(())?;
    let exe = std::fs::read_link(format!("/proc/{}/exe", agent.pid)).ok()?;
    Some(exe.to_string_lossy().into_owned())
}

/// /proc reports start times in clock ticks of 1/100 s (`USER_HZ`); the
/// kernel's records give nanoseconds.
pub(super) const NS_PER_TICK: u64 = 10_000_000;

/// A start time in ns since boot as wall-clock time (RFC 3339, UTC, to
/// the 1/100 s /proc gives). The boot time is read once (`btime` in
/// /proc/stat, whole seconds): every record of a run of airlock then says
/// the same `start` for the same process.
fn started_at(ns_since_boot: u64) -> String {
    static BOOT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let boot = *BOOT.get_or_init(|| {
        std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("btime "))
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(0)
    });
    let ticks = ns_since_boot / NS_PER_TICK;
    let at = std::time::UNIX_EPOCH
        + Duration::from_secs(boot)
        + Duration::from_millis(ticks * (NS_PER_TICK / 1_000_000));
    humantime::format_rfc3339_millis(at).to_string()
}

/// What the kernel's record must match for an enrichment to be reused:
/// the same run of the same program, with the same credentials, in the
/// same cgroup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    pid: u32,
    image: Image,
    uid: u32,
    gid: u32,
    cgroup_id: u64,
}

impl Key {
    fn of(p: &ProcessInfo) -> Self {
        Self {
            pid: p.pid,
            image: p.image,
            uid: p.uid,
            gid: p.gid,
            cgroup_id: p.cgroup_id,
        }
    }
}

/// Enriched callers, by [`Key`], for [`CACHE_FOR`].
#[derive(Debug, Default)]
pub(crate) struct ProcessCache {
    entries: Mutex<HashMap<Key, (Instant, Arc<ProcessInfo>)>>,
}

impl ProcessCache {
    /// `kernel` (the kernel's fields only) enriched: from the cache when
    /// the same run of the same program was enriched lately, else from
    /// /proc on a blocking thread.
    pub(crate) async fn enrich(&self, kernel: ProcessInfo) -> ProcessInfo {
        let key = Key::of(&kernel);
        // A record from a kernel that gave no start time cannot tell runs
        // apart: always read.
        let cacheable = kernel.image.started != 0;
        if cacheable && let Some(known) = self.get(&key) {
            // The thread and the name are this connect()'s: a process can
            // rename itself (prctl) without an exec, and policy matches on
            // the name.
            return ProcessInfo {
                tid: kernel.tid,
                comm: kernel.comm,
                ..(*known).clone()
            };
        }
        let enriched = tokio::task::spawn_blocking(move || {
            let mut p = kernel;
            p.enrich();
            p
        })
        .await
        .unwrap_or_default();
        // A process gone before it was read is not worth remembering.
        if cacheable && enriched.exe.is_some() {
            self.put(key, enriched.clone());
        }
        enriched
    }

    fn get(&self, key: &Key) -> Option<Arc<ProcessInfo>> {
        let entries = lock(&self.entries);
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < CACHE_FOR)
            .map(|(_, p)| p.clone())
    }

    fn put(&self, key: Key, p: ProcessInfo) {
        let mut entries = lock(&self.entries);
        if entries.len() >= CACHE_ENTRIES {
            entries.retain(|_, (at, _)| at.elapsed() < CACHE_FOR);
            if entries.len() >= CACHE_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now(), Arc::new(p)));
    }
}

/// NUL-separated argv as one space-separated line, capped, credentials
/// redacted (a `curl -H "Authorization: Bearer …"` must not leak here).
pub(crate) fn render_cmdline(raw: &[u8]) -> String {
    let raw = &raw[..raw.len().min(MAX_CMDLINE_BYTES)];
    let trimmed = raw.strip_suffix(&[0]).unwrap_or(raw);
    // Options and URLs by name, then anything that looks like a secret
    // (a key pasted into `--data`, a PEM in an argument).
    let joined = String::from_utf8_lossy(trimmed).replace('\0', " ");
    crate::mask::redact(&crate::redact::redact_cmdline(&joined))
}

/// What airlock reads of /proc/PID/stat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stat {
    /// Field 4.
    pub ppid: u32,
    /// Field 22: when the process started, clock ticks (1/100 s) since
    /// boot (`start_boottime`); `None` in a text cut before it.
    pub started: Option<u64>,
}

/// Fields 4 and 22 of a /proc/PID/stat text (counted after the comm's
/// last ')', since the comm may hold spaces and parentheses).
pub(crate) fn parse_stat(stat: &str) -> Option<Stat> {
    let mut rest = stat[stat.rfind(')')? + 1..].split_whitespace();
    let ppid = rest.nth(1)?.parse().ok()?;
    let started = rest.nth(17).and_then(|t| t.parse().ok());
    Some(Stat { ppid, started })
}

/// /proc/`pid`/stat read now; `None` once the process is gone.
pub(crate) fn stat(pid: u32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The real uid of `pid` (the first `Uid:` field of /proc/PID/status).
pub(crate) fn real_uid(pid: u32) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ppid_survives_odd_comm() {
        let cut = parse_stat("123 (a) b (c)) S 77 123 123 0").unwrap();
        assert_eq!((cut.ppid, cut.started), (77, None));
    }

    #[test]
    fn this_process_reads_as_itself() {
        let me = stat(std::process::id()).unwrap();
        assert_eq!(me.ppid, std::os::unix::process::parent_id());
        assert!(me.started.is_some_and(|t| t > 0));
        assert_eq!(stat(u32::MAX), None);
        let status = std::fs::metadata("/proc/self").unwrap();
        assert_eq!(
            real_uid(std::process::id()),
            Some(std::os::unix::fs::MetadataExt::uid(&status))
        );
    }

    #[test]
    fn cmdline_is_space_joined() {
        assert_eq!(
            render_cmdline(b"curl\0-sS\0https://x/\0"),
            "curl -sS https://x/"
        );
    }

    #[test]
    fn kernel_fields_and_own_process_enrichment() {
        let orig = airlock_ebpf::Orig {
            tgid: std::process::id(),
            pid: std::process::id(),
            uid: 7,
            comm: *b"tester\0\0\0\0\0\0\0\0\0\0",
            ..Default::default()
        };
        let mut p = ProcessInfo::from_kernel(&orig);
        assert_eq!(p.comm, "tester");
        assert_eq!(p.uid, 7);
        p.enrich();
        let exe = std::env::current_exe().unwrap();
        assert_eq!(p.exe.as_deref(), exe.to_str());
        assert!(p.ppid.is_some());
        assert!(p.cmdline.is_some());
    }

    #[test]
    fn the_agent_is_named_by_its_run() {
        let (me, parent) = (std::process::id(), std::os::unix::process::parent_id());
        let ticks = stat(parent).unwrap().started.unwrap();
        let orig = |agent, ticks: u64| airlock_ebpf::Orig {
            tgid: me,
            pid: me,
            agent,
            agent_start: ticks * NS_PER_TICK + 123,
            ..Default::default()
        };
        let mut p = ProcessInfo::from_kernel(&orig(parent, ticks));
        p.enrich();
        let agent = p.agent.unwrap();
        assert_eq!(agent.pid, parent);
        let exe = std::fs::read_link(format!("/proc/{parent}/exe")).unwrap();
        assert_eq!(agent.exe.as_deref(), exe.to_str());
        let start = humantime::parse_rfc3339(&agent.start).unwrap();
        let now = std::time::SystemTime::now();
        assert!(start <= now, "{} is in the future", agent.start);
        // The same start, however often it is said.
        let mut again = ProcessInfo::from_kernel(&orig(parent, ticks));
        again.enrich();
        assert_eq!(again.agent.unwrap().start, agent.start);

        // Another run under that pid: its executable is not the agent's.
        let mut reused = ProcessInfo::from_kernel(&orig(parent, ticks + 1));
        reused.enrich();
        assert_eq!(reused.agent.unwrap().exe, None);
        // Selected by itself: its own executable, read once.
        let mut own = ProcessInfo::from_kernel(&orig(me, stat(me).unwrap().started.unwrap()));
        own.enrich();
        assert_eq!(own.agent.unwrap().exe, own.exe);
        // No selectors: no agent.
        let mut none = ProcessInfo::from_kernel(&orig(0, 0));
        none.enrich();
        assert_eq!(none.agent, None);
    }

    #[tokio::test]
    async fn the_cache_serves_one_run_of_a_program_and_reads_again_after_exec() {
        let kernel = ProcessInfo {
            pid: std::process::id(),
            tid: 1,
            comm: "tester".into(),
            image: Image {
                started: 42,
                execs: 7,
            },
            ..Default::default()
        };
        let cache = ProcessCache::default();
        // What an earlier connection of this run found.
        cache.put(
            Key::of(&kernel),
            ProcessInfo {
                exe: Some("/what/was/read/before".into()),
                ..kernel.clone()
            },
        );
        let again = cache
            .enrich(ProcessInfo {
                tid: 2,
                comm: "renamed".into(),
                ..kernel.clone()
            })
            .await;
        assert_eq!(again.exe.as_deref(), Some("/what/was/read/before"));
        assert_eq!(again.tid, 2, "the thread is this connection's");
        assert_eq!(again.comm, "renamed", "and so is the name");
        // The same pid after an exec, or under another uid: read afresh.
        let exe = std::env::current_exe().unwrap();
        for changed in [
            ProcessInfo {
                image: Image {
                    started: 42,
                    execs: 8,
                },
                ..kernel.clone()
            },
            ProcessInfo {
                uid: 1000,
                ..kernel.clone()
            },
        ] {
            let fresh = cache.enrich(changed).await;
            assert_eq!(fresh.exe.as_deref(), exe.to_str());
        }
    }
}
