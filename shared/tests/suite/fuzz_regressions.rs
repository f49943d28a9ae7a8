//! Every input the fuzzers ever found interesting: the seed corpora (`fuzz/corpus/<target>/`)
//! and every crasher, minimised (`fuzz/regressions/<target>/`). Each is replayed through the same
//! entry point the fuzz target uses and must be handled without a panic.
//!
//! To refresh the seeds after a protocol or schema change:
//! `cargo test -p saksi-shared --test suite -- --ignored write_fuzz_seeds`.

use std::path::{Path, PathBuf};

use saksi_shared::automerge::sync::{State, SyncDoc as _};
use saksi_shared::automerge::{ActorId, Automerge};
use saksi_shared::catalogue::RecordKind;
use saksi_shared::protocol::{Message, PeerMetadata, RemoteHeads};
use saksi_shared::record::{FieldInput, Record};
use saksi_shared::{DocumentId, Role, Status};
use saksi_testkit::fuzzing;

use crate::harness::editor;

/// A fuzz target: its name and entry point.
type Target = (&'static str, fn(&[u8]));

const TARGETS: [Target; 4] = [
    ("protocol_decode", fuzzing::protocol_decode),
    ("sync_receive", fuzzing::sync_receive),
    ("document_load", fuzzing::document_load),
    ("malformed_change", fuzzing::malformed_change),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_seed_and_crasher_is_handled_without_a_panic() {
    for (target, run) in TARGETS {
        let seeds = files(&fuzz_dir().join("corpus").join(target));
        assert!(
            seeds.len() >= 5,
            "{target}: seed corpus missing ({} files)",
            seeds.len()
        );
        let crashers = files(&fuzz_dir().join("regressions").join(target));
        for file in seeds.iter().chain(&crashers) {
            let data = std::fs::read(file).expect("readable");
            run(&data);
        }
    }
}

/// The malformed-change target's invariant over inputs of every shape, without the fuzzer: the
/// same entry point, pseudo-random bytes (so that this test does not depend on a corpus).
#[test]
fn malformed_changes_never_leave_a_record_unloadable() {
    let mut state: u64 = 0x5341_4b53_4920;
    for len in 0..2_000usize {
        let data: Vec<u8> = (0..len % 97)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (state >> 33) as u8
            })
            .collect();
        fuzzing::malformed_change(&data);
    }
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = fuzz_dir().join("corpus").join(target);
    std::fs::create_dir_all(&dir).expect("corpus dir");
    std::fs::write(dir.join(name), bytes).expect("seed written");
}

/// Writes the seed corpora from real traffic: every message type, sync messages of a real
/// exchange, and saved documents.
#[test]
#[ignore = "writes fuzz/corpus; run by hand after protocol or schema changes"]
fn write_fuzz_seeds() {
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
        );
    }

    // A record with every kind of edit, saved, and sync messages towards an empty peer.
    let case = DocumentId::from_bytes([1; 16]);
    let monitor = editor("sokha", "other-phone", Role::Monitor);
    let mut record = Record::create(
        RecordKind::CourtObservation,
        &case,
        ActorId::from([9; 16]),
        &monitor,
        1_000,
    );
    record
        .set_field("court", FieldInput::Text("សាលាដំបូង".into()), &monitor, 1_100)
        .expect("edit");
    record
        .set_text("narrative", "សាក្សី បានឃើញ", &monitor, 1_200)
        .expect("edit");
    record
        .set_list("judges", &["ក".into(), "ខ".into()], &monitor, 1_300)
        .expect("edit");
    record
        .transition(Status::Submitted, Some("រួចរាល់"), &monitor, 1_400)
        .expect("submit");
    write("document_load", "00-record", &record.save());
    write("document_load", "01-empty", &Automerge::new().save());
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/court_observation_v1.automerge");
    write(
        "document_load",
        "02-v1-fixture",
        &std::fs::read(fixture).expect("fixture"),
    );
    for (i, change) in record.doc().get_changes(&[]).iter().enumerate() {
        write("document_load", &format!("1{i}-change"), change.raw_bytes());
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
            write("sync_receive", &format!("{i:02}-to-server"), &bytes);
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
        write("sync_receive", &format!("5{j}-frame"), &bytes);
    }
}
