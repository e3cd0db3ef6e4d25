//! The records written to the audit file and their field names (a contract:
//! tools outside airlock read them).

use serde::Serialize;

use crate::addrs::Endpoint;
use crate::capture::ProcessInfo;

/// `kind` of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// A captured connection relayed as TCP.
    Connection,
    /// airlock itself started or stopped.
    Agent,
}

/// One captured TCP connection, written when it ends.
#[derive(Clone, Debug, Serialize)]
pub struct ConnectionRecord {
    pub kind: RecordKind,
    pub process: ProcessInfo,
    /// The client's address (its local port identifies the socket).
    pub src: Endpoint,
    /// The original destination.
    pub dst: Endpoint,
    /// Bytes client → upstream.
    pub bytes_out: u64,
    /// Bytes upstream → client.
    pub bytes_in: u64,
    pub duration_ms: u64,
    /// Why the relay failed, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// airlock's own lifecycle.
#[derive(Clone, Debug, Serialize)]
pub struct AgentRecord {
    pub kind: RecordKind,
    /// `start` or `stop`.
    pub event: &'static str,
    pub version: &'static str,
    pub pid: u32,
    /// The cgroup the capture programs are attached to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
}
