//! Generators of committed test data, run by `cargo xtask fixtures` (never by the tests): the
//! fuzz targets' seed corpora, and the record written by schema version 1 that
//! `shared/tests/suite/schema_versions.rs` keeps opening.

use std::path::Path;

use crate::at;
use saksi_shared::automerge::sync::{State, SyncDoc as _};
use saksi_shared::automerge::{ActorId, Automerge};
use saksi_shared::catalogue::RecordKind;
use saksi_shared::protocol::{Message, PeerMetadata, RemoteHeads};
use saksi_shared::record::{FieldInput, Record};

use crate::editor;
use saksi_shared::{DocumentId, Role, Status};

/// The case of the version 1 record (the record's own id is [`V1_DOC`]).
pub const V1_CASE: [u8; 16] = [0x56; 16];
/// The version 1 record's id.
pub const V1_DOC: [u8; 16] = [0x57; 16];

/// The court observation schema version 1 wrote: Sokha creates and fills it, Dara (another
/// device) edits concurrently, leaving one conflict, then Sokha submits. Deterministic (fixed
/// actors and times): while the schema is version 1 it equals the committed fixture byte for
/// byte, which a test checks.
pub fn court_observation_v1() -> Vec<u8> {
    let case = DocumentId::from_bytes(V1_CASE);
    let sokha = editor("sokha", "sokha-phone", Role::Monitor);
    let dara = editor("dara", "dara-phone", Role::Monitor);
    let text = |s: &str| FieldInput::Text(s.to_owned());
    let mut a = Record::create(
        RecordKind::CourtObservation,
        &case,
        ActorId::from([0x01; 16]),
        &sokha,
        at(1_709_260_000_000),
    );
    a.set_field(
        "court",
        text("សាលាដំបូងខេត្តកណ្ដាល"),
        &sokha,
        at(1_709_260_060_000),
    )
    .expect("court");
    a.set_field(
        "hearing_date",
        text("2024-03-01"),
        &sokha,
        at(1_709_260_120_000),
    )
    .expect("date");
    a.list_insert(
        "charges",
        0,
        "ការឃុំខ្លួនបណ្ដោះអាសន្ន",
        &sokha,
        at(1_709_260_180_000),
    )
    .expect("charge");
    a.splice_text(
        "narrative",
        0,
        0,
        "សាក្សីពីរនាក់។",
        &sokha,
        at(1_709_260_240_000),
    )
    .expect("narrative");
    let mut b = Record::load(&a.save(), ActorId::from([0x02; 16])).expect("loads");
    a.set_field(
        "counsel_present",
        text("yes"),
        &sokha,
        at(1_709_260_300_000),
    )
    .expect("counsel");
    b.set_field("counsel_present", text("no"), &dara, at(1_709_260_310_000))
        .expect("counsel");
    b.set_field(
        "pretrial_detention_days",
        FieldInput::Number(120),
        &dara,
        at(1_709_260_320_000),
    )
    .expect("days");
    a.doc_mut().merge(b.doc_mut()).expect("merges");
    a.transition(
        Status::Submitted,
        Some("រួចរាល់"),
        &sokha,
        at(1_709_260_400_000),
    )
    .expect("submits");
    a.save()
}

/// Writes the seed corpora of the fuzz targets under `fuzz_dir/corpus/<target>/` from real
/// traffic: every message type, sync messages of a real exchange, and saved documents
/// (`v1_fixture` among them).
pub fn write_fuzz_seeds(fuzz_dir: &Path, v1_fixture: &[u8]) -> std::io::Result<()> {
    let write = |target: &str, name: &str, bytes: &[u8]| -> std::io::Result<()> {
        let dir = fuzz_dir.join("corpus").join(target);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(name), bytes)
    };
    let doc = DocumentId::from_bytes([2; 16]);
    let messages = [
        Message::Join {
            sender_id: "tab".into(),
            supported_protocol_versions: vec!["1".into()],
            metadata: Some(PeerMetadata {
                storage_id: Some("store".into()),
                is_ephemeral: false,
            }),
        },
        Message::Peer {
            sender_id: "server".into(),
            target_id: "tab".into(),
            selected_protocol_version: "1".into(),
            metadata: None,
        },
        Message::Leave {
            sender_id: "tab".into(),
        },
        Message::Request {
            sender_id: "tab".into(),
            target_id: "server".into(),
            document_id: doc,
            data: vec![0x42, 0, 0, 1, 0, 0],
        },
        Message::DocUnavailable {
            sender_id: "server".into(),
            target_id: "tab".into(),
            document_id: doc,
        },
        Message::Ephemeral {
            sender_id: "tab".into(),
            target_id: "server".into(),
            count: 3,
            session_id: "s".into(),
            document_id: doc,
            data: vec![0xa0],
        },
        Message::Error {
            sender_id: Some("server".into()),
            target_id: None,
            message: "change refused".into(),
            document_id: Some(doc),
        },
        Message::RemoteSubscriptionChange {
            sender_id: "tab".into(),
            target_id: "server".into(),
            add: vec!["a".into()],
            remove: vec![],
        },
        Message::RemoteHeadsChanged {
            sender_id: "server".into(),
            target_id: "tab".into(),
            document_id: doc,
            new_heads: vec![RemoteHeads {
                storage_id: "store".into(),
                heads: vec!["abc".into()],
                timestamp: 1,
            }],
        },
    ];
    for (i, m) in messages.iter().enumerate() {
        write(
            "protocol_decode",
            &format!("{i:02}-{}", m.type_name()),
            &m.encode(),
        )?;
    }

    // A record with every kind of edit, saved, and sync messages towards an empty peer.
    let case = DocumentId::from_bytes([1; 16]);
    let monitor = editor("sokha", "other-phone", Role::Monitor);
    let mut record = Record::create(
        RecordKind::CourtObservation,
        &case,
        ActorId::from([9; 16]),
        &monitor,
        at(1_000),
    );
    record
        .set_field(
            "court",
            FieldInput::Text("សាលាដំបូង".into()),
            &monitor,
            at(1_100),
        )
        .expect("edit");
    record
        .set_text("narrative", "សាក្សី បានឃើញ", &monitor, at(1_200))
        .expect("edit");
    record
        .set_list("judges", &["ក".into(), "ខ".into()], &monitor, at(1_300))
        .expect("edit");
    record
        .transition(Status::Submitted, Some("រួចរាល់"), &monitor, at(1_400))
        .expect("submit");
    write("document_load", "00-record", &record.save())?;
    write("document_load", "01-empty", &Automerge::new().save())?;
    write("document_load", "02-v1-fixture", v1_fixture)?;
    for (i, change) in record.doc().get_changes(&[]).iter().enumerate() {
        write("document_load", &format!("1{i}-change"), change.raw_bytes())?;
    }

    // Server side (even first byte): messages from a peer that has edits the server lacks.
    let mut server_state = State::new();
    let mut peer_state = State::new();
    let empty = Automerge::new();
    let mut i = 0;
    for _ in 0..4 {
        if let Some(m) = record.doc().generate_sync_message(&mut peer_state) {
            let mut bytes = vec![0u8];
            bytes.extend(m.clone().encode());
            write("sync_receive", &format!("{i:02}-to-server"), &bytes)?;
            i += 1;
            let mut copy = empty.clone();
            copy.receive_sync_message(&mut server_state, m)
                .expect("receive");
            if let Some(reply) = copy.generate_sync_message(&mut server_state) {
                record
                    .doc_mut()
                    .receive_sync_message(&mut peer_state, reply)
                    .expect("receive");
            }
        }
    }
    // Client side (odd first byte): protocol frames from the server.
    for (j, m) in messages.iter().enumerate() {
        let mut bytes = vec![1u8];
        bytes.extend(m.encode());
        write("sync_receive", &format!("5{j}-frame"), &bytes)?;
    }
    Ok(())
}
