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
            "SELECT trail, host FROM airlock_holds WHERE id = $1 AND state = 'held'",
            &[&id],
        )
        .await?;
    let (trail, host): (String, String) = match holds.as_slice() {
        [one] => (one.get(0), one.get(1)),
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
