//! `airlock audit verify`: checks a trail file by file, in order, carrying
//! the chain head across rotation.

use std::path::{Path, PathBuf};

use super::chain::{self, Head};

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
}

/// Verifies `files` as one chain, oldest first.
pub fn verify(files: &[PathBuf]) -> Result<Verified, VerifyError> {
    let mut head: Option<Head> = None;
    let mut records = 0;
    for file in files {
        let bytes = read(file)?;
        head = chain::verify_bytes(&bytes, head).map_err(|b| VerifyError::Broken {
            file: file.clone(),
            line: b.line,
            reason: b.reason,
        })?;
        records += bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count() as u64;
    }
    Ok(Verified {
        files: files.len(),
        records,
        head: head.map(|h| h.hash),
    })
}

fn read(file: &Path) -> Result<Vec<u8>, VerifyError> {
    std::fs::read(file).map_err(|source| VerifyError::Read {
        file: file.to_owned(),
        source,
    })
}
