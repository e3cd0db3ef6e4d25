//! Which CI job a captured process runs in (`ci` on its records), read
//! from the job's runner and never from the process itself.
//!
//! A runner's worker (GitHub's `Runner.Worker`, Azure Pipelines'
//! `Agent.Worker`) starts each step as a child process with the job's
//! variables in its environment. airlock walks the caller's ancestry to
//! the **topmost** worker and reads the environment of the worker's child
//! on that path: the step. The agent is a descendant of that step: it can
//! set any variable in its own environment, or start a program it names
//! `Runner.Worker` with a forged step below it, but that fake sits below
//! the real worker, which is the one that counts; and it cannot rewrite
//! an ancestor's memory (the kernel's Yama `ptrace_scope` ≥ 1, the default
//! on Debian and Ubuntu, lets a process trace only its descendants). On a
//! host with no runner nothing is above a fake worker: `ci` is evidence on
//! runner hosts only (`docs/audit.md`).

use std::collections::HashMap;

use crate::core::CiJob;

use super::process::parse_stat;

/// Ancestors looked at, at most (a runner is a few levels up).
const MAX_DEPTH: usize = 64;
/// A variable's value kept at most; these are names and ids.
const MAX_VALUE: usize = 256;

/// A CI system airlock knows the worker and the variables of.
struct Provider {
    name: &'static str,
    /// The worker's process name (`comm`).
    worker: &'static str,
    /// `repository`, `workflow`, `run_id`, `job`, `actor`: the first of
    /// each list that the step's environment has.
    vars: [&'static [&'static str]; 5],
}

const PROVIDERS: &[Provider] = &[
    Provider {
        name: "github",
        worker: "Runner.Worker",
        vars: [
            &["GITHUB_REPOSITORY"],
            &["GITHUB_WORKFLOW"],
            &["GITHUB_RUN_ID"],
            &["GITHUB_JOB"],
            &["GITHUB_ACTOR"],
        ],
    },
    Provider {
        name: "azure-pipelines",
        worker: "Agent.Worker",
        vars: [
            &["BUILD_REPOSITORY_NAME"],
            &["BUILD_DEFINITIONNAME"],
            &["BUILD_BUILDID"],
            &["SYSTEM_JOBDISPLAYNAME", "AGENT_JOBNAME"],
            &["BUILD_REQUESTEDFOR"],
        ],
    },
];

/// The CI job `pid` runs in, if it descends from a runner's worker.
/// Blocking /proc reads: call from a blocking context.
pub(crate) fn job_of(pid: u32) -> Option<CiJob> {
    let chain = ancestry(pid, |p| {
        std::fs::read_to_string(format!("/proc/{p}/stat")).ok()
    });
    let (step, provider) = step_of(&chain)?;
    let environ = std::fs::read(format!("/proc/{step}/environ")).ok()?;
    Some(provider.job(&parse_environ(&environ)))
}

/// `pid` and its ancestors, nearest first, as (pid, comm), from each one's
/// /proc/PID/stat text (`read`).
fn ancestry(pid: u32, read: impl Fn(u32) -> Option<String>) -> Vec<(u32, String)> {
    let mut chain = Vec::new();
    let mut at = pid;
    while at > 1 && chain.len() < MAX_DEPTH {
        let Some(stat) = read(at) else { break };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            break;
        };
        chain.push((at, stat[open + 1..close].to_owned()));
        match parse_stat(&stat) {
            Some(s) => at = s.ppid,
            None => break,
        }
    }
    chain
}

/// The step: the child, on the path to the caller, of the topmost worker
/// in `chain` (nearest first). None if there is no worker, or the caller
/// is the worker itself.
fn step_of(chain: &[(u32, String)]) -> Option<(u32, &'static Provider)> {
    let (i, provider) =
        chain.iter().enumerate().rev().find_map(|(i, (_, comm))| {
            PROVIDERS.iter().find(|p| p.worker == comm).map(|p| (i, p))
        })?;
    let step = chain.get(i.checked_sub(1)?)?.0;
    Some((step, provider))
}

impl Provider {
    fn job(&self, env: &HashMap<&str, &str>) -> CiJob {
        let [repository, workflow, run_id, job, actor] = self.vars.map(|names| {
            names
                .iter()
                .find_map(|n| env.get(n))
                .map(|v| crate::core::truncate(v, MAX_VALUE).to_owned())
        });
        CiJob {
            provider: self.name,
            repository,
            workflow,
            run_id,
            job,
            actor,
        }
    }
}

/// `NAME=value` entries of a /proc/PID/environ (NUL-separated); entries
/// that are not UTF-8 or have no `=` are skipped. The first of a repeated
/// name wins, as `getenv` does.
fn parse_environ(raw: &[u8]) -> HashMap<&str, &str> {
    let mut env = HashMap::new();
    for entry in raw.split(|b| *b == 0) {
        if let Some((k, v)) = std::str::from_utf8(entry)
            .ok()
            .and_then(|e| e.split_once('='))
        {
            env.entry(k).or_insert(v);
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(names: &[&str]) -> Vec<(u32, String)> {
        // Nearest first: pid 100 is the caller, 101 its parent, …
        names
            .iter()
            .enumerate()
            .map(|(i, n)| (100 + i as u32, (*n).to_owned()))
            .collect()
    }

    #[test]
    fn the_step_is_the_topmost_workers_child() {
        let c = chain(&[
            "curl",
            "bash",
            "Runner.Worker",
            "Runner.Listener",
            "systemd",
        ]);
        let (step, p) = step_of(&c).unwrap();
        assert_eq!((step, p.name), (101, "github"));
        // A fake worker the agent started below itself does not count.
        let c = chain(&[
            "curl",
            "sh",
            "Runner.Worker",
            "copilot",
            "bash",
            "Runner.Worker",
            "runsvc.sh",
        ]);
        assert_eq!(step_of(&c).unwrap().0, 104);
        let c = chain(&["node", "Agent.Worker", "Agent.Listener"]);
        assert_eq!(
            step_of(&c).map(|(s, p)| (s, p.name)),
            Some((100, "azure-pipelines"))
        );
        // No worker, or the caller is the worker: no job.
        assert!(step_of(&chain(&["curl", "bash", "sshd"])).is_none());
        assert!(step_of(&chain(&["Runner.Worker", "Runner.Listener"])).is_none());
    }

    #[test]
    fn ancestry_follows_ppid_from_stat_and_stops() {
        let stats: HashMap<u32, &str> = [
            (30, "30 (curl) S 20 30 30 0"),
            (20, "20 (my (odd) name) S 10 20 20 0"),
            (10, "10 (Runner.Worker) S 1 10 10 0"),
        ]
        .into();
        let c = ancestry(30, |p| stats.get(&p).map(|s| (*s).to_owned()));
        let names: Vec<_> = c.iter().map(|(p, n)| (*p, n.as_str())).collect();
        assert_eq!(
            names,
            [(30, "curl"), (20, "my (odd) name"), (10, "Runner.Worker")]
        );
        // A loop (a pid that names itself) ends at the depth bound.
        let c = ancestry(5, |p| Some(format!("{p} (x) S {p} 0 0 0")));
        assert_eq!(c.len(), MAX_DEPTH);
    }

    #[test]
    fn the_jobs_variables_come_from_the_steps_environment() {
        let env = b"GITHUB_REPOSITORY=octo/app\0GITHUB_RUN_ID=42\0GITHUB_REPOSITORY=second\0\xff=x\0junk\0GITHUB_JOB=build\0";
        let job = PROVIDERS[0].job(&parse_environ(env));
        assert_eq!(job.provider, "github");
        assert_eq!(job.repository.as_deref(), Some("octo/app"));
        assert_eq!(job.run_id.as_deref(), Some("42"));
        assert_eq!(job.job.as_deref(), Some("build"));
        assert_eq!(job.workflow, None);
        let azure = PROVIDERS[1].job(&parse_environ(
            b"AGENT_JOBNAME=Build job\0BUILD_BUILDID=7\0",
        ));
        assert_eq!(azure.job.as_deref(), Some("Build job"));
        assert_eq!(azure.run_id.as_deref(), Some("7"));
    }
}
