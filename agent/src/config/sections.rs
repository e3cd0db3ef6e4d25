//! The config file's sections, each with its defaults and validation.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Destination ports captured by default: HTTPS.
pub(super) const DEFAULT_CAPTURE_PORTS: &[u16] = &[443];
/// The instance metadata service: plain HTTP, captured by address.
pub(super) const DEFAULT_IMDS: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(169, 254, 169, 254), 80));
/// IPv4 listener the eBPF programs redirect to.
pub(super) const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 15443));
/// IPv6 listener alongside it.
pub(super) const DEFAULT_LISTEN6: SocketAddr =
    SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 15443, 0, 0));
/// Upstream TCP connect timeout, milliseconds.
pub(super) const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 10_000;
/// Hosts decrypted by default: Azure public cloud.
pub(super) const DEFAULT_INTERCEPT: &[&str] = &[
    "*.azure.com",
    "*.windows.net",
    "*.azmk8s.io",
    "*.azurewebsites.net",
    "*.azure-api.net",
    "*.vault.azure.net",
    "*.azurecr.io",
    "management.azure.com",
    "login.microsoftonline.com",
    "login.microsoft.com",
    // The directory: app credentials, role assignments.
    "graph.microsoft.com",
    // Storage's DNS-zone endpoints (`{account}.z1.blob.storage.azure.net`).
    "*.storage.azure.net",
    // GitHub Copilot's model API (model traffic is recorded too).
    "*.githubcopilot.com",
    "copilot-proxy.githubusercontent.com",
];
/// How long a client may take to send its ClientHello, milliseconds.
pub(super) const DEFAULT_HANDSHAKE_TIMEOUT_MS: u64 = 10_000;
/// How long a client may take, after its TLS handshake, to begin its first
/// request, milliseconds (real clients send it at once).
pub(super) const DEFAULT_FIRST_REQUEST_TIMEOUT_MS: u64 = 10_000;
/// Client connections open at once: each costs two descriptors (client
/// and upstream) and its buffers; past it, new ones are refused.
pub(super) const DEFAULT_MAX_CONNECTIONS: usize = 8_192;
/// How long an upstream may send nothing while its response is awaited
/// or streams, milliseconds: five minutes, as Envoy's stream idle timeout
/// (a Kubernetes watch or a model stream may pause, not for that long).
pub(super) const DEFAULT_RESPONSE_IDLE_MS: u64 = 300_000;
/// Memory all request bodies read whole before forwarding may hold at
/// once (scan-before-forward, envelopes, token forms, model prompts).
pub(super) const DEFAULT_BODY_BUFFER_BYTES: usize = 128 * 1024 * 1024;
/// How long an upstream connection is kept for reuse after its client is
/// done with it, milliseconds: below the idle timeouts of common servers
/// (nginx 60 s, Kestrel 120 s, Azure's load balancers 4 min).
pub(super) const DEFAULT_UPSTREAM_IDLE_MS: u64 = 30_000;
/// How long a byte pipe (spliced TLS, plain TCP, an upgraded WebSocket or
/// SPDY stream) may carry nothing before it is closed, milliseconds: an
/// hour, as Envoy's TCP proxy.
pub(super) const DEFAULT_TUNNEL_IDLE_MS: u64 = 3_600_000;
/// Where the CA lives.
pub(super) const DEFAULT_CA_DIR: &str = "/var/lib/airlock/ca";
/// Where the CA certificate and the bundle are published for every user.
pub(super) const DEFAULT_PUBLIC_DIR: &str = "/var/lib/airlock/public";
/// Where audit records go.
pub(super) const DEFAULT_AUDIT_PATH: &str = "/var/log/airlock/audit.jsonl";
/// Longest process name the kernel keeps (`TASK_COMM_LEN` less the NUL).
pub(super) const MAX_COMM_LEN: usize = 15;
/// Descendants tracked at once by default (the tracking map's size).
pub(super) const DEFAULT_MAX_TRACKED: u32 = 65_536;
/// Bounds of `capture.max_tracked`.
const MAX_TRACKED_RANGE: std::ops::RangeInclusive<u32> = 8..=(1 << 22);
/// Most ancestors examined by `follow_children` (the eBPF loop's bound).
pub(super) const MAX_FOLLOW_DEPTH: u32 = 32;
/// Entries the kernel maps hold (ports, comm and uid selectors).
const MAX_PORTS: usize = 64;
const MAX_IMDS: usize = 16;
const MAX_SELECTORS: usize = 256;
/// Paths and globs in `capture.cgroup`.
const MAX_CGROUP_PATTERNS: usize = 64;

/// A setting given as one value or a list of them.
fn one_or_many<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany<T> {
        One(T),
        Many(Vec<T>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(v) => vec![v],
        OneOrMany::Many(v) => v,
    })
}

/// `[capture]`: which processes' connections are redirected.
///
/// Selectors combine with AND (a process must match every one given); the
/// entries of one selector combine with OR. With neither `comm` nor `uid`,
/// every process under `cgroup` is captured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureConfig {
    /// cgroup v2 directories the programs attach to: one path or a list,
    /// each a directory (`/sys/fs/cgroup/ci-runner`) or a path relative to
    /// the cgroup2 root (`/system.slice/docker-*.scope`) whose components
    /// may be globs (`*`, `?`); cgroups a glob matches are attached as they
    /// appear. Empty (the default): the cgroup2 root, the whole host.
    #[serde(
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cgroup: Vec<PathBuf>,
    /// Process names (`comm`, at most 15 bytes) to capture.
    pub comm: Vec<String>,
    /// Real uids to capture.
    pub uid: Vec<u32>,
    /// Descendants of a matching process are captured too, whatever they
    /// exec (Copilot spawns `sh`, `az`, `kubectl`, `python`).
    pub follow_children: bool,
    /// How many ancestors `follow_children` examines.
    pub follow_depth: u32,
    /// Descendants of selected processes tracked at once
    /// (`follow_children`). When a child cannot be tracked because this
    /// many are, every process in the cgroup is captured (fail closed).
    pub max_tracked: u32,
    /// Destination ports captured (TCP redirected, UDP refused).
    pub ports: Vec<u16>,
    /// Ports of explicit HTTP proxies clients are configured with
    /// (`HTTPS_PROXY`), captured too: airlock answers their `CONNECT`
    /// itself and treats the tunnel as a direct connection to the
    /// authority it names.
    pub proxy_ports: Vec<u16>,
    /// Instance metadata services (`address:port`), captured whatever
    /// `ports` says and served as plain HTTP: their token requests are
    /// judged and recorded (`imds.token`).
    pub imds: Vec<SocketAddr>,
    /// `closed`: the programs are pinned in bpffs and outlive a crash of
    /// airlock (captured processes then cannot connect at all, and a
    /// restarted airlock takes over); `open`: they detach with the process.
    pub fail_mode: FailMode,
    /// bpffs directory for the pinned links (`closed`); mounted if absent.
    pub pin_dir: PathBuf,
}

/// What captured processes get while airlock is not running.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailMode {
    /// Connections fail (refused) until airlock is back.
    #[default]
    Closed,
    /// Connections go direct, unaudited, until airlock is back.
    Open,
}

/// Where `fail_mode = "closed"` pins links.
pub(super) const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/airlock";

impl Default for CaptureConfig {
    fn default() -> Self {
        Self {
            cgroup: Vec::new(),
            comm: Vec::new(),
            uid: Vec::new(),
            follow_children: true,
            follow_depth: 16,
            max_tracked: DEFAULT_MAX_TRACKED,
            ports: DEFAULT_CAPTURE_PORTS.to_vec(),
            proxy_ports: Vec::new(),
            imds: vec![DEFAULT_IMDS],
            fail_mode: FailMode::Closed,
            pin_dir: PathBuf::from(DEFAULT_PIN_DIR),
        }
    }
}

impl CaptureConfig {
    /// Every destination port the kernel redirects.
    pub(crate) fn captured_ports(&self) -> impl Iterator<Item = u16> + '_ {
        self.ports.iter().chain(&self.proxy_ports).copied()
    }

    /// Settings here that weaken a security default, said out loud.
    pub(super) fn weakened(&self, out: &mut Vec<&'static str>) {
        if self.fail_mode == FailMode::Open {
            out.push(
                "capture.fail_mode = \"open\": while airlock is down, captured processes connect directly, unaudited",
            );
        }
    }

    pub(super) fn validate(&self) -> Result<(), (&'static str, String)> {
        if let Some(c) = self
            .comm
            .iter()
            .find(|c| c.is_empty() || c.len() > MAX_COMM_LEN)
        {
            return Err((
                "capture.comm",
                format!("{c:?} is not a process name of 1 to {MAX_COMM_LEN} bytes"),
            ));
        }
        if self.comm.len() > MAX_SELECTORS {
            return Err(("capture.comm", format!("at most {MAX_SELECTORS} names")));
        }
        if self.uid.len() > MAX_SELECTORS {
            return Err(("capture.uid", format!("at most {MAX_SELECTORS} uids")));
        }
        if self.ports.is_empty() || self.ports.len() > MAX_PORTS {
            return Err(("capture.ports", format!("give 1 to {MAX_PORTS} ports")));
        }
        if self.ports.contains(&0) {
            return Err(("capture.ports", "port 0 cannot be captured".to_owned()));
        }
        if self.proxy_ports.contains(&0) || self.ports.len() + self.proxy_ports.len() > MAX_PORTS {
            return Err((
                "capture.proxy_ports",
                format!("ports 1 to 65535, at most {MAX_PORTS} with capture.ports"),
            ));
        }
        if let Some(p) = self.proxy_ports.iter().find(|p| self.ports.contains(p)) {
            return Err((
                "capture.proxy_ports",
                format!("{p} is also in capture.ports: a port is a proxy's or not"),
            ));
        }
        if !MAX_TRACKED_RANGE.contains(&self.max_tracked) {
            return Err((
                "capture.max_tracked",
                format!(
                    "must be {} to {}",
                    MAX_TRACKED_RANGE.start(),
                    MAX_TRACKED_RANGE.end()
                ),
            ));
        }
        if self.imds.len() > MAX_IMDS {
            return Err(("capture.imds", format!("at most {MAX_IMDS} addresses")));
        }
        if let Some(a) = self
            .imds
            .iter()
            .find(|a| a.port() == 0 || a.ip().is_unspecified())
        {
            return Err((
                "capture.imds",
                format!("{a} is not an address a client connects to"),
            ));
        }
        if self.follow_depth == 0 || self.follow_depth > MAX_FOLLOW_DEPTH {
            return Err((
                "capture.follow_depth",
                format!("must be 1 to {MAX_FOLLOW_DEPTH}"),
            ));
        }
        if let Some(c) = self.cgroup.iter().find(|c| !c.is_absolute()) {
            return Err((
                "capture.cgroup",
                format!("{} must be an absolute path", c.display()),
            ));
        }
        if self.cgroup.len() > MAX_CGROUP_PATTERNS {
            return Err((
                "capture.cgroup",
                format!("at most {MAX_CGROUP_PATTERNS} paths"),
            ));
        }
        if !self.pin_dir.is_absolute() {
            return Err(("capture.pin_dir", "must be an absolute path".to_owned()));
        }
        Ok(())
    }
}

/// `[proxy]`: where redirected connections arrive.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// IPv4 listener (loopback); port 0 picks a free port.
    pub listen: SocketAddr,
    /// IPv6 listener alongside; when absent or IPv6 is off, IPv6 connects of
    /// captured processes are refused rather than let through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen6: Option<SocketAddr>,
    /// IPv4 listener for captured processes in other network namespaces
    /// (containers), where 127.0.0.1 is not airlock: an address of the
    /// host they can reach, such as a bridge's gateway (`172.17.0.1:15443`
    /// for Docker's default bridge). It may be bound before the bridge
    /// exists. None: their connects to captured ports are refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen_containers: Option<SocketAddr>,
    /// Upstream TCP connect timeout in milliseconds.
    pub connect_timeout_ms: u64,
    /// Host patterns (`*.domain`, exact names, IP literals) whose TLS is
    /// decrypted; other TLS is spliced through untouched.
    pub intercept: Vec<String>,
    /// Time a client has to send its TLS ClientHello, milliseconds.
    pub handshake_timeout_ms: u64,
    /// Time an intercepted client has, once its TLS handshake is done, to
    /// begin its first request, milliseconds; then it is closed.
    pub first_request_timeout_ms: u64,
    /// Client connections open at once; past it, new ones are closed at
    /// once and counted.
    pub max_connections: usize,
    /// How long the upstream may send nothing while its response is
    /// awaited (then 504 `UpstreamTimeout`) or its body streams (then the
    /// client's response is cut), milliseconds; 0 never gives up.
    pub response_idle_ms: u64,
    /// Bytes of request bodies held in memory at once, in all, while they
    /// are read whole to be judged before forwarding; a body that would
    /// pass it is refused (503 `Overloaded`).
    pub body_buffer_bytes: usize,
    /// How long an upstream connection whose client closed is kept for the
    /// next client connection to the same destination, milliseconds; 0
    /// keeps none.
    pub upstream_idle_ms: u64,
    /// How long a relayed byte stream (spliced TLS, plain TCP, an upgraded
    /// WebSocket/SPDY connection) may carry nothing either way before it
    /// is closed, milliseconds; 0 never closes one.
    pub tunnel_idle_ms: u64,
    /// TLS whose ClientHello names no server (SNI absent, or an IP literal)
    /// is decrypted whatever its destination: with no name, an intercepted
    /// host cannot be told from any other. false: such TLS is decrypted
    /// only when its destination address is in `intercept`, and spliced
    /// otherwise (a weakened setting, said in the start record).
    pub intercept_without_sni: bool,
    /// A captured connection whose first bytes are not TLS: `deny` closes
    /// and records it; `relay` relays it as TCP (a weakened setting: its
    /// content is neither judged nor recorded).
    pub non_tls: NonTls,
    /// An HTTP proxy airlock itself goes through to reach upstreams
    /// (`http://[user@]host:port`, `CONNECT`): intercepted and
    /// passed-through connections, issuers' keys, the approval webhook.
    /// None: directly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_proxy: Option<String>,
    /// A file holding the password of `upstream_proxy`'s user (keep it
    /// 0600); sent as `Proxy-Authorization: Basic`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_proxy_password_file: Option<PathBuf>,
    /// Hosts reached directly even with `upstream_proxy` (patterns as in
    /// `intercept`: `*.domain`, names, IP literals).
    pub no_proxy: Vec<String>,
}

/// `proxy.upstream_proxy`, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProxyUrl {
    pub user: Option<String>,
    pub host: String,
    pub port: u16,
}

impl ProxyUrl {
    /// `http://[user@]host:port` (an IPv6 host in brackets).
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or("must be http://[user@]host:port (airlock speaks CONNECT to it)")?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (user, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) if !u.is_empty() && !u.contains(':') => (Some(u.to_owned()), h),
            Some(_) => {
                return Err(
                    "a password does not go in the URL: use proxy.upstream_proxy_password_file"
                        .into(),
                );
            }
            None => (None, rest),
        };
        let (host, port) = hostport
            .rsplit_once(':')
            .ok_or("needs a port: http://host:port")?;
        let port: u16 = port
            .parse()
            .ok()
            .filter(|&p| p != 0)
            .ok_or("the port is not 1 to 65535")?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.contains(['/', '?', '#', ' ']) {
            return Err("not a host".into());
        }
        Ok(Self {
            user,
            host: host.to_owned(),
            port,
        })
    }
}

/// What happens to plain TCP on a captured port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NonTls {
    /// Closed and recorded: on a port captured for TLS, anything else is a
    /// way around interception.
    #[default]
    Deny,
    /// Relayed byte for byte, recorded as a connection.
    Relay,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN,
            listen6: Some(DEFAULT_LISTEN6),
            listen_containers: None,
            connect_timeout_ms: DEFAULT_CONNECT_TIMEOUT_MS,
            intercept: DEFAULT_INTERCEPT.iter().map(|s| (*s).to_owned()).collect(),
            handshake_timeout_ms: DEFAULT_HANDSHAKE_TIMEOUT_MS,
            first_request_timeout_ms: DEFAULT_FIRST_REQUEST_TIMEOUT_MS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            body_buffer_bytes: DEFAULT_BODY_BUFFER_BYTES,
            response_idle_ms: DEFAULT_RESPONSE_IDLE_MS,
            upstream_idle_ms: DEFAULT_UPSTREAM_IDLE_MS,
            tunnel_idle_ms: DEFAULT_TUNNEL_IDLE_MS,
            intercept_without_sni: true,
            non_tls: NonTls::Deny,
            upstream_proxy: None,
            upstream_proxy_password_file: None,
            no_proxy: Vec::new(),
        }
    }
}

impl ProxyConfig {
    /// Settings here that weaken a security default, said out loud.
    pub(super) fn weakened(&self, out: &mut Vec<&'static str>) {
        if !self.intercept_without_sni {
            out.push(
                "proxy.intercept_without_sni = false: TLS without a server name to an address not in proxy.intercept is spliced, unaudited, even when it carries an intercepted host's traffic",
            );
        }
        if self.non_tls == NonTls::Relay {
            out.push(
                "proxy.non_tls = \"relay\": plain TCP on captured ports is relayed, its content neither judged nor recorded",
            );
        }
    }

    pub(super) fn validate(&self) -> Result<(), (&'static str, String)> {
        if let Some(url) = &self.upstream_proxy {
            ProxyUrl::parse(url).map_err(|e| ("proxy.upstream_proxy", e))?;
        }
        if self.upstream_proxy_password_file.is_some()
            && self
                .upstream_proxy
                .as_deref()
                .is_none_or(|u| ProxyUrl::parse(u).is_ok_and(|p| p.user.is_none()))
        {
            return Err((
                "proxy.upstream_proxy_password_file",
                "needs a user in proxy.upstream_proxy (http://user@host:port)".to_owned(),
            ));
        }
        if let Some(bad) = self
            .no_proxy
            .iter()
            .find_map(|p| crate::host::HostPattern::parse(p).err())
        {
            return Err(("proxy.no_proxy", bad));
        }
        if !self.listen.is_ipv4() {
            return Err(("proxy.listen", "must be an IPv4 address".to_owned()));
        }
        if self.listen.ip().is_unspecified() {
            return Err((
                "proxy.listen",
                "must be a concrete (loopback) address: the eBPF programs redirect to it"
                    .to_owned(),
            ));
        }
        if let Some(l6) = self.listen6
            && (!l6.is_ipv6() || l6.ip().is_unspecified())
        {
            return Err((
                "proxy.listen6",
                "must be a concrete IPv6 address such as \"[::1]:15443\"".to_owned(),
            ));
        }
        if let Some(c) = self.listen_containers
            && (!c.is_ipv4() || c.ip().is_unspecified() || c.ip().is_loopback())
        {
            return Err((
                "proxy.listen_containers",
                "must be an IPv4 address of the host that containers reach, such as \"172.17.0.1:15443\" (not loopback: in a container, that is the container)".to_owned(),
            ));
        }
        if self.connect_timeout_ms == 0 {
            return Err(("proxy.connect_timeout_ms", "must be positive".to_owned()));
        }
        for (key, value) in [
            ("proxy.handshake_timeout_ms", self.handshake_timeout_ms),
            (
                "proxy.first_request_timeout_ms",
                self.first_request_timeout_ms,
            ),
            ("proxy.max_connections", self.max_connections as u64),
            ("proxy.body_buffer_bytes", self.body_buffer_bytes as u64),
        ] {
            if value == 0 {
                return Err((key, "must be positive".to_owned()));
            }
        }
        crate::host::InterceptList::parse(&self.intercept).map_err(|e| ("proxy.intercept", e))?;
        Ok(())
    }
}

/// Audit file size at which it is rotated, bytes.
pub(super) const DEFAULT_AUDIT_ROTATE_BYTES: u64 = 128 * 1024 * 1024;

/// What happens to intercepted requests while the audit log cannot be
/// written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnAuditFailure {
    /// Refuse them with 503 (fail closed).
    #[default]
    Deny,
    /// Forward them unaudited (recorded at startup as a weakened setting).
    Allow,
}

/// Records between signed audit checkpoints.
pub(super) const DEFAULT_CHECKPOINT_EVERY: u64 = 1000;

/// When a request's record counts as safe enough to forward the request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// Written and fsynced (group commit): survives a power loss.
    Fsync,
    /// Written to the kernel: survives airlock crashing, `kill -9` and the
    /// OOM killer; a power loss or kernel crash can cut what was written
    /// in the last `audit.fsync_interval_ms` (as auditd's default flush).
    #[default]
    Written,
    /// Queued for the writer; the request is forwarded without waiting.
    /// A crash can lose the records of requests already forwarded (said in
    /// the start record's `weakened`). Written and fsynced as `Written`.
    Queued,
    /// No record of traffic at all: only airlock's own `agent` records
    /// (start, stop, reloads), the start one saying so in `weakened`. Exists to
    /// measure what the audit trail costs (`cargo xtask bench`).
    Off,
}

/// Bytes of a body kept, masked, in its record.
pub(super) const DEFAULT_BODY_EXCERPT_BYTES: usize = 4096;

/// How often `durability = "written"` fsyncs, milliseconds (the default
/// of `audit.fsync_interval_ms`).
pub(crate) const WRITTEN_SYNC_INTERVAL_MS: u64 = 50;
/// The longest `audit.fsync_interval_ms`: the window a power loss can cut.
const MAX_FSYNC_INTERVAL_MS: u64 = 10_000;

/// `[audit]`: where records are written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// JSON Lines file, created 0600 with its directory (0700) if missing.
    pub path: PathBuf,
    /// Rotate when the file reaches this many bytes; the chain continues
    /// into the next file.
    pub rotate_bytes: u64,
    /// `deny` (default) or `allow` intercepted requests while the log
    /// cannot be written.
    pub on_failure: OnAuditFailure,
    /// `written` (default), `fsync` or `queued`: what must have happened
    /// to a request's record before the request is forwarded; `off`: no
    /// records of traffic.
    pub durability: Durability,
    /// With `written`: how often what was written is fsynced, at most
    /// (milliseconds): the window of records a power loss or a kernel
    /// crash can cut.
    pub fsync_interval_ms: u64,
    /// A group (name or gid) that may read the trail: files 0640 and
    /// group-owned instead of 0600.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Ed25519 key (PKCS#8, created 0600 if missing) for signed
    /// checkpoints; none: no checkpoints.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint_key: Option<PathBuf>,
    /// Records between signed checkpoints.
    pub checkpoint_every: u64,
    /// Bytes of each body kept in the record (masked) as `body.excerpt`;
    /// 0 keeps none.
    pub body_excerpt_bytes: usize,
    /// A size budget for the whole trail: past it, the oldest rotated
    /// files are removed (each recorded in the chain first); 0 keeps
    /// everything.
    pub retain_bytes: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from(DEFAULT_AUDIT_PATH),
            rotate_bytes: DEFAULT_AUDIT_ROTATE_BYTES,
            on_failure: OnAuditFailure::Deny,
            durability: Durability::Written,
            fsync_interval_ms: WRITTEN_SYNC_INTERVAL_MS,
            group: None,
            checkpoint_key: None,
            checkpoint_every: DEFAULT_CHECKPOINT_EVERY,
            body_excerpt_bytes: DEFAULT_BODY_EXCERPT_BYTES,
            retain_bytes: 0,
        }
    }
}

impl AuditConfig {
    /// Settings here that weaken a security default, said out loud.
    pub(super) fn weakened(&self, out: &mut Vec<&'static str>) {
        match self.durability {
            Durability::Queued => out.push(
                "audit.durability = \"queued\": requests are forwarded before their record is written; a crash can lose records of forwarded requests",
            ),
            Durability::Off => {
                out.push("audit.durability = \"off\": no record of intercepted traffic is written");
            }
            Durability::Fsync | Durability::Written => {}
        }
        if self.on_failure == OnAuditFailure::Allow {
            out.push(
                "audit.on_failure = \"allow\": requests are forwarded even when they cannot be audited",
            );
        }
    }

    pub(super) fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.path.as_os_str().is_empty() {
            return Err(("audit.path", "must not be empty".to_owned()));
        }
        if self.checkpoint_every == 0 {
            return Err(("audit.checkpoint_every", "must be at least 1".to_owned()));
        }
        if self.rotate_bytes < 4096 {
            return Err(("audit.rotate_bytes", "must be at least 4096".to_owned()));
        }
        if !(1..=MAX_FSYNC_INTERVAL_MS).contains(&self.fsync_interval_ms) {
            return Err((
                "audit.fsync_interval_ms",
                format!("must be 1 to {MAX_FSYNC_INTERVAL_MS}"),
            ));
        }
        if self.retain_bytes != 0 && self.retain_bytes < 2 * self.rotate_bytes {
            return Err((
                "audit.retain_bytes",
                format!(
                    "must be 0 (keep everything) or at least twice audit.rotate_bytes ({})",
                    2 * self.rotate_bytes
                ),
            ));
        }
        Ok(())
    }
}

/// `[tls]`: the local CA and upstream trust.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Directory of the CA (`ca.crt`, `ca.key` 0600, during a rotation
    /// `previous.crt`), 0700; created on first start.
    pub ca_dir: PathBuf,
    /// Where what clients need is published, readable by every user:
    /// `ca.crt` (the CA, and during a rotation the previous one too) and
    /// `bundle.pem` (the system roots and those), rebuilt at every start.
    pub public_dir: PathBuf,
    /// Extra PEM files trusted for upstream connections, besides the
    /// system roots (verification is never turned off).
    pub upstream_roots: Vec<PathBuf>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            ca_dir: PathBuf::from(DEFAULT_CA_DIR),
            public_dir: PathBuf::from(DEFAULT_PUBLIC_DIR),
            upstream_roots: Vec::new(),
        }
    }
}

impl TlsConfig {
    pub(super) fn validate(&self) -> Result<(), (&'static str, String)> {
        if !self.ca_dir.is_absolute() {
            return Err(("tls.ca_dir", "must be an absolute path".to_owned()));
        }
        if !self.public_dir.is_absolute() {
            return Err(("tls.public_dir", "must be an absolute path".to_owned()));
        }
        if self.public_dir == self.ca_dir {
            return Err((
                "tls.public_dir",
                "must not be tls.ca_dir: the CA key stays in a directory only root can read"
                    .to_owned(),
            ));
        }
        Ok(())
    }
}
