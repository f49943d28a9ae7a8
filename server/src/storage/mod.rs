//! Durable storage behind one trait, [`Storage`]. The SQLite implementation ([`sqlite`]) is the
//! default; another backend implements the same trait with its own migrations.
//!
//! Methods are blocking; async callers run them on the blocking pool (see [`crate::db::Db`]).
//! [`DocumentStore::append_changes`] returns only once the changes are on disk: the sync endpoint
//! acknowledges nothing before that.

pub mod sqlite;

use saksi_shared::{DeviceId, DocumentId, Role, Timestamp};
use serde::Serialize;

pub type UserId = i64;

/// An account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: Timestamp,
}

/// One signed-in device (a phone, a browser, a script).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Device {
    pub id: DeviceId,
    pub user_id: UserId,
    pub name: String,
    pub created_at: Timestamp,
    pub last_seen: Option<Timestamp>,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// A case and its team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Case {
    pub id: DocumentId,
    pub name: String,
    pub created_at: Timestamp,
}

/// The index entry of a stored document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocumentRow {
    pub id: DocumentId,
    pub kind: String,
    pub case_id: DocumentId,
    pub created_by: String,
    pub title: String,
    pub status: String,
    pub has_conflicts: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// A liaison recorded that consent was withdrawn: a coordinator should purge it.
    pub consent_withdrawn: bool,
}

/// Which documents to list.
#[derive(Debug, Clone, Default)]
pub struct DocumentFilter {
    /// Only documents readable by a user who created `readable_by.0` records and is in the
    /// cases `readable_by.1`. `None`: all documents (reviewers).
    pub readable_by: Option<(String, Vec<DocumentId>)>,
    pub case: Option<DocumentId>,
    pub kind: Option<String>,
    pub status: Option<String>,
    pub created_by: Option<String>,
    pub has_conflicts: Option<bool>,
    pub consent_withdrawn: Option<bool>,
    pub updated_from: Option<Timestamp>,
    pub updated_to: Option<Timestamp>,
    /// Include case documents themselves (not only records).
    pub include_cases: bool,
    /// Order of the listing (newest update first by default).
    pub sort: DocumentSort,
    /// At most this many rows (all if `None`), after skipping `offset` rows.
    pub limit: Option<u32>,
    pub offset: u32,
}

/// How a document listing is ordered. Ties are broken by id, so pages are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DocumentSort {
    #[default]
    UpdatedDesc,
    UpdatedAsc,
    CreatedDesc,
    CreatedAsc,
    Title,
    Status,
    Author,
    Kind,
}

/// How many documents a filter matches (ignoring its paging).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DocumentCounts {
    pub total: u64,
    pub with_conflicts: u64,
    /// Records whose consent was withdrawn (waiting for a coordinator's purge).
    pub consent_withdrawn: u64,
    /// Per status, in no particular order; statuses without documents are absent.
    pub by_status: Vec<(String, u64)>,
}

/// New changes of one document, to be stored durably in one transaction.
#[derive(Debug, Clone)]
pub struct DocumentWrite {
    /// The index entry after the changes (inserted for a new document).
    pub row: DocumentRow,
    /// Raw automerge change chunks.
    pub changes: Vec<Vec<u8>>,
    /// Actor ids seen for the first time, with the device that sent them.
    pub new_actors: Vec<(String, DeviceId)>,
    /// The files the document names after the changes (`None`: unknown, keep the index as it
    /// is).
    pub files: Option<Vec<FileRef>>,
}

/// A file a stored record names (its entry, as the index keeps it: ids, hash, size, no name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileRef {
    pub doc_id: DocumentId,
    pub attachment_id: String,
    pub sha256: String,
    pub size: u64,
    pub media_type: String,
    /// The device that captured it.
    pub device_id: DeviceId,
}

/// A file the server holds, verified against its SHA-256 when its upload finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Blob {
    pub sha256: String,
    pub size: u64,
    /// The device whose upload stored it first (counts against its quota).
    pub uploaded_by: DeviceId,
    pub stored_at: Timestamp,
    /// Since when no record names it (deleted after `unreferenced_file_days`).
    pub unreferenced_since: Option<Timestamp>,
}

/// An upload in progress (the tus protocol's upload resource).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Upload {
    pub id: String,
    pub device_id: DeviceId,
    pub sha256: String,
    /// The file's size, declared when the upload began (the entry's size).
    pub length: u64,
    /// Bytes received, written and synced.
    pub received: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What an audit entry records. The stored names are part of the hash chain and never
/// change: a few kept their first spelling (`disable`, `add-member`), which the console shows
/// by label.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AuditAction {
    Login,
    LoginFailed,
    Logout,
    UserCreated,
    PasswordReset,
    RoleChanged,
    UserDisabled,
    UserEnabled,
    DeviceRevoked,
    SessionsEnded,
    CaseCreated,
    MemberAdded,
    MemberRemoved,
    ChangeRefused,
    Export,
    CertificateRenewed,
    /// A record destroyed for good (purged), and a draft discarded.
    RecordPurged,
    RecordDiscarded,
    /// A purge scheduled after its grace period, and one undone.
    PurgeScheduled,
    PurgeCancelled,
    /// A name this version does not know (written by a newer one): kept as stored.
    Other(String),
}

impl AuditAction {
    /// Every action this version writes, in the order the console's filter offers them.
    pub const ALL: [AuditAction; 20] = [
        AuditAction::Login,
        AuditAction::LoginFailed,
        AuditAction::Logout,
        AuditAction::UserCreated,
        AuditAction::PasswordReset,
        AuditAction::RoleChanged,
        AuditAction::UserDisabled,
        AuditAction::UserEnabled,
        AuditAction::DeviceRevoked,
        AuditAction::SessionsEnded,
        AuditAction::CaseCreated,
        AuditAction::MemberAdded,
        AuditAction::MemberRemoved,
        AuditAction::ChangeRefused,
        AuditAction::Export,
        AuditAction::CertificateRenewed,
        AuditAction::PurgeScheduled,
        AuditAction::PurgeCancelled,
        AuditAction::RecordPurged,
        AuditAction::RecordDiscarded,
    ];

    /// The stored name.
    pub fn as_str(&self) -> &str {
        match self {
            AuditAction::Login => "login",
            AuditAction::LoginFailed => "login_failed",
            AuditAction::Logout => "logout",
            AuditAction::UserCreated => "user_created",
            AuditAction::PasswordReset => "password_reset",
            AuditAction::RoleChanged => "role_changed",
            AuditAction::UserDisabled => "disable",
            AuditAction::UserEnabled => "enable",
            AuditAction::DeviceRevoked => "device_revoked",
            AuditAction::SessionsEnded => "sessions_ended",
            AuditAction::CaseCreated => "case_created",
            AuditAction::MemberAdded => "add-member",
            AuditAction::MemberRemoved => "remove-member",
            AuditAction::ChangeRefused => "change_refused",
            AuditAction::Export => "export",
            AuditAction::CertificateRenewed => "certificate_renewed",
            AuditAction::RecordPurged => "record_purged",
            AuditAction::RecordDiscarded => "record_discarded",
            AuditAction::PurgeScheduled => "purge_scheduled",
            AuditAction::PurgeCancelled => "purge_cancelled",
            AuditAction::Other(name) => name,
        }
    }

    /// From a stored name (an unknown one is [`AuditAction::Other`]).
    pub fn from_stored(name: &str) -> AuditAction {
        AuditAction::ALL
            .iter()
            .find(|a| a.as_str() == name)
            .cloned()
            .unwrap_or_else(|| AuditAction::Other(name.to_owned()))
    }
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for AuditAction {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Something worth recording in the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    pub at: Timestamp,
    pub username: Option<String>,
    pub device_id: Option<DeviceId>,
    pub action: AuditAction,
    pub target: Option<String>,
    /// Ids and counts only; never record contents, passwords or tokens.
    pub detail: String,
}

/// A stored audit entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub seq: i64,
    #[serde(flatten)]
    pub event: AuditEvent,
    pub hash: String,
}

/// Which audit entries to list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub action: Option<AuditAction>,
    pub username: Option<String>,
    pub target: Option<String>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub limit: Option<u32>,
    pub before_seq: Option<i64>,
}

/// A storage failure. Messages name what failed, never the data involved; the failure below
/// (SQLite's, the file system's) is kept as the error's `source()`, for the log
/// ([`crate::errors::Chain`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    #[error("the disk is full")]
    DiskFull,
    #[error("already exists: {0}")]
    Conflict(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("the database is newer than this version of Saksi (schema {0})")]
    NewerSchema(i64),
    #[error("the audit log chain is broken at entry {0}")]
    AuditChainBroken(i64),
    #[error("storage closed")]
    Closed,
    #[error("the record was withdrawn (purged): it is refused for ever")]
    Withdrawn,
    #[error("{context}")]
    Database {
        context: String,
        #[source]
        cause: Cause,
    },
}

impl StorageError {
    /// A failure below the store, with what was being done (`"cannot create …"`).
    pub fn database(
        context: impl Into<String>,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> StorageError {
        StorageError::Database {
            context: context.into(),
            cause: Cause(std::sync::Arc::new(cause)),
        }
    }
}

/// The failure under a [`StorageError::Database`], shared so that the error stays `Clone`.
/// Two are equal when they are the same failure.
#[derive(Debug, Clone)]
pub struct Cause(std::sync::Arc<dyn std::error::Error + Send + Sync>);

impl PartialEq for Cause {
    fn eq(&self, other: &Cause) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Cause {}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Everything the server stores: accounts and devices, cases and documents, the audit log, and
/// the index of files. One trait per concern; a backend implements all four (the SQLite one in
/// [`sqlite`], a module per trait). Callers bring the traits into scope with
/// `use crate::storage::prelude::*`.
pub trait Storage:
    AccountStore
    + DocumentStore
    + AuditLog
    + FileIndex
    + PurgeStore
    + Send
    + Sync
    + std::fmt::Debug
    + 'static
{
    /// Size of the stored data in bytes.
    fn size_bytes(&self) -> Result<u64, StorageError>;

    /// Whether the storage can read and write now (for `/healthz`). Writes nothing.
    fn check_health(&self) -> Result<(), StorageError>;
}

/// The traits of [`Storage`], to call its methods on a `dyn Storage`.
pub mod prelude {
    pub use super::{AccountStore, AuditLog, DocumentStore, FileIndex, PurgeStore, Storage};
}

/// Accounts, devices and what each may reach.
pub trait AccountStore {
    // Accounts.
    fn create_user(
        &self,
        username: &str,
        role: Role,
        password_hash: &str,
        now: Timestamp,
    ) -> Result<User, StorageError>;
    /// The user and their password hash.
    fn user_by_name(&self, username: &str) -> Result<Option<(User, String)>, StorageError>;
    fn user_by_id(&self, id: UserId) -> Result<Option<User>, StorageError>;
    fn users(&self) -> Result<Vec<User>, StorageError>;
    fn count_users(&self) -> Result<u64, StorageError>;
    fn set_password(&self, user: UserId, password_hash: &str) -> Result<(), StorageError>;
    fn set_role(&self, user: UserId, role: Role) -> Result<(), StorageError>;
    fn set_disabled(&self, user: UserId, disabled: bool) -> Result<(), StorageError>;

    // Devices.
    fn create_device(
        &self,
        device_id: &str,
        user: UserId,
        name: &str,
        token_hash: &[u8],
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<Device, StorageError>;
    fn device_by_token(&self, token_hash: &[u8]) -> Result<Option<(Device, User)>, StorageError>;
    fn device(&self, id: &str) -> Result<Option<(Device, User)>, StorageError>;
    fn devices(&self, user: Option<UserId>) -> Result<Vec<(Device, User)>, StorageError>;
    /// Returns false if the device does not exist or was already revoked.
    fn revoke_device(&self, id: &str, now: Timestamp) -> Result<bool, StorageError>;
    /// Gives a device a new token and expiry (renewing an expired session keeps the device, so
    /// that its offline edits stay attributed to it). Fails if the device is revoked.
    fn renew_device(
        &self,
        id: &str,
        token_hash: &[u8],
        expires_at: Timestamp,
    ) -> Result<(), StorageError>;
    fn touch_device(&self, id: &str, now: Timestamp) -> Result<(), StorageError>;
    /// Ends the sessions of `user`'s devices that are neither revoked nor expired: their tokens
    /// stop working at `now`, the devices stay (signing in again renews them, keeping their
    /// unsynced data and its attribution). Returns how many sessions were ended.
    fn end_sessions(&self, user: UserId, now: Timestamp) -> Result<usize, StorageError>;
    /// Registers a phone's probe (its SHA-256) for `device` (see `0003_device_probes.sql`).
    fn set_probe(&self, device: &str, probe_hash: &[u8]) -> Result<(), StorageError>;
    /// The device a probe (its SHA-256) was registered for.
    fn device_of_probe(&self, probe_hash: &[u8]) -> Result<Option<DeviceId>, StorageError>;
    /// The users whose access changed (team, role) after change number `seq`, and the number
    /// of the last change (0 if none), to pass next time.
    fn access_changes_since(&self, seq: i64) -> Result<(i64, Vec<String>), StorageError>;
    /// Devices revoked at or after `since`.
    fn revoked_since(&self, since: Timestamp) -> Result<Vec<(String, Timestamp)>, StorageError>;
}

/// Cases, their teams, and the stored documents.
pub trait DocumentStore {
    // Cases and teams.
    fn create_case(
        &self,
        case: &Case,
        row: &DocumentRow,
        snapshot: &[u8],
    ) -> Result<(), StorageError>;
    fn cases(&self) -> Result<Vec<Case>, StorageError>;
    fn add_member(&self, case: &DocumentId, user: UserId) -> Result<(), StorageError>;
    fn remove_member(&self, case: &DocumentId, user: UserId) -> Result<(), StorageError>;
    fn members(&self, case: &DocumentId) -> Result<Vec<User>, StorageError>;
    fn cases_of(&self, user: UserId) -> Result<Vec<DocumentId>, StorageError>;

    // Documents.
    fn document(&self, id: &DocumentId) -> Result<Option<DocumentRow>, StorageError>;
    fn documents(&self, filter: &DocumentFilter) -> Result<Vec<DocumentRow>, StorageError>;
    /// Counts of the documents `filter` matches; its sort and paging are ignored.
    fn count_documents(&self, filter: &DocumentFilter) -> Result<DocumentCounts, StorageError>;
    /// The chunks of a document in order (concatenated, they load as one document).
    fn chunks(&self, id: &DocumentId) -> Result<Vec<Vec<u8>>, StorageError>;
    /// Stores new changes durably (fsync) before returning.
    fn append_changes(&self, write: DocumentWrite) -> Result<(), StorageError>;
    /// Replaces all chunks of a document by one snapshot.
    fn compact(&self, id: &DocumentId, snapshot: &[u8]) -> Result<(), StorageError>;
    fn sync_state(&self, device: &str, doc: &DocumentId) -> Result<Option<Vec<u8>>, StorageError>;
    fn save_sync_states(
        &self,
        states: Vec<(DeviceId, DocumentId, Vec<u8>)>,
    ) -> Result<(), StorageError>;
    /// Every actor binding (actor hex, device id).
    fn actor_bindings(&self) -> Result<Vec<(String, DeviceId)>, StorageError>;
}

/// The append-only, hash-chained audit log.
pub trait AuditLog {
    fn append_audit(&self, event: AuditEvent) -> Result<(), StorageError>;
    fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StorageError>;
    /// Recomputes the hash chain; returns the number of entries checked.
    fn verify_audit(&self) -> Result<u64, StorageError>;
}

/// Which files records name, which the server holds, and the uploads in progress. The bytes
/// themselves are in a [`crate::files::BlobStore`].
pub trait FileIndex {
    /// Every stored record that names `sha256`, with the entry that names it.
    fn documents_naming(&self, sha256: &str) -> Result<Vec<(DocumentRow, FileRef)>, StorageError>;
    /// The files `doc` names.
    fn files_of(&self, doc: &DocumentId) -> Result<Vec<FileRef>, StorageError>;
    fn blob(&self, sha256: &str) -> Result<Option<Blob>, StorageError>;
    /// Every file the server holds.
    fn blobs(&self) -> Result<Vec<Blob>, StorageError>;
    fn upload(&self, id: &str) -> Result<Option<Upload>, StorageError>;
    /// The upload of `sha256` by `device`, if one is in progress.
    fn upload_for(&self, device: &str, sha256: &str) -> Result<Option<Upload>, StorageError>;
    /// Starts an upload. Fails with [`StorageError::Conflict`] if the device is uploading the
    /// same file already.
    fn create_upload(&self, upload: &Upload) -> Result<(), StorageError>;
    /// Notes bytes received (written and synced) for an upload.
    fn set_upload_received(
        &self,
        id: &str,
        received: u64,
        now: Timestamp,
    ) -> Result<(), StorageError>;
    /// Records a verified file and ends its upload (one transaction). A file already held is
    /// kept as it is (another device uploaded it first).
    fn finish_upload(&self, upload: &str, blob: &Blob) -> Result<(), StorageError>;
    fn delete_upload(&self, id: &str) -> Result<(), StorageError>;
    /// Bytes a device holds on the server: the files its uploads stored first, and the
    /// declared sizes of its uploads in progress.
    fn device_usage(&self, device: &str) -> Result<u64, StorageError>;
    /// Uploads last continued before `before`.
    fn stale_uploads(&self, before: Timestamp) -> Result<Vec<Upload>, StorageError>;
    /// Files no record has named since before `before`.
    fn unreferenced_blobs(&self, before: Timestamp) -> Result<Vec<Blob>, StorageError>;
    /// Forgets a file if no record names it (a record may have named it again meanwhile);
    /// returns whether it was forgotten (its bytes may then be deleted).
    fn forget_blob(&self, sha256: &str) -> Result<bool, StorageError>;
}

/// Why a record is destroyed: a category, never a free text (a tombstone holds no content).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PurgeReason {
    /// The family (or person) withdrew consent.
    ConsentWithdrawn,
    /// Recorded in error (the wrong case, a duplicate, a test).
    RecordedInError,
    /// Keeping it endangers someone.
    Safety,
    /// A draft discarded by its author, or by a coordinator, before it was submitted.
    Discarded,
}

impl PurgeReason {
    pub const ALL: [PurgeReason; 4] = [
        PurgeReason::ConsentWithdrawn,
        PurgeReason::RecordedInError,
        PurgeReason::Safety,
        PurgeReason::Discarded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PurgeReason::ConsentWithdrawn => "consent_withdrawn",
            PurgeReason::RecordedInError => "recorded_in_error",
            PurgeReason::Safety => "safety",
            PurgeReason::Discarded => "discarded",
        }
    }

    pub fn parse(s: &str) -> Option<PurgeReason> {
        PurgeReason::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// A destroyed record: ids only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tombstone {
    pub doc_id: DocumentId,
    pub purged_at: Timestamp,
    /// Who purged (or discarded) it.
    pub username: String,
    pub reason: PurgeReason,
    /// Who could read it: its case and author (to tell their phones).
    pub case_id: DocumentId,
    pub created_by: String,
}

/// A purge waiting out its grace period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingPurge {
    pub doc_id: DocumentId,
    pub requested_at: Timestamp,
    pub username: String,
    pub reason: PurgeReason,
    pub due_at: Timestamp,
}

/// What a purge removed from the database that must go from the disk too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Purged {
    /// Files no record names any more (their bytes are deleted next).
    pub files: Vec<String>,
    /// Uploads of such files in progress (their partial bytes are deleted next).
    pub uploads: Vec<String>,
    /// Whether the record was still in the database (a purge re-applied after a restore of an
    /// older backup finds it again).
    pub had_record: bool,
    /// Whether a purge was waiting for it (the waiting list changed).
    pub was_waiting: bool,
}

/// Records destroyed for good, and purges waiting for their grace period.
pub trait PurgeStore {
    /// Schedules (or reschedules) the purge of a record.
    fn schedule_purge(&self, purge: &PendingPurge) -> Result<(), StorageError>;
    /// Undoes a scheduled purge; false if there was none.
    fn cancel_purge(&self, doc: &DocumentId) -> Result<bool, StorageError>;
    fn pending_purge(&self, doc: &DocumentId) -> Result<Option<PendingPurge>, StorageError>;
    fn pending_purges(&self) -> Result<Vec<PendingPurge>, StorageError>;
    /// Destroys a record in one transaction, with deleted content overwritten (SQLite's
    /// `secure_delete`): its changes and snapshots, sync states, index row, the index of its
    /// files (and the rows of files no other record names), a pending purge; writes the
    /// tombstone (idempotent: purging twice changes nothing more). Then checkpoints the WAL and
    /// truncates it, so that no old copy of a page stays in it.
    fn purge(&self, tombstone: &Tombstone) -> Result<Purged, StorageError>;
    /// Takes a due purge off the waiting list (so that it can no longer be undone); false if it
    /// is not waiting or not due (undone meanwhile).
    fn claim_purge(&self, doc: &DocumentId, now: Timestamp) -> Result<bool, StorageError>;
    fn tombstone(&self, doc: &DocumentId) -> Result<Option<Tombstone>, StorageError>;
    fn tombstones(&self) -> Result<Vec<Tombstone>, StorageError>;
}
