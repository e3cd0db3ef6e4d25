//! The config file: one TOML document drives the daemon and every CLI
//! command. Owns the typed sections, their documented defaults, and the
//! file:line errors for anything wrong in them.

mod approval;
mod console;
mod error;
mod export;
mod fleet;
mod identity;
mod masking;
mod model;
mod policy;
mod sections;

pub(crate) use approval::{AdminConfig, ApprovalConfig};
pub(crate) use console::ConsoleConfig;
pub(crate) use error::ConfigError;
pub(crate) use export::{ExportConfig, HostPort, SyslogConfig, SyslogTarget};
pub use fleet::FleetConfig;
pub(crate) use fleet::PgTls;
pub(crate) use identity::IdentityConfig;
pub use identity::IssuerConfig;
pub(crate) use masking::MaskingConfig;
pub(crate) use model::ModelConfig;
pub(crate) use policy::PolicyConfig;
pub(crate) use sections::{
    AuditConfig, Durability, FailMode, OnAuditFailure, ProxyConfig, ProxyUrl, TlsConfig,
    WRITTEN_SYNC_INTERVAL_MS,
};
pub use sections::{CaptureConfig, NonTls};

use std::path::Path;

use serde::{Deserialize, Serialize};

/// Where the daemon and the CLI look when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/airlock/airlock.toml";

/// The whole configuration; every section not given has working defaults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub capture: CaptureConfig,
    pub proxy: ProxyConfig,
    pub tls: TlsConfig,
    pub audit: AuditConfig,
    pub identity: IdentityConfig,
    pub policy: PolicyConfig,
    pub masking: MaskingConfig,
    pub model: ModelConfig,
    pub approval: ApprovalConfig,
    pub admin: AdminConfig,
    pub console: ConsoleConfig,
    pub fleet: FleetConfig,
    pub export: ExportConfig,
}

impl Config {
    /// Reads and validates `path`. Errors name the file, line and reason.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_owned(),
            error,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates `text`; `origin` is the file name used in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
            ConfigError::Invalid {
                path: origin.to_owned(),
                line,
                column,
                reason: e.message().trim().to_owned(),
            }
        })?;
        config.validate().map_err(|(key, reason)| {
            let (line, column) = locate_key(text, key);
            ConfigError::Invalid {
                path: origin.to_owned(),
                line,
                column,
                reason: format!("{key}: {reason}"),
            }
        })?;
        Ok(config)
    }

    /// The parsed `proxy.intercept` list (validated at load).
    pub fn intercept(&self) -> crate::host::InterceptList {
        crate::host::InterceptList::parse(&self.proxy.intercept).expect("validated at load")
    }

    /// The effective configuration as TOML, defaults filled in.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config always serialises")
    }

    /// Every setting in force that weakens a security default, in words an
    /// operator can act on: the start record lists them (`weakened`) and
    /// the log warns of each.
    pub fn weakened(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        self.capture.weakened(&mut out);
        self.proxy.weakened(&mut out);
        self.audit.weakened(&mut out);
        self.approval.weakened(&mut out);
        self.fleet.weakened(&mut out);
        self.export.weakened(&mut out);
        // Across sections: an approver may release their own processes'
        // requests, and nothing tells the agent from them — capture spans
        // the whole host (no cgroup: the cgroup2 root) and selects no
        // process by name. With either, a captured process decides nothing.
        if self.approval.allow_self
            && self.capture.comm.is_empty()
            && self.capture.cgroup.is_empty()
        {
            out.push(
                "approval.allow_self = true with capture spanning the whole host and selecting no process by name: the agent cannot be told from its developer, so an agent running as an approver can approve its own requests (select it with capture.comm and follow_children, or give it a cgroup)",
            );
        }
        out
    }

    /// Checks the rules serde cannot express; `Err((dotted key, reason))`.
    fn validate(&self) -> Result<(), (&'static str, String)> {
        self.capture.validate()?;
        self.proxy.validate()?;
        self.tls.validate()?;
        self.audit.validate()?;
        self.identity.validate()?;
        self.masking.validate()?;
        self.model.validate()?;
        self.approval.validate()?;
        self.admin.validate()?;
        self.console.validate(self.fleet.postgres.is_some())?;
        self.fleet.validate()?;
        self.export.validate()
    }
}

/// 1-based line and column of byte `offset` in `text`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

/// Best-effort position of `section.key` in `text`: the line assigning the
/// key inside its `[section]`, else the section header, else line 1. The
/// key is the last part: `export.syslog.target` is `target` in
/// `[export.syslog]`.
fn locate_key(text: &str, dotted: &str) -> (usize, usize) {
    let (section, key) = dotted.rsplit_once('.').unwrap_or(("", dotted));
    let mut in_section = section.is_empty();
    let mut header = (1, 1);
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if let Some(name) = trimmed.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            in_section = name.trim() == section;
            if in_section {
                header = (i + 1, 1);
            }
            continue;
        }
        if in_section
            && trimmed
                .split_once('=')
                .is_some_and(|(k, _)| k.trim().trim_matches('"') == key)
        {
            return (i + 1, line.len() - line.trim_start().len() + 1);
        }
    }
    header
}

#[cfg(test)]
mod tests;
