//! Reading the local trail from a seq onward while the writer appends to
//! it and rotates it: whole lines only (a batch still being written waits
//! for its newline), across rotation (a rotated file is found again by the
//! last seq its name carries), never by the writer's path alone — the file
//! being read stays open, so a rotation between two reads loses nothing.
//! Blocking: readers that follow the trail (the fleet's shipper) call it
//! off the async threads.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::files;

/// Bytes read at a time.
const CHUNK: usize = 256 * 1024;

/// One record's line (without its newline) and its seq.
#[derive(Debug)]
pub(crate) struct Line {
    pub(crate) seq: u64,
    pub(crate) text: String,
}

pub(crate) struct Tail {
    current: PathBuf,
    /// The next seq wanted.
    next: u64,
    open: Option<Open>,
}

struct Open {
    file: File,
    ino: u64,
    /// Bytes read past the last whole line.
    carry: Vec<u8>,
}

impl Tail {
    /// Reads the trail whose current file is `current` from seq `next`.
    pub(crate) fn new(current: &Path, next: u64) -> Self {
        Self {
            current: current.to_owned(),
            next,
            open: None,
        }
    }

    /// Up to `max` whole records from the next wanted seq on, in order;
    /// fewer (or none) when the trail has no more yet.
    pub(crate) fn read(&mut self, max: usize) -> io::Result<Vec<Line>> {
        let mut out = Vec::new();
        let mut chunk = vec![0u8; CHUNK];
        // The file just read to its end: found again, it holds no more
        // than it did (its name promised more than it has).
        let mut finished = None;
        loop {
            let Some(open) = self.open.as_mut() else {
                match self.locate()? {
                    Some(o) if Some(o.ino) != finished => self.open = Some(o),
                    _ => return Ok(out),
                }
                continue;
            };
            take_lines(&mut open.carry, &mut self.next, &mut out, max);
            if out.len() >= max {
                return Ok(out);
            }
            let n = open.file.read(&mut chunk)?;
            if n > 0 {
                open.carry.extend_from_slice(&chunk[..n]);
                continue;
            }
            // At the end of this file: wait for more while it is still the
            // writer's current file; else it was rotated, and the rest of
            // the chain is in the files after it.
            let ino = std::fs::metadata(&self.current).map(|m| m.ino()).ok();
            if ino == Some(open.ino) {
                return Ok(out);
            }
            if !open.carry.is_empty() {
                tracing::warn!(
                    bytes = open.carry.len(),
                    "a rotated audit file ends in an incomplete line; it is not shipped"
                );
            }
            finished = Some(open.ino);
            self.open = None;
            if !out.is_empty() {
                return Ok(out);
            }
        }
    }

    /// Opens the file holding seq `next`: the first rotated file whose
    /// last seq is at least it, else the current file.
    fn locate(&self) -> io::Result<Option<Open>> {
        let path = files::rotated(&self.current)
            .into_iter()
            .find(|p| files::last_seq(p).is_some_and(|last| last >= self.next))
            .unwrap_or_else(|| self.current.clone());
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let ino = file.metadata()?.ino();
        Ok(Some(Open {
            file,
            ino,
            carry: Vec::new(),
        }))
    }
}

/// Moves whole lines out of `carry` into `out` (up to `max`), skipping
/// those before `next`.
fn take_lines(carry: &mut Vec<u8>, next: &mut u64, out: &mut Vec<Line>, max: usize) {
    let mut start = 0;
    while out.len() < max {
        let Some(end) = memchr::memchr(b'\n', &carry[start..]).map(|i| start + i) else {
            break;
        };
        let line = &carry[start..end];
        start = end + 1;
        let Some(seq) = seq_of(line) else {
            // Not a sealed record (the chain check says so): shipped as
            // the record after the one before it, so the break is seen.
            out.push(Line {
                seq: *next,
                text: String::from_utf8_lossy(line).into_owned(),
            });
            *next += 1;
            continue;
        };
        if seq < *next {
            continue;
        }
        out.push(Line {
            seq,
            text: String::from_utf8_lossy(line).into_owned(),
        });
        *next = seq + 1;
    }
    carry.drain(..start);
}

/// The seq of a sealed line (`{"seq":N,…`), without parsing the rest.
fn seq_of(line: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(b"{\"seq\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(tail: &mut Tail) -> Vec<u64> {
        tail.read(100).unwrap().into_iter().map(|l| l.seq).collect()
    }

    #[test]
    fn whole_lines_in_order_across_rotation_from_any_seq() {
        let dir = std::env::temp_dir().join(format!("airlock-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let current = dir.join("audit.jsonl");
        let rec = |seq: u64| format!("{{\"seq\":{seq},\"prev\":\"x\"}}\n");
        std::fs::write(&current, rec(1) + &rec(2) + "{\"seq\":3,\"pr").unwrap();
        let mut tail = Tail::new(&current, 2);
        assert_eq!(lines(&mut tail), [2], "seq 1 skipped, the half line waits");
        // The writer finishes the line, writes another, and rotates.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&current)
            .unwrap();
        std::io::Write::write_all(&mut f, b"ev\":\"x\"}\n").unwrap();
        std::io::Write::write_all(&mut f, rec(4).as_bytes()).unwrap();
        std::fs::rename(&current, files::rotated_name(&current, 4)).unwrap();
        std::fs::write(&current, rec(5)).unwrap();
        assert_eq!(lines(&mut tail), [3, 4]);
        assert_eq!(lines(&mut tail), [5]);
        assert!(lines(&mut tail).is_empty());
        // A reader starting over finds seq 3 in the rotated file.
        let mut again = Tail::new(&current, 3);
        assert_eq!(lines(&mut again), [3, 4]);
        assert_eq!(lines(&mut again), [5]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
