//! `fail_mode = "closed"`: every link is pinned in bpffs, so the programs
//! stay attached if airlock dies — captured connects are still redirected,
//! to a proxy that is no longer there, and fail — and the next airlock on
//! the same cgroup takes over: it attaches its own programs first, then
//! retires the pins a previous process left. A graceful stop unpins (an
//! operator stopping airlock is deciding to let traffic through).
//!
//! Layout: `{pin_dir}/{key}/{airlock pid}/{program}[@{cgroup inode}]`
//! (`key`: the capture cgroups', see `capture::pin_key`), and the
//! descendants map, shared by every generation, at
//! `{pin_dir}/{key}/maps/AIRLOCK_TRACKED`: it outlives a graceful stop too
//! (unless empty), so a restart keeps what it tracked.

use std::path::{Path, PathBuf};

use aya::programs::links::{FdLink, PinnedLink};

use super::CaptureError;

/// The directory, beside the generations, of maps every generation shares.
const MAPS: &str = "maps";

/// This process's pins; unpinned (and so detached) when dropped.
#[derive(Debug)]
pub(super) struct Pins {
    dir: PathBuf,
    /// With the cgroup each is attached to (none: a tracepoint's).
    links: Vec<(Option<u64>, PinnedLink)>,
    /// Maps pinned for every generation (see the module doc).
    maps: Vec<PathBuf>,
    /// Generations left by earlier processes, retired once ours is attached.
    previous: Vec<PathBuf>,
}

impl Pins {
    /// Makes sure `root` is on a bpffs (mounting one at the standard place
    /// if none is), and creates this process's generation directory.
    pub(super) fn prepare(root: &Path, key: &str) -> Result<Self, CaptureError> {
        ensure_bpffs(root)?;
        let base = root.join(key);
        let previous = std::fs::read_dir(&base)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter(|e| e.file_name() != MAPS)
            .map(|e| e.path())
            .collect();
        let dir = base.join(std::process::id().to_string());
        std::fs::create_dir_all(&dir).map_err(|io_error| CaptureError::Io {
            what: "create the bpffs pin directory",
            io_error,
        })?;
        Ok(Self {
            dir,
            links: Vec::new(),
            maps: Vec::new(),
            previous,
        })
    }

    /// Where map `name` is pinned for every generation on this cgroup
    /// (its directory made if missing).
    pub(super) fn map_path(&mut self, name: &str) -> Result<PathBuf, CaptureError> {
        let dir = self.base().join(MAPS);
        std::fs::create_dir_all(&dir).map_err(|io_error| CaptureError::Io {
            what: "create the bpffs map directory",
            io_error,
        })?;
        let path = dir.join(name);
        self.maps.push(path.clone());
        Ok(path)
    }

    fn base(&self) -> &Path {
        self.dir.parent().unwrap_or(&self.dir)
    }

    /// Pins `link` of program `name`, attached to the cgroup of inode
    /// `cgroup` (none: a tracepoint's).
    pub(super) fn pin(
        &mut self,
        name: &'static str,
        cgroup: Option<u64>,
        link: FdLink,
    ) -> Result<(), CaptureError> {
        let file = match cgroup {
            Some(ino) => format!("{name}@{ino}"),
            None => name.to_owned(),
        };
        let pinned = link
            .pin(self.dir.join(file))
            .map_err(|e| CaptureError::Pin {
                program: name,
                why: e.to_string(),
            })?;
        self.links.push((cgroup, pinned));
        Ok(())
    }

    /// Unpins the links attached to the cgroup of inode `cgroup` (removed:
    /// the kernel detached them with it).
    pub(super) fn release(&mut self, cgroup: u64) {
        let (gone, kept) = std::mem::take(&mut self.links)
            .into_iter()
            .partition(|(c, _)| *c == Some(cgroup));
        self.links = kept;
        unpin_all(gone);
    }

    /// Detaches what earlier processes left pinned; returns how many links.
    pub(super) fn retire_previous(&mut self) -> usize {
        let mut retired = 0;
        for dir in std::mem::take(&mut self.previous) {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                let unpinned = PinnedLink::from_pin(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|p| p.unpin().map_err(|e| e.to_string()));
                match unpinned {
                    // Dropping the last reference detaches the program.
                    Ok(link) => {
                        drop(link);
                        retired += 1;
                    }
                    Err(error) => {
                        tracing::warn!(pin = %path.display(), %error, "could not retire a pinned link")
                    }
                }
            }
            let _ = std::fs::remove_dir(&dir);
        }
        retired
    }
}

impl Drop for Pins {
    fn drop(&mut self) {
        unpin_all(std::mem::take(&mut self.links));
        let _ = std::fs::remove_dir(&self.dir);
        // A map that tracks nothing has nothing to hand on.
        for path in &self.maps {
            let empty = aya::maps::MapData::from_pin(path)
                .ok()
                .and_then(|m| {
                    aya::maps::HashMap::<_, u32, airlock_ebpf::Tracked>::try_from(
                        aya::maps::Map::HashMap(m),
                    )
                    .ok()
                })
                .is_some_and(|m| m.keys().next().is_none());
            if empty {
                let _ = std::fs::remove_file(path);
            }
        }
        let _ = std::fs::remove_dir(self.base().join(MAPS));
        // Empty once no generation is left; not an error otherwise.
        let _ = std::fs::remove_dir(self.base());
    }
}

fn unpin_all(links: Vec<(Option<u64>, PinnedLink)>) {
    for (_, link) in links {
        if let Err(e) = link.unpin() {
            tracing::warn!(error = %e, "could not unpin a capture link");
        }
    }
}

/// `root` must be on a bpffs: if no bpffs is mounted at or above it, one is
/// mounted at `/sys/fs/bpf` (what systemd does at boot) when `root` is
/// below it; anything else is an error naming the fix.
fn ensure_bpffs(root: &Path) -> Result<(), CaptureError> {
    const STANDARD: &str = "/sys/fs/bpf";
    let mountinfo =
        std::fs::read_to_string("/proc/self/mountinfo").map_err(|io_error| CaptureError::Io {
            what: "read /proc/self/mountinfo",
            io_error,
        })?;
    if super::cgroup::mounts_of(&mountinfo, "bpf").any(|m| root.starts_with(&m)) {
        return Ok(());
    }
    if !root.starts_with(STANDARD) {
        return Err(CaptureError::NoBpffs(root.to_owned()));
    }
    let status = std::process::Command::new("mount")
        .args(["-t", "bpf", "bpf", STANDARD])
        .status()
        .map_err(|io_error| CaptureError::Io {
            what: "run mount -t bpf",
            io_error,
        })?;
    if !status.success() {
        return Err(CaptureError::NoBpffs(root.to_owned()));
    }
    tracing::info!(path = STANDARD, "mounted bpffs for fail_mode = \"closed\"");
    Ok(())
}
