//! Reading policy files: TOML, every key known, every value checked, and
//! any error reported as `file:line:column: reason`. A set is all or
//! nothing: one bad file rejects the whole load.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::matcher::{Conditions, IdentityWhen, ProcessWhen, RequestWhen, TlsWhen};
use super::{Policy, Rule};
use crate::config::line_col;
use crate::core::{Action, ResponseMasking};

/// The policies shipped in the repository's `policies/`, built in so a
/// host with no policy directory still runs the documented defaults.
const EMBEDDED: &[(&str, &str)] = &[
    (
        "00-defaults.toml",
        include_str!("../../../policies/00-defaults.toml"),
    ),
    (
        "10-credentials.toml",
        include_str!("../../../policies/10-credentials.toml"),
    ),
    (
        "20-high-risk.toml",
        include_str!("../../../policies/20-high-risk.toml"),
    ),
    (
        "30-exfiltration.toml",
        include_str!("../../../policies/30-exfiltration.toml"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{}: cannot read: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{file}:{line}:{column}: {reason}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        reason: String,
    },
    #[error("{}: no *.toml policy file in it", .0.display())]
    Empty(PathBuf),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    defaults: Option<toml::Spanned<Defaults>>,
    #[serde(default, rename = "rule")]
    rules: Vec<toml::Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Defaults {
    action: Action,
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    action: Action,
    reason: String,
    timeout: Option<String>,
    #[serde(default)]
    response: ResponseMasking,
    #[serde(default)]
    identity: IdentityWhen,
    #[serde(default)]
    process: ProcessWhen,
    #[serde(default)]
    request: RequestWhen,
    #[serde(default)]
    tls: TlsWhen,
}

/// The built-in policy (the shipped `policies/`).
pub(crate) fn embedded() -> Result<Policy, PolicyError> {
    build(
        EMBEDDED
            .iter()
            .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
            .collect(),
    )
}

/// Every `*.toml` in `dir`, in file-name order.
pub(crate) fn load_dir(dir: &Path) -> Result<Policy, PolicyError> {
    let read_err = |error| PolicyError::Read {
        path: dir.to_owned(),
        error,
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read_err)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(PolicyError::Empty(dir.to_owned()));
    }
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(|error| PolicyError::Read {
            path: path.clone(),
            error,
        })?;
        files.push((path.display().to_string(), text));
    }
    build(files)
}

/// One policy file's text compiled on its own: how many rules it holds.
pub(crate) fn compile(name: &str, text: &str) -> Result<usize, PolicyError> {
    build(vec![(name.to_owned(), text.to_owned())]).map(|p| p.rules().len())
}

fn build(files: Vec<(String, String)>) -> Result<Policy, PolicyError> {
    let mut rules: Vec<Rule> = Vec::new();
    let mut default: Option<(Action, String, String)> = None;
    for (name, text) in &files {
        let at = |offset: usize, reason: String| {
            let (line, column) = line_col(text, offset);
            PolicyError::Invalid {
                file: name.clone(),
                line,
                column,
                reason,
            }
        };
        let file: File = toml::from_str(text).map_err(|e| {
            at(
                e.span().map_or(0, |s| s.start),
                e.message().trim().to_owned(),
            )
        })?;
        if let Some(d) = file.defaults {
            let offset = d.span().start;
            if let Some((_, _, first)) = &default {
                return Err(at(offset, format!("[defaults] is already set in {first}")));
            }
            let d = d.into_inner();
            let reason = d.reason.unwrap_or_else(|| "no rule matched".to_owned());
            default = Some((d.action, reason, name.clone()));
        }
        for spanned in file.rules {
            let offset = spanned.span().start;
            let raw = spanned.into_inner();
            let origin = format!("{name}:{}", line_col(text, offset).0);
            if raw.name.trim().is_empty() {
                return Err(at(offset, "rule name must not be empty".into()));
            }
            if let Some(prev) = rules.iter().find(|r| r.name == raw.name) {
                return Err(at(
                    offset,
                    format!("rule {:?} is already defined at {}", raw.name, prev.origin),
                ));
            }
            let when = Conditions::new(&raw.identity, &raw.process, &raw.request, &raw.tls)
                .map_err(|why| at(offset, format!("rule {:?}: {why}", raw.name)))?;
            if when.is_connection() && (when.about_requests() || raw.action == Action::Approve) {
                return Err(at(
                    offset,
                    format!(
                        "rule {:?}: a tls.sni rule judges passed-through connections at connect time, which carry no identity or request and cannot wait for approval: only tls and process conditions, and allow or deny",
                        raw.name
                    ),
                ));
            }
            let timeout =
                match &raw.timeout {
                    None => None,
                    Some(t) => Some(parse_timeout(t).map_err(|why| {
                        at(offset, format!("rule {:?}: timeout: {why}", raw.name))
                    })?),
                };
            if raw.timeout.is_some() && raw.action != Action::Approve {
                return Err(at(
                    offset,
                    format!(
                        "rule {:?}: timeout only applies to action = \"approve\"",
                        raw.name
                    ),
                ));
            }
            rules.push(Rule {
                name: raw.name,
                action: raw.action,
                reason: raw.reason,
                timeout,
                response: raw.response,
                origin,
                when,
            });
        }
    }
    // With no [defaults] anywhere, what no rule allows is refused.
    let (default_action, default_reason, _) = default.unwrap_or((
        Action::Deny,
        "no rule matched and no [defaults] is set".to_owned(),
        String::new(),
    ));
    Ok(Policy {
        rules,
        default_action,
        default_reason,
        version: version(&files),
        loaded_at: std::time::SystemTime::now(),
        files: files.into_iter().map(|(n, _)| n).collect(),
    })
}

/// The first 12 hex digits of a SHA-256 over every file's name and text:
/// equal sets give equal versions, so an operator can tell which rules a
/// host runs (`airlock status`) and whether a reload changed anything.
fn version(files: &[(String, String)]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for (name, text) in files {
        // Lengths first: ("ab","c") and ("a","bc") must not collide.
        for part in [name.as_bytes(), text.as_bytes()] {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
    }
    ctx.finish().as_ref()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e}"))?;
    if d.is_zero() || d > Duration::from_secs(24 * 3600) {
        return Err(format!("{s:?} must be between 1s and 24h"));
    }
    Ok(d)
}
