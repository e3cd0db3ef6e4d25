//! `[console]`: where `airlock console`, the approvers' web page, listens.
//! Single-host mode only: the console tells who is calling by the process
//! at the other end of a loopback connection, so it listens on loopback and
//! nowhere else.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use serde::{Deserialize, Serialize};

/// Where the console listens: loopback, a port of its own.
pub(crate) const DEFAULT_CONSOLE_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8765));

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// A loopback `ip:port` (`127.0.0.1:8765`, `[::1]:8765`).
    pub listen: SocketAddr,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_CONSOLE_LISTEN,
        }
    }
}

impl ConsoleConfig {
    pub(super) fn validate(&self) -> Result<(), (&'static str, String)> {
        // Off loopback, the peer of a connection is another machine: the
        // console could neither find its process nor tell an approver from
        // the agent, and cookies would cross the network in clear.
        if !self.listen.ip().is_loopback() {
            return Err((
                "console.listen",
                format!(
                    "{} is not a loopback address: the console identifies its callers by the process at the other end of a loopback connection (127.0.0.1:8765 or [::1]:8765)",
                    self.listen
                ),
            ));
        }
        if self.listen.port() == 0 {
            return Err((
                "console.listen",
                "needs a port: it is in the login link".to_owned(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_listens_on_loopback_only() {
        assert!(ConsoleConfig::default().validate().is_ok());
        let v6 = ConsoleConfig {
            listen: "[::1]:9000".parse().unwrap(),
        };
        assert!(v6.validate().is_ok());
        for bad in ["0.0.0.0:8765", "192.0.2.7:8765", "[::]:8765", "127.0.0.1:0"] {
            let c = ConsoleConfig {
                listen: bad.parse().unwrap(),
            };
            let (key, why) = c.validate().unwrap_err();
            assert_eq!(key, "console.listen", "{bad}");
            assert!(why.contains("loopback") || why.contains("port"), "{why}");
        }
    }
}
