//! An in-process sync hub for deterministic multi-peer tests.
//!
//! [`Hub`] plays the server's part without sockets, storage or threads: it answers the
//! handshake, serves documents only to those who may read them, passes every incoming change
//! through the same [`PolicyGate`] the server uses, and forwards accepted changes to every other
//! connection that has the document open. Tests drive it frame by frame, in any order they
//! like, so sync orderings can be explored exhaustively or at random.

use std::collections::{BTreeMap, HashMap, HashSet};

use automerge::ActorId;

use crate::catalogue::RecordKind;
use crate::id::DocumentId;
use crate::policy::{PolicyGate, Principal, Refusal, RefusalCode, check_created};
use crate::protocol::{Message, PROTOCOL_VERSION, PeerMetadata};
use crate::record::{Editor, Millis, Record, RecordError};
use crate::sync::DocSync;
use crate::workflow::Role;

/// A connection's index in the hub.
pub type ConnId = usize;

#[derive(Debug)]
struct Conn {
    editor: Editor,
    peer: Option<String>,
    outbox: Vec<Vec<u8>>,
    open: HashSet<DocumentId>,
    refused: HashSet<DocumentId>,
    closed: bool,
}

/// An in-process stand-in for the server's sync endpoint (see the module docs).
#[derive(Debug)]
pub struct Hub {
    peer_id: String,
    docs: BTreeMap<DocumentId, DocSync>,
    cases: HashSet<DocumentId>,
    members: HashMap<String, HashSet<DocumentId>>,
    bindings: HashMap<ActorId, String>,
    conns: Vec<Conn>,
    /// Documents a connection started to create, not yet complete records.
    pending: HashMap<(ConnId, DocumentId), DocSync>,
    refusals: Vec<(DocumentId, Refusal)>,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

/// A document as the server keeps it: answering many peers from its change graph.
fn served(record: Record) -> DocSync {
    let mut doc = DocSync::new(record);
    doc.keep_changes();
    doc.verify_loads();
    doc
}

impl Hub {
    pub fn new() -> Self {
        Hub {
            peer_id: "hub".to_owned(),
            docs: BTreeMap::new(),
            cases: HashSet::new(),
            members: HashMap::new(),
            bindings: HashMap::new(),
            conns: Vec::new(),
            pending: HashMap::new(),
            refusals: Vec::new(),
        }
    }

    /// Creates a case document on the hub, as an admin would.
    pub fn create_case(&mut self, id_bytes: [u8; 16], now: Millis) -> DocumentId {
        let id = DocumentId::from_bytes(id_bytes);
        let admin = Editor {
            user: "admin".into(),
            device: "hub".into(),
            role: Role::Admin,
        };
        let mut actor = [0xad; 16];
        actor[..4].copy_from_slice(&(self.cases.len() as u32).to_be_bytes());
        let record = Record::create(RecordKind::Case, &id, ActorId::from(actor), &admin, now);
        self.docs.insert(id, served(record));
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
        self.docs.insert(id, served(record));
        Ok(())
    }

    pub fn add_member(&mut self, user: &str, case: DocumentId) {
        self.members
            .entry(user.to_owned())
            .or_default()
            .insert(case);
    }

    pub fn record(&self, id: &DocumentId) -> Option<&Record> {
        self.docs.get(id).map(DocSync::record)
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
            open: HashSet::new(),
            refused: HashSet::new(),
            closed: false,
        });
        self.conns.len() - 1
    }

    /// Closes a connection; frames not yet taken are dropped, as on a real network.
    pub fn disconnect(&mut self, conn: ConnId) {
        let c = &mut self.conns[conn];
        c.closed = true;
        c.outbox.clear();
        self.pending.retain(|(owner, _), _| *owner != conn);
        if let Some(peer) = c.peer.take() {
            for id in c.open.drain() {
                if let Some(doc) = self.docs.get_mut(&id) {
                    doc.remove_peer(&peer);
                }
            }
        }
    }

    pub fn take_outgoing(&mut self, conn: ConnId) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.conns[conn].outbox)
    }

    fn principal(&self, editor: &Editor) -> Principal {
        let cases = if editor.role.reviews() {
            self.cases.clone()
        } else {
            self.members.get(&editor.user).cloned().unwrap_or_default()
        };
        Principal {
            user: editor.user.clone(),
            device: editor.device.clone(),
            role: editor.role,
            cases,
        }
    }

    /// Handles one frame from a connection.
    pub fn deliver(&mut self, conn: ConnId, frame: &[u8]) {
        if self.conns[conn].closed {
            return;
        }
        let message = match Message::decode(frame) {
            Ok(m) => m,
            Err(e) => {
                self.error(conn, format!("malformed message: {e}"), None);
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
                    self.error(conn, "unsupported protocol version".into(), None);
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
            } => self.sync(conn, document_id, &data, true),
            Message::Sync {
                document_id, data, ..
            } => self.sync(conn, document_id, &data, false),
            _ => {}
        }
    }

    fn error(&mut self, conn: ConnId, message: String, document: Option<DocumentId>) {
        let c = &mut self.conns[conn];
        c.outbox.push(
            Message::Error {
                sender_id: Some(self.peer_id.clone()),
                target_id: c.peer.clone(),
                message,
                document_id: document,
            }
            .encode(),
        );
    }

    fn unavailable(&mut self, conn: ConnId, document: DocumentId) {
        let c = &mut self.conns[conn];
        let Some(peer) = c.peer.clone() else { return };
        c.outbox.push(
            Message::DocUnavailable {
                sender_id: self.peer_id.clone(),
                target_id: peer,
                document_id: document,
            }
            .encode(),
        );
    }

    fn sync(&mut self, conn: ConnId, id: DocumentId, data: &[u8], is_request: bool) {
        let Some(peer) = self.conns[conn].peer.clone() else {
            self.error(conn, "sync before join".into(), None);
            return;
        };
        if self.conns[conn].refused.contains(&id) {
            return;
        }
        let who = self.principal(&self.conns[conn].editor);
        let readable = self
            .docs
            .get(&id)
            .and_then(|d| d.record().meta())
            .map(|meta| who.may_read(&meta));
        let pending_key = (conn, id);
        let mut doc = match readable {
            Some(true) => self.docs.remove(&id).expect("looked up above"),
            // Unknown and forbidden documents get the same answers: unavailable to a request;
            // to a sync, the start of a new document private to this connection.
            _ if is_request && !self.pending.contains_key(&pending_key) => {
                self.unavailable(conn, id);
                return;
            }
            _ => self
                .pending
                .remove(&pending_key)
                .unwrap_or_else(|| served(Record::empty(ActorId::from([0xee; 16])))),
        };
        let is_new = readable != Some(true);
        if !doc.has_peer(&peer) {
            doc.add_peer(&peer, None);
        }
        let mut bindings = self.bindings.clone();
        let mut gate = PolicyGate {
            doc_id: id,
            who: &who,
            bindings: &mut bindings,
        };
        let received = match doc.receive(&peer, data, &mut gate) {
            Ok(r) => r,
            Err(e) => {
                if !is_new {
                    self.docs.insert(id, doc);
                }
                self.error(conn, format!("bad sync message: {e}"), Some(id));
                return;
            }
        };
        let refusal = match received.refused.first() {
            Some((_, refusal)) => Some(refusal.clone()),
            // A new document must be a complete record once its first changes are in; an
            // existing id the sender may not read is answered as an unknown one.
            None if is_new && !doc.record().is_empty() => {
                check_created(&id, doc.record().doc()).err().or_else(|| {
                    readable.is_some().then(|| Refusal {
                        code: RefusalCode::NotAllowed,
                        detail: crate::policy::NOT_A_MEMBER.into(),
                    })
                })
            }
            None => None,
        };
        if let Some(refusal) = refusal {
            self.refusals.push((id, refusal.clone()));
            self.conns[conn].refused.insert(id);
            self.error(conn, format!("change refused: {refusal}"), Some(id));
            if is_new {
                // Nothing of a refused creation is kept.
                return;
            }
        }
        self.bindings = bindings;
        if is_new && doc.record().is_empty() {
            // Not a record yet: answer the sender only, keep it private to this connection.
            if let Some(data) = doc.generate(&peer) {
                self.push_sync(conn, &peer, id, data);
            }
            self.pending.insert(pending_key, doc);
            return;
        }
        self.conns[conn].open.insert(id);
        // Answer the sender, then forward to everyone else who has the document open.
        let mut targets: Vec<ConnId> = vec![conn];
        if !received.applied.is_empty() {
            targets.extend((0..self.conns.len()).filter(|&c| {
                c != conn && !self.conns[c].closed && self.conns[c].open.contains(&id)
            }));
        }
        for target in targets {
            let Some(target_peer) = self.conns[target].peer.clone() else {
                continue;
            };
            if let Some(data) = doc.generate(&target_peer) {
                self.push_sync(target, &target_peer, id, data);
            }
        }
        self.docs.insert(id, doc);
    }

    fn push_sync(&mut self, conn: ConnId, peer: &str, id: DocumentId, data: Vec<u8>) {
        self.conns[conn].outbox.push(
            Message::Sync {
                sender_id: self.peer_id.clone(),
                target_id: peer.to_owned(),
                document_id: id,
                data,
            }
            .encode(),
        );
    }
}

/// A small deterministic random source (SplitMix64): the same seed gives the same schedule or
/// workload (the test suites and the load generator).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `1 / n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    pub fn bytes16(&mut self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        out[8..].copy_from_slice(&self.next_u64().to_le_bytes());
        out
    }

    /// 16 bytes shaped as a version-4 UUID: automerge-repo 1.x refuses document ids that are not.
    pub fn uuid16(&mut self) -> [u8; 16] {
        let mut out = self.bytes16();
        out[6] = (out[6] & 0x0f) | 0x40;
        out[8] = (out[8] & 0x3f) | 0x80;
        out
    }
}
