//! The data directory's lock: `saksi serve` holds an exclusive advisory lock on
//! `DATA_DIR/saksi.lock` for as long as it runs, so that a second server, or a restore, cannot
//! touch a database a running server is using. The operating system releases the lock when the
//! process ends, however it ends (SIGKILL and power loss included): a stale lock file is harmless.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "saksi.lock";

/// Why the data directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "a Saksi server is running on {dir} (it holds {LOCK_FILE}); stop it first \
         (e.g. systemctl stop saksi)"
    )]
    Busy { dir: PathBuf },
    #[error("cannot lock {path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Creates `dir`, and any missing parents, readable by its owner only (0700) from the start;
/// an existing directory is left as it is. (`create_dir_all` would create it with the umask,
/// usually 0755, and it held the lock file, then the database, before anyone restricted it.)
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Makes a directory's entries durable (after creating, renaming or removing files in it).
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// An exclusive lock on a data directory, released when dropped.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Takes the lock of `data_dir` (created if needed), or fails at once if another process
    /// (or another server in this process) holds it.
    pub fn acquire(data_dir: &Path) -> Result<DataDirLock, LockError> {
        let path = data_dir.join(LOCK_FILE);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        create_private_dir(data_dir).map_err(io)?;
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => Ok(DataDirLock { _file: file }),
            Err(TryLockError::WouldBlock) => Err(LockError::Busy {
                dir: data_dir.to_owned(),
            }),
            Err(TryLockError::Error(e)) => Err(io(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_refuses_a_second_holder_until_released() {
        let dir = tempfile::tempdir().expect("dir");
        let first = DataDirLock::acquire(dir.path()).expect("first");
        let err = DataDirLock::acquire(dir.path()).expect_err("held");
        assert!(matches!(err, LockError::Busy { .. }), "{err}");
        drop(first);
        DataDirLock::acquire(dir.path()).expect("released");
    }

    #[cfg(unix)]
    #[test]
    fn a_data_directory_is_created_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let data = dir.path().join("new").join("data");
        let _lock = DataDirLock::acquire(&data).expect("lock");
        for created in [&data, &dir.path().join("new")] {
            let mode = std::fs::metadata(created)
                .expect("created")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700, "{}", created.display());
        }
        let lock = std::fs::metadata(data.join(LOCK_FILE)).expect("lock file");
        assert_eq!(lock.permissions().mode() & 0o777, 0o600);
    }
}
