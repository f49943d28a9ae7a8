//! SQLite storage (the default): one file in the data directory, WAL mode, `synchronous=FULL`.
//!
//! All writes go through one writer thread that owns the only write connection. It takes every
//! write waiting in its queue, runs each in its own savepoint inside one transaction, and commits
//! once (group commit): under load many devices' changes share one fsync, and a failing write
//! rolls back alone. Reads use a small pool of read-only connections, which WAL lets run beside
//! the writer.
//!
//! One module per trait of [`Storage`]: `accounts`, `documents`, `audit`, `files`, `purge`;
//! this one holds the connections, the writer and the migrations.
//!
//! The writer deletes with `secure_delete` on: what a delete removes is overwritten with zeros
//! in the database file, so that a purged record's words do not stay in freed pages.

mod accounts;
mod audit;
mod documents;
mod files;
mod purge;

pub use audit::verify_audit_chain;
pub use purge::purge_in;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Condvar, Mutex};
use std::thread;

use rusqlite::{Connection, OpenFlags, params};
use saksi_shared::{DocumentId, Role};

use super::{Storage, StorageError};

use crate::errors::Chain;

/// Migrations, in order. `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/sqlite/0001_init.sql"),
    include_str!("../../../migrations/sqlite/0002_access_changes.sql"),
    include_str!("../../../migrations/sqlite/0003_device_probes.sql"),
    include_str!("../../../migrations/sqlite/0004_files.sql"),
    include_str!("../../../migrations/sqlite/0005_purge.sql"),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Most writes committed together.
const MAX_BATCH: usize = 512;

/// Most read-only connections open at once; further reads wait for one. Each connection holds
/// its own parsed schema and page cache: unbounded, a 1,000-phone reconnect storm (every
/// connection checking its device now and then, on tokio's blocking pool of up to 512 threads)
/// had some 80 MB of them open at its peak.
const MAX_READERS: usize = 8;

/// A read connection in use (or a slot to open one in): back to the pool when dropped. A
/// connection whose read panicked, or that failed to open, frees its slot instead.
struct ReaderLease<'a> {
    storage: &'a SqliteStorage,
    conn: Option<Connection>,
}

impl Drop for ReaderLease<'_> {
    fn drop(&mut self) {
        let mut readers = self.storage.readers.lock().expect("reader pool lock");
        match self.conn.take() {
            Some(conn) if !thread::panicking() => readers.idle.push(conn),
            _ => readers.open -= 1,
        }
        drop(readers);
        self.storage.reader_free.notify_one();
    }
}

/// The read-only connections: idle ones, and how many are open (idle or in use).
#[derive(Debug, Default)]
struct Readers {
    idle: Vec<Connection>,
    open: usize,
}

type Completion = Box<dyn FnOnce(Result<(), StorageError>) + Send>;
type Job = Box<dyn FnOnce(&Connection) -> (bool, Completion) + Send>;

/// SQLite-backed [`Storage`].
#[derive(Debug)]
pub struct SqliteStorage {
    path: PathBuf,
    writer: Mutex<Option<mpsc::Sender<Job>>>,
    writer_thread: Mutex<Option<thread::JoinHandle<()>>>,
    readers: Mutex<Readers>,
    /// Signalled when a read connection goes back to `readers`, or one fails to open.
    reader_free: Condvar,
}

impl From<rusqlite::Error> for StorageError {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::SqliteFailure(ref f, _) if f.code == rusqlite::ErrorCode::DiskFull => {
                StorageError::DiskFull
            }
            rusqlite::Error::SqliteFailure(ref f, _)
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                StorageError::Conflict(e.to_string())
            }
            other => StorageError::database("database error", other),
        }
    }
}

fn configure(conn: &Connection) -> Result<(), StorageError> {
    conn.busy_timeout(WRITER_BUSY_TIMEOUT)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA secure_delete = ON;",
    )?;
    Ok(())
}

/// How long a write waits for a lock another connection holds (a backup, the command line).
const WRITER_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

thread_local! {
    /// Set by a write job (on the writer thread) that wants the WAL checkpointed and truncated
    /// once its transaction is committed: a purge, so that no old copy of its pages stays.
    static CHECKPOINT_AFTER_COMMIT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Asks the writer to checkpoint and truncate the WAL after the current transaction commits.
pub(super) fn checkpoint_after_commit() {
    CHECKPOINT_AFTER_COMMIT.with(|c| c.set(true));
}

/// Creates `path` empty, readable and writable by its owner only (0600); fails if it exists.
///
/// SQLite creates a database file with the process's umask (0644 under the usual 022), but
/// its `-wal`, `-shm` and `-journal` files with the mode of the database itself: a database
/// (or a `VACUUM INTO` target, which may be an empty file) created this way first keeps all of
/// them private.
pub fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Makes the database at `path` private before SQLite opens it: created empty with mode 0600
/// if it does not exist; otherwise the database and the files SQLite keeps beside it lose any
/// group and other permissions (a database an older Saksi created with the umask).
fn make_private(path: &Path) -> Result<(), StorageError> {
    match create_private_file(path) {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(StorageError::database(
                format!("cannot create {}", path.display()),
                e,
            ));
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            let file = PathBuf::from(file);
            let Ok(meta) = std::fs::metadata(&file) else {
                continue;
            };
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0 {
                let private = std::fs::Permissions::from_mode(mode & 0o700);
                if let Err(e) = std::fs::set_permissions(&file, private) {
                    tracing::warn!(
                        file = %file.display(),
                        error = %Chain(&e),
                        "cannot make a database file private"
                    );
                }
            }
        }
    }
    Ok(())
}

impl SqliteStorage {
    /// Opens (creating if needed) the database at `path` and runs pending migrations. A new
    /// database, and the files SQLite keeps beside it, are readable by their owner only.
    pub fn open(path: &Path) -> Result<SqliteStorage, StorageError> {
        make_private(path)?;
        let conn = Connection::open(path)?;
        configure(&conn)?;
        let before: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        migrate(&conn)?;
        // Freed pages of a database written before `secure_delete` may still hold deleted
        // content: rewritten once, the first time this version opens it.
        if (1..5).contains(&before) {
            tracing::info!("rewriting the database once, so that no deleted content stays in it");
            conn.execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")?;
        }
        let (tx, rx) = mpsc::channel::<Job>();
        let handle = thread::Builder::new()
            .name("saksi-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx))
            .map_err(|e| StorageError::database("cannot start the database writer thread", e))?;
        Ok(SqliteStorage {
            path: path.to_owned(),
            writer: Mutex::new(Some(tx)),
            writer_thread: Mutex::new(Some(handle)),
            readers: Mutex::new(Readers::default()),
            reader_free: Condvar::new(),
        })
    }

    /// Stops the writer after the writes already queued; later writes fail with `Closed`.
    pub fn close(&self) {
        self.writer.lock().expect("writer lock").take();
        if let Some(handle) = self.writer_thread.lock().expect("thread lock").take() {
            let _ = handle.join();
        }
    }

    /// Makes a consistent copy of the database into `dest` (which must not exist, and is
    /// created readable by its owner only) while it stays in use.
    pub fn backup_to(&self, dest: &Path) -> Result<(), StorageError> {
        create_private_file(dest)
            .map_err(|e| StorageError::database(format!("cannot create {}", dest.display()), e))?;
        let copied = self.read(|conn| {
            conn.execute("VACUUM INTO ?1", params![dest.to_string_lossy()])?;
            Ok(())
        });
        if copied.is_err() {
            let _ = std::fs::remove_file(dest);
        }
        copied
    }

    pub(super) fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let idle = {
            let mut readers = self.readers.lock().expect("reader pool lock");
            loop {
                if let Some(conn) = readers.idle.pop() {
                    break Some(conn);
                }
                if readers.open < MAX_READERS {
                    readers.open += 1;
                    break None;
                }
                readers = self.reader_free.wait(readers).expect("reader pool lock");
            }
        };
        let mut lease = ReaderLease {
            storage: self,
            conn: idle,
        };
        let conn = match lease.conn.take() {
            Some(conn) => conn,
            None => self.open_reader()?,
        };
        f(lease.conn.insert(conn))
    }

    fn open_reader(&self) -> Result<Connection, StorageError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        Ok(conn)
    }

    /// Runs `f` in the writer's transaction and waits until it is committed.
    pub(super) fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let (reply_tx, reply_rx) = mpsc::sync_channel::<Result<T, StorageError>>(1);
        let job: Job = Box::new(move |conn| {
            let result = f(conn);
            let ok = result.is_ok();
            let done: Completion = Box::new(move |committed| {
                let _ = reply_tx.send(committed.and(result));
            });
            (ok, done)
        });
        let sender = self
            .writer
            .lock()
            .expect("writer lock")
            .clone()
            .ok_or(StorageError::Closed)?;
        sender.send(job).map_err(|_| StorageError::Closed)?;
        reply_rx.recv().map_err(|_| StorageError::Closed)?
    }
}

impl Drop for SqliteStorage {
    fn drop(&mut self) {
        self.close();
    }
}

fn migrate(conn: &Connection) -> Result<(), StorageError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StorageError::NewerSchema(version));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        tracing::info!(to_version = i + 1, "database migrated");
    }
    Ok(())
}

fn writer_loop(conn: Connection, rx: mpsc::Receiver<Job>) {
    // A checkpoint a purge asked for that readers held up: tried again after every commit
    // until it empties the WAL.
    let mut checkpoint_owed = false;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut completions = Vec::with_capacity(batch.len());
        let began = conn.execute_batch("BEGIN IMMEDIATE");
        if let Err(e) = began {
            let err = StorageError::from(e);
            for job in batch {
                let (_, done) = job(&conn);
                completions.push(done);
            }
            for done in completions {
                done(Err(err.clone()));
            }
            continue;
        }
        for job in batch {
            let saved = conn.execute_batch("SAVEPOINT job");
            let (ok, done) = job(&conn);
            if saved.is_ok() {
                if !ok {
                    let _ = conn.execute_batch("ROLLBACK TO job");
                }
                let _ = conn.execute_batch("RELEASE job");
            }
            completions.push(done);
        }
        let committed = conn.execute_batch("COMMIT").map_err(StorageError::from);
        if committed.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        let asked = CHECKPOINT_AFTER_COMMIT.with(|c| c.replace(false)) && committed.is_ok();
        if asked || checkpoint_owed {
            // Every page of the WAL goes into the database file, and the WAL is cut to nothing.
            // A reader in the middle of a read holds it up: tried again for up to a second when
            // a purge asks, then once after each later commit until it succeeds.
            let tries = if asked { 20 } else { 0 };
            // Each attempt returns at once when a reader holds the WAL (no busy wait): the
            // writer never stalls behind a long read (a backup's snapshot) for a checkpoint.
            let _ = conn.busy_timeout(std::time::Duration::ZERO);
            for attempt in 0.. {
                let truncated: Result<(i64, i64, i64), _> =
                    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    });
                match truncated {
                    Ok((0, _, _)) => {
                        checkpoint_owed = false;
                        break;
                    }
                    Ok(_) if attempt < tries => thread::sleep(std::time::Duration::from_millis(50)),
                    Ok((busy, log, done)) => {
                        if !checkpoint_owed {
                            tracing::warn!(
                                busy,
                                log,
                                done,
                                "WAL checkpoint held up by readers: tried again after the next write"
                            );
                        }
                        checkpoint_owed = true;
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %Chain(&e), "WAL checkpoint failed: tried again after the next write");
                        checkpoint_owed = true;
                        break;
                    }
                }
            }
            let _ = conn.busy_timeout(WRITER_BUSY_TIMEOUT);
        }
        if completions.len() > 1 {
            tracing::trace!(writes = completions.len(), "group commit");
        }
        for done in completions {
            done(committed.clone());
        }
    }
}

pub(super) fn role_of(s: &str) -> Result<Role, rusqlite::Error> {
    Role::parse(s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("unknown role {s}").into(),
        )
    })
}

pub(super) fn doc_id_of(s: &str) -> Result<DocumentId, rusqlite::Error> {
    DocumentId::parse(s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

impl Storage for SqliteStorage {
    fn check_health(&self) -> Result<(), StorageError> {
        self.read(|conn| {
            conn.query_row("SELECT COUNT(*) FROM users", [], |r| r.get::<_, i64>(0))?;
            Ok(())
        })?;
        // An empty transaction through the writer: it is running and can take the write lock.
        self.write(|_| Ok(()))
    }

    fn size_bytes(&self) -> Result<u64, StorageError> {
        self.read(|conn| {
            let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            let size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            Ok(u64::try_from(pages * size).unwrap_or(0))
        })
    }
}

#[cfg(test)]
mod tests {
    use saksi_testkit::at;
    use std::sync::Arc;

    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::storage::prelude::*;
    use crate::storage::{Blob, PendingPurge, Upload};

    fn storage() -> (tempfile::TempDir, Arc<SqliteStorage>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = SqliteStorage::open(&dir.path().join("saksi.sqlite3")).expect("open");
        (dir, Arc::new(storage))
    }

    /// An upload whose row went meanwhile (its record purged while the last bytes were
    /// checked) does not make its file known: the caller deletes the bytes.
    #[test]
    fn an_upload_dropped_meanwhile_does_not_finish() {
        let (_dir, storage) = storage();
        let sha = "ab".repeat(32);
        let upload = Upload {
            id: "0f".repeat(16),
            device_id: "phone".into(),
            sha256: sha.clone(),
            length: 10,
            received: 10,
            created_at: at(1),
            updated_at: at(1),
        };
        storage.create_upload(&upload).expect("upload");
        storage.delete_upload(&upload.id).expect("dropped");
        let blob = Blob {
            sha256: sha.clone(),
            size: 10,
            uploaded_by: "phone".into(),
            stored_at: at(2),
            unreferenced_since: None,
        };
        assert!(matches!(
            storage.finish_upload(&upload.id, &blob),
            Err(StorageError::NotFound(_))
        ));
        assert!(storage.blob(&sha).expect("read").is_none());
        // An upload still there finishes.
        storage.create_upload(&upload).expect("again");
        storage.finish_upload(&upload.id, &blob).expect("finished");
        assert!(storage.blob(&sha).expect("read").is_some());
    }

    /// A due purge claimed by the server can no longer be undone.
    #[test]
    fn a_claimed_purge_cannot_be_undone() {
        let (_dir, storage) = storage();
        let doc = DocumentId::from_bytes([4; 16]);
        let purge = PendingPurge {
            doc_id: doc,
            requested_at: at(1),
            username: "chenda".into(),
            reason: crate::storage::PurgeReason::Safety,
            due_at: at(100),
        };
        storage.schedule_purge(&purge).expect("scheduled");
        assert!(
            !storage.claim_purge(&doc, at(99)).expect("claim"),
            "not due yet"
        );
        assert!(storage.claim_purge(&doc, at(100)).expect("claim"));
        assert!(
            !storage.cancel_purge(&doc).expect("cancel"),
            "claimed: nothing to undo"
        );
        assert!(
            !storage.claim_purge(&doc, at(100)).expect("claim"),
            "claimed once"
        );
    }

    /// Many reads at once share at most `MAX_READERS` connections, and all of them finish.
    #[test]
    fn concurrent_reads_share_a_bounded_pool() {
        let (_dir, storage) = storage();
        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let threads: Vec<_> = (0..40)
            .map(|_| {
                let (storage, running, most) = (storage.clone(), running.clone(), most.clone());
                thread::spawn(move || {
                    storage
                        .read(|conn| {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            thread::sleep(Duration::from_millis(20));
                            let n: i64 =
                                conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?;
                            running.fetch_sub(1, Ordering::SeqCst);
                            Ok(n)
                        })
                        .expect("read")
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().expect("reader thread"), 0);
        }
        let most = most.load(Ordering::SeqCst);
        assert!(most > 1 && most <= MAX_READERS, "{most} reads ran at once");
        let readers = storage.readers.lock().unwrap();
        assert!(readers.open <= MAX_READERS && readers.idle.len() == readers.open);
    }

    /// A read that panics gives its slot back: later reads do not wait for it forever.
    #[test]
    fn a_panicking_read_frees_its_connection_slot() {
        let (_dir, storage) = storage();
        for _ in 0..MAX_READERS + 2 {
            let s = storage.clone();
            let result =
                thread::spawn(move || s.read::<()>(|_| panic!("a read that fails badly"))).join();
            assert!(result.is_err(), "the read panicked");
        }
        let (tx, rx) = mpsc::channel();
        let s = storage.clone();
        thread::spawn(move || {
            let _ = tx.send(s.read(|conn| Ok(conn.is_autocommit())));
        });
        let read = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("a read after the panics does not wait forever");
        assert!(read.expect("read"));
        assert_eq!(storage.readers.lock().unwrap().open, 1);
    }

    /// The database, its `-wal` and `-shm` files and a copy are the server's user's only,
    /// whatever the umask; a database an older version left readable by others is restricted.
    #[cfg(unix)]
    #[test]
    fn database_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path| {
            std::fs::metadata(path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                .permissions()
                .mode()
                & 0o777
        };
        let beside = |db: &Path, suffix: &str| {
            let mut file = db.as_os_str().to_owned();
            file.push(suffix);
            PathBuf::from(file)
        };
        let (dir, storage) = storage();
        let db = dir.path().join("saksi.sqlite3");
        storage
            .create_user("sophea", Role::Monitor, "hash", at(1))
            .expect("user");
        for suffix in ["", "-wal", "-shm"] {
            assert_eq!(mode(&beside(&db, suffix)), 0o600, "saksi.sqlite3{suffix}");
        }
        let copy = dir.path().join("copy.sqlite3");
        storage.backup_to(&copy).expect("copied");
        assert_eq!(mode(&copy), 0o600);
        assert!(
            storage.backup_to(&copy).is_err(),
            "a copy never replaces a file"
        );
        assert!(std::fs::metadata(&copy).expect("kept").len() > 0);
        storage.close();
        drop(storage);

        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let storage = SqliteStorage::open(&db).expect("reopened");
        storage
            .create_user("vanna", Role::Monitor, "hash", at(2))
            .expect("user");
        for suffix in ["", "-wal", "-shm"] {
            assert_eq!(mode(&beside(&db, suffix)), 0o600, "saksi.sqlite3{suffix}");
        }
        storage.close();
    }
}
