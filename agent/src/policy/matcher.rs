//! One rule's conditions and how they meet a request. Conditions in a rule
//! combine with AND; the values listed for one condition with OR.

use std::time::Duration;

use serde::Deserialize;

use super::Subject;
use crate::core::CredentialKind;
use crate::core::{Glob, ProcessInfo};

/// `"x"` or `["x", "y"]` in a policy file.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T: Clone> OneOrMany<T> {
    pub(super) fn to_vec(&self) -> Vec<T> {
        match self {
            Self::One(v) => vec![v.clone()],
            Self::Many(v) => v.clone(),
        }
    }
}

/// `[rule.identity]` as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct IdentityWhen {
    /// `none`, `jwt`, `bearer`, `shared_key`, `sas`, `basic`.
    pub kind: Option<OneOrMany<String>>,
    pub verified: Option<bool>,
    /// The credential was checked against a configured issuer and failed.
    pub invalid: Option<bool>,
    pub issuer: Option<OneOrMany<String>>,
    pub tenant: Option<OneOrMany<String>>,
    /// Any of these in the token's `groups` (a token with groups overage
    /// never matches: its list is incomplete).
    pub groups: Option<OneOrMany<String>>,
    pub roles: Option<OneOrMany<String>>,
    pub app_id: Option<OneOrMany<String>>,
    pub upn: Option<OneOrMany<String>>,
    pub github_repository: Option<OneOrMany<String>>,
    pub github_actor: Option<OneOrMany<String>>,
    /// A SAS with no expiry, or valid for longer than this (`"24h"`).
    pub sas_lifetime_over: Option<String>,
}

/// `[rule.process]` as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ProcessWhen {
    pub comm: Option<OneOrMany<String>>,
    pub exe: Option<OneOrMany<String>>,
    pub uid: Option<OneOrMany<u32>>,
    pub cgroup: Option<OneOrMany<String>>,
}

/// `[rule.request]` as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RequestWhen {
    pub host: Option<OneOrMany<String>>,
    pub method: Option<OneOrMany<String>>,
    pub path: Option<OneOrMany<String>>,
    pub operation: Option<OneOrMany<String>>,
    pub port: Option<OneOrMany<u16>>,
    /// Any of these detectors found a secret in the request body
    /// (`private-key`, `storage-account-key`, `*` for any).
    pub secrets: Option<OneOrMany<String>>,
}

/// `[rule.tls]` as written: a rule with `sni` judges passed-through TLS
/// connections (hosts that are not intercepted) at connect time.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TlsWhen {
    pub sni: Option<OneOrMany<String>>,
}

/// Any one of several globs.
#[derive(Clone, Debug)]
struct AnyOf(Vec<Glob>);

impl AnyOf {
    fn new(v: &Option<OneOrMany<String>>, ignore_case: bool) -> Option<Self> {
        v.as_ref().map(|v| {
            Self(
                v.to_vec()
                    .iter()
                    .map(|p| Glob::new(p, ignore_case))
                    .collect(),
            )
        })
    }

    fn matches(&self, value: Option<&str>) -> bool {
        value.is_some_and(|v| self.0.iter().any(|g| g.matches(v)))
    }

    fn matches_any(&self, values: &[String]) -> bool {
        values.iter().any(|v| self.matches(Some(v)))
    }
}

/// The compiled conditions of one rule.
#[derive(Clone, Debug, Default)]
pub(super) struct Conditions {
    kind: Option<Vec<CredentialKind>>,
    verified: Option<bool>,
    invalid: Option<bool>,
    issuer: Option<AnyOf>,
    tenant: Option<AnyOf>,
    groups: Option<AnyOf>,
    roles: Option<AnyOf>,
    app_id: Option<AnyOf>,
    upn: Option<AnyOf>,
    github_repository: Option<AnyOf>,
    github_actor: Option<AnyOf>,
    sas_lifetime_over: Option<Duration>,
    comm: Option<AnyOf>,
    exe: Option<AnyOf>,
    uid: Option<Vec<u32>>,
    cgroup: Option<AnyOf>,
    host: Option<AnyOf>,
    method: Option<AnyOf>,
    path: Option<AnyOf>,
    operation: Option<AnyOf>,
    port: Option<Vec<u16>>,
    secrets: Option<AnyOf>,
    sni: Option<AnyOf>,
}

impl Conditions {
    /// Compiles the written conditions; `Err` says which one is wrong.
    pub(super) fn new(
        i: &IdentityWhen,
        p: &ProcessWhen,
        r: &RequestWhen,
        t: &TlsWhen,
    ) -> Result<Self, String> {
        let kind = match &i.kind {
            None => None,
            Some(k) => Some(
                k.to_vec()
                    .iter()
                    .map(|s| parse_kind(s))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        let sas_lifetime_over = match &i.sas_lifetime_over {
            None => None,
            Some(s) => Some(humantime::parse_duration(s).map_err(|e| {
                format!("identity.sas_lifetime_over: {s:?} is not a duration like \"24h\": {e}")
            })?),
        };
        Ok(Self {
            kind,
            verified: i.verified,
            invalid: i.invalid,
            issuer: AnyOf::new(&i.issuer, true),
            tenant: AnyOf::new(&i.tenant, true),
            groups: AnyOf::new(&i.groups, true),
            roles: AnyOf::new(&i.roles, true),
            app_id: AnyOf::new(&i.app_id, true),
            upn: AnyOf::new(&i.upn, true),
            github_repository: AnyOf::new(&i.github_repository, true),
            github_actor: AnyOf::new(&i.github_actor, true),
            sas_lifetime_over,
            comm: AnyOf::new(&p.comm, false),
            exe: AnyOf::new(&p.exe, false),
            uid: p.uid.as_ref().map(OneOrMany::to_vec),
            cgroup: AnyOf::new(&p.cgroup, false),
            host: AnyOf::new(&r.host, true),
            method: AnyOf::new(&r.method, true),
            path: AnyOf::new(&r.path, true),
            operation: AnyOf::new(&r.operation, true),
            port: r.port.as_ref().map(OneOrMany::to_vec),
            secrets: AnyOf::new(&r.secrets, true),
            sni: AnyOf::new(&t.sni, true),
        })
    }

    /// A connection rule (`tls.sni`): it judges passed-through connections,
    /// never requests.
    pub(super) fn is_connection(&self) -> bool {
        self.sni.is_some()
    }

    /// A condition a connection cannot answer (it carries no identity and
    /// no request), for the load-time check of connection rules.
    pub(super) fn about_requests(&self) -> bool {
        self.kind.is_some()
            || self.verified.is_some()
            || self.invalid.is_some()
            || self.issuer.is_some()
            || self.tenant.is_some()
            || self.groups.is_some()
            || self.roles.is_some()
            || self.app_id.is_some()
            || self.upn.is_some()
            || self.github_repository.is_some()
            || self.github_actor.is_some()
            || self.sas_lifetime_over.is_some()
            || self.host.is_some()
            || self.method.is_some()
            || self.path.is_some()
            || self.operation.is_some()
            || self.port.is_some()
            || self.secrets.is_some()
    }

    /// A connection rule's conditions hold for TLS naming `sni` from
    /// `process`.
    pub(super) fn matches_connection(&self, sni: Option<&str>, process: &ProcessInfo) -> bool {
        let opt = |c: &Option<AnyOf>, v: Option<&str>| c.as_ref().is_none_or(|c| c.matches(v));
        self.sni.as_ref().is_some_and(|g| g.matches(sni))
            && opt(&self.comm, Some(&process.comm))
            && opt(&self.exe, process.exe.as_deref())
            && self.uid.as_ref().is_none_or(|u| u.contains(&process.uid))
            && opt(&self.cgroup, Some(&process.cgroup))
    }

    /// Every condition given holds for `s` (a connection rule never does).
    pub(super) fn matches(&self, s: &Subject<'_>) -> bool {
        let id = s.identity;
        if self.is_connection() {
            return false;
        }
        let gh = id.github.as_ref();
        let opt = |c: &Option<AnyOf>, v: Option<&str>| c.as_ref().is_none_or(|c| c.matches(v));
        self.kind.as_ref().is_none_or(|k| k.contains(&id.kind))
            && self.verified.is_none_or(|v| v == id.verified)
            && self.invalid.is_none_or(|v| v == id.invalid())
            && opt(&self.issuer, id.issuer.as_deref())
            && opt(&self.tenant, id.tenant.as_deref())
            && self
                .groups
                .as_ref()
                .is_none_or(|g| !id.groups_overage && g.matches_any(&id.groups))
            && self.roles.as_ref().is_none_or(|g| g.matches_any(&id.roles))
            && opt(&self.app_id, id.app_id.as_deref())
            && opt(&self.upn, id.upn.as_deref())
            && opt(
                &self.github_repository,
                gh.and_then(|g| g.repository.as_deref()),
            )
            && opt(&self.github_actor, gh.and_then(|g| g.actor.as_deref()))
            && self.sas_lifetime_over.is_none_or(|max| sas_exceeds(s, max))
            && opt(&self.comm, Some(&s.process.comm))
            && opt(&self.exe, s.process.exe.as_deref())
            && self.uid.as_ref().is_none_or(|u| u.contains(&s.process.uid))
            && opt(&self.cgroup, Some(&s.process.cgroup))
            && opt(&self.host, Some(s.host))
            && opt(&self.method, Some(s.method))
            && opt(&self.path, Some(s.path))
            && opt(&self.operation, Some(s.operation))
            && self.port.as_ref().is_none_or(|p| p.contains(&s.port))
            && self
                .secrets
                .as_ref()
                .is_none_or(|g| s.secrets.iter().any(|d| g.matches(Some(d))))
    }
}

/// A SAS with no (parseable) expiry is unbounded, so it exceeds any limit.
fn sas_exceeds(s: &Subject<'_>, max: Duration) -> bool {
    let Some(sas) = s.identity.sas.as_ref() else {
        return false;
    };
    sas.lifetime_s
        .is_none_or(|l| l > i64::try_from(max.as_secs()).unwrap_or(i64::MAX))
}

fn parse_kind(s: &str) -> Result<CredentialKind, String> {
    Ok(match s {
        "none" => CredentialKind::None,
        "jwt" => CredentialKind::Jwt,
        "bearer" => CredentialKind::Bearer,
        "shared_key" => CredentialKind::SharedKey,
        "sas" => CredentialKind::Sas,
        "basic" => CredentialKind::Basic,
        other => {
            return Err(format!(
                "identity.kind: {other:?} is not one of none, jwt, bearer, shared_key, sas, basic"
            ));
        }
    })
}
