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

/// When process `pid` started (field 22 of /proc/PID/stat).
fn started(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name (field 2) may hold spaces and parentheses: count from the
    // last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connected_peer_is_pinned_and_seen_to_be_itself() {
        let (a, b) = UnixStream::pair().unwrap();
        let peer = Peer::of(&a).unwrap();
        assert_eq!(peer.pid, Some(std::process::id()));
        assert_eq!(peer.uid, unsafe_free_uid());
        assert!(peer.unchanged());
        assert!(
            matches!(peer.pin, Pin::PidFd(_)),
            "this kernel has SO_PEERPIDFD"
        );
        drop(b);
        assert!(started(std::process::id()).is_some());
        assert_eq!(started(u32::MAX), None);
    }

    /// This process's real uid, from /proc (no libc call).
    fn unsafe_free_uid() -> u32 {
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|v| v.split_whitespace().next())
            .unwrap()
            .parse()
            .unwrap()
    }
}
