//! Newtypes for the addresses on the data path, so a client's address can
//! never be passed where an original destination is meant.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use serde::Serialize;

/// The captured client's address as the proxy sees it on accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub SocketAddr);

/// Where the client meant to connect before the eBPF redirect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OrigDstAddr(pub SocketAddr);

/// An address of one of the proxy's listeners.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ListenAddr(pub SocketAddr);

/// `ip:port` of an address, IPv4-mapped IPv6 shown as plain IPv4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
}

impl From<SocketAddr> for Endpoint {
    fn from(a: SocketAddr) -> Self {
        Self {
            ip: a.ip().to_canonical(),
            port: a.port(),
        }
    }
}

/// 16 bytes with IPv4 as `::ffff:a.b.c.d`: how the eBPF maps store addresses.
pub(crate) fn to_mapped_bytes(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// Inverse of [`to_mapped_bytes`]: a mapped address comes back as IPv4.
pub(crate) fn from_mapped_bytes(bytes: [u8; 16]) -> IpAddr {
    IpAddr::V6(Ipv6Addr::from(bytes)).to_canonical()
}

macro_rules! display_inner {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    )*};
}
display_inner!(ClientAddr, OrigDstAddr, ListenAddr);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_round_trip_keeps_family() {
        let v4: IpAddr = "20.1.2.3".parse().unwrap();
        let b = to_mapped_bytes(v4);
        assert_eq!(&b[..12], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
        assert_eq!(from_mapped_bytes(b), v4);
        let v6: IpAddr = "2603:1030::1".parse().unwrap();
        assert_eq!(from_mapped_bytes(to_mapped_bytes(v6)), v6);
    }

    #[test]
    fn endpoint_shows_mapped_as_v4() {
        let a: SocketAddr = "[::ffff:127.0.0.1]:443".parse().unwrap();
        let e = Endpoint::from(a);
        assert_eq!(e.ip.to_string(), "127.0.0.1");
        assert_eq!(e.port, 443);
    }
}
