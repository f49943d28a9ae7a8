//! A server's `DocSync` (`keep_changes`) builds its sync messages from its own change graph and
//! per-peer views instead of automerge's `generate_sync_message`. It must say exactly what
//! automerge would: two worlds, identical but for that, are driven by the same random schedule
//! (offline edits, messages delivered, dropped and batched, server-side edits, reconnections,
//! peers with and without the V2 format), and every message the two servers send is compared
//! byte for byte.

use saksi_shared::Record;
use saksi_shared::automerge::sync::{Message as SyncMessage, State, SyncDoc};
use saksi_shared::automerge::transaction::{CommitOptions, Transactable};
use saksi_shared::automerge::{ActorId, Automerge, ROOT};
use saksi_shared::sync::{AcceptAll, DocSync, Incoming};
use saksi_testkit::Rng;

struct Peer {
    doc: Automerge,
    state: State,
    /// Sends messages without the flags section, as a V1-only peer does.
    v1: bool,
    /// Messages generated but not yet delivered to the server.
    outbox: Vec<Vec<u8>>,
}

struct World {
    server: DocSync,
    peers: Vec<Peer>,
}

fn name(i: usize) -> String {
    format!("peer-{i}")
}

fn world(indexed: bool, peers: usize) -> World {
    let mut server = DocSync::new(Record::empty(ActorId::from([0xee; 16])));
    if indexed {
        server.keep_changes();
    }
    for i in 0..peers {
        server.add_peer(&name(i), None);
    }
    World {
        server,
        peers: (0..peers)
            .map(|i| Peer {
                doc: Automerge::new().with_actor(ActorId::from([i as u8 + 1; 16])),
                state: State::new(),
                v1: i % 3 == 2,
                outbox: Vec::new(),
            })
            .collect(),
    }
}

fn edit(doc: &mut Automerge, key: &str, value: &str, time: i64) {
    let mut tx = doc.transaction();
    tx.put(ROOT, key, value).unwrap();
    tx.commit_with(CommitOptions::default().with_time(time));
}

impl World {
    fn peer_generates(&mut self, i: usize) {
        let peer = &mut self.peers[i];
        if let Some(mut message) = peer.doc.generate_sync_message(&mut peer.state) {
            if peer.v1 {
                message.flags = None;
            }
            peer.outbox.push(message.encode());
        }
    }

    /// Delivers the peers' queued messages to the server in one batch.
    fn deliver(&mut self, which: &[usize]) {
        let mut frames: Vec<(String, Vec<u8>)> = Vec::new();
        for &i in which {
            for frame in self.peers[i].outbox.drain(..) {
                frames.push((name(i), frame));
            }
        }
        let mut gates: Vec<AcceptAll> = frames.iter().map(|_| AcceptAll).collect();
        let mut batch: Vec<Incoming<'_>> = frames
            .iter()
            .zip(gates.iter_mut())
            .map(|((peer, data), gate)| Incoming { peer, data, gate })
            .collect();
        for result in self.server.receive_batch(&mut batch) {
            result.expect("the server accepts a peer's message");
        }
    }

    /// The server's next message to peer `i`; delivered unless `drop`.
    fn server_generates(&mut self, i: usize, drop: bool) -> Option<Vec<u8>> {
        let frame = self.server.generate(&name(i))?;
        if !drop {
            let message = SyncMessage::decode(&frame).expect("the server's message decodes");
            let peer = &mut self.peers[i];
            peer.doc
                .receive_sync_message(&mut peer.state, message)
                .expect("the peer accepts the server's message");
        }
        Some(frame)
    }

    /// Ends and resumes peer `i`'s connection; returns the sync state the server saved.
    fn reconnect(&mut self, i: usize) -> Vec<u8> {
        let saved = self.server.remove_peer(&name(i)).expect("a connected peer");
        self.server.add_peer(&name(i), Some(&saved));
        let peer = &mut self.peers[i];
        peer.state = State::decode(&peer.state.encode()).unwrap();
        peer.outbox.clear();
        saved
    }
}

fn run(seed: u64, peers: usize, steps: usize) {
    let mut rng = Rng::new(seed);
    let mut indexed = world(true, peers);
    let mut plain = world(false, peers);
    let mut time = 1_000;
    let mut compared = 0;
    for step in 0..steps {
        let i = rng.below(peers);
        match rng.below(10) {
            0..=2 => {
                time += 1;
                let key = format!("k{}", rng.below(6));
                let value = format!("សាក្សី {step}");
                edit(&mut indexed.peers[i].doc, &key, &value, time);
                edit(&mut plain.peers[i].doc, &key, &value, time);
            }
            3 | 4 => {
                indexed.peer_generates(i);
                plain.peer_generates(i);
            }
            5 | 6 => {
                let j = rng.below(peers);
                let which = if rng.one_in(3) { vec![i, j] } else { vec![i] };
                indexed.deliver(&which);
                plain.deliver(&which);
            }
            7 | 8 => {
                let drop = rng.one_in(6);
                let a = indexed.server_generates(i, drop);
                let b = plain.server_generates(i, drop);
                assert_eq!(
                    a, b,
                    "seed {seed}, step {step}: the servers' messages to {i} differ"
                );
                compared += usize::from(a.is_some());
            }
            _ => {
                if rng.one_in(4) {
                    time += 1;
                    for w in [&mut indexed, &mut plain] {
                        edit(w.server.record_mut().doc_mut(), "server", "ok", time);
                    }
                } else if rng.one_in(3) {
                    // The server's packed sync state saves as automerge's does.
                    assert_eq!(
                        indexed.reconnect(i),
                        plain.reconnect(i),
                        "seed {seed}, step {step}: saved sync states differ"
                    );
                }
            }
        }
    }
    // Quiesce without drops, after a reconnection (a dropped message wedges automerge's sync
    // until the connection restarts, as it does in the server): everyone converges, in both
    // worlds alike.
    for i in 0..peers {
        assert_eq!(indexed.reconnect(i), plain.reconnect(i));
    }
    for _ in 0..60 {
        let mut talked = false;
        for i in 0..peers {
            indexed.peer_generates(i);
            plain.peer_generates(i);
            talked |= !indexed.peers[i].outbox.is_empty();
            indexed.deliver(&[i]);
            plain.deliver(&[i]);
            let a = indexed.server_generates(i, false);
            let b = plain.server_generates(i, false);
            assert_eq!(
                a, b,
                "seed {seed}, quiescing: the servers' messages to {i} differ"
            );
            talked |= a.is_some();
        }
        if !talked {
            break;
        }
    }
    let heads = indexed.server.record().doc().get_heads();
    assert_eq!(heads, plain.server.record().doc().get_heads());
    for (i, peer) in indexed.peers.iter().enumerate() {
        assert_eq!(
            peer.doc.get_heads(),
            heads,
            "seed {seed}: peer {i} has not converged"
        );
    }
    assert!(
        compared > steps / 20,
        "seed {seed}: only {compared} messages compared"
    );
}

#[test]
fn indexed_messages_are_byte_for_byte_automerges() {
    for seed in 0..24 {
        run(seed, 2 + (seed as usize % 4), 400);
    }
}

/// `hold_until_answered`: a peer that was sent changes gets nothing more until it answers, then
/// everything that arrived meanwhile in one message; `release_held` lets a silent peer have it.
#[test]
fn a_peer_sent_changes_gets_the_next_ones_once_it_answers() {
    let mut w = world(true, 3);
    w.server.hold_until_answered();
    // The reader speaks V1, so changes travel one per entry and can be counted.
    let (writer, reader) = (0, 2);
    // Both peers are in sync with the empty server document.
    for _ in 0..4 {
        for i in [writer, reader] {
            w.peer_generates(i);
            w.deliver(&[i]);
            w.server_generates(i, false);
        }
    }
    assert!(!w.server.has_held());
    assert_eq!(w.server.awaiting_answers(), 0);

    let mut time = 10;
    let mut write = |w: &mut World, text: &str| {
        time += 1;
        edit(&mut w.peers[writer].doc, "narrative", text, time);
        w.peer_generates(writer);
        w.deliver(&[writer]);
    };
    write(&mut w, "ក");
    // The reader is sent the first change, but does not read it yet.
    let first = w
        .server
        .generate(&name(reader))
        .expect("the first change goes out");
    assert_eq!(w.server.awaiting_answers(), 1);
    assert!(w.server.is_awaiting(&name(reader)));
    assert!(!w.server.is_awaiting(&name(writer)));
    write(&mut w, "ខ");
    write(&mut w, "គ");
    assert_eq!(
        w.server.generate(&name(reader)),
        None,
        "held while the reader has not answered"
    );
    assert!(w.server.has_held());

    // The reader reads the first message and answers: it is sent both later changes at once.
    let peer = &mut w.peers[reader];
    peer.doc
        .receive_sync_message(&mut peer.state, SyncMessage::decode(&first).unwrap())
        .unwrap();
    w.peer_generates(reader);
    w.deliver(&[reader]);
    assert!(!w.server.has_held());
    assert_eq!(w.server.awaiting_answers(), 0, "answered");
    let both = w
        .server_generates(reader, false)
        .expect("the rest goes out");
    assert_eq!(SyncMessage::decode(&both).unwrap().changes.len(), 2);
    assert_eq!(
        w.peers[reader].doc.get_heads(),
        w.peers[writer].doc.get_heads()
    );
    w.peer_generates(reader);
    w.deliver(&[reader]);

    // A reader that never answers: held until released, then sent the change.
    write(&mut w, "ឃ");
    write(&mut w, "ង");
    assert!(w.server.generate(&name(reader)).is_some());
    write(&mut w, "ច");
    assert_eq!(w.server.generate(&name(reader)), None);
    assert_eq!(w.server.release_held(), vec![name(reader)]);
    assert!(!w.server.has_held());
    assert!(!w.server.is_awaiting(&name(reader)), "released");
    assert!(w.server.generate(&name(reader)).is_some(), "released");
    // A peer that disconnects is forgotten: a new connection starts unheld.
    write(&mut w, "ឆ");
    assert_eq!(w.server.generate(&name(reader)), None);
    w.reconnect(reader);
    assert!(!w.server.has_held());
    assert_eq!(w.server.awaiting_answers(), 0, "forgotten");
    assert!(w.server.generate(&name(reader)).is_some());
}

/// A server that loaded a document from one snapshot and kept it (`keep_saved`) sends a peer
/// that has nothing exactly those bytes as the whole document, and the peer gets the document.
#[test]
fn a_kept_snapshot_is_sent_whole_as_it_is() {
    let mut original = Automerge::new().with_actor(ActorId::from([7; 16]));
    for i in 0..40 {
        edit(
            &mut original,
            &format!("k{}", i % 5),
            &format!("សាក្សី {i}"),
            1_000 + i,
        );
    }
    // Uncompressed, so that it differs from what the server would save itself.
    let snapshot = original.save_nocompress();
    assert_ne!(snapshot, original.save());
    let record = Record::load(&snapshot, ActorId::from([0xee; 16])).expect("the snapshot loads");
    let mut server = DocSync::new(record);
    server.keep_changes();
    server.keep_saved(snapshot.clone());
    server.add_peer("phone", None);

    // A peer with nothing, advertising V2 (automerge's own messages carry the flags).
    let mut phone = Automerge::new();
    let mut state = State::new();
    let hello = phone
        .generate_sync_message(&mut state)
        .expect("a first message");
    server
        .receive("phone", &hello.encode(), &mut AcceptAll)
        .expect("the server accepts it");
    let frame = server.generate("phone").expect("an answer");
    let message = SyncMessage::decode(&frame).expect("it decodes");
    let entries: Vec<Vec<u8>> = message.changes.iter().map(|c| c.to_vec()).collect();
    assert_eq!(entries, vec![snapshot], "the snapshot, byte for byte");
    phone
        .receive_sync_message(&mut state, message)
        .expect("the phone takes it");
    assert_eq!(phone.get_heads(), original.get_heads());
}
