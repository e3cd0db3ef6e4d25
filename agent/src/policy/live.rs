//! The policy in force, swapped whole on reload (SIGHUP, or a change seen
//! in the policy directory). A new set that fails to load is rejected and
//! logged; the previous one stays live, so a typo never opens the gate.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use super::{Policy, PolicyError, embedded, load_dir};
use crate::core::{read_lock, write_lock};

/// Where the rules come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicySource {
    /// The shipped policies built into the binary.
    Embedded,
    Dir(PathBuf),
}

impl PolicySource {
    /// `policy.dir`, else the shipped policies built into the binary.
    pub fn configured(config: &crate::config::PolicyConfig) -> Self {
        config.dir.clone().map_or(Self::Embedded, Self::Dir)
    }

    pub fn load(&self) -> Result<Policy, PolicyError> {
        match self {
            Self::Embedded => embedded(),
            Self::Dir(d) => load_dir(d),
        }
    }

    /// Names, sizes and mtimes of the directory's entries: a cheap way to
    /// notice edits, additions and removals without inotify.
    fn stamp(&self) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
        let Self::Dir(dir) = self else {
            return Vec::new();
        };
        let mut stamp: Vec<_> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter_map(|e| {
                let m = e.metadata().ok()?;
                Some((e.path(), m.len(), m.modified().ok()))
            })
            .collect();
        stamp.sort();
        stamp
    }
}

/// What a reload did, for the log and the audit trail.
#[derive(Debug)]
pub(crate) enum Reloaded {
    Applied {
        rules: usize,
        files: Vec<String>,
        version: String,
    },
    Rejected(PolicyError),
}

#[derive(Debug)]
pub(crate) struct LivePolicy {
    /// Changes with `policy.dir` on a config reload.
    source: RwLock<PolicySource>,
    current: RwLock<Arc<Policy>>,
}

impl LivePolicy {
    /// Loads the first policy; with no valid policy airlock does not start.
    pub(crate) fn new(source: PolicySource) -> Result<Self, PolicyError> {
        let policy = source.load()?;
        Ok(Self {
            source: RwLock::new(source),
            current: RwLock::new(Arc::new(policy)),
        })
    }

    pub(crate) fn current(&self) -> Arc<Policy> {
        read_lock(&self.current).clone()
    }

    pub(crate) fn source(&self) -> PolicySource {
        read_lock(&self.source).clone()
    }

    /// Loads the source again; installs it only if it is valid. Blocking
    /// file reads: call from a blocking context.
    pub(crate) fn reload(&self) -> Reloaded {
        self.load_from(self.source())
    }

    /// Switches to `source` if it loads; otherwise nothing changes.
    pub(crate) fn set_source(&self, source: PolicySource) -> Reloaded {
        self.load_from(source)
    }

    fn load_from(&self, source: PolicySource) -> Reloaded {
        match source.load() {
            Ok(p) => {
                *write_lock(&self.source) = source;
                let out = Reloaded::Applied {
                    rules: p.rules().len(),
                    files: p.files().to_vec(),
                    version: p.version().to_owned(),
                };
                *write_lock(&self.current) = Arc::new(p);
                out
            }
            Err(e) => Reloaded::Rejected(e),
        }
    }

    /// Every `poll` (zero: never), reloads when the policy directory
    /// changed; `report` is told each outcome. (SIGHUP reloads go through
    /// the config reload, which ends with the policies.)
    pub(crate) async fn watch(self: Arc<Self>, poll: Duration, report: impl Fn(&Reloaded)) {
        if poll.is_zero() {
            return;
        }
        let mut stamp = self.stamp().await;
        loop {
            tokio::time::sleep(poll).await;
            let now = self.stamp().await;
            if now == stamp {
                continue;
            }
            stamp = now;
            let me = self.clone();
            if let Ok(outcome) = tokio::task::spawn_blocking(move || me.reload()).await {
                report(&outcome);
            }
        }
    }

    async fn stamp(&self) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
        let source = self.source();
        tokio::task::spawn_blocking(move || source.stamp())
            .await
            .unwrap_or_default()
    }
}
