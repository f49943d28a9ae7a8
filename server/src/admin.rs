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
use saksi_shared::{DocumentId, Role};

use crate::accounts::{Clock, Passwords, SystemClock, random_16};
use crate::config::Config;
use crate::storage::{AuditEvent, Case, DocumentRow, Storage, StorageError};

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
  create-case --name N              prints the new case's id
  list-cases
  add-member --case ID --username U
  remove-member --case ID --username U
  verify-audit                      checks the audit log's hash chain
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

impl Args {
    fn parse(args: &[String]) -> Result<Args, AdminError> {
        let mut map = HashMap::new();
        let mut it = args.iter();
        while let Some(key) = it.next() {
            let name = key
                .strip_prefix("--")
                .ok_or_else(|| AdminError::Usage(format!("unexpected argument `{key}`")))?;
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

fn user_id(storage: &dyn Storage, username: &str) -> Result<crate::storage::User, AdminError> {
    storage
        .user_by_name(username)?
        .map(|(u, _)| u)
        .ok_or_else(|| AdminError::Invalid(format!("no user `{username}`")))
}

fn case_id(s: &str) -> Result<DocumentId, AdminError> {
    DocumentId::parse(s).map_err(|e| AdminError::Invalid(format!("bad case id: {e}")))
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
    let audit = |action: &str, target: String, detail: String| {
        storage.append_audit(AuditEvent {
            at: now,
            username: Some("cli".into()),
            device_id: None,
            action: action.into(),
            target: Some(target),
            detail,
        })
    };
    let w = |out: &mut dyn Write, text: String| {
        let _ = writeln!(out, "{text}");
    };
    match command {
        "create-user" => {
            let username = args.get("username")?;
            if username.is_empty()
                || username.len() > 64
                || !username
                    .chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'))
            {
                return Err(AdminError::Invalid(
                    "a username is 1-64 letters, digits, '.', '_' or '-'".into(),
                ));
            }
            let role = role(args.get("role")?)?;
            let hash = passwords
                .hash(&read_password(input)?)
                .map_err(|e| AdminError::Invalid(e.to_string()))?;
            let user = storage.create_user(username, role, &hash, now)?;
            audit(
                "user_created",
                username.into(),
                format!("role {}", role.as_str()),
            )?;
            w(
                out,
                format!("created user {} ({})", user.username, role.as_str()),
            );
        }
        "reset-password" => {
            let user = user_id(storage, args.get("username")?)?;
            let hash = passwords
                .hash(&read_password(input)?)
                .map_err(|e| AdminError::Invalid(e.to_string()))?;
            storage.set_password(user.id, &hash)?;
            audit("password_reset", user.username.clone(), String::new())?;
            w(out, format!("password of {} reset", user.username));
        }
        "set-role" => {
            let user = user_id(storage, args.get("username")?)?;
            let role = role(args.get("role")?)?;
            storage.set_role(user.id, role)?;
            audit(
                "role_changed",
                user.username.clone(),
                format!("role {}", role.as_str()),
            )?;
            w(out, format!("{} is now {}", user.username, role.as_str()));
        }
        "disable-user" | "enable-user" => {
            let user = user_id(storage, args.get("username")?)?;
            let disabled = command == "disable-user";
            storage.set_disabled(user.id, disabled)?;
            if disabled {
                for (device, _) in storage.devices(Some(user.id))? {
                    if device.revoked_at.is_none() {
                        storage.revoke_device(&device.id, now)?;
                    }
                }
            }
            audit(
                command.trim_end_matches("-user"),
                user.username.clone(),
                String::new(),
            )?;
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
            if storage.revoke_device(device, now)? {
                audit("device_revoked", device.into(), String::new())?;
                w(out, format!("device {device} revoked"));
            } else {
                return Err(AdminError::Invalid(format!("no active device `{device}`")));
            }
        }
        "create-case" => {
            let name = args.get("name")?;
            if name.trim().is_empty() || name.chars().count() > 200 {
                return Err(AdminError::Invalid(
                    "a case name is 1-200 characters".into(),
                ));
            }
            let id = create_case(storage, name, "admin", now)?;
            audit("case_created", id.to_string(), String::new())?;
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
            if !storage.cases()?.iter().any(|c| c.id == case) {
                return Err(AdminError::Invalid(format!("no case `{case}`")));
            }
            let user = user_id(storage, args.get("username")?)?;
            if command == "add-member" {
                storage.add_member(&case, user.id)?;
            } else {
                storage.remove_member(&case, user.id)?;
            }
            audit(command, case.to_string(), format!("user {}", user.username))?;
            w(
                out,
                format!(
                    "{} {} case {case}",
                    user.username,
                    if command == "add-member" {
                        "added to"
                    } else {
                        "removed from"
                    }
                ),
            );
        }
        "verify-audit" => {
            let n = storage.verify_audit()?;
            w(out, format!("audit log intact: {n} entries"));
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
