//! Records destroyed for good, and purges waiting for their grace period ([`PurgeStore`]).

use rusqlite::{Connection, OptionalExtension, params};
use saksi_shared::{DocumentId, Timestamp};

use super::{SqliteStorage, checkpoint_after_commit, doc_id_of};
use crate::storage::{PendingPurge, PurgeReason, PurgeStore, Purged, StorageError, Tombstone};

fn reason_of(s: &str) -> Result<PurgeReason, rusqlite::Error> {
    PurgeReason::parse(s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("unknown purge reason {s}").into(),
        )
    })
}

const TOMBSTONE_COLUMNS: &str = "doc_id, purged_at, username, reason, case_id, created_by";

fn tombstone_from(row: &rusqlite::Row<'_>) -> Result<Tombstone, rusqlite::Error> {
    Ok(Tombstone {
        doc_id: doc_id_of(&row.get::<_, String>(0)?)?,
        purged_at: row.get(1)?,
        username: row.get(2)?,
        reason: reason_of(&row.get::<_, String>(3)?)?,
        case_id: doc_id_of(&row.get::<_, String>(4)?)?,
        created_by: row.get(5)?,
    })
}

const PURGE_COLUMNS: &str = "doc_id, requested_at, username, reason, due_at";

fn pending_from(row: &rusqlite::Row<'_>) -> Result<PendingPurge, rusqlite::Error> {
    Ok(PendingPurge {
        doc_id: doc_id_of(&row.get::<_, String>(0)?)?,
        requested_at: row.get(1)?,
        username: row.get(2)?,
        reason: reason_of(&row.get::<_, String>(3)?)?,
        due_at: row.get(4)?,
    })
}

/// Destroys a record on `conn` (in its transaction; `secure_delete` must be on): see
/// [`PurgeStore::purge`]. Also used on a backup's copy before it is sealed.
pub fn purge_in(conn: &Connection, t: &Tombstone) -> Result<Purged, StorageError> {
    let id = t.doc_id.to_string();
    conn.execute(
        &format!(
            "INSERT OR IGNORE INTO tombstones ({TOMBSTONE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
        ),
        params![
            id,
            t.purged_at,
            t.username,
            t.reason.as_str(),
            t.case_id.to_string(),
            t.created_by
        ],
    )?;
    // Every file the record ever named, also those removed from it since: none of them may
    // stay behind it (they would otherwise wait for the clean-up, and go into backups).
    let ever_named: Vec<String> = {
        let mut stmt = conn.prepare("SELECT sha256 FROM document_files_ever WHERE doc_id = ?1")?;
        stmt.query_map(params![id], |r| r.get(0))?
            .collect::<Result<_, _>>()?
    };
    conn.execute(
        "DELETE FROM document_files_ever WHERE doc_id = ?1",
        params![id],
    )?;
    let had_record = conn.execute("DELETE FROM documents WHERE id = ?1", params![id])? > 0;
    conn.execute("DELETE FROM chunks WHERE doc_id = ?1", params![id])?;
    conn.execute("DELETE FROM sync_states WHERE doc_id = ?1", params![id])?;
    let was_waiting = conn.execute("DELETE FROM purges WHERE doc_id = ?1", params![id])? > 0;
    let mut named: Vec<String> = {
        let mut stmt =
            conn.prepare("SELECT DISTINCT sha256 FROM document_files WHERE doc_id = ?1")?;
        stmt.query_map(params![id], |r| r.get(0))?
            .collect::<Result<_, _>>()?
    };
    for sha in ever_named {
        if !named.contains(&sha) {
            named.push(sha);
        }
    }
    conn.execute("DELETE FROM document_files WHERE doc_id = ?1", params![id])?;
    let mut purged = Purged {
        had_record,
        was_waiting,
        ..Purged::default()
    };
    for sha in named {
        let still_named: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM document_files WHERE sha256 = ?1)",
            params![sha],
            |r| r.get(0),
        )?;
        if still_named {
            continue;
        }
        conn.execute("DELETE FROM blobs WHERE sha256 = ?1", params![sha])?;
        let uploads: Vec<String> = {
            let mut stmt = conn.prepare("SELECT id FROM uploads WHERE sha256 = ?1")?;
            stmt.query_map(params![sha], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        conn.execute("DELETE FROM uploads WHERE sha256 = ?1", params![sha])?;
        purged.uploads.extend(uploads);
        purged.files.push(sha);
    }
    Ok(purged)
}

impl PurgeStore for SqliteStorage {
    fn schedule_purge(&self, purge: &PendingPurge) -> Result<(), StorageError> {
        let p = purge.clone();
        self.write(move |conn| {
            conn.execute(
                &format!(
                    "INSERT INTO purges ({PURGE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(doc_id) DO UPDATE SET requested_at = excluded.requested_at,
                         username = excluded.username, reason = excluded.reason,
                         due_at = excluded.due_at"
                ),
                params![
                    p.doc_id.to_string(),
                    p.requested_at,
                    p.username,
                    p.reason.as_str(),
                    p.due_at
                ],
            )?;
            Ok(())
        })
    }

    fn cancel_purge(&self, doc: &DocumentId) -> Result<bool, StorageError> {
        let id = doc.to_string();
        self.write(move |conn| {
            Ok(conn.execute("DELETE FROM purges WHERE doc_id = ?1", params![id])? > 0)
        })
    }

    fn pending_purge(&self, doc: &DocumentId) -> Result<Option<PendingPurge>, StorageError> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    &format!("SELECT {PURGE_COLUMNS} FROM purges WHERE doc_id = ?1"),
                    params![doc.to_string()],
                    pending_from,
                )
                .optional()?)
        })
    }

    fn pending_purges(&self) -> Result<Vec<PendingPurge>, StorageError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {PURGE_COLUMNS} FROM purges ORDER BY due_at"
            ))?;
            let rows = stmt.query_map([], pending_from)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn purge(&self, tombstone: &Tombstone) -> Result<Purged, StorageError> {
        let t = tombstone.clone();
        self.write(move |conn| {
            let purged = purge_in(conn, &t)?;
            checkpoint_after_commit();
            Ok(purged)
        })
    }

    fn claim_purge(&self, doc: &DocumentId, now: Timestamp) -> Result<bool, StorageError> {
        let id = doc.to_string();
        self.write(move |conn| {
            Ok(conn.execute(
                "DELETE FROM purges WHERE doc_id = ?1 AND due_at <= ?2",
                params![id, now],
            )? == 1)
        })
    }

    fn tombstone(&self, doc: &DocumentId) -> Result<Option<Tombstone>, StorageError> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    &format!("SELECT {TOMBSTONE_COLUMNS} FROM tombstones WHERE doc_id = ?1"),
                    params![doc.to_string()],
                    tombstone_from,
                )
                .optional()?)
        })
    }

    fn tombstones(&self) -> Result<Vec<Tombstone>, StorageError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {TOMBSTONE_COLUMNS} FROM tombstones ORDER BY purged_at, doc_id"
            ))?;
            let rows = stmt.query_map([], tombstone_from)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }
}
