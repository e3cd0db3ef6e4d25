//! Just-in-time approval of high-risk requests. A request whose policy
//! action is `approve` is held here — its HTTP exchange simply waits —
//! until an approver releases it (once, or with a time-boxed grant for the
//! same identity, rule and operation within a resource scope), denies it,
//! it times out, or its client goes away. Owns the registry of held
//! requests and grants (bounded: `approval.max_held`, per identity too),
//! who may decide (kernel-identified approvers; never a process airlock
//! captures; never oneself unless allowed), and the `approval` audit
//! records of every step. The admin API ([`crate::admin`]) drives it over
//! a Unix socket; [`webhook`] announces new holds, signed; with `[fleet]`,
//! holds are also published to the fleet's database, where an approver's
//! role decides them from any machine ([`crate::fleet`]'s board).

#[cfg(test)]
pub(crate) mod fixture;
mod record;
#[cfg(test)]
mod tests;
mod users;
mod view;
mod webhook;

use crate::core::{Approver, Outcome};
pub(crate) use crate::users::UserDb;
pub(crate) use record::{ApprovalRecord, Event};
pub(crate) use users::Approvers;
pub(crate) use view::{GrantView, HeldView, Status};

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::oneshot;

use crate::audit::AuditLog;
use crate::config::ApprovalConfig;
use crate::core::Identity;
use crate::core::ProcessInfo;
use crate::core::lock;
use crate::tls::UpstreamTls;

/// Decided request ids remembered, so a late decision is told "already
/// decided" (409) rather than "no such request" (404).
const RECENT: usize = 1024;
use crate::core::MAX_GRANT;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ApprovalError {
    #[error("no held request {0:?}")]
    NotFound(String),
    #[error("request {id:?} was already {outcome}")]
    AlreadyDecided { id: String, outcome: &'static str },
    #[error("no active grant {0:?}")]
    NoGrant(String),
    #[error("{0} is not an approver (approval.approvers)")]
    NotApprover(String),
    #[error("{0} cannot approve a request made by a process running under their own uid")]
    SelfApproval(String),
    #[error("{who} cannot decide: the calling process is one airlock captures ({why})")]
    CapturedApprover { who: String, why: String },
    #[error("{0}")]
    BadRequest(String),
    #[error("the audit log cannot be written: nothing is decided unrecorded")]
    AuditUnavailable,
    #[error("approval.webhook_secret_file {path}: {why}")]
    WebhookKey {
        path: std::path::PathBuf,
        why: String,
    },
}

impl ApprovalError {
    /// HTTP status and `error.code` of the admin API's answer.
    pub(crate) fn http(&self) -> (u16, &'static str) {
        match self {
            Self::NotFound(_) | Self::NoGrant(_) => (404, "not_found"),
            Self::AlreadyDecided { .. } => (409, "already_decided"),
            Self::NotApprover(_) => (403, "not_approver"),
            Self::SelfApproval(_) => (403, "self_approval"),
            Self::CapturedApprover { .. } => (403, "captured_approver"),
            Self::BadRequest(_) => (400, "bad_request"),
            Self::AuditUnavailable => (503, "audit_unavailable"),
            _ => (500, "internal"),
        }
    }
}

/// One request waiting for a human, as the caller describes it. Strings
/// are already masked (URL, body excerpt). Its JSON is the core of the
/// admin API's held view.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct HeldRequest {
    /// The request's audit `id`: `approve`/`deny` take it.
    pub id: String,
    pub rule: String,
    /// The rule's reason.
    pub reason: String,
    pub operation: String,
    pub method: String,
    pub url: String,
    /// The host the request will go to.
    pub target_host: String,
    /// The resource it acts on ([`crate::operation::scope`]): what a
    /// window grant from it covers unless given another scope.
    pub resource: String,
    pub identity: Arc<Identity>,
    pub process: Arc<ProcessInfo>,
    /// The request body as the trail keeps it (masked), when it was read
    /// before the hold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_excerpt: Option<String>,
}

/// Who is deciding: the admin socket's peer, as the kernel identified it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Caller {
    pub uid: u32,
    /// Why the calling process is one airlock captures (the agent, or
    /// something it started): such a caller decides nothing.
    pub captured: Option<String>,
}

impl Caller {
    /// A caller airlock does not capture.
    pub(crate) fn uid(uid: u32) -> Self {
        Self {
            uid,
            captured: None,
        }
    }
}

/// An approval as the approver gave it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Release {
    /// A window grant for this long; `None`: this request only.
    pub window: Option<Duration>,
    /// What the grant covers (`--scope`); `None`: the held request's own
    /// resource.
    pub scope: Option<String>,
    pub reason: Option<String>,
}

/// Who a grant covers. A verified token's claims (object id, else UPN,
/// else app id) name a principal across tokens; an unverified token's
/// claims could be forged, so it is keyed by its own fingerprint; a
/// request with no credential by the calling process's uid.
pub(crate) fn identity_key(identity: &Identity, process: &ProcessInfo) -> String {
    let claim = || {
        (identity.oid.as_ref().map(|v| format!("oid:{v}")))
            .or_else(|| identity.upn.as_ref().map(|v| format!("upn:{v}")))
            .or_else(|| identity.app_id.as_ref().map(|v| format!("app:{v}")))
    };
    identity
        .verified
        .then(claim)
        .flatten()
        .or_else(|| identity.fingerprint.clone())
        .unwrap_or_else(|| format!("uid:{}", process.uid))
}

/// Where approvers' names and groups come from.
#[derive(Debug)]
enum Users {
    /// The system's, through NSS, asked at each decision.
    System,
    /// Fixed text (tests).
    #[cfg(test)]
    Fixed(UserDb),
}

/// The held requests and live grants; shared by the data path (`hold`) and
/// the admin API.
#[derive(Debug)]
pub(crate) struct Approvals {
    state: Mutex<State>,
    audit: AuditLog,
    approvers: Approvers,
    allow_self: bool,
    default_timeout: Duration,
    max_held: usize,
    max_held_per_identity: usize,
    users: Users,
    webhook: Option<webhook::Webhook>,
    /// The fleet's holds, when `[fleet]` is set.
    board: Option<crate::fleet::Board>,
}

#[derive(Debug, Default)]
struct State {
    held: HashMap<String, Slot>,
    grants: HashMap<String, Grant>,
    recent: VecDeque<(String, &'static str)>,
    totals: HashMap<Event, u64>,
}

#[derive(Debug)]
struct Slot {
    request: Arc<HeldRequest>,
    key: String,
    since: Instant,
    at: SystemTime,
    timeout: Duration,
    reply: oneshot::Sender<Outcome>,
}

#[derive(Clone, Debug)]
struct Grant {
    id: String,
    key: String,
    rule: String,
    operation: String,
    /// The resources it covers ([`crate::operation::scope`]).
    scope: String,
    by: Approver,
    reason: Option<String>,
    request_id: String,
    created: SystemTime,
    until: Instant,
    window: Duration,
    uses: u64,
}

impl State {
    fn count(&mut self, e: Event) {
        *self.totals.entry(e).or_default() += 1;
    }

    fn remember(&mut self, id: &str, outcome: &'static str) {
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back((id.to_owned(), outcome));
    }

    fn missing(&self, id: &str) -> ApprovalError {
        match self.recent.iter().rev().find(|(r, _)| r == id) {
            Some((_, outcome)) => ApprovalError::AlreadyDecided {
                id: id.to_owned(),
                outcome,
            },
            None => ApprovalError::NotFound(id.to_owned()),
        }
    }

    /// Drops grants whose window has passed (nothing to audit: their end
    /// was recorded in `granted` as `duration_s`).
    fn prune(&mut self, now: Instant) {
        self.grants.retain(|_, g| g.until > now);
    }
}

impl Approvals {
    /// The registry, with its webhook task when `approval.webhook_url` is
    /// set (call inside the tokio runtime); the webhook's key is read now.
    pub(crate) fn new(
        config: &ApprovalConfig,
        audit: AuditLog,
        tls: Arc<UpstreamTls>,
        board: Option<crate::fleet::Board>,
    ) -> Result<Arc<Self>, ApprovalError> {
        let secret = match &config.webhook_secret_file {
            None => None,
            Some(path) => Some(webhook_key(path)?),
        };
        let webhook = config
            .webhook_url
            .as_ref()
            .map(|url| webhook::Webhook::spawn(url.clone(), tls, secret));
        Ok(Arc::new(Self::build(
            config,
            audit,
            Users::System,
            webhook,
            board,
        )))
    }

    fn build(
        config: &ApprovalConfig,
        audit: AuditLog,
        users: Users,
        webhook: Option<webhook::Webhook>,
        board: Option<crate::fleet::Board>,
    ) -> Self {
        Self {
            state: Mutex::new(State::default()),
            audit,
            approvers: Approvers::new(&config.approvers),
            allow_self: config.allow_self,
            default_timeout: config.timeout(),
            max_held: config.max_held,
            max_held_per_identity: config.max_held_per_identity,
            users,
            webhook,
            board,
        }
    }

    /// The wait for a request: the rule's own timeout when it set one,
    /// else `approval.timeout`.
    pub(crate) fn timeout(&self, rule: Option<Duration>) -> Duration {
        rule.unwrap_or(self.default_timeout)
    }

    /// Holds `request` until it is decided or `timeout` passes. A live
    /// grant for the same identity, rule and operation lets it through at
    /// once (audited `used`). Dropping the returned future (the client
    /// went away) ends the hold as `abandoned`.
    pub(crate) async fn hold(&self, request: HeldRequest, timeout: Duration) -> Outcome {
        let key = identity_key(&request.identity, &request.process);
        let request = Arc::new(request);
        if let Some(outcome) = self.use_grant(&request, &key) {
            return outcome;
        }
        if self.audit.check().is_err() {
            return Outcome::AuditUnavailable;
        }
        let (reply, mut wait) = oneshot::channel();
        {
            let mut st = self.lock();
            if let Some(limit) = self.full(&st, &key) {
                st.count(Event::Overflow);
                drop(st);
                let mut rec = self.request_record(Event::Overflow, &request);
                rec.reason = Some(format!("not held: {limit}"));
                rec.identity_key = Some(key);
                let _ = self.write(&rec);
                return Outcome::TooManyHeld { limit };
            }
            st.held.insert(
                request.id.clone(),
                Slot {
                    request: request.clone(),
                    key: key.clone(),
                    since: Instant::now(),
                    at: SystemTime::now(),
                    timeout,
                    reply,
                },
            );
        }
        // Armed before anything can be awaited, so from here a dropped
        // future always leaves an `abandoned` record and no entry.
        let mut guard = Abandon {
            approvals: self,
            request: &request,
            armed: true,
        };
        let mut rec = self.request_record(Event::Requested, &request);
        rec.reason = Some(request.reason.clone());
        rec.identity_key = Some(key);
        rec.duration_s = Some(timeout.as_secs());
        if self.write(&rec).is_err() {
            guard.armed = false;
            self.lock().held.remove(&request.id);
            return Outcome::AuditUnavailable;
        }
        self.lock().count(Event::Requested);
        if let Some(w) = &self.webhook {
            w.notify(&request, timeout);
        }
        if let Some(b) = &self.board {
            let mut shown = serde_json::json!(&*request);
            shown["identity_key"] =
                serde_json::json!(identity_key(&request.identity, &request.process));
            b.publish(&request.id, shown, timeout);
        }
        let outcome = match tokio::time::timeout(timeout, &mut wait).await {
            Ok(Ok(outcome)) => outcome,
            // The sender lives in the slot; it is only dropped unsent if
            // the slot was removed without a decision: treat as expiry.
            Ok(Err(_)) | Err(_) => self.expire(&request, &mut wait),
        };
        guard.armed = false;
        outcome
    }

    /// Which bound holding one more request for `key` would pass, if any.
    fn full(&self, st: &State, key: &str) -> Option<String> {
        if st.held.len() >= self.max_held {
            return Some(format!(
                "{} requests are held already (approval.max_held)",
                st.held.len()
            ));
        }
        let mine = st.held.values().filter(|s| s.key == key).count();
        (mine >= self.max_held_per_identity).then(|| {
            format!(
                "{mine} requests of this identity are held already (approval.max_held_per_identity)"
            )
        })
    }

    /// A live grant's approval for this request, if there is one.
    fn use_grant(&self, request: &HeldRequest, key: &str) -> Option<Outcome> {
        let (gid, by) = {
            let mut st = self.lock();
            st.prune(Instant::now());
            let g = st.grants.values_mut().find(|g| {
                g.key == key
                    && g.rule == request.rule
                    && g.operation == request.operation
                    && crate::operation::scope::covers(&g.scope, &request.resource)
            })?;
            g.uses += 1;
            let found = (g.id.clone(), g.by.clone());
            st.count(Event::Used);
            found
        };
        let mut rec = self.request_record(Event::Used, request);
        rec.grant_id = Some(gid.clone());
        rec.by = Some(by.clone());
        rec.identity_key = Some(key.to_owned());
        // A grant's use that cannot be recorded does not happen.
        match self.write(&rec) {
            Ok(()) => Some(Outcome::Approved {
                by,
                grant: Some(gid),
            }),
            Err(()) => Some(Outcome::AuditUnavailable),
        }
    }

    /// The timeout passed: expire the hold, unless a decision won the race
    /// (then it was sent under the lock and is waiting in `wait`).
    fn expire(&self, request: &HeldRequest, wait: &mut oneshot::Receiver<Outcome>) -> Outcome {
        let slot = {
            let mut st = self.lock();
            let slot = st.held.remove(&request.id);
            if slot.is_some() {
                st.count(Event::Expired);
                st.remember(&request.id, "expired");
            }
            slot
        };
        let Some(slot) = slot else {
            return wait.try_recv().unwrap_or(Outcome::Expired);
        };
        self.settled(&request.id, "expired");
        let mut rec = self.request_record(Event::Expired, request);
        rec.waited_ms = Some(slot.since.elapsed().as_millis() as u64);
        let _ = self.write(&rec);
        Outcome::Expired
    }

    /// Approves held request `id` as `caller`: once, or with a grant for
    /// `release.window` over `release.scope`.
    pub(crate) fn approve(
        &self,
        id: &str,
        caller: &Caller,
        release: Release,
    ) -> Result<Outcome, ApprovalError> {
        check_release(&release)?;
        let by = self.authorize(caller, Some(id), None, "approve")?;
        self.release_held(id, by, release, Some(caller.uid))
    }

    /// Releases held request `id` as `by` decided (authorized already);
    /// `caller_uid`: the local approver's uid, checked against the
    /// request's process (`approval.allow_self`).
    fn release_held(
        &self,
        id: &str,
        by: Approver,
        release: Release,
        caller_uid: Option<u32>,
    ) -> Result<Outcome, ApprovalError> {
        let Release {
            window,
            scope,
            reason,
        } = release;
        let mut st = self.lock();
        let slot = st.held.get(id).ok_or_else(|| st.missing(id))?;
        let scope = match scope {
            None => slot.request.resource.clone(),
            Some(s) => crate::operation::scope::parse_scope(&s, &slot.request.resource)
                .map_err(ApprovalError::BadRequest)?,
        };
        if caller_uid == Some(slot.request.process.uid) && !self.allow_self {
            drop(st);
            let mut rec = ApprovalRecord::new(Event::Refused);
            rec.request_id = Some(id.to_owned());
            rec.by = Some(by.clone());
            rec.reason = Some("self-approval: the request's process runs under the approver's uid (approval.allow_self is off)".into());
            let _ = self.write(&rec);
            return Err(ApprovalError::SelfApproval(by.describe()));
        }
        self.audit
            .check()
            .map_err(|_| ApprovalError::AuditUnavailable)?;
        let slot = st.held.remove(id).expect("looked up under this lock");
        let grant = window.map(|w| Grant {
            id: format!("g-{}", self.audit.new_id()),
            key: slot.key.clone(),
            rule: slot.request.rule.clone(),
            operation: slot.request.operation.clone(),
            scope,
            by: by.clone(),
            reason: reason.clone(),
            request_id: id.to_owned(),
            created: SystemTime::now(),
            until: Instant::now() + w,
            window: w,
            uses: 0,
        });
        let outcome = Outcome::Approved {
            by: by.clone(),
            grant: grant.as_ref().map(|g| g.id.clone()),
        };
        st.count(Event::Approved);
        st.remember(id, "approved");
        if let Some(g) = &grant {
            st.grants.insert(g.id.clone(), g.clone());
            st.count(Event::Granted);
        }
        // Sent under the lock: a timeout racing this sees the slot gone
        // and finds the outcome already in its channel.
        let _ = slot.reply.send(outcome.clone());
        drop(st);
        self.settled(id, "approved");
        let mut rec = self.request_record(Event::Approved, &slot.request);
        rec.by = Some(by.clone());
        rec.reason = reason.clone();
        rec.grant_id = grant.as_ref().map(|g| g.id.clone());
        rec.waited_ms = Some(slot.since.elapsed().as_millis() as u64);
        let _ = self.write(&rec);
        if let Some(g) = grant {
            let mut rec = self.request_record(Event::Granted, &slot.request);
            rec.grant_id = Some(g.id);
            rec.by = Some(by);
            rec.reason = reason;
            rec.identity_key = Some(g.key);
            rec.scope = Some(g.scope);
            rec.duration_s = Some(g.window.as_secs());
            let _ = self.write(&rec);
        }
        Ok(outcome)
    }

    /// Denies held request `id`; `reason` is required. Denying one's own
    /// agent's request is allowed: it only makes things stricter.
    pub(crate) fn deny(
        &self,
        id: &str,
        caller: &Caller,
        reason: &str,
    ) -> Result<Outcome, ApprovalError> {
        if reason.trim().is_empty() {
            return Err(ApprovalError::BadRequest("a denial needs a reason".into()));
        }
        let by = self.authorize(caller, Some(id), None, "deny")?;
        self.refuse_held(id, by, reason)
    }

    /// Refuses held request `id` as `by` decided (authorized already).
    fn refuse_held(&self, id: &str, by: Approver, reason: &str) -> Result<Outcome, ApprovalError> {
        self.audit
            .check()
            .map_err(|_| ApprovalError::AuditUnavailable)?;
        let mut st = self.lock();
        let slot = st.held.remove(id).ok_or_else(|| st.missing(id))?;
        let outcome = Outcome::Denied {
            by: by.clone(),
            reason: reason.to_owned(),
        };
        st.count(Event::Denied);
        st.remember(id, "denied");
        let _ = slot.reply.send(outcome.clone());
        drop(st);
        self.settled(id, "denied");
        let mut rec = self.request_record(Event::Denied, &slot.request);
        rec.by = Some(by);
        rec.reason = Some(reason.to_owned());
        rec.waited_ms = Some(slot.since.elapsed().as_millis() as u64);
        let _ = self.write(&rec);
        Ok(outcome)
    }

    /// Applies the fleet's decisions as they come (`[fleet]`): each was
    /// made by an approver's database role, which PostgreSQL alone lets
    /// decide; a decision on a hold already ended here changes nothing.
    pub(crate) async fn follow_fleet(
        self: Arc<Self>,
        mut decisions: tokio::sync::mpsc::UnboundedReceiver<crate::fleet::FleetDecision>,
    ) {
        while let Some(d) = decisions.recv().await {
            let by = Approver {
                uid: None,
                user: d.os_user,
                role: Some(d.role),
                host: d.os_host,
            };
            let who = by.describe();
            let done = if d.approve {
                let release = Release {
                    window: d.window,
                    scope: d.scope,
                    reason: d.reason,
                };
                check_release(&release).and_then(|()| self.release_held(&d.id, by, release, None))
            } else {
                let reason = d.reason.unwrap_or_default();
                self.refuse_held(&d.id, by, &reason)
            };
            match done {
                Ok(_) => {
                    tracing::info!(id = %d.id, by = %who, approve = d.approve, "held request decided from the fleet")
                }
                Err(ApprovalError::NotFound(_) | ApprovalError::AlreadyDecided { .. }) => {}
                Err(e) => {
                    tracing::warn!(id = %d.id, by = %who, error = %e, "a decision from the fleet was not applied")
                }
            }
        }
    }

    /// Tells the fleet a hold ended here.
    fn settled(&self, id: &str, state: &'static str) {
        if let Some(b) = &self.board {
            b.settle(id, state);
        }
    }

    /// Ends grant `grant_id` now.
    pub(crate) fn revoke(
        &self,
        grant_id: &str,
        caller: &Caller,
        reason: Option<String>,
    ) -> Result<GrantView, ApprovalError> {
        let by = self.authorize(caller, None, Some(grant_id), "revoke")?;
        self.audit
            .check()
            .map_err(|_| ApprovalError::AuditUnavailable)?;
        let grant = {
            let mut st = self.lock();
            st.prune(Instant::now());
            let g = st
                .grants
                .remove(grant_id)
                .ok_or_else(|| ApprovalError::NoGrant(grant_id.to_owned()))?;
            st.count(Event::Revoked);
            g
        };
        let mut rec = ApprovalRecord::new(Event::Revoked);
        rec.request_id = Some(grant.request_id.clone());
        rec.grant_id = Some(grant.id.clone());
        rec.by = Some(by);
        rec.reason = reason;
        rec.rule = Some(grant.rule.clone());
        rec.operation = Some(grant.operation.clone());
        rec.identity_key = Some(grant.key.clone());
        let _ = self.write(&rec);
        Ok(view::grant(&grant, Instant::now()))
    }

    /// The approver behind `caller`, or a refusal (audited) when it is a
    /// process airlock captures (the agent deciding for itself, whatever
    /// its uid) or its uid is not an approver. Checked before anything is
    /// looked up, so outsiders learn nothing about what is held.
    fn authorize(
        &self,
        caller: &Caller,
        request_id: Option<&str>,
        grant_id: Option<&str>,
        action: &str,
    ) -> Result<Approver, ApprovalError> {
        let db = match &self.users {
            Users::System => UserDb::system(),
            #[cfg(test)]
            Users::Fixed(db) => db.clone(),
        };
        let by = Approver::new(caller.uid, &db);
        let (why, error) = match &caller.captured {
            Some(why) => (
                format!("{action}: the caller is a captured process ({why})"),
                ApprovalError::CapturedApprover {
                    who: by.describe(),
                    why: why.clone(),
                },
            ),
            None if self.approvers.admits(caller.uid, &db) => return Ok(by),
            None => (
                format!("{action}: not in approval.approvers"),
                ApprovalError::NotApprover(by.describe()),
            ),
        };
        self.lock().count(Event::Refused);
        let mut rec = ApprovalRecord::new(Event::Refused);
        rec.request_id = request_id.map(str::to_owned);
        rec.grant_id = grant_id.map(str::to_owned);
        rec.by = Some(by);
        rec.reason = Some(why);
        let _ = self.write(&rec);
        Err(error)
    }

    /// Every held request, longest waiting first.
    pub(crate) fn list(&self) -> Vec<HeldView> {
        let now = Instant::now();
        let st = self.lock();
        let mut out: Vec<(Instant, HeldView)> = st
            .held
            .values()
            .map(|s| (s.since, view::held(s, now)))
            .collect();
        out.sort_by_key(|(since, _)| *since);
        out.into_iter().map(|(_, v)| v).collect()
    }

    pub(crate) fn get(&self, id: &str) -> Result<HeldView, ApprovalError> {
        let st = self.lock();
        st.held
            .get(id)
            .map(|s| view::held(s, Instant::now()))
            .ok_or_else(|| st.missing(id))
    }

    /// Live grants, soonest to end first.
    pub(crate) fn grants(&self) -> Vec<GrantView> {
        let now = Instant::now();
        let mut st = self.lock();
        st.prune(now);
        let mut out: Vec<&Grant> = st.grants.values().collect();
        out.sort_by_key(|g| g.until);
        out.into_iter().map(|g| view::grant(g, now)).collect()
    }

    pub(crate) fn status(&self) -> Status {
        let mut st = self.lock();
        st.prune(Instant::now());
        Status {
            held: st.held.len(),
            grants: st.grants.len(),
            fleet: self.board.as_ref().map(crate::fleet::Board::connected),
        }
    }

    /// How many holds ended each way since start (`used`: let through by
    /// a grant), for `/metrics`.
    pub(crate) fn outcome_totals(&self) -> [(&'static str, u64); 5] {
        let st = self.lock();
        [
            Event::Approved,
            Event::Denied,
            Event::Expired,
            Event::Abandoned,
            Event::Used,
        ]
        .map(|e| (e.as_str(), st.totals.get(&e).copied().unwrap_or(0)))
    }

    fn request_record(&self, event: Event, request: &HeldRequest) -> ApprovalRecord {
        let mut rec = ApprovalRecord::new(event);
        rec.request_id = Some(request.id.clone());
        rec.rule = Some(request.rule.clone());
        rec.operation = Some(request.operation.clone());
        rec
    }

    /// Queues `rec`; a failure is logged (the writer also counts it as a
    /// lost record, so verification shows the gap).
    fn write(&self, rec: &ApprovalRecord) -> Result<(), ()> {
        self.audit.write(rec).map(drop).map_err(|e| {
            tracing::error!(event = rec.event.as_str(), error = %e, "approval record not written");
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent maps (every
        // mutation is a single insert/remove), so poisoning is ignored.
        lock(&self.state)
    }
}

/// A grant's window and scope as an approver may give them.
fn check_release(release: &Release) -> Result<(), ApprovalError> {
    if let Some(w) = release.window
        && (w.is_zero() || w > MAX_GRANT)
    {
        return Err(ApprovalError::BadRequest(format!(
            "a grant lasts more than 0s and at most {}",
            humantime::format_duration(MAX_GRANT)
        )));
    }
    if release.scope.is_some() && release.window.is_none() {
        return Err(ApprovalError::BadRequest(
            "a scope is for a window grant: give a window too".into(),
        ));
    }
    Ok(())
}

/// The webhook's HMAC key, from its file (trailing whitespace is not part
/// of it). An empty or unreadable file stops the start: notices signed
/// with nothing would look signed.
fn webhook_key(path: &std::path::Path) -> Result<ring::hmac::Key, ApprovalError> {
    let bad = |why: String| ApprovalError::WebhookKey {
        path: path.to_owned(),
        why,
    };
    let text = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let end = text
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    if end < 16 {
        return Err(bad("the key is shorter than 16 bytes".into()));
    }
    Ok(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &text[..end]))
}

/// Ends a hold whose future was dropped before it returned: removes the
/// entry and records `abandoned`. Nothing was forwarded.
struct Abandon<'a> {
    approvals: &'a Approvals,
    request: &'a HeldRequest,
    armed: bool,
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let waited = {
            let mut st = self.approvals.lock();
            let slot = st.held.remove(&self.request.id);
            st.count(Event::Abandoned);
            st.remember(&self.request.id, "abandoned");
            slot.map(|s| s.since.elapsed())
        };
        self.approvals.settled(&self.request.id, "abandoned");
        let mut rec = self
            .approvals
            .request_record(Event::Abandoned, self.request);
        rec.waited_ms = waited.map(|w| w.as_millis() as u64);
        let _ = self.approvals.write(&rec);
    }
}
