//! `saksi admin backup` under sustained write load, and `saksi admin restore` into a fresh data
//! directory: a server started on the restored directory serves every change the first server
//! had acknowledged before the backup started.
//!
//! The first server is the real binary; three phones keep editing their records as fast as it
//! answers, and note what it acknowledged (its sync reply carries their heads). The backup is
//! taken by the real CLI while they write.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use saksi_client::Session;
use saksi_server::accounts::random_16;
use saksi_shared::DocumentId;
use saksi_shared::automerge::{ChangeHash, ReadDoc as _};
use saksi_shared::catalogue::RecordKind;
use saksi_shared::record::FieldInput;
use saksi_shared::sync::Repo;
use saksi_testkit::at;

use crate::helpers::{PASSWORD, TestServer, WAIT};
use crate::process::{self, admin, text};

type Acked = Arc<Mutex<Vec<(DocumentId, ChangeHash)>>>;

/// Edits and syncs until `stop`; every round trip the server acknowledged goes into `acked`.
/// Each phone writes its own record (a narrative growing at the front and a field it keeps
/// changing), so that every round is acknowledged on its own.
async fn keep_writing(
    session: Session,
    repo: Repo,
    own: DocumentId,
    acked: Acked,
    stop: Arc<AtomicBool>,
) -> u64 {
    let mut sync = session.sync(repo).await.expect("connect");
    let editor = session.editor();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        sync.repo
            .edit(&own, |r| {
                r.splice_text(
                    "narrative",
                    0,
                    0,
                    &format!("<{} {n}>", editor.who.user),
                    &editor,
                    at(n as i64),
                )?;
                r.set_field(
                    "case_number",
                    FieldInput::Text(format!("លេខ {n}")),
                    &editor,
                    at(n as i64),
                )
            })
            .expect("own record")
            .expect("edit");
        sync.sync_until(WAIT, |repo, _| repo.is_synced(&own))
            .await
            .expect("acknowledged");
        let mut list = acked.lock().expect("acked");
        for head in sync.repo.record(&own).expect("doc").heads() {
            list.push((own, head));
        }
    }
    let _ = sync.disconnect().await;
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_under_write_load_restores_every_acknowledged_change() {
    let dir = tempfile::tempdir().expect("dir");
    let logs = tempfile::tempdir().expect("logs");
    let names = ["sophea", "vanna", "dara"];
    let case = process::seed(dir.path(), &names);
    let server = process::start(dir.path(), &logs.path().join("server.log"), &[]);

    // Phones sign in, create their records, and keep editing them.
    let acked: Acked = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut docs = Vec::new();
    let mut writers = Vec::new();
    for name in names {
        let session = server
            .client
            .login(name, PASSWORD, "phone")
            .await
            .expect("login");
        let mut repo = Repo::new(format!("{name}-phone").into(), random_16());
        let own = repo.create(
            RecordKind::CourtObservation,
            &case,
            &session.editor(),
            at(1),
            random_16(),
        );
        docs.push(own);
        writers.push(tokio::spawn(keep_writing(
            session,
            repo,
            own,
            acked.clone(),
            stop.clone(),
        )));
    }

    // Under load: wait for a steady stream of acknowledgements, then back up.
    let deadline = tokio::time::Instant::now() + WAIT;
    while acked.lock().expect("acked").len() < 60 {
        assert!(tokio::time::Instant::now() < deadline, "the phones write");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let backups = tempfile::tempdir().expect("backups");
    let file = backups.path().join("saksi-backup.sqlite3");
    let before: Vec<(DocumentId, ChangeHash)> = acked.lock().expect("acked").clone();
    let output = {
        let (dir, file) = (dir.path().to_owned(), file.clone());
        tokio::task::spawn_blocking(move || {
            admin(&dir, &["backup", file.to_str().expect("utf-8 path")], "")
        })
        .await
        .expect("backup ran")
    };
    assert!(output.status.success(), "backup: {}", text(&output));
    let printed = text(&output);
    assert!(
        printed.contains("backup written to")
            && printed.contains("3 users")
            && printed.contains("1 cases")
            && printed.contains("audit chain verified"),
        "{printed}"
    );
    // The phones kept writing through the backup.
    let during = acked.lock().expect("acked").len();
    let deadline = tokio::time::Instant::now() + WAIT;
    while acked.lock().expect("acked").len() < during + 30 {
        assert!(tokio::time::Instant::now() < deadline, "writing goes on");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // One self-contained file that passes SQLite's integrity check.
    {
        let conn = rusqlite::Connection::open(&file).expect("backup opens");
        let report: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("check");
        assert_eq!(report, "ok");
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .expect("mode");
        assert_eq!(mode, "delete", "no WAL file needed beside the backup");
    }
    // Never overwritten.
    let again = admin(dir.path(), &["backup", file.to_str().expect("path")], "");
    assert!(!again.status.success());
    assert!(text(&again).contains("already exists"), "{}", text(&again));
    // A backup that cannot be written says why, once: the error, then its cause.
    let nowhere = dir.path().join("no-such-folder").join("saksi.sqlite3");
    let failed = admin(dir.path(), &["backup", nowhere.to_str().expect("path")], "");
    assert!(!failed.status.success());
    let said = String::from_utf8_lossy(&failed.stderr).into_owned();
    assert!(said.starts_with("saksi: "), "{said}");
    assert_eq!(
        said.matches("No such file or directory").count(),
        1,
        "{said}"
    );
    // No restore over a running server, even forced.
    let refused = admin(
        dir.path(),
        &["restore", file.to_str().expect("path"), "--force"],
        "",
    );
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("server is running"),
        "{}",
        text(&refused)
    );

    stop.store(true, Ordering::Relaxed);
    let mut rounds = Vec::new();
    for w in writers {
        rounds.push(w.await.expect("writer"));
    }
    assert!(
        rounds.iter().all(|&n| n > 1),
        "each phone wrote: {rounds:?}"
    );
    assert!(server.terminate().success(), "graceful exit on SIGTERM");

    // Restore into a fresh data directory.
    let fresh = tempfile::tempdir().expect("fresh");
    let restored = admin(fresh.path(), &["restore", file.to_str().expect("path")], "");
    assert!(restored.status.success(), "restore: {}", text(&restored));
    assert!(
        text(&restored).contains("restored") && text(&restored).contains("3 users"),
        "{}",
        text(&restored)
    );
    let twice = admin(fresh.path(), &["restore", file.to_str().expect("path")], "");
    assert!(!twice.status.success(), "an existing database is kept");
    assert!(text(&twice).contains("--force"), "{}", text(&twice));
    let forced = admin(
        fresh.path(),
        &["restore", file.to_str().expect("path"), "--force"],
        "",
    );
    assert!(forced.status.success(), "{}", text(&forced));
    assert!(text(&forced).contains("kept as"), "{}", text(&forced));

    // A server on the restored directory serves every change acknowledged before the backup.
    let restored = TestServer::start_in(fresh, |_| {}).await;
    assert_eq!(
        restored.storage().verify_audit().map(|n| n > 0),
        Ok(true),
        "audit chain"
    );
    let session = restored.login("vanna").await;
    let mut repo = Repo::new("check-phone".into(), random_16());
    for id in &docs {
        repo.request(*id);
    }
    let mut sync = session.sync(repo).await.expect("connect");
    let mut wanted: HashMap<DocumentId, Vec<ChangeHash>> = HashMap::new();
    for (id, hash) in &before {
        wanted.entry(*id).or_default().push(*hash);
    }
    let complete = |repo: &Repo| {
        wanted.iter().all(|(id, hashes)| {
            repo.record(id).is_some_and(|r| {
                hashes
                    .iter()
                    .all(|h| r.doc().get_change_by_hash(h).is_some())
            })
        })
    };
    let found = sync.sync_until(WAIT, |repo, _| complete(repo)).await;
    assert!(
        found.is_ok() && complete(&sync.repo),
        "every change acknowledged before the backup is served after the restore"
    );
    eprintln!(
        "backup: {} acknowledged heads before the backup (rounds per phone {rounds:?}), all restored",
        before.len()
    );
    let _ = sync.disconnect().await;
    restored.stop().await;
}

/// `saksi admin ARGS` on `data_dir` under the usual umask (022), whatever this test's is.
#[cfg(unix)]
fn admin_under_umask_022(data_dir: &Path, args: &[&str]) -> std::process::Output {
    let mut command = std::process::Command::new("sh");
    command
        .args([
            "-c",
            "umask 022 && exec \"$0\" \"$@\"",
            env!("CARGO_BIN_EXE_saksi"),
        ])
        .arg("admin")
        .args(args)
        .stdin(std::process::Stdio::null());
    for (name, _) in std::env::vars() {
        if name.starts_with("SAKSI_") {
            command.env_remove(name);
        }
    }
    command
        .env("SAKSI_DATA_DIR", data_dir)
        .output()
        .expect("saksi admin runs")
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Red-team finding: `saksi admin backup FILE` wrote the backup readable by everyone (0644
/// under the usual umask), and the database in the data directory was created the same way.
/// A backup holds every record and the password hashes: it is the server's user's only from
/// the start, and so are the database, its `-wal` and `-shm` files and the data directory.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_and_database_files_are_private() {
    let parent = tempfile::tempdir().expect("dir");
    let data = parent.path().join("data");
    // The CLI creates the data directory and the database.
    let listed = admin_under_umask_022(&data, &["list-users"]);
    assert!(listed.status.success(), "{}", text(&listed));
    assert_eq!(mode(&data), 0o700, "data directory");
    let db = data.join("saksi.sqlite3");
    assert_eq!(mode(&db), 0o600, "database");
    for suffix in ["-wal", "-shm"] {
        let beside = data.join(format!("saksi.sqlite3{suffix}"));
        if beside.exists() {
            assert_eq!(mode(&beside), 0o600, "{}", beside.display());
        }
    }

    let backups = parent.path().join("backups");
    std::fs::create_dir(&backups).expect("backups dir");
    let file = backups.join("saksi-backup.sqlite3");
    let output = admin_under_umask_022(&data, &["backup", file.to_str().expect("utf-8 path")]);
    assert!(output.status.success(), "backup: {}", text(&output));
    assert_eq!(mode(&file), 0o600, "backup");
    let leftovers: Vec<_> = std::fs::read_dir(&backups)
        .expect("backups dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "only the backup is left: {leftovers:?}");

    // A running server's database and WAL files, in a fresh data directory.
    let server = TestServer::start().await;
    server.user("sophea", saksi_shared::Role::Monitor);
    let dir = server.data_dir.path().to_owned();
    for name in ["saksi.sqlite3", "saksi.sqlite3-wal", "saksi.sqlite3-shm"] {
        assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
    }
    server.stop().await;
}

/// A backup is one file that holds the attached files too, checked against their SHA-256; a
/// restore into a fresh directory puts them back, and the server serves them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_and_restore_carry_the_attached_files() {
    use saksi_shared::attachment::NewAttachment;
    use sha2::Digest as _;
    let server = TestServer::start().await;
    server.user("sophea", saksi_shared::Role::Monitor);
    let case = server.case("ករណី បម្រុងទុក", &["sophea"]);
    let (session, mut phone) = server.phone("sophea").await;
    let editor = session.editor();
    let doc = phone.repo.create(
        RecordKind::CourtObservation,
        &case,
        &editor,
        at(1_000),
        random_16(),
    );
    let mut files = Vec::new();
    for (i, size) in [3_000_000usize, 12_345].into_iter().enumerate() {
        let bytes: Vec<u8> = "សេចក្តីសម្រេចតុលាការ "
            .bytes()
            .cycle()
            .take(size)
            .map(|b| b.wrapping_add(i as u8))
            .collect();
        let sha = hex::encode(sha2::Sha256::digest(&bytes));
        let file = NewAttachment {
            id: hex::encode(random_16()),
            sha256: sha.clone(),
            size: size as u64,
            media_type: "image/jpeg".into(),
            name: format!("ទំព័រ {i}.jpg"),
            captured_at: at(2_000),
            metadata: None,
            caption: String::new(),
        };
        phone
            .repo
            .edit(&doc, |r| r.add_attachment(&file, &editor, at(3_000)))
            .expect("doc")
            .expect("attached");
        files.push((sha, bytes));
    }
    phone.sync_all(WAIT).await.expect("synced");
    for (sha, bytes) in &files {
        session
            .upload(sha, bytes, 1 << 20, 0)
            .await
            .expect("uploaded");
    }
    let backups = tempfile::tempdir().expect("backups");
    let file = backups.path().join("saksi-files.sqlite3");
    let made = admin(
        server.data_dir.path(),
        &["backup", file.to_str().expect("path")],
        "",
    );
    assert!(made.status.success(), "{}", text(&made));
    assert!(
        text(&made).contains("2 files (3012345 bytes)"),
        "{}",
        text(&made)
    );
    server.stop().await;

    // One file: nothing of the file store beside it.
    assert_eq!(std::fs::read_dir(backups.path()).expect("dir").count(), 1);
    let fresh = tempfile::tempdir().expect("fresh");
    let restored = admin(fresh.path(), &["restore", file.to_str().expect("path")], "");
    assert!(restored.status.success(), "{}", text(&restored));
    assert!(text(&restored).contains("2 files"), "{}", text(&restored));
    let server = TestServer::start_in(fresh, |_| {}).await;
    let session = server.login("sophea").await;
    for (sha, bytes) in &files {
        let got = session.download(sha).await.expect("download");
        assert_eq!(got.status, 200);
        assert_eq!(&got.body, bytes);
    }
    // The restored database carries no copy of the files.
    let conn =
        rusqlite::Connection::open(server.data_dir.path().join("saksi.sqlite3")).expect("db");
    let table: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'backup_files')",
            [],
            |r| r.get(0),
        )
        .expect("query");
    assert!(!table);
    server.stop().await;
}
