//! What the kernel's own threads took of the CPUs during a run. On a
//! 2-vCPU VM a kernel thread that holds a CPU for milliseconds (here
//! `kdamond`, the memory monitor the VM's init starts) stalls whatever was
//! queued on that CPU, and an open-loop p99 sits right at the edge of such
//! stalls: the report says how much CPU they took beside its figures. (How
//! long each burst was needs the scheduler's tracepoints: `perf sched`, as
//! in docs/performance.md.)

use std::collections::BTreeMap;

/// Run time and times run of every kernel thread (children of kthreadd),
/// by thread id.
#[derive(Debug, Default)]
pub(crate) struct Snapshot(BTreeMap<u32, Thread>);

#[derive(Debug)]
struct Thread {
    name: String,
    run_ns: u64,
    runs: u64,
}

/// One kind of kernel thread over a run (names without their CPU or
/// worker suffix: `kworker`, `ksoftirqd`, `kdamond.0`).
#[derive(Debug)]
pub(crate) struct KernelLoad {
    pub(crate) name: String,
    pub(crate) ms: f64,
    pub(crate) runs: u64,
}

/// Adds one run's loads to a total over runs.
pub(crate) fn add(total: &mut Vec<KernelLoad>, run: Vec<KernelLoad>) {
    for k in run {
        match total.iter_mut().find(|t| t.name == k.name) {
            Some(t) => {
                t.ms += k.ms;
                t.runs += k.runs;
            }
            None => total.push(k),
        }
    }
    total.sort_by(|a, b| b.ms.total_cmp(&a.ms));
}

impl Snapshot {
    /// Reads `/proc`; a thread that cannot be read is left out (this is
    /// what the report says beside its figures, never a reason to fail).
    pub(crate) fn take() -> Self {
        let mut threads = BTreeMap::new();
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Self(threads);
        };
        for entry in dir.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            if let Some(thread) = read(pid) {
                threads.insert(pid, thread);
            }
        }
        Self(threads)
    }

    /// What each kind of kernel thread did between `self` and `later`,
    /// the busiest first; those under `min_ms` are left out.
    pub(crate) fn since(&self, later: &Snapshot, min_ms: f64) -> Vec<KernelLoad> {
        let mut by_name: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for (pid, now) in &later.0 {
            let (run_ns, runs) = self.0.get(pid).map_or((0, 0), |t| (t.run_ns, t.runs));
            let sum = by_name.entry(kind(&now.name)).or_default();
            sum.0 += now.run_ns.saturating_sub(run_ns);
            sum.1 += now.runs.saturating_sub(runs);
        }
        let mut out: Vec<KernelLoad> = by_name
            .into_iter()
            .map(|(name, (ns, runs))| KernelLoad {
                name: name.to_owned(),
                ms: ns as f64 / 1e6,
                runs,
            })
            .filter(|k| k.ms >= min_ms)
            .collect();
        out.sort_by(|a, b| b.ms.total_cmp(&a.ms));
        out
    }
}

/// A kernel thread's name without what tells instances apart.
fn kind(name: &str) -> &str {
    name.split(['/', ':']).next().unwrap_or(name)
}

/// `pid` if it is a kernel thread: its name and scheduler counters.
fn read(pid: u32) -> Option<Thread> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, rest) = stat.rsplit_once(')')?;
    let name = head.split_once('(')?.1.to_owned();
    // After the name: state, then the parent's pid.
    let ppid: u32 = rest.split_whitespace().nth(1)?.parse().ok()?;
    if ppid != 2 {
        return None;
    }
    let sched = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?;
    let mut fields = sched.split_whitespace().map(|f| f.parse::<u64>().ok());
    let run_ns = fields.next()??;
    let runs = fields.nth(1)??;
    Some(Thread { name, run_ns, runs })
}
