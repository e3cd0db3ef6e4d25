//! `#[repr(C)]` mirrors of `bpf/airlock.h`, and their safe decoding from the
//! bytes the ring buffer hands out.

use std::mem::{offset_of, size_of};

/// `AIRLOCK_F_*`: bits of [`Config::flags`].
pub mod flags {
    pub const FILTER_COMM: u32 = 1 << 0;
    pub const FILTER_UID: u32 = 1 << 1;
    pub const FOLLOW_CHILDREN: u32 = 1 << 2;
    pub const HAVE_V6: u32 = 1 << 3;
    /// The rename tracepoints are attached: the programs may remember
    /// that a process's ancestry holds no match.
    pub const REMEMBER: u32 = 1 << 4;
}

/// `struct airlock_config`: written once by userspace before attaching.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    pub self_tgid: u32,
    pub flags: u32,
    /// IPv4 listener address, network order.
    pub proxy_ip4: [u8; 4],
    /// IPv6 listener address, network order.
    pub proxy_ip6: [u8; 16],
    pub proxy_port4: u16,
    pub proxy_port6: u16,
    pub max_depth: u32,
    /// Listener for other network namespaces (`proxy.listen_containers`),
    /// network order.
    pub containers_ip4: [u8; 4],
    /// Its port; 0: none (connects from other namespaces are refused).
    pub containers_port4: u16,
    pub _pad: u16,
    pub _pad2: u32,
    /// airlock's network namespace (its cookie); 0: unknown, every
    /// namespace is treated as airlock's.
    pub host_netns: u64,
}

/// `struct airlock_orig`: the original destination and the caller.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Orig {
    /// Original destination; IPv4 as `::ffff:a.b.c.d`.
    pub addr: [u8; 16],
    pub port: u16,
    pub family: u16,
    pub pid: u32,
    pub tgid: u32,
    pub uid: u32,
    pub gid: u32,
    /// Process id of the selected process whose selection brought the
    /// caller under capture (itself, or its ancestor); 0: none.
    pub agent: u32,
    pub cgroup_id: u64,
    /// The process's start, ns since boot.
    pub start_time: u64,
    /// The kernel's `self_exec_id`: moves at every exec.
    pub exec_id: u64,
    /// The socket's network namespace (its cookie).
    pub netns: u64,
    /// The agent's start, ns since boot (`start_boottime`).
    pub agent_start: u64,
    pub comm: [u8; 16],
}

/// `struct airlock_tracked`: a value of the descendants map.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tracked {
    /// When the tracked process started, ns since boot (`start_boottime`).
    pub born: u64,
    /// Its agent's start, likewise.
    pub agent_start: u64,
    /// Its agent: the selected process it descends from.
    pub agent: u32,
    pub _pad: u32,
}

/// `struct airlock_addr_key`: an address and port — the client's local
/// address as seen on accept (by-peer map), or a destination captured
/// whatever its port (destinations map).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AddrKey {
    /// IPv4 as `::ffff:a.b.c.d`.
    pub addr: [u8; 16],
    pub port: u16,
    pub _pad: u16,
}

/// `AIRLOCK_EV_*`: what an [`Event`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A TCP connect was redirected to the proxy.
    Redirect,
    /// A UDP connect/sendmsg to a captured port was refused.
    UdpRefused,
    /// An IPv6 connect was refused because there is no IPv6 listener.
    V6Refused,
    /// A child of a tracked or selected process could not be tracked (the
    /// tracking map is full): every process in the cgroup is captured now.
    Untracked,
    /// A connect from another network namespace was refused: no listener
    /// for containers, or an IPv6 destination.
    NetnsRefused,
    /// A cgroup was made (the record is empty): new capture cgroups may
    /// have appeared.
    Cgroup,
    /// A kind this build does not know (a newer object).
    Unknown(u32),
}

/// `struct airlock_event`, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub orig: Orig,
}

impl Event {
    /// Size of one ring-buffer record.
    pub const SIZE: usize = 8 + size_of::<Orig>();

    /// Decodes a ring-buffer record; `None` if it is too short.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < Self::SIZE {
            return None;
        }
        let kind = match u32_at(bytes, 0) {
            1 => EventKind::Redirect,
            2 => EventKind::UdpRefused,
            3 => EventKind::V6Refused,
            4 => EventKind::Untracked,
            5 => EventKind::NetnsRefused,
            6 => EventKind::Cgroup,
            k => EventKind::Unknown(k),
        };
        Some(Self {
            kind,
            orig: Orig::decode(&bytes[8..]),
        })
    }
}

impl Orig {
    /// Decodes from native-endian bytes laid out as `struct airlock_orig`;
    /// the caller guarantees `bytes.len() >= size_of::<Orig>()`.
    fn decode(b: &[u8]) -> Self {
        let mut addr = [0; 16];
        addr.copy_from_slice(&b[offset_of!(Orig, addr)..][..16]);
        let mut comm = [0; 16];
        comm.copy_from_slice(&b[offset_of!(Orig, comm)..][..16]);
        Self {
            addr,
            port: u16_at(b, offset_of!(Orig, port)),
            family: u16_at(b, offset_of!(Orig, family)),
            pid: u32_at(b, offset_of!(Orig, pid)),
            tgid: u32_at(b, offset_of!(Orig, tgid)),
            uid: u32_at(b, offset_of!(Orig, uid)),
            gid: u32_at(b, offset_of!(Orig, gid)),
            agent: u32_at(b, offset_of!(Orig, agent)),
            cgroup_id: u64_at(b, offset_of!(Orig, cgroup_id)),
            start_time: u64_at(b, offset_of!(Orig, start_time)),
            exec_id: u64_at(b, offset_of!(Orig, exec_id)),
            netns: u64_at(b, offset_of!(Orig, netns)),
            agent_start: u64_at(b, offset_of!(Orig, agent_start)),
            comm,
        }
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(b[at..at + 8].try_into().unwrap())
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(b[at..at + 4].try_into().unwrap())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(non_upper_case_globals, dead_code)]
    mod c {
        include!(concat!(env!("OUT_DIR"), "/layout.rs"));
    }

    #[test]
    fn config_layout_matches_c() {
        assert_eq!(size_of::<Config>(), c::SIZE_airlock_config);
        assert_eq!(
            offset_of!(Config, self_tgid),
            c::OFF_airlock_config_self_tgid
        );
        assert_eq!(offset_of!(Config, flags), c::OFF_airlock_config_flags);
        assert_eq!(
            offset_of!(Config, proxy_ip4),
            c::OFF_airlock_config_proxy_ip4
        );
        assert_eq!(
            offset_of!(Config, proxy_ip6),
            c::OFF_airlock_config_proxy_ip6
        );
        assert_eq!(
            offset_of!(Config, proxy_port4),
            c::OFF_airlock_config_proxy_port4
        );
        assert_eq!(
            offset_of!(Config, proxy_port6),
            c::OFF_airlock_config_proxy_port6
        );
        assert_eq!(
            offset_of!(Config, max_depth),
            c::OFF_airlock_config_max_depth
        );
        assert_eq!(
            offset_of!(Config, containers_ip4),
            c::OFF_airlock_config_containers_ip4
        );
        assert_eq!(
            offset_of!(Config, containers_port4),
            c::OFF_airlock_config_containers_port4
        );
        assert_eq!(
            offset_of!(Config, host_netns),
            c::OFF_airlock_config_host_netns
        );
    }

    #[test]
    fn orig_layout_matches_c() {
        assert_eq!(size_of::<Orig>(), c::SIZE_airlock_orig);
        assert_eq!(offset_of!(Orig, addr), c::OFF_airlock_orig_addr);
        assert_eq!(offset_of!(Orig, port), c::OFF_airlock_orig_port);
        assert_eq!(offset_of!(Orig, family), c::OFF_airlock_orig_family);
        assert_eq!(offset_of!(Orig, pid), c::OFF_airlock_orig_pid);
        assert_eq!(offset_of!(Orig, tgid), c::OFF_airlock_orig_tgid);
        assert_eq!(offset_of!(Orig, uid), c::OFF_airlock_orig_uid);
        assert_eq!(offset_of!(Orig, gid), c::OFF_airlock_orig_gid);
        assert_eq!(offset_of!(Orig, cgroup_id), c::OFF_airlock_orig_cgroup_id);
        assert_eq!(offset_of!(Orig, start_time), c::OFF_airlock_orig_start_time);
        assert_eq!(offset_of!(Orig, exec_id), c::OFF_airlock_orig_exec_id);
        assert_eq!(offset_of!(Orig, netns), c::OFF_airlock_orig_netns);
        assert_eq!(offset_of!(Orig, agent), c::OFF_airlock_orig_agent);
        assert_eq!(
            offset_of!(Orig, agent_start),
            c::OFF_airlock_orig_agent_start
        );
        assert_eq!(offset_of!(Orig, comm), c::OFF_airlock_orig_comm);
    }

    #[test]
    fn tracked_layout_matches_c() {
        assert_eq!(size_of::<Tracked>(), c::SIZE_airlock_tracked);
        assert_eq!(offset_of!(Tracked, born), c::OFF_airlock_tracked_born);
        assert_eq!(
            offset_of!(Tracked, agent_start),
            c::OFF_airlock_tracked_agent_start
        );
        assert_eq!(offset_of!(Tracked, agent), c::OFF_airlock_tracked_agent);
    }

    #[test]
    fn peer_key_and_event_layout_match_c() {
        assert_eq!(size_of::<AddrKey>(), c::SIZE_airlock_addr_key);
        assert_eq!(offset_of!(AddrKey, addr), c::OFF_airlock_addr_key_addr);
        assert_eq!(offset_of!(AddrKey, port), c::OFF_airlock_addr_key_port);
        assert_eq!(Event::SIZE, c::SIZE_airlock_event);
        assert_eq!(c::OFF_airlock_event_kind, 0);
        assert_eq!(c::OFF_airlock_event_orig, 8);
    }

    #[test]
    fn constants_match_c() {
        assert_eq!(flags::FILTER_COMM, c::F_FILTER_COMM);
        assert_eq!(flags::FILTER_UID, c::F_FILTER_UID);
        assert_eq!(flags::FOLLOW_CHILDREN, c::F_FOLLOW_CHILDREN);
        assert_eq!(flags::HAVE_V6, c::F_HAVE_V6);
        assert_eq!(flags::REMEMBER, c::F_REMEMBER);
        let kinds = [
            (c::EV_REDIRECT, EventKind::Redirect),
            (c::EV_UDP_REFUSED, EventKind::UdpRefused),
            (c::EV_V6_REFUSED, EventKind::V6Refused),
            (c::EV_UNTRACKED, EventKind::Untracked),
            (c::EV_NETNS_REFUSED, EventKind::NetnsRefused),
            (c::EV_CGROUP, EventKind::Cgroup),
        ];
        for (raw, kind) in kinds {
            let mut bytes = vec![0u8; Event::SIZE];
            bytes[..4].copy_from_slice(&raw.to_ne_bytes());
            assert_eq!(Event::decode(&bytes).unwrap().kind, kind);
        }
    }

    #[test]
    fn event_decodes_every_field() {
        let orig = Orig {
            addr: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 20, 1, 2, 3],
            port: 443,
            family: 2,
            pid: 101,
            tgid: 100,
            uid: 1001,
            gid: 1002,
            agent: 99,
            cgroup_id: 0x1122_3344_5566_7788,
            start_time: 0x0102_0304_0506_0708,
            exec_id: 3,
            netns: 0x4000_0000_0000_0009,
            agent_start: 0x0a0b_0c0d_0e0f_1011,
            comm: *b"curl\0\0\0\0\0\0\0\0\0\0\0\0",
        };
        let mut bytes = vec![0u8; Event::SIZE];
        bytes[..4].copy_from_slice(&1u32.to_ne_bytes());
        let o = 8;
        bytes[o..o + 16].copy_from_slice(&orig.addr);
        bytes[o + 16..o + 18].copy_from_slice(&orig.port.to_ne_bytes());
        bytes[o + 18..o + 20].copy_from_slice(&orig.family.to_ne_bytes());
        bytes[o + 20..o + 24].copy_from_slice(&orig.pid.to_ne_bytes());
        bytes[o + 24..o + 28].copy_from_slice(&orig.tgid.to_ne_bytes());
        bytes[o + 28..o + 32].copy_from_slice(&orig.uid.to_ne_bytes());
        bytes[o + 32..o + 36].copy_from_slice(&orig.gid.to_ne_bytes());
        bytes[o + 36..o + 40].copy_from_slice(&orig.agent.to_ne_bytes());
        bytes[o + 40..o + 48].copy_from_slice(&orig.cgroup_id.to_ne_bytes());
        bytes[o + 48..o + 56].copy_from_slice(&orig.start_time.to_ne_bytes());
        bytes[o + 56..o + 64].copy_from_slice(&orig.exec_id.to_ne_bytes());
        bytes[o + 64..o + 72].copy_from_slice(&orig.netns.to_ne_bytes());
        bytes[o + 72..o + 80].copy_from_slice(&orig.agent_start.to_ne_bytes());
        bytes[o + 80..o + 96].copy_from_slice(&orig.comm);
        let ev = Event::decode(&bytes).unwrap();
        assert_eq!(ev.kind, EventKind::Redirect);
        assert_eq!(ev.orig, orig);
        assert!(Event::decode(&bytes[..Event::SIZE - 1]).is_none());
    }
}
