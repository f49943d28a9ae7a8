//! Property: edits by random roles, each made on random old heads of a record (a phone offline
//! since then), offered to the server's sync engine through the write policy, never leave the
//! record in a state the policy would refuse from the state before them:
//!
//! - a status that the sender's role could not set, and that the sender had not seen, is not
//!   overruled by the sender;
//! - the list stays within its limit (it starts two items short of it);
//! - every review entry names an author, a role and an action, and none disappears;
//! - the identity keys never change;
//! - someone outside the case changes nothing;
//! - the record always saves and loads.

use saksi_testkit::{at, ms};

use saksi_shared::Timestamp;
use std::collections::HashMap;

use saksi_shared::automerge::{ActorId, Automerge, ChangeHash, ROOT, ReadDoc as _};
use saksi_shared::catalogue::{MAX_LIST_ITEMS, RecordKind};
use saksi_shared::policy::{PolicyGate, Principal};
use saksi_shared::record::{FieldInput, FieldValue, Record, RecordError};
use saksi_shared::sync::{DocSync, changes_message};
use saksi_shared::workflow::{may_reach, transitions_from};
use saksi_shared::{DocumentId, Editor, Role};
use saksi_testkit::Rng;

use crate::harness::editor;

const LIST: &str = "judges";

struct Member {
    editor: Editor,
    principal: Principal,
}

fn member(user: &str, device: &str, role: Role, cases: &[DocumentId]) -> Member {
    let editor = editor(user, device, role);
    Member {
        principal: Principal {
            who: saksi_shared::Who::new(user, device),
            role,
            cases: cases.iter().copied().collect(),
        },
        editor,
    }
}

fn list_len(record: &Record) -> usize {
    match record.view().expect("a record").fields.get(LIST) {
        Some(FieldValue::List(items)) => items.len(),
        _ => 0,
    }
}

/// One random edit on `fork` as `ed`, as the record API allows it from what the fork shows.
fn edit(fork: &mut Record, ed: &Editor, rng: &mut Rng, now: Timestamp) -> Result<(), RecordError> {
    match rng.below(6) {
        0 => fork.set_field("court", FieldInput::Text(format!("សាក្សី {now}")), ed, now),
        1 => {
            let from = fork.view()?.status;
            let steps: Vec<_> = transitions_from(from, ed.role).collect();
            if steps.is_empty() {
                return Ok(());
            }
            let to = steps[rng.below(steps.len())].to;
            fork.transition(to, Some("ជំហាន"), ed, now)
        }
        2 => fork.comment("មតិយោបល់", ed, now),
        3 => {
            for i in 0..=rng.below(3) {
                let at = rng.below(list_len(fork) + 1);
                fork.list_insert(LIST, at, &format!("ចៅក្រម {now}.{i}"), ed, now)?;
            }
            Ok(())
        }
        4 => {
            let len = list_len(fork);
            if len == 0 {
                return Ok(());
            }
            fork.list_remove(LIST, rng.below(len), ed, now)
        }
        _ => {
            let len = list_len(fork);
            if len > 0 {
                fork.list_remove(LIST, rng.below(len), ed, now)?;
            }
            fork.list_insert(LIST, 0, &format!("ចៅក្រម {now}"), ed, now)
        }
    }
}

fn run(seed: u64) {
    let mut rng = Rng::new(seed);
    let case = DocumentId::from_bytes([1; 16]);
    let doc_id = DocumentId::from_bytes([2; 16]);
    let roster = [
        member("sokha", "sokha-phone", Role::Monitor, &[case]),
        member("dara", "dara-phone", Role::Monitor, &[case]),
        member("chenda", "chenda-laptop", Role::Coordinator, &[case]),
        member("kosal", "kosal-phone", Role::Monitor, &[]),
    ];
    let sokha = &roster[0].editor;
    let mut record = Record::create(
        RecordKind::CourtObservation,
        &case,
        ActorId::from([0x51; 16]),
        sokha,
        at(1_000),
    );
    let items: Vec<String> = (0..MAX_LIST_ITEMS - 2)
        .map(|i| format!("ចៅក្រម {i}"))
        .collect();
    record
        .set_list(LIST, &items, sokha, at(1_100))
        .expect("filled");
    let mut sync = DocSync::new(record);
    sync.keep_changes();
    sync.verify_loads();
    let mut bindings: HashMap<ActorId, saksi_shared::DeviceId> =
        HashMap::from([(ActorId::from([0x51; 16]), "sokha-phone".into())]);
    let mut seen: Vec<Vec<ChangeHash>> = vec![sync.record().heads()];
    let identity = |r: &Record| {
        let v = r.view().expect("a record");
        (v.kind, v.case, v.created_by, v.created_at)
    };
    let start = identity(sync.record());

    for step in 0..40i64 {
        let who = &roster[rng.below(roster.len())];
        let heads = seen[rng.below(seen.len())].clone();
        let before = sync.record().doc().clone();
        let now = at(2_000 + step * 100);
        let mut fork = Record::from_automerge(
            before
                .fork_at(&heads)
                .expect("old heads")
                .with_actor(ActorId::from(rng.bytes16())),
        );
        let mut made = false;
        for i in 0..=rng.below(3) {
            made |= edit(&mut fork, &who.editor, &mut rng, now + ms(i as u64)).is_ok();
        }
        let changes = fork.doc().get_changes(&heads);
        if !made || changes.is_empty() {
            continue;
        }
        let peer = who.principal.who.device.clone();
        if !sync.has_peer(&peer) {
            sync.add_peer(&peer, None);
        }
        let mut gate = PolicyGate {
            doc_id,
            who: &who.principal,
            bindings: &mut bindings,
        };
        let message = changes_message(&changes, fork.heads());
        let _ = sync.receive(&peer, &message, &mut gate);

        let context = format!("seed {seed}, step {step}, {}", who.editor.who.user);
        let after = sync.record();
        let loaded = Automerge::load(&after.save()).expect("the record loads");
        let (mut a, mut b) = (loaded.get_heads(), after.heads());
        a.sort();
        b.sort();
        assert_eq!(a, b, "{context}: save/load keeps the heads");
        assert_eq!(identity(after), start, "{context}: identity keys");
        let (was, view) = (
            Record::from_automerge(before.clone())
                .view()
                .expect("a record"),
            after.view().expect("a record"),
        );
        // The status shown before, unless the sender saw it (then any step it may take from
        // it is its own to take).
        let current = before.get(ROOT, "status").expect("read").map(|(_, id)| id);
        let saw_it = before
            .get_all_at(ROOT, "status", &heads)
            .expect("read")
            .iter()
            .any(|(_, id)| Some(id) == current.as_ref());
        if !saw_it && !may_reach(was.status, who.editor.role) {
            assert_eq!(
                view.status, was.status,
                "{context}: a status the sender could not set was overruled"
            );
        }
        assert!(
            list_len(after) <= MAX_LIST_ITEMS,
            "{context}: {} items",
            list_len(after)
        );
        assert!(view.review.len() >= was.review.len(), "{context}: review");
        for entry in &view.review {
            assert!(
                !entry.author.is_empty() && !entry.role.is_empty() && !entry.action.is_empty(),
                "{context}: an unsigned review entry"
            );
        }
        if who.principal.cases.is_empty() {
            assert_eq!(
                after.heads(),
                before.get_heads(),
                "{context}: an outsider wrote"
            );
        }
        seen.push(after.heads());
    }
}

#[test]
fn edits_on_old_heads_never_reach_a_state_the_policy_would_refuse() {
    for seed in 0..64 {
        run(seed);
    }
}
