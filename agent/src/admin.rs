//! The admin API, beside the approvals it drives: the Unix-socket server
//! (`server`: kernel-identified callers (`peer`), routes, the JSON error shape; also
//! `/metrics` on TCP), what it reports (`report`: `status` and the
//! Prometheus metrics, composed from their owners when asked), the client
//! the CLI and tests use (`client`), and the text `airlock status` prints
//! (`view`).

mod client;
mod peer;
mod report;
mod server;
#[cfg(test)]
mod tests;
mod view;

use std::path::PathBuf;

pub use client::{AdminClient, approvals_table, grants_table, held_details};
pub(crate) use server::AdminServer;
pub use view::render as render_status;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{}: cannot {op}: {source}", path.display())]
    Socket {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: another airlock is serving this socket", .0.display())]
    AlreadyRunning(PathBuf),
    #[error("admin.group {0:?}: no such group")]
    NoGroup(String),
    /// The admin API answered with an error.
    #[error("{message} ({code})")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    /// The admin API could not be reached or spoke nonsense.
    #[error("admin API at {}: {why}", path.display())]
    Client { path: PathBuf, why: String },
}
