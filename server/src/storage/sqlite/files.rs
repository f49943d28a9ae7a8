//! Which files records name, which the server holds, and uploads in progress ([`FileIndex`]).

use rusqlite::{Connection, OptionalExtension, params};
use saksi_shared::{DocumentId, Timestamp};

use super::documents::{DOC_COLUMNS, doc_from};
use super::{SqliteStorage, doc_id_of};
use crate::storage::{Blob, DocumentRow, FileIndex, FileRef, StorageError, Upload};

const FILE_COLUMNS: &str = "f.doc_id, f.attachment_id, f.sha256, f.size, f.media_type, f.device_id";

fn file_from(row: &rusqlite::Row<'_>, at: usize) -> Result<FileRef, rusqlite::Error> {
    Ok(FileRef {
        doc_id: doc_id_of(&row.get::<_, String>(at)?)?,
        attachment_id: row.get(at + 1)?,
        sha256: row.get(at + 2)?,
        size: row.get::<_, i64>(at + 3)?.max(0) as u64,
        media_type: row.get(at + 4)?,
        device_id: row.get::<_, String>(at + 5)?.into(),
    })
}

const BLOB_COLUMNS: &str = "sha256, size, uploaded_by, stored_at, unreferenced_since";

fn blob_from(row: &rusqlite::Row<'_>) -> Result<Blob, rusqlite::Error> {
    Ok(Blob {
        sha256: row.get(0)?,
        size: row.get::<_, i64>(1)?.max(0) as u64,
        uploaded_by: row.get::<_, String>(2)?.into(),
        stored_at: row.get(3)?,
        unreferenced_since: row.get(4)?,
    })
}

const UPLOAD_COLUMNS: &str = "id, device_id, sha256, length, received, created_at, updated_at";

fn upload_from(row: &rusqlite::Row<'_>) -> Result<Upload, rusqlite::Error> {
    Ok(Upload {
        id: row.get(0)?,
        device_id: row.get::<_, String>(1)?.into(),
        sha256: row.get(2)?,
        length: row.get::<_, i64>(3)?.max(0) as u64,
        received: row.get::<_, i64>(4)?.max(0) as u64,
        created_at: row.get(5)?,
        updated_at: row.get(6)?,
    })
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Replaces the files `doc` names by `files`, and marks the files held whose naming changed:
/// named again (no longer unreferenced) or named no more (unreferenced from `now`). Runs in the
/// write transaction of the document's changes.
pub(super) fn set_document_files(
    conn: &Connection,
    doc: &DocumentId,
    files: &[FileRef],
    now: Timestamp,
) -> Result<(), StorageError> {
    let id = doc.to_string();
    let mut touched: Vec<String> = {
        let mut stmt =
            conn.prepare_cached("SELECT sha256 FROM document_files WHERE doc_id = ?1")?;
        stmt.query_map(params![id], |r| r.get(0))?
            .collect::<Result<_, _>>()?
    };
    conn.execute("DELETE FROM document_files WHERE doc_id = ?1", params![id])?;
    let mut insert = conn.prepare_cached(
        "INSERT OR REPLACE INTO document_files
             (doc_id, attachment_id, sha256, size, media_type, device_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut ever = conn.prepare_cached(
        "INSERT OR IGNORE INTO document_files_ever (doc_id, sha256) VALUES (?1, ?2)",
    )?;
    for f in files {
        insert.execute(params![
            id,
            f.attachment_id,
            f.sha256,
            int(f.size),
            f.media_type,
            f.device_id.as_str()
        ])?;
        ever.execute(params![id, f.sha256])?;
        touched.push(f.sha256.clone());
    }
    touched.sort();
    touched.dedup();
    refresh_references(conn, &touched, now)
}

/// Sets `unreferenced_since` of the held files among `shas` from whether a record names them.
pub(super) fn refresh_references(
    conn: &Connection,
    shas: &[String],
    now: Timestamp,
) -> Result<(), StorageError> {
    let mut stmt = conn.prepare_cached(
        "UPDATE blobs SET unreferenced_since = CASE
             WHEN EXISTS (SELECT 1 FROM document_files d WHERE d.sha256 = blobs.sha256) THEN NULL
             ELSE COALESCE(unreferenced_since, ?2) END
         WHERE sha256 = ?1",
    )?;
    for sha in shas {
        stmt.execute(params![sha, now])?;
    }
    Ok(())
}

impl FileIndex for SqliteStorage {
    fn documents_naming(&self, sha256: &str) -> Result<Vec<(DocumentRow, FileRef)>, StorageError> {
        self.read(|conn| {
            let columns = DOC_COLUMNS
                .split(", ")
                .map(|c| format!("d.{c}"))
                .collect::<Vec<_>>()
                .join(", ");
            let mut stmt = conn.prepare(&format!(
                "SELECT {columns}, {FILE_COLUMNS} FROM document_files f
                 JOIN documents d ON d.id = f.doc_id
                 WHERE f.sha256 = ?1 ORDER BY f.doc_id, f.attachment_id"
            ))?;
            let width = DOC_COLUMNS.split(", ").count();
            let rows = stmt.query_map(params![sha256], |r| {
                Ok((doc_from(r)?, file_from(r, width)?))
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn files_of(&self, doc: &DocumentId) -> Result<Vec<FileRef>, StorageError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {FILE_COLUMNS} FROM document_files f WHERE f.doc_id = ?1
                 ORDER BY f.attachment_id"
            ))?;
            let rows = stmt.query_map(params![doc.to_string()], |r| file_from(r, 0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn blob(&self, sha256: &str) -> Result<Option<Blob>, StorageError> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    &format!("SELECT {BLOB_COLUMNS} FROM blobs WHERE sha256 = ?1"),
                    params![sha256],
                    blob_from,
                )
                .optional()?)
        })
    }

    fn blobs(&self) -> Result<Vec<Blob>, StorageError> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare(&format!("SELECT {BLOB_COLUMNS} FROM blobs ORDER BY sha256"))?;
            let rows = stmt.query_map([], blob_from)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn upload(&self, id: &str) -> Result<Option<Upload>, StorageError> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    &format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE id = ?1"),
                    params![id],
                    upload_from,
                )
                .optional()?)
        })
    }

    fn upload_for(&self, device: &str, sha256: &str) -> Result<Option<Upload>, StorageError> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    &format!(
                        "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE device_id = ?1 AND sha256 = ?2"
                    ),
                    params![device, sha256],
                    upload_from,
                )
                .optional()?)
        })
    }

    fn create_upload(&self, upload: &Upload) -> Result<(), StorageError> {
        let u = upload.clone();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO uploads (id, device_id, sha256, length, received, created_at,
                                      updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    u.id,
                    u.device_id.as_str(),
                    u.sha256,
                    int(u.length),
                    int(u.received),
                    u.created_at,
                    u.updated_at
                ],
            )?;
            Ok(())
        })
    }

    fn set_upload_received(
        &self,
        id: &str,
        received: u64,
        now: Timestamp,
    ) -> Result<(), StorageError> {
        let id = id.to_owned();
        self.write(move |conn| {
            let n = conn.execute(
                "UPDATE uploads SET received = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, int(received), now],
            )?;
            if n == 0 {
                return Err(StorageError::NotFound(format!("upload {id}")));
            }
            Ok(())
        })
    }

    fn finish_upload(&self, upload: &str, blob: &Blob) -> Result<(), StorageError> {
        let (upload, blob) = (upload.to_owned(), blob.clone());
        self.write(move |conn| {
            // Gone meanwhile (its record was purged, or the clean-up dropped it): the file is
            // not kept.
            if conn.execute("DELETE FROM uploads WHERE id = ?1", params![upload])? == 0 {
                return Err(StorageError::NotFound(format!("upload {upload}")));
            }
            conn.execute(
                "INSERT OR IGNORE INTO blobs (sha256, size, uploaded_by, stored_at,
                                              unreferenced_since)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    blob.sha256,
                    int(blob.size),
                    blob.uploaded_by.as_str(),
                    blob.stored_at,
                    blob.unreferenced_since
                ],
            )?;
            refresh_references(conn, std::slice::from_ref(&blob.sha256), blob.stored_at)
        })
    }

    fn delete_upload(&self, id: &str) -> Result<(), StorageError> {
        let id = id.to_owned();
        self.write(move |conn| {
            conn.execute("DELETE FROM uploads WHERE id = ?1", params![id])?;
            Ok(())
        })
    }

    fn device_usage(&self, device: &str) -> Result<u64, StorageError> {
        self.read(|conn| {
            let held: i64 = conn.query_row(
                "SELECT COALESCE(SUM(size), 0) FROM blobs WHERE uploaded_by = ?1",
                params![device],
                |r| r.get(0),
            )?;
            let uploading: i64 = conn.query_row(
                "SELECT COALESCE(SUM(length), 0) FROM uploads WHERE device_id = ?1",
                params![device],
                |r| r.get(0),
            )?;
            Ok(u64::try_from(held.saturating_add(uploading)).unwrap_or(0))
        })
    }

    fn stale_uploads(&self, before: Timestamp) -> Result<Vec<Upload>, StorageError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE updated_at < ?1 ORDER BY updated_at"
            ))?;
            let rows = stmt.query_map(params![before], upload_from)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn unreferenced_blobs(&self, before: Timestamp) -> Result<Vec<Blob>, StorageError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {BLOB_COLUMNS} FROM blobs
                 WHERE unreferenced_since IS NOT NULL AND unreferenced_since < ?1
                 ORDER BY unreferenced_since"
            ))?;
            let rows = stmt.query_map(params![before], blob_from)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn forget_blob(&self, sha256: &str) -> Result<bool, StorageError> {
        let sha256 = sha256.to_owned();
        self.write(move |conn| {
            let n = conn.execute(
                "DELETE FROM blobs WHERE sha256 = ?1
                 AND NOT EXISTS (SELECT 1 FROM document_files d WHERE d.sha256 = ?1)",
                params![sha256],
            )?;
            Ok(n > 0)
        })
    }
}
