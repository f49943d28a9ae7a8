//! Exports of the records a filter matches (for one case: `?case=<id>`):
//!
//! - CSV, one row per record of one kind, the catalogue's fields as columns, UTF-8 with a
//!   byte-order mark so that spreadsheet programs read Khmer correctly; lists are joined with
//!   `; `; a conflicted field shows every value (`[conflict] a | b`) and is named in the
//!   `conflicts` column.
//! - JSON: the merged records with their conflicts and review trail.
//! - A printable HTML report (print stylesheet; the browser prints it to PDF) with each merged
//!   record, its files and their SHA-256, and its edit history: who, when, from which device.
//! - A case archive (ZIP, streamed: never built in memory): the CSVs, the JSON, every file the
//!   server holds (checked against its SHA-256 again as it is written), a manifest of the SHA-256
//!   of every entry (`sha256sum -c` checks it), and a README saying what is in it and what is
//!   not (files not uploaded yet).
//!
//! CSV and JSON name each record's files with their SHA-256 (JSON: `attachments`, and
//! `files_on_server`: when the server received and verified each one).
//!
//! Every export is written to the audit log: who, which filter, how many records; never their
//! contents.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use askama::Template;
use saksi_shared::Timestamp;
use saksi_shared::automerge::ActorId;
use saksi_shared::catalogue::{FieldType, Lang, RecordKind};
use saksi_shared::integrity::guarded;
use saksi_shared::record::{HistoryEntry, Record, RecordView};
use saksi_shared::validate::date_of;
use serde::Serialize;

use super::records::{HistoryRow, RecordDisplay, display, history_rows};
use super::view::{Directory, RecordQuery, time};
use super::{Console, ConsoleError};
use crate::app::AppState;
use crate::errors::Chain;
use crate::storage::{AuditEvent, Blob, DocumentRow};

/// The most records one export holds; narrow the filter for more.
pub const MAX_EXPORT: usize = 10_000;

/// A record read for an export.
struct Exported {
    row: DocumentRow,
    case_name: String,
    view: RecordView,
    history: Vec<HistoryEntry>,
}

/// The records an export holds, and the ids of those it had to skip because they cannot be
/// read (a stored record that no longer loads: the export says so instead of failing).
struct Gathered {
    records: Vec<Exported>,
    skipped: Vec<String>,
}

/// Reads every record `query` matches from storage (oldest update first).
async fn gather(
    state: &Arc<AppState>,
    query: &RecordQuery,
    with_history: bool,
) -> Result<Gathered, ConsoleError> {
    let mut filter = query.filter(&state.time_zone)?;
    filter.sort = crate::storage::DocumentSort::UpdatedAsc;
    filter.limit = Some(MAX_EXPORT as u32 + 1);
    let read = state
        .db
        .run(move |s| {
            let rows = s.documents(&filter)?;
            if rows.len() > MAX_EXPORT {
                return Ok(Err(rows.len()));
            }
            let cases = s.cases()?;
            let mut out = Vec::with_capacity(rows.len());
            let mut skipped = Vec::new();
            for row in rows {
                let chunks = s.chunks(&row.id)?;
                // A read-only copy: the actor is never used to write.
                let actor = ActorId::from(crate::accounts::random_16());
                let read = guarded(|| {
                    let record = Record::load(&chunks.concat(), actor).ok()?;
                    let view = record.view().ok()?;
                    let history = if with_history {
                        record.history()
                    } else {
                        Vec::new()
                    };
                    Some((view, history))
                })
                .flatten();
                let Some((view, history)) = read else {
                    tracing::error!(doc = %row.id, "export: record unreadable, skipped");
                    skipped.push(row.id.to_string());
                    continue;
                };
                let case_name = cases
                    .iter()
                    .find(|c| c.id == row.case_id)
                    .map(|c| c.name.clone())
                    .unwrap_or_else(|| row.case_id.to_string());
                out.push(Exported {
                    row,
                    case_name,
                    view,
                    history,
                });
            }
            Ok(Ok(Gathered {
                records: out,
                skipped,
            }))
        })
        .await?;
    read.map_err(|n| {
        ConsoleError::BadRequest(format!(
            "The filter matches more than {MAX_EXPORT} records ({n}). Narrow it, e.g. by case or dates."
        ))
    })
}

/// Writes the audit entry of an export.
async fn audit(who: &Console, format: &str, query: &RecordQuery, count: usize, skipped: &[String]) {
    let event = AuditEvent {
        at: who.state.now(),
        username: Some(who.username().to_owned()),
        device_id: Some(who.auth.device.id.clone()),
        action: crate::storage::AuditAction::Export,
        target: (!query.case.trim().is_empty()).then(|| query.case.trim().to_owned()),
        detail: if skipped.is_empty() {
            format!("{format}: {}; {count} record(s)", query.describe())
        } else {
            format!(
                "{format}: {}; {count} record(s); {} unreadable skipped: {}",
                query.describe(),
                skipped.len(),
                skipped.join(" ")
            )
        },
    };
    who.state.audit(event).await;
    tracing::info!(device = %who.auth.device.id, format, records = count, "console: export");
}

fn attachment(name: &str) -> (header::HeaderName, String) {
    (
        header::CONTENT_DISPOSITION,
        format!("attachment; filename=\"{name}\""),
    )
}

/// One CSV cell: quoted when needed; text that a spreadsheet would run as a formula is
/// prefixed with `'`.
fn cell(value: &str, text: bool) -> String {
    let mut v = value.to_owned();
    if text && v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        v.insert(0, '\'');
    }
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

/// The CSV of `records`, all of `kind`. A field with choices (an enum or yes/no/unknown) has
/// its choice ids in its own column, and their labels in `lang` in a `<field>_label` column
/// after it.
pub fn csv_text(kind: RecordKind, lang: Lang, records: &[(String, String, &RecordView)]) -> String {
    let def = kind.def();
    let mut out = String::from("\u{feff}");
    let mut header: Vec<String> = [
        "id",
        "case_id",
        "case",
        "kind",
        "status",
        "created_by",
        "created_at",
        "updated_at",
        "conflicts",
        "files",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for f in def.fields {
        header.push(f.id.to_owned());
        if !f.choices.is_empty() {
            header.push(format!("{}_label", f.id));
        }
    }
    out.push_str(&header.join(","));
    out.push_str("\r\n");
    for (id, case_name, view) in records {
        let conflicts: Vec<&str> = view.conflicts.iter().map(|c| c.field.as_str()).collect();
        let mut cells = vec![
            cell(id, false),
            cell(&view.case, false),
            cell(case_name, true),
            cell(view.kind.as_str(), false),
            cell(view.status.as_str(), false),
            cell(&view.created_by, true),
            cell(&time(view.created_at), false),
            cell(&time(view.updated_at), false),
            cell(&conflicts.join("; "), false),
            cell(
                &view
                    .attachments
                    .iter()
                    .map(|a| format!("{} ({})", a.name, a.sha256))
                    .collect::<Vec<_>>()
                    .join("; "),
                true,
            ),
        ];
        for f in def.fields {
            // Every value the field holds: several when in conflict.
            let values: Vec<String> = match view.conflicts.iter().find(|c| c.field == f.id) {
                Some(c) => c.values.iter().map(|v| v.value.display()).collect(),
                None => view
                    .fields
                    .get(f.id)
                    .map(|v| v.display())
                    .into_iter()
                    .collect(),
            };
            let shown = |values: Vec<String>| match values.len() {
                0 | 1 => values.join(""),
                _ => format!("[conflict] {}", values.join(" | ")),
            };
            let labels: Vec<String> = values
                .iter()
                .map(|v| {
                    f.choices
                        .iter()
                        .find(|c| c.id == v)
                        .map_or_else(|| v.clone(), |c| c.label.get(lang).to_owned())
                })
                .collect();
            // A number is a number: defusing it (`'-5`) would make a spreadsheet read text.
            cells.push(cell(&shown(values), f.field_type != FieldType::Number));
            if !f.choices.is_empty() {
                cells.push(cell(&shown(labels), true));
            }
        }
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

pub async fn csv(
    who: Console,
    query: web::Query<RecordQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let query = query.into_inner();
    let kind = RecordKind::parse(query.kind.trim())
        .filter(|k| *k != RecordKind::Case)
        .ok_or_else(|| {
            ConsoleError::BadRequest(
                "A CSV export holds one kind of record: choose court observations or family statements."
                    .into(),
            )
        })?;
    let Gathered { records, skipped } = gather(&who.state, &query, false).await?;
    let rows: Vec<(String, String, &RecordView)> = records
        .iter()
        .map(|r| (r.row.id.to_string(), r.case_name.clone(), &r.view))
        .collect();
    let body = csv_text(kind, who.lang, &rows);
    audit(&who, "csv", &query, records.len(), &skipped).await;
    let name = format!("saksi-{}-{}.csv", kind.as_str(), date_of(who.state.now()));
    // A CSV file has no place for a note that a spreadsheet would not take for a row: the
    // skipped records are named in a header (and in the audit log).
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(attachment(&name))
        .insert_header(("X-Saksi-Skipped", skipped.join(" ")))
        .body(body))
}

#[derive(Serialize)]
struct JsonRecord<'a> {
    id: String,
    case_name: &'a str,
    #[serde(flatten)]
    view: &'a RecordView,
    /// The record's files the server holds, verified against their SHA-256: when each was
    /// received (UTC). A file of `attachments` not named here has not reached the server.
    files_on_server: std::collections::BTreeMap<String, String>,
}

#[derive(Serialize)]
struct JsonExport<'a> {
    exported_at: String,
    exported_by: &'a str,
    filter: String,
    count: usize,
    records: Vec<JsonRecord<'a>>,
    /// Records the filter matched that could not be read, by id.
    skipped_unreadable: &'a [String],
}

/// The files of `records` the server holds, by SHA-256.
async fn held_of(
    state: &Arc<AppState>,
    records: &[Exported],
) -> Result<HashMap<String, Blob>, ConsoleError> {
    let shas: Vec<String> = records
        .iter()
        .flat_map(|r| r.view.attachments.iter().map(|a| a.sha256.clone()))
        .collect();
    Ok(state
        .db
        .run(move |s| {
            let mut held = HashMap::new();
            for sha in shas {
                if !held.contains_key(&sha)
                    && let Some(blob) = s.blob(&sha)?
                {
                    held.insert(sha, blob);
                }
            }
            Ok(held)
        })
        .await?)
}

fn json_text(
    who: &Console,
    query: &RecordQuery,
    records: &[Exported],
    skipped: &[String],
    held: &HashMap<String, Blob>,
) -> Result<String, ConsoleError> {
    let export = JsonExport {
        exported_at: time(who.state.now()),
        exported_by: who.username(),
        filter: query.describe(),
        count: records.len(),
        records: records
            .iter()
            .map(|r| JsonRecord {
                id: r.row.id.to_string(),
                case_name: &r.case_name,
                view: &r.view,
                files_on_server: r
                    .view
                    .attachments
                    .iter()
                    .filter_map(|a| {
                        held.get(&a.sha256)
                            .map(|b| (a.sha256.clone(), time(b.stored_at)))
                    })
                    .collect(),
            })
            .collect(),
        skipped_unreadable: skipped,
    };
    serde_json::to_string_pretty(&export)
        .map_err(|e| ConsoleError::Internal(format!("export JSON: {e}")))
}

pub async fn json(
    who: Console,
    query: web::Query<RecordQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let query = query.into_inner();
    let Gathered { records, skipped } = gather(&who.state, &query, false).await?;
    let held = held_of(&who.state, &records).await?;
    let body = json_text(&who, &query, &records, &skipped, &held)?;
    audit(&who, "json", &query, records.len(), &skipped).await;
    let name = format!("saksi-records-{}.json", date_of(who.state.now()));
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(attachment(&name))
        .body(body))
}

/// A `Write` that hands what is written to an HTTP response body, 256 KiB at a time, waiting
/// while the client has not taken the previous pieces (the archive is written on the blocking
/// pool and never held whole).
struct BodyWriter {
    tx: tokio::sync::mpsc::Sender<Result<web::Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

const BODY_PIECE: usize = 256 * 1024;

impl std::io::Write for BodyWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= BODY_PIECE {
            self.flush()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = std::mem::replace(&mut self.buf, Vec::with_capacity(BODY_PIECE));
        self.tx
            .blocking_send(Ok(web::Bytes::from(piece)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client left"))
    }
}

/// A file of the archive that the server holds.
struct ArchiveFile {
    path: String,
    sha256: String,
    size: u64,
    captured_at: Timestamp,
}

/// Reads a held file through `f`, piece by piece; returns its SHA-256 and CRC-32.
fn scan(blobs: &dyn crate::files::BlobStore, sha256: &str) -> std::io::Result<(String, u32, u64)> {
    use sha2::Digest as _;
    use std::io::Read as _;
    let mut reader = blobs
        .open(sha256)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let (mut hasher, mut crc, mut size) = (sha2::Sha256::new(), crc32fast::Hasher::new(), 0u64);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        crc.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), crc.finalize(), size))
}

/// Writes the case archive into `out` (see the module docs). Files whose bytes no longer have
/// their SHA-256 are left out and named in the README (and the log).
fn write_archive(
    out: BodyWriter,
    blobs: Arc<dyn crate::files::BlobStore>,
    texts: Vec<(String, Vec<u8>)>,
    files: Vec<ArchiveFile>,
    mut readme: String,
    now: Timestamp,
) -> std::io::Result<()> {
    use sha2::Digest as _;
    let mut zip = super::zip::ZipWriter::new(out);
    let mut manifest = String::new();
    for (path, bytes) in &texts {
        zip.add(
            path,
            bytes.len() as u64,
            crc32fast::hash(bytes),
            now,
            &mut bytes.as_slice(),
        )?;
        manifest.push_str(&format!(
            "{}  {path}\n",
            hex::encode(sha2::Sha256::digest(bytes))
        ));
    }
    let mut damaged = Vec::new();
    for f in &files {
        // Read twice: once for the CRC (and to check the SHA-256 again), once into the archive.
        let (sha, crc, size) = scan(&*blobs, &f.sha256)?;
        if sha != f.sha256 || size != f.size {
            tracing::error!(file = %f.sha256, "a stored file no longer has its SHA-256: left out of an archive");
            damaged.push(f);
            continue;
        }
        let mut reader = blobs
            .open(&f.sha256)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        zip.add(&f.path, size, crc, f.captured_at, &mut reader)?;
        manifest.push_str(&format!("{}  {}\n", f.sha256, f.path));
    }
    if !damaged.is_empty() {
        readme.push_str("\nLeft out: the server's copy no longer has the SHA-256 the phone recorded (damaged on the server's disk; tell your administrator):\n");
        for f in damaged {
            readme.push_str(&format!("  {}  {}\n", f.sha256, f.path));
        }
    }
    let readme = readme.into_bytes();
    zip.add(
        "README.txt",
        readme.len() as u64,
        crc32fast::hash(&readme),
        now,
        &mut readme.as_slice(),
    )?;
    manifest.push_str(&format!(
        "{}  README.txt\n",
        hex::encode(sha2::Sha256::digest(&readme))
    ));
    let manifest = manifest.into_bytes();
    zip.add(
        "MANIFEST-SHA256.txt",
        manifest.len() as u64,
        crc32fast::hash(&manifest),
        now,
        &mut manifest.as_slice(),
    )?;
    let mut out = zip.finish()?;
    std::io::Write::flush(&mut out)
}

/// `GET /console/export/archive.zip?case=...`: one case, streamed as a ZIP.
pub async fn archive(
    who: Console,
    query: web::Query<RecordQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let query = query.into_inner();
    if query.case.trim().is_empty() {
        return Err(ConsoleError::BadRequest(
            "A case archive holds one case: choose the case first.".into(),
        ));
    }
    let Gathered { records, skipped } = gather(&who.state, &query, false).await?;
    let held = held_of(&who.state, &records).await?;
    let now = who.state.now();
    let case_name = records
        .first()
        .map(|r| r.case_name.clone())
        .unwrap_or_default();
    let mut texts = Vec::new();
    for kind in [RecordKind::CourtObservation, RecordKind::FamilyStatement] {
        let rows: Vec<(String, String, &RecordView)> = records
            .iter()
            .filter(|r| r.view.kind == kind)
            .map(|r| (r.row.id.to_string(), r.case_name.clone(), &r.view))
            .collect();
        if !rows.is_empty() {
            texts.push((
                format!("{}.csv", kind.as_str()),
                csv_text(kind, who.lang, &rows).into_bytes(),
            ));
        }
    }
    texts.push((
        "records.json".into(),
        json_text(&who, &query, &records, &skipped, &held)?.into_bytes(),
    ));
    let mut files = Vec::new();
    let mut missing = Vec::new();
    for r in &records {
        let mut used = std::collections::HashSet::new();
        for a in &r.view.attachments {
            let path = unique_path(&r.row.id.to_string(), &a.name, &mut used);
            match held.get(&a.sha256) {
                Some(blob) => files.push(ArchiveFile {
                    path,
                    sha256: a.sha256.clone(),
                    size: blob.size,
                    captured_at: a.captured_at,
                }),
                None => missing.push(format!("  {}  {path}", a.sha256)),
            }
        }
    }
    let mut readme = format!(
        "Saksi case archive\n\nCase: {case_name}\nExported: {} (UTC) by {}\nRecords: {}\nFiles: {}\n\n\
         records.json and the CSV files hold the merged records; files/<record id>/ holds each \
         record's files as the phones captured them. MANIFEST-SHA256.txt gives the SHA-256 of \
         every entry; the files' hashes are the ones the phones recorded at capture (also in \
         records.json). Check them with:  sha256sum -c MANIFEST-SHA256.txt\n\n\
         This archive holds personal data of people at risk: keep it encrypted, and delete it \
         when it is no longer needed.\n",
        time(now),
        who.username(),
        records.len(),
        files.len()
    );
    if !missing.is_empty() {
        readme.push_str("\nNot in this archive: not uploaded to the server yet:\n");
        readme.push_str(&missing.join("\n"));
        readme.push('\n');
    }
    if !skipped.is_empty() {
        readme.push_str(&format!(
            "\nRecords that could not be read and are left out: {}\n",
            skipped.join(" ")
        ));
    }
    audit(&who, "archive", &query, records.len(), &skipped).await;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let out = BodyWriter {
        tx: tx.clone(),
        buf: Vec::with_capacity(BODY_PIECE),
    };
    let blobs = who.state.blobs.clone();
    let count = files.len();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = write_archive(out, blobs, texts, files, readme, now) {
            tracing::warn!(error = %Chain(&e), files = count, "case archive ended early");
            let _ = tx.blocking_send(Err(e));
        }
    });
    let name = format!("saksi-case-{}.zip", date_of(now));
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|piece| (piece, rx))
    });
    Ok(HttpResponse::Ok()
        .content_type("application/zip")
        .insert_header(attachment(&name))
        .streaming(stream))
}

/// `files/<record>/<name>`: a name safe as one path component, made unique in its folder.
fn unique_path(record: &str, name: &str, used: &mut std::collections::HashSet<String>) -> String {
    let safe = saksi_shared::attachment::safe_file_name(name);
    let (stem, ext) = match safe.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem.to_owned(), format!(".{ext}")),
        _ => (safe.clone(), String::new()),
    };
    let mut candidate = safe.clone();
    let mut n = 2;
    while !used.insert(candidate.clone()) {
        candidate = format!("{stem}-{n}{ext}");
        n += 1;
    }
    format!("files/{record}/{candidate}")
}

/// One record of the printable report.
#[derive(Debug)]
pub struct ReportRecord {
    pub record: RecordDisplay,
    pub history: Vec<HistoryRow>,
}

#[derive(Template)]
#[template(path = "console/report.html")]
struct ReportPage {
    generated: String,
    generated_by: String,
    filter: String,
    back: String,
    records: Vec<ReportRecord>,
    /// Records that could not be read, by id.
    skipped: Vec<String>,
    w: super::words::Words,
}

pub async fn report(
    who: Console,
    query: web::Query<RecordQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let query = query.into_inner();
    let Gathered { records, skipped } = gather(&who.state, &query, true).await?;
    let people = Directory::load(
        &who.state,
        records.iter().flat_map(|r| {
            r.history.iter().map(|h| &h.by).chain(
                r.view
                    .conflicts
                    .iter()
                    .flat_map(|c| c.values.iter().map(|v| &v.by)),
            )
        }),
    )
    .await?
    // The report is an export: its times stay UTC, marked as such.
    .in_utc();
    let held = held_of(&who.state, &records).await?;
    let report = ReportPage {
        generated: time(who.state.now()),
        generated_by: who.username().to_owned(),
        filter: query.describe(),
        back: format!("/console/records?{}", query.to_query(0)),
        records: records
            .iter()
            .map(|r| ReportRecord {
                record: display(&r.row.id, &r.view, &r.case_name, &people, &held, who.lang),
                history: history_rows(r.view.kind, &r.history, &people, who.lang),
            })
            .collect(),
        skipped: skipped.clone(),
        w: super::words::Words(who.lang),
    };
    let body = report.render()?;
    audit(&who, "report", &query, records.len(), &skipped).await;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use saksi_shared::record::FieldInput;
    use saksi_testkit::at;

    #[test]
    fn cells_are_quoted_and_formulas_defused() {
        assert_eq!(cell("plain", true), "plain");
        assert_eq!(cell("a, b", true), "\"a, b\"");
        assert_eq!(cell("say \"no\"", true), "\"say \"\"no\"\"\"");
        assert_eq!(cell("line\nbreak", true), "\"line\nbreak\"");
        assert_eq!(
            cell("=HYPERLINK(\"x\")", true),
            "\"'=HYPERLINK(\"\"x\"\")\""
        );
        assert_eq!(cell("-5", false), "-5");
        assert_eq!(cell("ព្រឹកនេះ", true), "ព្រឹកនេះ");
    }

    /// A negative number stays a number (it once exported as `'-5`); text starting with `-`
    /// is still defused.
    #[test]
    fn numbers_are_not_defused_as_formulas() {
        let editor = saksi_shared::Editor::new("sokha", "phone", saksi_shared::Role::Monitor);
        let case = saksi_shared::DocumentId::from_bytes([1; 16]);
        let mut record = Record::create(
            RecordKind::CourtObservation,
            &case,
            ActorId::from([2; 16]),
            &editor,
            at(1_000),
        );
        let set = |r: &mut Record, f: &str, v| r.set_field(f, v, &editor, at(2_000)).expect("set");
        set(
            &mut record,
            "pretrial_detention_days",
            FieldInput::Number(-5),
        );
        set(&mut record, "court", FieldInput::Text("-សាក្សី".into()));
        let view = record.view().expect("a record");
        let csv = csv_text(
            RecordKind::CourtObservation,
            Lang::En,
            &[("id".into(), "ករណី".into(), &view)],
        );
        assert!(csv.contains(",-5,") || csv.ends_with(",-5\r\n"), "{csv}");
        assert!(!csv.contains("'-5"), "{csv}");
        assert!(csv.contains("'-សាក្សី"), "{csv}");
    }
}
