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

/// A group's id through NSS (a number is taken as is).
fn group_id(name: &str) -> std::io::Result<u32> {
    crate::users::UserDb::system()
        .group_id(name)
        .ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, format!("no group {name:?}"))
        })
}
