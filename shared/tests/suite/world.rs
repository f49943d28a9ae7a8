//! The world of the write-policy tests: a hub with two cases, five phones (three monitors, a
//! coordinator, a liaison) connected and settled, and helpers to make legal edits, craft
//! hostile changes on a phone with automerge's own API, and check that a refusal was complete.

use std::time::Duration;

use saksi_shared::Timestamp;
use saksi_shared::Who;
use saksi_shared::automerge::transaction::{CommitOptions, Transaction};
use saksi_shared::automerge::{AutomergeError, ChangeHash, ObjId, ROOT, ReadDoc};
use saksi_shared::catalogue::RecordKind;
use saksi_shared::policy::RefusalCode;
use saksi_shared::record::{FieldInput, FieldValue, RecordError};
use saksi_shared::{DocumentId, Editor, Record, Role};
use saksi_testkit::Hub;
use saksi_testkit::at;

use crate::harness::{Net, editor};

pub(crate) const SOKHA: usize = 0;
pub(crate) const DARA: usize = 1;
pub(crate) const CHENDA: usize = 2;
/// A monitor of another case.
pub(crate) const RITH: usize = 3;
/// A liaison in the same case.
pub(crate) const LINA: usize = 4;

pub(crate) struct World {
    pub(crate) net: Net,
    pub(crate) case: DocumentId,
    pub(crate) other_case: DocumentId,
    pub(crate) now: Timestamp,
}

impl World {
    pub(crate) fn new() -> World {
        let mut hub = Hub::new();
        let case = hub.create_case([0x61; 16], at(1_000));
        let other_case = hub.create_case([0x62; 16], at(1_000));
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
            now: at(10_000),
        }
    }

    pub(crate) fn tick(&mut self) -> Timestamp {
        self.now = self.now + Duration::from_secs(1);
        self.now
    }

    pub(crate) fn ed(&self, phone: usize) -> Editor {
        self.net.phone(phone).editor.clone()
    }

    /// A court observation created by Sokha and opened by `also` (all online, settled).
    pub(crate) fn observation(&mut self, id_byte: u8, also: &[usize]) -> DocumentId {
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
    pub(crate) fn edit(
        &mut self,
        phone: usize,
        id: DocumentId,
        f: impl FnOnce(&mut Record, &Editor, Timestamp) -> Result<(), RecordError>,
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
    pub(crate) fn craft(
        &mut self,
        phone: usize,
        id: DocumentId,
        message: Option<String>,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<(), AutomergeError>,
    ) -> ChangeHash {
        let ed = self.ed(phone);
        let message = message.unwrap_or_else(|| note(&ed.who.user, &ed.who.device));
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
                                .with_time(now.as_millis())
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
    pub(crate) fn assert_refused(
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
    pub(crate) fn assert_still_syncs(&mut self, phone: usize, other: DocumentId) {
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

pub(crate) fn note(user: &str, device: &str) -> String {
    serde_json::to_string(&Who {
        user: user.into(),
        device: device.into(),
    })
    .expect("serialises")
}

pub(crate) fn fields_of(tx: &Transaction<'_>) -> Result<ObjId, AutomergeError> {
    Ok(tx.get(ROOT, "fields")?.expect("a record has fields").1)
}

pub(crate) fn review_of(tx: &Transaction<'_>) -> Result<ObjId, AutomergeError> {
    Ok(tx
        .get(ROOT, "review")?
        .expect("a record has a review list")
        .1)
}
