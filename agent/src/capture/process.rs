//! Who made a captured connection: the kernel's record (pid, uid, comm,
//! cgroup id) enriched from /proc while the process is still there.

use serde::Serialize;

use super::cgroup;

/// Longest command line kept; argv can be huge and is only for humans.
const MAX_CMDLINE_BYTES: usize = 4096;

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
}

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
        }
    }

    /// Adds exe, cmdline, ppid and cgroup path from /proc, and the user
    /// name from the user database. Blocking file reads: call from a
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
        self.ppid = std::fs::read_to_string(format!("{base}/stat"))
            .ok()
            .and_then(|s| parse_ppid(&s));
        if let Some(cg) = cgroup::cgroup_of(self.pid) {
            self.cgroup = cg;
        }
        self.user = crate::users::name_of(self.uid);
    }
}

/// NUL-separated argv as one space-separated line, capped, credentials
/// redacted (a `curl -H "Authorization: Bearer …"` must not leak here).
fn render_cmdline(raw: &[u8]) -> String {
    let raw = &raw[..raw.len().min(MAX_CMDLINE_BYTES)];
    let trimmed = raw.strip_suffix(&[0]).unwrap_or(raw);
    // Options and URLs by name, then anything that looks like a secret
    // (a key pasted into `--data`, a PEM in an argument).
    let joined = String::from_utf8_lossy(trimmed).replace('\0', " ");
    crate::mask::redact(&crate::redact::redact_cmdline(&joined))
}

/// Field 4 of /proc/PID/stat; the comm in field 2 may contain spaces and
/// parentheses, so parse after the last ')'.
fn parse_ppid(stat: &str) -> Option<u32> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ppid_survives_odd_comm() {
        assert_eq!(parse_ppid("123 (a) b (c)) S 77 123 123 0"), Some(77));
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
}
