//! What the daemon gives up once its programs are attached, its sockets
//! bound and its files opened: every capability but the few the running
//! proxy still uses ([`KEPT`], each with why), in every thread, and the
//! system calls it never makes again ([`DENIED`], a seccomp filter on all
//! threads). `status` reads back what the kernel says each thread holds
//! ([`Privileges::read`]), so it reports the fact, not the intent.
//!
//! Capabilities belong to threads, not processes: [`arm`], before the
//! runtime starts, records the running set and drops the main thread to
//! what starting needs; every thread airlock starts calls [`enter_thread`]
//! first (tokio's through `on_thread_start`, the audit writer's itself) and
//! so starts with no more than the running set; and [`seal`] drops the
//! main thread, which did the privileged work, last.

use std::sync::OnceLock;

use serde::Serialize;

/// Capability numbers (linux/capability.h), in order.
const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

pub(crate) const CAP_CHOWN: u32 = 0;
const CAP_SETPCAP: u32 = 8;
const CAP_NET_BIND_SERVICE: u32 = 10;
pub(crate) const CAP_NET_ADMIN: u32 = 12;
pub(crate) const CAP_SYS_PTRACE: u32 = 19;
pub(crate) const CAP_SYS_ADMIN: u32 = 21;
const CAP_SYS_RESOURCE: u32 = 24;
pub(crate) const CAP_PERFMON: u32 = 38;
pub(crate) const CAP_BPF: u32 = 39;

/// What the running daemon keeps, and what for.
const KEPT: [(u32, &str); 4] = [
    (
        CAP_BPF,
        "read and update the capture maps (the kernel asks for it while \
         kernel.unprivileged_bpf_disabled is set) and attach the loaded programs \
         to cgroups that appear later",
    ),
    (
        CAP_NET_ADMIN,
        "attach the loaded cgroup programs to cgroups that appear later",
    ),
    (
        CAP_SYS_PTRACE,
        "read /proc/PID/exe of other users' processes (process.exe in records and \
         policy): the kernel checks ptrace access for it; the ptrace system calls \
         themselves are denied",
    ),
    (
        CAP_CHOWN,
        "give each new audit file to audit.group (kept only when it is set)",
    ),
];

/// System calls the daemon never makes once it runs: the ones that would
/// turn a compromised proxy into more (another program, other processes'
/// memory, mounts, namespaces, the kernel itself). Refused with `EPERM`.
macro_rules! syscalls {
    ($($name:ident),* $(,)?) => {
        &[$((stringify!($name), libc::$name)),*]
    };
}
pub(crate) const DENIED: &[(&str, libc::c_long)] = syscalls![
    SYS_execve,
    SYS_execveat,
    SYS_ptrace,
    SYS_process_vm_readv,
    SYS_process_vm_writev,
    SYS_mount,
    SYS_umount2,
    SYS_pivot_root,
    SYS_chroot,
    SYS_fsopen,
    SYS_fsmount,
    SYS_move_mount,
    SYS_open_tree,
    SYS_unshare,
    SYS_setns,
    SYS_init_module,
    SYS_finit_module,
    SYS_delete_module,
    SYS_kexec_load,
    SYS_kexec_file_load,
    SYS_reboot,
    SYS_swapon,
    SYS_swapoff,
    SYS_perf_event_open,
    SYS_open_by_handle_at,
    SYS_userfaultfd,
    SYS_io_uring_setup,
    SYS_keyctl,
    SYS_add_key,
    SYS_request_key,
];

/// The capability mask armed for this process, once [`arm`]ed.
static ARMED: OnceLock<u64> = OnceLock::new();

#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    #[error("dropping capabilities: {0}")]
    Capabilities(std::io::Error),
    #[error("installing the seccomp filter: {0}")]
    Seccomp(std::io::Error),
}

/// What starting needs on top of [`KEPT`]: loading programs and their
/// tracepoints (`CAP_PERFMON`), mounting bpffs (`CAP_SYS_ADMIN`, also
/// `CAP_BPF` before Linux 5.8), raising limits (`CAP_SYS_RESOURCE`),
/// binding a port below 1024, giving the admin socket to `admin.group`, and
/// `CAP_SETPCAP` so each thread can shrink its own bounding set. Never
/// `CAP_DAC_OVERRIDE`: airlock reads its files as their owner would.
const STARTING: [u32; 6] = [
    CAP_PERFMON,
    CAP_SYS_ADMIN,
    CAP_SYS_RESOURCE,
    CAP_NET_BIND_SERVICE,
    CAP_CHOWN,
    CAP_SETPCAP,
];

/// Records what the daemon keeps once running (`audit_group`: whether
/// audit files are given to a group), so every thread started from now on
/// keeps no more, and drops the calling (main) thread at once to what
/// starting needs.
pub fn arm(audit_group: bool) -> Result<(), ConfineError> {
    let keep = running_set(audit_group, last_cap());
    let starting = STARTING.iter().fold(keep, |mask, cap| mask | 1 << cap);
    airlock_ebpf::keep_only_capabilities(starting, last_cap())
        .map_err(ConfineError::Capabilities)?;
    let _ = ARMED.set(keep);
    Ok(())
}

/// Drops the calling thread to the armed set; nothing before [`arm`] (the
/// CLI's commands, the demo). Called first in every thread airlock starts.
pub fn enter_thread() {
    if let Some(&keep) = ARMED.get()
        && let Err(e) = airlock_ebpf::keep_only_capabilities(keep, last_cap())
    {
        // Status reads every thread's set back, so this cannot hide.
        tracing::error!(error = %e, "a thread could not drop its capabilities");
    }
}

/// Drops the main thread too, then denies [`DENIED`] in every thread.
/// Irrevocable; call once everything privileged is done.
pub fn seal() -> Result<(), ConfineError> {
    let Some(&keep) = ARMED.get() else {
        return Ok(());
    };
    airlock_ebpf::keep_only_capabilities(keep, last_cap()).map_err(ConfineError::Capabilities)?;
    match filter() {
        Some(filter) => {
            airlock_ebpf::install_seccomp_filter(&filter).map_err(ConfineError::Seccomp)?;
        }
        None => tracing::warn!("no seccomp filter for this architecture: system calls not limited"),
    }
    tracing::info!(kept = ?names(keep), denied = DENIED.len(), "privileges dropped");
    Ok(())
}

/// [`KEPT`] as a mask, on a kernel whose highest capability is
/// `last_cap`: `CAP_CHOWN` only with `audit_group`, and before Linux 5.8
/// (no `CAP_BPF`) `CAP_SYS_ADMIN` standing in for `CAP_BPF`.
fn running_set(audit_group: bool, last_cap: u32) -> u64 {
    let bpf = if last_cap >= CAP_BPF {
        CAP_BPF
    } else {
        CAP_SYS_ADMIN
    };
    KEPT.iter()
        .map(|&(cap, _)| if cap == CAP_BPF { bpf } else { cap })
        .filter(|&cap| cap != CAP_CHOWN || audit_group)
        .fold(0u64, |mask, cap| mask | 1 << cap)
}

/// What `airlock run` keeps once attached, for the demo to say.
pub(crate) fn kept_when_running() -> Vec<&'static str> {
    names(running_set(false, last_cap()))
}

/// `AUDIT_ARCH_*` of this build (linux/audit.h): the filter refuses calls
/// made through another architecture's table.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: Option<u32> = Some(0xC000_003E);
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: Option<u32> = Some(0xC000_00B7);
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const AUDIT_ARCH: Option<u32> = None;

/// The classic-BPF seccomp program: a foreign architecture, an x32 call,
/// or any of [`DENIED`] → `EPERM`; anything else allowed.
fn filter() -> Option<Vec<libc::sock_filter>> {
    let arch = AUDIT_ARCH?;
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |code: u32, k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let ld = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let jeq = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let ret = libc::BPF_RET | libc::BPF_K;
    // struct seccomp_data: nr at 0, arch at 4.
    let mut f = vec![
        stmt(ld, 4),
        jump(jeq, arch, 1, 0),
        stmt(ret, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
        stmt(ld, 0),
        // x32 calls on x86_64 carry this bit; no other table is allowed.
        jump(
            libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K,
            0x4000_0000,
            0,
            1,
        ),
        stmt(ret, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
    ];
    let n = DENIED.len();
    for (i, &(_, nr)) in DENIED.iter().enumerate() {
        // On a match, skip the remaining tests and the allow.
        let skip = u8::try_from(n - i).ok()?;
        f.push(jump(jeq, nr as u32, skip, 0));
    }
    f.push(stmt(ret, libc::SECCOMP_RET_ALLOW));
    f.push(stmt(ret, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32));
    Some(f)
}

/// The highest capability number this kernel knows.
fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(CAP_BPF)
}

fn names(mask: u64) -> Vec<&'static str> {
    NAMES
        .iter()
        .enumerate()
        .filter(|&(cap, _)| mask & (1 << cap) != 0)
        .map(|(_, name)| *name)
        .collect()
}

/// A capability set from a `/proc/…/status` text (`CapEff:`, `CapBnd:`…).
pub(crate) fn capability_set(status: &str, field: &str) -> u64 {
    u64::from_str_radix(status_field(status, field), 16).unwrap_or(0)
}

/// A field of a `/proc/…/status` text, trimmed; empty when absent.
fn status_field<'a>(status: &'a str, field: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map_or("", str::trim)
}

/// What the kernel says this process's threads hold, as `status` shows it.
#[derive(Debug, Serialize)]
pub(crate) struct Privileges {
    pub uid: u32,
    pub threads: usize,
    /// Any thread's effective or permitted capabilities.
    pub capabilities: Vec<&'static str>,
    /// Any thread's bounding set: all an `execve` could ever regain.
    pub bounding: Vec<&'static str>,
    /// Every thread has `no_new_privs` and the seccomp filter.
    pub seccomp: bool,
    pub denied_syscalls: Vec<&'static str>,
    /// What each kept capability is for.
    pub kept_for: Vec<KeptFor>,
}

#[derive(Debug, Serialize)]
pub(crate) struct KeptFor {
    pub capability: &'static str,
    pub why: &'static str,
}

impl Privileges {
    /// Reads every thread's `/proc/self/task/TID/status` (kernel-made text
    /// in memory: no disk behind it).
    pub(crate) fn read() -> std::io::Result<Self> {
        let mut held = 0u64;
        let mut bounding = 0u64;
        let mut seccomp = true;
        let mut threads = 0;
        let mut uid = None;
        for task in std::fs::read_dir("/proc/self/task")? {
            // A thread that ended since the listing holds nothing.
            let Ok(status) = std::fs::read_to_string(task?.path().join("status")) else {
                continue;
            };
            threads += 1;
            held |= capability_set(&status, "CapEff") | capability_set(&status, "CapPrm");
            bounding |= capability_set(&status, "CapBnd");
            let field = |name| status_field(&status, name);
            seccomp &= field("NoNewPrivs") == "1" && field("Seccomp") == "2";
            // Real uid: the first of `Uid:`'s four ids.
            uid = uid.or_else(|| field("Uid").split_whitespace().next()?.parse().ok());
        }
        let sealed = ARMED.get().is_some() && seccomp;
        Ok(Self {
            uid: uid.unwrap_or(u32::MAX),
            threads,
            capabilities: names(held),
            bounding: names(bounding),
            seccomp,
            denied_syscalls: if sealed {
                DENIED
                    .iter()
                    .map(|(name, _)| name.trim_start_matches("SYS_"))
                    .collect()
            } else {
                Vec::new()
            },
            kept_for: KEPT
                .iter()
                .filter(|(cap, _)| held & (1 << cap) != 0)
                .map(|&(cap, why)| KeptFor {
                    capability: NAMES[cap as usize],
                    why,
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_sets_read_from_proc_status() {
        let status = "Name:\tairlock\nCapPrm:\t0000008000081001\nCapEff:\t0000008000081001\n\
                      CapBnd:\t000001ffffffffff\n";
        assert_eq!(
            names(capability_set(status, "CapEff")),
            ["CAP_CHOWN", "CAP_NET_ADMIN", "CAP_SYS_PTRACE", "CAP_BPF"]
        );
        assert_eq!(names(capability_set(status, "CapBnd")).len(), 41);
        assert_eq!(capability_set(status, "CapAmb"), 0);
    }

    #[test]
    fn the_filter_denies_each_listed_call_and_allows_the_rest() {
        let Some(f) = filter() else { return };
        // Run the program on a call number as the kernel would.
        let run = |nr: u32, arch: u32| {
            let mut acc = 0u32;
            let mut pc = 0usize;
            loop {
                let i = f[pc];
                let code = u32::from(i.code);
                if code == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS {
                    acc = if i.k == 0 { nr } else { arch };
                } else if code == libc::BPF_RET | libc::BPF_K {
                    return i.k;
                } else {
                    let taken = if code & libc::BPF_JSET == libc::BPF_JSET {
                        acc & i.k != 0
                    } else {
                        acc == i.k
                    };
                    pc += usize::from(if taken { i.jt } else { i.jf });
                }
                pc += 1;
            }
        };
        let arch = AUDIT_ARCH.unwrap_or_default();
        let deny = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
        for &(name, nr) in DENIED {
            assert_eq!(run(nr as u32, arch), deny, "{name}");
        }
        for nr in [
            libc::SYS_read,
            libc::SYS_bpf,
            libc::SYS_openat,
            libc::SYS_clone,
        ] {
            assert_eq!(run(nr as u32, arch), libc::SECCOMP_RET_ALLOW, "{nr}");
        }
        assert_eq!(
            run(libc::SYS_read as u32, 0x4000_0003),
            deny,
            "another table"
        );
        assert_eq!(run(libc::SYS_read as u32 | 0x4000_0000, arch), deny, "x32");
    }
}
