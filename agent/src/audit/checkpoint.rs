//! Signed checkpoints: every `audit.checkpoint_every` records the writer
//! seals an `agent` record, `event: "checkpoint"`, that signs the chain head
//! before it with an Ed25519 key kept in the state directory. A verifier
//! holding only the public key and a segment of the trail can then prove
//! the segment up to each checkpoint is what airlock wrote.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde_json::{Value, json};

use super::chain::Head;
use crate::core::hex;

/// What is signed: a version tag, the seq and the hash of the record before
/// the checkpoint.
fn message(seq: u64, hash: &str) -> String {
    format!("airlock-checkpoint-v1 {seq} {hash}")
}

/// The writer's signing key.
pub(super) struct Signer {
    key: Ed25519KeyPair,
    public_hex: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("public", &self.public_hex)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Loads the PKCS#8 key at `path`, creating it (0600) if missing.
    pub(super) fn load_or_create(path: &Path) -> std::io::Result<Self> {
        let invalid = |e: &dyn std::fmt::Display| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
        };
        let pkcs8 = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let doc = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
                    .map_err(|e| invalid(&e))?;
                let mut f = std::fs::OpenOptions::new()
                    .create_new(true)
                    .write(true)
                    .mode(0o600)
                    .open(path)?;
                f.write_all(doc.as_ref())?;
                f.sync_all()?;
                doc.as_ref().to_vec()
            }
            Err(e) => return Err(e),
        };
        let key = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|e| invalid(&e))?;
        let public_hex = hex(key.public_key().as_ref());
        Ok(Self { key, public_hex })
    }

    /// The checkpoint record for the chain as it stands at `head`.
    pub(super) fn checkpoint(&self, head: &Head) -> Value {
        let sig = self.key.sign(message(head.seq, &head.hash).as_bytes());
        json!({
            "kind": "agent",
            "event": "checkpoint",
            "covers_seq": head.seq,
            "signature": hex(sig.as_ref()),
            "public_key": self.public_hex,
        })
    }
}

/// The hex public key of the signing key at `path`.
pub fn public_key(path: &Path) -> std::io::Result<String> {
    Ok(Signer::load_or_create(path)?.public_hex)
}

/// Checks a checkpoint record against `trusted` (hex public key): it must
/// sign exactly the record before it (`prev`, `seq - 1`).
pub(crate) fn check(record: &Value, trusted: &str) -> Result<(), String> {
    let field = |k: &str| {
        record[k]
            .as_str()
            .ok_or_else(|| format!("checkpoint without {k}"))
    };
    let (prev, signature) = (field("prev")?, field("signature")?);
    let seq = record["seq"].as_u64().ok_or("checkpoint without seq")?;
    let covered = seq.checked_sub(1).ok_or("checkpoint with seq 0")?;
    if record["covers_seq"].as_u64() != Some(covered) {
        return Err("checkpoint does not cover the record before it".into());
    }
    let key = unhex(trusted).ok_or("the trusted key is not hex")?;
    let sig = unhex(signature).ok_or("the signature is not hex")?;
    UnparsedPublicKey::new(&ED25519, key)
        .verify(message(covered, prev).as_bytes(), &sig)
        .map_err(|_| "checkpoint signature does not verify with the trusted key".to_owned())
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    s.len()
        .is_multiple_of(2)
        .then(|| {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
                .collect()
        })
        .flatten()
}
