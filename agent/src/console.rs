//! `airlock console`: the approvers' web page (docs/console.md). In
//! single-host mode, run in the foreground by the approver as themselves,
//! it serves the held requests live on loopback and forwards decisions to
//! the daemon's admin socket, where the daemon's own checks apply to this
//! user (approvers, never a captured caller, never oneself). In fleet mode
//! (`console.issuer`), people sign in with OpenID Connect (`oidc`, over
//! HTTP in `signin`) and see every host's holds from the fleet's database,
//! deciding through it as the console's role for the person signed in
//! (`source`: admin socket or database; `holds`: the database's live
//! list). Owns sessions (`session`: the one-time login link, cookies,
//! CSRF tokens), who may connect (`admit`, once per connection: `peer`
//! finds the process at the other end of a loopback connection, the
//! daemon says whether it is captured), HTTPS (`tls`), decisions (`decide`),
//! the pages (`html`, and the `assets` served from the binary) and the
//! live list (`watch`, with each caller's parents from `ancestry`,
//! streamed to each page by `events`); in single-host mode, the trail as
//! a timeline of agent sessions (`timeline`).

mod admit;
mod ancestry;
mod decide;
mod events;
mod holds;
mod html;
mod oidc;
mod peer;
mod reply;
mod server;
mod session;
mod signin;
mod source;
mod timeline;
mod tls;
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
    /// Fleet mode: the fleet's database did not answer as it should.
    #[error(transparent)]
    Fleet(#[from] crate::fleet::FleetError),
    /// Fleet mode: the issuer, or the console's client at it.
    #[error("console.issuer: {0}")]
    Oidc(String),
    #[error("{}: {why}", path.display())]
    Tls {
        path: std::path::PathBuf,
        why: String,
    },
}
