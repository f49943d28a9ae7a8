//! Interop with a real automerge-repo peer: the Rust `samod` crate, connected over the same
//! TLS WebSocket with a bearer token, creates and edits a record by writing the document shape
//! `saksi-shared` defines, and reads one a Saksi client wrote.

use std::convert::Infallible;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::{SinkExt as _, StreamExt as _};
use saksi_client::Client;
use saksi_client::tokio_tungstenite;
use saksi_server::accounts::random_16;
use saksi_shared::automerge::transaction::Transactable as _;
use saksi_shared::automerge::{Automerge, ObjType, ROOT, ReadDoc as _};
use saksi_shared::catalogue::RecordKind;
use saksi_shared::record::FieldInput;
use saksi_shared::{DocumentId, FieldValue, Role};
use saksi_testkit::at;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::helpers::{TestServer, WAIT};

/// Dials the Saksi server for samod: TLS WebSocket, bearer token at the upgrade.
struct SaksiDialer {
    client: Client,
    token: String,
}

impl samod::Dialer for SaksiDialer {
    type Error = Infallible;

    fn url(&self) -> samod::Url {
        samod::Url::parse("wss://localhost/sync").expect("static url")
    }

    fn connect(
        &self,
    ) -> BoxFuture<'static, Result<samod::Transport, samod::DialError<Self::Error>>> {
        let (client, auth) = (self.client.clone(), format!("Bearer {}", self.token));
        Box::pin(async move {
            let socket = client
                .open_socket("/sync", &[("Authorization", &auth)])
                .await
                .map_err(|e| samod::DialError::TransientFailure(Box::new(e)))?;
            let (sink, stream) = socket.into_inner().split();
            let stream = stream.filter_map(|m| async move {
                match m {
                    Ok(WsMessage::Binary(b)) => Some(Ok(b.to_vec())),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                }
            });
            let sink = sink.with(|bytes: Vec<u8>| async move {
                Ok::<_, tokio_tungstenite::tungstenite::Error>(WsMessage::Binary(bytes.into()))
            });
            Ok(samod::Transport::new(Box::pin(stream), Box::pin(sink)))
        })
    }
}

pub(crate) async fn samod_repo(server: &TestServer, user: &str) -> samod::Repo {
    let session = server.login(user).await;
    let repo = samod::Repo::build_tokio().load().await;
    let dialer = repo
        .dial(
            samod::BackoffConfig::default(),
            Arc::new(SaksiDialer {
                client: server.client.clone(),
                token: session.token,
            }),
        )
        .expect("dial");
    tokio::time::timeout(WAIT, dialer.established())
        .await
        .expect("in time")
        .expect("handshake with the Saksi server");
    repo
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samod_writes_and_reads_saksi_records() {
    let server = TestServer::start().await;
    server.user("sophea", Role::Monitor);
    server.user("vanna", Role::Monitor);
    let case = server.case("Interop case", &["sophea", "vanna"]);

    // samod creates a court observation with plain automerge calls, following the documented
    // shape (README: "Document shape").
    let peer = samod_repo(&server, "sophea").await;
    let mut doc = Automerge::new();
    doc.transact(|tx| {
        tx.put(ROOT, "kind", "court_observation")?;
        tx.put(ROOT, "schema_version", 1u64)?;
        tx.put(ROOT, "case", case.to_string())?;
        tx.put(ROOT, "created_by", "sophea")?;
        tx.put(ROOT, "created_at", 1_700_000_000_000i64)?;
        tx.put(ROOT, "status", "draft")?;
        let fields = tx.put_object(ROOT, "fields", ObjType::Map)?;
        tx.put(&fields, "court", "តុលាការខេត្តសៀមរាប")?;
        let narrative = tx.put_object(&fields, "narrative", ObjType::Text)?;
        tx.splice_text(&narrative, 0, 0, "សវនាការបានពន្យារពេល។")?;
        let judges = tx.put_object(&fields, "judges", ObjType::List)?;
        tx.insert(&judges, 0, "Judge K.")?;
        tx.put_object(ROOT, "review", ObjType::List)?;
        Ok::<_, saksi_shared::automerge::AutomergeError>(())
    })
    .expect("document written");
    let handle = peer.create(doc).await.expect("created in samod");
    let id: DocumentId = handle
        .document_id()
        .to_string()
        .parse()
        .expect("same id format");

    // A Saksi client in the team reads it.
    let (vanna, mut phone) = server.phone("vanna").await;
    phone.repo.request(id);
    phone
        .sync_until(WAIT, |repo, _| {
            repo.record(&id)
                .is_some_and(|r| r.field("court").ok().flatten().is_some())
        })
        .await
        .expect("the samod record reached a Saksi client");
    let view = phone
        .repo
        .record(&id)
        .expect("doc")
        .view()
        .expect("a valid record");
    assert_eq!(view.created_by, "sophea");
    assert_eq!(
        view.fields.get("court"),
        Some(&FieldValue::Text("តុលាការខេត្តសៀមរាប".into()))
    );
    assert_eq!(
        view.fields.get("narrative"),
        Some(&FieldValue::Text("សវនាការបានពន្យារពេល។".into()))
    );

    // samod edits it further; the edit arrives live.
    handle.with_document(|doc| {
        doc.transact(|tx| {
            let (_, fields) = tx.get(ROOT, "fields")?.expect("fields");
            tx.put(&fields, "prosecutor", "ព្រះរាជអាជ្ញា ស.")?;
            Ok::<_, saksi_shared::automerge::AutomergeError>(())
        })
        .expect("edit");
    });
    phone
        .sync_until(WAIT, |repo, _| {
            repo.record(&id)
                .is_some_and(|r| r.field("prosecutor").ok().flatten().is_some())
        })
        .await
        .expect("samod's edit arrived");

    // And samod reads a record a Saksi client wrote.
    let editor = vanna.editor();
    let mine = phone.repo.create(
        RecordKind::CourtObservation,
        &case,
        &editor,
        at(2_000),
        random_16(),
    );
    phone
        .repo
        .edit(&mine, |r| {
            r.set_field(
                "case_number",
                FieldInput::Text("០៤២/២០២៦".into()),
                &editor,
                at(2_100),
            )
        })
        .expect("doc")
        .expect("edit");
    phone.sync_all(WAIT).await.expect("stored");
    let found = tokio::time::timeout(
        WAIT,
        peer.find(mine.to_string().parse().expect("samod parses Saksi ids")),
    )
    .await
    .expect("in time")
    .expect("repo running")
    .expect("samod finds the Saksi record");
    let case_number = found.with_document(|doc| {
        let (_, fields) = doc.get(ROOT, "fields").expect("read").expect("fields");
        doc.get(&fields, "case_number")
            .expect("read")
            .and_then(|(v, _)| v.into_string().ok())
    });
    assert_eq!(case_number.as_deref(), Some("០៤២/២០២៦"));
    peer.stop().await;
    server.stop().await;
}
