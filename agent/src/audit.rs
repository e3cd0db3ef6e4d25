//! The audit trail: one JSON line per event, written by a dedicated thread
//! so the data path never waits on the disk.

mod record;
mod writer;

pub use record::{
    AgentRecord, ConnectionRecord, HttpRecord, RecordKind, RequestInfo, ResponseInfo, TlsInfo,
    TlsRefusedRecord,
};
pub use writer::{AuditError, AuditLog};
