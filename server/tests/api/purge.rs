//! S8 and its neighbours: a family withdraws consent, a liaison records it, a coordinator
//! purges the statement, and it is gone everywhere (the database file and its WAL, the file
//! store, the console, exports, every phone, the online one at once and the offline one at its
//! next contact, a stock automerge-repo client), while the audit chain keeps verifying. Plus
//! discard, a purge undone within its grace period, the command line, and the restore of a
//! backup older than a purge.

use std::path::Path;
use std::time::Duration;

use saksi_client::{Session, SyncClient};
use saksi_server::accounts::random_16;
use saksi_shared::attachment::NewAttachment;
use saksi_shared::catalogue::RecordKind;
use saksi_shared::record::FieldInput;
use saksi_shared::sync::Event;
use saksi_shared::time::days;
use saksi_shared::{DocumentId, Role, Status};
use saksi_testkit::{at, ms};
use sha2::{Digest, Sha256};

use crate::helpers::{Browser, TestServer, WAIT};
use crate::process::{self, admin, text};

/// The distinctive phrase of the statement (fictional): it must not survive a purge anywhere.
const PHRASE: &str = "ម្តាយរបស់គាត់ត្រូវបានចាប់ខ្លួននៅភូមិត្រពាំងឈូក";

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Whether the database file or its WAL holds `needle`.
fn database_holds(data_dir: &Path, needle: &str) -> bool {
    ["saksi.sqlite3", "saksi.sqlite3-wal"].iter().any(|name| {
        std::fs::read(data_dir.join(name)).is_ok_and(|bytes| contains(&bytes, needle.as_bytes()))
    })
}

fn stored_file(data_dir: &Path, sha256: &str) -> std::path::PathBuf {
    data_dir.join("files/blobs").join(&sha256[..2]).join(sha256)
}

/// A family statement by Lina holding `phrase` (in its title and its narrative) and an audio
/// recording of its own she uploaded. Returns the record and the recording's bytes.
async fn statement_with(
    server: &TestServer,
    case: DocumentId,
    lina: &Session,
    phone: &mut SyncClient,
    phrase: &str,
) -> (DocumentId, Vec<u8>) {
    let editor = lina.editor();
    let id = phone.repo.create(
        RecordKind::FamilyStatement,
        &case,
        &editor,
        at(1_000),
        random_16(),
    );
    let audio = format!("សំឡេង {phrase} {id} ").repeat(300).into_bytes();
    let file = NewAttachment {
        id: hex::encode(random_16()),
        sha256: sha(&audio),
        size: audio.len() as u64,
        media_type: "audio/webm".into(),
        name: "សក្ខីកម្ម.webm".into(),
        captured_at: at(1_700_000_000_000),
        metadata: None,
        caption: String::new(),
    };
    phone
        .repo
        .edit(&id, |r| {
            r.set_field(
                "detainee",
                FieldInput::Text(phrase.into()),
                &editor,
                at(2_000),
            )?;
            r.set_text("statement", &format!("{phrase}។ សាក្សី"), &editor, at(2_000))?;
            r.add_attachment(&file, &editor, at(2_000))
        })
        .expect("doc")
        .expect("written");
    phone.sync_all(WAIT).await.expect("synced");
    lina.upload(&sha(&audio), &audio, 1 << 20, 0)
        .await
        .expect("uploaded");
    assert!(stored_file(server.data_dir.path(), &sha(&audio)).is_file());
    (id, audio)
}

/// A statement holding [`PHRASE`].
async fn statement(
    server: &TestServer,
    case: DocumentId,
    lina: &Session,
    phone: &mut SyncClient,
) -> (DocumentId, Vec<u8>) {
    statement_with(server, case, lina, phone, PHRASE).await
}

fn withdrawn(events: &[Event], id: DocumentId) -> usize {
    events
        .iter()
        .filter(|e| **e == Event::DocumentWithdrawn(id))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s8_consent_withdrawn_the_statement_is_purged_everywhere() {
    let server = TestServer::start().await;
    server.user("lina", Role::Liaison);
    server.user("chenda", Role::Coordinator);
    let case = server.case("ករណី សក្ខីកម្ម", &["lina"]);
    let (lina, mut online) = server.phone("lina").await;
    let (id, audio) = statement(&server, case, &lina, &mut online).await;

    // Her second phone holds it too, then goes offline.
    let (lina2, mut offline) = server.phone("lina").await;
    offline.repo.request(id);
    offline
        .sync_until(WAIT, |repo, _| {
            repo.record(&id).is_some_and(|r| !r.is_empty())
        })
        .await
        .expect("the second phone has it");
    let mut offline_repo = offline.disconnect().await;

    // The family withdraws consent: Lina records it, and the coordinators are asked.
    let editor = lina.editor();
    online
        .repo
        .edit(&id, |r| r.withdraw_consent("", &editor, at(3_000)))
        .expect("doc")
        .expect("recorded");
    online.sync_all(WAIT).await.expect("synced");
    let desk = Browser::sign_in(&server, "chenda").await;
    let list = desk.page("/console/records").await;
    assert!(list.contains("consent-count"), "the coordinators are told");
    let asked = desk.page("/console/records?consent=yes").await;
    assert!(asked.contains(&id.to_string()));

    // The positive control: the phrase is in the database now.
    assert!(database_holds(server.data_dir.path(), PHRASE));

    // Meanwhile the offline phone adds to the statement.
    let editor2 = lina2.editor();
    offline_repo
        .edit(&id, |r| {
            r.splice_text("statement", 0, 0, "បន្ថែម ", &editor2, at(3_500))
        })
        .expect("doc")
        .expect("offline edit");

    // The coordinator purges it (an admin could skip the wait; a coordinator cannot).
    let refused = desk
        .post(
            &format!("/console/records/{id}/purge"),
            &[
                ("reason", "consent_withdrawn"),
                ("confirm", "yes"),
                ("now", "yes"),
            ],
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.text());
    let unconfirmed = desk
        .post(
            &format!("/console/records/{id}/purge"),
            &[("reason", "consent_withdrawn")],
        )
        .await;
    assert_eq!(unconfirmed.status, 400);
    let scheduled = desk
        .post(
            &format!("/console/records/{id}/purge"),
            &[("reason", "consent_withdrawn"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(scheduled.status, 303, "{}", scheduled.text());
    // Hidden from field staff at once: the online phone is told, the listing drops it.
    online
        .sync_until(WAIT, |_, events| {
            events.contains(&Event::DocumentUnavailable(id))
        })
        .await
        .expect("the liaison's phone is told");
    assert!(
        !lina
            .records()
            .await
            .expect("list")
            .records
            .iter()
            .any(|r| r.id == id)
    );
    assert!(
        desk.page(&format!("/console/records/{id}"))
            .await
            .contains("purge-pending")
    );

    // The grace period ends.
    server
        .clock
        .advance(days(server.state.config.purge_grace_days) + ms(1));
    let done = saksi_server::purge::run_due(&server.state)
        .await
        .expect("due purges run");
    assert_eq!(done, 1);

    // Gone from the database file and its WAL, and from the file store.
    assert!(
        !database_holds(server.data_dir.path(), PHRASE),
        "the phrase survived the purge"
    );
    assert!(!stored_file(server.data_dir.path(), &sha(&audio)).exists());
    assert_eq!(
        lina.download(&sha(&audio)).await.expect("answer").status,
        404
    );
    // The console and the exports no longer list it.
    for path in [
        "/console/records".to_owned(),
        "/console/export.json".to_owned(),
        "/console/export.csv?kind=family_statement".to_owned(),
        format!("/console/report?case={case}"),
    ] {
        let body = desk.get(&path).await.text();
        assert!(!body.contains(&id.to_string()), "{path} lists it");
        assert!(!body.contains(PHRASE), "{path} holds the phrase");
    }
    assert_eq!(
        desk.get(&format!("/console/records/{id}")).await.status,
        404
    );
    // Nor the case archive: no entry named after it, nothing of it in any entry.
    let zip = desk
        .get(&format!("/console/export/archive.zip?case={case}"))
        .await;
    assert_eq!(zip.status, 200, "{}", zip.text());
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip.body)).expect("a ZIP");
    assert!(
        archive.len() > 2,
        "the archive has its CSV, JSON and manifest"
    );
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).expect("entry");
        let name = entry.name().to_owned();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).expect("read");
        assert!(
            !name.contains(&id.to_string()),
            "the archive names it: {name}"
        );
        assert!(
            !contains(&bytes, id.to_string().as_bytes()) && !contains(&bytes, PHRASE.as_bytes()),
            "{name} holds it"
        );
        assert!(
            !contains(&bytes, &audio[..64]),
            "{name} holds the recording"
        );
    }
    // The audit log says what happened, without content, and its chain verifies.
    let audit = desk.page("/console/audit").await;
    assert!(audit.contains("consent_withdrawn"));
    assert!(!audit.contains(PHRASE));
    server.storage().verify_audit().expect("the chain verifies");

    // The listing names it as withdrawn for Lina's phones.
    assert!(lina.records().await.expect("list").withdrawn.contains(&id));

    // The offline phone comes back: told once, its copy and its edit dropped, no retry loop.
    let mut back = lina2.sync(offline_repo).await.expect("reconnects");
    back.sync_until(WAIT, |_, events| withdrawn(events, id) > 0)
        .await
        .expect("the offline phone is told");
    assert!(back.repo.record(&id).is_none());
    back.sync_all(Duration::from_secs(2))
        .await
        .expect("nothing left to send");
    assert_eq!(withdrawn(&back.events, id), 1, "told once, not in a loop");
    assert!(server.storage().document(&id).expect("read").is_none());
    assert!(!database_holds(server.data_dir.path(), PHRASE));

    // Creating a record under the same id again is refused too.
    let mut fresh = saksi_shared::sync::Repo::new("lina-again".into(), random_16());
    let _ = fresh.create(
        RecordKind::FamilyStatement,
        &case,
        &editor,
        at(9_000),
        *id.as_bytes(),
    );
    let mut again = lina.sync(fresh).await.expect("connects");
    again
        .sync_until(WAIT, |_, events| withdrawn(events, id) > 0)
        .await
        .expect("refused for ever");
    assert!(server.storage().document(&id).expect("read").is_none());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stock_automerge_repo_client_gets_doc_unavailable_for_a_purged_record() {
    let server = TestServer::start().await;
    server.user("lina", Role::Liaison);
    server.user("chenda", Role::Coordinator);
    let case = server.case("ករណី", &["lina"]);
    let (lina, mut phone) = server.phone("lina").await;
    let (id, _) = statement(&server, case, &lina, &mut phone).await;
    saksi_server::purge::destroy(
        &server.state,
        id,
        "chenda",
        None,
        saksi_server::storage::PurgeReason::Safety,
    )
    .await
    .expect("destroyed");
    let peer = crate::interop::samod_repo(&server, "chenda").await;
    let found = tokio::time::timeout(WAIT, peer.find(id.to_string().parse().expect("id")))
        .await
        .expect("in time")
        .expect("repo running");
    assert!(found.is_none(), "samod is told the document is unavailable");
    peer.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_author_discards_a_draft_never_submitted_and_nothing_else() {
    let server = TestServer::start().await;
    server.user("sophea", Role::Monitor);
    server.user("vanna", Role::Monitor);
    server.user("chenda", Role::Coordinator);
    let case = server.case("ករណី", &["sophea", "vanna"]);
    let (sophea, mut phone) = server.phone("sophea").await;
    let editor = sophea.editor();
    let mut create = |n: i64| {
        let id = phone.repo.create(
            RecordKind::CourtObservation,
            &case,
            &editor,
            at(1_000 + n),
            random_16(),
        );
        phone
            .repo
            .edit(&id, |r| {
                r.set_field(
                    "case_number",
                    FieldInput::Text(format!("{PHRASE} {n}")),
                    &editor,
                    at(1_100 + n),
                )
            })
            .expect("doc")
            .expect("edit");
        id
    };
    let (draft, submitted, coordinators) = (create(1), create(2), create(3));
    phone
        .repo
        .edit(&submitted, |r| {
            r.transition(Status::Submitted, None, &editor, at(2_000))
        })
        .expect("doc")
        .expect("submitted");
    phone.sync_all(WAIT).await.expect("synced");

    // A teammate may not discard Sophea's draft; nobody discards a submitted record here.
    let vanna = server.login("vanna").await;
    assert_eq!(vanna.discard(&draft).await.expect("answer").status, 403);
    assert_eq!(
        sophea.discard(&submitted).await.expect("answer").status,
        403
    );
    assert_eq!(
        sophea
            .discard(&DocumentId::from_bytes(random_16()))
            .await
            .expect("answer")
            .status,
        404
    );
    // Sophea discards her draft: destroyed at once, and her phone is told.
    assert_eq!(sophea.discard(&draft).await.expect("answer").status, 204);
    phone
        .sync_until(WAIT, |_, events| withdrawn(events, draft) > 0)
        .await
        .expect("the phone drops it");
    assert!(server.storage().document(&draft).expect("read").is_none());
    assert!(
        sophea
            .records()
            .await
            .expect("list")
            .withdrawn
            .contains(&draft)
    );
    assert!(
        vanna
            .records()
            .await
            .expect("list")
            .withdrawn
            .contains(&draft)
    );
    // A coordinator discards any draft from the console.
    let desk = Browser::sign_in(&server, "chenda").await;
    let res = desk
        .post(
            &format!("/console/records/{coordinators}/discard"),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text());
    assert!(
        server
            .storage()
            .document(&coordinators)
            .expect("read")
            .is_none()
    );
    let res = desk
        .post(
            &format!("/console/records/{submitted}/discard"),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(res.status, 400, "only drafts are discarded");
    assert!(
        server
            .storage()
            .document(&submitted)
            .expect("read")
            .is_some()
    );
    let tombstones = server.storage().tombstones().expect("tombstones");
    assert_eq!(tombstones.len(), 2);
    assert!(tombstones.iter().all(|t| t.reason.as_str() == "discarded"));
    assert!(!database_holds(
        server.data_dir.path(),
        &format!("{PHRASE} 1")
    ));
    server.storage().verify_audit().expect("the chain verifies");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_waiting_for_its_grace_period_can_be_undone() {
    let server = TestServer::start().await;
    server.user("lina", Role::Liaison);
    server.user("sophea", Role::Monitor);
    server.user("chenda", Role::Coordinator);
    let case = server.case("ករណី", &["lina", "sophea"]);
    let (lina, mut phone) = server.phone("lina").await;
    let (id, audio) = statement(&server, case, &lina, &mut phone).await;

    // Field staff have no say in the console.
    let monitor = server.login("sophea").await;
    let res = Browser::with_token(&server, &monitor)
        .post_raw(
            &format!("/console/records/{id}/purge"),
            &[("reason", "safety"), ("confirm", "yes")],
            None,
        )
        .await;
    assert_ne!(
        res.header("location"),
        Some(format!("/console/records/{id}?done=purge_scheduled").as_str())
    );
    assert!(server.storage().pending_purge(&id).expect("read").is_none());

    let desk = Browser::sign_in(&server, "chenda").await;
    let res = desk
        .post(
            &format!("/console/records/{id}/purge"),
            &[("reason", "safety"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(res.status, 303);
    assert!(
        !lina
            .records()
            .await
            .expect("list")
            .records
            .iter()
            .any(|r| r.id == id)
    );
    assert_eq!(lina.discard(&id).await.expect("answer").status, 404);

    // Its recording is hidden from her too.
    assert_eq!(
        lina.download(&sha(&audio)).await.expect("answer").status,
        404
    );
    // Undone on the third day: everything is back for the liaison, with its file.
    server.clock.advance(days(3));
    let res = desk
        .post(&format!("/console/records/{id}/purge/cancel"), &[])
        .await;
    assert_eq!(
        res.header("location"),
        Some(format!("/console/records/{id}?done=purge_cancelled").as_str())
    );
    assert!(
        lina.records()
            .await
            .expect("list")
            .records
            .iter()
            .any(|r| r.id == id)
    );
    assert_eq!(
        saksi_server::purge::run_due(&server.state)
            .await
            .expect("run"),
        0
    );
    server.clock.advance(days(30));
    assert_eq!(
        saksi_server::purge::run_due(&server.state)
            .await
            .expect("run"),
        0
    );
    assert!(server.storage().document(&id).expect("read").is_some());
    // (A month later: her earlier session has expired.)
    let lina = server.login("lina").await;
    assert_eq!(
        lina.download(&sha(&audio)).await.expect("answer").status,
        200
    );
    let (_, mut again) = server.phone("lina").await;
    again.repo.request(id);
    again
        .sync_until(WAIT, |repo, _| {
            repo.record(&id).is_some_and(|r| !r.is_empty())
        })
        .await
        .expect("the liaison syncs it again");
    let desk = Browser::sign_in(&server, "chenda").await;
    let audit = desk.page("/console/audit").await;
    assert!(audit.contains("Purge scheduled") && audit.contains("Purge undone"));
    server.stop().await;
}

/// `saksi admin purge` and the server both rewrite `purges-waiting`, the list a restore of an
/// older backup puts back. Each holds `purges-waiting.lock` from reading the database's list
/// until the rename, so whoever writes last read the list after both changes. Here the test
/// holds the lock, as a server writing at that moment would: the command line has changed the
/// database but waits to write the file, then writes it with its purge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_waiting_purges_file_has_one_writer_at_a_time() {
    let server = TestServer::start().await;
    server.user("lina", Role::Liaison);
    let case = server.case("ករណី", &["lina"]);
    let (lina, mut phone) = server.phone("lina").await;
    let (id, _) = statement(&server, case, &lina, &mut phone).await;
    let dir = server.data_dir.path();
    let waiting =
        || std::fs::read_to_string(saksi_server::purge::pending_file(dir)).unwrap_or_default();

    let lock_path = saksi_server::purge::pending_lock_file(dir);
    let held = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .expect("the lock file");
    held.lock().expect("locked");
    let mut cli = process::saksi_command(dir, &[])
        .args(["admin", "purge", "--document", &id.to_string()])
        .args(["--reason", "recorded_in_error"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("saksi admin starts");
    let scheduled = async {
        loop {
            let listed = server.storage().pending_purge(&id).expect("read");
            if listed.is_some() {
                return;
            }
            tokio::time::sleep(ms(20)).await;
        }
    };
    tokio::time::timeout(WAIT, scheduled)
        .await
        .expect("the command line changes the database first");
    tokio::time::sleep(ms(500)).await;
    assert!(
        cli.try_wait().expect("status").is_none(),
        "the command line waits for the lock"
    );
    assert!(!waiting().contains(&id.to_string()), "{}", waiting());

    drop(held);
    let out = cli.wait_with_output().expect("it ends");
    assert!(out.status.success(), "{}", text(&out));
    assert!(waiting().contains(&id.to_string()), "{}", waiting());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_purges_while_the_server_runs() {
    let server = TestServer::start().await;
    server.user("lina", Role::Liaison);
    let case = server.case("ករណី", &["lina"]);
    let (lina, mut phone) = server.phone("lina").await;
    let (id, audio) = statement(&server, case, &lina, &mut phone).await;
    let dir = server.data_dir.path();

    let bad = admin(
        dir,
        &[
            "purge",
            "--document",
            &id.to_string(),
            "--reason",
            "boredom",
        ],
        "",
    );
    assert!(!bad.status.success());
    assert!(text(&bad).contains("consent_withdrawn, recorded_in_error or safety"));
    let later = admin(
        dir,
        &[
            "purge",
            "--document",
            &id.to_string(),
            "--reason",
            "recorded_in_error",
        ],
        "",
    );
    assert!(later.status.success(), "{}", text(&later));
    assert!(text(&later).contains("hidden from field staff"));
    // The running server hides it within seconds.
    phone
        .sync_until(WAIT, |_, events| {
            events.contains(&Event::DocumentUnavailable(id))
        })
        .await
        .expect("hidden");
    let listed = admin(dir, &["list-purges"], "");
    assert!(text(&listed).contains(&format!("{id}\twaiting\trecorded_in_error")));
    let undone = admin(dir, &["cancel-purge", "--document", &id.to_string()], "");
    assert!(undone.status.success(), "{}", text(&undone));
    let undone = admin(dir, &["cancel-purge", "--document", &id.to_string()], "");
    assert!(!undone.status.success(), "nothing left to undo");

    let now = admin(
        dir,
        &[
            "purge",
            "--document",
            &id.to_string(),
            "--reason",
            "safety",
            "--now",
        ],
        "",
    );
    assert!(now.status.success(), "{}", text(&now));
    assert!(text(&now).contains("1 file(s) deleted"), "{}", text(&now));
    assert!(!stored_file(dir, &sha(&audio)).exists());
    // The running server notices and tells the connected phone.
    let (_, mut watcher) = server.phone("lina").await;
    watcher.repo.request(id);
    watcher
        .sync_until(WAIT, |_, events| withdrawn(events, id) > 0)
        .await
        .expect("refused");
    assert!(server.state.is_withdrawn(&id));
    assert!(!database_holds(dir, PHRASE));
    let listed = admin(dir, &["list-purges"], "");
    assert!(text(&listed).contains(&format!("{id}\tdestroyed\tsafety")));
    // What the backup script keeps beside each backup: the tombstones file's lines.
    let kept = admin(dir, &["tombstones"], "");
    assert!(kept.status.success(), "{}", text(&kept));
    let file = std::fs::read_to_string(dir.join("tombstones")).expect("tombstones file");
    assert_eq!(String::from_utf8_lossy(&kept.stdout), file);
    assert!(file.starts_with(&format!("{id} ")) && file.contains(" safety "));
    assert!(!file.contains(PHRASE));
    let missing = admin(
        dir,
        &[
            "purge",
            "--document",
            &id.to_string(),
            "--reason",
            "safety",
            "--now",
        ],
        "",
    );
    assert!(!missing.status.success());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restoring_a_backup_older_than_a_purge_destroys_the_record_again() {
    let server = TestServer::start().await;
    server.user("lina", Role::Liaison);
    server.user("chenda", Role::Coordinator);
    let case = server.case("ករណី", &["lina"]);
    let (lina, mut phone) = server.phone("lina").await;
    let (id, audio) = statement(&server, case, &lina, &mut phone).await;
    let (kept, _) = statement_with(&server, case, &lina, &mut phone, "សាក្សី ផ្សេង").await;
    let (third, _) = statement_with(&server, case, &lina, &mut phone, "សាក្សី ទីបី").await;
    // A purge waits for the third statement when the backup is made...
    let reason = saksi_server::storage::PurgeReason::RecordedInError;
    saksi_server::purge::schedule(&server.state, third, "chenda", None, reason)
        .await
        .expect("scheduled");
    let backups = tempfile::tempdir().expect("backups");
    let before = backups.path().join("before.sqlite3");
    let made = admin(
        server.data_dir.path(),
        &["backup", before.to_str().expect("path")],
        "",
    );
    assert!(made.status.success(), "{}", text(&made));
    assert!(contains(
        &std::fs::read(&before).expect("backup"),
        PHRASE.as_bytes()
    ));

    saksi_server::purge::destroy(
        &server.state,
        id,
        "chenda",
        None,
        saksi_server::storage::PurgeReason::ConsentWithdrawn,
    )
    .await
    .expect("destroyed");
    // ... and is undone after it, while a purge of the second is scheduled.
    assert!(
        saksi_server::purge::cancel(&server.state, third, "chenda", None)
            .await
            .expect("undone")
    );
    saksi_server::purge::schedule(&server.state, kept, "chenda", None, reason)
        .await
        .expect("scheduled");
    // A backup made after the purge holds nothing of it.
    let after = backups.path().join("after.sqlite3");
    let made = admin(
        server.data_dir.path(),
        &["backup", after.to_str().expect("path")],
        "",
    );
    assert!(made.status.success(), "{}", text(&made));
    let bytes = std::fs::read(&after).expect("backup");
    assert!(
        !contains(&bytes, PHRASE.as_bytes()),
        "the statement is not in the backup"
    );
    assert!(
        !contains(&bytes, &audio[..200]),
        "the recording is not in the backup"
    );
    assert!(
        contains(&bytes, "សាក្សី ផ្សេង".as_bytes()),
        "the other statement is"
    );
    let dir = server.stop().await;

    // The older backup is restored over it: the purge is applied again before anything is
    // served, from the tombstones file beside the database.
    let restored = admin(
        dir.path(),
        &["restore", before.to_str().expect("path"), "--force"],
        "",
    );
    assert!(restored.status.success(), "{}", text(&restored));
    assert!(
        text(&restored).contains("1 record(s) purged after this backup"),
        "{}",
        text(&restored)
    );
    // The waiting purges are as they were before the restore, not as in the backup.
    assert!(
        text(&restored).contains("1 put back, 1 undone"),
        "{}",
        text(&restored)
    );
    assert!(!database_holds(dir.path(), PHRASE));
    assert!(!stored_file(dir.path(), &sha(&audio)).exists());
    let server = TestServer::start_in(dir, |_| {}).await;
    assert!(server.storage().document(&id).expect("read").is_none());
    assert!(server.storage().document(&kept).expect("read").is_some());
    assert!(server.state.is_withdrawn(&id));
    assert!(
        server
            .storage()
            .pending_purge(&kept)
            .expect("read")
            .is_some()
    );
    assert!(
        server
            .storage()
            .pending_purge(&third)
            .expect("read")
            .is_none()
    );
    assert!(server.storage().tombstone(&id).expect("read").is_some());
    // A phone signed in after the purge never held it: it is not told of it.
    let fresh = server.login("lina").await;
    assert!(!fresh.records().await.expect("list").withdrawn.contains(&id));
    server.storage().verify_audit().expect("the chain verifies");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_takes_the_files_the_record_named_before_too() {
    let server = TestServer::start().await;
    server.user("lina", Role::Liaison);
    server.user("chenda", Role::Coordinator);
    let case = server.case("ករណី", &["lina"]);
    let (lina, mut phone) = server.phone("lina").await;
    let (id, audio) = statement(&server, case, &lina, &mut phone).await;
    // The recording is removed from the statement (a re-take), then the statement is purged:
    // the removed recording goes with it, not after the clean-up's grace period.
    let editor = lina.editor();
    let file_id = phone
        .repo
        .record(&id)
        .expect("doc")
        .view()
        .expect("view")
        .attachments[0]
        .id
        .clone();
    phone
        .repo
        .edit(&id, |r| r.remove_attachment(&file_id, &editor, at(5_000)))
        .expect("doc")
        .expect("removed");
    phone.sync_all(WAIT).await.expect("synced");
    assert!(
        stored_file(server.data_dir.path(), &sha(&audio)).is_file(),
        "still kept, unnamed"
    );
    let desk = Browser::sign_in(&server, "chenda").await;
    let audit_before = server.storage().verify_audit().expect("chain");
    saksi_server::purge::destroy(
        &server.state,
        id,
        "chenda",
        None,
        saksi_server::storage::PurgeReason::ConsentWithdrawn,
    )
    .await
    .expect("destroyed");
    assert!(!stored_file(server.data_dir.path(), &sha(&audio)).exists());
    assert!(server.storage().blob(&sha(&audio)).expect("read").is_none());
    assert!(server.storage().verify_audit().expect("chain") > audit_before);
    // A coordinator's undo of a purge the server already claimed fails, and says so.
    let (other, _) = statement_with(&server, case, &lina, &mut phone, "សាក្សី ទីពីរ").await;
    let res = desk
        .post(
            &format!("/console/records/{other}/purge"),
            &[("reason", "safety"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(res.status, 303);
    server
        .clock
        .advance(days(server.state.config.purge_grace_days) + ms(1));
    assert!(
        server
            .storage()
            .claim_purge(&other, server.clock_now())
            .expect("claimed")
    );
    let desk = Browser::sign_in(&server, "chenda").await;
    let res = desk
        .post(&format!("/console/records/{other}/purge/cancel"), &[])
        .await;
    assert_eq!(res.status, 400, "{}", res.text());
    server.stop().await;
}

/// Two statements name the same recording (the same bytes, attached to both): purging one
/// leaves the file for the other, which still opens it; purging the other then deletes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_keeps_a_file_another_live_record_names() {
    let server = TestServer::start().await;
    server.user("lina", Role::Liaison);
    server.user("chenda", Role::Coordinator);
    let case = server.case("ករណី", &["lina"]);
    let (lina, mut phone) = server.phone("lina").await;
    let (first, audio) = statement(&server, case, &lina, &mut phone).await;
    let editor = lina.editor();
    let second = phone.repo.create(
        RecordKind::FamilyStatement,
        &case,
        &editor,
        at(3_000),
        random_16(),
    );
    let same = NewAttachment {
        id: hex::encode(random_16()),
        sha256: sha(&audio),
        size: audio.len() as u64,
        media_type: "audio/webm".into(),
        name: "ចម្លង.webm".into(),
        captured_at: at(1_700_000_000_000),
        metadata: None,
        caption: String::new(),
    };
    phone
        .repo
        .edit(&second, |r| r.add_attachment(&same, &editor, at(3_100)))
        .expect("doc")
        .expect("attached");
    phone.sync_all(WAIT).await.expect("synced");
    let blob = stored_file(server.data_dir.path(), &sha(&audio));
    let destroy = |id| {
        saksi_server::purge::destroy(
            &server.state,
            id,
            "chenda",
            None,
            saksi_server::storage::PurgeReason::ConsentWithdrawn,
        )
    };
    let purged = destroy(first).await.expect("destroyed");
    assert!(purged.files.is_empty(), "no file deleted: {purged:?}");
    assert!(blob.is_file(), "the other statement's recording is kept");
    assert!(server.storage().blob(&sha(&audio)).expect("read").is_some());
    let got = lina.download(&sha(&audio)).await.expect("download");
    assert_eq!(
        got.status, 200,
        "the other statement's author still gets it"
    );
    assert_eq!(sha(&got.body), sha(&audio));

    let purged = destroy(second).await.expect("destroyed");
    assert_eq!(purged.files, vec![sha(&audio)]);
    assert!(!blob.exists(), "named by no record now: deleted");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_interrupted_after_its_tombstone_is_completed_and_audited() {
    let server = TestServer::start().await;
    server.user("lina", Role::Liaison);
    let case = server.case("ករណី", &["lina"]);
    let (lina, mut phone) = server.phone("lina").await;
    let (id, audio) = statement(&server, case, &lina, &mut phone).await;
    // The server wrote the tombstone, then died (or its database refused) before the rest.
    let tombstone = saksi_server::storage::Tombstone {
        doc_id: id,
        purged_at: server.clock_now(),
        username: "chenda".into(),
        reason: saksi_server::storage::PurgeReason::Safety,
        case_id: case,
        created_by: "lina".into(),
    };
    let file = saksi_server::purge::tombstone_file(server.data_dir.path());
    std::fs::write(&file, saksi_server::purge::line_of(&tombstone)).expect("tombstone written");
    let mut checked = None;
    let done = saksi_server::purge::finish_interrupted(&server.state, &mut checked)
        .await
        .expect("completed");
    assert_eq!(done, 1);
    assert!(server.storage().document(&id).expect("read").is_none());
    assert!(!stored_file(server.data_dir.path(), &sha(&audio)).exists());
    assert!(!database_holds(server.data_dir.path(), PHRASE));
    phone
        .sync_until(WAIT, |_, events| withdrawn(events, id) > 0)
        .await
        .expect("the phone is told");
    let audit = server
        .storage()
        .audit(&saksi_server::storage::AuditFilter {
            target: Some(id.to_string()),
            ..Default::default()
        })
        .expect("audit");
    assert!(
        audit
            .iter()
            .any(|e| e.event.detail.contains("completed later")),
        "audited: {audit:?}"
    );
    // Nothing more to do until the file grows.
    assert_eq!(
        saksi_server::purge::finish_interrupted(&server.state, &mut checked)
            .await
            .expect("nothing"),
        0
    );
    server.storage().verify_audit().expect("the chain verifies");
    server.stop().await;
}
