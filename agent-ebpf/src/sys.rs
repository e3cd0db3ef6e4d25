//! The project's only `unsafe`, kept to the two places where airlock hands
//! the kernel's memory or descriptors to a library that cannot check them.
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
#![allow(unsafe_code)]

use aya::maps::{MapData, RingBuf};
use tokio::io::unix::AsyncFd;

use crate::shared::{AddrKey, Config, Orig};

// SAFETY: (1) above.
unsafe impl aya::Pod for Config {}
// SAFETY: (1) above.
unsafe impl aya::Pod for Orig {}
// SAFETY: (1) above.
unsafe impl aya::Pod for AddrKey {}

/// Registers the ring buffer for readiness polling on the current tokio
/// runtime (must be called from within one).
pub fn async_ring_buf(ring: RingBuf<MapData>) -> std::io::Result<AsyncFd<RingBuf<MapData>>> {
    // SAFETY: (2) above: the descriptor is owned by `ring`, which moves
    // into the AsyncFd and lives exactly as long as the registration.
    unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
        .map_err(|e| e.into_parts().1)
}
