//! The coordinator console: server-rendered HTML (askama) under `/console`, for a desktop or
//! tablet browser, without the PWA.
//!
//! | method | path | who | what |
//! |---|---|---|---|
//! | GET, POST | `/console/login` | anyone | sign-in form; registers a device "console (browser)" |
//! | POST | `/console/logout` | reviewer | revokes the console's device |
//! | POST | `/console/lang` | reviewer | English or Khmer labels (a cookie) |
//! | GET | `/console/records` | reviewer | records table: filters, sort, pages, counts |
//! | GET | `/console/records/{id}` | reviewer | merged record, conflicts, review actions |
//! | GET | `/console/records/{id}/history` | reviewer | every change, or one field's (`?field=`) |
//! | POST | `/console/records/{id}/resolve` | reviewer | writes the chosen value of a conflict |
//! | POST | `/console/records/{id}/review` | reviewer | request changes, approve, archive, ... |
//! | POST | `/console/records/{id}/purge`, `/purge/cancel` | reviewer (`now`: admin) | schedule (or do) a purge, undo one |
//! | POST | `/console/records/{id}/discard` | reviewer | destroy a draft at once |
//! | GET | `/console/export.csv`, `.json`, `/console/report` | reviewer | exports (audited) |
//! | GET | `/console/export/archive.zip?case=ID` | reviewer | a case with its files, streamed (audited) |
//! | GET | `/console/audit` | reviewer | the audit log, filtered |
//! | GET | `/console/certificate` | reviewer | the local CA phones install: fingerprint, QR, steps |
//! | GET, POST | `/console/admin/users[/{id}/...]` | admin | accounts |
//! | GET, POST | `/console/admin/devices[/{id}/revoke]` | admin | devices, revocation |
//! | GET, POST | `/console/admin/cases[/{id}/members...]` | admin | cases and teams |
//!
//! Every page needs a signed-in coordinator or admin (admin pages: admin); anyone else gets
//! 403, and a browser without a session is sent to the sign-in form. Every POST carries a
//! CSRF token in a hidden field and must come from this origin (the session cookie is also
//! `SameSite=Strict`). The token is an HMAC of a fixed label keyed with the session token
//! itself: it differs per device, needs no server-side state, and reveals nothing about the
//! session token.
//!
//! Record edits made here (conflict resolution, review steps) go through
//! [`crate::sync::Documents::edit`]: they are stored like any change and reach connected phones
//! at once. Pages, errors and logs never hold passwords or tokens; logs hold ids and counts.

mod admin;
mod audit;
mod certificate;
mod export;
mod purge;
mod records;
mod session;
mod view;
mod words;
mod zip;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::body::BoxBody;
use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;
use saksi_shared::record::Editor;
use saksi_shared::{Lang, Who};
use sha2::{Digest, Sha256};

use crate::admin::AdminError;
use crate::app::AppState;
use crate::errors::Chain;
use crate::http::ApiError;
use crate::http::auth::{AuthDevice, authenticate, request_token, same_origin};
use crate::storage::StorageError;

/// The cookie remembering the console language (`en` or `km`).
pub const LANG_COOKIE: &str = "saksi_lang";
/// The console's stylesheet (the CSP allows no inline style).
pub const CSS: &str = include_str!("../../static/console.css");

/// Registers the console's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/console")
            .route("", web::get().to(home))
            .route("/", web::get().to(home))
            .route("/console.css", web::get().to(stylesheet))
            .route("/login", web::get().to(session::login_form))
            .route("/login", web::post().to(session::login))
            .route("/logout", web::post().to(session::logout))
            .route("/lang", web::post().to(session::set_lang))
            .route("/records", web::get().to(records::list))
            .route("/records/{id}", web::get().to(records::show))
            .route("/records/{id}/history", web::get().to(records::history))
            .route("/records/{id}/resolve", web::post().to(records::resolve))
            .route("/records/{id}/review", web::post().to(records::review))
            .route("/records/{id}/purge", web::post().to(purge::purge))
            .route("/records/{id}/purge/cancel", web::post().to(purge::cancel))
            .route("/records/{id}/discard", web::post().to(purge::discard))
            .route("/export.csv", web::get().to(export::csv))
            .route("/export.json", web::get().to(export::json))
            .route("/export/archive.zip", web::get().to(export::archive))
            .route("/report", web::get().to(export::report))
            .route("/audit", web::get().to(audit::list))
            .route("/certificate", web::get().to(certificate::show))
            .route("/admin/users", web::get().to(admin::users))
            .route("/admin/users", web::post().to(admin::create_user))
            .route(
                "/admin/users/{id}/{action}",
                web::post().to(admin::user_action),
            )
            .route("/admin/devices", web::get().to(admin::devices))
            .route("/admin/devices/{id}/revoke", web::post().to(admin::revoke))
            .route("/admin/cases", web::get().to(admin::cases))
            .route("/admin/cases", web::post().to(admin::create_case))
            .route(
                "/admin/cases/{id}/members",
                web::post().to(admin::add_member),
            )
            .route(
                "/admin/cases/{id}/members/remove",
                web::post().to(admin::remove_member),
            )
            .default_service(web::to(not_found)),
    );
}

async fn home(who: Console) -> HttpResponse {
    let _ = who;
    see_other("/console/records")
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .body(CSS)
}

async fn not_found() -> Result<HttpResponse, ConsoleError> {
    Err(ConsoleError::NotFound)
}

/// A 303 redirect (after a POST, the browser GETs the target).
pub(crate) fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_owned()))
        .finish()
}

/// A rendered page.
pub(crate) fn page(template: &impl Template) -> Result<HttpResponse, ConsoleError> {
    let body = template.render()?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(body))
}

/// What went wrong, as the console shows it: an HTML page with a fixed message for server
/// errors (the cause goes to the log), a redirect to the sign-in form without a session.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("sign in first")]
    SignIn { next: String },
    #[error("The console is for coordinators and admins.")]
    Forbidden,
    #[error(
        "This form has expired or did not come from this console. Go back, reload the page and try again."
    )]
    Csrf,
    #[error("Not found.")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("internal error")]
    Internal(String),
}

impl From<StorageError> for ConsoleError {
    fn from(e: StorageError) -> Self {
        ConsoleError::Internal(Chain(&e).to_string())
    }
}

impl From<askama::Error> for ConsoleError {
    fn from(e: askama::Error) -> Self {
        ConsoleError::Internal(format!("template: {e}"))
    }
}

impl From<AdminError> for ConsoleError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Invalid(message) => ConsoleError::BadRequest(message),
            AdminError::Storage(e) => e.into(),
            other => ConsoleError::Internal(Chain(&other).to_string()),
        }
    }
}

impl From<ApiError> for ConsoleError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Forbidden => ConsoleError::Forbidden,
            ApiError::NotFound => ConsoleError::NotFound,
            ApiError::BadRequest(m) => ConsoleError::BadRequest(m),
            ApiError::Internal(cause) => ConsoleError::Internal(cause),
            ApiError::Unauthenticated
            | ApiError::DeviceRevoked
            | ApiError::SessionExpired
            | ApiError::InvalidCredentials => ConsoleError::SignIn {
                next: "/console/records".into(),
            },
            other => ConsoleError::BadRequest(other.to_string()),
        }
    }
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage<'a> {
    status: u16,
    message: &'a str,
}

impl ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        match self {
            ConsoleError::SignIn { .. } => StatusCode::SEE_OTHER,
            ConsoleError::Forbidden | ConsoleError::Csrf => StatusCode::FORBIDDEN,
            ConsoleError::NotFound => StatusCode::NOT_FOUND,
            ConsoleError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ConsoleError::Conflict(_) => StatusCode::CONFLICT,
            ConsoleError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        if let ConsoleError::SignIn { next } = self {
            let location = format!(
                "/console/login?{}",
                serde_urlencoded::to_string([("next", next.as_str())]).unwrap_or_default()
            );
            return see_other(&location);
        }
        if let ConsoleError::Internal(cause) = self {
            tracing::error!(cause = %cause, "console: internal error");
        }
        let message = match self {
            ConsoleError::Internal(_) => {
                "Something went wrong on the server. Try again later.".to_owned()
            }
            other => other.to_string(),
        };
        let status = self.status_code();
        let body = ErrorPage {
            status: status.as_u16(),
            message: &message,
        }
        .render()
        .unwrap_or_else(|_| "error".to_owned());
        HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(body)
    }
}

/// Only paths inside the console are followed after sign-in (no open redirect).
pub(crate) fn safe_next(next: &str) -> &str {
    let ok = next.starts_with("/console")
        && !next.contains("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control);
    if ok { next } else { "/console/records" }
}

/// Whether a POST comes from a page of this origin, as far as the browser tells.
///
/// The console's pages are served with `Referrer-Policy: no-referrer`, under which browsers
/// send `Origin: null` even on same-origin form posts. Browsers that send Fetch Metadata say
/// where the request comes from in `Sec-Fetch-Site`: only `same-origin` passes. Otherwise a
/// real `Origin` must name this host; a `null` or missing one is left to the CSRF token (and
/// the `SameSite=Strict` cookie).
pub(crate) fn posted_from_here(req: &HttpRequest) -> bool {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let origin = header("origin");
    let origin_ok = match origin.as_deref() {
        None | Some("null") => true,
        Some(_) => same_origin(req),
    };
    match header("sec-fetch-site").as_deref() {
        Some(site) => site == "same-origin" && origin_ok,
        None => origin_ok,
    }
}

/// HMAC-SHA256 (RFC 2104).
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        let digest: [u8; 32] = Sha256::digest(key).into();
        block[..32].copy_from_slice(&digest);
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let (mut inner, mut outer) = (Sha256::new(), Sha256::new());
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// The CSRF token of a session.
pub fn csrf_token(session_token: &str) -> String {
    hex::encode(hmac_sha256(
        session_token.as_bytes(),
        b"saksi console csrf v1",
    ))
}

/// Compares without an early exit.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A signed-in coordinator or admin using the console.
#[derive(Debug)]
pub struct Console {
    pub auth: AuthDevice,
    pub state: Arc<AppState>,
    csrf: String,
    pub lang: Lang,
    /// The path and query of this request (where forms come back to).
    pub here: String,
}

impl Console {
    pub fn username(&self) -> &str {
        &self.auth.user.username
    }

    pub fn is_admin(&self) -> bool {
        self.auth.user.role == saksi_shared::Role::Admin
    }

    /// Admin pages: admins only.
    pub fn require_admin(&self) -> Result<(), ConsoleError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ConsoleError::Forbidden)
        }
    }

    /// For every POST: the form's token must be this session's, and the request must come from
    /// this origin.
    pub fn check_form(&self, req: &HttpRequest, token: &str) -> Result<(), ConsoleError> {
        if !posted_from_here(req) || !same_bytes(token.as_bytes(), self.csrf.as_bytes()) {
            tracing::warn!(device = %self.auth.device.id, path = %req.path(), "console: CSRF check failed");
            return Err(ConsoleError::Csrf);
        }
        Ok(())
    }

    /// The identity of edits made from the console.
    pub fn editor(&self) -> Editor {
        Editor {
            who: self.who(),
            role: self.auth.user.role,
        }
    }

    /// The signed-in user and this browser's device.
    pub fn who(&self) -> Who {
        Who::new(self.auth.user.username.clone(), self.auth.device.id.clone())
    }

    /// What every page's frame shows.
    pub(crate) fn chrome(&self, active: &'static str) -> view::Chrome {
        view::Chrome {
            username: self.auth.user.username.clone(),
            role: self.auth.user.role.as_str(),
            is_admin: self.is_admin(),
            csrf: self.csrf.clone(),
            lang: match self.lang {
                Lang::En => "en",
                Lang::Km => "km",
            },
            here: self.here.clone(),
            active,
            words: self.lang,
        }
    }
}

impl FromRequest for Console {
    type Error = ConsoleError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = request_token(req);
        let here = match req.query_string() {
            "" => req.path().to_owned(),
            q => format!("{}?{q}", req.path()),
        };
        let lang = req
            .cookie(LANG_COOKIE)
            .and_then(|c| Lang::parse(c.value()))
            .unwrap_or_default();
        let next = if req.method() == actix_web::http::Method::GET {
            here.clone()
        } else {
            "/console/records".to_owned()
        };
        Box::pin(async move {
            let state = state
                .ok_or_else(|| ConsoleError::Internal("application state missing".into()))?
                .into_inner();
            let sign_in = || ConsoleError::SignIn { next: next.clone() };
            let (token, via_cookie) = token.ok_or_else(sign_in)?;
            let auth = match authenticate(&state, &token, via_cookie).await {
                Ok(auth) => auth,
                Err(ApiError::Internal(cause)) => return Err(ConsoleError::Internal(cause)),
                Err(_) => return Err(sign_in()),
            };
            if !auth.user.role.reviews() {
                tracing::warn!(user = auth.user.id, "console: refused to a non-reviewer");
                return Err(ConsoleError::Forbidden);
            }
            Ok(Console {
                auth,
                state,
                csrf: csrf_token(&token),
                lang,
                here,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // RFC 4231, test case 2.
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block.
        assert_eq!(
            hex::encode(hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn csrf_tokens_differ_per_session_and_compare_exactly() {
        let a = csrf_token("session-a");
        assert_eq!(a.len(), 64);
        assert_ne!(a, csrf_token("session-b"));
        assert!(same_bytes(a.as_bytes(), csrf_token("session-a").as_bytes()));
        assert!(!same_bytes(a.as_bytes(), &a.as_bytes()[..63]));
    }

    #[test]
    fn posts_from_other_sites_are_told_apart() {
        use actix_web::test::TestRequest;
        let req = |headers: &[(&'static str, &'static str)]| {
            let mut r = TestRequest::post().insert_header(("host", "desk.example:8443"));
            for h in headers {
                r = r.insert_header(*h);
            }
            r.to_http_request()
        };
        // Scripts and tests send neither header; the CSRF token decides.
        assert!(posted_from_here(&req(&[])));
        // What Chromium sends for a console form under `Referrer-Policy: no-referrer`.
        assert!(posted_from_here(&req(&[
            ("origin", "null"),
            ("sec-fetch-site", "same-origin")
        ])));
        assert!(posted_from_here(&req(&[
            ("origin", "https://desk.example:8443"),
            ("sec-fetch-site", "same-origin")
        ])));
        assert!(!posted_from_here(&req(&[
            ("origin", "null"),
            ("sec-fetch-site", "cross-site")
        ])));
        assert!(!posted_from_here(&req(&[("sec-fetch-site", "same-site")])));
        assert!(!posted_from_here(&req(&[(
            "origin",
            "https://evil.example"
        )])));
        assert!(!posted_from_here(&req(&[
            ("origin", "https://evil.example"),
            ("sec-fetch-site", "same-origin")
        ])));
    }

    #[test]
    fn only_console_paths_are_followed() {
        assert_eq!(
            safe_next("/console/records?case=x"),
            "/console/records?case=x"
        );
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/console//evil",
            "/api/me",
        ] {
            assert_eq!(safe_next(bad), "/console/records", "{bad}");
        }
    }
}
