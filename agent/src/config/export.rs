//! `[export.syslog]`: where this host streams its trail for a SIEM — a
//! syslog receiver named by one URL whose scheme is the transport and its
//! delivery promise (docs/audit.md, "Syslog for the SIEM").

use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The largest message sent, in bytes (header, structured data and the
/// record's JSON): what rsyslog receives once `maxMessageSize` is 64k.
pub(crate) const DEFAULT_MAX_MESSAGE_BYTES: usize = 65536;
/// RFC 5424 §6.1: every receiver takes 480 bytes and SHOULD take 2048; a
/// cap below that could not carry a record's identifying fields.
const MIN_MESSAGE_BYTES: usize = 2048;
/// Above this a message is no longer one record but a bulk transfer.
const MAX_MESSAGE_BYTES: usize = 16 << 20;
/// The largest UDP payload over IPv4 (65535 − IP and UDP headers).
const UDP_PAYLOAD: usize = 65507;
/// The facility when none is named: `local0`, what SIEM inputs key on
/// by convention for an application's audit stream.
pub(crate) const DEFAULT_FACILITY: &str = "local0";

/// `[export]`: copies of the trail sent elsewhere as it is written.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExportConfig {
    /// Unset: nothing is sent to syslog.
    pub syslog: Option<SyslogConfig>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    /// `relp://HOST:PORT`, `tcp+tls://HOST:PORT`, `tcp://HOST:PORT`,
    /// `udp://HOST:PORT` or `unix:///dev/log`.
    pub target: String,
    /// PEM file: the only CAs trusted for a `tcp+tls://` receiver; else
    /// the system's roots. The receiver is always verified.
    #[serde(default)]
    pub tls_roots: Option<PathBuf>,
    /// Messages above this are cut (excerpts first), still valid JSON.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// RFC 5424 facility: `user`, `daemon`, `auth`, `authpriv`, `audit`,
    /// `local0` … `local7`.
    #[serde(default = "default_facility")]
    pub facility: String,
}

fn default_max_message_bytes() -> usize {
    DEFAULT_MAX_MESSAGE_BYTES
}

fn default_facility() -> String {
    DEFAULT_FACILITY.to_owned()
}

/// A parsed `export.syslog.target`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SyslogTarget {
    /// RELP (rsyslog's `imrelp`): each message acknowledged.
    Relp(HostPort),
    /// RFC 5425: octet-counted over TLS, the receiver verified.
    Tls(HostPort),
    /// RFC 6587 octet counting over plain TCP.
    Tcp(HostPort),
    /// RFC 5426, one datagram per message.
    Udp(HostPort),
    /// A local datagram socket (`/dev/log`).
    Unix(PathBuf),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HostPort {
    /// A name or an address (brackets taken off an IPv6 one).
    pub host: String,
    pub port: u16,
}

impl HostPort {
    /// Whether the records stay on this host on their way.
    fn is_loopback(&self) -> bool {
        match self.host.parse::<IpAddr>() {
            Ok(ip) => ip.is_loopback(),
            Err(_) => self.host == "localhost",
        }
    }
}

impl SyslogTarget {
    /// Whether records cross a network in clear to reach it.
    fn in_clear_off_host(&self) -> bool {
        match self {
            Self::Relp(hp) | Self::Tcp(hp) | Self::Udp(hp) => !hp.is_loopback(),
            Self::Tls(_) | Self::Unix(_) => false,
        }
    }
}

impl SyslogConfig {
    /// Sending to `target`, everything else as defaulted.
    pub(crate) fn to(target: String) -> Self {
        Self {
            target,
            tls_roots: None,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            facility: DEFAULT_FACILITY.to_owned(),
        }
    }

    pub(crate) fn target(&self) -> Result<SyslogTarget, String> {
        parse_target(&self.target)
    }

    /// The RFC 5424 facility's number (validated at load).
    pub(crate) fn facility_code(&self) -> u8 {
        facility(&self.facility).expect("validated at load")
    }

    /// The cap a message is cut to: `max_message_bytes`, within what one
    /// UDP datagram can carry for `udp://`.
    pub(crate) fn cap(&self) -> usize {
        match self.target() {
            Ok(SyslogTarget::Udp(_)) => self.max_message_bytes.min(UDP_PAYLOAD),
            _ => self.max_message_bytes,
        }
    }
}

impl ExportConfig {
    pub(super) fn weakened(&self, out: &mut Vec<&'static str>) {
        if let Some(s) = &self.syslog
            && s.target().is_ok_and(|t| t.in_clear_off_host())
        {
            out.push(
                "export.syslog.target is relp://, tcp:// or udp:// to a host other than this one: the trail crosses the network in clear (use tcp+tls://)",
            );
        }
    }

    pub(super) fn validate(&self) -> Result<(), (&'static str, String)> {
        let Some(s) = &self.syslog else {
            return Ok(());
        };
        let target = s.target().map_err(|e| ("export.syslog.target", e))?;
        if s.tls_roots.is_some() && !matches!(target, SyslogTarget::Tls(_)) {
            return Err((
                "export.syslog.tls_roots",
                "only a tcp+tls:// target has a certificate to verify".into(),
            ));
        }
        if !(MIN_MESSAGE_BYTES..=MAX_MESSAGE_BYTES).contains(&s.max_message_bytes) {
            return Err((
                "export.syslog.max_message_bytes",
                format!("must be from {MIN_MESSAGE_BYTES} to {MAX_MESSAGE_BYTES}"),
            ));
        }
        if facility(&s.facility).is_none() {
            return Err((
                "export.syslog.facility",
                format!(
                    "{:?} is not one of user, daemon, auth, authpriv, audit, local0 … local7",
                    s.facility
                ),
            ));
        }
        Ok(())
    }
}

/// RFC 5424 §6.2.1's numbers for the facilities an audit stream may use.
fn facility(name: &str) -> Option<u8> {
    Some(match name {
        "user" => 1,
        "daemon" => 3,
        "auth" => 4,
        "authpriv" => 10,
        "audit" => 13,
        _ => {
            let n: u8 = name.strip_prefix("local")?.parse().ok()?;
            if n > 7 {
                return None;
            }
            16 + n
        }
    })
}

fn parse_target(url: &str) -> Result<SyslogTarget, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or("must be a URL: relp://, tcp+tls://, tcp://, udp:// or unix://")?;
    if scheme == "unix" {
        if !rest.starts_with('/') {
            return Err("unix:// needs an absolute path (unix:///dev/log)".into());
        }
        return Ok(SyslogTarget::Unix(PathBuf::from(rest)));
    }
    // The well-known ports: RFC 5425 (6514), RFC 5426 (514), rsyslog's
    // RELP examples (2514), RFC 3195's syslog-conn (601) for plain TCP.
    let (make, port): (fn(HostPort) -> SyslogTarget, u16) = match scheme {
        "relp" => (SyslogTarget::Relp, 2514),
        "tcp+tls" => (SyslogTarget::Tls, 6514),
        "tcp" => (SyslogTarget::Tcp, 601),
        "udp" => (SyslogTarget::Udp, 514),
        other => {
            return Err(format!(
                "{other}:// is not a syslog transport airlock speaks"
            ));
        }
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
        return Err("must be SCHEME://HOST[:PORT] and nothing else".into());
    }
    let (host, port) = split_host_port(authority, port)?;
    Ok(make(HostPort { host, port }))
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn split_host_port(authority: &str, default: u16) -> Result<(String, u16), String> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("an IPv6 address lacks its ]")?;
        host.parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("{host} is not an IPv6 address"))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => default,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("{p:?} is not a port"))?,
    };
    if host.is_empty() {
        return Err("names no host".into());
    }
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hp(host: &str, port: u16) -> HostPort {
        HostPort {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn targets_parse_with_their_default_ports() {
        for (url, want) in [
            (
                "relp://siem.example.com",
                SyslogTarget::Relp(hp("siem.example.com", 2514)),
            ),
            (
                "tcp+tls://10.0.0.5:1514",
                SyslogTarget::Tls(hp("10.0.0.5", 1514)),
            ),
            ("tcp://[::1]:601/", SyslogTarget::Tcp(hp("::1", 601))),
            ("udp://[fd00::1]", SyslogTarget::Udp(hp("fd00::1", 514))),
            ("unix:///dev/log", SyslogTarget::Unix("/dev/log".into())),
        ] {
            assert_eq!(parse_target(url), Ok(want), "{url}");
        }
        for (url, says) in [
            ("siem:514", "must be a URL"),
            ("http://siem", "not a syslog transport"),
            ("tcp://siem:0", "not a port"),
            ("tcp://siem:x", "not a port"),
            ("tcp://u@siem", "nothing else"),
            ("tcp://[::1", "lacks its ]"),
            ("unix://dev/log", "absolute path"),
            ("udp://:514", "names no host"),
        ] {
            let e = parse_target(url).expect_err(url);
            assert!(e.contains(says), "{url}: {e}");
        }
    }

    #[test]
    fn clear_text_off_the_host_is_weakened_and_udp_fits_a_datagram() {
        let weakened = |target: &str| {
            let mut out = Vec::new();
            ExportConfig {
                syslog: Some(SyslogConfig {
                    target: target.into(),
                    tls_roots: None,
                    max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
                    facility: DEFAULT_FACILITY.into(),
                }),
            }
            .weakened(&mut out);
            out.len()
        };
        assert_eq!(weakened("tcp://siem.example.com"), 1);
        assert_eq!(weakened("relp://10.1.2.3"), 1);
        assert_eq!(weakened("udp://siem.example.com"), 1);
        assert_eq!(weakened("tcp+tls://siem.example.com"), 0);
        assert_eq!(weakened("relp://127.0.0.1"), 0);
        assert_eq!(weakened("tcp://[::1]"), 0);
        assert_eq!(weakened("udp://localhost"), 0);
        assert_eq!(weakened("unix:///dev/log"), 0);
        let udp = SyslogConfig {
            target: "udp://siem".into(),
            tls_roots: None,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            facility: "audit".into(),
        };
        assert_eq!(udp.cap(), UDP_PAYLOAD);
        assert_eq!(udp.facility_code(), 13);
        assert_eq!(facility("local7"), Some(23));
        assert_eq!(facility("local8"), None);
        assert_eq!(facility("kern"), None);
    }
}
