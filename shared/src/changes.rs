//! What a change touches, in the record's own terms.
//!
//! An automerge change is a list of low-level operations on objects. The write policy (which runs
//! on the server before a change is stored) and the edit history (shown to coordinators) both need
//! to know what those operations mean for a record: "sets field `verdict`", "types into
//! `narrative`", "adds a review entry". [`touches`] answers that for one change, resolving each
//! operation's target object against the document it is applied to, and against objects created
//! earlier in the same change.

use std::collections::HashMap;

use automerge::legacy::{ElementId, Key, ObjectId, OpId, OpType};
use automerge::{ActorId, Automerge, Change, ExpandedChange, ObjType, Prop, ReadDoc, ScalarValue};

use crate::attachment::ATTACHMENTS;
use crate::record::{FIELDS, REVIEW};

/// Where an operation lands.
#[derive(Debug, Clone, PartialEq)]
pub enum Place {
    /// The document root (`kind`, `status`, ...).
    Root,
    /// The `fields` map itself: the operation sets or clears a field.
    Fields,
    /// Inside the container (Text or List) of the named field.
    FieldContent(String),
    /// The `review` list: the operation adds or removes an entry.
    Review,
    /// Inside one review entry. `created_here` is true when the entry was created by the same
    /// change (entries are immutable once written).
    ReviewEntry { created_here: bool },
    /// An `attachments` map: the operation adds or removes a file's entry.
    Attachments,
    /// Inside the entry of file `id` (`created_here`: made by the same change; afterwards only
    /// its caption may change).
    AttachmentEntry { id: String, created_here: bool },
    /// Anywhere else: not part of the record schema.
    Unknown,
}

/// What an operation does at its place.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Put(ScalarValue),
    Make(ObjType),
    Delete,
    /// Counter increments and rich-text marks: never used by records.
    Other,
}

/// One operation, classified.
#[derive(Debug, Clone, PartialEq)]
pub struct Touch {
    pub place: Place,
    /// The map key, for operations on maps.
    pub key: Option<String>,
    /// Whether the operation inserts a new element into a sequence.
    pub insert: bool,
    pub action: Action,
    /// The operation's own counter, and its id (`counter@actor`).
    pub counter: u64,
    pub id: String,
    /// The counter of the object the operation lands in, when the same change made it.
    pub object: Option<u64>,
    /// The sequence element the operation names (`counter@actor`), for operations on
    /// elements (not inserts at the start).
    pub elem: Option<String>,
}

/// Classifies every operation of `change` against `doc`.
///
/// `doc` must contain the objects the change refers to: either the document before the change is
/// applied (policy) or after (history). Operations on objects that cannot be found are reported
/// as [`Place::Unknown`].
pub fn touches(doc: &Automerge, change: &Change) -> Vec<Touch> {
    touches_decoded(doc, change, &change.decode())
}

/// [`touches`], given the change already decoded (`change.decode()`).
pub fn touches_decoded(doc: &Automerge, change: &Change, expanded: &ExpandedChange) -> Vec<Touch> {
    let actor = change.actor_id().clone();
    let start = change.start_op().get();
    let mut created: HashMap<u64, Place> = HashMap::new();
    let mut result = Vec::with_capacity(expanded.operations.len());
    for (i, op) in expanded.operations.iter().enumerate() {
        let place = match &op.obj {
            ObjectId::Root => Place::Root,
            ObjectId::Id(id) if id.1 == actor && created.contains_key(&id.0) => {
                created.get(&id.0).cloned().unwrap_or(Place::Unknown)
            }
            ObjectId::Id(id) => place_in_doc(doc, id),
        };
        let key = match &op.key {
            Key::Map(k) => Some(k.to_string()),
            Key::Seq(_) => None,
        };
        let elem = match &op.key {
            Key::Seq(ElementId::Id(id)) => Some(format!("{}@{}", id.0, id.1)),
            _ => None,
        };
        let object = match &op.obj {
            ObjectId::Id(id) if id.1 == actor && created.contains_key(&id.0) => Some(id.0),
            _ => None,
        };
        let action = match &op.action {
            OpType::Put(v) => Action::Put(v.clone()),
            OpType::Make(t) => Action::Make(*t),
            OpType::Delete => Action::Delete,
            OpType::Increment(_) | OpType::MarkBegin(_) | OpType::MarkEnd(_) => Action::Other,
        };
        if let Action::Make(obj_type) = action {
            let new_place = match (&place, key.as_deref(), obj_type) {
                (Place::Root, Some(FIELDS), ObjType::Map) => Place::Fields,
                (Place::Root, Some(REVIEW), ObjType::List) => Place::Review,
                (Place::Fields, Some(field), ObjType::Text | ObjType::List) => {
                    Place::FieldContent(field.to_owned())
                }
                (Place::Review, None, ObjType::Map) if op.insert => {
                    Place::ReviewEntry { created_here: true }
                }
                (Place::Root, Some(ATTACHMENTS), ObjType::Map) => Place::Attachments,
                (Place::Attachments, Some(id), ObjType::Map) if !op.insert => {
                    Place::AttachmentEntry {
                        id: id.to_owned(),
                        created_here: true,
                    }
                }
                _ => Place::Unknown,
            };
            created.insert(start + i as u64, new_place);
        }
        result.push(Touch {
            place,
            key,
            insert: op.insert,
            action,
            counter: start + i as u64,
            id: format!("{}@{}", start + i as u64, actor),
            object,
            elem,
        });
    }
    result
}

fn place_in_doc(doc: &Automerge, id: &OpId) -> Place {
    let Ok(obj) = doc.import_obj(&format!("{}@{}", id.0, id.1)) else {
        return Place::Unknown;
    };
    let Ok(parents) = doc.parents(&obj) else {
        return Place::Unknown;
    };
    let path = parents.path();
    match path.as_slice() {
        [(_, Prop::Map(k))] if k == FIELDS => Place::Fields,
        [(_, Prop::Map(k))] if k == REVIEW => Place::Review,
        [(_, Prop::Map(k)), (_, Prop::Map(field))] if k == FIELDS => {
            Place::FieldContent(field.clone())
        }
        [(_, Prop::Map(k)), (_, Prop::Seq(_))] if k == REVIEW => Place::ReviewEntry {
            created_here: false,
        },
        [(_, Prop::Map(k))] if k == ATTACHMENTS => Place::Attachments,
        [(_, Prop::Map(k)), (_, Prop::Map(id))] if k == ATTACHMENTS => Place::AttachmentEntry {
            id: id.clone(),
            created_here: false,
        },
        _ => Place::Unknown,
    }
}

/// A hex actor id, for display and logs.
pub fn actor_hex(actor: &ActorId) -> String {
    actor.to_hex_string()
}
