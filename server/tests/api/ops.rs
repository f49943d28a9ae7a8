//! Operations: JSON logs from the real binary, `/healthz` when the storage fails, one server per
//! data directory.

use saksi_server::Application;
use saksi_server::accounts::random_16;
use saksi_shared::catalogue::RecordKind;
use saksi_shared::record::FieldInput;
use saksi_shared::sync::Repo;
use saksi_testkit::at;

use crate::helpers::{PASSWORD, TestServer, WAIT, test_config};
use crate::process;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_json_lines_without_secrets_or_contents() {
    let dir = tempfile::tempdir().expect("dir");
    let logs = tempfile::tempdir().expect("logs");
    let log = logs.path().join("server.log");
    let case = process::seed(dir.path(), &["sophea"]);
    let server = process::start(
        dir.path(),
        &log,
        &[("SAKSI_LOG_FORMAT", "json"), ("SAKSI_LOG", "debug")],
    );
    // A wrong password, then a session that writes a record with typed content.
    let wrong = server
        .client
        .login("sophea", "not the password at all", "phone")
        .await;
    assert!(wrong.is_err(), "wrong password refused");
    let session = server
        .client
        .login("sophea", PASSWORD, "phone")
        .await
        .expect("login");
    let editor = session.editor();
    let mut repo = Repo::new("sophea-phone".into(), random_16());
    let id = repo.create(
        RecordKind::CourtObservation,
        &case,
        &editor,
        at(1),
        random_16(),
    );
    repo.edit(&id, |r| {
        r.set_field(
            "case_number",
            FieldInput::Text("សម្ងាត់-៤២".into()),
            &editor,
            at(2),
        )?;
        r.set_text("narrative", "the judge said ខ្មែរ", &editor, at(3))
    })
    .expect("doc")
    .expect("edit");
    let mut sync = session.sync(repo).await.expect("connect");
    sync.sync_all(WAIT).await.expect("stored");
    let _ = sync.disconnect().await;
    let ticket = server
        .client
        .post_json(
            "/api/sync-ticket",
            Some(&session.token),
            &serde_json::json!({}),
        )
        .await
        .expect("ticket");
    assert_eq!(ticket.status, 200);
    let ticket: serde_json::Value = ticket.json().expect("json");
    let ticket = ticket["ticket"].as_str().expect("ticket").to_owned();
    let stdout = server.stdout.lock().expect("stdout").clone();
    assert!(
        stdout
            .iter()
            .any(|l| l.starts_with("local CA certificate SHA-256 fingerprint: ")),
        "the operator is told the fingerprint on standard output, not in the log"
    );
    // The CA key's passphrase: the line after its heading, on standard output only.
    let passphrase = stdout
        .iter()
        .skip_while(|l| !l.starts_with("The CA key's passphrase"))
        .nth(1)
        .map(|l| l.trim().to_owned())
        .expect("the passphrase is shown at first start");
    assert_eq!(passphrase.len(), 29, "{passphrase}");
    assert!(server.terminate().success());

    let text = std::fs::read_to_string(&log).expect("log");
    let mut lines = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(
            value.get("level").is_some() && value.get("fields").is_some(),
            "{line}"
        );
        lines += 1;
    }
    assert!(lines > 5, "the server logged ({lines} lines)");
    assert!(text.contains("document created"), "debug events are there");
    for secret in [
        PASSWORD,
        "not the password at all",
        session.token.as_str(),
        ticket.as_str(),
        "សម្ងាត់",
        "the judge said",
        passphrase.as_str(),
    ] {
        assert!(!text.contains(secret), "the log contains `{secret}`");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_reports_a_failed_storage_as_503() {
    let server = TestServer::start().await;
    let res = server.client.get("/healthz", None).await.expect("answer");
    assert_eq!((res.status, res.text().as_str()), (200, "ok"));
    // The storage's writer stops (as when the disk or the database fails).
    server.state.sqlite.close();
    let res = server.client.get("/healthz", None).await.expect("answer");
    assert_eq!(res.status, 503, "{}", res.text());
    assert!(
        !res.text().contains("closed"),
        "the cause goes to the log only"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_server_per_data_directory() {
    let server = TestServer::start().await;
    let second = Application::build(test_config(server.data_dir.path().to_owned())).await;
    let err = second.expect_err("a second server on the same data directory is refused");
    assert!(err.to_string().contains("server is running"), "{err}");
    let dir = server.stop().await;
    // Released by a graceful stop.
    let again = TestServer::start_in(dir, |_| {}).await;
    again.stop().await;
}
