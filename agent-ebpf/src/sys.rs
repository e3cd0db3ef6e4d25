//! The project's only `unsafe`, kept to the places where airlock hands the
//! kernel's memory or descriptors to a library that cannot check them,
//! takes a descriptor from the kernel, asks it for a limit, or gives up
//! privileges.
//!
//! 1. The shared structs are plain old data, so aya may copy them
//!    byte-for-byte in and out of BPF maps. Sound because every type here is
//!    `#[repr(C)]`, made only of integers and integer arrays (every bit
//!    pattern is valid), with explicit padding fields so no byte is
//!    uninitialised; the layout tests in `shared.rs` prove sizes and offsets
//!    equal the C header's.
//! 2. The event ring buffer's descriptor is registered with tokio's reactor.
//!    tokio requires that the descriptor stay open and the same for the
//!    registration's lifetime: it does, because the `AsyncFd` owns the
//!    `RingBuf`, which owns the map's descriptor and never replaces it.
//! 3. `getsockopt(SO_PEERPIDFD)` on a connected Unix socket: the kernel
//!    writes one `int` into the buffer it is given (the exact size is
//!    passed), and on success that int is a new descriptor this process
//!    owns and nothing else refers to, so it may become an `OwnedFd`.
//! 4. `getrlimit`/`setrlimit(RLIMIT_NOFILE)`: each is passed a pointer to
//!    a live, initialised `rlimit` local.
//! 5. `prctl`, `capget`/`capset` and `seccomp`: integer arguments, or
//!    pointers to live, initialised locals of the layout the kernel reads
//!    (`CapHeader`/`CapData` mirror linux/capability.h's version 3 structs;
//!    the filter is a borrowed slice the kernel copies before returning).
//!    None of them touches Rust-owned memory afterwards.
//! 6. `getpwuid_r`, `getgrnam_r`, `getgrouplist` (NSS: local files, LDAP,
//!    SSSD alike): each is given a live buffer and its exact length, grown
//!    and retried on `ERANGE`/-1; the strings read back point into that
//!    buffer, which outlives the reads; the name passed in is a
//!    NUL-terminated `CString`.
//! 7. `getsockopt(SO_NETNS_COOKIE)` and `setsockopt(IP_FREEBIND)` on a
//!    socket the caller borrows: a live `u64`/`c_int` local and its exact
//!    size.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use aya::maps::{MapData, RingBuf};
use tokio::io::unix::AsyncFd;

use crate::shared::{AddrKey, Config, Orig, Tracked};

// SAFETY: (1) above.
unsafe impl aya::Pod for Config {}
// SAFETY: (1) above.
unsafe impl aya::Pod for Orig {}
// SAFETY: (1) above.
unsafe impl aya::Pod for AddrKey {}
// SAFETY: (1) above.
unsafe impl aya::Pod for Tracked {}

/// `SO_PEERPIDFD` (asm-generic/socket.h, Linux 6.5): a pidfd for the
/// process that connected a Unix socket.
const SO_PEERPIDFD: libc::c_int = 77;

/// A pidfd for the peer of the connected Unix socket `socket`: it keeps
/// naming that process (never a later one reusing its pid). Fails with
/// `ENOPROTOOPT` on kernels before 6.5.
pub fn peer_pidfd(socket: BorrowedFd<'_>) -> std::io::Result<OwnedFd> {
    let mut fd: libc::c_int = -1;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: (3) above: `fd` and `len` are live locals of the sizes the
    // kernel is told.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_PEERPIDFD,
            (&raw mut fd).cast(),
            &raw mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if fd < 0 {
        return Err(std::io::Error::other("SO_PEERPIDFD gave no descriptor"));
    }
    // SAFETY: (3) above: a new descriptor, owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `SO_NETNS_COOKIE` (asm-generic/socket.h, Linux 5.14).
const SO_NETNS_COOKIE: libc::c_int = 71;

/// The cookie of the network namespace `socket` lives in: what the eBPF
/// programs read with `bpf_get_netns_cookie` (its inode number is not).
pub fn netns_cookie(socket: BorrowedFd<'_>) -> std::io::Result<u64> {
    let mut cookie: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: (7) above.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_NETNS_COOKIE,
            (&raw mut cookie).cast(),
            &raw mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(cookie)
}

/// Lets `socket` bind an IPv4 address the host does not have yet (a
/// container bridge made after airlock started).
pub fn set_freebind(socket: BorrowedFd<'_>) -> std::io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: (7) above.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_FREEBIND,
            (&raw const on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Raises the soft limit on open descriptors to the hard limit (each
/// proxied connection holds two); returns the limit now in force.
pub fn raise_nofile_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: (4) above.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: (4) above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const raised) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        limit = raised;
    }
    Ok(limit.rlim_cur)
}

/// Registers the ring buffer for readiness polling on the current tokio
/// runtime (must be called from within one).
pub fn async_ring_buf(ring: RingBuf<MapData>) -> std::io::Result<AsyncFd<RingBuf<MapData>>> {
    // SAFETY: (2) above: the descriptor is owned by `ring`, which moves
    // into the AsyncFd and lives exactly as long as the registration.
    unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
        .map_err(|e| e.into_parts().1)
}

/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`, one per 32 capabilities.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

fn prctl(option: libc::c_int, arg: libc::c_ulong) -> std::io::Result<libc::c_int> {
    // SAFETY: (5) above: every option passed here takes integers only.
    let rc = unsafe {
        libc::prctl(
            option,
            arg,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(rc)
}

/// Reduces the calling thread's capabilities to `keep` (a mask of
/// capability numbers): the bounding set (so no later `execve` regains
/// one), the ambient set, and the permitted and effective sets. Threads
/// carry their own capabilities: each thread must call this itself; the
/// threads it starts afterwards inherit the result. Capabilities in
/// `keep` that the thread does not hold are not gained.
pub fn keep_only_capabilities(keep: u64, last_cap: u32) -> std::io::Result<()> {
    for cap in 0..=last_cap {
        if keep & (1 << cap) == 0 && prctl(libc::PR_CAPBSET_READ, cap.into())? == 1 {
            match prctl(libc::PR_CAPBSET_DROP, cap.into()) {
                // Without CAP_SETPCAP (a non-root airlock given ambient
                // capabilities) the bounding set stays; the permitted set
                // below still goes, and nothing it may exec gains more
                // than its own file capabilities.
                Err(e) if e.raw_os_error() == Some(libc::EPERM) => break,
                other => other.map(drop)?,
            }
        }
    }
    prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
    )?;
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: (5) above.
    if unsafe { libc::syscall(libc::SYS_capget, &raw mut header, data.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    for (i, d) in data.iter_mut().enumerate() {
        let word = (keep >> (32 * i)) as u32;
        d.permitted &= word;
        d.effective = d.permitted;
        d.inheritable = 0;
    }
    // SAFETY: (5) above.
    if unsafe { libc::syscall(libc::SYS_capset, &raw mut header, data.as_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Sets `no_new_privs` and installs `filter` as a seccomp filter on every
/// thread of the process (`SECCOMP_FILTER_FLAG_TSYNC`). Irrevocable.
pub fn install_seccomp_filter(filter: &[libc::sock_filter]) -> std::io::Result<()> {
    prctl(libc::PR_SET_NO_NEW_PRIVS, 1)?;
    let program = libc::sock_fprog {
        len: u16::try_from(filter.len())
            .map_err(|_| std::io::Error::other("seccomp filter too long"))?,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: (5) above: `program` points at `filter`, live for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_TSYNC,
            &raw const program,
        )
    };
    match rc {
        0 => Ok(()),
        rc if rc < 0 => Err(std::io::Error::last_os_error()),
        tid => Err(std::io::Error::other(format!(
            "thread {tid} could not take the filter"
        ))),
    }
}

/// Calls `lookup` with a growing buffer until it fits (`ERANGE`).
fn with_buffer<T>(
    mut lookup: impl FnMut(&mut [libc::c_char]) -> Result<T, libc::c_int>,
) -> std::io::Result<T> {
    let mut buf = vec![0 as libc::c_char; 1024];
    loop {
        match lookup(&mut buf) {
            Ok(found) => return Ok(found),
            Err(libc::ERANGE) if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            Err(errno) => return Err(std::io::Error::from_raw_os_error(errno)),
        }
    }
}

/// The name and primary group of `uid`, through NSS; none if unknown.
pub fn user_by_uid(uid: u32) -> std::io::Result<Option<(String, u32)>> {
    with_buffer(|buf| {
        // SAFETY: (6) above: all-zero is a valid `passwd` (null pointers).
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: (6) above.
        let rc = unsafe {
            libc::getpwuid_r(
                uid,
                &raw mut pwd,
                buf.as_mut_ptr(),
                buf.len(),
                &raw mut found,
            )
        };
        if rc != 0 {
            return Err(rc);
        }
        if found.is_null() || pwd.pw_name.is_null() {
            return Ok(None);
        }
        // SAFETY: (6) above: NUL-terminated, inside `buf`.
        let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
        Ok(Some((name.to_string_lossy().into_owned(), pwd.pw_gid)))
    })
}

/// The gid of group `name`, through NSS; none if unknown.
pub fn group_by_name(name: &str) -> std::io::Result<Option<u32>> {
    let Ok(cname) = std::ffi::CString::new(name) else {
        return Ok(None);
    };
    with_buffer(|buf| {
        // SAFETY: (6) above: all-zero is a valid `group` (null pointers).
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::group = std::ptr::null_mut();
        // SAFETY: (6) above.
        let rc = unsafe {
            libc::getgrnam_r(
                cname.as_ptr(),
                &raw mut grp,
                buf.as_mut_ptr(),
                buf.len(),
                &raw mut found,
            )
        };
        if rc != 0 {
            return Err(rc);
        }
        Ok((!found.is_null()).then_some(grp.gr_gid))
    })
}

/// Every group `user` (primary group `primary`) belongs to, through NSS:
/// what `id USER` lists, directory groups included.
pub fn group_ids_of(user: &str, primary: u32) -> std::io::Result<Vec<u32>> {
    let Ok(cname) = std::ffi::CString::new(user) else {
        return Ok(vec![primary]);
    };
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut n = libc::c_int::try_from(groups.len()).unwrap_or(libc::c_int::MAX);
        // SAFETY: (6) above: `groups` holds `n` entries.
        let rc =
            unsafe { libc::getgrouplist(cname.as_ptr(), primary, groups.as_mut_ptr(), &raw mut n) };
        let n = usize::try_from(n).unwrap_or(0);
        if rc >= 0 {
            groups.truncate(n);
            return Ok(groups);
        }
        if n <= groups.len() || n > 1 << 16 {
            return Err(std::io::Error::other("getgrouplist failed"));
        }
        groups.resize(n, 0);
    }
}
