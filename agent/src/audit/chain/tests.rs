use super::*;

fn chain(n: u64) -> String {
    let mut prev = GENESIS.to_owned();
    let mut out = Vec::new();
    for seq in 1..=n {
        let body = serde_json::json!({ "kind": "http", "request": { "path": format!("/r/{seq}"), "method": "GET" } });
        prev = seal(&mut out, b"", body.to_string().as_bytes(), seq, &prev);
    }
    String::from_utf8(out).unwrap()
}

fn broken_at(text: &str) -> usize {
    verify_bytes(text.as_bytes(), None).unwrap_err().line
}

#[test]
fn an_untouched_chain_verifies() {
    let text = chain(5);
    let head = verify_bytes(text.as_bytes(), None).unwrap().unwrap();
    assert_eq!(head.seq, 5);
    assert!(verify_bytes(b"", None).unwrap().is_none());
}

#[test]
fn sealed_lines_are_json_with_the_chain_members() {
    let text = chain(2);
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["seq"], 1);
    assert_eq!(lines[0]["prev"], GENESIS);
    assert_eq!(lines[1]["prev"], lines[0]["hash"]);
    assert_eq!(lines[1]["request"]["path"], "/r/2");
    assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
    // Sealing appends: what is already in the buffer stays.
    let mut line = b"x".to_vec();
    seal(&mut line, b"", b"{}", 7, GENESIS);
    let v: Value = serde_json::from_slice(&line[1..]).unwrap();
    assert_eq!(line[0], b'x');
    assert_eq!(v["seq"], 7);
}

#[test]
fn the_envelope_is_sealed_with_the_record() {
    let mut out = Vec::new();
    let origin = br#""schema":1,"origin":{"host":"runner-1","trail":"t"}"#;
    let h = seal(&mut out, origin, br#"{"kind":"agent"}"#, 1, GENESIS);
    seal(&mut out, origin, br#"{"kind":"agent"}"#, 2, &h);
    let text = String::from_utf8(out).unwrap();
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["origin"]["host"], "runner-1");
    assert_eq!(first["kind"], "agent");
    assert!(verify_bytes(text.as_bytes(), None).is_ok());
    // Saying another host wrote it breaks the chain there.
    assert_eq!(broken_at(&text.replacen("runner-1", "runner-2", 1)), 1);
}

#[test]
fn an_edit_is_caught_at_its_line() {
    assert_eq!(broken_at(&chain(5).replace("/r/3", "/r/9")), 3);
    // Even a change JSON would not notice (spacing) breaks the hash.
    assert_eq!(
        broken_at(&chain(5).replacen("\"method\":\"GET\"", "\"method\": \"GET\"", 2)),
        1
    );
}

#[test]
fn a_deletion_is_caught_at_the_next_line() {
    let full = chain(5);
    let lines: Vec<&str> = full.lines().collect();
    let text = [lines[0], lines[1], lines[3], lines[4]].join("\n") + "\n";
    assert_eq!(broken_at(&text), 3);
}

#[test]
fn a_reordering_is_caught() {
    let text = chain(4);
    let mut lines: Vec<&str> = text.lines().collect();
    lines.swap(1, 2);
    assert_eq!(broken_at(&(lines.join("\n") + "\n")), 2);
}

#[test]
fn truncation_mid_line_is_caught() {
    let text = chain(3);
    let b = verify_bytes(&text.as_bytes()[..text.len() - 10], None).unwrap_err();
    assert_eq!(b.line, 3);
    assert!(b.reason.contains("truncated"), "{}", b.reason);
}

#[test]
fn a_rehashed_edit_still_breaks_the_link() {
    // Someone edits record 2 and recomputes its hash: record 3's prev no
    // longer matches.
    let text = chain(3);
    let lines: Vec<&str> = text.lines().collect();
    let edited = lines[1].replace("/r/2", "/r/x");
    let (canonical, _) = split(edited.as_bytes()).unwrap();
    let v: Value = serde_json::from_slice(&canonical).unwrap();
    let h = hash(v["prev"].as_str().unwrap(), &canonical);
    let forged = format!(
        "{},\"hash\":\"{h}\"}}",
        std::str::from_utf8(&canonical[..canonical.len() - 1]).unwrap()
    );
    let text = [lines[0], forged.as_str(), lines[2]].join("\n") + "\n";
    assert_eq!(broken_at(&text), 3);
}

#[test]
fn chains_continue_across_files() {
    let text = chain(4);
    let lines: Vec<&str> = text.lines().collect();
    let (a, b) = (lines[..2].join("\n") + "\n", lines[2..].join("\n") + "\n");
    let head = verify_bytes(a.as_bytes(), None).unwrap();
    assert_eq!(verify_bytes(b.as_bytes(), head).unwrap().unwrap().seq, 4);
    let wrong = Some(Head {
        hash: GENESIS.into(),
        seq: 2,
    });
    assert_eq!(verify_bytes(b.as_bytes(), wrong).unwrap_err().line, 1);
}

#[test]
fn invalid_utf8_is_a_broken_line_not_an_error() {
    let mut bytes = chain(2).into_bytes();
    let at = bytes.iter().position(|b| *b == b'/').unwrap();
    bytes[at] = 0xff;
    assert_eq!(verify_bytes(&bytes, None).unwrap_err().line, 1);
}

#[test]
fn any_single_byte_change_is_caught_and_nothing_panics() {
    let text = chain(3).into_bytes();
    for at in 0..text.len() {
        let mut bad = text.clone();
        bad[at] ^= 0x20;
        // Every position is covered by a hash, a link or the line framing.
        assert!(
            verify_bytes(&bad, None).is_err(),
            "flip at {at} went unnoticed"
        );
    }
    // Hostile numbers do not overflow.
    let max = format!(
        "{{\"seq\":{},\"prev\":\"{GENESIS}\",\"hash\":\"{GENESIS}\"}}\n",
        u64::MAX
    );
    let head = Some(Head {
        hash: GENESIS.into(),
        seq: u64::MAX,
    });
    assert!(verify_bytes(max.as_bytes(), head).is_err());
}
