//! The audit log and its hash chain ([`AuditLog`]).

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use super::SqliteStorage;
use crate::storage::{AuditAction, AuditEntry, AuditEvent, AuditFilter, AuditLog, StorageError};

/// The hash of an audit entry: SHA-256 over the previous hash and every field, each field
/// length-prefixed so that no two entries encode alike.
fn audit_hash(prev: &[u8], seq: i64, event: &AuditEvent) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(seq.to_be_bytes());
    h.update(event.at.as_millis().to_be_bytes());
    for field in [
        event.username.as_deref(),
        event.device_id.as_deref(),
        Some(event.action.as_str()),
        event.target.as_deref(),
        Some(event.detail.as_str()),
    ] {
        match field {
            None => h.update([0u8]),
            Some(s) => {
                h.update([1u8]);
                h.update((s.len() as u64).to_be_bytes());
                h.update(s.as_bytes());
            }
        }
    }
    h.finalize().to_vec()
}

/// Recomputes the audit log's hash chain on `conn`: the number of entries and the last hash
/// (hex), which an operator keeps outside the server to detect the removal of the newest entries.
pub fn verify_audit_chain(conn: &Connection) -> Result<(u64, Option<String>), StorageError> {
    let mut stmt = conn.prepare(
        "SELECT seq, at, username, device_id, action, target, detail, hash FROM audit
         ORDER BY seq",
    )?;
    let mut rows = stmt.query([])?;
    let mut prev = vec![0u8; 32];
    let mut expected_seq = 1;
    let mut count = 0;
    while let Some(row) = rows.next()? {
        let (entry, hash) = audit_from(row)?;
        if entry.seq != expected_seq || audit_hash(&prev, entry.seq, &entry.event) != hash {
            return Err(StorageError::AuditChainBroken(entry.seq));
        }
        prev = hash;
        expected_seq += 1;
        count += 1;
    }
    Ok((count, (count > 0).then(|| hex::encode(&prev))))
}

fn audit_from(row: &rusqlite::Row<'_>) -> Result<(AuditEntry, Vec<u8>), rusqlite::Error> {
    let hash: Vec<u8> = row.get(7)?;
    Ok((
        AuditEntry {
            seq: row.get(0)?,
            event: AuditEvent {
                at: row.get(1)?,
                username: row.get(2)?,
                device_id: row.get::<_, Option<String>>(3)?.map(Into::into),
                action: AuditAction::from_stored(&row.get::<_, String>(4)?),
                target: row.get(5)?,
                detail: row.get(6)?,
            },
            hash: hex::encode(&hash),
        },
        hash,
    ))
}

impl AuditLog for SqliteStorage {
    fn append_audit(&self, event: AuditEvent) -> Result<(), StorageError> {
        self.write(move |conn| {
            let last: Option<(i64, Vec<u8>)> = conn
                .query_row(
                    "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let (seq, prev) = match last {
                Some((seq, hash)) => (seq + 1, hash),
                None => (1, vec![0u8; 32]),
            };
            let hash = audit_hash(&prev, seq, &event);
            conn.execute(
                "INSERT INTO audit (seq, at, username, device_id, action, target, detail, hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    seq,
                    event.at,
                    event.username,
                    event.device_id.as_deref(),
                    event.action.as_str(),
                    event.target,
                    event.detail,
                    hash
                ],
            )?;
            Ok(())
        })
    }

    fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StorageError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT seq, at, username, device_id, action, target, detail, hash FROM audit
                 WHERE (?1 IS NULL OR action = ?1) AND (?2 IS NULL OR username = ?2)
                   AND (?3 IS NULL OR target = ?3) AND (?4 IS NULL OR at >= ?4)
                   AND (?5 IS NULL OR at <= ?5) AND (?6 IS NULL OR seq < ?6)
                 ORDER BY seq DESC LIMIT ?7",
            )?;
            let rows = stmt.query_map(
                params![
                    filter.action.as_ref().map(AuditAction::as_str),
                    filter.username,
                    filter.target,
                    filter.from,
                    filter.to,
                    filter.before_seq,
                    filter.limit.unwrap_or(200)
                ],
                |r| audit_from(r).map(|(e, _)| e),
            )?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn verify_audit(&self) -> Result<u64, StorageError> {
        self.read(|conn| Ok(verify_audit_chain(conn)?.0))
    }
}
