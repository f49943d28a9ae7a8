//! The red-team findings of issue 18, each through a real server over TLS: hand-made automerge
//! changes that would make a record unloadable, a member removed from a case while connected,
//! a monitor's step on old heads undoing an approval.

use saksi_client::SyncSocket;
use saksi_server::accounts::random_16;
use saksi_shared::automerge::legacy::{Key, ObjectId, Op, OpId, OpType};
use saksi_shared::automerge::{
    ActorId, Automerge, Change, ExpandedChange, ROOT, ReadDoc as _, ScalarValue,
};
use saksi_shared::catalogue::RecordKind;
use saksi_shared::protocol::Message;
use saksi_shared::record::{FieldInput, Record};
use saksi_shared::sync::{Repo, changes_message};
use saksi_shared::{DocumentId, Role, Status};
use saksi_testkit::at;

use crate::helpers::{TestServer, WAIT, joined};

/// Sends one change in a sync message and returns the `error` the server answers with.
async fn offer(socket: &mut SyncSocket, peer: &str, id: DocumentId, change: &Change) -> String {
    let data = changes_message(std::slice::from_ref(change), vec![change.hash()]);
    let frame = Message::Sync {
        sender_id: peer.to_owned().into(),
        target_id: "server".into(),
        document_id: id,
        data,
    };
    socket.send(frame.encode()).await.expect("send");
    loop {
        let frame = socket
            .recv_timeout(WAIT)
            .await
            .expect("recv")
            .expect("an answer");
        if let Ok(Message::Error { message, .. }) = Message::decode(&frame) {
            return message;
        }
    }
}

/// The server's copy of the document.
async fn server_doc(server: &TestServer, id: DocumentId) -> Automerge {
    server
        .state
        .documents
        .read(&server.state, id, |r| r.map(|r| r.doc().clone()))
        .await
        .flatten()
        .expect("the server has the record")
}

/// The stored record loads from its chunks, and its view and history read.
fn still_loads(server: &TestServer, id: DocumentId) {
    let chunks = server.storage().chunks(&id).expect("chunks");
    let record = Record::load(&chunks.concat(), ActorId::from([9; 16])).expect("loads");
    record.view().expect("a record view");
    assert!(!record.history().is_empty());
}

/// A change by a new actor over `doc`: correct counters and dependencies unless changed.
fn change_over(doc: &Automerge, ops: Vec<Op>, adjust: impl FnOnce(&mut ExpandedChange)) -> Change {
    let max_op = doc
        .get_changes(&[])
        .iter()
        .map(|c| c.max_op())
        .max()
        .unwrap_or(0);
    let mut expanded = ExpandedChange {
        operations: ops,
        actor_id: ActorId::from(random_16()),
        hash: None,
        seq: 1,
        start_op: std::num::NonZeroU64::new(max_op + 1).expect("non-zero"),
        time: 5_000,
        message: None,
        deps: doc.get_heads(),
        extra_bytes: Vec::new(),
        author: None,
    };
    adjust(&mut expanded);
    Change::from(expanded)
}

fn fields_id(doc: &Automerge) -> OpId {
    let (_, fields) = doc.get(ROOT, "fields").expect("read").expect("fields");
    let text = fields.to_string();
    let (counter, actor) = text.split_once('@').expect("an op id");
    let actor: Vec<u8> = (0..actor.len() / 2)
        .map(|i| u8::from_str_radix(&actor[2 * i..2 * i + 2], 16).expect("hex"))
        .collect();
    OpId::new(counter.parse().expect("counter"), &ActorId::from(actor))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_changes_are_refused_and_the_record_still_loads() {
    let server = TestServer::start().await;
    server.user("sophea", Role::Monitor);
    server.user("vanna", Role::Monitor);
    let case = server.case("ករណី ក-១២", &["sophea", "vanna"]);
    let (sophea, mut phone) = server.phone("sophea").await;
    let id = phone.repo.create(
        RecordKind::CourtObservation,
        &case,
        &sophea.editor(),
        at(1_000),
        random_16(),
    );
    phone
        .repo
        .edit(&id, |r| {
            r.set_field(
                "court",
                FieldInput::Text("សាក្សី".into()),
                &sophea.editor(),
                at(1_100),
            )
        })
        .expect("doc")
        .expect("edit");
    phone.sync_all(WAIT).await.expect("stored");
    let doc = server_doc(&server, id).await;
    let heads = doc.get_heads();

    let vanna = server.login("vanna").await;
    let (mut socket, peer) = joined(&vanna).await;
    let ghost = OpId::new(9_999, &ActorId::from(random_16()));
    let put_court = |pred: Vec<OpId>| Op {
        action: OpType::Put(ScalarValue::Str("សាក្សី".into())),
        obj: ObjectId::Id(fields_id(&doc)),
        key: Key::Map("court".into()),
        pred: pred.into(),
        insert: false,
    };
    let cases: Vec<(&str, Change, &str)> = vec![
        (
            "an empty change with startOp 1",
            change_over(&doc, Vec::new(), |c| {
                c.start_op = std::num::NonZeroU64::new(1).expect("1")
            }),
            "Malformed",
        ),
        (
            "an empty change with no dependencies",
            change_over(&doc, Vec::new(), |c| c.deps.clear()),
            "Malformed",
        ),
        (
            "a put whose predecessor does not exist",
            change_over(&doc, vec![put_court(vec![ghost.clone()])], |_| {}),
            "Malformed",
        ),
        (
            "a put into an object that does not exist",
            change_over(
                &doc,
                vec![Op {
                    obj: ObjectId::Id(ghost.clone()),
                    ..put_court(Vec::new())
                }],
                |_| {},
            ),
            "Malformed",
        ),
    ];
    for (name, change, code) in cases {
        // Each refusal ends the socket's service of the document: a fresh socket per case.
        let message = offer(&mut socket, &peer, id, &change).await;
        assert!(message.contains(code), "{name}: {message}");
        let (s, _) = joined(&vanna).await;
        socket = s;
        assert_eq!(server_doc(&server, id).await.get_heads(), heads, "{name}");
        still_loads(&server, id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_member_gets_no_more_updates_and_cannot_send_an_empty_change() {
    let server = TestServer::start().await;
    server.user("sophea", Role::Monitor);
    server.user("vanna", Role::Monitor);
    let case = server.case("ករណី ក-១២", &["sophea", "vanna"]);
    let (sophea, mut writer) = server.phone("sophea").await;
    let id = writer.repo.create(
        RecordKind::CourtObservation,
        &case,
        &sophea.editor(),
        at(1_000),
        random_16(),
    );
    writer.sync_all(WAIT).await.expect("stored");

    // vanna opens the record, then is removed from the case while connected.
    let vanna = server.login("vanna").await;
    let mut reader = vanna
        .sync(Repo::new("vanna-tab".into(), random_16()))
        .await
        .expect("sync");
    reader.repo.request(id);
    reader
        .sync_until_received(WAIT, &id)
        .await
        .expect("vanna has the record");
    // And a record of her own, which she may still read (not write) once removed.
    let own = reader.repo.create(
        RecordKind::CourtObservation,
        &case,
        &vanna.editor(),
        at(1_500),
        random_16(),
    );
    reader.sync_all(WAIT).await.expect("stored");
    let (user, _) = server
        .storage()
        .user_by_name("vanna")
        .expect("lookup")
        .expect("vanna");
    saksi_server::admin::set_member(
        &**server.storage(),
        saksi_server::admin::Operator::CLI,
        &case,
        &user,
        false,
        server.clock_now(),
    )
    .expect("removed");
    // Within the access watch's period (2 s), the open socket stops serving the record.
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    writer
        .repo
        .edit(&id, |r| {
            r.set_field(
                "prosecutor",
                FieldInput::Text("សាក្សី".into()),
                &sophea.editor(),
                at(9_000),
            )
        })
        .expect("doc")
        .expect("edit");
    writer.sync_all(WAIT).await.expect("stored");
    let _ = reader
        .sync_until(std::time::Duration::from_secs(5), |_, _| false)
        .await;
    let prosecutor = reader
        .repo
        .record(&id)
        .and_then(|r| r.field("prosecutor").ok().flatten());
    assert_eq!(
        prosecutor, None,
        "a removed member received a change written after"
    );

    // An empty change to her own record: she may read it, but no longer write to it.
    let doc = server_doc(&server, own).await;
    let (mut socket, peer) = joined(&vanna).await;
    let empty = change_over(&doc, Vec::new(), |_| {});
    let message = offer(&mut socket, &peer, own, &empty).await;
    assert!(message.contains("NotAllowed"), "{message}");
    assert_eq!(server_doc(&server, own).await.get_heads(), doc.get_heads());
    still_loads(&server, own);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_approval_survives_a_monitor_step_on_old_heads() {
    let server = TestServer::start().await;
    server.user("sophea", Role::Monitor);
    server.user("chenda", Role::Coordinator);
    let case = server.case("ករណី ក-១២", &["sophea"]);
    let (sophea, mut phone) = server.phone("sophea").await;
    let editor = sophea.editor();
    let id = phone.repo.create(
        RecordKind::CourtObservation,
        &case,
        &editor,
        at(1_000),
        random_16(),
    );
    let created = phone.repo.record(&id).expect("record").save();
    phone
        .repo
        .edit(&id, |r| {
            r.transition(Status::Submitted, None, &editor, at(2_000))
        })
        .expect("doc")
        .expect("submitted");
    phone.sync_all(WAIT).await.expect("stored");
    let _ = phone.disconnect().await;

    // The coordinator approves.
    let (chenda, mut console) = server.phone("chenda").await;
    console.repo.request(id);
    console
        .sync_until_received(WAIT, &id)
        .await
        .expect("has it");
    console
        .repo
        .edit(&id, |r| {
            r.transition(Status::Approved, None, &chenda.editor(), at(3_000))
        })
        .expect("doc")
        .expect("approved");
    console.sync_all(WAIT).await.expect("stored");

    // A second phone of sophea's, still at the draft it was created as: many edits (a high
    // counter), then it submits, a monitor's step from what it saw.
    let mut stale = Repo::new("stale".into(), random_16());
    stale.add_document(id, &created, None).expect("add");
    for i in 0..50 {
        stale
            .edit(&id, |r| {
                r.set_field(
                    "court",
                    FieldInput::Text(format!("សាក្សី {i}")),
                    &editor,
                    at(4_000 + i),
                )
            })
            .expect("doc")
            .expect("edit");
    }
    stale
        .edit(&id, |r| {
            r.transition(Status::Submitted, None, &editor, at(9_000))
        })
        .expect("doc")
        .expect("submitted offline");
    let mut again = sophea.sync(stale).await.expect("connects");
    again.sync_all(WAIT).await.expect("synced");
    let status = server
        .state
        .documents
        .read(&server.state, id, |r| r.and_then(|r| r.view().ok()))
        .await
        .flatten()
        .expect("view");
    assert_eq!(status.status, Status::Approved, "the approval stands");
    assert_eq!(
        status.fields.get("court").map(|v| v.display()),
        Some("សាក្សី 49".into()),
        "the monitor's edits are kept"
    );
    still_loads(&server, id);
}
