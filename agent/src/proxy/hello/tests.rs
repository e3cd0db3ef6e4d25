use super::*;

async fn sniff_all(bytes: &[u8], chunk: usize) -> (Result<Sniffed, HelloError>, usize) {
    let (mut tx, mut rx) = tokio::io::duplex(1 << 20);
    let owned = bytes.to_vec();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        for c in owned.chunks(chunk) {
            tx.write_all(c).await.unwrap();
            tokio::task::yield_now().await;
        }
    });
    let mut buf = BytesMut::new();
    let r = sniff(&mut rx, &mut buf).await;
    (r, buf.len())
}

#[tokio::test]
async fn reads_sni_and_alpn_from_a_real_hello_byte_by_byte() {
    let hello = real_hello("Management.Azure.com", &[b"h2", b"http/1.1"]);
    let (r, kept) = sniff_all(&hello, 1).await;
    let Sniffed::Tls(info) = r.unwrap() else {
        panic!("not TLS")
    };
    assert_eq!(info.sni.as_deref(), Some("management.azure.com"));
    assert_eq!(info.alpn, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
    assert_eq!(kept, hello.len(), "every byte read is kept for replay");
}

#[tokio::test]
async fn reassembles_a_hello_split_across_records() {
    let hello = real_hello("acct.blob.core.windows.net", &[b"http/1.1"]);
    let body = &hello[5..];
    let (a, b) = body.split_at(40);
    let mut split = Vec::new();
    for part in [a, b] {
        split.extend_from_slice(&[22, 3, 1]);
        split.extend_from_slice(&(part.len() as u16).to_be_bytes());
        split.extend_from_slice(part);
    }
    let (r, _) = sniff_all(&split, 7).await;
    let Sniffed::Tls(info) = r.unwrap() else {
        panic!("not TLS")
    };
    assert_eq!(info.sni.as_deref(), Some("acct.blob.core.windows.net"));
}

#[tokio::test]
async fn plain_http_is_not_tls() {
    let (r, kept) = sniff_all(b"GET / HTTP/1.1\r\n\r\n", 64).await;
    assert_eq!(r.unwrap(), Sniffed::NotTls);
    assert!(kept > 0);
}

#[tokio::test]
async fn truncated_and_malformed_hellos_are_errors() {
    let hello = real_hello("x.azure.com", &[]);
    let (r, _) = sniff_all(&hello[..hello.len() - 3], 64).await;
    assert!(matches!(r, Err(HelloError::Truncated)), "{r:?}");
    let (r, _) = sniff_all(b"", 1).await;
    assert!(matches!(r, Err(HelloError::Closed)), "{r:?}");
    // A handshake record whose message claims lengths it does not have.
    let bad = [22, 3, 1, 0, 8, 1, 0, 0, 4, 3, 3, 0xff, 0xff];
    let (r, _) = sniff_all(&bad, 64).await;
    assert!(matches!(r, Err(HelloError::Malformed(_))), "{r:?}");
    let not_hello = [22, 3, 1, 0, 4, 2, 0, 0, 0];
    let (r, _) = sniff_all(&not_hello, 64).await;
    assert!(matches!(r, Err(HelloError::Malformed(_))), "{r:?}");
}

/// Found by the `client_hello` fuzz target: a server name with a NUL in
/// it was handed on. Only host names (and IP literals) are.
#[tokio::test]
async fn a_server_name_that_is_no_host_name_is_malformed() {
    let hello = real_hello("management.azure.com", &[]);
    let at = hello
        .windows(20)
        .position(|w| w == b"management.azure.com")
        .unwrap();
    for bad in [b'\0', b' ', b'\n', b'/'] {
        let mut forged = hello.clone();
        forged[at + 10] = bad;
        let (r, _) = sniff_all(&forged, 64).await;
        assert!(
            matches!(r, Err(HelloError::Malformed("SNI is not a host name"))),
            "{bad:?}: {r:?}"
        );
    }
}
