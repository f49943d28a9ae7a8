//! A restart keeps everything, and clients resume without a manual step.

use saksi_server::accounts::random_16;
use saksi_shared::catalogue::RecordKind;
use saksi_shared::record::FieldInput;
use saksi_shared::{FieldValue, Role};
use saksi_testkit::at;

use crate::helpers::{TestServer, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_everything_and_clients_resume() {
    let server = TestServer::start().await;
    server.user("sophea", Role::Monitor);
    let case = server.case("Case R", &["sophea"]);
    let (session, mut phone) = server.phone("sophea").await;
    let editor = session.editor();
    let mut ids = Vec::new();
    for i in 0..5 {
        let id = phone.repo.create(
            RecordKind::CourtObservation,
            &case,
            &editor,
            at(1_000 + i),
            random_16(),
        );
        phone
            .repo
            .edit(&id, |r| {
                r.set_field(
                    "case_number",
                    FieldInput::Text(format!("លេខ {i}")),
                    &editor,
                    at(1_100 + i),
                )
            })
            .expect("doc")
            .expect("edit");
        ids.push(id);
    }
    phone.sync_all(WAIT).await.expect("stored");
    let repo = phone.disconnect().await;
    let dir = server.stop().await;

    let server = TestServer::start_in(dir, |_| {}).await;
    // The same device token still works after the restart (on the new port).
    let session = saksi_client::Session {
        client: server.client.clone(),
        ..session
    };
    let mut phone = session
        .sync(repo)
        .await
        .expect("reconnects with the same token");
    phone.sync_all(WAIT).await.expect("resumes");
    for (i, id) in ids.iter().enumerate() {
        let row = server.storage().document(id).expect("read").expect("kept");
        assert_eq!(row.created_by, "sophea");
        let value = server
            .state
            .documents
            .read(&server.state, *id, |r| {
                r.and_then(|r| r.field("case_number").ok().flatten())
            })
            .await
            .flatten();
        assert_eq!(value, Some(FieldValue::Text(format!("លេខ {i}"))));
    }
    server.stop().await;
}
