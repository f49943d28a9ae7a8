//! The records table, a record's page, its history, conflict resolution and review actions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use saksi_shared::catalogue::{FieldType, RecordKind};
use saksi_shared::record::{FieldInput, FieldValue, HistoryEntry, RecordView};
use saksi_shared::workflow::{ReviewAction, TRANSITIONS, transitions_from};
use saksi_shared::{DocumentId, Lang, Status};
use serde::Deserialize;

use super::view::{
    self, ChangeBy, Choice, Chrome, Directory, RecordQuery, SORTS, choices, file_size, kind_label,
    status_label, time_in, value_label,
};
use super::words::word;
use super::{Console, ConsoleError, page, see_other};
use crate::app::AppState;
use crate::storage::{DocumentCounts, DocumentRow};
use crate::sync::document::EditError;

/// Rows per page of the records table.
pub const PAGE_SIZE: u32 = 50;

/// One row of the records table.
#[derive(Debug)]
pub struct RecordRow {
    pub id: String,
    pub title: String,
    pub kind: String,
    pub case: String,
    pub status: String,
    pub status_label: String,
    pub author: String,
    pub conflicts: bool,
    pub updated: String,
    /// A purge waits for this record (hidden from field staff).
    pub purge_pending: bool,
    /// A liaison recorded that consent was withdrawn.
    pub consent_withdrawn: bool,
}

#[derive(Template)]
#[template(path = "console/records.html")]
struct RecordsPage {
    chrome: Chrome,
    cases: Vec<Choice>,
    kinds: Vec<Choice>,
    statuses: Vec<Choice>,
    authors: Vec<Choice>,
    conflicts: Vec<Choice>,
    sorts: Vec<Choice>,
    from: String,
    to: String,
    rows: Vec<RecordRow>,
    total: u64,
    with_conflicts: u64,
    /// Records of this listing whose consent was withdrawn, and the link listing only them.
    consent_withdrawn: u64,
    consent_link: String,
    by_status: Vec<(String, u64)>,
    page: u32,
    pages: u32,
    first: u64,
    last: u64,
    prev: String,
    next: String,
    exports: Vec<(String, String)>,
    flash: String,
}

fn kind_choices(lang: Lang) -> Vec<(String, String)> {
    [RecordKind::CourtObservation, RecordKind::FamilyStatement]
        .iter()
        .map(|k| (k.as_str().to_owned(), k.def().label.get(lang).to_owned()))
        .collect()
}

fn status_choices(lang: Lang) -> Vec<(String, String)> {
    Status::ALL
        .iter()
        .map(|s| (s.as_str().to_owned(), s.label().get(lang).to_owned()))
        .collect()
}

fn with_any(mut options: Vec<(String, String)>, any: &str) -> Vec<(String, String)> {
    options.insert(0, (String::new(), any.to_owned()));
    options
}

/// Turns index rows into table rows (case names looked up).
pub fn table_rows(
    rows: Vec<DocumentRow>,
    case_names: &[(String, String)],
    pending: &[DocumentId],
    lang: Lang,
    zone: &jiff::tz::TimeZone,
) -> Vec<RecordRow> {
    rows.into_iter()
        .map(|r| {
            let case_id = r.case_id.to_string();
            RecordRow {
                id: r.id.to_string(),
                title: if r.title.trim().is_empty() {
                    word(lang, "untitled").into()
                } else {
                    r.title
                },
                kind: kind_label(&r.kind, lang),
                case: case_names
                    .iter()
                    .find(|(id, _)| *id == case_id)
                    .map(|(_, name)| name.clone())
                    .unwrap_or(case_id),
                status_label: status_label(&r.status, lang),
                status: r.status,
                author: r.created_by,
                conflicts: r.has_conflicts,
                updated: time_in(zone, r.updated_at),
                purge_pending: pending.contains(&r.id),
                consent_withdrawn: r.consent_withdrawn,
            }
        })
        .collect()
}

pub async fn list(
    who: Console,
    query: web::Query<RecordQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let q = query.into_inner();
    let mut filter = q.filter(&who.state.time_zone)?;
    let page_no = q.page.max(1);
    filter.limit = Some(PAGE_SIZE);
    filter.offset = (page_no - 1).saturating_mul(PAGE_SIZE);
    let (rows, counts, cases, users, pending) = who
        .state
        .db
        .run(move |s| {
            let counts = s.count_documents(&filter)?;
            let pending: Vec<DocumentId> =
                s.pending_purges()?.into_iter().map(|p| p.doc_id).collect();
            Ok((
                s.documents(&filter)?,
                counts,
                s.cases()?,
                s.users()?,
                pending,
            ))
        })
        .await?;
    let lang = who.lang;
    let case_names: Vec<(String, String)> = cases
        .iter()
        .map(|c| (c.id.to_string(), c.name.clone()))
        .collect();
    let DocumentCounts {
        total,
        with_conflicts,
        consent_withdrawn,
        by_status,
    } = counts;
    let pages = u32::try_from(total.div_ceil(u64::from(PAGE_SIZE)))
        .unwrap_or(u32::MAX)
        .max(1);
    let first = u64::from(filter_offset(page_no)) + 1;
    let shown = rows.len() as u64;
    let mut by_status: Vec<(String, u64)> = Status::ALL
        .iter()
        .filter_map(|s| {
            by_status
                .iter()
                .find(|(id, _)| id == s.as_str())
                .map(|(_, n)| (s.label().get(lang).to_owned(), *n))
        })
        .collect();
    by_status.retain(|(_, n)| *n > 0);
    let link = |p: u32| format!("/console/records?{}", q.to_query(p));
    let mut exports = vec![
        (
            format!(
                "/console/export.csv?{}",
                q.export_query("court_observation")
            ),
            word(lang, "csv_observations").to_owned(),
        ),
        (
            format!("/console/export.csv?{}", q.export_query("family_statement")),
            word(lang, "csv_statements").to_owned(),
        ),
        (
            format!("/console/export.json?{}", q.export_query("")),
            word(lang, "json").to_owned(),
        ),
        (
            format!("/console/report?{}", q.export_query("")),
            word(lang, "printable_report").to_owned(),
        ),
    ];
    // One case chosen: its archive, with the files.
    if !q.case.trim().is_empty() {
        exports.push((
            format!("/console/export/archive.zip?{}", q.export_query("")),
            word(lang, "case_archive").to_owned(),
        ));
    }
    page(&RecordsPage {
        chrome: who.chrome("records"),
        cases: choices(
            with_any(case_names.clone(), word(lang, "any_case")),
            &q.case,
        ),
        kinds: choices(
            with_any(kind_choices(lang), word(lang, "any_kind")),
            &q.kind,
        ),
        statuses: choices(
            with_any(status_choices(lang), word(lang, "any_status")),
            &q.status,
        ),
        authors: choices(
            with_any(
                users
                    .iter()
                    .map(|u| (u.username.clone(), u.username.clone()))
                    .collect(),
                word(lang, "anyone"),
            ),
            &q.author,
        ),
        conflicts: choices(
            vec![
                (String::new(), word(lang, "with_or_without").into()),
                ("yes".into(), word(lang, "with_conflicts").into()),
                ("no".into(), word(lang, "without_conflicts").into()),
            ],
            &q.conflicts,
        ),
        sorts: choices(
            SORTS.iter().map(|(v, l)| {
                let key = format!("sort_{v}");
                let label = match word(lang, &key) {
                    "?" => l,
                    w => w,
                };
                ((*v).to_owned(), label.to_owned())
            }),
            if q.sort.is_empty() {
                "updated_desc"
            } else {
                &q.sort
            },
        ),
        from: q.from.clone(),
        to: q.to.clone(),
        rows: table_rows(rows, &case_names, &pending, lang, &who.state.time_zone),
        total,
        with_conflicts,
        consent_withdrawn,
        consent_link: {
            let mut only = q.clone();
            only.consent = "yes".into();
            format!("/console/records?{}", only.to_query(1))
        },
        by_status,
        page: page_no,
        pages,
        first: if shown == 0 { 0 } else { first },
        last: first + shown - 1,
        prev: if page_no > 1 {
            link(page_no - 1)
        } else {
            String::new()
        },
        next: if page_no < pages {
            link(page_no + 1)
        } else {
            String::new()
        },
        exports,
        flash: flash(&q.done, lang),
    })
}

fn filter_offset(page_no: u32) -> u32 {
    (page_no.max(1) - 1).saturating_mul(PAGE_SIZE)
}

/// One value of a conflicted field.
#[derive(Debug)]
pub struct ConflictValueView {
    pub value: String,
    pub who: ChangeBy,
    pub change: String,
    /// The value the record currently shows.
    pub shown: bool,
}

/// A conflicted field.
#[derive(Debug)]
pub struct ConflictView {
    pub field: String,
    pub label: String,
    pub values: Vec<ConflictValueView>,
    /// A field value (resolved here); the status is settled by a review action instead.
    pub resolvable: bool,
}

/// One field of the record page.
#[derive(Debug)]
pub struct FieldView {
    pub id: String,
    pub label: String,
    /// `text`, `narrative`, `list` or `empty`.
    pub shape: &'static str,
    pub text: String,
    pub items: Vec<String>,
    pub conflict: bool,
}

#[derive(Debug)]
pub struct SectionView {
    pub label: String,
    pub fields: Vec<FieldView>,
    /// Some field of the section has a value.
    pub filled: bool,
}

#[derive(Debug)]
pub struct ReviewView {
    pub author: String,
    pub role: String,
    pub at: String,
    pub action: String,
    pub text: String,
}

#[derive(Debug)]
pub struct ActionView {
    pub action: &'static str,
    pub label: &'static str,
    pub primary: bool,
}

/// The merged record, ready to show: sections and fields in catalogue order.
#[derive(Debug)]
pub struct RecordDisplay {
    pub id: String,
    pub title: String,
    pub kind: String,
    pub case_id: String,
    pub case_name: String,
    pub status: String,
    pub status_label: String,
    pub author: String,
    pub created: String,
    pub updated: String,
    pub conflicts: Vec<ConflictView>,
    pub sections: Vec<SectionView>,
    pub review: Vec<ReviewView>,
    /// The heading of the record's files (the catalogue's label for its kind).
    pub files_label: String,
    pub files: Vec<FileView>,
}

/// A file attached to a record, as the console shows it.
#[derive(Debug)]
pub struct FileView {
    pub id: String,
    pub name: String,
    pub media_type: String,
    /// `image`, `audio` or `other`: how the console shows it.
    pub shape: &'static str,
    pub size: String,
    pub sha256: String,
    pub by: String,
    pub device: String,
    pub captured: String,
    pub caption: String,
    /// Key of the words about its metadata (empty for files that are not photos).
    pub metadata: &'static str,
    /// The server holds it, verified against its SHA-256 when the upload finished.
    pub verified: bool,
    pub received: String,
    /// The file shown inline (images, audio), and saved with its name.
    pub href: String,
    pub download_href: String,
}

/// The files `view` names that the server holds, by SHA-256.
pub async fn held_files(
    state: &Arc<AppState>,
    view: &RecordView,
) -> Result<HashMap<String, crate::storage::Blob>, ConsoleError> {
    let shas: Vec<String> = view.attachments.iter().map(|a| a.sha256.clone()).collect();
    if shas.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(state
        .db
        .run(move |s| {
            let mut held = HashMap::new();
            for sha in shas {
                if let Some(blob) = s.blob(&sha)? {
                    held.insert(sha, blob);
                }
            }
            Ok(held)
        })
        .await?)
}

fn file_views(
    view: &RecordView,
    held: &HashMap<String, crate::storage::Blob>,
    people: &Directory,
) -> Vec<FileView> {
    let encode = |s: &str| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    view.attachments
        .iter()
        .map(|a| {
            let name = saksi_shared::attachment::safe_file_name(&a.name);
            let href = format!("/api/files/{}?name={}", a.sha256, encode(&name));
            let blob = held.get(&a.sha256);
            FileView {
                id: a.id.clone(),
                shape: if a.media_type.starts_with("image/") {
                    "image"
                } else if a.media_type.starts_with("audio/") {
                    "audio"
                } else {
                    "other"
                },
                name: a.name.clone(),
                media_type: a.media_type.clone(),
                size: file_size(a.size),
                sha256: a.sha256.clone(),
                by: a.by.clone(),
                device: people.device_name(&a.device),
                captured: people.time(a.captured_at),
                caption: a.caption.clone(),
                metadata: match a.metadata {
                    Some(saksi_shared::attachment::Metadata::Removed) => "file_metadata_removed",
                    Some(saksi_shared::attachment::Metadata::Kept) => "file_metadata_kept",
                    None => "",
                },
                verified: blob.is_some(),
                received: blob.map(|b| people.time(b.stored_at)).unwrap_or_default(),
                download_href: format!("{href}&download=1"),
                href,
            }
        })
        .collect()
}

pub fn action_label(action: &str, lang: Lang) -> String {
    super::words::did(lang, action)
}

/// Builds the display of a record.
pub fn display(
    id: &DocumentId,
    view: &RecordView,
    case_name: &str,
    people: &Directory,
    held: &HashMap<String, crate::storage::Blob>,
    lang: Lang,
) -> RecordDisplay {
    let def = view.kind.def();
    let conflicted = |field: &str| view.conflicts.iter().any(|c| c.field == field);
    let sections = def
        .sections
        .iter()
        .map(|section| {
            let fields: Vec<FieldView> = def
                .fields
                .iter()
                .filter(|f| f.section == section.id)
                .map(|f| {
                    let value = view.fields.get(f.id);
                    let (shape, text, items) = match (f.field_type, value) {
                        (_, None) => ("empty", String::new(), Vec::new()),
                        (FieldType::List, Some(FieldValue::List(items))) => {
                            ("list", String::new(), items.clone())
                        }
                        (FieldType::LongText, Some(v)) => ("narrative", v.display(), Vec::new()),
                        (_, Some(v)) => ("text", value_label(Some(f), v, lang), Vec::new()),
                    };
                    FieldView {
                        id: f.id.to_owned(),
                        label: f.label.get(lang).to_owned(),
                        shape,
                        text,
                        items,
                        conflict: conflicted(f.id),
                    }
                })
                .collect();
            SectionView {
                label: section.label.get(lang).to_owned(),
                filled: fields.iter().any(|f| f.shape != "empty"),
                fields,
            }
        })
        .collect();
    let conflicts = view
        .conflicts
        .iter()
        .map(|c| {
            let field_def = def.field(&c.field);
            ConflictView {
                field: c.field.clone(),
                label: field_def
                    .map(|f| f.label.get(lang).to_owned())
                    .unwrap_or_else(|| "Status".to_owned()),
                values: c
                    .values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| ConflictValueView {
                        value: match field_def {
                            Some(_) => value_label(field_def, &v.value, lang),
                            None => status_label(&v.value.display(), lang),
                        },
                        who: people.who(&v.by),
                        change: v.by.change.clone(),
                        shown: i == 0,
                    })
                    .collect(),
                resolvable: field_def.is_some(),
            }
        })
        .collect();
    let review = view
        .review
        .iter()
        .map(|e| ReviewView {
            author: e.author.clone(),
            role: e.role.clone(),
            at: people.time(e.at),
            action: action_label(&e.action, lang),
            text: if e.action == "resolve" {
                def.field(&e.text)
                    .map(|f| f.label.get(lang).to_owned())
                    .unwrap_or_else(|| e.text.clone())
            } else {
                e.text.clone()
            },
        })
        .collect();
    RecordDisplay {
        id: id.to_string(),
        title: if view.title.trim().is_empty() {
            "(untitled)".into()
        } else {
            view.title.clone()
        },
        kind: def.label.get(lang).to_owned(),
        case_id: view.case.clone(),
        case_name: case_name.to_owned(),
        status: view.status.as_str().to_owned(),
        status_label: view.status.label().get(lang).to_owned(),
        author: view.created_by.clone(),
        created: people.time(view.created_at),
        updated: people.time(view.updated_at),
        files_label: def.attachments.label.get(lang).to_owned(),
        files: file_views(view, held, people),
        conflicts,
        sections,
        review,
    }
}

/// One change in the history, ready to show.
#[derive(Debug)]
pub struct HistoryRow {
    pub who: ChangeBy,
    pub edits: Vec<String>,
}

pub fn history_rows(
    kind: RecordKind,
    entries: &[HistoryEntry],
    people: &Directory,
    lang: Lang,
) -> Vec<HistoryRow> {
    // The names of the files the history attaches, for the edits that remove or caption one.
    let files: HashMap<String, String> = entries
        .iter()
        .flat_map(|e| &e.edits)
        .filter_map(|edit| match edit {
            saksi_shared::record::Edit::AttachmentAdded { id, name, .. } => {
                Some((id.clone(), name.clone()))
            }
            _ => None,
        })
        .collect();
    entries
        .iter()
        .map(|e| HistoryRow {
            who: people.who(&e.by),
            edits: e
                .edits
                .iter()
                .map(|edit| view::describe_edit(kind, edit, &files, lang))
                .collect(),
        })
        .collect()
}

/// A record as read for a page.
pub struct Loaded {
    pub id: DocumentId,
    pub view: RecordView,
    pub history: Vec<HistoryEntry>,
    pub case_name: String,
}

/// Reads a record (merged view and history) through its document task.
pub async fn load(state: &Arc<AppState>, raw_id: &str) -> Result<Loaded, ConsoleError> {
    let id = DocumentId::parse(raw_id).map_err(|_| ConsoleError::NotFound)?;
    let row = state
        .db
        .run(move |s| s.document(&id))
        .await?
        .ok_or(ConsoleError::NotFound)?;
    let read = state
        .documents
        .read(state, id, |record| {
            record.map(|r| r.view().map(|v| (v, r.history())))
        })
        .await
        .flatten()
        .ok_or(ConsoleError::NotFound)?;
    let (view, history) =
        read.map_err(|e| ConsoleError::Internal(format!("record {id} unreadable: {e}")))?;
    let case_id = row.case_id;
    let case_name = state
        .db
        .run(move |s| Ok(s.cases()?.into_iter().find(|c| c.id == case_id)))
        .await?
        .map(|c| c.name)
        .unwrap_or_else(|| case_id.to_string());
    Ok(Loaded {
        id,
        view,
        history,
        case_name,
    })
}

#[derive(Template)]
#[template(path = "console/record.html")]
struct RecordPage {
    chrome: Chrome,
    record: RecordDisplay,
    flash: String,
    actions: Vec<ActionView>,
    last_change: Option<ChangeBy>,
    changes: usize,
    /// A purge waiting out its grace period: when it happens, why, who asked.
    pending_purge: Option<(String, String, String)>,
    /// Who recorded, and when, that consent was withdrawn (asking for a purge).
    consent_withdrawn: Option<(String, String)>,
    /// Purge reasons a coordinator may choose (value, label).
    purge_reasons: Vec<(&'static str, &'static str)>,
    grace_days: u64,
    is_admin: bool,
    is_draft: bool,
}

#[derive(Debug, Deserialize)]
pub struct RecordPageQuery {
    #[serde(default)]
    done: String,
}

fn flash(done: &str, lang: Lang) -> String {
    if done.is_empty() {
        return String::new();
    }
    match word(lang, &format!("done_{done}")) {
        "?" => String::new(),
        w => w.to_owned(),
    }
}

fn action_views(status: Status, role: saksi_shared::Role, lang: Lang) -> Vec<ActionView> {
    transitions_from(status, role)
        .filter(|t| t.reviewers_only)
        .map(|t| {
            let (action, label, primary) = match t.action {
                ReviewAction::RequestChanges => ("request_changes", "do_request_changes", false),
                ReviewAction::Approve => ("approve", "do_approve", true),
                ReviewAction::Reopen => ("reopen", "do_reopen", false),
                ReviewAction::Archive => ("archive", "do_archive", false),
                ReviewAction::Unarchive => ("unarchive", "do_unarchive", false),
                other => (other.as_str(), "do_apply", false),
            };
            ActionView {
                action,
                label: word(lang, label),
                primary,
            }
        })
        .collect()
}

pub async fn show(
    who: Console,
    path: web::Path<String>,
    query: web::Query<RecordPageQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let Loaded {
        id,
        view,
        history,
        case_name,
    } = load(&who.state, &path).await?;
    let attributions = view
        .conflicts
        .iter()
        .flat_map(|c| c.values.iter().map(|v| &v.by))
        .chain(history.last().map(|h| &h.by));
    let mut people = Directory::load(&who.state, attributions).await?;
    people
        .load_devices(
            &who.state,
            view.attachments.iter().map(|a| a.device.as_str().into()),
        )
        .await?;
    let held = held_files(&who.state, &view).await?;
    let pending = who.state.db.run(move |s| s.pending_purge(&id)).await?;
    let lang = who.lang;
    let reason_label =
        |r: crate::storage::PurgeReason| word(lang, &format!("reason_{}", r.as_str()));
    let record = display(&id, &view, &case_name, &people, &held, who.lang);
    page(&RecordPage {
        chrome: who.chrome("records"),
        flash: flash(&query.done, who.lang),
        actions: action_views(view.status, who.auth.user.role, who.lang),
        last_change: history.last().map(|h| people.who(&h.by)),
        changes: history.len(),
        pending_purge: pending.map(|p| {
            (
                people.time(p.due_at),
                reason_label(p.reason).to_owned(),
                p.username,
            )
        }),
        consent_withdrawn: view
            .review
            .iter()
            .rev()
            .find(|e| e.action == ReviewAction::WithdrawConsent.as_str())
            .map(|e| (e.author.clone(), people.time(e.at))),
        purge_reasons: [
            crate::storage::PurgeReason::ConsentWithdrawn,
            crate::storage::PurgeReason::RecordedInError,
            crate::storage::PurgeReason::Safety,
        ]
        .into_iter()
        .map(|r| (r.as_str(), reason_label(r)))
        .collect(),
        grace_days: who.state.config.purge_grace_days,
        is_admin: who.auth.user.role == saksi_shared::Role::Admin,
        is_draft: view.status == Status::Draft,
        record,
    })
}

#[derive(Template)]
#[template(path = "console/history.html")]
struct HistoryPage {
    chrome: Chrome,
    id: String,
    title: String,
    field: String,
    field_label: String,
    fields: Vec<Choice>,
    rows: Vec<HistoryRow>,
}

#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    #[serde(default)]
    field: String,
}

pub async fn history(
    who: Console,
    path: web::Path<String>,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let Loaded {
        id, view, history, ..
    } = load(&who.state, &path).await?;
    let def = view.kind.def();
    let field = query.field.trim().to_owned();
    let field_def = if field.is_empty() {
        None
    } else {
        Some(
            def.field(&field)
                .ok_or_else(|| ConsoleError::BadRequest("No such field.".into()))?,
        )
    };
    let entries: Vec<HistoryEntry> = match field_def {
        None => history,
        Some(f) => history
            .into_iter()
            .filter_map(|mut e| {
                e.edits.retain(|edit| edit.field() == Some(f.id));
                (!e.edits.is_empty()).then_some(e)
            })
            .collect(),
    };
    let people = Directory::load(&who.state, entries.iter().map(|e| &e.by)).await?;
    let mut rows = history_rows(view.kind, &entries, &people, who.lang);
    rows.reverse();
    let lang = who.lang;
    page(&HistoryPage {
        chrome: who.chrome("records"),
        id: id.to_string(),
        title: if view.title.trim().is_empty() {
            "(untitled)".into()
        } else {
            view.title.clone()
        },
        field_label: field_def
            .map(|f| f.label.get(lang).to_owned())
            .unwrap_or_default(),
        fields: choices(
            with_any(
                def.fields
                    .iter()
                    .map(|f| (f.id.to_owned(), f.label.get(lang).to_owned()))
                    .collect(),
                word(who.lang, "every_field"),
            ),
            &field,
        ),
        field,
        rows,
    })
}

fn edit_error(e: EditError) -> ConsoleError {
    use saksi_shared::served::EditError as Refused;
    match e {
        EditError::Served(Refused::NotFound) => ConsoleError::NotFound,
        EditError::Served(Refused::Unreadable | Refused::Malformed(_)) => {
            ConsoleError::Conflict("This record cannot be read right now.".into())
        }
        EditError::Served(Refused::Record(e)) => {
            ConsoleError::Conflict(format!("This could not be done: {e}."))
        }
        EditError::Storage(e) => e.into(),
    }
}

#[derive(Debug, Deserialize)]
pub struct ResolveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    field: String,
    /// The change that wrote the chosen value.
    #[serde(default)]
    change: String,
}

const STALE: &str = "The record changed since you opened it: that value is no longer in conflict. \
    Reload the record and choose again.";

pub async fn resolve(
    req: HttpRequest,
    who: Console,
    path: web::Path<String>,
    form: web::Form<ResolveForm>,
) -> Result<HttpResponse, ConsoleError> {
    who.check_form(&req, &form.csrf)?;
    let id = DocumentId::parse(&path).map_err(|_| ConsoleError::NotFound)?;
    let ResolveForm { field, change, .. } = form.into_inner();
    let stale = Arc::new(Mutex::new(false));
    let flag = stale.clone();
    let device = who.auth.device.id.clone();
    who.state
        .documents
        .edit(
            &who.state,
            id,
            &device,
            who.editor(),
            move |record, editor, now| {
                // Chosen by the change that wrote it, inside the document's task: if the conflict
                // moved on meanwhile, nothing is written.
                let chosen = record.conflicts()?.into_iter().find_map(|c| {
                    (c.field == field)
                        .then(|| c.values.into_iter().find(|v| v.by.change == change))
                        .flatten()
                });
                let input = match chosen.map(|v| v.value) {
                    Some(FieldValue::Number(n)) => FieldInput::Number(n),
                    Some(FieldValue::Text(s)) => FieldInput::Text(s),
                    Some(FieldValue::List(_)) | None => {
                        *flag.lock().expect("flag lock") = true;
                        return Ok(());
                    }
                };
                record.resolve(&field, input, editor, now)
            },
        )
        .await
        .map_err(edit_error)?;
    if *stale.lock().expect("flag lock") {
        return Err(ConsoleError::Conflict(STALE.into()));
    }
    tracing::info!(doc = %id, device = %who.auth.device.id, "console: conflict resolved");
    Ok(see_other(&format!("/console/records/{id}?done=resolved")))
}

#[derive(Debug, Deserialize)]
pub struct ReviewForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    comment: String,
}

pub async fn review(
    req: HttpRequest,
    who: Console,
    path: web::Path<String>,
    form: web::Form<ReviewForm>,
) -> Result<HttpResponse, ConsoleError> {
    who.check_form(&req, &form.csrf)?;
    let id = DocumentId::parse(&path).map_err(|_| ConsoleError::NotFound)?;
    let ReviewForm {
        action, comment, ..
    } = form.into_inner();
    let action = ReviewAction::parse(&action)
        .filter(|a| {
            matches!(
                a,
                ReviewAction::Comment
                    | ReviewAction::RequestChanges
                    | ReviewAction::Approve
                    | ReviewAction::Reopen
                    | ReviewAction::Archive
                    | ReviewAction::Unarchive
            )
        })
        .ok_or_else(|| ConsoleError::BadRequest("Unknown review action.".into()))?;
    let comment = comment.trim().replace("\r\n", "\n");
    if matches!(
        action,
        ReviewAction::Comment | ReviewAction::RequestChanges | ReviewAction::Reopen
    ) && comment.is_empty()
    {
        return Err(ConsoleError::BadRequest(
            "Write a comment that tells the author what to change.".into(),
        ));
    }
    let stale = Arc::new(Mutex::new(false));
    let flag = stale.clone();
    let device = who.auth.device.id.clone();
    who.state
        .documents
        .edit(
            &who.state,
            id,
            &device,
            who.editor(),
            move |record, editor, now| {
                if action == ReviewAction::Comment {
                    return record.comment(&comment, editor, now);
                }
                let from = record.meta().map(|m| m.status).unwrap_or(Status::Draft);
                let Some(step) = TRANSITIONS
                    .iter()
                    .find(|t| t.from == from && t.action == action)
                else {
                    *flag.lock().expect("flag lock") = true;
                    return Ok(());
                };
                let comment = (!comment.is_empty()).then_some(comment.as_str());
                record.transition(step.to, comment, editor, now)
            },
        )
        .await
        .map_err(edit_error)?;
    if *stale.lock().expect("flag lock") {
        return Err(ConsoleError::Conflict(
            "The record's status changed since you opened it. Reload it and choose again.".into(),
        ));
    }
    tracing::info!(doc = %id, device = %who.auth.device.id, action = action.as_str(), "console: review");
    Ok(see_other(&format!(
        "/console/records/{id}?done={}",
        action.as_str()
    )))
}
