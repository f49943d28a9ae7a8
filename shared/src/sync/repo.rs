//! [`Repo`]: a client's documents over one connection to a server: the handshake, `request`
//! / `sync` / `doc-unavailable` / refusals, and what to send next.

use std::collections::{BTreeMap, HashMap};

use automerge::ActorId;

use super::doc::DocSync;
use super::gate::AcceptAll;
use super::wire::SyncError;
use crate::catalogue::RecordKind;
use crate::id::DocumentId;
use crate::protocol::{Message, PROTOCOL_VERSION, PeerId, PeerMetadata, ProtocolError};
use crate::record::{Editor, Record, RecordError};
use crate::time::Timestamp;

/// Something the application should know after [`Repo::receive`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The handshake finished: the server's peer id.
    Connected { server: PeerId },
    /// A document received changes from the server.
    DocumentChanged(DocumentId),
    /// The server does not have the document or will not share it (the same answer).
    DocumentUnavailable(DocumentId),
    /// The record was destroyed (purged or discarded) and is refused for ever: the repo has
    /// dropped it; the application deletes what it stored of it.
    DocumentWithdrawn(DocumentId),
    /// The server refused local changes to a document. They stay on this device.
    ChangesRefused {
        document: DocumentId,
        message: String,
    },
    /// The server reported an error and will close the connection.
    ServerError(String),
}

/// Why [`Repo::receive`] failed; the connection should be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepoError {
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error("the server sent `{0}` before the handshake finished")]
    NotConnected(&'static str),
    #[error("the server selected protocol version `{0}`")]
    WrongVersion(String),
    #[error("unexpected `{0}` message from the server")]
    Unexpected(&'static str),
    #[error("sync of {document}: {error}")]
    Sync {
        document: DocumentId,
        error: SyncError,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DocState {
    /// Exists locally; not yet announced on this connection.
    Idle,
    /// A `request` or `sync` went out on this connection.
    Syncing,
    /// The server said it does not have it.
    Unavailable,
    /// The server refused changes to it; not synced again until the next connection.
    Refused,
}

#[derive(Debug)]
struct DocEntry {
    sync: DocSync,
    state: DocState,
    /// Something may need sending (local edit or incoming message).
    dirty: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Connection {
    Closed,
    AwaitingPeer,
    Ready { server: PeerId },
}

/// A client's documents and its sync with one server.
#[derive(Debug)]
pub struct Repo {
    peer_id: PeerId,
    storage_id: Option<String>,
    actor: ActorId,
    docs: BTreeMap<DocumentId, DocEntry>,
    connection: Connection,
    /// Persisted sync states per document, from the last time the server was seen.
    saved_states: HashMap<DocumentId, Vec<u8>>,
}

impl Repo {
    /// `peer_id` names this tab or process on the wire; `actor` (16 random bytes, passed in) is
    /// the automerge actor used for this device's edits.
    pub fn new(peer_id: PeerId, actor: [u8; 16]) -> Self {
        Repo {
            peer_id,
            storage_id: None,
            actor: ActorId::from(actor),
            docs: BTreeMap::new(),
            connection: Connection::Closed,
            saved_states: HashMap::new(),
        }
    }

    /// Advertise a storage id, so the server keeps sync state across reconnects.
    pub fn set_storage_id(&mut self, storage_id: String) {
        self.storage_id = Some(storage_id);
    }

    pub fn actor(&self) -> &ActorId {
        &self.actor
    }

    pub fn peer_id(&self) -> &str {
        &self.peer_id
    }

    pub fn is_connected(&self) -> bool {
        matches!(self.connection, Connection::Ready { .. })
    }

    /// Creates a record locally; it syncs when a connection is up. `id_bytes` are 16 random
    /// bytes for the document id.
    pub fn create(
        &mut self,
        kind: RecordKind,
        case: &DocumentId,
        editor: &Editor,
        now: Timestamp,
        id_bytes: [u8; 16],
    ) -> DocumentId {
        let id = DocumentId::from_bytes(id_bytes);
        let case = if kind == RecordKind::Case { id } else { *case };
        let record = Record::create(kind, &case, self.actor.clone(), editor, now);
        self.insert(id, record);
        id
    }

    /// Adds a document with a fresh sync state, to be announced on the next connection.
    fn insert(&mut self, id: DocumentId, record: Record) {
        self.docs.insert(
            id,
            DocEntry {
                sync: DocSync::new(record),
                state: DocState::Idle,
                dirty: true,
            },
        );
    }

    /// Adds a document loaded from local storage, with its persisted sync state if any.
    pub fn add_document(
        &mut self,
        id: DocumentId,
        bytes: &[u8],
        sync_state: Option<&[u8]>,
    ) -> Result<(), RecordError> {
        let record = Record::load(bytes, self.actor.clone())?;
        self.insert(id, record);
        if let Some(state) = sync_state {
            self.saved_states.insert(id, state.to_vec());
        }
        Ok(())
    }

    /// Asks the server for a document this device does not have yet.
    pub fn request(&mut self, id: DocumentId) {
        if !self.docs.contains_key(&id) {
            self.insert(id, Record::empty(self.actor.clone()));
        }
    }

    /// Forgets a document locally (it stays on the server).
    pub fn remove(&mut self, id: &DocumentId) -> Option<Record> {
        self.saved_states.remove(id);
        self.docs.remove(id).map(|e| e.sync.into_record())
    }

    pub fn documents(&self) -> impl Iterator<Item = &DocumentId> {
        self.docs.keys()
    }

    pub fn record(&self, id: &DocumentId) -> Option<&Record> {
        self.docs.get(id).map(|e| e.sync.record())
    }

    /// Edits a record; the change is sent on the next [`Repo::take_outgoing`].
    pub fn edit<T>(&mut self, id: &DocumentId, f: impl FnOnce(&mut Record) -> T) -> Option<T> {
        let entry = self.docs.get_mut(id)?;
        entry.dirty = true;
        Some(f(entry.sync.record_mut()))
    }

    /// The persistable sync state of a document with the current server.
    pub fn sync_state(&self, id: &DocumentId) -> Option<Vec<u8>> {
        match &self.connection {
            Connection::Ready { server } => self.docs.get(id)?.sync.peer_state(server),
            _ => self.saved_states.get(id).cloned(),
        }
    }

    /// Whether the server is known to have every local change of the document.
    pub fn is_synced(&self, id: &DocumentId) -> bool {
        match &self.connection {
            Connection::Ready { server } => self
                .docs
                .get(id)
                .is_some_and(|e| e.sync.peer_in_sync(server)),
            _ => false,
        }
    }

    /// Documents the server refused changes to on this connection.
    pub fn refused(&self) -> impl Iterator<Item = &DocumentId> {
        self.docs
            .iter()
            .filter(|(_, e)| e.state == DocState::Refused)
            .map(|(id, _)| id)
    }

    /// Starts a connection: returns the `join` frame to send first.
    pub fn connect(&mut self) -> Vec<u8> {
        self.connection = Connection::AwaitingPeer;
        Message::Join {
            sender_id: self.peer_id.clone(),
            supported_protocol_versions: vec![PROTOCOL_VERSION.to_owned()],
            metadata: Some(PeerMetadata {
                storage_id: self.storage_id.clone(),
                is_ephemeral: self.storage_id.is_none(),
            }),
        }
        .encode()
    }

    /// The connection went away. Sync states are kept in their persistable form, so the next
    /// connection resumes from what both sides were known to share.
    pub fn disconnected(&mut self) {
        if let Connection::Ready { server } = &self.connection {
            for (id, entry) in &mut self.docs {
                if let Some(state) = entry.sync.remove_peer(server) {
                    self.saved_states.insert(*id, state);
                }
            }
        }
        for entry in self.docs.values_mut() {
            entry.state = DocState::Idle;
            entry.dirty = true;
        }
        self.connection = Connection::Closed;
    }

    /// Handles one frame from the server.
    pub fn receive(&mut self, frame: &[u8]) -> Result<Vec<Event>, RepoError> {
        let message = Message::decode(frame)?;
        let mut events = Vec::new();
        match (&self.connection, message) {
            (
                Connection::AwaitingPeer,
                Message::Peer {
                    sender_id,
                    selected_protocol_version,
                    ..
                },
            ) => {
                if selected_protocol_version != PROTOCOL_VERSION {
                    return Err(RepoError::WrongVersion(selected_protocol_version));
                }
                for (id, entry) in &mut self.docs {
                    let saved = self.saved_states.get(id).map(Vec::as_slice);
                    entry.sync.add_peer(&sender_id, saved);
                    entry.state = DocState::Idle;
                    entry.dirty = true;
                }
                events.push(Event::Connected {
                    server: sender_id.clone(),
                });
                self.connection = Connection::Ready { server: sender_id };
            }
            (
                _,
                Message::Error {
                    message,
                    document_id: Some(document),
                    ..
                },
            ) => {
                if message == crate::served::WITHDRAWN {
                    // Destroyed by a coordinator: nothing of it is kept or sent again (an edit
                    // made offline since is dropped with it, and never retried).
                    self.remove(&document);
                    events.push(Event::DocumentWithdrawn(document));
                } else {
                    if let Some(entry) = self.docs.get_mut(&document) {
                        entry.state = DocState::Refused;
                    }
                    events.push(Event::ChangesRefused { document, message });
                }
            }
            (_, Message::Error { message, .. }) => events.push(Event::ServerError(message)),
            (
                Connection::Ready { server },
                Message::Sync {
                    document_id, data, ..
                },
            )
            | (
                Connection::Ready { server },
                Message::Request {
                    document_id, data, ..
                },
            ) => {
                let server = server.clone();
                if !self.docs.contains_key(&document_id) {
                    self.insert(document_id, Record::empty(self.actor.clone()));
                }
                let entry = self.docs.get_mut(&document_id).expect("inserted above");
                if !entry.sync.has_peer(&server) {
                    entry.sync.add_peer(&server, None);
                }
                let received =
                    entry
                        .sync
                        .receive(&server, &data, &mut AcceptAll)
                        .map_err(|error| RepoError::Sync {
                            document: document_id,
                            error,
                        })?;
                if entry.state != DocState::Refused {
                    entry.state = DocState::Syncing;
                }
                entry.dirty = true;
                if !received.applied.is_empty() {
                    events.push(Event::DocumentChanged(document_id));
                }
            }
            (Connection::Ready { .. }, Message::DocUnavailable { document_id, .. }) => {
                if let Some(entry) = self.docs.get_mut(&document_id) {
                    entry.state = DocState::Unavailable;
                }
                events.push(Event::DocumentUnavailable(document_id));
            }
            (
                Connection::Ready { .. },
                Message::Ephemeral { .. }
                | Message::RemoteHeadsChanged { .. }
                | Message::RemoteSubscriptionChange { .. },
            ) => {}
            (Connection::Ready { .. }, Message::Leave { .. }) => {
                self.disconnected();
            }
            (Connection::Ready { .. }, other) => {
                return Err(RepoError::Unexpected(other.type_name()));
            }
            (_, other) => return Err(RepoError::NotConnected(other.type_name())),
        }
        Ok(events)
    }

    /// Frames to send now: sync messages for documents with something new.
    pub fn take_outgoing(&mut self) -> Vec<Vec<u8>> {
        let Connection::Ready { server } = &self.connection else {
            return Vec::new();
        };
        let mut frames = Vec::new();
        for (id, entry) in &mut self.docs {
            if !entry.dirty {
                continue;
            }
            entry.dirty = false;
            if matches!(entry.state, DocState::Refused | DocState::Unavailable) {
                continue;
            }
            let Some(data) = entry.sync.generate(server) else {
                continue;
            };
            let message = if entry.state == DocState::Idle && entry.sync.record().is_empty() {
                Message::Request {
                    sender_id: self.peer_id.clone(),
                    target_id: server.clone(),
                    document_id: *id,
                    data,
                }
            } else {
                Message::Sync {
                    sender_id: self.peer_id.clone(),
                    target_id: server.clone(),
                    document_id: *id,
                    data,
                }
            };
            entry.state = DocState::Syncing;
            frames.push(message.encode());
        }
        frames
    }

    /// The number of documents with local changes the server is not known to have.
    pub fn unsynced_count(&self) -> usize {
        self.docs
            .keys()
            .filter(|id| {
                self.docs
                    .get(*id)
                    .is_some_and(|e| !e.sync.record().is_empty())
                    && !self.is_synced(id)
            })
            .count()
    }
}
