//! Counters of what passed through the proxy, fed once per finished
//! exchange and once per accepted connection. Label sets are bounded:
//! operation names come from the classifier (a closed vocabulary per
//! service), and past [`MAX_OPERATIONS`] distinct names the rest are
//! counted as `other`, so a scanner cannot grow the metrics without bound.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::exposition::{Exposition, Histogram};
use crate::core::lock;
use crate::core::record::HttpRecord;

/// Distinct operation names tracked before the rest become `other`.
pub(super) const MAX_OPERATIONS: usize = 512;

/// Upper bounds (seconds) of the request duration histogram: from a cached
/// local decision to a human approval.
const LATENCY_BOUNDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0,
];

/// How an accepted connection was handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ConnPath {
    /// TLS terminated and inspected.
    Intercepted,
    /// TLS to a host outside `proxy.intercept`, relayed encrypted.
    Passthrough,
    /// Plain HTTP to an instance metadata service, inspected.
    Imds,
    /// Not TLS, relayed as bytes.
    Tcp,
    /// Closed: no capture record, audit down, or no usable ClientHello.
    Refused,
    /// Closed at once: `proxy.max_connections` were open.
    OverLimit,
}

impl ConnPath {
    const ALL: [Self; 6] = [
        Self::Intercepted,
        Self::Passthrough,
        Self::Imds,
        Self::Tcp,
        Self::Refused,
        Self::OverLimit,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Self::Intercepted => "intercepted",
            Self::Passthrough => "tls_passthrough",
            Self::Imds => "imds",
            Self::Tcp => "tcp",
            Self::Refused => "refused",
            Self::OverLimit => "over_limit",
        }
    }
}

/// `(decision, status)` → count, per operation.
type ByOutcome = HashMap<(&'static str, u16), u64>;

#[derive(Debug, Default)]
pub(crate) struct Traffic {
    requests: Mutex<HashMap<String, ByOutcome>>,
    /// `(kind, result)` → count: one per request that carried a credential.
    credentials: Mutex<HashMap<(&'static str, &'static str), u64>>,
    /// `(direction, detector)` → secrets masked or found.
    masked: Mutex<HashMap<(&'static str, &'static str), u64>>,
    latency: [AtomicU64; LATENCY_BOUNDS.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
    request_bytes: AtomicU64,
    response_bytes: AtomicU64,
    connections: [AtomicU64; ConnPath::ALL.len()],
    open: AtomicU64,
    /// Upstream connections intercepted connections started with:
    /// dialled for them, reused from the pool.
    upstream: [AtomicU64; 2],
    /// Intercepted clients that refused airlock's certificate.
    client_refused: AtomicU64,
}

impl Traffic {
    /// Counts one finished exchange from its response record.
    pub(crate) fn exchange(&self, record: &HttpRecord, took: Duration) {
        let decision = record
            .decision
            .as_ref()
            .map_or("none", |d| d.action.as_str());
        let status = record.response.as_ref().map_or(0, |r| r.status);
        {
            let name = record
                .request
                .operation
                .as_ref()
                .map_or("unknown", |o| o.name.as_str());
            let mut requests = lock(&self.requests);
            let name = if requests.contains_key(name) || requests.len() < MAX_OPERATIONS {
                name
            } else {
                "other"
            };
            // Looked up by &str: only a new operation name allocates.
            let per = match requests.get_mut(name) {
                Some(per) => per,
                None => requests.entry(name.to_owned()).or_default(),
            };
            *per.entry((decision, status)).or_default() += 1;
        }
        if let Some(id) = &record.identity
            && id.kind != crate::core::CredentialKind::None
        {
            let result = if id.verified {
                "verified"
            } else if id.error.is_some() {
                "rejected"
            } else {
                "unverified"
            };
            *lock(&self.credentials)
                .entry((id.kind.as_str(), result))
                .or_default() += 1;
        }
        let findings = [
            ("request", record.request.masked.as_ref()),
            (
                "response",
                record.response.as_ref().and_then(|r| r.masked.as_ref()),
            ),
        ];
        if findings
            .iter()
            .any(|(_, f)| f.is_some_and(|f| !f.is_empty()))
        {
            let mut masked = lock(&self.masked);
            for (direction, f) in findings {
                for (detector, n) in f.iter().flat_map(|f| &f.detectors) {
                    *masked.entry((direction, detector)).or_default() += u64::from(*n);
                }
            }
        }
        if let Some(body) = &record.request.body {
            self.request_bytes.fetch_add(body.bytes, Ordering::Relaxed);
        }
        if let Some(r) = &record.response {
            self.response_bytes.fetch_add(r.bytes, Ordering::Relaxed);
        }
        let secs = took.as_secs_f64();
        if let Some(i) = LATENCY_BOUNDS.iter().position(|b| secs <= *b) {
            self.latency[i].fetch_add(1, Ordering::Relaxed);
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us.fetch_add(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Counts an accepted connection; the guard keeps it in the open gauge.
    pub(crate) fn connection(&self, path: ConnPath) {
        let i = ConnPath::ALL.iter().position(|p| *p == path).unwrap_or(0);
        self.connections[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts the upstream connection an intercepted connection starts
    /// with: `reused` from the pool, or dialled for it.
    pub(crate) fn upstream_connection(&self, reused: bool) {
        self.upstream[usize::from(reused)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a client that refused airlock's certificate (an alert, or a
    /// close after the handshake without a request).
    pub(crate) fn client_refused(&self) {
        self.client_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Clients that refused airlock's certificate so far.
    pub(crate) fn clients_refused(&self) -> u64 {
        self.client_refused.load(Ordering::Relaxed)
    }

    /// Open connections: counted while the returned guard lives.
    pub(crate) fn open(&self) -> OpenGuard<'_> {
        self.open.fetch_add(1, Ordering::Relaxed);
        OpenGuard(&self.open)
    }

    pub(crate) fn open_connections(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    /// Exchanges finished since start.
    pub(crate) fn requests(&self) -> u64 {
        self.latency_count.load(Ordering::Relaxed)
    }

    pub(crate) fn write(&self, out: &mut Exposition) {
        let name = "airlock_requests_total";
        out.header(
            name,
            "Finished HTTP exchanges by operation, policy decision and response status (0: no response).",
            "counter",
        );
        let requests = lock(&self.requests);
        let mut rows: Vec<_> = requests
            .iter()
            .flat_map(|(op, per)| per.iter().map(move |(k, n)| (op.clone(), k.0, k.1, *n)))
            .collect();
        drop(requests);
        rows.sort_unstable();
        for (op, decision, status, n) in rows {
            let status = status.to_string();
            out.sample(
                name,
                &[
                    ("operation", &op),
                    ("decision", decision),
                    ("status", &status),
                ],
                n,
            );
        }

        let mut cumulative = Vec::with_capacity(LATENCY_BOUNDS.len());
        let mut total = 0;
        for b in &self.latency {
            total += b.load(Ordering::Relaxed);
            cumulative.push(total);
        }
        out.histogram(
            "airlock_request_duration_seconds",
            "Time from a request's arrival to the end of its response (held requests include the wait for a human).",
            &Histogram {
                bounds: LATENCY_BOUNDS,
                cumulative,
                sum: self.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6,
                count: self.latency_count.load(Ordering::Relaxed),
            },
        );
        out.counter(
            "airlock_body_bytes_total",
            "Body bytes of finished exchanges, as sent on the wire.",
            &[
                (
                    &[("direction", "request")],
                    self.request_bytes.load(Ordering::Relaxed),
                ),
                (
                    &[("direction", "response")],
                    self.response_bytes.load(Ordering::Relaxed),
                ),
            ],
        );
        labelled(
            out,
            "airlock_masked_secrets_total",
            "Secrets found by detector: masked in responses, found (and acted on by policy) in requests.",
            ("direction", "detector"),
            &self.masked,
        );
        labelled(
            out,
            "airlock_credentials_total",
            "Requests carrying a credential, by kind and verification result (verified, rejected, unverified).",
            ("kind", "result"),
            &self.credentials,
        );
        let name = "airlock_connections_total";
        out.header(
            name,
            "Accepted captured connections by how they were handled.",
            "counter",
        );
        for (p, c) in ConnPath::ALL.iter().zip(&self.connections) {
            out.sample(name, &[("path", p.as_str())], c.load(Ordering::Relaxed));
        }
        let name = "airlock_upstream_connections_total";
        out.header(
            name,
            "Upstream connections intercepted connections started with: dialled for them, or reused from the pool of idle ones.",
            "counter",
        );
        for (how, c) in ["dialled", "reused"].iter().zip(&self.upstream) {
            out.sample(name, &[("how", how)], c.load(Ordering::Relaxed));
        }
        let name = "airlock_tls_client_refused_total";
        out.header(
            name,
            "Intercepted clients that refused airlock's certificate: with an alert, or by closing after the handshake without a request (.NET checks the certificate only then).",
            "counter",
        );
        out.sample(name, &[], self.clients_refused());
        out.gauge(
            "airlock_connections_open",
            "Captured connections being served now.",
            self.open_connections(),
        );
    }
}

/// Decrements the open-connections gauge when the connection ends.
#[derive(Debug)]
pub(crate) struct OpenGuard<'a>(&'a AtomicU64);

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A counter family over a two-label map, in a stable order.
fn labelled(
    out: &mut Exposition,
    name: &str,
    help: &str,
    keys: (&str, &str),
    map: &Mutex<HashMap<(&'static str, &'static str), u64>>,
) {
    let mut rows: Vec<_> = lock(map).iter().map(|(k, n)| (*k, *n)).collect();
    rows.sort_unstable();
    out.header(name, help, "counter");
    for ((a, b), n) in rows {
        out.sample(name, &[(keys.0, a), (keys.1, b)], n);
    }
}
