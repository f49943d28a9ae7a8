//! Account, device and case management, audited: the operations the console's admin pages
//! and the `saksi admin` command line ([`cli`]) both perform.
//!
//! They work on the database directly, so the command line also works while the server runs
//! (SQLite WAL allows it; a running server notices revocations within two seconds).

pub mod cli;

use saksi_shared::automerge::ActorId;
use saksi_shared::catalogue::RecordKind;
use saksi_shared::record::{Editor, FieldInput, Record};
use saksi_shared::{DeviceId, DocumentId, Role, Timestamp, Who};

use crate::accounts::{Passwords, random_16};
use crate::storage::{AuditAction, AuditEvent, Case, DocumentRow, Storage, StorageError, User};

/// Why an admin command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("cannot read standard input")]
    Stdin(#[source] std::io::Error),
    #[error("cannot write to standard output")]
    Stdout(#[source] std::io::Error),
    /// The tombstones or waiting purges' file could not be written.
    #[error(transparent)]
    PurgeFile(crate::purge::PurgeError),
    /// The local CA's certificate could not be renewed.
    #[error("cannot renew the certificate")]
    Tls(#[source] crate::tls::TlsError),
}

/// Who performs an account, device or case operation, as the audit log names them: a user on
/// one of their devices (the console, or a phone acting on itself), or the command line.
#[derive(Debug, Clone, Copy)]
pub enum Operator<'a> {
    Cli,
    Admin(&'a Who),
}

impl Operator<'_> {
    /// The command line.
    pub const CLI: Operator<'static> = Operator::Cli;

    /// The name the audit log gives the operator: the user, or `cli`.
    pub fn username(&self) -> &str {
        match self {
            Operator::Cli => "cli",
            Operator::Admin(who) => &who.user,
        }
    }

    /// The operator's device (none for the command line).
    pub fn device_id(&self) -> Option<&str> {
        match self {
            Operator::Cli => None,
            Operator::Admin(who) => Some(&who.device),
        }
    }

    /// The author written into documents this operator creates: the signed-in user, or
    /// `admin` for the command line.
    pub fn author(&self) -> &str {
        match self {
            Operator::Cli => "admin",
            Operator::Admin(who) => &who.user,
        }
    }

    pub(crate) fn audit(
        &self,
        storage: &dyn Storage,
        now: Timestamp,
        action: AuditAction,
        target: String,
        detail: String,
    ) -> Result<(), StorageError> {
        storage.append_audit(AuditEvent {
            at: now,
            username: Some(self.username().to_owned()),
            device_id: self.device_id().map(DeviceId::from),
            action,
            target: Some(target),
            detail,
        })
    }
}

/// Checks a new username: 1-64 letters, digits, `.`, `_` or `-`.
pub fn check_username(username: &str) -> Result<(), AdminError> {
    crate::accounts::Username::parse(username)
        .map(|_| ())
        .map_err(|rule| AdminError::Invalid(rule.into()))
}

/// Creates an account with `role` and `password` (audited).
pub fn create_user(
    storage: &dyn Storage,
    passwords: &Passwords,
    by: Operator<'_>,
    username: &str,
    role: Role,
    password: &str,
    now: Timestamp,
) -> Result<User, AdminError> {
    check_username(username)?;
    let hash = passwords
        .hash(password)
        .map_err(|e| AdminError::Invalid(e.to_string()))?;
    let user = match storage.create_user(username, role, &hash, now) {
        Err(StorageError::Conflict(_)) => {
            return Err(AdminError::Invalid(format!(
                "the username `{username}` is taken"
            )));
        }
        other => other?,
    };
    by.audit(
        storage,
        now,
        AuditAction::UserCreated,
        username.into(),
        format!("role {}", role.as_str()),
    )?;
    Ok(user)
}

/// Sets a new password for `user` (audited).
pub fn reset_password(
    storage: &dyn Storage,
    passwords: &Passwords,
    by: Operator<'_>,
    user: &User,
    password: &str,
    now: Timestamp,
) -> Result<(), AdminError> {
    let hash = passwords
        .hash(password)
        .map_err(|e| AdminError::Invalid(e.to_string()))?;
    storage.set_password(user.id, &hash)?;
    by.audit(
        storage,
        now,
        AuditAction::PasswordReset,
        user.username.clone(),
        String::new(),
    )?;
    Ok(())
}

/// Changes `user`'s role (audited).
pub fn set_role(
    storage: &dyn Storage,
    by: Operator<'_>,
    user: &User,
    role: Role,
    now: Timestamp,
) -> Result<(), AdminError> {
    storage.set_role(user.id, role)?;
    by.audit(
        storage,
        now,
        AuditAction::RoleChanged,
        user.username.clone(),
        format!("role {}", role.as_str()),
    )?;
    Ok(())
}

/// Disables or enables `user` (audited). Disabling also revokes every device of the user;
/// returns the ids of the devices revoked now, whose open connections the caller closes.
pub fn set_disabled(
    storage: &dyn Storage,
    by: Operator<'_>,
    user: &User,
    disabled: bool,
    now: Timestamp,
) -> Result<Vec<DeviceId>, AdminError> {
    storage.set_disabled(user.id, disabled)?;
    let mut revoked = Vec::new();
    if disabled {
        for (device, _) in storage.devices(Some(user.id))? {
            if device.revoked_at.is_none() && storage.revoke_device(&device.id, now)? {
                revoked.push(device.id);
            }
        }
    }
    by.audit(
        storage,
        now,
        if disabled {
            AuditAction::UserDisabled
        } else {
            AuditAction::UserEnabled
        },
        user.username.clone(),
        if disabled {
            format!("{} device(s) revoked", revoked.len())
        } else {
            String::new()
        },
    )?;
    Ok(revoked)
}

/// Revokes a device (audited): it can no longer log in, sync or refresh. Returns false if it
/// does not exist or was already revoked. The caller closes its open connections.
pub fn revoke_device(
    storage: &dyn Storage,
    by: Operator<'_>,
    device: &str,
    now: Timestamp,
) -> Result<bool, AdminError> {
    if !storage.revoke_device(device, now)? {
        return Ok(false);
    }
    by.audit(
        storage,
        now,
        AuditAction::DeviceRevoked,
        device.into(),
        String::new(),
    )?;
    Ok(true)
}

/// Ends the sessions of `user`'s devices (audited with the count). Returns the count.
pub fn end_sessions(
    storage: &dyn Storage,
    by: Operator<'_>,
    user: &User,
    now: Timestamp,
) -> Result<usize, AdminError> {
    let ended = storage.end_sessions(user.id, now)?;
    by.audit(
        storage,
        now,
        AuditAction::SessionsEnded,
        user.username.clone(),
        format!("{ended} device(s)"),
    )?;
    Ok(ended)
}

/// Checks a case name and creates the case (audited). Returns its id.
pub fn new_case(
    storage: &dyn Storage,
    by: Operator<'_>,
    name: &str,
    now: Timestamp,
) -> Result<DocumentId, AdminError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(AdminError::Invalid(
            "a case name is 1-200 characters".into(),
        ));
    }
    let id = create_case(storage, name, by.author(), now)?;
    by.audit(
        storage,
        now,
        AuditAction::CaseCreated,
        id.to_string(),
        String::new(),
    )?;
    Ok(id)
}

/// Adds `user` to the team of `case`, or removes them (audited).
pub fn set_member(
    storage: &dyn Storage,
    by: Operator<'_>,
    case: &DocumentId,
    user: &User,
    member: bool,
    now: Timestamp,
) -> Result<(), AdminError> {
    if !storage.cases()?.iter().any(|c| c.id == *case) {
        return Err(AdminError::Invalid(format!("no case `{case}`")));
    }
    if member {
        storage.add_member(case, user.id)?;
    } else {
        storage.remove_member(case, user.id)?;
    }
    by.audit(
        storage,
        now,
        if member {
            AuditAction::MemberAdded
        } else {
            AuditAction::MemberRemoved
        },
        case.to_string(),
        format!("user {}", user.username),
    )?;
    Ok(())
}

/// Creates a case document and its team entry. Returns the new case's id.
pub fn create_case(
    storage: &dyn Storage,
    name: &str,
    created_by: &str,
    now: Timestamp,
) -> Result<DocumentId, AdminError> {
    let id = DocumentId::from_bytes(random_16());
    let editor = Editor::new(created_by, "server", Role::Admin);
    let mut record = Record::create(
        RecordKind::Case,
        &id,
        ActorId::from(random_16()),
        &editor,
        now,
    );
    record
        .set_field("name", FieldInput::Text(name.to_owned()), &editor, now)
        .map_err(|e| AdminError::Invalid(e.to_string()))?;
    let row = DocumentRow {
        id,
        kind: RecordKind::Case.as_str().into(),
        case_id: id,
        created_by: created_by.to_owned(),
        title: name.to_owned(),
        status: "draft".into(),
        has_conflicts: false,
        created_at: now,
        updated_at: now,
        consent_withdrawn: false,
    };
    storage.create_case(
        &Case {
            id,
            name: name.to_owned(),
            created_at: now,
        },
        &row,
        &record.save(),
    )?;
    Ok(id)
}

/// `YYYY-MM-DD HH:MM` (UTC) for listings.
pub fn format_time(t: Timestamp) -> String {
    let date = saksi_shared::validate::date_of(t);
    let minutes = t.as_millis().rem_euclid(86_400_000) / 60_000;
    format!("{date} {:02}:{:02}", minutes / 60, minutes % 60)
}
