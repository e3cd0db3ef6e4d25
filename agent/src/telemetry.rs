//! What airlock measures about itself while it runs: the traffic counters
//! the proxy feeds, the live parts `status` and `/metrics` read from when
//! asked (so nothing can drift from the live state), and the Prometheus
//! text format. Served by [`crate::admin`].

mod exposition;
mod traffic;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Instant, SystemTime};

use serde::Serialize;

pub(crate) use exposition::Exposition;
pub(crate) use traffic::{ConnPath, Traffic};

use crate::audit::AuditLog;
use crate::capture::{AttachedCgroups, EventCounts, OrigDstTable, Selectors};
use crate::host::InterceptList;
use crate::policy::LivePolicy;
use crate::tls::LeafCache;

/// Shared by the proxy (which feeds it) and the admin server (which reads
/// it). The live parts are attached once airlock is built.
#[derive(Debug)]
pub(crate) struct Telemetry {
    started: Instant,
    started_at: SystemTime,
    pub traffic: Traffic,
    sources: OnceLock<Sources>,
}

/// The running parts `status` and `metrics` read from.
#[derive(Debug)]
pub(crate) struct Sources {
    /// The capture cgroups as configured.
    pub cgroup: String,
    /// Those attached now.
    pub cgroups: AttachedCgroups,
    pub fail_closed: bool,
    /// Names and kernel ids of the attached programs.
    pub programs: Vec<(String, u32)>,
    pub selectors: Arc<Mutex<Selectors>>,
    pub table: Arc<OrigDstTable>,
    pub events: Arc<EventCounts>,
    pub listen: Vec<std::net::SocketAddr>,
    pub intercept: Arc<RwLock<InterceptList>>,
    /// The CA minting now (replaced by a reload after `airlock ca rotate`).
    pub leaves: Arc<LeafCache>,
    /// The published `ca.crt`, what clients are told to trust.
    pub published: PathBuf,
    pub policy: Arc<LivePolicy>,
    pub audit: AuditLog,
    /// The fleet shipper's progress, when `[fleet]` is set.
    pub fleet: Option<Arc<crate::fleet::ShipStats>>,
    /// The syslog exporter's progress, when `[export.syslog]` is set.
    pub syslog: Option<Arc<crate::export::ExportStats>>,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct CaStatus {
    pub cert: PathBuf,
    /// SHA-256, as `openssl x509 -fingerprint -sha256` prints it.
    pub fingerprint: String,
    #[serde(serialize_with = "rfc3339_opt")]
    pub not_after: Option<SystemTime>,
    /// A rotation is under way: the previous CA is still trusted.
    pub rotating: bool,
}

impl Sources {
    /// The CA as it is now.
    pub(crate) fn ca(&self) -> CaStatus {
        let ca = self.leaves.ca();
        CaStatus {
            cert: self.published.clone(),
            fingerprint: ca.fingerprint(),
            not_after: ca.not_after(),
            rotating: ca.rotating(),
        }
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            started_at: SystemTime::now(),
            traffic: Traffic::default(),
            sources: OnceLock::new(),
        }
    }
}

impl Telemetry {
    /// Attaches the live parts (once; later calls are ignored).
    pub(crate) fn attach(&self, sources: Sources) {
        let _ = self.sources.set(sources);
    }

    /// When this airlock started.
    pub(crate) fn started_at(&self) -> SystemTime {
        self.started_at
    }

    /// How long it has run.
    pub(crate) fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// The live parts, once attached.
    pub(crate) fn sources(&self) -> Option<&Sources> {
        self.sources.get()
    }
}

fn rfc3339_opt<S: serde::Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&humantime::format_rfc3339_seconds(*t).to_string()),
        None => s.serialize_none(),
    }
}
