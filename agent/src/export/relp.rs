//! RELP, the Reliable Event Logging Protocol (rsyslog's `imrelp`): every
//! message is a numbered transaction the receiver answers with
//! `rsp 200` once it has taken it, so delivery is proven message by
//! message. Frames are `TXNR SP COMMAND SP DATALEN [SP DATA] LF`.

use std::collections::HashMap;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::ExportError;
use super::link::{Reader, Writer, io_timeout};

/// What airlock offers when it opens a session: version 0 of the
/// protocol, and the one command it sends.
const OFFERS: &str = "relp_version=0\nrelp_software=airlock\ncommands=syslog";
/// Transaction numbers run 1 … 999 999 999, then wrap.
const MAX_TXNR: u32 = 999_999_999;
/// The largest answer a receiver may send (an `open` response lists its
/// offers; anything larger is not RELP).
const MAX_ANSWER: usize = 64 * 1024;

/// One parsed frame.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Frame {
    pub(super) txnr: u32,
    pub(super) command: String,
    pub(super) data: Vec<u8>,
}

impl Frame {
    /// The status code of a `rsp` frame's data (`200 OK…`).
    fn code(&self) -> Option<u16> {
        std::str::from_utf8(self.data.get(..3)?).ok()?.parse().ok()
    }
}

/// Appends one frame to `out`.
pub(super) fn encode(txnr: u32, command: &str, data: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("{txnr} {command} {}", data.len()).as_bytes());
    if !data.is_empty() {
        out.push(b' ');
        out.extend_from_slice(data);
    }
    out.push(b'\n');
}

/// The first whole frame in `buf` and the bytes it takes; `None` while it
/// is incomplete.
pub(super) fn parse(buf: &[u8]) -> Result<Option<(Frame, usize)>, ExportError> {
    let bad = |why: &str| ExportError::Protocol(format!("RELP: {why}"));
    let mut at = 0;
    let Some(txnr) = field(buf, &mut at, 9, |b| b.is_ascii_digit())? else {
        return Ok(None);
    };
    let txnr = number(txnr).ok_or_else(|| bad("no transaction number"))? as u32;
    let Some(command) = field(buf, &mut at, 32, |b| b.is_ascii_alphabetic())? else {
        return Ok(None);
    };
    if command.is_empty() {
        return Err(bad("a frame without its command"));
    }
    let command = String::from_utf8_lossy(command).into_owned();
    let Some(len) = field(buf, &mut at, 9, |b| b.is_ascii_digit())? else {
        return Ok(None);
    };
    let len = number(len).ok_or_else(|| bad("no data length"))?;
    if len > MAX_ANSWER {
        return Err(bad("an answer larger than any RELP answer"));
    }
    // After the length: the trailer (no data), or a space and the data
    // (`field` stepped over the space; it stays on a newline).
    let data_at = at;
    if len > 0 && buf[at - 1] != b' ' {
        return Err(bad("data length without data"));
    }
    if buf.len() < data_at + len + 1 {
        return Ok(None);
    }
    if buf[data_at + len] != b'\n' {
        return Err(bad("a frame without its trailer"));
    }
    let frame = Frame {
        txnr,
        command,
        data: buf[data_at..data_at + len].to_vec(),
    };
    Ok(Some((frame, data_at + len + 1)))
}

/// The header field at `*at` (at most `max` bytes, each `ok`), up to the
/// space or newline after it; `*at` moves past a space, stays on a
/// newline. `None` while the field is incomplete.
fn field<'a>(
    buf: &'a [u8],
    at: &mut usize,
    max: usize,
    ok: fn(u8) -> bool,
) -> Result<Option<&'a [u8]>, ExportError> {
    let start = *at;
    let mut end = start;
    while end < buf.len() && buf[end] != b' ' && buf[end] != b'\n' {
        if !ok(buf[end]) || end - start >= max {
            return Err(ExportError::Protocol("RELP: malformed frame header".into()));
        }
        end += 1;
    }
    if end == buf.len() {
        return Ok(None);
    }
    *at = if buf[end] == b' ' { end + 1 } else { end };
    Ok(Some(&buf[start..end]))
}

fn number(digits: &[u8]) -> Option<usize> {
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// An open RELP session: the messages in flight by transaction number.
pub(super) struct Relp {
    reader: Reader,
    writer: Writer,
    buf: Vec<u8>,
    next: u32,
    /// Transaction → the caller's key for the message it carries.
    in_flight: HashMap<u32, u64>,
}

impl Relp {
    /// Opens a session over a connected stream: `open` answered by `200`.
    pub(super) async fn open(reader: Reader, writer: Writer) -> Result<Self, ExportError> {
        let mut relp = Self {
            reader,
            writer,
            buf: Vec::new(),
            next: 1,
            in_flight: HashMap::new(),
        };
        let txnr = relp.send_frame("open", OFFERS.as_bytes()).await?;
        let answer = io_timeout("RELP open", relp.frame()).await?;
        if answer.txnr != txnr || answer.command != "rsp" || answer.code() != Some(200) {
            return Err(ExportError::Protocol(format!(
                "RELP: the receiver refused the session: {}",
                String::from_utf8_lossy(&answer.data)
            )));
        }
        Ok(relp)
    }

    async fn send_frame(&mut self, command: &str, data: &[u8]) -> Result<u32, ExportError> {
        let txnr = self.next;
        self.next = if txnr == MAX_TXNR { 1 } else { txnr + 1 };
        let mut out = Vec::with_capacity(data.len() + 32);
        encode(txnr, command, data, &mut out);
        io_timeout("write", self.writer.write_all(&out)).await?;
        Ok(txnr)
    }

    /// Sends one syslog message; `key` comes back when it is answered.
    pub(super) async fn send(&mut self, key: u64, message: &[u8]) -> Result<(), ExportError> {
        let txnr = self.send_frame("syslog", message).await?;
        self.in_flight.insert(txnr, key);
        Ok(())
    }

    /// The next frame from the receiver (cancel-safe: what was read stays
    /// in the buffer).
    async fn frame(&mut self) -> Result<Frame, ExportError> {
        loop {
            if let Some((frame, used)) = parse(&self.buf)? {
                self.buf.drain(..used);
                return Ok(frame);
            }
            if self.reader.read_buf(&mut self.buf).await? == 0 {
                return Err(ExportError::Closed);
            }
        }
    }

    /// Waits for the next answer: the key it settles and whether the
    /// receiver took the message (`200`) or refused it for good.
    pub(super) async fn answer(&mut self) -> Result<(u64, bool), ExportError> {
        loop {
            let frame = self.frame().await?;
            match frame.command.as_str() {
                "rsp" => {
                    if let Some(key) = self.in_flight.remove(&frame.txnr) {
                        return Ok((key, frame.code() == Some(200)));
                    }
                }
                "serverclose" => return Err(ExportError::Closed),
                other => {
                    return Err(ExportError::Protocol(format!(
                        "RELP: unexpected {other} from the receiver"
                    )));
                }
            }
        }
    }

    /// Ends the session as RELP says: `close`, answered.
    pub(super) async fn close(mut self) -> Result<(), ExportError> {
        let txnr = self.send_frame("close", b"").await?;
        io_timeout("RELP close", async {
            loop {
                let f = self.frame().await?;
                if f.txnr == txnr || f.command == "serverclose" {
                    return Ok::<(), ExportError>(());
                }
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_encode_as_relp_says() {
        let mut out = Vec::new();
        encode(7, "syslog", b"<14>1 - - a - - - x", &mut out);
        encode(8, "close", b"", &mut out);
        assert_eq!(out, b"7 syslog 19 <14>1 - - a - - - x\n8 close 0\n");
    }

    #[test]
    fn answers_parse_whole_in_pieces_and_garbage_is_refused() {
        let offers = "200 OK\nrelp_version=0\nrelp_software=librelp,1.11.0\ncommands=syslog";
        let stream = format!(
            "1 rsp {} {offers}\n2 rsp 6 200 OK\n0 serverclose 0\n",
            offers.len()
        );
        let stream = stream.as_bytes();
        let (open, used) = parse(stream).unwrap().unwrap();
        assert_eq!((open.txnr, open.command.as_str()), (1, "rsp"));
        assert_eq!(open.code(), Some(200));
        assert!(open.data.ends_with(b"commands=syslog"));
        let (ack, used2) = parse(&stream[used..]).unwrap().unwrap();
        assert_eq!((ack.txnr, ack.data.as_slice()), (2, &b"200 OK"[..]));
        let (close, _) = parse(&stream[used + used2..]).unwrap().unwrap();
        assert_eq!(
            (close.command.as_str(), close.data.len()),
            ("serverclose", 0)
        );
        for cut in 0..used {
            assert!(
                parse(&stream[..cut]).unwrap().is_none(),
                "{cut} bytes: wait"
            );
        }
        let refused = parse(b"3 rsp 16 500 too long, no\n").unwrap().unwrap().0;
        assert_eq!(refused.code(), Some(500));
        for bad in [
            &b"x rsp 6 200 OK\n"[..],
            b"1 r5p 6 200 OK\n",
            b"1 rsp 6 200 OKX",
            b"1 rsp 9999999 ",
            b"1234567890 rsp 0\n",
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
