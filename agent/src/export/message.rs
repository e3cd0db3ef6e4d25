//! One record as one RFC 5424 message:
//!
//! `<PRI>1 TIMESTAMP HOSTNAME airlock - MSGID [airlock@32473 trail="…" seq="…" id="…"] JSON`
//!
//! TIMESTAMP is the record's own `ts` (when it happened, not when it was
//! sent), HOSTNAME its `origin.host`, MSGID its `kind`; the structured
//! data names the record's place in the trail so a receiver can drop a
//! message sent twice; MSG is the record as JSON, without a BOM (RFC 5424
//! allows that; JSON is UTF-8 by definition and a BOM breaks JSON
//! parsers). PROCID is nil: airlock's own pid would mislead for a record
//! an earlier run wrote and this one sends; the process that made the
//! call is `process.pid` in the JSON.
//!
//! 32473 is IANA's private enterprise number reserved for examples in
//! documentation (RFC 5612): a placeholder until airlock has its own, and
//! RFC 5424 allows no SD-ID without one for names it does not define.

use serde_json::Value;

/// The structured data's SD-ID.
pub(super) const SD_ID: &str = "airlock@32473";
const APP_NAME: &str = "airlock";
/// RFC 5424's NILVALUE.
const NIL: &str = "-";

/// RFC 5424 §6.2.1 severities.
const CRITICAL: u8 = 2;
const ERROR: u8 = 3;
const WARNING: u8 = 4;
const NOTICE: u8 = 5;
const INFO: u8 = 6;

/// A formatted message and whether its record had to be cut to fit.
#[derive(Debug)]
pub(super) struct Message {
    pub(super) bytes: Vec<u8>,
    pub(super) truncated: bool,
}

/// `record` as a message of at most `cap` bytes, under `facility`.
pub(super) fn format(record: &Value, facility: u8, cap: usize) -> Message {
    let mut head = format!(
        "<{}>1 {} {} {APP_NAME} {NIL} {} [{SD_ID}",
        u16::from(facility) * 8 + u16::from(severity(record)),
        timestamp(record["ts"].as_str()),
        printable(record["origin"]["host"].as_str(), 255),
        printable(record["kind"].as_str(), 32),
    );
    for (name, value) in [
        (
            "trail",
            record["origin"]["trail"].as_str().map(str::to_owned),
        ),
        ("seq", record["seq"].as_u64().map(|s| s.to_string())),
        ("id", record["id"].as_str().map(str::to_owned)),
    ] {
        if let Some(v) = value {
            head.push(' ');
            head.push_str(name);
            head.push_str("=\"");
            escape_param(&v, &mut head);
            head.push('"');
        }
    }
    head.push_str("] ");
    let (json, truncated) = super::cap::fit(record, cap.saturating_sub(head.len()));
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(json.as_bytes());
    Message { bytes, truncated }
}

/// How loud a SIEM should find the record: refusals and failures are
/// warnings, approvals and airlock's own events notices, lost records
/// critical, the rest information.
fn severity(record: &Value) -> u8 {
    match (record["kind"].as_str(), record["event"].as_str()) {
        (Some("agent"), Some("records_lost")) => CRITICAL,
        (Some("agent"), Some("policy_rejected")) => ERROR,
        (Some("agent"), _) => NOTICE,
        (Some("tls_client_refused"), _) => WARNING,
        _ if record["decision"]["action"] == "deny" || record.get("error").is_some() => WARNING,
        (Some("approval"), _) => NOTICE,
        _ if record["decision"]["action"] == "approve" => NOTICE,
        _ => INFO,
    }
}

/// RFC 5424 TIMESTAMP from RFC 3339 `ts`: at most 6 digits of fraction
/// (airlock writes 9); nil when it is not a time.
fn timestamp(ts: Option<&str>) -> String {
    let Some(ts) = ts.filter(|t| t.len() >= 20 && t.is_ascii() && t.as_bytes()[10] == b'T') else {
        return NIL.into();
    };
    let (whole, zone_at) = match ts[19..].find(['Z', '+', '-']) {
        Some(i) => (&ts[..19], 19 + i),
        None => return NIL.into(),
    };
    let fraction: String = ts[19..zone_at]
        .strip_prefix('.')
        .unwrap_or("")
        .chars()
        .take(6)
        .collect();
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return NIL.into();
    }
    let dot = if fraction.is_empty() { "" } else { "." };
    format!("{whole}{dot}{fraction}{}", &ts[zone_at..])
}

/// A header field: printable US-ASCII only (anything else `_`), at most
/// `max` characters, nil when absent or empty.
fn printable(value: Option<&str>, max: usize) -> String {
    match value.filter(|v| !v.is_empty()) {
        None => NIL.into(),
        Some(v) => v
            .chars()
            .take(max)
            .map(|c| if c.is_ascii_graphic() { c } else { '_' })
            .collect(),
    }
}

/// RFC 5424 §6.3.3: `"`, `\` and `]` are escaped in a PARAM-VALUE.
fn escape_param(value: &str, out: &mut String) {
    for c in value.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(m: &Message) -> &str {
        std::str::from_utf8(&m.bytes).unwrap()
    }

    #[test]
    fn an_exchange_is_one_rfc5424_line_with_its_place_in_the_trail() {
        let record = json!({"seq": 42, "ts": "2025-03-04T05:06:07.123456789Z", "kind": "http",
            "id": "e-1", "origin": {"host": "runner-7", "trail": "0a1b"},
            "decision": {"action": "allow"}, "request": {"method": "GET"}});
        let m = format(&record, 16, 65536);
        let t = text(&m);
        let (head, json) = t.split_once("] ").unwrap();
        assert_eq!(
            head,
            "<134>1 2025-03-04T05:06:07.123456Z runner-7 airlock - http [airlock@32473 trail=\"0a1b\" seq=\"42\" id=\"e-1\""
        );
        assert_eq!(serde_json::from_str::<Value>(json).unwrap(), record);
        assert!(!m.truncated);
    }

    #[test]
    fn severity_follows_the_outcome() {
        let pri = |r: Value| text(&format(&r, 16, 4096))[1..4].parse::<u16>().unwrap() - 128;
        assert_eq!(
            pri(json!({"kind": "http", "decision": {"action": "deny"}})),
            4
        );
        assert_eq!(
            pri(json!({"kind": "http", "decision": {"action": "approve"}})),
            5
        );
        assert_eq!(pri(json!({"kind": "connection", "error": "refused"})), 4);
        assert_eq!(pri(json!({"kind": "agent", "event": "records_lost"})), 2);
        assert_eq!(pri(json!({"kind": "agent", "event": "start"})), 5);
        assert_eq!(pri(json!({"kind": "model"})), 6);
    }

    #[test]
    fn header_fields_are_kept_printable_and_param_values_escaped() {
        let record = json!({"seq": 1, "ts": "not a time", "kind": "ht tp",
            "id": "a\"b\\c]d", "origin": {"host": "hôst name"}});
        let t = text(&format(&record, 1, 4096)).to_owned();
        assert!(
            t.starts_with("<14>1 - h_st_name airlock - ht_tp [airlock@32473 seq=\"1\" id=\"a\\\"b\\\\c\\]d\"] {"),
            "{t}"
        );
        let bare = text(&format(&json!({}), 1, 4096)).to_owned();
        assert!(
            bare.starts_with("<14>1 - - airlock - - [airlock@32473] {}"),
            "{bare}"
        );
    }

    #[test]
    fn timestamps_keep_their_zone_and_at_most_microseconds() {
        assert_eq!(
            timestamp(Some("2025-01-01T00:00:00Z")),
            "2025-01-01T00:00:00Z"
        );
        assert_eq!(
            timestamp(Some("2025-01-01T00:00:00.5+02:00")),
            "2025-01-01T00:00:00.5+02:00"
        );
        assert_eq!(timestamp(Some("2025-01-01T00:00:00.x1Z")), "-");
        assert_eq!(timestamp(None), "-");
    }

    #[test]
    fn a_message_over_the_cap_is_cut_to_it() {
        let record = json!({"seq": 3, "kind": "http", "origin": {"host": "h", "trail": "t"},
            "request": {"body": {"excerpt": "x".repeat(10_000)}}});
        let m = format(&record, 16, 2048);
        assert!(m.truncated && m.bytes.len() <= 2048, "{}", m.bytes.len());
        let (_, json) = text(&m).split_once("] ").unwrap();
        let r: Value = serde_json::from_str(json).unwrap();
        assert_eq!(r["truncated"], true);
        assert_eq!(r["seq"], 3);
    }
}
