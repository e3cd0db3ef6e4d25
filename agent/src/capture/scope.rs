//! `capture.cgroup`: the cgroups the programs attach to. Each entry is a
//! path below the cgroup2 root whose components may be globs
//! (`/system.slice/docker-*.scope`); expanding them against the tree gives
//! the directories to attach to now, and again whenever cgroups appear (a
//! CI job's container, a dev container). Programs attached to a cgroup
//! also run for every cgroup below it, so a match below another match is
//! not attached twice.

use std::path::{Path, PathBuf};

use super::CaptureError;
use crate::core::Glob;

/// One component of a pattern.
#[derive(Clone, Debug)]
enum Part {
    Literal(String),
    Glob(Glob),
}

impl Part {
    fn matches(&self, name: &str) -> bool {
        match self {
            Part::Literal(l) => l == name,
            Part::Glob(g) => g.matches(name),
        }
    }
}

/// The capture cgroups as configured, resolved against the cgroup2 mount.
#[derive(Clone, Debug)]
pub(crate) struct Scope {
    mount: PathBuf,
    /// Each pattern's components below the mount; empty: the root itself.
    patterns: Vec<Vec<Part>>,
    /// As configured, for logs, status and the pins' directory name.
    spec: Vec<String>,
}

impl Scope {
    /// `spec` as `capture.cgroup` gives it: empty is the whole host. A path
    /// under `mount` is taken as a directory; any other is relative to it.
    pub(crate) fn new(spec: &[PathBuf], mount: &Path) -> Self {
        let patterns = if spec.is_empty() {
            vec![Vec::new()]
        } else {
            spec.iter()
                .map(|p| {
                    let below = p.strip_prefix(mount).unwrap_or(p);
                    below
                        .components()
                        .filter_map(|c| match c {
                            std::path::Component::Normal(n) => Some(n.to_string_lossy()),
                            _ => None,
                        })
                        .map(|n| {
                            if n.contains(['*', '?']) {
                                Part::Glob(Glob::new(&n, false))
                            } else {
                                Part::Literal(n.into_owned())
                            }
                        })
                        .collect()
                })
                .collect()
        };
        let spec = if spec.is_empty() {
            vec![mount.display().to_string()]
        } else {
            spec.iter().map(|p| p.display().to_string()).collect()
        };
        Self {
            mount: mount.to_owned(),
            patterns,
            spec,
        }
    }

    /// Whether cgroups that appear later may match (a pattern has a glob).
    pub(crate) fn is_dynamic(&self) -> bool {
        self.patterns
            .iter()
            .flatten()
            .any(|p| matches!(p, Part::Glob(_)))
    }

    /// Whether this is the cgroup2 root: every process on the host.
    pub(crate) fn whole_host(&self) -> bool {
        self.patterns.iter().any(Vec::is_empty)
    }

    /// As configured, comma-separated.
    pub(crate) fn describe(&self) -> String {
        self.spec.join(", ")
    }

    /// Checks the literal entries exist: a typo in a fixed path is an
    /// error at start, while a glob may match nothing yet.
    pub(crate) fn check(&self) -> Result<(), CaptureError> {
        for pattern in &self.patterns {
            if pattern.iter().all(|p| matches!(p, Part::Literal(_))) {
                super::cgroup::check_cgroup_dir(&self.dir_of(pattern))?;
            }
        }
        Ok(())
    }

    fn dir_of(&self, parts: &[Part]) -> PathBuf {
        let mut dir = self.mount.clone();
        for p in parts {
            if let Part::Literal(l) = p {
                dir.push(l);
            }
        }
        dir
    }

    /// The cgroup directories the patterns match now, none below another.
    /// Reads a directory per glob component; a directory that vanishes
    /// meanwhile is simply not matched.
    pub(crate) fn expand(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for pattern in &self.patterns {
            walk(&self.mount, pattern, &mut found);
        }
        found.sort();
        found.dedup();
        // Sorted, an ancestor comes before its descendants.
        let mut kept: Vec<PathBuf> = Vec::with_capacity(found.len());
        for dir in found {
            if !kept.iter().any(|k| dir.starts_with(k)) {
                kept.push(dir);
            }
        }
        kept
    }

    /// Whether a process in cgroup `relative` (`/x/y`, as
    /// `/proc/PID/cgroup` says) is captured: it is in a matching cgroup or
    /// below one.
    pub(crate) fn contains(&self, relative: &str) -> bool {
        let names: Vec<&str> = relative.split('/').filter(|n| !n.is_empty()).collect();
        self.patterns.iter().any(|pattern| {
            pattern.len() <= names.len() && pattern.iter().zip(&names).all(|(p, n)| p.matches(n))
        })
    }
}

/// Directories under `dir` matching `rest`, pushed to `found`.
fn walk(dir: &Path, rest: &[Part], found: &mut Vec<PathBuf>) {
    let Some((first, rest)) = rest.split_first() else {
        if dir.join("cgroup.procs").exists() {
            found.push(dir.to_owned());
        }
        return;
    };
    match first {
        Part::Literal(name) => walk(&dir.join(name), rest, found),
        Part::Glob(glob) => {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
                if is_dir && entry.file_name().to_str().is_some_and(|n| glob.matches(n)) {
                    walk(&entry.path(), rest, found);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(spec: &[&str], mount: &Path) -> Scope {
        let spec: Vec<PathBuf> = spec.iter().map(PathBuf::from).collect();
        Scope::new(&spec, mount)
    }

    #[test]
    fn empty_is_the_whole_host() {
        let s = scope(&[], Path::new("/sys/fs/cgroup"));
        assert!(s.whole_host() && !s.is_dynamic());
        assert!(s.contains("/user.slice/x"));
        assert_eq!(s.describe(), "/sys/fs/cgroup");
    }

    #[test]
    fn paths_are_directories_or_relative_to_the_root() {
        let mount = Path::new("/sys/fs/cgroup");
        let s = scope(
            &["/sys/fs/cgroup/ci-runner", "/system.slice/docker-*.scope"],
            mount,
        );
        assert!(s.is_dynamic() && !s.whole_host());
        assert!(s.contains("/ci-runner"));
        assert!(s.contains("/ci-runner/job/step"));
        assert!(s.contains("/system.slice/docker-0abc.scope"));
        assert!(s.contains("/system.slice/docker-0abc.scope/init"));
        // A glob is one component: it never spans a `/`.
        assert!(!s.contains("/system.slice/docker-x/y.scope"));
        assert!(!s.contains("/system.slice"));
        assert!(!s.contains("/system.slice/sshd.service"));
        assert!(!s.contains("/ci-runner2"));
    }

    #[test]
    fn expands_globs_without_nesting_matches() {
        let root = std::env::temp_dir().join(format!("airlock-scope-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for d in ["jobs/a", "jobs/a/inner", "jobs/b", "jobs/skip/x", "other"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
            std::fs::write(root.join(d).join("cgroup.procs"), "").unwrap();
        }
        std::fs::write(root.join("jobs/file-a"), "").unwrap();
        let s = scope(&["/jobs/?", "/jobs/a/*", "/missing/*"], &root);
        assert_eq!(
            s.expand(),
            vec![root.join("jobs/a"), root.join("jobs/b")],
            "jobs/a/inner is covered by jobs/a; files and missing parents match nothing"
        );
        assert!(s.check().is_ok(), "globs may match nothing yet");
        let fixed = scope(&["/jobs/nope"], &root);
        assert!(matches!(fixed.check(), Err(CaptureError::NotACgroup(_))));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
