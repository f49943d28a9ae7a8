//! HTTP: routes, the error type at the edge, security headers, and authentication.

pub mod api;
pub mod assets;
pub mod auth;
pub mod files;
pub mod metrics;
pub mod trust;
pub mod upgrade;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{Next, from_fn};
use actix_web::{HttpResponse, ResponseError, web};
use serde::Serialize;

use crate::errors::Chain;
use crate::storage::StorageError;

/// Registers every route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("")
            .wrap(from_fn(security_headers))
            .route("/healthz", web::get().to(api::healthz))
            .route("/metrics", web::get().to(metrics::metrics))
            .route("/ca.pem", web::get().to(trust::ca_pem))
            .route("/ca.crt", web::get().to(trust::ca_der))
            .service(
                web::scope("/api")
                    .route("/login", web::post().to(api::login))
                    .route("/logout", web::post().to(api::logout))
                    .route("/me", web::get().to(api::me))
                    .route("/records", web::get().to(api::records))
                    .route("/records/{id}/discard", web::post().to(api::discard))
                    .route("/sync-ticket", web::post().to(api::sync_ticket))
                    .route("/probe", web::post().to(api::probe))
                    .route("/probe/wiped", web::post().to(api::probe_wiped))
                    .route(
                        "/files",
                        web::method(actix_web::http::Method::OPTIONS).to(files::options),
                    )
                    .route("/files", web::post().to(files::create))
                    .route("/files/uploads/{id}", web::head().to(files::status))
                    .route("/files/uploads/{id}", web::patch().to(files::append))
                    .route("/files/uploads/{id}", web::delete().to(files::terminate))
                    .route("/files/{sha256}", web::get().to(files::download))
                    .route("/files/{sha256}", web::head().to(files::download))
                    .default_service(web::to(api::not_found)),
            )
            .configure(crate::console::routes)
            .route("/sync", web::get().to(api::sync))
            .default_service(web::to(assets::serve)),
    );
}

/// The Content-Security-Policy of every response (but files, which are sandboxed): no inline
/// script, no remote origin, wasm allowed to compile, no framing. `blob:` images and media are
/// the phone's own files, decrypted in the page.
pub const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
    style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; font-src 'self'; \
    worker-src 'self'; manifest-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
    form-action 'self'; object-src 'none'";

/// Security headers in one place. API and console responses are never stored by caches;
/// app assets are revalidated (the service worker keeps its own copy for offline use).
async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let is_asset = !(req.path().starts_with("/api/")
        || req.path().starts_with("/console")
        || req.path() == "/metrics"
        || req.path() == "/sync");
    let mut res = next.call(req).await?;
    let h = res.headers_mut();
    let set = |h: &mut header::HeaderMap, name, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(
        h,
        header::STRICT_TRANSPORT_SECURITY,
        "max-age=31536000; includeSubDomains",
    );
    // A response with a policy of its own (a file, sandboxed) keeps it.
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        set(h, header::CONTENT_SECURITY_POLICY, CSP);
    }
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    // The phone app records statements and takes photos; nothing else uses a camera or a
    // microphone, and nothing asks where the phone is.
    set(
        h,
        header::HeaderName::from_static("permissions-policy"),
        if is_asset {
            "camera=(self), microphone=(self), geolocation=(), interest-cohort=()"
        } else {
            "camera=(), microphone=(), geolocation=(), interest-cohort=()"
        },
    );
    set(
        h,
        header::HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        h,
        header::HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    if is_asset {
        if !h.contains_key(header::CACHE_CONTROL) {
            set(h, header::CACHE_CONTROL, "no-cache");
        }
    } else {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    Ok(res)
}

/// The error type at the HTTP edge: a stable code and message for the client, the cause in the
/// log. Server errors never show their cause to the client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("sign in first")]
    Unauthenticated,
    #[error("this device has been revoked")]
    DeviceRevoked,
    #[error("the session has expired; sign in again")]
    SessionExpired,
    #[error("wrong username or password")]
    InvalidCredentials,
    #[error("too many attempts; try again in {0} seconds")]
    Throttled(u64),
    #[error("not allowed")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::DeviceRevoked => "device_revoked",
            ApiError::SessionExpired => "session_expired",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::Throttled(_) => "throttled",
            ApiError::Forbidden => "forbidden",
            ApiError::NotFound => "not_found",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl From<crate::accounts::SignInError> for ApiError {
    fn from(e: crate::accounts::SignInError) -> Self {
        use crate::accounts::SignInError as E;
        match e {
            E::Invalid(rule) => ApiError::BadRequest(rule.into()),
            E::Throttled(seconds) => ApiError::Throttled(seconds),
            E::WrongCredentials => ApiError::InvalidCredentials,
            E::DeviceRevoked => ApiError::DeviceRevoked,
            e @ E::NotRenewable => ApiError::BadRequest(e.to_string()),
            E::Storage(e) => e.into(),
            e @ E::Check(_) => ApiError::Internal(Chain(&e).to_string()),
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        ApiError::Internal(Chain(&e).to_string())
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: String,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated
            | ApiError::DeviceRevoked
            | ApiError::SessionExpired
            | ApiError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            ApiError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(cause) = self {
            tracing::error!(cause = %cause, "internal error");
        }
        let mut res = HttpResponse::build(self.status_code());
        if let ApiError::Throttled(seconds) = self {
            res.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        res.json(ErrorBody {
            error: self.code(),
            message: self.to_string(),
        })
    }
}
