//! Who may read a record, and which changes a user may make to it.
//!
//! The server runs [`check_change`] on every incoming change *before* it is stored: a change is
//! accepted only if every operation in it is something the sender's role may do to this record.
//! The rules, in the record's terms:
//!
//! - **Attribution.** A change that names its author in the commit message must name the sender
//!   and the sending device. (That each actor id belongs to one device is checked by the server,
//!   which keeps the binding.)
//! - **Creation.** A new document must become a complete record of a kind the sender may create,
//!   in a case the sender may write to (a case document names itself), created by the sender,
//!   in `draft`.
//! - **Immutable identity.** `kind`, `case`, `created_by` and `created_at` never change.
//! - **Fields.** Team members and reviewers may write catalogue fields with values of the right
//!   type; nobody but reviewers may write to an approved or archived record (as the sender saw
//!   it: an edit made offline, concurrently with the approval or archiving, is kept).
//! - **Workflow.** A status change must be an allowed step for the sender's role, from the status
//!   the sender saw when making it (so two monitors submitting the same record offline are both
//!   fine).
//! - **Review trail.** Entries may only be appended, must name the sender as author with the
//!   sender's role, and never change afterwards.
//! - **Attachments.** A file's entry names the sender and the sending device as who captured
//!   it, holds valid values (SHA-256, size, media type, a name without path separators or
//!   control characters), and never changes afterwards but for its caption; only who attached
//!   it, or a coordinator, removes it; the `attachments` map is made once (two made
//!   concurrently are both read).

use std::collections::{HashMap, HashSet};

use automerge::{ActorId, Automerge, Change, Cursor, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use serde::{Deserialize, Serialize};

use crate::attachment::{self, ATTACHMENTS};
use crate::catalogue::{FieldType, MAX_LIST_ITEMS, RecordKind};
use crate::changes::{Action, Place, touches_decoded};
use crate::id::DocumentId;
use crate::record::{
    CASE, CREATED_AT, CREATED_BY, Editor, FIELDS, FieldInput, KIND, MAX_COMMENT_CHARS, REVIEW,
    REVIEW_KEYS, RecordMeta, RecordRef, SCHEMA_VERSION, STATUS, check_scalar,
};
use crate::schema::CURRENT_SCHEMA_VERSION;
use crate::structure::{self, Earlier, Flaw, NoneEarlier};
use crate::sync::{ChangeGate, Effects, Pending, Verdict};
use crate::who::{DeviceId, Who};
use crate::workflow::{ReviewAction, Role, Status, may_reach, transition};

/// The signed-in sender of a change, as the server knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub who: Who,
    pub role: Role,
    /// The cases this user may write records in: their teams' cases, or every case for
    /// coordinators and admins.
    pub cases: HashSet<DocumentId>,
}

impl Principal {
    /// The principal of `editor` (the same user, device and role) writing in `cases`.
    pub fn of(editor: &Editor, cases: HashSet<DocumentId>) -> Principal {
        Principal {
            who: editor.who.clone(),
            role: editor.role,
            cases,
        }
    }

    /// The author, the case team, coordinators and admins may read a record.
    pub fn may_read(&self, meta: &RecordMeta) -> bool {
        self.role.reviews() || meta.created_by == self.who.user || self.cases.contains(&meta.case)
    }

    /// The case team, coordinators and admins may write to a record.
    pub fn may_write(&self, meta: &RecordMeta) -> bool {
        self.role.reviews() || self.cases.contains(&meta.case)
    }
}

/// Why a change was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    /// The change claims another user or device, or uses an actor bound to another device.
    ForgedAttribution,
    /// The sender may not write to this record (not in the case team), or create this kind.
    NotAllowed,
    /// The document is not a complete record after its creating changes.
    IncompleteRecord,
    /// A value of the wrong type, an unknown choice or field, or too long.
    InvalidValue,
    /// An attempt to change what never changes (identity keys, written review entries).
    Immutable,
    /// A status step the sender's role may not take.
    Workflow,
    /// A review entry that names someone else, or a role or action the sender does not have.
    ReviewForgery,
    /// The record is archived.
    Archived,
    /// An operation outside the record schema.
    OutsideSchema,
    /// Not a well-formed automerge change (see [`crate::structure`]), or one that would leave
    /// the document unloadable.
    Malformed,
}

/// The refusal of a new record in a case the sender is not a member of. A server answers an
/// existing id that the sender may not read with it too, so that such an id looks unknown.
pub const NOT_A_MEMBER: &str = "the record names a case the sender is not a member of";

/// A refused change: a code for logs and clients, and a detail without record contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{code:?}: {detail}")]
pub struct Refusal {
    pub code: RefusalCode,
    pub detail: String,
}

fn refuse(code: RefusalCode, detail: impl Into<String>) -> Refusal {
    Refusal {
        code,
        detail: detail.into(),
    }
}

/// Checks that the attribution in `change`'s message, if any, names `who`.
pub fn check_attribution(change: &Change, who: &Principal) -> Result<(), Refusal> {
    match Who::check_note(change.message()) {
        Ok(None) => Ok(()),
        Ok(Some(note)) if note.user == who.who.user && note.device == who.who.device => Ok(()),
        Ok(Some(_)) => Err(refuse(
            RefusalCode::ForgedAttribution,
            "commit message names another user or device",
        )),
        Err(e) => Err(refuse(
            RefusalCode::ForgedAttribution,
            format!("malformed commit message: {e}"),
        )),
    }
}

/// Checks one change against the document it is about to be applied to.
///
/// `doc_id` is the id of the document (a case document must name itself as its case).
pub fn check_change(
    doc_id: &DocumentId,
    doc: &Automerge,
    change: &Change,
    who: &Principal,
) -> Result<(), Refusal> {
    match judge_guarded(doc_id, doc, None, change, who) {
        Ok(_) => Ok(()),
        Err(Stop::Refuse(refusal)) => Err(refusal),
        Err(Stop::NeedsApplied) => unreachable!("nothing is pending"),
    }
}

/// Why a check stopped: a refusal, or (checking ahead of pending changes) a verdict that could
/// depend on them.
enum Stop {
    Refuse(Refusal),
    NeedsApplied,
}

impl From<Refusal> for Stop {
    fn from(refusal: Refusal) -> Self {
        Stop::Refuse(refusal)
    }
}

/// Checks `change` against `doc`, or, with `ahead`, against `doc` once the pending changes of
/// the same batch are applied. Ahead of pending changes the verdict is the same as it would be
/// with them applied, or `NeedsApplied`: the record must exist already, and the pending changes
/// must neither write to the root (status, schema version) nor create objects, so that every
/// object keeps its place; "as the sender saw it" reads the document at the change's
/// dependencies with pending ones replaced by theirs ([`Pending::doc_deps`]), which shows the
/// same status since no pending change touches it; length limits are judged with everything
/// pending counted as inserted (an upper bound), and a change over the limit by that bound is
/// judged again once the pending changes are applied.
fn judge(
    doc_id: &DocumentId,
    doc: &Automerge,
    ahead: Option<&Pending>,
    change: &Change,
    who: &Principal,
) -> Result<Effects, Stop> {
    let ahead = ahead.filter(|p| !p.is_empty());
    let earlier: &dyn Earlier = match ahead {
        Some(pending) => pending,
        None => &NoneEarlier,
    };
    // Decoded once, for the structure checks and for what the change touches.
    let expanded = change.decode();
    match structure::check(doc, earlier, change, &expanded) {
        Ok(()) => {}
        Err(Flaw::Unknown(_)) if ahead.is_some() => return Err(Stop::NeedsApplied),
        Err(Flaw::Unknown(detail) | Flaw::Malformed(detail)) => {
            return Err(refuse(RefusalCode::Malformed, detail).into());
        }
    }
    check_attribution(change, who)?;
    let touched = touches_decoded(doc, change, &expanded);
    let effects = effects_of(&touched);
    let existing = RecordRef::new(doc);
    let meta = existing.meta();
    if let Some(pending) = ahead
        && (meta.is_none()
            || pending.touches_root()
            || pending.makes_objects()
            || touched.iter().any(|t| t.place == Place::Unknown))
    {
        return Err(Stop::NeedsApplied);
    }
    match meta {
        None if doc.get(ROOT, KIND).ok().flatten().is_some() => Err(refuse(
            RefusalCode::IncompleteRecord,
            "the document is not a valid record",
        )
        .into()),
        None => Ok(check_creation(doc_id, &touched, who).map(|()| effects)?),
        Some(meta) => {
            let restore_status = check_edit(doc, ahead, change, &meta, &touched, who)?;
            Ok(Effects {
                restore_status,
                ..effects
            })
        }
    }
}

/// What a change does that later checks in the same batch depend on.
fn effects_of(touched: &[crate::changes::Touch]) -> Effects {
    let mut effects = Effects::default();
    let mut inserts: HashMap<String, usize> = HashMap::new();
    for t in touched {
        effects.touches_root |= t.place == Place::Root;
        effects.makes_objects |= matches!(t.action, Action::Make(_));
        if let (Place::FieldContent(field), true, Action::Put(v)) = (&t.place, t.insert, &t.action)
        {
            *inserts.entry(field.clone()).or_default() +=
                v.as_str().map_or(1, |s| s.chars().count().max(1));
        }
    }
    effects.inserts = inserts.into_iter().collect();
    effects
}

/// Checks that a document created by a batch of changes is a complete record.
pub fn check_created(doc_id: &DocumentId, doc: &Automerge) -> Result<RecordMeta, Refusal> {
    let record = RecordRef::new(doc);
    let meta = record.meta().ok_or_else(|| {
        refuse(
            RefusalCode::IncompleteRecord,
            "a new document must set kind, case and created_by",
        )
    })?;
    if meta.kind == RecordKind::Case && meta.case != *doc_id {
        return Err(refuse(
            RefusalCode::IncompleteRecord,
            "a case document must name itself as its case",
        ));
    }
    if record.view().is_err() {
        return Err(refuse(
            RefusalCode::IncompleteRecord,
            "a new record must have its fields and review containers",
        ));
    }
    Ok(meta)
}

fn scalar_str(v: &ScalarValue) -> Option<&str> {
    v.as_str()
}

/// An integer stored as an integer (not a float, counter or timestamp).
fn exact_int(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::Int(n) => Some(*n),
        ScalarValue::Uint(n) => i64::try_from(*n).ok(),
        _ => None,
    }
}

fn check_creation(
    doc_id: &DocumentId,
    touched: &[crate::changes::Touch],
    who: &Principal,
) -> Result<(), Refusal> {
    // First the identity keys, which decide the rules for the rest.
    let mut kind = None;
    for t in touched {
        if t.place != Place::Root {
            continue;
        }
        let key = t.key.as_deref().unwrap_or_default();
        match (key, &t.action) {
            (KIND, Action::Put(v)) => {
                let k = scalar_str(v)
                    .and_then(RecordKind::parse)
                    .ok_or_else(|| refuse(RefusalCode::InvalidValue, "unknown record kind"))?;
                if !who.role.may_create(k) {
                    return Err(refuse(
                        RefusalCode::NotAllowed,
                        format!("a {} may not create a {}", who.role.as_str(), k.as_str()),
                    ));
                }
                kind = Some(k);
            }
            (CASE, Action::Put(v)) => {
                let case = scalar_str(v)
                    .and_then(|s| DocumentId::parse(s).ok())
                    .ok_or_else(|| {
                        refuse(RefusalCode::InvalidValue, "case is not a document id")
                    })?;
                // A case document names itself; anything else must be in one of the sender's cases.
                if case != *doc_id && !who.cases.contains(&case) {
                    return Err(refuse(RefusalCode::NotAllowed, NOT_A_MEMBER));
                }
            }
            (CREATED_BY, Action::Put(v)) => {
                if scalar_str(v) != Some(who.who.user.as_str()) {
                    return Err(refuse(
                        RefusalCode::ForgedAttribution,
                        "created_by must name the sender",
                    ));
                }
            }
            (CREATED_AT, Action::Put(v)) => {
                if exact_int(v).is_none() {
                    return Err(refuse(
                        RefusalCode::InvalidValue,
                        "created_at must be a number",
                    ));
                }
            }
            (SCHEMA_VERSION, Action::Put(v)) => {
                if !v
                    .as_u64()
                    .is_some_and(|n| (1..=CURRENT_SCHEMA_VERSION).contains(&n))
                {
                    return Err(refuse(
                        RefusalCode::InvalidValue,
                        "unsupported schema_version",
                    ));
                }
            }
            (STATUS, Action::Put(v)) => {
                if scalar_str(v) != Some(Status::Draft.as_str()) {
                    return Err(refuse(
                        RefusalCode::Workflow,
                        "a new record starts as a draft",
                    ));
                }
            }
            (FIELDS, Action::Make(ObjType::Map))
            | (REVIEW, Action::Make(ObjType::List))
            | (ATTACHMENTS, Action::Make(ObjType::Map)) => {}
            _ => {
                return Err(refuse(
                    RefusalCode::OutsideSchema,
                    format!("unexpected operation on root key `{key}`"),
                ));
            }
        }
    }
    if touched.is_empty() {
        // An empty change (automerge-repo makes one when it creates a document) carries nothing.
        return Ok(());
    }
    let kind = kind.ok_or_else(|| {
        refuse(
            RefusalCode::IncompleteRecord,
            "the first change of a record must set its kind",
        )
    })?;
    let mut lengths = HashMap::new();
    for t in touched.iter().filter(|t| t.place != Place::Root) {
        check_field_op(kind, t, None, None, &mut lengths).map_err(|stop| match stop {
            Stop::Refuse(refusal) => refusal,
            Stop::NeedsApplied => unreachable!("nothing is pending while creating"),
        })?;
    }
    Ok(())
}

fn check_edit(
    doc: &Automerge,
    ahead: Option<&Pending>,
    change: &Change,
    meta: &RecordMeta,
    touched: &[crate::changes::Touch],
    who: &Principal,
) -> Result<Option<String>, Stop> {
    // Even a change that touches nothing (an empty one) comes only from a writer: it still
    // enters the document's history.
    if !who.may_write(meta) {
        return Err(Stop::from(refuse(
            RefusalCode::NotAllowed,
            "the sender is not in this record's case team",
        )));
    }
    if touched.is_empty() {
        return Ok(None);
    }
    let mut restore_status = None;
    // Judged, like a workflow step, from the record as the sender saw it (at the change's
    // deps): an edit made offline before the sender could know of the archiving is not lost.
    let seen_at = match ahead {
        Some(pending) => pending.doc_deps(change),
        None => change.deps().to_vec(),
    };
    let closed_when_made = match doc.get_at(ROOT, STATUS, &seen_at) {
        Ok(Some((Value::Scalar(s), _))) => s
            .as_str()
            .and_then(Status::parse)
            .filter(|s| !s.open_for_field_staff()),
        Ok(_) => None,
        Err(_) => Some(meta.status).filter(|s| !s.open_for_field_staff()),
    };
    if let Some(status) = closed_when_made
        && !who.role.reviews()
        && !only_withdraws_consent(touched)
    {
        return Err(Stop::from(refuse(
            RefusalCode::Archived,
            format!("the record is {}", status.as_str()),
        )));
    }
    let mut lengths: HashMap<String, Lengths> = HashMap::new();
    // Review entries made by this change (by counter), with the keys each one set.
    let mut entries: HashMap<u64, Vec<String>> = HashMap::new();
    // File entries likewise.
    let mut files: HashMap<u64, Vec<String>> = HashMap::new();
    for t in touched {
        match (&t.place, t.key.as_deref(), &t.action) {
            (Place::Root, Some(STATUS), Action::Put(v)) => {
                let to = scalar_str(v)
                    .and_then(Status::parse)
                    .ok_or_else(|| refuse(RefusalCode::InvalidValue, "unknown status"))?;
                // The step is judged from what the sender saw: the status at the change's deps.
                let seen = doc
                    .get_all_at(ROOT, STATUS, &seen_at)
                    .map_err(|_| refuse(RefusalCode::Workflow, "status history unavailable"))?;
                let allowed = seen.iter().any(|(value, _)| {
                    let from = match value {
                        Value::Scalar(s) => s.as_str().and_then(Status::parse),
                        Value::Object(_) => None,
                    };
                    from.is_some_and(|from| transition(from, to, who.role).is_some())
                });
                if !allowed {
                    return Err(Stop::from(refuse(
                        RefusalCode::Workflow,
                        format!(
                            "a {} may not move this record to {}",
                            who.role.as_str(),
                            to.as_str()
                        ),
                    )));
                }
                // automerge's winner among concurrent writes is the one with the higher
                // counter, which a change based on old heads can choose. A step the sender's
                // role could not take (approved, archived, ...), made since what the sender
                // saw, must not be overruled by it: the step is accepted (refusing it would
                // refuse everything the sender wrote after it) and the reviewer's status is
                // put back once it is applied ([`Effects::restore_status`]).
                let seen_ids: HashSet<automerge::ObjId> =
                    seen.into_iter().map(|(_, id)| id).collect();
                // The status shown now is the one to keep, if the sender did not see it.
                let now = doc
                    .get(ROOT, STATUS)
                    .map_err(|_| refuse(RefusalCode::Workflow, "status unavailable"))?;
                restore_status = now
                    .filter(|(_, id)| !seen_ids.contains(id))
                    .and_then(|(value, _)| match value {
                        Value::Scalar(s) => s.as_str().and_then(Status::parse),
                        Value::Object(_) => None,
                    })
                    .filter(|s| !may_reach(*s, who.role))
                    .map(|s| s.as_str().to_owned());
            }
            (Place::Root, Some(SCHEMA_VERSION), Action::Put(v)) => {
                let current = RecordRef::new(doc).schema_version();
                if !v
                    .as_u64()
                    .is_some_and(|n| n > current && n <= CURRENT_SCHEMA_VERSION)
                {
                    return Err(Stop::from(refuse(
                        RefusalCode::InvalidValue,
                        "schema_version may only grow",
                    )));
                }
            }
            (Place::Root, Some(ATTACHMENTS), Action::Make(ObjType::Map)) => {
                // Made with the first file. Two made concurrently are both read; one made by
                // someone who saw another would hide its files.
                let seen = doc
                    .get_all_at(ROOT, ATTACHMENTS, &seen_at)
                    .map_err(|_| refuse(RefusalCode::Immutable, "attachments unavailable"))?;
                if !seen.is_empty() {
                    return Err(Stop::from(refuse(
                        RefusalCode::Immutable,
                        "the record's attachments cannot be replaced",
                    )));
                }
            }
            (Place::Root, key, _) => {
                return Err(Stop::from(refuse(
                    RefusalCode::Immutable,
                    format!("root key `{}` cannot be changed", key.unwrap_or_default()),
                )));
            }
            (Place::Attachments, Some(id), Action::Make(ObjType::Map)) => {
                attachment::check_id(id)
                    .map_err(|e| refuse(RefusalCode::InvalidValue, e.to_string()))?;
                if attachment::find(doc, id).is_some() {
                    return Err(Stop::from(refuse(
                        RefusalCode::Immutable,
                        "a file's entry cannot be replaced",
                    )));
                }
                files.insert(t.counter, Vec::new());
            }
            (Place::Attachments, Some(id), Action::Delete) => {
                // The person who attached a file, or a coordinator, removes it.
                match attachment::find(doc, id)
                    .and_then(|(_, entry)| attachment::read_entry(doc, id, &entry))
                {
                    Some(file) if file.by != who.who.user && !who.role.reviews() => {
                        return Err(Stop::from(refuse(
                            RefusalCode::NotAllowed,
                            "only who attached a file, or a coordinator, may remove it",
                        )));
                    }
                    None if ahead.is_some() => return Err(Stop::NeedsApplied),
                    _ => {}
                }
            }
            (Place::Attachments, _, _) => {
                return Err(Stop::from(refuse(
                    RefusalCode::OutsideSchema,
                    "the attachments map holds file entries only",
                )));
            }
            (
                Place::AttachmentEntry {
                    created_here: true, ..
                },
                Some(key),
                Action::Put(v),
            ) => {
                check_attachment_value(key, v, who)?;
                let keys = t
                    .object
                    .and_then(|entry| files.get_mut(&entry))
                    .ok_or_else(|| {
                        refuse(RefusalCode::InvalidValue, "a file entry out of place")
                    })?;
                if keys.iter().any(|k| k == key) {
                    return Err(Stop::from(refuse(
                        RefusalCode::InvalidValue,
                        format!("a file entry sets `{key}` twice"),
                    )));
                }
                keys.push(key.to_owned());
            }
            (
                Place::AttachmentEntry {
                    created_here: false,
                    ..
                },
                Some("caption"),
                Action::Put(_) | Action::Delete,
            ) => {
                if let Action::Put(v) = &t.action {
                    check_attachment_value("caption", v, who)?;
                }
            }
            (Place::AttachmentEntry { .. }, _, _) => {
                return Err(Stop::from(refuse(
                    RefusalCode::Immutable,
                    "a file's entry cannot change once written, except its caption",
                )));
            }
            (Place::Review, None, Action::Make(ObjType::Map)) if t.insert => {
                entries.insert(t.counter, Vec::new());
            }
            (Place::Review, _, _) => {
                return Err(Stop::from(refuse(
                    RefusalCode::Immutable,
                    "review entries can only be appended",
                )));
            }
            (Place::ReviewEntry { created_here: true }, Some(key), Action::Put(v)) => {
                check_review_value(key, v, meta.kind, who)?;
                let keys = t
                    .object
                    .and_then(|entry| entries.get_mut(&entry))
                    .ok_or_else(|| {
                        refuse(RefusalCode::ReviewForgery, "a review entry out of place")
                    })?;
                if keys.iter().any(|k| k == key) {
                    return Err(Stop::from(refuse(
                        RefusalCode::ReviewForgery,
                        format!("a review entry sets `{key}` twice"),
                    )));
                }
                keys.push(key.to_owned());
            }
            (Place::ReviewEntry { .. }, _, _) => {
                return Err(Stop::from(refuse(
                    RefusalCode::Immutable,
                    "a review entry cannot change once written",
                )));
            }
            _ => check_field_op(meta.kind, t, Some(doc), ahead, &mut lengths)?,
        }
    }
    for keys in files.values() {
        if attachment::REQUIRED_KEYS
            .iter()
            .any(|k| !keys.iter().any(|key| key == k))
        {
            return Err(Stop::from(refuse(
                RefusalCode::IncompleteRecord,
                format!(
                    "every new file entry must name {}",
                    attachment::REQUIRED_KEYS.join(", ")
                ),
            )));
        }
    }
    for keys in entries.values() {
        if ["author", "role", "action"]
            .iter()
            .any(|k| !keys.iter().any(|key| key == k))
        {
            return Err(Stop::from(refuse(
                RefusalCode::ReviewForgery,
                "every new review entry must name its author, role and action",
            )));
        }
    }
    Ok(restore_status)
}

/// Checks one value of a new file entry (or a caption written later).
fn check_attachment_value(key: &str, v: &ScalarValue, who: &Principal) -> Result<(), Refusal> {
    let invalid = |e: attachment::EntryError| refuse(RefusalCode::InvalidValue, e.to_string());
    let text = || {
        scalar_str(v).ok_or_else(|| {
            refuse(
                RefusalCode::InvalidValue,
                format!("a file entry's `{key}` is text"),
            )
        })
    };
    match key {
        "sha256" => attachment::check_sha256(text()?).map_err(invalid),
        "size" => exact_int(v)
            .and_then(|n| u64::try_from(n).ok())
            .ok_or(attachment::EntryError::Size)
            .and_then(attachment::check_size)
            .map_err(invalid),
        "type" => attachment::check_media_type(text()?).map_err(invalid),
        "name" => attachment::check_name(text()?).map_err(invalid),
        "caption" => attachment::check_caption(text()?).map_err(invalid),
        "captured_at" => exact_int(v)
            .map(|_| ())
            .ok_or(attachment::EntryError::CapturedAt)
            .map_err(invalid),
        "metadata" => text()
            .ok()
            .and_then(attachment::Metadata::parse)
            .map(|_| ())
            .ok_or(attachment::EntryError::Metadata)
            .map_err(invalid),
        "by" if scalar_str(v) == Some(who.who.user.as_str()) => Ok(()),
        "device" if scalar_str(v) == Some(who.who.device.as_str()) => Ok(()),
        "by" | "device" => Err(refuse(
            RefusalCode::ForgedAttribution,
            "a file is attached by the sender, on the sending device",
        )),
        _ => Err(refuse(
            RefusalCode::OutsideSchema,
            format!("file entries have no key `{key}`"),
        )),
    }
}

/// Whether a change only appends review entries saying that consent was withdrawn: a liaison
/// may record that on a closed (approved, archived) family statement too.
fn only_withdraws_consent(touched: &[crate::changes::Touch]) -> bool {
    let consent = ReviewAction::WithdrawConsent.as_str();
    touched
        .iter()
        .all(|t| match (&t.place, t.key.as_deref(), &t.action) {
            (Place::Review, None, Action::Make(ObjType::Map)) => t.insert,
            (Place::ReviewEntry { created_here: true }, Some("action"), Action::Put(v)) => {
                scalar_str(v) == Some(consent)
            }
            (Place::ReviewEntry { created_here: true }, Some(_), Action::Put(_)) => true,
            _ => false,
        })
        && {
            // Every entry made says so (none is a bare comment).
            let made = touched.iter().filter(|t| t.place == Place::Review).count();
            let said = touched
                .iter()
                .filter(|t| t.key.as_deref() == Some("action"))
                .count();
            made > 0 && made == said
        }
}

fn check_review_value(
    key: &str,
    v: &ScalarValue,
    kind: RecordKind,
    who: &Principal,
) -> Result<(), Refusal> {
    let ok = match key {
        "author" => scalar_str(v) == Some(who.who.user.as_str()),
        "role" => scalar_str(v) == Some(who.role.as_str()),
        "action" => scalar_str(v)
            .and_then(ReviewAction::parse)
            .is_some_and(|a| {
                a.allowed_for(who.role)
                    && (a != ReviewAction::WithdrawConsent || kind == RecordKind::FamilyStatement)
            }),
        "text" => scalar_str(v).is_some_and(|s| s.chars().count() <= MAX_COMMENT_CHARS),
        "at" => exact_int(v).is_some(),
        _ => false,
    };
    if ok {
        Ok(())
    } else if REVIEW_KEYS.contains(&key) {
        Err(refuse(
            RefusalCode::ReviewForgery,
            format!("review entry `{key}` does not match the sender"),
        ))
    } else {
        Err(refuse(
            RefusalCode::OutsideSchema,
            format!("review entries have no key `{key}`"),
        ))
    }
}

/// Checks an operation on `fields` or inside a field container. `doc` is the current document
/// (absent while creating). `lengths` accumulates inserted and deleted elements per container.
fn check_field_op(
    kind: RecordKind,
    t: &crate::changes::Touch,
    doc: Option<&Automerge>,
    ahead: Option<&Pending>,
    lengths: &mut HashMap<String, Lengths>,
) -> Result<(), Stop> {
    let def = kind.def();
    let unknown = |field: &str| {
        refuse(
            RefusalCode::InvalidValue,
            format!("`{field}` is not a field of {}", kind.as_str()),
        )
    };
    match (&t.place, t.key.as_deref(), &t.action) {
        (Place::Fields, Some(field), action) => {
            let f = def.field(field).ok_or_else(|| unknown(field))?;
            match (f.field_type, action) {
                (FieldType::LongText, Action::Make(ObjType::Text))
                | (FieldType::List, Action::Make(ObjType::List)) => {
                    // Containers are made with the record, or by a migration for a new field.
                    let exists = doc.is_some_and(|d| field_container(d, field).is_some());
                    if exists {
                        return Err(Stop::from(refuse(
                            RefusalCode::Immutable,
                            format!("`{field}` already has its container"),
                        )));
                    }
                    Ok(())
                }
                (FieldType::LongText | FieldType::List, _) => Err(Stop::from(refuse(
                    RefusalCode::InvalidValue,
                    format!("`{field}` is edited in place, not replaced"),
                ))),
                (_, Action::Delete) => Ok(()),
                (_, Action::Put(v)) => {
                    let input = if let Some(s) = v.as_str() {
                        FieldInput::Text(s.to_owned())
                    } else if let Some(n) = exact_int(v) {
                        FieldInput::Number(n)
                    } else {
                        return Err(Stop::from(refuse(
                            RefusalCode::InvalidValue,
                            format!("`{field}` takes text or a number"),
                        )));
                    };
                    check_scalar(f, &input)
                        .map_err(|e| refuse(RefusalCode::InvalidValue, e.to_string()).into())
                }
                _ => Err(Stop::from(refuse(
                    RefusalCode::InvalidValue,
                    format!("`{field}` holds a single value"),
                ))),
            }
        }
        (Place::FieldContent(field), None, action) => {
            let f = def.field(field).ok_or_else(|| unknown(field))?;
            let container = doc.and_then(|d| field_container(d, field));
            let entry = lengths.entry(field.clone()).or_default();
            match (f.field_type, action) {
                (FieldType::LongText | FieldType::List, Action::Delete) if !t.insert => {
                    // Only an element that is there shrinks the container, once: deleting
                    // one already deleted (or twice) makes no room.
                    if let Some(elem) = &t.elem
                        && (entry.made.contains(elem)
                            || container
                                .as_ref()
                                .is_some_and(|(d, obj)| visible(d, obj, elem)))
                    {
                        entry.deleted.insert(elem.clone());
                    }
                }
                (FieldType::LongText, Action::Put(v)) if t.insert => {
                    let s = v.as_str().ok_or_else(|| {
                        refuse(RefusalCode::InvalidValue, "text holds characters")
                    })?;
                    entry.inserted += s.chars().count();
                    entry.made.insert(t.id.clone());
                }
                (FieldType::List, Action::Put(v)) => {
                    let s = v
                        .as_str()
                        .ok_or_else(|| refuse(RefusalCode::InvalidValue, "list items are text"))?;
                    if s.chars().count() > f.max_chars() {
                        return Err(Stop::from(refuse(
                            RefusalCode::InvalidValue,
                            format!("an item of `{field}` is too long"),
                        )));
                    }
                    if t.insert {
                        entry.inserted += 1;
                        entry.made.insert(t.id.clone());
                    }
                }
                _ => {
                    return Err(Stop::from(refuse(
                        RefusalCode::OutsideSchema,
                        format!("unsupported operation inside `{field}`"),
                    )));
                }
            }
            // Ahead of pending changes, everything they insert counts (an upper bound).
            let current = container.as_ref().map_or(0, |(d, obj)| d.length(obj))
                + ahead.map_or(0, |p| p.inserted(field));
            let (inserted, deleted) = (entry.inserted, entry.deleted.len());
            let max = if f.field_type == FieldType::List {
                MAX_LIST_ITEMS
            } else {
                f.max_chars()
            };
            if (current + inserted).saturating_sub(deleted) > max {
                if ahead.is_some() {
                    return Err(Stop::NeedsApplied);
                }
                return Err(Stop::from(refuse(
                    RefusalCode::InvalidValue,
                    format!("`{field}` would exceed {max}"),
                )));
            }
            Ok(())
        }
        _ => Err(Stop::from(refuse(
            RefusalCode::OutsideSchema,
            "operation outside the record schema",
        ))),
    }
}

/// What one change does to the length of a field's container.
#[derive(Debug, Default)]
struct Lengths {
    /// Elements inserted (characters, for text).
    inserted: usize,
    /// The elements this change inserted (`counter@actor`).
    made: HashSet<String>,
    /// Distinct elements it deletes that were there.
    deleted: HashSet<String>,
}

/// Whether `elem` (`counter@actor`) is a visible element of the sequence `obj`.
fn visible(doc: &Automerge, obj: &automerge::ObjId, elem: &str) -> bool {
    let Ok(cursor) = Cursor::try_from(elem) else {
        return false;
    };
    let Some(index) = structure::position(doc, obj, &cursor, None) else {
        return false;
    };
    index < doc.length(obj) && doc.get_cursor(obj, index, None).is_ok_and(|c| c == cursor)
}

fn field_container<'a>(
    doc: &'a Automerge,
    field: &str,
) -> Option<(&'a Automerge, automerge::ObjId)> {
    let (_, fields) = doc
        .get(ROOT, FIELDS)
        .ok()
        .flatten()
        .filter(|(v, _)| matches!(v, Value::Object(ObjType::Map)))?;
    let (_, obj) = doc
        .get(&fields, field)
        .ok()
        .flatten()
        .filter(|(v, _)| matches!(v, Value::Object(_)))?;
    Some((doc, obj))
}

/// Which device each automerge actor id belongs to. An actor is bound to the first device that
/// sends a change made with it; changes under an actor bound to another device are refused.
pub trait ActorBindings {
    /// The device an actor is bound to, if any.
    fn device_of(&self, actor: &ActorId) -> Option<DeviceId>;
    /// Binds a new actor to a device.
    fn bind(&mut self, actor: &ActorId, device: &DeviceId);
}

impl ActorBindings for HashMap<ActorId, DeviceId> {
    fn device_of(&self, actor: &ActorId) -> Option<DeviceId> {
        self.get(actor).cloned()
    }

    fn bind(&mut self, actor: &ActorId, device: &DeviceId) {
        self.insert(actor.clone(), device.clone());
    }
}

/// The server's gate: actor binding, then the record policy.
#[derive(Debug)]
pub struct PolicyGate<'a, B: ActorBindings> {
    pub doc_id: DocumentId,
    pub who: &'a Principal,
    pub bindings: &'a mut B,
}

impl<B: ActorBindings> PolicyGate<'_, B> {
    fn check_actor(&self, change: &Change) -> Result<(), Refusal> {
        match self.bindings.device_of(change.actor_id()) {
            Some(device) if device != self.who.who.device => Err(refuse(
                RefusalCode::ForgedAttribution,
                "the change's actor belongs to another device",
            )),
            _ => Ok(()),
        }
    }

    fn bind(&mut self, change: &Change) {
        let actor = change.actor_id();
        if self.bindings.device_of(actor).is_none() {
            self.bindings.bind(actor, &self.who.who.device);
        }
    }
}

/// Judges a change, a panic in automerge while reading it counting as a malformed change.
fn judge_guarded(
    doc_id: &DocumentId,
    doc: &Automerge,
    ahead: Option<&Pending>,
    change: &Change,
    who: &Principal,
) -> Result<Effects, Stop> {
    crate::integrity::guarded(|| judge(doc_id, doc, ahead, change, who)).unwrap_or_else(|| {
        Err(refuse(
            RefusalCode::Malformed,
            "the change could not be read: it is not well formed",
        )
        .into())
    })
}

impl<B: ActorBindings> ChangeGate for PolicyGate<'_, B> {
    fn check(&mut self, doc: &Automerge, change: &Change) -> Result<(), Refusal> {
        self.check_actor(change)?;
        check_change(&self.doc_id, doc, change, self.who)?;
        self.bind(change);
        Ok(())
    }

    fn check_pending(&mut self, doc: &Automerge, pending: &Pending, change: &Change) -> Verdict {
        if let Err(refusal) = self.check_actor(change) {
            return Verdict::Refuse(refusal);
        }
        match judge_guarded(&self.doc_id, doc, Some(pending), change, self.who) {
            Ok(effects) => {
                self.bind(change);
                Verdict::Accept(effects)
            }
            Err(Stop::Refuse(refusal)) => Verdict::Refuse(refusal),
            Err(Stop::NeedsApplied) => Verdict::NeedsApplied,
        }
    }
}
