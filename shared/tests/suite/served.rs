//! [`ServedDocument`] on its own: the order of its effects (nothing is answered before it is
//! stored), a failed store (nothing unstored is acknowledged), and changes that arrive from
//! elsewhere. The server's document task performs exactly these effects; the hub-driven suites
//! cover the policy through the same code.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use saksi_shared::automerge::ActorId;
use saksi_shared::catalogue::RecordKind;
use saksi_shared::policy::Principal;
use saksi_shared::protocol::{Message, PROTOCOL_VERSION, PeerMetadata};
use saksi_shared::record::FieldInput;
use saksi_shared::served::{
    Effect, Loaded, PeerInfo, PeerMessage, STORE_FAILED, ServedDocument, SharedBindings, Tuning,
};
use saksi_shared::sync::{Event, Repo};
use saksi_shared::{DocumentId, Editor, Record, Role};
use saksi_testkit::at;

use crate::harness::editor;

const COURT: &str = "សាលាដំបូងខេត្តកណ្ដាល";

/// A phone that has finished the handshake with a server called `server`.
fn phone(device: &str, actor: u8) -> Repo {
    let mut repo = Repo::new(format!("{device}-tab").into(), [actor; 16]);
    let _join = repo.connect();
    let peer = Message::Peer {
        sender_id: "server".into(),
        target_id: repo.peer_id().to_owned().into(),
        selected_protocol_version: PROTOCOL_VERSION.into(),
        metadata: Some(PeerMetadata {
            storage_id: None,
            is_ephemeral: false,
        }),
    };
    let events = repo.receive(&peer.encode()).expect("peer");
    assert!(matches!(events.as_slice(), [Event::Connected { .. }]));
    repo
}

/// The phone's sync messages for `id`, as the served document receives them.
fn messages(repo: &mut Repo, conn: u64, who: &Arc<Principal>, id: DocumentId) -> Vec<PeerMessage> {
    repo.take_outgoing()
        .into_iter()
        .filter_map(|frame| match Message::decode(&frame).expect("frame") {
            Message::Sync {
                document_id, data, ..
            } if document_id == id => Some(data),
            _ => None,
        })
        .map(|data| PeerMessage {
            peer: PeerInfo {
                conn,
                peer_id: repo.peer_id().to_owned().into(),
                device: who.who.device.clone(),
            },
            who: who.clone(),
            data,
            is_request: false,
        })
        .collect()
}

fn principal(editor: &Editor, case: DocumentId) -> Arc<Principal> {
    Arc::new(Principal::of(editor, [case].into_iter().collect()))
}

fn effects(doc: &mut ServedDocument) -> Vec<Effect> {
    std::iter::from_fn(|| doc.next_effect()).collect()
}

fn frames_to(effects: &[Effect], conn: u64) -> Vec<Message> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send { conn: c, frame } if *c == conn => {
                Some(Message::decode(frame).expect("frame"))
            }
            _ => None,
        })
        .collect()
}

/// Passes messages between the phone and the served document until the document asks for a
/// store (returned with every effect before it) or the two have nothing more to say.
fn until_store(doc: &mut ServedDocument, s: &mut Setup, conn: u64) -> Vec<Effect> {
    let bindings = SharedBindings::default();
    for _ in 0..20 {
        let messages = messages(&mut s.phone, conn, &s.who, s.id);
        if messages.is_empty() {
            break;
        }
        let left = doc.receive(messages, &HashMap::new(), &bindings);
        assert!(left.is_empty());
        doc.flush(Duration::ZERO, |_| 0);
        let out = effects(doc);
        if out.iter().any(|e| matches!(e, Effect::Store(_))) {
            return out;
        }
        for effect in out {
            if let Effect::Send { frame, .. } = effect {
                s.phone.receive(&frame).expect("answer");
            }
        }
    }
    Vec::new()
}

/// The store request among `effects`, which must be the last one: nothing goes out before it.
fn last_store(effects: &[Effect]) -> &saksi_shared::served::StoreRequest {
    match effects.last() {
        Some(Effect::Store(request)) => request,
        other => panic!("the store is not last: {other:?} in {effects:?}"),
    }
}

struct Setup {
    case: DocumentId,
    sophea: Editor,
    phone: Repo,
    who: Arc<Principal>,
    id: DocumentId,
}

/// A monitor's phone with a new observation, and a served document for its id.
fn new_observation() -> (Setup, ServedDocument) {
    let case = DocumentId::from_bytes([0xca; 16]);
    let sophea = editor("sophea", "phone-s", Role::Monitor);
    let mut phone = phone("phone-s", 1);
    let id = phone.create(
        RecordKind::CourtObservation,
        &case,
        &sophea,
        at(1_000),
        [7; 16],
    );
    phone
        .edit(&id, |r| {
            r.set_field("court", FieldInput::Text(COURT.into()), &sophea, at(2_000))
        })
        .expect("doc")
        .expect("edit");
    let who = principal(&sophea, case);
    let doc = ServedDocument::new(id, "server".into(), Tuning::IMMEDIATE, None);
    (
        Setup {
            case,
            sophea,
            phone,
            who,
            id,
        },
        doc,
    )
}

#[test]
fn a_new_record_is_answered_only_after_it_is_stored() {
    let (mut s, mut doc) = new_observation();
    let first = until_store(&mut doc, &mut s, 1);
    // The store comes last: nothing is sent to anyone before it is reported.
    let request = last_store(&first);
    assert!(request.created && !request.changes.is_empty());
    let summary = request.summary.as_ref().expect("a summary for the index");
    assert!(summary.title.contains(COURT), "{}", summary.title);
    assert_eq!(
        request.new_actors.len(),
        1,
        "the phone's actor is bound to its device"
    );
    assert!(doc.is_storing());
    assert!(doc.record().is_none(), "not a stored record until stored");
    doc.stored(true);
    let after = effects(&mut doc);
    assert!(
        frames_to(&after, 1)
            .iter()
            .any(|m| matches!(m, Message::Sync { .. })),
        "{after:?}"
    );
    assert!(doc.record().is_some());
    assert!(!doc.is_storing());
}

#[test]
fn a_failed_store_of_a_new_record_acknowledges_nothing() {
    let (mut s, mut doc) = new_observation();
    last_store(&until_store(&mut doc, &mut s, 1));
    doc.stored(false);
    let after = effects(&mut doc);
    let to_phone = frames_to(&after, 1);
    assert!(
        matches!(to_phone.as_slice(), [Message::Error { message, .. }] if message == STORE_FAILED),
        "{to_phone:?}"
    );
    assert!(doc.record().is_none(), "nothing of it is kept");
}

/// A served document holding the phone's observation, as loaded from storage, with the phone
/// in sync.
fn stored_observation() -> (Setup, ServedDocument, Vec<u8>) {
    let (mut s, mut doc) = new_observation();
    last_store(&until_store(&mut doc, &mut s, 1));
    doc.stored(true);
    for effect in effects(&mut doc) {
        if let Effect::Send { frame, .. } = effect {
            s.phone.receive(&frame).expect("answer");
        }
    }
    // Whatever the phone still has to say (its acknowledgement) is answered with nothing new.
    assert!(until_store(&mut doc, &mut s, 1).is_empty());
    let saved = doc.record().expect("stored").save();
    (s, doc, saved)
}

#[test]
fn a_failed_store_of_new_changes_reloads_and_the_sender_sends_them_again() {
    let (mut s, mut doc, saved) = stored_observation();
    s.phone
        .edit(&s.id, |r| {
            r.set_field(
                "case_number",
                FieldInput::Text("ក-១២/២០២៦".into()),
                &s.sophea,
                at(3_000),
            )
        })
        .expect("doc")
        .expect("edit");
    let out = until_store(&mut doc, &mut s, 1);
    assert!(!last_store(&out).created);
    doc.stored(false);
    let after = effects(&mut doc);
    assert!(
        frames_to(&after, 1)
            .iter()
            .all(|m| matches!(m, Message::Error { message, .. } if message == STORE_FAILED)),
        "only the fixed error: {after:?}"
    );
    assert!(matches!(after.last(), Some(Effect::Reload)));
    // The driver reloads what storage has: the case number is not there, and the phone, told to send
    // again, still has it.
    let record = Record::load(&saved, ActorId::from([0xee; 16])).expect("load");
    doc.reload(Some(Loaded {
        record,
        snapshot: None,
        uncompacted: 1,
    }));
    let number = doc
        .record()
        .expect("reloaded")
        .read()
        .field("case_number")
        .expect("field");
    assert!(number.is_none(), "{number:?}");
    assert!(!s.phone.is_synced(&s.id));
}

#[test]
fn changes_from_elsewhere_are_stored_then_sent_to_every_peer() {
    let (s, mut doc, _) = stored_observation();
    let bindings = SharedBindings::default();
    // A second phone of the team opens the record.
    let vanna = editor("vanna", "phone-v", Role::Monitor);
    let who_v = principal(&vanna, s.case);
    let mut other = phone("phone-v", 2);
    other.request(s.id);
    let request = other
        .take_outgoing()
        .into_iter()
        .filter_map(|f| match Message::decode(&f).expect("frame") {
            Message::Request {
                document_id, data, ..
            } if document_id == s.id => Some(data),
            _ => None,
        })
        .map(|data| PeerMessage {
            peer: PeerInfo {
                conn: 2,
                peer_id: other.peer_id().to_owned().into(),
                device: "phone-v".into(),
            },
            who: who_v.clone(),
            data,
            is_request: true,
        })
        .collect();
    doc.receive(request, &HashMap::new(), &bindings);
    doc.flush(Duration::ZERO, |_| 0);
    let _ = effects(&mut doc);

    // Changes made on another server instance (here: a third copy of the record).
    let mut elsewhere = Record::load(
        &doc.record().expect("stored").save(),
        ActorId::from([0x33; 16]),
    )
    .expect("copy");
    let heads = elsewhere.heads();
    elsewhere
        .set_field(
            "court",
            FieldInput::Text("សាក្សី".into()),
            &s.sophea,
            at(4_000),
        )
        .expect("set");
    let changes: Vec<Vec<u8>> = elsewhere
        .doc()
        .get_changes(&heads)
        .iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect();
    assert!(!changes.is_empty());
    assert_eq!(
        doc.external_changes(&changes).expect("applied"),
        changes.len()
    );
    let stored = effects(&mut doc);
    assert!(matches!(stored.as_slice(), [Effect::Store(r)] if r.changes.len() == changes.len()));
    doc.stored(true);
    doc.flush(Duration::ZERO, |_| 0);
    let sent = effects(&mut doc);
    for conn in [1, 2] {
        assert!(
            frames_to(&sent, conn)
                .iter()
                .any(|m| matches!(m, Message::Sync { .. })),
            "peer {conn} gets the changes: {sent:?}"
        );
    }
    // The same changes again are nothing new.
    assert_eq!(doc.external_changes(&changes).expect("known"), 0);
    assert!(effects(&mut doc).is_empty());
}

#[test]
fn changes_from_elsewhere_that_are_not_changes_are_refused_and_change_nothing() {
    let (_s, mut doc, _) = stored_observation();
    let heads = doc.record().expect("stored").heads();
    assert!(doc.external_changes(&[b"not a change".to_vec()]).is_err());
    assert!(effects(&mut doc).is_empty());
    assert_eq!(doc.record().expect("stored").heads(), heads);
}
