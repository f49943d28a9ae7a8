//! `DocSync` applies the changes of a message, and of several messages received together, in
//! one batch, checking each change against the document *before* the changes accepted ahead of
//! it are applied (see `sync::ChangeGate`). These tests run the same messages through the write
//! policy twice, batched and strictly one change at a time, and require the same verdicts,
//! change for change, and the same document at the end: edits, workflow steps (root writes),
//! review entries (new objects), edits made after seeing an archiving, forged identity keys and
//! unknown fields, from monitors and a coordinator, in random orders.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use saksi_shared::Timestamp;
use saksi_shared::automerge::transaction::{CommitOptions, Transactable as _};
use saksi_shared::automerge::{ActorId, Automerge, Change, ChangeHash, ROOT, ReadDoc as _};
use saksi_shared::catalogue::RecordKind;
use saksi_shared::policy::{ActorBindings, PolicyGate, Principal, Refusal, RefusalCode};
use saksi_shared::record::FieldInput;
use saksi_shared::sync::{ChangeGate, DocSync, Incoming, Pending, Verdict, changes_message};
use saksi_shared::{DocumentId, Editor, Record, Role, Status};
use saksi_testkit::at;

use crate::harness::{Rng, editor};

/// Actor bindings shared by every gate of a batch, like the server's.
#[derive(Clone, Default)]
struct Shared(Rc<RefCell<HashMap<ActorId, saksi_shared::DeviceId>>>);

impl ActorBindings for Shared {
    fn device_of(&self, actor: &ActorId) -> Option<saksi_shared::DeviceId> {
        self.0.borrow().get(actor).cloned()
    }

    fn bind(&mut self, actor: &ActorId, device: &saksi_shared::DeviceId) {
        self.0.borrow_mut().insert(actor.clone(), device.clone());
    }
}

/// Counts the changes the wrapped gate judged ahead of pending ones.
struct Counting<G>(G, Rc<RefCell<usize>>);

impl<G: ChangeGate> ChangeGate for Counting<G> {
    fn check(&mut self, doc: &Automerge, change: &Change) -> Result<(), Refusal> {
        self.0.check(doc, change)
    }

    fn check_pending(&mut self, doc: &Automerge, pending: &Pending, change: &Change) -> Verdict {
        let verdict = self.0.check_pending(doc, pending, change);
        if !pending.is_empty() && !matches!(verdict, Verdict::NeedsApplied) {
            *self.1.borrow_mut() += 1;
        }
        verdict
    }
}

/// The write policy, one change at a time: every earlier change applied before a change is
/// judged. (Not the trait's default `check_pending`, which drops the verdict's effects: the
/// status a reviewer set that a stale step would overrule, which the server then puts back.)
struct OneAtATime<G>(G);

impl<G: ChangeGate> ChangeGate for OneAtATime<G> {
    fn check(&mut self, doc: &Automerge, change: &Change) -> Result<(), Refusal> {
        self.0.check(doc, change)
    }

    fn check_pending(&mut self, doc: &Automerge, pending: &Pending, change: &Change) -> Verdict {
        if !pending.is_empty() {
            return Verdict::NeedsApplied;
        }
        self.0.check_pending(doc, pending, change)
    }
}

struct Device {
    editor: Editor,
    record: Record,
}

fn principal(e: &Editor, case: DocumentId) -> Principal {
    Principal::of(e, [case].into_iter().collect())
}

fn message(changes: &[Change]) -> Vec<u8> {
    changes_message(changes, Vec::new())
}

/// A random edit by `d`, legal or not. Failures of the record API (e.g. an archived record)
/// are fine: nothing is committed.
fn random_edit(rng: &mut Rng, d: &mut Device, now: Timestamp) {
    let ed = d.editor.clone();
    let r = &mut d.record;
    let _ = match rng.below(12) {
        0..=3 => r.splice_text("narrative", 0, 0, &format!("ក{now} "), &ed, now),
        4 => r.set_field("court", FieldInput::Text(format!("តុលាការ {now}")), &ed, now),
        5 => r.list_insert("judges", 0, "ចៅក្រម", &ed, now),
        6 => r.comment("សូមពិនិត្យ", &ed, now),
        7 => r.transition(Status::Submitted, None, &ed, now),
        8 => r.transition(Status::Approved, None, &ed, now),
        9 => r.transition(Status::Archived, Some("បិទ"), &ed, now),
        10 => r.transition(Status::Draft, None, &ed, now),
        _ => {
            // A forged identity key or an unknown field, committed by hand.
            let note = format!(
                r#"{{"user":"{}","device":"{}"}}"#,
                ed.who.user, ed.who.device
            );
            r.doc_mut()
                .transact_with(
                    |_| {
                        CommitOptions::default()
                            .with_message(note)
                            .with_time(now.as_millis())
                    },
                    |tx| {
                        if now.as_millis() % 2 == 0 {
                            tx.put(ROOT, "created_by", "someone else")
                        } else {
                            let fields = tx.get(ROOT, "fields")?.expect("fields").1;
                            tx.put(&fields, "no_such_field", "x")
                        }
                    },
                )
                .map(|_| ())
                .map_err(|f| saksi_shared::record::RecordError::Automerge(f.error.to_string()))
        }
    };
}

/// Per message: applied hashes, refused (hash, code), deferred count; then the final heads.
type Outcome = (
    Vec<Result<(Vec<ChangeHash>, Vec<(ChangeHash, RefusalCode)>, usize), String>>,
    Vec<ChangeHash>,
);

fn run(
    base: &Record,
    case: DocumentId,
    messages: &[(Editor, Vec<u8>)],
    batched: bool,
    together: bool,
    ahead: &Rc<RefCell<usize>>,
) -> Outcome {
    let doc_id = DocumentId::from_bytes([0x77; 16]);
    let mut sync = DocSync::new(base.clone());
    let bindings = Shared::default();
    let principals: Vec<Principal> = messages.iter().map(|(e, _)| principal(e, case)).collect();
    let mut binding_copies: Vec<Shared> = messages.iter().map(|_| bindings.clone()).collect();
    let mut results = Vec::new();
    let mut gates: Vec<Box<dyn ChangeGate + '_>> = principals
        .iter()
        .zip(binding_copies.iter_mut())
        .map(|(who, b)| {
            let gate = PolicyGate {
                doc_id,
                who,
                bindings: b,
            };
            if batched {
                Box::new(Counting(gate, ahead.clone())) as Box<dyn ChangeGate>
            } else {
                Box::new(OneAtATime(gate))
            }
        })
        .collect();
    let keys: Vec<String> = (0..messages.len()).map(|i| format!("c{i}")).collect();
    let mut incoming: Vec<Incoming<'_>> = messages
        .iter()
        .zip(&keys)
        .zip(gates.iter_mut())
        .map(|(((_, data), key), gate)| Incoming {
            peer: key,
            data,
            gate: gate.as_mut(),
        })
        .collect();
    let raw = if together {
        sync.receive_batch(&mut incoming)
    } else {
        let mut out = Vec::new();
        for one in incoming.iter_mut() {
            let Incoming { peer, data, gate } = one;
            out.push(sync.receive(peer, data, &mut **gate));
        }
        out
    };
    for r in raw {
        results.push(
            r.map(|r| {
                (
                    r.applied.iter().map(Change::hash).collect(),
                    r.refused.iter().map(|(h, why)| (*h, why.code)).collect(),
                    r.deferred,
                )
            })
            .map_err(|e| e.to_string()),
        );
    }
    let mut heads = sync.record().heads();
    heads.sort();
    (results, heads)
}

#[test]
fn batched_checks_agree_with_one_at_a_time() {
    let case = DocumentId::from_bytes([0x66; 16]);
    let sokha = editor("sokha", "sokha-phone", Role::Monitor);
    let ahead = Rc::new(RefCell::new(0));
    let changes = Rc::new(RefCell::new(0));
    for seed in 0..40u64 {
        let mut rng = Rng::new(seed);
        let mut base = Record::create(
            RecordKind::CourtObservation,
            &case,
            ActorId::from([1; 16]),
            &sokha,
            at(1_000),
        );
        base.splice_text("narrative", 0, 0, "ដើម ", &sokha, at(1_001))
            .expect("edit");
        let base_heads = base.heads();
        let editors = [
            sokha.clone(),
            editor("dara", "dara-phone", Role::Monitor),
            editor("chenda", "chenda-laptop", Role::Coordinator),
        ];
        let mut devices: Vec<Device> = editors
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let mut record = base.clone();
                record.set_actor(ActorId::from([10 + i as u8; 16]));
                Device {
                    editor: e.clone(),
                    record,
                }
            })
            .collect();
        // Offline edits; sometimes a device first receives another's changes (it then edits
        // having seen them, e.g. an archiving).
        let mut now = 2_000;
        for _ in 0..rng.below(25) + 5 {
            let d = rng.below(devices.len());
            if rng.one_in(6) {
                let other = (d + 1) % devices.len();
                let theirs = devices[other].record.doc().get_changes(&base_heads);
                devices[d]
                    .record
                    .doc_mut()
                    .apply_changes(theirs)
                    .expect("merge");
            }
            now += 1;
            random_edit(&mut rng, &mut devices[d], at(now));
        }
        // One message per device with everything it has, in a random order.
        let mut order: Vec<usize> = (0..devices.len()).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let messages: Vec<(Editor, Vec<u8>)> = order
            .iter()
            .map(|&d| {
                let changes = devices[d].record.doc().get_changes(&base_heads);
                (devices[d].editor.clone(), message(&changes))
            })
            .collect();
        let reference = run(&base, case, &messages, false, false, &ahead);
        *changes.borrow_mut() += reference
            .0
            .iter()
            .flatten()
            .map(|(a, r, _)| a.len() + r.len())
            .sum::<usize>();
        assert_eq!(
            run(&base, case, &messages, true, false, &ahead),
            reference,
            "seed {seed}: one message at a time"
        );
        assert_eq!(
            run(&base, case, &messages, true, true, &ahead),
            reference,
            "seed {seed}: all messages in one batch"
        );
    }
    // A good share of the changes were judged ahead of pending ones in each of the two batched
    // runs (the others follow workflow steps and review entries, which need the pending changes
    // applied first): both ways of judging were exercised.
    let (ahead, changes) = (*ahead.borrow(), *changes.borrow());
    assert!(
        ahead * 2 >= changes,
        "{ahead} judged ahead, {changes} changes, two runs"
    );
}
