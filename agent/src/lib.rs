//! airlock: an eBPF-redirected, auditing proxy for AI coding agents' cloud
//! calls. Data flows one way through the stages below; see ARCHITECTURE.md.
#![forbid(unsafe_code)]

pub mod addrs;
pub mod app;
pub mod audit;
pub mod capture;
pub mod cli;
pub mod config;
pub mod demo;
pub mod host;
pub mod http;
pub mod operation;
pub mod pipe;
pub mod proxy;
pub mod redact;
pub mod tls;
