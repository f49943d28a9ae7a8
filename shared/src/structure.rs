//! Structural checks on an incoming change, before any write policy.
//!
//! automerge 0.12 applies some changes that are not well formed and then cannot load the
//! document again (see [`crate::integrity`]). A peer's own automerge never makes such
//! changes; a hostile one can, and any reader could then make a record unloadable. So every
//! change is checked here first:
//!
//! - its start counter is above every counter in its causal past (its dependencies' `max_op`);
//! - it depends on something if the document has changes already;
//! - every object, element and predecessor it names exists in the document (or earlier in the
//!   same change), and keys fit their objects (map keys in maps, elements in sequences);
//! - deletes, and overwrites of sequence elements, name what they replace.
//!
//! What this misses, [`crate::integrity::apply_checked`] still catches; this gives a clear
//! refusal, before the cost of a trial apply.

use std::collections::{HashMap, HashSet};

use automerge::legacy::{ElementId, Key, ObjectId, OpId, OpType};
use automerge::{Automerge, Change, ChangeHash, Cursor, ExpandedChange, ObjType, ROOT, ReadDoc};

/// Why a change is not well formed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flaw {
    /// Malformed, whatever else arrives.
    Malformed(String),
    /// It names something the document lacks: malformed, unless a change of the same batch
    /// not yet applied makes it (the caller decides).
    Unknown(String),
}

/// What the checks need to know of changes accepted but not yet applied.
pub trait Earlier {
    /// The largest counter of an accepted, not yet applied change.
    fn max_op(&self, hash: &ChangeHash) -> Option<u64>;
    /// Whether any change is pending.
    fn any(&self) -> bool;
}

/// No pending changes.
#[derive(Debug, Clone, Copy)]
pub struct NoneEarlier;

impl Earlier for NoneEarlier {
    fn max_op(&self, _hash: &ChangeHash) -> Option<u64> {
        None
    }
    fn any(&self) -> bool {
        false
    }
}

fn malformed(detail: impl Into<String>) -> Flaw {
    Flaw::Malformed(detail.into())
}

fn op_string(id: &OpId) -> String {
    format!("{}@{}", id.0, id.1)
}

/// Checks the structure of `change` (`expanded` is `change.decode()`) against `doc` (and
/// changes of its batch in `earlier`).
pub fn check(
    doc: &Automerge,
    earlier: &dyn Earlier,
    change: &Change,
    expanded: &ExpandedChange,
) -> Result<(), Flaw> {
    let has_changes = !doc.get_heads().is_empty() || earlier.any();
    if change.deps().is_empty() && has_changes {
        return Err(malformed(
            "a change to an existing document must depend on its changes",
        ));
    }
    let mut max_before = 0;
    for dep in change.deps() {
        let max = match earlier.max_op(dep) {
            Some(max) => max,
            None => doc
                .get_change_meta_by_hash(dep)
                .map(|m| m.max_op)
                .ok_or_else(|| Flaw::Unknown("a dependency is missing".into()))?,
        };
        max_before = max_before.max(max);
    }
    let start = change.start_op().get();
    if start <= max_before {
        return Err(malformed(
            "the change's counters do not follow those it depends on",
        ));
    }
    let actor = change.actor_id();
    // Objects made by this change (counter → type) and elements it inserted (object, counter).
    let mut made: HashMap<u64, ObjType> = HashMap::new();
    let mut inserted: HashSet<(String, u64)> = HashSet::new();
    for (i, op) in expanded.operations.iter().enumerate() {
        let counter = start + i as u64;
        let here = |id: &OpId| id.1 == *actor && id.0 >= start && id.0 < counter;
        // The object and its type.
        let (obj_key, obj, obj_type) = match &op.obj {
            ObjectId::Root => ("_root".to_owned(), Some(ROOT), ObjType::Map),
            ObjectId::Id(id) if here(id) => {
                let t = made
                    .get(&id.0)
                    .copied()
                    .ok_or_else(|| malformed("an operation on something that is not an object"))?;
                (op_string(id), None, t)
            }
            ObjectId::Id(id) => {
                let name = op_string(id);
                let obj = doc
                    .import_obj(&name)
                    .map_err(|_| Flaw::Unknown("an operation on an unknown object".into()))?;
                let t = doc
                    .object_type(&obj)
                    .map_err(|_| Flaw::Unknown("an operation on an unknown object".into()))?;
                (name, Some(obj), t)
            }
        };
        let is_seq = matches!(obj_type, ObjType::List | ObjType::Text);
        let is_delete = matches!(op.action, OpType::Delete);
        match &op.key {
            Key::Map(key) => {
                if is_seq {
                    return Err(malformed("a map key on a list or text"));
                }
                if op.insert {
                    return Err(malformed("an insert into a map"));
                }
                if is_delete && op.pred.is_empty() {
                    return Err(malformed("a delete that names nothing it deletes"));
                }
                for pred in op.pred.iter() {
                    if here(pred) {
                        continue;
                    }
                    let Some(obj) = &obj else {
                        return Err(malformed("a predecessor that does not exist"));
                    };
                    if !map_value_exists(doc, obj, key, pred, change.deps()) {
                        return Err(Flaw::Unknown("a predecessor that does not exist".into()));
                    }
                }
            }
            Key::Seq(elem) => {
                if !is_seq {
                    return Err(malformed("a list element on a map"));
                }
                let elem = match elem {
                    ElementId::Head if op.insert => None,
                    ElementId::Head => {
                        return Err(malformed("an operation on the start of a sequence"));
                    }
                    ElementId::Id(id) => Some(id),
                };
                if let Some(id) = elem {
                    let known = if here(id) {
                        inserted.contains(&(obj_key.clone(), id.0))
                    } else {
                        obj.as_ref().is_some_and(|obj| element_exists(doc, obj, id))
                    };
                    if !known {
                        return Err(if here(id) || obj.is_none() {
                            malformed("an element that does not exist")
                        } else {
                            Flaw::Unknown("an element that does not exist".into())
                        });
                    }
                }
                if op.insert {
                    if !op.pred.is_empty() {
                        return Err(malformed("an insert that names predecessors"));
                    }
                    inserted.insert((obj_key.clone(), counter));
                } else {
                    let id = elem.expect("non-inserts name an element");
                    if op.pred.is_empty() {
                        return Err(malformed(
                            "a delete or overwrite that names nothing it replaces",
                        ));
                    }
                    for pred in op.pred.iter() {
                        if pred == id || here(pred) {
                            continue;
                        }
                        let Some(obj) = &obj else {
                            return Err(malformed("a predecessor that does not exist"));
                        };
                        if !element_value_exists(doc, obj, id, pred, change.deps()) {
                            return Err(Flaw::Unknown("a predecessor that does not exist".into()));
                        }
                    }
                }
            }
        }
        if let OpType::Make(t) = op.action {
            made.insert(counter, t);
        }
    }
    Ok(())
}

/// Whether `pred` is one of the values of `key` in `obj`, now or as the change's author saw it.
fn map_value_exists(
    doc: &Automerge,
    obj: &automerge::ObjId,
    key: &str,
    pred: &OpId,
    deps: &[ChangeHash],
) -> bool {
    let wanted = op_string(pred);
    let has = |values: Vec<(automerge::Value<'_>, automerge::ObjId)>| {
        values.iter().any(|(_, id)| id.to_string() == wanted)
    };
    doc.get_all(obj, key).is_ok_and(has) || doc.get_all_at(obj, key, deps).is_ok_and(has)
}

fn cursor_of(id: &OpId) -> Option<Cursor> {
    Cursor::try_from(op_string(id).as_str()).ok()
}

/// Whether the sequence `obj` has an element made by the insert `id`.
fn element_exists(doc: &Automerge, obj: &automerge::ObjId, id: &OpId) -> bool {
    cursor_of(id).is_some_and(|c| position(doc, obj, &c, None).is_some())
}

/// Where `cursor` is in `obj`, if it is an element of it. automerge 0.12 panics on a cursor
/// that names an operation of another object.
pub(crate) fn position(
    doc: &Automerge,
    obj: &automerge::ObjId,
    cursor: &Cursor,
    at: Option<&[ChangeHash]>,
) -> Option<usize> {
    crate::integrity::guarded(|| doc.get_cursor_position(obj, cursor, at).ok()).flatten()
}

/// Whether `pred` is one of the values of the element `elem`, now or as the author saw it.
fn element_value_exists(
    doc: &Automerge,
    obj: &automerge::ObjId,
    elem: &OpId,
    pred: &OpId,
    deps: &[ChangeHash],
) -> bool {
    let Some(cursor) = cursor_of(elem) else {
        return false;
    };
    let wanted = op_string(pred);
    let at = |heads: Option<&[ChangeHash]>| {
        let Some(index) = position(doc, obj, &cursor, heads) else {
            return false;
        };
        let values = match heads {
            None => doc.get_all(obj, index),
            Some(h) => doc.get_all_at(obj, index, h),
        };
        values.is_ok_and(|v| v.iter().any(|(_, id)| id.to_string() == wanted))
    };
    at(None) || at(Some(deps))
}
