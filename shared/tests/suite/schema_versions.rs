//! A document written by schema version 1 always opens. `fixtures/court_observation_v1.automerge`
//! was saved once by the generator below (with the build of schema version 1) and committed; the
//! test reads those bytes, never regenerated ones, so it keeps checking that later builds open
//! what version 1 wrote.
//!
//! The generator is `saksi_testkit::fixtures::court_observation_v1`; `cargo xtask fixtures`
//! writes the file only if it is missing, and only with a build whose `CURRENT_SCHEMA_VERSION`
//! is 1.

use std::path::PathBuf;

use saksi_shared::automerge::ActorId;
use saksi_shared::catalogue::RecordKind;
use saksi_shared::record::{Edit, FieldInput, FieldValue};
use saksi_shared::schema::CURRENT_SCHEMA_VERSION;
use saksi_shared::{DocumentId, Record, Role, Status};
use saksi_testkit::Hub;
use saksi_testkit::at;
/// The case the fixture belongs to, and the fixture's own document id.
use saksi_testkit::fixtures::{V1_CASE as CASE_BYTES, V1_DOC as DOC_BYTES};

use crate::harness::{Net, editor};

fn fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/court_observation_v1.automerge")
}

/// The generator in `saksi-testkit` (run by `cargo xtask fixtures` only if the fixture is
/// lost) still writes exactly the committed bytes while the schema is version 1.
#[test]
fn the_generator_writes_the_committed_fixture() {
    if CURRENT_SCHEMA_VERSION == 1 {
        assert_eq!(saksi_testkit::fixtures::court_observation_v1(), fixture());
    }
}

fn fixture() -> Vec<u8> {
    std::fs::read(fixture_path()).expect("the committed v1 fixture (see the module docs)")
}

#[test]
fn a_version_1_document_loads_and_views() {
    let record = Record::load(&fixture(), ActorId::from([9; 16])).expect("loads");
    assert_eq!(record.schema_version(), 1);
    let view = record.view().expect("views");
    assert_eq!(view.kind, RecordKind::CourtObservation);
    assert_eq!(view.schema_version, 1);
    assert_eq!(view.case, DocumentId::from_bytes(CASE_BYTES).to_string());
    assert_eq!(view.created_by, "sokha");
    assert_eq!(view.created_at, at(1_709_260_000_000));
    assert_eq!(view.status, Status::Submitted);
    assert_eq!(view.title, "សាលាដំបូងខេត្តកណ្ដាល · 2024-03-01");
    assert_eq!(
        view.fields.get("charges"),
        Some(&FieldValue::List(vec!["ការឃុំខ្លួនបណ្ដោះអាសន្ន".into()]))
    );
    assert_eq!(
        view.fields.get("narrative"),
        Some(&FieldValue::Text("សាក្សីពីរនាក់។".into()))
    );
    assert_eq!(
        view.fields.get("pretrial_detention_days"),
        Some(&FieldValue::Number(120))
    );
    assert_eq!(view.conflicts.len(), 1);
    assert_eq!(view.conflicts[0].field, "counsel_present");
    let mut authors: Vec<_> = view.conflicts[0]
        .values
        .iter()
        .map(|v| (v.value.display(), v.by.user.clone()))
        .collect();
    authors.sort();
    assert_eq!(
        authors,
        [
            ("no".into(), Some("dara".into())),
            ("yes".into(), Some("sokha".into()))
        ]
    );
    assert_eq!(view.review.len(), 1);
    assert_eq!(view.review[0].text, "រួចរាល់");
    assert_eq!(view.updated_at, at(1_709_260_400_000));
    // History reads the old changes too.
    let history = record.history();
    assert_eq!(history.len(), 9);
    assert!(matches!(history[0].edits[0], Edit::Created { .. }));
}

#[test]
fn a_version_1_document_accepts_new_edits() {
    let mut record = Record::load(&fixture(), ActorId::from([9; 16])).expect("loads");
    let coordinator = editor("chenda", "chenda-laptop", Role::Coordinator);
    record
        .resolve(
            "counsel_present",
            FieldInput::Text("yes".into()),
            &coordinator,
            at(1_800_000_000_000),
        )
        .expect("resolves");
    record
        .splice_text(
            "narrative",
            0,
            0,
            "បន្ថែម៖ ",
            &coordinator,
            at(1_800_000_001_000),
        )
        .expect("types");
    record
        .transition(Status::Approved, None, &coordinator, at(1_800_000_002_000))
        .expect("approves");
    let reloaded = Record::load(&record.save(), ActorId::from([10; 16])).expect("reloads");
    let view = reloaded.view().expect("views");
    assert_eq!(view.schema_version, 1);
    assert_eq!(view.conflicts, vec![]);
    assert_eq!(view.status, Status::Approved);
    assert_eq!(
        view.fields.get("narrative"),
        Some(&FieldValue::Text("បន្ថែម៖ សាក្សីពីរនាក់។".into()))
    );
}

/// A server holding a v1 document (stored before an upgrade) serves it, and today's write
/// policy accepts new edits to it from the case team.
#[test]
fn a_version_1_document_on_the_server_syncs_and_accepts_edits() {
    let mut hub = Hub::new();
    let case = hub.create_case(CASE_BYTES, at(1));
    hub.add_member("sokha", case);
    hub.add_member("dara", case);
    let id = DocumentId::from_bytes(DOC_BYTES);
    hub.load_document(id, &fixture()).expect("a record");
    let mut net = Net::new(hub);
    let sokha = net.add_phone(editor("sokha", "sokha-phone", Role::Monitor), [0x31; 16]);
    let dara = net.add_phone(editor("dara", "dara-phone", Role::Monitor), [0x32; 16]);
    for i in [sokha, dara] {
        net.phone_mut(i).repo.request(id);
        net.sync(i);
        assert_eq!(
            net.phone(i)
                .record(&id)
                .view()
                .expect("views")
                .schema_version,
            1
        );
    }
    let d_ed = net.phone(dara).editor.clone();
    net.phone_mut(dara)
        .repo
        .edit(&id, |r| {
            r.set_field(
                "verdict",
                FieldInput::Text("pending".into()),
                &d_ed,
                at(1_800_000_000_000),
            )?;
            r.list_insert("judges", 0, "ចៅក្រម ម៉ៅ ចន្ទា", &d_ed, at(1_800_000_001_000))
        })
        .expect("has it")
        .expect("edits");
    net.settle();
    assert_eq!(net.hub.refusals(), &[]);
    for record in [
        net.phone(sokha).record(&id),
        net.hub.record(&id).expect("hub"),
    ] {
        let view = record.view().expect("views");
        assert_eq!(
            view.fields.get("verdict"),
            Some(&FieldValue::Text("pending".into()))
        );
        assert_eq!(
            view.fields.get("judges"),
            Some(&FieldValue::List(vec!["ចៅក្រម ម៉ៅ ចន្ទា".into()]))
        );
    }
}
