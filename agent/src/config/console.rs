//! `[console]`: where `airlock console`, the approvers' web page, listens,
//! and — for its fleet mode — how it signs approvers in and serves HTTPS.
//! Single-host mode tells who is calling by the process at the other end
//! of a loopback connection, so it listens on loopback and nowhere else;
//! fleet mode (`issuer` set) signs people in with OpenID Connect and may
//! listen elsewhere, over HTTPS.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where the console listens: loopback, a port of its own.
pub(crate) const DEFAULT_CONSOLE_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8765));

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// `ip:port`: loopback in single-host mode (`127.0.0.1:8765`,
    /// `[::1]:8765`); anywhere in fleet mode, with `tls_cert`.
    pub listen: SocketAddr,
    /// Fleet mode: the console's origin as approvers' browsers reach it
    /// (`https://airlock.contoso.com:8443`): the only `Host` answered, the
    /// `Origin` decisions must come from, and the sign-in's redirect URI
    /// (`{url}/callback`). Default: `https://` (or, without `tls_cert`,
    /// `http://`) and `listen`; needed when `listen` is a wildcard.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// PEM certificate chain the console serves HTTPS with (with
    /// `tls_key`); required when `listen` is not loopback.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// OpenID Connect issuer approvers sign in with (`https://…`; its
    /// discovery document at `{issuer}/.well-known/openid-configuration`).
    /// Setting it selects fleet mode: the fleet's holds, decided through
    /// `[fleet] postgres`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The console's application (client) id at the issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// File holding the client secret (its first line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_file: Option<PathBuf>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_CONSOLE_LISTEN,
            url: None,
            tls_cert: None,
            tls_key: None,
            issuer: None,
            client_id: None,
            client_secret_file: None,
        }
    }
}

impl ConsoleConfig {
    /// Fleet mode: approvers sign in at `issuer`.
    pub(crate) fn fleet(&self) -> bool {
        self.issuer.is_some()
    }

    /// `fleet`: whether `[fleet] postgres` is set (fleet mode needs it).
    pub(super) fn validate(&self, fleet: bool) -> Result<(), (&'static str, String)> {
        if self.listen.port() == 0 {
            return Err((
                "console.listen",
                "needs a port: it is in the sign-in links".to_owned(),
            ));
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => {
                return Err((
                    "console.tls_key",
                    "console.tls_cert needs its key: set console.tls_key".to_owned(),
                ));
            }
            (None, Some(_)) => {
                return Err((
                    "console.tls_cert",
                    "console.tls_key needs its certificate: set console.tls_cert".to_owned(),
                ));
            }
            _ => {}
        }
        for (key, path) in [
            ("console.tls_cert", &self.tls_cert),
            ("console.tls_key", &self.tls_key),
            ("console.client_secret_file", &self.client_secret_file),
        ] {
            if path.as_ref().is_some_and(|p| !p.is_absolute()) {
                return Err((key, "must be an absolute path".to_owned()));
            }
        }
        let Some(issuer) = &self.issuer else {
            return self.validate_single_host();
        };
        let https = issuer
            .parse::<http::Uri>()
            .is_ok_and(|u| u.scheme_str() == Some("https") && u.host().is_some());
        if !https || issuer.contains(['?', '#']) {
            return Err((
                "console.issuer",
                format!("{issuer:?} is not an https:// issuer URL"),
            ));
        }
        if self
            .client_id
            .as_deref()
            .is_none_or(|c| c.trim().is_empty())
        {
            return Err((
                "console.client_id",
                "console.issuer needs the console's client id at the issuer".to_owned(),
            ));
        }
        if self.client_secret_file.is_none() {
            return Err((
                "console.client_secret_file",
                "console.issuer needs the file holding the console's client secret".to_owned(),
            ));
        }
        if !fleet {
            return Err((
                "console.issuer",
                "fleet mode decides through the fleet's database: set [fleet] postgres (a role in airlock_approver)".to_owned(),
            ));
        }
        // Off loopback, sessions and sign-in codes would cross the
        // network in clear.
        if !self.listen.ip().is_loopback() && self.tls_cert.is_none() {
            return Err((
                "console.listen",
                format!(
                    "{} is not a loopback address: set console.tls_cert and console.tls_key to serve HTTPS there",
                    self.listen
                ),
            ));
        }
        if let Some(url) = &self.url {
            let scheme = if self.tls_cert.is_some() {
                "https"
            } else {
                "http"
            };
            let ok = url.parse::<http::Uri>().is_ok_and(|u| {
                u.scheme_str() == Some(scheme)
                    && u.host().is_some()
                    && u.path_and_query().is_none_or(|p| p.as_str() == "/")
            });
            if !ok {
                return Err((
                    "console.url",
                    format!(
                        "{url:?} is not a {scheme}:// origin (scheme, host and port only; {scheme}, as console.tls_cert is {})",
                        if self.tls_cert.is_some() {
                            "set"
                        } else {
                            "not set"
                        }
                    ),
                ));
            }
        } else if self.listen.ip().is_unspecified() {
            return Err((
                "console.url",
                format!(
                    "{} listens on every address: give the address browsers reach the console at (https://console.example:{})",
                    self.listen,
                    self.listen.port()
                ),
            ));
        }
        Ok(())
    }

    fn validate_single_host(&self) -> Result<(), (&'static str, String)> {
        // Off loopback, the peer of a connection is another machine: the
        // console could neither find its process nor tell an approver from
        // the agent.
        if !self.listen.ip().is_loopback() {
            return Err((
                "console.listen",
                format!(
                    "{} is not a loopback address: the console identifies its callers by the process at the other end of a loopback connection (127.0.0.1:8765 or [::1]:8765); only fleet mode (console.issuer) listens elsewhere",
                    self.listen
                ),
            ));
        }
        for (key, set) in [
            ("console.url", self.url.is_some()),
            ("console.client_id", self.client_id.is_some()),
            (
                "console.client_secret_file",
                self.client_secret_file.is_some(),
            ),
        ] {
            if set {
                return Err((key, "is for fleet mode: set console.issuer too".to_owned()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet_mode() -> ConsoleConfig {
        ConsoleConfig {
            issuer: Some("https://login.example/tenant/v2.0".into()),
            client_id: Some("app".into()),
            client_secret_file: Some("/etc/airlock/console-secret".into()),
            ..ConsoleConfig::default()
        }
    }

    #[test]
    fn single_host_mode_listens_on_loopback_only() {
        assert!(ConsoleConfig::default().validate(false).is_ok());
        let v6 = ConsoleConfig {
            listen: "[::1]:9000".parse().unwrap(),
            ..ConsoleConfig::default()
        };
        assert!(v6.validate(false).is_ok());
        for bad in ["0.0.0.0:8765", "192.0.2.7:8765", "[::]:8765", "127.0.0.1:0"] {
            let c = ConsoleConfig {
                listen: bad.parse().unwrap(),
                ..ConsoleConfig::default()
            };
            let (key, why) = c.validate(true).unwrap_err();
            assert_eq!(key, "console.listen", "{bad}");
            assert!(why.contains("loopback") || why.contains("port"), "{why}");
        }
        // With a certificate, still loopback only: only sign-in by a
        // person lets the console serve another machine.
        let c = ConsoleConfig {
            listen: "0.0.0.0:8765".parse().unwrap(),
            tls_cert: Some("/c.pem".into()),
            tls_key: Some("/k.pem".into()),
            ..ConsoleConfig::default()
        };
        assert_eq!(c.validate(true).unwrap_err().0, "console.listen");
        let c = ConsoleConfig {
            client_id: Some("app".into()),
            ..ConsoleConfig::default()
        };
        assert_eq!(c.validate(true).unwrap_err().0, "console.client_id");
    }

    #[test]
    fn fleet_mode_needs_its_client_the_fleet_and_https_off_loopback() {
        assert!(fleet_mode().validate(true).is_ok());
        assert_eq!(
            fleet_mode().validate(false).unwrap_err().0,
            "console.issuer"
        );
        let c = ConsoleConfig {
            client_id: None,
            ..fleet_mode()
        };
        assert_eq!(c.validate(true).unwrap_err().0, "console.client_id");
        let c = ConsoleConfig {
            client_secret_file: None,
            ..fleet_mode()
        };
        assert_eq!(
            c.validate(true).unwrap_err().0,
            "console.client_secret_file"
        );
        for bad in ["http://login.example", "login.example", "https://x/?a=b"] {
            let c = ConsoleConfig {
                issuer: Some(bad.into()),
                ..fleet_mode()
            };
            assert_eq!(c.validate(true).unwrap_err().0, "console.issuer", "{bad}");
        }
        let remote = ConsoleConfig {
            listen: "0.0.0.0:8443".parse().unwrap(),
            ..fleet_mode()
        };
        assert_eq!(remote.validate(true).unwrap_err().0, "console.listen");
        let c = ConsoleConfig {
            tls_cert: Some("/etc/airlock/console.pem".into()),
            ..remote.clone()
        };
        assert_eq!(c.validate(true).unwrap_err().0, "console.tls_key");
        let c = ConsoleConfig {
            tls_cert: Some("/etc/airlock/console.pem".into()),
            tls_key: Some("console.key".into()),
            ..remote.clone()
        };
        assert_eq!(c.validate(true).unwrap_err().0, "console.tls_key");
        let c = ConsoleConfig {
            tls_cert: Some("/etc/airlock/console.pem".into()),
            tls_key: Some("/etc/airlock/console.key".into()),
            ..remote
        };
        assert_eq!(c.validate(true).unwrap_err().0, "console.url", "a wildcard");
        let c = ConsoleConfig {
            url: Some("https://airlock.contoso.test:8443".into()),
            ..c
        };
        assert!(c.validate(true).is_ok());
        for bad in [
            "http://airlock.contoso.test:8443",
            "https://airlock.contoso.test/console",
            "https://airlock.contoso.test/?x",
            "airlock.contoso.test",
        ] {
            let c = ConsoleConfig {
                url: Some(bad.into()),
                ..c.clone()
            };
            assert_eq!(c.validate(true).unwrap_err().0, "console.url", "{bad}");
        }
    }
}
