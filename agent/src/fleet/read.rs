//! The fleet read back: `audit search --fleet` (the same filters as the
//! local search, plus the host a record came from) and `audit verify
//! --fleet` (each of a host's shipped chains checked as the local verifier
//! checks files). Both stream through server-side portals, a page at a
//! time, so a fleet's trail never has to fit in memory.

use std::path::PathBuf;

use serde_json::Value;

use super::FleetError;
use crate::audit::query::Filter;
use crate::audit::verify::{Verified, Verifier, VerifyError};
use crate::config::FleetConfig;

/// Rows fetched per round trip.
const PAGE: i32 = 2000;

/// Calls `each` with every joined exchange or record from the fleet that
/// `filter` matches (and that `origin`, a host name, wrote), oldest first,
/// until it returns false; returns how many matched.
pub async fn search(
    fleet: &FleetConfig,
    filter: &Filter,
    origin: Option<&str>,
    mut each: impl FnMut(&Value) -> bool,
) -> Result<u64, FleetError> {
    let mut client = super::connect::connect(fleet).await?;
    let tx = client.transaction().await?;
    let time = |t: Option<std::time::SystemTime>| {
        t.map(|t| humantime::format_rfc3339_micros(t).to_string())
    };
    let status = filter.status.map(i32::from);
    let (since, until) = (time(filter.since), time(filter.until));
    // What an index can narrow is asked of the database; every filter is
    // applied again below, exactly as the local search applies it.
    let portal = tx
        .bind(
            "SELECT record::text FROM airlock_exchanges
             WHERE ($1::text IS NULL OR host = $1)
               AND ($2::text IS NULL OR ts >= $2::timestamptz)
               AND ($3::text IS NULL OR ts <= $3::timestamptz)
               AND ($4::text IS NULL OR lower(kind) = lower($4))
               AND ($5::text IS NULL OR lower(comm) = lower($5))
               AND ($6::text IS NULL OR lower(decision) = lower($6))
               AND ($7::integer IS NULL OR status = $7)
             ORDER BY ts, trail, first_seq",
            &[
                &origin,
                &since,
                &until,
                &filter.kind,
                &filter.comm,
                &filter.decision,
                &status,
            ],
        )
        .await?;
    let mut matched = 0;
    loop {
        let rows = tx.query_portal(&portal, PAGE).await?;
        for row in &rows {
            let Ok(record) = serde_json::from_str::<Value>(row.get(0)) else {
                continue;
            };
            if filter.matches(&record) {
                matched += 1;
                if !each(&record) {
                    return Ok(matched);
                }
            }
        }
        if rows.len() < PAGE as usize {
            return Ok(matched);
        }
    }
}

/// One shipped chain, checked.
#[derive(Debug)]
pub struct ShippedTrail {
    pub trail: String,
    /// The database role that shipped it.
    pub owner: String,
    /// How far the host says it shipped.
    pub shipped_seq: u64,
    /// Breaks the shipper found in the local chain as it shipped.
    pub breaks_recorded: i64,
    pub result: Result<Verified, VerifyError>,
}

/// Checks every chain `origin` (a host name) shipped, oldest trail first;
/// with `key`, their signed checkpoints too.
pub async fn verify(
    fleet: &FleetConfig,
    origin: &str,
    key: Option<&str>,
) -> Result<Vec<ShippedTrail>, FleetError> {
    let mut client = super::connect::connect(fleet).await?;
    let trails = client
        .query(
            "SELECT t.trail, t.owner::text, t.shipped_seq,
                    (SELECT count(*) FROM airlock_chain_breaks b WHERE b.trail = t.trail)
             FROM airlock_trails t WHERE t.host = $1 ORDER BY t.registered, t.trail",
            &[&origin],
        )
        .await?;
    let mut out = Vec::new();
    for t in trails {
        let trail: String = t.get(0);
        let shipped_seq = t.get::<_, i64>(2) as u64;
        let result = verify_trail(&mut client, origin, &trail, key, shipped_seq).await?;
        out.push(ShippedTrail {
            owner: t.get(1),
            shipped_seq,
            breaks_recorded: t.get(3),
            result,
            trail,
        });
    }
    Ok(out)
}

async fn verify_trail(
    client: &mut tokio_postgres::Client,
    origin: &str,
    trail: &str,
    key: Option<&str>,
    shipped_seq: u64,
) -> Result<Result<Verified, VerifyError>, FleetError> {
    let tx = client.transaction().await?;
    let portal = tx
        .bind(
            "SELECT seq, line FROM airlock_records WHERE trail = $1 ORDER BY seq",
            &[&trail],
        )
        .await?;
    let mut verifier = Verifier::new(key);
    let mut name = PathBuf::new();
    let mut bytes = Vec::new();
    let mut last = 0;
    loop {
        let rows = tx.query_portal(&portal, PAGE).await?;
        let Some(first) = rows.first() else { break };
        // A page is checked as one piece; an error names its first seq
        // and the line within it.
        name = PathBuf::from(format!(
            "fleet:{origin}/{trail} from seq {}",
            first.get::<_, i64>(0)
        ));
        bytes.clear();
        for row in &rows {
            last = row.get::<_, i64>(0) as u64;
            bytes.extend_from_slice(row.get::<_, &str>(1).as_bytes());
            bytes.push(b'\n');
        }
        if let Err(e) = verifier.feed(&name, &bytes) {
            return Ok(Err(e));
        }
        if rows.len() < PAGE as usize {
            break;
        }
    }
    if last < shipped_seq {
        return Ok(Err(VerifyError::Broken {
            file: name,
            line: 0,
            reason: format!(
                "the host shipped through seq {shipped_seq}, the database holds records only through {last}"
            ),
        }));
    }
    Ok(verifier.finish(&name))
}
