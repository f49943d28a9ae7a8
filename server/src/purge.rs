//! Discard and purge: destroying a record for good.
//!
//! - **Discard**: the author of a draft never submitted, or a coordinator, destroys it at once
//!   (a mistaken record).
//! - **Purge**: a coordinator or an admin destroys a record for a reason (consent withdrawn,
//!   recorded in error, safety). It waits `purge_grace_days` first, hidden from all but
//!   coordinators and admins, and can be undone meanwhile; an admin may skip the wait
//!   (`saksi admin purge --now`, or the console's option).
//!
//! Destroying a record ([`destroy`]): the tombstone line goes to `data_dir/tombstones` first
//! (fsynced; a restore of an older backup cannot lose it, and a crash after it is finished at
//! the next start), then the document task drops the record and tells every connected phone,
//! then one database transaction deletes it with `secure_delete` and checkpoints the WAL, then
//! the files no other record names are overwritten and deleted, and the audit log notes it (ids
//! and the reason only). A tombstoned id is refused for ever, to every client; phones learn it
//! from `/api/records` and, while locked, from `/api/probe`, and delete their copy.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use saksi_shared::time::days;
use saksi_shared::{DocumentId, Timestamp};

use crate::app::AppState;
use crate::errors::Chain;
use crate::storage::{
    AuditAction, AuditEvent, PendingPurge, PurgeReason, Purged, Storage, StorageError, Tombstone,
};

/// Why a purge or discard did not happen.
#[derive(Debug, thiserror::Error)]
pub enum PurgeError {
    #[error("no such record")]
    NotFound,
    #[error("a case is not purged this way: purge its records")]
    IsCase,
    #[error("only a draft never submitted can be discarded")]
    NotADraft,
    #[error("not allowed")]
    Forbidden,
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("cannot write {path}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The tombstones kept outside the database: one line per destroyed record,
/// `<doc id> <purged at> <reason> <case id> <created by> <purged by>` (ids, never content).
pub fn tombstone_file(data_dir: &Path) -> PathBuf {
    data_dir.join("tombstones")
}

/// A tombstone as one line of the tombstones file.
pub fn line_of(t: &Tombstone) -> String {
    format!(
        "{} {} {} {} {} {}\n",
        t.doc_id,
        t.purged_at,
        t.reason.as_str(),
        t.case_id,
        t.created_by,
        t.username
    )
}

fn parse_line(line: &str) -> Option<Tombstone> {
    let mut parts = line.split(' ');
    let t = Tombstone {
        doc_id: DocumentId::parse(parts.next()?).ok()?,
        purged_at: parts.next()?.parse().ok()?,
        reason: PurgeReason::parse(parts.next()?)?,
        case_id: DocumentId::parse(parts.next()?).ok()?,
        created_by: parts.next()?.to_owned(),
        username: parts.next()?.to_owned(),
    };
    Some(t)
}

/// Appends a tombstone to the file, durably.
fn append(data_dir: &Path, t: &Tombstone) -> Result<(), PurgeError> {
    let path = tombstone_file(data_dir);
    let err = |source| PurgeError::File {
        path: path.clone(),
        source,
    };
    let mut file = private_file().append(true).open(&path).map_err(err)?;
    file.write_all(line_of(t).as_bytes()).map_err(err)?;
    file.sync_all().map_err(err)?;
    crate::datadir::sync_dir(data_dir).map_err(err)
}

/// The purges waiting out their grace period, kept outside the database too (one line each,
/// `<doc id> <requested at> <due at> <reason> <requested by>`), so that restoring an older
/// backup neither forgets a purge scheduled since nor revives one undone since. Rewritten whole
/// after every change of the list.
pub fn pending_file(data_dir: &Path) -> PathBuf {
    data_dir.join("purges-waiting")
}

fn pending_line(p: &PendingPurge) -> String {
    format!(
        "{} {} {} {} {}\n",
        p.doc_id,
        p.requested_at,
        p.due_at,
        p.reason.as_str(),
        p.username
    )
}

fn parse_pending(line: &str) -> Option<PendingPurge> {
    let mut parts = line.split(' ');
    Some(PendingPurge {
        doc_id: DocumentId::parse(parts.next()?).ok()?,
        requested_at: parts.next()?.parse().ok()?,
        due_at: parts.next()?.parse().ok()?,
        reason: PurgeReason::parse(parts.next()?)?,
        username: parts.next()?.to_owned(),
    })
}

/// The lock that [`save_pending`] holds while it reads the list and writes the file.
pub fn pending_lock_file(data_dir: &Path) -> PathBuf {
    data_dir.join("purges-waiting.lock")
}

/// Rewrites the waiting purges' file from the database's list (a new file renamed over the
/// old one, both synced).
///
/// The server and `saksi admin purge` may both write it at the same moment. Each holds an
/// exclusive lock on [`pending_lock_file`] from reading the list to the rename, and each
/// changed the database before taking it: so whoever writes last read the list after both
/// changes, and the file never ends up older than the database. (Without the lock, a writer
/// that read the list first could rename last, and a purge would be missing from the file that
/// a restore of an older backup puts back.)
pub fn save_pending(storage: &dyn Storage, data_dir: &Path) -> Result<(), PurgeError> {
    let err = |path: &Path| {
        let path = path.to_owned();
        move |source| PurgeError::File { path, source }
    };
    let lock_path = pending_lock_file(data_dir);
    let lock = private_file()
        .truncate(false)
        .open(&lock_path)
        .map_err(err(&lock_path))?;
    // Released when `lock` is dropped (and by the system if the process dies).
    lock.lock().map_err(err(&lock_path))?;
    let list = storage.pending_purges()?;
    let path = pending_file(data_dir);
    let partial = data_dir.join(format!("purges-waiting.{}.new", std::process::id()));
    let mut file = private_file()
        .truncate(true)
        .open(&partial)
        .map_err(err(&partial))?;
    let text: String = list.iter().map(pending_line).collect();
    file.write_all(text.as_bytes()).map_err(err(&partial))?;
    file.sync_all().map_err(err(&partial))?;
    std::fs::rename(&partial, &path).map_err(err(&path))?;
    crate::datadir::sync_dir(data_dir).map_err(err(data_dir))
}

/// Options that create a file readable by the server's user only (0600).
fn private_file() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// After a restore: the waiting list becomes the file's (the newer), for the records the
/// restored database holds. Returns how many purges were put back and how many undone. Without
/// the file (a data directory from before it existed) the database's list stays.
pub fn restore_pending(
    storage: &dyn Storage,
    data_dir: &Path,
) -> Result<(usize, usize), PurgeError> {
    let Ok(text) = std::fs::read_to_string(pending_file(data_dir)) else {
        return Ok((0, 0));
    };
    let wanted: Vec<PendingPurge> = text.lines().filter_map(parse_pending).collect();
    let mut undone = 0;
    for p in storage.pending_purges()? {
        if !wanted.iter().any(|w| w.doc_id == p.doc_id) && storage.cancel_purge(&p.doc_id)? {
            undone += 1;
        }
    }
    let mut scheduled = 0;
    for w in &wanted {
        let known = storage.pending_purge(&w.doc_id)?;
        if known.as_ref() != Some(w) && storage.document(&w.doc_id)?.is_some() {
            storage.schedule_purge(w)?;
            scheduled += usize::from(known.is_none());
        }
    }
    Ok((scheduled, undone))
}

/// [`save_pending`] from the server (logged, not returned: the database holds the list).
async fn save_pending_now(state: &AppState) {
    let dir = state.config.data_dir.clone();
    let saved = state
        .db
        .run(move |s| {
            save_pending(s, &dir)
                .map_err(|e| StorageError::database("cannot write the waiting purges' file", e))
        })
        .await;
    if let Err(e) = saved {
        tracing::error!(error = %Chain(&e), "the waiting purges' file could not be written");
    }
}

/// Every tombstone of the file (lines that cannot be read are skipped, and logged).
pub fn read_file(data_dir: &Path) -> Vec<Tombstone> {
    let Ok(text) = std::fs::read_to_string(tombstone_file(data_dir)) else {
        return Vec::new();
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| {
            let t = parse_line(l);
            if t.is_none() {
                tracing::error!("a line of the tombstones file cannot be read: skipped");
            }
            t
        })
        .collect()
}

/// Makes the database and the tombstones file agree, at start, after a restore and every
/// minute: every tombstone of the file is applied, and every tombstone of the database is in the
/// file. Returns the files to delete, and the tombstones of the records destroyed now (a purge
/// interrupted by a crash or a failed write, or a record a restored backup brought back), each
/// written to the audit log. `all`: also check that no record the database has a tombstone for
/// came back (at start and after a restore); otherwise only tombstones the database lacks.
pub fn reconcile(
    storage: &dyn Storage,
    data_dir: &Path,
    all: bool,
) -> Result<(Purged, Vec<Tombstone>), PurgeError> {
    let in_file = read_file(data_dir);
    let in_db: HashSet<DocumentId> = storage
        .tombstones()?
        .into_iter()
        .map(|t| t.doc_id)
        .collect();
    let mut done = Purged::default();
    let mut reapplied = Vec::new();
    for t in &in_file {
        if in_db.contains(&t.doc_id) && (!all || storage.document(&t.doc_id)?.is_none()) {
            continue;
        }
        let purged = storage.purge(t)?;
        if purged.had_record {
            let mut event = audit_destroyed(t, None, &purged);
            event
                .detail
                .push_str("; completed later (an interrupted purge, or a restored backup)");
            storage.append_audit(event)?;
            reapplied.push(t.clone());
        }
        done.files.extend(purged.files);
        done.uploads.extend(purged.uploads);
    }
    let file_ids: HashSet<DocumentId> = in_file.iter().map(|t| t.doc_id).collect();
    for t in storage.tombstones()? {
        if !file_ids.contains(&t.doc_id) {
            append(data_dir, &t)?;
        }
    }
    if !reapplied.is_empty() {
        tracing::warn!(
            records = reapplied.len(),
            "purged records were still in the database (an interrupted purge, or a restored backup): destroyed"
        );
    }
    Ok((done, reapplied))
}

/// Deletes the bytes of files and partial uploads a purge left without a record: overwritten
/// first (best effort: an SSD or a journaling file system may keep old blocks; full-disk
/// encryption covers those), then removed.
pub fn shred_files(data_dir: &Path, purged: &Purged) {
    let root = data_dir.join("files");
    let mut paths: Vec<PathBuf> = purged
        .files
        .iter()
        .filter(|sha| saksi_shared::attachment::check_sha256(sha).is_ok())
        .map(|sha| root.join("blobs").join(&sha[..2]).join(sha))
        .collect();
    paths.extend(
        purged
            .uploads
            .iter()
            .filter(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(|id| root.join("partial").join(id)),
    );
    for path in paths {
        if let Err(e) = shred(&path) {
            tracing::warn!(error = %Chain(&e), "a purged file could not be overwritten; removed anyway");
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::error!(error = %Chain(&e), "a purged file could not be removed")
            }
        }
    }
}

fn shred(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            other => other?,
        }
    }
    let mut file = std::fs::OpenOptions::new().write(true).open(path)?;
    let len = file.metadata()?.len();
    let zeros = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        file.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    file.sync_all()
}

/// The tombstone of record `doc` destroyed now by `by`; refuses cases and unknown ids.
fn tombstone_for(
    storage: &dyn Storage,
    doc: DocumentId,
    by: &str,
    reason: PurgeReason,
    now: Timestamp,
) -> Result<Tombstone, PurgeError> {
    let row = storage.document(&doc)?.ok_or(PurgeError::NotFound)?;
    if row.kind == "case" {
        return Err(PurgeError::IsCase);
    }
    Ok(Tombstone {
        doc_id: doc,
        purged_at: now,
        username: by.to_owned(),
        reason,
        case_id: row.case_id,
        created_by: row.created_by,
    })
}

fn audit_destroyed(t: &Tombstone, device: Option<&str>, purged: &Purged) -> AuditEvent {
    let action = if t.reason == PurgeReason::Discarded {
        AuditAction::RecordDiscarded
    } else {
        AuditAction::RecordPurged
    };
    AuditEvent {
        at: t.purged_at,
        username: Some(t.username.clone()),
        device_id: device.map(saksi_shared::DeviceId::from),
        action,
        target: Some(t.doc_id.to_string()),
        detail: format!(
            "{}; {} file(s) deleted",
            t.reason.as_str(),
            purged.files.len()
        ),
    }
}

/// Destroys record `doc` now from the command line (another process than the server): the
/// tombstone file, the database, the files, the audit log. A running server's database refuses
/// every write to the record from the moment the transaction commits, and the server tells the
/// record's phones within two seconds ([`notice_outside_changes`]).
pub fn destroy_stored(
    storage: &dyn Storage,
    data_dir: &Path,
    doc: DocumentId,
    by: &str,
    reason: PurgeReason,
    now: Timestamp,
) -> Result<Purged, PurgeError> {
    let tombstone = tombstone_for(storage, doc, by, reason, now)?;
    append(data_dir, &tombstone)?;
    let purged = storage.purge(&tombstone)?;
    shred_files(data_dir, &purged);
    save_pending(storage, data_dir)?;
    storage.append_audit(audit_destroyed(&tombstone, None, &purged))?;
    Ok(purged)
}

/// Schedules a purge from the command line; see [`schedule`].
pub fn schedule_stored(
    storage: &dyn Storage,
    data_dir: &Path,
    doc: DocumentId,
    by: &str,
    reason: PurgeReason,
    grace_days: u64,
    now: Timestamp,
) -> Result<PendingPurge, PurgeError> {
    tombstone_for(storage, doc, by, reason, now)?;
    let purge = pending_purge(doc, by, reason, grace_days, now);
    storage.schedule_purge(&purge)?;
    save_pending(storage, data_dir)?;
    storage.append_audit(scheduled_event(&purge, None, grace_days))?;
    Ok(purge)
}

/// Undoes a scheduled purge from the command line; see [`cancel`]. False if there was none.
pub fn cancel_stored(
    storage: &dyn Storage,
    data_dir: &Path,
    doc: DocumentId,
    by: &str,
    now: Timestamp,
) -> Result<bool, PurgeError> {
    if !storage.cancel_purge(&doc)? {
        return Ok(false);
    }
    save_pending(storage, data_dir)?;
    storage.append_audit(cancelled_event(doc, by, None, now))?;
    Ok(true)
}

/// The purge of `doc` requested by `by` at `now`, due after `grace_days`.
fn pending_purge(
    doc: DocumentId,
    by: &str,
    reason: PurgeReason,
    grace_days: u64,
    now: Timestamp,
) -> PendingPurge {
    PendingPurge {
        doc_id: doc,
        requested_at: now,
        username: by.to_owned(),
        reason,
        due_at: now + days(grace_days),
    }
}

fn cancelled_event(doc: DocumentId, by: &str, device: Option<&str>, at: Timestamp) -> AuditEvent {
    AuditEvent {
        at,
        username: Some(by.to_owned()),
        device_id: device.map(saksi_shared::DeviceId::from),
        action: AuditAction::PurgeCancelled,
        target: Some(doc.to_string()),
        detail: String::new(),
    }
}

fn scheduled_event(p: &PendingPurge, device: Option<&str>, grace_days: u64) -> AuditEvent {
    AuditEvent {
        at: p.requested_at,
        username: Some(p.username.clone()),
        device_id: device.map(saksi_shared::DeviceId::from),
        action: AuditAction::PurgeScheduled,
        target: Some(p.doc_id.to_string()),
        detail: format!("{}; due in {grace_days} day(s)", p.reason.as_str()),
    }
}

/// Brings a running server in line with purges made by another process (the command line):
/// a new tombstone withdraws its record from memory and tells its phones; a purge scheduled or
/// undone hides or shows the record. `hidden` carries the pending purges seen last time. Run
/// every two seconds.
pub async fn notice_outside_changes(
    state: &Arc<AppState>,
    hidden: &mut HashSet<DocumentId>,
) -> Result<(), StorageError> {
    let (tombstones, pending) = state
        .db
        .run(|s| Ok((s.tombstones()?, s.pending_purges()?)))
        .await?;
    let new: Vec<&Tombstone> = {
        let known = state.withdrawn.read().expect("withdrawn lock");
        tombstones
            .iter()
            .filter(|t| !known.contains(&t.doc_id))
            .collect()
    };
    for t in new {
        state
            .withdrawn
            .write()
            .expect("withdrawn lock")
            .insert(t.doc_id);
        state.documents.withdraw(t.doc_id).await;
        tell_phones(state, t).await;
        tracing::info!(doc = %t.doc_id, "record destroyed by another process: withdrawn");
    }
    let now: HashSet<DocumentId> = pending.into_iter().map(|p| p.doc_id).collect();
    for id in now.difference(hidden) {
        state.documents.set_hidden(*id, true).await;
    }
    for id in hidden.difference(&now) {
        if !state.is_withdrawn(id) {
            state.documents.set_hidden(*id, false).await;
        }
    }
    *hidden = now;
    Ok(())
}

/// Tells every connected phone of the users who could read the destroyed record (its case
/// team, its author, coordinators and admins) that it is withdrawn, whether or not it is
/// syncing the record now: a phone that holds it hidden (while its purge waited) drops it too.
pub async fn tell_phones(state: &Arc<AppState>, t: &Tombstone) {
    let (case, author) = (t.case_id, t.created_by.clone());
    let users = state
        .db
        .run(move |s| {
            let mut users: HashSet<String> = s
                .users()?
                .into_iter()
                .filter(|u| u.role.reviews())
                .map(|u| u.username)
                .collect();
            users.extend(s.members(&case)?.into_iter().map(|u| u.username));
            users.insert(author);
            Ok(users)
        })
        .await;
    let users = match users {
        Ok(users) => users,
        Err(e) => {
            tracing::warn!(error = %Chain(&e), "the phones of a destroyed record could not be listed");
            return;
        }
    };
    let frame = saksi_shared::protocol::Message::Error {
        sender_id: Some(state.peer_id.clone()),
        target_id: None,
        message: saksi_shared::served::WITHDRAWN.into(),
        document_id: Some(t.doc_id),
    }
    .encode();
    let n = state.connections.send_to_users(&users, &frame);
    tracing::debug!(doc = %t.doc_id, connections = n, "connected phones told of a destroyed record");
}

/// Destroys record `doc` now, for `reason`, by `by` (see the module docs).
pub async fn destroy(
    state: &Arc<AppState>,
    doc: DocumentId,
    by: &str,
    device: Option<&str>,
    reason: PurgeReason,
) -> Result<Purged, PurgeError> {
    destroy_checked(state, doc, by, device, reason, None).await
}

/// A check of the record as it is when it is destroyed: a discard destroys only a draft, and
/// nothing may change the record between the check and the destruction.
pub type Check = crate::sync::document::RecordCheck;

/// [`destroy`], only if `check` holds for the record at the moment its document task stops
/// taking changes ([`PurgeError::Forbidden`] otherwise, and nothing happens).
pub async fn destroy_checked(
    state: &Arc<AppState>,
    doc: DocumentId,
    by: &str,
    device: Option<&str>,
    reason: PurgeReason,
    check: Option<Check>,
) -> Result<Purged, PurgeError> {
    let tombstone = {
        let (by, now) = (by.to_owned(), state.now());
        state
            .db
            .run(move |s| Ok(tombstone_for(s, doc, &by, reason, now)))
            .await??
    };
    let _one_at_a_time = state.purging.lock().await;
    let checked = check.is_some();
    if let Some(check) = check
        && !state.documents.withdraw_if(state, doc, check).await
    {
        return Err(PurgeError::Forbidden);
    }
    append(&state.config.data_dir, &tombstone)?;
    state.withdrawn.write().expect("withdrawn lock").insert(doc);
    if !checked {
        // The document task (if the record is in memory) tells its phones and ends without
        // writing anything back.
        state.documents.withdraw(doc).await;
    }
    let purged = {
        let t = tombstone.clone();
        state.db.run(move |s| s.purge(&t)).await?
    };
    {
        let (dir, purged) = (state.config.data_dir.clone(), purged.clone());
        let _ = tokio::task::spawn_blocking(move || shred_files(&dir, &purged)).await;
    }
    tell_phones(state, &tombstone).await;
    if purged.was_waiting {
        save_pending_now(state).await;
    }
    state
        .audit(audit_destroyed(&tombstone, device, &purged))
        .await;
    tracing::info!(doc = %doc, reason = reason.as_str(), files = purged.files.len(), "record destroyed");
    Ok(purged)
}

/// Schedules a purge after the grace period: the record is hidden from field staff at once.
pub async fn schedule(
    state: &Arc<AppState>,
    doc: DocumentId,
    by: &str,
    device: Option<&str>,
    reason: PurgeReason,
) -> Result<PendingPurge, PurgeError> {
    let now = state.now();
    {
        let by = by.to_owned();
        state
            .db
            .run(move |s| Ok(tombstone_for(s, doc, &by, reason, now)))
            .await??;
    }
    let purge = pending_purge(doc, by, reason, state.config.purge_grace_days, now);
    {
        let p = purge.clone();
        state.db.run(move |s| s.schedule_purge(&p)).await?;
    }
    save_pending_now(state).await;
    state.documents.set_hidden(doc, true).await;
    state
        .audit(scheduled_event(
            &purge,
            device,
            state.config.purge_grace_days,
        ))
        .await;
    Ok(purge)
}

/// Undoes a scheduled purge; false if there was none.
pub async fn cancel(
    state: &Arc<AppState>,
    doc: DocumentId,
    by: &str,
    device: Option<&str>,
) -> Result<bool, PurgeError> {
    let cancelled = state.db.run(move |s| s.cancel_purge(&doc)).await?;
    if cancelled {
        save_pending_now(state).await;
        state.documents.set_hidden(doc, false).await;
        state
            .audit(cancelled_event(doc, by, device, state.now()))
            .await;
    }
    Ok(cancelled)
}

/// Destroys the records whose grace period is over. Run every minute by the server.
pub async fn run_due(state: &Arc<AppState>) -> Result<usize, PurgeError> {
    let now = state.now();
    let due: Vec<PendingPurge> = state
        .db
        .run(|s| s.pending_purges())
        .await?
        .into_iter()
        .filter(|p| p.due_at <= now)
        .collect();
    let mut done = 0;
    for p in due {
        // Taken off the waiting list first: an undo from now on fails, rather than being
        // reported done while the purge goes ahead.
        let doc = p.doc_id;
        if !state.db.run(move |s| s.claim_purge(&doc, now)).await? {
            continue;
        }
        match destroy(state, p.doc_id, &p.username, None, p.reason).await {
            Ok(_) => done += 1,
            Err(PurgeError::NotFound) => {}
            Err(e) => {
                tracing::error!(doc = %p.doc_id, error = %Chain(&e), "a due purge failed; tried again later");
                let again = p.clone();
                state.db.run(move |s| s.schedule_purge(&again)).await?;
                save_pending_now(state).await;
            }
        }
    }
    Ok(done)
}

/// Finishes purges whose tombstone was written but whose database write failed (the record is
/// already refused; see [`reconcile`]).
pub async fn finish_interrupted(
    state: &Arc<AppState>,
    checked_size: &mut Option<u64>,
) -> Result<usize, PurgeError> {
    let _one_at_a_time = state.purging.lock().await;
    // The file only grows: unchanged since a complete pass, there is nothing to complete.
    let size = std::fs::metadata(tombstone_file(&state.config.data_dir))
        .map(|m| m.len())
        .ok();
    if size.is_some() && size == *checked_size {
        return Ok(0);
    }
    let dir = state.config.data_dir.clone();
    let storage = state.db.storage().clone();
    let reapplied = tokio::task::spawn_blocking(move || -> Result<_, PurgeError> {
        let (purged, reapplied) = reconcile(&*storage, &dir, false)?;
        shred_files(&dir, &purged);
        Ok(reapplied)
    })
    .await
    .map_err(|_| PurgeError::Storage(StorageError::Closed))??;
    for t in &reapplied {
        state
            .withdrawn
            .write()
            .expect("withdrawn lock")
            .insert(t.doc_id);
        state.documents.withdraw(t.doc_id).await;
        tell_phones(state, t).await;
    }
    *checked_size = size;
    Ok(reapplied.len())
}

/// Runs due purges every minute, for the life of the server.
pub fn spawn_due_purges(state: Arc<AppState>) {
    let runtime = state.runtime.clone();
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        let mut checked_size = None;
        loop {
            tick.tick().await;
            if Arc::strong_count(&state) == 1 {
                break;
            }
            let done = finish_interrupted(&state, &mut checked_size).await;
            match done.and(run_due(&state).await) {
                Ok(_) => {}
                Err(PurgeError::Storage(StorageError::Closed)) => break,
                Err(e) => tracing::warn!(error = %Chain(&e), "due purges failed"),
            }
        }
    });
}

/// The tombstones a user's phones should know: every one for coordinators and admins; for
/// others those of records they could read (their cases, or their own).
pub fn relevant<'a>(
    tombstones: &'a [Tombstone],
    user: &'a str,
    reviews: bool,
    cases: &'a [DocumentId],
) -> impl Iterator<Item = &'a Tombstone> + 'a {
    tombstones
        .iter()
        .filter(move |t| reviews || t.created_by == user || cases.contains(&t.case_id))
}

/// The ids of destroyed records `user` could read, destroyed since `since` (when the asking
/// device signed in: it cannot hold a record destroyed before): what their phones must delete.
pub async fn withdrawn_for(
    state: &AppState,
    user: &crate::storage::User,
    since: Timestamp,
) -> Result<Vec<DocumentId>, StorageError> {
    let (id, name, reviews) = (user.id, user.username.clone(), user.role.reviews());
    state
        .db
        .run(move |s| {
            let all = s.tombstones()?;
            let cases = if reviews { Vec::new() } else { s.cases_of(id)? };
            Ok(relevant(&all, &name, reviews, &cases)
                .filter(|t| t.purged_at >= since)
                .map(|t| t.doc_id)
                .collect())
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use saksi_testkit::at;

    #[test]
    fn tombstone_lines_round_trip_and_hold_ids_only() {
        let t = Tombstone {
            doc_id: DocumentId::from_bytes([7; 16]),
            purged_at: at(1_700_000_000_000),
            username: "chenda".into(),
            reason: PurgeReason::ConsentWithdrawn,
            case_id: DocumentId::from_bytes([8; 16]),
            created_by: "lina".into(),
        };
        let line = line_of(&t);
        assert_eq!(line.matches(' ').count(), 5);
        assert_eq!(parse_line(line.trim_end()), Some(t));
        assert_eq!(parse_line("not a tombstone"), None);
    }
}
