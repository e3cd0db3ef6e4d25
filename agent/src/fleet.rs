//! The fleet: this host's trail copied into PostgreSQL, where a platform
//! team searches every host's trail at once and checks each against its
//! chain. The local hash-chained file stays the source of truth; the
//! database holds copies that can be checked against it.
//!
//! Owns the connection (TLS as `[fleet]` says, [`connect`]), the schema,
//! its roles and row-level security ([`schema`]), the shipper that streams
//! the local trail in ([`ship`]: raw records exactly once, joined exchanges
//! for search, chain breaks found on the way), and the readers behind
//! `audit search --fleet` and `audit verify --fleet` ([`read`]), and fleet
//! approvals: the holding host's side ([`board`]), the approver's
//! ([`decide`]) and the fleet console's live list ([`feed`]).

mod board;
mod connect;
mod decide;
mod feed;
mod read;
mod rows;
mod schema;
mod ship;

pub(crate) use board::{Board, FleetDecision};
pub(crate) use decide::decide_as;
pub use decide::{Decide, decide, held};
pub(crate) use feed::HeldFeed;
pub use read::{ShippedTrail, search, verify};
pub(crate) use ship::{ShipStats, Shipper};

/// `airlock fleet migrate`: connects as `[fleet]` says (the database's
/// owner, for this) and brings the schema to this airlock's version;
/// returns the versions before and after.
pub async fn migrate(fleet: &crate::config::FleetConfig) -> Result<(i32, i32), FleetError> {
    let mut client = connect::connect(fleet).await?;
    let found = schema::migrate(&mut client).await?;
    Ok((found, schema::CURRENT))
}

/// What can go wrong between airlock and the fleet's database.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("no fleet is configured: set [fleet] postgres")]
    NotConfigured,
    #[error("fleet.postgres: {0}")]
    Config(String),
    #[error("PostgreSQL: {0}")]
    Db(String),
    #[error("fleet.password_file {path}: {error}")]
    Password {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
    #[error("TLS to PostgreSQL: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error(
        "the fleet's schema is at version {found}, this airlock needs {want}: run `airlock fleet migrate` as the database's owner"
    )]
    Schema { found: i32, want: i32 },
    #[error("the trail {0} is shipped by another database role: two hosts cannot share a trail")]
    TrailTaken(String),
    #[error("{0}")]
    Decision(String),
    #[error("the local trail: {0}")]
    Trail(#[from] std::io::Error),
}

impl From<tokio_postgres::Error> for FleetError {
    /// The driver's message, and the server's (its own `Display` stops at
    /// "db error").
    fn from(e: tokio_postgres::Error) -> Self {
        use std::error::Error as _;
        let mut text = e.to_string();
        let mut cause = e.source();
        while let Some(c) = cause {
            text.push_str(": ");
            text.push_str(&c.to_string());
            cause = c.source();
        }
        Self::Db(text)
    }
}
