//! The fleet's open holds for a reader that stays (the fleet console): one
//! connection that `LISTEN`s for new holds and for decisions, so a change
//! is read again at once, and is read anyway every [`RECHECK`] — a hold
//! that a host settles on its own or that passes its time notifies
//! nobody.

use std::time::Duration;

use serde_json::Value;
use tokio_postgres::Client;

use super::FleetError;
use super::connect::Notices;
use crate::config::FleetConfig;

/// The list is read again at least this often.
const RECHECK: Duration = Duration::from_secs(1);

/// A connection following the fleet's holds.
#[derive(Debug)]
pub(crate) struct HeldFeed {
    client: Client,
    notices: Notices,
}

impl HeldFeed {
    /// Connects as `[fleet]` says and listens for holds and decisions.
    pub(crate) async fn connect(fleet: &FleetConfig) -> Result<Self, FleetError> {
        let (client, notices) = super::connect::connect_listening(fleet).await?;
        client
            .batch_execute("LISTEN airlock_holds; LISTEN airlock_decisions")
            .await?;
        Ok(Self { client, notices })
    }

    /// The open holds, as [`super::held`] lists them.
    pub(crate) async fn list(&self) -> Result<Vec<Value>, FleetError> {
        super::decide::held_on(&self.client).await
    }

    /// Waits until something may have changed: a notification, or
    /// [`RECHECK`]. An error once the connection is gone.
    pub(crate) async fn changed(&mut self) -> Result<(), FleetError> {
        match tokio::time::timeout(RECHECK, self.notices.recv()).await {
            Ok(None) => Err(FleetError::Db("the connection closed".into())),
            Ok(Some(_)) | Err(_) => {
                // Several at once (a burst of holds) are one change.
                while self.notices.try_recv().is_ok() {}
                Ok(())
            }
        }
    }
}
