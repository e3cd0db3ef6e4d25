//! airlock: an eBPF-redirected, auditing proxy for AI coding agents' cloud
//! calls. Data flows one way through the stages below; see ARCHITECTURE.md.
#![forbid(unsafe_code)]
// Items nothing outside the crate can reach are `pub(crate)`, so dead code
// shows; the crate's whole public surface is the re-exports below.
#![warn(unreachable_pub)]

mod admin;
mod app;
mod approval;
mod audit;
mod capture;
pub mod cli;
mod config;
mod confine;
mod console;
mod core;
mod demo;
mod egress;
mod export;
mod fleet;
pub mod fuzzing;
mod gate;
mod host;
mod http;
mod identity;
mod journal;
mod mask;
mod model;
mod notify;
mod operation;
mod pipe;
mod policy;
mod proxy;
mod redact;
mod reload;
mod telemetry;
mod tls;
mod users;

// What the `airlock` binary (main.rs), the integration tests and the
// examples use.
pub use admin::{
    AdminClient, AdminError, approvals_table, grants_table, held_details, render_status,
};
pub use app::{App, AppError, BoundAddrs, build, upstream_tls};
pub use audit::checkpoint::public_key as checkpoint_public_key;
pub use audit::files::trail;
pub use audit::query;
pub use audit::summary::Summary;
pub use audit::verify::verify_signed;
pub use capture::OrigDstTable;
pub use capture::cgroup::{OwnedCgroup, cgroup2_mount};
pub use capture::network::ContainerNetwork;
pub use config::{CaptureConfig, Config, DEFAULT_CONFIG_PATH, FleetConfig, IssuerConfig, NonTls};
pub use confine::{ConfineError, arm as arm_confinement, enter_thread, seal as seal_confinement};
pub use console::{Console, ConsoleError};
pub use core::{CiJob, Glob, ProcessInfo};
pub use demo::run as run_demo;
pub use fleet::{
    Decide as FleetDecide, FleetError, ShippedTrail, decide as fleet_decide, held as fleet_held,
    migrate as fleet_migrate, search as fleet_search, verify as fleet_verify,
};
pub use host::HostPattern;
pub use identity::Identifier;
pub use journal::LogWriter;
pub use mask::Masker;
pub use policy::PolicySource;
pub use policy::explain::{Question, explain};
pub use tls::{
    CaFiles, CertificateAuthority, Probe, ProbeOutcome, ProbeUser, PublicFiles, UpstreamTls,
    check_runtimes, install_system, publish, runtime_env,
};

/// A fresh, empty scratch directory for one unit test (`tag` keeps tests
/// apart; the pid keeps concurrent runs apart).
#[cfg(test)]
pub(crate) fn scratch_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("airlock-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}
