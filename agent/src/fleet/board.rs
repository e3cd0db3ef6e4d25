//! Fleet approvals, the holding host's side: every request this host holds
//! is published to `airlock_holds`, and a decision an approver's role
//! writes to `airlock_decisions` is heard at once (`LISTEN`) and handed to
//! the local registry, which releases or refuses the request and still
//! enforces its own timeout. While the database is away the host's local
//! approvals go on as before; what is held meanwhile is published when it
//! comes back. Nothing is ever approved by default: only a row an
//! approver's role inserted releases anything.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::mpsc;
use tokio_postgres::Client;

use super::FleetError;
use super::connect::Notices;
use crate::audit::origin::Origin;
use crate::config::FleetConfig;

/// Decisions are also looked for this often, should a notification be
/// missed (one sent while the connection was being made).
const RECHECK: Duration = Duration::from_secs(5);

/// A decision from the fleet, as an approver's role wrote it.
#[derive(Debug, Clone)]
pub(crate) struct FleetDecision {
    pub(crate) id: String,
    pub(crate) approve: bool,
    pub(crate) window: Option<Duration>,
    pub(crate) scope: Option<String>,
    pub(crate) reason: Option<String>,
    /// The database role: authenticated by PostgreSQL.
    pub(crate) role: String,
    /// Where the deciding command ran, as it said.
    pub(crate) os_user: Option<String>,
    pub(crate) os_host: Option<String>,
}

enum Cmd {
    Publish {
        id: String,
        request: Value,
        until: Instant,
    },
    Settle {
        id: String,
        state: &'static str,
    },
}

/// The host's handle on the fleet's holds.
#[derive(Debug, Clone)]
pub(crate) struct Board {
    tx: mpsc::UnboundedSender<Cmd>,
    connected: Arc<AtomicBool>,
}

impl std::fmt::Debug for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Publish { id, .. } => write!(f, "Publish({id})"),
            Self::Settle { id, state } => write!(f, "Settle({id}, {state})"),
        }
    }
}

impl Board {
    /// Starts the board's task (inside the runtime); decisions arrive on
    /// the receiver.
    pub(crate) fn spawn(
        fleet: FleetConfig,
        origin: Origin,
    ) -> (Self, mpsc::UnboundedReceiver<FleetDecision>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (decided, decisions) = mpsc::unbounded_channel();
        let connected = Arc::new(AtomicBool::new(false));
        let task = Task {
            fleet,
            origin,
            rx,
            decided,
            open: HashMap::new(),
            connected: connected.clone(),
        };
        tokio::spawn(task.run());
        (Self { tx, connected }, decisions)
    }

    /// Publishes a request just held (`request`: what approvers see),
    /// held at most `timeout`.
    pub(crate) fn publish(&self, id: &str, request: Value, timeout: Duration) {
        let _ = self.tx.send(Cmd::Publish {
            id: id.to_owned(),
            request,
            until: Instant::now() + timeout,
        });
    }

    /// The hold ended here (`approved`, `denied`, `expired`, `abandoned`).
    pub(crate) fn settle(&self, id: &str, state: &'static str) {
        let _ = self.tx.send(Cmd::Settle {
            id: id.to_owned(),
            state,
        });
    }

    /// Whether holds reach the fleet now.
    pub(crate) fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }
}

struct Task {
    fleet: FleetConfig,
    origin: Origin,
    rx: mpsc::UnboundedReceiver<Cmd>,
    decided: mpsc::UnboundedSender<FleetDecision>,
    /// Holds not settled yet: published again after a reconnect.
    open: HashMap<String, (Value, Instant)>,
    connected: Arc<AtomicBool>,
}

impl Task {
    async fn run(mut self) {
        let mut backoff = crate::core::Backoff::default();
        let mut said: Option<String> = None;
        loop {
            let began = Instant::now();
            let e = self.session().await;
            self.connected.store(false, Ordering::Relaxed);
            let Some(e) = e else { return };
            let text = e.to_string();
            if said.as_deref() != Some(text.as_str()) {
                tracing::warn!(error = %text, "fleet approvals unavailable: held requests are decided on this host only until the database is back");
                said = Some(text);
            }
            // Commands keep coming meanwhile: keep the open holds current.
            let wait = tokio::time::sleep(backoff.after(began));
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    () = &mut wait => break,
                    cmd = self.rx.recv() => match cmd {
                        Some(cmd) => self.apply_offline(cmd),
                        None => return,
                    },
                }
            }
        }
    }

    fn apply_offline(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Publish { id, request, until } => {
                self.open.insert(id, (request, until));
            }
            Cmd::Settle { id, .. } => {
                self.open.remove(&id);
            }
        }
    }

    /// One connection's life; `None` once the registry is gone.
    async fn session(&mut self) -> Option<FleetError> {
        let (client, mut notices) = match self.connect().await {
            Ok(c) => c,
            Err(e) => return Some(e),
        };
        self.connected.store(true, Ordering::Relaxed);
        tracing::info!("fleet approvals: held requests are published to the fleet");
        let open: Vec<(String, Value, Instant)> = self
            .open
            .iter()
            .map(|(id, (v, until))| (id.clone(), v.clone(), *until))
            .collect();
        for (id, request, until) in open {
            if let Err(e) = self.publish(&client, &id, &request, until).await {
                return Some(e);
            }
        }
        let mut recheck = tokio::time::interval(RECHECK);
        loop {
            let result = tokio::select! {
                cmd = self.rx.recv() => match cmd {
                    Some(cmd) => self.apply(&client, cmd).await,
                    None => return None,
                },
                note = notices.recv() => match note {
                    Some(n) => match n.payload().split_once(' ') {
                        Some((trail, id)) if trail == self.origin.trail.as_str()
                            && self.open.contains_key(id) => {
                            self.look(&client, &[id.to_owned()]).await
                        }
                        _ => Ok(()),
                    },
                    None => Err(FleetError::Db("the connection closed".into())),
                },
                _ = recheck.tick() => {
                    let ids: Vec<String> = self.open.keys().cloned().collect();
                    self.look(&client, &ids).await
                }
            };
            if let Err(e) = result {
                return Some(e);
            }
        }
    }

    async fn connect(&self) -> Result<(Client, Notices), FleetError> {
        let (mut client, notices) = super::connect::connect_listening(&self.fleet).await?;
        super::schema::ensure(&mut client).await?;
        client
            .execute(
                "INSERT INTO airlock_trails (trail, host, machine_id) VALUES ($1, $2, $3)
                 ON CONFLICT (trail) DO NOTHING",
                &[
                    &self.origin.trail.as_str(),
                    &self.origin.host,
                    &self.origin.machine_id,
                ],
            )
            .await?;
        client.batch_execute("LISTEN airlock_decisions").await?;
        Ok((client, notices))
    }

    async fn apply(&mut self, client: &Client, cmd: Cmd) -> Result<(), FleetError> {
        match cmd {
            Cmd::Publish { id, request, until } => {
                self.publish(client, &id, &request, until).await?;
                self.open.insert(id, (request, until));
            }
            Cmd::Settle { id, state } => {
                self.open.remove(&id);
                client
                    .execute(
                        "UPDATE airlock_holds SET state = $3
                         WHERE trail = $1 AND id = $2 AND state = 'held'",
                        &[&self.origin.trail.as_str(), &id, &state],
                    )
                    .await?;
            }
        }
        Ok(())
    }

    async fn publish(
        &self,
        client: &Client,
        id: &str,
        request: &Value,
        until: Instant,
    ) -> Result<(), FleetError> {
        let left = until
            .saturating_duration_since(Instant::now())
            .as_secs_f64();
        client
            .execute(
                "INSERT INTO airlock_holds (trail, id, host, expires_at, request)
                 VALUES ($1, $2, $3, now() + make_interval(secs => $4), $5::text::jsonb)
                 ON CONFLICT (trail, id) DO NOTHING",
                &[
                    &self.origin.trail.as_str(),
                    &id,
                    &self.origin.host,
                    &left,
                    &request.to_string(),
                ],
            )
            .await?;
        Ok(())
    }

    /// Hands over the decisions on `ids`, if any were made.
    async fn look(&self, client: &Client, ids: &[String]) -> Result<(), FleetError> {
        if ids.is_empty() {
            return Ok(());
        }
        let rows = client
            .query(
                "SELECT id, decision, window_s, scope, reason, db_role::text, os_user, os_host
                 FROM airlock_decisions WHERE trail = $1 AND id = ANY($2)",
                &[&self.origin.trail.as_str(), &ids],
            )
            .await?;
        for row in rows {
            let _ = self.decided.send(FleetDecision {
                id: row.get(0),
                approve: row.get::<_, &str>(1) == "approve",
                window: row
                    .get::<_, Option<i64>>(2)
                    .map(|s| Duration::from_secs(s.max(0) as u64)),
                scope: row.get(3),
                reason: row.get(4),
                role: row.get(5),
                os_user: row.get(6),
                os_host: row.get(7),
            });
        }
        Ok(())
    }
}
