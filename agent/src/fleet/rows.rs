//! A joined exchange (or any other record) as a row of
//! `airlock_exchanges`: the columns searches filter on, taken from the
//! record, beside the record itself. Rows go to PostgreSQL a batch at a
//! time, as one array per column.

use serde_json::Value;

/// One row.
#[derive(Debug)]
pub(super) struct Row {
    /// The seq of its first record (the request record's, for an
    /// exchange): the row's key within its trail.
    pub(super) first_seq: u64,
    pub(super) last_seq: u64,
    pub(super) record: Value,
}

/// A batch of rows, column by column, for `unnest`.
#[derive(Debug, Default)]
pub(super) struct Columns {
    pub(super) first_seq: Vec<i64>,
    pub(super) last_seq: Vec<i64>,
    pub(super) id: Vec<Option<String>>,
    pub(super) ts: Vec<Option<String>>,
    pub(super) host: Vec<String>,
    pub(super) kind: Vec<String>,
    pub(super) comm: Vec<Option<String>>,
    pub(super) uid: Vec<Option<i64>>,
    pub(super) username: Vec<Option<String>>,
    pub(super) upn: Vec<Option<String>>,
    pub(super) oid: Vec<Option<String>>,
    pub(super) operation: Vec<Option<String>>,
    pub(super) decision: Vec<Option<String>>,
    pub(super) status: Vec<Option<i32>>,
    pub(super) request_host: Vec<Option<String>>,
    pub(super) record: Vec<String>,
}

impl Columns {
    /// The rows' columns; `host` for records that do not say theirs
    /// (written before records carried `origin`).
    pub(super) fn of(rows: &[Row], host: &str) -> Self {
        let mut c = Self::default();
        let text = |v: &Value| v.as_str().map(str::to_owned);
        for row in rows {
            let r = &row.record;
            c.first_seq.push(row.first_seq as i64);
            c.last_seq.push(row.last_seq as i64);
            c.id.push(text(&r["id"]));
            c.ts.push(text(&r["ts"]));
            c.host
                .push(text(&r["origin"]["host"]).unwrap_or_else(|| host.to_owned()));
            c.kind.push(text(&r["kind"]).unwrap_or_else(|| "?".into()));
            c.comm.push(text(&r["process"]["comm"]));
            c.uid.push(r["process"]["uid"].as_i64());
            c.username.push(text(&r["process"]["user"]));
            c.upn.push(text(&r["identity"]["upn"]));
            c.oid.push(text(&r["identity"]["oid"]));
            c.operation.push(text(&r["request"]["operation"]["name"]));
            c.decision.push(text(&r["decision"]["action"]));
            c.status.push(
                r["response"]["status"]
                    .as_i64()
                    .and_then(|s| i32::try_from(s).ok()),
            );
            c.request_host
                .push(text(&r["request"]["host"]).or_else(|| text(&r["sni"])));
            c.record.push(r.to_string());
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_searched_columns_come_from_the_joined_record() {
        let rows = [
            Row {
                first_seq: 7,
                last_seq: 9,
                record: json!({"kind": "http", "id": "e1", "ts": "2026-12-06T10:00:00Z",
                    "origin": {"host": "runner-7"}, "process": {"comm": "az", "uid": 1000, "user": "dev"},
                    "identity": {"upn": "dev@contoso.example", "oid": "o-1"},
                    "request": {"host": "management.azure.com", "operation": {"name": "Microsoft.Resources/x/read"}},
                    "decision": {"action": "allow"}, "response": {"status": 200}}),
            },
            Row {
                first_seq: 10,
                last_seq: 10,
                record: json!({"kind": "agent", "event": "start"}),
            },
        ];
        let c = Columns::of(&rows, "this-host");
        assert_eq!(c.first_seq, [7, 10]);
        assert_eq!(c.last_seq, [9, 10]);
        assert_eq!(c.host, ["runner-7", "this-host"]);
        assert_eq!(c.comm[0].as_deref(), Some("az"));
        assert_eq!(c.uid[0], Some(1000));
        assert_eq!(c.upn[0].as_deref(), Some("dev@contoso.example"));
        assert_eq!(
            c.operation[0].as_deref(),
            Some("Microsoft.Resources/x/read")
        );
        assert_eq!(c.status, [Some(200), None]);
        assert_eq!(c.request_host[0].as_deref(), Some("management.azure.com"));
        assert_eq!(c.kind[1], "agent");
    }
}
