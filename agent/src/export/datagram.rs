//! Syslog in datagrams, one message each: UDP (RFC 5426) to a network
//! receiver, or a local socket such as `/dev/log`. Nothing comes back, so
//! nothing is proven: best effort. A UDP message the network refuses is
//! dropped and counted, never retried — a receiver that is down must not
//! hold the exporter back; a local socket's refusal (its daemon
//! restarting) is an error, and the message goes again once it is back.

use std::path::Path;

use tokio::net::{UdpSocket, UnixDatagram};

use super::ExportError;
use super::link::{Sent, io_timeout};
use crate::config::HostPort;

pub(super) enum Datagram {
    Udp(UdpSocket),
    Unix(UnixDatagram),
}

impl Datagram {
    pub(super) async fn udp(hp: &HostPort) -> Result<Self, ExportError> {
        let to = format!("{}:{}", hp.host, hp.port);
        let failed = |e: std::io::Error| ExportError::Connect {
            to: to.clone(),
            why: e.to_string(),
        };
        let addr = tokio::net::lookup_host((hp.host.as_str(), hp.port))
            .await
            .map_err(failed)?
            .next()
            .ok_or_else(|| failed(std::io::ErrorKind::NotFound.into()))?;
        let any: std::net::SocketAddr = if addr.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(any).await.map_err(failed)?;
        socket.connect(addr).await.map_err(failed)?;
        Ok(Self::Udp(socket))
    }

    pub(super) fn unix(path: &Path) -> Result<Self, ExportError> {
        let socket = UnixDatagram::unbound()?;
        socket.connect(path).map_err(|e| ExportError::Connect {
            to: path.display().to_string(),
            why: e.to_string(),
        })?;
        Ok(Self::Unix(socket))
    }

    pub(super) async fn send(&mut self, message: &[u8]) -> Result<Sent, ExportError> {
        match self {
            Self::Udp(s) => Ok(match s.send(message).await {
                Ok(_) => Sent::Pending,
                Err(_) => Sent::Dropped,
            }),
            Self::Unix(s) => io_timeout("send", s.send(message))
                .await
                .map(|_| Sent::Pending),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_message_per_datagram_over_udp_and_a_local_socket() {
        let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = receiver.local_addr().unwrap().port();
        let mut udp = Datagram::udp(&HostPort {
            host: "127.0.0.1".into(),
            port,
        })
        .await
        .unwrap();
        assert_eq!(udp.send(b"<14>1 a").await.unwrap(), Sent::Pending);
        let mut buf = [0u8; 64];
        let n = receiver.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"<14>1 a");

        let dir = crate::scratch_dir("export-dgram");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log");
        let local = UnixDatagram::bind(&path).unwrap();
        let mut unix = Datagram::unix(&path).unwrap();
        unix.send(b"<14>1 b").await.unwrap();
        let n = local.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"<14>1 b");
        drop(local);
        assert!(unix.send(b"<14>1 c").await.is_err(), "the daemon is gone");
        assert!(Datagram::unix(&dir.join("none")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
