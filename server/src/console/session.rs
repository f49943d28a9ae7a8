//! Signing in and out of the console, and the language setting.
//!
//! The sign-in form uses the same code as `POST /api/login` ([`crate::accounts::sign_in`]):
//! throttling, the audit entry and the device registration are identical; the device is named
//! "console (browser)" and the token goes only into the `saksi_session` cookie.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::words::Words;
use super::{Console, ConsoleError, LANG_COOKIE, page, posted_from_here, safe_next, see_other};
use crate::accounts::{SignIn, SignInError, sign_in, sign_out};
use crate::app::AppState;
use crate::http::ApiError;
use crate::http::api::{client_address, removal_cookie, session_cookie};
use crate::http::auth::{authenticate, request_token};

/// The name of devices registered by the console's sign-in form.
pub const CONSOLE_DEVICE_NAME: &str = "console (browser)";

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage<'a> {
    next: &'a str,
    username: &'a str,
    message: &'a str,
    w: Words,
}

#[derive(Debug, Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
}

pub async fn login_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<NextQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let next = safe_next(&query.next);
    // Already signed in as a reviewer: straight on.
    if let Some((token, via_cookie)) = request_token(&req)
        && let Ok(auth) = authenticate(&state, &token, via_cookie).await
        && auth.user.role.reviews()
    {
        return Ok(see_other(next));
    }
    page(&LoginPage {
        next,
        username: "",
        message: "",
        w: Words::of(&req),
    })
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

impl std::fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginForm")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

fn login_again(status: StatusCode, form: &LoginForm, message: &str, w: Words) -> HttpResponse {
    let body = LoginPage {
        next: safe_next(&form.next),
        username: &form.username,
        message,
        w,
    }
    .render()
    .unwrap_or_else(|_| message.to_owned());
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body)
}

pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, ConsoleError> {
    // No session yet, so no CSRF token: the origin check refuses forms posted from other sites
    // (login CSRF).
    if !posted_from_here(&req) {
        return Err(ConsoleError::Csrf);
    }
    let form = form.into_inner();
    let w = Words::of(&req);
    let address = client_address(&req, &state.config);
    let request = SignIn {
        username: form.username.trim(),
        password: &form.password,
        device_name: CONSOLE_DEVICE_NAME,
        renew: None,
        address: &address,
    };
    let signed_in = match sign_in(&state, request).await {
        Ok(s) => s,
        Err(SignInError::WrongCredentials) => {
            return Ok(login_again(
                StatusCode::UNAUTHORIZED,
                &form,
                w.t("err_wrong_login"),
                w,
            ));
        }
        Err(SignInError::Throttled(seconds)) => {
            return Ok(login_again(
                StatusCode::TOO_MANY_REQUESTS,
                &form,
                &w.t("err_throttled_login")
                    .replace("{s}", &seconds.to_string()),
                w,
            ));
        }
        Err(SignInError::Invalid(_)) => {
            return Ok(login_again(
                StatusCode::BAD_REQUEST,
                &form,
                w.t("err_enter_login"),
                w,
            ));
        }
        Err(e) => return Err(ApiError::from(e).into()),
    };
    if !signed_in.user.role.reviews() {
        // The password was right, but the console is not for this role: end the new session
        // at once rather than leave an unused device behind.
        if let Ok(auth) = authenticate(&state, &signed_in.token, true).await {
            sign_out(&state, &auth.device, &auth.user).await?;
        }
        return Ok(login_again(
            StatusCode::FORBIDDEN,
            &form,
            w.t("err_console_role"),
            w,
        ));
    }
    Ok(HttpResponse::SeeOther()
        .cookie(session_cookie(&state, &signed_in.token))
        .insert_header((
            actix_web::http::header::LOCATION,
            safe_next(&form.next).to_owned(),
        ))
        .finish())
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

pub async fn logout(
    req: HttpRequest,
    who: Console,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    who.check_form(&req, &form.csrf)?;
    sign_out(&who.state, &who.auth.device, &who.auth.user).await?;
    Ok(HttpResponse::SeeOther()
        .cookie(removal_cookie())
        .insert_header((actix_web::http::header::LOCATION, "/console/login"))
        .finish())
}

#[derive(Debug, Deserialize)]
pub struct LangForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    lang: String,
    #[serde(default)]
    back: String,
}

pub async fn set_lang(
    req: HttpRequest,
    who: Console,
    form: web::Form<LangForm>,
) -> Result<HttpResponse, ConsoleError> {
    who.check_form(&req, &form.csrf)?;
    let lang = match form.lang.as_str() {
        "en" | "km" => form.lang.clone(),
        _ => return Err(ConsoleError::BadRequest("Choose English or Khmer.".into())),
    };
    let cookie = Cookie::build(LANG_COOKIE, lang)
        .path("/console")
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(time::Duration::days(365))
        .finish();
    Ok(HttpResponse::SeeOther()
        .cookie(cookie)
        .insert_header((
            actix_web::http::header::LOCATION,
            safe_next(&form.back).to_owned(),
        ))
        .finish())
}
