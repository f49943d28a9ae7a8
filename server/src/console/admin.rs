//! Admin pages: accounts, devices and cases with their teams. Admins only.
//!
//! The operations are those of the `saksi admin` command line ([`crate::admin`]), so checks and
//! audit entries are the same; here the audit log names the admin and their console device.
//! Revoking a device (directly, or by disabling its user) also closes its open sync sockets
//! at once.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use saksi_shared::{DocumentId, Role};
use serde::Deserialize;

use super::view::{Choice, Chrome, choices, time_in, time_opt_in};
use super::{Console, ConsoleError, page, see_other};
use crate::admin as ops;
use crate::storage::{User, UserId};

fn role_choices(selected: &str) -> Vec<Choice> {
    choices(
        Role::ALL
            .iter()
            .map(|r| (r.as_str().to_owned(), r.as_str().to_owned())),
        selected,
    )
}

#[derive(Debug, Deserialize)]
pub struct DoneQuery {
    #[serde(default)]
    done: String,
}

fn flash(done: &str, lang: saksi_shared::Lang) -> String {
    if done.is_empty() {
        return String::new();
    }
    match super::words::word(lang, &format!("done_{done}")) {
        "?" => String::new(),
        w => w.to_owned(),
    }
}

#[derive(Debug)]
pub struct UserRow {
    pub id: UserId,
    pub username: String,
    pub role: String,
    pub roles: Vec<Choice>,
    pub disabled: bool,
    pub created: String,
    pub active_devices: usize,
    pub is_me: bool,
}

#[derive(Template)]
#[template(path = "console/users.html")]
struct UsersPage {
    chrome: Chrome,
    flash: String,
    users: Vec<UserRow>,
    roles: Vec<Choice>,
}

pub async fn users(
    who: Console,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, ConsoleError> {
    who.require_admin()?;
    let (users, devices) = who
        .state
        .db
        .run(|s| Ok((s.users()?, s.devices(None)?)))
        .await?;
    let now = who.state.now();
    let me = who.auth.user.id;
    let rows = users
        .into_iter()
        .map(|u| UserRow {
            active_devices: devices
                .iter()
                .filter(|(d, _)| d.user_id == u.id && d.revoked_at.is_none() && d.expires_at > now)
                .count(),
            id: u.id,
            roles: role_choices(u.role.as_str()),
            role: u.role.as_str().to_owned(),
            disabled: u.disabled,
            created: time_in(&who.state.time_zone, u.created_at),
            is_me: u.id == me,
            username: u.username,
        })
        .collect();
    page(&UsersPage {
        chrome: who.chrome("users"),
        flash: flash(&query.done, who.lang),
        users: rows,
        roles: role_choices("monitor"),
    })
}

#[derive(Deserialize)]
pub struct NewUserForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
}

impl std::fmt::Debug for NewUserForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUserForm")
            .field("username", &self.username)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

fn parse_role(s: &str) -> Result<Role, ConsoleError> {
    Role::parse(s).ok_or_else(|| ConsoleError::BadRequest("Choose a role.".into()))
}

pub async fn create_user(
    req: HttpRequest,
    who: Console,
    form: web::Form<NewUserForm>,
) -> Result<HttpResponse, ConsoleError> {
    who.require_admin()?;
    who.check_form(&req, &form.csrf)?;
    let NewUserForm {
        username,
        role,
        password,
        ..
    } = form.into_inner();
    let role = parse_role(&role)?;
    let username = username.trim().to_owned();
    let (state, by) = (who.state.clone(), who.who());
    let now = state.now();
    let passwords = state.passwords.clone();
    state
        .db
        .run(move |s| {
            let by = ops::Operator::Admin(&by);
            Ok(ops::create_user(
                s, &passwords, by, &username, role, &password, now,
            ))
        })
        .await??;
    Ok(see_other("/console/admin/users?done=created"))
}

#[derive(Deserialize)]
pub struct UserActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
}

impl std::fmt::Debug for UserActionForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserActionForm")
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

async fn find_user(who: &Console, id: UserId) -> Result<User, ConsoleError> {
    who.state
        .db
        .run(move |s| s.user_by_id(id))
        .await?
        .ok_or(ConsoleError::NotFound)
}

pub async fn user_action(
    req: HttpRequest,
    who: Console,
    path: web::Path<(UserId, String)>,
    form: web::Form<UserActionForm>,
) -> Result<HttpResponse, ConsoleError> {
    who.require_admin()?;
    who.check_form(&req, &form.csrf)?;
    let (id, action) = path.into_inner();
    let user = find_user(&who, id).await?;
    if user.id == who.auth.user.id && matches!(action.as_str(), "role" | "disable") {
        return Err(ConsoleError::BadRequest(
            "You cannot change your own role or disable yourself; ask another admin.".into(),
        ));
    }
    let UserActionForm { role, password, .. } = form.into_inner();
    let (state, by) = (who.state.clone(), who.who());
    let now = state.now();
    let passwords = state.passwords.clone();
    let done = match action.as_str() {
        "role" => {
            let role = parse_role(&role)?;
            state
                .db
                .run(move |s| {
                    let by = ops::Operator::Admin(&by);
                    Ok(ops::set_role(s, by, &user, role, now))
                })
                .await??;
            "role"
        }
        "password" => {
            state
                .db
                .run(move |s| {
                    let by = ops::Operator::Admin(&by);
                    Ok(ops::reset_password(
                        s, &passwords, by, &user, &password, now,
                    ))
                })
                .await??;
            "password"
        }
        "disable" | "enable" => {
            let disabled = action == "disable";
            let revoked = state
                .db
                .run(move |s| {
                    let by = ops::Operator::Admin(&by);
                    Ok(ops::set_disabled(s, by, &user, disabled, now))
                })
                .await??;
            for device in &revoked {
                state.connections.close_device(device, "account disabled");
            }
            tracing::info!(
                user = id,
                devices = revoked.len(),
                disabled,
                "console: account"
            );
            if disabled { "disable" } else { "enable" }
        }
        _ => return Err(ConsoleError::NotFound),
    };
    Ok(see_other(&format!("/console/admin/users?done={done}")))
}

#[derive(Debug)]
pub struct DeviceRow {
    pub id: String,
    pub name: String,
    pub user: String,
    pub created: String,
    pub last_seen: String,
    pub expires: String,
    /// `active`, `expired` or `revoked`.
    pub status: &'static str,
    pub is_this: bool,
}

#[derive(Template)]
#[template(path = "console/devices.html")]
struct DevicesPage {
    chrome: Chrome,
    flash: String,
    users: Vec<Choice>,
    devices: Vec<DeviceRow>,
    active: usize,
}

#[derive(Debug, Deserialize)]
pub struct DevicesQuery {
    #[serde(default)]
    user: String,
    #[serde(default)]
    done: String,
}

pub async fn devices(
    who: Console,
    query: web::Query<DevicesQuery>,
) -> Result<HttpResponse, ConsoleError> {
    who.require_admin()?;
    let name = query.user.trim().to_owned();
    let (users, devices) = who
        .state
        .db
        .run(move |s| {
            let users = s.users()?;
            let only = users.iter().find(|u| u.username == name).map(|u| u.id);
            if !name.is_empty() && only.is_none() {
                return Ok((users, Vec::new()));
            }
            Ok((users.clone(), s.devices(only)?))
        })
        .await?;
    let now = who.state.now();
    let rows: Vec<DeviceRow> = devices
        .into_iter()
        .map(|(d, u)| DeviceRow {
            status: match d.revoked_at {
                Some(_) => "revoked",
                None if d.expires_at <= now => "expired",
                None => "active",
            },
            is_this: d.id == who.auth.device.id,
            created: time_in(&who.state.time_zone, d.created_at),
            last_seen: time_opt_in(&who.state.time_zone, d.last_seen),
            expires: time_in(&who.state.time_zone, d.expires_at),
            user: u.username,
            name: d.name,
            id: d.id.into_string(),
        })
        .collect();
    let mut options = vec![(
        String::new(),
        super::words::word(who.lang, "everyone").to_owned(),
    )];
    options.extend(
        users
            .iter()
            .map(|u| (u.username.clone(), u.username.clone())),
    );
    page(&DevicesPage {
        chrome: who.chrome("devices"),
        flash: flash(&query.done, who.lang),
        users: choices(options, query.user.trim()),
        active: rows.iter().filter(|d| d.status == "active").count(),
        devices: rows,
    })
}

/// A revocation: one click is not enough, the form's box must be ticked too.
#[derive(Debug, Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    confirm: String,
}

pub async fn revoke(
    req: HttpRequest,
    who: Console,
    path: web::Path<String>,
    form: web::Form<RevokeForm>,
) -> Result<HttpResponse, ConsoleError> {
    who.require_admin()?;
    who.check_form(&req, &form.csrf)?;
    if form.confirm != "yes" {
        return Err(ConsoleError::BadRequest(
            "Tick the box to confirm: a revoked phone wipes itself at its next contact.".into(),
        ));
    }
    let device = path.into_inner();
    let (state, by) = (who.state.clone(), who.who());
    let now = state.now();
    let target = device.clone();
    let revoked = state
        .db
        .run(move |s| {
            let by = ops::Operator::Admin(&by);
            Ok(ops::revoke_device(s, by, &target, now))
        })
        .await??;
    if !revoked {
        return Err(ConsoleError::BadRequest(
            "No active device with that id.".into(),
        ));
    }
    let closed = state.connections.close_device(&device, "device revoked");
    tracing::info!(device = %device, connections = closed, "console: device revoked");
    Ok(see_other("/console/admin/devices?done=revoked"))
}

#[derive(Debug)]
pub struct CaseRow {
    pub id: String,
    pub name: String,
    pub created: String,
    pub members: Vec<(UserId, String, String)>,
    pub others: Vec<Choice>,
    pub records: u64,
}

#[derive(Template)]
#[template(path = "console/cases.html")]
struct CasesPage {
    chrome: Chrome,
    flash: String,
    cases: Vec<CaseRow>,
}

pub async fn cases(
    who: Console,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, ConsoleError> {
    who.require_admin()?;
    let (cases, users) = who
        .state
        .db
        .run(|s| {
            let users = s.users()?;
            let mut out = Vec::new();
            for c in s.cases()? {
                let members = s.members(&c.id)?;
                let counts = s.count_documents(&crate::storage::DocumentFilter {
                    case: Some(c.id),
                    ..Default::default()
                })?;
                out.push((c, members, counts.total));
            }
            Ok((out, users))
        })
        .await?;
    let rows = cases
        .into_iter()
        .map(|(c, members, records)| {
            let others = users
                .iter()
                .filter(|u| !u.disabled && !members.iter().any(|m| m.id == u.id))
                .map(|u| {
                    (
                        u.username.clone(),
                        format!("{} ({})", u.username, u.role.as_str()),
                    )
                });
            CaseRow {
                id: c.id.to_string(),
                name: c.name,
                created: time_in(&who.state.time_zone, c.created_at),
                others: choices(others, ""),
                members: members
                    .into_iter()
                    .map(|m| (m.id, m.username, m.role.as_str().to_owned()))
                    .collect(),
                records,
            }
        })
        .collect();
    page(&CasesPage {
        chrome: who.chrome("cases"),
        flash: flash(&query.done, who.lang),
        cases: rows,
    })
}

#[derive(Debug, Deserialize)]
pub struct NewCaseForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

pub async fn create_case(
    req: HttpRequest,
    who: Console,
    form: web::Form<NewCaseForm>,
) -> Result<HttpResponse, ConsoleError> {
    who.require_admin()?;
    who.check_form(&req, &form.csrf)?;
    let name = form.into_inner().name;
    let (state, by) = (who.state.clone(), who.who());
    let now = state.now();
    let id = state
        .db
        .run(move |s| {
            let by = ops::Operator::Admin(&by);
            Ok(ops::new_case(s, by, &name, now))
        })
        .await??;
    tracing::info!(case = %id, "console: case created");
    Ok(see_other("/console/admin/cases?done=case"))
}

#[derive(Debug, Deserialize)]
pub struct MemberForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
}

async fn membership(
    req: HttpRequest,
    who: Console,
    case: String,
    form: MemberForm,
    member: bool,
) -> Result<HttpResponse, ConsoleError> {
    who.require_admin()?;
    who.check_form(&req, &form.csrf)?;
    let case = DocumentId::parse(&case).map_err(|_| ConsoleError::NotFound)?;
    let (state, by) = (who.state.clone(), who.who());
    let now = state.now();
    let username = form.username.trim().to_owned();
    state
        .db
        .run(move |s| {
            let by = ops::Operator::Admin(&by);
            let Some((user, _)) = s.user_by_name(&username)? else {
                return Ok(Err(ops::AdminError::Invalid("Choose a user.".into())));
            };
            Ok(ops::set_member(s, by, &case, &user, member, now))
        })
        .await??;
    Ok(see_other(&format!(
        "/console/admin/cases?done={}",
        if member { "added" } else { "removed" }
    )))
}

pub async fn add_member(
    req: HttpRequest,
    who: Console,
    path: web::Path<String>,
    form: web::Form<MemberForm>,
) -> Result<HttpResponse, ConsoleError> {
    membership(req, who, path.into_inner(), form.into_inner(), true).await
}

pub async fn remove_member(
    req: HttpRequest,
    who: Console,
    path: web::Path<String>,
    form: web::Form<MemberForm>,
) -> Result<HttpResponse, ConsoleError> {
    membership(req, who, path.into_inner(), form.into_inner(), false).await
}
