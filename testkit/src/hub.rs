//! An in-process sync hub for deterministic multi-peer tests.
//!
//! [`Hub`] plays the server's part without sockets, storage or threads. It holds no policy of
//! its own: each document is a [`ServedDocument`], the very code the server's document tasks
//! run (read check, creation, write policy, batching), with [`Tuning::IMMEDIATE`] so that every
//! message is answered at once. The hub only does what the server's connection and storage
//! layers do: the `join` handshake, who is on each connection (a [`Principal`] from its teams),
//! frames in and out, and a store that always succeeds. Tests drive it frame by frame, in any
//! order they like, so sync orderings can be explored exhaustively or at random.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use saksi_shared::Timestamp;
use saksi_shared::automerge::ActorId;
use saksi_shared::catalogue::RecordKind;
use saksi_shared::id::DocumentId;
use saksi_shared::policy::{Principal, Refusal};
use saksi_shared::protocol::{Message, PROTOCOL_VERSION, PeerId, PeerMetadata};
use saksi_shared::record::{Editor, Record, RecordError};
use saksi_shared::served::{
    Effect, Loaded, PeerInfo, PeerMessage, ServedDocument, SharedBindings, Tuning,
};
use saksi_shared::workflow::Role;

/// A connection's index in the hub.
pub type ConnId = usize;

#[derive(Debug)]
struct Conn {
    editor: Editor,
    peer: Option<PeerId>,
    outbox: Vec<Vec<u8>>,
    closed: bool,
}

/// An in-process stand-in for the server's sync endpoint (see the module docs).
#[derive(Debug)]
pub struct Hub {
    peer_id: PeerId,
    docs: BTreeMap<DocumentId, ServedDocument>,
    cases: HashSet<DocumentId>,
    members: HashMap<String, HashSet<DocumentId>>,
    bindings: SharedBindings,
    /// Sync states saved when a connection left, per device and document (as the server keeps
    /// them): a reconnecting device resumes from its own.
    sync_states: HashMap<(saksi_shared::DeviceId, DocumentId), Vec<u8>>,
    conns: Vec<Conn>,
    refusals: Vec<(DocumentId, Refusal)>,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    pub fn new() -> Self {
        Hub {
            peer_id: "hub".into(),
            docs: BTreeMap::new(),
            cases: HashSet::new(),
            members: HashMap::new(),
            bindings: SharedBindings::default(),
            sync_states: HashMap::new(),
            conns: Vec::new(),
            refusals: Vec::new(),
        }
    }

    fn stored(&self, id: DocumentId, record: Record) -> ServedDocument {
        ServedDocument::new(
            id,
            self.peer_id.clone(),
            Tuning::IMMEDIATE,
            Some(Loaded {
                record,
                snapshot: None,
                uncompacted: 0,
            }),
        )
    }

    /// Creates a case document on the hub, as an admin would.
    pub fn create_case(&mut self, id_bytes: [u8; 16], now: Timestamp) -> DocumentId {
        let id = DocumentId::from_bytes(id_bytes);
        let admin = Editor::new("admin", "hub", Role::Admin);
        let mut actor = [0xad; 16];
        actor[..4].copy_from_slice(&(self.cases.len() as u32).to_be_bytes());
        let record = Record::create(RecordKind::Case, &id, ActorId::from(actor), &admin, now);
        let doc = self.stored(id, record);
        self.docs.insert(id, doc);
        self.cases.insert(id);
        id
    }

    /// Adds a stored document (bytes from [`Record::save`]), as a server does when it loads
    /// what it stored earlier, possibly written by an older version.
    pub fn load_document(&mut self, id: DocumentId, bytes: &[u8]) -> Result<(), RecordError> {
        let record = Record::load(bytes, ActorId::from([0xee; 16]))?;
        let meta = record.meta().ok_or(RecordError::NotARecord("kind"))?;
        if meta.kind == RecordKind::Case {
            self.cases.insert(id);
        }
        let doc = self.stored(id, record);
        self.docs.insert(id, doc);
        Ok(())
    }

    pub fn add_member(&mut self, user: &str, case: DocumentId) {
        self.members
            .entry(user.to_owned())
            .or_default()
            .insert(case);
    }

    /// The stored record (not one a connection is still creating).
    pub fn record(&self, id: &DocumentId) -> Option<&Record> {
        self.docs.get(id).and_then(ServedDocument::record)
    }

    /// Every refusal so far, oldest first.
    pub fn refusals(&self) -> &[(DocumentId, Refusal)] {
        &self.refusals
    }

    /// Opens a connection for a signed-in editor.
    pub fn connect(&mut self, editor: &Editor) -> ConnId {
        self.conns.push(Conn {
            editor: editor.clone(),
            peer: None,
            outbox: Vec::new(),
            closed: false,
        });
        self.conns.len() - 1
    }

    /// Closes a connection; frames not yet taken are dropped, as on a real network.
    pub fn disconnect(&mut self, conn: ConnId) {
        let c = &mut self.conns[conn];
        c.closed = true;
        c.outbox.clear();
        c.peer = None;
        let ids: Vec<DocumentId> = self.docs.keys().copied().collect();
        for id in ids {
            if let Some(doc) = self.docs.get_mut(&id) {
                doc.peer_left(conn as u64);
            }
            self.perform(id);
        }
    }

    pub fn take_outgoing(&mut self, conn: ConnId) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.conns[conn].outbox)
    }

    fn principal(&self, editor: &Editor) -> Principal {
        let cases = if editor.role.reviews() {
            self.cases.clone()
        } else {
            self.members
                .get(&editor.who.user)
                .cloned()
                .unwrap_or_default()
        };
        Principal::of(editor, cases)
    }

    /// Handles one frame from a connection.
    pub fn deliver(&mut self, conn: ConnId, frame: &[u8]) {
        if self.conns[conn].closed {
            return;
        }
        let message = match Message::decode(frame) {
            Ok(m) => m,
            Err(e) => {
                self.error(conn, format!("malformed message: {e}"));
                return;
            }
        };
        match message {
            Message::Join {
                sender_id,
                supported_protocol_versions,
                ..
            } => {
                if !supported_protocol_versions
                    .iter()
                    .any(|v| v == PROTOCOL_VERSION)
                {
                    self.error(conn, "unsupported protocol version".into());
                    return;
                }
                let reply = Message::Peer {
                    sender_id: self.peer_id.clone(),
                    target_id: sender_id.clone(),
                    selected_protocol_version: PROTOCOL_VERSION.to_owned(),
                    metadata: Some(PeerMetadata {
                        storage_id: None,
                        is_ephemeral: false,
                    }),
                };
                let c = &mut self.conns[conn];
                c.peer = Some(sender_id);
                c.outbox.push(reply.encode());
            }
            Message::Request {
                document_id, data, ..
            } => self.sync(conn, document_id, data, true),
            Message::Sync {
                document_id, data, ..
            } => self.sync(conn, document_id, data, false),
            _ => {}
        }
    }

    fn error(&mut self, conn: ConnId, message: String) {
        let c = &mut self.conns[conn];
        c.outbox.push(
            Message::Error {
                sender_id: Some(self.peer_id.clone()),
                target_id: c.peer.clone(),
                message,
                document_id: None,
            }
            .encode(),
        );
    }

    fn sync(&mut self, conn: ConnId, id: DocumentId, data: Vec<u8>, is_request: bool) {
        let Some(peer_id) = self.conns[conn].peer.clone() else {
            self.error(conn, "sync before join".into());
            return;
        };
        let editor = self.conns[conn].editor.clone();
        let message = PeerMessage {
            peer: PeerInfo {
                conn: conn as u64,
                peer_id,
                device: editor.who.device.clone(),
            },
            who: Arc::new(self.principal(&editor)),
            data,
            is_request,
        };
        let peer_id = self.peer_id.clone();
        self.docs
            .entry(id)
            .or_insert_with(|| ServedDocument::new(id, peer_id, Tuning::IMMEDIATE, None));
        let mut messages = vec![message];
        while !messages.is_empty() {
            let doc = self.docs.get_mut(&id).expect("inserted above");
            let saved: HashMap<u64, Option<Vec<u8>>> = doc
                .resuming(&messages)
                .into_iter()
                .map(|(c, device)| (c, self.sync_states.get(&(device, id)).cloned()))
                .collect();
            messages = doc.receive(messages, &saved, &self.bindings);
            self.perform(id);
        }
        if let Some(doc) = self.docs.get_mut(&id) {
            doc.flush(Duration::ZERO, |_| 0);
        }
        self.perform(id);
    }

    /// The record is destroyed (as a purge does on the server): its peers are told, and it is
    /// refused for ever.
    pub fn withdraw(&mut self, id: DocumentId) {
        let peer_id = self.peer_id.clone();
        self.docs
            .entry(id)
            .or_insert_with(|| ServedDocument::withdrawn(id, peer_id, Tuning::IMMEDIATE))
            .withdraw();
        self.perform(id);
    }

    /// A purge is waiting for the record (`true`: only reviewers are served it), or was undone.
    pub fn set_hidden(&mut self, id: DocumentId, hidden: bool) {
        if let Some(doc) = self.docs.get_mut(&id) {
            doc.set_hidden(hidden);
        }
        self.perform(id);
    }

    /// Performs a document's effects: frames into outboxes, stores that succeed at once.
    fn perform(&mut self, id: DocumentId) {
        let Some(doc) = self.docs.get_mut(&id) else {
            return;
        };
        while let Some(effect) = doc.next_effect() {
            match effect {
                Effect::Send { conn, frame } => {
                    if let Some(c) = self.conns.get_mut(conn as usize)
                        && !c.closed
                    {
                        c.outbox.push(frame);
                    }
                }
                Effect::Store(_) => doc.stored(true),
                Effect::Refused { refusal, .. } => self.refusals.push((id, refusal)),
                Effect::SaveSyncState { device, state } => {
                    self.sync_states.insert((device, id), state);
                }
                Effect::Compact { .. } => doc.compacted(true),
                // Nothing is stored apart from the document in memory: there is nothing to go
                // back to.
                Effect::Reload => doc.reload(None),
            }
        }
    }
}
