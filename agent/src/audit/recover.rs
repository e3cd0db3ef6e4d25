//! Resuming the chain after a restart or crash: the head from the newest
//! complete record, and a partial last line moved aside.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::chain::Head;
use super::files;

/// A partial record found at the end of the file after a crash.
#[derive(Debug)]
pub(super) struct Recovered {
    pub(super) bytes: u64,
    pub(super) saved_to: PathBuf,
}

/// Cuts a partial last line (a crash mid-write) off the file and keeps it
/// beside it, so the chain stays verifiable; the writer then records that
/// this happened. Returns the chain head from the newest file with a
/// complete record.
pub(super) fn resume(
    path: &Path,
    file: &mut File,
) -> std::io::Result<(Option<Head>, Option<Recovered>)> {
    let mut recovered = None;
    let bytes = std::fs::read(path)?;
    if !bytes.is_empty() && !bytes.ends_with(b"\n") {
        let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let saved_to = path.with_file_name(format!(
            "{}.partial-{}",
            path.file_name().unwrap_or_default().to_string_lossy(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        // Same privacy as the log itself; never over an earlier fragment.
        let mut f = std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&saved_to)?;
        std::io::Write::write_all(&mut f, &bytes[keep..])?;
        file.set_len(keep as u64)?;
        file.sync_all()?;
        tracing::warn!(path = %path.display(), saved_to = %saved_to.display(),
            "audit log ended in a partial record (crash?): moved aside and recorded");
        recovered = Some(Recovered {
            bytes: (bytes.len() - keep) as u64,
            saved_to,
        });
    }
    for candidate in std::iter::once(path.to_owned()).chain(files::rotated(path).into_iter().rev())
    {
        if let Some(head) = last_head(&candidate)? {
            return Ok((Some(head), recovered));
        }
    }
    Ok((None, recovered))
}

/// Hash and seq of the last complete, parseable record in `path`.
fn last_head(path: &Path) -> std::io::Result<Option<Head>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(bytes.split(|b| *b == b'\n').rev().find_map(|l| {
        let v: Value = serde_json::from_slice(l).ok()?;
        Some(Head {
            hash: v.get("hash")?.as_str()?.to_owned(),
            seq: v.get("seq")?.as_u64()?,
        })
    }))
}
