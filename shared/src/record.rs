//! A typed API over one record's automerge document.
//!
//! # Document shape (schema version 1)
//!
//! ```text
//! {
//!   kind:           "case" | "court_observation" | "family_statement"
//!   schema_version: 1
//!   case:           "<document id of the case>"   (a case names itself)
//!   created_by:     "<username>"
//!   created_at:     <ms since the Unix epoch>
//!   status:         "draft" | "submitted" | "needs_changes" | "approved" | "archived"
//!   fields: {
//!     <text, date, time, enum, yes/no/unknown field>: "<string>"   (scalar register)
//!     <number field>:                                  <integer>
//!     <long text field>:                               Text        (created with the record)
//!     <list field>:                                    ["<item>", ...] (created with the record)
//!   }
//!   review: [ { author, role, at, action, text }, ... ]   (entries never change once written)
//!   attachments: { <id>: { sha256, size, type, name, ... } }  (made with the first file:
//!                                                           see [`crate::attachment`])
//! }
//! ```
//!
//! Every commit carries its time (passed in by the caller: this crate has no clock) and a
//! message `{"user":"<username>","device":"<device id>"}` naming who made it. The server checks
//! that claim against the device that sends the change, and binds each actor id to one device.

use std::collections::BTreeMap;

use automerge::transaction::{CommitOptions, Transactable, Transaction};
use automerge::{ActorId, AutoCommit, Automerge, ChangeHash, ObjId, ObjType, ROOT, ReadDoc, Value};
use serde::{Deserialize, Serialize};

use crate::attachment::{Attachment, NewAttachment};
use crate::catalogue::{FieldDef, FieldType, MAX_LIST_ITEMS, RecordKind};
use crate::changes::{Action, Place, touches};
use crate::id::DocumentId;
use crate::schema::CURRENT_SCHEMA_VERSION;
use crate::time::Timestamp;
use crate::validate::{self, Problem};
use crate::who::{DeviceId, Who};
use crate::workflow::{ReviewAction, Role, Status, transition};

pub(crate) const KIND: &str = "kind";
pub(crate) const SCHEMA_VERSION: &str = "schema_version";
pub(crate) const CASE: &str = "case";
pub(crate) const CREATED_BY: &str = "created_by";
pub(crate) const CREATED_AT: &str = "created_at";
pub(crate) const STATUS: &str = "status";
pub(crate) const FIELDS: &str = "fields";
pub(crate) const REVIEW: &str = "review";
/// The keys a review entry may hold.
pub(crate) const REVIEW_KEYS: [&str; 5] = ["author", "role", "at", "action", "text"];
/// Longest review comment, in Unicode scalar values.
pub const MAX_COMMENT_CHARS: usize = 4_000;

/// Who is editing: the signed-in user and their device ([`Who`]), and their role. Serialised
/// flat: `{"user", "device", "role"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Editor {
    #[serde(flatten)]
    pub who: Who,
    pub role: Role,
}

impl Editor {
    pub fn new(user: impl Into<String>, device: impl Into<DeviceId>, role: Role) -> Editor {
        Editor {
            who: Who::new(user, device),
            role,
        }
    }

    /// The options of a commit this editor makes at `now`: the time and the attribution note
    /// naming the editor ([`Who::check_note`] reads it).
    pub(crate) fn commit_options(&self, now: Timestamp) -> CommitOptions {
        CommitOptions::default()
            .with_message(self.who.note())
            .with_time(now.as_millis())
    }
}

/// A change's time in milliseconds since the epoch. Saksi's clients record milliseconds;
/// automerge's JavaScript library (a stock automerge-repo client) records seconds. A time from
/// 10^9 to 10^11 is 1970-01-12 to 1973-03-03 in milliseconds, which no phone's clock shows,
/// and 2001 to 5138 in seconds: it is taken as seconds.
pub fn change_time(timestamp: i64) -> Timestamp {
    if (1_000_000_000..100_000_000_000).contains(&timestamp) {
        Timestamp::from_millis(timestamp * 1000)
    } else {
        Timestamp::from_millis(timestamp)
    }
}

/// A value to write into a scalar field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FieldInput {
    Number(i64),
    Text(String),
}

/// A field's merged value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FieldValue {
    Number(i64),
    Text(String),
    List(Vec<String>),
}

impl FieldValue {
    /// The value as one line of text (lists joined with `; `), for titles and CSV.
    pub fn display(&self) -> String {
        match self {
            FieldValue::Number(n) => n.to_string(),
            FieldValue::Text(s) => s.clone(),
            FieldValue::List(items) => items.join("; "),
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            FieldValue::Number(_) => false,
            FieldValue::Text(s) => s.trim().is_empty(),
            FieldValue::List(items) => items.iter().all(|i| i.trim().is_empty()),
        }
    }
}

/// Who made a change, as far as the document says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribution {
    /// From the commit message; absent for changes made by clients that do not set it.
    pub user: Option<String>,
    pub device: Option<DeviceId>,
    /// The automerge actor (hex): the server maps it to a device.
    pub actor: String,
    /// When the change was committed (ms since the epoch, as the author's device said).
    pub at: Timestamp,
    /// The change's hash (hex).
    pub change: String,
}

/// One of several concurrent values of a field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictValue {
    pub value: FieldValue,
    pub by: Attribution,
}

/// A field written concurrently with different values: a coordinator must choose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub field: String,
    /// Every distinct concurrent value, the one currently shown first.
    pub values: Vec<ConflictValue>,
}

/// One entry of the review trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewEntry {
    pub author: String,
    pub role: String,
    pub at: Timestamp,
    pub action: String,
    pub text: String,
}

/// The merged state of a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordView {
    pub kind: RecordKind,
    pub schema_version: u64,
    pub case: String,
    pub created_by: String,
    pub created_at: Timestamp,
    pub status: Status,
    pub title: String,
    /// Every field that has a value (lists and narratives included once non-empty).
    pub fields: BTreeMap<String, FieldValue>,
    pub conflicts: Vec<Conflict>,
    pub review: Vec<ReviewEntry>,
    /// The files the record names (their bytes are stored outside the document).
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    /// Time of the newest change.
    pub updated_at: Timestamp,
    /// The document heads (hex change hashes), sorted.
    pub heads: Vec<String>,
}

/// A record's index entry: identity, title, and whether a coordinator has conflicts to resolve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub meta: RecordMeta,
    pub title: String,
    pub has_conflicts: bool,
    /// A liaison recorded that consent was withdrawn: a coordinator should purge the record.
    pub consent_withdrawn: bool,
    /// The files the record names (the server lets writers upload them and readers fetch them).
    pub attachments: Vec<Attachment>,
}

/// The identity of a record, as the server indexes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordMeta {
    pub kind: RecordKind,
    pub case: DocumentId,
    pub created_by: String,
    pub status: Status,
}

/// One edit in a change, in the record's terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Edit {
    Created {
        kind: String,
    },
    SetField {
        field: String,
        value: FieldValue,
    },
    ClearedField {
        field: String,
    },
    EditedText {
        field: String,
        inserted: usize,
        deleted: usize,
    },
    EditedList {
        field: String,
        inserted: usize,
        replaced: usize,
        removed: usize,
    },
    Status {
        to: String,
    },
    Review {
        action: String,
    },
    SchemaVersion {
        to: u64,
    },
    /// A file's entry was added (its bytes travel separately).
    AttachmentAdded {
        id: String,
        name: String,
        sha256: String,
        size: u64,
    },
    /// A file's entry was removed.
    AttachmentRemoved {
        id: String,
    },
    /// A file's caption was written or cleared.
    Caption {
        id: String,
    },
    Other,
}

impl Edit {
    /// The catalogue field this edit is about, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            Edit::SetField { field, .. }
            | Edit::ClearedField { field }
            | Edit::EditedText { field, .. }
            | Edit::EditedList { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// One change of the record's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub by: Attribution,
    pub edits: Vec<Edit>,
}

/// Why an edit could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("the document is not a Saksi record (missing or unknown `{0}`)")]
    NotARecord(&'static str),
    #[error("`{field}` is not a field of {kind}")]
    UnknownField { kind: &'static str, field: String },
    #[error("`{field}` takes {expected}")]
    WrongType {
        field: String,
        expected: &'static str,
    },
    #[error("`{field}` is longer than {max} characters")]
    TooLong { field: String, max: usize },
    #[error("`{value}` is not a choice of `{field}`")]
    InvalidChoice { field: String, value: String },
    #[error("`{field}` must be {format}")]
    BadFormat { field: String, format: &'static str },
    #[error("position {index} is outside `{field}`")]
    OutOfRange { field: String, index: usize },
    #[error("`{field}` cannot hold more than {max} items")]
    TooManyItems { field: String, max: usize },
    #[error("a {role} cannot move a record from {from} to {to}")]
    TransitionNotAllowed {
        role: &'static str,
        from: &'static str,
        to: &'static str,
    },
    #[error("only coordinators may {0}")]
    ReviewersOnly(&'static str),
    #[error("the record is approved or archived: a coordinator must reopen it first")]
    Archived,
    #[error("consent is withdrawn from family statements only")]
    NotAFamilyStatement,
    #[error("only liaisons and coordinators record that consent was withdrawn")]
    LiaisonsOnly,
    #[error("a comment is longer than {MAX_COMMENT_CHARS} characters")]
    CommentTooLong,
    #[error("the document was written by a newer version of Saksi (schema {0})")]
    NewerSchema(u64),
    #[error("the document could not be read: {0}")]
    Load(String),
    #[error("the record names no file {0}")]
    NoSuchAttachment(String),
    #[error("only the person who attached a file, or a coordinator, may remove it")]
    NotYourAttachment,
    #[error("a file with this id is attached already")]
    AttachmentExists,
    #[error(transparent)]
    Attachment(#[from] crate::attachment::EntryError),
    #[error("automerge: {0}")]
    Automerge(String),
}

impl From<automerge::AutomergeError> for RecordError {
    fn from(e: automerge::AutomergeError) -> Self {
        RecordError::Automerge(e.to_string())
    }
}

/// One record document.
#[derive(Debug, Clone)]
pub struct Record {
    doc: Automerge,
}

impl Record {
    /// Creates a new record in `case`. A case record passes its own id as `case`.
    ///
    /// Every narrative (Text) and list container is created here, in the first change, so that
    /// concurrent edits on different devices always land in the same object.
    pub fn create(
        kind: RecordKind,
        case: &DocumentId,
        actor: ActorId,
        editor: &Editor,
        now: Timestamp,
    ) -> Record {
        let mut doc = Automerge::new().with_actor(actor);
        let result = doc.transact_with(
            |_| editor.commit_options(now),
            |tx| -> Result<(), automerge::AutomergeError> {
                tx.put(ROOT, KIND, kind.as_str())?;
                tx.put(ROOT, SCHEMA_VERSION, CURRENT_SCHEMA_VERSION)?;
                tx.put(ROOT, CASE, case.to_string())?;
                tx.put(ROOT, CREATED_BY, editor.who.user.as_str())?;
                tx.put(ROOT, CREATED_AT, now.as_millis())?;
                tx.put(ROOT, STATUS, Status::Draft.as_str())?;
                let fields = tx.put_object(ROOT, FIELDS, ObjType::Map)?;
                create_containers(tx, &fields, kind)?;
                tx.put_object(ROOT, REVIEW, ObjType::List)?;
                Ok(())
            },
        );
        result.expect("writing fresh keys into a new document cannot fail");
        Record { doc }
    }

    /// An empty document, to be filled by sync.
    pub fn empty(actor: ActorId) -> Record {
        Record {
            doc: Automerge::new().with_actor(actor),
        }
    }

    /// Loads a saved document (the output of [`Record::save`], or stored chunks concatenated).
    /// Documents of an older schema are migrated in memory on the next edit, see
    /// [`crate::schema::migrate`].
    pub fn load(bytes: &[u8], actor: ActorId) -> Result<Record, RecordError> {
        let doc = crate::integrity::load(bytes).map_err(RecordError::Load)?;
        Ok(Record {
            doc: doc.with_actor(actor),
        })
    }

    pub fn from_automerge(doc: Automerge) -> Record {
        Record { doc }
    }

    pub fn from_autocommit(mut doc: AutoCommit) -> Record {
        Record {
            doc: doc.document().clone(),
        }
    }

    pub fn doc(&self) -> &Automerge {
        &self.doc
    }

    pub fn doc_mut(&mut self) -> &mut Automerge {
        &mut self.doc
    }

    pub fn into_automerge(self) -> Automerge {
        self.doc
    }

    pub fn set_actor(&mut self, actor: ActorId) {
        self.doc.set_actor(actor);
    }

    pub fn save(&self) -> Vec<u8> {
        self.doc.save()
    }

    pub fn heads(&self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// Whether the document holds anything yet.
    pub fn is_empty(&self) -> bool {
        self.doc.get_heads().is_empty()
    }

    /// A read-only view of this record.
    pub fn read(&self) -> RecordRef<'_> {
        RecordRef { doc: &self.doc }
    }

    pub fn kind(&self) -> Option<RecordKind> {
        self.read().kind()
    }

    pub fn meta(&self) -> Option<RecordMeta> {
        self.read().meta()
    }

    pub fn schema_version(&self) -> u64 {
        self.read().schema_version()
    }

    pub fn view(&self) -> Result<RecordView, RecordError> {
        self.read().view()
    }

    pub fn field(&self, field: &str) -> Result<Option<FieldValue>, RecordError> {
        self.read().field(field)
    }

    pub fn conflicts(&self) -> Result<Vec<Conflict>, RecordError> {
        self.read().conflicts()
    }

    pub fn history(&self) -> Vec<HistoryEntry> {
        self.read().history()
    }

    pub fn field_history(&self, field: &str) -> Vec<HistoryEntry> {
        self.read().field_history(field)
    }

    pub fn validate_for_submit(&self, today: &str) -> Result<Vec<Problem>, RecordError> {
        self.read().validate_for_submit(today)
    }

    /// Runs `f` in one commit attributed to `editor` at `now`.
    fn commit<F>(&mut self, editor: &Editor, now: Timestamp, f: F) -> Result<(), RecordError>
    where
        F: FnOnce(&mut Transaction<'_>) -> Result<(), RecordError>,
    {
        crate::schema::migrate(&mut self.doc, editor, now)?;
        self.doc
            .transact_with(|_| editor.commit_options(now), f)
            .map(|_| ())
            .map_err(|failure| failure.error)
    }

    /// Writes a scalar field (text, date, time, number, enum, yes/no/unknown). Writing the value
    /// the field already holds (and nothing else) commits nothing.
    pub fn set_field(
        &mut self,
        field: &str,
        value: FieldInput,
        editor: &Editor,
        now: Timestamp,
    ) -> Result<(), RecordError> {
        let def = self.read().field_def(field)?;
        self.read().ensure_editable(editor)?;
        check_scalar(def, &value)?;
        let fields = self.read().fields_obj()?;
        self.commit(editor, now, |tx| {
            Ok(put_scalar(tx, &fields, def.id, value)?)
        })
    }

    /// Removes a scalar field's value.
    pub fn clear_field(
        &mut self,
        field: &str,
        editor: &Editor,
        now: Timestamp,
    ) -> Result<(), RecordError> {
        let def = self.read().field_def(field)?;
        self.read().ensure_editable(editor)?;
        if !def.field_type.is_scalar() {
            return Err(RecordError::WrongType {
                field: field.to_owned(),
                expected: "its text or items to be edited, not cleared",
            });
        }
        let fields = self.read().fields_obj()?;
        self.commit(editor, now, |tx| Ok(tx.delete(&fields, def.id)?))
    }

    /// Replaces a narrative's text by `text`, writing only the difference so that concurrent
    /// typing elsewhere merges.
    pub fn set_text(
        &mut self,
        field: &str,
        text: &str,
        editor: &Editor,
        now: Timestamp,
    ) -> Result<(), RecordError> {
        let def = self.long_text_def(field)?;
        self.read().ensure_editable(editor)?;
        if text.chars().count() > def.max_chars() {
            return Err(RecordError::TooLong {
                field: field.to_owned(),
                max: def.max_chars(),
            });
        }
        let obj = self.read().container(def)?;
        if self.doc.text(&obj)? == text {
            return Ok(());
        }
        self.commit(editor, now, |tx| Ok(tx.update_text(&obj, text)?))
    }

    /// Deletes `delete` characters at `pos` of a narrative and inserts `insert` there.
    /// Positions count Unicode scalar values.
    pub fn splice_text(
        &mut self,
        field: &str,
        pos: usize,
        delete: usize,
        insert: &str,
        editor: &Editor,
        now: Timestamp,
    ) -> Result<(), RecordError> {
        let def = self.long_text_def(field)?;
        self.read().ensure_editable(editor)?;
        let obj = self.read().container(def)?;
        let len = self.doc.length(&obj);
        if pos > len || delete > len - pos {
            return Err(RecordError::OutOfRange {
                field: field.to_owned(),
                index: pos + delete,
            });
        }
        if len - delete + insert.chars().count() > def.max_chars() {
            return Err(RecordError::TooLong {
                field: field.to_owned(),
                max: def.max_chars(),
            });
        }
        let delete = isize::try_from(delete).map_err(|_| RecordError::OutOfRange {
            field: field.to_owned(),
            index: pos,
        })?;
        self.commit(editor, now, |tx| {
            Ok(tx.splice_text(&obj, pos, delete, insert)?)
        })
    }

    fn long_text_def(&self, field: &str) -> Result<&'static FieldDef, RecordError> {
        let def = self.read().field_def(field)?;
        if def.field_type != FieldType::LongText {
            return Err(RecordError::WrongType {
                field: field.to_owned(),
                expected: "a narrative",
            });
        }
        Ok(def)
    }

    fn list_def(&self, field: &str) -> Result<&'static FieldDef, RecordError> {
        let def = self.read().field_def(field)?;
        if def.field_type != FieldType::List {
            return Err(RecordError::WrongType {
                field: field.to_owned(),
                expected: "a list",
            });
        }
        Ok(def)
    }

    /// Inserts an item into a list field at `index` (`index == len` appends).
    pub fn list_insert(
        &mut self,
        field: &str,
        index: usize,
        item: &str,
        editor: &Editor,
        now: Timestamp,
    ) -> Result<(), RecordError> {
        let def = self.list_def(field)?;
        self.read().ensure_editable(editor)?;
        check_item(def, item)?;
        let obj = self.read().container(def)?;
        let len = self.doc.length(&obj);
        if index > len {
            return Err(RecordError::OutOfRange {
                field: field.to_owned(),
                index,
            });
        }
        if len >= MAX_LIST_ITEMS {
            return Err(RecordError::TooManyItems {
                field: field.to_owned(),
                max: MAX_LIST_ITEMS,
            });
        }
        self.commit(editor, now, |tx| Ok(tx.insert(&obj, index, item)?))
    }

    /// Replaces the item at `index` of a list field.
    pub fn list_set(
        &mut self,
        field: &str,
        index: usize,
        item: &str,
        editor: &Editor,
        now: Timestamp,
    ) -> Result<(), RecordError> {
        let def = self.list_def(field)?;
        self.read().ensure_editable(editor)?;
        check_item(def, item)?;
        let obj = self.read().container(def)?;
        if index >= self.doc.length(&obj) {
            return Err(RecordError::OutOfRange {
                field: field.to_owned(),
                index,
            });
        }
        self.commit(editor, now, |tx| Ok(tx.put(&obj, index, item)?))
    }

    /// Removes the item at `index` of a list field.
    pub fn list_remove(
        &mut self,
        field: &str,
        index: usize,
        editor: &Editor,
        now: Timestamp,
    ) -> Result<(), RecordError> {
        let def = self.list_def(field)?;
        self.read().ensure_editable(editor)?;
        let obj = self.read().container(def)?;
        if index >= self.doc.length(&obj) {
            return Err(RecordError::OutOfRange {
                field: field.to_owned(),
                index,
            });
        }
        self.commit(editor, now, |tx| Ok(tx.delete(&obj, index)?))
    }

    /// Makes a list field hold `items`, touching only the items that differ (common prefix and
    /// suffix are kept, so concurrent edits to other items survive).
    pub fn set_list(
        &mut self,
        field: &str,
        items: &[String],
        editor: &Editor,
        now: Timestamp,
    ) -> Result<(), RecordError> {
        let def = self.list_def(field)?;
        self.read().ensure_editable(editor)?;
        if items.len() > MAX_LIST_ITEMS {
            return Err(RecordError::TooManyItems {
                field: field.to_owned(),
                max: MAX_LIST_ITEMS,
            });
        }
        for item in items {
            check_item(def, item)?;
        }
        let obj = self.read().container(def)?;
        let current = list_items(&self.doc, &obj);
        if current == items {
            return Ok(());
        }
        let prefix = current
            .iter()
            .zip(items)
            .take_while(|(a, b)| a == b)
            .count();
        let suffix = current[prefix..]
            .iter()
            .rev()
            .zip(items[prefix..].iter().rev())
            .take_while(|(a, b)| a == b)
            .count();
        let old_middle = prefix..current.len() - suffix;
        let new_middle = &items[prefix..items.len() - suffix];
        self.commit(editor, now, |tx| {
            let overlap = old_middle.len().min(new_middle.len());
            for (i, item) in new_middle[..overlap].iter().enumerate() {
                tx.put(&obj, prefix + i, item.as_str())?;
            }
            for _ in overlap..old_middle.len() {
                tx.delete(&obj, prefix + overlap)?;
            }
            for (i, item) in new_middle[overlap..].iter().enumerate() {
                tx.insert(&obj, prefix + overlap + i, item.as_str())?;
            }
            Ok(())
        })
    }

    /// Moves the record along the workflow, with an optional comment, in one commit.
    pub fn transition(
        &mut self,
        to: Status,
        comment: Option<&str>,
        editor: &Editor,
        now: Timestamp,
    ) -> Result<(), RecordError> {
        self.read().kind_def()?;
        let from = self.read().status();
        let step = transition(from, to, editor.role).ok_or(RecordError::TransitionNotAllowed {
            role: editor.role.as_str(),
            from: from.as_str(),
            to: to.as_str(),
        })?;
        let text = comment.unwrap_or("");
        check_comment(text)?;
        let review = self.read().review_obj()?;
        let action = step.action;
        self.commit(editor, now, |tx| {
            tx.put(ROOT, STATUS, to.as_str())?;
            write_review_entry(tx, &review, editor, now, action, text)
        })
    }

    /// Adds a comment to the review trail. Field staff cannot comment on an archived record
    /// (the server refuses every change they make to one).
    pub fn comment(
        &mut self,
        text: &str,
        editor: &Editor,
        now: Timestamp,
    ) -> Result<(), RecordError> {
        self.read().kind_def()?;
        self.read().ensure_editable(editor)?;
        check_comment(text)?;
        let review = self.read().review_obj()?;
        self.commit(editor, now, |tx| {
            write_review_entry(tx, &review, editor, now, ReviewAction::Comment, text)
        })
    }

    /// Records that the family (or person) withdrew consent to a family statement, with an
    /// optional note: it asks a coordinator to purge the record. A liaison may record it on an
    /// approved or archived statement too (consent can be withdrawn at any time).
    pub fn withdraw_consent(
        &mut self,
        note: &str,
        editor: &Editor,
        now: Timestamp,
    ) -> Result<(), RecordError> {
        let def = self.read().kind_def()?;
        if def.kind != RecordKind::FamilyStatement {
            return Err(RecordError::NotAFamilyStatement);
        }
        if !ReviewAction::WithdrawConsent.allowed_for(editor.role) {
            return Err(RecordError::LiaisonsOnly);
        }
        check_comment(note)?;
        let review = self.read().review_obj()?;
        self.commit(editor, now, |tx| {
            write_review_entry(
                tx,
                &review,
                editor,
                now,
                ReviewAction::WithdrawConsent,
                note,
            )
        })
    }

    /// Resolves a conflict by writing the chosen value as an ordinary change (it supersedes every
    /// concurrent value), and notes the resolution in the review trail. Coordinators only.
    pub fn resolve(
        &mut self,
        field: &str,
        value: FieldInput,
        editor: &Editor,
        now: Timestamp,
    ) -> Result<(), RecordError> {
        if !editor.role.reviews() {
            return Err(RecordError::ReviewersOnly("resolve conflicts"));
        }
        let def = self.read().field_def(field)?;
        check_scalar(def, &value)?;
        let fields = self.read().fields_obj()?;
        let review = self.read().review_obj()?;
        self.commit(editor, now, |tx| {
            put_scalar(tx, &fields, def.id, value)?;
            write_review_entry(tx, &review, editor, now, ReviewAction::Resolve, def.id)
        })
    }
}

impl Record {
    /// Attaches a file: its entry, captured by the editor on their device. The bytes are kept
    /// and uploaded separately, under the entry's SHA-256.
    pub fn add_attachment(
        &mut self,
        file: &NewAttachment,
        editor: &Editor,
        now: Timestamp,
    ) -> Result<(), RecordError> {
        self.read().kind_def()?;
        self.read().ensure_editable(editor)?;
        file.check()?;
        if crate::attachment::find(&self.doc, &file.id).is_some() {
            return Err(RecordError::AttachmentExists);
        }
        let map = crate::attachment::current_map(&self.doc);
        self.commit(editor, now, |tx| {
            let map = match map {
                Some(map) => map,
                None => tx.put_object(ROOT, crate::attachment::ATTACHMENTS, ObjType::Map)?,
            };
            let entry = tx.put_object(&map, file.id.as_str(), ObjType::Map)?;
            tx.put(&entry, "sha256", file.sha256.as_str())?;
            tx.put(&entry, "size", i64::try_from(file.size).unwrap_or(i64::MAX))?;
            tx.put(&entry, "type", file.media_type.as_str())?;
            tx.put(&entry, "name", file.name.as_str())?;
            tx.put(&entry, "captured_at", file.captured_at.as_millis())?;
            tx.put(&entry, "by", editor.who.user.as_str())?;
            tx.put(&entry, "device", editor.who.device.as_str())?;
            if let Some(metadata) = file.metadata {
                tx.put(&entry, "metadata", metadata.as_str())?;
            }
            if !file.caption.is_empty() {
                tx.put(&entry, "caption", file.caption.as_str())?;
            }
            Ok(())
        })
    }

    /// Removes a file's entry: the person who attached it, or a coordinator.
    pub fn remove_attachment(
        &mut self,
        id: &str,
        editor: &Editor,
        now: Timestamp,
    ) -> Result<(), RecordError> {
        self.read().ensure_editable(editor)?;
        let (map, entry) = crate::attachment::find(&self.doc, id)
            .ok_or_else(|| RecordError::NoSuchAttachment(id.to_owned()))?;
        let by = crate::attachment::read_entry(&self.doc, id, &entry).map(|a| a.by);
        if !editor.role.reviews() && by.as_deref() != Some(editor.who.user.as_str()) {
            return Err(RecordError::NotYourAttachment);
        }
        self.commit(editor, now, |tx| Ok(tx.delete(&map, id)?))
    }

    /// Writes (or, empty, clears) a file's caption.
    pub fn set_caption(
        &mut self,
        id: &str,
        caption: &str,
        editor: &Editor,
        now: Timestamp,
    ) -> Result<(), RecordError> {
        self.read().ensure_editable(editor)?;
        crate::attachment::check_caption(caption)?;
        let (_, entry) = crate::attachment::find(&self.doc, id)
            .ok_or_else(|| RecordError::NoSuchAttachment(id.to_owned()))?;
        let current = crate::attachment::read_entry(&self.doc, id, &entry)
            .map(|a| a.caption)
            .unwrap_or_default();
        if current == caption {
            return Ok(());
        }
        self.commit(editor, now, |tx| {
            if caption.is_empty() {
                tx.delete(&entry, "caption")?;
            } else {
                tx.put(&entry, "caption", caption)?;
            }
            Ok(())
        })
    }
}

/// A borrowed, read-only view of a record document (the server and the policy read documents
/// they do not own).
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    doc: &'a Automerge,
}

impl<'a> RecordRef<'a> {
    pub fn new(doc: &'a Automerge) -> Self {
        RecordRef { doc }
    }

    pub fn kind(&self) -> Option<RecordKind> {
        root_str(self.doc, KIND).and_then(|k| RecordKind::parse(&k))
    }

    /// Kind, case, author and status, or `None` if the document is not (yet) a record.
    pub fn meta(&self) -> Option<RecordMeta> {
        Some(RecordMeta {
            kind: self.kind()?,
            case: DocumentId::parse(&root_str(self.doc, CASE)?).ok()?,
            created_by: root_str(self.doc, CREATED_BY)?,
            status: root_str(self.doc, STATUS)
                .and_then(|s| Status::parse(&s))
                .unwrap_or(Status::Draft),
        })
    }

    pub fn schema_version(&self) -> u64 {
        match self.doc.get(ROOT, SCHEMA_VERSION) {
            Ok(Some((Value::Scalar(s), _))) => s.as_u64().unwrap_or(0),
            _ => 0,
        }
    }

    pub(crate) fn kind_def(&self) -> Result<&'static crate::catalogue::KindDef, RecordError> {
        Ok(self.kind().ok_or(RecordError::NotARecord(KIND))?.def())
    }

    pub(crate) fn field_def(&self, field: &str) -> Result<&'static FieldDef, RecordError> {
        let def = self.kind_def()?;
        def.field(field).ok_or_else(|| RecordError::UnknownField {
            kind: def.kind.as_str(),
            field: field.to_owned(),
        })
    }

    pub(crate) fn fields_obj(&self) -> Result<ObjId, RecordError> {
        match self.doc.get(ROOT, FIELDS)? {
            Some((Value::Object(ObjType::Map), id)) => Ok(id),
            _ => Err(RecordError::NotARecord(FIELDS)),
        }
    }

    pub(crate) fn container(&self, field: &FieldDef) -> Result<ObjId, RecordError> {
        let fields = self.fields_obj()?;
        match self.doc.get(&fields, field.id)? {
            Some((Value::Object(_), id)) => Ok(id),
            _ => Err(RecordError::NotARecord(FIELDS)),
        }
    }

    pub(crate) fn status(&self) -> Status {
        root_str(self.doc, STATUS)
            .and_then(|s| Status::parse(&s))
            .unwrap_or(Status::Draft)
    }

    pub(crate) fn ensure_editable(&self, editor: &Editor) -> Result<(), RecordError> {
        if !self.status().open_for_field_staff() && !editor.role.reviews() {
            return Err(RecordError::Archived);
        }
        Ok(())
    }

    pub(crate) fn review_obj(&self) -> Result<ObjId, RecordError> {
        match self.doc.get(ROOT, REVIEW)? {
            Some((Value::Object(ObjType::List), id)) => Ok(id),
            _ => Err(RecordError::NotARecord(REVIEW)),
        }
    }

    /// The merged record: winning values, conflicts, review trail.
    pub fn view(&self) -> Result<RecordView, RecordError> {
        let def = self.kind_def()?;
        let fields_obj = self.fields_obj()?;
        let mut fields = BTreeMap::new();
        let mut conflicts = Vec::new();
        for f in def.fields {
            if let Some(value) = self.field_value(&fields_obj, f)?
                && !value.is_empty()
            {
                fields.insert(f.id.to_owned(), value);
            }
            if f.field_type.is_scalar()
                && let Some(conflict) = self.scalar_conflict(&fields_obj, f.id)?
            {
                conflicts.push(conflict);
            }
        }
        if let Some(conflict) = self.scalar_conflict(&ROOT, STATUS)? {
            conflicts.push(conflict);
        }
        let title = join_title(
            def.title_fields
                .iter()
                .filter_map(|f| fields.get(*f).cloned()),
        );
        let mut heads: Vec<String> = self.doc.get_heads().iter().map(|h| h.to_string()).collect();
        heads.sort();
        Ok(RecordView {
            kind: def.kind,
            schema_version: self.schema_version(),
            case: root_str(self.doc, CASE).ok_or(RecordError::NotARecord(CASE))?,
            created_by: root_str(self.doc, CREATED_BY).unwrap_or_default(),
            created_at: Timestamp::from_millis(root_int(self.doc, CREATED_AT).unwrap_or(0)),
            status: self.status(),
            title,
            fields,
            conflicts,
            review: self.review_entries()?,
            attachments: crate::attachment::attachments(self.doc),
            updated_at: self.updated_at(),
            heads,
        })
    }

    /// What an index keeps of a record (kind, case, author, status, title, whether any field
    /// is in conflict), computed without reading the change history.
    pub fn summary(&self) -> Result<Summary, RecordError> {
        let def = self.kind_def()?;
        let meta = self.meta().ok_or(RecordError::NotARecord(CASE))?;
        let fields_obj = self.fields_obj()?;
        let mut title = Vec::new();
        for id in def.title_fields {
            if let Some(value) = self.field_value(&fields_obj, self.field_def(id)?)?
                && !value.is_empty()
            {
                title.push(value);
            }
        }
        let mut has_conflicts = self.scalar_conflict(&ROOT, STATUS)?.is_some();
        for f in def.fields.iter().filter(|f| f.field_type.is_scalar()) {
            if has_conflicts {
                break;
            }
            has_conflicts = self.scalar_conflict(&fields_obj, f.id)?.is_some();
        }
        let consent_withdrawn = self
            .review_entries()?
            .iter()
            .any(|e| e.action == ReviewAction::WithdrawConsent.as_str());
        Ok(Summary {
            meta,
            title: join_title(title.into_iter()),
            has_conflicts,
            consent_withdrawn,
            attachments: crate::attachment::attachments(self.doc),
        })
    }

    /// The merged value of one field.
    pub fn field(&self, field: &str) -> Result<Option<FieldValue>, RecordError> {
        let def = self.field_def(field)?;
        let fields_obj = self.fields_obj()?;
        self.field_value(&fields_obj, def)
    }

    fn field_value(
        &self,
        fields_obj: &ObjId,
        def: &FieldDef,
    ) -> Result<Option<FieldValue>, RecordError> {
        Ok(match self.doc.get(fields_obj, def.id)? {
            None => None,
            Some((Value::Object(ObjType::Text), id)) => Some(FieldValue::Text(self.doc.text(&id)?)),
            Some((Value::Object(ObjType::List), id)) => {
                Some(FieldValue::List(list_items(self.doc, &id)))
            }
            Some((value, _)) => scalar_value(&value),
        })
    }

    fn scalar_conflict(&self, obj: &ObjId, key: &str) -> Result<Option<Conflict>, RecordError> {
        let all = self.doc.get_all(obj, key)?;
        if all.len() < 2 {
            return Ok(None);
        }
        let mut values: Vec<ConflictValue> = Vec::new();
        // `get_all` lists the winning value last; show it first.
        for (value, id) in all.iter().rev() {
            let Some(value) = scalar_value(value) else {
                continue;
            };
            if values.iter().any(|v| v.value == value) {
                continue;
            }
            let by = self.attribution_of_op(id);
            values.push(ConflictValue { value, by });
        }
        if values.len() < 2 {
            return Ok(None);
        }
        Ok(Some(Conflict {
            field: key.to_owned(),
            values,
        }))
    }

    /// Every field currently in conflict.
    pub fn conflicts(&self) -> Result<Vec<Conflict>, RecordError> {
        Ok(self.view()?.conflicts)
    }

    fn attribution_of_op(&self, op: &ObjId) -> Attribution {
        match self.doc.hash_for_opid(op) {
            Some(hash) => self.attribution_of_change(&hash),
            None => Attribution {
                user: None,
                device: None,
                actor: String::new(),
                at: Timestamp::EPOCH,
                change: String::new(),
            },
        }
    }

    fn attribution_of_change(&self, hash: &ChangeHash) -> Attribution {
        match self.doc.get_change_meta_by_hash(hash) {
            Some(meta) => {
                let note = meta.message.as_deref().and_then(Who::parse_note);
                Attribution {
                    user: note.as_ref().map(|n| n.user.clone()),
                    device: note.map(|n| n.device),
                    actor: meta.actor.to_hex_string(),
                    at: change_time(meta.timestamp),
                    change: hash.to_string(),
                }
            }
            None => Attribution {
                user: None,
                device: None,
                actor: String::new(),
                at: Timestamp::EPOCH,
                change: hash.to_string(),
            },
        }
    }

    fn review_entries(&self) -> Result<Vec<ReviewEntry>, RecordError> {
        let review = self.review_obj()?;
        let mut entries = Vec::new();
        for i in 0..self.doc.length(&review) {
            let Some((Value::Object(ObjType::Map), entry)) = self.doc.get(&review, i)? else {
                continue;
            };
            let s = |key: &str| match self.doc.get(&entry, key) {
                Ok(Some((Value::Scalar(v), _))) => v.as_str().unwrap_or_default().to_owned(),
                _ => String::new(),
            };
            let at = match self.doc.get(&entry, "at") {
                Ok(Some((Value::Scalar(v), _))) => v.as_i64().unwrap_or(0),
                _ => 0,
            };
            let at = Timestamp::from_millis(at);
            entries.push(ReviewEntry {
                author: s("author"),
                role: s("role"),
                at,
                action: s("action"),
                text: s("text"),
            });
        }
        Ok(entries)
    }

    /// The time of the newest change (by the authors' clocks).
    pub fn updated_at(&self) -> Timestamp {
        self.doc
            .get_changes_meta(&[])
            .iter()
            .map(|m| change_time(m.timestamp))
            .max()
            .unwrap_or(Timestamp::EPOCH)
    }

    /// Every change, oldest first, with what it did.
    pub fn history(&self) -> Vec<HistoryEntry> {
        let mut entries = Vec::new();
        for change in self.doc.get_changes(&[]) {
            let by = self.attribution_of_change(&change.hash());
            let edits = summarise(&touches(self.doc, &change));
            entries.push(HistoryEntry { by, edits });
        }
        entries
    }

    /// The changes that edited `field`, oldest first.
    pub fn field_history(&self, field: &str) -> Vec<HistoryEntry> {
        self.history()
            .into_iter()
            .filter_map(|mut entry| {
                entry.edits.retain(|e| e.field() == Some(field));
                (!entry.edits.is_empty()).then_some(entry)
            })
            .collect()
    }

    /// Problems that prevent submission, with messages in English and Khmer. `today` is
    /// `YYYY-MM-DD` in the user's time zone, passed in.
    pub fn validate_for_submit(&self, today: &str) -> Result<Vec<Problem>, RecordError> {
        let view = self.view()?;
        Ok(validate::validate(&view, today))
    }
}

/// Creates the Text and List containers of every narrative and list field of `kind` that does
/// not exist yet.
pub(crate) fn create_containers(
    tx: &mut Transaction<'_>,
    fields: &ObjId,
    kind: RecordKind,
) -> Result<(), automerge::AutomergeError> {
    for f in kind.def().fields {
        let obj_type = match f.field_type {
            FieldType::LongText => ObjType::Text,
            FieldType::List => ObjType::List,
            _ => continue,
        };
        if tx.get(fields, f.id)?.is_none() {
            tx.put_object(fields, f.id, obj_type)?;
        }
    }
    Ok(())
}

/// Writes a scalar field so that the new value supersedes every value the writer can see.
///
/// Writing the value a field already holds (alone) changes nothing. But when the field is in
/// conflict and the value is the one currently shown, automerge would record only a deletion of
/// the *other* values and leave the shown value's original operation standing: a write made
/// concurrently elsewhere would then replace it without any conflict being reported, and the
/// history would call the edit a clear. Deleting every value first makes the put a value of
/// its own, concurrent with whatever others wrote meanwhile.
fn put_scalar(
    tx: &mut Transaction<'_>,
    fields: &ObjId,
    key: &str,
    value: FieldInput,
) -> Result<(), automerge::AutomergeError> {
    if tx.get_all(fields, key)?.len() > 1 {
        tx.delete(fields, key)?;
    }
    match value {
        FieldInput::Number(n) => tx.put(fields, key, n),
        FieldInput::Text(s) => tx.put(fields, key, s),
    }
}

fn write_review_entry(
    tx: &mut Transaction<'_>,
    review: &ObjId,
    editor: &Editor,
    now: Timestamp,
    action: ReviewAction,
    text: &str,
) -> Result<(), RecordError> {
    let index = tx.length(review);
    let entry = tx.insert_object(review, index, ObjType::Map)?;
    tx.put(&entry, "author", editor.who.user.as_str())?;
    tx.put(&entry, "role", editor.role.as_str())?;
    tx.put(&entry, "at", now.as_millis())?;
    tx.put(&entry, "action", action.as_str())?;
    tx.put(&entry, "text", text)?;
    Ok(())
}

fn check_comment(text: &str) -> Result<(), RecordError> {
    if text.chars().count() > MAX_COMMENT_CHARS {
        return Err(RecordError::CommentTooLong);
    }
    Ok(())
}

/// Checks that `value` fits scalar field `def` (type, length, format, choice).
pub(crate) fn check_scalar(def: &FieldDef, value: &FieldInput) -> Result<(), RecordError> {
    let field = def.id.to_owned();
    match (def.field_type, value) {
        (FieldType::Number, FieldInput::Number(_)) => Ok(()),
        (FieldType::Number, FieldInput::Text(_)) => Err(RecordError::WrongType {
            field,
            expected: "a whole number",
        }),
        (FieldType::LongText | FieldType::List, _) => Err(RecordError::WrongType {
            field,
            expected: "text edits, not a single value",
        }),
        (_, FieldInput::Number(_)) => Err(RecordError::WrongType {
            field,
            expected: "text",
        }),
        (t, FieldInput::Text(s)) => {
            if s.chars().count() > def.max_chars() {
                return Err(RecordError::TooLong {
                    field,
                    max: def.max_chars(),
                });
            }
            match t {
                FieldType::Date if validate::parse_date(s).is_none() => {
                    Err(RecordError::BadFormat {
                        field,
                        format: "a date (YYYY-MM-DD)",
                    })
                }
                FieldType::Time if validate::parse_time(s).is_none() => {
                    Err(RecordError::BadFormat {
                        field,
                        format: "a time (HH:MM)",
                    })
                }
                FieldType::Enum | FieldType::YesNoUnknown if !def.has_choice(s) => {
                    Err(RecordError::InvalidChoice {
                        field,
                        value: s.clone(),
                    })
                }
                _ => Ok(()),
            }
        }
    }
}

fn check_item(def: &FieldDef, item: &str) -> Result<(), RecordError> {
    if item.chars().count() > def.max_chars() {
        return Err(RecordError::TooLong {
            field: def.id.to_owned(),
            max: def.max_chars(),
        });
    }
    Ok(())
}

/// A record's title: its kind's title fields that have a value, joined.
fn join_title(values: impl Iterator<Item = FieldValue>) -> String {
    values.map(|v| v.display()).collect::<Vec<_>>().join(" · ")
}

fn scalar_value(value: &Value<'_>) -> Option<FieldValue> {
    match value {
        Value::Scalar(s) => {
            if let Some(text) = s.as_str() {
                Some(FieldValue::Text(text.to_owned()))
            } else {
                s.as_i64().map(FieldValue::Number)
            }
        }
        Value::Object(_) => None,
    }
}

fn list_items(doc: &Automerge, list: &ObjId) -> Vec<String> {
    doc.list_range(list, ..)
        .map(|item| match item.value {
            automerge::ValueRef::Scalar(automerge::ScalarValueRef::Str(s)) => s.into_owned(),
            _ => String::new(),
        })
        .collect()
}

pub(crate) fn root_str(doc: &Automerge, key: &str) -> Option<String> {
    match doc.get(ROOT, key) {
        Ok(Some((Value::Scalar(s), _))) => s.as_str().map(str::to_owned),
        _ => None,
    }
}

fn root_int(doc: &Automerge, key: &str) -> Option<i64> {
    match doc.get(ROOT, key) {
        Ok(Some((Value::Scalar(s), _))) => s.as_i64(),
        _ => None,
    }
}

/// Turns classified operations into record-level edits.
pub(crate) fn summarise(touched: &[crate::changes::Touch]) -> Vec<Edit> {
    let mut edits: Vec<Edit> = Vec::new();
    let mut text: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut lists: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    // Files added by the change: the counter of each new entry → its edit.
    let mut added: BTreeMap<u64, usize> = BTreeMap::new();
    let mut other = false;
    for t in touched {
        match (&t.place, t.key.as_deref(), &t.action) {
            (Place::Root, Some(KIND), Action::Put(v)) => edits.push(Edit::Created {
                kind: v.as_str().unwrap_or_default().to_owned(),
            }),
            (Place::Root, Some(STATUS), Action::Put(v)) => edits.push(Edit::Status {
                to: v.as_str().unwrap_or_default().to_owned(),
            }),
            (Place::Root, Some(SCHEMA_VERSION), Action::Put(v)) => {
                edits.push(Edit::SchemaVersion {
                    to: v.as_u64().unwrap_or(0),
                })
            }
            (Place::Root, _, _) => {}
            (Place::Fields, Some(field), Action::Put(v)) => {
                let value = v
                    .as_str()
                    .map(|s| FieldValue::Text(s.to_owned()))
                    .or_else(|| v.as_i64().map(FieldValue::Number));
                // A put after a delete of the same field in one change is one write (see
                // `put_scalar`), not a clear and a write.
                edits.retain(|e| !matches!(e, Edit::ClearedField { field: f } if f == field));
                match value {
                    Some(value) => edits.push(Edit::SetField {
                        field: field.to_owned(),
                        value,
                    }),
                    None => other = true,
                }
            }
            (Place::Fields, Some(field), Action::Delete) => edits.push(Edit::ClearedField {
                field: field.to_owned(),
            }),
            (Place::Fields, _, Action::Make(_)) => {}
            (Place::FieldContent(field), None, action) => {
                // Text and list content: count characters or items.
                let is_list = RecordKind::ALL.iter().any(|k| {
                    k.def()
                        .field(field)
                        .is_some_and(|f| f.field_type == FieldType::List)
                });
                if is_list {
                    let entry = lists.entry(field.clone()).or_default();
                    match (t.insert, action) {
                        (true, _) => entry.0 += 1,
                        (false, Action::Delete) => entry.2 += 1,
                        (false, _) => entry.1 += 1,
                    }
                } else {
                    let entry = text.entry(field.clone()).or_default();
                    match action {
                        Action::Delete => entry.1 += 1,
                        Action::Put(v) => entry.0 += v.as_str().map_or(1, |s| s.chars().count()),
                        _ => other = true,
                    }
                }
            }
            (Place::Attachments, Some(id), Action::Make(_)) => {
                edits.push(Edit::AttachmentAdded {
                    id: id.to_owned(),
                    name: String::new(),
                    sha256: String::new(),
                    size: 0,
                });
                added.insert(t.counter, edits.len() - 1);
            }
            (Place::Attachments, Some(id), Action::Delete) => {
                edits.push(Edit::AttachmentRemoved { id: id.to_owned() })
            }
            (
                Place::AttachmentEntry {
                    created_here: true, ..
                },
                Some(key),
                Action::Put(v),
            ) => {
                if let Some(Edit::AttachmentAdded {
                    name, sha256, size, ..
                }) = t
                    .object
                    .and_then(|entry| added.get(&entry))
                    .and_then(|i| edits.get_mut(*i))
                {
                    match key {
                        "name" => *name = v.as_str().unwrap_or_default().to_owned(),
                        "sha256" => *sha256 = v.as_str().unwrap_or_default().to_owned(),
                        "size" => *size = v.as_u64().unwrap_or(0),
                        _ => {}
                    }
                }
            }
            (
                Place::AttachmentEntry {
                    id,
                    created_here: false,
                },
                Some("caption"),
                _,
            ) => edits.push(Edit::Caption { id: id.clone() }),
            (Place::AttachmentEntry { .. }, _, _) => {}
            (Place::Review, None, Action::Make(_)) => {}
            (Place::ReviewEntry { .. }, Some("action"), Action::Put(v)) => {
                edits.push(Edit::Review {
                    action: v.as_str().unwrap_or_default().to_owned(),
                })
            }
            (Place::ReviewEntry { .. }, _, _) => {}
            _ => other = true,
        }
    }
    for (field, (inserted, deleted)) in text {
        edits.push(Edit::EditedText {
            field,
            inserted,
            deleted,
        });
    }
    for (field, (inserted, replaced, removed)) in lists {
        edits.push(Edit::EditedList {
            field,
            inserted,
            replaced,
            removed,
        });
    }
    if other {
        edits.push(Edit::Other);
    }
    edits
}
