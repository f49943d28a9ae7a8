//! `saksi admin ...`: account, device and case management for scripts and operators.
//!
//! Commands work on the database directly, so they also work while the server runs (SQLite
//! WAL allows it; a running server notices revocations within two seconds). Passwords are read
//! from standard input, never from the command line (which other users of the machine can see).

use std::collections::HashMap;
use std::io::{BufRead, Write};

use saksi_shared::automerge::ActorId;
use saksi_shared::catalogue::RecordKind;
use saksi_shared::record::{Editor, FieldInput, Record};
use saksi_shared::{DocumentId, Millis, Role};

use crate::accounts::{Clock, Passwords, SystemClock, random_16};
use crate::config::Config;
use crate::storage::{AuditAction, AuditEvent, Case, DocumentRow, Storage, StorageError, User};

/// Usage of the admin commands.
pub const USAGE: &str = "\
saksi admin <command> [options]     (all commands accept --config FILE)

  create-user --username U --role monitor|liaison|coordinator|admin
                                    password on standard input (one line)
  reset-password --username U       new password on standard input
  set-role --username U --role R
  disable-user --username U         also cuts off the user's devices
  enable-user --username U
  list-users
  list-devices [--username U]
  revoke-device --device ID         the device can no longer log in, sync or refresh
  end-sessions --username U         signs U's devices out without wiping them: each asks
                                    for the password at its next contact and keeps its data
  create-case --name N              prints the new case's id
  list-cases
  add-member --case ID --username U
  remove-member --case ID --username U
  purge --document ID --reason consent_withdrawn|recorded_in_error|safety [--now]
                                    destroys a record after the grace period
                                    (purge_grace_days), hidden from field staff meanwhile;
                                    --now destroys it at once: it cannot be undone
  cancel-purge --document ID        undoes a purge still waiting
  list-purges                       purges waiting, then records destroyed (ids only)
  tombstones                        the destroyed records as data_dir/tombstones holds them
                                    (keep a copy with the backups: a restore on another
                                    machine needs it)
  verify-audit                      checks the audit log's hash chain
  renew-certificate                 tls = \"local_ca\": issues a new server certificate for
                                    tls_names from the local CA (its key's passphrase on
                                    standard input); restart the server to use it
  backup FILE                       a consistent copy of the database, also while the server
                                    runs (FILE must not exist); prints sizes and counts
  restore FILE [--force]            checks FILE and puts it in place of the database; the
                                    server must be stopped; --force replaces an existing
                                    database (kept beside it, renamed)
";

/// Why an admin command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}\n\n{USAGE}")]
    Usage(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("cannot read standard input: {0}")]
    Stdin(std::io::Error),
}

struct Args(HashMap<String, String>);

/// Options that take no value.
const FLAGS: &[&str] = &["now"];

impl Args {
    fn parse(args: &[String]) -> Result<Args, AdminError> {
        let mut map = HashMap::new();
        let mut it = args.iter();
        while let Some(key) = it.next() {
            let name = key
                .strip_prefix("--")
                .ok_or_else(|| AdminError::Usage(format!("unexpected argument `{key}`")))?;
            if FLAGS.contains(&name) {
                map.insert(name.to_owned(), "yes".to_owned());
                continue;
            }
            let value = it
                .next()
                .ok_or_else(|| AdminError::Usage(format!("`{key}` needs a value")))?;
            map.insert(name.to_owned(), value.clone());
        }
        Ok(Args(map))
    }

    fn get(&self, name: &str) -> Result<&str, AdminError> {
        self.0
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| AdminError::Usage(format!("missing --{name}")))
    }

    fn opt(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

/// What a command reads from standard input as a secret (a password, the CA key's
/// passphrase): on a terminal it is asked for with the typing hidden.
pub fn secret_prompt(command: &str) -> Option<&'static str> {
    match command {
        "create-user" | "reset-password" => Some("password: "),
        "renew-certificate" => Some("the CA key's passphrase: "),
        _ => None,
    }
}

fn read_password(input: &mut dyn BufRead) -> Result<String, AdminError> {
    let mut line = String::new();
    input.read_line(&mut line).map_err(AdminError::Stdin)?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        return Err(AdminError::Invalid("no password on standard input".into()));
    }
    Ok(password)
}

fn role(s: &str) -> Result<Role, AdminError> {
    Role::parse(s).ok_or_else(|| {
        AdminError::Invalid(format!(
            "unknown role `{s}` (monitor, liaison, coordinator, admin)"
        ))
    })
}

fn user_id(storage: &dyn Storage, username: &str) -> Result<User, AdminError> {
    storage
        .user_by_name(username)?
        .map(|(u, _)| u)
        .ok_or_else(|| AdminError::Invalid(format!("no user `{username}`")))
}

fn document_id(s: &str) -> Result<DocumentId, AdminError> {
    DocumentId::parse(s).map_err(|_| AdminError::Invalid(format!("`{s}` is not a record id")))
}

fn purge_reason(s: &str) -> Result<crate::storage::PurgeReason, AdminError> {
    crate::storage::PurgeReason::parse(s)
        .filter(|r| *r != crate::storage::PurgeReason::Discarded)
        .ok_or_else(|| {
            AdminError::Usage(format!(
                "unknown reason `{s}`: consent_withdrawn, recorded_in_error or safety"
            ))
        })
}

fn purge_error(e: crate::purge::PurgeError) -> AdminError {
    match e {
        crate::purge::PurgeError::Storage(e) => AdminError::Storage(e),
        crate::purge::PurgeError::NotFound => AdminError::Invalid("no such record".into()),
        other => AdminError::Invalid(other.to_string()),
    }
}

fn case_id(s: &str) -> Result<DocumentId, AdminError> {
    DocumentId::parse(s).map_err(|e| AdminError::Invalid(format!("bad case id: {e}")))
}

/// Who performs an account, device or case operation, as the audit log names them.
#[derive(Debug, Clone, Copy)]
pub struct Operator<'a> {
    /// `cli` for the command line, else the signed-in admin.
    pub username: &'a str,
    /// The admin's device (none for the command line).
    pub device_id: Option<&'a str>,
}

impl Operator<'_> {
    /// The command line.
    pub const CLI: Operator<'static> = Operator {
        username: "cli",
        device_id: None,
    };

    /// The author written into documents this operator creates: the signed-in admin, or
    /// `admin` for the command line.
    pub fn author(&self) -> &str {
        if self.device_id.is_some() {
            self.username
        } else {
            "admin"
        }
    }

    fn audit(
        &self,
        storage: &dyn Storage,
        now: Millis,
        action: AuditAction,
        target: String,
        detail: String,
    ) -> Result<(), StorageError> {
        storage.append_audit(AuditEvent {
            at: now,
            username: Some(self.username.to_owned()),
            device_id: self.device_id.map(str::to_owned),
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
    now: Millis,
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
    now: Millis,
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
    now: Millis,
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
    now: Millis,
) -> Result<Vec<String>, AdminError> {
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
    now: Millis,
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
    now: Millis,
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
    now: Millis,
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
    now: Millis,
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

/// Runs one admin command. `input` supplies passwords; `out` receives results.
pub fn run(
    command: &str,
    args: &[String],
    config: &Config,
    storage: &dyn Storage,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    let args = Args::parse(args)?;
    let now = SystemClock.now();
    let passwords = Passwords::new(config.argon2_memory_kib, config.argon2_iterations);
    let by = Operator::CLI;
    let w = |out: &mut dyn Write, text: String| {
        let _ = writeln!(out, "{text}");
    };
    match command {
        "create-user" => {
            let username = args.get("username")?;
            check_username(username)?;
            let role = role(args.get("role")?)?;
            let password = read_password(input)?;
            let user = create_user(storage, &passwords, by, username, role, &password, now)?;
            w(
                out,
                format!("created user {} ({})", user.username, role.as_str()),
            );
        }
        "reset-password" => {
            let user = user_id(storage, args.get("username")?)?;
            let password = read_password(input)?;
            reset_password(storage, &passwords, by, &user, &password, now)?;
            w(out, format!("password of {} reset", user.username));
        }
        "set-role" => {
            let user = user_id(storage, args.get("username")?)?;
            let role = role(args.get("role")?)?;
            set_role(storage, by, &user, role, now)?;
            w(out, format!("{} is now {}", user.username, role.as_str()));
        }
        "disable-user" | "enable-user" => {
            let user = user_id(storage, args.get("username")?)?;
            let disabled = command == "disable-user";
            set_disabled(storage, by, &user, disabled, now)?;
            w(
                out,
                format!(
                    "{} {}",
                    user.username,
                    if disabled { "disabled" } else { "enabled" }
                ),
            );
        }
        "list-users" => {
            for u in storage.users()? {
                w(
                    out,
                    format!(
                        "{}\t{}\t{}",
                        u.username,
                        u.role.as_str(),
                        if u.disabled { "disabled" } else { "active" }
                    ),
                );
            }
        }
        "list-devices" => {
            let user = match args.opt("username") {
                Some(name) => Some(user_id(storage, name)?.id),
                None => None,
            };
            w(out, "device\tuser\tname\tlast_seen\tstatus".into());
            for (d, u) in storage.devices(user)? {
                let status = match d.revoked_at {
                    Some(_) => "revoked",
                    None if d.expires_at <= now => "expired",
                    None => "active",
                };
                w(
                    out,
                    format!(
                        "{}\t{}\t{}\t{}\t{}",
                        d.id,
                        u.username,
                        d.name,
                        d.last_seen.map(format_time).unwrap_or_else(|| "-".into()),
                        status
                    ),
                );
            }
        }
        "revoke-device" => {
            let device = args.get("device")?;
            if revoke_device(storage, by, device, now)? {
                w(out, format!("device {device} revoked"));
            } else {
                return Err(AdminError::Invalid(format!("no active device `{device}`")));
            }
        }
        "end-sessions" => {
            let user = user_id(storage, args.get("username")?)?;
            let ended = end_sessions(storage, by, &user, now)?;
            w(
                out,
                format!("ended {ended} session(s) of {}", user.username),
            );
        }
        "create-case" => {
            let id = new_case(storage, by, args.get("name")?, now)?;
            w(out, id.to_string());
        }
        "list-cases" => {
            for c in storage.cases()? {
                let members = storage
                    .members(&c.id)?
                    .into_iter()
                    .map(|u| u.username)
                    .collect::<Vec<_>>()
                    .join(",");
                w(out, format!("{}\t{}\t{}", c.id, c.name, members));
            }
        }
        "add-member" | "remove-member" => {
            let case = case_id(args.get("case")?)?;
            let user = user_id(storage, args.get("username")?)?;
            let member = command == "add-member";
            set_member(storage, by, &case, &user, member, now)?;
            w(
                out,
                format!(
                    "{} {} case {case}",
                    user.username,
                    if member { "added to" } else { "removed from" }
                ),
            );
        }
        "purge" => {
            let doc = document_id(args.get("document")?)?;
            let reason = purge_reason(args.get("reason")?)?;
            if args.opt("now").is_some() {
                let purged = crate::purge::destroy_stored(
                    storage,
                    &config.data_dir,
                    doc,
                    by.username,
                    reason,
                    now,
                )
                .map_err(purge_error)?;
                w(
                    out,
                    format!(
                        "record {doc} destroyed ({}); {} file(s) deleted",
                        reason.as_str(),
                        purged.files.len()
                    ),
                );
            } else {
                let p = crate::purge::schedule_stored(
                    storage,
                    &config.data_dir,
                    doc,
                    by.username,
                    reason,
                    config.purge_grace_days,
                    now,
                )
                .map_err(purge_error)?;
                w(
                    out,
                    format!(
                        "record {doc} will be destroyed at {} ({}); hidden from field staff \
                         until then; `saksi admin cancel-purge --document {doc}` undoes it",
                        format_time(p.due_at),
                        reason.as_str()
                    ),
                );
            }
        }
        "cancel-purge" => {
            let doc = document_id(args.get("document")?)?;
            if !storage.cancel_purge(&doc)? {
                return Err(AdminError::Invalid(format!(
                    "no purge is waiting for record {doc}"
                )));
            }
            crate::purge::save_pending(storage, &config.data_dir).map_err(purge_error)?;
            by.audit(
                storage,
                now,
                AuditAction::PurgeCancelled,
                doc.to_string(),
                String::new(),
            )?;
            w(out, format!("the purge of record {doc} was undone"));
        }
        "list-purges" => {
            w(out, "record\tstate\treason\tat\tby".into());
            for p in storage.pending_purges()? {
                w(
                    out,
                    format!(
                        "{}\twaiting\t{}\t{}\t{}",
                        p.doc_id,
                        p.reason.as_str(),
                        format_time(p.due_at),
                        p.username
                    ),
                );
            }
            for t in storage.tombstones()? {
                w(
                    out,
                    format!(
                        "{}\tdestroyed\t{}\t{}\t{}",
                        t.doc_id,
                        t.reason.as_str(),
                        format_time(t.purged_at),
                        t.username
                    ),
                );
            }
        }
        "tombstones" => {
            let mut seen = std::collections::HashSet::new();
            let from_file = crate::purge::read_file(&config.data_dir);
            for t in storage.tombstones()?.iter().chain(from_file.iter()) {
                if seen.insert(t.doc_id) {
                    let _ = write!(out, "{}", crate::purge::line_of(t));
                }
            }
        }
        "verify-audit" => {
            let n = storage.verify_audit()?;
            w(out, format!("audit log intact: {n} entries"));
        }
        "renew-certificate" => {
            if config.tls != crate::config::TlsMode::LocalCa {
                return Err(AdminError::Invalid(
                    "renew-certificate is for tls = \"local_ca\"".into(),
                ));
            }
            let mut line = String::new();
            input.read_line(&mut line).map_err(AdminError::Stdin)?;
            let trust =
                crate::tls::local_ca::renew(&config.data_dir, &config.tls_names, line.trim())
                    .map_err(|e| AdminError::Invalid(e.to_string()))?;
            by.audit(
                storage,
                now,
                AuditAction::CertificateRenewed,
                "tls".into(),
                format!(
                    "server certificate {} for {} name(s)",
                    trust.server_fingerprint,
                    config.tls_names.len()
                ),
            )?;
            w(
                out,
                format!(
                    "issued a new server certificate for {} (SHA-256 {}); restart the server to \
                     use it",
                    config.tls_names.join(", "),
                    trust.server_fingerprint
                ),
            );
        }
        other => return Err(AdminError::Usage(format!("unknown command `{other}`"))),
    }
    Ok(())
}

/// Creates a case document and its team entry. Returns the new case's id.
pub fn create_case(
    storage: &dyn Storage,
    name: &str,
    created_by: &str,
    now: i64,
) -> Result<DocumentId, AdminError> {
    let id = DocumentId::from_bytes(random_16());
    let editor = Editor {
        user: created_by.to_owned(),
        device: "server".into(),
        role: Role::Admin,
    };
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
pub fn format_time(millis: i64) -> String {
    let date = saksi_shared::validate::date_of_millis(millis);
    let minutes = millis.rem_euclid(86_400_000) / 60_000;
    format!("{date} {:02}:{:02}", minutes / 60, minutes % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::prelude::*;
    use crate::storage::sqlite::SqliteStorage;

    fn run_cmd(storage: &dyn Storage, line: &str, stdin: &str) -> Result<String, AdminError> {
        let words: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        let mut out = Vec::new();
        run(
            &words[0],
            &words[1..],
            &Config::default(),
            storage,
            &mut stdin.as_bytes(),
            &mut out,
        )?;
        Ok(String::from_utf8(out).expect("utf-8"))
    }

    #[test]
    fn accounts_devices_and_cases_from_the_command_line() {
        let dir = tempfile::tempdir().expect("dir");
        let storage = SqliteStorage::open(&dir.path().join("db.sqlite3")).expect("open");
        let out = run_cmd(
            &storage,
            "create-user --username sophea --role monitor",
            "a long enough password\n",
        )
        .expect("created");
        assert_eq!(out, "created user sophea (monitor)\n");
        let (user, hash) = storage
            .user_by_name("sophea")
            .expect("read")
            .expect("exists");
        assert_eq!(user.role, Role::Monitor);
        assert!(Passwords::new(19_456, 2).verify_now("a long enough password", &hash));

        // Refusals: short password, unknown role, duplicate, bad username, missing option.
        assert!(matches!(
            run_cmd(
                &storage,
                "create-user --username dara --role monitor",
                "short\n"
            ),
            Err(AdminError::Invalid(_))
        ));
        assert!(matches!(
            run_cmd(
                &storage,
                "create-user --username dara --role judge",
                "long password 123\n"
            ),
            Err(AdminError::Invalid(_))
        ));
        let duplicate = run_cmd(
            &storage,
            "create-user --username sophea --role liaison",
            "long password 123\n",
        );
        assert!(
            matches!(
                duplicate,
                Err(AdminError::Storage(StorageError::Conflict(_)))
            ) || matches!(&duplicate, Err(AdminError::Invalid(m)) if m.contains("taken")),
            "{duplicate:?}"
        );
        assert!(
            run_cmd(
                &storage,
                "create-user --username a/b --role monitor",
                "long password 123\n"
            )
            .is_err()
        );
        assert!(matches!(
            run_cmd(&storage, "create-user --role monitor", ""),
            Err(AdminError::Usage(_))
        ));

        run_cmd(
            &storage,
            "reset-password --username sophea",
            "another long password\n",
        )
        .expect("reset");
        let (_, hash) = storage
            .user_by_name("sophea")
            .expect("read")
            .expect("exists");
        assert!(Passwords::new(19_456, 2).verify_now("another long password", &hash));

        let case = run_cmd(&storage, "create-case --name ករណី-សាក្សី", "").expect("case");
        let case = case.trim();
        let case_id = DocumentId::parse(case).expect("prints the id");
        run_cmd(
            &storage,
            &format!("add-member --case {case} --username sophea"),
            "",
        )
        .expect("member");
        assert_eq!(storage.cases_of(user.id).expect("cases"), vec![case_id]);
        let listed = run_cmd(&storage, "list-cases", "").expect("list");
        assert!(
            listed.contains("ករណី-សាក្សី") && listed.contains("sophea"),
            "{listed}"
        );
        // The case is a real record document.
        let chunks = storage.chunks(&case_id).expect("chunks").concat();
        let record = Record::load(&chunks, ActorId::random()).expect("loads");
        assert_eq!(
            record
                .field("name")
                .expect("field")
                .map(|v| v.display())
                .as_deref(),
            Some("ករណី-សាក្សី")
        );

        storage
            .create_device("dev_x", user.id, "phone", &[1; 32], 0, i64::MAX)
            .expect("device");
        let devices = run_cmd(&storage, "list-devices --username sophea", "").expect("list");
        assert!(
            devices.contains("dev_x") && devices.contains("active"),
            "{devices}"
        );
        run_cmd(&storage, "revoke-device --device dev_x", "").expect("revoked");
        assert!(
            run_cmd(&storage, "revoke-device --device dev_x", "").is_err(),
            "twice"
        );
        let devices = run_cmd(&storage, "list-devices", "").expect("list");
        assert!(devices.contains("revoked"), "{devices}");

        // Ending sessions touches live devices only, and keeps them (they renew by signing in).
        storage
            .create_device("dev_y", user.id, "phone 2", &[2; 32], 0, i64::MAX)
            .expect("device");
        let out = run_cmd(&storage, "end-sessions --username sophea", "").expect("ended");
        assert_eq!(out, "ended 1 session(s) of sophea\n");
        let (dev_y, _) = storage
            .device_by_token(&[2; 32])
            .expect("read")
            .expect("the device stays");
        assert!(dev_y.revoked_at.is_none() && dev_y.expires_at < i64::MAX);
        let devices = run_cmd(&storage, "list-devices --username sophea", "").expect("list");
        assert!(
            devices
                .lines()
                .any(|l| l.contains("dev_y") && l.contains("expired")),
            "{devices}"
        );
        assert_eq!(
            run_cmd(&storage, "end-sessions --username sophea", "").expect("again"),
            "ended 0 session(s) of sophea\n"
        );

        run_cmd(&storage, "disable-user --username sophea", "").expect("disabled");
        assert!(
            storage
                .user_by_id(user.id)
                .expect("read")
                .expect("exists")
                .disabled
        );

        let audit = run_cmd(&storage, "verify-audit", "").expect("intact");
        assert!(audit.starts_with("audit log intact: "), "{audit}");
        let entries = storage.audit(&Default::default()).expect("audit");
        assert!(
            entries
                .iter()
                .any(|e| e.event.action == AuditAction::DeviceRevoked)
        );
        assert!(
            entries
                .iter()
                .any(|e| e.event.action == AuditAction::SessionsEnded)
        );
        assert!(
            entries.iter().all(|e| !e.event.detail.contains("password")),
            "no secrets in the audit log"
        );
    }
}
