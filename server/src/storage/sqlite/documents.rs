//! Cases, teams, documents, sync states and actor bindings ([`DocumentStore`]).

use rusqlite::{Connection, OptionalExtension, params};
use saksi_shared::DeviceId;
use saksi_shared::DocumentId;

use super::accounts::{USER_COLUMNS, access_changed, user_from};
use super::{SqliteStorage, doc_id_of};
use crate::storage::{
    Case, DocumentCounts, DocumentFilter, DocumentRow, DocumentSort, DocumentStore, DocumentWrite,
    StorageError, User, UserId,
};

pub(super) const DOC_COLUMNS: &str = "id, kind, case_id, created_by, title, status, has_conflicts, created_at, updated_at, \
     consent_withdrawn";

pub(super) fn doc_from(row: &rusqlite::Row<'_>) -> Result<DocumentRow, rusqlite::Error> {
    Ok(DocumentRow {
        id: doc_id_of(&row.get::<_, String>(0)?)?,
        kind: row.get(1)?,
        case_id: doc_id_of(&row.get::<_, String>(2)?)?,
        created_by: row.get(3)?,
        title: row.get(4)?,
        status: row.get(5)?,
        has_conflicts: row.get(6)?,
        created_at: row.get(7)?,
        updated_at: row.get(8)?,
        consent_withdrawn: row.get(9)?,
    })
}

fn upsert_document(conn: &Connection, row: &DocumentRow) -> Result<(), StorageError> {
    conn.execute(
        "INSERT INTO documents (id, kind, case_id, created_by, title, status, has_conflicts,
                                created_at, updated_at, consent_withdrawn)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT(id) DO UPDATE SET title = excluded.title, status = excluded.status,
             has_conflicts = excluded.has_conflicts, updated_at = excluded.updated_at,
             consent_withdrawn = excluded.consent_withdrawn",
        params![
            row.id.to_string(),
            row.kind,
            row.case_id.to_string(),
            row.created_by,
            row.title,
            row.status,
            row.has_conflicts,
            row.created_at,
            row.updated_at,
            row.consent_withdrawn
        ],
    )?;
    Ok(())
}

/// `select` FROM documents with the WHERE clause of `filter`, and its arguments.
fn document_query(select: &str, filter: &DocumentFilter) -> (String, Vec<rusqlite::types::Value>) {
    let mut sql = format!("{select} FROM documents WHERE 1 = 1");
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    let mut arg = |sql: &mut String, clause: &str, v: rusqlite::types::Value| {
        args.push(v);
        sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
    };
    if let Some((user, cases)) = &filter.readable_by {
        let list = cases
            .iter()
            .map(|c| format!("'{c}'"))
            .collect::<Vec<_>>()
            .join(",");
        // Document ids are base58: no quotes can appear in them.
        arg(
            &mut sql,
            &format!(" AND (created_by = ? OR case_id IN ({list}))"),
            user.clone().into(),
        );
    }
    if !filter.include_cases {
        sql.push_str(" AND kind <> 'case'");
    }
    if let Some(case) = &filter.case {
        arg(&mut sql, " AND case_id = ?", case.to_string().into());
    }
    if let Some(kind) = &filter.kind {
        arg(&mut sql, " AND kind = ?", kind.clone().into());
    }
    if let Some(status) = &filter.status {
        arg(&mut sql, " AND status = ?", status.clone().into());
    }
    if let Some(by) = &filter.created_by {
        arg(&mut sql, " AND created_by = ?", by.clone().into());
    }
    if let Some(c) = filter.has_conflicts {
        arg(&mut sql, " AND has_conflicts = ?", i64::from(c).into());
    }
    if let Some(c) = filter.consent_withdrawn {
        arg(&mut sql, " AND consent_withdrawn = ?", i64::from(c).into());
    }
    if let Some(from) = filter.updated_from {
        arg(&mut sql, " AND updated_at >= ?", from.into());
    }
    if let Some(to) = filter.updated_to {
        arg(&mut sql, " AND updated_at <= ?", to.into());
    }
    (sql, args)
}

/// A withdrawn (purged) record is never written again: not by a document task writing back, not
/// by a phone, not by a restore.
pub(super) fn refuse_withdrawn(
    conn: &Connection,
    id: &impl std::fmt::Display,
) -> Result<(), StorageError> {
    let withdrawn: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM tombstones WHERE doc_id = ?1)")?
        .query_row(params![id.to_string()], |r| r.get(0))?;
    if withdrawn {
        return Err(StorageError::Withdrawn);
    }
    Ok(())
}

impl DocumentStore for SqliteStorage {
    fn create_case(
        &self,
        case: &Case,
        row: &DocumentRow,
        snapshot: &[u8],
    ) -> Result<(), StorageError> {
        let (case, row, snapshot) = (case.clone(), row.clone(), snapshot.to_vec());
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO cases (id, name, created_at) VALUES (?1, ?2, ?3)",
                params![case.id.to_string(), case.name, case.created_at],
            )?;
            upsert_document(conn, &row)?;
            conn.execute(
                "INSERT INTO chunks (doc_id, kind, bytes) VALUES (?1, 'snapshot', ?2)",
                params![row.id.to_string(), snapshot],
            )?;
            Ok(())
        })
    }

    fn cases(&self) -> Result<Vec<Case>, StorageError> {
        self.read(|conn| {
            let mut stmt = conn.prepare("SELECT id, name, created_at FROM cases ORDER BY name")?;
            let rows = stmt.query_map([], |r| {
                Ok(Case {
                    id: doc_id_of(&r.get::<_, String>(0)?)?,
                    name: r.get(1)?,
                    created_at: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn add_member(&self, case: &DocumentId, user: UserId) -> Result<(), StorageError> {
        let case = case.to_string();
        self.write(move |conn| {
            conn.execute(
                "INSERT OR IGNORE INTO case_members (case_id, user_id) VALUES (?1, ?2)",
                params![case, user],
            )
            .map_err(|e| match StorageError::from(e) {
                StorageError::Conflict(_) => StorageError::NotFound("case or user".into()),
                other => other,
            })?;
            access_changed(conn, user)
        })
    }

    fn remove_member(&self, case: &DocumentId, user: UserId) -> Result<(), StorageError> {
        let case = case.to_string();
        self.write(move |conn| {
            conn.execute(
                "DELETE FROM case_members WHERE case_id = ?1 AND user_id = ?2",
                params![case, user],
            )?;
            access_changed(conn, user)
        })
    }

    fn members(&self, case: &DocumentId) -> Result<Vec<User>, StorageError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {USER_COLUMNS} FROM users u JOIN case_members m ON m.user_id = u.id
                 WHERE m.case_id = ?1 ORDER BY u.username"
            ))?;
            let rows = stmt.query_map(params![case.to_string()], |r| user_from(r, 0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn cases_of(&self, user: UserId) -> Result<Vec<DocumentId>, StorageError> {
        self.read(|conn| {
            let mut stmt = conn.prepare("SELECT case_id FROM case_members WHERE user_id = ?1")?;
            let rows = stmt.query_map(params![user], |r| doc_id_of(&r.get::<_, String>(0)?))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn document(&self, id: &DocumentId) -> Result<Option<DocumentRow>, StorageError> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    &format!("SELECT {DOC_COLUMNS} FROM documents WHERE id = ?1"),
                    params![id.to_string()],
                    doc_from,
                )
                .optional()?)
        })
    }

    fn documents(&self, filter: &DocumentFilter) -> Result<Vec<DocumentRow>, StorageError> {
        let (mut sql, mut args) = document_query(&format!("SELECT {DOC_COLUMNS}"), filter);
        sql.push_str(match filter.sort {
            DocumentSort::UpdatedDesc => " ORDER BY updated_at DESC, id",
            DocumentSort::UpdatedAsc => " ORDER BY updated_at ASC, id",
            DocumentSort::CreatedDesc => " ORDER BY created_at DESC, id",
            DocumentSort::CreatedAsc => " ORDER BY created_at ASC, id",
            DocumentSort::Title => " ORDER BY title COLLATE NOCASE, id",
            DocumentSort::Status => " ORDER BY status, updated_at DESC, id",
            DocumentSort::Author => " ORDER BY created_by COLLATE NOCASE, updated_at DESC, id",
            DocumentSort::Kind => " ORDER BY kind, updated_at DESC, id",
        });
        if filter.limit.is_some() || filter.offset > 0 {
            args.push(filter.limit.map_or(-1, i64::from).into());
            args.push(i64::from(filter.offset).into());
            sql.push_str(&format!(
                " LIMIT ?{} OFFSET ?{}",
                args.len() - 1,
                args.len()
            ));
        }
        self.read(|conn| {
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), doc_from)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn count_documents(&self, filter: &DocumentFilter) -> Result<DocumentCounts, StorageError> {
        let (mut sql, args) = document_query(
            "SELECT status, COUNT(*), COALESCE(SUM(has_conflicts), 0),
                    COALESCE(SUM(consent_withdrawn), 0)",
            filter,
        );
        sql.push_str(" GROUP BY status");
        self.read(|conn| {
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })?;
            let mut counts = DocumentCounts::default();
            for row in rows {
                let (status, n, conflicts, consent) = row?;
                let (n, conflicts) = (n.max(0) as u64, conflicts.max(0) as u64);
                counts.total += n;
                counts.with_conflicts += conflicts;
                counts.consent_withdrawn += consent.max(0) as u64;
                counts.by_status.push((status, n));
            }
            Ok(counts)
        })
    }

    fn chunks(&self, id: &DocumentId) -> Result<Vec<Vec<u8>>, StorageError> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare("SELECT bytes FROM chunks WHERE doc_id = ?1 ORDER BY id")?;
            let rows = stmt.query_map(params![id.to_string()], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn append_changes(&self, write: DocumentWrite) -> Result<(), StorageError> {
        self.write(move |conn| {
            refuse_withdrawn(conn, &write.row.id)?;
            upsert_document(conn, &write.row)?;
            let id = write.row.id.to_string();
            let mut insert = conn.prepare_cached(
                "INSERT INTO chunks (doc_id, kind, bytes) VALUES (?1, 'change', ?2)",
            )?;
            for change in &write.changes {
                insert.execute(params![id, change])?;
            }
            let mut bind = conn.prepare_cached(
                "INSERT OR IGNORE INTO actors (actor, device_id, first_seen) VALUES (?1, ?2, ?3)",
            )?;
            for (actor, device) in &write.new_actors {
                bind.execute(params![actor, device.as_str(), write.row.updated_at])?;
            }
            if let Some(files) = &write.files {
                super::files::set_document_files(conn, &write.row.id, files, write.row.updated_at)?;
            }
            Ok(())
        })
    }

    fn compact(&self, id: &DocumentId, snapshot: &[u8]) -> Result<(), StorageError> {
        let (id, snapshot) = (id.to_string(), snapshot.to_vec());
        self.write(move |conn| {
            refuse_withdrawn(conn, &id)?;
            conn.execute("DELETE FROM chunks WHERE doc_id = ?1", params![id])?;
            conn.execute(
                "INSERT INTO chunks (doc_id, kind, bytes) VALUES (?1, 'snapshot', ?2)",
                params![id, snapshot],
            )?;
            Ok(())
        })
    }

    fn sync_state(&self, device: &str, doc: &DocumentId) -> Result<Option<Vec<u8>>, StorageError> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    "SELECT state FROM sync_states WHERE device_id = ?1 AND doc_id = ?2",
                    params![device, doc.to_string()],
                    |r| r.get(0),
                )
                .optional()?)
        })
    }

    fn save_sync_states(
        &self,
        states: Vec<(DeviceId, DocumentId, Vec<u8>)>,
    ) -> Result<(), StorageError> {
        if states.is_empty() {
            return Ok(());
        }
        self.write(move |conn| {
            // Not for a withdrawn record: nothing of it is written again.
            let mut stmt = conn.prepare_cached(
                "INSERT INTO sync_states (device_id, doc_id, state)
                 SELECT ?1, ?2, ?3 WHERE NOT EXISTS (SELECT 1 FROM tombstones WHERE doc_id = ?2)
                 ON CONFLICT(device_id, doc_id) DO UPDATE SET state = excluded.state",
            )?;
            for (device, doc, state) in &states {
                stmt.execute(params![device.as_str(), doc.to_string(), state])?;
            }
            Ok(())
        })
    }

    fn actor_bindings(&self) -> Result<Vec<(String, DeviceId)>, StorageError> {
        self.read(|conn| {
            let mut stmt = conn.prepare("SELECT actor, device_id FROM actors")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, String>(1)?.into())))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }
}
