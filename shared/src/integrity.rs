//! The invariant a server never breaks: a document it stores and forwards still saves and
//! loads.
//!
//! automerge 0.12 accepts some malformed changes (an operation on an element or predecessor
//! that does not exist, a start counter below the counters it depends on, a sequence key on a
//! map, ...): `apply_changes` takes them, or panics half-way, and the document then no longer
//! loads, forever (`docs/upstream/automerge-malformed-changes.md`). The write policy refuses
//! what it recognises ([`crate::structure`]); this is the net under it, for what it does not.
//! Panics are caught here too, so that a malformed change costs a refusal, not a task.

use std::panic::{AssertUnwindSafe, catch_unwind};

use automerge::{Automerge, Change};

/// Runs `f`, turning a panic into `None`. (On wasm32 the PWA's build aborts on panic instead.)
pub fn guarded<T>(f: impl FnOnce() -> T) -> Option<T> {
    catch_unwind(AssertUnwindSafe(f)).ok()
}

/// Whether `doc` saves, and the saved bytes load back to the same heads, without a panic.
pub fn still_loads(doc: &Automerge) -> bool {
    guarded(|| {
        let saved = doc.save_nocompress();
        let loaded = Automerge::load(&saved).ok()?;
        let (mut ours, mut theirs) = (doc.get_heads(), loaded.get_heads());
        ours.sort_unstable();
        theirs.sort_unstable();
        Some(ours == theirs)
    })
    .flatten()
    .unwrap_or(false)
}

/// Why [`apply_checked`] left the document as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unloadable {
    #[error("automerge refused the changes: {0}")]
    Refused(String),
    #[error("the changes would leave the document unloadable")]
    WouldBreak,
}

/// Applies `changes` to a copy of `doc` and keeps the copy only if it still loads
/// ([`still_loads`]); otherwise `doc` is left exactly as it was.
pub fn apply_checked(doc: &mut Automerge, changes: Vec<Change>) -> Result<(), Unloadable> {
    let mut candidate = doc.clone();
    match guarded(|| candidate.apply_changes(changes)) {
        None => return Err(Unloadable::WouldBreak),
        Some(Err(e)) => return Err(Unloadable::Refused(e.to_string())),
        Some(Ok(())) => {}
    }
    if !still_loads(&candidate) {
        return Err(Unloadable::WouldBreak);
    }
    *doc = candidate;
    Ok(())
}

/// Loads saved bytes (a snapshot, or stored chunks concatenated) without a panic.
pub fn load(bytes: &[u8]) -> Result<Automerge, String> {
    match guarded(|| Automerge::load(bytes)) {
        Some(Ok(doc)) => Ok(doc),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("automerge panicked loading the document".into()),
    }
}
