//! Files' entries in a record (`saksi_shared::attachment`), through the hub that runs the
//! server's served document: what the record API writes passes; what a modified client could
//! write instead (another author, a path in the name, a rewritten hash, a second map hiding
//! the first, someone else's file removed) is refused, with nothing of it kept.

use saksi_shared::attachment::{Attachment, Metadata, NewAttachment};
use saksi_shared::automerge::transaction::Transactable;
use saksi_shared::automerge::{ChangeHash, ObjType, ROOT, ReadDoc, ScalarValue};
use saksi_shared::policy::RefusalCode;
use saksi_shared::record::{Edit, RecordError};
use saksi_shared::{DocumentId, Status};
use saksi_testkit::at;

use crate::world::{CHENDA, DARA, RITH, SOKHA, World};

const NOTICE: &str = "សេចក្តីជូនដំណឹង តុលាការ.jpg";

fn file(id_byte: u8, name: &str) -> NewAttachment {
    NewAttachment {
        id: format!("{id_byte:02x}").repeat(16),
        sha256: format!("{:02x}", id_byte.wrapping_mul(7)).repeat(32),
        size: 2_345_678,
        media_type: "image/jpeg".into(),
        name: name.into(),
        captured_at: at(1_700_000_000_000),
        metadata: Some(Metadata::Removed),
        caption: String::new(),
    }
}

fn hub_files(w: &World, id: &DocumentId) -> Vec<Attachment> {
    w.net
        .hub
        .record(id)
        .expect("hub copy")
        .view()
        .expect("view")
        .attachments
}

/// The entry of a file attached by `phone`, as a crafted change writes it (with `change`
/// applied to its values).
fn craft_entry(
    w: &mut World,
    phone: usize,
    id: DocumentId,
    change: impl FnOnce(&mut Vec<(&'static str, ScalarValue)>),
) -> ChangeHash {
    let ed = w.ed(phone);
    let mut values: Vec<(&'static str, ScalarValue)> = vec![
        ("sha256", "ab".repeat(32).into()),
        ("size", ScalarValue::Int(1_000)),
        ("type", "audio/webm".into()),
        ("name", "សំឡេង.webm".into()),
        ("captured_at", ScalarValue::Int(1_700_000_000_000)),
        ("by", ed.who.user.clone().into()),
        ("device", ed.who.device.as_str().into()),
    ];
    change(&mut values);
    w.craft(phone, id, None, move |tx| {
        let map = match tx.get(ROOT, "attachments")? {
            Some((_, map)) => map,
            None => tx.put_object(ROOT, "attachments", ObjType::Map)?,
        };
        let entry = tx.put_object(&map, "cd".repeat(16), ObjType::Map)?;
        for (key, value) in values {
            tx.put(&entry, key, value)?;
        }
        Ok(())
    })
}

#[test]
fn a_file_attached_on_a_phone_reaches_the_team_with_its_author_and_hash() {
    let mut w = World::new();
    let id = w.observation(0x30, &[DARA, CHENDA]);
    w.edit(SOKHA, id, |r, ed, now| {
        r.add_attachment(&file(1, NOTICE), ed, now)
    });
    let files = hub_files(&w, &id);
    assert_eq!(files.len(), 1);
    let f = &files[0];
    assert_eq!(
        (f.name.as_str(), f.by.as_str(), f.device.as_str()),
        (NOTICE, "sokha", "sokha-phone")
    );
    assert_eq!(f.sha256, file(1, NOTICE).sha256);
    assert_eq!((f.size, f.metadata), (2_345_678, Some(Metadata::Removed)));
    let dara = w.net.phone(DARA).record(&id).view().expect("view");
    assert_eq!(dara.attachments, files, "the teammate has the same entry");
    // The summary the server indexes names it too.
    let summary = w.net.hub.record(&id).expect("hub").read().summary();
    assert_eq!(summary.expect("summary").attachments, files);
    // History: who added which file.
    let added = w
        .net
        .hub
        .record(&id)
        .expect("hub")
        .history()
        .into_iter()
        .find(|h| {
            h.edits
                .iter()
                .any(|e| matches!(e, Edit::AttachmentAdded { .. }))
        })
        .expect("an entry in the history");
    assert_eq!(added.by.user.as_deref(), Some("sokha"));
    assert_eq!(
        added.edits,
        vec![Edit::AttachmentAdded {
            id: file(1, NOTICE).id,
            name: NOTICE.into(),
            sha256: file(1, NOTICE).sha256,
            size: 2_345_678,
        }]
    );
}

#[test]
fn first_files_attached_offline_on_two_phones_are_both_kept() {
    let mut w = World::new();
    let id = w.observation(0x31, &[DARA]);
    w.net.disconnect(SOKHA);
    w.net.disconnect(DARA);
    w.edit(SOKHA, id, |r, ed, now| {
        r.add_attachment(&file(1, "ដីកា.jpg"), ed, now)
    });
    w.edit(DARA, id, |r, ed, now| {
        r.add_attachment(&file(2, "សាលក្រម.jpg"), ed, now)
    });
    w.net.connect(SOKHA);
    w.net.connect(DARA);
    w.net.settle();
    let names: Vec<String> = hub_files(&w, &id).into_iter().map(|f| f.name).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"ដីកា.jpg".into()) && names.contains(&"សាលក្រម.jpg".into()));
    // Both maps are there, as a conflict on the root key; every reader sees both files.
    let hub = w.net.hub.record(&id).expect("hub");
    assert_eq!(
        hub.doc().get_all(ROOT, "attachments").expect("read").len(),
        2
    );
    for phone in [SOKHA, DARA] {
        assert_eq!(
            w.net
                .phone(phone)
                .record(&id)
                .view()
                .expect("view")
                .attachments
                .len(),
            2
        );
    }
    // A third file goes into one of them, and all three stay visible.
    w.edit(DARA, id, |r, ed, now| {
        r.add_attachment(&file(3, "រូប ៣.png"), ed, now)
    });
    assert_eq!(hub_files(&w, &id).len(), 3);
}

#[test]
fn removing_a_file_is_for_who_attached_it_or_a_coordinator_and_captions_for_the_team() {
    let mut w = World::new();
    let id = w.observation(0x32, &[DARA, CHENDA]);
    w.edit(SOKHA, id, |r, ed, now| {
        r.add_attachment(&file(1, NOTICE), ed, now)?;
        r.add_attachment(&file(2, "ដីកា.pdf"), ed, now)
    });
    // Dara captions Sokha's file: team members may.
    w.edit(DARA, id, |r, ed, now| {
        r.set_caption(&file(1, NOTICE).id, "ផ្ទាំងព័ត៌មាននៅមុខតុលាការ", ed, now)
    });
    assert_eq!(hub_files(&w, &id)[0].caption, "ផ្ទាំងព័ត៌មាននៅមុខតុលាការ");
    // Dara may not remove it: the record API says so, and a crafted delete is refused.
    let (ed, now) = (w.ed(DARA), w.tick());
    let refused = w
        .net
        .phone_mut(DARA)
        .repo
        .edit(&id, |r| r.remove_attachment(&file(1, NOTICE).id, &ed, now))
        .expect("the phone has it");
    assert_eq!(refused, Err(RecordError::NotYourAttachment));
    let before = w.net.hub.refusals().len();
    let hash = w.craft(DARA, id, None, |tx| {
        let (_, map) = tx.get(ROOT, "attachments")?.expect("map");
        tx.delete(&map, "01".repeat(16))
    });
    w.assert_refused(DARA, id, hash, RefusalCode::NotAllowed, before);
    assert_eq!(hub_files(&w, &id).len(), 2);
    // Its author may; so may a coordinator. Each removal is an attributed change.
    w.edit(SOKHA, id, |r, ed, now| {
        r.remove_attachment(&file(1, NOTICE).id, ed, now)
    });
    w.edit(CHENDA, id, |r, ed, now| {
        r.remove_attachment(&file(2, "ដីកា.pdf").id, ed, now)
    });
    assert!(hub_files(&w, &id).is_empty());
    let removals: Vec<Option<String>> = w
        .net
        .hub
        .record(&id)
        .expect("hub")
        .history()
        .into_iter()
        .filter(|h| {
            h.edits
                .iter()
                .any(|e| matches!(e, Edit::AttachmentRemoved { .. }))
        })
        .map(|h| h.by.user)
        .collect();
    assert_eq!(
        removals,
        vec![Some("sokha".to_owned()), Some("chenda".to_owned())]
    );
}

/// Each hostile entry, crafted on Dara's phone: refused with its code, nothing kept, and Dara's
/// connection keeps syncing other documents.
#[test]
fn hostile_file_entries_are_refused() {
    type Tamper = fn(&mut Vec<(&'static str, ScalarValue)>);
    let cases: Vec<(&str, Tamper, RefusalCode)> = vec![
        (
            "another author",
            |v| v[5].1 = "sokha".into(),
            RefusalCode::ForgedAttribution,
        ),
        (
            "another device",
            |v| v[6].1 = "sokha-phone".into(),
            RefusalCode::ForgedAttribution,
        ),
        (
            "a path in the name",
            |v| v[3].1 = "../../etc/passwd".into(),
            RefusalCode::InvalidValue,
        ),
        (
            "a control character in the name",
            |v| v[3].1 = "សំឡេង\u{1b}[2J.webm".into(),
            RefusalCode::InvalidValue,
        ),
        (
            "a short hash",
            |v| v[0].1 = "ab".into(),
            RefusalCode::InvalidValue,
        ),
        (
            "an empty file",
            |v| v[1].1 = ScalarValue::Int(0),
            RefusalCode::InvalidValue,
        ),
        (
            "a size as text",
            |v| v[1].1 = "1000".into(),
            RefusalCode::InvalidValue,
        ),
        (
            "a media type with parameters",
            |v| v[2].1 = "audio/webm; codecs=opus".into(),
            RefusalCode::InvalidValue,
        ),
        (
            "no hash",
            |v| {
                v.remove(0);
            },
            RefusalCode::IncompleteRecord,
        ),
        (
            "a key of its own",
            |v| v.push(("location", "11.55,104.92".into())),
            RefusalCode::OutsideSchema,
        ),
    ];
    let mut w = World::new();
    let other = w.observation(0x40, &[DARA]);
    for (i, (what, tamper, code)) in cases.into_iter().enumerate() {
        let id = w.observation(0x41 + i as u8, &[DARA]);
        let before = w.net.hub.refusals().len();
        let hash = craft_entry(&mut w, DARA, id, tamper);
        w.assert_refused(DARA, id, hash, code, before);
        assert!(hub_files(&w, &id).is_empty(), "{what}");
        // The refusal ends this document for the connection; a reconnect starts afresh.
        w.net.disconnect(DARA);
        w.net.connect(DARA);
        w.net.settle();
        w.assert_still_syncs(DARA, other);
    }
}

/// A record with one file Dara attached, known to Dara, Sokha and Chenda. (A phone whose change
/// was refused stops sending that record: every attempt below gets a record of its own.)
fn with_daras_file(w: &mut World, id_byte: u8) -> DocumentId {
    let id = w.observation(id_byte, &[DARA, CHENDA]);
    w.edit(DARA, id, |r, ed, now| {
        r.add_attachment(&file(5, "សំឡេង.webm"), ed, now)
    });
    id
}

#[test]
fn a_written_entry_never_changes_but_for_its_caption() {
    let mut w = World::new();
    let entry_id = file(5, "").id;
    let mut id_byte = 0x50;
    for (key, value) in [
        ("sha256", ScalarValue::from("ef".repeat(32))),
        ("size", ScalarValue::Int(7)),
        ("by", "sokha".into()),
        ("name", "other.webm".into()),
    ] {
        // Even by its own author, and by a coordinator.
        for phone in [DARA, CHENDA] {
            id_byte += 1;
            let id = with_daras_file(&mut w, id_byte);
            let before = w.net.hub.refusals().len();
            let entry_id = entry_id.clone();
            let value = value.clone();
            let hash = w.craft(phone, id, None, move |tx| {
                let (_, map) = tx.get(ROOT, "attachments")?.expect("map");
                let (_, entry) = tx.get(&map, entry_id.as_str())?.expect("entry");
                tx.put(&entry, key, value)
            });
            w.assert_refused(phone, id, hash, RefusalCode::Immutable, before);
            assert_eq!(hub_files(&w, &id)[0].sha256, file(5, "").sha256);
        }
    }
    // A new entry under an id in use, and a new map over the one there, hide nothing either.
    let id = with_daras_file(&mut w, 0x5a);
    let before = w.net.hub.refusals().len();
    let reuse = entry_id.clone();
    let hash = w.craft(SOKHA, id, None, move |tx| {
        let (_, map) = tx.get(ROOT, "attachments")?.expect("map");
        tx.put_object(&map, reuse.as_str(), ObjType::Map)?;
        Ok(())
    });
    w.assert_refused(SOKHA, id, hash, RefusalCode::Immutable, before);
    assert_eq!(hub_files(&w, &id).len(), 1);
    let id = with_daras_file(&mut w, 0x5b);
    let before = w.net.hub.refusals().len();
    let hash = w.craft(SOKHA, id, None, |tx| {
        tx.put_object(ROOT, "attachments", ObjType::Map)?;
        Ok(())
    });
    w.assert_refused(SOKHA, id, hash, RefusalCode::Immutable, before);
    let files = hub_files(&w, &id);
    assert_eq!(files.len(), 1);
    assert_eq!(
        (files[0].sha256.clone(), files[0].size, files[0].by.as_str()),
        (file(5, "").sha256, 2_345_678, "dara")
    );
}

#[test]
fn outsiders_and_closed_records_take_no_files_from_field_staff() {
    let mut w = World::new();
    let id = w.observation(0x60, &[CHENDA]);
    // Rith is in another case: he cannot even see the record, let alone attach to it.
    w.net.phone_mut(RITH).repo.request(id);
    w.net.settle();
    assert!(w.net.phone(RITH).unavailable().contains(&id));
    // Approved: the monitor's record API refuses, and so does the hub.
    w.edit(SOKHA, id, |r, ed, now| {
        r.transition(Status::Submitted, None, ed, now)
    });
    w.edit(CHENDA, id, |r, ed, now| {
        r.transition(Status::Approved, None, ed, now)
    });
    let (ed, now) = (w.ed(SOKHA), w.tick());
    let refused = w
        .net
        .phone_mut(SOKHA)
        .repo
        .edit(&id, |r| r.add_attachment(&file(9, NOTICE), &ed, now))
        .expect("the phone has it");
    assert_eq!(refused, Err(RecordError::Archived));
    let before = w.net.hub.refusals().len();
    let hash = craft_entry(&mut w, SOKHA, id, |_| {});
    w.assert_refused(SOKHA, id, hash, RefusalCode::Archived, before);
    // A coordinator still attaches to an approved record.
    w.edit(CHENDA, id, |r, ed, now| {
        r.add_attachment(&file(9, NOTICE), ed, now)
    });
    assert_eq!(hub_files(&w, &id).len(), 1);
}
