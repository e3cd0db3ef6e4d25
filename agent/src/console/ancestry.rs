//! The processes above a held request's caller, read from /proc when the
//! list changes: the held view names the caller and its parent's pid, and
//! an approver wants to see what started it (the agent, a shell, a CI
//! step). The chain climbs while the parents share the caller's cgroup —
//! the agent's own tree — and ends with the first one outside it (what
//! started the agent), or after [`MAX_DEPTH`]: the host's processes above
//! that are nobody's business here. Command lines are redacted and masked
//! as the trail's are, and cut short; the files read are world-readable.
//! The chain is the processes' parents now — a process re-parented after
//! its parent exited shows its new one.

use serde_json::{Value, json};

use crate::capture::cgroup::cgroup_of;
use crate::capture::process::{render_cmdline, stat};

/// Parents shown at most (an agent's tool is rarely deeper than this).
const MAX_DEPTH: usize = 8;
/// A parent's command line is cut here: it is a pointer, the trail has
/// the whole.
const MAX_CMDLINE: usize = 240;

/// The parents of process `pid`, nearest first: those in its cgroup and
/// the first outside it, never pid 1: `{pid, comm, cmdline}` each. Empty
/// when `pid` is gone.
pub(super) fn parents(pid: u32) -> Vec<Value> {
    let mut out = Vec::new();
    let (Some(mut at), Some(home)) = (stat(pid).map(|s| s.ppid), cgroup_of(pid)) else {
        return out;
    };
    while at > 1 && out.len() < MAX_DEPTH {
        let base = format!("/proc/{at}");
        let comm = std::fs::read_to_string(format!("{base}/comm"))
            .map(|c| c.trim_end_matches('\n').to_owned())
            .unwrap_or_default();
        let cmdline = std::fs::read(format!("{base}/cmdline"))
            .ok()
            .filter(|c| !c.is_empty())
            .map(|c| {
                let c = render_cmdline(&c);
                match crate::core::truncate(&c, MAX_CMDLINE) {
                    short if short.len() < c.len() => format!("{short}…"),
                    _ => c,
                }
            });
        out.push(json!({ "pid": at, "comm": comm, "cmdline": cmdline }));
        let Some(next) = stat(at) else {
            break;
        };
        if cgroup_of(at).is_none_or(|cg| cg != home) {
            break;
        }
        at = next.ppid;
    }
    out
}

/// Each held request with `process.parents` added.
pub(super) fn add_parents(list: &mut [Value]) {
    for v in list {
        if let Some(pid) = v["process"]["pid"]
            .as_u64()
            .and_then(|p| u32::try_from(p).ok())
        {
            v["process"]["parents"] = Value::from(parents(pid));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_its_parents_named() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let chain = parents(child.id());
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(chain[0]["pid"], std::process::id(), "{chain:?}");
        assert!(!chain[0]["comm"].as_str().unwrap().is_empty(), "{chain:?}");
        assert!(chain.len() <= MAX_DEPTH);
        // `sleep` shares this process's cgroup: the chain climbs past it
        // only while the cgroup stays the same, and never to pid 1.
        let home = cgroup_of(std::process::id()).unwrap();
        for p in &chain[..chain.len() - 1] {
            let pid = u32::try_from(p["pid"].as_u64().unwrap()).unwrap();
            assert_eq!(cgroup_of(pid).as_deref(), Some(home.as_str()), "{chain:?}");
        }
        assert!(chain.iter().all(|p| p["pid"] != 1));
        assert!(parents(u32::MAX - 1).is_empty());
    }
}
