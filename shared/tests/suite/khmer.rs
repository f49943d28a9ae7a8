//! Khmer text round-trips unchanged in every place a record holds text: scalar fields, list
//! items, narratives, review comments, titles and attributions; through save/load and through
//! sync. Khmer is written with combining signs (coeng `្`, dependent vowels), so a character
//! count in code points differs from what a reader sees as letters: positions passed to
//! `splice_text` count Unicode scalar values.

use saksi_shared::automerge::ActorId;
use saksi_shared::catalogue::RecordKind;
use saksi_shared::record::{FieldInput, FieldValue};
use saksi_shared::{DocumentId, Record, Role, Status};
use saksi_testkit::Hub;
use saksi_testkit::at;

use crate::harness::{Net, editor};

const WITNESS: &str = "សាក្សី";
const PRETRIAL_DETENTION: &str = "ការឃុំខ្លួនបណ្ដោះអាសន្ន";
const COURT: &str = "សាលាដំបូងខេត្តកំពង់ចាម";
const JUDGE: &str = "ចៅក្រម ឈឹម សុភ័ក្ត្រ";
const NARRATIVE: &str =
    "ជនជាប់ចោទបានប្រាប់តុលាការថា គាត់ត្រូវបានវាយដំអំឡុងពេលសួរចម្លើយ។\nមេធាវីបានស្នើសុំការពិនិត្យសុខភាព។";
const COMMENT: &str = "សូមបញ្ជាក់ឈ្មោះចៅក្រមទាំងពីររូប។";
const SENTENCE: &str = "ពន្ធនាគារ ៣ ឆ្នាំ និងពិន័យ ២ លានរៀល";

/// Fills every kind of text with Khmer and returns the record.
fn filled_record(case: &DocumentId) -> Record {
    let monitor = editor("sokha", "sokha-phone", Role::Monitor);
    let mut record = Record::create(
        RecordKind::CourtObservation,
        case,
        ActorId::from([1; 16]),
        &monitor,
        at(1_000),
    );
    let text = |s: &str| FieldInput::Text(s.to_owned());
    record
        .set_field("court", text(COURT), &monitor, at(2_000))
        .expect("court");
    record
        .set_field("case_number", text("០១២/២០២៤"), &monitor, at(2_100))
        .expect("case number");
    record
        .set_field("hearing_date", text("2024-03-01"), &monitor, at(2_200))
        .expect("date");
    record
        .set_field("sentence", text(SENTENCE), &monitor, at(2_300))
        .expect("sentence");
    record
        .list_insert("charges", 0, PRETRIAL_DETENTION, &monitor, at(3_000))
        .expect("charge");
    record
        .list_insert("judges", 0, JUDGE, &monitor, at(3_100))
        .expect("judge");
    record
        .list_insert("judges", 1, WITNESS, &monitor, at(3_200))
        .expect("judge");
    record
        .list_set("judges", 1, "ចៅក្រម កែវ ច័ន្ទតារា", &monitor, at(3_300))
        .expect("replace");
    record
        .set_text("narrative", NARRATIVE, &monitor, at(4_000))
        .expect("narrative");
    record
        .transition(Status::Submitted, Some(COMMENT), &monitor, at(5_000))
        .expect("submit with a comment");
    record
        .comment(WITNESS, &monitor, at(5_100))
        .expect("comment");
    record
}

fn assert_khmer_intact(record: &Record) {
    let view = record.view().expect("view");
    let text = |s: &str| Some(FieldValue::Text(s.to_owned()));
    assert_eq!(view.fields.get("court").cloned(), text(COURT));
    assert_eq!(view.fields.get("sentence").cloned(), text(SENTENCE));
    assert_eq!(view.fields.get("narrative").cloned(), text(NARRATIVE));
    assert_eq!(
        view.fields.get("charges"),
        Some(&FieldValue::List(vec![PRETRIAL_DETENTION.into()]))
    );
    assert_eq!(
        view.fields.get("judges"),
        Some(&FieldValue::List(vec![
            JUDGE.into(),
            "ចៅក្រម កែវ ច័ន្ទតារា".into()
        ]))
    );
    assert_eq!(view.title, format!("{COURT} · ០១២/២០២៤ · 2024-03-01"));
    let texts: Vec<&str> = view.review.iter().map(|e| e.text.as_str()).collect();
    assert_eq!(texts, [COMMENT, WITNESS]);
}

#[test]
fn khmer_survives_save_and_load() {
    let case = DocumentId::from_bytes([0x4b; 16]);
    let record = filled_record(&case);
    assert_khmer_intact(&record);
    let loaded = Record::load(&record.save(), ActorId::from([2; 16])).expect("loads");
    assert_khmer_intact(&loaded);
    assert_eq!(loaded.view(), record.view());
    // And again after an edit on the loaded copy.
    let mut loaded = loaded;
    let monitor = editor("dara", "dara-phone", Role::Monitor);
    loaded
        .splice_text("narrative", 0, 0, "បន្ថែម៖ ", &monitor, at(6_000))
        .expect("types");
    let reloaded = Record::load(&loaded.save(), ActorId::from([3; 16])).expect("loads");
    assert_eq!(
        reloaded.field("narrative").expect("field"),
        Some(FieldValue::Text(format!("បន្ថែម៖ {NARRATIVE}")))
    );
}

#[test]
fn khmer_survives_sync_to_another_phone_and_the_hub() {
    let mut hub = Hub::new();
    let case = hub.create_case([0x4c; 16], at(1));
    hub.add_member("sokha", case);
    hub.add_member("dara", case);
    let mut net = Net::new(hub);
    let sokha = net.add_phone(editor("sokha", "sokha-phone", Role::Monitor), [1; 16]);
    let dara = net.add_phone(editor("dara", "dara-phone", Role::Monitor), [2; 16]);
    let id = DocumentId::from_bytes([0x4d; 16]);
    let record = filled_record(&case);
    net.phone_mut(sokha)
        .repo
        .add_document(id, &record.save(), None)
        .expect("loads");
    net.sync(sokha);
    net.phone_mut(dara).repo.request(id);
    net.sync(dara);
    assert_eq!(net.hub.refusals(), &[]);
    assert_khmer_intact(net.hub.record(&id).expect("hub copy"));
    assert_khmer_intact(net.phone(dara).record(&id));
    // The review entries arrived with their Khmer text and attribution.
    let review = net.phone(dara).record(&id).view().expect("view").review;
    assert_eq!(review[0].author, "sokha");
    assert_eq!(review[0].action, "submit");
}

#[test]
fn splice_positions_count_code_points_inside_khmer_clusters() {
    let case = DocumentId::from_bytes([0x4e; 16]);
    let monitor = editor("sokha", "sokha-phone", Role::Monitor);
    let mut record = Record::create(
        RecordKind::CourtObservation,
        &case,
        ActorId::from([1; 16]),
        &monitor,
        at(1_000),
    );
    // សាក្សី is six code points: ស ា ក ្ ស ី.
    assert_eq!(WITNESS.chars().count(), 6);
    record
        .splice_text("narrative", 0, 0, WITNESS, &monitor, at(2_000))
        .expect("types");
    // Insert after the second code point, then delete the coeng and the second ស (two code points).
    record
        .splice_text("narrative", 2, 0, "ឃ", &monitor, at(3_000))
        .expect("inserts");
    record
        .splice_text("narrative", 4, 2, "", &monitor, at(4_000))
        .expect("deletes");
    assert_eq!(
        record.field("narrative").expect("field"),
        Some(FieldValue::Text("សាឃកី".into()))
    );
    // Out of range in code points is an error, not a panic or a split byte.
    assert!(
        record
            .splice_text("narrative", 6, 0, "x", &monitor, at(5_000))
            .is_err()
    );
    assert!(
        record
            .splice_text("narrative", 4, 2, "", &monitor, at(5_000))
            .is_err()
    );
}

#[test]
fn concurrent_khmer_typing_merges_letter_by_letter() {
    let mut hub = Hub::new();
    let case = hub.create_case([0x4f; 16], at(1));
    hub.add_member("sokha", case);
    hub.add_member("dara", case);
    let mut net = Net::new(hub);
    let sokha = net.add_phone(editor("sokha", "sokha-phone", Role::Monitor), [1; 16]);
    let dara = net.add_phone(editor("dara", "dara-phone", Role::Monitor), [2; 16]);
    let (s_ed, d_ed) = (
        net.phone(sokha).editor.clone(),
        net.phone(dara).editor.clone(),
    );
    let id = net.phone_mut(sokha).repo.create(
        RecordKind::CourtObservation,
        &case,
        &s_ed,
        at(1_000),
        [0x50; 16],
    );
    net.phone_mut(sokha)
        .repo
        .edit(&id, |r| r.set_text("narrative", "ក ខ", &s_ed, at(1_500)))
        .expect("has it")
        .expect("types");
    net.sync(sokha);
    net.phone_mut(dara).repo.request(id);
    net.sync(dara);
    net.disconnect_all();
    // Offline: Sokha rewrites the start, Dara appends at the end, both in Khmer.
    net.phone_mut(sokha)
        .repo
        .edit(&id, |r| {
            r.set_text("narrative", "សាក្សី ក ខ", &s_ed, at(2_000))
        })
        .expect("has it")
        .expect("types");
    net.phone_mut(dara)
        .repo
        .edit(&id, |r| r.set_text("narrative", "ក ខ គ", &d_ed, at(2_100)))
        .expect("has it")
        .expect("types");
    net.sync(sokha);
    net.sync(dara);
    net.settle();
    for i in [sokha, dara] {
        assert_eq!(
            net.phone(i).record(&id).field("narrative").expect("field"),
            Some(FieldValue::Text("សាក្សី ក ខ គ".into())),
            "phone {i}"
        );
    }
}

/// User names and device names in Khmer travel in commit messages (JSON) and pass the policy.
#[test]
fn khmer_user_names_are_attributed_and_pass_the_policy() {
    let mut hub = Hub::new();
    let case = hub.create_case([0x51; 16], at(1));
    hub.add_member("សុខា", case);
    let mut net = Net::new(hub);
    let phone = net.add_phone(editor("សុខា", "ទូរស័ព្ទ-១", Role::Monitor), [1; 16]);
    let ed = net.phone(phone).editor.clone();
    let id = net.phone_mut(phone).repo.create(
        RecordKind::CourtObservation,
        &case,
        &ed,
        at(1_000),
        [0x52; 16],
    );
    net.phone_mut(phone)
        .repo
        .edit(&id, |r| {
            r.comment(COMMENT, &ed, at(2_000))?;
            r.set_field("court", FieldInput::Text(COURT.into()), &ed, at(3_000))
        })
        .expect("has it")
        .expect("edits");
    net.sync(phone);
    assert_eq!(net.hub.refusals(), &[]);
    let hub = net.hub.record(&id).expect("hub copy");
    let view = hub.view().expect("view");
    assert_eq!(view.created_by, "សុខា");
    assert_eq!(view.review[0].author, "សុខា");
    for entry in hub.history() {
        assert_eq!(entry.by.user.as_deref(), Some("សុខា"));
        assert_eq!(entry.by.device.as_deref(), Some("ទូរស័ព្ទ-១"));
    }
}
