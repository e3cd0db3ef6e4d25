use std::collections::VecDeque;
use std::io::Write;

use http_body_util::BodyExt;

use super::*;

/// A body that yields the given chunks, each as one frame.
struct Chunks(VecDeque<Bytes>);

impl HttpBody for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.0.pop_front().map(|c| Ok(Frame::data(c))))
    }
}

fn chunks(data: &[u8], size: usize) -> Chunks {
    Chunks(data.chunks(size).map(Bytes::copy_from_slice).collect())
}

/// Every frame's length and the whole decoded body.
async fn decode(encoding: &str, body: Chunks) -> Result<(Vec<usize>, Vec<u8>), BoxError> {
    let decoder = Decoder::new(Some(encoding)).unwrap().unwrap();
    let mut d = Decoded::new(body, Some(decoder));
    let (mut sizes, mut all) = (Vec::new(), Vec::new());
    while let Some(frame) = d.frame().await {
        let data = frame?.into_data().unwrap();
        sizes.push(data.len());
        all.extend_from_slice(&data);
    }
    assert!(d.is_end_stream());
    Ok((sizes, all))
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn raw_deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn brotli(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut w = ::brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
        w.write_all(data).unwrap();
    }
    out
}

const BODY: &str = r#"{"keys":[{"keyName":"key1","value":"not a real key","permissions":"FULL"}]}"#;

#[tokio::test]
async fn every_coding_decodes_whatever_the_chunking() {
    for (enc, data) in [
        ("gzip", gzip(BODY.as_bytes())),
        ("x-gzip", gzip(BODY.as_bytes())),
        ("deflate", zlib(BODY.as_bytes())),
        // Some servers send raw deflate under "deflate".
        ("deflate", raw_deflate(BODY.as_bytes())),
        ("br", brotli(BODY.as_bytes())),
        ("BR", brotli(BODY.as_bytes())),
    ] {
        for size in [1, 5, data.len()] {
            let (_, out) = decode(enc, chunks(&data, size))
                .await
                .unwrap_or_else(|e| panic!("{enc} in chunks of {size}: {e}"));
            assert_eq!(out, BODY.as_bytes(), "{enc} in chunks of {size}");
        }
    }
}

#[tokio::test]
async fn concatenated_gzip_members_all_decode() {
    let mut data = gzip(b"first ");
    data.extend(gzip(b"second"));
    let (_, out) = decode("gzip", chunks(&data, 7)).await.unwrap();
    assert_eq!(out, b"first second");
}

#[tokio::test]
async fn truncated_or_corrupt_input_is_an_error() {
    for (enc, data) in [
        ("gzip", gzip(BODY.as_bytes())),
        ("br", brotli(BODY.as_bytes())),
    ] {
        let half = &data[..data.len() / 2];
        assert!(decode(enc, chunks(half, 3)).await.is_err(), "{enc}");
    }
    let mut bad = gzip(BODY.as_bytes());
    bad[12] ^= 0xff;
    assert!(decode("gzip", chunks(&bad, 8)).await.is_err());
}

#[test]
fn identity_is_no_decoder_and_unknown_codings_are_refused() {
    assert!(Decoder::new(None).unwrap().is_none());
    assert!(Decoder::new(Some("identity")).unwrap().is_none());
    for enc in ["zstd", "gzip, br", "compress"] {
        assert!(
            matches!(Decoder::new(Some(enc)), Err(DecodeError::Unsupported(_))),
            "{enc}"
        );
    }
}

#[tokio::test]
async fn a_decompression_bomb_streams_in_bounded_frames() {
    const TOTAL: usize = 64 << 20;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let block = vec![0u8; 1 << 20];
    for _ in 0..TOTAL / block.len() {
        e.write_all(&block).unwrap();
    }
    let gz = e.finish().unwrap();
    assert!(gz.len() < TOTAL / 500, "a bomb: {} bytes", gz.len());
    let decoder = Decoder::new(Some("gzip")).unwrap().unwrap();
    let mut d = Decoded::new(chunks(&gz, 16 * 1024), Some(decoder));
    let (mut total, mut largest) = (0, 0);
    while let Some(frame) = d.frame().await {
        let n = frame.unwrap().into_data().unwrap().len();
        total += n;
        largest = largest.max(n);
    }
    assert_eq!(total, TOTAL);
    // One step plus the decoder's own buffer (32 KiB), never the body.
    assert!(largest <= DECODE_STEP + 64 * 1024, "{largest}");
}

#[tokio::test]
async fn re_encoding_flushes_every_frame_and_round_trips() {
    for enc in ["gzip", "deflate"] {
        let parts = ["{\"type\":\"ADDED\"}\n", "{\"type\":\"MODIFIED\"}\n"];
        let body = Chunks(
            parts
                .iter()
                .map(|p| Bytes::from_static(p.as_bytes()))
                .collect(),
        );
        let mut e = Encoded::new(body, Encoder::new(enc));
        let mut frames = Vec::new();
        while let Some(frame) = e.frame().await {
            frames.push(frame.unwrap().into_data().unwrap());
        }
        assert!(e.is_end_stream());
        // One frame per event (a WATCH is not held back), then the trailer.
        assert_eq!(frames.len(), parts.len() + 1, "{enc}");
        let coded: Vec<u8> = frames.concat();
        let decoder = Decoder::new(Some(enc)).unwrap().unwrap();
        let out = decode_with(decoder, chunks(&coded, 3)).await;
        assert_eq!(out, parts.concat().as_bytes(), "{enc}");
    }
    assert!(Encoder::new("br").is_none(), "br is relayed decoded");
}

async fn decode_with(decoder: Decoder, body: Chunks) -> Vec<u8> {
    let mut d = Decoded::new(body, Some(decoder));
    let mut all = Vec::new();
    while let Some(frame) = d.frame().await {
        all.extend_from_slice(&frame.unwrap().into_data().unwrap());
    }
    all
}
