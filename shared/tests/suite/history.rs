//! `Record::history` and `field_history` attribute each edit to the user, the device and the
//! time its author's device gave, on every replica (the report of S7 prints them).

use saksi_shared::Timestamp;
use saksi_shared::automerge::transaction::{CommitOptions, Transactable};
use saksi_shared::automerge::{ActorId, ROOT, ReadDoc};
use saksi_shared::catalogue::RecordKind;
use saksi_shared::record::{Edit, FieldInput, FieldValue, HistoryEntry};
use saksi_shared::{DocumentId, Record, Role, Status};
use saksi_testkit::Hub;
use saksi_testkit::at;

use crate::harness::{Net, editor};

/// (user, device, time) of each entry.
fn who(history: &[HistoryEntry]) -> Vec<(String, String, Timestamp)> {
    history
        .iter()
        .map(|h| {
            (
                h.by.user.clone().unwrap_or_default(),
                h.by.device.as_deref().unwrap_or_default().to_owned(),
                h.by.at,
            )
        })
        .collect()
}

fn w(user: &str, device: &str, millis: i64) -> (String, String, Timestamp) {
    (user.into(), device.into(), at(millis))
}

#[test]
fn every_edit_is_attributed_to_its_user_device_and_time_on_every_replica() {
    let mut hub = Hub::new();
    let case = hub.create_case([0x48; 16], at(1));
    hub.add_member("sokha", case);
    hub.add_member("dara", case);
    let mut net = Net::new(hub);
    let phone = net.add_phone(editor("sokha", "sokha-phone", Role::Monitor), [0xa1; 16]);
    let dara = net.add_phone(editor("dara", "dara-phone", Role::Monitor), [0xa2; 16]);
    let tablet = net.add_phone(editor("sokha", "sokha-tablet", Role::Monitor), [0xa3; 16]);
    let chenda = net.add_phone(
        editor("chenda", "chenda-laptop", Role::Coordinator),
        [0xa4; 16],
    );
    let ed = |net: &Net, i: usize| net.phone(i).editor.clone();
    let (p_ed, d_ed, t_ed, c_ed) = (
        ed(&net, phone),
        ed(&net, dara),
        ed(&net, tablet),
        ed(&net, chenda),
    );

    let id = net.phone_mut(phone).repo.create(
        RecordKind::CourtObservation,
        &case,
        &p_ed,
        at(1_000),
        [0x49; 16],
    );
    net.phone_mut(phone)
        .repo
        .edit(&id, |r| {
            r.set_field(
                "court",
                FieldInput::Text("សាលាដំបូង".into()),
                &p_ed,
                at(2_000),
            )
        })
        .expect("has it")
        .expect("edits");
    net.sync(phone);
    for i in [dara, tablet, chenda] {
        net.phone_mut(i).repo.request(id);
        net.sync(i);
    }
    net.phone_mut(dara)
        .repo
        .edit(&id, |r| {
            r.set_field(
                "court",
                FieldInput::Text("សាលាឧទ្ធរណ៍".into()),
                &d_ed,
                at(3_000),
            )?;
            r.splice_text("narrative", 0, 0, "សាក្សី", &d_ed, at(3_100))?;
            r.list_insert("judges", 0, "ចៅក្រម ក", &d_ed, at(3_200))?;
            r.list_insert("judges", 1, "ចៅក្រម ខ", &d_ed, at(3_200))
        })
        .expect("has it")
        .expect("edits");
    net.settle();
    net.phone_mut(tablet)
        .repo
        .edit(&id, |r| {
            r.list_set("judges", 1, "ចៅក្រម គ", &t_ed, at(4_000))?;
            r.clear_field("court", &t_ed, at(4_100))?;
            r.transition(Status::Submitted, Some("រួច"), &t_ed, at(4_200))
        })
        .expect("has it")
        .expect("edits");
    net.settle();
    net.phone_mut(chenda)
        .repo
        .edit(&id, |r| {
            r.resolve(
                "court",
                FieldInput::Text("សាលាដំបូង".into()),
                &c_ed,
                at(5_000),
            )?;
            r.transition(Status::Approved, None, &c_ed, at(5_100))
        })
        .expect("has it")
        .expect("edits");
    net.settle();
    assert_eq!(net.hub.refusals(), &[]);

    let actor = |i: usize| net.phone(i).repo.actor().to_hex_string();
    let replicas: Vec<&Record> = std::iter::once(net.hub.record(&id).expect("hub copy"))
        .chain(net.phones.iter().map(|p| p.record(&id)))
        .collect();
    for record in replicas {
        let history = record.history();
        assert_eq!(
            who(&history),
            [
                w("sokha", "sokha-phone", 1_000),
                w("sokha", "sokha-phone", 2_000),
                w("dara", "dara-phone", 3_000),
                w("dara", "dara-phone", 3_100),
                w("dara", "dara-phone", 3_200),
                w("dara", "dara-phone", 3_200),
                w("sokha", "sokha-tablet", 4_000),
                w("sokha", "sokha-tablet", 4_100),
                w("sokha", "sokha-tablet", 4_200),
                w("chenda", "chenda-laptop", 5_000),
                w("chenda", "chenda-laptop", 5_100),
            ]
        );
        let actors: Vec<&str> = history.iter().map(|h| h.by.actor.as_str()).collect();
        let expected_actors: Vec<String> = [phone, phone, dara, dara, dara, dara]
            .into_iter()
            .chain([tablet, tablet, tablet, chenda, chenda])
            .map(actor)
            .collect();
        assert_eq!(actors, expected_actors);
        // Each entry names the change it describes.
        for entry in &history {
            let hash = entry.by.change.parse().expect("a change hash");
            assert!(record.doc().get_change_by_hash(&hash).is_some());
        }
        let edits: Vec<&[Edit]> = history.iter().map(|h| h.edits.as_slice()).collect();
        assert_eq!(
            edits[0],
            [
                Edit::Created {
                    kind: "court_observation".into()
                },
                Edit::SchemaVersion { to: 1 },
                Edit::Status { to: "draft".into() }
            ]
        );
        assert_eq!(
            edits[3],
            [Edit::EditedText {
                field: "narrative".into(),
                inserted: 6,
                deleted: 0
            }]
        );
        assert_eq!(
            edits[6],
            [Edit::EditedList {
                field: "judges".into(),
                inserted: 0,
                replaced: 1,
                removed: 0
            }]
        );
        assert_eq!(
            edits[7],
            [Edit::ClearedField {
                field: "court".into()
            }]
        );
        assert_eq!(
            edits[8],
            [
                Edit::Status {
                    to: "submitted".into()
                },
                Edit::Review {
                    action: "submit".into()
                }
            ]
        );

        // The history of one field lists only the changes that touched it, in order.
        let court = record.field_history("court");
        assert_eq!(
            who(&court),
            [
                w("sokha", "sokha-phone", 2_000),
                w("dara", "dara-phone", 3_000),
                w("sokha", "sokha-tablet", 4_100),
                w("chenda", "chenda-laptop", 5_000),
            ]
        );
        let court_edits: Vec<&Edit> = court.iter().map(|h| &h.edits[0]).collect();
        assert_eq!(
            court_edits,
            [
                &Edit::SetField {
                    field: "court".into(),
                    value: FieldValue::Text("សាលាដំបូង".into())
                },
                &Edit::SetField {
                    field: "court".into(),
                    value: FieldValue::Text("សាលាឧទ្ធរណ៍".into())
                },
                &Edit::ClearedField {
                    field: "court".into()
                },
                &Edit::SetField {
                    field: "court".into(),
                    value: FieldValue::Text("សាលាដំបូង".into())
                },
            ]
        );
        assert!(court.iter().all(|h| h.edits.len() == 1), "only court edits");
        assert_eq!(
            who(&record.field_history("judges")),
            [
                w("dara", "dara-phone", 3_200),
                w("dara", "dara-phone", 3_200),
                w("sokha", "sokha-tablet", 4_000),
            ]
        );
        assert_eq!(record.field_history("verdict"), vec![]);
        assert_eq!(record.view().expect("view").updated_at, at(5_100));
    }
}

/// Changes made by a client that writes no attribution (a stock automerge-repo client) are
/// still in the history, attributed to their actor and time only.
#[test]
fn changes_without_a_note_are_attributed_to_their_actor() {
    let case = DocumentId::from_bytes([0x4a; 16]);
    let monitor = editor("sokha", "sokha-phone", Role::Monitor);
    let mut record = Record::create(
        RecordKind::CourtObservation,
        &case,
        ActorId::from([0xb1; 16]),
        &monitor,
        at(1_000),
    );
    record.set_actor(ActorId::from([0xb2; 16]));
    record
        .doc_mut()
        .transact_with(
            |_| CommitOptions::default().with_time(2_000),
            |tx| {
                let fields = tx.get(ROOT, "fields")?.expect("fields").1;
                tx.put(&fields, "verdict", "pending")
            },
        )
        .expect("commits");
    let history = record.history();
    assert_eq!(history.len(), 2);
    let by = &history[1].by;
    assert_eq!((by.user.as_deref(), by.device.as_deref()), (None, None));
    assert_eq!(by.actor, ActorId::from([0xb2; 16]).to_hex_string());
    assert_eq!(by.at, at(2_000));
    assert_eq!(
        history[1].edits,
        [Edit::SetField {
            field: "verdict".into(),
            value: FieldValue::Text("pending".into())
        }]
    );
}

/// automerge's JavaScript library stamps changes in seconds, Saksi's clients in milliseconds:
/// both are shown as the same time (a record written by a stock client once showed "updated
/// 1970-01-21").
#[test]
fn change_times_in_seconds_are_read_as_such() {
    let case = DocumentId::from_bytes([0x4a; 16]);
    let monitor = editor("sokha", "sokha-phone", Role::Monitor);
    let created_ms = 1_764_800_000_000;
    let mut record = Record::create(
        RecordKind::CourtObservation,
        &case,
        ActorId::from([0xb1; 16]),
        &monitor,
        at(created_ms),
    );
    record.set_actor(ActorId::from([0xb2; 16]));
    let later_s = created_ms / 1000 + 60;
    record
        .doc_mut()
        .transact_with(
            |_| CommitOptions::default().with_time(later_s),
            |tx| {
                let fields = tx.get(ROOT, "fields")?.expect("fields").1;
                tx.put(&fields, "court", "សាក្សី")
            },
        )
        .expect("commits");
    assert_eq!(
        record.view().expect("a record").updated_at,
        at(later_s * 1000)
    );
    assert_eq!(record.history()[1].by.at, at(later_s * 1000));
    assert_eq!(record.history()[0].by.at, at(created_ms));
}
