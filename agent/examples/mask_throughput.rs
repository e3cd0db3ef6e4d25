//! Masking throughput on one core, for `cargo xtask bench`: 1 MiB bodies
//! pushed through a response masker in 16 KiB chunks (the size hyper hands
//! over), the median of several timed runs per case. Prints one line per
//! case: `name<TAB>MB/s<TAB>findings per body`, or `not-scanned` for a
//! content type airlock does not scan.
//!
//! Usage: mask_throughput [SECONDS_PER_CASE] [RUNS]

use std::time::{Duration, Instant};

use airlock::Masker;
use bytes::Bytes;

const BODY: usize = 1 << 20;
const CHUNK: usize = 16 * 1024;

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1.0);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let masker = Masker::ephemeral();
    let cases: [(&str, &str, Vec<u8>); 4] = [
        ("json-arm-list", "application/json", arm_list(None)),
        (
            "json-arm-list-with-secrets",
            "application/json",
            arm_list(Some(64)),
        ),
        ("text-log", "text/plain", log_lines()),
        ("binary-octet-stream", "application/octet-stream", noise()),
    ];
    for (name, content_type, body) in cases {
        if masker.response("http.get", Some(content_type)).is_none() {
            println!("{name}\tnot-scanned\t0");
            continue;
        }
        let chunks: Vec<Bytes> = body.chunks(CHUNK).map(Bytes::copy_from_slice).collect();
        let mut rates = Vec::new();
        let mut found = 0;
        for _ in 0..runs {
            let started = Instant::now();
            let mut bodies = 0u64;
            while started.elapsed() < Duration::from_secs_f64(seconds / runs as f64) {
                let mut m = masker
                    .response("http.get", Some(content_type))
                    .expect("scanned type");
                let mut out = 0;
                for c in &chunks {
                    out += m.push(c).len();
                }
                out += m.finish().len();
                assert!(out >= body.len() / 2, "output lost");
                found = m.findings().count;
                bodies += 1;
            }
            let secs = started.elapsed().as_secs_f64();
            rates.push(bodies as f64 * BODY as f64 / secs / 1e6);
        }
        rates.sort_by(f64::total_cmp);
        println!("{name}\t{:.0}\t{found}", rates[rates.len() / 2]);
    }
}

/// An ARM list of storage accounts, about 1 MiB; with `Some(n)`, every
/// n-th account carries a connection string in its tags.
fn arm_list(secret_every: Option<usize>) -> Vec<u8> {
    let mut out = String::from("{\"value\":[");
    let mut i = 0;
    while out.len() < BODY - 2048 {
        if i > 0 {
            out.push(',');
        }
        let tag = match secret_every {
            Some(n) if i % n == 0 => format!(
                "DefaultEndpointsProtocol=https;AccountName=acct{i};AccountKey={};EndpointSuffix=core.windows.net",
                key(i)
            ),
            _ => "platform".to_owned(),
        };
        out.push_str(&format!(
            r#"{{"id":"/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/rg-{i}/providers/Microsoft.Storage/storageAccounts/acct{i}","name":"acct{i}","type":"Microsoft.Storage/storageAccounts","location":"westeurope","tags":{{"team":"{tag}"}},"sku":{{"name":"Standard_LRS","tier":"Standard"}},"kind":"StorageV2","properties":{{"provisioningState":"Succeeded","creationTime":"2026-10-01T08:00:00.0000000Z","primaryEndpoints":{{"blob":"https://acct{i}.blob.core.windows.net/","queue":"https://acct{i}.queue.core.windows.net/"}},"encryption":{{"keySource":"Microsoft.Storage"}},"etag":"\"0x8DCF2A1B3C4D5E6\""}}}}"#
        ));
        i += 1;
    }
    out.push_str("]}");
    out.into_bytes()
}

/// An 88-character base64 storage account key, distinct per `i`.
fn key(i: usize) -> String {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut k: String = (0..86)
        .map(|j| alphabet[(i * 31 + j * 7) % 64] as char)
        .collect();
    k.push_str("==");
    k
}

/// Build-log lines, about 1 MiB.
fn log_lines() -> Vec<u8> {
    let mut out = String::new();
    let mut i = 0;
    while out.len() < BODY {
        out.push_str(&format!(
            "2026-11-28T10:{:02}:{:02}Z [info] step {i}: compiled crate airlock v0.1.0 in 1.{i}s (target x86_64-unknown-linux-gnu)\n",
            (i / 60) % 60,
            i % 60
        ));
        i += 1;
    }
    out.into_bytes()
}

/// Pseudo-random bytes, 1 MiB.
fn noise() -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..BODY)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
