//! Who may open a connection to the console at all, decided once per
//! TCP connection: in single-host mode a process of the user who started
//! the console that airlock does not capture (the peer found by
//! [`super::peer`], the daemon asked for every process holding it); in
//! fleet mode on loopback beside a daemon, any process airlock does not
//! capture; elsewhere anyone, the issuer's sign-in deciding who they are.
//! What cannot be established is refused.

use std::net::SocketAddr;

use super::peer;
use super::server::Shared;
use crate::admin::AdminClient;

/// Who may open a connection to the console at all.
#[derive(Debug)]
pub(super) enum Gate {
    /// Single-host: a process of the user who started the console, not
    /// one airlock captures.
    Owner { uid: u32, client: AdminClient },
    /// Fleet mode on loopback beside a daemon: not a process airlock
    /// captures (whoever signs in is checked by the issuer).
    Uncaptured(AdminClient),
    /// Fleet mode elsewhere: the issuer's sign-in alone tells people
    /// apart.
    SignIn,
}

/// Whether the process at the other end may use the console, as
/// `shared.gate` says; why not, else.
pub(super) async fn admit(
    shared: &Shared,
    local: SocketAddr,
    peer: SocketAddr,
) -> Result<(), String> {
    let (owner, client) = match &shared.gate {
        Gate::SignIn => return Ok(()),
        Gate::Owner { uid, client } => (Some(*uid), client),
        Gate::Uncaptured(client) => (None, client),
    };
    let found = tokio::task::spawn_blocking(move || peer::find(local, peer))
        .await
        .ok()
        .flatten()
        .ok_or_else(|| "the connecting process cannot be found".to_owned())?;
    if let Some(uid) = owner
        && found.uid != uid
    {
        return Err(format!(
            "the connecting process runs as uid {}; this console serves only uid {uid}, who started it",
            found.uid
        ));
    }
    if found.pids.is_empty() {
        return Err("the connecting process cannot be identified".to_owned());
    }
    for pid in found.pids {
        match client.process(pid).await {
            Ok(v) if v["captured"] == false => {}
            Ok(v) => {
                return Err(format!(
                    "the connecting process (pid {pid}) is one airlock captures: {}",
                    v["why"].as_str().unwrap_or("the daemon says so")
                ));
            }
            Err(e) => {
                return Err(format!(
                    "airlock cannot say whether the connecting process (pid {pid}) is captured: {e}"
                ));
            }
        }
    }
    Ok(())
}
