//! A throwaway child cgroup per test, named after the test process.

use std::ffi::OsStr;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use airlock::OwnedCgroup;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Created on `new`, emptied and removed on drop.
#[derive(Debug)]
pub struct TestCgroup(OwnedCgroup);

impl TestCgroup {
    pub fn new(tag: &str) -> Self {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("airlock-test-{}-{n}-{tag}", std::process::id());
        Self(OwnedCgroup::create(&name).unwrap_or_else(|e| panic!("cgroup {name}: {e}")))
    }

    /// A cgroup `name` made now under this one (a container's, a job's).
    pub fn child(&self, name: &str) -> Self {
        Self(
            OwnedCgroup::create_under(self.path(), name)
                .unwrap_or_else(|e| panic!("cgroup {name}: {e}")),
        )
    }

    /// The cgroup itself, for what starts processes in it.
    pub fn owned(&self) -> &OwnedCgroup {
        &self.0
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// `program args…` started inside this cgroup.
    pub fn command(&self, program: impl AsRef<OsStr>) -> tokio::process::Command {
        self.0.command(program)
    }
}
