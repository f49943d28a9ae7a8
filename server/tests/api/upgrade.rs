//! Upgrades: a database written by an earlier version of Saksi, kept as a fixture, is migrated
//! on start and still serves everything: sign-in with its passwords, its records, its audit log.
//!
//! `tests/fixtures/schema-1.sqlite3` was written once by a build of schema version 1, with the
//! generator that build carried (`git show 9508cd5:server/tests/api/upgrade.rs`,
//! `write_schema_1_fixture`; no later build can run it). Keep it as it is when the schema
//! changes: it is what a server in the field holds, and this test migrates it through every
//! migration since.

use std::path::PathBuf;

use saksi_server::accounts::random_16;
use saksi_server::storage::sqlite::SCHEMA_VERSION;
use saksi_shared::DocumentId;
use saksi_shared::sync::Repo;
use saksi_testkit::at;

use crate::helpers::{TestServer, WAIT};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema-1.sqlite3")
}

/// What the fixture holds.
const NARRATIVE: &str = "សវនាការត្រូវបានពន្យារពេល";
const CASE_NUMBER: &str = "លេខ ០០៧";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_1_database_is_migrated_and_serves_everything() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("saksi.sqlite3");
    std::fs::copy(fixture(), &db).expect("fixture copied");
    let version = |db: &std::path::Path| -> i64 {
        rusqlite::Connection::open(db)
            .expect("open")
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version")
    };
    assert_eq!(version(&db), 1, "the fixture is schema 1");

    let server = TestServer::start_in(dir, |_| {}).await;
    assert!(
        server.admin_password.is_none(),
        "the fixture's accounts are kept (no new first admin)"
    );
    // Everything the fixture holds is there.
    let users = server.storage().users().expect("users");
    let names: Vec<&str> = users.iter().map(|u| u.username.as_str()).collect();
    for name in ["admin", "sophea", "vanna", "chenda"] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    assert_eq!(server.storage().verify_audit().expect("audit chain"), 6);
    let devices = server.storage().devices(None).expect("devices");
    assert_eq!(devices.len(), 3);
    assert!(
        devices
            .iter()
            .any(|(d, u)| u.username == "chenda" && d.revoked_at.is_some()),
        "the revoked device stays revoked"
    );

    // Sign in with the fixture's password; the records are listed and readable.
    let session = server.login("sophea").await;
    let listing = session.records().await.expect("records");
    assert_eq!(listing.cases.len(), 1);
    let own: Vec<DocumentId> = listing
        .records
        .iter()
        .filter(|r| r.created_by == "sophea")
        .map(|r| r.id)
        .collect();
    assert_eq!(own.len(), 2, "{:?}", listing.records);
    let mut repo = Repo::new("upgrade-phone".into(), random_16());
    for id in &own {
        repo.request(*id);
    }
    let mut sync = session.sync(repo).await.expect("connect");
    sync.sync_until(WAIT, |r, _| {
        own.iter()
            .all(|id| r.record(id).is_some_and(|d| !d.heads().is_empty()))
    })
    .await
    .expect("records synced");
    let values: Vec<(Option<String>, Option<String>)> = own
        .iter()
        .map(|id| {
            let record = sync.repo.record(id).expect("record");
            let field = |name: &str| record.field(name).expect("field").map(|v| v.display());
            (field("case_number"), field("narrative"))
        })
        .collect();
    assert!(
        values.contains(&(Some(CASE_NUMBER.into()), Some(NARRATIVE.into()))),
        "{values:?}"
    );
    // And it takes new changes.
    let editor = session.editor();
    sync.repo
        .edit(&own[0], |r| {
            r.set_text("narrative", "ថ្មី", &editor, at(10_000))
        })
        .expect("doc")
        .expect("edit");
    sync.sync_all(WAIT).await.expect("stored");
    let _ = sync.disconnect().await;
    let dir = server.stop().await;
    assert_eq!(
        version(&dir.path().join("saksi.sqlite3")),
        SCHEMA_VERSION,
        "migrated to this build's schema"
    );
}
