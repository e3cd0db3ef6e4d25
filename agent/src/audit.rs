//! The audit trail: one JSON line per event, sealed into a hash chain by a
//! dedicated writer thread, durable before requests are forwarded.

mod access;
pub(crate) mod chain;
pub(crate) mod checkpoint;
pub(crate) mod files;
mod hold;
mod join;
pub(crate) mod origin;
pub mod query;
mod queue;
mod recover;
mod stats;
pub(crate) mod summary;
pub(crate) mod tail;
pub(crate) mod verify;
mod writer;

pub(crate) use hold::RetentionHold;
pub(crate) use stats::AuditStats;
pub(crate) use writer::{AuditError, AuditLog};
