//! Read authorisation (S3) and per-change write authorisation.

use saksi_server::accounts::random_16;
use saksi_server::storage::AuditFilter;
use saksi_shared::Who;
use saksi_shared::automerge::ROOT;
use saksi_shared::automerge::transaction::{CommitOptions, Transactable as _};
use saksi_shared::catalogue::RecordKind;
use saksi_shared::protocol::Message;
use saksi_shared::record::FieldInput;
use saksi_shared::sync::{Event, Repo};
use saksi_shared::{DocumentId, FieldValue, Role, Status};
use saksi_testkit::at;

use crate::helpers::{TestServer, WAIT};

/// The frame the server sends in answer to a `request` for `id`.
async fn answer_to_request(server: &TestServer, user: &str, id: DocumentId) -> Message {
    let session = server.login(user).await;
    let mut socket = session.socket().await.expect("socket");
    let mut repo = Repo::new("probe".into(), random_16());
    socket.send(repo.connect()).await.expect("join");
    let peer = socket
        .recv_timeout(WAIT)
        .await
        .expect("recv")
        .expect("peer");
    repo.receive(&peer).expect("handshake");
    repo.request(id);
    for frame in repo.take_outgoing() {
        socket.send(frame).await.expect("request");
    }
    let frame = socket
        .recv_timeout(WAIT)
        .await
        .expect("recv")
        .expect("answer");
    Message::decode(&frame).expect("decodes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_family_statements_are_need_to_know() {
    let server = TestServer::start().await;
    server.user("dara", Role::Liaison);
    server.user("sophea", Role::Monitor);
    server.user("kosal", Role::Coordinator);
    server.user("vanna", Role::Monitor);
    let case_a = server.case("Case A", &["dara", "sophea"]);
    let _case_b = server.case("Case B", &["vanna"]);

    let (s, mut phone) = server.phone("dara").await;
    let editor = s.editor();
    let id = phone.repo.create(
        RecordKind::FamilyStatement,
        &case_a,
        &editor,
        at(1_000),
        random_16(),
    );
    phone
        .repo
        .edit(&id, |r| {
            r.set_field(
                "interviewee",
                FieldInput::Text("ម្តាយ (កូដ M-7)".into()),
                &editor,
                at(1_100),
            )?;
            r.set_text("statement", "កូនប្រុសខ្ញុំត្រូវបានចាប់ខ្លួននៅថ្ងៃច័ន្ទ។", &editor, at(1_200))
        })
        .expect("doc")
        .expect("edit");
    phone.sync_all(WAIT).await.expect("stored");

    // The team member and the coordinator get it.
    for reader in ["sophea", "kosal"] {
        let (_, mut p) = server.phone(reader).await;
        p.repo.request(id);
        p.sync_until_received(WAIT, &id)
            .await
            .unwrap_or_else(|e| panic!("{reader} reads it: {e}"));
        let view = p.repo.record(&id).expect("doc").view().expect("record");
        assert_eq!(
            view.fields.get("statement"),
            Some(&FieldValue::Text("កូនប្រុសខ្ញុំត្រូវបានចាប់ខ្លួននៅថ្ងៃច័ន្ទ។".into()))
        );
    }

    // A monitor of another case gets exactly the answer for an id that does not exist.
    let unknown = DocumentId::from_bytes(random_16());
    let forbidden = answer_to_request(&server, "vanna", id).await;
    let missing = answer_to_request(&server, "vanna", unknown).await;
    match (forbidden, missing) {
        (
            Message::DocUnavailable {
                sender_id: a,
                document_id: da,
                ..
            },
            Message::DocUnavailable {
                sender_id: b,
                document_id: db,
                ..
            },
        ) => {
            assert_eq!(a, b);
            assert_eq!((da, db), (id, unknown));
        }
        other => panic!("expected doc-unavailable twice, got {other:?}"),
    }
    let listing = server
        .login("vanna")
        .await
        .records()
        .await
        .expect("listing");
    assert!(listing.records.iter().all(|r| r.id != id));
    assert!(listing.cases.iter().all(|c| c.id != case_a));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_changes_are_not_stored_and_the_connection_goes_on() {
    let server = TestServer::start().await;
    server.user("sophea", Role::Monitor);
    server.user("vanna", Role::Monitor);
    let case = server.case("Case C", &["sophea", "vanna"]);

    let (s1, mut p1) = server.phone("sophea").await;
    let editor = s1.editor();
    let id = p1.repo.create(
        RecordKind::CourtObservation,
        &case,
        &editor,
        at(1_000),
        random_16(),
    );
    p1.repo
        .edit(&id, |r| {
            r.transition(Status::Submitted, None, &editor, at(1_100))
        })
        .expect("doc")
        .expect("monitors may submit");
    p1.sync_all(WAIT).await.expect("stored");

    // A tampered client writes `approved` directly: monitors may not approve.
    p1.repo
        .edit(&id, |r| {
            let note = serde_json::to_string(&Who {
                user: editor.who.user.clone(),
                device: editor.who.device.clone(),
            })
            .expect("json");
            r.doc_mut()
                .transact_with(
                    |_| CommitOptions::default().with_message(note).with_time(1_200),
                    |tx| tx.put(ROOT, "status", "approved"),
                )
                .map(|_| ())
                .map_err(|f| f.error)
        })
        .expect("doc")
        .expect("tampered locally");
    p1.sync_until(WAIT, |_, events| {
        events
            .iter()
            .any(|e| matches!(e, Event::ChangesRefused { document, .. } if *document == id))
    })
    .await
    .expect("the client is told which document");
    let stored = server
        .storage()
        .document(&id)
        .expect("read")
        .expect("exists");
    assert_eq!(
        stored.status, "submitted",
        "the refused change was not stored"
    );
    let refusals = server
        .storage()
        .audit(&AuditFilter {
            action: Some(saksi_server::storage::AuditAction::ChangeRefused),
            ..Default::default()
        })
        .expect("audit");
    assert_eq!(refusals.len(), 1);
    assert_eq!(
        refusals[0].event.target.as_deref(),
        Some(id.to_string().as_str())
    );
    assert!(refusals[0].event.detail.starts_with("Workflow"));
    // The metric counts the refused changes (the audit entry says how many), not entries.
    let refused: u64 = refusals[0]
        .event
        .detail
        .split(": ")
        .nth(1)
        .and_then(|d| d.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("a count in the detail");
    assert_eq!(
        server
            .state
            .metrics
            .changes_refused
            .load(std::sync::atomic::Ordering::Relaxed),
        refused
    );

    // The same connection still serves other documents.
    let other = p1.repo.create(
        RecordKind::CourtObservation,
        &case,
        &editor,
        at(1_300),
        random_16(),
    );
    p1.sync_until(WAIT, |repo, _| repo.is_synced(&other))
        .await
        .expect("another record syncs on the same connection");
    assert!(server.storage().document(&other).expect("read").is_some());

    // Another device cannot write with sophea's actor id.
    let s2 = server.login("vanna").await;
    let stolen_actor: [u8; 16] = p1.repo.actor().to_bytes().try_into().expect("16 bytes");
    let mut forged = Repo::new("forger".into(), stolen_actor);
    forged.request(other);
    let mut p2 = s2.sync(forged).await.expect("connects");
    p2.sync_until_received(WAIT, &other)
        .await
        .expect("team member reads it");
    let editor2 = s2.editor();
    p2.repo
        .edit(&other, |r| {
            r.set_field(
                "prosecutor",
                FieldInput::Text("X".into()),
                &editor2,
                at(1_400),
            )
        })
        .expect("doc")
        .expect("local edit");
    p2.sync_until(WAIT, |_, events| {
        events
            .iter()
            .any(|e| matches!(e, Event::ChangesRefused { document, .. } if *document == other))
    })
    .await
    .expect("forged actor refused");
    let refusals = server
        .storage()
        .audit(&AuditFilter {
            action: Some(saksi_server::storage::AuditAction::ChangeRefused),
            ..Default::default()
        })
        .expect("audit");
    assert!(
        refusals[0].event.detail.starts_with("ForgedAttribution"),
        "{refusals:?}"
    );
    server.stop().await;
}
