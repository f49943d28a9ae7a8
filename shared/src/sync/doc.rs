//! [`DocSync`]: one document and its sync state with each peer, answered from the change
//! graph; changes waiting for their dependencies, bounded.

use std::collections::{HashMap, HashSet};

use automerge::sync::{
    BloomFilter, Capability, ChunkList, Have, Message as SyncMessage, MessageFlags, MessageVersion,
    State, SyncDoc,
};
use automerge::{Automerge, Change, ChangeHash, ReadDoc};

use super::gate::{ChangeGate, Pending, Received, Verdict};
use super::wire::{MAX_CHANGES_PER_MESSAGE, SyncError, check_blooms, extract_changes};
use crate::change_graph::{Ancestors, Graph, HashList};
use crate::integrity::{self, Unloadable};
use crate::record::Record;

/// The commit message of a server's change that puts back a reviewer's status (see
/// [`Effects::restore_status`](super::Effects::restore_status)).
pub const RESTORED_NOTE: &str = "saksi: status kept after a concurrent step";

/// Most bytes of changes from one peer that wait for their dependencies, per document: a
/// phone's own changes arrive in causal order and never wait long; a flood of changes that
/// name missing dependencies is what this stops (it held 190 MB on one socket before).
pub const MAX_WAITING_BYTES_PER_PEER: usize = 16 << 20;
/// ... and from all peers of one document.
pub const MAX_WAITING_BYTES: usize = 64 << 20;
/// Messages from a peer through which its changes may wait for their dependencies.
pub const MAX_WAITING_ROUNDS: u32 = 32;

/// One incoming sync message of a batch (see [`DocSync::receive_batch`]).
pub struct Incoming<'a> {
    pub peer: &'a str,
    pub data: &'a [u8],
    pub gate: &'a mut dyn ChangeGate,
}

impl std::fmt::Debug for Incoming<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("peer", &self.peer)
            .field("bytes", &self.data.len())
            .finish()
    }
}

/// The raw bytes of the document's changes, kept by a document that answers many peers
/// ([`DocSync::keep_changes`]) so that sync messages are built without reconstructing the
/// changes from the document (automerge 0.12 rebuilds them with a pass over all its operations),
/// and its last saved form, for peers that get the whole document.
#[derive(Default)]
struct ChangeCache {
    enabled: bool,
    bytes: HashMap<ChangeHash, Vec<u8>>,
    /// Every change up to these heads is in `bytes`.
    complete_at: Vec<ChangeHash>,
    saved: Option<(Vec<ChangeHash>, Vec<u8>)>,
    /// The change graph as positions, for the Bloom filters and the changes to send.
    graph: Graph,
}

/// What a server knows each peer to have, as sets of change positions that follow the sync
/// state's heads (see [`crate::change_graph`]).
#[derive(Debug, Default)]
struct PeerView {
    /// The ancestors of the state's `shared_heads`: our Bloom filter covers the rest.
    shared: Ancestors,
    /// The ancestors of the `last_sync` heads of the peer's Bloom filters: the changes it may
    /// lack are the rest.
    theirs: Ancestors,
}

impl std::fmt::Debug for ChangeCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeCache")
            .field("enabled", &self.enabled)
            .field("changes", &self.bytes.len())
            .field("graph", &self.graph.len())
            .finish()
    }
}

/// Whether `doc` has the change (from the change graph; `get_change_by_hash` would rebuild it).
fn has_change(doc: &Automerge, hash: &ChangeHash) -> bool {
    doc.get_change_meta_by_hash(hash).is_some()
}

/// A server's automerge sync state with one peer between its messages, with every hash list
/// packed against the change graph ([`HashList`]): at 1,000 phones on 10 documents of some 500
/// concurrent heads each, automerge's lists (four or five of 500 hashes for each of the 10,000
/// peer states) were most of the server's memory. Unpacked for each message.
#[derive(Debug, Default)]
struct PackedState {
    shared_heads: HashList,
    last_sent_heads: HashList,
    their_heads: Option<HashList>,
    their_need: Option<HashList>,
    their_have: Option<Vec<(HashList, BloomFilter)>>,
    sent_hashes: HashList,
    in_flight: bool,
    have_responded: bool,
    their_capabilities: Option<Vec<Capability>>,
    read_only: bool,
    peer_read_only: bool,
    needs_reset: bool,
}

impl PackedState {
    fn pack(state: State, graph: &Graph) -> Self {
        // Destructured whole, so that a field added to automerge's state cannot be dropped here.
        let State {
            shared_heads,
            last_sent_heads,
            their_heads,
            their_need,
            their_have,
            sent_hashes,
            in_flight,
            have_responded,
            their_capabilities,
            read_only,
            peer_read_only,
            needs_reset,
        } = state;
        let pack = |hashes: &[ChangeHash]| HashList::pack(graph, hashes);
        PackedState {
            shared_heads: pack(&shared_heads),
            last_sent_heads: pack(&last_sent_heads),
            their_heads: their_heads.as_deref().map(pack),
            their_need: their_need.as_deref().map(pack),
            their_have: their_have.map(|haves| {
                haves
                    .into_iter()
                    .map(|h| (pack(&h.last_sync), h.bloom))
                    .collect()
            }),
            sent_hashes: pack(&sent_hashes.into_iter().collect::<Vec<_>>()),
            in_flight,
            have_responded,
            their_capabilities,
            read_only,
            peer_read_only,
            needs_reset,
        }
    }

    fn unpack(&self, graph: &Graph) -> State {
        State {
            shared_heads: self.shared_heads.unpack(graph),
            last_sent_heads: self.last_sent_heads.unpack(graph),
            their_heads: self.their_heads.as_ref().map(|h| h.unpack(graph)),
            their_need: self.their_need.as_ref().map(|h| h.unpack(graph)),
            their_have: self.their_have.as_ref().map(|haves| {
                haves
                    .iter()
                    .map(|(last_sync, bloom)| Have {
                        last_sync: last_sync.unpack(graph),
                        bloom: bloom.clone(),
                    })
                    .collect()
            }),
            sent_hashes: self.sent_hashes.unpack(graph).into_iter().collect(),
            in_flight: self.in_flight,
            have_responded: self.have_responded,
            their_capabilities: self.their_capabilities.clone(),
            read_only: self.read_only,
            peer_read_only: self.peer_read_only,
            needs_reset: self.needs_reset,
        }
    }
}

/// A peer's sync state: as automerge keeps it (a client, with a few documents and one peer), or
/// packed (a server: see [`PackedState`]).
#[derive(Debug)]
enum PeerSync {
    Plain(State),
    Packed(PackedState),
}

impl PeerSync {
    /// A copy of the state.
    fn state(&self, graph: &Graph) -> State {
        match self {
            PeerSync::Plain(state) => state.clone(),
            PeerSync::Packed(packed) => packed.unpack(graph),
        }
    }

    /// The state, taken out (a default one is left behind).
    fn take(&mut self, graph: &Graph) -> State {
        match self {
            PeerSync::Plain(state) => std::mem::take(state),
            PeerSync::Packed(packed) => std::mem::take(packed).unpack(graph),
        }
    }

    /// The heads the peer last sent, without copying the rest of the state.
    fn their_heads(&self, graph: &Graph) -> Option<Vec<ChangeHash>> {
        match self {
            PeerSync::Plain(state) => state.their_heads.clone(),
            PeerSync::Packed(packed) => packed.their_heads.as_ref().map(|h| h.unpack(graph)),
        }
    }
}

/// One document and its automerge sync state with each peer.
#[derive(Debug)]
pub struct DocSync {
    record: Record,
    peers: HashMap<String, PeerSync>,
    /// Changes from each peer that arrived before their dependencies: kept, neither checked nor
    /// applied, until that peer sends what they depend on (which [`DocSync::generate`] asks for).
    deferred: HashMap<String, Vec<Change>>,
    /// How many messages in a row from each peer left changes waiting.
    deferred_rounds: HashMap<String, u32>,
    /// Peers that sent changes since the last message generated for them: they must hear our
    /// heads even if a later message of theirs, read before we answered, made automerge think
    /// they already know them (see [`DocSync::generate`]).
    owe_answer: HashSet<String>,
    /// With [`DocSync::hold_until_answered`]: peers sent changes that have not answered yet, and
    /// those of them that [`DocSync::generate`] has since held a message back from.
    awaiting: Option<Awaiting>,
    cache: ChangeCache,
    /// A server's view of what each peer has (see [`PeerView`]).
    views: HashMap<String, PeerView>,
    /// Changes are applied only if the document still loads after them
    /// ([`DocSync::verify_loads`]).
    verify: bool,
}

impl DocSync {
    pub fn new(record: Record) -> Self {
        DocSync {
            record,
            peers: HashMap::new(),
            deferred: HashMap::new(),
            deferred_rounds: HashMap::new(),
            owe_answer: HashSet::new(),
            awaiting: None,
            cache: ChangeCache::default(),
            views: HashMap::new(),
            verify: false,
        }
    }

    /// Applies incoming changes only if the document still saves and loads after them (see
    /// [`crate::integrity`]): for a server, which must never store or forward a change that
    /// makes a record unloadable. Costs a copy, a save and a load of the document per batch.
    pub fn verify_loads(&mut self) {
        self.verify = true;
    }

    /// Keeps the raw bytes of the document's changes (and its last saved form) to answer peers
    /// without rebuilding them: for a server, where many peers sync one document. Costs the
    /// memory of the changes as they travel (about the size of [`Automerge::save_nocompress`]).
    pub fn keep_changes(&mut self) {
        self.cache.enabled = true;
    }

    /// Takes `bytes`, a saved form of the document as it is now (a server that loaded it from
    /// one compacted snapshot), as what peers that get the whole document are sent, so that the
    /// first of them does not cost a save of the whole document. Only with
    /// [`DocSync::keep_changes`].
    pub fn keep_saved(&mut self, bytes: Vec<u8>) {
        if self.cache.enabled {
            self.cache.saved = Some((self.record.doc().get_heads(), bytes));
        }
    }

    pub fn record(&self) -> &Record {
        &self.record
    }

    pub fn record_mut(&mut self) -> &mut Record {
        &mut self.record
    }

    pub fn into_record(self) -> Record {
        self.record
    }

    /// Starts syncing with `peer`, resuming from a persisted state if there is one.
    pub fn add_peer(&mut self, peer: &str, persisted: Option<&[u8]>) {
        let state = persisted
            .and_then(|b| State::decode(b).ok())
            .unwrap_or_default();
        self.views.remove(peer);
        self.put_state(peer, state);
    }

    /// The peer's sync state, taken out to be used (a fresh one for a new peer); give it back
    /// with [`DocSync::put_state`].
    fn take_state(&mut self, peer: &str) -> State {
        let graph = &self.cache.graph;
        self.peers
            .get_mut(peer)
            .map(|s| s.take(graph))
            .unwrap_or_default()
    }

    /// Keeps the peer's sync state: packed on a server (the graph is caught up by then).
    fn put_state(&mut self, peer: &str, state: State) {
        let kept = if self.cache.enabled {
            PeerSync::Packed(PackedState::pack(state, &self.cache.graph))
        } else {
            PeerSync::Plain(state)
        };
        match self.peers.get_mut(peer) {
            Some(slot) => *slot = kept,
            None => {
                self.peers.insert(peer.to_owned(), kept);
            }
        }
    }

    pub fn has_peer(&self, peer: &str) -> bool {
        self.peers.contains_key(peer)
    }

    /// Stops syncing with `peer`; returns its state in persistable form.
    pub fn remove_peer(&mut self, peer: &str) -> Option<Vec<u8>> {
        self.deferred.remove(peer);
        self.deferred_rounds.remove(peer);
        self.owe_answer.remove(peer);
        if let Some(awaiting) = &mut self.awaiting {
            awaiting.forget(peer);
        }
        self.views.remove(peer);
        let graph = &self.cache.graph;
        self.peers.remove(peer).map(|s| s.state(graph).encode())
    }

    /// The persistable sync state of `peer` (the heads both sides are known to share).
    pub fn peer_state(&self, peer: &str) -> Option<Vec<u8>> {
        self.peers
            .get(peer)
            .map(|s| s.state(&self.cache.graph).encode())
    }

    pub fn peers(&self) -> impl Iterator<Item = &str> {
        self.peers.keys().map(String::as_str)
    }

    /// Whether `peer` is known to have everything this document has.
    pub fn peer_in_sync(&self, peer: &str) -> bool {
        self.peers
            .get(peer)
            .and_then(|s| s.their_heads(&self.cache.graph))
            .is_some_and(|mut theirs| {
                let mut ours = self.record.heads();
                ours.sort();
                theirs.sort();
                ours == theirs
            })
    }

    /// Handles an automerge sync message from `peer`: every change not yet in the document is
    /// offered to `gate` in causal order and applied if accepted. Changes whose dependencies
    /// are missing wait (per peer) for a later message from the same peer.
    pub fn receive(
        &mut self,
        peer: &str,
        data: &[u8],
        gate: &mut dyn ChangeGate,
    ) -> Result<Received, SyncError> {
        self.receive_batch(&mut [Incoming { peer, data, gate }])
            .pop()
            .expect("one result per message")
    }

    /// Handles several sync messages (from one or more peers) as if received one after the
    /// other, applying all accepted changes together (see [`ChangeGate`]). One result per
    /// message, in order; a message that fails leaves none of its changes applied.
    pub fn receive_batch(
        &mut self,
        batch: &mut [Incoming<'_>],
    ) -> Vec<Result<Received, SyncError>> {
        self.catch_up();
        let mut pending = Pending::default();
        let mut failed: HashMap<usize, SyncError> = HashMap::new();
        let mut checked: Vec<Result<(SyncMessage, Received), SyncError>> =
            Vec::with_capacity(batch.len());
        for (i, incoming) in batch.iter_mut().enumerate() {
            let result = self.check_message(i, incoming, &mut pending, &mut failed);
            checked.push(result);
        }
        self.apply_pending(&mut pending, &mut failed);
        checked
            .into_iter()
            .zip(batch.iter())
            .enumerate()
            .map(|(i, (result, incoming))| {
                // Any message is the peer's answer (see `hold_until_answered`).
                if let Some(awaiting) = &mut self.awaiting {
                    awaiting.forget(incoming.peer);
                }
                let (mut message, mut received) = result?;
                if let Some(error) = failed.remove(&i) {
                    return Err(error);
                }
                if let Some(status) = received.restore_status.take()
                    && let Some(change) = self.restore_status(&status, &received.applied)
                {
                    received.applied.push(change);
                    received.restored = true;
                }
                if !message.changes.is_empty() {
                    self.owe_answer.insert(incoming.peer.to_owned());
                }
                // Let automerge update the sync state from the message. It gets back one of the
                // accepted changes (already applied: loading it again is a no-op), which tells
                // it that this message did carry changes (with none, it would take the
                // sender's heads for ours and stop answering).
                message.changes = received
                    .applied
                    .first()
                    .map(|c| vec![c.raw_bytes().to_vec()])
                    .unwrap_or_default()
                    .into();
                let mut state = self.take_state(incoming.peer);
                let result = self
                    .record
                    .doc_mut()
                    .receive_sync_message(&mut state, message)
                    .map_err(|e| SyncError::Apply(e.to_string()));
                self.put_state(incoming.peer, state);
                result?;
                Ok(received)
            })
            .collect()
    }

    /// Decodes one message and passes its new changes through its gate, adding the accepted
    /// ones to `pending`.
    fn check_message(
        &mut self,
        index: usize,
        incoming: &mut Incoming<'_>,
        pending: &mut Pending,
        failed: &mut HashMap<usize, SyncError>,
    ) -> Result<(SyncMessage, Received), SyncError> {
        let message =
            SyncMessage::decode(incoming.data).map_err(|e| SyncError::Malformed(e.to_string()))?;
        check_blooms(&message)?;
        let incoming_changes = extract_changes(&message)?;
        let peer = incoming.peer;
        let mut received = Received::default();

        // Keep only new changes (with those still waiting from this peer), then take them in
        // causal order: a change goes once all its dependencies are in the document or pending.
        let mut waiting: Vec<Change> = self.deferred.remove(peer).unwrap_or_default();
        waiting.retain(|c| !self.knows(&c.hash()) && !pending.contains(&c.hash()));
        let mut seen: HashSet<ChangeHash> = waiting.iter().map(Change::hash).collect();
        for change in incoming_changes {
            let hash = change.hash();
            if !self.knows(&hash) && !pending.contains(&hash) && seen.insert(hash) {
                waiting.push(change);
            }
        }
        let mut refused_hashes: HashSet<ChangeHash> = HashSet::new();
        loop {
            let mut progressed = false;
            let mut still_waiting = Vec::with_capacity(waiting.len());
            for change in waiting {
                if change.deps().iter().any(|d| refused_hashes.contains(d)) {
                    refused_hashes.insert(change.hash());
                    let cause = received
                        .refused
                        .first()
                        .map(|(_, r)| r.clone())
                        .expect("a dependency was refused first");
                    received.refused.push((change.hash(), cause));
                    progressed = true;
                    continue;
                }
                let ready = change
                    .deps()
                    .iter()
                    .all(|d| pending.contains(d) || self.knows(d));
                if !ready {
                    still_waiting.push(change);
                    continue;
                }
                progressed = true;
                let mut verdict = incoming
                    .gate
                    .check_pending(self.record.doc(), pending, &change);
                if matches!(verdict, Verdict::NeedsApplied) {
                    self.apply_pending(pending, failed);
                    if let Some(error) = failed.remove(&index) {
                        return Err(error);
                    }
                    verdict = incoming
                        .gate
                        .check_pending(self.record.doc(), pending, &change);
                }
                match verdict {
                    Verdict::Accept(effects) => {
                        if effects.restore_status.is_some() {
                            received.restore_status.clone_from(&effects.restore_status);
                        }
                        received.applied.push(change.clone());
                        pending.push(index, change, effects);
                    }
                    Verdict::Refuse(refusal) => {
                        refused_hashes.insert(change.hash());
                        received.refused.push((change.hash(), refusal));
                    }
                    Verdict::NeedsApplied => {
                        return Err(SyncError::Apply(
                            "the gate cannot judge a change with nothing pending".into(),
                        ));
                    }
                }
            }
            waiting = still_waiting;
            if !progressed || waiting.is_empty() {
                break;
            }
        }
        received.deferred = waiting.len();
        if waiting.len() > MAX_CHANGES_PER_MESSAGE {
            self.deferred_rounds.remove(peer);
            return Err(SyncError::TooManyChanges(MAX_CHANGES_PER_MESSAGE));
        }
        if waiting.is_empty() {
            self.deferred_rounds.remove(peer);
        } else {
            // Bounded in bytes (per peer, and for the document) and in age (messages from the
            // peer that did not bring what they wait for), not only in number.
            let bytes: usize = waiting.iter().map(|c| c.raw_bytes().len()).sum();
            let others: usize = self
                .deferred
                .values()
                .flatten()
                .map(|c| c.raw_bytes().len())
                .sum();
            let rounds = self.deferred_rounds.entry(peer.to_owned()).or_default();
            *rounds += 1;
            if bytes > MAX_WAITING_BYTES_PER_PEER {
                self.deferred_rounds.remove(peer);
                return Err(SyncError::TooMuchWaiting(MAX_WAITING_BYTES_PER_PEER));
            }
            if bytes + others > MAX_WAITING_BYTES {
                self.deferred_rounds.remove(peer);
                return Err(SyncError::TooMuchWaiting(MAX_WAITING_BYTES));
            }
            if *rounds > MAX_WAITING_ROUNDS {
                self.deferred_rounds.remove(peer);
                return Err(SyncError::WaitedTooLong(MAX_WAITING_ROUNDS));
            }
            self.deferred.insert(peer.to_owned(), waiting);
        }
        Ok((message, received))
    }

    /// Applies the pending changes together. If automerge refuses the batch, each message's
    /// changes are applied on their own, and the messages whose changes cannot be applied are
    /// recorded in `failed` (their changes stay out of the document).
    fn apply_pending(&mut self, pending: &mut Pending, failed: &mut HashMap<usize, SyncError>) {
        let taken = std::mem::take(pending);
        if taken.is_empty() {
            return;
        }
        let all: Vec<Change> = taken.changes.iter().map(|(_, c)| c.clone()).collect();
        if self.apply(all).is_ok() {
            self.remember(taken.changes.iter().map(|(_, c)| c));
            return;
        }
        let mut groups: Vec<(usize, Vec<Change>)> = Vec::new();
        for (message, change) in taken.changes {
            match groups.last_mut() {
                Some((m, group)) if *m == message => group.push(change),
                _ => groups.push((message, vec![change])),
            }
        }
        for (message, group) in groups {
            if failed.contains_key(&message) {
                continue;
            }
            let inside: HashSet<ChangeHash> = group.iter().map(Change::hash).collect();
            let missing = group
                .iter()
                .flat_map(Change::deps)
                .any(|d| !inside.contains(d) && !self.knows(d));
            let result = if missing {
                Err(SyncError::Apply(
                    "it depends on changes that could not be applied".to_owned(),
                ))
            } else {
                self.apply(group.clone())
            };
            match result {
                Ok(()) => self.remember(group.iter()),
                Err(e) => {
                    failed.insert(message, e);
                }
            }
        }
    }

    /// Puts `status` back at the root if the merged status is now another one (see
    /// [`Effects::restore_status`]), with a change made after `after`. Returns that change.
    fn restore_status(&mut self, status: &str, after: &[Change]) -> Option<Change> {
        let doc = self.record.doc_mut();
        let current = doc
            .get(automerge::ROOT, crate::record::STATUS)
            .ok()
            .flatten()
            .and_then(|(v, _)| v.into_scalar().ok())
            .and_then(|s| s.as_str().map(str::to_owned));
        if current.as_deref() == Some(status) {
            return None;
        }
        let time = after.iter().map(Change::timestamp).max().unwrap_or(0);
        let options = automerge::transaction::CommitOptions::default()
            .with_message(RESTORED_NOTE.to_owned())
            .with_time(time);
        let mut tx = doc.transaction();
        automerge::transaction::Transactable::put(
            &mut tx,
            automerge::ROOT,
            crate::record::STATUS,
            status,
        )
        .ok()?;
        let (hash, _) = tx.commit_with(options);
        let change = doc.get_change_by_hash(&hash?)?.clone();
        self.remember(std::iter::once(&change));
        Some(change)
    }

    /// Applies changes to the document: with [`DocSync::verify_loads`], only if it still saves
    /// and loads afterwards (else it is left as it was); a panic in automerge is an error.
    fn apply(&mut self, changes: Vec<Change>) -> Result<(), SyncError> {
        let doc = self.record.doc_mut();
        if self.verify {
            return integrity::apply_checked(doc, changes).map_err(|e| match e {
                Unloadable::Refused(e) => SyncError::Apply(e),
                Unloadable::WouldBreak => SyncError::WouldBreak,
            });
        }
        match integrity::guarded(|| doc.apply_changes(changes)) {
            Some(result) => result.map_err(|e| SyncError::Apply(e.to_string())),
            None => Err(SyncError::WouldBreak),
        }
    }

    fn remember<'a>(&mut self, changes: impl Iterator<Item = &'a Change>) {
        if self.cache.enabled {
            for change in changes {
                self.cache
                    .bytes
                    .entry(change.hash())
                    .or_insert_with(|| change.raw_bytes().to_vec());
            }
            self.catch_up();
        }
    }

    /// Brings a server's change graph up to the document (which may also have been edited
    /// through [`DocSync::record_mut`]).
    fn catch_up(&mut self) {
        if self.cache.enabled {
            self.cache.graph.catch_up(self.record.doc());
        }
    }

    /// Whether the document has the change: from a server's graph, kept caught up (automerge's
    /// lookup by hash decodes change metadata), or from the document.
    fn knows(&self, hash: &ChangeHash) -> bool {
        if self.cache.enabled {
            self.cache.graph.contains(hash)
        } else {
            has_change(self.record.doc(), hash)
        }
    }

    /// The next automerge sync message for `peer`, if there is anything to say.
    ///
    /// Automerge asks only for the peer's heads it lacks; the dependencies of changes that wait
    /// in [`DocSync::receive`] are asked for too, or the peer (which believes it sent them, or
    /// whose bloom filter said we had them) would never send them and sync would stall.
    ///
    /// With [`DocSync::hold_until_answered`], a peer that was sent changes gets nothing more
    /// until it answers (or [`DocSync::release_held`]).
    pub fn generate(&mut self, peer: &str) -> Option<Vec<u8>> {
        if let Some(awaiting) = &mut self.awaiting
            && awaiting.sent_changes.contains(peer)
        {
            awaiting.held.insert(peer.to_owned());
            return None;
        }
        // Automerge answers every message as it arrives. A server that drains its queue reads
        // several before answering: a phone's change, then the phone's next message (no
        // changes, heads equal to ours now), which automerge takes to mean the phone knows our
        // heads, and it would answer nothing. The phone would never learn that its change
        // arrived. Forgetting what we last sent makes this answer carry our heads.
        self.catch_up();
        let mut state = self.take_state(peer);
        if self.owe_answer.remove(peer) {
            state.last_sent_heads.clear();
        }
        let sent_before = state.sent_hashes.len();
        let message = if self.cache.enabled {
            let view = self.views.entry(peer.to_owned()).or_default();
            generate_cached(self.record.doc(), &mut state, view, &mut self.cache)
        } else {
            self.record.doc().generate_sync_message(&mut state)
        };
        // Changes the peer lacked change its heads, so it will answer. (Not any entry: an empty
        // document sent whole changes nothing, and the peer stays silent.)
        let sent_changes = state.sent_hashes.len() > sent_before;
        self.put_state(peer, state);
        let mut message = message?;
        if let Some(waiting) = self.deferred.get(peer) {
            let held: HashSet<ChangeHash> = waiting.iter().map(Change::hash).collect();
            for dep in waiting.iter().flat_map(Change::deps) {
                if !self.knows(dep) && !held.contains(dep) && !message.need.contains(dep) {
                    message.need.push(*dep);
                }
            }
            // The encoding requires sorted hashes.
            message.need.sort();
        }
        if let Some(awaiting) = &mut self.awaiting
            && sent_changes
        {
            awaiting.sent_changes.insert(peer.to_owned());
        }
        Some(message.encode())
    }

    /// Flow control for a server: once a peer has been sent changes, [`DocSync::generate`]
    /// holds back further messages to it until it answers, which it does (an automerge peer
    /// answers a message that changed its heads). Without this, in a reconnect storm every
    /// batch of arrivals sent every peer a message, each answered with a Bloom filter: messages
    /// grew with the square of the peers. With it, each peer gets one message per round trip,
    /// carrying everything that arrived meanwhile. A peer that had the changes already may
    /// not answer, so the caller must [`DocSync::release_held`] after a while.
    pub fn hold_until_answered(&mut self) {
        self.awaiting.get_or_insert_with(Awaiting::default);
    }

    /// How many peers were sent changes and have not answered yet
    /// ([`DocSync::hold_until_answered`]; 0 without it).
    pub fn awaiting_answers(&self) -> usize {
        self.awaiting.as_ref().map_or(0, |a| a.sent_changes.len())
    }

    /// Whether `peer` was sent changes and has not answered yet.
    pub fn is_awaiting(&self, peer: &str) -> bool {
        self.awaiting
            .as_ref()
            .is_some_and(|a| a.sent_changes.contains(peer))
    }

    /// Whether [`DocSync::generate`] has held a message back from some peer.
    pub fn has_held(&self) -> bool {
        self.awaiting.as_ref().is_some_and(|a| !a.held.is_empty())
    }

    /// Stops waiting for the peers that messages were held back from, and returns them: the
    /// caller should [`DocSync::generate`] for each.
    pub fn release_held(&mut self) -> Vec<String> {
        let Some(awaiting) = &mut self.awaiting else {
            return Vec::new();
        };
        let held: Vec<String> = awaiting.held.drain().collect();
        for peer in &held {
            awaiting.sent_changes.remove(peer);
        }
        held
    }
}

/// See [`DocSync::hold_until_answered`].
#[derive(Debug, Default)]
struct Awaiting {
    sent_changes: HashSet<String>,
    held: HashSet<String>,
}

impl Awaiting {
    fn forget(&mut self, peer: &str) {
        self.sent_changes.remove(peer);
        self.held.remove(peer);
    }
}

/// `automerge::sync::SyncDoc::generate_sync_message` (automerge 0.12), step for step, with the
/// changes' bytes and the saved document taken from `cache` instead of rebuilt from the
/// document's operations for every peer, and the changes since a set of heads taken from the
/// cache's graph and the peer's `view` (caught up by the caller).
fn generate_cached(
    doc: &Automerge,
    state: &mut State,
    view: &mut PeerView,
    cache: &mut ChangeCache,
) -> Option<SyncMessage> {
    let graph = &cache.graph;
    let our_heads = doc.get_heads();
    let our_need = if state.read_only {
        Vec::new()
    } else {
        doc.get_missing_deps(state.their_heads.as_deref().unwrap_or_default())
    };
    let their_heads_set: HashSet<&ChangeHash> = state.their_heads.iter().flatten().collect();
    let our_have = if our_need.iter().all(|h| their_heads_set.contains(h)) {
        view.shared
            .move_to(graph, &graph.known(&state.shared_heads));
        let since = view.shared.missing(graph);
        vec![Have {
            last_sync: state.shared_heads.clone(),
            bloom: BloomFilter::from_hashes(since.iter().map(|&p| graph.hash(p))),
        }]
    } else {
        Vec::new()
    };
    if let Some(first) = state.their_have.as_ref().and_then(|h| h.first())
        && !first.last_sync.iter().all(|h| graph.contains(h))
    {
        let mut flags = MessageFlags::new();
        flags.set(MessageFlags::SUPPORTS_SYNC_RESET);
        return Some(SyncMessage {
            heads: our_heads,
            need: Vec::new(),
            have: vec![Have::default()],
            changes: ChunkList::empty(),
            flags: Some(flags),
            version: MessageVersion::V1,
        });
    }
    let supports_v2 = state
        .their_capabilities
        .as_ref()
        .is_some_and(|c| c.contains(&Capability::MessageV2));
    // (version, change entries, hashes of the changes sent)
    let (version, entries, sent): (MessageVersion, Vec<Vec<u8>>, Vec<ChangeHash>) =
        if state.peer_read_only {
            empty_builder(supports_v2)
        } else if let (Some(have), Some(need)) = (&state.their_have, &state.their_need) {
            let send_doc = state.their_heads.as_deref() == Some(&[]) && supports_v2;
            if send_doc {
                whole_document(doc, cache)
            } else {
                let hashes: Vec<ChangeHash> = hashes_to_send(graph, &mut view.theirs, have, need)
                    .into_iter()
                    .filter(|h| !state.sent_hashes.contains(h))
                    .collect();
                // Only a V2 peer that lacks a third of the document gets it whole.
                let n = hashes.len();
                if supports_v2 && n > 0 && n > graph.len() / 3 {
                    whole_document(doc, cache)
                } else {
                    let bytes = cached_changes(doc, cache, &hashes);
                    if hashes.is_empty() {
                        empty_builder(supports_v2)
                    } else if supports_v2 {
                        (MessageVersion::V2, vec![bytes.concat()], hashes)
                    } else {
                        (MessageVersion::V1, bytes, hashes)
                    }
                }
            }
        } else {
            empty_builder(supports_v2)
        };

    let heads_unchanged = state.last_sent_heads == our_heads;
    let heads_equal = state.their_heads.as_ref() == Some(&our_heads);
    if heads_unchanged && state.have_responded {
        if (heads_equal || state.read_only) && sent.is_empty() {
            return None;
        }
        if state.in_flight {
            return None;
        }
    }
    state.have_responded = true;
    state.last_sent_heads.clone_from(&our_heads);
    state.sent_hashes.extend(sent.iter().copied());

    let mut flags = MessageFlags::new();
    flags.set(MessageFlags::SUPPORTS_SYNC_RESET);
    if state.read_only {
        flags.set(MessageFlags::READ_ONLY);
    }
    let heads = if state.needs_reset {
        state.needs_reset = false;
        let supports_reset = state
            .their_capabilities
            .as_ref()
            .is_some_and(|c| c.contains(&Capability::SyncReset));
        if supports_reset {
            flags.set(MessageFlags::SYNC_RESET);
            our_heads
        } else {
            Vec::new()
        }
    } else {
        our_heads
    };
    state.in_flight = true;
    Some(SyncMessage {
        heads,
        need: our_need,
        have: our_have,
        changes: entries.into(),
        flags: Some(flags),
        version,
    })
}

fn empty_builder(supports_v2: bool) -> (MessageVersion, Vec<Vec<u8>>, Vec<ChangeHash>) {
    let version = if supports_v2 {
        MessageVersion::V2
    } else {
        MessageVersion::V1
    };
    (version, Vec::new(), Vec::new())
}

/// The whole document as one V2 entry, saved once per set of heads.
fn whole_document(
    doc: &Automerge,
    cache: &mut ChangeCache,
) -> (MessageVersion, Vec<Vec<u8>>, Vec<ChangeHash>) {
    let heads = doc.get_heads();
    let saved = match &cache.saved {
        Some((at, bytes)) if *at == heads => bytes.clone(),
        _ => {
            let bytes = doc.save();
            cache.saved = Some((heads, bytes.clone()));
            bytes
        }
    };
    let hashes = cache.graph.hashes().to_vec();
    if saved.is_empty() {
        return (MessageVersion::V2, Vec::new(), Vec::new());
    }
    (MessageVersion::V2, vec![saved], hashes)
}

/// The raw bytes of `hashes` (in that order), rebuilding the ones not kept yet in one pass.
fn cached_changes(doc: &Automerge, cache: &mut ChangeCache, hashes: &[ChangeHash]) -> Vec<Vec<u8>> {
    if hashes.iter().any(|h| !cache.bytes.contains_key(h)) {
        let known: Vec<ChangeHash> = cache
            .complete_at
            .iter()
            .filter(|h| has_change(doc, h))
            .copied()
            .collect();
        for change in doc.get_changes(&known) {
            cache
                .bytes
                .entry(change.hash())
                .or_insert_with(|| change.raw_bytes().to_vec());
        }
        cache.complete_at = doc.get_heads();
        if hashes.iter().any(|h| !cache.bytes.contains_key(h)) {
            for change in doc.get_changes(&[]) {
                cache
                    .bytes
                    .entry(change.hash())
                    .or_insert_with(|| change.raw_bytes().to_vec());
            }
        }
    }
    hashes
        .iter()
        .filter_map(|h| cache.bytes.get(h).cloned())
        .collect()
}

/// `automerge`'s `get_hashes_to_send`: the changes since the peer's last sync that are in none
/// of its Bloom filters, the changes depending on those, and the changes it asked for. `theirs`
/// follows the filters' `last_sync` heads.
fn hashes_to_send(
    graph: &Graph,
    theirs: &mut Ancestors,
    have: &[Have],
    need: &[ChangeHash],
) -> Vec<ChangeHash> {
    let need: Vec<ChangeHash> = need.iter().filter(|h| graph.contains(h)).copied().collect();
    if have.is_empty() {
        return need;
    }
    let last_sync: Vec<ChangeHash> = have
        .iter()
        .flat_map(|h| h.last_sync.iter())
        .copied()
        .collect();
    theirs.move_to(graph, &graph.known(&last_sync));
    let since = theirs.missing(graph);
    // Positions are in causal order, so one pass adds whatever depends on a change to send.
    let mut to_send = crate::change_graph::Bits::default();
    for &p in &since {
        let hash = graph.hash(p);
        if have.iter().all(|h| !h.bloom.contains_hash(&hash))
            || graph.deps(p).iter().any(|&d| to_send.get(d))
        {
            to_send.set(p);
        }
    }
    let mut out: Vec<ChangeHash> = need
        .into_iter()
        .filter(|h| graph.position(h).is_none_or(|p| !to_send.get(p)))
        .collect();
    out.extend(
        since
            .into_iter()
            .filter(|&p| to_send.get(p))
            .map(|p| graph.hash(p)),
    );
    out
}
