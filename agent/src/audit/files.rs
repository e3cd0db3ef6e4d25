//! Which files make up the audit trail: the current file and the rotated
//! ones beside it (`<name>.<last seq, 12 digits>`), in chain order.

use std::path::{Path, PathBuf};

/// The name a full file is moved to.
pub(crate) fn rotated_name(current: &Path, last_seq: u64) -> PathBuf {
    let mut name = current.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{last_seq:012}"));
    current.with_file_name(name)
}

/// The last seq a rotated file holds, as its name says.
pub(crate) fn last_seq(rotated: &Path) -> Option<u64> {
    let name = rotated.file_name()?.to_str()?;
    let (_, digits) = name.rsplit_once('.')?;
    (digits.len() == 12).then(|| digits.parse().ok())?
}

/// Rotated files of `current`, oldest first.
pub(crate) fn rotated(current: &Path) -> Vec<PathBuf> {
    let Some(dir) = current.parent() else {
        return Vec::new();
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!(
        "{}.",
        current.file_name().unwrap_or_default().to_string_lossy()
    );
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix(&prefix))
                .is_some_and(|rest| rest.len() == 12 && rest.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    found.sort();
    found
}

/// The whole trail, oldest first: rotated files, then the current one.
pub fn trail(current: &Path) -> Vec<PathBuf> {
    let mut all = rotated(current);
    if current.exists() {
        all.push(current.to_owned());
    }
    all
}
