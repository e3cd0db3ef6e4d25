//! Where the exporter stands, kept beside the audit log so a restart
//! resumes: the trail it follows, the last seq through which every message
//! is delivered, and the seq reading must start again from to rebuild what
//! is not (an exchange's request and session come before it). Written
//! atomically (a temporary file, fsynced, renamed), 0600 like the trail.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ExportError;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Cursor {
    pub(super) trail: String,
    /// Every message through this seq is delivered.
    pub(super) delivered: u64,
    /// Reading starts again here.
    pub(super) resume: u64,
}

/// `<audit.path>.syslog-cursor`.
pub(super) fn path_for(audit: &Path) -> PathBuf {
    let mut name = audit.file_name().unwrap_or_default().to_os_string();
    name.push(".syslog-cursor");
    audit.with_file_name(name)
}

impl Cursor {
    /// The cursor at `path` when it follows `trail`; else the start of it.
    /// An unreadable cursor starts over too: messages sent again are
    /// dropped by receivers (trail and seq), messages never sent are not.
    pub(super) fn load(path: &Path, trail: &str) -> Self {
        let found = std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Self>(&b).ok());
        match found {
            Some(c) if c.trail == trail && c.resume >= 1 && c.resume <= c.delivered + 1 => c,
            _ => Self {
                trail: trail.to_owned(),
                delivered: 0,
                resume: 1,
            },
        }
    }

    pub(super) fn save(&self, path: &Path) -> Result<(), ExportError> {
        let err = |error| ExportError::Cursor {
            path: path.to_owned(),
            error,
        };
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".tmp");
        let tmp = path.with_file_name(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(err)?;
        f.write_all(&serde_json::to_vec(self).expect("a cursor serialises"))
            .and_then(|()| f.sync_data())
            .map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_cursor_is_read_back_only_for_its_own_trail() {
        let dir = crate::scratch_dir("export-cursor");
        std::fs::create_dir_all(&dir).unwrap();
        let path = path_for(&dir.join("audit.jsonl"));
        assert!(path.ends_with("audit.jsonl.syslog-cursor"));
        let fresh = Cursor::load(&path, "t1");
        assert_eq!((fresh.delivered, fresh.resume), (0, 1));
        let c = Cursor {
            trail: "t1".into(),
            delivered: 40,
            resume: 31,
        };
        c.save(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(Cursor::load(&path, "t1"), c);
        assert_eq!(Cursor::load(&path, "t2").resume, 1, "another chain");
        std::fs::write(&path, b"{\"trail\":\"t1\",\"delivered\":3,\"resume\":9}").unwrap();
        assert_eq!(Cursor::load(&path, "t1").resume, 1, "not a cursor it wrote");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
