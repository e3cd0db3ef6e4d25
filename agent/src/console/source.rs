//! Where the held requests come from and where decisions go: the daemon's
//! admin socket (single-host mode, as the user who runs the console) or
//! the fleet's database (fleet mode, as the console's database role, for
//! the person signed in, who must be in `approval.approvers`). The pages
//! and the event streams are the same for both.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::watch;

use super::html::Held;
use super::oidc::Person;
use super::session::Flash;
use super::watch::Snapshot;
use crate::admin::{AdminClient, AdminError};
use crate::approval::Approvers;
use crate::config::FleetConfig;
use crate::fleet::FleetError;

#[derive(Debug)]
pub(super) enum Source {
    Host(AdminClient),
    Fleet {
        fleet: FleetConfig,
        approvers: Approvers,
        /// `approval.allow_self`: an approver may approve a request made
        /// with their own identity.
        allow_self: bool,
    },
}

/// A decision as the page's form gives it.
#[derive(Debug)]
pub(super) struct Decision<'a> {
    pub id: &'a str,
    pub approve: bool,
    pub window: Option<&'a str>,
    pub scope: Option<&'a str>,
    pub reason: Option<&'a str>,
}

impl Source {
    /// The held requests now (fleet: every host's open holds).
    pub(super) async fn first(&self) -> Result<Held, super::ConsoleError> {
        Ok(match self {
            Self::Host(client) => {
                super::watch::with_parents(Held::List(client.list().await?)).await
            }
            Self::Fleet { fleet, .. } => Held::List(crate::fleet::held(fleet).await?),
        })
    }

    /// The list kept fresh for every page.
    pub(super) fn watch(&self, first: Held) -> watch::Receiver<Arc<Snapshot>> {
        match self {
            Self::Host(client) => super::watch::spawn(client.clone(), first),
            Self::Fleet { fleet, .. } => super::holds::spawn(fleet.clone(), first),
        }
    }

    /// Whether `person` may decide, and why not (fleet mode; on the host,
    /// the daemon says).
    pub(super) fn refusal(&self, person: Option<&Person>) -> Option<String> {
        let Self::Fleet { approvers, .. } = self else {
            return None;
        };
        let Some(p) = person else {
            return Some("nobody is signed in".into());
        };
        if approvers.admits_claims(&p.names(), &p.groups) {
            return None;
        }
        let groups = if p.groups_overage {
            " (the issuer sent too many groups to list them, so no group: entry can match)"
        } else {
            ""
        };
        Some(format!(
            "{} is not in approval.approvers, by name, object id or group{groups}: you can see the held requests, not decide them",
            p.name
        ))
    }

    /// Makes decision `d` as `person` (fleet mode), and says what came of
    /// it and who decided.
    pub(super) async fn decide(&self, d: Decision<'_>, person: Option<&Person>) -> Flash {
        let id = d.id;
        match self {
            Self::Host(client) => host_decide(client, d).await,
            Self::Fleet {
                fleet, allow_self, ..
            } => {
                if let Some(why) = self.refusal(person) {
                    return refused(format!("{id}: refused: {why} (not_approver)"));
                }
                let Some(person) = person else {
                    return refused(format!("{id}: refused: nobody is signed in"));
                };
                match fleet_decide(fleet, d, person, *allow_self).await {
                    Ok(v) => Flash {
                        ok: true,
                        text: fleet_said(id, &v, &person.name),
                    },
                    Err(e) => refused(format!("{id}: not decided: {e}")),
                }
            }
        }
    }
}

fn refused(text: String) -> Flash {
    Flash { ok: false, text }
}

async fn host_decide(client: &AdminClient, d: Decision<'_>) -> Flash {
    let id = d.id;
    let outcome = if d.approve {
        client.approve(id, d.window, d.scope, d.reason).await
    } else {
        client.deny(id, d.reason.unwrap_or_default()).await
    };
    match outcome {
        Ok(v) => Flash {
            ok: true,
            text: said(id, &v),
        },
        Err(AdminError::Api { code, message, .. }) => {
            refused(format!("{id}: the daemon refused: {message} ({code})"))
        }
        Err(e) => refused(format!("{id}: not decided: {e}")),
    }
}

async fn fleet_decide(
    fleet: &FleetConfig,
    d: Decision<'_>,
    person: &Person,
    allow_self: bool,
) -> Result<Value, FleetError> {
    let window = d
        .window
        .map(|w| {
            humantime::parse_duration(w)
                .map_err(|e| FleetError::Decision(format!("grant for {w:?}: {e}")))
        })
        .transpose()?;
    let decide = crate::fleet::Decide {
        approve: d.approve,
        window,
        scope: d.scope.map(str::to_owned),
        reason: d.reason.map(str::to_owned),
        oneself: match allow_self {
            true => Vec::new(),
            false => person.names().into_iter().map(str::to_owned).collect(),
        },
    };
    crate::fleet::decide_as(fleet, d.id, decide, Some(person.name.clone()), None).await
}

/// A fleet decision as the holding host settled it, with who made it.
fn fleet_said(id: &str, v: &Value, who: &str) -> String {
    let f = |k: &str| v[k].as_str().unwrap_or("?");
    let by = format!("{who} (database role {})", f("role"));
    match f("state") {
        "held" => format!(
            "{id}: {} by {by}; {} has not settled it yet",
            f("decision"),
            f("host")
        ),
        state => format!("{id}: {state} on {} by {by}", f("host")),
    }
}

/// A decision as the daemon answered it, with who made it.
fn said(id: &str, v: &Value) -> String {
    let by = &v["by"];
    let who = match (by["user"].as_str(), by["uid"].as_u64()) {
        (Some(user), Some(uid)) => format!("{user} (uid {uid})"),
        (Some(user), None) => user.to_owned(),
        (None, Some(uid)) => format!("uid {uid}"),
        (None, None) => "?".to_owned(),
    };
    let outcome = v["outcome"].as_str().unwrap_or("decided");
    let mut text = format!("{id}: {outcome} by {who}");
    if let Some(g) = v["grant"].as_object() {
        let f = |k: &str| g.get(k).and_then(Value::as_str).unwrap_or("?").to_owned();
        text.push_str(&format!(
            "; grant {} until {} over {}",
            f("id"),
            f("expires_at"),
            f("scope")
        ));
    }
    if let Some(reason) = v["reason"].as_str() {
        text.push_str(&format!(": {reason}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outcome_says_who_decided() {
        let v = serde_json::json!({"outcome": "approved", "by": {"uid": 0, "user": "root"},
            "grant": {"id": "g-1", "expires_at": "2026-12-06T17:00:00Z", "scope": "/subscriptions/s"}});
        assert_eq!(
            said("r-1", &v),
            "r-1: approved by root (uid 0); grant g-1 until 2026-12-06T17:00:00Z over /subscriptions/s"
        );
        let v = serde_json::json!({"outcome": "denied", "by": {"uid": 1000}, "reason": "freeze"});
        assert_eq!(said("r-2", &v), "r-2: denied by uid 1000: freeze");
    }

    #[test]
    fn a_fleet_outcome_names_the_host_the_person_and_the_role() {
        let v = serde_json::json!({"id": "r-1", "host": "runner-a", "decision": "approve",
            "state": "approved", "role": "console_sre"});
        assert_eq!(
            fleet_said("r-1", &v, "alice@contoso.test"),
            "r-1: approved on runner-a by alice@contoso.test (database role console_sre)"
        );
        let v = serde_json::json!({"host": "runner-a", "decision": "deny", "state": "held",
            "role": "console_sre"});
        assert!(fleet_said("r-2", &v, "a").contains("runner-a has not settled it yet"));
    }

    #[test]
    fn only_listed_people_may_decide_in_the_fleet() {
        let source = Source::Fleet {
            fleet: FleetConfig::default(),
            approvers: Approvers::new(&["alice@contoso.test".into(), "group:g-sre".into()]),
            allow_self: false,
        };
        let person = |name: &str, groups: &[&str]| Person {
            name: name.into(),
            upn: None,
            oid: Some(format!("oid-{name}")),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            groups_overage: false,
        };
        assert_eq!(
            source.refusal(Some(&person("alice@contoso.test", &[]))),
            None
        );
        assert_eq!(
            source.refusal(Some(&person("carol@contoso.test", &["g-sre"]))),
            None
        );
        let why = source
            .refusal(Some(&person("bob@contoso.test", &["g-dev"])))
            .unwrap();
        assert!(
            why.contains("bob@contoso.test is not in approval.approvers"),
            "{why}"
        );
        assert!(source.refusal(None).is_some());
        assert_eq!(
            Source::Host(AdminClient::new(std::path::Path::new("/x"))).refusal(None),
            None
        );
    }
}
