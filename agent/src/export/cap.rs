//! Fitting a record's JSON into a message's budget without ever breaking
//! it: the bulkiest, least identifying parts go first — body excerpts and
//! model text, then headers, queries, command lines and lists, then long
//! strings are cut — and a record that had to lose anything says
//! `"truncated": true`. Who did what, where and with what outcome is kept
//! to the last.

use serde_json::Value;

/// What goes first: text copied out of bodies and prompts, which the
/// local trail keeps whole.
const EXCERPTS: &[&[&str]] = &[
    &["request", "body", "excerpt"],
    &["response", "body", "excerpt"],
    &["prompt", "messages"],
    &["prompt", "system", "head"],
    &["output", "text"],
];

/// Then the other bulky fields.
const BULKY: &[&[&str]] = &[
    &["request", "headers"],
    &["response", "headers"],
    &["request", "query"],
    &["request", "inner"],
    &["process", "cmdline"],
    &["output", "tool_calls"],
    &["prompt", "tools"],
    &["identity", "groups"],
    &["identity", "roles"],
    &["identity", "also"],
    &["detail"],
];

/// Strings cut to this many bytes in the third step.
const SHORT: usize = 256;

/// What a record comes down to when nothing else fits: its place in the
/// trail and what it is.
const SKELETON: &[&str] = &[
    "seq", "ts", "kind", "phase", "event", "id", "session", "origin",
];

/// `record` as JSON of at most `budget` bytes where it can be, and whether
/// anything was left out.
pub(super) fn fit(record: &Value, budget: usize) -> (String, bool) {
    let whole = record.to_string();
    if whole.len() <= budget {
        return (whole, false);
    }
    let mut r = record.clone();
    if let Some(o) = r.as_object_mut() {
        o.insert("truncated".into(), Value::Bool(true));
    }
    for step in [EXCERPTS, BULKY] {
        for path in step {
            remove(&mut r, path);
        }
        let text = r.to_string();
        if text.len() <= budget {
            return (text, true);
        }
    }
    shorten(&mut r);
    let text = r.to_string();
    if text.len() <= budget {
        return (text, true);
    }
    let mut skeleton = serde_json::Map::new();
    for key in SKELETON {
        if let Some(v) = r.get(*key) {
            skeleton.insert((*key).into(), v.clone());
        }
    }
    skeleton.insert("truncated".into(), Value::Bool(true));
    // The smallest it can be; a cap (≥ 2048 bytes) always holds it.
    (Value::Object(skeleton).to_string(), true)
}

fn remove(record: &mut Value, path: &[&str]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = record;
    for p in parents {
        match at.get_mut(*p) {
            Some(next) => at = next,
            None => return,
        }
    }
    if let Some(o) = at.as_object_mut() {
        o.remove(*last);
    }
}

/// Every string longer than [`SHORT`] cut (on a character boundary, with
/// `…`), every array to its first 16 items.
fn shorten(v: &mut Value) {
    match v {
        Value::String(s) if s.len() > SHORT => {
            let mut end = SHORT;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s.truncate(end);
            s.push('…');
        }
        Value::Array(a) => {
            a.truncate(16);
            a.iter_mut().for_each(shorten);
        }
        Value::Object(o) => o.values_mut().for_each(shorten),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn exchange(excerpt: usize, header: usize) -> Value {
        json!({"seq": 9, "ts": "2025-01-02T03:04:05.123456789Z", "kind": "http",
            "phase": "response", "id": "e1", "origin": {"host": "h", "trail": "ab"},
            "process": {"pid": 4, "comm": "curl", "cmdline": "curl https://x"},
            "request": {"method": "POST", "host": "management.azure.com",
                "headers": {"x-pad": "h".repeat(header)},
                "body": {"bytes": excerpt, "excerpt": "é".repeat(excerpt / 2)}},
            "response": {"status": 200, "body": {"excerpt": "r".repeat(excerpt)}},
            "decision": {"action": "allow"}})
    }

    #[test]
    fn a_record_that_fits_is_left_whole() {
        let r = exchange(10, 10);
        let (text, cut) = fit(&r, 4096);
        assert!(!cut);
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), r);
    }

    #[test]
    fn excerpts_go_first_and_the_rest_stays() {
        let (text, cut) = fit(&exchange(3000, 100), 2048);
        assert!(cut && text.len() <= 2048, "{}", text.len());
        let r: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(r["truncated"], true);
        assert!(r["request"]["body"].get("excerpt").is_none());
        assert!(r["response"]["body"].get("excerpt").is_none());
        assert_eq!(r["request"]["body"]["bytes"], 3000, "the body's size stays");
        assert_eq!(
            r["request"]["headers"]["x-pad"].as_str().unwrap().len(),
            100
        );
        assert_eq!(r["process"]["cmdline"], "curl https://x");
    }

    #[test]
    fn then_bulky_fields_then_long_strings_then_all_but_its_place() {
        let (text, _) = fit(&exchange(10, 3000), 2048);
        let r: Value = serde_json::from_str(&text).unwrap();
        assert!(r["request"].get("headers").is_none());
        assert!(r["process"].get("cmdline").is_none());
        assert_eq!(r["decision"]["action"], "allow");

        let mut long = exchange(10, 10);
        long["request"]["path"] = json!(format!("/{}", "p".repeat(5000)));
        let (text, _) = fit(&long, 2048);
        let r: Value = serde_json::from_str(&text).unwrap();
        assert!(r["request"]["path"].as_str().unwrap().ends_with('…'));
        assert_eq!(r["response"]["status"], 200);

        let mut wide = exchange(10, 10);
        wide["request"]["operation"] =
            json!((0..2000).map(|i| format!("k{i}")).collect::<Vec<_>>());
        wide["request"]["more"] = json!(
            (0..200)
                .map(|i| json!({format!("k{i}"): "v".repeat(200)}))
                .collect::<Vec<_>>()
        );
        let (text, cut) = fit(&wide, 2048);
        assert!(cut && text.len() <= 2048, "{}", text.len());
        let r: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            (r["seq"].as_u64(), r["kind"].as_str()),
            (Some(9), Some("http"))
        );
        assert_eq!(r["origin"]["trail"], "ab");
    }
}
