//! Accounts, devices, probes and access changes ([`AccountStore`]).

use rusqlite::{Connection, OptionalExtension, params};
use saksi_shared::DeviceId;
use saksi_shared::{Role, Timestamp};

use super::{SqliteStorage, role_of};
use crate::storage::{AccountStore, Device, StorageError, User, UserId};

/// Notes that what `user` may read changed ([`Storage::access_changes_since`]).
pub(super) fn access_changed(conn: &Connection, user: UserId) -> Result<(), StorageError> {
    conn.execute(
        "INSERT INTO access_changes (user_id) VALUES (?1)",
        params![user],
    )?;
    Ok(())
}

pub(super) const USER_COLUMNS: &str = "u.id, u.username, u.role, u.disabled, u.created_at";

pub(super) fn user_from(row: &rusqlite::Row<'_>, at: usize) -> Result<User, rusqlite::Error> {
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
        id: row.get::<_, String>(0)?.into(),
        user_id: row.get(1)?,
        name: row.get(2)?,
        created_at: row.get(3)?,
        last_seen: row.get(4)?,
        expires_at: row.get(5)?,
        revoked_at: row.get(6)?,
    })
}

impl AccountStore for SqliteStorage {
    fn create_user(
        &self,
        username: &str,
        role: Role,
        password_hash: &str,
        now: Timestamp,
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
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<Device, StorageError> {
        let device = Device {
            id: device_id.into(),
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
                params![
                    device.id.as_str(),
                    user,
                    device.name,
                    token_hash,
                    now,
                    expires_at
                ],
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
        expires_at: Timestamp,
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

    fn revoke_device(&self, id: &str, now: Timestamp) -> Result<bool, StorageError> {
        let id = id.to_owned();
        self.write(move |conn| {
            Ok(conn.execute(
                "UPDATE devices SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                params![id, now],
            )? > 0)
        })
    }

    fn touch_device(&self, id: &str, now: Timestamp) -> Result<(), StorageError> {
        let id = id.to_owned();
        self.write(move |conn| {
            conn.execute(
                "UPDATE devices SET last_seen = ?2 WHERE id = ?1",
                params![id, now],
            )?;
            Ok(())
        })
    }

    fn end_sessions(&self, user: UserId, now: Timestamp) -> Result<usize, StorageError> {
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

    fn device_of_probe(&self, probe_hash: &[u8]) -> Result<Option<DeviceId>, StorageError> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    "SELECT device_id FROM device_probes WHERE probe_hash = ?1",
                    params![probe_hash],
                    |r| r.get::<_, String>(0).map(DeviceId::from),
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

    fn revoked_since(&self, since: Timestamp) -> Result<Vec<(String, Timestamp)>, StorageError> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare("SELECT id, revoked_at FROM devices WHERE revoked_at >= ?1")?;
            let rows = stmt.query_map(params![since], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }
}
