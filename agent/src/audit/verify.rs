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
            let Some(key) = trusted else { continue };
            let Ok(record) = serde_json::from_slice::<serde_json::Value>(line) else {
                continue;
            };
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
    Ok(Verified {
        files: files.len(),
        records,
        head: head.map(|h| h.hash),
        checkpoints,
        unsigned_after,
    })
}

fn read(file: &Path) -> Result<Vec<u8>, VerifyError> {
    std::fs::read(file).map_err(|source| VerifyError::Read {
        file: file.to_owned(),
        source,
    })
}
