//! The process at the other end of a loopback TCP connection: the
//! kernel's socket table (`/proc/net/tcp`, `/proc/net/tcp6`) names the
//! peer's socket by its addresses — its inode and owner — and the
//! processes holding that inode are found in `/proc/PID/fd`. What cannot
//! be found is reported as such; the caller refuses it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The peer socket of one connection and who holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct PeerProcess {
    /// The socket's owner, as the kernel's table says.
    pub uid: u32,
    /// Every process with the socket open (a fork shares it); empty when
    /// none could be read (another user's, a process already gone).
    pub pids: Vec<u32>,
}

/// The peer of the connection we accepted from `peer` on `local`: its
/// socket is the one whose local end is `peer` and remote end `local`.
/// `None` when no such socket is in the table (the peer already closed).
/// Reads /proc: call from a blocking thread.
pub(super) fn find(local: SocketAddr, peer: SocketAddr) -> Option<PeerProcess> {
    let (local, peer) = (unmap(local), unmap(peer));
    let table = match peer {
        SocketAddr::V4(_) => "/proc/net/tcp",
        SocketAddr::V6(_) => "/proc/net/tcp6",
    };
    let text = std::fs::read_to_string(table).ok()?;
    let (uid, inode) = socket_of(&text, peer, local)?;
    Some(PeerProcess {
        uid,
        pids: holders(inode),
    })
}

/// An IPv4 peer seen through an IPv6 socket (`::ffff:127.0.0.1`) is in
/// the IPv4 table.
fn unmap(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => a,
        },
        a => a,
    }
}

/// Owner uid and inode of the socket from `from` to `to` in a
/// `/proc/net/tcp{,6}` table.
fn socket_of(table: &str, from: SocketAddr, to: SocketAddr) -> Option<(u32, u64)> {
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        // sl local rem st tx:rx tr:when retrnsmt uid timeout inode …
        let (l, r, uid, inode) = (f.get(1)?, f.get(2)?, f.get(7)?, f.get(9)?);
        (parse_addr(l)? == from && parse_addr(r)? == to)
            .then(|| Some((uid.parse().ok()?, inode.parse().ok()?)))
            .flatten()
    })
}

/// `0100007F:1F90` (IPv4) or 32 hex digits `:PORT` (IPv6): the address
/// as the kernel printed it, each 32-bit word in this host's byte order.
fn parse_addr(s: &str) -> Option<SocketAddr> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Vec<[u8; 4]> = (0..ip.len() / 8)
        .map(|i| {
            u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16)
                .ok()
                .map(u32::to_ne_bytes)
        })
        .collect::<Option<_>>()?;
    let ip = match words.as_slice() {
        [w] if ip.len() == 8 => IpAddr::V4(Ipv4Addr::from(*w)),
        [a, b, c, d] if ip.len() == 32 => {
            let mut bytes = [0u8; 16];
            for (i, w) in [a, b, c, d].iter().enumerate() {
                bytes[i * 4..i * 4 + 4].copy_from_slice(*w);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// The pids whose descriptor table holds `socket:[inode]`, of those this
/// process may read.
fn holders(inode: u64) -> Vec<u32> {
    let want = format!("socket:[{inode}]");
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|target| target.as_os_str() == want.as_str())
        });
        if holds {
            out.push(pid);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_addresses_parse_in_host_order() {
        let v4 = parse_addr("0100007F:223D").unwrap();
        assert_eq!(v4, "127.0.0.1:8765".parse().unwrap());
        let v6 = parse_addr("00000000000000000000000001000000:223D").unwrap();
        assert_eq!(v6, "[::1]:8765".parse().unwrap());
        assert_eq!(parse_addr("0100007F"), None);
        assert_eq!(parse_addr("zz00007F:0050"), None);
        assert_eq!(parse_addr("0100007F00:0050"), None);
    }

    #[test]
    fn the_row_is_the_peers_own_socket() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
           0: 0100007F:223D 0100007F:A000 01 00000000:00000000 00:00000000 00000000     0        0 111 1 0\n\
           1: 0100007F:A000 0100007F:223D 01 00000000:00000000 00:00000000 00000000  1000        0 222 1 0\n";
        let console = "127.0.0.1:8765".parse().unwrap();
        let browser = "127.0.0.1:40960".parse().unwrap();
        assert_eq!(socket_of(table, browser, console), Some((1000, 222)));
        assert_eq!(socket_of(table, console, browser), Some((0, 111)));
        assert_eq!(
            socket_of(table, browser, "127.0.0.1:1".parse().unwrap()),
            None
        );
    }

    #[test]
    fn a_live_loopback_connection_is_found_with_this_process_holding_it() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_accepted, from) = listener.accept().unwrap();
        assert_eq!(from, client.local_addr().unwrap());
        let found = find(listener.local_addr().unwrap(), from).expect("in the table");
        assert_eq!(
            Some(found.uid),
            crate::capture::process::real_uid(std::process::id())
        );
        assert!(found.pids.contains(&std::process::id()), "{found:?}");
        let v6 = std::net::TcpListener::bind("[::1]:0").unwrap();
        let c6 = std::net::TcpStream::connect(v6.local_addr().unwrap()).unwrap();
        let (_a6, from6) = v6.accept().unwrap();
        let found = find(v6.local_addr().unwrap(), from6).expect("in the tcp6 table");
        assert!(found.pids.contains(&std::process::id()), "{found:?}");
        drop((client, c6));
    }
}
