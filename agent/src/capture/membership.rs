//! Whether a given process is one airlock captures, asked after the fact:
//! the admin API refuses decisions from the agent (or anything it started),
//! whatever uid it runs as. Inside a capture cgroup that is not the whole
//! host, every process counts; at the cgroup2 root, processes selected by
//! name (`capture.comm`, an ancestor's name with `follow_children`) and
//! the descendants the kernel tracks. With neither — the whole host,
//! selected by uid or not at all — the agent cannot be told from the
//! developer, and [`Membership::tells_agent_apart`] says so.

use std::sync::{Arc, Mutex};

use super::cgroup::cgroup_of;
use super::process::{real_uid, stat};
use super::{OrigDstTable, Scope, Selectors};
use crate::config::CaptureConfig;
use crate::core::lock;

/// Answers "is this process captured?" from the capture in force.
#[derive(Clone, Debug)]
pub(crate) struct Membership {
    /// The capture cgroups; `None`: the root itself, the whole host.
    scope: Option<Scope>,
    table: Arc<OrigDstTable>,
    selectors: Arc<Mutex<Selectors>>,
    /// airlock itself: never the agent, and never anyone's reason to be.
    self_pid: u32,
}

impl Membership {
    pub(super) fn new(
        scope: Scope,
        table: Arc<OrigDstTable>,
        selectors: Arc<Mutex<Selectors>>,
    ) -> Self {
        Self {
            scope: Some(scope).filter(|s| !s.whole_host()),
            table,
            selectors,
            self_pid: std::process::id(),
        }
    }

    /// Whether captured processes can be told from the others at all.
    pub(crate) fn tells_agent_apart(&self) -> bool {
        self.scope.is_some() || self.selection().is_some_and(|c| !c.comm.is_empty())
    }

    fn selection(&self) -> Option<CaptureConfig> {
        lock(&self.selectors).current().cloned()
    }

    /// Why process `pid` is one airlock captures, or `None` if it is not
    /// (or airlock cannot tell). Reads /proc: a few small files.
    pub(crate) fn why_captured(&self, pid: u32) -> Option<String> {
        if let Some(scope) = &self.scope {
            let Some(cg) = cgroup_of(pid) else {
                return Some("the process is gone: its cgroup cannot be checked".into());
            };
            return scope
                .contains(&cg)
                .then(|| format!("it runs in the capture cgroup {cg}"));
        }
        let selection = self.selection()?;
        if selection.comm.is_empty() {
            return None;
        }
        if selection.follow_children && self.table.is_tracked(pid) {
            return Some("it descends from a process capture.comm selects".into());
        }
        let depth = if selection.follow_children {
            selection.follow_depth
        } else {
            0
        };
        let mut at = pid;
        for step in 0..=depth {
            if at <= 1 {
                break;
            }
            if at != self.self_pid
                && let Some((comm, uid)) = comm_and_uid(at)
            {
                let named = selection.comm.contains(&comm);
                let uid_ok = selection.uid.is_empty() || selection.uid.contains(&uid);
                if named && uid_ok {
                    return Some(if step == 0 {
                        format!("capture.comm selects it ({comm})")
                    } else {
                        format!("capture.comm selects its ancestor {comm} (pid {at})")
                    });
                }
            }
            let Some(parent) = stat(at) else {
                break;
            };
            at = parent.ppid;
        }
        None
    }
}

/// The kernel's name for `pid` and its real uid.
fn comm_and_uid(pid: u32) -> Option<(String, u32)> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some((comm.trim_end_matches('\n').to_owned(), real_uid(pid)?))
}
