//! Upgrades: a database written by an earlier version of Saksi, kept as a fixture, is migrated
//! on start and still serves everything: sign-in with its passwords, its records, its audit log.
//!
//! `tests/fixtures/schema-1.sqlite3` was written by schema version 1 with
//! `cargo test -p saksi-server --test api -- --ignored write_schema_1_fixture`. Keep it as it is
//! when the schema changes: it is what a server in the field holds. (When a migration is added,
//! add a new fixture for the schema before it beside this one, and a test like this.)

use std::path::PathBuf;

use saksi_server::accounts::random_16;
use saksi_server::storage::sqlite::SCHEMA_VERSION;
use saksi_shared::catalogue::RecordKind;
use saksi_shared::record::FieldInput;
use saksi_shared::sync::Repo;
use saksi_shared::{DocumentId, Role};

use crate::helpers::{TestServer, WAIT};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema-1.sqlite3")
}

/// What the fixture holds (see `write_schema_1_fixture`).
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
        .edit(&own[0], |r| r.set_text("narrative", "ថ្មី", &editor, 10_000))
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

/// Writes the fixture (schema 1 only). Run by hand, once; the file is committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes tests/fixtures/schema-1.sqlite3; run by hand"]
async fn write_schema_1_fixture() {
    assert_eq!(SCHEMA_VERSION, 1, "this generator writes schema 1 only");
    let server = TestServer::start().await;
    server.user("sophea", Role::Monitor);
    server.user("vanna", Role::Liaison);
    server.user("chenda", Role::Coordinator);
    let case = server.case("ករណី ក-១២", &["sophea", "vanna"]);
    let (session, mut phone) = server.phone("sophea").await;
    let editor = session.editor();
    for (i, (number, narrative)) in [(CASE_NUMBER, NARRATIVE), ("លេខ ០០៨", "ចៅក្រមបានសួរ")]
        .into_iter()
        .enumerate()
    {
        let id = phone.repo.create(
            RecordKind::CourtObservation,
            &case,
            &editor,
            1_000 + i as i64,
            random_16(),
        );
        phone
            .repo
            .edit(&id, |r| {
                r.set_field(
                    "case_number",
                    FieldInput::Text(number.into()),
                    &editor,
                    1_100,
                )?;
                r.set_text("narrative", narrative, &editor, 1_200)
            })
            .expect("doc")
            .expect("edit");
    }
    phone.sync_all(WAIT).await.expect("stored");
    let _ = phone.disconnect().await;
    let (vanna, mut liaison) = server.phone("vanna").await;
    let editor = vanna.editor();
    let _ = liaison.repo.create(
        RecordKind::FamilyStatement,
        &case,
        &editor,
        2_000,
        random_16(),
    );
    liaison.sync_all(WAIT).await.expect("stored");
    let _ = liaison.disconnect().await;
    // A revoked device and account changes, in the audit log too.
    let chenda = server.login("chenda").await;
    let by = saksi_server::admin::Operator::CLI;
    let now = server.clock_now();
    saksi_server::admin::revoke_device(&**server.storage(), by, &chenda.device_id, now)
        .expect("revoked");
    let vanna_user = server
        .storage()
        .user_by_name("vanna")
        .expect("read")
        .expect("vanna")
        .0;
    saksi_server::admin::set_role(&**server.storage(), by, &vanna_user, Role::Liaison, now)
        .expect("role");
    let config = saksi_server::config::Config {
        data_dir: server.data_dir.path().to_owned(),
        ..Default::default()
    };
    let dir = server.stop().await;
    let out = fixture();
    std::fs::create_dir_all(out.parent().expect("dir")).expect("fixtures dir");
    let _ = std::fs::remove_file(&out);
    let summary = saksi_server::backup::backup(&config, &out).expect("fixture written");
    eprintln!("wrote {}: {summary}", out.display());
    drop(dir);
}
