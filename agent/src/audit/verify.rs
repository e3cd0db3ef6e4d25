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
    let mut v = Verifier::new(trusted);
    for file in files {
        v.feed(file, &read(file)?)?;
    }
    v.finish(files.last().map(PathBuf::as_path).unwrap_or(Path::new("")))
}

/// One chain checked a piece at a time, oldest first: files, or the
/// records a fleet database holds, fed in order.
pub(crate) struct Verifier<'k> {
    trusted: Option<&'k str>,
    head: Option<Head>,
    pieces: usize,
    records: u64,
    checkpoints: usize,
    signed_through: Option<u64>,
    /// The first record's seq and prev.
    first: Option<(u64, String)>,
    /// Every (last_seq, last_hash) a retention record says was removed,
    /// with that record's seq.
    retained: Vec<(u64, String, u64)>,
}

impl<'k> Verifier<'k> {
    pub(crate) fn new(trusted: Option<&'k str>) -> Self {
        Self {
            trusted,
            head: None,
            pieces: 0,
            records: 0,
            checkpoints: 0,
            signed_through: None,
            first: None,
            retained: Vec::new(),
        }
    }

    /// The next piece's bytes (whole lines); `name` says where they are
    /// from in errors, with the line within them.
    pub(crate) fn feed(&mut self, name: &Path, bytes: &[u8]) -> Result<(), VerifyError> {
        let broken = |line: usize, reason: String| VerifyError::Broken {
            file: name.to_owned(),
            line,
            reason,
        };
        self.pieces += 1;
        self.head =
            chain::verify_bytes(bytes, self.head.take()).map_err(|b| broken(b.line, b.reason))?;
        for (i, line) in bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .enumerate()
        {
            self.records += 1;
            // Cheap filter first: only the first record and retention
            // records are parsed unless checkpoints are checked too.
            let wanted = self.first.is_none()
                || self.trusted.is_some()
                || line.windows(RETENTION.len()).any(|w| w == RETENTION);
            if !wanted {
                continue;
            }
            let Ok(record) = serde_json::from_slice::<serde_json::Value>(line) else {
                continue;
            };
            if self.first.is_none() {
                self.first = record["seq"]
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
                self.retained.push((seq, hash.to_owned(), at));
            }
            let Some(key) = self.trusted else { continue };
            if record["event"] == "checkpoint" {
                checkpoint::check(&record, key).map_err(|why| broken(i + 1, why))?;
                self.checkpoints += 1;
                self.signed_through = record["seq"].as_u64();
            }
        }
        Ok(())
    }

    /// What the pieces fed covered; `last` names the last piece.
    pub(crate) fn finish(self, last: &Path) -> Result<Verified, VerifyError> {
        if self.trusted.is_some() && self.checkpoints == 0 && self.records > 0 {
            return Err(VerifyError::Broken {
                file: last.to_owned(),
                line: 0,
                reason: "no signed checkpoint in these files".into(),
            });
        }
        let unsigned_after = match (self.trusted, &self.head, self.signed_through) {
            (Some(_), Some(h), Some(s)) if h.seq > s => Some(s),
            _ => None,
        };
        let retained = self.retained;
        let starts_after = self.first.filter(|(seq, _)| *seq > 1).map(|(seq, prev)| {
            let why = retained
                .iter()
                .find(|(last, hash, _)| *last + 1 == seq && *hash == prev)
                .map(|(.., at)| *at);
            (seq, why)
        });
        Ok(Verified {
            files: self.pieces,
            records: self.records,
            head: self.head.map(|h| h.hash),
            checkpoints: self.checkpoints,
            unsigned_after,
            starts_after,
        })
    }
}

fn read(file: &Path) -> Result<Vec<u8>, VerifyError> {
    std::fs::read(file).map_err(|source| VerifyError::Read {
        file: file.to_owned(),
        source,
    })
}
