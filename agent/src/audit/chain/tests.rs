use super::*;

fn chain(n: u64) -> String {
    let mut prev = GENESIS.to_owned();
    let mut out = String::new();
    for seq in 1..=n {
        let mut m = Map::new();
        m.insert("kind".into(), "http".into());
        m.insert(
            "request".into(),
            serde_json::json!({ "path": format!("/r/{seq}"), "method": "GET" }),
        );
        let (line, h) = seal(m, seq, &prev);
        out.push_str(std::str::from_utf8(&line).unwrap());
        prev = h;
    }
    out
}

fn broken_at(text: &str) -> usize {
    verify_text(text, None).unwrap_err().line
}

#[test]
fn an_untouched_chain_verifies() {
    let text = chain(5);
    let head = verify_text(&text, None).unwrap().unwrap();
    assert_eq!(head.seq, 5);
    assert!(verify_text("", None).unwrap().is_none());
}

#[test]
fn an_edit_is_caught_at_its_line() {
    let text = chain(5).replace("/r/3", "/r/9");
    assert_eq!(broken_at(&text), 3);
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
    let cut = &text[..text.len() - 10];
    let b = verify_text(cut, None).unwrap_err();
    assert_eq!(b.line, 3);
    assert!(b.reason.contains("truncated"), "{}", b.reason);
}

#[test]
fn a_rehashed_edit_still_breaks_the_link() {
    // Someone edits record 2 and recomputes its hash: record 3's prev no
    // longer matches.
    let text = chain(3);
    let lines: Vec<&str> = text.lines().collect();
    let mut r2: Map<String, Value> = serde_json::from_str(lines[1]).unwrap();
    r2.insert("kind".into(), "agent".into());
    r2.remove("hash");
    let prev = r2["prev"].as_str().unwrap().to_owned();
    let h = hash(&prev, &r2);
    r2.insert("hash".into(), h.into());
    let forged = [
        lines[0].to_owned(),
        Value::Object(r2).to_string(),
        lines[2].to_owned(),
    ]
    .join("\n")
        + "\n";
    assert_eq!(broken_at(&forged), 3);
}

#[test]
fn chains_continue_across_files() {
    let text = chain(4);
    let lines: Vec<&str> = text.lines().collect();
    let (a, b) = (lines[..2].join("\n") + "\n", lines[2..].join("\n") + "\n");
    let head = verify_text(&a, None).unwrap();
    assert_eq!(verify_text(&b, head).unwrap().unwrap().seq, 4);
    // The second file alone, after the wrong head, breaks at its first line.
    let wrong = Some(Head {
        hash: GENESIS.into(),
        seq: 2,
    });
    assert_eq!(verify_text(&b, wrong).unwrap_err().line, 1);
}

#[test]
fn canonical_sorts_keys_at_every_level() {
    // Guards the assumption that serde_json's Map is ordered by key (the
    // `preserve_order` feature would silently break verification).
    let v: Value = serde_json::from_str(r#"{"z":1,"a":{"y":2,"b":[{"d":1,"c":2}]}}"#).unwrap();
    let Value::Object(m) = v else { unreachable!() };
    assert_eq!(canonical(&m), r#"{"a":{"b":[{"c":2,"d":1}],"y":2},"z":1}"#);
}

#[test]
fn sealed_lines_are_json_with_the_hash() {
    let mut m = Map::new();
    m.insert("kind".into(), "agent".into());
    let (line, h) = seal(m, 1, GENESIS);
    let v: Value = serde_json::from_slice(&line).unwrap();
    assert_eq!(v["hash"], h.as_str());
    assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
}
