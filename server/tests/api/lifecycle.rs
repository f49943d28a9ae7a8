//! Documents in memory: compacted while in use, written back and evicted when idle.

use std::time::Duration;

use saksi_server::accounts::random_16;
use saksi_shared::Role;
use saksi_shared::catalogue::RecordKind;
use saksi_testkit::at;

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
        at(1_000),
        random_16(),
    );
    for i in 0..10 {
        phone
            .repo
            .edit(&id, |r| {
                r.set_text(
                    "narrative",
                    &"ក".repeat(i + 1),
                    &editor,
                    at(2_000 + i as i64),
                )
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
    // The task leaves the table of loaded documents first, then writes its snapshot.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while server.state.documents.loaded() > 0
        || server.storage().chunks(&id).expect("chunks").len() != 1
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "evicted and compacted to one snapshot within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_drains_connections_and_writes_back() {
    let server = TestServer::start().await;
    server.user("sophea", Role::Monitor);
    let case = server.case("Case G", &["sophea"]);
    let (session, mut phone) = server.phone("sophea").await;
    let editor = session.editor();
    let id = phone.repo.create(
        RecordKind::CourtObservation,
        &case,
        &editor,
        at(1_000),
        random_16(),
    );
    for i in 0..3 {
        phone
            .repo
            .edit(&id, |r| {
                r.set_text("narrative", &"ខ".repeat(i + 1), &editor, at(2_000))
            })
            .expect("doc")
            .expect("edit");
        phone.sync_all(WAIT).await.expect("stored");
    }
    assert!(server.storage().chunks(&id).expect("chunks").len() > 1);
    let storage = server.storage().clone();
    let device = session.device_id.clone();

    let stopping = tokio::spawn(server.stop());
    // The phone is told before its connection closes.
    let mut told = None;
    while let Ok(Some(frame)) = phone.socket.recv_timeout(WAIT).await {
        if let Ok(saksi_shared::protocol::Message::Error { message, .. }) =
            saksi_shared::protocol::Message::decode(&frame)
        {
            told = Some(message);
        }
    }
    assert_eq!(told.as_deref(), Some("server shutting down"));
    let _dir = stopping.await.expect("stopped");
    // Written back: one snapshot, and the phone's sync state for a quick resume.
    assert_eq!(storage.chunks(&id).expect("chunks").len(), 1);
    assert!(storage.sync_state(&device, &id).expect("read").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_without_contents_and_need_a_token_when_configured() {
    let server = TestServer::start().await;
    server.user("sophea", Role::Monitor);
    let case = server.case("Case M", &["sophea"]);
    let (session, mut phone) = server.phone("sophea").await;
    let id = phone.repo.create(
        RecordKind::CourtObservation,
        &case,
        &session.editor(),
        at(1_000),
        random_16(),
    );
    phone.sync_all(WAIT).await.expect("stored");
    let res = server.client.get("/metrics", None).await.expect("answer");
    assert_eq!(res.status, 200, "served to loopback");
    let text = res.text();
    for name in [
        "saksi_connections_open 1",
        "saksi_documents_in_memory 1",
        "# TYPE saksi_changes_stored_total counter",
        "saksi_storage_bytes ",
    ] {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }
    assert!(!text.contains(&id.to_string()), "no ids");
    assert_eq!(res.header("cache-control"), Some("no-store"));
    server.stop().await;

    let token = "prometheus-scrape-token-0123456789abcdef";
    let server = TestServer::start_in(tempfile::tempdir().expect("dir"), |c| {
        c.metrics_token = Some(saksi_server::config::Secret::new(token));
    })
    .await;
    let res = server.client.get("/metrics", None).await.expect("answer");
    assert_eq!(res.status, 404, "a token is required once configured");
    let res = server
        .client
        .get("/metrics", Some("wrong-token"))
        .await
        .expect("answer");
    assert_eq!(res.status, 404);
    let res = server
        .client
        .get("/metrics", Some(token))
        .await
        .expect("answer");
    assert_eq!(res.status, 200);
    server.stop().await;
}

/// A first start that cannot listen (the port is taken) makes nothing whose secret it would
/// never show: no CA (its passphrase is printed only once) and no first admin (its password
/// likewise). The next start, on a free port, makes both and reports them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_start_that_cannot_listen_keeps_no_secret_unseen() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let dir = tempfile::tempdir().expect("dir");
    let mut config = crate::helpers::test_config(dir.path().to_owned());
    config.listen = taken.local_addr().expect("addr");
    let err = saksi_server::Application::build(config.clone())
        .await
        .expect_err("the port is taken");
    assert!(
        matches!(err, saksi_server::app::StartError::Bind { .. }),
        "{err}"
    );
    assert!(!dir.path().join("tls").exists(), "no CA was made");
    assert!(
        !config.database_path().exists(),
        "no database, no first admin"
    );

    config.listen = "127.0.0.1:0".parse().expect("addr");
    let app = saksi_server::Application::build(config)
        .await
        .expect("starts on a free port");
    assert!(app.report().new_ca_passphrase.is_some());
    assert!(app.report().first_admin_password.is_some());
    let handle = app.handle();
    let running = tokio::spawn(app.run_until_stopped());
    handle.stop().await;
    running.await.expect("joined").expect("stopped cleanly");
}
