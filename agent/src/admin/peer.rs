//! The process at the other end of an admin connection, as the kernel
//! names it: its uid and pid (SO_PEERCRED), pinned by a pidfd
//! (SO_PEERPIDFD, Linux 6.5+) — else by its start time — so that what is
//! read about it in /proc is known to be about that process, not a later
//! one that reused its pid.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use tokio::net::UnixStream;

#[derive(Debug)]
pub(super) struct Peer {
    pub uid: u32,
    /// `None` when the kernel gave no pid (a peer in another pid
    /// namespace).
    pub pid: Option<u32>,
    pin: Pin,
}

#[derive(Debug)]
enum Pin {
    PidFd(OwnedFd),
    /// Start time (clock ticks after boot, /proc/PID/stat field 22).
    Started(Option<u64>),
}

impl Peer {
    /// The peer of `stream`; `None` if the kernel has no credentials for it.
    pub(super) fn of(stream: &UnixStream) -> Option<Self> {
        let cred = stream.peer_cred().ok()?;
        let pid = cred
            .pid()
            .and_then(|p| u32::try_from(p).ok())
            .filter(|p| *p > 0);
        let pin = match airlock_ebpf::peer_pidfd(stream.as_fd()) {
            Ok(fd) => Pin::PidFd(fd),
            Err(_) => Pin::Started(pid.and_then(started)),
        };
        Some(Self {
            uid: cred.uid(),
            pid,
            pin,
        })
    }

    /// Whether the process that connected is still the one its pid names
    /// (call after reading /proc about it: it was that process throughout).
    pub(super) fn unchanged(&self) -> bool {
        let Some(pid) = self.pid else {
            return false;
        };
        match &self.pin {
            Pin::PidFd(fd) => pidfd_pid(fd) == Some(pid),
            Pin::Started(start) => start.is_some() && started(pid) == *start,
        }
    }
}

/// The pid a pidfd names now (`Pid:` in its fdinfo; -1 once the process
/// is gone, so `None`).
fn pidfd_pid(fd: &OwnedFd) -> Option<u32> {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("Pid:"))
        .and_then(|v| v.trim().parse::<i64>().ok())
        .and_then(|p| u32::try_from(p).ok())
}

/// When process `pid` started (clock ticks since boot).
fn started(pid: u32) -> Option<u64> {
    crate::capture::process::stat(pid)?.started
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connected_peer_is_pinned_and_seen_to_be_itself() {
        let (a, b) = UnixStream::pair().unwrap();
        let peer = Peer::of(&a).unwrap();
        assert_eq!(peer.pid, Some(std::process::id()));
        assert_eq!(
            Some(peer.uid),
            crate::capture::process::real_uid(std::process::id())
        );
        assert!(peer.unchanged());
        assert!(
            matches!(peer.pin, Pin::PidFd(_)),
            "this kernel has SO_PEERPIDFD"
        );
        drop(b);
    }
}
