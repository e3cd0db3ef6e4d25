//! The fleet's tables, roles and row-level security, versioned: `airlock
//! fleet migrate` (as the database's owner) brings the schema to
//! [`CURRENT`] in one transaction; a host's daemon checks the version
//! before shipping and, when its role may, migrates it itself.

use tokio_postgres::Client;

use super::FleetError;

/// The schema this airlock writes and reads.
pub(super) const CURRENT: i32 = 2;

/// Each version's migration, in order: `MIGRATIONS[n]` takes n to n+1.
const MIGRATIONS: [&str; CURRENT as usize] =
    [include_str!("schema_v1.sql"), include_str!("schema_v2.sql")];

/// Brings the schema to [`CURRENT`]; returns the version it found.
pub(super) async fn migrate(client: &mut Client) -> Result<i32, FleetError> {
    let tx = client.transaction().await?;
    // One migrator at a time: the second waits, then finds it done.
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS airlock_schema (version integer NOT NULL);
         LOCK TABLE airlock_schema IN EXCLUSIVE MODE;",
    )
    .await?;
    let found = version_in(&tx).await?;
    if found > CURRENT {
        return Err(FleetError::Schema {
            found,
            want: CURRENT,
        });
    }
    for sql in &MIGRATIONS[found as usize..] {
        tx.batch_execute(sql).await?;
    }
    tx.execute("DELETE FROM airlock_schema", &[]).await?;
    tx.execute("INSERT INTO airlock_schema VALUES ($1)", &[&CURRENT])
        .await?;
    tx.commit().await?;
    Ok(found)
}

/// Checks the schema is at [`CURRENT`], migrating it when it is older and
/// this role may.
pub(super) async fn ensure(client: &mut Client) -> Result<(), FleetError> {
    let found = match version_in(&*client).await {
        Ok(v) => v,
        // No schema at all yet.
        Err(FleetError::Db(_)) => 0,
        Err(e) => return Err(e),
    };
    if found == CURRENT {
        return Ok(());
    }
    if found < CURRENT && migrate(client).await.is_ok() {
        return Ok(());
    }
    Err(FleetError::Schema {
        found,
        want: CURRENT,
    })
}

async fn version_in(c: &impl tokio_postgres::GenericClient) -> Result<i32, FleetError> {
    let row = c
        .query_one("SELECT coalesce(max(version), 0) FROM airlock_schema", &[])
        .await?;
    Ok(row.get(0))
}
