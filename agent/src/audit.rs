//! The audit trail: one JSON line per event, sealed into a hash chain by a
//! dedicated writer thread, durable before requests are forwarded.

mod access;
pub mod chain;
pub mod checkpoint;
pub mod files;
pub mod query;
mod queue;
mod recover;
mod stats;
pub mod verify;
mod writer;

pub use stats::AuditStats;
pub use writer::{AuditError, AuditLog};
