//! The audit log, newest first, filtered by action, user and dates; paged by sequence number.

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::{Deserialize, Serialize};

use super::view::{Choice, Chrome, choices, date_millis_in, end_of_day_in, time_in};
use super::{Console, ConsoleError, page};
use crate::storage::{AuditAction, AuditFilter};

/// Entries per page.
pub const PAGE_SIZE: u32 = 100;

/// The actions the server and the CLI write (offered in the filter; any other value works too).
/// An action's label in the console's language (its stored name when it has none).
pub fn action_label(action: &AuditAction, lang: saksi_shared::Lang) -> String {
    let key = format!("act_{}", action.as_str().replace('-', "_"));
    match super::words::word(lang, &key) {
        "?" => action.as_str().to_owned(),
        w => w.to_owned(),
    }
}

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
    /// The stored name.
    pub action: String,
    pub action_label: String,
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
        action: some(&q.action).map(|a| AuditAction::from_stored(&a)),
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
            device: e
                .event
                .device_id
                .map(|d| d.into_string())
                .unwrap_or_default(),
            action_label: action_label(&e.event.action, who.lang),
            action: e.event.action.as_str().to_owned(),
            target: e.event.target.unwrap_or_default(),
            detail: e.event.detail,
        })
        .collect();
    let mut actions: Vec<(String, String)> = vec![(
        String::new(),
        super::words::word(who.lang, "any_action").into(),
    )];
    actions.extend(
        AuditAction::ALL
            .iter()
            .map(|a| (a.as_str().to_owned(), action_label(a, who.lang))),
    );
    if !q.action.is_empty() && !actions.iter().any(|(v, _)| *v == q.action) {
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
