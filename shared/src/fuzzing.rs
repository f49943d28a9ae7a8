//! Entry points for the fuzz targets (`fuzz/`, run with `cargo +nightly fuzz`), shared with the
//! regression tests that replay every crasher ever found (`shared/tests/suite/fuzz_regressions.rs`).
//!
//! Each function takes arbitrary bytes and must return without panicking; where the input is
//! accepted it also checks a property that must hold (a decoded message re-encodes to the same
//! message; a loaded document saves and loads to the same heads).

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use automerge::{ActorId, Automerge};

use crate::catalogue::RecordKind;
use crate::cbor::Cbor;
use crate::id::DocumentId;
use crate::policy::{PolicyGate, Principal};
use crate::protocol::{Message, PROTOCOL_VERSION};
use crate::record::{Editor, FieldInput, Record};
use crate::sync::{DocSync, Repo};
use crate::workflow::Role;

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
        let editor = Editor {
            user: "dara".into(),
            device: "phone".into(),
            role: Role::Monitor,
        };
        let mut record = Record::create(
            RecordKind::CourtObservation,
            &case,
            ActorId::from([3; 16]),
            &editor,
            1_000,
        );
        record
            .set_field("court", FieldInput::Text("សាលាដំបូង".into()), &editor, 1_100)
            .expect("seed edit");
        record
            .set_text("narrative", "សាក្សី", &editor, 1_200)
            .expect("seed edit");
        World {
            case,
            doc_id,
            record: record.into_automerge(),
            who: Principal {
                user: "sokha".into(),
                device: "other-phone".into(),
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
        let mut bindings: HashMap<ActorId, String> = HashMap::new();
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
