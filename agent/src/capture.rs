//! The eBPF side of the data path: load the capture object, fill its maps
//! from the config, attach it to the capture cgroup, and hand the proxy the
//! original destination and caller of each redirected connection.

pub(crate) mod cgroup;
mod events;
mod membership;
mod pin;
mod privileges;
pub(crate) mod process;
mod selectors;
mod table;
mod tracking;

pub(crate) use events::{EventCounts, EventReader};
pub(crate) use membership::Membership;
pub(crate) use process::ProcessCache;
pub(crate) use table::Captured;
pub use table::OrigDstTable;

use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;

use airlock_ebpf::{maps, programs};
use aya::maps::{HashMap, RingBuf};
use aya::programs::{
    BtfTracePoint, CgroupAttachMode, CgroupSockAddr, FExit, ProgramError, SockOps,
};
use aya::{Ebpf, EbpfLoader};

use crate::config::{CaptureConfig, FailMode};
use pin::Pins;
use selectors::Remember;
pub(crate) use selectors::Selectors;

/// Why capture could not start; each names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error(
        "not permitted to load eBPF programs (missing {0}): run as root, or grant \
         CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN and CAP_SYS_ADMIN"
    )]
    NotPermitted(String),
    #[error(
        "no cgroup2 filesystem is mounted (checked /proc/self/mountinfo); airlock needs cgroup v2"
    )]
    NoCgroup2,
    #[error("{0} is not a cgroup v2 directory (no cgroup.procs in it)")]
    NotACgroup(PathBuf),
    #[error("{what}: {io_error}")]
    Io {
        what: &'static str,
        #[source]
        io_error: std::io::Error,
    },
    #[error("loading the eBPF object: {0}")]
    Object(#[from] aya::EbpfError),
    #[error("eBPF map {map}: {source}")]
    Map {
        map: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
    #[error(
        "the kernel refused program {program} (needs Linux >= 5.8 with BTF, cgroup \
         sock_addr and sockops hooks): {source}"
    )]
    Program {
        program: &'static str,
        #[source]
        source: ProgramError,
    },
    #[error(
        "{} is not on a bpffs and none could be mounted: mount one (mount -t bpf bpf /sys/fs/bpf) \
         or set capture.fail_mode = \"open\"", .0.display()
    )]
    NoBpffs(PathBuf),
    #[error("pinning {program} for fail_mode = \"closed\": {why}")]
    Pin { program: &'static str, why: String },
    #[error("attaching {program} to {}: {source}", cgroup.display())]
    Attach {
        program: &'static str,
        cgroup: PathBuf,
        #[source]
        source: ProgramError,
    },
}

/// What the programs need to know beyond the config: the addresses the
/// proxy actually bound and airlock's own process (never captured).
#[derive(Clone, Debug)]
pub(crate) struct Targets {
    pub listen4: SocketAddr,
    pub listen6: Option<SocketAddr>,
    pub self_tgid: u32,
}

/// Loaded and attached programs; dropping it detaches and unloads them.
#[derive(Debug)]
pub(crate) struct Capture {
    /// With `fail_mode = "closed"`, the links (pinned in bpffs); dropped —
    /// unpinned, detached — first.
    pins: Option<Pins>,
    /// Owns the programs and (with `fail_mode = "open"`) their links:
    /// detached when dropped.
    ebpf: Ebpf,
    cgroup: PathBuf,
    table: std::sync::Arc<OrigDstTable>,
    events: Option<EventReader>,
    event_counts: std::sync::Arc<EventCounts>,
    /// Who is captured; shared with the config reload.
    selectors: std::sync::Arc<std::sync::Mutex<Selectors>>,
}

/// Programs attach through bpf links, which the kernel always treats as
/// multi-attach: airlock coexists with other cgroup programs (`Single` only
/// means "no attach flags" on the link path).
///
/// Attach order: getpeername and sockops before connect, so no redirected
/// socket ever exists without the programs that complete its story.
const SOCK_ADDR_PROGRAMS: &[&str] = &[
    programs::GETPEERNAME4,
    programs::GETPEERNAME6,
    programs::SENDMSG4,
    programs::SENDMSG6,
    programs::CONNECT4,
    programs::CONNECT6,
];

impl Capture {
    /// Loads the object, fills its maps and attaches every program to the
    /// configured cgroup (default: the cgroup2 root).
    pub(crate) fn attach(config: &CaptureConfig, targets: &Targets) -> Result<Self, CaptureError> {
        let cgroup = preflight(config)?;
        let cgroup_fd = File::open(&cgroup).map_err(|io_error| CaptureError::Io {
            what: "open capture cgroup",
            io_error,
        })?;

        let mut pins = match config.fail_mode {
            FailMode::Closed => Some(Pins::prepare(&config.pin_dir, &cgroup)?),
            FailMode::Open => None,
        };
        let mut loader = EbpfLoader::new();
        loader.map_max_entries(maps::TRACKED, config.max_tracked);
        // fail_mode = "closed": the descendants map is pinned too, and an
        // earlier airlock's is reused (checked below).
        let tracked_pin = match pins.as_mut() {
            Some(p) => Some(p.map_path(maps::TRACKED)?),
            None => None,
        };
        if let Some(path) = &tracked_pin {
            tracking::keep_compatible(path, config.max_tracked);
            loader.map_pin_path(maps::TRACKED, path.as_path());
        }
        let reused = tracked_pin.as_ref().is_some_and(|p| p.exists());
        let mut ebpf = loader.load(airlock_ebpf::CAPTURE_OBJECT)?;
        let mut selectors = Selectors::take(&mut ebpf, targets.clone())?;
        selectors.apply(config)?;
        let remember = attach_process_tracking(&mut ebpf, pins.as_mut())?;
        selectors.remember_verdicts(remember)?;

        let sockops: &mut SockOps = program(&mut ebpf, programs::SOCKOPS)?;
        sockops.load().map_err(|source| CaptureError::Program {
            program: programs::SOCKOPS,
            source,
        })?;
        let id = sockops
            .attach(&cgroup_fd, CgroupAttachMode::Single)
            .map_err(|source| attach_error(programs::SOCKOPS, &cgroup, source))?;
        if let Some(pins) = pins.as_mut() {
            let link = sockops
                .take_link(id)
                .map_err(|source| attach_error(programs::SOCKOPS, &cgroup, source))?;
            pins.pin(programs::SOCKOPS, fd_link(programs::SOCKOPS, link)?)?;
        }
        for &name in SOCK_ADDR_PROGRAMS {
            let prog: &mut CgroupSockAddr = program(&mut ebpf, name)?;
            prog.load().map_err(|source| CaptureError::Program {
                program: name,
                source,
            })?;
            let id = prog
                .attach(&cgroup_fd, CgroupAttachMode::Single)
                .map_err(|source| attach_error(name, &cgroup, source))?;
            if let Some(pins) = pins.as_mut() {
                let link = prog
                    .take_link(id)
                    .map_err(|source| attach_error(name, &cgroup, source))?;
                pins.pin(name, fd_link(name, link)?)?;
            }
        }
        if let Some(pins) = pins.as_mut() {
            let retired = pins.retire_previous();
            if retired > 0 {
                tracing::info!(
                    retired,
                    "took over from a previous airlock: its pinned programs are detached"
                );
            }
        }

        let by_peer = take_hash(&mut ebpf, maps::BY_PEER)?;
        let by_cookie = take_hash(&mut ebpf, maps::BY_COOKIE)?;
        let mut tracked = take_hash(&mut ebpf, maps::TRACKED)?;
        if reused {
            let (removed, added) = tracking::reconcile(&mut tracked);
            tracing::info!(
                removed,
                added,
                "descendants tracked before the restart kept (gone ones removed, children started meanwhile added)"
            );
        }
        let ring = RingBuf::try_from(take_map(&mut ebpf, maps::EVENTS)?).map_err(|source| {
            CaptureError::Map {
                map: maps::EVENTS,
                source,
            }
        })?;
        let event_counts = std::sync::Arc::new(EventCounts::default());
        tracing::info!(cgroup = %cgroup.display(), ports = ?config.ports,
            comm = ?config.comm, uid = ?config.uid,
            follow_children = config.follow_children, "capture attached");
        Ok(Self {
            pins,
            ebpf,
            cgroup,
            table: std::sync::Arc::new(OrigDstTable::new(by_peer, by_cookie, tracked)),
            events: Some(EventReader::new(ring, event_counts.clone())),
            event_counts,
            selectors: std::sync::Arc::new(std::sync::Mutex::new(selectors)),
        })
    }

    /// The table the proxy consults on accept.
    pub(crate) fn table(&self) -> std::sync::Arc<OrigDstTable> {
        self.table.clone()
    }

    /// Who is captured, for checks made after the fact (the admin API's
    /// approvers).
    pub(crate) fn membership(&self) -> Membership {
        let mount = cgroup::cgroup2_mount().unwrap_or_default();
        Membership::new(
            &self.cgroup,
            &mount,
            self.table.clone(),
            self.selectors.clone(),
        )
    }

    /// The kernel event reader; taken once by whoever logs events.
    pub(crate) fn take_events(&mut self) -> Option<EventReader> {
        self.events.take()
    }

    /// The selection maps, for applying a reloaded `[capture]`.
    pub(crate) fn selectors(&self) -> std::sync::Arc<std::sync::Mutex<Selectors>> {
        self.selectors.clone()
    }

    /// Whether the programs outlive this process (`fail_mode = "closed"`).
    pub(crate) fn fail_closed(&self) -> bool {
        self.pins.is_some()
    }

    /// The cgroup the programs are attached to.
    pub(crate) fn cgroup(&self) -> &std::path::Path {
        &self.cgroup
    }

    /// Kernel ids of the loaded programs (for status and tests).
    pub(crate) fn program_ids(&self) -> Vec<u32> {
        self.programs().into_iter().map(|(_, id)| id).collect()
    }

    /// Names and kernel ids of the loaded programs.
    pub(crate) fn programs(&self) -> Vec<(String, u32)> {
        let mut programs: Vec<_> = self
            .ebpf
            .programs()
            .filter_map(|(name, p)| p.info().ok().map(|i| (name.to_owned(), i.id())))
            .collect();
        programs.sort();
        programs
    }

    /// Kernel events counted so far (shared with the event reader).
    pub(crate) fn event_counts(&self) -> std::sync::Arc<EventCounts> {
        self.event_counts.clone()
    }
}

/// Fork/exit tracepoints that keep follow_children right when a parent
/// exits and its child is re-parented, and rename/exec/credential hooks
/// that let the programs remember a process they leave alone (what they
/// cover is returned). They need BTF-enabled tracepoints; without them the
/// ancestry walk alone decides, at every connect, which is said once.
fn attach_process_tracking(
    ebpf: &mut Ebpf,
    mut pins: Option<&mut Pins>,
) -> Result<Remember, CaptureError> {
    let btf = match aya::Btf::from_sys_fs() {
        Ok(btf) => btf,
        Err(e) => {
            tracing::warn!(error = %e, "no kernel BTF: follow_children will not follow re-parented processes");
            return Ok(Remember::Nothing);
        }
    };
    attach_btf::<BtfTracePoint>(
        ebpf,
        &btf,
        pins.as_deref_mut(),
        programs::FORK,
        "sched_process_fork",
    )?;
    attach_btf::<BtfTracePoint>(
        ebpf,
        &btf,
        pins.as_deref_mut(),
        programs::EXIT,
        "sched_process_exit",
    )?;
    // Only a speed-up rides on these: a kernel without them still captures
    // exactly, walking the ancestry at every connect.
    let renames = [
        (programs::RENAME, "task_rename"),
        (programs::EXEC, "sched_process_exec"),
    ]
    .into_iter()
    .try_for_each(|(name, tracepoint)| {
        attach_btf::<BtfTracePoint>(ebpf, &btf, pins.as_deref_mut(), name, tracepoint)
    });
    if let Err(e) = renames {
        tracing::warn!(error = %e, "unselected processes are judged at every connect");
        return Ok(Remember::Nothing);
    }
    // fexit needs the kernel's function tracer (trampolines), which not
    // every kernel has.
    match attach_btf::<FExit>(ebpf, &btf, pins, programs::CREDS, "commit_creds") {
        Ok(()) => Ok(Remember::NamesAndUids),
        Err(e) => {
            tracing::info!(error = %e, "no fexit: with a uid selector, unselected processes are judged at every connect");
            Ok(Remember::Names)
        }
    }
}

/// What `fexit` and `tp_btf` programs have in common in aya (which has no
/// trait for it), so one function attaches either.
trait BtfHook {
    /// Loads the program against `target` (a function or a tracepoint).
    fn load_for(&mut self, target: &str, btf: &aya::Btf) -> Result<(), ProgramError>;
    /// Attaches it; with `take`, hands the link over instead of leaving it
    /// with the program.
    fn attach_hook(
        &mut self,
        take: bool,
    ) -> Result<Option<aya::programs::links::FdLink>, ProgramError>;
}

// aya's two program types have the same inherent methods.
macro_rules! btf_hook {
    ($($program:ty),*) => {$(
        impl BtfHook for $program {
            fn load_for(&mut self, target: &str, btf: &aya::Btf) -> Result<(), ProgramError> {
                self.load(target, btf)
            }

            fn attach_hook(
                &mut self,
                take: bool,
            ) -> Result<Option<aya::programs::links::FdLink>, ProgramError> {
                let id = self.attach()?;
                take.then(|| self.take_link(id).map(Into::into)).transpose()
            }
        }
    )*};
}
btf_hook!(FExit, BtfTracePoint);

/// Loads and attaches program `name` (a tracepoint, or fexit on a kernel
/// function) to `target`, pinning its link with fail_mode = closed.
fn attach_btf<P>(
    ebpf: &mut Ebpf,
    btf: &aya::Btf,
    pins: Option<&mut Pins>,
    name: &'static str,
    target: &str,
) -> Result<(), CaptureError>
where
    P: BtfHook,
    for<'a> &'a mut P: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
{
    let err = |source| CaptureError::Program {
        program: name,
        source,
    };
    let prog: &mut P = program(ebpf, name)?;
    prog.load_for(target, btf).map_err(err)?;
    if let Some(link) = prog.attach_hook(pins.is_some()).map_err(err)? {
        pins.expect("a link is taken only to be pinned")
            .pin(name, link)?;
    }
    Ok(())
}

/// A cgroup link as the fd-based link pinning needs (links are always
/// fd-based here: airlock attaches through bpf links).
fn fd_link<L>(name: &'static str, link: L) -> Result<aya::programs::links::FdLink, CaptureError>
where
    aya::programs::links::FdLink: TryFrom<L, Error = aya::programs::links::LinkError>,
{
    aya::programs::links::FdLink::try_from(link).map_err(|e| CaptureError::Pin {
        program: name,
        why: e.to_string(),
    })
}

/// Checks, before anything is bound or opened, that capture can start:
/// privileges, and the cgroup to attach to (returned).
pub(crate) fn preflight(config: &CaptureConfig) -> Result<PathBuf, CaptureError> {
    privileges::check()?;
    let cgroup = match &config.cgroup {
        Some(dir) => dir.clone(),
        None => cgroup::cgroup2_mount()?,
    };
    cgroup::check_cgroup_dir(&cgroup)?;
    Ok(cgroup)
}

fn program<'a, T>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut T, CaptureError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
{
    let prog = ebpf.program_mut(name).ok_or(CaptureError::Program {
        program: name,
        source: ProgramError::UnexpectedProgramType,
    })?;
    prog.try_into().map_err(|source| CaptureError::Program {
        program: name,
        source,
    })
}

fn attach_error(
    program: &'static str,
    cgroup: &std::path::Path,
    source: ProgramError,
) -> CaptureError {
    CaptureError::Attach {
        program,
        cgroup: cgroup.to_owned(),
        source,
    }
}

fn take_hash<K: aya::Pod, V: aya::Pod>(
    ebpf: &mut Ebpf,
    name: &'static str,
) -> Result<HashMap<aya::maps::MapData, K, V>, CaptureError> {
    HashMap::try_from(take_map(ebpf, name)?)
        .map_err(|source| CaptureError::Map { map: name, source })
}

/// Takes map `name` out of the loaded object, for userspace to own.
fn take_map(ebpf: &mut Ebpf, name: &'static str) -> Result<aya::maps::Map, CaptureError> {
    ebpf.take_map(name).ok_or(CaptureError::Map {
        map: name,
        source: aya::maps::MapError::InvalidName {
            name: name.to_owned(),
        },
    })
}
