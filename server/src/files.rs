//! The bytes of attached files, behind [`BlobStore`]: content-addressed by SHA-256, written by
//! resumable uploads, verified before they are kept. [`FsBlobStore`] (the default) keeps them
//! under `data_dir/files/`; a database backend can implement the same few methods.
//!
//! Which files records name, which are held, and which uploads are in progress is in the
//! database ([`crate::storage::FileIndex`]); the HTTP side is [`crate::http::files`]. A file is
//! only ever added whole and verified: an upload's bytes go to a partial file, and
//! [`BlobStore::finish`] hashes them and moves them into place only if they are the file the
//! record names.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use saksi_shared::time::days;

use sha2::{Digest, Sha256};

use crate::errors::Chain;

/// Why a blob operation failed. The cause is kept for the log; the client gets a fixed message.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("the disk is full")]
    DiskFull(#[source] std::io::Error),
    #[error("the bytes do not match the file's SHA-256")]
    HashMismatch,
    #[error("no such file")]
    NotFound,
    #[error("file store: {what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl BlobError {
    fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BlobError {
        let what = what.into();
        move |source| {
            if is_disk_full(&source) {
                BlobError::DiskFull(source)
            } else if source.kind() == std::io::ErrorKind::NotFound {
                BlobError::NotFound
            } else {
                BlobError::Io { what, source }
            }
        }
    }
}

/// ENOSPC (and EDQUOT): no room left for the write.
pub fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

/// An upload's partial file, open for appending.
pub trait Partial: Send {
    /// Appends bytes (not yet durable).
    fn write_all(&mut self, bytes: &[u8]) -> Result<(), BlobError>;
    /// Makes everything written durable; returns the partial file's length.
    fn sync(&mut self) -> Result<u64, BlobError>;
    /// Cuts the partial file back to `len` bytes (after a failed write) and syncs it.
    fn truncate(&mut self, len: u64) -> Result<(), BlobError>;
}

/// A held file, open for reading.
pub trait BlobReader: Read + Seek + Send {}
impl<T: Read + Seek + Send> BlobReader for T {}

/// Where the bytes of files live.
pub trait BlobStore: Send + Sync + std::fmt::Debug + 'static {
    /// Opens upload `id`'s partial file for appending (creating it), first cutting it back to
    /// `durable` bytes: anything after that was written but never acknowledged (a crash).
    fn open_partial(&self, id: &str, durable: u64) -> Result<Box<dyn Partial>, BlobError>;
    /// Hashes upload `id`'s bytes. If they are `sha256`, they become that file (a file held
    /// already stays as it is); the partial file is removed either way.
    fn finish(&self, id: &str, sha256: &str) -> Result<(), BlobError>;
    /// Removes upload `id`'s partial file (if any).
    fn discard(&self, id: &str) -> Result<(), BlobError>;
    /// The size of a held file.
    fn size(&self, sha256: &str) -> Result<Option<u64>, BlobError>;
    fn open(&self, sha256: &str) -> Result<Box<dyn BlobReader>, BlobError>;
    fn remove(&self, sha256: &str) -> Result<(), BlobError>;
    /// Every held file, and when it was stored; and every partial upload id.
    fn list(&self) -> Result<Listing, BlobError>;
}

/// What a store holds (for cleaning up after crashes).
#[derive(Debug, Default)]
pub struct Listing {
    pub blobs: Vec<(String, SystemTime)>,
    pub partials: Vec<(String, SystemTime)>,
}

/// Files under a directory: `blobs/ab/<sha256>` (read-only, 0400) and `partial/<upload id>`.
#[derive(Debug)]
pub struct FsBlobStore {
    root: PathBuf,
}

fn valid_sha(sha: &str) -> bool {
    saksi_shared::attachment::check_sha256(sha).is_ok()
}

/// Upload ids are made by the server: 32 lower-case hex digits.
fn valid_upload(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl FsBlobStore {
    /// The store under `data_dir/files/` (created readable by its owner only).
    pub fn open(data_dir: &Path) -> Result<FsBlobStore, BlobError> {
        let root = data_dir.join("files");
        for dir in [root.clone(), root.join("blobs"), root.join("partial")] {
            crate::datadir::create_private_dir(&dir)
                .map_err(BlobError::io(format!("creating {}", dir.display())))?;
        }
        Ok(FsBlobStore { root })
    }

    fn blob_path(&self, sha: &str) -> Result<PathBuf, BlobError> {
        if !valid_sha(sha) {
            return Err(BlobError::NotFound);
        }
        Ok(self.root.join("blobs").join(&sha[..2]).join(sha))
    }

    fn partial_path(&self, id: &str) -> Result<PathBuf, BlobError> {
        if !valid_upload(id) {
            return Err(BlobError::NotFound);
        }
        Ok(self.root.join("partial").join(id))
    }
}

struct FsPartial {
    file: File,
    path: PathBuf,
}

impl Partial for FsPartial {
    fn write_all(&mut self, bytes: &[u8]) -> Result<(), BlobError> {
        Write::write_all(&mut self.file, bytes).map_err(BlobError::io("writing an upload"))
    }

    fn sync(&mut self) -> Result<u64, BlobError> {
        self.file
            .sync_data()
            .map_err(BlobError::io("syncing an upload"))?;
        Ok(self
            .file
            .metadata()
            .map_err(BlobError::io("reading an upload's size"))?
            .len())
    }

    fn truncate(&mut self, len: u64) -> Result<(), BlobError> {
        self.file
            .set_len(len)
            .and_then(|()| self.file.sync_data())
            .map_err(BlobError::io(format!("truncating {}", self.path.display())))
    }
}

fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

impl BlobStore for FsBlobStore {
    fn open_partial(&self, id: &str, durable: u64) -> Result<Box<dyn Partial>, BlobError> {
        let path = self.partial_path(id)?;
        let file = private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(BlobError::io("opening an upload"))?;
        let len = file
            .metadata()
            .map_err(BlobError::io("reading an upload's size"))?
            .len();
        if len != durable {
            // Longer: bytes a crash left after the last sync. Shorter: they were lost (the
            // file system did not keep what was synced?): cut to what is there; the caller
            // resumes from the smaller of the two.
            file.set_len(durable.min(len))
                .and_then(|()| file.sync_data())
                .map_err(BlobError::io("truncating an upload"))?;
        }
        let mut partial = FsPartial { file, path };
        partial
            .file
            .seek(std::io::SeekFrom::End(0))
            .map_err(BlobError::io("seeking an upload"))?;
        Ok(Box::new(partial))
    }

    fn finish(&self, id: &str, sha256: &str) -> Result<(), BlobError> {
        let partial = self.partial_path(id)?;
        let target = self.blob_path(sha256)?;
        let digest = {
            let mut file = File::open(&partial).map_err(BlobError::io("reading an upload"))?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = file
                    .read(&mut buf)
                    .map_err(BlobError::io("reading an upload"))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
            hex::encode(hasher.finalize())
        };
        if digest != sha256 {
            self.discard(id)?;
            return Err(BlobError::HashMismatch);
        }
        if target.is_file() {
            // Another upload of the same bytes finished first.
            return self.discard(id);
        }
        let dir = target.parent().expect("a blob path has a parent");
        crate::datadir::create_private_dir(dir)
            .map_err(BlobError::io("creating a file directory"))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o400))
                .map_err(BlobError::io("protecting a file"))?;
        }
        std::fs::rename(&partial, &target).map_err(BlobError::io("storing a file"))?;
        crate::datadir::sync_dir(dir).map_err(BlobError::io("syncing a file directory"))?;
        Ok(())
    }

    fn discard(&self, id: &str) -> Result<(), BlobError> {
        match std::fs::remove_file(self.partial_path(id)?) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(BlobError::io("removing an upload")(e)),
        }
    }

    fn size(&self, sha256: &str) -> Result<Option<u64>, BlobError> {
        match std::fs::metadata(self.blob_path(sha256)?) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(BlobError::io("reading a file's size")(e)),
        }
    }

    fn open(&self, sha256: &str) -> Result<Box<dyn BlobReader>, BlobError> {
        let file = File::open(self.blob_path(sha256)?).map_err(BlobError::io("opening a file"))?;
        Ok(Box::new(file))
    }

    fn remove(&self, sha256: &str) -> Result<(), BlobError> {
        let path = self.blob_path(sha256)?;
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(BlobError::io("removing a file")(e)),
        }
        if let Some(dir) = path.parent() {
            crate::datadir::sync_dir(dir).map_err(BlobError::io("syncing a file directory"))?;
        }
        Ok(())
    }

    fn list(&self) -> Result<Listing, BlobError> {
        let mut listing = Listing::default();
        let entries = |dir: &Path| -> Result<Vec<(String, SystemTime)>, BlobError> {
            let mut found = Vec::new();
            let read = match std::fs::read_dir(dir) {
                Ok(read) => read,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
                Err(e) => return Err(BlobError::io("listing files")(e)),
            };
            for entry in read {
                let entry = entry.map_err(BlobError::io("listing files"))?;
                let modified = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                found.push((entry.file_name().to_string_lossy().into_owned(), modified));
            }
            Ok(found)
        };
        for (prefix, _) in entries(&self.root.join("blobs"))? {
            for (name, modified) in entries(&self.root.join("blobs").join(&prefix))? {
                if valid_sha(&name) && name.starts_with(&prefix) {
                    listing.blobs.push((name, modified));
                }
            }
        }
        listing.partials = entries(&self.root.join("partial"))?
            .into_iter()
            .filter(|(name, _)| valid_upload(name))
            .collect();
        listing.blobs.sort();
        listing.partials.sort();
        Ok(listing)
    }
}

/// What one clean-up removed (counts only).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CleanUp {
    /// Uploads nobody continued for `stale_upload_days`.
    pub stale_uploads: usize,
    /// Files no record has named for `unreferenced_file_days`.
    pub unreferenced_files: usize,
    /// Partial files and files left without a database row by a crash.
    pub orphans: usize,
}

/// Files and partial files a crash left without their database row are removed once they are
/// this old (younger ones may belong to an upload finishing right now).
const ORPHAN_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

/// Removes stale uploads, files no record names any more (after the grace period), and what a
/// crash left behind. Run every few minutes by the server ([`spawn_clean_up`]).
pub async fn clean_up(
    state: &crate::app::AppState,
) -> Result<CleanUp, crate::storage::StorageError> {
    let now = state.now();
    let mut done = CleanUp::default();
    let stale_before = now - days(state.config.stale_upload_days);
    for upload in state.db.run(move |s| s.stale_uploads(stale_before)).await? {
        let (blobs, id) = (state.blobs.clone(), upload.id.clone());
        if state.active_uploads.is_active(&upload.id) {
            continue;
        }
        let discarded = tokio::task::spawn_blocking(move || blobs.discard(&id)).await;
        if !matches!(discarded, Ok(Ok(()))) {
            tracing::warn!(upload = %upload.id, "stale upload not removed");
            continue;
        }
        let id = upload.id.clone();
        state.db.run(move |s| s.delete_upload(&id)).await?;
        done.stale_uploads += 1;
    }
    let unreferenced_before = now - days(state.config.unreferenced_file_days);
    for blob in state
        .db
        .run(move |s| s.unreferenced_blobs(unreferenced_before))
        .await?
    {
        let sha = blob.sha256.clone();
        // The row goes first: a record that names the file again meanwhile keeps it.
        if !state.db.run(move |s| s.forget_blob(&sha)).await? {
            continue;
        }
        let (blobs, sha) = (state.blobs.clone(), blob.sha256.clone());
        match tokio::task::spawn_blocking(move || blobs.remove(&sha)).await {
            Ok(Ok(())) => done.unreferenced_files += 1,
            _ => {
                tracing::warn!(file = %blob.sha256, "unreferenced file not removed; a later clean-up removes it")
            }
        }
    }
    // What a crash left: partial files without an upload, files without a row.
    let blobs = state.blobs.clone();
    let listing = match tokio::task::spawn_blocking(move || blobs.list()).await {
        Ok(Ok(listing)) => listing,
        _ => return Ok(done),
    };
    let old = |t: SystemTime| t.elapsed().is_ok_and(|age| age > ORPHAN_AGE);
    for (id, modified) in listing.partials {
        let known = {
            let id = id.clone();
            state.db.run(move |s| s.upload(&id)).await?.is_some()
        };
        if !known && old(modified) && !state.active_uploads.is_active(&id) {
            let blobs = state.blobs.clone();
            if matches!(
                tokio::task::spawn_blocking(move || blobs.discard(&id)).await,
                Ok(Ok(()))
            ) {
                done.orphans += 1;
            }
        }
    }
    for (sha, modified) in listing.blobs {
        let known = {
            let sha = sha.clone();
            state.db.run(move |s| s.blob(&sha)).await?.is_some()
        };
        if !known && old(modified) {
            let blobs = state.blobs.clone();
            if matches!(
                tokio::task::spawn_blocking(move || blobs.remove(&sha)).await,
                Ok(Ok(()))
            ) {
                done.orphans += 1;
            }
        }
    }
    if done != CleanUp::default() {
        tracing::info!(
            stale_uploads = done.stale_uploads,
            unreferenced_files = done.unreferenced_files,
            orphans = done.orphans,
            "files cleaned up"
        );
    }
    Ok(done)
}

/// How often the server cleans up files.
const CLEAN_UP_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// Cleans up files every ten minutes, for the life of the server.
pub fn spawn_clean_up(state: std::sync::Arc<crate::app::AppState>) {
    let runtime = state.runtime.clone();
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(CLEAN_UP_EVERY);
        loop {
            tick.tick().await;
            if std::sync::Arc::strong_count(&state) == 1 {
                break;
            }
            match clean_up(&state).await {
                Ok(_) => {}
                Err(crate::storage::StorageError::Closed) => break,
                Err(e) => tracing::warn!(error = %Chain(&e), "file clean-up failed"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    const UPLOAD: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn an_upload_becomes_a_file_only_with_the_right_hash() {
        let dir = tempfile::tempdir().expect("dir");
        let store = FsBlobStore::open(dir.path()).expect("store");
        let bytes = "សាក្សី ".repeat(10_000).into_bytes();
        let mut p = store.open_partial(UPLOAD, 0).expect("open");
        p.write_all(&bytes[..1000]).expect("write");
        assert_eq!(p.sync().expect("sync"), 1000);
        // A crash after more was written but before it was synced and acknowledged.
        p.write_all(&bytes[1000..5000]).expect("write");
        drop(p);
        let mut p = store.open_partial(UPLOAD, 1000).expect("reopen");
        p.write_all(&bytes[1000..]).expect("write");
        assert_eq!(p.sync().expect("sync"), bytes.len() as u64);
        drop(p);
        assert!(matches!(
            store.finish(UPLOAD, &sha(b"other")),
            Err(BlobError::HashMismatch)
        ));
        assert!(store.list().expect("list").partials.is_empty(), "removed");
        assert_eq!(store.size(&sha(b"other")).expect("size"), None);

        let mut p = store.open_partial(UPLOAD, 0).expect("again");
        p.write_all(&bytes).expect("write");
        p.sync().expect("sync");
        drop(p);
        store.finish(UPLOAD, &sha(&bytes)).expect("finished");
        let mut read = Vec::new();
        store
            .open(&sha(&bytes))
            .expect("open")
            .read_to_end(&mut read)
            .expect("read");
        assert_eq!(read, bytes);
        let listing = store.list().expect("list");
        assert_eq!(listing.blobs.len(), 1);
        assert!(listing.partials.is_empty());
        store.remove(&sha(&bytes)).expect("removed");
        assert_eq!(store.size(&sha(&bytes)).expect("size"), None);
    }

    #[test]
    fn names_that_are_not_hashes_or_upload_ids_reach_no_file() {
        let dir = tempfile::tempdir().expect("dir");
        let store = FsBlobStore::open(dir.path()).expect("store");
        for name in ["../../saksi.sqlite3", "", "ab", &"A".repeat(64)] {
            assert!(
                matches!(store.open(name), Err(BlobError::NotFound)),
                "{name}"
            );
            assert!(store.open_partial(name, 0).is_err(), "{name}");
        }
    }
}
