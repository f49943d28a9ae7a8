//! Sync through the server: scenario S2 (two monitors edit the same observation offline, as
//! `saksi_testkit::s2` writes it), and
//! flow control towards a phone that stops answering.

use saksi_shared::catalogue::RecordKind;
use saksi_shared::record::FieldInput;
use saksi_shared::sync::Event;
use saksi_shared::{FieldValue, Role};
use saksi_testkit::at;

use crate::helpers::{self, S2, TestServer, WAIT};

fn text(s: &str) -> FieldInput {
    FieldInput::Text(s.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s2_two_monitors_offline_merge_and_a_coordinator_resolves() {
    let server = TestServer::start().await;
    server.user("kosal", Role::Coordinator);
    let S2 {
        id,
        phones,
        editors,
        ..
    } = helpers::s2(&server, "sophea", "vanna", "ករណី ក-១២").await;
    let mut phones = phones.into_iter();
    let (mut p1, mut p2) = (
        phones.next().expect("first"),
        phones.next().expect("second"),
    );
    let v1 = p1.repo.record(&id).expect("doc").view().expect("view");
    let v2 = p2.repo.record(&id).expect("doc").view().expect("view");
    assert_eq!(v1.heads, v2.heads, "converged");
    assert_eq!(v1, v2);
    saksi_testkit::s2::check_merged(&v1, &editors[0], &editors[1]);

    // The server's index knows about the conflict.
    let row = server
        .storage()
        .document(&id)
        .expect("read")
        .expect("stored");
    assert!(row.has_conflicts);

    // A coordinator resolves it from a third device; both phones receive the resolution.
    let (s3, mut p3) = server.phone("kosal").await;
    let editor3 = s3.editor();
    p3.repo.request(id);
    p3.sync_until(WAIT, |repo, _| {
        repo.record(&id)
            .is_some_and(|r| r.view().is_ok_and(|v| !v.conflicts.is_empty()))
    })
    .await
    .expect("coordinator sees the conflict");
    p3.repo
        .edit(&id, |r| {
            r.resolve("counsel_present", text("no"), &editor3, server.clock_now())
        })
        .expect("doc")
        .expect("resolve");
    p3.sync_all(WAIT).await.expect("resolution stored");
    for phone in [&mut p1, &mut p2] {
        phone
            .sync_until(WAIT, |repo, _| {
                repo.record(&id)
                    .and_then(|r| r.view().ok())
                    .is_some_and(|v| v.conflicts.is_empty())
            })
            .await
            .expect("resolution reached the phone");
        let view = phone.repo.record(&id).expect("doc").view().expect("view");
        assert_eq!(
            view.fields.get("counsel_present"),
            Some(&FieldValue::Text("no".into()))
        );
        assert!(
            view.review
                .iter()
                .any(|e| e.action == "resolve" && e.author == "kosal")
        );
    }
    assert!(
        !p1.events
            .iter()
            .any(|e| matches!(e, Event::ChangesRefused { .. })),
        "nothing was refused: {:?}",
        p1.events
    );
    server.stop().await;
}

/// Flow control: a phone that was sent a change is sent nothing more until it answers. One
/// that stays silent (its answers lost, or it is too busy to send) still gets later changes,
/// once the document has been quiet for a moment, not never.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_that_stops_answering_still_gets_later_changes() {
    let server = TestServer::start().await;
    server.user("sophea", Role::Monitor);
    server.user("vanna", Role::Monitor);
    let case = server.case("ករណី ខ-៣", &["sophea", "vanna"]);
    let (s1, mut writer) = server.phone("sophea").await;
    let editor = s1.editor();
    let id = writer.repo.create(
        RecordKind::CourtObservation,
        &case,
        &editor,
        at(1_000),
        saksi_server::accounts::random_16(),
    );
    writer.sync_all(WAIT).await.expect("created");
    let (_s2, mut reader) = server.phone("vanna").await;
    reader.repo.request(id);
    reader
        .sync_until_received(WAIT, &id)
        .await
        .expect("the reader has the record");

    let narrative = |repo: &saksi_shared::sync::Repo| {
        repo.record(&id)
            .and_then(|r| r.field("narrative").ok().flatten())
            .map(|v| v.display())
    };
    // From here the reader only listens: it applies what arrives but never answers.
    let listen_until = async |reader: &mut saksi_client::SyncClient, want: &str| {
        let deadline = tokio::time::Instant::now() + WAIT;
        while narrative(&reader.repo).as_deref() != Some(want) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame = reader
                .socket
                .recv_timeout(left)
                .await
                .expect("the change arrives in time")
                .expect("the connection stays open");
            reader.repo.receive(&frame).expect("a valid frame");
        }
    };
    writer
        .repo
        .edit(&id, |r| r.set_text("narrative", "សាក្សី", &editor, at(2_000)))
        .expect("doc")
        .expect("edit");
    writer.sync_all(WAIT).await.expect("stored");
    listen_until(&mut reader, "សាក្សី").await;

    // The reader has not answered the first change, so the second is held back, then sent
    // anyway once the document has been quiet for two seconds.
    writer
        .repo
        .edit(&id, |r| {
            r.set_text("narrative", "សាក្សី ២", &editor, at(3_000))
        })
        .expect("doc")
        .expect("edit");
    let sent = tokio::time::Instant::now();
    writer.sync_all(WAIT).await.expect("stored");
    listen_until(&mut reader, "សាក្សី ២").await;
    let waited = sent.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(1_500),
        "held back while unanswered, but arrived after {waited:?}"
    );
    server.stop().await;
}

/// A sync message longer than one WebSocket fragment (the server splits long messages into
/// 16 kB fragments) reaches another phone whole: a 60,000-character Khmer narrative (180 kB as
/// UTF-8, some 40 kB compressed), fetched by a second phone in one message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_record_reaches_another_phone_whole() {
    let server = TestServer::start().await;
    server.user("sophea", Role::Monitor);
    server.user("vanna", Role::Monitor);
    let case = server.case("ករណី គ-៧", &["sophea", "vanna"]);
    let (s1, mut writer) = server.phone("sophea").await;
    let editor = s1.editor();
    let id = writer.repo.create(
        RecordKind::CourtObservation,
        &case,
        &editor,
        at(1_000),
        saksi_server::accounts::random_16(),
    );
    // Varied text: automerge compresses a repeated phrase to almost nothing.
    let mut seed: u64 = 7;
    let long: String = (0..60_000)
        .map(|_| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            char::from_u32(0x1780 + (seed >> 33) as u32 % 0x23).expect("a Khmer letter")
        })
        .collect();
    writer
        .repo
        .edit(&id, |r| r.set_text("narrative", &long, &editor, at(2_000)))
        .expect("doc")
        .expect("edit");
    writer.sync_all(WAIT).await.expect("stored");

    let (_s2, mut reader) = server.phone("vanna").await;
    reader.repo.request(id);
    reader
        .sync_until(WAIT, |repo, _| {
            repo.record(&id)
                .and_then(|r| r.field("narrative").ok().flatten())
                .is_some()
        })
        .await
        .expect("the reader has the narrative");
    let got = reader
        .repo
        .record(&id)
        .and_then(|r| r.field("narrative").ok().flatten())
        .map(|v| v.display());
    assert_eq!(got.as_deref(), Some(long.as_str()));
    server.stop().await;
}

/// Flow control: a document has changes out, unanswered, to at most 16 peers at a time; the
/// others wait their turn (in a 1,000-phone storm this cut the server's peak memory by a third
/// and the time to converge by half). Forty phones with an edit each, all sent at once, must
/// still each end up with all forty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_phones_than_a_document_serves_at_once_all_get_every_edit() {
    const PHONES: usize = 40;
    let server = TestServer::start().await;
    let names: Vec<String> = (0..PHONES).map(|i| format!("monitor-{i}")).collect();
    for name in &names {
        server.user(name, Role::Monitor);
    }
    let members: Vec<&str> = names.iter().map(String::as_str).collect();
    let case = server.case("ករណី ឃ-៤០", &members);
    let (s0, mut creator) = server.phone(&names[0]).await;
    let id = creator.repo.create(
        RecordKind::CourtObservation,
        &case,
        &s0.editor(),
        at(1_000),
        saksi_server::accounts::random_16(),
    );
    creator.sync_all(WAIT).await.expect("created");
    drop(creator);

    let comments = move |repo: &saksi_shared::sync::Repo| {
        repo.record(&id).and_then(|r| r.view().ok()).map_or(0, |v| {
            v.review.iter().filter(|e| e.action == "comment").count()
        })
    };
    let mut phones = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let (session, mut phone) = server.phone(name).await;
        phone.repo.request(id);
        phone
            .sync_until_received(WAIT, &id)
            .await
            .expect("the phone has the record");
        // Made without syncing: it goes up with everyone else's below.
        phone
            .repo
            .edit(&id, |r| {
                r.comment(
                    &format!("សាក្សី {i}"),
                    &session.editor(),
                    at(2_000 + i as i64),
                )
            })
            .expect("doc")
            .expect("comment");
        phones.push(phone);
    }
    let syncing: Vec<_> = phones
        .into_iter()
        .map(|mut phone| {
            tokio::spawn(async move {
                phone
                    .sync_until(WAIT, |repo, _| comments(repo) == PHONES)
                    .await
                    .map(|_| comments(&phone.repo))
            })
        })
        .collect();
    for (i, task) in syncing.into_iter().enumerate() {
        let got = task.await.expect("task");
        assert_eq!(got.ok(), Some(PHONES), "phone {i} has every comment");
    }
    server.stop().await;
}
