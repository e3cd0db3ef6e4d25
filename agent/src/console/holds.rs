//! The fleet's open holds, kept fresh for every open page in fleet mode:
//! one task follows the database ([`crate::fleet::HeldFeed`]: woken by
//! new holds and decisions, and every second) and publishes the list only
//! when it changed, as [`super::watch`] does for the admin socket. A lost
//! connection shows on the page and is made again with backoff.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;

use super::html::Held;
use super::watch::{Snapshot, same};
use crate::config::FleetConfig;
use crate::fleet::HeldFeed;

/// Starts the task (inside the runtime); it ends when every receiver is
/// gone.
pub(super) fn spawn(fleet: FleetConfig, first: Held) -> watch::Receiver<Arc<Snapshot>> {
    let (tx, rx) = watch::channel(Arc::new(Snapshot {
        held: first.clone(),
        at: Instant::now(),
    }));
    tokio::spawn(async move {
        let mut last = first;
        let mut backoff = crate::core::Backoff::default();
        let mut publish = |held: Held| {
            if !same(&last, &held) {
                last = held.clone();
                let _ = tx.send(Arc::new(Snapshot {
                    held,
                    at: Instant::now(),
                }));
            }
            !tx.is_closed()
        };
        loop {
            let began = std::time::Instant::now();
            let e = match HeldFeed::connect(&fleet).await {
                Ok(mut feed) => loop {
                    match feed.list().await {
                        Ok(list) => {
                            if !publish(Held::List(list)) {
                                return;
                            }
                        }
                        Err(e) => break e,
                    }
                    if let Err(e) = feed.changed().await {
                        break e;
                    }
                },
                Err(e) => e,
            };
            if !publish(Held::Unreachable(e.to_string())) {
                return;
            }
            tokio::time::sleep(backoff.after(began)).await;
        }
    });
    rx
}
