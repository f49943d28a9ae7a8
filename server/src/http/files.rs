//! Attached files over HTTP: resumable uploads with the [tus protocol] 1.0.0 (core, and the
//! `creation` and `termination` extensions), and downloads with ranges.
//!
//! | method | path | what |
//! |---|---|---|
//! | OPTIONS | `/api/files` | tus discovery: version, extensions, largest file |
//! | POST | `/api/files` | starts (or finds) the upload of a file: `Upload-Length`, `Upload-Metadata: sha256 <base64 of the hex digest>` → `201`, `Location`, `Upload-Offset` |
//! | HEAD | `/api/files/uploads/{id}` | how many bytes the server has (`Upload-Offset`) |
//! | PATCH | `/api/files/uploads/{id}` | more bytes, from `Upload-Offset` (`application/offset+octet-stream`) |
//! | DELETE | `/api/files/uploads/{id}` | abandons the upload |
//! | GET, HEAD | `/api/files/{sha256}` | the file (ranges for audio seeking) |
//!
//! Rules:
//! - A device may upload a file only if a record it may write names that SHA-256 with that
//!   size; anything else (a hash no record names, one named only by a record of another case, a
//!   different size) gets the same refusal, before any byte is sent. So do files over
//!   `max_file_bytes` and a device over `device_quota_bytes`.
//! - Bytes go to a partial file and are synced every few MiB and at the end of each request;
//!   the upload's offset in the database is what was synced, so a server killed mid-upload
//!   resumes from it. A request that does not start at that offset is refused (`409`, with the
//!   offset), so overlapping, out-of-order and gapped ranges cannot be written. Bytes past the
//!   declared length end the request and are dropped.
//! - When the last byte arrives the server hashes the file; only bytes with the SHA-256 the
//!   record names become the file (otherwise `422`, and the partial bytes are removed).
//! - A request that sends nothing for `upload_idle_seconds` (30), or runs longer than
//!   `upload_request_seconds` (15 minutes), is ended (`408`)
//!   with what it sent kept: the phone continues with a new request. A revoked device's
//!   request is ended within 4 MiB. A full disk ends it with `507`, the partial file cut back
//!   to what was synced, nothing corrupt; a later try continues.
//! - A file is readable by whoever may read a record that names it; anyone else gets the
//!   answer a file that does not exist gets. It is served with `nosniff`, a sandboxing CSP,
//!   and inline only for image and audio types a browser shows safely.
//!
//! [tus protocol]: https://tus.io/protocols/resumable-upload

use std::collections::HashSet;
use std::io::{Read as _, Seek as _};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine as _;
use futures_util::StreamExt as _;
use saksi_shared::attachment::{check_sha256, safe_file_name};
use saksi_shared::policy::Principal;
use saksi_shared::record::RecordMeta;
use saksi_shared::{RecordKind, Status};

use super::ApiError;
use super::auth::{AuthDevice, same_origin};
use crate::app::{AppState, principal};
use crate::errors::Chain;
use crate::files::{BlobError, Partial};
use crate::storage::{Blob, DocumentRow, FileRef, StorageError, Upload};

type State = web::Data<AppState>;

/// The tus version spoken.
pub const TUS_VERSION: &str = "1.0.0";
/// The media type of a PATCH body.
const OFFSET_STREAM: &str = "application/offset+octet-stream";
/// Bytes buffered before one write to the partial file.
const WRITE_CHUNK: usize = 256 * 1024;
/// Bytes written between two syncs (each makes the offset durable and re-checks the device).
const SYNC_EVERY: u64 = 4 * 1024 * 1024;

/// The uploads a request is writing now: a second request for the same upload waits its turn
/// (it is refused with the current offset).
#[derive(Debug, Default)]
pub struct ActiveUploads(Arc<Mutex<HashSet<String>>>);

/// An upload marked active for the life of a request.
struct ActiveGuard {
    set: Arc<Mutex<HashSet<String>>>,
    id: String,
}

impl ActiveUploads {
    /// Whether a request is writing upload `id` now.
    pub fn is_active(&self, id: &str) -> bool {
        self.0.lock().expect("active uploads lock").contains(id)
    }

    fn take(&self, id: &str) -> Option<ActiveGuard> {
        let mut set = self.0.lock().expect("active uploads lock");
        set.insert(id.to_owned()).then(|| ActiveGuard {
            set: self.0.clone(),
            id: id.to_owned(),
        })
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.set
            .lock()
            .expect("active uploads lock")
            .remove(&self.id);
    }
}

/// A refusal in the tus exchange: a status, a stable code, a message for the phone, and the
/// headers tus asks for.
#[derive(Debug)]
pub struct FileError {
    status: StatusCode,
    code: &'static str,
    message: String,
    offset: Option<u64>,
    retry_after: Option<u64>,
}

impl FileError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> FileError {
        FileError {
            status,
            code,
            message: message.into(),
            offset: None,
            retry_after: None,
        }
    }

    fn with_offset(mut self, offset: u64) -> FileError {
        self.offset = Some(offset);
        self
    }

    /// The answer to a file or upload that does not exist, or that the caller may not use.
    fn not_found() -> FileError {
        FileError::new(StatusCode::NOT_FOUND, "not_found", "not found")
    }

    fn not_named() -> FileError {
        FileError::new(
            StatusCode::FORBIDDEN,
            "not_named",
            "no record you may write names this file with this size: sync the record first",
        )
    }
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<ApiError> for FileError {
    fn from(e: ApiError) -> FileError {
        use actix_web::ResponseError as _;
        if let ApiError::Internal(cause) = &e {
            tracing::error!(cause = %cause, "internal error");
        }
        FileError::new(e.status_code(), e.code(), e.to_string())
    }
}

impl From<StorageError> for FileError {
    fn from(e: StorageError) -> FileError {
        ApiError::from(e).into()
    }
}

impl From<BlobError> for FileError {
    fn from(e: BlobError) -> FileError {
        match e {
            BlobError::DiskFull(_) => {
                tracing::error!(error = %Chain(&e), "file store full");
                FileError {
                    retry_after: Some(60),
                    ..FileError::new(
                        StatusCode::INSUFFICIENT_STORAGE,
                        "disk_full",
                        "the server's disk is full; the upload continues later",
                    )
                }
            }
            BlobError::HashMismatch => FileError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "hash_mismatch",
                "the bytes received do not have the file's SHA-256; they were dropped and the \
                 file must be sent again",
            ),
            BlobError::NotFound => FileError::not_found(),
            BlobError::Io { .. } => ApiError::Internal(Chain(&e).to_string()).into(),
        }
    }
}

impl actix_web::ResponseError for FileError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        res.insert_header(("Tus-Resumable", TUS_VERSION));
        if let Some(offset) = self.offset {
            res.insert_header(("Upload-Offset", offset.to_string()));
        }
        if let Some(seconds) = self.retry_after {
            res.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        if self.status == StatusCode::PRECONDITION_FAILED {
            res.insert_header(("Tus-Version", TUS_VERSION));
        }
        res.json(serde_json::json!({ "error": self.code, "message": self.message }))
    }
}

fn header_str<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn check_tus(req: &HttpRequest) -> Result<(), FileError> {
    match header_str(req, "Tus-Resumable") {
        Some(TUS_VERSION) => Ok(()),
        _ => Err(FileError::new(
            StatusCode::PRECONDITION_FAILED,
            "tus_version",
            "this server speaks tus 1.0.0 (Tus-Resumable: 1.0.0)",
        )),
    }
}

/// State-changing requests authenticated by the session cookie must come from this origin.
fn check_csrf(req: &HttpRequest, auth: &AuthDevice) -> Result<(), FileError> {
    if auth.via_cookie && !same_origin(req) {
        return Err(ApiError::Forbidden.into());
    }
    Ok(())
}

/// The identity of a stored record as its index row has it.
fn meta_of(row: &DocumentRow) -> Option<RecordMeta> {
    Some(RecordMeta {
        kind: RecordKind::parse(&row.kind)?,
        case: row.case_id,
        created_by: row.created_by.clone(),
        status: Status::parse(&row.status).unwrap_or(Status::Draft),
    })
}

/// The entries naming `sha256` in records `who` may read (or, with `write`, write).
async fn entries_for(
    state: &AppState,
    who: &Principal,
    sha256: &str,
    write: bool,
) -> Result<Vec<FileRef>, FileError> {
    let sha = sha256.to_owned();
    let reviews = who.role.reviews();
    let (rows, hidden) = state
        .db
        .run(move |s| {
            let hidden: Vec<saksi_shared::DocumentId> = if reviews {
                Vec::new()
            } else {
                s.pending_purges()?.into_iter().map(|p| p.doc_id).collect()
            };
            Ok((s.documents_naming(&sha)?, hidden))
        })
        .await?;
    Ok(rows
        .into_iter()
        // A record waiting to be purged is hidden from field staff, its files too.
        .filter(|(row, _)| !hidden.contains(&row.id))
        .filter(|(row, _)| {
            meta_of(row).is_some_and(|m| {
                if write {
                    who.may_write(&m)
                } else {
                    who.may_read(&m)
                }
            })
        })
        .map(|(_, file)| file)
        .collect())
}

fn tus_headers(res: &mut actix_web::HttpResponseBuilder) {
    res.insert_header(("Tus-Resumable", TUS_VERSION));
}

/// `OPTIONS /api/files`: what this tus server supports.
pub async fn options(state: State) -> HttpResponse {
    let mut res = HttpResponse::NoContent();
    res.insert_header(("Tus-Resumable", TUS_VERSION))
        .insert_header(("Tus-Version", TUS_VERSION))
        .insert_header(("Tus-Extension", "creation,termination"))
        .insert_header(("Tus-Max-Size", state.config.max_file_bytes.to_string()));
    res.finish()
}

/// `Upload-Metadata`: comma-separated `key base64(value)` pairs; the `sha256` one.
fn metadata_sha256(req: &HttpRequest) -> Result<String, FileError> {
    let bad = || {
        FileError::new(
            StatusCode::BAD_REQUEST,
            "bad_metadata",
            "Upload-Metadata must name the file's sha256 (64 hex digits, base64-encoded)",
        )
    };
    let metadata = header_str(req, "Upload-Metadata").ok_or_else(bad)?;
    let b64 = base64::engine::general_purpose::STANDARD;
    for pair in metadata.split(',') {
        let mut parts = pair.trim().splitn(2, ' ');
        if parts.next() == Some("sha256") {
            let value = b64
                .decode(parts.next().unwrap_or("").trim())
                .map_err(|_| bad())?;
            let sha = String::from_utf8(value).map_err(|_| bad())?;
            check_sha256(&sha).map_err(|_| bad())?;
            return Ok(sha);
        }
    }
    Err(bad())
}

fn upload_location(id: &str) -> String {
    format!("/api/files/uploads/{id}")
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// `POST /api/files`: starts the upload of a file a record names, or finds the one in
/// progress, or says the server has the file already (`Upload-Offset` = its length).
pub async fn create(
    req: HttpRequest,
    state: State,
    auth: AuthDevice,
) -> Result<HttpResponse, FileError> {
    check_tus(&req)?;
    check_csrf(&req, &auth)?;
    let length: u64 = header_str(&req, "Upload-Length")
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            FileError::new(
                StatusCode::BAD_REQUEST,
                "bad_length",
                "Upload-Length must be the file's size in bytes",
            )
        })?;
    let max = state.config.max_file_bytes;
    if length > max {
        return Err(FileError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "file_too_large",
            format!(
                "this file is {}; the server takes files up to {}",
                mb(length),
                mb(max)
            ),
        ));
    }
    let sha = metadata_sha256(&req)?;
    let who = principal(&state, &auth.user, &auth.device.id).await?;
    let named = entries_for(&state, &who, &sha, true).await?;
    if !named.iter().any(|f| f.size == length) {
        return Err(FileError::not_named());
    }
    let device = auth.device.id.clone();
    let (held, existing, usage) = {
        let (sha, device) = (sha.clone(), device.clone());
        state
            .db
            .run(move |s| {
                Ok((
                    s.blob(&sha)?,
                    s.upload_for(&device, &sha)?,
                    s.device_usage(&device)?,
                ))
            })
            .await?
    };
    let mut res = HttpResponse::Created();
    tus_headers(&mut res);
    if held.is_some() {
        res.insert_header((header::LOCATION, format!("/api/files/{sha}")))
            .insert_header(("Upload-Offset", length.to_string()));
        return Ok(res.finish());
    }
    if let Some(upload) = existing {
        if upload.length != length {
            // The same file cannot change size; an old upload of a mistaken size goes.
            drop_upload(&state, &upload).await?;
        } else {
            res.insert_header((header::LOCATION, upload_location(&upload.id)))
                .insert_header(("Upload-Offset", upload.received.to_string()));
            return Ok(res.finish());
        }
    }
    let quota = state.config.device_quota_bytes;
    if usage.saturating_add(length) > quota {
        return Err(FileError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "quota_exceeded",
            format!(
                "this phone has {} of files on the server, and may have {}; a coordinator can \
                 raise the limit (device_quota_bytes)",
                mb(usage),
                mb(quota)
            ),
        ));
    }
    let now = state.now();
    let upload = Upload {
        id: hex::encode(crate::accounts::random_16()),
        device_id: device,
        sha256: sha,
        length,
        received: 0,
        created_at: now,
        updated_at: now,
    };
    {
        let upload = upload.clone();
        state.db.run(move |s| s.create_upload(&upload)).await?;
    }
    tracing::info!(upload = %upload.id, device = %upload.device_id, bytes = length, "upload started");
    res.insert_header((header::LOCATION, upload_location(&upload.id)))
        .insert_header(("Upload-Offset", "0"));
    Ok(res.finish())
}

async fn drop_upload(state: &AppState, upload: &Upload) -> Result<(), FileError> {
    let (blobs, id) = (state.blobs.clone(), upload.id.clone());
    tokio::task::spawn_blocking(move || blobs.discard(&id))
        .await
        .map_err(|_| ApiError::Internal("upload task failed".into()))??;
    let id = upload.id.clone();
    state.db.run(move |s| s.delete_upload(&id)).await?;
    Ok(())
}

/// The upload `id` of the calling device (any other device's is "not found").
async fn own_upload(state: &AppState, auth: &AuthDevice, id: &str) -> Result<Upload, FileError> {
    let id = id.to_owned();
    match state.db.run(move |s| s.upload(&id)).await? {
        Some(upload) if upload.device_id == auth.device.id => Ok(upload),
        _ => Err(FileError::not_found()),
    }
}

/// `HEAD /api/files/uploads/{id}`: the offset to continue from.
pub async fn status(
    req: HttpRequest,
    state: State,
    auth: AuthDevice,
    id: web::Path<String>,
) -> Result<HttpResponse, FileError> {
    check_tus(&req)?;
    let upload = own_upload(&state, &auth, &id).await?;
    let mut res = HttpResponse::Ok();
    tus_headers(&mut res);
    res.insert_header(("Upload-Offset", upload.received.to_string()))
        .insert_header(("Upload-Length", upload.length.to_string()));
    Ok(res.finish())
}

/// `DELETE /api/files/uploads/{id}`: the phone abandons the upload.
pub async fn terminate(
    req: HttpRequest,
    state: State,
    auth: AuthDevice,
    id: web::Path<String>,
) -> Result<HttpResponse, FileError> {
    check_tus(&req)?;
    check_csrf(&req, &auth)?;
    let upload = own_upload(&state, &auth, &id).await?;
    let _active = state.active_uploads.take(&upload.id).ok_or_else(|| {
        FileError::new(StatusCode::CONFLICT, "busy", "the upload is being written")
            .with_offset(upload.received)
    })?;
    drop_upload(&state, &upload).await?;
    let mut res = HttpResponse::NoContent();
    tus_headers(&mut res);
    Ok(res.finish())
}

/// Runs `f` on the partial file on the blocking pool.
async fn on_partial<T: Send + 'static>(
    partial: Box<dyn Partial>,
    f: impl FnOnce(&mut dyn Partial) -> T + Send + 'static,
) -> Result<(Box<dyn Partial>, T), FileError> {
    tokio::task::spawn_blocking(move || {
        let mut partial = partial;
        let out = f(&mut *partial);
        (partial, out)
    })
    .await
    .map_err(|_| ApiError::Internal("upload task failed".into()).into())
}

/// Why a PATCH stopped reading before its body ended.
enum Stop {
    /// The body ended, or the upload is complete.
    Done,
    Idle,
    TooLong,
    PastLength,
    Revoked,
    /// The connection broke (nobody to answer).
    Broken,
}

/// `PATCH /api/files/uploads/{id}`: bytes from the current offset.
pub async fn append(
    req: HttpRequest,
    state: State,
    auth: AuthDevice,
    id: web::Path<String>,
    body: web::Payload,
) -> Result<HttpResponse, FileError> {
    check_tus(&req)?;
    check_csrf(&req, &auth)?;
    let upload = own_upload(&state, &auth, &id).await?;
    if header_str(&req, "Content-Type") != Some(OFFSET_STREAM) {
        return Err(FileError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "bad_content_type",
            "send the bytes as application/offset+octet-stream",
        ));
    }
    let offset: u64 = header_str(&req, "Upload-Offset")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            FileError::new(
                StatusCode::BAD_REQUEST,
                "bad_offset",
                "Upload-Offset must be the number of bytes the server has",
            )
        })?;
    let _active = state.active_uploads.take(&upload.id).ok_or_else(|| {
        FileError::new(
            StatusCode::CONFLICT,
            "busy",
            "another request is writing this upload",
        )
        .with_offset(upload.received)
    })?;
    if offset != upload.received {
        return Err(FileError::new(
            StatusCode::CONFLICT,
            "offset_mismatch",
            "the upload continues from Upload-Offset of a HEAD request",
        )
        .with_offset(upload.received));
    }
    if let Some(len) = header_str(&req, "Content-Length").and_then(|v| v.parse::<u64>().ok())
        && offset.saturating_add(len) > upload.length
    {
        return Err(past_length(&upload).with_offset(upload.received));
    }

    // The bytes are written by a task of their own: when the phone's connection breaks, the
    // request is dropped, but what arrived is still synced and recorded.
    let state = state.into_inner();
    let task = actix_web::rt::spawn(async move {
        let _active = _active;
        write_body(state, auth, upload, body).await
    });
    task.await
        .map_err(|_| FileError::from(ApiError::Internal("upload task failed".into())))?
}

/// Writes a PATCH's body to the upload's partial file, syncing as it goes; completes the file
/// when the last byte arrives.
async fn write_body(
    state: Arc<AppState>,
    auth: AuthDevice,
    upload: Upload,
    mut body: web::Payload,
) -> Result<HttpResponse, FileError> {
    let blobs = state.blobs.clone();
    let (upload_id, durable) = (upload.id.clone(), upload.received);
    let mut partial = tokio::task::spawn_blocking(move || blobs.open_partial(&upload_id, durable))
        .await
        .map_err(|_| ApiError::Internal("upload task failed".into()))??;
    let started = Instant::now();
    let idle = Duration::from_secs(state.config.upload_idle_seconds);
    let longest = Duration::from_secs(state.config.upload_request_seconds);
    let mut received = upload.received;
    let mut synced = upload.received;
    let mut buffer: Vec<u8> = Vec::with_capacity(WRITE_CHUNK);
    let mut failure: Option<FileError> = None;
    let stop = loop {
        if started.elapsed() > longest {
            break Stop::TooLong;
        }
        let next = match tokio::time::timeout(
            idle.min(longest.saturating_sub(started.elapsed())),
            body.next(),
        )
        .await
        {
            Err(_) if started.elapsed() >= longest => break Stop::TooLong,
            Err(_) => break Stop::Idle,
            Ok(None) => break Stop::Done,
            Ok(Some(Err(_))) => break Stop::Broken,
            Ok(Some(Ok(bytes))) => bytes,
        };
        if received + buffer.len() as u64 + next.len() as u64 > upload.length {
            break Stop::PastLength;
        }
        buffer.extend_from_slice(&next);
        if buffer.len() < WRITE_CHUNK {
            continue;
        }
        let chunk = std::mem::replace(&mut buffer, Vec::with_capacity(WRITE_CHUNK));
        let (p, wrote) =
            on_partial(partial, move |p| p.write_all(&chunk).map(|()| chunk.len())).await?;
        partial = p;
        match wrote {
            Ok(n) => received += n as u64,
            Err(e) => {
                failure = Some(e.into());
                break Stop::Broken;
            }
        }
        if received - synced >= SYNC_EVERY {
            match make_durable(&state, partial, &upload, received).await {
                Ok(p) => {
                    partial = p;
                    synced = received;
                }
                Err(e) => {
                    // The partial file is cut back to what the database says (at the next
                    // request, by `open_partial`).
                    return Err(e.with_offset(synced));
                }
            }
            if device_revoked(&state, &auth).await {
                break Stop::Revoked;
            }
        }
    };
    // What arrived whole is kept, whatever ended the request (bytes past the length are not).
    if failure.is_none() && !buffer.is_empty() && !matches!(stop, Stop::PastLength) {
        let chunk = std::mem::take(&mut buffer);
        let (p, wrote) =
            on_partial(partial, move |p| p.write_all(&chunk).map(|()| chunk.len())).await?;
        partial = p;
        match wrote {
            Ok(n) => received += n as u64,
            Err(e) => failure = Some(e.into()),
        }
    }
    if let Some(failure) = failure {
        // A write failed (the disk full): back to the last durable offset, nothing corrupt.
        let (_, cut) = on_partial(partial, move |p| p.truncate(synced)).await?;
        if let Err(e) = cut {
            tracing::error!(upload = %upload.id, error = %Chain(&e), "could not cut an upload back");
        }
        tracing::warn!(upload = %upload.id, kept = synced, "upload write failed");
        return Err(failure.with_offset(synced));
    }
    let partial = match make_durable(&state, partial, &upload, received).await {
        Ok(p) => p,
        Err(e) => return Err(e.with_offset(synced)),
    };
    drop(partial);
    let offset_now = received;
    match stop {
        Stop::Broken => {
            tracing::info!(upload = %upload.id, kept = received, "upload connection broke");
            return Err(
                FileError::new(StatusCode::BAD_REQUEST, "broken", "the request broke off")
                    .with_offset(offset_now),
            );
        }
        Stop::Idle | Stop::TooLong => {
            tracing::info!(upload = %upload.id, kept = received, "upload request ended for time");
            return Err(FileError::new(
                StatusCode::REQUEST_TIMEOUT,
                "too_slow",
                "the request sent nothing for too long, or took too long; continue from \
                 Upload-Offset",
            )
            .with_offset(offset_now));
        }
        Stop::PastLength => return Err(past_length(&upload).with_offset(offset_now)),
        Stop::Revoked => {
            return Err(FileError::from(ApiError::DeviceRevoked).with_offset(offset_now));
        }
        Stop::Done => {}
    }
    if received == upload.length {
        complete(&state, &upload).await?;
    }
    let mut res = HttpResponse::NoContent();
    tus_headers(&mut res);
    res.insert_header(("Upload-Offset", received.to_string()));
    Ok(res.finish())
}

fn past_length(upload: &Upload) -> FileError {
    FileError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "past_declared_length",
        format!(
            "the file is {} bytes (Upload-Length); bytes past it are not taken",
            upload.length
        ),
    )
}

/// Syncs the partial file and records its length as the upload's durable offset.
async fn make_durable(
    state: &AppState,
    partial: Box<dyn Partial>,
    upload: &Upload,
    received: u64,
) -> Result<Box<dyn Partial>, FileError> {
    let (partial, synced) = on_partial(partial, |p| p.sync()).await?;
    let len = synced?;
    if len != received {
        return Err(ApiError::Internal(format!(
            "upload {} is {len} bytes on disk, {received} written",
            upload.id
        ))
        .into());
    }
    let (id, now) = (upload.id.clone(), state.now());
    state
        .db
        .run(move |s| s.set_upload_received(&id, received, now))
        .await?;
    Ok(partial)
}

async fn device_revoked(state: &Arc<AppState>, auth: &AuthDevice) -> bool {
    let id = auth.device.id.clone();
    match state.db.run(move |s| s.device(&id)).await {
        Ok(Some((device, user))) => device.revoked_at.is_some() || user.disabled,
        Ok(None) => true,
        Err(_) => false,
    }
}

/// The last byte arrived: verify and keep the file.
async fn complete(state: &AppState, upload: &Upload) -> Result<(), FileError> {
    let (blobs, id, sha) = (
        state.blobs.clone(),
        upload.id.clone(),
        upload.sha256.clone(),
    );
    let verified = tokio::task::spawn_blocking(move || blobs.finish(&id, &sha))
        .await
        .map_err(|_| ApiError::Internal("upload task failed".into()))?;
    if let Err(e) = verified {
        if matches!(e, BlobError::HashMismatch) {
            tracing::warn!(upload = %upload.id, device = %upload.device_id, "upload's hash does not match: dropped");
            let id = upload.id.clone();
            state.db.run(move |s| s.delete_upload(&id)).await?;
        }
        return Err(e.into());
    }
    let blob = Blob {
        sha256: upload.sha256.clone(),
        size: upload.length,
        uploaded_by: upload.device_id.clone(),
        stored_at: state.now(),
        unreferenced_since: None,
    };
    let id = upload.id.clone();
    match state.db.run(move |s| s.finish_upload(&id, &blob)).await {
        Ok(()) => {}
        Err(StorageError::NotFound(_)) => {
            // The upload was dropped while its last bytes were checked (its record purged): the
            // file goes too, unless it is kept for another upload, or a record names it (another
            // upload of it may be finishing).
            let sha = upload.sha256.clone();
            let unwanted = state
                .db
                .run(move |s| Ok(s.blob(&sha)?.is_none() && s.documents_naming(&sha)?.is_empty()))
                .await?;
            if unwanted {
                let purged = crate::storage::Purged {
                    files: vec![upload.sha256.clone()],
                    ..Default::default()
                };
                let dir = state.config.data_dir.clone();
                let _ =
                    tokio::task::spawn_blocking(move || crate::purge::shred_files(&dir, &purged))
                        .await;
            }
            return Err(ApiError::NotFound.into());
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(upload = %upload.id, device = %upload.device_id, bytes = upload.length, "file verified and stored");
    Ok(())
}

/// Image and audio types a browser may show inline: it decodes them itself, no script runs.
fn shown_inline(media_type: &str) -> bool {
    matches!(
        media_type,
        "image/jpeg"
            | "image/png"
            | "image/webp"
            | "image/gif"
            | "audio/webm"
            | "audio/ogg"
            | "audio/mpeg"
            | "audio/mp4"
            | "audio/aac"
            | "audio/wav"
            | "audio/x-wav"
    )
}

#[derive(Debug, serde::Deserialize)]
pub struct DownloadQuery {
    /// The name to save as (the record's entry name; sanitised).
    name: Option<String>,
    /// `1`: save rather than show.
    download: Option<u8>,
}

/// `GET` and `HEAD /api/files/{sha256}`: the file, to whoever may read a record naming it.
pub async fn download(
    req: HttpRequest,
    state: State,
    auth: AuthDevice,
    sha: web::Path<String>,
    query: web::Query<DownloadQuery>,
) -> Result<HttpResponse, FileError> {
    let sha = sha.into_inner();
    if check_sha256(&sha).is_err() {
        return Err(FileError::not_found());
    }
    let who = principal(&state, &auth.user, &auth.device.id).await?;
    let named = entries_for(&state, &who, &sha, false).await?;
    let Some(entry) = named.first() else {
        return Err(FileError::not_found());
    };
    let held = {
        let sha = sha.clone();
        state.db.run(move |s| s.blob(&sha)).await?
    };
    let Some(blob) = held else {
        return Err(FileError::new(
            StatusCode::NOT_FOUND,
            "not_uploaded",
            "the file has not reached the server yet",
        ));
    };
    let inline = shown_inline(&entry.media_type) && query.download.is_none();
    let media_type = if inline {
        entry.media_type.clone()
    } else {
        "application/octet-stream".into()
    };
    let name = query
        .name
        .as_deref()
        .map(safe_file_name)
        .unwrap_or_else(|| format!("{}.bin", &sha[..12]));
    let size = blob.size;
    let range = parse_range(header_str(&req, "Range"), size);
    let mut res = match range {
        Some(Err(())) => {
            return Ok(HttpResponse::build(StatusCode::RANGE_NOT_SATISFIABLE)
                .insert_header((header::CONTENT_RANGE, format!("bytes */{size}")))
                .finish());
        }
        Some(Ok(_)) => HttpResponse::PartialContent(),
        None => HttpResponse::Ok(),
    };
    let (start, end) = match range {
        Some(Ok(r)) => r,
        _ => (0, size.saturating_sub(1)),
    };
    res.insert_header((header::CONTENT_TYPE, media_type))
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            content_disposition(inline, &name),
        ))
        // No script, no plugin, no form: even a file that claims to be an image.
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; img-src 'self'; media-src 'self'; sandbox",
        ))
        .insert_header(("Upload-Offset", size.to_string()))
        .insert_header(("Upload-Length", size.to_string()))
        .insert_header(("X-Saksi-Sha256", sha.clone()));
    if matches!(range, Some(Ok(_))) {
        res.insert_header((header::CONTENT_RANGE, format!("bytes {start}-{end}/{size}")));
    }
    let len = if size == 0 { 0 } else { end - start + 1 };
    if req.method() == actix_web::http::Method::HEAD {
        res.insert_header((header::CONTENT_LENGTH, len.to_string()));
        return Ok(res.finish());
    }
    let reader = {
        let (blobs, sha) = (state.blobs.clone(), sha.clone());
        tokio::task::spawn_blocking(move || -> Result<_, BlobError> {
            let mut r = blobs.open(&sha)?;
            r.seek(std::io::SeekFrom::Start(start))
                .map_err(|e| BlobError::Io {
                    what: "seeking a file".into(),
                    source: e,
                })?;
            Ok(r)
        })
        .await
        .map_err(|_| ApiError::Internal("file task failed".into()))??
    };
    Ok(res.no_chunking(len).streaming(stream_reader(reader, len)))
}

/// `Content-Disposition` with an ASCII fallback and the UTF-8 name (RFC 6266, RFC 8187).
fn content_disposition(inline: bool, name: &str) -> HeaderValue {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_ ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let kind = if inline { "inline" } else { "attachment" };
    HeaderValue::from_str(&format!(
        "{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// A single `bytes=a-b`, `bytes=a-` or `bytes=-n` range: `None` for no (or an unsupported)
/// Range header, `Some(Err)` for one outside the file.
fn parse_range(value: Option<&str>, size: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = value?.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let range = match (a.parse::<u64>().ok(), b.parse::<u64>().ok()) {
        (Some(start), Some(end)) if start <= end => (start, end.min(size.saturating_sub(1))),
        (Some(start), None) if b.is_empty() => (start, size.saturating_sub(1)),
        (None, Some(n)) if a.is_empty() && n > 0 => {
            (size.saturating_sub(n), size.saturating_sub(1))
        }
        _ => return None,
    };
    if size == 0 || range.0 >= size {
        return Some(Err(()));
    }
    Some(Ok(range))
}

/// Streams `len` bytes from `reader` in 256 KiB pieces, each read on the blocking pool.
fn stream_reader(
    reader: Box<dyn crate::files::BlobReader>,
    len: u64,
) -> impl futures_util::Stream<Item = Result<web::Bytes, std::io::Error>> {
    futures_util::stream::unfold((Some(reader), len), |(reader, left)| async move {
        let mut reader = reader?;
        if left == 0 {
            return None;
        }
        let want = left.min(WRITE_CHUNK as u64) as usize;
        let read = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; want];
            let result = reader.read_exact(&mut buf).map(|()| buf);
            (reader, result)
        })
        .await;
        match read {
            Ok((reader, Ok(buf))) => Some((
                Ok(web::Bytes::from(buf)),
                (Some(reader), left - want as u64),
            )),
            Ok((_, Err(e))) => Some((Err(e), (None, 0))),
            Err(_) => Some((Err(std::io::Error::other("file task failed")), (None, 0))),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), None);
        assert_eq!(parse_range(Some("bytes=0-4"), 10), Some(Ok((0, 4))));
        assert_eq!(parse_range(Some("bytes=5-"), 10), Some(Ok((5, 9))));
        assert_eq!(parse_range(Some("bytes=-3"), 10), Some(Ok((7, 9))));
        assert_eq!(parse_range(Some("bytes=8-100"), 10), Some(Ok((8, 9))));
        assert_eq!(parse_range(Some("bytes=10-"), 10), Some(Err(())));
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), None);
        assert_eq!(parse_range(Some("items=0-1"), 10), None);
    }

    #[test]
    fn content_disposition_keeps_khmer_and_drops_quotes_and_paths() {
        let v = content_disposition(false, "សាក្សី \"x\".jpg");
        let s = v.to_str().expect("ascii header");
        assert!(
            s.starts_with("attachment; filename=\"______ _x_.jpg\""),
            "{s}"
        );
        assert!(s.contains("filename*=UTF-8''%E1%9E%9F"), "{s}");
        assert!(!s[s.find("filename*").expect("star")..].contains('"'));
    }
}
