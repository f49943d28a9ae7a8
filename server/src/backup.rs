//! `saksi admin backup FILE` and `saksi admin restore FILE`.
//!
//! **Backup** runs while the server serves: SQLite's `VACUUM INTO` on a read-only connection
//! copies one read transaction, so the copy is a consistent snapshot holding every change
//! committed (and so acknowledged) before the backup began. The copy is written next to FILE
//! under a temporary name, created readable by its owner only (0600) before a byte is written,
//! checked (`integrity_check`, the audit chain), switched out of WAL mode so that it is one
//! self-contained file, fsynced, and only then linked to FILE, which is never overwritten.
//!
//! A backup is **one file** that holds the attached files too: after the snapshot, every file
//! the snapshot's `blobs` table lists is copied from the file store into the backup's own table
//! `backup_files` (in 1 MiB pieces, its SHA-256 checked as it is read). Files are never changed
//! once stored, so the snapshot and the files agree; a file the clean-up removed meanwhile had
//! been named by no record for `unreferenced_file_days`, and leaves the backup with its row.
//!
//! A backup **never holds a purged record**: the records named in the tombstones file
//! (`data_dir/tombstones`, see [`crate::purge`]) are destroyed in the copy, before and after its
//! files are copied, and the copy is rewritten (`VACUUM`) so no freed page keeps their bytes.
//! Restoring a backup made before a purge destroys that record again, from the same file,
//! before the copy is put in place.
//!
//! **Restore** refuses while a server runs on the data directory (it takes the same lock as
//! `saksi serve`, see [`crate::datadir`]) and refuses to replace an existing database unless
//! forced. It copies the backup into the data directory, checks the copy (a Saksi database, a
//! schema this build can run, `integrity_check`, migrations, the audit chain), and only then
//! renames it into place; a replaced database is kept beside it, renamed, never deleted. The
//! files in the backup are written back into the file store (each checked against its SHA-256
//! before it is kept), and the database then carries no copy of them.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use saksi_shared::DocumentId;

use crate::config::Config;
use crate::datadir::{DataDirLock, LockError};
use crate::errors::Chain;
use crate::storage::StorageError;
use crate::storage::sqlite::{
    SCHEMA_VERSION, SqliteStorage, create_private_file, purge_in, verify_audit_chain,
};

/// Why a backup or a restore did not happen. Nothing was changed when one of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} already exists; choose a new file name (backups are never overwritten)")]
    Exists(PathBuf),
    #[error("there is no database at {0}")]
    NoDatabase(PathBuf),
    #[error(
        "{0} already holds a database; restore into an empty data directory, or add --force \
         to replace it (the current database is then kept beside it, renamed)"
    )]
    TargetExists(PathBuf),
    #[error("{path} is not a Saksi database: {reason}")]
    NotSaksi { path: PathBuf, reason: String },
    #[error(
        "{path} has schema version {version}, newer than this version of Saksi ({SCHEMA_VERSION}); \
         restore it with a newer saksi"
    )]
    NewerSchema { path: PathBuf, version: i64 },
    #[error("{path} failed SQLite's integrity check: {report}")]
    Corrupt { path: PathBuf, report: String },
    #[error("{path}")]
    Storage { path: PathBuf, source: StorageError },
    #[error("{path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("{path}: {message}")]
    Files { path: PathBuf, message: String },
}

/// What a database file holds (counts only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub bytes: u64,
    pub schema_version: i64,
    pub users: u64,
    pub devices: u64,
    pub cases: u64,
    pub documents: u64,
    pub audit_entries: u64,
    /// The last audit entry's hash (hex): keep it outside the server, with the backup log.
    pub audit_last_hash: Option<String>,
    /// Attached files, and their bytes.
    pub files: u64,
    pub file_bytes: u64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} bytes, schema {}: {} users, {} devices, {} cases, {} documents, {} files \
             ({} bytes), {} audit entries",
            self.bytes,
            self.schema_version,
            self.users,
            self.devices,
            self.cases,
            self.documents,
            self.files,
            self.file_bytes,
            self.audit_entries
        )?;
        if let Some(hash) = &self.audit_last_hash {
            write!(f, " (audit chain verified, last hash {hash})")?;
        }
        Ok(())
    }
}

fn storage_err(path: &Path) -> impl Fn(StorageError) -> BackupError + '_ {
    move |source| BackupError::Storage {
        path: path.to_owned(),
        source,
    }
}

fn sql_err(path: &Path) -> impl Fn(rusqlite::Error) -> BackupError + '_ {
    move |e| BackupError::Storage {
        path: path.to_owned(),
        source: e.into(),
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A path beside `path` for a file being written (same directory, so a rename is atomic).
fn partial_path(path: &Path, what: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "saksi".into());
    path.with_file_name(format!(".{name}.{what}-{}", std::process::id()))
}

/// Removes a file and the WAL and shared-memory files SQLite may have left beside it.
fn remove_database_files(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    crate::datadir::sync_dir(dir).map_err(io_err(dir))
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Checks a database file: a Saksi database of a schema this build can run, passing
/// `integrity_check`, with an intact audit chain. Returns what it holds.
///
/// `path` must be at the current schema version for the audit check (call it on a migrated
/// copy); [`check_version`] alone is safe on any file.
fn check(path: &Path) -> Result<Summary, BackupError> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .map_err(sql_err(path))?;
    let schema_version = check_version(&conn, path)?;
    let report: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(sql_err(path))?;
    if report != "ok" {
        return Err(BackupError::Corrupt {
            path: path.to_owned(),
            report,
        });
    }
    let (audit_entries, audit_last_hash) = verify_audit_chain(&conn).map_err(storage_err(path))?;
    let count = |table: &str| -> Result<u64, BackupError> {
        let n: i64 = conn
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .map_err(sql_err(path))?;
        Ok(n.max(0) as u64)
    };
    let documents = {
        let n: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM documents WHERE kind <> 'case'",
                [],
                |r| r.get(0),
            )
            .map_err(sql_err(path))?;
        n.max(0) as u64
    };
    let (files, file_bytes) = if schema_version >= 4 {
        conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM blobs",
            [],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?.max(0) as u64,
                    r.get::<_, i64>(1)?.max(0) as u64,
                ))
            },
        )
        .map_err(sql_err(path))?
    } else {
        (0, 0)
    };
    Ok(Summary {
        bytes: 0,
        schema_version,
        users: count("users")?,
        devices: count("devices")?,
        cases: count("cases")?,
        documents,
        audit_entries,
        audit_last_hash,
        files,
        file_bytes,
    })
}

/// Pieces files are copied in (into and out of a backup).
const PIECE: usize = 1 << 20;

/// Copies every file the snapshot at `path` lists from the file store of `data_dir` into the
/// snapshot's `backup_files` table, checking each one's SHA-256. A file missing from the store
/// that a record still names fails the backup; one that no record names (the clean-up removed
/// it meanwhile) leaves the snapshot with its row.
fn copy_files_in(path: &Path, data_dir: &Path) -> Result<(), BackupError> {
    use sha2::{Digest, Sha256};
    use std::io::Read as _;
    let conn = Connection::open(path).map_err(sql_err(path))?;
    if check_version(&conn, path)? < 4 {
        return Ok(());
    }
    conn.execute_batch(
        "CREATE TABLE backup_files (sha256 TEXT NOT NULL, piece INTEGER NOT NULL,
                                    bytes BLOB NOT NULL, PRIMARY KEY (sha256, piece))",
    )
    .map_err(sql_err(path))?;
    let listed: Vec<(String, bool)> = {
        let mut stmt = conn
            .prepare(
                "SELECT b.sha256, EXISTS (SELECT 1 FROM document_files d WHERE d.sha256 = b.sha256)
                 FROM blobs b ORDER BY b.sha256",
            )
            .map_err(sql_err(path))?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(sql_err(path))?
            .collect::<Result<_, _>>()
            .map_err(sql_err(path))?
    };
    let store = crate::files::FsBlobStore::open(data_dir).map_err(|e| BackupError::Files {
        path: data_dir.join("files"),
        message: Chain(&e).to_string(),
    })?;
    let missing = |sha: &str| BackupError::Files {
        path: data_dir.join("files"),
        message: format!("the file {sha} is named by a record but missing from the store"),
    };
    for (sha, named) in listed {
        use crate::files::BlobStore as _;
        let mut reader = match store.open(&sha) {
            Ok(r) => r,
            Err(crate::files::BlobError::NotFound) if !named => {
                conn.execute("DELETE FROM blobs WHERE sha256 = ?1", [&sha])
                    .map_err(sql_err(path))?;
                continue;
            }
            Err(crate::files::BlobError::NotFound) => {
                // Purged while the backup ran (the tombstone is written before the file is
                // deleted)? Then the record goes from the copy too; otherwise the store lost it.
                drop_withdrawn(&conn, path, data_dir)?;
                if still_named(&conn, path, &sha)? {
                    return Err(missing(&sha));
                }
                continue;
            }
            Err(e) => {
                return Err(BackupError::Files {
                    path: data_dir.join("files"),
                    message: Chain(&e).to_string(),
                });
            }
        };
        let tx = conn.unchecked_transaction().map_err(sql_err(path))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; PIECE];
        for piece in 0i64.. {
            let mut filled = 0;
            while filled < PIECE {
                let n = reader
                    .read(&mut buf[filled..])
                    .map_err(io_err(&data_dir.join("files")))?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            if filled == 0 {
                break;
            }
            hasher.update(&buf[..filled]);
            tx.execute(
                "INSERT INTO backup_files (sha256, piece, bytes) VALUES (?1, ?2, ?3)",
                rusqlite::params![sha, piece, &buf[..filled]],
            )
            .map_err(sql_err(path))?;
        }
        if hex::encode(hasher.finalize()) != sha {
            return Err(BackupError::Files {
                path: data_dir.join("files"),
                message: format!("the stored file {sha} does not match its SHA-256"),
            });
        }
        tx.commit().map_err(sql_err(path))?;
    }
    Ok(())
}

fn still_named(conn: &Connection, path: &Path, sha: &str) -> Result<bool, BackupError> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM document_files WHERE sha256 = ?1)",
        [sha],
        |r| r.get(0),
    )
    .map_err(sql_err(path))
}

/// Destroys in the copy at `path` (opened as `conn`) every record the tombstones file of
/// `data_dir` names, with the files only they named: a backup never holds a purged record,
/// even one purged while its snapshot was taken. Returns the ids of the tombstones applied.
fn drop_withdrawn(
    conn: &Connection,
    path: &Path,
    data_dir: &Path,
) -> Result<HashSet<DocumentId>, BackupError> {
    let tombstones = crate::purge::read_file(data_dir);
    let ids = tombstones.iter().map(|t| t.doc_id).collect();
    if tombstones.is_empty() || check_version(conn, path)? < 5 {
        return Ok(ids);
    }
    conn.execute_batch("PRAGMA secure_delete = ON")
        .map_err(sql_err(path))?;
    let has_files: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'backup_files')",
            [],
            |r| r.get(0),
        )
        .map_err(sql_err(path))?;
    let tx = conn.unchecked_transaction().map_err(sql_err(path))?;
    for t in &tombstones {
        let purged = purge_in(&tx, t).map_err(storage_err(path))?;
        if has_files {
            for sha in &purged.files {
                tx.execute("DELETE FROM backup_files WHERE sha256 = ?1", [sha])
                    .map_err(sql_err(path))?;
            }
        }
    }
    tx.commit().map_err(sql_err(path))?;
    Ok(ids)
}

/// Writes the files of the backup at `path` (a restored copy) into the file store of
/// `data_dir`, each checked against its SHA-256, then drops them from the database.
fn copy_files_out(path: &Path, data_dir: &Path) -> Result<(), BackupError> {
    use crate::files::BlobStore as _;
    let conn = Connection::open(path).map_err(sql_err(path))?;
    let has_table: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'backup_files')",
            [],
            |r| r.get(0),
        )
        .map_err(sql_err(path))?;
    if !has_table {
        return Ok(());
    }
    let store = crate::files::FsBlobStore::open(data_dir).map_err(|e| BackupError::Files {
        path: data_dir.join("files"),
        message: Chain(&e).to_string(),
    })?;
    let files_err = |e: crate::files::BlobError| BackupError::Files {
        path: data_dir.join("files"),
        message: Chain(&e).to_string(),
    };
    let shas: Vec<String> = {
        let mut stmt = conn
            // A file whose record was purged since the backup (its `blobs` row went with the
            // record) is not written back.
            .prepare(
                "SELECT DISTINCT sha256 FROM backup_files
                 WHERE sha256 IN (SELECT sha256 FROM blobs) ORDER BY sha256",
            )
            .map_err(sql_err(path))?;
        stmt.query_map([], |r| r.get(0))
            .map_err(sql_err(path))?
            .collect::<Result<_, _>>()
            .map_err(sql_err(path))?
    };
    for sha in shas {
        if store.size(&sha).map_err(files_err)?.is_some() {
            continue;
        }
        let upload = hex::encode(crate::accounts::random_16());
        let mut partial = store.open_partial(&upload, 0).map_err(files_err)?;
        let mut stmt = conn
            .prepare("SELECT bytes FROM backup_files WHERE sha256 = ?1 ORDER BY piece")
            .map_err(sql_err(path))?;
        let mut rows = stmt.query([&sha]).map_err(sql_err(path))?;
        while let Some(row) = rows.next().map_err(sql_err(path))? {
            let bytes: Vec<u8> = row.get(0).map_err(sql_err(path))?;
            partial.write_all(&bytes).map_err(files_err)?;
        }
        partial.sync().map_err(files_err)?;
        drop(partial);
        store.finish(&upload, &sha).map_err(files_err)?;
    }
    conn.execute_batch("DROP TABLE backup_files; VACUUM;")
        .map_err(sql_err(path))?;
    Ok(())
}

/// The schema version of a Saksi database; refuses other files and newer schemas.
fn check_version(conn: &Connection, path: &Path) -> Result<i64, BackupError> {
    let not_saksi = |reason: &str| BackupError::NotSaksi {
        path: path.to_owned(),
        reason: reason.into(),
    };
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| not_saksi(&e.to_string()))?;
    let has_audit: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit')",
            [],
            |r| r.get(0),
        )
        .map_err(|e| not_saksi(&e.to_string()))?;
    if version < 1 || !has_audit {
        return Err(not_saksi("no Saksi schema in it"));
    }
    if version > SCHEMA_VERSION {
        return Err(BackupError::NewerSchema {
            path: path.to_owned(),
            version,
        });
    }
    Ok(version)
}

/// Makes `path` a single self-contained file (rollback journal instead of WAL) and fsyncs it.
fn seal(path: &Path) -> Result<u64, BackupError> {
    {
        let conn = Connection::open(path).map_err(sql_err(path))?;
        let _: String = conn
            .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
            .map_err(sql_err(path))?;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_err(path))?;
    file.sync_all().map_err(io_err(path))?;
    Ok(file.metadata().map_err(io_err(path))?.len())
}

/// Writes a consistent snapshot of the configured database to `dest` (which must not exist)
/// while a server may be running on it, and returns what the snapshot holds.
pub fn backup(config: &Config, dest: &Path) -> Result<Summary, BackupError> {
    let source = config.database_path();
    if !source.is_file() {
        return Err(BackupError::NoDatabase(source));
    }
    if dest.exists() {
        return Err(BackupError::Exists(dest.to_owned()));
    }
    let partial = partial_path(dest, "partial");
    remove_database_files(&partial);
    let result = (|| {
        {
            let conn = Connection::open_with_flags(
                &source,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(sql_err(&source))?;
            conn.busy_timeout(std::time::Duration::from_secs(30))
                .map_err(sql_err(&source))?;
            check_version(&conn, &source)?;
            // `VACUUM INTO` would create the file with the umask (0644 under the usual 022):
            // it is created empty and private first, which SQLite accepts and keeps, and the
            // files SQLite makes beside it take its mode.
            create_private_file(&partial).map_err(io_err(&partial))?;
            conn.execute("VACUUM INTO ?1", [partial.to_string_lossy()])
                .map_err(sql_err(&source))?;
        }
        {
            let conn = Connection::open(&partial).map_err(sql_err(&partial))?;
            drop_withdrawn(&conn, &partial, &config.data_dir)?;
        }
        copy_files_in(&partial, &config.data_dir)?;
        // Purges that finished while the files were copied, or while the copy was rewritten,
        // are applied too, until one pass meets no new tombstone; the copy is rewritten after
        // each, so no freed page keeps what they removed.
        let summary = loop {
            let known = {
                let conn = Connection::open(&partial).map_err(sql_err(&partial))?;
                let known = drop_withdrawn(&conn, &partial, &config.data_dir)?;
                conn.execute_batch("VACUUM").map_err(sql_err(&partial))?;
                known
            };
            let mut summary = check(&partial)?;
            summary.bytes = seal(&partial)?;
            if tombstone_ids(&config.data_dir) == known {
                break summary;
            }
        };
        // A hard link fails if `dest` appeared meanwhile: a backup never replaces a file.
        std::fs::hard_link(&partial, dest).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                BackupError::Exists(dest.to_owned())
            } else {
                io_err(dest)(e)
            }
        })?;
        sync_dir(&parent_of(dest))?;
        Ok(summary)
    })();
    remove_database_files(&partial);
    result
}

/// The ids in the tombstones file.
fn tombstone_ids(data_dir: &Path) -> HashSet<DocumentId> {
    crate::purge::read_file(data_dir)
        .into_iter()
        .map(|t| t.doc_id)
        .collect()
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct Restored {
    pub summary: Summary,
    /// Where the replaced database was moved (with `--force` only).
    pub replaced: Option<PathBuf>,
    /// Records purged after the backup was made, destroyed again in the restored copy.
    pub reapplied: usize,
    /// Purges scheduled after the backup was made and put back, and purges undone since that
    /// the backup still held (from `data_dir/purges-waiting`).
    pub waiting: (usize, usize),
}

/// Restores the backup at `source` into the configured data directory. Refuses while a server
/// runs there, and refuses to replace an existing database unless `force`.
pub fn restore(config: &Config, source: &Path, force: bool) -> Result<Restored, BackupError> {
    if !source.is_file() {
        return Err(BackupError::NoDatabase(source.to_owned()));
    }
    // Held until the end: no server can start on a half-restored directory.
    let _lock = DataDirLock::acquire(&config.data_dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&config.data_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io_err(&config.data_dir))?;
    }
    let target = config.database_path();
    let exists = target.exists();
    if exists && !force {
        return Err(BackupError::TargetExists(target));
    }
    let copy = partial_path(&target, "restoring");
    remove_database_files(&copy);
    let result = (|| {
        {
            // Private from the first byte (`fs::copy` would give it the backup's mode).
            let mut from = std::fs::File::open(source).map_err(io_err(source))?;
            let mut to = create_private_file(&copy).map_err(io_err(&copy))?;
            std::io::copy(&mut from, &mut to).map_err(io_err(&copy))?;
        }
        // Check the file as it is, then bring it to this build's schema, then check again.
        {
            let conn = Connection::open_with_flags(&copy, OpenFlags::SQLITE_OPEN_READ_WRITE)
                .map_err(sql_err(&copy))?;
            check_version(&conn, &copy)?;
            let report: String = conn
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .map_err(sql_err(&copy))?;
            if report != "ok" {
                return Err(BackupError::Corrupt {
                    path: source.to_owned(),
                    report,
                });
            }
        }
        let (reapplied, waiting) = {
            // Records purged since the backup was made are destroyed again before the copy
            // is put in place (the tombstones file outlives every restore).
            let storage = SqliteStorage::open(&copy).map_err(storage_err(source))?;
            let reconciled = crate::purge::reconcile(&storage, &config.data_dir, true).and_then(
                |(purged, reapplied)| {
                    let waiting = crate::purge::restore_pending(&storage, &config.data_dir)?;
                    Ok((purged, reapplied, waiting))
                },
            );
            storage.close();
            let (purged, reapplied, waiting) = reconciled.map_err(|e| BackupError::Files {
                path: crate::purge::tombstone_file(&config.data_dir),
                message: Chain(&e).to_string(),
            })?;
            crate::purge::shred_files(&config.data_dir, &purged);
            (reapplied.len(), waiting)
        };
        copy_files_out(&copy, &config.data_dir)?;
        let mut summary = check(&copy).map_err(|e| match e {
            BackupError::Storage { source: err, .. } => BackupError::Storage {
                path: source.to_owned(),
                source: err,
            },
            other => other,
        })?;
        summary.bytes = seal(&copy)?;
        let replaced = if exists {
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let aside = target.with_file_name(format!("saksi.sqlite3.replaced-{stamp}"));
            for suffix in ["", "-wal", "-shm"] {
                let (mut from, mut to) =
                    (target.as_os_str().to_owned(), aside.as_os_str().to_owned());
                from.push(suffix);
                to.push(suffix);
                let from = PathBuf::from(from);
                if from.exists() {
                    std::fs::rename(&from, PathBuf::from(to)).map_err(io_err(&from))?;
                }
            }
            Some(aside)
        } else {
            None
        };
        std::fs::rename(&copy, &target).map_err(io_err(&target))?;
        sync_dir(&config.data_dir)?;
        Ok(Restored {
            summary,
            replaced,
            reapplied,
            waiting,
        })
    })();
    remove_database_files(&copy);
    result
}

/// `saksi admin backup FILE`: writes the backup and prints what it holds.
pub fn backup_command(
    config: &Config,
    file: &Path,
    out: &mut dyn Write,
) -> Result<(), BackupError> {
    let stdout = Path::new("standard output");
    let summary = backup(config, file)?;
    writeln!(out, "backup written to {}", file.display()).map_err(io_err(stdout))?;
    writeln!(out, "{summary}").map_err(io_err(stdout))?;
    Ok(())
}

/// `saksi admin restore FILE [--force]`: restores and prints what was put back.
pub fn restore_command(
    config: &Config,
    file: &Path,
    force: bool,
    out: &mut dyn Write,
) -> Result<(), BackupError> {
    let stdout = Path::new("standard output");
    let restored = restore(config, file, force)?;
    writeln!(
        out,
        "restored {} into {}",
        file.display(),
        config.database_path().display()
    )
    .map_err(io_err(stdout))?;
    writeln!(out, "{}", restored.summary).map_err(io_err(stdout))?;
    if restored.reapplied > 0 {
        writeln!(
            out,
            "{} record(s) purged after this backup was made were destroyed again \
             (from the tombstones file)",
            restored.reapplied
        )
        .map_err(io_err(stdout))?;
    }
    let (scheduled, undone) = restored.waiting;
    if scheduled + undone > 0 {
        writeln!(
            out,
            "waiting purges as they were before the restore: {scheduled} put back, {undone} \
             undone (from the purges-waiting file)"
        )
        .map_err(io_err(stdout))?;
    }
    if let Some(aside) = restored.replaced {
        writeln!(
            out,
            "the replaced database was kept as {} (delete it once you are sure)",
            aside.display()
        )
        .map_err(io_err(stdout))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::AuditEvent;
    use crate::storage::prelude::*;
    use saksi_shared::Role;
    use saksi_testkit::at;

    /// A data directory with a user and a few audit entries, and a backup of it.
    fn backed_up() -> (tempfile::TempDir, Config, PathBuf) {
        let dir = tempfile::tempdir().expect("dir");
        let config = Config {
            data_dir: dir.path().join("data"),
            ..Config::default()
        };
        std::fs::create_dir_all(&config.data_dir).expect("data dir");
        let storage = SqliteStorage::open(&config.database_path()).expect("open");
        storage
            .create_user("sophea", Role::Monitor, "hash", at(1))
            .expect("user");
        for i in 0..3 {
            storage
                .append_audit(AuditEvent {
                    at: at(i),
                    username: Some("cli".into()),
                    device_id: None,
                    action: crate::storage::AuditAction::UserCreated,
                    target: Some("sophea".into()),
                    detail: String::new(),
                })
                .expect("audit");
        }
        storage.close();
        let file = dir.path().join("backup.sqlite3");
        let summary = backup(&config, &file).expect("backup");
        assert_eq!((summary.users, summary.audit_entries), (1, 3));
        (dir, config, file)
    }

    fn fresh(dir: &tempfile::TempDir, name: &str) -> Config {
        Config {
            data_dir: dir.path().join(name),
            ..Config::default()
        }
    }

    #[test]
    fn a_backup_never_replaces_a_file_and_restores_only_once_without_force() {
        let (dir, config, file) = backed_up();
        assert!(matches!(
            backup(&config, &file),
            Err(BackupError::Exists(_))
        ));
        let target = fresh(&dir, "restored");
        restore(&target, &file, false).expect("restored");
        assert!(matches!(
            restore(&target, &file, false),
            Err(BackupError::TargetExists(_))
        ));
        let again = restore(&target, &file, true).expect("forced");
        assert!(again.replaced.expect("kept aside").is_file());
        let _lock = DataDirLock::acquire(&target.data_dir).expect("lock");
        assert!(matches!(
            restore(&target, &file, true),
            Err(BackupError::Lock(LockError::Busy { .. }))
        ));
    }

    #[test]
    fn restore_refuses_what_is_not_a_sound_saksi_database() {
        let (dir, _, file) = backed_up();
        let refused = |path: &Path, name: &str| {
            let target = fresh(&dir, name);
            let err = restore(&target, path, false).expect_err("refused");
            assert!(
                !target.database_path().exists(),
                "nothing restored after: {err}"
            );
            err
        };

        let garbage = dir.path().join("garbage");
        std::fs::write(&garbage, vec![7u8; 8192]).expect("write");
        refused(&garbage, "a");

        let other = dir.path().join("other.sqlite3");
        Connection::open(&other)
            .and_then(|c| c.execute_batch("CREATE TABLE t (x)"))
            .expect("other");
        assert!(matches!(refused(&other, "b"), BackupError::NotSaksi { .. }));

        let newer = dir.path().join("newer.sqlite3");
        std::fs::copy(&file, &newer).expect("copy");
        Connection::open(&newer)
            .and_then(|c| c.pragma_update(None, "user_version", SCHEMA_VERSION + 1))
            .expect("version");
        assert!(matches!(
            refused(&newer, "c"),
            BackupError::NewerSchema { .. }
        ));

        let tampered = dir.path().join("tampered.sqlite3");
        std::fs::copy(&file, &tampered).expect("copy");
        Connection::open(&tampered)
            .and_then(|c| {
                c.execute_batch(
                    "DROP TRIGGER audit_no_update;
                     UPDATE audit SET detail = 'edited' WHERE seq = 2;",
                )
            })
            .expect("tamper");
        assert!(matches!(
            refused(&tampered, "d"),
            BackupError::Storage {
                source: StorageError::AuditChainBroken(2),
                ..
            }
        ));

        // Damage inside the file (past the header page): refused one way or another.
        let damaged = dir.path().join("damaged.sqlite3");
        let mut bytes = std::fs::read(&file).expect("read");
        let len = bytes.len();
        for b in &mut bytes[4096..len.min(4096 * 6)] {
            *b ^= 0x5a;
        }
        std::fs::write(&damaged, bytes).expect("write");
        refused(&damaged, "e");
    }
}
