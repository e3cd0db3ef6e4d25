use std::io::Write;

use super::*;
use crate::proxy::hello::real_hello;

const LIST_KEYS: &str = "Microsoft.Storage/storageAccounts/listKeys/action";
const ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn list_keys_body() -> String {
    format!(r#"{{"keys":[{{"keyName":"key1","permissions":"FULL","value":"{ACCOUNT_KEY}"}}]}}"#)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn each_entry_point_reads_what_the_data_path_reads() {
    let hello = real_hello("management.azure.com", &[b"h2", b"http/1.1"]);
    assert_eq!(
        client_hello(&hello),
        Some((
            Some("management.azure.com".to_owned()),
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        ))
    );
    assert_eq!(client_hello(&hello[..hello.len() / 2]), None, "incomplete");
    assert_eq!(client_hello(b"GET / HTTP/1.1\r\n\r\n"), None, "not TLS");

    assert_eq!(
        intercept(&["*.azure.com"], "management.azure.com"),
        Ok(true)
    );
    assert_eq!(intercept(&["*.azure.com"], "example.com"), Ok(false));
    assert!(intercept(&["*.azure.com:x"], "a").is_err());

    let path =
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/a/listKeys";
    assert_eq!(
        operation("management.azure.com", "POST", path, Some("api-version=1")).as_deref(),
        Some(LIST_KEYS)
    );
    assert_eq!(operation("management.azure.com", "GE T", "/", None), None);
    assert_eq!(normalize_path("/%73ubscriptions/%2F"), "/subscriptions/%2F");

    let b64 = |v: &str| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
    };
    let token = format!(
        "{}.{}.sig",
        b64(r#"{"alg":"RS256"}"#),
        b64(r#"{"upn":"dev@contoso.com","groups":["g1"]}"#)
    );
    let id = jwt(&token).unwrap();
    assert_eq!(id["upn"], "dev@contoso.com");
    assert_eq!(id["verified"], false);
    assert_eq!(jwt("a.b"), None);
    assert_eq!(
        shared_key("SharedKey acct1:c2ln").unwrap()["account"],
        "acct1"
    );
    assert_eq!(sas("sv=2022-11-02&sp=r&sig=abc").unwrap()["kind"], "sas");
    assert_eq!(sas("a=b"), None);
    assert_eq!(
        form_field(b"a=1&client_assertion=x%2By", "client_assertion").as_deref(),
        Some("x+y")
    );
    assert_eq!(jwks(br#"{"keys":[{"kty":"oct","k":"AA"}]}"#), Some(0));
    assert_eq!(jwks(b"[]"), None);

    assert!(
        detect(ACCOUNT_KEY.as_bytes())
            .iter()
            .any(|d| d.2 == "storage-account-key")
    );
    let body = list_keys_body();
    let whole = mask_response(
        LIST_KEYS,
        Some("application/json"),
        body.as_bytes(),
        1 << 20,
    );
    let (masked, found) = whole.clone().unwrap();
    assert_eq!(found, 1);
    let masked = String::from_utf8(masked).unwrap();
    assert!(!masked.contains(ACCOUNT_KEY), "{masked}");
    let v: Value = serde_json::from_str(&masked).expect("JSON stays JSON");
    assert_eq!(v["keys"][0]["keyName"], "key1");
    for chunk in [1, 7, 64] {
        let (bytes, _) =
            mask_response(LIST_KEYS, Some("application/json"), body.as_bytes(), chunk).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(ACCOUNT_KEY),
            "chunk {chunk}"
        );
    }
    assert_eq!(
        mask_response("x.read", Some("image/png"), b"\x89PNG", 4),
        None
    );
    let (yaml, n) = kubeconfig(
        "users:\n- name: u\n  user:\n    token: abcdefghijklmnopqrstuvwxyz0123456789ABCD\n",
    );
    assert_eq!(n, 1, "{yaml}");
    assert!(!yaml.contains("abcdefghijklmnopqrstuvwxyz0123456789ABCD"));

    let sse = b"data: {\"choices\":[{\"delta\":{\"content\":\"He\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"llo\"}}]}\n\ndata: [DONE]\n\n";
    let (a, b) = sse.split_at(23);
    assert_eq!(model_answer(&[a, b]).0, "Hello");

    assert_eq!(decode("gzip", &gzip(b"hello")).unwrap(), b"hello");
    assert!(decode("gzip", b"not gzip").is_err());
    assert!(decode("zstd", b"x").is_err());
    let bomb = gzip(&vec![0u8; 2 * MAX_DECODED]);
    assert_eq!(decode("gzip", &bomb).unwrap().len(), MAX_DECODED);

    assert!(!redact_query("sig=secretsig&sv=1").contains("secretsig"));
    assert!(!redact_cmdline("az login --password hunter2").contains("hunter2"));
    let headers = redact_headers("Authorization: Bearer abc.def.ghi\nx-ms-version: 2022");
    assert!(
        headers.iter().all(|(_, v)| !v.contains("abc.def.ghi")),
        "{headers:?}"
    );

    assert_eq!(audit_chain(b""), Ok(None));
    assert_eq!(audit_chain(b"{\"seq\":1}\n"), Err(1));
    assert_eq!(proc_stat_ppid("42 (a) b) c) S 7 42 42 0"), Some(7));
    assert_eq!(
        proc_cmdline(b"curl\0-s\0https://x/\0"),
        "curl -s https://x/"
    );
    assert_eq!(
        mountinfo_cgroup2("30 24 0:26 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"),
        Some(PathBuf::from("/sys/fs/cgroup/unified"))
    );
    assert_eq!(
        users(
            "alice:x:1000:1000::/:/bin/sh\n",
            "sre:x:2000:alice\n",
            1000,
            "sre"
        ),
        (Some("alice".to_owned()), true)
    );
    assert_eq!(
        policy("[[rule]]\nname = \"r\"\naction = \"deny\"\nreason = \"no\"\n"),
        Ok(1)
    );
    assert!(
        policy("[[rule]]\nname = 1\n")
            .unwrap_err()
            .contains("fuzz.toml:2")
    );
    assert_eq!(config(""), Ok(()));
    assert!(
        config("[capture]\n\nbogus = 1\n")
            .unwrap_err()
            .contains("fuzz.toml:3")
    );
}

/// xorshift64*: the same inputs on every run, so a failure replays.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A valid sample with a few bytes changed, cut short or grown.
    fn mutate(&mut self, sample: &[u8]) -> Vec<u8> {
        let mut out = sample.to_vec();
        for _ in 0..=self.next() % 4 {
            let at = (self.next() as usize) % (out.len() + 1);
            match self.next() % 3 {
                0 if at < out.len() => out[at] = self.next() as u8,
                1 => out.truncate(at),
                _ => out.insert(at, self.next() as u8),
            }
        }
        out
    }
}

#[test]
fn no_entry_point_panics_on_mangled_input() {
    let hello = real_hello("acct1.blob.core.windows.net", &[b"h2"]);
    let body = list_keys_body();
    let gz = gzip(body.as_bytes());
    let samples: [&[u8]; 6] = [
        &hello,
        body.as_bytes(),
        &gz,
        b"data: {\"choices\":[{\"delta\":{\"content\":\"x\",\"tool_calls\":[{\"index\":0}]}}]}\n\n",
        b"sv=2022&sig=a%2Bb&se=2030-01-01T00:00:00Z&skoid=x",
        b"[[rule]]\nname = \"r\"\naction = \"approve\"\nreason = \"x\"\n[rule.when]\noperation = [\"*\"]\n",
    ];
    let mut noise = Noise(0x9E37_79B9_7F4A_7C15);
    for round in 0..400 {
        let sample = samples[round % samples.len()];
        let data = noise.mutate(sample);
        let text = String::from_utf8_lossy(&data);
        let _ = client_hello(&data);
        let _ = intercept(&[&text], &text);
        let _ = operation(&text, "GET", &text, Some(&text));
        let _ = normalize_path(&text);
        let _ = jwt(&text);
        let _ = shared_key(&text);
        let _ = sas(&text);
        let _ = form_field(&data, "client_assertion");
        let _ = jwks(&data);
        let _ = detect(&data);
        let chunk = 1 + (noise.next() % 97) as usize;
        if let Some((out, _)) = mask_response(LIST_KEYS, Some("application/json"), &data, chunk)
            && serde_json::from_slice::<Value>(&data).is_ok()
        {
            serde_json::from_slice::<Value>(&out).expect("JSON in, JSON out");
        }
        let _ = kubeconfig(&text);
        let (a, b) = data.split_at(data.len() / 2);
        let _ = model_answer(&[a, b]);
        for coding in ["gzip", "deflate", "br"] {
            if let Ok(out) = decode(coding, &data) {
                assert!(out.len() <= MAX_DECODED);
            }
        }
        let _ = redact_query(&text);
        let _ = redact_cmdline(&text);
        let _ = redact_headers(&text);
        let _ = audit_chain(&data);
        let _ = proc_stat_ppid(&text);
        let _ = proc_cmdline(&data);
        let _ = mountinfo_cgroup2(&text);
        let _ = users(&text, &text, 0, &text);
        let _ = policy(&text);
        let _ = config(&text);
    }
}
