//! Whether a request may go: rules from `policies/*.toml` matched against
//! the caller's identity, the local process and the request, in a fixed
//! order — files by name, rules in file order, first match wins, else the
//! default. Owns the rule schema (docs/policy.md), loading with file:line
//! errors, and the live policy that reloads without ever dropping to none.

pub(crate) mod explain;
mod live;
mod load;
mod matcher;
#[cfg(test)]
mod tests;

pub use live::PolicySource;
pub(crate) use live::{LivePolicy, Reloaded};
pub(crate) use load::{PolicyError, compile, embedded, load_dir};

use std::time::Duration;

use crate::core::Identity;
use crate::core::{Action, Decision, ProcessInfo, ResponseMasking};
use matcher::Conditions;

/// One compiled rule.
#[derive(Clone, Debug)]
pub struct Rule {
    pub name: String,
    pub action: Action,
    pub reason: String,
    /// For `approve`: how long to wait before denying (none: the
    /// `approval.timeout` setting).
    pub timeout: Option<Duration>,
    /// `pass`: responses reach the client unmasked (the audit copy is
    /// masked regardless).
    pub response: ResponseMasking,
    /// `file:line` it came from, for `explain` and errors.
    pub origin: String,
    when: Conditions,
}

/// What is being decided about.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    pub identity: &'a Identity,
    pub process: &'a ProcessInfo,
    pub method: &'a str,
    pub host: &'a str,
    pub port: u16,
    pub path: &'a str,
    pub operation: &'a str,
    /// Detectors that found secrets in the request body (empty until the
    /// body has been scanned).
    pub secrets: &'a [&'static str],
}

/// A complete, validated rule set.
#[derive(Clone, Debug)]
pub struct Policy {
    rules: Vec<Rule>,
    default_action: Action,
    default_reason: String,
    /// Files it was read from, in evaluation order.
    files: Vec<String>,
    /// A digest of the files' names and texts (see `load::version`).
    version: String,
    loaded_at: std::time::SystemTime,
}

impl Policy {
    /// The first matching rule's decision, else the default.
    pub fn decide(&self, s: &Subject<'_>) -> Decision {
        self.decision(self.rules.iter().find(|r| r.when.matches(s)))
    }

    /// A passed-through TLS connection naming `sni`, judged at connect
    /// time: the first connection rule (`tls.sni`) that matches, else the
    /// default — so with `[defaults] action = "deny"` only listed endpoints
    /// are reached.
    pub(crate) fn decide_connection(&self, sni: Option<&str>, process: &ProcessInfo) -> Decision {
        self.decision(
            self.rules
                .iter()
                .find(|r| r.when.matches_connection(sni, process)),
        )
    }

    fn decision(&self, rule: Option<&Rule>) -> Decision {
        match rule {
            Some(r) => Decision {
                action: r.action,
                rule: Some(r.name.clone()),
                reason: r.reason.clone(),
                timeout: r.timeout,
                response: r.response,
            },
            None => Decision {
                action: self.default_action,
                rule: None,
                reason: self.default_reason.clone(),
                timeout: None,
                response: ResponseMasking::Mask,
            },
        }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// Short content digest: equal rule sets, equal versions.
    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn loaded_at(&self) -> std::time::SystemTime {
        self.loaded_at
    }

    pub fn default_action(&self) -> Action {
        self.default_action
    }

    /// Where the rule named `name` is defined.
    pub fn origin(&self, name: &str) -> Option<&str> {
        self.rules
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.origin.as_str())
    }
}
