//! `[fleet]`: where this host ships its trail — a PostgreSQL URL, read the
//! way libpq reads it but for TLS: the driver's own modes cannot verify a
//! server, so airlock takes `sslmode` and `sslrootcert` out of the URL and
//! verifies the server itself (`verify-full` unless `sslmode=disable`).

use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Records shipped per transaction.
pub(super) const DEFAULT_BATCH_RECORDS: usize = 1000;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FleetConfig {
    /// `postgresql://ROLE@HOST:PORT/DB?sslmode=verify-full&sslrootcert=PATH`;
    /// unset: the trail stays on this host only.
    pub postgres: Option<String>,
    /// The role's password (its first line); else `PGPASSWORD`. Never in
    /// the URL: the config file is readable by more than the daemon.
    pub password_file: Option<PathBuf>,
    /// Records per transaction.
    pub batch_records: usize,
}

impl Default for FleetConfig {
    fn default() -> Self {
        Self {
            postgres: None,
            password_file: None,
            batch_records: DEFAULT_BATCH_RECORDS,
        }
    }
}

/// How airlock speaks TLS to PostgreSQL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PgTls {
    /// The server's certificate chain and name verified, against
    /// `sslrootcert` alone when given, else the system roots.
    VerifyFull { roots: Option<PathBuf> },
    /// `sslmode=disable`: in clear (listed as weakened).
    Disable,
}

/// A parsed `fleet.postgres`.
#[derive(Clone, Debug)]
pub(crate) struct PgTarget {
    /// Everything but TLS, as the driver reads it; its `ssl_mode` is set
    /// to match `tls`.
    pub config: tokio_postgres::Config,
    pub tls: PgTls,
}

impl FleetConfig {
    /// The parsed URL; `None` when no fleet is configured.
    pub(crate) fn target(&self) -> Result<Option<PgTarget>, String> {
        self.postgres.as_deref().map(parse_url).transpose()
    }

    pub(super) fn weakened(&self, out: &mut Vec<&'static str>) {
        if let Ok(Some(t)) = self.target()
            && t.tls == PgTls::Disable
        {
            out.push(
                "fleet.postgres with sslmode=disable: the trail and the host's database password cross the network in clear",
            );
        }
    }

    pub(super) fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.batch_records == 0 {
            return Err(("fleet.batch_records", "must be at least 1".into()));
        }
        self.target().map(drop).map_err(|e| ("fleet.postgres", e))
    }
}

/// Splits libpq's TLS parameters off a `postgresql://` URL.
fn parse_url(url: &str) -> Result<PgTarget, String> {
    let Some(rest) = url
        .strip_prefix("postgresql://")
        .or_else(|| url.strip_prefix("postgres://"))
    else {
        return Err("must be a postgresql:// URL".into());
    };
    let (authority_path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = authority_path.split('/').next().unwrap_or("");
    if authority
        .rsplit_once('@')
        .is_some_and(|(user, _)| user.contains(':'))
    {
        return Err(
            "has a password in it: put it in fleet.password_file (or PGPASSWORD) instead".into(),
        );
    }
    let mut mode = None;
    let mut roots = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = crate::core::percent_decode(value);
        match key {
            "sslmode" => mode = Some(value),
            "sslrootcert" => roots = Some(PathBuf::from(value)),
            "password" => {
                return Err(
                    "has a password in it: put it in fleet.password_file (or PGPASSWORD) instead"
                        .into(),
                );
            }
            "sslcert" | "sslkey" | "sslnegotiation" | "sslcompression" | "requiressl" => {
                return Err(format!("{key} is not supported"));
            }
            _ => kept.push(pair),
        }
    }
    let tls = match mode.as_deref() {
        None | Some("verify-full") => PgTls::VerifyFull { roots },
        Some("disable") if roots.is_none() => PgTls::Disable,
        Some("disable") => return Err("sslrootcert with sslmode=disable".into()),
        Some(other @ ("allow" | "prefer" | "require" | "verify-ca")) => {
            return Err(format!(
                "sslmode={other} does not verify the server's name: use verify-full (the default), or disable"
            ));
        }
        Some(other) => return Err(format!("sslmode={other} is not a mode")),
    };
    let stripped = if kept.is_empty() {
        format!("postgresql://{authority_path}")
    } else {
        format!("postgresql://{authority_path}?{}", kept.join("&"))
    };
    let mut config = tokio_postgres::Config::from_str(&stripped).map_err(|e| {
        use std::error::Error as _;
        match e.source() {
            Some(why) => format!("{e}: {why}"),
            None => e.to_string(),
        }
    })?;
    if config.get_user().is_none() {
        return Err("names no role (postgresql://ROLE@HOST/DB)".into());
    }
    config.ssl_mode(match tls {
        PgTls::VerifyFull { .. } => tokio_postgres::config::SslMode::Require,
        PgTls::Disable => tokio_postgres::config::SslMode::Disable,
    });
    Ok(PgTarget { config, tls })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> Result<PgTarget, String> {
        FleetConfig {
            postgres: Some(url.into()),
            ..FleetConfig::default()
        }
        .target()
        .map(Option::unwrap)
    }

    #[test]
    fn tls_is_verified_unless_disabled_and_the_ssl_parameters_are_airlocks() {
        let t = target("postgresql://runner7@db.example:5433/airlock?sslrootcert=%2Fetc%2Fca.pem&connect_timeout=5").unwrap();
        assert_eq!(
            t.tls,
            PgTls::VerifyFull {
                roots: Some("/etc/ca.pem".into())
            }
        );
        assert_eq!(t.config.get_user(), Some("runner7"));
        assert_eq!(t.config.get_dbname(), Some("airlock"));
        assert_eq!(t.config.get_ports(), [5433]);
        assert_eq!(
            t.config.get_connect_timeout(),
            Some(&std::time::Duration::from_secs(5))
        );
        let off = target("postgres://r@127.0.0.1/a?sslmode=disable").unwrap();
        assert_eq!(off.tls, PgTls::Disable);
        let mut weakened = Vec::new();
        FleetConfig {
            postgres: Some("postgres://r@127.0.0.1/a?sslmode=disable".into()),
            ..FleetConfig::default()
        }
        .weakened(&mut weakened);
        assert_eq!(weakened.len(), 1);
    }

    #[test]
    fn modes_that_do_not_verify_and_passwords_are_refused_with_why() {
        for (url, says) in [
            ("postgresql://r@h/a?sslmode=require", "verify-full"),
            ("postgresql://r@h/a?sslmode=prefer", "verify-full"),
            ("postgresql://r:hunter2@h/a", "password_file"),
            ("postgresql://r@h/a?password=x", "password_file"),
            ("postgresql://r@h/a?sslcert=/c.pem", "not supported"),
            ("postgresql://h/a", "names no role"),
            ("mysql://r@h/a", "postgresql://"),
        ] {
            let e = target(url).expect_err(url);
            assert!(e.contains(says), "{url}: {e}");
        }
    }
}
