//! The audit trail: one JSON line per event, sealed into a hash chain by a
//! dedicated writer thread, durable before requests are forwarded.

pub mod chain;
pub mod files;
mod record;
mod redact;
pub mod verify;
mod writer;

pub use record::{
    AgentRecord, BodyInfo, ConnectionRecord, HttpRecord, Phase, RecordKind, RequestInfo,
    ResponseInfo, TlsInfo, TlsRefusedRecord,
};
pub use redact::{redact_headers, redact_query};
pub use writer::{AuditError, AuditLog};
