//! `airlock audit verify`: checks a trail file by file, in order, carrying
//! the chain head across rotation.

use std::path::{Path, PathBuf};

use super::chain::{self, Head};
use super::checkpoint;

/// The first place the trail is broken.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{}:{line}: {reason}", file.display())]
    Broken {
        file: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{}: {source}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// How a retention record's event reads on its line.
const RETENTION: &[u8] = b"\"event\":\"retention\"";

/// What a successful verification covered.
#[derive(Debug, Default)]
pub struct Verified {
    pub files: usize,
    pub records: u64,
    pub head: Option<String>,
    /// Signed checkpoints verified against the trusted key.
    pub checkpoints: usize,
    /// With a key: the last seq a verified checkpoint covers, when records
    /// follow it that no signature covers.
    pub unsigned_after: Option<u64>,
    /// Where the chain starts when not at its first record: the seq of
    /// the first record, and the `retention` record (its seq) that removed
    /// the file before it, if one in these files does.
    pub starts_after: Option<(u64, Option<u64>)>,
}

/// Verifies `files` as one chain, oldest first.
pub(crate) fn verify(files: &[PathBuf]) -> Result<Verified, VerifyError> {
    verify_signed(files, None)
}

/// As [`verify`]; with `trusted` (a hex Ed25519 public key) every signed
/// checkpoint must verify too, and at least one must be present.
pub fn verify_signed(files: &[PathBuf], trusted: Option<&str>) -> Result<Verified, VerifyError> {
    let mut head: Option<Head> = None;
    let mut records = 0;
    let mut checkpoints = 0;
    let mut signed_through = None;
    // The first record's seq and prev, and every (last_seq, last_hash)
    // a retention record says was removed, with that record's seq.
    let mut first: Option<(u64, String)> = None;
    let mut retained: Vec<(u64, String, u64)> = Vec::new();
    for file in files {
        let bytes = read(file)?;
        let broken = |line: usize, reason: String| VerifyError::Broken {
            file: file.clone(),
            line,
            reason,
        };
        head = chain::verify_bytes(&bytes, head).map_err(|b| broken(b.line, b.reason))?;
        for (i, line) in bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .enumerate()
        {
            records += 1;
            // Cheap filter first: only the first record and retention
            // records are parsed unless checkpoints are checked too.
            let wanted = first.is_none()
                || trusted.is_some()
                || line.windows(RETENTION.len()).any(|w| w == RETENTION);
            if !wanted {
                continue;
            }
            let Ok(record) = serde_json::from_slice::<serde_json::Value>(line) else {
                continue;
            };
            if first.is_none() {
                first = record["seq"]
                    .as_u64()
                    .zip(record["prev"].as_str().map(str::to_owned));
            }
            if record["event"] == "retention"
                && let (Some(seq), Some(hash), Some(at)) = (
                    record["last_seq"].as_u64(),
                    record["last_hash"].as_str(),
                    record["seq"].as_u64(),
                )
            {
                retained.push((seq, hash.to_owned(), at));
            }
            let Some(key) = trusted else { continue };
            if record["event"] == "checkpoint" {
                checkpoint::check(&record, key).map_err(|why| broken(i + 1, why))?;
                checkpoints += 1;
                signed_through = record["seq"].as_u64();
            }
        }
    }
    if trusted.is_some() && checkpoints == 0 && records > 0 {
        let file = files.last().cloned().unwrap_or_default();
        return Err(VerifyError::Broken {
            file,
            line: 0,
            reason: "no signed checkpoint in these files".into(),
        });
    }
    let unsigned_after = match (trusted, &head, signed_through) {
        (Some(_), Some(h), Some(s)) if h.seq > s => Some(s),
        _ => None,
    };
    let starts_after = first.filter(|(seq, _)| *seq > 1).map(|(seq, prev)| {
        let why = retained
            .iter()
            .find(|(last, hash, _)| *last + 1 == seq && *hash == prev)
            .map(|(.., at)| *at);
        (seq, why)
    });
    Ok(Verified {
        files: files.len(),
        records,
        head: head.map(|h| h.hash),
        checkpoints,
        unsigned_after,
        starts_after,
    })
}

fn read(file: &Path) -> Result<Vec<u8>, VerifyError> {
    std::fs::read(file).map_err(|source| VerifyError::Read {
        file: file.to_owned(),
        source,
    })
}
