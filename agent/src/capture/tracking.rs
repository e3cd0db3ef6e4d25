//! The descendants map (`AIRLOCK_TRACKED`) across airlock restarts: with
//! `fail_mode = "closed"` it is pinned beside the links, one per capture
//! cgroup, and the next airlock reuses it — after a restart `/proc` cannot
//! tell where a double-forked process came from, the map can. What the
//! map says is checked first: entries whose process is gone (or whose pid
//! now names another process: its start time differs) are removed, and
//! children that tracked processes started while no airlock was running
//! are added. A child re-parented in that window cannot be found.

use std::path::Path;

use airlock_ebpf::Tracked;
use aya::maps::{HashMap, MapData, MapInfo, MapType};

use super::process::{NS_PER_TICK, stat};

/// Whether a map pinned at `path` can serve as a tracking map of
/// `max_entries`; one that cannot (an older layout, another size) is
/// unpinned, so a fresh one is made.
pub(super) fn keep_compatible(path: &Path, max_entries: u32) {
    let Ok(info) = MapInfo::from_pin(path) else {
        return;
    };
    let fits = matches!(info.map_type(), Ok(MapType::Hash))
        && info.key_size() == 4
        && info.value_size() as usize == size_of::<Tracked>()
        && info.max_entries() == max_entries;
    if !fits {
        tracing::warn!(pin = %path.display(), "a pinned tracking map of another layout or size is replaced: descendants tracked before are not");
        let _ = std::fs::remove_file(path);
    }
}

/// Removes what no longer holds and adds what was missed; returns how
/// many entries were (removed, added).
pub(super) fn reconcile(map: &mut HashMap<MapData, u32, Tracked>) -> (usize, usize) {
    let entries: Vec<(u32, Tracked)> = map.iter().filter_map(Result::ok).collect();
    let mut removed = 0;
    // Each tracked process with its agent, which the children it adopts
    // inherit.
    let mut tracked = std::collections::HashMap::new();
    for (tgid, entry) in entries {
        if stat(tgid).and_then(|s| s.started) == Some(entry.born / NS_PER_TICK) {
            tracked.insert(tgid, entry);
        } else if map.remove(&tgid).is_ok() {
            removed += 1;
        }
    }
    let mut added = 0;
    if tracked.is_empty() {
        return (removed, added);
    }
    // Children, grandchildren…: a few passes over /proc, each adopting the
    // children of what the last one tracked.
    for _ in 0..8 {
        let mut adopted = Vec::new();
        for (pid, ppid, ticks) in processes() {
            if let Some(parent) = tracked.get(&ppid)
                && !tracked.contains_key(&pid)
            {
                let entry = Tracked {
                    born: ticks * NS_PER_TICK,
                    ..*parent
                };
                adopted.push((pid, entry));
            }
        }
        if adopted.is_empty() {
            break;
        }
        for (pid, entry) in adopted {
            if map.insert(pid, entry, 0).is_ok() {
                tracked.insert(pid, entry);
                added += 1;
            }
        }
    }
    (removed, added)
}

/// Every process now: (pid, ppid, start ticks).
fn processes() -> Vec<(u32, u32, u64)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let s = stat(pid)?;
            Some((pid, s.ppid, s.started?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_listed() {
        assert!(
            processes()
                .iter()
                .any(|(pid, ..)| *pid == std::process::id())
        );
    }
}
