//! The JSON API used by the PWA and native clients, and the `/sync` upgrade.
//!
//! | method | path | what |
//! |---|---|---|
//! | POST | `/api/login` | `{username, password, device_name, probe?}` → registers a device, returns its token (also set as the `saksi_session` cookie) |
//! | POST | `/api/logout` | revokes the calling device |
//! | GET | `/api/me` | the signed-in user and device |
//! | GET | `/api/records` | the cases and records this user may see, and the ids of destroyed records they could read |
//! | POST | `/api/records/{id}/discard` | the author of a draft never submitted (or a coordinator) destroys it |
//! | POST | `/api/sync-ticket` | a single-use ticket for `/sync?ticket=...` |
//! | POST | `/api/probe` | `{probe}` → `{revoked}`, no credential: asked by a locked phone |
//! | POST | `/api/probe/wiped` | `{probe}`: the phone wiped itself; its device is revoked |
//! | GET | `/sync` | WebSocket upgrade (cookie, bearer token or ticket) |

use std::sync::Arc;
use std::time::Duration;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::{HttpMessage as _, HttpRequest, HttpResponse, web};
use saksi_shared::{DocumentId, Role, Timestamp};
use serde::{Deserialize, Serialize};

use super::ApiError;
use super::auth::{AuthDevice, COOKIE, authenticate, check_device, request_token, same_origin};
use super::upgrade::{Accepted, Upgrading};
use crate::accounts::{SignIn, sign_in, sign_out, token_hash};
use crate::app::AppState;
use crate::errors::Chain;
use crate::storage::DocumentFilter;
use crate::sync::connection::Authenticated;

type State = web::Data<AppState>;

/// `ok` when the storage can read and write; otherwise 503 (the cause goes to the log only).
pub async fn healthz(state: State) -> HttpResponse {
    match state.db.run(|s| s.check_health()).await {
        Ok(()) => HttpResponse::Ok().content_type("text/plain").body("ok"),
        Err(e) => {
            tracing::error!(error = %Chain(&e), "health check failed");
            HttpResponse::ServiceUnavailable()
                .content_type("text/plain")
                .body("storage unavailable")
        }
    }
}

pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

#[derive(Deserialize)]
pub struct LoginRequest {
    username: String,
    password: String,
    device_name: String,
    /// The token of this device's expired session: renew the same device (its offline edits
    /// stay attributed to it) instead of registering a new one.
    #[serde(default)]
    renew_token: Option<String>,
    /// A random id the phone keeps in the clear, to ask while locked whether it was revoked
    /// ([`probe`]).
    #[serde(default)]
    probe: Option<String>,
}

/// A probe is 16 to 128 letters and digits (the PWA sends 32 hex digits).
fn valid_probe(probe: &str) -> bool {
    (16..=128).contains(&probe.len()) && probe.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("device_name", &self.device_name)
            .field(
                "renew_token",
                &self.renew_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct UserInfo {
    pub username: String,
    pub role: Role,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct LoginResponse {
    pub token: String,
    pub device_id: saksi_shared::DeviceId,
    pub user: UserInfo,
    pub expires_at: Timestamp,
    pub pin_policy: PinPolicy,
    /// The largest file the server takes (see [`MeResponse::max_file_bytes`]).
    pub max_file_bytes: u64,
}

/// What the phone's PIN must be (`pin_min_length`, `pin_letters`); the phone enforces it when a
/// PIN is set and asks for a new one at unlock when its PIN falls short.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinPolicy {
    pub min_length: u32,
    pub letters: bool,
}

impl PinPolicy {
    pub fn of(config: &crate::config::Config) -> PinPolicy {
        PinPolicy {
            min_length: config.pin_min_length,
            letters: config.pin_letters,
        }
    }
}

/// The client's address for throttling. Behind a reverse proxy (TLS off, loopback only) the
/// proxy's forwarded address is used; otherwise the socket's peer, which cannot be forged.
pub fn client_address(req: &HttpRequest, config: &crate::config::Config) -> String {
    let behind_proxy = config.tls == crate::config::TlsMode::Off;
    if behind_proxy && let Some(addr) = req.connection_info().realip_remote_addr() {
        return addr.to_owned();
    }
    req.peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

pub async fn login(
    req: HttpRequest,
    state: State,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let LoginRequest {
        username,
        password,
        device_name,
        renew_token,
        probe,
    } = body.into_inner();
    if probe.as_deref().is_some_and(|p| !valid_probe(p)) {
        return Err(ApiError::BadRequest(
            "a probe is 16 to 128 letters and digits".into(),
        ));
    }
    let address = client_address(&req, &state.config);
    let signed_in = sign_in(
        &state,
        SignIn {
            username: &username,
            password: &password,
            device_name: &device_name,
            renew: renew_token.as_deref(),
            address: &address,
        },
    )
    .await?;
    if let Some(probe) = probe {
        let (device, hash) = (signed_in.device_id.clone(), token_hash(&probe));
        state.db.run(move |s| s.set_probe(&device, &hash)).await?;
    }
    let cookie = session_cookie(&state, &signed_in.token);
    Ok(HttpResponse::Ok().cookie(cookie).json(LoginResponse {
        token: signed_in.token,
        device_id: signed_in.device_id,
        user: UserInfo {
            username: signed_in.user.username,
            role: signed_in.user.role,
        },
        expires_at: signed_in.expires_at,
        pin_policy: PinPolicy::of(&state.config),
        max_file_bytes: state.config.max_file_bytes,
    }))
}

/// The `saksi_session` cookie carrying a device token: HttpOnly, Secure, SameSite=Strict.
pub fn session_cookie(state: &AppState, token: &str) -> Cookie<'static> {
    Cookie::build(COOKIE, token.to_owned())
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(time::Duration::days(state.config.session_days as i64))
        .finish()
}

/// A cookie that removes the session cookie.
pub fn removal_cookie() -> Cookie<'static> {
    let mut expired = Cookie::build(COOKIE, "")
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Strict)
        .finish();
    expired.make_removal();
    expired
}

fn check_csrf(req: &HttpRequest, auth: &AuthDevice) -> Result<(), ApiError> {
    if auth.via_cookie && !same_origin(req) {
        return Err(ApiError::Forbidden);
    }
    Ok(())
}

pub async fn logout(
    req: HttpRequest,
    state: State,
    auth: AuthDevice,
) -> Result<HttpResponse, ApiError> {
    check_csrf(&req, &auth)?;
    sign_out(&state, &auth.device, &auth.user).await?;
    Ok(HttpResponse::NoContent().cookie(removal_cookie()).finish())
}

#[derive(Debug, Deserialize)]
pub struct ProbeRequest {
    probe: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ProbeResponse {
    /// The device the probe was registered for is revoked (or its user disabled): wipe.
    pub revoked: bool,
    /// Records its user could read that were destroyed (purged, discarded): the locked phone
    /// deletes its copies. Ids only.
    #[serde(default)]
    pub withdrawn: Vec<DocumentId>,
}

/// Whether the device of a probe is revoked: asked by a locked phone, which holds no usable
/// credential. Answers `false` for a probe nobody registered; tells nothing else.
pub async fn probe(state: State, body: web::Json<ProbeRequest>) -> Result<HttpResponse, ApiError> {
    let hash = token_hash(&body.probe);
    let found = state
        .db
        .run(move |s| match s.device_of_probe(&hash)? {
            Some(id) => s.device(&id),
            None => Ok(None),
        })
        .await?;
    let revoked = found
        .as_ref()
        .is_some_and(|(d, u)| d.revoked_at.is_some() || u.disabled);
    let withdrawn = match &found {
        Some((device, user)) if !revoked => {
            crate::purge::withdrawn_for(&state, user, device.created_at).await?
        }
        _ => Vec::new(),
    };
    Ok(HttpResponse::Ok().json(ProbeResponse { revoked, withdrawn }))
}

/// A phone wiped itself (too many wrong PINs): its device is revoked, as the panic action's
/// sign-out does. Anyone holding the probe (it is kept in the clear on the phone) can revoke
/// that one device, which can only cut it off.
pub async fn probe_wiped(
    state: State,
    body: web::Json<ProbeRequest>,
) -> Result<HttpResponse, ApiError> {
    let hash = token_hash(&body.probe);
    let now = state.now();
    let revoked = state
        .db
        .run(move |s| {
            let Some(id) = s.device_of_probe(&hash)? else {
                return Ok(None);
            };
            let Some((_, user)) = s.device(&id)? else {
                return Ok(None);
            };
            let who = saksi_shared::Who::new(user.username.clone(), id.clone());
            let by = crate::admin::Operator::Admin(&who);
            let done = crate::admin::revoke_device(s, by, &id, now).map_err(|e| {
                crate::storage::StorageError::database("cannot revoke the device", e)
            })?;
            Ok::<Option<saksi_shared::DeviceId>, crate::storage::StorageError>(
                done.then_some(id.clone()),
            )
        })
        .await?;
    if let Some(device) = revoked {
        let closed = state.connections.close_device(&device, "device revoked");
        tracing::info!(device = %device, connections = closed, "a wiped phone's device revoked");
    }
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Serialize, Deserialize)]
pub struct MeResponse {
    pub user: UserInfo,
    pub device_id: saksi_shared::DeviceId,
    pub device_name: String,
    pub expires_at: Timestamp,
    pub pin_policy: PinPolicy,
    /// The largest file the server takes (`max_file_bytes`): the phone refuses larger ones at
    /// capture, and stops a recording before it gets there.
    pub max_file_bytes: u64,
}

pub async fn me(state: web::Data<AppState>, auth: AuthDevice) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(MeResponse {
        user: UserInfo {
            username: auth.user.username,
            role: auth.user.role,
        },
        device_id: auth.device.id,
        device_name: auth.device.name,
        expires_at: auth.device.expires_at,
        pin_policy: PinPolicy::of(&state.config),
        max_file_bytes: state.config.max_file_bytes,
    }))
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CaseInfo {
    pub id: DocumentId,
    pub name: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RecordInfo {
    pub id: DocumentId,
    pub kind: String,
    pub case: DocumentId,
    pub title: String,
    pub status: String,
    pub created_by: String,
    pub has_conflicts: bool,
    pub updated_at: Timestamp,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RecordsResponse {
    pub cases: Vec<CaseInfo>,
    pub records: Vec<RecordInfo>,
    /// Records this user could read that were destroyed: a phone holding one deletes it.
    #[serde(default)]
    pub withdrawn: Vec<DocumentId>,
}

/// The cases and records the caller may see: what a device should sync.
pub async fn records(state: State, auth: AuthDevice) -> Result<HttpResponse, ApiError> {
    let user = auth.user.clone();
    let (cases, rows) = state
        .db
        .run(move |s| {
            let all_cases = s.cases()?;
            if user.role.reviews() {
                let rows = s.documents(&DocumentFilter::default())?;
                return Ok((all_cases, rows));
            }
            let mine = s.cases_of(user.id)?;
            let cases = all_cases
                .into_iter()
                .filter(|c| mine.contains(&c.id))
                .collect();
            let mut rows = s.documents(&DocumentFilter {
                readable_by: Some((user.username.clone(), mine)),
                ..DocumentFilter::default()
            })?;
            // A record waiting to be purged is hidden from field staff.
            let hidden: Vec<DocumentId> =
                s.pending_purges()?.into_iter().map(|p| p.doc_id).collect();
            rows.retain(|r| !hidden.contains(&r.id));
            Ok((cases, rows))
        })
        .await?;
    let withdrawn = crate::purge::withdrawn_for(&state, &auth.user, auth.device.created_at).await?;
    Ok(HttpResponse::Ok().json(RecordsResponse {
        cases: cases
            .into_iter()
            .map(|c| CaseInfo {
                id: c.id,
                name: c.name,
            })
            .collect(),
        records: rows
            .into_iter()
            .map(|r| RecordInfo {
                id: r.id,
                kind: r.kind,
                case: r.case_id,
                title: r.title,
                status: r.status,
                created_by: r.created_by,
                has_conflicts: r.has_conflicts,
                updated_at: r.updated_at,
            })
            .collect(),
        withdrawn,
    }))
}

/// `POST /api/records/{id}/discard`: the author of a draft never submitted (or a coordinator)
/// destroys it at once. Anyone else, and any other record, gets what an unknown record gets.
pub async fn discard(
    req: HttpRequest,
    state: State,
    auth: AuthDevice,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    check_csrf(&req, &auth)?;
    let id = DocumentId::parse(&id).map_err(|_| ApiError::NotFound)?;
    let state = state.into_inner();
    if !auth.user.role.reviews() && state.db.run(move |s| s.pending_purge(&id)).await?.is_some() {
        // Hidden from field staff while its purge waits.
        return Err(ApiError::NotFound);
    }
    let who = Arc::new(crate::app::principal(&state, &auth.user, &auth.device.id).await?);
    // What the sender may not read is answered as a record that does not exist.
    let readable = {
        let who = who.clone();
        state
            .documents
            .read(&state, id, move |record| {
                record
                    .and_then(|r| r.meta())
                    .is_some_and(|meta| who.may_read(&meta))
            })
            .await
            .unwrap_or(false)
    };
    if !readable {
        return Err(ApiError::NotFound);
    }
    // Judged in the document task at the moment it stops taking changes: a submit arriving
    // from another phone meanwhile makes the discard fail, not destroy a submitted record.
    let check: crate::purge::Check =
        Box::new(move |record| record.is_some_and(|record| discardable(record, &who)));
    crate::purge::destroy_checked(
        &state,
        id,
        &auth.user.username,
        Some(&auth.device.id),
        crate::storage::PurgeReason::Discarded,
        Some(check),
    )
    .await
    .map_err(|e| match e {
        crate::purge::PurgeError::NotFound => ApiError::NotFound,
        crate::purge::PurgeError::Forbidden | crate::purge::PurgeError::IsCase => {
            ApiError::Forbidden
        }
        other => ApiError::Internal(Chain(&other).to_string()),
    })?;
    Ok(HttpResponse::NoContent().finish())
}

/// Whether `who` may discard `record`: a draft, never submitted and written by them, or any
/// draft for a coordinator; never a case.
fn discardable(record: &saksi_shared::Record, who: &saksi_shared::policy::Principal) -> bool {
    let (Some(meta), Ok(view)) = (record.meta(), record.view()) else {
        return false;
    };
    let never_submitted = !view
        .review
        .iter()
        .any(|e| e.action == saksi_shared::workflow::ReviewAction::Submit.as_str());
    who.may_read(&meta)
        && meta.kind != saksi_shared::RecordKind::Case
        && meta.status == saksi_shared::Status::Draft
        && (who.role.reviews() || (meta.created_by == who.who.user && never_submitted))
}

#[derive(Debug, Serialize, Deserialize)]
pub struct TicketResponse {
    pub ticket: String,
    pub expires_in: u64,
}

pub async fn sync_ticket(
    req: HttpRequest,
    state: State,
    auth: AuthDevice,
) -> Result<HttpResponse, ApiError> {
    check_csrf(&req, &auth)?;
    let now = state.now();
    let seconds = state.config.ticket_seconds;
    let ticket = state
        .tickets
        .issue(&auth.device.id, now, now + Duration::from_secs(seconds));
    Ok(HttpResponse::Ok().json(TicketResponse {
        ticket,
        expires_in: seconds,
    }))
}

#[derive(Deserialize)]
pub struct SyncQuery {
    ticket: Option<String>,
}

impl std::fmt::Debug for SyncQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncQuery")
            .field("ticket", &self.ticket.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The WebSocket upgrade. Credentials are checked before the upgrade completes; the connection
/// itself is run by [`super::upgrade`], which takes the stream over once this answers `101`.
pub async fn sync(
    req: HttpRequest,
    state: State,
    query: web::Query<SyncQuery>,
) -> Result<HttpResponse, ApiError> {
    if req.extensions().get::<Upgrading>().is_none() {
        // Only HTTP/1.1 requests with the upgrade headers reach here through the upgrade.
        return Err(ApiError::BadRequest("not a WebSocket upgrade".into()));
    }
    let state: Arc<AppState> = state.into_inner();
    let auth = match &query.ticket {
        Some(ticket) => {
            let device = state
                .tickets
                .redeem(ticket, state.now())
                .ok_or(ApiError::Unauthenticated)?;
            let found = state
                .db
                .run(move |s| s.device(&device))
                .await?
                .ok_or(ApiError::Unauthenticated)?;
            check_device(&state, found, false).await?
        }
        None => {
            let (token, via_cookie) = request_token(&req).ok_or(ApiError::Unauthenticated)?;
            let auth = authenticate(&state, &token, via_cookie).await?;
            if via_cookie && !same_origin(&req) {
                return Err(ApiError::Forbidden);
            }
            auth
        }
    };
    let handshake = actix_http::ws::handshake(req.head())
        .map_err(|e| ApiError::BadRequest(format!("not a WebSocket upgrade: {e}")))?
        .finish();
    let mut response = HttpResponse::from(handshake.map_into_boxed_body());
    let auth = Authenticated {
        user: auth.user,
        device: auth.device.id,
        device_expires_at: auth.device.expires_at,
    };
    response.extensions_mut().insert(Accepted { state, auth });
    Ok(response)
}
