use std::path::PathBuf;

use serde_json::{Value, json};

use super::*;
use crate::audit::verify::verify;

fn config(tag: &str, rotate_bytes: u64) -> (PathBuf, AuditConfig) {
    let dir = crate::scratch_dir(&format!("audit-{tag}"));
    let config = AuditConfig {
        path: dir.join("sub/audit.jsonl"),
        rotate_bytes,
        ..AuditConfig::default()
    };
    (dir, config)
}

#[tokio::test]
async fn records_are_enveloped_chained_and_0600() {
    let (dir, config) = config("envelope", 1 << 30);
    let log = AuditLog::open(&config).unwrap();
    let id = log.write(&json!({ "kind": "agent", "n": 1 })).unwrap();
    log.write_durable("fixed-id", &json!({ "kind": "http", "n": 2 }))
        .await
        .unwrap();
    let text = std::fs::read_to_string(&config.path).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["id"], id.as_str());
    assert_eq!(lines[1]["id"], "fixed-id");
    assert_eq!(lines[0]["seq"], 1);
    assert_eq!(lines[0]["prev"], GENESIS);
    assert_eq!(lines[1]["prev"], lines[0]["hash"]);
    assert!(lines[0]["ts"].as_str().unwrap().ends_with('Z'));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&config.path)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn chain_survives_rotation_and_restart() {
    let (dir, config) = config("rotate", 2048);
    {
        let log = AuditLog::open(&config).unwrap();
        // One batch each: rotation is checked after every batch.
        flood(&log, 40, "x", 100).await;
    }
    let rotated = files::rotated(&config.path);
    assert!(rotated.len() >= 2, "{rotated:?}");
    // A restart continues the same chain.
    let log = AuditLog::open(&config).unwrap();
    log.write_durable("after-restart", &json!({ "kind": "agent" }))
        .await
        .unwrap();
    let v = verify(&files::trail(&config.path)).unwrap();
    assert_eq!(v.records, 41);
    // Every record, across rotation and the restart, names one trail and
    // where it was written; the log says which trail it writes.
    let records = all_records(&config.path);
    let trail = records[0]["origin"]["trail"].clone();
    assert_eq!(trail.as_str().map(str::len), Some(32), "{}", records[0]);
    for r in &records {
        assert_eq!(r["origin"]["trail"], trail, "{r}");
        assert_eq!(r["schema"], crate::audit::origin::SCHEMA, "{r}");
        assert_eq!(
            r["origin"]["host"].as_str(),
            crate::audit::origin::host_name().as_deref()
        );
    }
    assert_eq!(log.stats().trail.as_deref(), trail.as_str());
    // Another trail (a runner's fresh disk) starts at seq 1 under its own id.
    let (other_dir, other) = self::config("rotate-other", 2048);
    let fresh = AuditLog::open(&other).unwrap();
    fresh
        .write_durable("first", &json!({ "kind": "agent" }))
        .await
        .unwrap();
    let first = &all_records(&other.path)[0];
    assert_eq!(first["seq"], 1);
    assert_ne!(first["origin"]["trail"], trail);
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&other_dir).unwrap();
}

/// Every record of the trail at `path`, oldest first.
fn all_records(path: &std::path::Path) -> Vec<Value> {
    files::trail(path)
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn retention_keeps_the_trail_in_its_budget_and_says_where_the_chain_starts() {
    let (dir, mut config) = config("retain", 4096);
    config.retain_bytes = 3 * 4096;
    let log = AuditLog::open(&config).unwrap();
    // A flood of records: many more bytes than the budget.
    flood(&log, 200, "x", 200).await;
    let trail = files::trail(&config.path);
    let total: u64 = trail.iter().map(|p| p.metadata().unwrap().len()).sum();
    assert!(
        total <= config.retain_bytes + config.rotate_bytes,
        "{total} bytes kept"
    );
    assert!(log.check().is_ok(), "still writable: the flood was served");
    // What remains verifies, and says why it starts where it does.
    let v = verify(&trail).unwrap();
    let (start, Some(explained_by)) = v.starts_after.unwrap() else {
        panic!("no retention record explains the start")
    };
    assert!(start > 1);
    let records = all_records(&config.path);
    let note = records.iter().find(|r| r["seq"] == explained_by).unwrap();
    assert_eq!(note["event"], "retention");
    assert_eq!(note["last_seq"], start - 1);
    assert_eq!(note["last_hash"], records[0]["prev"]);
    assert!(!std::path::Path::new(note["file"].as_str().unwrap()).exists());
    // Without the budget, nothing is removed.
    let (dir2, config2) = self::config("retain-off", 4096);
    let log2 = AuditLog::open(&config2).unwrap();
    flood(&log2, 60, "x", 200).await;
    assert!(
        verify(&files::trail(&config2.path))
            .unwrap()
            .starts_after
            .is_none()
    );
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&dir2).unwrap();
}

#[tokio::test]
async fn retention_removes_nothing_the_fleet_does_not_hold_yet() {
    let (dir, mut config) = config("retain-unshipped", 4096);
    config.retain_bytes = 2 * 4096;
    let log = AuditLog::open(&config).unwrap();
    // A fleet is configured and nothing is shipped yet.
    let hold = log.hold_retention();
    flood(&log, 100, "x", 200).await;
    let kept = files::rotated(&config.path);
    assert!(kept.len() > 3, "over budget, all kept: {kept:?}");
    assert_eq!(
        verify(&files::trail(&config.path)).unwrap().starts_after,
        None
    );
    // Shipped through the first two rotated files: those may go, no more.
    let through = files::last_seq(&kept[1]).unwrap();
    hold.release_through(through);
    flood(&log, 100, "x", 200).await;
    let now = files::rotated(&config.path);
    assert!(
        !now.contains(&kept[0]) && !now.contains(&kept[1]),
        "{now:?}"
    );
    assert!(now.contains(&kept[2]), "not shipped, so kept: {now:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_partial_last_line_is_moved_aside_recorded_and_chained_past() {
    let (dir, config) = config("partial", 1 << 30);
    {
        let log = AuditLog::open(&config).unwrap();
        log.write_durable("a", &json!({ "kind": "http" }))
            .await
            .unwrap();
    }
    // A crash in the middle of writing the next record.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&config.path)
        .unwrap();
    f.write_all(br#"{"kind":"http","id":"b","se"#).unwrap();
    drop(f);
    let log = AuditLog::open(&config).unwrap();
    log.write_durable("c", &json!({ "kind": "http" }))
        .await
        .unwrap();
    // The chain verifies, and says in itself what was recovered.
    verify(&files::trail(&config.path)).unwrap();
    let text = std::fs::read_to_string(&config.path).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[1]["event"], "recovered_partial_record");
    assert_eq!(
        lines[1]["seq"], 2,
        "the chain continues from the last complete record"
    );
    let saved = std::path::PathBuf::from(lines[1]["saved_to"].as_str().unwrap());
    assert_eq!(
        std::fs::read(&saved).unwrap(),
        br#"{"kind":"http","id":"b","se"#
    );
    assert_eq!(lines[2]["id"], "c");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn concurrent_writers_never_interleave() {
    let (dir, config) = config("concurrent", 1 << 30);
    let log = AuditLog::open(&config).unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..16 {
        let log = log.clone();
        tasks.spawn(async move {
            for n in 0..50 {
                let id = log.new_id();
                log.write_durable(
                    &id,
                    &json!({ "kind": "http", "t": t, "n": n, "body": "y".repeat(300) }),
                )
                .await
                .unwrap();
            }
        });
    }
    tasks.join_all().await;
    let v = verify(&files::trail(&config.path)).unwrap();
    assert_eq!(v.records, 800);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_configured_group_may_read_the_trail() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let (dir, mut config) = config("group", 4096);
    config.group = Some("65534".into());
    let log = AuditLog::open(&config).unwrap();
    flood(&log, 20, "z", 300).await;
    for f in files::trail(&config.path) {
        let m = std::fs::metadata(&f).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o640, "{}", f.display());
        assert_eq!(m.gid(), 65534, "{}", f.display());
    }
    assert!(
        files::rotated(&config.path).len() >= 2,
        "rotated files keep the mode too"
    );
    let bad = AuditConfig {
        group: Some("no-such-group-airlock".into()),
        ..config.clone()
    };
    assert!(
        AuditLog::open(&bad)
            .unwrap_err()
            .to_string()
            .contains("no group")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn signed_checkpoints_authenticate_a_segment() {
    let (dir, mut config) = config("checkpoint", 1 << 30);
    config.checkpoint_key = Some(dir.join("signing.key"));
    config.checkpoint_every = 5;
    std::fs::create_dir_all(&dir).unwrap();
    let log = AuditLog::open(&config).unwrap();
    for n in 0..12 {
        let id = log.new_id();
        log.write_durable(&id, &json!({ "kind": "http", "n": n }))
            .await
            .unwrap();
    }
    let key =
        crate::audit::checkpoint::public_key(config.checkpoint_key.as_ref().unwrap()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(config.checkpoint_key.as_ref().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let trail = files::trail(&config.path);
    let v = crate::audit::verify::verify_signed(&trail, Some(&key)).unwrap();
    assert_eq!(v.checkpoints, 2, "every 5 records");
    assert!(
        v.unsigned_after.is_some(),
        "the last records are not yet signed"
    );
    // Closing signs the tail too.
    log.close().await.unwrap();
    let v = crate::audit::verify::verify_signed(&trail, Some(&key)).unwrap();
    assert_eq!(v.checkpoints, 3);
    assert_eq!(v.unsigned_after, None);

    // A segment cut from the middle verifies on its own, checkpoints included.
    let text = std::fs::read_to_string(&config.path).unwrap();
    let segment: String = text.lines().skip(3).map(|l| format!("{l}\n")).collect();
    let seg_path = dir.join("segment.jsonl");
    std::fs::write(&seg_path, &segment).unwrap();
    assert!(
        crate::audit::verify::verify_signed(std::slice::from_ref(&seg_path), Some(&key)).is_ok()
    );

    // Another key's checkpoints do not verify.
    let other = crate::audit::checkpoint::public_key(&dir.join("other.key")).unwrap();
    let e = crate::audit::verify::verify_signed(&trail, Some(&other))
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not verify"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Once a write failed, a request's record is refused (fail closed).
async fn refuses_while_unhealthy(log: &AuditLog) {
    log.healthy.store(false, Ordering::Release);
    assert!(matches!(
        log.write_durable("x", &json!({ "kind": "http" })).await,
        Err(AuditError::Failed)
    ));
}

#[tokio::test]
async fn queued_durability_does_not_wait_but_still_writes_and_fails_closed() {
    let (dir, mut config) = config("queued", 1 << 30);
    config.durability = Durability::Queued;
    let log = AuditLog::open(&config).unwrap();
    for n in 0..50 {
        log.write_durable(&log.new_id(), &json!({ "kind": "http", "n": n }))
            .await
            .unwrap();
    }
    // Nothing was waited for; a sync shows every record reached the file.
    log.sync().await.unwrap();
    assert_eq!(log.stats().seq, 50);
    verify(&[config.path.clone()]).unwrap();
    // While the log is unhealthy, "queued" refuses like the others.
    refuses_while_unhealthy(&log).await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn durability_off_writes_only_agent_records_and_still_fails_closed() {
    let (dir, mut config) = config("off", 1 << 30);
    config.durability = Durability::Off;
    let log = AuditLog::open(&config).unwrap();
    log.write_agent(&json!({ "kind": "agent", "event": "start" }))
        .unwrap();
    log.write_durable(&log.new_id(), &json!({ "kind": "http", "n": 1 }))
        .await
        .unwrap();
    log.write(&json!({ "kind": "connection" })).unwrap();
    log.write_agent(&json!({ "kind": "agent", "event": "stop" }))
        .unwrap();
    log.sync().await.unwrap();
    let text = std::fs::read_to_string(&config.path).unwrap();
    let events: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["event"].to_string())
        .collect();
    assert_eq!(events, ["\"start\"", "\"stop\""]);
    verify(&[config.path.clone()]).unwrap();
    refuses_while_unhealthy(&log).await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_large_trail_resumes_from_its_end_past_a_partial_line_longer_than_the_first_window() {
    let (dir, config) = config("large-resume", 1 << 30);
    {
        let log = AuditLog::open(&config).unwrap();
        // About 1 MiB of records: more than the first window read back.
        for n in 0..2000 {
            log.write(&json!({ "kind": "http", "n": n, "pad": "x".repeat(400) }))
                .unwrap();
        }
        log.sync().await.unwrap();
    }
    // A crash mid-record, with a fragment longer than the first window,
    // and records so long that the last complete one starts before it.
    let fragment = format!(r#"{{"kind":"model","text":"{}"#, "y".repeat(300 * 1024));
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&config.path)
        .unwrap();
    f.write_all(fragment.as_bytes()).unwrap();
    drop(f);
    let log = AuditLog::open(&config).unwrap();
    log.write_durable("after", &json!({ "kind": "http" }))
        .await
        .unwrap();
    verify(&files::trail(&config.path)).unwrap();
    let text = std::fs::read_to_string(&config.path).unwrap();
    let last: Vec<Value> = text
        .lines()
        .rev()
        .take(2)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(last[1]["event"], "recovered_partial_record");
    assert_eq!(last[1]["seq"], 2001);
    assert_eq!(last[1]["bytes"], fragment.len());
    assert_eq!(last[0]["id"], "after");
    let saved = std::path::PathBuf::from(last[1]["saved_to"].as_str().unwrap());
    assert_eq!(std::fs::read(&saved).unwrap(), fragment.as_bytes());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `n` durable `http` records, each padded with `pad` repeated `len` times.
async fn flood(log: &AuditLog, n: u64, pad: &str, len: usize) {
    for n in 0..n {
        let id = log.new_id();
        log.write_durable(
            &id,
            &json!({ "kind": "http", "n": n, "pad": pad.repeat(len) }),
        )
        .await
        .unwrap();
    }
}
