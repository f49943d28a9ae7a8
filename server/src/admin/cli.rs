//! `saksi admin <command>`: the command line for operators and scripts, one function per
//! command. Passwords and the CA key's passphrase are read from standard input, never from the
//! command line (which other users of the machine can see); `main` asks for them with the
//! typing hidden when standard input is a terminal ([`Command::secret_prompt`]).

use std::io::{BufRead, Write};
use std::path::PathBuf;

use clap::Subcommand;
use saksi_shared::{DocumentId, Role, Timestamp};

use super::{
    AdminError, Operator, check_username, create_user, end_sessions, format_time, new_case,
    reset_password, revoke_device, set_disabled, set_member, set_role,
};
use crate::accounts::Passwords;
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, TlsMode};
use crate::purge::{self, PurgeError};
use crate::storage::{AuditAction, PurgeReason, Storage, User};

/// The admin commands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Creates an account; its password is read from standard input (one line).
    CreateUser {
        /// 1-64 letters (any script), digits, '.', '_' or '-'.
        #[arg(long, allow_hyphen_values = true)]
        username: String,
        /// monitor, liaison, coordinator or admin.
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
    /// Sets a new password, read from standard input.
    ResetPassword {
        #[arg(long, allow_hyphen_values = true)]
        username: String,
    },
    /// Changes an account's role.
    SetRole {
        #[arg(long, allow_hyphen_values = true)]
        username: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
    /// Disables an account; also cuts off its devices.
    DisableUser {
        #[arg(long, allow_hyphen_values = true)]
        username: String,
    },
    /// Enables a disabled account (its devices stay revoked: it signs in again).
    EnableUser {
        #[arg(long, allow_hyphen_values = true)]
        username: String,
    },
    /// Lists the accounts: username, role, active or disabled.
    ListUsers,
    /// Lists the devices, of one account or of all.
    ListDevices {
        #[arg(long, allow_hyphen_values = true)]
        username: Option<String>,
    },
    /// Revokes a device: it can no longer sign in, sync or renew, and wipes itself at its
    /// next contact.
    RevokeDevice {
        /// The device's id, as list-devices shows it.
        #[arg(long, allow_hyphen_values = true)]
        device: String,
    },
    /// Signs an account's devices out without wiping them: each asks for the password at its
    /// next contact and keeps its data.
    EndSessions {
        #[arg(long, allow_hyphen_values = true)]
        username: String,
    },
    /// Creates a case and prints its id.
    CreateCase {
        /// 1-200 characters, any script.
        #[arg(long, allow_hyphen_values = true)]
        name: String,
    },
    /// Lists the cases: id, name, team.
    ListCases,
    /// Adds an account to a case's team.
    AddMember {
        /// The case's id, as list-cases shows it.
        #[arg(long, value_parser = parse_id)]
        case: DocumentId,
        #[arg(long, allow_hyphen_values = true)]
        username: String,
    },
    /// Removes an account from a case's team.
    RemoveMember {
        /// The case's id, as list-cases shows it.
        #[arg(long, value_parser = parse_id)]
        case: DocumentId,
        #[arg(long, allow_hyphen_values = true)]
        username: String,
    },
    /// Destroys a record after the grace period (purge_grace_days), hidden from field staff
    /// meanwhile; with --now at once, which cannot be undone.
    Purge {
        /// The record's id, as the console and list-purges show it.
        #[arg(long, value_parser = parse_id)]
        document: DocumentId,
        /// consent_withdrawn, recorded_in_error or safety.
        #[arg(long, value_parser = parse_reason)]
        reason: PurgeReason,
        /// Destroy it now, without the grace period.
        #[arg(long)]
        now: bool,
    },
    /// Undoes a purge still waiting.
    CancelPurge {
        /// The record's id, as the console and list-purges show it.
        #[arg(long, value_parser = parse_id)]
        document: DocumentId,
    },
    /// Lists the purges waiting, then the records destroyed (ids only).
    ListPurges,
    /// Prints the destroyed records as data_dir/tombstones holds them (keep a copy with the
    /// backups: a restore on another machine needs it).
    Tombstones,
    /// Checks the audit log's hash chain.
    VerifyAudit,
    /// tls = "local_ca": issues a new server certificate for tls_names from the local CA (its
    /// key's passphrase on standard input); restart the server to use it.
    RenewCertificate,
    /// Writes a consistent copy of the database and the attached files, also while the server
    /// runs; prints sizes and counts.
    Backup {
        /// The backup file (must not exist).
        file: PathBuf,
    },
    /// Checks a backup and puts it in place of the database; the server must be stopped.
    Restore {
        file: PathBuf,
        /// Replace an existing database (kept beside it, renamed).
        #[arg(long)]
        force: bool,
    },
}

impl Command {
    /// What the command reads from standard input as a secret (a password, the CA key's
    /// passphrase): on a terminal it is asked for with the typing hidden.
    pub fn secret_prompt(&self) -> Option<&'static str> {
        match self {
            Command::CreateUser { .. } | Command::ResetPassword { .. } => Some("password: "),
            Command::RenewCertificate => Some("the CA key's passphrase: "),
            _ => None,
        }
    }
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| "a role is monitor, liaison, coordinator or admin".into())
}

fn parse_id(s: &str) -> Result<DocumentId, String> {
    DocumentId::parse(s).map_err(|e| format!("not a record id: {e}"))
}

fn parse_reason(s: &str) -> Result<PurgeReason, String> {
    PurgeReason::parse(s)
        .filter(|r| *r != PurgeReason::Discarded)
        .ok_or_else(|| "a reason is consent_withdrawn, recorded_in_error or safety".into())
}

/// What every command works with.
struct Ctx<'a> {
    config: &'a Config,
    storage: &'a dyn Storage,
    input: &'a mut dyn BufRead,
    out: &'a mut dyn Write,
    now: Timestamp,
    by: Operator<'static>,
}

impl Ctx<'_> {
    fn say(&mut self, line: impl std::fmt::Display) -> Result<(), AdminError> {
        writeln!(self.out, "{line}").map_err(AdminError::Stdout)
    }

    fn user(&self, username: &str) -> Result<User, AdminError> {
        self.storage
            .user_by_name(username)?
            .map(|(u, _)| u)
            .ok_or_else(|| AdminError::Invalid(format!("no user `{username}`")))
    }

    fn passwords(&self) -> Passwords {
        Passwords::new(self.config.argon2_memory_kib, self.config.argon2_iterations)
    }

    /// One line of standard input, without its line ending.
    fn read_line(&mut self) -> Result<String, AdminError> {
        let mut line = String::new();
        self.input.read_line(&mut line).map_err(AdminError::Stdin)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }

    fn read_password(&mut self) -> Result<String, AdminError> {
        let password = self.read_line()?;
        if password.is_empty() {
            return Err(AdminError::Invalid("no password on standard input".into()));
        }
        Ok(password)
    }
}

/// Runs one admin command on `storage` (not `backup` or `restore`, which work on the database
/// file: see [`crate::backup`]). `input` supplies secrets; `out` receives results.
pub fn run(
    command: Command,
    config: &Config,
    storage: &dyn Storage,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    let mut cx = Ctx {
        config,
        storage,
        input,
        out,
        now: SystemClock.now(),
        by: Operator::CLI,
    };
    match command {
        Command::CreateUser { username, role } => create_user_cmd(&mut cx, &username, role),
        Command::ResetPassword { username } => reset_password_cmd(&mut cx, &username),
        Command::SetRole { username, role } => set_role_cmd(&mut cx, &username, role),
        Command::DisableUser { username } => set_disabled_cmd(&mut cx, &username, true),
        Command::EnableUser { username } => set_disabled_cmd(&mut cx, &username, false),
        Command::ListUsers => list_users(&mut cx),
        Command::ListDevices { username } => list_devices(&mut cx, username.as_deref()),
        Command::RevokeDevice { device } => revoke_device_cmd(&mut cx, &device),
        Command::EndSessions { username } => end_sessions_cmd(&mut cx, &username),
        Command::CreateCase { name } => create_case_cmd(&mut cx, &name),
        Command::ListCases => list_cases(&mut cx),
        Command::AddMember { case, username } => member_cmd(&mut cx, case, &username, true),
        Command::RemoveMember { case, username } => member_cmd(&mut cx, case, &username, false),
        Command::Purge {
            document,
            reason,
            now,
        } => purge_cmd(&mut cx, document, reason, now),
        Command::CancelPurge { document } => cancel_purge(&mut cx, document),
        Command::ListPurges => list_purges(&mut cx),
        Command::Tombstones => tombstones(&mut cx),
        Command::VerifyAudit => verify_audit(&mut cx),
        Command::RenewCertificate => renew_certificate(&mut cx),
        Command::Backup { .. } | Command::Restore { .. } => Err(AdminError::Invalid(
            "backup and restore work on the database file, not through storage".into(),
        )),
    }
}

fn create_user_cmd(cx: &mut Ctx<'_>, username: &str, role: Role) -> Result<(), AdminError> {
    check_username(username)?;
    let password = cx.read_password()?;
    let user = create_user(
        cx.storage,
        &cx.passwords(),
        cx.by,
        username,
        role,
        &password,
        cx.now,
    )?;
    cx.say(format_args!(
        "created user {} ({})",
        user.username,
        role.as_str()
    ))
}

fn reset_password_cmd(cx: &mut Ctx<'_>, username: &str) -> Result<(), AdminError> {
    let user = cx.user(username)?;
    let password = cx.read_password()?;
    reset_password(cx.storage, &cx.passwords(), cx.by, &user, &password, cx.now)?;
    cx.say(format_args!("password of {} reset", user.username))
}

fn set_role_cmd(cx: &mut Ctx<'_>, username: &str, role: Role) -> Result<(), AdminError> {
    let user = cx.user(username)?;
    set_role(cx.storage, cx.by, &user, role, cx.now)?;
    cx.say(format_args!("{} is now {}", user.username, role.as_str()))
}

fn set_disabled_cmd(cx: &mut Ctx<'_>, username: &str, disabled: bool) -> Result<(), AdminError> {
    let user = cx.user(username)?;
    set_disabled(cx.storage, cx.by, &user, disabled, cx.now)?;
    let state = if disabled { "disabled" } else { "enabled" };
    cx.say(format_args!("{} {state}", user.username))
}

fn list_users(cx: &mut Ctx<'_>) -> Result<(), AdminError> {
    for u in cx.storage.users()? {
        let state = if u.disabled { "disabled" } else { "active" };
        cx.say(format_args!("{}\t{}\t{state}", u.username, u.role.as_str()))?;
    }
    Ok(())
}

fn list_devices(cx: &mut Ctx<'_>, username: Option<&str>) -> Result<(), AdminError> {
    let user = match username {
        Some(name) => Some(cx.user(name)?.id),
        None => None,
    };
    cx.say("device\tuser\tname\tlast_seen\tstatus")?;
    for (d, u) in cx.storage.devices(user)? {
        let status = match d.revoked_at {
            Some(_) => "revoked",
            None if d.expires_at <= cx.now => "expired",
            None => "active",
        };
        let last_seen = d.last_seen.map(format_time).unwrap_or_else(|| "-".into());
        cx.say(format_args!(
            "{}\t{}\t{}\t{last_seen}\t{status}",
            d.id, u.username, d.name
        ))?;
    }
    Ok(())
}

fn revoke_device_cmd(cx: &mut Ctx<'_>, device: &str) -> Result<(), AdminError> {
    if !revoke_device(cx.storage, cx.by, device, cx.now)? {
        return Err(AdminError::Invalid(format!("no active device `{device}`")));
    }
    cx.say(format_args!("device {device} revoked"))
}

fn end_sessions_cmd(cx: &mut Ctx<'_>, username: &str) -> Result<(), AdminError> {
    let user = cx.user(username)?;
    let ended = end_sessions(cx.storage, cx.by, &user, cx.now)?;
    cx.say(format_args!(
        "ended {ended} session(s) of {}",
        user.username
    ))
}

fn create_case_cmd(cx: &mut Ctx<'_>, name: &str) -> Result<(), AdminError> {
    let id = new_case(cx.storage, cx.by, name, cx.now)?;
    cx.say(id)
}

fn list_cases(cx: &mut Ctx<'_>) -> Result<(), AdminError> {
    for c in cx.storage.cases()? {
        let members = cx
            .storage
            .members(&c.id)?
            .into_iter()
            .map(|u| u.username)
            .collect::<Vec<_>>()
            .join(",");
        cx.say(format_args!("{}\t{}\t{members}", c.id, c.name))?;
    }
    Ok(())
}

fn member_cmd(
    cx: &mut Ctx<'_>,
    case: DocumentId,
    username: &str,
    member: bool,
) -> Result<(), AdminError> {
    let user = cx.user(username)?;
    set_member(cx.storage, cx.by, &case, &user, member, cx.now)?;
    let done = if member { "added to" } else { "removed from" };
    cx.say(format_args!("{} {done} case {case}", user.username))
}

fn purge_error(e: PurgeError) -> AdminError {
    match e {
        PurgeError::Storage(e) => AdminError::Storage(e),
        PurgeError::NotFound => AdminError::Invalid("no such record".into()),
        e @ PurgeError::File { .. } => AdminError::PurgeFile(e),
        other => AdminError::Invalid(other.to_string()),
    }
}

fn purge_cmd(
    cx: &mut Ctx<'_>,
    doc: DocumentId,
    reason: PurgeReason,
    now: bool,
) -> Result<(), AdminError> {
    let data_dir = &cx.config.data_dir;
    if now {
        let purged =
            purge::destroy_stored(cx.storage, data_dir, doc, cx.by.username(), reason, cx.now)
                .map_err(purge_error)?;
        return cx.say(format_args!(
            "record {doc} destroyed ({}); {} file(s) deleted",
            reason.as_str(),
            purged.files.len()
        ));
    }
    let grace = cx.config.purge_grace_days;
    let p = purge::schedule_stored(
        cx.storage,
        data_dir,
        doc,
        cx.by.username(),
        reason,
        grace,
        cx.now,
    )
    .map_err(purge_error)?;
    cx.say(format_args!(
        "record {doc} will be destroyed at {} ({}); hidden from field staff until then; \
         `saksi admin cancel-purge --document {doc}` undoes it",
        format_time(p.due_at),
        reason.as_str()
    ))
}

fn cancel_purge(cx: &mut Ctx<'_>, doc: DocumentId) -> Result<(), AdminError> {
    let data_dir = &cx.config.data_dir;
    if !purge::cancel_stored(cx.storage, data_dir, doc, cx.by.username(), cx.now)
        .map_err(purge_error)?
    {
        return Err(AdminError::Invalid(format!(
            "no purge is waiting for record {doc}"
        )));
    }
    cx.say(format_args!("the purge of record {doc} was undone"))
}

fn list_purges(cx: &mut Ctx<'_>) -> Result<(), AdminError> {
    cx.say("record\tstate\treason\tat\tby")?;
    for p in cx.storage.pending_purges()? {
        cx.say(format_args!(
            "{}\twaiting\t{}\t{}\t{}",
            p.doc_id,
            p.reason.as_str(),
            format_time(p.due_at),
            p.username
        ))?;
    }
    for t in cx.storage.tombstones()? {
        cx.say(format_args!(
            "{}\tdestroyed\t{}\t{}\t{}",
            t.doc_id,
            t.reason.as_str(),
            format_time(t.purged_at),
            t.username
        ))?;
    }
    Ok(())
}

fn tombstones(cx: &mut Ctx<'_>) -> Result<(), AdminError> {
    let mut seen = std::collections::HashSet::new();
    let from_file = purge::read_file(&cx.config.data_dir);
    for t in cx.storage.tombstones()?.iter().chain(from_file.iter()) {
        if seen.insert(t.doc_id) {
            write!(cx.out, "{}", purge::line_of(t)).map_err(AdminError::Stdout)?;
        }
    }
    Ok(())
}

fn verify_audit(cx: &mut Ctx<'_>) -> Result<(), AdminError> {
    let n = cx.storage.verify_audit()?;
    cx.say(format_args!("audit log intact: {n} entries"))
}

fn renew_certificate(cx: &mut Ctx<'_>) -> Result<(), AdminError> {
    if cx.config.tls != TlsMode::LocalCa {
        return Err(AdminError::Invalid(
            "renew-certificate is for tls = \"local_ca\"".into(),
        ));
    }
    let passphrase = cx.read_line()?;
    let names = &cx.config.tls_names;
    let trust = crate::tls::local_ca::renew(&cx.config.data_dir, names, passphrase.trim())
        .map_err(|e| match e {
            crate::tls::TlsError::WrongPassphrase => AdminError::Invalid(e.to_string()),
            e => AdminError::Tls(e),
        })?;
    cx.by.audit(
        cx.storage,
        cx.now,
        AuditAction::CertificateRenewed,
        "tls".into(),
        format!(
            "server certificate {} for {} name(s)",
            trust.server_fingerprint,
            names.len()
        ),
    )?;
    cx.say(format_args!(
        "issued a new server certificate for {} (SHA-256 {}); restart the server to use it",
        names.join(", "),
        trust.server_fingerprint
    ))
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory as _, Parser};
    use saksi_shared::automerge::ActorId;
    use saksi_shared::record::Record;

    use super::*;
    use crate::accounts::Passwords;
    use crate::storage::StorageError;
    use crate::storage::prelude::*;
    use crate::storage::sqlite::SqliteStorage;

    /// `saksi admin`, as `main` parses it.
    #[derive(Debug, Parser)]
    #[command(name = "saksi admin")]
    struct Admin {
        #[command(subcommand)]
        command: Command,
    }

    /// A command refused by the parser (clap's usage error) or when it ran.
    #[derive(Debug)]
    enum Refused {
        Usage(clap::Error),
        Admin(AdminError),
    }

    fn run_cmd(storage: &dyn Storage, line: &str, stdin: &str) -> Result<String, Refused> {
        let words = std::iter::once("saksi-admin").chain(line.split_whitespace());
        let parsed = Admin::try_parse_from(words).map_err(Refused::Usage)?;
        let mut out = Vec::new();
        run(
            parsed.command,
            &Config::default(),
            storage,
            &mut stdin.as_bytes(),
            &mut out,
        )
        .map_err(Refused::Admin)?;
        Ok(String::from_utf8(out).expect("utf-8"))
    }

    #[test]
    fn every_command_has_help_and_the_definition_is_consistent() {
        Admin::command().debug_assert();
        let admin = Admin::command();
        for sub in admin.get_subcommands() {
            assert!(
                sub.get_about().is_some_and(|a| !a.to_string().is_empty()),
                "`{}` has no help text",
                sub.get_name()
            );
        }
        let names: Vec<&str> = admin.get_subcommands().map(|c| c.get_name()).collect();
        for name in [
            "create-user",
            "add-member",
            "purge",
            "renew-certificate",
            "restore",
        ] {
            assert!(names.contains(&name), "{name} in {names:?}");
        }
        let help = Admin::try_parse_from(["saksi-admin", "purge", "--help"])
            .expect_err("help is an early exit")
            .to_string();
        assert!(
            help.contains("--reason") && help.contains("--now"),
            "{help}"
        );
    }

    #[test]
    fn options_are_checked_before_anything_runs() {
        let parse = |line: &str| {
            Admin::try_parse_from(std::iter::once("saksi-admin").chain(line.split_whitespace()))
                .map(|a| a.command)
        };
        let id = DocumentId::from_bytes([7; 16]);
        assert_eq!(
            parse(&format!("purge --document {id} --reason safety --now")).expect("parses"),
            Command::Purge {
                document: id,
                reason: PurgeReason::Safety,
                now: true
            }
        );
        for bad in [
            "create-user --role monitor".to_owned(),
            "create-user --username dara --role judge".to_owned(),
            format!("purge --document {id} --reason discarded"),
            "purge --document nonsense --reason safety".to_owned(),
            "add-member --case x --username dara".to_owned(),
            "restore".to_owned(),
            "frobnicate".to_owned(),
        ] {
            let e = parse(&bad).expect_err(&bad);
            assert_eq!(e.exit_code(), 2, "{bad}: a usage error");
        }
        assert_eq!(
            Command::CreateUser {
                username: "dara".into(),
                role: Role::Monitor
            }
            .secret_prompt(),
            Some("password: ")
        );
        assert_eq!(Command::ListUsers.secret_prompt(), None);
        // Usernames, case names and device ids may start with '-', as before clap.
        assert_eq!(
            parse("reset-password --username -bob").expect("parses"),
            Command::ResetPassword {
                username: "-bob".into()
            }
        );
        assert_eq!(
            parse("create-case --name -ក").expect("parses"),
            Command::CreateCase {
                name: "-ក".into()
            }
        );
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
            Err(Refused::Admin(AdminError::Invalid(_)))
        ));
        assert!(matches!(
            run_cmd(
                &storage,
                "create-user --username dara --role judge",
                "long password 123\n"
            ),
            Err(Refused::Usage(e)) if e.kind() == clap::error::ErrorKind::ValueValidation
        ));
        let duplicate = run_cmd(
            &storage,
            "create-user --username sophea --role liaison",
            "long password 123\n",
        );
        assert!(
            matches!(
                duplicate,
                Err(Refused::Admin(AdminError::Storage(StorageError::Conflict(
                    _
                ))))
            ) || matches!(&duplicate, Err(Refused::Admin(AdminError::Invalid(m))) if m.contains("taken")),
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
            Err(Refused::Usage(e)) if e.kind() == clap::error::ErrorKind::MissingRequiredArgument
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
            .create_device(
                "dev_x",
                user.id,
                "phone",
                &[1; 32],
                Timestamp::EPOCH,
                Timestamp::MAX,
            )
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
            .create_device(
                "dev_y",
                user.id,
                "phone 2",
                &[2; 32],
                Timestamp::EPOCH,
                Timestamp::MAX,
            )
            .expect("device");
        let out = run_cmd(&storage, "end-sessions --username sophea", "").expect("ended");
        assert_eq!(out, "ended 1 session(s) of sophea\n");
        let (dev_y, _) = storage
            .device_by_token(&[2; 32])
            .expect("read")
            .expect("the device stays");
        assert!(dev_y.revoked_at.is_none() && dev_y.expires_at < Timestamp::MAX);
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
