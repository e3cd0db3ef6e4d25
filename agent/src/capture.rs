//! The eBPF side of the data path: load the capture object, fill its maps
//! from the config, attach it to the capture cgroups (and to those that
//! appear later, `scope`), and hand the proxy the original destination and
//! caller of each redirected connection.

pub(crate) mod cgroup;
mod ci;
mod events;
mod membership;
pub(crate) mod network;
mod pin;
mod privileges;
pub(crate) mod process;
mod scope;
mod selectors;
mod table;
mod tracking;

pub(crate) use events::{EventCounts, EventReader};
pub(crate) use membership::Membership;
pub(crate) use process::ProcessCache;
pub(crate) use scope::Scope;
pub(crate) use table::Captured;
pub use table::OrigDstTable;

use std::collections::BTreeMap;
use std::fs::File;
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use airlock_ebpf::{maps, programs};
use aya::maps::{HashMap, RingBuf};
use aya::programs::links::FdLink;
use aya::programs::{
    BtfTracePoint, CgroupAttachMode, CgroupSockAddr, FExit, ProgramError, SockOps,
};
use aya::{Ebpf, EbpfLoader};

use crate::config::{CaptureConfig, FailMode};
use crate::core::lock;
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
    #[error("making a container network: {0}")]
    Network(String),
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
/// proxy actually bound, airlock's own process (never captured) and
/// network namespace (connects from any other go to `containers`).
#[derive(Clone, Debug)]
pub(crate) struct Targets {
    pub listen4: SocketAddr,
    pub listen6: Option<SocketAddr>,
    /// `proxy.listen_containers` as bound.
    pub containers: Option<SocketAddr>,
    pub self_tgid: u32,
    /// airlock's network namespace cookie; 0 if the kernel cannot say.
    pub host_netns: u64,
}

/// How often the capture cgroups are looked for again when they include a
/// glob, besides each time the kernel reports a new cgroup: a report the
/// ring buffer had no room for, and cgroups removed, are caught then.
const RESCAN_EVERY: Duration = Duration::from_secs(2);

/// The loaded object and the cgroups its programs are attached to: what a
/// rescan changes. Fields drop in order: links first.
#[derive(Debug)]
struct Attached {
    /// Attached cgroups by inode: the path, and (fail_mode = "open") the
    /// links, detached when dropped.
    cgroups: BTreeMap<u64, (PathBuf, Vec<FdLink>)>,
    /// With `fail_mode = "closed"`, the links pinned in bpffs (unpinned,
    /// detached, when dropped).
    pins: Option<Pins>,
    /// Owns the programs (and, fail_mode = "open", the tracepoints' links).
    ebpf: Ebpf,
}

/// The capture cgroups attached now, for status.
#[derive(Clone, Debug)]
pub(crate) struct AttachedCgroups(Weak<Mutex<Attached>>);

impl AttachedCgroups {
    pub(crate) fn paths(&self) -> Vec<PathBuf> {
        self.0
            .upgrade()
            .map(|a| lock(&a).cgroups.values().map(|(p, _)| p.clone()).collect())
            .unwrap_or_default()
    }
}

/// Loaded and attached programs; dropping it detaches and unloads them.
#[derive(Debug)]
pub(crate) struct Capture {
    /// The only strong reference: dropping it detaches (the rescan task
    /// and status hold weak ones).
    attached: Arc<Mutex<Attached>>,
    scope: Scope,
    /// Woken by the kernel's report of a new cgroup.
    cgroup_events: Arc<tokio::sync::Notify>,
    fail_closed: bool,
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
/// Attach order: getpeername before connect (see [`cgroup_programs`]).
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
    /// capture cgroups (default: the cgroup2 root).
    pub(crate) fn attach(config: &CaptureConfig, targets: &Targets) -> Result<Self, CaptureError> {
        let scope = preflight(config)?;
        let cgroups = scope.expand();
        if cgroups.is_empty() {
            tracing::warn!(cgroup = %scope.describe(), "no capture cgroup exists yet: they are attached as they appear");
        }

        let mut pins = match config.fail_mode {
            FailMode::Closed => Some(Pins::prepare(&config.pin_dir, &pin_key(&scope, &cgroups)?)?),
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
        // Parsed once (about 9 MB while it lives) for every BTF hook.
        let btf = aya::Btf::from_sys_fs()
            .inspect_err(|e| tracing::warn!(error = %e, "no kernel BTF: follow_children will not follow re-parented processes, and new capture cgroups are found by looking for them every few seconds"))
            .ok();
        let remember = match &btf {
            Some(btf) => attach_process_tracking(&mut ebpf, btf, pins.as_mut())?,
            None => Remember::Nothing,
        };
        selectors.remember_verdicts(remember)?;
        if let (true, Some(btf)) = (scope.is_dynamic(), &btf) {
            attach_btf::<BtfTracePoint>(
                &mut ebpf,
                btf,
                pins.as_mut(),
                programs::CGROUP_MKDIR,
                "cgroup_mkdir",
            )?;
        }
        drop(btf);
        load_cgroup_programs(&mut ebpf)?;
        let mut attached = Attached {
            cgroups: BTreeMap::new(),
            pins,
            ebpf,
        };
        for dir in &cgroups {
            attached.attach_cgroup(dir)?;
        }
        let ebpf = &mut attached.ebpf;
        if let Some(pins) = attached.pins.as_mut() {
            let retired = pins.retire_previous();
            if retired > 0 {
                tracing::info!(
                    retired,
                    "took over from a previous airlock: its pinned programs are detached"
                );
            }
        }

        let by_peer = take_hash(ebpf, maps::BY_PEER)?;
        let by_cookie = take_hash(ebpf, maps::BY_COOKIE)?;
        let mut tracked = take_hash(ebpf, maps::TRACKED)?;
        if reused {
            let (removed, added) = tracking::reconcile(&mut tracked);
            tracing::info!(
                removed,
                added,
                "descendants tracked before the restart kept (gone ones removed, children started meanwhile added)"
            );
        }
        let ring = RingBuf::try_from(take_map(ebpf, maps::EVENTS)?).map_err(|source| {
            CaptureError::Map {
                map: maps::EVENTS,
                source,
            }
        })?;
        let event_counts = std::sync::Arc::new(EventCounts::default());
        let cgroup_events = Arc::new(tokio::sync::Notify::new());
        tracing::info!(cgroup = %scope.describe(), attached = cgroups.len(), ports = ?config.ports,
            comm = ?config.comm, uid = ?config.uid,
            follow_children = config.follow_children, "capture attached");
        Ok(Self {
            fail_closed: attached.pins.is_some(),
            attached: Arc::new(Mutex::new(attached)),
            scope,
            cgroup_events: cgroup_events.clone(),
            table: std::sync::Arc::new(OrigDstTable::new(by_peer, by_cookie, tracked)),
            events: Some(EventReader::new(ring, event_counts.clone(), cgroup_events)),
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
        Membership::new(
            self.scope.clone(),
            self.table.clone(),
            self.selectors.clone(),
        )
    }

    /// With a glob among the capture cgroups, the task that attaches to
    /// matching cgroups as they appear (woken by the kernel's report of a
    /// new cgroup) and lets go of those removed; `None` without.
    pub(crate) fn watch(&self) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
        let events = self.cgroup_events.clone();
        let scope = self.scope.clone();
        let attached = Arc::downgrade(&self.attached);
        self.scope.is_dynamic().then_some(async move {
            loop {
                let _ = tokio::time::timeout(RESCAN_EVERY, events.notified()).await;
                let (scope, attached) = (scope.clone(), attached.clone());
                let rescanned = tokio::task::spawn_blocking(move || {
                    attached.upgrade().map(|a| lock(&a).rescan(&scope))
                })
                .await;
                if !matches!(rescanned, Ok(Some(()))) {
                    return; // detached: airlock is stopping
                }
            }
        })
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
        self.fail_closed
    }

    /// The capture cgroups as configured.
    pub(crate) fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The cgroups attached now.
    pub(crate) fn attached_cgroups(&self) -> AttachedCgroups {
        AttachedCgroups(Arc::downgrade(&self.attached))
    }

    /// Kernel ids of the loaded programs (for status and tests).
    pub(crate) fn program_ids(&self) -> Vec<u32> {
        self.programs().into_iter().map(|(_, id)| id).collect()
    }

    /// Names and kernel ids of the loaded programs.
    pub(crate) fn programs(&self) -> Vec<(String, u32)> {
        let attached = lock(&self.attached);
        let mut programs: Vec<_> = attached
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
    btf: &aya::Btf,
    mut pins: Option<&mut Pins>,
) -> Result<Remember, CaptureError> {
    attach_btf::<BtfTracePoint>(
        ebpf,
        btf,
        pins.as_deref_mut(),
        programs::FORK,
        "sched_process_fork",
    )?;
    attach_btf::<BtfTracePoint>(
        ebpf,
        btf,
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
        attach_btf::<BtfTracePoint>(ebpf, btf, pins.as_deref_mut(), name, tracepoint)
    });
    if let Err(e) = renames {
        tracing::warn!(error = %e, "unselected processes are judged at every connect");
        return Ok(Remember::Nothing);
    }
    // fexit needs the kernel's function tracer (trampolines), which not
    // every kernel has.
    match attach_btf::<FExit>(ebpf, btf, pins, programs::CREDS, "commit_creds") {
        Ok(()) => Ok(Remember::NamesAndUids),
        Err(e) => {
            tracing::info!(error = %e, "no fexit: with a uid selector, unselected processes are judged at every connect");
            Ok(Remember::Names)
        }
    }
}

/// What cgroup programs (sockops, sock_addr) have in common in aya, which
/// has no trait for it: attach to a cgroup and hand the link over.
trait CgroupHook {
    /// Loads program `name` into the kernel.
    fn load_hook(&mut self, name: &'static str) -> Result<(), CaptureError>;
    /// Attaches program `name` to the cgroup `dir` (open as `cgroup`).
    fn attach_link(
        &mut self,
        name: &'static str,
        cgroup: &File,
        dir: &Path,
    ) -> Result<FdLink, CaptureError>;
}

macro_rules! cgroup_hook {
    ($($program:ty),*) => {$(
        impl CgroupHook for $program {
            fn load_hook(&mut self, name: &'static str) -> Result<(), CaptureError> {
                self.load()
                    .map_err(|source| CaptureError::Program { program: name, source })
            }

            fn attach_link(
                &mut self,
                name: &'static str,
                cgroup: &File,
                dir: &Path,
            ) -> Result<FdLink, CaptureError> {
                let id = self
                    .attach(cgroup, CgroupAttachMode::Single)
                    .map_err(|e| attach_error(name, dir, e))?;
                let link = self.take_link(id).map_err(|e| attach_error(name, dir, e))?;
                fd_link(name, link)
            }
        }
    )*};
}
cgroup_hook!(SockOps, CgroupSockAddr);

/// Cgroup program `name`, whichever kind it is.
fn cgroup_hook<'a>(
    ebpf: &'a mut Ebpf,
    name: &'static str,
) -> Result<&'a mut dyn CgroupHook, CaptureError> {
    Ok(if name == programs::SOCKOPS {
        program::<SockOps>(ebpf, name)?
    } else {
        program::<CgroupSockAddr>(ebpf, name)?
    })
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
            .pin(name, None, link)?;
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
pub(crate) fn preflight(config: &CaptureConfig) -> Result<Scope, CaptureError> {
    privileges::check()?;
    let scope = Scope::new(&config.cgroup, &cgroup::cgroup2_mount()?);
    scope.check()?;
    Ok(scope)
}

/// The pins' directory name for `scope`: one fixed cgroup is named by its
/// inode (however its path is spelled), anything else by a digest of the
/// configured paths, so airlocks on different cgroups never retire each
/// other's links while the next airlock on the same ones does.
fn pin_key(scope: &Scope, now: &[PathBuf]) -> Result<String, CaptureError> {
    match now {
        [one] if !scope.is_dynamic() => Ok(inode(one)?.to_string()),
        _ => {
            let digest = ring::digest::digest(&ring::digest::SHA256, scope.describe().as_bytes());
            Ok(format!("set-{}", crate::core::hex(&digest.as_ref()[..8])))
        }
    }
}

fn inode(dir: &Path) -> Result<u64, CaptureError> {
    std::fs::metadata(dir)
        .map(|m| m.ino())
        .map_err(|io_error| CaptureError::Io {
            what: "stat capture cgroup",
            io_error,
        })
}

/// Programs attached to every capture cgroup, in order: getpeername and
/// sockops before connect, so no redirected socket ever exists without
/// the programs that complete its story.
fn cgroup_programs() -> impl Iterator<Item = &'static str> {
    std::iter::once(programs::SOCKOPS).chain(SOCK_ADDR_PROGRAMS.iter().copied())
}

/// Loads the cgroup programs once, before any attach.
fn load_cgroup_programs(ebpf: &mut Ebpf) -> Result<(), CaptureError> {
    cgroup_programs().try_for_each(|name| cgroup_hook(ebpf, name)?.load_hook(name))
}

impl Attached {
    /// Attaches every cgroup program to `dir`, or none: what a failure
    /// left attached is let go (pins included), so a later look retries.
    fn attach_cgroup(&mut self, dir: &Path) -> Result<(), CaptureError> {
        let ino = inode(dir)?;
        let attached = self.attach_all(dir, ino);
        if attached.is_err()
            && let Some(pins) = self.pins.as_mut()
        {
            pins.release(ino);
        }
        attached
    }

    fn attach_all(&mut self, dir: &Path, ino: u64) -> Result<(), CaptureError> {
        let fd = File::open(dir).map_err(|io_error| CaptureError::Io {
            what: "open capture cgroup",
            io_error,
        })?;
        let mut links = Vec::new();
        for name in cgroup_programs() {
            let link = cgroup_hook(&mut self.ebpf, name)?.attach_link(name, &fd, dir)?;
            match self.pins.as_mut() {
                Some(pins) => pins.pin(name, Some(ino), link)?,
                None => links.push(link),
            }
        }
        self.cgroups.insert(ino, (dir.to_owned(), links));
        Ok(())
    }

    /// Attaches to the capture cgroups that appeared since the last look,
    /// and lets go of the links of those removed (the kernel detached them
    /// with the cgroup; their descriptors and pins remain until then).
    fn rescan(&mut self, scope: &Scope) {
        let now: BTreeMap<u64, PathBuf> = scope
            .expand()
            .into_iter()
            .filter_map(|dir| inode(&dir).ok().map(|i| (i, dir)))
            .collect();
        let gone: Vec<u64> = self
            .cgroups
            .keys()
            .filter(|i| !now.contains_key(i))
            .copied()
            .collect();
        for ino in gone {
            if let Some((dir, _links)) = self.cgroups.remove(&ino) {
                tracing::debug!(cgroup = %dir.display(), "capture cgroup removed");
            }
            if let Some(pins) = self.pins.as_mut() {
                pins.release(ino);
            }
        }
        for (ino, dir) in now {
            if self.cgroups.contains_key(&ino) {
                continue;
            }
            match self.attach_cgroup(&dir) {
                Ok(()) => tracing::info!(cgroup = %dir.display(), "capture cgroup attached"),
                // Removed meanwhile, most often: the next look settles it.
                Err(e) => {
                    tracing::warn!(cgroup = %dir.display(), error = %e, "could not attach to a capture cgroup")
                }
            }
        }
    }
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
