//! The audit log, newest first, filtered by action, user and dates; paged by sequence number.

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::{Deserialize, Serialize};

use super::view::{Choice, Chrome, choices, date_millis_in, end_of_day_in, time_in};
use super::{Console, ConsoleError, page};
use crate::storage::AuditFilter;

/// Entries per page.
pub const PAGE_SIZE: u32 = 100;

/// The actions the server and the CLI write (offered in the filter; any other value works too).
pub const ACTIONS: &[&str] = &[
    "login",
    "login_failed",
    "logout",
    "user_created",
    "password_reset",
    "role_changed",
    "disable",
    "enable",
    "device_revoked",
    "case_created",
    "add-member",
    "remove-member",
    "change_refused",
    "export",
];

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct AuditQuery {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    action: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    user: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    from: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    to: String,
    /// Show entries older than this sequence number (the next page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    before: Option<i64>,
}

#[derive(Debug)]
pub struct AuditRow {
    pub seq: i64,
    pub at: String,
    pub user: String,
    pub device: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    chrome: Chrome,
    actions: Vec<Choice>,
    user: String,
    from: String,
    to: String,
    rows: Vec<AuditRow>,
    newer: String,
    older: String,
}

pub async fn list(
    who: Console,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let q = query.into_inner();
    let bad = |what: &str| ConsoleError::BadRequest(format!("The filter has an invalid {what}."));
    let some = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
    let from = match some(&q.from) {
        Some(d) => Some(date_millis_in(&who.state.time_zone, &d).ok_or_else(|| bad("start date"))?),
        None => None,
    };
    let to = match some(&q.to) {
        Some(d) => Some(end_of_day_in(&who.state.time_zone, &d).ok_or_else(|| bad("end date"))?),
        None => None,
    };
    let filter = AuditFilter {
        action: some(&q.action),
        username: some(&q.user),
        target: None,
        from,
        to,
        limit: Some(PAGE_SIZE + 1),
        before_seq: q.before,
    };
    let mut entries = who.state.db.run(move |s| s.audit(&filter)).await?;
    let more = entries.len() > PAGE_SIZE as usize;
    entries.truncate(PAGE_SIZE as usize);
    let older = match (more, entries.last()) {
        (true, Some(last)) => {
            let mut next = q.clone();
            next.before = Some(last.seq);
            format!(
                "/console/audit?{}",
                serde_urlencoded::to_string(&next).unwrap_or_default()
            )
        }
        _ => String::new(),
    };
    let newer = if q.before.is_some() {
        let mut first = q.clone();
        first.before = None;
        format!(
            "/console/audit?{}",
            serde_urlencoded::to_string(&first).unwrap_or_default()
        )
    } else {
        String::new()
    };
    let rows = entries
        .into_iter()
        .map(|e| AuditRow {
            seq: e.seq,
            at: time_in(&who.state.time_zone, e.event.at),
            user: e.event.username.unwrap_or_default(),
            device: e.event.device_id.unwrap_or_default(),
            action: e.event.action,
            target: e.event.target.unwrap_or_default(),
            detail: e.event.detail,
        })
        .collect();
    let mut actions: Vec<(String, String)> = vec![(
        String::new(),
        super::words::word(who.lang, "any_action").into(),
    )];
    actions.extend(ACTIONS.iter().map(|a| ((*a).to_owned(), (*a).to_owned())));
    if !q.action.is_empty() && !ACTIONS.contains(&q.action.as_str()) {
        actions.push((q.action.clone(), q.action.clone()));
    }
    page(&AuditPage {
        chrome: who.chrome("audit"),
        actions: choices(actions, &q.action),
        user: q.user.clone(),
        from: q.from.clone(),
        to: q.to.clone(),
        rows,
        newer,
        older,
    })
}
