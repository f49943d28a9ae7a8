//! Bad input on /sync: each case gets a clear error, stores nothing, and everyone else keeps
//! syncing meanwhile.

use std::time::Duration;

use saksi_client::{SyncClient, SyncSocket};
use saksi_server::accounts::random_16;
use saksi_shared::DocumentId;
use saksi_shared::Role;
use saksi_shared::catalogue::RecordKind;
use saksi_shared::cbor::Cbor;
use saksi_shared::protocol::Message;
use saksi_shared::record::FieldInput;
use saksi_shared::sync::Repo;

use crate::helpers::{TestServer, WAIT};

/// A socket that has completed the handshake by hand. Returns it with its peer id.
async fn joined(server: &TestServer, user: &str) -> (SyncSocket, String) {
    let session = server.login(user).await;
    let mut socket = session.socket().await.expect("socket");
    let peer = format!("raw-{}", crate::helpers::hex(&random_16()[..4]));
    socket
        .send(
            Message::Join {
                sender_id: peer.clone(),
                supported_protocol_versions: vec!["1".into()],
                metadata: None,
            }
            .encode(),
        )
        .await
        .expect("join");
    let reply = socket
        .recv_timeout(WAIT)
        .await
        .expect("recv")
        .expect("peer");
    assert!(matches!(Message::decode(&reply), Ok(Message::Peer { .. })));
    (socket, peer)
}

/// Reads frames until an `error` arrives; returns its message and whether the socket then
/// closed.
async fn expect_error(socket: &mut SyncSocket) -> (String, Option<DocumentId>) {
    loop {
        let frame = socket
            .recv_timeout(WAIT)
            .await
            .expect("recv")
            .expect("an error before the close");
        if let Ok(Message::Error {
            message,
            document_id,
            ..
        }) = Message::decode(&frame)
        {
            return (message, document_id);
        }
    }
}

async fn expect_closed(socket: &mut SyncSocket) {
    let end = tokio::time::timeout(WAIT, async {
        loop {
            match socket.recv().await {
                Ok(Some(_)) => continue,
                _ => return,
            }
        }
    })
    .await;
    assert!(end.is_ok(), "the server closed the connection");
}

/// A bystander that edits a record and must see it stored while the attack runs.
async fn bystander_still_syncs(
    server: &TestServer,
    phone: &mut SyncClient,
    id: DocumentId,
    n: i64,
) {
    let editor = saksi_shared::record::Editor {
        user: "vanna".into(),
        device: phone_device(phone),
        role: Role::Monitor,
    };
    phone
        .repo
        .edit(&id, |r| {
            r.set_field(
                "case_number",
                FieldInput::Text(format!("ករណី {n}")),
                &editor,
                10_000 + n,
            )
        })
        .expect("doc")
        .expect("edit");
    phone.sync_all(WAIT).await.expect("bystander keeps syncing");
    let stored = server
        .state
        .documents
        .read(&server.state, id, |r| {
            r.and_then(|r| r.field("case_number").ok().flatten())
        })
        .await
        .flatten();
    assert_eq!(stored.map(|v| v.display()), Some(format!("ករណី {n}")));
}

fn phone_device(phone: &SyncClient) -> String {
    phone
        .repo
        .documents()
        .next()
        .and_then(|id| phone.repo.record(id))
        .and_then(|r| r.history().last().and_then(|h| h.by.device.clone()))
        .expect("the bystander made a change before")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_hostile_frames_are_refused_without_harm() {
    let server = TestServer::start_in(tempfile::tempdir().expect("dir"), |c| {
        c.max_frame_bytes = 64 * 1024;
        c.max_documents_per_connection = 3;
    })
    .await;
    server.user("vanna", Role::Monitor);
    server.user("mallory", Role::Monitor);
    let case = server.case("Case H", &["vanna"]);
    let (vanna, mut bystander) = server.phone("vanna").await;
    let editor = vanna.editor();
    let id = bystander.repo.create(
        RecordKind::CourtObservation,
        &case,
        &editor,
        1_000,
        random_16(),
    );
    bystander.sync_all(WAIT).await.expect("stored");
    let documents_before = server
        .storage()
        .documents(&Default::default())
        .expect("list")
        .len();

    // 1. Not CBOR at all.
    let (mut s, _) = joined(&server, "mallory").await;
    s.send(b"\xff\x00 definitely not cbor".to_vec())
        .await
        .expect("send");
    let (message, _) = expect_error(&mut s).await;
    assert!(message.starts_with("malformed message"), "{message}");
    expect_closed(&mut s).await;
    bystander_still_syncs(&server, &mut bystander, id, 1).await;

    // 2. CBOR, but not a message: an array, and a map without a type.
    for bytes in [
        Cbor::Array(vec![Cbor::Uint(1)]).encode(),
        Cbor::Map(vec![(Cbor::text("senderId"), Cbor::text("x"))]).encode(),
        Cbor::Map(vec![(Cbor::text("type"), Cbor::text("teleport"))]).encode(),
    ] {
        let (mut s, _) = joined(&server, "mallory").await;
        s.send(bytes).await.expect("send");
        let (message, _) = expect_error(&mut s).await;
        assert!(message.starts_with("malformed message"), "{message}");
        expect_closed(&mut s).await;
    }

    // 3. Wrong protocol version.
    let session = server.login("mallory").await;
    let mut s = session.socket().await.expect("socket");
    s.send(
        Message::Join {
            sender_id: "old-peer".into(),
            supported_protocol_versions: vec!["0".into(), "2".into()],
            metadata: None,
        }
        .encode(),
    )
    .await
    .expect("join");
    let (message, _) = expect_error(&mut s).await;
    assert_eq!(message, "unsupported protocol version");
    expect_closed(&mut s).await;

    // 4. Sync before join.
    let mut s = session.socket().await.expect("socket");
    s.send(
        Message::Sync {
            sender_id: "eager".into(),
            target_id: "server".into(),
            document_id: id,
            data: vec![0x42, 0, 0, 0, 0],
        }
        .encode(),
    )
    .await
    .expect("send");
    let (message, _) = expect_error(&mut s).await;
    assert!(message.starts_with("expected join"), "{message}");
    expect_closed(&mut s).await;

    // 5. A document id with a bad checksum.
    let (mut s, peer) = joined(&server, "mallory").await;
    let mut bad_id = DocumentId::from_bytes([7; 16]).to_string();
    let last = bad_id.pop().expect("non-empty");
    bad_id.push(if last == 'a' { 'b' } else { 'a' });
    let frame = Cbor::Map(vec![
        (Cbor::text("type"), Cbor::text("sync")),
        (Cbor::text("senderId"), Cbor::text(peer.as_str())),
        (Cbor::text("targetId"), Cbor::text("server")),
        (Cbor::text("documentId"), Cbor::text(bad_id.as_str())),
        (Cbor::text("data"), Cbor::Bytes(vec![0x42])),
    ])
    .encode();
    s.send(frame).await.expect("send");
    let (message, _) = expect_error(&mut s).await;
    assert!(message.contains("invalid document id"), "{message}");
    expect_closed(&mut s).await;

    // 6. Garbage automerge bytes in a valid envelope: an error for that document only; the
    // connection goes on.
    let (mut s, peer) = joined(&server, "mallory").await;
    let junk_doc = DocumentId::from_bytes(random_16());
    s.send(
        Message::Sync {
            sender_id: peer.clone(),
            target_id: "server".into(),
            document_id: junk_doc,
            data: vec![0x42, 0xff, 0xff, 0xff, 0xff, 0x0f],
        }
        .encode(),
    )
    .await
    .expect("send");
    let (message, doc) = expect_error(&mut s).await;
    assert_eq!(doc, Some(junk_doc));
    assert!(message.starts_with("bad sync message"), "{message}");
    // Still open: a request for an unknown document gets its normal answer.
    let unknown = DocumentId::from_bytes(random_16());
    let mut repo = Repo::new(peer.clone(), random_16());
    repo.request(unknown);
    let _ = repo.connect();
    let _ = repo.receive(
        &Message::Peer {
            sender_id: "server".into(),
            target_id: peer.clone(),
            selected_protocol_version: "1".into(),
            metadata: None,
        }
        .encode(),
    );
    for frame in repo.take_outgoing() {
        s.send(frame).await.expect("send");
    }
    let answer = s.recv_timeout(WAIT).await.expect("recv").expect("answer");
    assert!(matches!(
        Message::decode(&answer),
        Ok(Message::DocUnavailable { document_id, .. }) if document_id == unknown
    ));

    // 7. Too many documents on one connection (limit 3; two are open already): one more is
    // served, the next two get an error each, and the connection stays.
    let mut opened = Vec::new();
    for _ in 0..3 {
        let d = DocumentId::from_bytes(random_16());
        opened.push(d);
        repo.request(d);
    }
    for frame in repo.take_outgoing() {
        s.send(frame).await.expect("send");
    }
    let mut unavailable = Vec::new();
    let mut refused = Vec::new();
    while unavailable.len() + refused.len() < 3 {
        let frame = s.recv_timeout(WAIT).await.expect("recv").expect("frame");
        match Message::decode(&frame).expect("decodes") {
            Message::DocUnavailable { document_id, .. } => unavailable.push(document_id),
            Message::Error {
                message,
                document_id,
                ..
            } => {
                assert!(message.starts_with("too many documents"), "{message}");
                refused.push(document_id.expect("names the document"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    opened.sort();
    let mut all: Vec<_> = unavailable.iter().chain(&refused).copied().collect();
    all.sort();
    assert_eq!(all, opened);
    assert_eq!((unavailable.len(), refused.len()), (1, 2));

    // 8. A frame over the size limit closes the connection.
    let (mut s, peer) = joined(&server, "mallory").await;
    s.send(
        Message::Sync {
            sender_id: peer,
            target_id: "server".into(),
            document_id: DocumentId::from_bytes(random_16()),
            data: vec![0x42; 100 * 1024],
        }
        .encode(),
    )
    .await
    .expect("send");
    expect_closed(&mut s).await;

    // 9. Text frames are not the protocol.
    let (mut s, _) = joined(&server, "mallory").await;
    s.send_text("{\"type\":\"join\"}").await.expect("send");
    let (message, _) = expect_error(&mut s).await;
    assert!(message.contains("binary"), "{message}");
    expect_closed(&mut s).await;

    bystander_still_syncs(&server, &mut bystander, id, 2).await;
    let documents_after = server
        .storage()
        .documents(&Default::default())
        .expect("list")
        .len();
    assert_eq!(
        documents_before, documents_after,
        "nothing stored by the attacks"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_documents_are_compacted_and_evicted() {
    let server = TestServer::start_in(tempfile::tempdir().expect("dir"), |c| {
        c.evict_idle_document_seconds = 1;
        c.compact_after_changes = 4;
    })
    .await;
    server.user("sophea", Role::Monitor);
    let case = server.case("Case E", &["sophea"]);
    let (session, mut phone) = server.phone("sophea").await;
    let editor = session.editor();
    let id = phone.repo.create(
        RecordKind::CourtObservation,
        &case,
        &editor,
        1_000,
        random_16(),
    );
    for i in 0..10 {
        phone
            .repo
            .edit(&id, |r| {
                r.set_text("narrative", &"ក".repeat(i + 1), &editor, 2_000 + i as i64)
            })
            .expect("doc")
            .expect("edit");
        phone.sync_all(WAIT).await.expect("stored");
    }
    let chunks = server.storage().chunks(&id).expect("chunks").len();
    assert!(
        chunks < 6,
        "compacted while in use: {chunks} chunks for 11 changes"
    );
    let _ = phone.disconnect().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while server.state.documents.loaded() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "evicted within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        server.storage().chunks(&id).expect("chunks").len(),
        1,
        "one snapshot"
    );
    // A cold load gives the same record.
    let narrative = server
        .state
        .documents
        .read(&server.state, id, |r| {
            r.and_then(|r| r.field("narrative").ok().flatten())
        })
        .await
        .flatten();
    assert_eq!(narrative.map(|v| v.display()), Some("ក".repeat(10)));
    server.stop().await;
}
