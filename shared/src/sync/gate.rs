//! What may be applied: the [`ChangeGate`] a document's incoming changes pass, and what
//! one sync message did ([`Received`]).

use std::collections::HashMap;

use automerge::{Automerge, Change, ChangeHash};

use crate::policy::Refusal;

/// Decides whether incoming changes may be applied.
///
/// Automerge applies a batch of changes in one pass over the objects they touch, and a single
/// change costs a whole pass too: applied one at a time, a storm of small edits to one document
/// costs time quadratic in its size. So [`DocSync`](super::DocSync) checks each change against the document
/// *before* the changes already accepted in the same batch (the [`Pending`] ones) are applied,
/// and applies them together. A gate that cannot judge a change without them applied answers
/// [`Verdict::NeedsApplied`]; the engine then applies them and asks again.
pub trait ChangeGate {
    /// Whether `change` may be applied to `doc` as it is (every earlier change applied).
    fn check(&mut self, doc: &Automerge, change: &Change) -> Result<(), Refusal>;

    /// Whether `change` may be applied to `doc` once the `pending` changes (accepted, in causal
    /// order, not yet applied) are. With nothing pending the answer must be a verdict. The
    /// default judges only with nothing pending, which applies changes one at a time.
    fn check_pending(&mut self, doc: &Automerge, pending: &Pending, change: &Change) -> Verdict {
        if !pending.is_empty() {
            return Verdict::NeedsApplied;
        }
        match self.check(doc, change) {
            Ok(()) => Verdict::Accept(Effects::default()),
            Err(refusal) => Verdict::Refuse(refusal),
        }
    }
}

/// A gate's answer for one change.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Accepted; what it does that later checks in the same batch need to know.
    Accept(Effects),
    Refuse(Refusal),
    /// The answer could depend on the pending changes: apply them first.
    NeedsApplied,
}

/// What an accepted change does that the checks of later changes may depend on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effects {
    /// It writes to the document's root.
    pub touches_root: bool,
    /// It creates objects.
    pub makes_objects: bool,
    /// Elements it inserts, per container (named by the gate).
    pub inserts: Vec<(String, usize)>,
    /// A root `status` that the change may overrule though its sender could not have set it
    /// (a reviewer's step made concurrently): once the change is applied, the document puts
    /// this status back with a change of its own ([`Received::restored`]).
    pub restore_status: Option<String>,
}

/// Changes accepted in the current batch but not yet applied to the document.
#[derive(Debug, Default)]
pub struct Pending {
    /// (index of the message in the batch, change), in the order accepted.
    pub(super) changes: Vec<(usize, Change)>,
    /// Each pending change's dependencies as changes of the document (see
    /// [`Pending::doc_deps`]).
    doc_deps: HashMap<ChangeHash, Vec<ChangeHash>>,
    /// Each pending change's largest counter (for [`crate::structure`]).
    max_ops: HashMap<ChangeHash, u64>,
    touches_root: bool,
    makes_objects: bool,
    inserts: HashMap<String, usize>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub fn len(&self) -> usize {
        self.changes.len()
    }

    pub fn contains(&self, hash: &ChangeHash) -> bool {
        self.doc_deps.contains_key(hash)
    }

    /// Whether a pending change writes to the document's root.
    pub fn touches_root(&self) -> bool {
        self.touches_root
    }

    /// Whether a pending change creates objects.
    pub fn makes_objects(&self) -> bool {
        self.makes_objects
    }

    /// Elements the pending changes insert into `container` (as their gate named it).
    pub fn inserted(&self, container: &str) -> usize {
        self.inserts.get(container).copied().unwrap_or(0)
    }

    /// The dependencies of `change` expressed as changes of the document: each pending change
    /// it depends on is replaced by that change's own (recursively). Reading the document at
    /// these heads shows what the change's author saw, but for the pending changes.
    pub fn doc_deps(&self, change: &Change) -> Vec<ChangeHash> {
        let mut deps = Vec::with_capacity(change.deps().len());
        for dep in change.deps() {
            match self.doc_deps.get(dep) {
                Some(theirs) => deps.extend_from_slice(theirs),
                None => deps.push(*dep),
            }
        }
        deps.sort_unstable();
        deps.dedup();
        deps
    }

    pub(super) fn push(&mut self, message: usize, change: Change, effects: Effects) {
        let deps = self.doc_deps(&change);
        self.doc_deps.insert(change.hash(), deps);
        self.max_ops.insert(change.hash(), change.max_op());
        self.touches_root |= effects.touches_root;
        self.makes_objects |= effects.makes_objects;
        for (container, n) in effects.inserts {
            *self.inserts.entry(container).or_default() += n;
        }
        self.changes.push((message, change));
    }
}

impl crate::structure::Earlier for Pending {
    fn max_op(&self, hash: &ChangeHash) -> Option<u64> {
        self.max_ops.get(hash).copied()
    }

    fn any(&self) -> bool {
        !self.is_empty()
    }
}

/// Accepts every change (clients trust the server they sync with).
#[derive(Debug, Clone, Copy, Default)]
pub struct AcceptAll;

impl ChangeGate for AcceptAll {
    fn check(&mut self, _doc: &Automerge, _change: &Change) -> Result<(), Refusal> {
        Ok(())
    }

    fn check_pending(&mut self, _doc: &Automerge, _p: &Pending, _change: &Change) -> Verdict {
        Verdict::Accept(Effects::default())
    }
}

/// What one incoming sync message did.
#[derive(Debug, Default)]
pub struct Received {
    /// Changes that were new and applied, in the order applied. A server persists exactly these.
    pub applied: Vec<Change>,
    /// Changes refused by the gate (and changes depending on them), with the reason.
    pub refused: Vec<(ChangeHash, Refusal)>,
    /// Changes whose dependencies are missing; the sync protocol asks for them again.
    pub deferred: usize,
    /// Whether the last of `applied` is this document's own change putting back a status that
    /// an accepted change overruled (see [`Effects::restore_status`]).
    pub restored: bool,
    pub(super) restore_status: Option<String>,
}
