//! Resuming the chain after a restart or crash: the head from the newest
//! complete record, and a partial last line moved aside.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::chain::Head;
use super::files;
use super::origin::TrailId;

/// The newest complete record: the chain's head, and the trail it names
/// (none in a trail written before records carried `origin`).
#[derive(Debug)]
pub(super) struct Last {
    pub(super) head: Head,
    pub(super) trail: Option<TrailId>,
}

/// A partial record found at the end of the file after a crash.
#[derive(Debug)]
pub(super) struct Recovered {
    pub(super) bytes: u64,
    pub(super) saved_to: PathBuf,
}

/// Cuts a partial last line (a crash mid-write) off the file and keeps it
/// beside it, so the chain stays verifiable; the writer then records that
/// this happened. Returns the newest complete record's head and trail,
/// from the newest file that has one.
pub(super) fn resume(
    path: &Path,
    file: &mut File,
) -> std::io::Result<(Option<Last>, Option<Recovered>)> {
    let mut recovered = None;
    // Only the end of the file matters: from its last newline on.
    let (bytes, start) = tail_from(path, |t| t.contains(&b'\n'))?;
    if !bytes.is_empty() && !bytes.ends_with(b"\n") {
        let cut = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let keep = start + cut as u64;
        let bytes = &bytes[cut..];
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
        std::io::Write::write_all(&mut f, bytes)?;
        file.set_len(keep)?;
        file.sync_all()?;
        tracing::warn!(path = %path.display(), saved_to = %saved_to.display(),
            "audit log ended in a partial record (crash?): moved aside and recorded");
        recovered = Some(Recovered {
            bytes: bytes.len() as u64,
            saved_to,
        });
    }
    for candidate in std::iter::once(path.to_owned()).chain(files::rotated(path).into_iter().rev())
    {
        if let Some(last) = last_record(&candidate)? {
            return Ok((Some(last), recovered));
        }
    }
    Ok((None, recovered))
}

/// The last complete, parseable record in `path`.
pub(super) fn last_record(path: &Path) -> std::io::Result<Option<Last>> {
    let parse = |t: &[u8], whole: bool| {
        let mut lines = t.split(|b| *b == b'\n');
        // Unless the window starts the file, its first line is cut.
        if !whole {
            lines.next();
        }
        lines.rev().find_map(|l| {
            let v: Value = serde_json::from_slice(l).ok()?;
            Some(Last {
                head: Head {
                    hash: v.get("hash")?.as_str()?.to_owned(),
                    seq: v.get("seq")?.as_u64()?,
                },
                trail: v["origin"]["trail"].as_str().and_then(TrailId::parse),
            })
        })
    };
    match tail_from(path, |t| parse(t, false).is_some()) {
        Ok((t, start)) => Ok(parse(&t, start == 0)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The end of `path`: a window that grows from [`TAIL`] (×16 each time)
/// until `enough(window)` holds or it is the whole file, and the window's
/// offset. A restart reads kilobytes, not the up to
/// `rotate_bytes` (128 MiB) the file may hold.
fn tail_from(path: &Path, enough: impl Fn(&[u8]) -> bool) -> std::io::Result<(Vec<u8>, u64)> {
    use std::os::unix::fs::FileExt;
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut want = TAIL;
    loop {
        let start = len.saturating_sub(want);
        let mut buf = vec![0; usize::try_from(len - start).unwrap_or(usize::MAX)];
        file.read_exact_at(&mut buf, start)?;
        if start == 0 || enough(&buf) {
            return Ok((buf, start));
        }
        want = want.saturating_mul(16);
    }
}

/// First window read from the end of an audit file: many records.
const TAIL: u64 = 256 * 1024;
