//! Destroying a record from the console: purge (after the grace period, or at once for an
//! admin who says so), undo a pending purge, discard a draft. See [`crate::purge`].

use actix_web::{HttpRequest, HttpResponse, web};
use saksi_shared::DocumentId;
use serde::Deserialize;

use super::{Console, ConsoleError, see_other};
use crate::errors::Chain;
use crate::purge::{self, PurgeError};
use crate::storage::PurgeReason;

#[derive(Debug, Deserialize)]
pub struct PurgeForm {
    csrf: String,
    #[serde(default)]
    reason: String,
    /// The coordinator ticked "I understand".
    #[serde(default)]
    confirm: String,
    /// An admin skips the grace period.
    #[serde(default)]
    now: String,
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: String,
    #[serde(default)]
    confirm: String,
}

fn purge_error(e: PurgeError) -> ConsoleError {
    match e {
        PurgeError::NotFound => ConsoleError::NotFound,
        PurgeError::IsCase | PurgeError::NotADraft | PurgeError::Forbidden => {
            ConsoleError::BadRequest(e.to_string())
        }
        other => ConsoleError::Internal(Chain(&other).to_string()),
    }
}

/// `POST /console/records/{id}/purge`: schedules the purge (or, for an admin who ticked it,
/// destroys the record now).
pub async fn purge(
    req: HttpRequest,
    who: Console,
    path: web::Path<String>,
    form: web::Form<PurgeForm>,
) -> Result<HttpResponse, ConsoleError> {
    who.check_form(&req, &form.csrf)?;
    let id = DocumentId::parse(&path).map_err(|_| ConsoleError::NotFound)?;
    let reason = PurgeReason::parse(form.reason.trim())
        .filter(|r| *r != PurgeReason::Discarded)
        .ok_or_else(|| ConsoleError::BadRequest("Choose why the record is purged.".into()))?;
    if form.confirm != "yes" {
        return Err(ConsoleError::BadRequest(
            "Tick the box to confirm: a purged record cannot be restored.".into(),
        ));
    }
    let device = who.auth.device.id.clone();
    if form.now == "yes" {
        if who.auth.user.role != saksi_shared::Role::Admin {
            return Err(ConsoleError::Forbidden);
        }
        purge::destroy(&who.state, id, who.username(), Some(&device), reason)
            .await
            .map_err(purge_error)?;
        return Ok(see_other("/console/records?done=purged"));
    }
    purge::schedule(&who.state, id, who.username(), Some(&device), reason)
        .await
        .map_err(purge_error)?;
    Ok(see_other(&format!(
        "/console/records/{id}?done=purge_scheduled"
    )))
}

/// `POST /console/records/{id}/purge/cancel`: undoes a pending purge.
pub async fn cancel(
    req: HttpRequest,
    who: Console,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    who.check_form(&req, &form.csrf)?;
    let id = DocumentId::parse(&path).map_err(|_| ConsoleError::NotFound)?;
    let device = who.auth.device.id.clone();
    if !purge::cancel(&who.state, id, who.username(), Some(&device))
        .await
        .map_err(purge_error)?
    {
        return Err(ConsoleError::BadRequest(
            "No purge is waiting for this record.".into(),
        ));
    }
    Ok(see_other(&format!(
        "/console/records/{id}?done=purge_cancelled"
    )))
}

/// `POST /console/records/{id}/discard`: a coordinator destroys a draft at once.
pub async fn discard(
    req: HttpRequest,
    who: Console,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    who.check_form(&req, &form.csrf)?;
    let id = DocumentId::parse(&path).map_err(|_| ConsoleError::NotFound)?;
    if form.confirm != "yes" {
        return Err(ConsoleError::BadRequest(
            "Tick the box to confirm: a discarded draft cannot be restored.".into(),
        ));
    }
    let status = who
        .state
        .db
        .run(move |s| s.document(&id))
        .await?
        .map(|r| r.status);
    match status.as_deref() {
        None => return Err(ConsoleError::NotFound),
        Some("draft") => {}
        Some(_) => return Err(purge_error(PurgeError::NotADraft)),
    }
    let device = who.auth.device.id.clone();
    // Still a draft when its document task stops taking changes (a phone may submit it
    // meanwhile).
    let check: purge::Check = Box::new(|record| {
        record
            .and_then(|r| r.meta())
            .is_some_and(|m| m.status == saksi_shared::Status::Draft)
    });
    purge::destroy_checked(
        &who.state,
        id,
        who.username(),
        Some(&device),
        PurgeReason::Discarded,
        Some(check),
    )
    .await
    .map_err(|e| match e {
        PurgeError::Forbidden => purge_error(PurgeError::NotADraft),
        other => purge_error(other),
    })?;
    Ok(see_other("/console/records?done=discarded"))
}
