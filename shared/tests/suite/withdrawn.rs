//! Consent withdrawn, and records destroyed: a liaison records that a family withdrew consent
//! (also on an approved statement, which is otherwise closed to field staff); only liaisons and
//! coordinators may, only on family statements. A record the server withdraws (purged,
//! discarded) is dropped by every phone, the offline one at its next contact, and an edit made
//! offline meanwhile is dropped with it and never retried. A record waiting for its purge is
//! served to coordinators only.

use saksi_shared::automerge::ObjType;
use saksi_shared::automerge::transaction::Transactable;
use saksi_shared::catalogue::RecordKind;
use saksi_shared::policy::RefusalCode;
use saksi_shared::record::RecordError;
use saksi_shared::sync::Event;
use saksi_shared::workflow::ReviewAction;
use saksi_shared::{DocumentId, Status};

use crate::world::{CHENDA, DARA, LINA, SOKHA, World, review_of};

const WITHDRAWN_NOTE: &str = "ក្រុមគ្រួសារដកការយល់ព្រមវិញ";

/// A family statement created by Lina and opened by `also`, with a Khmer narrative.
fn statement(w: &mut World, id_byte: u8, also: &[usize]) -> DocumentId {
    let (ed, now) = (w.ed(LINA), w.tick());
    let case = w.case;
    let id = w.net.phone_mut(LINA).repo.create(
        RecordKind::FamilyStatement,
        &case,
        &ed,
        now,
        [id_byte; 16],
    );
    w.net.settle();
    w.edit(LINA, id, |r, ed, now| {
        r.set_text("statement", "ម្តាយរបស់គាត់បាននិយាយថា សាក្សី", ed, now)
    });
    for &i in also {
        w.net.phone_mut(i).repo.request(id);
    }
    w.net.settle();
    assert!(w.net.hub.record(&id).is_some(), "the hub has the statement");
    id
}

fn consent_withdrawn_on_hub(w: &World, id: &DocumentId) -> bool {
    w.net
        .hub
        .record(id)
        .expect("hub copy")
        .read()
        .summary()
        .expect("summary")
        .consent_withdrawn
}

#[test]
fn a_liaison_records_withdrawn_consent_even_on_an_approved_statement() {
    let mut w = World::new();
    let id = statement(&mut w, 0x70, &[CHENDA]);
    assert!(!consent_withdrawn_on_hub(&w, &id));
    w.edit(LINA, id, |r, ed, now| {
        r.transition(Status::Submitted, None, ed, now)
    });
    w.edit(CHENDA, id, |r, ed, now| {
        r.transition(Status::Approved, None, ed, now)
    });
    // Approved: closed to a liaison's comments and edits...
    let (ed, now) = (w.ed(LINA), w.tick());
    let closed = w
        .net
        .phone_mut(LINA)
        .repo
        .edit(&id, |r| r.comment("សំណួរ", &ed, now))
        .expect("the phone has it");
    assert_eq!(closed, Err(RecordError::Archived));
    // ...but not to what the family asked.
    w.edit(LINA, id, |r, ed, now| {
        r.withdraw_consent(WITHDRAWN_NOTE, ed, now)
    });
    assert!(
        consent_withdrawn_on_hub(&w, &id),
        "the coordinator is asked"
    );
    let view = w.net.phone(CHENDA).record(&id).view().expect("view");
    let entry = view.review.last().expect("an entry");
    assert_eq!(
        (
            entry.action.as_str(),
            entry.author.as_str(),
            entry.text.as_str()
        ),
        (
            ReviewAction::WithdrawConsent.as_str(),
            "lina",
            WITHDRAWN_NOTE
        )
    );
    assert!(
        w.net.hub.refusals().is_empty(),
        "{:?}",
        w.net.hub.refusals()
    );
}

#[test]
fn only_liaisons_and_coordinators_withdraw_consent_and_only_on_family_statements() {
    let mut w = World::new();
    let id = statement(&mut w, 0x71, &[SOKHA]);
    // A monitor: the record API says no, and a crafted entry is refused.
    let (ed, now) = (w.ed(SOKHA), w.tick());
    let refused = w
        .net
        .phone_mut(SOKHA)
        .repo
        .edit(&id, |r| r.withdraw_consent("", &ed, now))
        .expect("the phone has it");
    assert_eq!(refused, Err(RecordError::LiaisonsOnly));
    let before = w.net.hub.refusals().len();
    let hash = w.craft(SOKHA, id, None, |tx| {
        let review = review_of(tx)?;
        let entry = tx.insert_object(&review, 0, ObjType::Map)?;
        tx.put(&entry, "author", "sokha")?;
        tx.put(&entry, "role", "monitor")?;
        tx.put(&entry, "at", now.as_millis())?;
        tx.put(&entry, "action", "withdraw_consent")?;
        tx.put(&entry, "text", "")
    });
    w.assert_refused(SOKHA, id, hash, RefusalCode::ReviewForgery, before);
    assert!(!consent_withdrawn_on_hub(&w, &id));

    // A court observation has no consent to withdraw.
    let observation = w.observation(0x72, &[LINA]);
    let (ed, now) = (w.ed(LINA), w.tick());
    let refused = w
        .net
        .phone_mut(LINA)
        .repo
        .edit(&observation, |r| r.withdraw_consent("", &ed, now))
        .expect("the phone has it");
    assert_eq!(refused, Err(RecordError::NotAFamilyStatement));
    let before = w.net.hub.refusals().len();
    let hash = w.craft(LINA, observation, None, |tx| {
        let review = review_of(tx)?;
        let entry = tx.insert_object(&review, 0, ObjType::Map)?;
        tx.put(&entry, "author", "lina")?;
        tx.put(&entry, "role", "liaison")?;
        tx.put(&entry, "at", now.as_millis())?;
        tx.put(&entry, "action", "withdraw_consent")?;
        tx.put(&entry, "text", "")
    });
    w.assert_refused(LINA, observation, hash, RefusalCode::ReviewForgery, before);
}

#[test]
fn a_consent_entry_does_not_smuggle_a_comment_into_an_approved_statement() {
    let mut w = World::new();
    let id = statement(&mut w, 0x73, &[CHENDA]);
    w.edit(LINA, id, |r, ed, now| {
        r.transition(Status::Submitted, None, ed, now)
    });
    w.edit(CHENDA, id, |r, ed, now| {
        r.transition(Status::Approved, None, ed, now)
    });
    let before = w.net.hub.refusals().len();
    let now = w.now;
    let hash = w.craft(LINA, id, None, |tx| {
        let review = review_of(tx)?;
        for (i, action) in ["withdraw_consent", "comment"].into_iter().enumerate() {
            let entry = tx.insert_object(&review, i, ObjType::Map)?;
            tx.put(&entry, "author", "lina")?;
            tx.put(&entry, "role", "liaison")?;
            tx.put(&entry, "at", now.as_millis())?;
            tx.put(&entry, "action", action)?;
            tx.put(&entry, "text", "សំណួរ")?;
        }
        Ok(())
    });
    w.assert_refused(LINA, id, hash, RefusalCode::Archived, before);
}

fn withdrawn_events(w: &World, phone: usize, id: DocumentId) -> usize {
    w.net
        .phone(phone)
        .events
        .iter()
        .filter(|e| **e == Event::DocumentWithdrawn(id))
        .count()
}

#[test]
fn a_withdrawn_record_leaves_every_phone_and_an_offline_edit_is_never_retried() {
    let mut w = World::new();
    let id = statement(&mut w, 0x74, &[CHENDA, DARA]);
    let other = w.observation(0x75, &[LINA]);
    // Lina is offline, and edits.
    w.net.disconnect(LINA);
    let (ed, now) = (w.ed(LINA), w.tick());
    w.net
        .phone_mut(LINA)
        .repo
        .edit(&id, |r| r.set_text("statement", "ព័ត៌មានបន្ថែម សាក្សី", &ed, now))
        .expect("the phone has it")
        .expect("a legal edit");

    w.net.hub.withdraw(id);
    w.net.settle();
    for phone in [CHENDA, DARA] {
        assert_eq!(withdrawn_events(&w, phone, id), 1, "phone {phone} is told");
        assert!(
            w.net.phone(phone).repo.record(&id).is_none(),
            "phone {phone} dropped it"
        );
    }
    assert!(w.net.hub.record(&id).is_none());

    // Lina comes back: told once, her copy and her edit are dropped, nothing loops.
    w.net.connect(LINA);
    w.net.settle();
    assert_eq!(withdrawn_events(&w, LINA, id), 1);
    assert!(w.net.phone(LINA).repo.record(&id).is_none());
    assert_eq!(w.net.phone(LINA).repo.unsynced_count(), 0);
    assert!(w.net.hub.record(&id).is_none(), "nothing of it came back");
    w.net.disconnect(LINA);
    w.net.connect(LINA);
    w.net.settle();
    assert_eq!(withdrawn_events(&w, LINA, id), 1, "not asked again");
    // The connection still serves everything else.
    w.assert_still_syncs(LINA, other);

    // Asking for the id, or creating a record under it again, gets the refusal.
    w.net.phone_mut(SOKHA).repo.request(id);
    w.net.settle();
    assert_eq!(withdrawn_events(&w, SOKHA, id), 1);
    assert!(w.net.hub.record(&id).is_none());
}

#[test]
fn a_record_waiting_for_its_purge_is_served_to_coordinators_only() {
    let mut w = World::new();
    let id = statement(&mut w, 0x76, &[CHENDA, DARA]);
    w.net.hub.set_hidden(id, true);
    w.net.settle();
    assert!(
        w.net.phone(DARA).unavailable().contains(&id),
        "Dara is told at once"
    );
    // Lina's edits are not taken while it waits; the coordinator's are.
    let before = w.net.hub.record(&id).expect("hub").heads();
    let (ed, now) = (w.ed(LINA), w.tick());
    w.net
        .phone_mut(LINA)
        .repo
        .edit(&id, |r| r.set_text("statement", "ថ្មី", &ed, now))
        .expect("the phone has it")
        .expect("a legal edit");
    w.net.settle();
    assert_eq!(w.net.hub.record(&id).expect("hub").heads(), before);
    w.edit(CHENDA, id, |r, ed, now| r.comment("ពិនិត្យ", ed, now));
    assert_ne!(w.net.hub.record(&id).expect("hub").heads(), before);

    // Undone: Lina's phone syncs it again at its next connection, her edit included.
    w.net.hub.set_hidden(id, false);
    w.net.disconnect(LINA);
    w.net.connect(LINA);
    w.net.settle();
    let hub = w.net.hub.record(&id).expect("hub");
    assert_eq!(
        hub.field("statement").expect("field"),
        Some(saksi_shared::record::FieldValue::Text("ថ្មី".into()))
    );
}
