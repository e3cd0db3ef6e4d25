//! Finding the cgroup v2 hierarchy (unified or hybrid hosts) and the cgroup
//! of a process. Never assumes `/sys/fs/cgroup`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::CaptureError;

/// Moves itself into the cgroup given as $0, then execs the rest: the
/// process keeps its pid, so callers know the pid of the real program.
const ENTER: &str = r#"echo $$ > "$0/cgroup.procs" && exec "$@""#;

/// How long removal waits for the cgroup's processes to die.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(5);

/// A child cgroup of the cgroup2 root that airlock created (the demo's, the
/// tests'); its processes are killed and it is removed on drop.
#[derive(Debug)]
pub struct OwnedCgroup {
    dir: PathBuf,
}

impl OwnedCgroup {
    /// Creates `name` directly under the cgroup2 mount.
    pub fn create(name: &str) -> Result<Self, CaptureError> {
        Self::create_under(&cgroup2_mount()?, name)
    }

    /// Creates `name` under the cgroup directory `parent`.
    pub fn create_under(parent: &Path, name: &str) -> Result<Self, CaptureError> {
        let dir = parent.join(name);
        std::fs::create_dir(&dir).map_err(|io_error| CaptureError::Io {
            what: "create cgroup",
            io_error,
        })?;
        Ok(Self { dir })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// `program` started inside this cgroup (add its arguments to the
    /// returned command).
    pub fn command(&self, program: impl AsRef<OsStr>) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c").arg(ENTER).arg(&self.dir).arg(program);
        cmd
    }

    /// Pids currently in the cgroup.
    pub fn pids(&self) -> Vec<u32> {
        std::fs::read_to_string(self.dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }
}

impl Drop for OwnedCgroup {
    fn drop(&mut self) {
        // cgroup.kill (Linux 5.14+) kills every process in it at once.
        let _ = std::fs::write(self.dir.join("cgroup.kill"), "1");
        let deadline = Instant::now() + REMOVE_TIMEOUT;
        while !self.pids().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        while let Err(e) = std::fs::remove_dir(&self.dir) {
            if Instant::now() >= deadline {
                tracing::warn!(cgroup = %self.dir.display(), error = %e, "cannot remove cgroup");
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The mount point of the cgroup2 filesystem, read from
/// `/proc/self/mountinfo`.
pub fn cgroup2_mount() -> Result<PathBuf, CaptureError> {
    let text =
        std::fs::read_to_string("/proc/self/mountinfo").map_err(|io_error| CaptureError::Io {
            what: "read /proc/self/mountinfo",
            io_error,
        })?;
    find_cgroup2(&text).ok_or(CaptureError::NoCgroup2)
}

/// The first cgroup2 mount in mountinfo text.
pub(crate) fn find_cgroup2(mountinfo: &str) -> Option<PathBuf> {
    mounts_of(mountinfo, "cgroup2").next()
}

/// Mount points of filesystems of type `fstype` in mountinfo text (proc(5)
/// format: the filesystem type follows the `-` separator).
pub(crate) fn mounts_of<'a>(
    mountinfo: &'a str,
    fstype: &'a str,
) -> impl Iterator<Item = PathBuf> + 'a {
    mountinfo.lines().filter_map(move |line| {
        let mut fields = line.split(' ');
        let mount_point = fields.nth(4)?;
        let mut rest = fields.skip_while(|f| *f != "-");
        rest.next()?;
        (rest.next()? == fstype).then(|| PathBuf::from(unescape(mount_point)))
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let digits: String = chars.clone().take(3).collect();
            if digits.len() == 3
                && let Ok(v) = u8::from_str_radix(&digits, 8)
            {
                out.push(char::from(v));
                chars.nth(2);
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// The cgroup v2 path of `pid` relative to the hierarchy root (`/x/y`), from
/// `/proc/PID/cgroup`; `None` if the process is gone.
pub(crate) fn cgroup_of(pid: u32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_owned)
}

/// Checks that `dir` is a directory of the cgroup2 hierarchy.
pub(crate) fn check_cgroup_dir(dir: &Path) -> Result<(), CaptureError> {
    let probe = dir.join("cgroup.procs");
    if dir.is_dir() && probe.exists() {
        Ok(())
    } else {
        Err(CaptureError::NotACgroup(dir.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const UNIFIED: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
27 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate
";
    const NONE: &str = "\
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
";

    #[test]
    fn finds_hybrid_cgroup2() {
        assert_eq!(
            find_cgroup2(HYBRID).unwrap(),
            Path::new("/sys/fs/cgroup/unified")
        );
    }

    #[test]
    fn finds_unified_cgroup2_with_optional_fields() {
        assert_eq!(find_cgroup2(UNIFIED).unwrap(), Path::new("/sys/fs/cgroup"));
    }

    #[test]
    fn no_cgroup2_is_none() {
        assert!(find_cgroup2(NONE).is_none());
    }

    #[test]
    fn unescapes_mount_points() {
        let line = "41 31 0:38 / /mnt/my\\040cg rw - cgroup2 cgroup2 rw\n";
        assert_eq!(find_cgroup2(line).unwrap(), Path::new("/mnt/my cg"));
    }

    #[test]
    fn this_host_has_a_cgroup_for_this_process() {
        if let Ok(root) = cgroup2_mount() {
            let rel = cgroup_of(std::process::id()).expect("cgroup of self");
            assert!(root.join(rel.trim_start_matches('/')).is_dir());
        }
    }
}
