//! SQLite storage (the default): one file in the data directory, WAL mode, `synchronous=FULL`.
//!
//! All writes go through one writer thread that owns the only write connection. It takes every
//! write waiting in its queue, runs each in its own savepoint inside one transaction, and commits
//! once (group commit): under load many devices' changes share one fsync, and a failing write
//! rolls back alone. Reads use a small pool of read-only connections, which WAL lets run beside
//! the writer.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Condvar, Mutex};
use std::thread;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use saksi_shared::{DocumentId, Millis, Role};
use sha2::{Digest, Sha256};

use super::{
    AuditAction, AuditEntry, AuditEvent, AuditFilter, Case, Device, DocumentCounts, DocumentFilter,
    DocumentRow, DocumentSort, DocumentWrite, Storage, StorageError, User, UserId,
};

/// Migrations, in order. `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/0001_init.sql"),
    include_str!("../../migrations/sqlite/0002_access_changes.sql"),
    include_str!("../../migrations/sqlite/0003_device_probes.sql"),
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
            other => StorageError::Database(other.to_string()),
        }
    }
}

fn configure(conn: &Connection) -> Result<(), StorageError> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;",
    )?;
    Ok(())
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
            return Err(StorageError::Database(format!(
                "cannot create {}: {e}",
                path.display()
            )));
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
                        error = %e,
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
        migrate(&conn)?;
        let (tx, rx) = mpsc::channel::<Job>();
        let handle = thread::Builder::new()
            .name("saksi-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx))
            .map_err(|e| StorageError::Database(format!("cannot start writer thread: {e}")))?;
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
        create_private_file(dest).map_err(|e| {
            StorageError::Database(format!("cannot create {}: {e}", dest.display()))
        })?;
        let copied = self.read(|conn| {
            conn.execute("VACUUM INTO ?1", params![dest.to_string_lossy()])?;
            Ok(())
        });
        if copied.is_err() {
            let _ = std::fs::remove_file(dest);
        }
        copied
    }

    fn read<T>(
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
    fn write<T: Send + 'static>(
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

/// Notes that what `user` may read changed ([`Storage::access_changes_since`]).
fn access_changed(conn: &Connection, user: UserId) -> Result<(), StorageError> {
    conn.execute(
        "INSERT INTO access_changes (user_id) VALUES (?1)",
        params![user],
    )?;
    Ok(())
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
        if completions.len() > 1 {
            tracing::trace!(writes = completions.len(), "group commit");
        }
        for done in completions {
            done(committed.clone());
        }
    }
}

fn role_of(s: &str) -> Result<Role, rusqlite::Error> {
    Role::parse(s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("unknown role {s}").into(),
        )
    })
}

fn doc_id_of(s: &str) -> Result<DocumentId, rusqlite::Error> {
    DocumentId::parse(s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

const USER_COLUMNS: &str = "u.id, u.username, u.role, u.disabled, u.created_at";

fn user_from(row: &rusqlite::Row<'_>, at: usize) -> Result<User, rusqlite::Error> {
    Ok(User {
        id: row.get(at)?,
        username: row.get(at + 1)?,
        role: role_of(&row.get::<_, String>(at + 2)?)?,
        disabled: row.get(at + 3)?,
        created_at: row.get(at + 4)?,
    })
}

const DEVICE_COLUMNS: &str =
    "d.id, d.user_id, d.name, d.created_at, d.last_seen, d.expires_at, d.revoked_at";

fn device_from(row: &rusqlite::Row<'_>) -> Result<Device, rusqlite::Error> {
    Ok(Device {
        id: row.get(0)?,
        user_id: row.get(1)?,
        name: row.get(2)?,
        created_at: row.get(3)?,
        last_seen: row.get(4)?,
        expires_at: row.get(5)?,
        revoked_at: row.get(6)?,
    })
}

const DOC_COLUMNS: &str =
    "id, kind, case_id, created_by, title, status, has_conflicts, created_at, updated_at";

fn doc_from(row: &rusqlite::Row<'_>) -> Result<DocumentRow, rusqlite::Error> {
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
    })
}

fn upsert_document(conn: &Connection, row: &DocumentRow) -> Result<(), StorageError> {
    conn.execute(
        "INSERT INTO documents (id, kind, case_id, created_by, title, status, has_conflicts,
                                created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT(id) DO UPDATE SET title = excluded.title, status = excluded.status,
             has_conflicts = excluded.has_conflicts, updated_at = excluded.updated_at",
        params![
            row.id.to_string(),
            row.kind,
            row.case_id.to_string(),
            row.created_by,
            row.title,
            row.status,
            row.has_conflicts,
            row.created_at,
            row.updated_at
        ],
    )?;
    Ok(())
}

/// The hash of an audit entry: SHA-256 over the previous hash and every field, each field
/// length-prefixed so that no two entries encode alike.
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
    if let Some(from) = filter.updated_from {
        arg(&mut sql, " AND updated_at >= ?", from.into());
    }
    if let Some(to) = filter.updated_to {
        arg(&mut sql, " AND updated_at <= ?", to.into());
    }
    (sql, args)
}

fn audit_hash(prev: &[u8], seq: i64, event: &AuditEvent) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(seq.to_be_bytes());
    h.update(event.at.to_be_bytes());
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
                device_id: row.get(3)?,
                action: AuditAction::from_stored(&row.get::<_, String>(4)?),
                target: row.get(5)?,
                detail: row.get(6)?,
            },
            hash: hex::encode(&hash),
        },
        hash,
    ))
}

impl Storage for SqliteStorage {
    fn create_user(
        &self,
        username: &str,
        role: Role,
        password_hash: &str,
        now: Millis,
    ) -> Result<User, StorageError> {
        let (username, hash) = (username.to_owned(), password_hash.to_owned());
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO users (username, role, password_hash, created_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![username, role.as_str(), hash, now],
            )
            .map_err(|e| match StorageError::from(e) {
                StorageError::Conflict(_) => StorageError::Conflict(format!("user {username}")),
                other => other,
            })?;
            Ok(User {
                id: conn.last_insert_rowid(),
                username,
                role,
                disabled: false,
                created_at: now,
            })
        })
    }

    fn user_by_name(&self, username: &str) -> Result<Option<(User, String)>, StorageError> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    &format!(
                        "SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE username = ?1"
                    ),
                    params![username],
                    |r| Ok((user_from(r, 0)?, r.get(5)?)),
                )
                .optional()?)
        })
    }

    fn user_by_id(&self, id: UserId) -> Result<Option<User>, StorageError> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    &format!("SELECT {USER_COLUMNS} FROM users u WHERE id = ?1"),
                    params![id],
                    |r| user_from(r, 0),
                )
                .optional()?)
        })
    }

    fn users(&self) -> Result<Vec<User>, StorageError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {USER_COLUMNS} FROM users u ORDER BY username"
            ))?;
            let rows = stmt.query_map([], |r| user_from(r, 0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn count_users(&self) -> Result<u64, StorageError> {
        self.read(|conn| {
            let n: i64 = conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    fn set_password(&self, user: UserId, password_hash: &str) -> Result<(), StorageError> {
        let hash = password_hash.to_owned();
        self.write(move |conn| {
            match conn.execute(
                "UPDATE users SET password_hash = ?2 WHERE id = ?1",
                params![user, hash],
            )? {
                0 => Err(StorageError::NotFound(format!("user {user}"))),
                _ => Ok(()),
            }
        })
    }

    fn set_role(&self, user: UserId, role: Role) -> Result<(), StorageError> {
        self.write(move |conn| {
            match conn.execute(
                "UPDATE users SET role = ?2 WHERE id = ?1",
                params![user, role.as_str()],
            )? {
                0 => Err(StorageError::NotFound(format!("user {user}"))),
                _ => access_changed(conn, user),
            }
        })
    }

    fn set_disabled(&self, user: UserId, disabled: bool) -> Result<(), StorageError> {
        self.write(move |conn| {
            match conn.execute(
                "UPDATE users SET disabled = ?2 WHERE id = ?1",
                params![user, disabled],
            )? {
                0 => Err(StorageError::NotFound(format!("user {user}"))),
                _ => Ok(()),
            }
        })
    }

    fn create_device(
        &self,
        device_id: &str,
        user: UserId,
        name: &str,
        token_hash: &[u8],
        now: Millis,
        expires_at: Millis,
    ) -> Result<Device, StorageError> {
        let device = Device {
            id: device_id.to_owned(),
            user_id: user,
            name: name.to_owned(),
            created_at: now,
            last_seen: Some(now),
            expires_at,
            revoked_at: None,
        };
        let token_hash = token_hash.to_vec();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO devices (id, user_id, name, token_hash, created_at, last_seen,
                                      expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)",
                params![device.id, user, device.name, token_hash, now, expires_at],
            )?;
            Ok(device)
        })
    }

    fn device_by_token(&self, token_hash: &[u8]) -> Result<Option<(Device, User)>, StorageError> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    &format!(
                        "SELECT {DEVICE_COLUMNS}, {USER_COLUMNS} FROM devices d
                         JOIN users u ON u.id = d.user_id WHERE d.token_hash = ?1"
                    ),
                    params![token_hash],
                    |r| Ok((device_from(r)?, user_from(r, 7)?)),
                )
                .optional()?)
        })
    }

    fn device(&self, id: &str) -> Result<Option<(Device, User)>, StorageError> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    &format!(
                        "SELECT {DEVICE_COLUMNS}, {USER_COLUMNS} FROM devices d
                         JOIN users u ON u.id = d.user_id WHERE d.id = ?1"
                    ),
                    params![id],
                    |r| Ok((device_from(r)?, user_from(r, 7)?)),
                )
                .optional()?)
        })
    }

    fn devices(&self, user: Option<UserId>) -> Result<Vec<(Device, User)>, StorageError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {DEVICE_COLUMNS}, {USER_COLUMNS} FROM devices d
                 JOIN users u ON u.id = d.user_id
                 WHERE ?1 IS NULL OR d.user_id = ?1
                 ORDER BY u.username, d.created_at"
            ))?;
            let rows =
                stmt.query_map(params![user], |r| Ok((device_from(r)?, user_from(r, 7)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn renew_device(
        &self,
        id: &str,
        token_hash: &[u8],
        expires_at: Millis,
    ) -> Result<(), StorageError> {
        let (id, token_hash) = (id.to_owned(), token_hash.to_vec());
        self.write(move |conn| {
            match conn.execute(
                "UPDATE devices SET token_hash = ?2, expires_at = ?3
                 WHERE id = ?1 AND revoked_at IS NULL",
                params![id, token_hash, expires_at],
            )? {
                0 => Err(StorageError::NotFound(format!("active device {id}"))),
                _ => Ok(()),
            }
        })
    }

    fn revoke_device(&self, id: &str, now: Millis) -> Result<bool, StorageError> {
        let id = id.to_owned();
        self.write(move |conn| {
            Ok(conn.execute(
                "UPDATE devices SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                params![id, now],
            )? > 0)
        })
    }

    fn touch_device(&self, id: &str, now: Millis) -> Result<(), StorageError> {
        let id = id.to_owned();
        self.write(move |conn| {
            conn.execute(
                "UPDATE devices SET last_seen = ?2 WHERE id = ?1",
                params![id, now],
            )?;
            Ok(())
        })
    }

    fn end_sessions(&self, user: UserId, now: Millis) -> Result<usize, StorageError> {
        self.write(move |conn| {
            Ok(conn.execute(
                "UPDATE devices SET expires_at = ?2
                 WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2",
                params![user, now],
            )?)
        })
    }

    fn set_probe(&self, device: &str, probe_hash: &[u8]) -> Result<(), StorageError> {
        let (device, hash) = (device.to_owned(), probe_hash.to_vec());
        self.write(move |conn| {
            conn.execute(
                "INSERT OR REPLACE INTO device_probes (probe_hash, device_id) VALUES (?1, ?2)",
                params![hash, device],
            )?;
            Ok(())
        })
    }

    fn device_of_probe(&self, probe_hash: &[u8]) -> Result<Option<String>, StorageError> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    "SELECT device_id FROM device_probes WHERE probe_hash = ?1",
                    params![probe_hash],
                    |r| r.get(0),
                )
                .optional()?)
        })
    }

    fn access_changes_since(&self, seq: i64) -> Result<(i64, Vec<String>), StorageError> {
        self.read(|conn| {
            let last: i64 = conn.query_row(
                "SELECT COALESCE(MAX(seq), 0) FROM access_changes",
                [],
                |r| r.get(0),
            )?;
            let mut stmt = conn.prepare(
                "SELECT DISTINCT u.username FROM access_changes a JOIN users u ON u.id = a.user_id
                 WHERE a.seq > ?1 AND a.seq <= ?2",
            )?;
            let rows = stmt.query_map(params![seq, last], |r| r.get(0))?;
            Ok((last, rows.collect::<Result<_, _>>()?))
        })
    }

    fn revoked_since(&self, since: Millis) -> Result<Vec<(String, Millis)>, StorageError> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare("SELECT id, revoked_at FROM devices WHERE revoked_at >= ?1")?;
            let rows = stmt.query_map(params![since], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

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
            "SELECT status, COUNT(*), COALESCE(SUM(has_conflicts), 0)",
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
                ))
            })?;
            let mut counts = DocumentCounts::default();
            for row in rows {
                let (status, n, conflicts) = row?;
                let (n, conflicts) = (n.max(0) as u64, conflicts.max(0) as u64);
                counts.total += n;
                counts.with_conflicts += conflicts;
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
                bind.execute(params![actor, device, write.row.updated_at])?;
            }
            Ok(())
        })
    }

    fn compact(&self, id: &DocumentId, snapshot: &[u8]) -> Result<(), StorageError> {
        let (id, snapshot) = (id.to_string(), snapshot.to_vec());
        self.write(move |conn| {
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
        states: Vec<(String, DocumentId, Vec<u8>)>,
    ) -> Result<(), StorageError> {
        if states.is_empty() {
            return Ok(());
        }
        self.write(move |conn| {
            let mut stmt = conn.prepare_cached(
                "INSERT INTO sync_states (device_id, doc_id, state) VALUES (?1, ?2, ?3)
                 ON CONFLICT(device_id, doc_id) DO UPDATE SET state = excluded.state",
            )?;
            for (device, doc, state) in &states {
                stmt.execute(params![device, doc.to_string(), state])?;
            }
            Ok(())
        })
    }

    fn actor_bindings(&self) -> Result<Vec<(String, String)>, StorageError> {
        self.read(|conn| {
            let mut stmt = conn.prepare("SELECT actor, device_id FROM actors")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

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
                    event.device_id,
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
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    fn storage() -> (tempfile::TempDir, Arc<SqliteStorage>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = SqliteStorage::open(&dir.path().join("saksi.sqlite3")).expect("open");
        (dir, Arc::new(storage))
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
            .create_user("sophea", Role::Monitor, "hash", 1)
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
            .create_user("vanna", Role::Monitor, "hash", 2)
            .expect("user");
        for suffix in ["", "-wal", "-shm"] {
            assert_eq!(mode(&beside(&db, suffix)), 0o600, "saksi.sqlite3{suffix}");
        }
        storage.close();
    }
}
