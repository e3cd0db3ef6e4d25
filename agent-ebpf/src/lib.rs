//! airlock's eBPF object (compiled from `bpf/*.c` by build.rs) and the Rust
//! mirrors of the structs it shares with userspace.

mod shared;
mod sys;

pub use shared::{AddrKey, Config, Event, EventKind, Orig, Tracked, flags};
pub use sys::{
    async_ring_buf, group_by_name, group_ids_of, install_seccomp_filter, keep_only_capabilities,
    netns_cookie, peer_pidfd, raise_nofile_limit, set_freebind, user_by_uid,
};

/// The compiled capture object (`bpf/capture.bpf.c`), aligned for the ELF
/// parser.
pub static CAPTURE_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/capture.bpf.o"));

/// Names of the programs in [`CAPTURE_OBJECT`], as the loader attaches them.
pub mod programs {
    pub const CONNECT4: &str = "airlock_connect4";
    pub const CONNECT6: &str = "airlock_connect6";
    pub const SENDMSG4: &str = "airlock_sendmsg4";
    pub const SENDMSG6: &str = "airlock_sendmsg6";
    pub const GETPEERNAME4: &str = "airlock_getpeername4";
    pub const GETPEERNAME6: &str = "airlock_getpeername6";
    pub const SOCKOPS: &str = "airlock_sockops";
    pub const FORK: &str = "airlock_fork";
    pub const EXIT: &str = "airlock_exit";
    pub const RENAME: &str = "airlock_rename";
    pub const EXEC: &str = "airlock_exec";
    pub const CREDS: &str = "airlock_creds";
    pub const CGROUP_MKDIR: &str = "airlock_cgroup_mkdir";
}

/// Names of the maps in [`CAPTURE_OBJECT`].
pub mod maps {
    pub const CONFIG: &str = "AIRLOCK_CONFIG";
    pub const PORTS: &str = "AIRLOCK_PORTS";
    pub const DESTS: &str = "AIRLOCK_DESTS";
    pub const COMMS: &str = "AIRLOCK_COMMS";
    pub const UIDS: &str = "AIRLOCK_UIDS";
    pub const BY_COOKIE: &str = "AIRLOCK_BY_COOKIE";
    pub const BY_PEER: &str = "AIRLOCK_BY_PEER";
    pub const TRACKED: &str = "AIRLOCK_TRACKED";
    pub const UNTRACKED: &str = "AIRLOCK_UNTRACKED";
    pub const EPOCH: &str = "AIRLOCK_EPOCH";
    pub const EVENTS: &str = "AIRLOCK_EVENTS";
}
