//! `GET /metrics`: Prometheus text format. Counts and sizes only, never contents or ids.
//!
//! Served to loopback clients when the server terminates TLS itself; with `metrics_token`
//! set, to anyone presenting it as a bearer token (needed behind a reverse proxy, where every
//! request arrives from loopback).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use actix_web::{HttpRequest, HttpResponse, web};

use super::ApiError;
use crate::app::AppState;
use crate::config::TlsMode;

fn allowed(req: &HttpRequest, state: &AppState) -> bool {
    match &state.config.metrics_token {
        Some(token) => req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| constant_time_eq(given.as_bytes(), token.expose().as_bytes())),
        None => {
            state.config.tls != TlsMode::Off
                && req.peer_addr().is_some_and(|a| a.ip().is_loopback())
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub async fn metrics(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if !allowed(&req, &state) {
        return Err(ApiError::NotFound);
    }
    let storage_bytes = state.db.run(|s| s.size_bytes()).await?;
    let m = &state.metrics;
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let rows: [(&str, &str, &str, u64); 11] = [
        (
            "saksi_connections_open",
            "gauge",
            "Open sync connections.",
            load(&m.connections_open),
        ),
        (
            "saksi_connections_total",
            "counter",
            "Sync connections opened.",
            load(&m.connections_total),
        ),
        (
            "saksi_documents_in_memory",
            "gauge",
            "Documents loaded in memory.",
            state.documents.loaded() as u64,
        ),
        (
            "saksi_sync_messages_received_total",
            "counter",
            "Sync messages received.",
            load(&m.messages_received),
        ),
        (
            "saksi_sync_messages_sent_total",
            "counter",
            "Sync messages sent.",
            load(&m.messages_sent),
        ),
        (
            "saksi_sync_bytes_received_total",
            "counter",
            "Bytes of sync messages received.",
            load(&m.bytes_received),
        ),
        (
            "saksi_sync_bytes_sent_total",
            "counter",
            "Bytes of sync messages sent.",
            load(&m.bytes_sent),
        ),
        (
            "saksi_changes_stored_total",
            "counter",
            "Changes stored durably.",
            load(&m.changes_stored),
        ),
        (
            "saksi_changes_refused_total",
            "counter",
            "Incoming changes refused by the write policy.",
            load(&m.changes_refused),
        ),
        (
            "saksi_logins_failed_total",
            "counter",
            "Failed sign-ins.",
            load(&m.logins_failed),
        ),
        (
            "saksi_storage_bytes",
            "gauge",
            "Size of the database.",
            storage_bytes,
        ),
    ];
    let mut body = String::new();
    for (name, kind, help, value) in rows {
        let _ = writeln!(
            body,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body))
}
