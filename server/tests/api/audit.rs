//! The audit log is append-only and tamper-evident.

use saksi_server::storage::prelude::*;
use saksi_server::storage::sqlite::SqliteStorage;
use saksi_server::storage::{AuditEvent, StorageError};
use saksi_testkit::at;

fn event(i: i64) -> AuditEvent {
    AuditEvent {
        at: at(1_000 + i),
        username: Some("kosal".into()),
        device_id: Some(format!("dev_{i}").into()),
        action: saksi_server::storage::AuditAction::Export,
        target: Some("case".into()),
        detail: format!("{i} records"),
    }
}

#[test]
fn the_audit_log_refuses_edits_and_detects_tampering() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("db.sqlite3");
    let storage = SqliteStorage::open(&path).expect("open");
    for i in 0..5 {
        storage.append_audit(event(i)).expect("append");
    }
    assert_eq!(storage.verify_audit().expect("intact"), 5);

    // Ordinary SQL cannot change or remove entries.
    let raw = rusqlite::Connection::open(&path).expect("raw");
    raw.busy_timeout(std::time::Duration::from_secs(5))
        .expect("timeout");
    assert!(
        raw.execute("UPDATE audit SET detail = 'nothing' WHERE seq = 2", [])
            .is_err()
    );
    assert!(raw.execute("DELETE FROM audit WHERE seq = 3", []).is_err());

    // Someone with the file drops the guard and edits an entry: the chain shows where.
    raw.execute_batch("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;")
        .expect("drop triggers");
    raw.execute("UPDATE audit SET detail = '0 records' WHERE seq = 3", [])
        .expect("tamper");
    assert_eq!(
        storage.verify_audit(),
        Err(StorageError::AuditChainBroken(3))
    );
    // Removing an entry is found too.
    raw.execute("UPDATE audit SET detail = '2 records' WHERE seq = 3", [])
        .expect("restore");
    assert_eq!(storage.verify_audit().expect("intact again"), 5);
    raw.execute("DELETE FROM audit WHERE seq = 2", [])
        .expect("delete");
    assert_eq!(
        storage.verify_audit(),
        Err(StorageError::AuditChainBroken(3))
    );
}
