//! airlock: an eBPF-redirected, auditing proxy for AI coding agents' cloud
//! calls. Data flows one way through the stages below; see ARCHITECTURE.md.
#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod approval;
pub mod audit;
pub mod capture;
pub mod cli;
pub mod config;
pub mod core;
pub mod demo;
pub mod gate;
pub mod host;
pub mod http;
pub mod identity;
pub mod mask;
pub mod model;
pub mod notify;
pub mod operation;
pub mod pipe;
pub mod policy;
pub mod proxy;
pub mod redact;
pub mod reload;
pub mod telemetry;
pub mod tls;
pub mod users;

/// A fresh, empty scratch directory for one unit test (`tag` keeps tests
/// apart; the pid keeps concurrent runs apart).
#[cfg(test)]
pub(crate) fn scratch_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("airlock-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}
