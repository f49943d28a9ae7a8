//! Documents in memory: compacted while in use, written back and evicted when idle.

use std::time::Duration;

use saksi_server::accounts::random_16;
use saksi_shared::Role;
use saksi_shared::catalogue::RecordKind;

use crate::helpers::{TestServer, WAIT};

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
