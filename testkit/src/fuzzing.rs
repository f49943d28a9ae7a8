//! Entry points for the fuzz targets (`fuzz/`, run with `cargo +nightly fuzz`), shared with the
//! regression tests that replay every crasher ever found (`shared/tests/suite/fuzz_regressions.rs`).
//!
//! Each function takes arbitrary bytes and must return without panicking; where the input is
//! accepted it also checks a property that must hold (a decoded message re-encodes to the same
//! message; a loaded document saves and loads to the same heads).

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use crate::at;
use automerge::{ActorId, Automerge};

use saksi_shared::catalogue::RecordKind;
use saksi_shared::cbor::Cbor;
use saksi_shared::id::DocumentId;
use saksi_shared::policy::{PolicyGate, Principal};
use saksi_shared::protocol::{Message, PROTOCOL_VERSION};
use saksi_shared::record::{Editor, FieldInput, Record};
use saksi_shared::sync::{DocSync, Repo, changes_message};
use saksi_shared::workflow::Role;

/// Decodes a protocol frame (and the CBOR under it). Accepted messages round-trip.
pub fn protocol_decode(data: &[u8]) {
    let _ = Cbor::decode(data, 1 << 20);
    if let Ok(message) = Message::decode(data) {
        let again = Message::decode(&message.encode()).expect("an encoded message decodes");
        assert_eq!(again, message, "round trip");
    }
}

struct World {
    case: DocumentId,
    doc_id: DocumentId,
    record: Automerge,
    who: Principal,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let case = DocumentId::from_bytes([1; 16]);
        let doc_id = DocumentId::from_bytes([2; 16]);
        let editor = Editor::new("dara", "phone", Role::Monitor);
        let mut record = Record::create(
            RecordKind::CourtObservation,
            &case,
            ActorId::from([3; 16]),
            &editor,
            at(1_000),
        );
        record
            .set_field(
                "court",
                FieldInput::Text("សាលាដំបូង".into()),
                &editor,
                at(1_100),
            )
            .expect("seed edit");
        record
            .set_text("narrative", "សាក្សី", &editor, at(1_200))
            .expect("seed edit");
        World {
            case,
            doc_id,
            record: record.into_automerge(),
            who: Principal {
                who: saksi_shared::Who::new("sokha", "other-phone"),
                role: Role::Monitor,
                cases: HashSet::from([case]),
            },
        }
    })
}

/// The sync engine's handling of an incoming message. The first byte chooses the side:
/// even, the server side ([`DocSync::receive`] through the write policy, then `generate`);
/// odd, a client [`Repo`] receiving a protocol frame after its handshake.
pub fn sync_receive(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let w = world();
    if mode % 2 == 0 {
        let mut sync = DocSync::new(Record::from_automerge(w.record.clone()));
        sync.add_peer("peer", None);
        let mut bindings: HashMap<ActorId, saksi_shared::DeviceId> = HashMap::new();
        let mut gate = PolicyGate {
            doc_id: w.doc_id,
            who: &w.who,
            bindings: &mut bindings,
        };
        if sync.receive("peer", rest, &mut gate).is_ok() {
            let _ = sync.generate("peer");
            let _ = sync.record().view();
        }
        let _ = w.case;
    } else {
        let mut repo = Repo::new("fuzz-tab".into(), [4; 16]);
        let _ = repo.add_document(w.doc_id, &w.record.save(), None);
        let _ = repo.connect();
        let peer = Message::Peer {
            sender_id: "server".into(),
            target_id: "fuzz-tab".into(),
            selected_protocol_version: PROTOCOL_VERSION.into(),
            metadata: None,
        };
        repo.receive(&peer.encode()).expect("handshake");
        let _ = repo.take_outgoing();
        if repo.receive(rest).is_ok() {
            let _ = repo.take_outgoing();
            for id in repo.documents().copied().collect::<Vec<_>>() {
                let _ = repo.record(&id).map(Record::view);
            }
        }
    }
}

/// Loads a stored document and reads it every way the server and console do. Documents that
/// load save and load again to the same heads.
pub fn document_load(data: &[u8]) {
    let Ok(record) = Record::load(data, ActorId::from([5; 16])) else {
        return;
    };
    let _ = record.view();
    let _ = record.read().summary();
    let _ = record.history();
    let _ = record.validate_for_submit("2026-01-01");
    let saved = record.save();
    let again = Record::load(&saved, ActorId::from([6; 16])).expect("a saved document loads");
    let (mut a, mut b) = (record.heads(), again.heads());
    a.sort();
    b.sort();
    assert_eq!(a, b, "save/load keeps the heads");
}

/// Reads choices from fuzz input, 0 once it runs out.
struct Choices<'a>(&'a [u8]);

impl Choices<'_> {
    fn next(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn pick<T: Clone>(&mut self, options: &[T]) -> T {
        options[self.next() as usize % options.len()].clone()
    }
}

/// Every operation id of a document's changes, by the object it landed in (for choosing real and
/// almost-real references).
fn op_ids(doc: &Automerge) -> Vec<automerge::legacy::OpId> {
    doc.get_changes(&[])
        .iter()
        .flat_map(|c| {
            let actor = c.actor_id().clone();
            (c.start_op().get()..=c.max_op()).map(move |n| automerge::legacy::OpId::new(n, &actor))
        })
        .collect()
}

/// Builds an automerge change from arbitrary choices over a real record (start counter,
/// dependencies, sequence number, operations on real, made-up and same-change objects,
/// elements and predecessors) and offers it to the server's sync engine through the write
/// policy, as a reviewer, a team member or an outsider. Whatever is accepted, the document
/// must still save and load with the same heads: the server's invariant
/// ([`saksi_shared::integrity`]).
pub fn malformed_change(data: &[u8]) {
    use automerge::legacy::{ElementId, Key, ObjectId, Op, OpId, OpType};
    use automerge::{ExpandedChange, ScalarValue};

    static FACTS: OnceLock<(Vec<OpId>, Vec<automerge::ChangeHash>, u64)> = OnceLock::new();
    let w = world();
    let mut c = Choices(data);
    let doc = &w.record;
    let (ids, heads, max_op) = FACTS.get_or_init(|| {
        let max_op = doc.get_changes(&[]).iter().map(|c| c.max_op()).max();
        (op_ids(doc), doc.get_heads(), max_op.unwrap_or(0))
    });
    let (heads, max_op) = (heads, *max_op);
    let (own, ghost) = (ActorId::from([7; 16]), ActorId::from([3; 16]));
    let start = match c.next() % 5 {
        0 => 1,
        1 => max_op,
        2 => max_op + 1 + u64::from(c.next()),
        _ => max_op + 1,
    };
    let deps = match c.next() % 6 {
        0 => Vec::new(),
        1 => heads.iter().take(1).copied().collect(),
        _ => heads.clone(),
    };
    let seq = match c.next() % 6 {
        0 => 2 + u64::from(c.next()),
        _ => 1,
    };
    let real = |c: &mut Choices<'_>| ids[c.next() as usize % ids.len()].clone();
    let count = c.next() % 8;
    let mut ops = Vec::new();
    for i in 0..u64::from(count) {
        let here = |n: u64| OpId::new(start + n % (i + 1), &own);
        let obj = match c.next() % 8 {
            0 => ObjectId::Root,
            1 => ObjectId::Id(OpId::new(u64::from(c.next()), &ghost)),
            2 if i > 0 => ObjectId::Id(here(u64::from(c.next()))),
            _ => ObjectId::Id(real(&mut c)),
        };
        let key = match c.next() % 6 {
            0 => Key::Seq(ElementId::Head),
            1 => Key::Seq(ElementId::Id(real(&mut c))),
            2 => Key::Seq(ElementId::Id(OpId::new(u64::from(c.next()), &ghost))),
            3 if i > 0 => Key::Seq(ElementId::Id(here(u64::from(c.next())))),
            _ => Key::Map(
                c.pick(&["court", "verdict", "status", "fields", "x", "judges"])
                    .into(),
            ),
        };
        let action = match c.next() % 7 {
            0 => OpType::Delete,
            1 => OpType::Make(c.pick(&[
                automerge::ObjType::Map,
                automerge::ObjType::List,
                automerge::ObjType::Text,
            ])),
            2 => OpType::Put(ScalarValue::Int(i64::from(c.next()))),
            3 => OpType::Increment(1),
            _ => OpType::Put(ScalarValue::Str("សាក្សី".into())),
        };
        let mut pred: Vec<OpId> = match c.next() % 5 {
            0 => vec![real(&mut c)],
            1 => vec![OpId::new(u64::from(c.next()), &ghost)],
            2 if i > 0 => vec![here(u64::from(c.next()))],
            3 => match &key {
                Key::Seq(ElementId::Id(e)) => vec![e.clone()],
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        pred.sort();
        pred.dedup();
        ops.push(Op {
            action,
            obj,
            key,
            pred: pred.into(),
            insert: c.next() % 3 == 0,
        });
    }
    let Some(start_op) = std::num::NonZeroU64::new(start) else {
        return;
    };
    let expanded = ExpandedChange {
        operations: ops,
        actor_id: own,
        hash: None,
        seq,
        start_op,
        time: 0,
        message: None,
        deps,
        extra_bytes: Vec::new(),
        author: None,
    };
    // Building the change sorts predecessors by automerge's own order, which may differ from
    // the legacy order: such inputs are not changes at all.
    let Some(change) = saksi_shared::integrity::guarded(|| automerge::Change::from(expanded))
    else {
        return;
    };
    let role = c.pick(&[Role::Coordinator, Role::Monitor, Role::Liaison]);
    let who = Principal {
        role,
        cases: if c.next() % 4 == 0 {
            HashSet::new()
        } else {
            w.who.cases.clone()
        },
        ..w.who.clone()
    };
    let message = changes_message(std::slice::from_ref(&change), vec![change.hash()]);
    let mut sync = DocSync::new(Record::from_automerge(doc.clone()));
    sync.verify_loads();
    sync.add_peer("peer", None);
    let mut bindings: HashMap<ActorId, saksi_shared::DeviceId> = HashMap::new();
    let mut gate = PolicyGate {
        doc_id: w.doc_id,
        who: &who,
        bindings: &mut bindings,
    };
    let accepted = sync
        .receive("peer", &message, &mut gate)
        .is_ok_and(|r| !r.applied.is_empty());
    if accepted {
        let saved = sync.record().save();
        let again = Automerge::load(&saved).expect("an accepted change leaves a loadable document");
        let (mut a, mut b) = (sync.record().heads(), again.get_heads());
        a.sort();
        b.sort();
        assert_eq!(a, b, "save/load keeps the heads");
        assert!(
            sync.record().view().is_ok(),
            "an accepted change leaves a record"
        );
    }
}
