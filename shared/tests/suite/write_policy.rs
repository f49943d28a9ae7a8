//! The server's write and read authorisation, exercised through [`testing::Hub`] with hostile
//! changes crafted on a phone with automerge's own API (the way a modified client would), then
//! synced normally. For every refusal: the hub reports the expected code, keeps none of the
//! change, tells the sender, forwards nothing to others, and keeps syncing the sender's other
//! documents on the same connection.
//!
//! [`testing::Hub`]: saksi_shared::testing::Hub

use saksi_shared::automerge::transaction::{CommitOptions, Transactable, Transaction};
use saksi_shared::automerge::{ActorId, AutomergeError, ChangeHash, ObjId, ObjType, ROOT, ReadDoc};
use saksi_shared::catalogue::RecordKind;
use saksi_shared::policy::RefusalCode;
use saksi_shared::protocol::Message;
use saksi_shared::record::{CommitNote, FieldInput, FieldValue, RecordError};
use saksi_shared::testing::Hub;
use saksi_shared::{DocumentId, Editor, Role, Status};

use crate::harness::{Net, Rng, editor};

const SOKHA: usize = 0;
const DARA: usize = 1;
const CHENDA: usize = 2;
/// A monitor of another case.
const RITH: usize = 3;
/// A liaison in the same case.
const LINA: usize = 4;

struct World {
    net: Net,
    case: DocumentId,
    other_case: DocumentId,
    now: i64,
}

impl World {
    fn new() -> World {
        let mut hub = Hub::new();
        let case = hub.create_case([0x61; 16], 1_000);
        let other_case = hub.create_case([0x62; 16], 1_000);
        for user in ["sokha", "dara", "lina"] {
            hub.add_member(user, case);
        }
        hub.add_member("rith", other_case);
        let mut net = Net::new(hub);
        net.add_phone(editor("sokha", "sokha-phone", Role::Monitor), [1; 16]);
        net.add_phone(editor("dara", "dara-phone", Role::Monitor), [2; 16]);
        net.add_phone(
            editor("chenda", "chenda-laptop", Role::Coordinator),
            [3; 16],
        );
        net.add_phone(editor("rith", "rith-phone", Role::Monitor), [4; 16]);
        net.add_phone(editor("lina", "lina-phone", Role::Liaison), [5; 16]);
        for i in 0..5 {
            net.connect(i);
        }
        net.settle();
        World {
            net,
            case,
            other_case,
            now: 10_000,
        }
    }

    fn tick(&mut self) -> i64 {
        self.now += 1_000;
        self.now
    }

    fn ed(&self, phone: usize) -> Editor {
        self.net.phone(phone).editor.clone()
    }

    /// A court observation created by Sokha and opened by `also` (all online, settled).
    fn observation(&mut self, id_byte: u8, also: &[usize]) -> DocumentId {
        let (ed, now) = (self.ed(SOKHA), self.tick());
        let id = self.net.phone_mut(SOKHA).repo.create(
            RecordKind::CourtObservation,
            &self.case,
            &ed,
            now,
            [id_byte; 16],
        );
        self.net.settle();
        for &i in also {
            self.net.phone_mut(i).repo.request(id);
        }
        self.net.settle();
        assert!(self.net.hub.record(&id).is_some(), "the hub has the record");
        id
    }

    /// A legal edit through the record API, synced.
    fn edit(
        &mut self,
        phone: usize,
        id: DocumentId,
        f: impl FnOnce(&mut saksi_shared::Record, &Editor, i64) -> Result<(), RecordError>,
    ) {
        let (ed, now) = (self.ed(phone), self.tick());
        self.net
            .phone_mut(phone)
            .repo
            .edit(&id, |r| f(r, &ed, now))
            .expect("the phone has the document")
            .expect("a legal edit");
        self.net.settle();
    }

    /// Commits `f` directly on the phone's copy of `id`, with `message` as the commit message
    /// (by default the honest attribution), and syncs. Returns the change's hash.
    fn craft(
        &mut self,
        phone: usize,
        id: DocumentId,
        message: Option<String>,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<(), AutomergeError>,
    ) -> ChangeHash {
        let ed = self.ed(phone);
        let message = message.unwrap_or_else(|| note(&ed.user, &ed.device));
        let now = self.tick();
        let hash = self
            .net
            .phone_mut(phone)
            .repo
            .edit(&id, |r| {
                r.doc_mut()
                    .transact_with(
                        |_| {
                            CommitOptions::default()
                                .with_message(message)
                                .with_time(now)
                        },
                        f,
                    )
                    .map(|success| success.hash)
                    .map_err(|failure| failure.error)
            })
            .expect("the phone has the document")
            .expect("automerge accepts the change")
            .expect("the change has operations");
        self.net.settle();
        hash
    }

    /// The hub refused `hash` (and only that) to `phone` with `code`, and nobody else has it.
    fn assert_refused(
        &mut self,
        phone: usize,
        id: DocumentId,
        hash: ChangeHash,
        code: RefusalCode,
        refusals_before: usize,
    ) {
        let refusals = self.net.hub.refusals();
        assert_eq!(
            refusals.len(),
            refusals_before + 1,
            "exactly one refusal: {refusals:?}"
        );
        let (doc, refusal) = refusals.last().expect("a refusal");
        assert_eq!((*doc, refusal.code), (id, code), "{refusal:?}");
        if let Some(record) = self.net.hub.record(&id) {
            assert!(
                record.doc().get_change_by_hash(&hash).is_none(),
                "the hub kept a refused change"
            );
        }
        for (i, p) in self.net.phones.iter().enumerate() {
            if i != phone
                && let Some(record) = p.repo.record(&id)
            {
                assert!(
                    record.doc().get_change_by_hash(&hash).is_none(),
                    "phone {i}"
                );
            }
        }
        assert!(
            self.net
                .phone(phone)
                .refusals()
                .iter()
                .any(|(d, _)| *d == id),
            "the sender is told"
        );
        assert!(self.net.phone(phone).repo.refused().any(|d| *d == id));
    }

    /// `phone` edits `other` (a document it may write) on the same connection, and the hub
    /// applies it.
    fn assert_still_syncs(&mut self, phone: usize, other: DocumentId) {
        let before = self.net.hub.record(&other).expect("hub copy").heads();
        let text = format!("ថ្ងៃទី {}", self.now);
        self.edit(phone, other, |r, ed, now| {
            r.set_field("closure_reason", FieldInput::Text(text.clone()), ed, now)
        });
        let hub = self.net.hub.record(&other).expect("hub copy");
        assert_ne!(hub.heads(), before, "the other document synced");
        assert_eq!(
            hub.field("closure_reason").expect("field"),
            Some(FieldValue::Text(text))
        );
    }
}

fn note(user: &str, device: &str) -> String {
    serde_json::to_string(&CommitNote {
        user: user.into(),
        device: device.into(),
    })
    .expect("serialises")
}

fn fields_of(tx: &Transaction<'_>) -> Result<ObjId, AutomergeError> {
    Ok(tx.get(ROOT, "fields")?.expect("a record has fields").1)
}

fn review_of(tx: &Transaction<'_>) -> Result<ObjId, AutomergeError> {
    Ok(tx
        .get(ROOT, "review")?
        .expect("a record has a review list")
        .1)
}

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
        tx.put(&entry, "at", now)?;
        tx.put(&entry, "action", "comment")?;
        tx.put(&entry, "text", "ត្រឹមត្រូវ")
    });
    w.assert_refused(SOKHA, id, hash, RefusalCode::ReviewForgery, before);
    w.assert_still_syncs(SOKHA, other);
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

#[test]
fn a_monitor_cannot_edit_an_archived_record() {
    let mut w = World::new();
    let id = w.observation(0x34, &[CHENDA]);
    let other = w.observation(0x35, &[]);
    w.edit(SOKHA, id, |r, ed, now| {
        r.transition(Status::Submitted, None, ed, now)
    });
    w.edit(CHENDA, id, |r, ed, now| {
        r.transition(Status::Approved, None, ed, now)?;
        r.transition(Status::Archived, Some("បិទ"), ed, now)
    });
    assert_eq!(
        w.net.phone(SOKHA).record(&id).view().expect("view").status,
        Status::Archived,
        "the archiving reached Sokha"
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
                .is_none_or(saksi_shared::Record::is_empty),
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
        let mut probe =
            saksi_shared::sync::DocSync::new(saksi_shared::Record::empty(ActorId::from([9; 16])));
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

/// Archiving is judged from the record as the sender saw it: a monitor's edit made offline,
/// before she could know a coordinator archived the record, is kept rather than wedging her
/// copy of the document.
#[test]
fn an_edit_made_offline_before_the_archiving_is_kept() {
    let mut w = World::new();
    let id = w.observation(0x41, &[CHENDA]);
    w.edit(SOKHA, id, |r, ed, now| {
        r.transition(Status::Submitted, None, ed, now)
    });
    w.edit(CHENDA, id, |r, ed, now| {
        r.transition(Status::Approved, None, ed, now)
    });
    w.net.disconnect(SOKHA);
    let (ed, now) = (w.ed(SOKHA), w.tick());
    w.net
        .phone_mut(SOKHA)
        .repo
        .edit(&id, |r| {
            r.set_field("sentence", FieldInput::Text("ព្យួរទោស".into()), &ed, now)
        })
        .expect("has it")
        .expect("not archived as Sokha sees it");
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
