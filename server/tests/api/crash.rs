//! Scenario S6: the server is killed with SIGKILL during heavy sync, many times. After each kill
//! every change the server had acknowledged is on disk, and at the end all clients converge
//! with no manual step.
//!
//! The server runs as a separate process (the real `saksi` binary). Three phones keep editing
//! their own records and one shared record as fast as the server answers; each records what
//! the server acknowledged (its sync reply says it has the phone's heads). At a random moment
//! the server gets SIGKILL; the test then opens the database file itself and checks every
//! acknowledged change, restarts the server, and the phones carry on.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use saksi_client::{Client, Session};
use saksi_server::accounts::random_16;
use saksi_server::storage::prelude::*;
use saksi_server::storage::sqlite::SqliteStorage;
use saksi_shared::DocumentId;
use saksi_shared::automerge::{Automerge, ChangeHash, ReadDoc as _};
use saksi_shared::catalogue::RecordKind;
use saksi_shared::record::FieldInput;
use saksi_shared::sync::Repo;
use saksi_testkit::at;

use crate::helpers::{PASSWORD, WAIT};
use crate::process::{self, ServerProcess};

/// Kill-and-restart rounds.
const ROUNDS: usize = 20;

fn kill(mut server: ServerProcess) {
    // `Child::kill` is SIGKILL on Unix: no shutdown code runs.
    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("reaped");
}

fn start(dir: &Path, log: &Path) -> ServerProcess {
    process::start(dir, log, &[("SAKSI_LOG", "debug")])
}

/// What the server acknowledged: (document, change) pairs.
type Acked = Arc<Mutex<Vec<(DocumentId, ChangeHash)>>>;

struct Phone {
    session: Session,
    repo: Repo,
    own: DocumentId,
    shared: DocumentId,
    edits: u64,
}

/// Edits and syncs as fast as the server answers, until the connection dies.
async fn work(mut phone: Phone, client: Client, acked: Acked) -> Phone {
    phone.session.client = client;
    let mut sync = match phone.session.try_sync(phone.repo).await {
        Ok(s) => s,
        Err((_, repo)) => {
            // The server died before we connected: keep everything for the next round.
            phone.repo = repo;
            return phone;
        }
    };
    let editor = phone.session.editor();
    loop {
        phone.edits += 1;
        let n = phone.edits;
        let (own, shared) = (phone.own, phone.shared);
        let edited = sync.repo.edit(&own, |r| {
            r.splice_text(
                "narrative",
                0,
                0,
                &format!("[{} {n}]", editor.who.user),
                &editor,
                at(n as i64),
            )?;
            r.set_field(
                "case_number",
                FieldInput::Text(format!("លេខ {n}")),
                &editor,
                at(n as i64),
            )
        });
        edited.expect("own record").expect("edit");
        sync.repo
            .edit(&shared, |r| {
                r.splice_text(
                    "narrative",
                    0,
                    0,
                    &format!("<{} {n}>", editor.who.user),
                    &editor,
                    at(n as i64),
                )
            })
            .expect("shared record")
            .expect("edit");
        let done = sync
            .sync_until(Duration::from_secs(10), |repo, _| {
                repo.is_synced(&own) && repo.is_synced(&shared)
            })
            .await;
        if done.is_err() {
            break;
        }
        // Acknowledged: the server's reply carried these heads.
        let mut list = acked.lock().expect("acked");
        for id in [own, shared] {
            for head in sync.repo.record(&id).expect("doc").heads() {
                list.push((id, head));
            }
        }
    }
    phone.repo = sync.disconnect().await;
    phone
}

/// Every acknowledged change is in the database file.
fn check_on_disk(dir: &Path, acked: &Acked) -> usize {
    let storage =
        SqliteStorage::open(&dir.join("saksi.sqlite3")).expect("database opens after SIGKILL");
    let list = acked.lock().expect("acked").clone();
    let mut docs: std::collections::HashMap<DocumentId, Automerge> = Default::default();
    for (id, _) in &list {
        if !docs.contains_key(id) {
            let bytes = storage.chunks(id).expect("chunks").concat();
            docs.insert(*id, Automerge::load(&bytes).expect("stored document loads"));
        }
    }
    for (id, hash) in &list {
        assert!(
            docs[id].get_change_by_hash(hash).is_some(),
            "acknowledged change {hash} of {id} lost"
        );
    }
    storage.close();
    list.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s6_sigkill_during_heavy_sync_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("dir");
    let logs = tempfile::tempdir().expect("log dir");
    let log = logs.path().join("server.log");
    let case = process::seed(dir.path(), &["sophea", "vanna", "dara"]);

    // Round 0: phones sign in, create their records and the shared one.
    let server = start(dir.path(), &log);
    let mut phones = Vec::new();
    let shared = DocumentId::from_bytes(random_16());
    for (i, name) in ["sophea", "vanna", "dara"].into_iter().enumerate() {
        let session = server
            .client
            .login(name, PASSWORD, "phone")
            .await
            .expect("login");
        let editor = session.editor();
        let mut repo = Repo::new(format!("{name}-phone").into(), random_16());
        let own = repo.create(
            RecordKind::CourtObservation,
            &case,
            &editor,
            at(1),
            random_16(),
        );
        if i == 0 {
            let made = repo.create(
                RecordKind::CourtObservation,
                &case,
                &editor,
                at(1),
                *shared.as_bytes(),
            );
            assert_eq!(made, shared);
        } else {
            repo.request(shared);
        }
        let mut sync = session.sync(repo).await.expect("connect");
        sync.sync_until(WAIT, |r, _| {
            r.is_synced(&own) && r.record(&shared).is_some_and(|d| !d.is_empty())
        })
        .await
        .expect("set up");
        phones.push(Phone {
            session,
            repo: sync.disconnect().await,
            own,
            shared,
            edits: 0,
        });
    }
    kill(server);

    let acked: Acked = Arc::default();
    let mut checked = 0;
    for round in 0..ROUNDS {
        let server = start(dir.path(), &log);
        let mut tasks = Vec::new();
        for phone in phones.drain(..) {
            tasks.push(tokio::spawn(work(
                phone,
                server.client.clone(),
                acked.clone(),
            )));
        }
        // Let them work, then kill at a random moment (100-900 ms).
        let delay = 100 + u64::from(random_16()[0]) * 800 / 255;
        tokio::time::sleep(Duration::from_millis(delay)).await;
        let client = server.client.clone();
        kill(server);
        for t in tasks {
            phones.push(t.await.expect("phone task"));
        }
        checked = check_on_disk(dir.path(), &acked);
        assert!(checked > 0 || round < 2, "the phones made progress");
        drop(client);
    }

    // Finally: restart, and every phone converges with no manual step.
    let server = start(dir.path(), &log);
    let mut syncs = Vec::new();
    let tokens: Vec<String> = phones.iter().map(|p| p.session.token.clone()).collect();
    for mut phone in phones {
        phone.session.client = server.client.clone();
        let mut sync = phone.session.sync(phone.repo).await.expect("reconnect");
        sync.sync_all(WAIT).await.expect("resynced");
        syncs.push(sync);
    }
    // Exchange until every phone has every other phone's changes to the shared record.
    let deadline = tokio::time::Instant::now() + WAIT;
    let heads = loop {
        for sync in &mut syncs {
            // Drain what the server forwarded meanwhile (a short wait ends a quiet connection).
            let _ = sync
                .sync_until(Duration::from_millis(300), |_, _| false)
                .await;
        }
        let heads: Vec<_> = syncs
            .iter()
            .map(|s| {
                let mut h = s.repo.record(&shared).expect("shared").heads();
                h.sort();
                h
            })
            .collect();
        if heads.windows(2).all(|w| w[0] == w[1]) || tokio::time::Instant::now() > deadline {
            break heads;
        }
    };
    assert!(
        heads.windows(2).all(|w| w[0] == w[1]),
        "converged: {heads:?}"
    );
    let narrative = syncs[0]
        .repo
        .record(&shared)
        .expect("shared")
        .field("narrative")
        .expect("field")
        .expect("value")
        .display();
    for name in ["sophea", "vanna", "dara"] {
        assert!(
            narrative.contains(&format!("<{name} 1>")),
            "{name}'s first edit kept"
        );
    }
    kill(server);

    // The server's own log, at debug level, over all these rounds: ids and counts only.
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(text.contains("document created"), "the log was captured");
    // The password, and what the phones typed (field values and narrative tokens).
    for secret in [PASSWORD, "លេខ", "[sophea", "<vanna"] {
        assert!(!text.contains(secret), "the log contains `{secret}`");
    }
    for token in tokens {
        assert!(!text.contains(&token), "the log contains a device token");
    }
    eprintln!("S6: {ROUNDS} SIGKILL rounds, {checked} acknowledged changes verified on disk");
}
