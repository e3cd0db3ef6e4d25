//! The held list, kept fresh for every open page: one task asks the
//! daemon's admin socket every 250 ms and publishes the list only when it
//! changed (the clock fields aside: pages count time left down
//! themselves), so each page's `/events` stream wakes only then, with
//! each caller's parents read from /proc ([`super::ancestry`]). The
//! browser never polls; the admin socket is asked by this one task.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::watch;

use super::html::Held;
use crate::admin::AdminClient;

/// How often the daemon is asked: well inside the second a held request
/// has to appear in.
pub(super) const EVERY: Duration = Duration::from_millis(250);

/// The list at one moment.
#[derive(Clone, Debug)]
pub(super) struct Snapshot {
    pub held: Held,
    /// When it was read: time left is counted from here.
    pub at: Instant,
}

/// Starts the task (inside the runtime); it ends when every receiver is
/// gone.
pub(super) fn spawn(client: AdminClient, first: Held) -> watch::Receiver<Arc<Snapshot>> {
    let (tx, rx) = watch::channel(Arc::new(Snapshot {
        held: first,
        at: Instant::now(),
    }));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // What the daemon said last, before the parents were added.
        let mut last = None;
        while !tx.is_closed() {
            tick.tick().await;
            let held = match client.list().await {
                Ok(list) => Held::List(list),
                Err(e) => Held::Unreachable(e.to_string()),
            };
            if last.as_ref().is_some_and(|l| same(l, &held)) {
                continue;
            }
            last = Some(held.clone());
            let held = with_parents(held).await;
            let _ = tx.send(Arc::new(Snapshot {
                held,
                at: Instant::now(),
            }));
        }
    });
    rx
}

/// `held` with each caller's parents (/proc, off the async workers).
pub(super) async fn with_parents(held: Held) -> Held {
    match held {
        Held::List(mut list) => tokio::task::spawn_blocking(move || {
            super::ancestry::add_parents(&mut list);
            Held::List(list)
        })
        .await
        .unwrap_or_else(|e| Held::Unreachable(format!("reading /proc: {e}"))),
        other => other,
    }
}

/// The same requests in the same order, ignoring how long they have
/// waited.
pub(super) fn same(a: &Held, b: &Held) -> bool {
    match (a, b) {
        (Held::List(a), Held::List(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| timeless(x) == timeless(y))
        }
        (a, b) => a == b,
    }
}

fn timeless(v: &Value) -> Value {
    let mut v = v.clone();
    if let Value::Object(m) = &mut v {
        m.remove("waiting_s");
        m.remove("remaining_s");
    }
    v
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_clock_alone_is_no_change() {
        let a = Held::List(vec![
            json!({"id": "r1", "waiting_s": 1, "remaining_s": 299}),
        ]);
        let b = Held::List(vec![
            json!({"id": "r1", "waiting_s": 2, "remaining_s": 298}),
        ]);
        let c = Held::List(vec![
            json!({"id": "r2", "waiting_s": 2, "remaining_s": 298}),
        ]);
        assert!(same(&a, &b));
        assert!(!same(&a, &c));
        assert!(!same(&a, &Held::List(vec![])));
        assert!(!same(&a, &Held::Unreachable("x".into())));
    }
}
