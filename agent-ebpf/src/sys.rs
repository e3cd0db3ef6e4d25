//! The project's only `unsafe`, kept to the four places where airlock
//! hands the kernel's memory or descriptors to a library that cannot check
//! them, takes a descriptor from the kernel, or asks it for a limit.
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
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use aya::maps::{MapData, RingBuf};
use tokio::io::unix::AsyncFd;

use crate::shared::{AddrKey, Config, Orig};

// SAFETY: (1) above.
unsafe impl aya::Pod for Config {}
// SAFETY: (1) above.
unsafe impl aya::Pod for Orig {}
// SAFETY: (1) above.
unsafe impl aya::Pod for AddrKey {}

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
