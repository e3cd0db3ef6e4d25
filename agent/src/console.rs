//! `airlock console`: the approvers' web page, single-host mode (docs/console.md).
//! Run in the foreground by the approver as themselves, it serves the held
//! requests live on loopback and forwards decisions to the daemon's admin
//! socket, where the daemon's own checks apply to this user (approvers,
//! never a captured caller, never oneself). Owns sign-in (`session`: the
//! one-time login link, cookies, CSRF tokens), who may connect (`peer`:
//! the process at the other end of a loopback connection; `server` asks
//! the daemon whether it is captured, once per connection), decisions
//! (`decide`), the pages (`html`, and the `assets` served from the
//! binary), the live list (`watch`, with each caller's parents from
//! `ancestry`, streamed to each page by `events`) and the trail as a
//! timeline of agent sessions (`timeline`).

mod ancestry;
mod decide;
mod events;
mod html;
mod peer;
mod server;
mod session;
mod timeline;
mod watch;

use std::net::SocketAddr;

pub use server::Console;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("console.listen {addr}: cannot listen: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The daemon's admin socket did not answer as it should.
    #[error(transparent)]
    Admin(#[from] crate::admin::AdminError),
    #[error("the system's random number generator failed")]
    Random,
    #[error("cannot read this process's own uid from /proc/self/status")]
    Me,
}
