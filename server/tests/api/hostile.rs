//! The hostile input catalogue, one test per case over one fixture ([`Hostile`]): each case
//! gets a clear error, stores nothing, and a bystander (another user of the server) keeps
//! syncing after it.

use std::time::Duration;

use saksi_client::{Session, SyncSocket};
use saksi_server::accounts::random_16;
use saksi_shared::Who;
use saksi_shared::automerge::transaction::{CommitOptions, Transactable as _};
use saksi_shared::automerge::{AutomergeError, ObjType, ROOT, ReadDoc as _};
use saksi_shared::catalogue::RecordKind;
use saksi_shared::cbor::Cbor;
use saksi_shared::policy::NOT_A_MEMBER;
use saksi_shared::protocol::Message;
use saksi_shared::record::{Editor, FieldInput, Record};
use saksi_shared::sync::{Event, Repo};
use saksi_shared::{DocumentId, Role};
use saksi_testkit::at;
use tokio::io::AsyncWriteExt as _;

use crate::helpers::{TestServer, WAIT, joined};

/// Reads frames until an `error` arrives.
async fn expect_error(socket: &mut SyncSocket) -> (String, Option<DocumentId>) {
    loop {
        let frame = socket
            .recv_timeout(WAIT)
            .await
            .expect("recv")
            .expect("an error before the close");
        if let Ok(Message::Error {
            message,
            document_id,
            ..
        }) = Message::decode(&frame)
        {
            return (message, document_id);
        }
    }
}

async fn expect_closed(socket: &mut SyncSocket) {
    let end = tokio::time::timeout(WAIT, async {
        loop {
            match socket.recv().await {
                Ok(Some(_)) => continue,
                _ => return,
            }
        }
    })
    .await;
    assert!(end.is_ok(), "the server closed the connection");
}

/// Sends one frame on a fresh joined socket and expects an `error` then the close.
async fn frame_is_refused(session: &Session, frame: Vec<u8>, expect: &str) {
    let (mut s, _) = joined(session).await;
    s.send(frame).await.expect("send");
    let (message, _) = expect_error(&mut s).await;
    assert!(
        message.contains(expect),
        "`{message}` should contain `{expect}`"
    );
    expect_closed(&mut s).await;
}

fn sync_frame(peer: &str, doc: DocumentId, data: Vec<u8>) -> Vec<u8> {
    Message::Sync {
        sender_id: peer.to_owned().into(),
        target_id: "server".into(),
        document_id: doc,
        data,
    }
    .encode()
}

/// A map with a raw `documentId` string (for ids the typed encoder cannot express).
fn raw_sync(peer: &str, document_id: &str) -> Vec<u8> {
    Cbor::Map(vec![
        (Cbor::text("type"), Cbor::text("sync")),
        (Cbor::text("senderId"), Cbor::text(peer)),
        (Cbor::text("targetId"), Cbor::text("server")),
        (Cbor::text("documentId"), Cbor::text(document_id)),
        (Cbor::text("data"), Cbor::Bytes(vec![0x42])),
    ])
    .encode()
}

struct Bystander {
    session: Session,
    repo: Option<Repo>,
    id: DocumentId,
    edits: i64,
}

impl Bystander {
    /// Connects, edits its record, syncs it, checks the server stored it, disconnects.
    async fn still_syncs(&mut self, server: &TestServer) {
        self.edits += 1;
        let n = self.edits;
        let editor = self.session.editor();
        let mut repo = self.repo.take().expect("repo");
        repo.edit(&self.id, |r| {
            r.set_field(
                "case_number",
                FieldInput::Text(format!("ករណី {n}")),
                &editor,
                at(10_000 + n),
            )
        })
        .expect("doc")
        .expect("edit");
        let mut phone = self.session.sync(repo).await.expect("bystander connects");
        phone.sync_all(WAIT).await.expect("bystander keeps syncing");
        self.repo = Some(phone.disconnect().await);
        let stored = server
            .state
            .documents
            .read(&server.state, self.id, |r| {
                r.and_then(|r| r.field("case_number").ok().flatten())
            })
            .await
            .flatten();
        assert_eq!(stored.map(|v| v.display()), Some(format!("ករណី {n}")));
    }
}

/// Makes a tampered change on `record` with automerge's own API and the sender's attribution.
fn tamper(
    record: &mut Record,
    editor: &Editor,
    f: impl FnOnce(
        &mut saksi_shared::automerge::transaction::Transaction<'_>,
    ) -> Result<(), AutomergeError>,
) {
    let note = serde_json::to_string(&Who {
        user: editor.who.user.clone(),
        device: editor.who.device.clone(),
    })
    .expect("json");
    record
        .doc_mut()
        .transact_with(
            |_| CommitOptions::default().with_message(note).with_time(5_000),
            f,
        )
        .map(|_| ())
        .map_err(|f| f.error)
        .expect("tampered locally");
}

/// Syncs `repo` (whose record was tampered with) and expects a refusal naming `id`.
async fn expect_refused(session: &Session, repo: Repo, id: DocumentId) -> String {
    let mut phone = session.sync(repo).await.expect("connects");
    phone
        .sync_until(WAIT, |_, events| {
            events
                .iter()
                .any(|e| matches!(e, Event::ChangesRefused { document, .. } if *document == id))
        })
        .await
        .expect("refusal reported");
    phone
        .events
        .iter()
        .find_map(|e| match e {
            Event::ChangesRefused { message, .. } => Some(message.clone()),
            _ => None,
        })
        .expect("message")
}

/// The number of stored documents and chunks, to show an attack stored nothing.
fn stored(server: &TestServer) -> (usize, usize) {
    let docs = server
        .storage()
        .documents(&saksi_server::storage::DocumentFilter {
            include_cases: true,
            ..Default::default()
        })
        .expect("list");
    let chunks = docs
        .iter()
        .map(|d| server.storage().chunks(&d.id).expect("chunks").len())
        .sum();
    (docs.len(), chunks)
}

/// The fixture of every case: a server with small limits, a bystander (Vanna, who keeps
/// syncing her record after each case), a record of another case Mallory may not touch, and
/// Mallory, signed in, who tries one hostile thing per test.
struct Hostile {
    server: TestServer,
    mallory: Session,
    editor: Editor,
    /// The bystander's record (in Mallory's case).
    id: DocumentId,
    /// A record of the other case.
    secret: DocumentId,
    case: DocumentId,
    other_case: DocumentId,
    bystander: Bystander,
    /// Documents and chunks stored before the case.
    baseline: (usize, usize),
}

impl Hostile {
    async fn new() -> Hostile {
        let server = TestServer::start_in(tempfile::tempdir().expect("dir"), |c| {
            c.max_frame_bytes = 64 * 1024;
            c.max_documents_per_connection = 3;
            c.idle_connection_seconds = 5;
        })
        .await;
        server.user("vanna", Role::Monitor);
        server.user("mallory", Role::Monitor);
        server.user("other", Role::Monitor);
        let case = server.case("Case H", &["vanna", "mallory"]);
        let other_case = server.case("Case O", &["other"]);

        let vanna = server.login("vanna").await;
        let mut repo = Repo::new("bystander".into(), random_16());
        let id = repo.create(
            RecordKind::CourtObservation,
            &case,
            &vanna.editor(),
            at(1_000),
            random_16(),
        );
        let mut bystander = Bystander {
            session: vanna,
            repo: Some(repo),
            id,
            edits: 0,
        };
        bystander.still_syncs(&server).await;

        // A record in another case that Mallory may not touch.
        let other = server.login("other").await;
        let mut other_repo = Repo::new("other".into(), random_16());
        let secret = other_repo.create(
            RecordKind::CourtObservation,
            &other_case,
            &other.editor(),
            at(1_000),
            random_16(),
        );
        let mut p = other.sync(other_repo).await.expect("connects");
        p.sync_all(WAIT).await.expect("stored");
        let _ = p.disconnect().await;

        let mallory = server.login("mallory").await;
        let editor = mallory.editor();
        let baseline = stored(&server);
        Hostile {
            server,
            mallory,
            editor,
            id,
            secret,
            case,
            other_case,
            bystander,
            baseline,
        }
    }

    /// A record Mallory may write to, synced, and her repo holding it; the baseline moves on.
    async fn mallorys_record(&mut self) -> (DocumentId, Repo) {
        let mut r = Repo::new("mallory-phone".into(), random_16());
        let doc = r.create(
            RecordKind::CourtObservation,
            &self.case,
            &self.editor,
            at(1_000),
            random_16(),
        );
        let mut p = self.mallory.sync(r).await.expect("connects");
        p.sync_all(WAIT).await.expect("stored");
        let repo = p.disconnect().await;
        self.bystander.still_syncs(&self.server).await;
        self.baseline = stored(&self.server);
        (doc, repo)
    }

    /// After the case: nothing was stored, and the bystander still syncs.
    async fn unchanged(mut self, case: &str) {
        assert_eq!(
            stored(&self.server),
            self.baseline,
            "`{case}` stored something"
        );
        self.bystander.still_syncs(&self.server).await;
        self.server.stop().await;
    }
}

type Tamper =
    fn(&mut saksi_shared::automerge::transaction::Transaction<'_>) -> Result<(), AutomergeError>;

/// A change the write policy refuses with `code`, made by Mallory on her own record with
/// automerge's own API.
async fn policy_refuses(name: &str, code: &str, f: Tamper) {
    let mut h = Hostile::new().await;
    let (record, mut repo) = h.mallorys_record().await;
    let editor = h.editor.clone();
    repo.edit(&record, |rec| tamper(rec, &editor, f))
        .expect("doc");
    let message = expect_refused(&h.mallory, repo, record).await;
    assert!(message.contains(code), "{name}: {message}");
    h.unchanged(name).await;
}

/// Not CBOR.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_cbor() {
    let h = Hostile::new().await;
    let Hostile { ref mallory, .. } = h;
    frame_is_refused(
        mallory,
        b"\xff\x00 definitely not cbor".to_vec(),
        "malformed message",
    )
    .await;
    h.unchanged("not CBOR").await;
}

/// CBOR array instead of a map.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cbor_array_instead_of_a_map() {
    let h = Hostile::new().await;
    let Hostile { ref mallory, .. } = h;
    frame_is_refused(
        mallory,
        Cbor::Array(vec![Cbor::Uint(1)]).encode(),
        "must be a CBOR map",
    )
    .await;
    h.unchanged("CBOR array instead of a map").await;
}

/// Map without a type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_without_a_type() {
    let h = Hostile::new().await;
    let Hostile { ref mallory, .. } = h;
    let frame = Cbor::Map(vec![(Cbor::text("senderId"), Cbor::text("x"))]).encode();
    frame_is_refused(mallory, frame, "no `type`").await;
    h.unchanged("map without a type").await;
}

/// Unknown message type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_message_type() {
    let h = Hostile::new().await;
    let Hostile { ref mallory, .. } = h;
    let frame = Cbor::Map(vec![(Cbor::text("type"), Cbor::text("teleport"))]).encode();
    frame_is_refused(mallory, frame, "unknown message type").await;
    h.unchanged("unknown message type").await;
}

/// Invalid UTF-8 in a text string.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf_8_in_a_text_string() {
    let h = Hostile::new().await;
    let Hostile { ref mallory, .. } = h;
    // {"type": <text with bytes C3 28>}
    let frame = vec![0xa1, 0x64, b't', b'y', b'p', b'e', 0x62, 0xc3, 0x28];
    frame_is_refused(mallory, frame, "UTF-8").await;
    h.unchanged("invalid UTF-8 in a text string").await;
}

/// Deeply nested CBOR.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_cbor() {
    let h = Hostile::new().await;
    let Hostile { ref mallory, .. } = h;
    let mut frame = vec![0xa1, 0x64, b't', b'y', b'p', b'e'];
    frame.extend(std::iter::repeat_n(0x81, 5_000));
    frame.push(0x00);
    frame_is_refused(mallory, frame, "nesting deeper").await;
    h.unchanged("deeply nested CBOR").await;
}

/// Truncated message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_message() {
    let h = Hostile::new().await;
    let Hostile {
        ref mallory, id, ..
    } = h;
    let full = sync_frame("p", id, vec![0x42; 64]);
    frame_is_refused(
        mallory,
        full[..full.len() / 2].to_vec(),
        "malformed message",
    )
    .await;
    h.unchanged("truncated message").await;
}

/// Required field with the wrong type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_field_with_the_wrong_type() {
    let h = Hostile::new().await;
    let Hostile { ref mallory, .. } = h;
    let frame = Cbor::Map(vec![
        (Cbor::text("type"), Cbor::text("sync")),
        (Cbor::text("senderId"), Cbor::Uint(7)),
    ])
    .encode();
    frame_is_refused(mallory, frame, "senderId").await;
    h.unchanged("required field with the wrong type").await;
}

/// Document id with a bad checksum.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_id_with_a_bad_checksum() {
    let h = Hostile::new().await;
    let Hostile { ref mallory, .. } = h;
    let mut bad = DocumentId::from_bytes([7; 16]).to_string();
    let last = bad.pop().expect("non-empty");
    bad.push(if last == 'a' { 'b' } else { 'a' });
    frame_is_refused(mallory, raw_sync("p", &bad), "invalid document id").await;
    h.unchanged("document id with a bad checksum").await;
}

/// A truncated document id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_document_id() {
    let h = Hostile::new().await;
    let Hostile { ref mallory, .. } = h;
    let short = DocumentId::from_bytes([1; 16]).to_string()[..10].to_owned();
    frame_is_refused(mallory, raw_sync("p", &short), "invalid document id").await;
    h.unchanged("a truncated document id").await;
}

/// Wrong protocol version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_protocol_version() {
    let h = Hostile::new().await;
    let Hostile { ref mallory, .. } = h;
    let mut s = mallory.socket().await.expect("socket");
    s.send(
        Message::Join {
            sender_id: "old-peer".into(),
            supported_protocol_versions: vec!["0".into(), "2".into()],
            metadata: None,
        }
        .encode(),
    )
    .await
    .expect("join");
    let (message, _) = expect_error(&mut s).await;
    assert_eq!(message, "unsupported protocol version");
    expect_closed(&mut s).await;
    h.unchanged("wrong protocol version").await;
}

/// Sync before join.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_before_join() {
    let h = Hostile::new().await;
    let Hostile {
        ref mallory, id, ..
    } = h;
    let mut s = mallory.socket().await.expect("socket");
    s.send(sync_frame("eager", id, vec![0x42, 0, 0, 0, 0]))
        .await
        .expect("send");
    let (message, _) = expect_error(&mut s).await;
    assert!(message.starts_with("expected join"), "{message}");
    expect_closed(&mut s).await;
    h.unchanged("sync before join").await;
}

/// A second join.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_join() {
    let h = Hostile::new().await;
    let Hostile { ref mallory, .. } = h;
    let (mut s, peer) = joined(mallory).await;
    s.send(
        Message::Join {
            sender_id: peer.into(),
            supported_protocol_versions: vec!["1".into()],
            metadata: None,
        }
        .encode(),
    )
    .await
    .expect("send");
    let (message, _) = expect_error(&mut s).await;
    assert_eq!(message, "already joined");
    expect_closed(&mut s).await;
    h.unchanged("a second join").await;
}

/// Text frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_frame() {
    let h = Hostile::new().await;
    let Hostile { ref mallory, .. } = h;
    let (mut s, _) = joined(mallory).await;
    s.send_text("{\"type\":\"join\"}").await.expect("send");
    let (message, _) = expect_error(&mut s).await;
    assert!(message.contains("binary"), "{message}");
    expect_closed(&mut s).await;
    h.unchanged("text frame").await;
}

/// Frame over the size limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_over_the_size_limit() {
    let h = Hostile::new().await;
    let Hostile { ref mallory, .. } = h;
    let (mut s, peer) = joined(mallory).await;
    // Refused on its header, before the rest is read: the connection may close while the
    // client is still writing the frame, and then the send itself fails.
    let sent = s
        .send(sync_frame(
            &peer,
            DocumentId::from_bytes(random_16()),
            vec![0x42; 100 * 1024],
        ))
        .await;
    if sent.is_ok() {
        expect_closed(&mut s).await;
    }
    h.unchanged("frame over the size limit").await;
}

/// Garbage automerge bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_automerge_bytes() {
    let h = Hostile::new().await;
    let Hostile { ref mallory, .. } = h;
    let (mut s, peer) = joined(mallory).await;
    let junk = DocumentId::from_bytes(random_16());
    s.send(sync_frame(
        &peer,
        junk,
        vec![0x42, 0xff, 0xff, 0xff, 0xff, 0x0f],
    ))
    .await
    .expect("send");
    let (message, doc) = expect_error(&mut s).await;
    assert_eq!(doc, Some(junk));
    assert!(message.starts_with("bad sync message"), "{message}");
    // Still serving: a request gets its normal answer.
    let unknown = DocumentId::from_bytes(random_16());
    s.send(
        Message::Request {
            sender_id: peer.into(),
            target_id: "server".into(),
            document_id: unknown,
            data: empty_sync_message(),
        }
        .encode(),
    )
    .await
    .expect("send");
    let answer = s.recv_timeout(WAIT).await.expect("recv").expect("answer");
    assert!(matches!(
        Message::decode(&answer),
        Ok(Message::DocUnavailable { document_id, .. }) if document_id == unknown
    ));
    h.unchanged("garbage automerge bytes").await;
}

/// Request for a document that never existed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_for_a_document_that_never_existed() {
    let h = Hostile::new().await;
    let Hostile { ref mallory, .. } = h;
    let (mut s, peer) = joined(mallory).await;
    let unknown = DocumentId::from_bytes(random_16());
    s.send(
        Message::Request {
            sender_id: peer.into(),
            target_id: "server".into(),
            document_id: unknown,
            data: empty_sync_message(),
        }
        .encode(),
    )
    .await
    .expect("send");
    let answer = s.recv_timeout(WAIT).await.expect("recv").expect("answer");
    assert!(matches!(
        Message::decode(&answer),
        Ok(Message::DocUnavailable { document_id, .. }) if document_id == unknown
    ));
    h.unchanged("request for a document that never existed")
        .await;
}

/// Too many documents on one connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_documents_on_one_connection() {
    let h = Hostile::new().await;
    let Hostile { ref mallory, .. } = h;
    let (mut s, peer) = joined(mallory).await;
    let docs: Vec<DocumentId> = (0..4)
        .map(|_| DocumentId::from_bytes(random_16()))
        .collect();
    for d in &docs {
        s.send(
            Message::Request {
                sender_id: peer.clone().into(),
                target_id: "server".into(),
                document_id: *d,
                data: empty_sync_message(),
            }
            .encode(),
        )
        .await
        .expect("send");
    }
    let mut unavailable = 0;
    let mut refused = None;
    while unavailable + usize::from(refused.is_some()) < 4 {
        let frame = s.recv_timeout(WAIT).await.expect("recv").expect("frame");
        match Message::decode(&frame).expect("decodes") {
            Message::DocUnavailable { .. } => unavailable += 1,
            Message::Error {
                message,
                document_id,
                ..
            } => {
                assert!(message.starts_with("too many documents"), "{message}");
                refused = document_id;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(refused, Some(docs[3]));
    h.unchanged("too many documents on one connection").await;
}

/// A new document that is not a record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_document_that_is_not_a_record() {
    let h = Hostile::new().await;
    let Hostile {
        ref mallory,
        ref editor,
        ..
    } = h;
    let mut r = Repo::new("m".into(), random_16());
    let junk = DocumentId::from_bytes(random_16());
    let mut record = Record::empty(saksi_shared::automerge::ActorId::from(random_16()));
    tamper(&mut record, editor, |tx| {
        tx.put(ROOT, "hello", "world").map(|_| ())
    });
    r.add_document(junk, &record.save(), None).expect("add");
    let message = expect_refused(mallory, r, junk).await;
    assert!(
        message.contains("OutsideSchema") || message.contains("IncompleteRecord"),
        "{message}"
    );
    h.unchanged("a new document that is not a record").await;
}

/// A record in a case the sender is not in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_in_a_case_the_sender_is_not_in() {
    let h = Hostile::new().await;
    let Hostile {
        ref mallory,
        ref editor,
        other_case,
        ..
    } = h;
    let mut r = Repo::new("m".into(), random_16());
    let doc = r.create(
        RecordKind::CourtObservation,
        &other_case,
        editor,
        at(1_000),
        random_16(),
    );
    let message = expect_refused(mallory, r, doc).await;
    assert!(message.contains("NotAllowed"), "{message}");
    assert!(message.contains(NOT_A_MEMBER), "{message}");
    h.unchanged("a record in a case the sender is not in").await;
}

/// Writing into an existing record of another case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writing_into_an_existing_record_of_another_case() {
    let h = Hostile::new().await;
    let Hostile {
        ref mallory,
        ref editor,
        secret,
        case,
        ..
    } = h;
    let mut r = Repo::new("m".into(), random_16());
    let mut record = Record::create(
        RecordKind::CourtObservation,
        &case,
        saksi_shared::automerge::ActorId::from(random_16()),
        editor,
        at(1_000),
    );
    record
        .set_field("court", FieldInput::Text("x".into()), editor, at(1_100))
        .expect("edit");
    r.add_document(secret, &record.save(), None).expect("add");
    // Exactly what an unknown id gets for a record the sender may not create there.
    let message = expect_refused(mallory, r, secret).await;
    assert!(message.contains("NotAllowed"), "{message}");
    assert!(message.contains(NOT_A_MEMBER), "{message}");
    h.unchanged("writing into an existing record of another case")
        .await;
}

/// An idle connection that answers nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_that_answers_nothing() {
    let h = Hostile::new().await;
    let Hostile {
        ref server,
        ref mallory,
        ..
    } = h;
    let stream = server_raw_tls(server).await;
    let (mut stream, _) = upgrade_raw(stream, &mallory.token).await;
    // Never write, never answer the server's pings: closed after the idle time (5 s).
    let started = tokio::time::Instant::now();
    let mut buf = [0u8; 1024];
    let outcome = tokio::time::timeout(Duration::from_secs(30), async {
        use tokio::io::AsyncReadExt as _;
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(outcome.is_ok(), "an idle connection is closed");
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "not before the idle time"
    );
    h.unchanged("an idle connection that answers nothing").await;
}

/// A slow-drip frame that never completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_drip_frame_that_never_completes() {
    let h = Hostile::new().await;
    let Hostile {
        ref server,
        ref mallory,
        ..
    } = h;
    let stream = server_raw_tls(server).await;
    let (mut stream, _) = upgrade_raw(stream, &mallory.token).await;
    // A binary frame header announcing 1 MiB, then a trickle, then silence.
    stream.write_all(&[0x82, 0xff]).await.expect("write");
    stream
        .write_all(&(1u64 << 20).to_be_bytes())
        .await
        .expect("write");
    stream
        .write_all(&[0, 0, 0, 0, 1, 2, 3])
        .await
        .expect("write");
    let started = tokio::time::Instant::now();
    let mut buf = [0u8; 1024];
    let outcome = tokio::time::timeout(Duration::from_secs(30), async {
        use tokio::io::AsyncReadExt as _;
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(outcome.is_ok(), "a stalled frame is cut off");
    assert!(started.elapsed() < Duration::from_secs(30));
    h.unchanged("a slow-drip frame that never completes").await;
}

/// A connection that sends but never reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_but_never_reads() {
    let h = Hostile::new().await;
    let Hostile {
        ref server,
        ref mallory,
        ..
    } = h;
    let stream = server_raw_tls(server).await;
    let (stream, _) = upgrade_raw(stream, &mallory.token).await;
    // Pings, each answered with a pong that is never read. Once the socket buffers are
    // full the server cannot write; it gives up after the idle time (5 s) and drops the
    // connection, rather than holding it (and its task) for as long as the client likes.
    let (_never_read, mut writer) = tokio::io::split(stream);
    let mut pings = Vec::new();
    for _ in 0..100 {
        // FIN + ping, masked, 125 bytes, an all-zero mask.
        pings.extend_from_slice(&[0x89, 0x80 | 125, 0, 0, 0, 0]);
        pings.extend_from_slice(&[b'p'; 125]);
    }
    let started = tokio::time::Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(60), async {
        while writer.write_all(&pings).await.is_ok() {}
    })
    .await;
    assert!(
        outcome.is_ok(),
        "a connection that does not read is dropped"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "not before the idle time"
    );
    h.unchanged("a connection that sends but never reads").await;
}

/// A huge field value: refused as `InvalidValue`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_field_value() {
    policy_refuses("a huge field value", "InvalidValue", |tx| {
        let (_, fields) = tx.get(ROOT, "fields")?.expect("fields");
        tx.put(&fields, "court", "ក".repeat(5_000)).map(|_| ())
    })
    .await;
}

/// A nested object inside a field: refused as `InvalidValue`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nested_object_inside_a_field() {
    policy_refuses("a nested object inside a field", "InvalidValue", |tx| {
        let (_, fields) = tx.get(ROOT, "fields")?.expect("fields");
        let inner = tx.put_object(&fields, "court", ObjType::Map)?;
        let deeper = tx.put_object(&inner, "a", ObjType::Map)?;
        tx.put(&deeper, "b", "c").map(|_| ())
    })
    .await;
}

/// A monitor approving: refused as `Workflow`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monitor_approving() {
    policy_refuses("a monitor approving", "Workflow", |tx| {
        tx.put(ROOT, "status", "approved").map(|_| ())
    })
    .await;
}

/// Changing the record's kind: refused as `Immutable`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_records_kind() {
    policy_refuses("changing the record's kind", "Immutable", |tx| {
        tx.put(ROOT, "kind", "family_statement").map(|_| ())
    })
    .await;
}

/// A review entry naming someone else: refused as `ReviewForgery`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_entry_naming_someone_else() {
    policy_refuses(
        "a review entry naming someone else",
        "ReviewForgery",
        |tx| {
            let (_, review) = tx.get(ROOT, "review")?.expect("review");
            let entry = tx.insert_object(&review, 0, ObjType::Map)?;
            tx.put(&entry, "author", "kosal")?;
            tx.put(&entry, "role", "coordinator")?;
            tx.put(&entry, "at", 5_000i64)?;
            tx.put(&entry, "action", "approve")?;
            tx.put(&entry, "text", "approved").map(|_| ())
        },
    )
    .await;
}

/// An unknown field: refused as `InvalidValue`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_field() {
    policy_refuses("an unknown field", "InvalidValue", |tx| {
        let (_, fields) = tx.get(ROOT, "fields")?.expect("fields");
        tx.put(&fields, "shoe_size", "42").map(|_| ())
    })
    .await;
}

/// A key outside the record shape: refused as `Immutable`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_outside_the_record_shape() {
    policy_refuses("a key outside the record shape", "Immutable", |tx| {
        tx.put(ROOT, "backdoor", true).map(|_| ())
    })
    .await;
}

/// A change under another device's actor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_under_another_devices_actor() {
    let mut h = Hostile::new().await;
    let (record, repo) = h.mallorys_record().await;
    let stolen: [u8; 16] = h
        .bystander
        .repo
        .as_ref()
        .expect("repo")
        .actor()
        .to_bytes()
        .try_into()
        .expect("16 bytes");
    let before = repo.record(&record).expect("doc").save();
    let mut forged = Repo::new("forger".into(), stolen);
    forged.add_document(record, &before, None).expect("add");
    forged
        .edit(&record, |r| {
            r.set_field(
                "prosecutor",
                FieldInput::Text("X".into()),
                &h.editor,
                at(6_000),
            )
        })
        .expect("doc")
        .expect("edit");
    let message = expect_refused(&h.mallory, forged, record).await;
    assert!(message.contains("ForgedAttribution"), "{message}");
    h.unchanged("a change under another device's actor").await;
}

/// A commit message naming another user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_message_naming_another_user() {
    let mut h = Hostile::new().await;
    let (record, repo) = h.mallorys_record().await;
    let before = repo.record(&record).expect("doc").save();
    let mut r = Repo::new("m2".into(), random_16());
    r.add_document(record, &before, None).expect("add");
    let impostor = Editor::new("vanna", h.editor.who.device.clone(), h.editor.role);
    r.edit(&record, |rec| {
        rec.set_field(
            "prosecutor",
            FieldInput::Text("Y".into()),
            &impostor,
            at(6_100),
        )
    })
    .expect("doc")
    .expect("edit");
    let message = expect_refused(&h.mallory, r, record).await;
    assert!(message.contains("ForgedAttribution"), "{message}");
    h.unchanged("a commit message naming another user").await;
}

/// An empty automerge sync message (what a peer without the document sends).
fn empty_sync_message() -> Vec<u8> {
    use saksi_shared::automerge::sync::SyncDoc as _;
    let doc = saksi_shared::automerge::Automerge::new();
    let mut state = saksi_shared::automerge::sync::State::new();
    doc.generate_sync_message(&mut state)
        .expect("a first message")
        .encode()
}

/// A raw TLS stream to the server.
async fn server_raw_tls(
    server: &TestServer,
) -> saksi_client::tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    server.client.raw_tls().await.expect("tls")
}

/// Sends a WebSocket upgrade request for `path` by hand (with a bearer token unless empty)
/// and returns everything the server answers until it closes the connection.
async fn raw_upgrade(server: &TestServer, path: &str, token: &str) -> String {
    use tokio::io::AsyncReadExt as _;
    let mut stream = server_raw_tls(server).await;
    let auth = if token.is_empty() {
        String::new()
    } else {
        format!("Authorization: Bearer {token}\r\n")
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{auth}\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(WAIT, stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the connection is closed after the answer");
    String::from_utf8(answer).expect("text")
}

/// Performs the WebSocket upgrade by hand and returns the stream for raw writes.
async fn upgrade_raw(
    mut stream: saksi_client::tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    token: &str,
) -> (
    saksi_client::tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    String,
) {
    use tokio::io::AsyncReadExt as _;
    let request = format!(
        "GET /sync HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {token}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).await.expect("read");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    (stream, head)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_hostile_requests() {
    let server = TestServer::start().await;
    server.user("sophea", Role::Monitor);
    let mut tested = Vec::new();
    // Path traversal on static files: the PWA is a fixed table of embedded files.
    for path in [
        "/../../../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/pkg/../../Cargo.toml",
        "/..%2f..%2fCargo.toml",
        "/index.html/../../server/src/main.rs",
        "//etc/passwd",
    ] {
        let res = server.client.get(path, None).await.expect("answer");
        assert!(
            res.status == 404 || res.status == 400,
            "{path}: {}",
            res.status
        );
        assert!(!res.text().contains("root:"), "{path}");
        assert!(!res.text().contains("[workspace]"), "{path}");
        tested.push(path);
    }
    // Malformed and oversized login bodies.
    let res = server
        .client
        .request(
            "POST",
            "/api/login",
            &[("Content-Type", "application/json")],
            Some(b"{\"username\": \"sophea\", \"password\": "),
        )
        .await
        .expect("answer");
    assert_eq!(res.status, 400);
    tested.push("truncated JSON login");
    let big = serde_json::json!({"username": "sophea", "password": "x".repeat(200_000), "device_name": "d"});
    let res = server
        .client
        .request(
            "POST",
            "/api/login",
            &[("Content-Type", "application/json")],
            Some(big.to_string().as_bytes()),
        )
        .await
        .expect("answer");
    assert!(res.status == 413 || res.status == 400, "{}", res.status);
    tested.push("oversized login body");
    // Garbage tokens.
    for token in ["", "x", &"A".repeat(5000), "../../etc"] {
        let res = server
            .client
            .get("/api/me", Some(token))
            .await
            .expect("answer");
        assert_eq!(res.status, 401, "{token:.20}");
    }
    tested.push("garbage bearer tokens");
    // A WebSocket upgrade without credentials: a whole 401 answer (written by the upgrade
    // path, not actix's dispatcher), with the security headers, and the connection closed.
    assert!(server.client.open_socket("/sync", &[]).await.is_err());
    let answer = raw_upgrade(&server, "/sync", "").await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("content-security-policy:"), "{answer}");
    assert!(answer.ends_with("}"), "the JSON error body: {answer}");
    tested.push("upgrade without credentials");
    // An upgrade to another path gets that path's answer.
    let token = server.login("sophea").await.token;
    let answer = raw_upgrade(&server, "/api/nowhere", &token).await;
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    tested.push("upgrade to another path");
    // `/sync` without the upgrade headers is not an upgrade, whatever the credentials.
    let res = server
        .client
        .get("/sync", Some(&token))
        .await
        .expect("answer");
    assert_eq!(res.status, 400);
    tested.push("sync without an upgrade");
    // Unknown API path: JSON 404, no-store.
    let res = server
        .client
        .get("/api/../api/records", None)
        .await
        .expect("answer");
    assert!(res.status == 401 || res.status == 404);
    let res = server
        .client
        .get("/api/nothing-here", None)
        .await
        .expect("answer");
    assert_eq!(res.status, 404);
    assert!(res.text().contains("not_found"));
    tested.push("unknown API path");
    assert!(tested.len() >= 12, "{tested:?}");
    server.stop().await;
}
