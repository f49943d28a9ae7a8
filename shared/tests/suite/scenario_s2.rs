//! Scenario S2 (docs/SCENARIOS.md) at crate level: two monitors at the same hearing edit one court
//! observation offline; after they reconnect every edit is merged, and the one disagreement is
//! a conflict naming both of them, which a coordinator resolves for everyone.

use saksi_shared::Timestamp;
use saksi_shared::catalogue::RecordKind;
use saksi_shared::record::{Edit, FieldInput, FieldValue};
use saksi_shared::{Role, Status};
use saksi_testkit::at;
use saksi_testkit::{Hub, s2};

use crate::harness::{Net, editor, sorted_heads};

#[test]
fn two_monitors_offline_then_a_coordinator_resolves() {
    let mut hub = Hub::new();
    let case = hub.create_case([0x52; 16], at(1_000));
    hub.add_member("sokha", case);
    hub.add_member("dara", case);
    let mut net = Net::new(hub);
    let sokha = net.add_phone(editor("sokha", "sokha-phone", Role::Monitor), [1; 16]);
    let dara = net.add_phone(editor("dara", "dara-phone", Role::Monitor), [2; 16]);
    let chenda = net.add_phone(
        editor("chenda", "chenda-laptop", Role::Coordinator),
        [3; 16],
    );
    let ed = |net: &Net, i: usize| net.phone(i).editor.clone();

    // Sokha creates and fills the observation before the hearing and both phones get it.
    let s_ed = ed(&net, sokha);
    let id = net.phone_mut(sokha).repo.create(
        RecordKind::CourtObservation,
        &case,
        &s_ed,
        at(10_000),
        [0x0b; 16],
    );
    net.phone_mut(sokha)
        .repo
        .edit(&id, |r| s2::before_the_hearing(r, &s_ed, at(10_100)))
        .expect("has the record")
        .expect("filled");
    net.sync(sokha);
    net.phone_mut(dara).repo.request(id);
    net.sync(dara);
    net.disconnect_all();

    // In the courtroom, no signal: both edit.
    let d_ed = ed(&net, dara);
    net.phone_mut(sokha)
        .repo
        .edit(&id, |r| s2::first_monitor_offline(r, &s_ed, at(11_000)))
        .expect("has the record")
        .expect("sokha's edits");
    net.phone_mut(dara)
        .repo
        .edit(&id, |r| s2::second_monitor_offline(r, &d_ed, at(11_050)))
        .expect("has the record")
        .expect("dara's edits");

    // Both reconnect.
    net.connect(sokha);
    net.connect(dara);
    net.settle();
    assert_eq!(net.hub.refusals(), &[]);

    let hub_view = net.hub.record(&id).expect("hub copy").view().expect("view");
    for i in [sokha, dara] {
        let view = net.phone(i).record(&id).view().expect("view");
        assert_eq!(view, hub_view, "phone {i} holds the merged record");
    }
    s2::check_merged(&hub_view, &s_ed, &d_ed);

    // A coordinator picks "yes"; the resolution reaches both phones and the conflict is gone.
    net.phone_mut(chenda).repo.request(id);
    net.sync(chenda);
    let c_ed = ed(&net, chenda);
    assert_eq!(
        net.phone(chenda)
            .record(&id)
            .conflicts()
            .expect("view")
            .len(),
        1,
        "the coordinator sees the conflict"
    );
    net.phone_mut(chenda)
        .repo
        .edit(&id, |r| {
            r.resolve(
                "counsel_present",
                FieldInput::Text("yes".into()),
                &c_ed,
                at(20_000),
            )
        })
        .expect("has the record")
        .expect("resolves");
    net.settle();
    assert_eq!(net.hub.refusals(), &[]);
    let hub_record = net.hub.record(&id).expect("hub copy");
    for i in [sokha, dara, chenda] {
        let record = net.phone(i).record(&id);
        assert_eq!(sorted_heads(record), sorted_heads(hub_record), "phone {i}");
        let view = record.view().expect("view");
        assert_eq!(view.conflicts, vec![], "phone {i}: no conflict left");
        assert_eq!(
            view.fields.get("counsel_present"),
            Some(&FieldValue::Text("yes".into()))
        );
        let last = view
            .review
            .last()
            .expect("the resolution is in the review trail");
        assert_eq!(
            (
                last.author.as_str(),
                last.action.as_str(),
                last.text.as_str()
            ),
            ("chenda", "resolve", "counsel_present")
        );
    }
    // The field's history shows both monitors and then the coordinator's resolution, as a write.
    let history = hub_record.field_history("counsel_present");
    let by: Vec<(&str, &Edit)> = history
        .iter()
        .map(|h| (h.by.user.as_deref().unwrap_or(""), &h.edits[0]))
        .collect();
    assert_eq!(by.len(), 3, "{history:?}");
    assert_eq!(
        by[2],
        (
            "chenda",
            &Edit::SetField {
                field: "counsel_present".into(),
                value: FieldValue::Text("yes".into())
            }
        )
    );

    // Back at the hearing's next session, Sokha submits; the record moves on for everyone.
    net.phone_mut(sokha)
        .repo
        .edit(&id, |r| {
            r.transition(Status::Submitted, None, &s_ed, at(30_000))
        })
        .expect("has the record")
        .expect("submits");
    net.settle();
    for i in [dara, chenda] {
        assert_eq!(
            net.phone(i).record(&id).view().expect("view").status,
            Status::Submitted
        );
    }
}

/// The resolution must win against the values it saw even when the coordinator picks the value
/// that is already shown; and a monitor's write made concurrently with the resolution, without
/// seeing it, is a new conflict rather than being silently dropped.
#[test]
fn resolving_to_the_shown_value_still_conflicts_with_a_concurrent_write() {
    let mut hub = Hub::new();
    let case = hub.create_case([0x53; 16], at(1_000));
    hub.add_member("sokha", case);
    hub.add_member("dara", case);
    let mut net = Net::new(hub);
    let sokha = net.add_phone(editor("sokha", "sokha-phone", Role::Monitor), [1; 16]);
    let dara = net.add_phone(editor("dara", "dara-phone", Role::Monitor), [2; 16]);
    let chenda = net.add_phone(
        editor("chenda", "chenda-laptop", Role::Coordinator),
        [3; 16],
    );
    let (s_ed, d_ed, c_ed) = (
        net.phone(sokha).editor.clone(),
        net.phone(dara).editor.clone(),
        net.phone(chenda).editor.clone(),
    );
    let id = net.phone_mut(sokha).repo.create(
        RecordKind::CourtObservation,
        &case,
        &s_ed,
        at(10_000),
        [0x0c; 16],
    );
    net.sync(sokha);
    for i in [dara, chenda] {
        net.phone_mut(i).repo.request(id);
        net.sync(i);
    }
    net.disconnect_all();
    let set = |net: &mut Net, i: usize, value: &str, ed: &saksi_shared::Editor, now: Timestamp| {
        net.phone_mut(i)
            .repo
            .edit(&id, |r| {
                r.set_field("handcuffed", FieldInput::Text(value.into()), ed, now)
            })
            .expect("has the record")
            .expect("sets");
    };
    set(&mut net, sokha, "yes", &s_ed, at(11_000));
    set(&mut net, dara, "no", &d_ed, at(11_100));
    net.sync(sokha);
    net.sync(dara);
    net.sync(chenda);
    net.disconnect_all();
    let shown = net
        .phone(chenda)
        .record(&id)
        .field("handcuffed")
        .expect("field")
        .expect("a value")
        .display();
    // Offline: the coordinator confirms the shown value; Sokha, not having seen that, changes
    // her answer to "unknown".
    net.phone_mut(chenda)
        .repo
        .edit(&id, |r| {
            r.resolve(
                "handcuffed",
                FieldInput::Text(shown.clone()),
                &c_ed,
                at(12_000),
            )
        })
        .expect("has the record")
        .expect("resolves");
    set(&mut net, sokha, "unknown", &s_ed, at(12_100));
    net.sync(chenda);
    net.sync(sokha);
    net.sync(dara);
    let view = net.hub.record(&id).expect("hub").view().expect("view");
    let conflict = view
        .conflicts
        .iter()
        .find(|c| c.field == "handcuffed")
        .expect("the resolution and Sokha's concurrent answer conflict");
    let mut values: Vec<(String, Option<String>)> = conflict
        .values
        .iter()
        .map(|v| (v.value.display(), v.by.user.clone()))
        .collect();
    values.sort();
    let mut expected = vec![
        (shown, Some("chenda".to_owned())),
        ("unknown".to_owned(), Some("sokha".to_owned())),
    ];
    expected.sort();
    assert_eq!(values, expected);
}
