//! Who is calling: a device token from `Authorization: Bearer` (native clients) or from the
//! `saksi_session` cookie (the PWA, the console). Revoked devices, expired sessions and disabled
//! accounts are refused on every request, not only at login.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};

use super::ApiError;
use crate::accounts::token_hash;
use crate::app::AppState;
use crate::errors::Chain;
use crate::storage::{Device, User};

/// The session cookie's name.
pub const COOKIE: &str = "saksi_session";

/// A signed-in device and its user.
#[derive(Debug, Clone)]
pub struct AuthDevice {
    pub device: Device,
    pub user: User,
    /// True when the credentials came from the cookie (CSRF rules apply).
    pub via_cookie: bool,
}

/// The token in a request, and whether it came from the cookie.
pub fn request_token(req: &HttpRequest) -> Option<(String, bool)> {
    if let Some(value) = req.headers().get(header::AUTHORIZATION)
        && let Ok(value) = value.to_str()
        && let Some(token) = value.strip_prefix("Bearer ")
    {
        return Some((token.trim().to_owned(), false));
    }
    req.cookie(COOKIE).map(|c| (c.value().to_owned(), true))
}

/// Looks up and checks a device by token.
pub async fn authenticate(
    state: &Arc<AppState>,
    token: &str,
    via_cookie: bool,
) -> Result<AuthDevice, ApiError> {
    if token.is_empty() || token.len() > 128 {
        return Err(ApiError::Unauthenticated);
    }
    let hash = token_hash(token);
    let found = state
        .db
        .run(move |s| s.device_by_token(&hash))
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    check_device(state, found, via_cookie).await
}

/// Checks that a device may still act: not revoked, not expired, its user not disabled.
pub async fn check_device(
    state: &Arc<AppState>,
    (device, user): (Device, User),
    via_cookie: bool,
) -> Result<AuthDevice, ApiError> {
    let now = state.now();
    if device.revoked_at.is_some() {
        return Err(ApiError::DeviceRevoked);
    }
    if user.disabled {
        return Err(ApiError::Unauthenticated);
    }
    if device.expires_at <= now {
        return Err(ApiError::SessionExpired);
    }
    // Record when the device was last seen, at most every five minutes.
    if device
        .last_seen
        .is_none_or(|t| now.since(t) > Duration::from_secs(300))
    {
        let id = device.id.clone();
        if let Err(e) = state.db.run(move |s| s.touch_device(&id, now)).await {
            tracing::warn!(device = %device.id, error = %Chain(&e), "last-seen not recorded");
        }
    }
    Ok(AuthDevice {
        device,
        user,
        via_cookie,
    })
}

impl FromRequest for AuthDevice {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = request_token(req);
        Box::pin(async move {
            let state = state
                .ok_or_else(|| ApiError::Internal("application state missing".into()))?
                .into_inner();
            let (token, via_cookie) = token.ok_or(ApiError::Unauthenticated)?;
            authenticate(&state, &token, via_cookie).await
        })
    }
}

/// For cookie-authenticated state-changing requests: the request must come from this origin.
/// (The cookie is also `SameSite=Strict`; this is the second lock.)
pub fn same_origin(req: &HttpRequest) -> bool {
    let Some(host) = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
    else {
        return false;
    };
    match req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
    {
        Some(origin) => {
            let origin_host = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"))
                .unwrap_or("");
            origin_host == host
        }
        // Browsers send Origin on cross-origin requests and on WebSocket upgrades; a request
        // without it is same-origin or from a non-browser client.
        None => true,
    }
}
