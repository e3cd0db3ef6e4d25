//! Who may read the audit files: root only, or a configured group.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::config::AuditConfig;

/// Who may read audit files: root only (0600), or also `audit.group`
/// (0640, group-owned), for auditors who should not need root.
#[derive(Clone, Copy, Debug)]
pub(super) struct Access {
    pub(super) gid: Option<u32>,
}

impl Access {
    pub(super) fn for_config(config: &AuditConfig) -> std::io::Result<Self> {
        let gid = match &config.group {
            None => None,
            Some(name) => Some(group_id(name)?),
        };
        Ok(Self { gid })
    }

    pub(super) fn open(self, path: &Path) -> std::io::Result<File> {
        let mode = if self.gid.is_some() { 0o640 } else { 0o600 };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .mode(mode)
            .open(path)?;
        if let Some(gid) = self.gid {
            std::os::unix::fs::fchown(&file, None, Some(gid))?;
            std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode))?;
        }
        Ok(file)
    }
}

/// A group's id from /etc/group (a number is taken as is).
fn group_id(name: &str) -> std::io::Result<u32> {
    if let Ok(gid) = name.parse() {
        return Ok(gid);
    }
    std::fs::read_to_string("/etc/group")?
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            (f.next() == Some(name)).then(|| f.nth(1)?.parse().ok())?
        })
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no group {name:?} in /etc/group"),
            )
        })
}
