//! Schema versions and forward migrations.
//!
//! Every record stores the `schema_version` it was written with. A document written by an older
//! version always opens: reading tolerates missing fields, and the first edit on a device runs
//! the migration steps from the stored version to [`CURRENT_SCHEMA_VERSION`] in one commit before
//! the edit itself. A step may only add (new containers, new keys); it never rewrites what people
//! typed.
//!
//! A document written by a *newer* version is read as well as this version can, but not edited,
//! so that an old client never damages fields it does not know.

use automerge::transaction::{Transactable, Transaction};
use automerge::{Automerge, AutomergeError, ObjType, ROOT, ReadDoc, Value};

use crate::catalogue::RecordKind;
use crate::record::{Editor, FIELDS, KIND, RecordError, SCHEMA_VERSION, create_containers};
use crate::time::Timestamp;

/// The schema version this build writes.
pub const CURRENT_SCHEMA_VERSION: u64 = 1;

/// One migration step: brings a document of `kind` from version `n` to `n + 1`.
pub type Step = fn(&mut Transaction<'_>, RecordKind) -> Result<(), AutomergeError>;

/// `STEPS[i]` migrates version `i + 1` to `i + 2`. Version 1 is the first; add steps here.
pub const STEPS: &[Step] = &[];

/// After every step, containers for narrative and list fields the catalogue gained are
/// created, so that new fields can be edited.
fn ensure_containers(tx: &mut Transaction<'_>, kind: RecordKind) -> Result<(), AutomergeError> {
    let fields = match tx.get(ROOT, FIELDS)? {
        Some((Value::Object(ObjType::Map), id)) => id,
        _ => tx.put_object(ROOT, FIELDS, ObjType::Map)?,
    };
    create_containers(tx, &fields, kind)
}

/// Migrates `doc` to [`CURRENT_SCHEMA_VERSION`] if it is older, in one commit attributed to
/// `editor`. Returns whether a migration commit was made.
pub fn migrate(doc: &mut Automerge, editor: &Editor, now: Timestamp) -> Result<bool, RecordError> {
    migrate_with(doc, editor, now, STEPS, CURRENT_SCHEMA_VERSION)
}

pub(crate) fn migrate_with(
    doc: &mut Automerge,
    editor: &Editor,
    now: Timestamp,
    steps: &[Step],
    target: u64,
) -> Result<bool, RecordError> {
    let kind = match doc.get(ROOT, KIND)? {
        Some((Value::Scalar(s), _)) => s.as_str().and_then(RecordKind::parse),
        _ => None,
    }
    .ok_or(RecordError::NotARecord(KIND))?;
    let version = match doc.get(ROOT, SCHEMA_VERSION)? {
        Some((Value::Scalar(s), _)) => s.as_u64().unwrap_or(1),
        _ => 1,
    };
    if version > target {
        return Err(RecordError::NewerSchema(version));
    }
    if version == target {
        return Ok(false);
    }
    doc.transact_with(
        |_| editor.commit_options(now),
        |tx| -> Result<(), AutomergeError> {
            for v in version..target {
                if let Some(step) = usize::try_from(v - 1).ok().and_then(|i| steps.get(i)) {
                    step(tx, kind)?;
                }
            }
            ensure_containers(tx, kind)?;
            tx.put(ROOT, SCHEMA_VERSION, target)?;
            Ok(())
        },
    )
    .map_err(|f| RecordError::from(f.error))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::DocumentId;
    use crate::record::{FieldValue, Record};
    use crate::workflow::Role;
    use automerge::ActorId;

    fn editor() -> Editor {
        Editor::new("dara", "dev-1", Role::Monitor)
    }

    fn add_tags(tx: &mut Transaction<'_>, _kind: RecordKind) -> Result<(), AutomergeError> {
        tx.put(ROOT, "migrated_by_step", true)?;
        Ok(())
    }

    #[test]
    fn steps_run_in_order_and_only_once() {
        let case = DocumentId::from_bytes([1; 16]);
        let mut record = Record::create(
            RecordKind::CourtObservation,
            &case,
            ActorId::from([2; 16]),
            &editor(),
            Timestamp::from_millis(1_000),
        );
        let doc = record.doc_mut();
        assert!(!migrate(doc, &editor(), Timestamp::from_millis(2_000)).expect("current version"));
        let steps: &[Step] = &[add_tags];
        assert!(
            migrate_with(doc, &editor(), Timestamp::from_millis(3_000), steps, 2)
                .expect("migrates")
        );
        assert_eq!(
            doc.get(ROOT, SCHEMA_VERSION)
                .expect("read")
                .and_then(|(v, _)| v.as_scalar().and_then(|s| s.as_u64())),
            Some(2)
        );
        assert!(doc.get(ROOT, "migrated_by_step").expect("read").is_some());
        assert!(
            !migrate_with(doc, &editor(), Timestamp::from_millis(4_000), steps, 2)
                .expect("already migrated")
        );
        // This build refuses to edit a document from the future.
        assert_eq!(
            migrate(doc, &editor(), Timestamp::from_millis(5_000)),
            Err(RecordError::NewerSchema(2))
        );
        // But it still reads it.
        let record = Record::from_automerge(doc.clone());
        assert_eq!(
            record.view().expect("view").fields.get("narrative"),
            None::<&FieldValue>
        );
    }
}
