//! The local process behind a captured connection: `process` in every
//! record, and what policy rules about programs and users match.

use serde::Serialize;

/// The caller of a captured connection, as audit records carry it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ProcessInfo {
    /// Process id (the kernel's tgid).
    pub pid: u32,
    /// Thread that called connect().
    pub tid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ppid: Option<u32>,
    pub uid: u32,
    /// The local user `uid` names (`/etc/passwd`), when it names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub gid: u32,
    pub comm: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmdline: Option<String>,
    /// cgroup v2 path (`/a/b`) when the process is still there, else empty.
    pub cgroup: String,
    pub cgroup_id: u64,
    /// The network namespace (its cookie) when it is not airlock's: a
    /// container's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netns: Option<u64>,
    /// The selected process whose selection brought this one under
    /// capture (itself, or the ancestor selected): which agent session
    /// the call belongs to. Absent when there are no selectors (the whole
    /// cgroup is captured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<Agent>,
    /// Which run of which program this is (not recorded: it only keys the
    /// cache).
    #[serde(skip)]
    pub image: Image,
    /// The CI job the process runs in: recorded beside `process` as `ci`
    /// (`ConnEnds`), not inside it.
    #[serde(skip)]
    pub ci: Option<std::sync::Arc<CiJob>>,
}

/// The CI job a process runs in, as the job's runner started it: `ci` on
/// the records of its connections. Read from the job step's environment
/// (`capture::ci`), never from the calling process's own.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CiJob {
    /// `github` (GitHub Actions) or `azure-pipelines`.
    pub provider: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// `process.agent`: one run of the process an agent session started
/// from — pid and start time name it on its host, whatever it exec'd.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Agent {
    pub pid: u32,
    /// When it started, RFC 3339 in UTC, to the kernel's 1/100 s:
    /// the boot time plus the kernel's `start_boottime` (filled with the
    /// rest of what is read from the host, once per run of a program).
    pub start: String,
    /// Its executable, while it still runs (and is that run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    /// `start_boottime`, ns: how the kernel names the run (not recorded).
    #[serde(skip)]
    pub started: u64,
}

/// A process's start and exec count, as the kernel gave them at connect():
/// a pid reused by another process, or a process that exec'd another
/// program, has a different one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Image {
    /// ns since boot.
    pub started: u64,
    pub execs: u64,
}
