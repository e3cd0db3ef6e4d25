//! The shipper: streams this host's trail into the fleet's PostgreSQL,
//! from where the database says it stopped, one transaction per batch —
//! raw records keyed by (`trail`, `seq`) and inserted only if absent,
//! joined exchanges upserted by their first record, chain breaks, and the
//! trail's progress, all or nothing — so every record arrives exactly once
//! whatever fails when. It reads the files, never the writer's queue: a
//! slow or absent database delays only the copy, never traffic. Its
//! progress holds back retention (`AuditLog::hold_retention`); its lag is
//! in `status` and the metrics.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use tokio_postgres::Client;

use super::FleetError;
use super::rows::{Columns, Row};
use crate::audit::chain::{self, Head};
use crate::audit::origin::{Origin, TrailId};
use crate::audit::query::{Joiner, merge};
use crate::audit::tail::Tail;
use crate::audit::{AuditLog, RetentionHold};
use crate::config::FleetConfig;
use crate::core::lock;

/// How often an idle shipper looks for new records.
const POLL: Duration = Duration::from_millis(200);

/// What the shipper says about itself (`status.fleet`, metrics).
#[derive(Debug, Default)]
pub(crate) struct ShipStats {
    connected: AtomicBool,
    /// The last seq the database holds.
    shipped_seq: AtomicU64,
    /// Records shipped by this airlock.
    records: AtomicU64,
    /// Chain breaks found while shipping.
    breaks: AtomicU64,
    error: Mutex<Option<String>>,
    /// When the database last held everything there was.
    caught_up: Mutex<Option<SystemTime>>,
}

impl ShipStats {
    /// Records on disk the database does not hold yet.
    pub(crate) fn lag(&self, local_seq: u64) -> u64 {
        local_seq.saturating_sub(self.shipped_seq.load(Ordering::Relaxed))
    }

    pub(crate) fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    pub(crate) fn shipped_seq(&self) -> u64 {
        self.shipped_seq.load(Ordering::Relaxed)
    }

    pub(crate) fn breaks(&self) -> u64 {
        self.breaks.load(Ordering::Relaxed)
    }

    /// `status.fleet`, given the chain head on disk.
    pub(crate) fn status(&self, local_seq: u64) -> Value {
        let lag = self.lag(local_seq);
        let behind = match *lock(&self.caught_up) {
            _ if lag == 0 => Some(0),
            Some(t) => t.elapsed().ok().map(|d| d.as_secs()),
            None => None,
        };
        serde_json::json!({
            "connected": self.connected(),
            "shipped_seq": self.shipped_seq(),
            "shipped_records": self.records.load(Ordering::Relaxed),
            "lag_records": lag,
            "lag_seconds": behind,
            "chain_breaks": self.breaks(),
            "error": *lock(&self.error),
        })
    }
}

/// Ships one trail, the one `audit` writes.
#[derive(Debug)]
pub(crate) struct Shipper {
    fleet: FleetConfig,
    audit: AuditLog,
    origin: Origin,
    stats: Arc<ShipStats>,
    hold: RetentionHold,
}

impl Shipper {
    pub(crate) fn new(fleet: FleetConfig, audit: AuditLog) -> Self {
        let trail = audit
            .stats()
            .trail
            .as_deref()
            .and_then(TrailId::parse)
            .unwrap_or_else(TrailId::new);
        // Nothing is removed by retention before it is shipped.
        let hold = audit.hold_retention();
        Self {
            fleet,
            hold,
            audit,
            origin: Origin::here(trail),
            stats: Arc::default(),
        }
    }

    /// Where this trail comes from (its id, host and machine).
    pub(crate) fn origin(&self) -> &Origin {
        &self.origin
    }

    pub(crate) fn stats(&self) -> Arc<ShipStats> {
        self.stats.clone()
    }

    /// Ships until `stop` turns true and everything written is shipped
    /// (the caller bounds how long it waits for that); reconnects with
    /// backoff meanwhile.
    pub(crate) async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut backoff = crate::core::Backoff::default();
        loop {
            let began = Instant::now();
            let e = match self.session(&mut stop).await {
                Ok(()) => return,
                Err(e) => e,
            };
            self.stats.connected.store(false, Ordering::Relaxed);
            let text = e.to_string();
            if crate::core::new_error(&self.stats.error, &text) {
                tracing::warn!(error = %text, "fleet: shipping stopped; retrying");
            }
            if backoff.pause(began, &mut stop).await {
                return;
            }
        }
    }

    /// One connection's shipping: from where the database says, until an
    /// error, or until stopped with nothing left.
    async fn session(
        &self,
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), FleetError> {
        let mut client = super::connect::connect(&self.fleet).await?;
        super::schema::ensure(&mut client).await?;
        let trail = self.origin.trail.as_str();
        client
            .execute(
                "INSERT INTO airlock_trails (trail, host, machine_id) VALUES ($1, $2, $3)
                 ON CONFLICT (trail) DO NOTHING",
                &[&trail, &self.origin.host, &self.origin.machine_id],
            )
            .await?;
        let row = client
            .query_opt(
                "SELECT shipped_seq, shipped_hash FROM airlock_trails WHERE trail = $1",
                &[&trail],
            )
            .await?
            .ok_or_else(|| FleetError::TrailTaken(trail.to_owned()))?;
        let shipped = row.get::<_, i64>(0) as u64;
        self.stats.shipped_seq.store(shipped, Ordering::Relaxed);
        self.stats.connected.store(true, Ordering::Relaxed);
        if lock(&self.stats.error).take().is_some() {
            tracing::info!(shipped_seq = shipped, "fleet: shipping again");
        }
        self.hold.release_through(shipped);
        let mut reader = Reader {
            tail: Tail::new(self.audit.path(), shipped + 1),
            head: row
                .get::<_, Option<String>>(1)
                .map(|hash| Head { hash, seq: shipped }),
            joining: Joining::default(),
            trail: trail.to_owned(),
            host: self.origin.host.clone(),
        };
        let max = self.fleet.batch_records;
        loop {
            // Reading, parsing and checking the chain is CPU work: off the
            // async threads, which serve traffic.
            let (r, batch) = off_thread(reader, move |r| r.read(max)).await?;
            reader = r;
            let mut batch = batch?;
            if batch.seqs.is_empty() {
                if self.stats.lag(self.audit.stats().seq) == 0 {
                    *lock(&self.stats.caught_up) = Some(SystemTime::now());
                }
                if *stop.borrow() {
                    return Ok(());
                }
                tokio::select! {
                    () = tokio::time::sleep(POLL) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            let context = reader.joining.context(&client, trail, &batch).await?;
            let (r, columns) = off_thread(reader, move |r| {
                let rows = r.joining.join(&mut batch, context);
                (Columns::of(&rows, &r.host), batch)
            })
            .await?;
            reader = r;
            let (columns, batch) = columns;
            batch.write(&mut client, trail, &columns).await?;
            self.stats.shipped_seq.store(batch.last, Ordering::Relaxed);
            self.stats
                .records
                .fetch_add(batch.seqs.len() as u64, Ordering::Relaxed);
            self.stats
                .breaks
                .fetch_add(batch.breaks.len() as u64, Ordering::Relaxed);
            for (seq, reason) in &batch.breaks {
                tracing::error!(seq, reason, "fleet: the local trail's chain breaks here");
            }
            self.hold.release_through(batch.last);
        }
    }
}

/// Runs `f` on `state` on a blocking thread, and gives the state back.
async fn off_thread<T, R>(
    mut state: T,
    f: impl FnOnce(&mut T) -> R + Send + 'static,
) -> Result<(T, R), FleetError>
where
    T: Send + 'static,
    R: Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        let r = f(&mut state);
        (state, r)
    })
    .await
    .map_err(|e| FleetError::Trail(std::io::Error::other(e)))
}

/// The shipper's reading side, moved to a blocking thread for each step:
/// the files, the chain as checked so far, and the exchanges being joined.
struct Reader {
    tail: Tail,
    head: Option<Head>,
    joining: Joining,
    trail: String,
    /// This host's name, for records that do not carry theirs.
    host: String,
}

impl Reader {
    /// The next records (at most `max`), checked against the chain.
    fn read(&mut self, max: usize) -> Result<Batch, FleetError> {
        let lines = self.tail.read(max)?;
        let mut batch = Batch::default();
        for line in lines {
            batch.last = line.seq;
            let bytes = line.text.as_bytes();
            let parsed = serde_json::from_str::<Value>(&line.text)
                .ok()
                .filter(Value::is_object);
            let checked = match &parsed {
                Some(r) => chain::verify_parsed(bytes, r, self.head.as_ref()),
                None => Err(chain::NOT_JSON.into()),
            };
            self.head = match checked {
                Ok(h) => Some(h),
                Err(reason) => {
                    batch.breaks.push((line.seq, reason));
                    // The chain goes on from this record, if it is one.
                    parsed
                        .as_ref()
                        .and_then(|r| chain::verify_parsed(bytes, r, None).ok())
                }
            };
            let record = match parsed {
                Some(r) if r["seq"].as_u64() == Some(line.seq) => r,
                _ => continue,
            };
            if record["origin"]["trail"]
                .as_str()
                .is_some_and(|t| t != self.trail)
            {
                batch
                    .breaks
                    .push((line.seq, "a record of another trail in this one".into()));
                continue;
            }
            batch.seqs.push(line.seq as i64);
            batch.lines.push(line.text);
            batch.records.push(record);
        }
        batch.head = self.head.clone();
        Ok(batch)
    }
}

/// What one transaction writes.
#[derive(Debug, Default)]
struct Batch {
    /// The records to store, with their lines; `records[i]` is
    /// `lines[i]` parsed.
    seqs: Vec<i64>,
    lines: Vec<String>,
    records: Vec<Value>,
    breaks: Vec<(u64, String)>,
    /// The chain head after the batch.
    head: Option<Head>,
    /// The last seq read (stored or not).
    last: u64,
}

impl Batch {
    async fn write(&self, client: &mut Client, trail: &str, c: &Columns) -> Result<(), FleetError> {
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO airlock_records (trail, seq, line)
             SELECT $1, u.seq, u.line FROM unnest($2::bigint[], $3::text[]) AS u(seq, line)
             ON CONFLICT DO NOTHING",
            &[&trail, &self.seqs, &self.lines],
        )
        .await?;
        tx.execute(
            "INSERT INTO airlock_exchanges (trail, first_seq, last_seq, id, ts, host, kind, comm,
                 uid, username, upn, oid, operation, decision, status, request_host, record)
             SELECT $1, u.first_seq, u.last_seq, u.id, u.ts::timestamptz, u.host, u.kind, u.comm,
                 u.uid, u.username, u.upn, u.oid, u.operation, u.decision, u.status,
                 u.request_host, u.record::jsonb
             FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[],
                 $7::text[], $8::text[], $9::bigint[], $10::text[], $11::text[], $12::text[],
                 $13::text[], $14::text[], $15::integer[], $16::text[], $17::text[])
               AS u(first_seq, last_seq, id, ts, host, kind, comm, uid, username, upn, oid,
                 operation, decision, status, request_host, record)
             ON CONFLICT (trail, first_seq) DO UPDATE SET
                 last_seq = EXCLUDED.last_seq, id = EXCLUDED.id, ts = EXCLUDED.ts,
                 host = EXCLUDED.host, kind = EXCLUDED.kind, comm = EXCLUDED.comm,
                 uid = EXCLUDED.uid, username = EXCLUDED.username, upn = EXCLUDED.upn,
                 oid = EXCLUDED.oid, operation = EXCLUDED.operation,
                 decision = EXCLUDED.decision, status = EXCLUDED.status,
                 request_host = EXCLUDED.request_host, record = EXCLUDED.record",
            &[
                &trail,
                &c.first_seq,
                &c.last_seq,
                &c.id,
                &c.ts,
                &c.host,
                &c.kind,
                &c.comm,
                &c.uid,
                &c.username,
                &c.upn,
                &c.oid,
                &c.operation,
                &c.decision,
                &c.status,
                &c.request_host,
                &c.record,
            ],
        )
        .await?;
        if !self.breaks.is_empty() {
            let (seqs, reasons): (Vec<i64>, Vec<&str>) = self
                .breaks
                .iter()
                .map(|(s, r)| (*s as i64, r.as_str()))
                .unzip();
            tx.execute(
                "INSERT INTO airlock_chain_breaks (trail, seq, reason)
                 SELECT $1, u.seq, u.reason FROM unnest($2::bigint[], $3::text[]) AS u(seq, reason)
                 ON CONFLICT DO NOTHING",
                &[&trail, &seqs, &reasons],
            )
            .await?;
        }
        tx.execute(
            "UPDATE airlock_trails SET shipped_seq = $2, shipped_hash = $3, shipped_at = now()
             WHERE trail = $1 AND shipped_seq < $2",
            &[
                &trail,
                &(self.last as i64),
                &self.head.as_ref().map(|h| h.hash.as_str()),
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Records joined into exchanges as they are shipped, for the life of one
/// connection (a new one starts from what the database holds).
#[derive(Default)]
struct Joining {
    joiner: Joiner,
    /// Exchanges whose request was shipped and whose response was not:
    /// their first seq, by exchange id.
    open: HashMap<String, u64>,
}

/// What the database holds that a batch's records refer to, shipped
/// before this connection: the sessions they name, and the exchanges
/// their responses end (first seq and row, by id).
struct Context {
    sessions: Vec<String>,
    earlier: HashMap<String, (u64, Value)>,
}

impl Joining {
    /// Asks the database for what `batch` refers to that this connection
    /// has not seen.
    async fn context(
        &self,
        client: &Client,
        trail: &str,
        batch: &Batch,
    ) -> Result<Context, FleetError> {
        let records = &batch.records;
        let defined: HashSet<&str> = records
            .iter()
            .filter(|r| r["kind"] == "session")
            .filter_map(|r| r["id"].as_str())
            .collect();
        let sessions: Vec<&str> = records
            .iter()
            .filter_map(|r| r["session"].as_str())
            .filter(|s| !defined.contains(s) && !self.joiner.knows_session(s))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let requested: HashSet<&str> = records
            .iter()
            .filter(|r| r["kind"] == "http" && r["phase"] == "request")
            .filter_map(|r| r["id"].as_str())
            .collect();
        let responses: Vec<&str> = records
            .iter()
            .filter(|r| r["kind"] == "http" && r["phase"] != "request")
            .filter_map(|r| r["id"].as_str())
            .filter(|id| !requested.contains(id) && !self.open.contains_key(*id))
            .collect();
        let mut context = Context {
            sessions: Vec::new(),
            earlier: HashMap::new(),
        };
        if !sessions.is_empty() {
            let found = client
                .query(
                    "SELECT line FROM airlock_records
                     WHERE trail = $1 AND record ->> 'kind' = 'session' AND record ->> 'id' = ANY($2)
                     ORDER BY seq",
                    &[&trail, &sessions],
                )
                .await?;
            context.sessions = found.iter().map(|row| row.get(0)).collect();
        }
        if !responses.is_empty() {
            let found = client
                .query(
                    "SELECT id, first_seq, record::text FROM airlock_exchanges
                     WHERE trail = $1 AND kind = 'http' AND id = ANY($2)",
                    &[&trail, &responses],
                )
                .await?;
            context.earlier = found
                .into_iter()
                .filter_map(|row| {
                    let record = serde_json::from_str(row.get::<_, &str>(2)).ok()?;
                    Some((row.get(0), (row.get::<_, i64>(1) as u64, record)))
                })
                .collect();
        }
        Ok(context)
    }

    /// Joins the batch's records into rows (taking them out of `batch`),
    /// with `context` for what was shipped before.
    fn join(&mut self, batch: &mut Batch, context: Context) -> Vec<Row> {
        for line in context.sessions {
            if let Ok(record) = serde_json::from_str(&line) {
                self.joiner.push(&line, record);
            }
        }
        let mut earlier = context.earlier;
        let mut rows: Vec<Row> = Vec::new();
        let mut at: HashMap<u64, usize> = HashMap::new();
        let records = std::mem::take(&mut batch.records);
        for ((record, line), seq) in records.into_iter().zip(&batch.lines).zip(&batch.seqs) {
            let seq = *seq as u64;
            let id = record["id"].as_str().unwrap_or_default().to_owned();
            let row = match (record["kind"].as_str(), record["phase"].as_str()) {
                (Some("session"), _) => {
                    self.joiner.push(line, record);
                    None
                }
                (Some("http"), Some("request")) => {
                    self.joiner.push(line, record);
                    self.open.insert(id.clone(), seq);
                    self.joiner.so_far(&id).map(|record| Row {
                        first_seq: seq,
                        last_seq: seq,
                        record,
                    })
                }
                (Some("http"), _) => {
                    let first = self.open.remove(&id);
                    self.joiner.push(line, record).map(|j| {
                        let (first_seq, record) = match (first, earlier.remove(&id)) {
                            (Some(first), _) => (first, j.record),
                            (None, Some((first, mut base))) => {
                                let mut joined = j.record;
                                if base.get("process").is_some()
                                    && let Some(o) = joined.as_object_mut()
                                {
                                    o.remove("session_missing");
                                }
                                merge(&mut base, joined);
                                (first, base)
                            }
                            (None, None) => (seq, j.record),
                        };
                        Row {
                            first_seq,
                            last_seq: seq,
                            record,
                        }
                    })
                }
                _ => self.joiner.push(line, record).map(|j| Row {
                    first_seq: seq,
                    last_seq: seq,
                    record: j.record,
                }),
            };
            // One row per key in a statement: a request and its response
            // in one batch make one row, the later state.
            if let Some(row) = row {
                match at.get(&row.first_seq) {
                    Some(&i) => rows[i] = row,
                    None => {
                        at.insert(row.first_seq, rows.len());
                        rows.push(row);
                    }
                }
            }
        }
        rows
    }
}
