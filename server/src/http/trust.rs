//! The local CA's certificate for phones to install (`tls = "local_ca"`): `/ca.pem` (PEM, for
//! desktops and iOS) and `/ca.crt` (DER, which Android's certificate installer expects). Public:
//! a phone fetches it before it has an account, and a certificate is no secret. Any other TLS
//! mode answers 404.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use crate::app::AppState;

pub async fn ca_pem(state: web::Data<AppState>) -> HttpResponse {
    match &state.trust {
        Some(trust) => download(
            "application/x-pem-file",
            "saksi-local-ca.pem",
            trust.ca_pem.clone().into_bytes(),
        ),
        None => not_found(),
    }
}

pub async fn ca_der(state: web::Data<AppState>) -> HttpResponse {
    match &state.trust {
        Some(trust) => download(
            "application/x-x509-ca-cert",
            "saksi-local-ca.crt",
            trust.ca_der.clone(),
        ),
        None => not_found(),
    }
}

fn download(content_type: &'static str, name: &str, body: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}

fn not_found() -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("text/plain; charset=utf-8")
        .body("this server has no local certificate authority (tls is not \"local_ca\")")
}
