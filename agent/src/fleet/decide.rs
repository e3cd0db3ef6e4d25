//! Fleet approvals, the approver's side: `airlock approvals list | approve
//! | deny --fleet`, from any machine with `[fleet]` set to a role in
//! `airlock_approver`. A decision is a row PostgreSQL lets only that role
//! insert, recording the role and the OS user and host of the command; the
//! holding host hears it and answers by settling the hold, which the
//! command waits a moment to report.

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use serde_json::Value;

use super::FleetError;
use crate::config::FleetConfig;

/// How long `approve`/`deny` wait for the holding host to settle the hold.
const CONFIRM: Duration = Duration::from_secs(5);

/// A decision as the approver gives it.
#[derive(Debug, Clone, Default)]
pub struct Decide {
    pub approve: bool,
    /// A window grant (approve only).
    pub window: Option<Duration>,
    pub scope: Option<String>,
    pub reason: Option<String>,
    /// Who decides, as the fleet console's sign-in knows them (names and
    /// object id): approving a request made with one of these identities
    /// is self-approval, refused. Empty: not checked (`approval.allow_self`,
    /// or the command line, whose OS user names no one on the holding
    /// host).
    pub oneself: Vec<String>,
}

/// Requests held across the fleet and not decided yet, longest waiting
/// first: each as its host published it, with `host`, `trail`,
/// `waiting_s` and `remaining_s`.
pub async fn held(fleet: &FleetConfig) -> Result<Vec<Value>, FleetError> {
    held_on(&super::connect::connect(fleet).await?).await
}

/// [`held`], over a connection already made.
pub(super) async fn held_on(client: &tokio_postgres::Client) -> Result<Vec<Value>, FleetError> {
    let rows = client
        .query(
            "SELECT h.request::text, h.host, h.trail,
                    extract(epoch FROM now() - h.held_at)::bigint,
                    greatest(0, extract(epoch FROM h.expires_at - now()))::bigint
             FROM airlock_holds h
             WHERE h.state = 'held' AND h.expires_at > now()
               AND NOT EXISTS (SELECT FROM airlock_decisions d WHERE d.trail = h.trail AND d.id = h.id)
             ORDER BY h.held_at",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|row| {
            let mut v: Value = serde_json::from_str(row.get(0)).ok()?;
            v["host"] = Value::from(row.get::<_, String>(1));
            v["trail"] = Value::from(row.get::<_, String>(2));
            v["waiting_s"] = Value::from(row.get::<_, i64>(3));
            v["remaining_s"] = Value::from(row.get::<_, i64>(4));
            Some(v)
        })
        .collect())
}

/// Decides held request `id`; returns what became of it: `host`,
/// `trail`, `decision`, and `state` (`held` when its host has not
/// answered within a few seconds).
pub async fn decide(fleet: &FleetConfig, id: &str, d: Decide) -> Result<Value, FleetError> {
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    let user = uid.and_then(|u| crate::users::UserDb::system().user_name(u));
    decide_as(fleet, id, d, user, uid).await
}

/// [`decide`] for `user` (and `uid`, when an OS user): the fleet console
/// decides for the person signed in to it, not for the OS user it runs
/// as. The answer also names the database role recorded (`role`).
pub(crate) async fn decide_as(
    fleet: &FleetConfig,
    id: &str,
    d: Decide,
    user: Option<String>,
    uid: Option<u32>,
) -> Result<Value, FleetError> {
    if !d.approve && d.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        return Err(FleetError::Decision("a denial needs a reason".into()));
    }
    if d.window
        .is_some_and(|w| w.is_zero() || w > crate::core::MAX_GRANT)
    {
        return Err(FleetError::Decision(format!(
            "a grant lasts more than 0s and at most {}",
            humantime::format_duration(crate::core::MAX_GRANT)
        )));
    }
    if d.scope.is_some() && d.window.is_none() {
        return Err(FleetError::Decision(
            "a scope is for a window grant: give a window too".into(),
        ));
    }
    let client = super::connect::connect(fleet).await?;
    let holds = client
        .query(
            "SELECT trail, host, request::text FROM airlock_holds WHERE id = $1 AND state = 'held'",
            &[&id],
        )
        .await?;
    let (trail, host, request): (String, String, String) = match holds.as_slice() {
        [one] => (one.get(0), one.get(1), one.get(2)),
        [] => {
            return Err(FleetError::Decision(format!(
                "no request {id:?} is held in the fleet (never, or no longer)"
            )));
        }
        _ => {
            return Err(FleetError::Decision(format!(
                "{} hosts hold a request {id:?}",
                holds.len()
            )));
        }
    };
    let request: Value = serde_json::from_str(&request).unwrap_or_default();
    if d.approve
        && let Some(who) = own_request(&request, &d.oneself)
    {
        return Err(FleetError::Decision(format!(
            "{id} was made with {who}, the approver's own identity: self-approval is refused (approval.allow_self)"
        )));
    }
    let window = d.window.map(|w| w.as_secs() as i64);
    let role: String = client
        .query_one(
            "INSERT INTO airlock_decisions (trail, id, decision, window_s, scope, reason, os_user, os_uid, os_host)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING db_role::text",
            &[
                &trail,
                &id,
                &if d.approve { "approve" } else { "deny" },
                &window,
                &d.scope,
                &d.reason,
                &user,
                &uid.map(i64::from),
                &crate::audit::origin::host_name(),
            ],
        )
        .await?
        .get(0);
    let deadline = tokio::time::Instant::now() + CONFIRM;
    let state = loop {
        let state: String = client
            .query_one(
                "SELECT state FROM airlock_holds WHERE trail = $1 AND id = $2",
                &[&trail, &id],
            )
            .await?
            .get(0);
        if state != "held" || tokio::time::Instant::now() >= deadline {
            break state;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    Ok(serde_json::json!({
        "id": id, "host": host, "trail": trail,
        "decision": if d.approve { "approve" } else { "deny" },
        "state": state, "role": role,
    }))
}

/// The identity of held `request` (an object id or user principal name,
/// case ignored) that is one of `oneself`, if any: of any credential it
/// carries (`identity` and each of `identity.also`), since the upstream
/// receives them all — the approver's token beside another is still theirs.
fn own_request(request: &Value, oneself: &[String]) -> Option<String> {
    let primary = &request["identity"];
    let also = primary["also"].as_array().into_iter().flatten();
    std::iter::once(primary)
        .chain(also)
        .flat_map(|identity| ["oid", "upn"].map(|k| identity[k].as_str()))
        .flatten()
        .find(|v| oneself.iter().any(|o| o.eq_ignore_ascii_case(v)))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_made_with_the_approvers_own_identity_is_theirs() {
        let request = serde_json::json!({ "identity": {
            "kind": "jwt", "oid": "a11ce000-0000-4000-8000-000000000001",
            "upn": "Alice@Contoso.test",
        }});
        let alice = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            own_request(&request, &alice(&["alice@contoso.test"])).as_deref(),
            Some("Alice@Contoso.test"),
            "by name, case ignored"
        );
        assert!(
            own_request(
                &request,
                &alice(&["x", "a11ce000-0000-4000-8000-000000000001"])
            )
            .is_some(),
            "by object id"
        );
        assert_eq!(own_request(&request, &alice(&["carol@contoso.test"])), None);
        assert_eq!(own_request(&request, &[]), None, "not checked");
        // Beside another credential (ARM's auxiliary token), still hers.
        let beside = serde_json::json!({ "identity": {
            "kind": "jwt", "oid": "b0b00000-0000-4000-8000-000000000002",
            "also": [{ "kind": "jwt", "upn": "alice@contoso.test" }],
        }});
        assert_eq!(
            own_request(&beside, &alice(&["alice@contoso.test"])).as_deref(),
            Some("alice@contoso.test")
        );
        let anonymous = serde_json::json!({ "identity": { "kind": "none" } });
        assert_eq!(
            own_request(&anonymous, &alice(&["alice@contoso.test"])),
            None
        );
    }
}
