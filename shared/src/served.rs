//! One document as a server serves it, sans-IO: what the server's document task and the test
//! hub (`saksi_testkit::Hub`) both run, so that the decisions of serving a document exist once.
//!
//! Events go in: sync messages from peers ([`ServedDocument::receive`]), a peer leaving
//! ([`ServedDocument::peer_left`]), a peer's access changing ([`ServedDocument::access_changed`]),
//! an edit made on the server ([`ServedDocument::edit`]), changes that arrived from elsewhere
//! (another server instance, an imported bundle: [`ServedDocument::external_changes`]), the
//! outcome of a store ([`ServedDocument::stored`]) and time passing ([`ServedDocument::tick`]).
//! [`Effect`]s come out, in order, from [`ServedDocument::next_effect`]: send this frame to that
//! connection, store these changes (and report back before anything else happens), audit this
//! refusal, save this peer's sync state, store this snapshot, reload from storage.
//!
//! What is decided here:
//! - **Read check**: a peer that may not read the document gets exactly the answers it would get
//!   for an id that does not exist (`doc-unavailable` to a request; to a sync, the start of a new
//!   document private to that connection).
//! - **Creation**: a new document becomes a stored record once its first changes make a complete
//!   record the sender may create ([`check_created`]); an id in use that the sender may not read
//!   is refused as [`NOT_A_MEMBER`], like a case it is not in.
//! - **Write policy**: every new change passes the [`PolicyGate`]; a refusal is audited, the
//!   sender told, and the connection ignored for this document until it reconnects.
//! - **Durability**: accepted changes are stored before anyone is answered; a failed store
//!   answers the senders with a fixed message and reloads the document from storage, so nothing
//!   unstored is ever acknowledged.
//! - **Batching, hold-back and window**: messages received together are applied together and
//!   answered once per peer; with [`Tuning::hold`], at most one unanswered message per peer; with
//!   [`Tuning::window`], at most that many peers are sent changes they have not answered, the rest
//!   served in the order they were put off; a peer whose connection has a backlog waits too.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use automerge::ActorId;

use crate::id::DocumentId;
use crate::integrity::guarded;
use crate::policy::{
    ActorBindings, NOT_A_MEMBER, PolicyGate, Principal, Refusal, RefusalCode, check_created,
};
use crate::protocol::{Message, PeerId};
use crate::record::{Editor, Record, RecordError, Summary};
use crate::sync::{DocSync, Incoming, Received};
use crate::time::Timestamp;
use crate::who::DeviceId;

/// A connection, as the driver numbers them.
pub type ConnId = u64;

/// What a peer is told when its changes could not be stored (nothing of it was acknowledged;
/// it sends them again).
pub const STORE_FAILED: &str =
    "the server could not store the change; it will be taken again later";
/// What a peer is told about a document that could not be loaded.
pub const CANNOT_SERVE: &str = "this document cannot be served right now";
/// What a peer is told about a record that was destroyed (purged or discarded): it deletes its
/// copy and sends nothing more (a stock client also gets `doc-unavailable`).
pub const WITHDRAWN: &str =
    "withdrawn: this record was destroyed by a coordinator and is refused for ever";

/// A peer on a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    pub conn: ConnId,
    /// Its peer id on the sync protocol.
    pub peer_id: PeerId,
    /// Its device id (sync states are kept per device).
    pub device: DeviceId,
}

/// One sync or request message from a peer.
#[derive(Debug, Clone)]
pub struct PeerMessage {
    pub peer: PeerInfo,
    pub who: Arc<Principal>,
    pub data: Vec<u8>,
    pub is_request: bool,
}

/// How the document is served to many peers (the server's measured settings; the test hub
/// turns hold-back and the window off to explore orderings freely).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// One unanswered message per peer ([`DocSync::hold_until_answered`]).
    pub hold: bool,
    /// At most this many peers sent changes they have not answered yet.
    pub window: usize,
    /// A peer whose connection holds more than this many bytes not yet written gets its next
    /// message once it has caught up.
    pub backlog_limit: usize,
    /// Held messages go out anyway after this long without a message ...
    pub hold_quiet: Duration,
    /// ... or after this long on a busy document.
    pub hold_max: Duration,
    /// A snapshot replaces the stored chunks after this many.
    pub compact_after: usize,
}

impl Tuning {
    /// As the test hub serves: every message answered at once, nothing held, no compaction.
    pub const IMMEDIATE: Tuning = Tuning {
        hold: false,
        window: usize::MAX,
        backlog_limit: usize::MAX,
        hold_quiet: Duration::ZERO,
        hold_max: Duration::ZERO,
        compact_after: usize::MAX,
    };
}

/// What the driver must do, in order.
#[derive(Debug)]
pub enum Effect {
    /// Send an encoded protocol message to a connection.
    Send { conn: ConnId, frame: Vec<u8> },
    /// Store these changes durably (one write), then call [`ServedDocument::stored`] before
    /// anything else.
    Store(StoreRequest),
    /// Changes from `peer` were refused: audit and log it (ids and counts only).
    Refused {
        peer: PeerInfo,
        user: String,
        refusal: Refusal,
        changes: usize,
    },
    /// Keep this device's sync state for the document (the peer left).
    SaveSyncState { device: DeviceId, state: Vec<u8> },
    /// Replace the stored chunks by this snapshot, then call [`ServedDocument::compacted`].
    Compact { snapshot: Vec<u8> },
    /// The document in memory is ahead of storage: load it again and call
    /// [`ServedDocument::reload`].
    Reload,
}

/// A stored document as read from storage.
#[derive(Debug)]
pub struct Loaded {
    pub record: Record,
    /// The stored bytes when they are one compacted document chunk: a cold open sends them as
    /// they are.
    pub snapshot: Option<Vec<u8>>,
    /// Stored chunks a snapshot would replace.
    pub uncompacted: usize,
}

/// A write for [`Effect::Store`].
#[derive(Debug)]
pub struct StoreRequest {
    /// Whether this creates the document (its first changes).
    pub created: bool,
    /// The record's index entry after the changes (`None` if it cannot be summarised: keep the
    /// previous entry).
    pub summary: Option<Summary>,
    pub changes: Vec<Vec<u8>>,
    /// Actor → device bindings the changes introduced (hex actor id, device id).
    pub new_actors: Vec<(String, DeviceId)>,
    /// The connection that created the document (for the log).
    pub creator: Option<PeerInfo>,
}

/// Why a server-side edit failed.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("no such document")]
    NotFound,
    #[error("the document cannot be read")]
    Unreadable,
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("malformed changes: {0}")]
    Malformed(String),
}

/// Actor → device bindings shared by every document of a server: which device wrote with an
/// actor id first (the write policy refuses changes by another device's actor).
#[derive(Debug, Default)]
pub struct SharedBindings(RwLock<HashMap<ActorId, DeviceId>>);

impl SharedBindings {
    /// From stored pairs (hex actor id, device id); malformed ids are skipped.
    pub fn load(pairs: Vec<(String, DeviceId)>) -> SharedBindings {
        let map = pairs
            .into_iter()
            .filter_map(|(actor, device)| actor.parse::<ActorId>().ok().map(|a| (a, device)))
            .collect();
        SharedBindings(RwLock::new(map))
    }

    pub fn len(&self) -> usize {
        self.0.read().expect("bindings lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A view that records the bindings it adds (to be stored with the changes).
    pub fn batch(&self) -> BindingsBatch<'_> {
        BindingsBatch {
            shared: self,
            added: Vec::new(),
        }
    }
}

/// [`SharedBindings`] for one message: new bindings go into the shared map at once (a later
/// message in the same batch sees them) and are listed in `added`.
#[derive(Debug)]
pub struct BindingsBatch<'a> {
    shared: &'a SharedBindings,
    pub added: Vec<(String, DeviceId)>,
}

impl ActorBindings for BindingsBatch<'_> {
    fn device_of(&self, actor: &ActorId) -> Option<DeviceId> {
        self.shared
            .0
            .read()
            .expect("bindings lock")
            .get(actor)
            .cloned()
    }

    fn bind(&mut self, actor: &ActorId, device: &DeviceId) {
        let mut map = self.shared.0.write().expect("bindings lock");
        if !map.contains_key(actor) {
            map.insert(actor.clone(), device.clone());
            self.added.push((actor.to_hex_string(), device.clone()));
        }
    }
}

/// A peer served the stored document.
#[derive(Debug)]
struct PeerSlot {
    peer: PeerInfo,
    /// What the connection's user may read, as last refreshed: checked again before anything
    /// is sent to it.
    who: Arc<Principal>,
    /// Changes from this connection were refused: ignore it until it reconnects.
    refused: bool,
    /// When this peer was first put off for a later flush (a ticket; lower is earlier).
    waiting_since: Option<u64>,
}

/// A new document a connection is creating, or an id it may not read.
#[derive(Debug)]
struct Private {
    sync: DocSync,
    /// The id is in use (by a record the sender may not read).
    exists: bool,
}

/// What to do once the outstanding store is reported.
#[derive(Debug)]
enum AfterStore {
    /// A connection's new document: install it and serve its creator.
    Created {
        peer: PeerInfo,
        who: Arc<Principal>,
        sync: Box<DocSync>,
        count: usize,
    },
    /// Changes from a batch of messages: answer each sender.
    Received {
        answers: Vec<(PeerInfo, Arc<Principal>, Result<Received, String>)>,
        count: usize,
    },
    /// An edit on the server or changes from elsewhere: forward them.
    Local { count: usize },
}

/// One document as a server serves it (see the module docs).
#[derive(Debug)]
pub struct ServedDocument {
    id: DocumentId,
    server_peer: PeerId,
    tuning: Tuning,
    /// The stored document, if there is one.
    doc: Option<DocSync>,
    /// The document could not be loaded: every peer is told so.
    broken: bool,
    /// The record was destroyed (purged or discarded): every message about it is refused, for
    /// ever ([`WITHDRAWN`], and `doc-unavailable`).
    withdrawn: bool,
    /// A purge is waiting out its grace period: only coordinators and admins are served it.
    hidden: bool,
    /// Chunks stored since the last snapshot.
    uncompacted: usize,
    peers: HashMap<ConnId, PeerSlot>,
    private: HashMap<ConnId, (PeerInfo, Private)>,
    /// Peers owed an answer, and whether the document changed, since the last flush.
    to_answer: HashSet<ConnId>,
    changed: bool,
    /// Since when messages have been held back from peers that have not answered, on the
    /// driver's monotonic clock (see [`ServedDocument::tick`]).
    held_since: Option<Duration>,
    tickets: u64,
    effects: VecDeque<Effect>,
    after_store: Option<AfterStore>,
    compacting: bool,
}

/// Sets up a stored document's sync to serve many peers.
fn serve_many(sync: &mut DocSync, tuning: &Tuning) {
    // Answer from the changes' bytes and the change graph, not by rebuilding them.
    sync.keep_changes();
    if tuning.hold {
        // One message in flight per peer: coalesces a reconnect storm.
        sync.hold_until_answered();
    }
    // Never store or forward a change that leaves the record unloadable.
    sync.verify_loads();
}

fn peer_key(conn: ConnId) -> String {
    format!("c{conn}")
}

impl ServedDocument {
    /// A document as loaded from storage (`None`: no such document yet).
    pub fn new(
        id: DocumentId,
        server_peer: PeerId,
        tuning: Tuning,
        stored: Option<Loaded>,
    ) -> ServedDocument {
        let mut served = ServedDocument {
            id,
            server_peer,
            tuning,
            doc: None,
            broken: false,
            withdrawn: false,
            hidden: false,
            uncompacted: 0,
            peers: HashMap::new(),
            private: HashMap::new(),
            to_answer: HashSet::new(),
            changed: false,
            held_since: None,
            tickets: 0,
            effects: VecDeque::new(),
            after_store: None,
            compacting: false,
        };
        served.install(stored);
        served
    }

    /// A document that could not be loaded: peers are told it cannot be served.
    pub fn broken(id: DocumentId, server_peer: PeerId, tuning: Tuning) -> ServedDocument {
        let mut served = ServedDocument::new(id, server_peer, tuning, None);
        served.broken = true;
        served
    }

    /// A record that was destroyed: nothing of it is served or taken, to anyone.
    pub fn withdrawn(id: DocumentId, server_peer: PeerId, tuning: Tuning) -> ServedDocument {
        let mut served = ServedDocument::new(id, server_peer, tuning, None);
        served.withdrawn = true;
        served
    }

    /// The record is destroyed now: every peer is told (the refusal, then `doc-unavailable`,
    /// which stock automerge-repo clients understand), and nothing of it is kept, saved or
    /// compacted from here on.
    pub fn withdraw(&mut self) {
        self.withdrawn = true;
        self.doc = None;
        self.to_answer.clear();
        self.held_since = None;
        let peers: Vec<PeerInfo> = self
            .peers
            .drain()
            .map(|(_, slot)| slot.peer)
            .chain(self.private.drain().map(|(_, (peer, _))| peer))
            .collect();
        for peer in peers {
            self.send_withdrawn(&peer);
        }
    }

    /// Whether the record was destroyed.
    pub fn is_withdrawn(&self) -> bool {
        self.withdrawn
    }

    /// A purge is waiting (`true`: only coordinators and admins are served the record; the
    /// others are told it is unavailable at once), or was undone.
    pub fn set_hidden(&mut self, hidden: bool) {
        self.hidden = hidden;
        if !hidden {
            return;
        }
        let gone: Vec<ConnId> = self
            .peers
            .iter()
            .filter(|(_, p)| !p.who.role.reviews())
            .map(|(conn, _)| *conn)
            .collect();
        for conn in gone {
            if let Some(peer) = self.peers.get(&conn).map(|p| p.peer.clone()) {
                self.peer_left(conn);
                self.send_unavailable(&peer);
            }
        }
    }

    /// Read access, with a pending purge hiding the record from all but reviewers.
    fn may_read(&self, who: &Principal, meta: &crate::record::RecordMeta) -> bool {
        (!self.hidden || who.role.reviews()) && who.may_read(meta)
    }

    fn send_withdrawn(&mut self, peer: &PeerInfo) {
        self.send_error(peer, WITHDRAWN.into());
        self.send_unavailable(peer);
    }

    fn install(&mut self, stored: Option<Loaded>) {
        self.doc = stored.map(|loaded| {
            let mut sync = DocSync::new(loaded.record);
            serve_many(&mut sync, &self.tuning);
            if let Some(bytes) = loaded.snapshot {
                sync.keep_saved(bytes);
            }
            self.uncompacted = loaded.uncompacted;
            sync
        });
    }

    pub fn id(&self) -> DocumentId {
        self.id
    }

    /// The stored record, if there is one.
    pub fn record(&self) -> Option<&Record> {
        self.doc.as_ref().map(DocSync::record)
    }

    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Whether no connection uses the document (it may leave memory).
    pub fn is_idle(&self) -> bool {
        self.peers.is_empty() && self.private.is_empty()
    }

    /// Whether peers are owed messages a later [`ServedDocument::flush`] sends.
    pub fn has_unanswered(&self) -> bool {
        !self.to_answer.is_empty()
    }

    /// Since when messages have been held back (see [`ServedDocument::tick`]).
    pub fn held_since(&self) -> Option<Duration> {
        self.held_since
    }

    /// The next effect to perform, oldest first.
    pub fn next_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    /// Whether a store is outstanding (nothing else may be handed in until it is reported).
    pub fn is_storing(&self) -> bool {
        self.after_store.is_some()
    }

    /// Whether the stored document exists, can be served, and `who` may read it.
    pub fn readable_by(&self, who: &Principal) -> bool {
        self.serving_meta().is_some_and(|m| self.may_read(who, &m))
    }

    /// The stored record's identity, if it can be served (read once per batch of messages:
    /// reading it from the document costs a lookup of several keys).
    fn serving_meta(&self) -> Option<crate::record::RecordMeta> {
        if self.broken {
            return None;
        }
        self.doc.as_ref().and_then(|d| d.record().meta())
    }

    /// Connections among `messages` that are new to the stored document and will be served
    /// it: the driver looks up their device's saved sync state for [`ServedDocument::receive`].
    pub fn resuming(&self, messages: &[PeerMessage]) -> Vec<(ConnId, DeviceId)> {
        let mut seen = HashSet::new();
        let Some(meta) = self.serving_meta() else {
            return Vec::new();
        };
        messages
            .iter()
            .filter(|m| self.may_read(&m.who, &meta) && !self.peers.contains_key(&m.peer.conn))
            .filter(|m| seen.insert(m.peer.conn))
            .map(|m| (m.peer.conn, m.peer.device.clone()))
            .collect()
    }

    fn send(&mut self, conn: ConnId, message: Message) {
        self.effects.push_back(Effect::Send {
            conn,
            frame: message.encode(),
        });
    }

    fn send_sync(&mut self, peer: &PeerInfo, data: Vec<u8>) {
        let message = Message::Sync {
            sender_id: self.server_peer.clone(),
            target_id: peer.peer_id.clone(),
            document_id: self.id,
            data,
        };
        self.send(peer.conn, message);
    }

    fn send_unavailable(&mut self, peer: &PeerInfo) {
        let message = Message::DocUnavailable {
            sender_id: self.server_peer.clone(),
            target_id: peer.peer_id.clone(),
            document_id: self.id,
        };
        self.send(peer.conn, message);
    }

    fn send_error(&mut self, peer: &PeerInfo, message: String) {
        let message = Message::Error {
            sender_id: Some(self.server_peer.clone()),
            target_id: Some(peer.peer_id.clone()),
            message,
            document_id: Some(self.id),
        };
        self.send(peer.conn, message);
    }

    fn refused(&mut self, peer: &PeerInfo, who: &Principal, refusal: Refusal, changes: usize) {
        self.effects.push_back(Effect::Refused {
            peer: peer.clone(),
            user: who.who.user.clone(),
            refusal: refusal.clone(),
            changes,
        });
        self.send_error(peer, format!("change refused: {refusal}"));
    }

    /// Handles sync messages received together, in order: consecutive ones for the stored
    /// document (readable by their senders, one per connection) are applied as one batch.
    /// `saved` holds the saved sync states of the connections [`ServedDocument::resuming`]
    /// named. If an [`Effect::Store`] comes out, the rest waits for
    /// [`ServedDocument::stored`]: hand in the messages after it then.
    ///
    /// Returns the messages not handled yet (after a store), to be passed again once it is
    /// reported.
    pub fn receive(
        &mut self,
        messages: Vec<PeerMessage>,
        saved: &HashMap<ConnId, Option<Vec<u8>>>,
        bindings: &SharedBindings,
    ) -> Vec<PeerMessage> {
        debug_assert!(!self.is_storing(), "a store is outstanding");
        if self.withdrawn {
            let mut told = HashSet::new();
            for m in messages {
                if told.insert(m.peer.conn) {
                    self.send_withdrawn(&m.peer);
                }
            }
            return Vec::new();
        }
        let mut rest = messages.into_iter().peekable();
        let mut group: Vec<PeerMessage> = Vec::new();
        // The document does not change until the group is received (below, then a return).
        let meta = self.serving_meta();
        while let Some(message) = rest.next() {
            if meta
                .as_ref()
                .is_some_and(|m| self.may_read(&message.who, m))
            {
                if group.iter().any(|m| m.peer.conn == message.peer.conn) {
                    // A second message from a connection waits for the batch before it.
                    let mut left = vec![message];
                    left.extend(rest);
                    self.receive_existing(group, saved, bindings);
                    return self.continue_with(left, saved, bindings);
                }
                group.push(message);
                continue;
            }
            if !group.is_empty() {
                let mut left = vec![message];
                left.extend(rest);
                self.receive_existing(std::mem::take(&mut group), saved, bindings);
                return self.continue_with(left, saved, bindings);
            }
            self.receive_private(message, bindings);
            if self.is_storing() {
                return rest.collect();
            }
        }
        if !group.is_empty() {
            self.receive_existing(group, saved, bindings);
        }
        Vec::new()
    }

    fn continue_with(
        &mut self,
        left: Vec<PeerMessage>,
        saved: &HashMap<ConnId, Option<Vec<u8>>>,
        bindings: &SharedBindings,
    ) -> Vec<PeerMessage> {
        if self.is_storing() {
            left
        } else {
            self.receive(left, saved, bindings)
        }
    }

    /// A message for an id the sender may not read, or that does not exist: the same answers
    /// in both cases.
    fn receive_private(&mut self, message: PeerMessage, bindings: &SharedBindings) {
        let PeerMessage {
            peer,
            who,
            data,
            is_request,
        } = message;
        if self.broken {
            self.send_error(&peer, CANNOT_SERVE.into());
            return;
        }
        let conn = peer.conn;
        if is_request && !self.private.contains_key(&conn) {
            self.send_unavailable(&peer);
            return;
        }
        let exists = self.doc.is_some();
        let (_, mut private) = self.private.remove(&conn).unwrap_or_else(|| {
            let mut sync = DocSync::new(Record::empty(ActorId::from([0xee; 16])));
            sync.verify_loads();
            (peer.clone(), Private { sync, exists })
        });
        let key = peer_key(conn);
        if !private.sync.has_peer(&key) {
            private.sync.add_peer(&key, None);
        }
        let mut batch = bindings.batch();
        let received = {
            let mut gate = PolicyGate {
                doc_id: self.id,
                who: &who,
                bindings: &mut batch,
            };
            private.sync.receive(&key, &data, &mut gate)
        };
        let received = match received {
            Ok(r) => r,
            Err(e) => {
                self.send_error(&peer, format!("bad sync message: {e}"));
                return;
            }
        };
        // An id that exists but that the sender may not read is answered as an unknown one:
        // the same checks, and a complete record is refused as one the sender may not create
        // (which an unknown id also gets, for a case the sender is not in).
        let record = private.sync.record();
        let refusal = match received.refused.first() {
            Some((_, r)) => Some(r.clone()),
            None if !record.is_empty() => {
                check_created(&self.id, record.doc()).err().or_else(|| {
                    // Judged now, not when the private document began: the id may have been
                    // taken since by another connection's record.
                    (private.exists || self.doc.is_some()).then(|| Refusal {
                        code: RefusalCode::NotAllowed,
                        detail: NOT_A_MEMBER.into(),
                    })
                })
            }
            None => None,
        };
        if let Some(refusal) = refusal {
            // Nothing of a refused creation is kept.
            let count = received.applied.len() + received.refused.len();
            self.refused(&peer, &who, refusal, count);
            return;
        }
        if private.sync.record().is_empty() {
            if let Some(reply) = private.sync.generate(&key) {
                self.send_sync(&peer, reply);
            }
            self.private.insert(conn, (peer, private));
            return;
        }
        // A complete new record: store it, then it is a document like any other.
        let summary = match private.sync.record().read().summary() {
            Ok(s) => s,
            Err(e) => {
                self.send_error(&peer, format!("change refused: {e}"));
                return;
            }
        };
        let changes: Vec<Vec<u8>> = private
            .sync
            .record()
            .doc()
            .get_changes(&[])
            .iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect();
        let count = changes.len();
        self.effects.push_back(Effect::Store(StoreRequest {
            created: true,
            summary: Some(summary),
            changes,
            new_actors: batch.added,
            creator: Some(peer.clone()),
        }));
        self.after_store = Some(AfterStore::Created {
            peer,
            who,
            sync: Box::new(private.sync),
            count,
        });
    }

    /// Messages for the stored document from different connections: every new change is
    /// checked by the write policy, the accepted ones are applied together and stored in one
    /// write, and only then is anyone answered.
    fn receive_existing(
        &mut self,
        messages: Vec<PeerMessage>,
        saved: &HashMap<ConnId, Option<Vec<u8>>>,
        bindings: &SharedBindings,
    ) {
        let messages: Vec<PeerMessage> = messages
            .into_iter()
            .filter(|m| !self.peers.get(&m.peer.conn).is_some_and(|s| s.refused))
            .collect();
        if messages.is_empty() {
            return;
        }
        let Some(sync) = &mut self.doc else { return };
        // Connections new to this document resume from their device's saved sync state.
        for m in &messages {
            match self.peers.get_mut(&m.peer.conn) {
                Some(slot) => slot.who = m.who.clone(),
                None => {
                    let state = saved.get(&m.peer.conn).cloned().flatten();
                    sync.add_peer(&peer_key(m.peer.conn), state.as_deref());
                    self.peers.insert(
                        m.peer.conn,
                        PeerSlot {
                            peer: m.peer.clone(),
                            who: m.who.clone(),
                            refused: false,
                            waiting_since: None,
                        },
                    );
                }
            }
        }
        let keys: Vec<String> = messages.iter().map(|m| peer_key(m.peer.conn)).collect();
        let mut batches: Vec<BindingsBatch<'_>> =
            messages.iter().map(|_| bindings.batch()).collect();
        let results = {
            let mut gates: Vec<PolicyGate<'_, BindingsBatch<'_>>> = messages
                .iter()
                .zip(batches.iter_mut())
                .map(|(m, batch)| PolicyGate {
                    doc_id: self.id,
                    who: &m.who,
                    bindings: batch,
                })
                .collect();
            let mut incoming: Vec<Incoming<'_>> = messages
                .iter()
                .zip(keys.iter())
                .zip(gates.iter_mut())
                .map(|((m, key), gate)| Incoming {
                    peer: key,
                    data: &m.data,
                    gate,
                })
                .collect();
            sync.receive_batch(&mut incoming)
        };
        let new_actors: Vec<(String, DeviceId)> =
            batches.into_iter().flat_map(|b| b.added).collect();
        let changes: Vec<Vec<u8>> = results
            .iter()
            .flatten()
            .flat_map(|r| r.applied.iter().map(|c| c.raw_bytes().to_vec()))
            .collect();
        // The messages' bytes are not needed past here (a batch can hold thousands).
        let answers: Vec<(PeerInfo, Arc<Principal>, Result<Received, String>)> = messages
            .into_iter()
            .zip(results)
            .map(|(m, r)| (m.peer, m.who, r.map_err(|e| e.to_string())))
            .collect();
        let count = changes.len();
        if count == 0 {
            self.answer_received(answers);
            return;
        }
        self.queue_store(changes, new_actors, AfterStore::Received { answers, count });
    }

    fn answer_received(
        &mut self,
        answers: Vec<(PeerInfo, Arc<Principal>, Result<Received, String>)>,
    ) {
        for (peer, who, result) in answers {
            let received = match result {
                Ok(r) => r,
                Err(e) => {
                    self.send_error(&peer, format!("bad sync message: {e}"));
                    continue;
                }
            };
            if let Some((_, refusal)) = received.refused.first() {
                let refusal = refusal.clone();
                self.refused(&peer, &who, refusal, received.refused.len());
                if let Some(slot) = self.peers.get_mut(&peer.conn) {
                    slot.refused = true;
                }
            }
            self.to_answer.insert(peer.conn);
            self.changed |= !received.applied.is_empty();
        }
    }

    /// The outcome of the outstanding [`Effect::Store`].
    pub fn stored(&mut self, ok: bool) {
        let Some(after) = self.after_store.take() else {
            return;
        };
        match after {
            AfterStore::Created {
                peer,
                who,
                mut sync,
                count,
            } => {
                if !ok {
                    // The cause is in the driver's log; a peer gets a fixed message (a storage
                    // error can name paths and database details).
                    self.send_error(&peer, STORE_FAILED.into());
                    return;
                }
                serve_many(&mut sync, &self.tuning);
                let key = peer_key(peer.conn);
                let reply = sync.generate(&key);
                self.doc = Some(*sync);
                self.uncompacted = count;
                if let Some(reply) = reply {
                    self.send_sync(&peer, reply);
                }
                self.peers.insert(
                    peer.conn,
                    PeerSlot {
                        peer,
                        who,
                        refused: false,
                        waiting_since: None,
                    },
                );
            }
            AfterStore::Received { answers, count } => {
                if !ok {
                    for (peer, _, result) in &answers {
                        if result.as_ref().is_ok_and(|r| !r.applied.is_empty()) {
                            self.send_error(peer, STORE_FAILED.into());
                        }
                    }
                    self.effects.push_back(Effect::Reload);
                    return;
                }
                self.uncompacted += count;
                self.answer_received(answers);
                self.maybe_compact();
            }
            AfterStore::Local { count } => {
                if !ok {
                    self.effects.push_back(Effect::Reload);
                    return;
                }
                self.uncompacted += count;
                self.changed = true;
                self.maybe_compact();
            }
        }
    }

    fn maybe_compact(&mut self) {
        if self.uncompacted < self.tuning.compact_after || self.compacting {
            return;
        }
        if let Some(sync) = &self.doc {
            self.compacting = true;
            self.effects.push_back(Effect::Compact {
                snapshot: sync.record().save(),
            });
        }
    }

    /// The outcome of an [`Effect::Compact`].
    pub fn compacted(&mut self, ok: bool) {
        self.compacting = false;
        if ok {
            self.uncompacted = 0;
        }
    }

    /// After [`Effect::Reload`]: the document as storage has it (`None` if it could not be
    /// read: it is then broken). Sync restarts with every peer, so that nothing unstored is
    /// ever acknowledged.
    pub fn reload(&mut self, stored: Option<Loaded>) {
        match stored {
            None => {
                self.doc = None;
                self.broken = true;
            }
            Some(stored) => {
                self.install(Some(stored));
                if let Some(sync) = &mut self.doc {
                    for conn in self.peers.keys() {
                        sync.add_peer(&peer_key(*conn), None);
                    }
                }
            }
        }
    }

    /// A connection closed: its sync state is saved, its private document dropped.
    pub fn peer_left(&mut self, conn: ConnId) {
        self.private.remove(&conn);
        self.to_answer.remove(&conn);
        if let Some(slot) = self.peers.remove(&conn)
            && let Some(sync) = &mut self.doc
            && let Some(state) = sync.remove_peer(&peer_key(conn))
        {
            self.effects.push_back(Effect::SaveSyncState {
                device: slot.peer.device,
                state,
            });
        }
    }

    /// What a connection's user may read changed: stop serving it if it may no longer read
    /// this document (it is told the document is unavailable). Only peers served the stored
    /// document: a connection's own document being created reveals nothing it did not send.
    pub fn access_changed(&mut self, conn: ConnId, who: Arc<Principal>) -> bool {
        let Some(slot) = self.peers.get_mut(&conn) else {
            return false;
        };
        slot.who = who.clone();
        let peer = slot.peer.clone();
        if self.readable_by(&who) {
            return false;
        }
        self.peer_left(conn);
        self.send_unavailable(&peer);
        true
    }

    /// Makes an edit on the server for `editor` (signed in on `device`) with a fresh actor id;
    /// its changes are stored ([`Effect::Store`]) and then forwarded. `Ok(false)`: nothing
    /// changed.
    pub fn edit(
        &mut self,
        device: &DeviceId,
        editor: &Editor,
        now: Timestamp,
        actor: ActorId,
        bindings: &SharedBindings,
        edit: impl FnOnce(&mut Record, &Editor, Timestamp) -> Result<(), RecordError>,
    ) -> Result<bool, EditError> {
        debug_assert!(!self.is_storing(), "a store is outstanding");
        let Some(sync) = &mut self.doc else {
            return Err(EditError::NotFound);
        };
        let heads = sync.record().heads();
        let record = sync.record_mut();
        record.set_actor(actor.clone());
        let Some(result) = guarded(|| edit(record, editor, now)) else {
            // The record in memory may be half-edited: read it again from storage.
            self.effects.push_back(Effect::Reload);
            return Err(EditError::Unreadable);
        };
        result?;
        let changes: Vec<Vec<u8>> = record
            .doc()
            .get_changes(&heads)
            .iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect();
        if changes.is_empty() {
            return Ok(false);
        }
        let mut batch = bindings.batch();
        batch.bind(&actor, device);
        self.store_local(changes, batch.added);
        Ok(true)
    }

    /// Changes that arrived from elsewhere (another server instance, an imported bundle),
    /// already checked there: applied if they still load, stored, and forwarded to every peer.
    /// Returns how many were new.
    pub fn external_changes(&mut self, changes: &[Vec<u8>]) -> Result<usize, EditError> {
        debug_assert!(!self.is_storing(), "a store is outstanding");
        let Some(sync) = &mut self.doc else {
            return Err(EditError::NotFound);
        };
        let decoded = changes
            .iter()
            .map(|bytes| automerge::Change::from_bytes(bytes.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| EditError::Malformed(e.to_string()))?;
        let heads = sync.record().heads();
        // Applied to a copy first: the document is unchanged if they would break it.
        crate::integrity::apply_checked(sync.record_mut().doc_mut(), decoded)
            .map_err(|e| EditError::Malformed(format!("{e:?}")))?;
        let new: Vec<Vec<u8>> = sync
            .record()
            .doc()
            .get_changes(&heads)
            .iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect();
        let count = new.len();
        if count > 0 {
            self.store_local(new, Vec::new());
        }
        Ok(count)
    }

    fn store_local(&mut self, changes: Vec<Vec<u8>>, new_actors: Vec<(String, DeviceId)>) {
        let count = changes.len();
        self.queue_store(changes, new_actors, AfterStore::Local { count });
    }

    /// Asks for new changes of the stored document to be stored (with its index entry as it
    /// is now); `after` is what [`ServedDocument::stored`] does then.
    fn queue_store(
        &mut self,
        changes: Vec<Vec<u8>>,
        new_actors: Vec<(String, DeviceId)>,
        after: AfterStore,
    ) {
        let summary = self
            .doc
            .as_ref()
            .and_then(|d| d.record().read().summary().ok());
        self.effects.push_back(Effect::Store(StoreRequest {
            created: false,
            summary,
            changes,
            new_actors,
            creator: None,
        }));
        self.after_store = Some(after);
    }

    /// Time passed: held messages are released after [`Tuning::hold_quiet`] without a
    /// message (`last_message`) or [`Tuning::hold_max`] of holding. Times here are on the
    /// driver's monotonic clock, as the time since it began serving: the wall clock may jump.
    pub fn tick(&mut self, now: Duration, last_message: Duration) {
        let Some(since) = self.held_since else { return };
        if now.saturating_sub(last_message) >= self.tuning.hold_quiet
            || now.saturating_sub(since) >= self.tuning.hold_max
        {
            self.release_held();
        }
    }

    /// Notes the peers that messages were held back from as owed an answer.
    pub fn release_held(&mut self) {
        self.held_since = None;
        let Some(sync) = &mut self.doc else { return };
        let released: HashSet<String> = sync.release_held().into_iter().collect();
        for conn in self.peers.keys() {
            if released.contains(&peer_key(*conn)) {
                self.to_answer.insert(*conn);
            }
        }
    }

    /// Sends what the peers are owed: at most one message each. A peer whose connection has a
    /// backlog (`backlog(conn)` bytes not yet written), or that would exceed the window, stays
    /// owed for a later flush, which serves the longest put off first. Read access is checked
    /// per peer first: a member removed from the case gets nothing more.
    pub fn flush(&mut self, now: Duration, backlog: impl Fn(ConnId) -> usize) {
        let (to_answer, changed) = (std::mem::take(&mut self.to_answer), self.changed);
        self.changed = false;
        let hidden = self.hidden;
        let Some(sync) = &mut self.doc else { return };
        let meta = sync.record().meta();
        let mut due: Vec<(u64, ConnId)> = self
            .peers
            .iter()
            .filter(|(_, p)| {
                meta.as_ref()
                    .is_some_and(|m| (!hidden || p.who.role.reviews()) && p.who.may_read(m))
            })
            .filter(|(conn, p)| !p.refused && (changed || to_answer.contains(conn)))
            .map(|(conn, p)| (p.waiting_since.unwrap_or(u64::MAX), *conn))
            .collect();
        due.sort_unstable();
        let mut out = Vec::new();
        for (_, conn) in due {
            let Some(slot) = self.peers.get_mut(&conn) else {
                continue;
            };
            let key = peer_key(conn);
            let window_full =
                sync.awaiting_answers() >= self.tuning.window && !sync.is_awaiting(&key);
            if window_full || backlog(conn) > self.tuning.backlog_limit {
                self.to_answer.insert(conn);
                if slot.waiting_since.is_none() {
                    self.tickets += 1;
                    slot.waiting_since = Some(self.tickets);
                }
                continue;
            }
            slot.waiting_since = None;
            if let Some(data) = sync.generate(&key) {
                out.push((slot.peer.clone(), data));
            }
        }
        if self.held_since.is_none() && sync.has_held() {
            self.held_since = Some(now);
        }
        for (peer, data) in out {
            self.send_sync(&peer, data);
        }
    }

    /// The task ends: every peer's sync state is saved, and uncompacted chunks are compacted.
    pub fn finish(&mut self) {
        let conns: Vec<ConnId> = self.peers.keys().copied().collect();
        for conn in conns {
            self.peer_left(conn);
        }
        if self.uncompacted > 0
            && !self.compacting
            && let Some(sync) = &self.doc
        {
            self.compacting = true;
            self.effects.push_back(Effect::Compact {
                snapshot: sync.record().save(),
            });
        }
    }
}
