//! `sync::DocSync` between two peers, on the cases that once broke it: a message carrying
//! several changes (automerge's V2 format concatenates them into one chunk), and a change that
//! arrives before its dependency because the sender's bloom filter wrongly said the receiver had
//! it.

use saksi_shared::automerge::sync::BloomFilter;
use saksi_shared::automerge::transaction::Transactable as _;
use saksi_shared::automerge::{ActorId, AutoCommit, Change, ChangeHash, ROOT};
use saksi_shared::catalogue::RecordKind;
use saksi_shared::record::{FieldInput, FieldValue};
use saksi_shared::sync::{
    AcceptAll, DocSync, MAX_WAITING_BYTES_PER_PEER, MAX_WAITING_ROUNDS, SyncError, changes_message,
};
use saksi_shared::{DocumentId, Record, Role};
use saksi_testkit::at;

use crate::harness::{editor, sorted_heads};

/// Runs the two-peer loop until neither side has anything to say; returns the rounds taken.
fn exchange(a: &mut DocSync, b: &mut DocSync) -> usize {
    for round in 1..=50 {
        let to_b = a.generate("b");
        if let Some(m) = &to_b {
            b.receive("a", m, &mut AcceptAll).expect("b receives");
        }
        let to_a = b.generate("a");
        if let Some(m) = &to_a {
            a.receive("b", m, &mut AcceptAll).expect("a receives");
        }
        if to_b.is_none() && to_a.is_none() {
            return round;
        }
    }
    panic!("the peers did not stop talking within 50 rounds");
}

fn hashes(record: &Record) -> Vec<ChangeHash> {
    record
        .doc()
        .get_changes(&[])
        .iter()
        .map(|c| c.hash())
        .collect()
}

#[test]
fn a_message_with_many_changes_applies_them_all() {
    let monitor = editor("sokha", "sokha-phone", Role::Monitor);
    let case = DocumentId::from_bytes([0x5a; 16]);
    let mut record = Record::create(
        RecordKind::CourtObservation,
        &case,
        ActorId::from([1; 16]),
        &monitor,
        at(1_000),
    );
    for (i, judge) in ["ក", "ខ", "គ", "ឃ", "ង"].iter().enumerate() {
        record
            .list_insert("judges", i, judge, &monitor, at(2_000 + i as i64))
            .expect("inserts");
    }
    let mut a = DocSync::new(record);
    let mut b = DocSync::new(Record::empty(ActorId::from([2; 16])));
    exchange(&mut a, &mut b);
    assert_eq!(sorted_heads(b.record()), sorted_heads(a.record()));
    assert_eq!(hashes(b.record()).len(), 6);
    assert_eq!(
        b.record().field("judges").expect("field"),
        Some(FieldValue::List(
            ["ក", "ខ", "គ", "ឃ", "ង"].map(String::from).to_vec()
        ))
    );
}

#[test]
fn a_dependency_skipped_by_a_bloom_false_positive_is_asked_for() {
    let sokha = editor("sokha", "sokha-phone", Role::Monitor);
    let case = DocumentId::from_bytes([0x5b; 16]);
    let base = Record::create(
        RecordKind::CourtObservation,
        &case,
        ActorId::from([1; 16]),
        &sokha,
        at(1_000),
    );
    // B has only the base (like a server that has not heard from A since), so the bloom filter
    // it sends stays the same, round after round.
    let b_record = Record::load(&base.save(), ActorId::from([2; 16])).expect("loads");
    let b_bloom = BloomFilter::from_hashes(hashes(&b_record).into_iter());
    // A makes c1 then c2, choosing c1's time (deterministically) so that c1's hash is a false
    // positive in the bloom filter B will send: A then believes B has c1 and sends only c2.
    let mut a_record = None;
    for t in 0..100_000 {
        let mut candidate = base.clone();
        candidate
            .set_field(
                "court",
                FieldInput::Text("សាលាដំបូង".into()),
                &sokha,
                at(3_000 + t),
            )
            .expect("sets");
        let c1 = candidate.heads()[0];
        if b_bloom.contains_hash(&c1) {
            a_record = Some(candidate);
            break;
        }
    }
    let mut a_record = a_record.expect("a false positive within the search");
    a_record
        .set_field(
            "verdict",
            FieldInput::Text("pending".into()),
            &sokha,
            at(200_000),
        )
        .expect("sets");
    let mut a = DocSync::new(a_record);
    let mut b = DocSync::new(b_record);
    let rounds = exchange(&mut a, &mut b);
    assert_eq!(
        sorted_heads(a.record()),
        sorted_heads(b.record()),
        "converged after {rounds} rounds"
    );
    assert_eq!(
        b.record().field("court").expect("field"),
        Some(FieldValue::Text("សាលាដំបូង".into()))
    );
    assert_eq!(
        b.record().field("verdict").expect("field"),
        Some(FieldValue::Text("pending".into()))
    );
    assert_eq!(hashes(b.record()).len(), 3);
}

/// Bloom filters automerge itself would panic on (division by zero) or allocate gigabytes for,
/// found by fuzzing: refused as malformed before automerge sees them.
#[test]
fn hostile_bloom_filters_are_refused() {
    use saksi_shared::automerge::sync::{Have, Message, MessageVersion};
    use saksi_shared::sync::SyncError;

    let record = Record::create(
        RecordKind::CourtObservation,
        &DocumentId::from_bytes([1; 16]),
        ActorId::from([2; 16]),
        &editor("sokha", "phone", Role::Monitor),
        at(1_000),
    );
    // (entries, bits per entry, probes, bit bytes)
    let filters: [(&[u8], &str); 2] = [
        (&[1, 0, 7], "zero bits per entry"),
        (
            &[1, 10, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0],
            "four billion probes",
        ),
    ];
    for (bytes, what) in filters {
        let bloom = BloomFilter::try_from(bytes).expect("automerge parses it");
        let message = Message {
            heads: vec![],
            need: vec![],
            have: vec![Have {
                last_sync: vec![],
                bloom,
            }],
            changes: Vec::<Vec<u8>>::new().into(),
            flags: None,
            version: MessageVersion::V1,
        };
        let mut sync = DocSync::new(record.clone());
        sync.add_peer("peer", None);
        let result = sync.receive("peer", &message.encode(), &mut AcceptAll);
        assert!(
            matches!(result, Err(SyncError::Malformed(_))),
            "{what}: {result:?}"
        );
        // And answering still works.
        assert!(sync.generate("peer").is_some(), "{what}");
    }
}

/// A server that reads two messages from one phone before answering (it drains its queue under
/// load) must still tell the phone that it has the phone's change. The second message carries
/// no changes and the heads the server now has, which automerge on its own takes as "the peer
/// knows our heads" and stays silent: the phone then waits forever to hear that its typing
/// reached the server (CI saw the PWA stuck on "syncing" with its change on the server).
#[test]
fn the_sender_of_a_change_hears_back_even_when_its_next_message_arrives_first() {
    let monitor = editor("sokha", "sokha-phone", Role::Monitor);
    let other = editor("dara", "dara-phone", Role::Monitor);
    let case = DocumentId::from_bytes([0x5b; 16]);
    let record = Record::create(
        RecordKind::CourtObservation,
        &case,
        ActorId::from([1; 16]),
        &monitor,
        at(1_000),
    );
    let mut phone = DocSync::new(record);
    let mut server = DocSync::new(Record::empty(ActorId::from([2; 16])));
    exchange(&mut phone, &mut server);
    assert!(phone.peer_in_sync("b"), "in sync before the race");

    // Another phone's edit reaches the server, which sends it on (in flight to this phone).
    server
        .record_mut()
        .set_field(
            "court",
            FieldInput::Text("សាលាដំបូង".into()),
            &other,
            at(2_000),
        )
        .expect("sets");
    let to_phone = server
        .generate("a")
        .expect("the server sends the other edit");
    // Meanwhile this phone types and sends (M1) ...
    phone
        .record_mut()
        .set_field(
            "case_number",
            FieldInput::Text("១២៣".into()),
            &monitor,
            at(2_001),
        )
        .expect("sets");
    let m1 = phone.generate("b").expect("the phone sends its change");
    // ... then receives the other edit and answers it (M2: no changes, the merged heads).
    phone
        .receive("b", &to_phone, &mut AcceptAll)
        .expect("receives");
    let m2 = phone.generate("b").expect("the phone acknowledges");

    // The server reads both before generating anything.
    server.receive("a", &m1, &mut AcceptAll).expect("m1");
    server.receive("a", &m2, &mut AcceptAll).expect("m2");
    assert_eq!(sorted_heads(server.record()), sorted_heads(phone.record()));
    let answer = server
        .generate("a")
        .expect("the server confirms it has the phone's change");
    phone
        .receive("b", &answer, &mut AcceptAll)
        .expect("receives");
    assert!(
        phone.peer_in_sync("b"),
        "the phone knows the server has everything"
    );
    assert_eq!(
        exchange(&mut phone, &mut server),
        1,
        "and then both are quiet"
    );
}

/// A chain of `n` changes to a plain automerge document, each putting `bytes` bytes.
fn chain(n: usize, bytes: usize) -> Vec<Change> {
    let mut doc = AutoCommit::new();
    let mut changes = Vec::new();
    for i in 0..n {
        // Distinct text (automerge skips a put of the value already there).
        let value = format!("{i:08}{}", "ស".repeat(bytes / 3));
        doc.put(ROOT, "x", value).expect("put");
        changes.push(doc.get_last_local_change().expect("a change").clone());
    }
    changes
}

/// Changes whose dependency never arrives may wait, but not without bound: a peer that sends
/// more than 16 MiB of them for one document gets an error and they are dropped (40 changes of
/// 6 MB once took a server from 139 to 327 MB).
#[test]
fn changes_waiting_for_a_dependency_are_bounded_in_bytes() {
    let changes = chain(12, 2 << 20);
    let mut server = DocSync::new(Record::empty(ActorId::from([1; 16])));
    server.add_peer("mallory", None);
    // All but the first: every one waits for it.
    let (mut sent, mut refused) = (0, None);
    for change in &changes[1..] {
        let message = changes_message(std::slice::from_ref(change), vec![change.hash()]);
        match server.receive("mallory", &message, &mut AcceptAll) {
            Ok(received) => {
                assert!(received.applied.is_empty());
                sent += 1;
            }
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    assert_eq!(
        refused,
        Some(SyncError::TooMuchWaiting(MAX_WAITING_BYTES_PER_PEER)),
        "after {sent} waiting changes"
    );
    assert!(sent * (2 << 20) <= MAX_WAITING_BYTES_PER_PEER);
    // What waited is gone: the first change now arrives alone and is all that applies.
    let first = changes_message(&changes[..1], vec![changes[0].hash()]);
    let received = server
        .receive("mallory", &first, &mut AcceptAll)
        .expect("ok");
    assert_eq!(received.applied.len(), 1);
}

/// ... and in age: changes still waiting after 32 further messages from their peer are dropped
/// with an error.
#[test]
fn changes_waiting_for_a_dependency_are_bounded_in_age() {
    let changes = chain(2, 10);
    let mut server = DocSync::new(Record::empty(ActorId::from([1; 16])));
    server.add_peer("mallory", None);
    let waiting = changes_message(&changes[1..], vec![changes[1].hash()]);
    let mut result = Ok(());
    for _ in 0..=MAX_WAITING_ROUNDS + 1 {
        if let Err(e) = server.receive("mallory", &waiting, &mut AcceptAll) {
            result = Err(e);
            break;
        }
    }
    assert_eq!(result, Err(SyncError::WaitedTooLong(MAX_WAITING_ROUNDS)));
}
