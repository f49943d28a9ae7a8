//! The server's write and read authorisation, exercised through [`saksi_testkit::Hub`] with hostile
//! changes crafted on a phone with automerge's own API (the way a modified client would), then
//! synced normally. For every refusal: the hub reports the expected code, keeps none of the
//! change, tells the sender, forwards nothing to others, and keeps syncing the sender's other
//! documents on the same connection.
//!
//! The last tests judge changes directly on the server's stored copy of a record
//! ([`policy::check_change`], or [`sync::DocSync::receive`] through a [`policy::PolicyGate`]):
//! changes a modified automerge could send but automerge's API cannot make (built by hand as
//! an `ExpandedChange`), and steps made offline on old heads.
//!
//! [`saksi_testkit::Hub`]: saksi_testkit::Hub
//! [`policy::check_change`]: saksi_shared::policy::check_change
//! [`policy::PolicyGate`]: saksi_shared::policy::PolicyGate
//! [`sync::DocSync::receive`]: saksi_shared::sync::DocSync::receive

use std::collections::HashMap;
use std::num::NonZeroU64;

use saksi_shared::Timestamp;
use saksi_shared::automerge::legacy::{ElementId, Key, ObjectId, Op, OpId, OpType};
use saksi_shared::automerge::transaction::{CommitOptions, Transactable, Transaction};
use saksi_shared::automerge::{
    ActorId, Automerge, AutomergeError, Change, ChangeHash, ExpandedChange, ObjId, ObjType, ROOT,
    ReadDoc, ScalarValue,
};
use saksi_shared::catalogue::{MAX_LIST_ITEMS, RecordKind};
use saksi_shared::policy::{PolicyGate, Principal, Refusal, RefusalCode, check_change};
use saksi_shared::protocol::Message;
use saksi_shared::record::{FieldInput, FieldValue, RecordError};
use saksi_shared::sync::{DocSync, RESTORED_NOTE, Received, changes_message};
use saksi_shared::{DocumentId, Editor, Record, Role, Status};
use saksi_testkit::at;

use crate::harness::{Rng, editor};
use crate::world::{CHENDA, DARA, LINA, RITH, SOKHA, World, fields_of, note, review_of};

/// A positive control: everything the record API offers to each role passes the same hub.
#[test]
fn legal_edits_by_every_role_pass() {
    let mut w = World::new();
    let id = w.observation(0x10, &[DARA, CHENDA]);
    w.edit(SOKHA, id, |r, ed, now| {
        r.set_field("court", FieldInput::Text("សាលាដំបូងខេត្តកណ្ដាល".into()), ed, now)?;
        r.list_insert("charges", 0, "ការឃុំខ្លួនបណ្ដោះអាសន្ន", ed, now)?;
        r.splice_text("narrative", 0, 0, "សាក្សី", ed, now)?;
        r.comment("ចំណាំ", ed, now)
    });
    w.edit(DARA, id, |r, ed, now| {
        r.set_field("pretrial_detention_days", FieldInput::Number(90), ed, now)?;
        r.clear_field("court", ed, now)?;
        r.transition(Status::Submitted, Some("រួចរាល់"), ed, now)
    });
    w.edit(CHENDA, id, |r, ed, now| {
        r.transition(Status::Approved, None, ed, now)?;
        r.transition(Status::Archived, None, ed, now)?;
        r.set_field("sentence", FieldInput::Text("ពន្ធនាគារ ២ ឆ្នាំ".into()), ed, now)
    });
    let lina_ed = w.ed(LINA);
    let now = w.tick();
    let statement = w.net.phone_mut(LINA).repo.create(
        RecordKind::FamilyStatement,
        &w.case,
        &lina_ed,
        now,
        [0x11; 16],
    );
    w.net.settle();
    w.edit(LINA, statement, |r, ed, now| {
        r.set_field("consent_given", FieldInput::Text("yes".into()), ed, now)?;
        r.set_text("statement", "កូនប្រុសខ្ញុំត្រូវបានចាប់ខ្លួន។", ed, now)
    });
    assert_eq!(w.net.hub.refusals(), &[]);
    let hub = w.net.hub.record(&id).expect("hub copy");
    assert_eq!(hub.view().expect("view").status, Status::Archived);
    assert_eq!(
        w.net.hub.record(&statement).expect("hub copy").heads(),
        w.net.phone(LINA).record(&statement).heads()
    );
}

#[test]
fn a_monitor_cannot_approve() {
    let mut w = World::new();
    let id = w.observation(0x20, &[DARA]);
    let other = w.observation(0x21, &[]);
    w.edit(SOKHA, id, |r, ed, now| {
        r.transition(Status::Submitted, None, ed, now)
    });
    // The API refuses locally...
    let (ed, now) = (w.ed(SOKHA), w.tick());
    let local = w
        .net
        .phone_mut(SOKHA)
        .repo
        .edit(&id, |r| r.transition(Status::Approved, None, &ed, now))
        .expect("has it");
    assert!(matches!(
        local,
        Err(RecordError::TransitionNotAllowed { .. })
    ));
    // ...and the hub refuses the crafted change.
    let before = w.net.hub.refusals().len();
    let hash = w.craft(SOKHA, id, None, |tx| tx.put(ROOT, "status", "approved"));
    w.assert_refused(SOKHA, id, hash, RefusalCode::Workflow, before);
    assert_eq!(
        w.net
            .hub
            .record(&id)
            .expect("hub")
            .view()
            .expect("view")
            .status,
        Status::Submitted
    );
    w.assert_still_syncs(SOKHA, other);
}

#[test]
fn a_monitor_cannot_write_a_review_entry_in_someone_elses_name() {
    let mut w = World::new();
    let id = w.observation(0x22, &[DARA]);
    let other = w.observation(0x23, &[]);
    let before = w.net.hub.refusals().len();
    let now = w.now;
    let hash = w.craft(SOKHA, id, None, |tx| {
        let review = review_of(tx)?;
        let entry = tx.insert_object(&review, 0, ObjType::Map)?;
        tx.put(&entry, "author", "chenda")?;
        tx.put(&entry, "role", "monitor")?;
        tx.put(&entry, "at", now.as_millis())?;
        tx.put(&entry, "action", "comment")?;
        tx.put(&entry, "text", "ត្រឹមត្រូវ")
    });
    w.assert_refused(SOKHA, id, hash, RefusalCode::ReviewForgery, before);
    w.assert_still_syncs(SOKHA, other);
}

/// Red-team finding: a note repeating a key (`{"user":"a","device":"d","user":"b"}`) did not
/// parse, was taken for no note, and so skipped the attribution check (the console showed the
/// change "unconfirmed"). A malformed note is refused like a forged one, even when one of its
/// readings names the sender.
#[test]
fn a_malformed_commit_message_is_refused_not_skipped() {
    for template in [
        r#"{"user":"USER","device":"DEVICE","user":"dara"}"#,
        r#"{"user":"dara","device":"DEVICE","user":"USER"}"#,
        r#"{"user":"USER","device":"DEVICE","us\u0065r":"dara"}"#,
        r#"{"user":"USER","device":"DEVICE","device":"DEVICE"}"#,
        r#"{"user":"USER","device":7}"#,
        r#"{"user":"USER"}"#,
        r#"{"user":"USER","device":"DEVICE""#,
    ] {
        let mut w = World::new();
        let id = w.observation(0x26, &[DARA]);
        let other = w.observation(0x27, &[]);
        let ed = w.ed(SOKHA);
        let forged = template
            .replace("USER", &ed.who.user)
            .replace("DEVICE", &ed.who.device);
        let before = w.net.hub.refusals().len();
        let hash = w.craft(SOKHA, id, Some(forged.clone()), |tx| {
            let fields = fields_of(tx)?;
            tx.put(&fields, "verdict", "acquitted")
        });
        w.assert_refused(SOKHA, id, hash, RefusalCode::ForgedAttribution, before);
        let detail = &w.net.hub.refusals().last().expect("refused").1.detail;
        assert!(detail.contains("commit message"), "{forged}: {detail}");
        w.assert_still_syncs(SOKHA, other);
    }
}

#[test]
fn a_commit_message_naming_another_user_or_device_is_refused() {
    for forged in [note("dara", "dara-phone"), note("sokha", "sokha-tablet")] {
        let mut w = World::new();
        let id = w.observation(0x24, &[DARA]);
        let other = w.observation(0x25, &[]);
        let before = w.net.hub.refusals().len();
        let hash = w.craft(SOKHA, id, Some(forged.clone()), |tx| {
            let fields = fields_of(tx)?;
            tx.put(&fields, "verdict", "acquitted")
        });
        w.assert_refused(SOKHA, id, hash, RefusalCode::ForgedAttribution, before);
        let detail = &w.net.hub.refusals().last().expect("refused").1.detail;
        assert!(detail.contains("commit message"), "{detail}");
        w.assert_still_syncs(SOKHA, other);
    }
}

#[test]
fn a_change_under_an_actor_bound_to_another_device_is_refused() {
    let mut w = World::new();
    let id = w.observation(0x26, &[DARA]);
    // Dara needs a document of her own to show that her connection keeps working.
    let (ed, now) = (w.ed(DARA), w.tick());
    let dara_doc = w.net.phone_mut(DARA).repo.create(
        RecordKind::CourtObservation,
        &w.case,
        &ed,
        now,
        [0x27; 16],
    );
    w.net.settle();
    // Sokha's actor made the record, so the hub bound it to Sokha's phone. Dara's phone reuses
    // it, with an honest commit message.
    let sokha_actor = w.net.phone(SOKHA).repo.actor().clone();
    w.net
        .phone_mut(DARA)
        .repo
        .edit(&id, |r| r.set_actor(sokha_actor.clone()))
        .expect("has it");
    let before = w.net.hub.refusals().len();
    let hash = w.craft(DARA, id, None, |tx| {
        let fields = fields_of(tx)?;
        tx.put(&fields, "verdict", "convicted")
    });
    let change = w
        .net
        .phone(DARA)
        .record(&id)
        .doc()
        .get_change_by_hash(&hash)
        .expect("made locally")
        .actor_id()
        .clone();
    assert_eq!(change, sokha_actor);
    w.assert_refused(DARA, id, hash, RefusalCode::ForgedAttribution, before);
    let detail = &w.net.hub.refusals().last().expect("refused").1.detail;
    assert!(detail.contains("actor"), "refused for the actor: {detail}");
    w.assert_still_syncs(DARA, dara_doc);
}

#[test]
fn creating_a_record_in_a_case_one_is_not_a_member_of_is_refused() {
    let mut w = World::new();
    let (ed, now) = (w.ed(RITH), w.tick());
    // Rith may write in his own case...
    let own = w.net.phone_mut(RITH).repo.create(
        RecordKind::CourtObservation,
        &w.other_case,
        &ed,
        now,
        [0x30; 16],
    );
    w.net.settle();
    assert!(w.net.hub.record(&own).is_some());
    // ...but not in Sokha's.
    let before = w.net.hub.refusals().len();
    let intruder = w.net.phone_mut(RITH).repo.create(
        RecordKind::CourtObservation,
        &w.case,
        &ed,
        now,
        [0x31; 16],
    );
    let hash = w.net.phone(RITH).record(&intruder).heads()[0];
    w.net.settle();
    w.assert_refused(RITH, intruder, hash, RefusalCode::NotAllowed, before);
    assert!(w.net.hub.record(&intruder).is_none(), "nothing is kept");
    w.assert_still_syncs(RITH, own);
}

#[test]
fn a_liaison_cannot_create_a_court_observation() {
    let mut w = World::new();
    let (ed, now) = (w.ed(LINA), w.tick());
    let statement = w.net.phone_mut(LINA).repo.create(
        RecordKind::FamilyStatement,
        &w.case,
        &ed,
        now,
        [0x32; 16],
    );
    w.net.settle();
    assert!(w.net.hub.record(&statement).is_some());
    let before = w.net.hub.refusals().len();
    let observation = w.net.phone_mut(LINA).repo.create(
        RecordKind::CourtObservation,
        &w.case,
        &ed,
        now,
        [0x33; 16],
    );
    let hash = w.net.phone(LINA).record(&observation).heads()[0];
    w.net.settle();
    w.assert_refused(LINA, observation, hash, RefusalCode::NotAllowed, before);
    assert!(w.net.hub.record(&observation).is_none());
    // A family statement's fields, on the same connection, still sync.
    let before_heads = w.net.hub.record(&statement).expect("hub").heads();
    let (ed, now) = (w.ed(LINA), w.tick());
    w.net
        .phone_mut(LINA)
        .repo
        .edit(&statement, |r| {
            r.set_field("place", FieldInput::Text("ពន្ធនាគារព្រៃស".into()), &ed, now)
        })
        .expect("has it")
        .expect("legal");
    w.net.settle();
    assert_ne!(
        w.net.hub.record(&statement).expect("hub").heads(),
        before_heads
    );
}

/// Once a coordinator has taken `steps` (approved, or approved and archived), field staff can
/// change nothing: the API refuses locally and the hub refuses a crafted change.
fn a_monitor_cannot_edit_a_closed_record(steps: &[Status]) {
    let mut w = World::new();
    let id = w.observation(0x34, &[CHENDA]);
    let other = w.observation(0x35, &[]);
    w.edit(SOKHA, id, |r, ed, now| {
        r.transition(Status::Submitted, None, ed, now)
    });
    w.edit(CHENDA, id, |r, ed, now| {
        for step in steps {
            r.transition(*step, Some("បិទ"), ed, now)?;
        }
        Ok(())
    });
    let last = *steps.last().expect("a step");
    assert_eq!(
        w.net.phone(SOKHA).record(&id).view().expect("view").status,
        last,
        "the coordinator's step reached Sokha"
    );
    // The API refuses locally, for fields and comments alike...
    let (ed, now) = (w.ed(SOKHA), w.tick());
    let p = &mut w.net.phone_mut(SOKHA).repo;
    let set = p.edit(&id, |r| {
        r.set_field("verdict", FieldInput::Text("acquitted".into()), &ed, now)
    });
    assert_eq!(set, Some(Err(RecordError::Archived)));
    let comment = p.edit(&id, |r| r.comment("សូមបើកវិញ", &ed, now));
    assert_eq!(comment, Some(Err(RecordError::Archived)));
    // ...and the hub refuses the crafted change.
    let before = w.net.hub.refusals().len();
    let hash = w.craft(SOKHA, id, None, |tx| {
        let fields = fields_of(tx)?;
        tx.put(&fields, "verdict", "acquitted")
    });
    w.assert_refused(SOKHA, id, hash, RefusalCode::Archived, before);
    w.assert_still_syncs(SOKHA, other);
}

#[test]
fn a_monitor_cannot_edit_an_approved_record() {
    a_monitor_cannot_edit_a_closed_record(&[Status::Approved]);
}

#[test]
fn a_monitor_cannot_edit_an_archived_record() {
    a_monitor_cannot_edit_a_closed_record(&[Status::Approved, Status::Archived]);
}

#[test]
fn unknown_fields_wrong_types_and_invalid_choices_are_refused() {
    type Craft = fn(&mut Transaction<'_>, &ObjId) -> Result<(), AutomergeError>;
    let cases: [(&str, Craft); 5] = [
        ("unknown field", |tx, f| {
            tx.put(f, "favourite_colour", "ខៀវ")
        }),
        ("text in a number field", |tx, f| {
            tx.put(f, "pretrial_detention_days", "ដប់")
        }),
        ("a float in a number field", |tx, f| {
            tx.put(f, "pretrial_detention_days", 10.5)
        }),
        ("number in a text field", |tx, f| tx.put(f, "court", 7)),
        ("invalid choice", |tx, f| {
            tx.put(f, "counsel_present", "maybe")
        }),
    ];
    for (what, craft) in cases {
        let mut w = World::new();
        let id = w.observation(0x36, &[DARA]);
        let other = w.observation(0x37, &[]);
        let before = w.net.hub.refusals().len();
        let hash = w.craft(SOKHA, id, None, |tx| {
            let fields = fields_of(tx)?;
            craft(tx, &fields)
        });
        let refusal = w.net.hub.refusals().last().cloned();
        assert!(refusal.is_some(), "{what} was accepted");
        w.assert_refused(SOKHA, id, hash, RefusalCode::InvalidValue, before);
        w.assert_still_syncs(SOKHA, other);
    }
}

#[test]
fn identity_keys_never_change() {
    let cases: [(&str, &str); 3] = [
        ("kind", "family_statement"),
        ("case", "EnrGHeqCd5UQ2jTW2Mo32rzJipp"),
        ("created_by", "dara"),
    ];
    for (key, value) in cases {
        let mut w = World::new();
        let id = w.observation(0x38, &[DARA]);
        let other = w.observation(0x39, &[]);
        let before = w.net.hub.refusals().len();
        let hash = w.craft(SOKHA, id, None, |tx| tx.put(ROOT, key, value));
        w.assert_refused(SOKHA, id, hash, RefusalCode::Immutable, before);
        let view = w.net.hub.record(&id).expect("hub").view().expect("view");
        assert_eq!(view.kind, RecordKind::CourtObservation, "{key}");
        assert_eq!(view.created_by, "sokha", "{key}");
        assert_eq!(view.case, w.case.to_string(), "{key}");
        w.assert_still_syncs(SOKHA, other);
    }
}

#[test]
fn review_entries_cannot_be_deleted_or_changed() {
    type Craft = fn(&mut Transaction<'_>, &ObjId) -> Result<(), AutomergeError>;
    let cases: [(&str, Craft); 2] = [
        ("delete an entry", |tx, review| tx.delete(review, 0)),
        ("edit an entry", |tx, review| {
            let entry = tx.get(review, 0)?.expect("an entry").1;
            tx.put(&entry, "text", "ផ្សេង")
        }),
    ];
    for (what, craft) in cases {
        let mut w = World::new();
        let id = w.observation(0x3a, &[DARA]);
        let other = w.observation(0x3b, &[]);
        w.edit(SOKHA, id, |r, ed, now| r.comment("មតិដំបូង", ed, now));
        let before = w.net.hub.refusals().len();
        let hash = w.craft(SOKHA, id, None, |tx| {
            let review = review_of(tx)?;
            craft(tx, &review)
        });
        w.assert_refused(SOKHA, id, hash, RefusalCode::Immutable, before);
        let review = w
            .net
            .hub
            .record(&id)
            .expect("hub")
            .view()
            .expect("view")
            .review;
        assert_eq!(review.len(), 1, "{what}");
        assert_eq!(review[0].text, "មតិដំបូង", "{what}");
        w.assert_still_syncs(SOKHA, other);
    }
}

/// S3: a monitor of another case asking for a record gets exactly the answer given for an id
/// that does not exist: the same frame, byte for byte, apart from the id.
#[test]
fn forbidden_and_unknown_documents_get_the_same_answer() {
    let mut w = World::new();
    let secret = w.observation(0x40, &[DARA]);
    // An unknown id whose text has the same length, so the frames can be compared directly.
    let mut rng = Rng::new(40);
    let unknown = loop {
        let id = DocumentId::from_bytes(rng.bytes16());
        if id.to_string().len() == secret.to_string().len() {
            break id;
        }
    };
    let mut answers = Vec::new();
    for id in [secret, unknown] {
        let sent_before = w.net.hub_frames[RITH].len();
        w.net.phone_mut(RITH).repo.request(id);
        w.net.settle();
        let frames = w.net.hub_frames[RITH][sent_before..].to_vec();
        assert_eq!(frames.len(), 1, "one answer");
        assert_eq!(
            Message::decode(&frames[0]).expect("valid").type_name(),
            "doc-unavailable"
        );
        answers.push(frames[0].clone());
        assert!(w.net.phone(RITH).unavailable().contains(&id));
        assert!(
            w.net
                .phone(RITH)
                .repo
                .record(&id)
                .is_none_or(Record::is_empty),
            "nothing of the record reached Rith"
        );
    }
    let swapped = replace(
        &answers[1],
        unknown.to_string().as_bytes(),
        secret.to_string().as_bytes(),
    );
    assert_eq!(answers[0], swapped, "identical apart from the document id");

    // The same holds for a `sync` (rather than `request`) naming each id: the hub treats both
    // as a new, empty document private to the connection.
    let rith_conn_frames = |w: &mut World, id: DocumentId| {
        let before = w.net.hub_frames[RITH].len();
        let mut probe = DocSync::new(Record::empty(ActorId::from([9; 16])));
        let data = probe.generate("hub").expect("an opening message");
        let frame = Message::Sync {
            sender_id: "rith-phone-peer".into(),
            target_id: "hub".into(),
            document_id: id,
            data,
        }
        .encode();
        w.net.inject_up(RITH, frame);
        w.net.settle();
        w.net.hub_frames[RITH][before..].to_vec()
    };
    let to_secret = rith_conn_frames(&mut w, secret);
    let to_unknown = rith_conn_frames(&mut w, unknown);
    assert!(!to_secret.is_empty());
    let swapped: Vec<Vec<u8>> = to_unknown
        .iter()
        .map(|f| {
            replace(
                f,
                unknown.to_string().as_bytes(),
                secret.to_string().as_bytes(),
            )
        })
        .collect();
    assert_eq!(to_secret, swapped);
    assert_eq!(w.net.hub.refusals(), &[]);
    // Dara, in the case team, still reads it.
    assert!(!w.net.phone(DARA).record(&secret).is_empty());
}

/// `haystack` with every occurrence of `from` replaced by `to` (same length).
fn replace(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut out = haystack.to_vec();
    let mut found = 0;
    let mut i = 0;
    while i + from.len() <= out.len() {
        if &out[i..i + from.len()] == from {
            out[i..i + from.len()].copy_from_slice(to);
            found += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    assert!(found > 0, "the id is in the frame");
    out
}

/// Approval and archiving are judged from the record as the sender saw it: a monitor's edit
/// made offline, before she could know a coordinator approved and archived the record, is kept
/// rather than wedging her copy of the document.
#[test]
fn an_edit_made_offline_before_the_archiving_is_kept() {
    let mut w = World::new();
    let id = w.observation(0x41, &[CHENDA]);
    w.edit(SOKHA, id, |r, ed, now| {
        r.transition(Status::Submitted, None, ed, now)
    });
    w.net.disconnect(SOKHA);
    w.edit(CHENDA, id, |r, ed, now| {
        r.transition(Status::Approved, None, ed, now)
    });
    let (ed, now) = (w.ed(SOKHA), w.tick());
    w.net
        .phone_mut(SOKHA)
        .repo
        .edit(&id, |r| {
            r.set_field("sentence", FieldInput::Text("ព្យួរទោស".into()), &ed, now)
        })
        .expect("has it")
        .expect("still submitted as Sokha sees it");
    w.edit(CHENDA, id, |r, ed, now| {
        r.transition(Status::Archived, None, ed, now)
    });
    w.net.sync(SOKHA);
    assert_eq!(w.net.hub.refusals(), &[]);
    let view = w.net.hub.record(&id).expect("hub").view().expect("view");
    assert_eq!(view.status, Status::Archived);
    assert_eq!(
        view.fields.get("sentence"),
        Some(&FieldValue::Text("ព្យួរទោស".into()))
    );
    assert_eq!(
        w.net.phone(SOKHA).record(&id).view().expect("view"),
        view,
        "Sokha's phone converged"
    );
}

// The gate on the server's stored copy of a record, without a network: changes built by hand
// (as a modified automerge could send them) or made on a device's copy with automerge's API.

/// Sokha's phone, which created the record.
const SOKHA_PHONE: [u8; 16] = [0x51; 16];
const DARA_PHONE: [u8; 16] = [0x52; 16];
const CHENDA_LAPTOP: [u8; 16] = [0x53; 16];
/// The server's own actor (for the changes it makes to restore a status).
const SERVER: [u8; 16] = [0x5e; 16];
/// A new actor for changes built by hand.
const HAND_MADE: [u8; 16] = [0x44; 16];

fn case_id() -> DocumentId {
    DocumentId::from_bytes([0x61; 16])
}

fn record_id() -> DocumentId {
    DocumentId::from_bytes([0x71; 16])
}

fn sokha_ed() -> Editor {
    editor("sokha", "sokha-phone", Role::Monitor)
}

fn dara_ed() -> Editor {
    editor("dara", "dara-phone", Role::Monitor)
}

fn chenda_ed() -> Editor {
    editor("chenda", "chenda-laptop", Role::Coordinator)
}

/// The server's view of `ed`, signed in on their device, a member of `cases`.
fn principal(ed: &Editor, cases: &[DocumentId]) -> Principal {
    Principal::of(ed, cases.iter().copied().collect())
}

/// Sokha's court observation as the server stores it: in draft, with a court and a narrative.
fn stored() -> Record {
    let ed = sokha_ed();
    let mut record = Record::create(
        RecordKind::CourtObservation,
        &case_id(),
        ActorId::from(SOKHA_PHONE),
        &ed,
        at(1_000),
    );
    record
        .set_field(
            "court",
            FieldInput::Text("សាលាដំបូងខេត្តកណ្ដាល".into()),
            &ed,
            at(1_100),
        )
        .expect("a legal edit");
    record
        .set_text("narrative", "សាក្សី", &ed, at(1_200))
        .expect("a legal edit");
    record
}

/// The write policy's verdict on `change` against the stored `record`.
fn verdict(record: &Record, change: &Change, who: &Principal) -> Result<(), Refusal> {
    check_change(&record_id(), record.doc(), change, who)
}

fn assert_malformed(record: &Record, change: &Change, who: &Principal) {
    let refusal = verdict(record, change, who).expect_err("a malformed change is refused");
    assert_eq!(refusal.code, RefusalCode::Malformed, "{refusal:?}");
}

fn fields_id(doc: &Automerge) -> ObjId {
    doc.get(ROOT, "fields")
        .expect("readable")
        .expect("a record has fields")
        .1
}

/// The id of a field's value: its container, or the operation that wrote a scalar.
fn field_id(doc: &Automerge, field: &str) -> ObjId {
    doc.get(fields_id(doc), field)
        .expect("readable")
        .expect("the field has a value")
        .1
}

/// `counter@actor` as a legacy operation id.
fn parse_op(text: &str) -> OpId {
    let (counter, actor) = text.split_once('@').expect("counter@actor");
    OpId::new(
        counter.parse().expect("a counter"),
        &actor.parse::<ActorId>().expect("an actor"),
    )
}

fn op_id(id: &ObjId) -> OpId {
    parse_op(&id.to_string())
}

/// The element at `index` of a list or text (the insert that made it).
fn element(doc: &Automerge, obj: &ObjId, index: usize) -> OpId {
    parse_op(
        &doc.get_cursor(obj, index, None)
            .expect("an element")
            .to_string(),
    )
}

/// An operation id the document never had, of an actor it knows.
fn ghost() -> OpId {
    OpId::new(9_999, &ActorId::from(SOKHA_PHONE))
}

fn op(action: OpType, obj: &OpId, key: Key, pred: Vec<OpId>, insert: bool) -> Op {
    Op {
        action,
        obj: ObjectId::Id(obj.clone()),
        key,
        pred: pred.into(),
        insert,
    }
}

fn put_text(s: &str) -> OpType {
    OpType::Put(ScalarValue::Str(s.into()))
}

/// A well-formed change of `operations` by `by`, on a new actor: it depends on the document's
/// heads, its counters follow every counter of the document, and its message names `by`. Each
/// test breaks one thing in it.
fn hand_made(doc: &Automerge, by: &Editor, operations: Vec<Op>) -> ExpandedChange {
    let max_op = doc
        .get_changes(&[])
        .iter()
        .map(Change::max_op)
        .max()
        .unwrap_or(0);
    ExpandedChange {
        operations,
        actor_id: ActorId::from(HAND_MADE),
        hash: None,
        seq: 1,
        start_op: NonZeroU64::new(max_op + 1).expect("positive"),
        time: 20_000,
        message: Some(note(&by.who.user, &by.who.device)),
        deps: doc.get_heads(),
        extra_bytes: Vec::new(),
        author: None,
    }
}

/// A put on `fields.court` replacing its value, as automerge writes one.
fn court_put(doc: &Automerge) -> Op {
    op(
        put_text("សាលាឧទ្ធរណ៍"),
        &op_id(&fields_id(doc)),
        Key::Map("court".into()),
        vec![op_id(&field_id(doc, "court"))],
        false,
    )
}

/// [`court_put`] in a change whose counters start at 1, below those it depends on.
fn start_op_one(doc: &Automerge, by: &Editor) -> Change {
    let mut change = hand_made(doc, by, vec![court_put(doc)]);
    change.start_op = NonZeroU64::new(1).expect("one");
    Change::from(change)
}

/// [`court_put`] in a change that depends on nothing, though the document has changes.
fn no_deps(doc: &Automerge, by: &Editor) -> Change {
    let mut change = hand_made(doc, by, vec![court_put(doc)]);
    change.deps = Vec::new();
    Change::from(change)
}

/// A put on `fields.court` replacing a value that never existed.
fn ghost_predecessor(doc: &Automerge, by: &Editor) -> Change {
    let put = op(
        put_text("សាលាឧទ្ធរណ៍"),
        &op_id(&fields_id(doc)),
        Key::Map("court".into()),
        vec![ghost()],
        false,
    );
    Change::from(hand_made(doc, by, vec![put]))
}

/// A character inserted into the narrative after an element that never existed.
fn insert_after_ghost(doc: &Automerge, by: &Editor) -> Change {
    let insert = op(
        put_text("ក"),
        &op_id(&field_id(doc, "narrative")),
        Key::Seq(ElementId::Id(ghost())),
        Vec::new(),
        true,
    );
    Change::from(hand_made(doc, by, vec![insert]))
}

/// A delete of a narrative element that never existed.
fn delete_ghost(doc: &Automerge, by: &Editor) -> Change {
    let delete = op(
        OpType::Delete,
        &op_id(&field_id(doc, "narrative")),
        Key::Seq(ElementId::Id(ghost())),
        vec![ghost()],
        false,
    );
    Change::from(hand_made(doc, by, vec![delete]))
}

/// A change made with automerge's API on `actor`'s copy of `record`, attributed to `by`.
fn device_change(
    record: &Record,
    actor: [u8; 16],
    by: &Editor,
    now: Timestamp,
    f: impl FnOnce(&mut Transaction<'_>) -> Result<(), AutomergeError>,
) -> Change {
    let mut doc = record.doc().clone().with_actor(ActorId::from(actor));
    let message = note(&by.who.user, &by.who.device);
    let hash = doc
        .transact_with(
            |_| {
                CommitOptions::default()
                    .with_message(message)
                    .with_time(now.as_millis())
            },
            f,
        )
        .map(|success| success.hash)
        .map_err(|failure| failure.error)
        .expect("automerge accepts the change")
        .expect("the change has operations");
    doc.get_change_by_hash(&hash).expect("made here")
}

/// A server's `DocSync` for `record` (verifying that the document still loads), which receives
/// `changes` from Dara's phone through the write policy.
fn receive_from_dara(
    record: &Record,
    changes: &[Change],
    heads: Vec<ChangeHash>,
) -> (DocSync, Received) {
    let mut served = record.clone();
    served.set_actor(ActorId::from(SERVER));
    let mut sync = DocSync::new(served);
    sync.verify_loads();
    sync.add_peer("dara-phone", None);
    let who = principal(&dara_ed(), &[case_id()]);
    let mut bindings: HashMap<ActorId, saksi_shared::DeviceId> = HashMap::new();
    let mut gate = PolicyGate {
        doc_id: record_id(),
        who: &who,
        bindings: &mut bindings,
    };
    let received = sync
        .receive("dara-phone", &changes_message(changes, heads), &mut gate)
        .expect("the message is handled");
    (sync, received)
}

/// Heads, sorted.
fn sorted(mut heads: Vec<ChangeHash>) -> Vec<ChangeHash> {
    heads.sort();
    heads
}

/// An empty change still enters the record's history: only a writer may add one. Sokha wrote
/// the record and left the case team, so she may read it but not write to it.
#[test]
fn malformed_empty_change_from_a_reader_is_refused() {
    let record = stored();
    let sokha = sokha_ed();
    let meta = record.meta().expect("a record");
    let reader = principal(&sokha, &[]);
    assert!(reader.may_read(&meta), "the author may read her record");
    assert!(
        !reader.may_write(&meta),
        "outside the team she may not write"
    );
    let empty = Change::from(hand_made(record.doc(), &sokha, Vec::new()));
    assert!(empty.is_empty());
    let refusal = verdict(&record, &empty, &reader).expect_err("a reader's empty change");
    assert_eq!(refusal.code, RefusalCode::NotAllowed, "{refusal:?}");
    // In the team, the same change is fine (automerge-repo makes empty changes).
    let writer = principal(&sokha, &[case_id()]);
    assert_eq!(verdict(&record, &empty, &writer), Ok(()));
}

#[test]
fn malformed_start_op_below_its_dependencies_is_refused() {
    let record = stored();
    let dara = dara_ed();
    let who = principal(&dara, &[case_id()]);
    let doc = record.doc();
    // With its counters after those of the document, the same put is accepted.
    let well_formed = Change::from(hand_made(doc, &dara, vec![court_put(doc)]));
    assert_eq!(verdict(&record, &well_formed, &who), Ok(()));
    assert_malformed(&record, &start_op_one(doc, &dara), &who);
}

#[test]
fn malformed_empty_deps_on_an_existing_document_is_refused() {
    let record = stored();
    let dara = dara_ed();
    let who = principal(&dara, &[case_id()]);
    assert_malformed(&record, &no_deps(record.doc(), &dara), &who);
}

#[test]
fn malformed_ghost_predecessor_is_refused() {
    let record = stored();
    let dara = dara_ed();
    let who = principal(&dara, &[case_id()]);
    assert_malformed(&record, &ghost_predecessor(record.doc(), &dara), &who);
}

#[test]
fn malformed_insert_after_a_ghost_element_is_refused() {
    let record = stored();
    let dara = dara_ed();
    let who = principal(&dara, &[case_id()]);
    let doc = record.doc();
    // After an element that is there, the same insert is accepted.
    let narrative = field_id(doc, "narrative");
    let after_real = op(
        put_text("ក"),
        &op_id(&narrative),
        Key::Seq(ElementId::Id(element(doc, &narrative, 0))),
        Vec::new(),
        true,
    );
    let well_formed = Change::from(hand_made(doc, &dara, vec![after_real]));
    assert_eq!(verdict(&record, &well_formed, &who), Ok(()));
    assert_malformed(&record, &insert_after_ghost(doc, &dara), &who);
}

#[test]
fn malformed_delete_of_a_ghost_element_is_refused() {
    let record = stored();
    let dara = dara_ed();
    let who = principal(&dara, &[case_id()]);
    let doc = record.doc();
    // Deleting an element that is there is accepted.
    let narrative = field_id(doc, "narrative");
    let real = element(doc, &narrative, 0);
    let delete_real = op(
        OpType::Delete,
        &op_id(&narrative),
        Key::Seq(ElementId::Id(real.clone())),
        vec![real],
        false,
    );
    let well_formed = Change::from(hand_made(doc, &dara, vec![delete_real]));
    assert_eq!(verdict(&record, &well_formed, &who), Ok(()));
    assert_malformed(&record, &delete_ghost(doc, &dara), &who);
}

/// automerge 0.12 applies these changes and then cannot load the document again. Offered to a
/// server's sync engine, each is refused: the document keeps its heads, saves and loads.
#[test]
fn malformed_changes_never_reach_the_document() {
    let record = stored();
    let dara = dara_ed();
    let doc = record.doc();
    let before = sorted(record.heads());
    let changes = [
        ("start op 1", start_op_one(doc, &dara)),
        ("no deps", no_deps(doc, &dara)),
        ("ghost predecessor", ghost_predecessor(doc, &dara)),
        ("insert after a ghost", insert_after_ghost(doc, &dara)),
        ("delete of a ghost", delete_ghost(doc, &dara)),
    ];
    for (what, change) in changes {
        let hash = change.hash();
        let (sync, received) =
            receive_from_dara(&record, std::slice::from_ref(&change), vec![hash]);
        assert!(received.applied.is_empty(), "{what}: {received:?}");
        let refused: Vec<(ChangeHash, RefusalCode)> = received
            .refused
            .iter()
            .map(|(h, refusal)| (*h, refusal.code))
            .collect();
        assert_eq!(refused, vec![(hash, RefusalCode::Malformed)], "{what}");
        let kept = sync.record();
        assert_eq!(sorted(kept.heads()), before, "{what}");
        assert!(kept.doc().get_change_by_hash(&hash).is_none(), "{what}");
        let loaded = Automerge::load(&kept.save()).expect("the document still loads");
        assert_eq!(sorted(loaded.get_heads()), before, "{what}");
        assert!(kept.view().is_ok(), "{what}: still a record");
    }
}

/// Only a visible element, deleted once, makes room: deleting an element deleted before, or
/// the same one twice, does not let a change insert past the limit.
#[test]
fn deleting_deleted_elements_makes_no_room_in_a_list() {
    let sokha = sokha_ed();
    let dara = dara_ed();
    let who = principal(&dara, &[case_id()]);
    // The stored record: `judges` full, one item removed (and replaced) earlier.
    let mut record = stored();
    let items: Vec<String> = (0..MAX_LIST_ITEMS).map(|i| format!("ចៅក្រម {i}")).collect();
    record
        .set_list("judges", &items, &sokha, at(2_000))
        .expect("a legal edit");
    let judges = field_id(record.doc(), "judges");
    let removed = element(record.doc(), &judges, 0);
    record
        .list_remove("judges", 0, &sokha, at(2_100))
        .expect("a legal edit");
    record
        .list_insert("judges", MAX_LIST_ITEMS - 1, "ចៅក្រម ថ្មី", &sokha, at(2_200))
        .expect("a legal edit");
    assert_eq!(record.doc().length(&judges), MAX_LIST_ITEMS, "full");
    let visible = element(record.doc(), &judges, 0);
    let list = op_id(&judges);
    let cases = [
        ("an item deleted before, five times", vec![removed; 5]),
        ("a visible item, twice", vec![visible; 2]),
    ];
    for (what, deletes) in cases {
        let mut operations = Vec::new();
        for elem in deletes {
            let key = Key::Seq(ElementId::Id(elem.clone()));
            operations.push(op(OpType::Delete, &list, key, vec![elem], false));
        }
        for item in ["សាក្សី ១", "សាក្សី ២"] {
            let key = Key::Seq(ElementId::Head);
            operations.push(op(put_text(item), &list, key, Vec::new(), true));
        }
        let change = Change::from(hand_made(record.doc(), &dara, operations));
        let refusal = verdict(&record, &change, &who).expect_err(what);
        assert_eq!(
            refusal.code,
            RefusalCode::InvalidValue,
            "{what}: {refusal:?}"
        );
        assert!(
            refusal.detail.contains("would exceed"),
            "{what}: {refusal:?}"
        );
    }
    // Deleting one visible item makes room for one.
    let replace = device_change(&record, DARA_PHONE, &dara, at(3_000), |tx| {
        tx.delete(&judges, 0)?;
        tx.insert(&judges, MAX_LIST_ITEMS - 1, "សាក្សី ៣")
    });
    assert_eq!(verdict(&record, &replace, &who), Ok(()));
}

/// A hand-made change by `by` appending one review entry per item of `entries`, each setting
/// the keys listed, in order, with `by`'s values (a key listed twice is put twice, the second
/// replacing the first). Built by hand: automerge's API drops a put of the value a key holds.
fn review_entries(doc: &Automerge, by: &Editor, entries: &[Vec<&str>]) -> Change {
    let review = op_id(
        &doc.get(ROOT, "review")
            .expect("readable")
            .expect("a review list")
            .1,
    );
    let start = hand_made(doc, by, Vec::new()).start_op.get();
    let here = |i: usize| OpId::new(start + i as u64, &ActorId::from(HAND_MADE));
    let mut operations = Vec::new();
    let mut previous: Option<OpId> = None;
    for keys in entries {
        let entry = here(operations.len());
        let after = previous.map_or(ElementId::Head, ElementId::Id);
        operations.push(op(
            OpType::Make(ObjType::Map),
            &review,
            Key::Seq(after),
            Vec::new(),
            true,
        ));
        let mut written: HashMap<&str, OpId> = HashMap::new();
        for &key in keys {
            let value = match key {
                "author" => ScalarValue::Str(by.who.user.as_str().into()),
                "role" => ScalarValue::Str(by.role.as_str().into()),
                "action" => ScalarValue::Str("comment".into()),
                "at" => ScalarValue::Int(20_000),
                _ => ScalarValue::Str("សាក្សី".into()),
            };
            let pred: Vec<OpId> = written.get(key).cloned().into_iter().collect();
            written.insert(key, here(operations.len()));
            operations.push(op(
                OpType::Put(value),
                &entry,
                Key::Map(key.into()),
                pred,
                false,
            ));
        }
        previous = Some(entry);
    }
    Change::from(hand_made(doc, by, operations))
}

/// Every new review entry names its author, role and action, each once: counting authors over
/// the whole change is not enough (two entries and two authors, both in the first), nor is an
/// author alone.
#[test]
fn a_review_entry_needs_exactly_one_author_role_and_action() {
    let record = stored();
    let dara = dara_ed();
    let who = principal(&dara, &[case_id()]);
    let doc = record.doc();
    let full = vec!["author", "role", "action", "at", "text"];
    // Two complete entries in one change are fine.
    let honest = review_entries(doc, &dara, &[full.clone(), full]);
    assert_eq!(verdict(&record, &honest, &who), Ok(()));
    let cases = [
        (
            "the author twice in one entry, none in the other",
            vec![
                vec!["author", "author", "role", "action", "at", "text"],
                vec!["role", "action", "at", "text"],
            ],
        ),
        ("no role", vec![vec!["author", "action", "at", "text"]]),
        ("no action", vec![vec!["author", "role", "at", "text"]]),
    ];
    for (what, entries) in cases {
        let forged = review_entries(doc, &dara, &entries);
        let refusal = verdict(&record, &forged, &who).expect_err(what);
        assert_eq!(
            refusal.code,
            RefusalCode::ReviewForgery,
            "{what}: {refusal:?}"
        );
    }
}

/// Edits on a device's copy of `server`, which then takes them (legal steps, as stored).
fn on_device(
    server: &mut Record,
    actor: [u8; 16],
    f: impl FnOnce(&mut Record) -> Result<(), RecordError>,
) {
    let mut device = server.clone();
    device.set_actor(ActorId::from(actor));
    f(&mut device).expect("a legal edit");
    let changes = device.doc().get_changes(&server.heads());
    server
        .doc_mut()
        .apply_changes(changes)
        .expect("automerge applies them");
}

const OFFLINE_COURT: &str = "សាលាដំបូងរាជធានីភ្នំពេញ";

/// Dara's phone, offline since `seen` (the record still a draft): she writes a long narrative
/// (many operations, so that her counters pass those of every later step), sets the court and
/// submits. Her changes and heads.
fn offline_submit(server: &Record, seen: &[ChangeHash]) -> (Vec<Change>, Vec<ChangeHash>) {
    let dara = dara_ed();
    let mut phone = Record::from_automerge(server.doc().fork_at(seen).expect("known heads"));
    phone.set_actor(ActorId::from(DARA_PHONE));
    phone
        .set_text("narrative", &offline_narrative(), &dara, at(2_500))
        .expect("a legal edit");
    phone
        .set_field(
            "court",
            FieldInput::Text(OFFLINE_COURT.into()),
            &dara,
            at(2_600),
        )
        .expect("a legal edit");
    phone
        .transition(Status::Submitted, Some("រួចរាល់"), &dara, at(2_700))
        .expect("a draft can be submitted");
    (phone.doc().get_changes(seen), phone.heads())
}

fn offline_narrative() -> String {
    "សាក្សីបាននិយាយថា ".repeat(12)
}

/// The server's document after Dara's offline submit: a reviewer's `status` kept, and every
/// other edit of hers.
fn assert_kept(sync: &DocSync, received: &Received, changes: &[Change], status: Status) {
    assert!(received.refused.is_empty(), "{:?}", received.refused);
    assert_eq!(
        received.applied.len(),
        changes.len() + 1,
        "her changes, then the server's"
    );
    assert!(received.restored);
    assert_eq!(
        received.applied.last().and_then(Change::message),
        Some(RESTORED_NOTE)
    );
    let record = sync.record();
    for change in changes {
        assert!(record.doc().get_change_by_hash(&change.hash()).is_some());
    }
    let view = record.view().expect("a record");
    assert_eq!(view.status, status);
    assert_eq!(
        view.fields.get("court"),
        Some(&FieldValue::Text(OFFLINE_COURT.into()))
    );
    assert_eq!(
        view.fields.get("narrative"),
        Some(&FieldValue::Text(offline_narrative()))
    );
    assert!(
        view.review
            .iter()
            .any(|e| e.author == "dara" && e.action == "submit"),
        "her review entry is kept: {:?}",
        view.review
    );
    let loaded = Automerge::load(&record.save()).expect("the document still loads");
    assert_eq!(sorted(loaded.get_heads()), sorted(record.heads()));
    let reloaded = Record::from_automerge(loaded);
    assert_eq!(reloaded.view().expect("a record").status, status);
}

/// Sokha submits a record and Chenda takes `steps` on it, while Dara, offline since it was
/// created, edits and submits it: her step is legal as she saw the record, and automerge would
/// let it win (a higher counter). Through the gate, her changes are kept and so is the status
/// Chenda left.
fn old_submit_against(steps: &[Status]) {
    let sokha = sokha_ed();
    let mut server = Record::create(
        RecordKind::CourtObservation,
        &case_id(),
        ActorId::from(SOKHA_PHONE),
        &sokha,
        at(1_000),
    );
    let created = server.heads();
    on_device(&mut server, SOKHA_PHONE, |r| {
        r.transition(Status::Submitted, None, &sokha, at(2_000))
    });
    on_device(&mut server, CHENDA_LAPTOP, |r| {
        let chenda = chenda_ed();
        for (i, step) in steps.iter().enumerate() {
            r.transition(*step, Some("សាក្សី"), &chenda, at(3_000 + i as i64))?;
        }
        Ok(())
    });
    let (changes, heads) = offline_submit(&server, &created);
    let mut merged = server.clone();
    merged
        .doc_mut()
        .apply_changes(changes.clone())
        .expect("automerge applies them");
    assert_eq!(
        merged.view().expect("a record").status,
        Status::Submitted,
        "without the policy her step would win"
    );
    let (sync, received) = receive_from_dara(&server, &changes, heads);
    let last = *steps.last().expect("a step");
    assert_kept(&sync, &received, &changes, last);
}

#[test]
fn a_monitor_step_on_old_heads_does_not_undo_an_approval() {
    old_submit_against(&[Status::Approved]);
}

/// Her edits, made before she could know of the archiving, are kept too.
#[test]
fn an_archived_record_stays_archived_against_an_old_submit() {
    old_submit_against(&[Status::Approved, Status::Archived]);
}

/// Review finding: a connection that began syncing an unknown id (its first message, before
/// any change) and completes a record for it after another connection created a record under
/// the same id, one it may not read, must not be stored over that record. Whether the id is in
/// use is judged when the record is complete, not when the private copy began.
#[test]
fn a_creation_that_began_before_the_id_was_taken_is_refused_when_it_completes() {
    let mut w = World::new();
    let id_bytes = [0x9a; 16];
    let (case, other_case) = (w.case, w.other_case);
    let (rith, dara, now) = (w.ed(RITH), w.ed(DARA), w.tick());
    let id = w.net.phone_mut(RITH).repo.create(
        RecordKind::CourtObservation,
        &other_case,
        &rith,
        now,
        id_bytes,
    );
    w.net
        .phone_mut(DARA)
        .repo
        .create(RecordKind::CourtObservation, &case, &dara, now, id_bytes);
    // Rith's first message reaches the hub (heads, no changes yet): a private copy begins.
    assert!(w.net.flush_phone(RITH));
    assert!(w.net.deliver_up(RITH));
    assert!(w.net.hub.record(&id).is_none());
    // Meanwhile Dara's record, in a case Rith is not in, is created and stored in full.
    for _ in 0..20 {
        w.net.flush_phone(DARA);
        while w.net.deliver_up(DARA) {}
        while w.net.deliver_down(DARA) {}
    }
    let stored = w.net.hub.record(&id).expect("Dara's record is stored");
    assert_eq!(stored.meta().expect("meta").created_by, "dara");
    let heads = stored.heads();
    let before = w.net.hub.refusals().len();
    // Now Rith's exchange goes on and completes his record: refused as an id he may not use,
    // and Dara's record is untouched.
    w.net.settle();
    let refusals = w.net.hub.refusals();
    assert_eq!(refusals.len(), before + 1, "{refusals:?}");
    assert_eq!(
        refusals[before].1.detail,
        saksi_shared::policy::NOT_A_MEMBER
    );
    let stored = w.net.hub.record(&id).expect("still there");
    assert_eq!(stored.meta().expect("meta").created_by, "dara");
    assert_eq!(
        stored.heads(),
        heads,
        "nothing of Rith's record was stored over it"
    );
}
