//! One task per document in use.
//!
//! The task owns the document and its sync state with each connected peer, so messages for one
//! document are handled in order while different documents proceed in parallel. For each
//! incoming sync message it:
//!
//! 1. checks that the sender may read the document (if not, it answers exactly as for a document
//!    that does not exist);
//! 2. passes every new change through the write policy ([`PolicyGate`]);
//! 3. stores the accepted changes durably and only then answers the sender;
//! 4. forwards the changes to every other peer that has the document open.
//!
//! A sync for an unknown id starts a new document private to that connection; it becomes a
//! stored record once its first changes make a complete record the sender may create. When no
//! peer has used the document for a while, the task compacts it, saves sync states, and ends.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use saksi_shared::automerge::ActorId;
use saksi_shared::integrity::guarded;
use saksi_shared::policy::{NOT_A_MEMBER, PolicyGate, Refusal, RefusalCode, check_created};
use saksi_shared::protocol::Message;
use saksi_shared::record::{Editor, Record, RecordError};
use saksi_shared::sync::{DocSync, Incoming, Received, SyncError};
use saksi_shared::{DocumentId, Millis};
use tokio::sync::{mpsc, oneshot};

use super::{BindingsBatch, ConnId, Peer, Who};
use crate::app::AppState;
use crate::storage::{AuditEvent, DocumentRow, DocumentWrite, StorageError};

/// A read of a document (absent if there is no such document).
pub type ReadFn = Box<dyn FnOnce(Option<&Record>) + Send>;
/// An edit made on the server for a signed-in user.
pub type EditFn = Box<dyn FnOnce(&mut Record, &Editor, Millis) -> Result<(), RecordError> + Send>;

/// A request to a document task.
pub enum Command {
    /// A `sync` or `request` message from a connection.
    Sync {
        peer: Peer,
        who: Who,
        data: Vec<u8>,
        is_request: bool,
    },
    /// The connection closed.
    Close { conn: ConnId },
    /// What the connection's user may read changed: stop serving it if it may no longer read
    /// this document.
    Access { peer: Peer, who: Who },
    /// Read the document (console, exports).
    Read(ReadFn),
    /// An edit made on the server on behalf of a signed-in user (console review actions and
    /// conflict resolution); stored and forwarded like any change.
    Edit {
        device: String,
        editor: Editor,
        edit: EditFn,
        reply: oneshot::Sender<Result<(), EditError>>,
    },
    /// The server is stopping: write back (sync states, snapshot) and end.
    Shutdown(oneshot::Sender<()>),
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Command::Sync { .. } => "Sync",
            Command::Close { .. } => "Close",
            Command::Access { .. } => "Access",
            Command::Read(_) => "Read",
            Command::Edit { .. } => "Edit",
            Command::Shutdown(_) => "Shutdown",
        };
        f.write_str(name)
    }
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
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The registry of document tasks.
#[derive(Debug, Default)]
pub struct Documents {
    tasks: Mutex<HashMap<DocumentId, mpsc::Sender<Command>>>,
    /// Set once shutdown starts: no new document tasks.
    stopping: std::sync::atomic::AtomicBool,
}

/// Commands queued per document before senders wait, which is also how many messages one batch
/// can take. In a reconnect storm every batch makes a message for every peer of the document:
/// at 256, 1,000 phones reconnecting at once never converged (0 of 1,000 in 300 s); at 4,096
/// they converged in about 100 s (BENCHMARKS.md). Since peers are held to one message in flight
/// ([`DocSync::hold_until_answered`]) batches matter less: 512 converged in 74 s as 4,096 did in
/// 77 s, with the same peak memory. The bound counts messages, not bytes (each at
/// most `max_frame_bytes`): a hostile device's flood is limited by how fast the task drains
/// it, as it already was at 256 with several documents (SECURITY.md, denial of service).
const QUEUE: usize = 4096;

/// Most queued commands handled together (all that the queue can hold).
const MAX_BATCH: usize = QUEUE;

impl Documents {
    /// How many documents are in memory.
    pub fn loaded(&self) -> usize {
        self.tasks.lock().expect("documents lock").len()
    }

    /// Asks every document task to write back and end, and waits for them. Commands sent
    /// afterwards are dropped (the server is stopping).
    pub async fn shutdown(&self) -> usize {
        self.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let tasks: Vec<_> = self
            .tasks
            .lock()
            .expect("documents lock")
            .drain()
            .map(|(_, tx)| tx)
            .collect();
        let mut done = Vec::new();
        for tx in tasks {
            let (reply, rx) = oneshot::channel();
            if tx.send(Command::Shutdown(reply)).await.is_ok() {
                done.push(rx);
            }
        }
        let count = done.len();
        for rx in done {
            let _ = rx.await;
        }
        count
    }

    /// Sends a command to the document's task, starting it if needed.
    pub async fn send(&self, state: &Arc<AppState>, id: DocumentId, mut cmd: Command) {
        if self.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        loop {
            let sender = {
                let mut tasks = self.tasks.lock().expect("documents lock");
                tasks
                    .entry(id)
                    .or_insert_with(|| {
                        let (tx, rx) = mpsc::channel(QUEUE);
                        let task = DocumentTask::new(state.clone(), id);
                        state.runtime.spawn(task.run(rx));
                        tx
                    })
                    .clone()
            };
            match sender.send(cmd).await {
                Ok(()) => return,
                Err(mpsc::error::SendError(returned)) => {
                    // The task retired between lookup and send: start a new one.
                    cmd = returned;
                    let mut tasks = self.tasks.lock().expect("documents lock");
                    if tasks.get(&id).is_some_and(|s| s.same_channel(&sender)) {
                        tasks.remove(&id);
                    }
                }
            }
        }
    }

    /// Reads a document through its task.
    pub async fn read<T: Send + 'static>(
        &self,
        state: &Arc<AppState>,
        id: DocumentId,
        f: impl FnOnce(Option<&Record>) -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.send(
            state,
            id,
            Command::Read(Box::new(move |record| {
                let _ = tx.send(f(record));
            })),
        )
        .await;
        rx.await.ok()
    }

    /// Makes an edit on the server for `editor` (signed in on `device`), stores it and
    /// forwards it to connected peers.
    pub async fn edit(
        &self,
        state: &Arc<AppState>,
        id: DocumentId,
        device: &str,
        editor: Editor,
        edit: impl FnOnce(&mut Record, &Editor, Millis) -> Result<(), RecordError> + Send + 'static,
    ) -> Result<(), EditError> {
        let (reply, rx) = oneshot::channel();
        self.send(
            state,
            id,
            Command::Edit {
                device: device.to_owned(),
                editor,
                edit: Box::new(edit),
                reply,
            },
        )
        .await;
        rx.await
            .unwrap_or(Err(EditError::Storage(StorageError::Closed)))
    }

    fn retire(&self, id: &DocumentId, rx: &mpsc::Receiver<Command>) -> bool {
        let mut tasks = self.tasks.lock().expect("documents lock");
        if !rx.is_empty() {
            return false;
        }
        tasks.remove(id);
        true
    }
}

/// What a peer is told when its changes could not be stored (nothing of it was acknowledged;
/// it sends them again).
const STORE_FAILED: &str = "the server could not store the change; it will be taken again later";

/// A stored document in memory.
struct Loaded {
    sync: DocSync,
    row: DocumentRow,
    /// Chunks stored since the last snapshot.
    uncompacted: usize,
}

/// Per-connection state for this document.
struct PeerState {
    peer: Peer,
    /// What the connection's user may read, as last refreshed: checked again before anything
    /// is forwarded to it.
    who: Who,
    /// Changes from this connection were refused: ignore it until it reconnects.
    refused: bool,
    /// When this peer was first put off for a later flush (a ticket; lower is earlier), so
    /// that the peers put off longest are served first.
    waiting_since: Option<u64>,
}

struct DocumentTask {
    state: Arc<AppState>,
    id: DocumentId,
    doc: Option<Loaded>,
    /// The document could not be loaded (corrupt or unreadable storage).
    broken: bool,
    peers: HashMap<ConnId, PeerState>,
    /// New documents being created by a connection, or ids it may not read.
    pending: HashMap<ConnId, (Peer, DocSync, bool)>,
    /// Peers owed an answer, and whether the document changed, since the last flush.
    to_answer: HashSet<ConnId>,
    changed: bool,
    /// Since when [`DocSync`] has held messages back from peers that have not answered yet
    /// (see [`DocSync::hold_until_answered`]); see [`HOLD_QUIET`] and [`HOLD_MAX`].
    held_since: Option<Instant>,
    /// The last ticket given to a peer put off ([`PeerState::waiting_since`]).
    tickets: u64,
}

/// Held messages go out anyway once the document has had no message for this long. Peers
/// answer within a round trip; this covers one that had the changes already and so had nothing
/// to say, without delaying it long when the server is not busy. (0.5 s released holds in the
/// lulls of the storm benchmark too: 98 s to converge instead of 77 s.)
const HOLD_QUIET: Duration = Duration::from_secs(2);
/// ... or, on a busy document, after this long. In the reconnect-storm benchmark (1,000 phones)
/// round trips took seconds: with a 2 s limit instead of 10 s the storm took 24 % longer to
/// converge and sent 64 % more bytes up.
const HOLD_MAX: Duration = Duration::from_secs(10);

/// A peer whose connection has more than this many bytes of frames not yet handed to its socket
/// gets its next message once it has caught up ([`super::Outbox`]); that message then carries
/// everything that arrived meanwhile. Building every peer's message at once, ahead of the TLS
/// writes, held up to a few hundred megabytes of messages in a 1,000-phone storm (BENCHMARKS.md).
const BACKLOG_LIMIT: usize = 64 * 1024;
/// At most this many peers of a document are sent changes they have not answered yet; the
/// others wait their turn, served in the order they were put off. Each peer answers with its
/// heads and what it has (in a storm, hundreds of hashes each way), so the messages in flight,
/// and the buffers holding them, grow with the peers being served at once. In the 1,000-phone
/// storm (10 documents, one run each): without a window 77 s to converge, 607 MB peak RSS and
/// 1.94 GB sent up; 256 peers 47 s and 524 MB; 64 peers 46 s and 417 MB; 16 peers 40 s,
/// 389 MB and 0.60 GB up (BENCHMARKS.md). Fewer peers at a time also means fewer rounds, as each
/// one served learns more of what the others sent.
const WINDOW: usize = 16;
/// How soon a document looks again at the peers it put off for their backlog.
const BACKLOG_RETRY: Duration = Duration::from_millis(20);

/// Sets up a stored document's sync to serve many peers.
fn serve_many(sync: &mut DocSync) {
    // Answer from the changes' bytes and the change graph, not by rebuilding them.
    sync.keep_changes();
    // One message in flight per peer: coalesces a reconnect storm.
    sync.hold_until_answered();
    // Never store or forward a change that leaves the record unloadable.
    sync.verify_loads();
}

/// Receives a sync message with every new change checked by the write policy. Returns what
/// happened and the actor bindings it added (to be stored with the changes).
fn receive_checked(
    state: &AppState,
    doc_id: DocumentId,
    sync: &mut DocSync,
    key: &str,
    data: &[u8],
    who: &Who,
) -> (Result<Received, SyncError>, Vec<(String, String)>) {
    let mut batch = BindingsBatch {
        shared: &state.bindings,
        added: Vec::new(),
    };
    let mut gate = PolicyGate {
        doc_id,
        who,
        bindings: &mut batch,
    };
    let received = sync.receive(key, data, &mut gate);
    (received, batch.added)
}

/// Sends an automerge sync message for `document` to `peer`.
fn send_sync(server: &str, document: DocumentId, peer: &Peer, data: Vec<u8>) {
    peer.send(
        Message::Sync {
            sender_id: server.to_owned(),
            target_id: peer.peer_id.clone(),
            document_id: document,
            data,
        }
        .encode(),
    );
}

fn peer_key(conn: ConnId) -> String {
    format!("c{conn}")
}

impl DocumentTask {
    fn new(state: Arc<AppState>, id: DocumentId) -> Self {
        DocumentTask {
            state,
            id,
            doc: None,
            broken: false,
            peers: HashMap::new(),
            pending: HashMap::new(),
            to_answer: HashSet::new(),
            changed: false,
            held_since: None,
            tickets: 0,
        }
    }

    fn server_actor() -> ActorId {
        ActorId::from(crate::accounts::random_16())
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        if let Err(e) = self.load().await {
            tracing::error!(doc = %self.id, error = %e, "document could not be loaded");
            self.broken = true;
        }
        let idle = Duration::from_secs(self.state.config.evict_idle_document_seconds);
        let hold_quiet = HOLD_QUIET.min(idle);
        let mut last_command = Instant::now();
        loop {
            // Held messages wait for a quiet spell; answers put off for a backlog are retried.
            let hold_left = self
                .held_since
                .map(|_| hold_quiet.saturating_sub(last_command.elapsed()));
            let wait = match (self.to_answer.is_empty(), hold_left) {
                (true, None) => idle,
                (true, Some(left)) => left,
                (false, None) => BACKLOG_RETRY,
                (false, Some(left)) => left.min(BACKLOG_RETRY),
            };
            let received = tokio::time::timeout(wait, rx.recv()).await;
            if received.is_ok() {
                last_command = Instant::now();
            }
            match received {
                Ok(Some(Command::Shutdown(reply))) => {
                    self.finish().await;
                    let _ = reply.send(());
                    return;
                }
                Ok(Some(cmd)) => {
                    // Under load, take everything already queued before answering: the changes
                    // of all those messages are checked, applied and stored together, and each
                    // peer then gets one message covering all of it, not one per message.
                    let mut queued = vec![cmd];
                    let mut shutdown = None;
                    while queued.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(Command::Shutdown(reply)) => {
                                shutdown = Some(reply);
                                break;
                            }
                            Ok(cmd) => queued.push(cmd),
                            Err(_) => break,
                        }
                    }
                    self.handle_all(queued).await;
                    if self
                        .held_since
                        .is_some_and(|since| since.elapsed() >= HOLD_MAX)
                    {
                        self.release_held();
                    }
                    self.flush();
                    if let Some(reply) = shutdown {
                        self.finish().await;
                        let _ = reply.send(());
                        return;
                    }
                }
                Ok(None) => break,
                Err(_) if self.held_since.is_some() || !self.to_answer.is_empty() => {
                    if self.held_since.is_some() && last_command.elapsed() >= hold_quiet {
                        self.release_held();
                    }
                    self.flush();
                }
                Err(_) => {
                    if self.peers.is_empty()
                        && self.pending.is_empty()
                        && self.state.documents.retire(&self.id, &rx)
                    {
                        // Nobody can reach this task any more; finish what was queued.
                        rx.close();
                        while let Some(cmd) = rx.recv().await {
                            self.handle(cmd).await;
                        }
                        self.flush();
                        break;
                    }
                }
            }
        }
        self.finish().await;
    }

    async fn load(&mut self) -> Result<(), String> {
        let id = self.id;
        let stored = self
            .state
            .db
            .run(move |s| match s.document(&id)? {
                None => Ok(None),
                Some(row) => Ok(Some((row, s.chunks(&id)?))),
            })
            .await
            .map_err(|e| e.to_string())?;
        if let Some((row, mut chunks)) = stored {
            let uncompacted = chunks.len().saturating_sub(1);
            let record =
                Record::load(&chunks.concat(), Self::server_actor()).map_err(|e| e.to_string())?;
            let mut sync = DocSync::new(record);
            serve_many(&mut sync);
            // A compacted document is one document chunk (type 0 after the magic bytes and the
            // checksum): a cold open sends it as it is instead of saving the document again.
            if let [snapshot] = chunks.as_mut_slice()
                && snapshot.get(8) == Some(&0)
            {
                sync.keep_saved(std::mem::take(snapshot));
            }
            self.doc = Some(Loaded {
                sync,
                row,
                uncompacted,
            });
        }
        Ok(())
    }

    /// Saves sync states and compacts before the task ends.
    async fn finish(&mut self) {
        let conns: Vec<ConnId> = self.peers.keys().copied().collect();
        for conn in conns {
            self.close(conn).await;
        }
        if let Some(loaded) = &mut self.doc
            && loaded.uncompacted > 0
        {
            let snapshot = loaded.sync.record().save();
            let id = self.id;
            match self.state.db.run(move |s| s.compact(&id, &snapshot)).await {
                Ok(()) => loaded.uncompacted = 0,
                Err(e) => tracing::warn!(doc = %self.id, error = %e, "compaction failed"),
            }
        }
    }

    /// Handles queued commands in order; consecutive sync messages for this (existing,
    /// readable) document from different connections are received as one batch.
    async fn handle_all(&mut self, commands: Vec<Command>) {
        let mut group: Vec<(Peer, Who, Vec<u8>)> = Vec::new();
        for cmd in commands {
            if let Command::Sync {
                peer,
                who,
                data,
                is_request,
            } = cmd
            {
                if self.readable_by(&who) {
                    if group.iter().any(|(p, _, _)| p.conn == peer.conn) {
                        self.sync_existing(std::mem::take(&mut group)).await;
                    }
                    group.push((peer, who, data));
                    continue;
                }
                if !group.is_empty() {
                    self.sync_existing(std::mem::take(&mut group)).await;
                }
                self.sync(peer, who, data, is_request).await;
                continue;
            }
            if !group.is_empty() {
                self.sync_existing(std::mem::take(&mut group)).await;
            }
            self.handle(cmd).await;
        }
        if !group.is_empty() {
            self.sync_existing(group).await;
        }
    }

    /// Whether the document exists (and can be served) and `who` may read it.
    fn readable_by(&self, who: &Who) -> bool {
        !self.broken
            && self
                .doc
                .as_ref()
                .is_some_and(|d| d.sync.record().meta().is_some_and(|m| who.may_read(&m)))
    }

    async fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Sync {
                peer,
                who,
                data,
                is_request,
            } => self.sync(peer, who, data, is_request).await,
            Command::Close { conn } => self.close(conn).await,
            Command::Access { peer, who } => {
                // Only peers served this stored document: a connection's own document being
                // created reveals nothing it did not send.
                let Some(p) = self.peers.get_mut(&peer.conn) else {
                    return;
                };
                p.who = who.clone();
                if !self.readable_by(&who) {
                    tracing::info!(doc = %self.id, conn = peer.conn, "access withdrawn: document closed");
                    self.close(peer.conn).await;
                    self.send_unavailable(&peer);
                }
            }
            // Only reached while draining a retired task's queue: `finish` follows anyway.
            Command::Shutdown(reply) => {
                let _ = reply.send(());
            }
            Command::Read(f) => {
                // A read that panics (automerge on a record it cannot rebuild) ends that
                // request only: its reply is dropped, which the caller sees as "not found".
                let record = self.doc.as_ref().map(|d| d.sync.record());
                if guarded(|| f(record)).is_none() {
                    tracing::error!(doc = %self.id, "reading the document panicked");
                }
            }
            Command::Edit {
                device,
                editor,
                edit,
                reply,
            } => {
                let result = self.edit(&device, editor, edit).await;
                let _ = reply.send(result);
            }
        }
    }

    async fn close(&mut self, conn: ConnId) {
        self.pending.remove(&conn);
        self.to_answer.remove(&conn);
        if let Some(p) = self.peers.remove(&conn)
            && let Some(loaded) = &mut self.doc
            && let Some(state) = loaded.sync.remove_peer(&peer_key(conn))
        {
            let (device, id) = (p.peer.device.clone(), self.id);
            if let Err(e) = self
                .state
                .db
                .run(move |s| s.save_sync_states(vec![(device, id, state)]))
                .await
            {
                tracing::warn!(doc = %self.id, conn, error = %e, "sync state not saved");
            }
        }
    }

    fn send_sync(&self, peer: &Peer, data: Vec<u8>) {
        send_sync(&self.state.peer_id, self.id, peer, data);
    }

    fn send_unavailable(&self, peer: &Peer) {
        peer.send(
            Message::DocUnavailable {
                sender_id: self.state.peer_id.clone(),
                target_id: peer.peer_id.clone(),
                document_id: self.id,
            }
            .encode(),
        );
    }

    fn send_error(&self, peer: &Peer, message: String) {
        peer.send(
            Message::Error {
                sender_id: Some(self.state.peer_id.clone()),
                target_id: Some(peer.peer_id.clone()),
                message,
                document_id: Some(self.id),
            }
            .encode(),
        );
    }

    async fn audit_refusal(&self, peer: &Peer, who: &Who, refusal: &Refusal, count: usize) {
        tracing::warn!(
            doc = %self.id,
            device = %peer.device,
            code = ?refusal.code,
            changes = count,
            "change refused"
        );
        let event = AuditEvent {
            at: self.state.clock.now(),
            username: Some(who.user.clone()),
            device_id: Some(peer.device.clone()),
            action: "change_refused".into(),
            target: Some(self.id.to_string()),
            detail: format!("{:?}: {} change(s)", refusal.code, count),
        };
        self.state.audit(event).await;
    }

    async fn sync(&mut self, peer: Peer, who: Who, data: Vec<u8>, is_request: bool) {
        let conn = peer.conn;
        if self.broken {
            self.send_error(&peer, "this document cannot be served right now".into());
            return;
        }
        let readable = self
            .doc
            .as_ref()
            .map(|d| d.sync.record().meta().is_some_and(|m| who.may_read(&m)));
        if readable == Some(true) {
            self.sync_existing(vec![(peer, who, data)]).await;
            return;
        }
        // Unknown or not readable: the same answers in both cases.
        if is_request && !self.pending.contains_key(&conn) {
            self.send_unavailable(&peer);
            return;
        }
        let exists = readable.is_some();
        let (_, mut sync, _) = self.pending.remove(&conn).unwrap_or_else(|| {
            let mut sync = DocSync::new(Record::empty(Self::server_actor()));
            sync.verify_loads();
            (peer.clone(), sync, exists)
        });
        let key = peer_key(conn);
        if !sync.has_peer(&key) {
            sync.add_peer(&key, None);
        }
        let (received, new_actors) =
            receive_checked(&self.state, self.id, &mut sync, &key, &data, &who);
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
        let refusal = match received.refused.first() {
            Some((_, r)) => Some(r.clone()),
            None if !sync.record().is_empty() => check_created(&self.id, sync.record().doc())
                .err()
                .or_else(|| {
                    exists.then(|| Refusal {
                        code: RefusalCode::NotAllowed,
                        detail: NOT_A_MEMBER.into(),
                    })
                }),
            None => None,
        };
        if let Some(refusal) = refusal {
            let count = received.applied.len() + received.refused.len();
            self.audit_refusal(&peer, &who, &refusal, count).await;
            self.send_error(&peer, format!("change refused: {refusal}"));
            return;
        }
        if sync.record().is_empty() {
            if let Some(reply) = sync.generate(&key) {
                self.send_sync(&peer, reply);
            }
            self.pending.insert(conn, (peer, sync, exists));
            return;
        }
        // A complete new record: store it, then it is a document like any other.
        let summary = match sync.record().read().summary() {
            Ok(s) => s,
            Err(e) => {
                self.send_error(&peer, format!("change refused: {e}"));
                return;
            }
        };
        let now = self.state.clock.now();
        let row = DocumentRow {
            id: self.id,
            kind: summary.meta.kind.as_str().to_owned(),
            case_id: summary.meta.case,
            created_by: summary.meta.created_by.clone(),
            title: summary.title,
            status: summary.meta.status.as_str().to_owned(),
            has_conflicts: summary.has_conflicts,
            created_at: now,
            updated_at: now,
        };
        let changes = sync
            .record()
            .doc()
            .get_changes(&[])
            .iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect::<Vec<_>>();
        let count = changes.len();
        let write = DocumentWrite {
            row: row.clone(),
            changes,
            new_actors,
        };
        if let Err(e) = self.state.db.run(move |s| s.append_changes(write)).await {
            tracing::error!(doc = %self.id, error = %e, "new document not stored");
            // The cause is in the log; a peer gets a fixed message (a storage error can name
            // paths and database details).
            self.send_error(&peer, STORE_FAILED.into());
            return;
        }
        tracing::info!(doc = %self.id, kind = %row.kind, device = %peer.device, changes = count, "document created");
        self.state.metrics.changes_stored(count);
        serve_many(&mut sync);
        self.doc = Some(Loaded {
            sync,
            row,
            uncompacted: count,
        });
        if let Some(reply) = self
            .doc
            .as_mut()
            .and_then(|d| d.sync.generate(&peer_key(conn)))
        {
            self.send_sync(&peer, reply);
        }
        self.peers.insert(
            conn,
            PeerState {
                peer,
                who,
                refused: false,
                waiting_since: None,
            },
        );
    }

    /// Receives sync messages from different connections for this existing, readable
    /// document: every new change is checked by the write policy, the accepted ones are
    /// applied together and stored in one write, and only then is anyone answered.
    async fn sync_existing(&mut self, messages: Vec<(Peer, Who, Vec<u8>)>) {
        let messages: Vec<(Peer, Who, Vec<u8>)> = messages
            .into_iter()
            .filter(|(p, _, _)| !self.peers.get(&p.conn).is_some_and(|s| s.refused))
            .collect();
        if messages.is_empty() {
            return;
        }
        // Connections new to this document resume from their device's saved sync state.
        let new: Vec<(ConnId, String)> = messages
            .iter()
            .filter(|(p, _, _)| !self.peers.contains_key(&p.conn))
            .map(|(p, _, _)| (p.conn, p.device.clone()))
            .collect();
        if !new.is_empty() {
            let id = self.id;
            let devices: Vec<String> = new.iter().map(|(_, d)| d.clone()).collect();
            let saved = self
                .state
                .db
                .run(move |s| {
                    devices
                        .iter()
                        .map(|d| s.sync_state(d, &id))
                        .collect::<Result<Vec<_>, _>>()
                })
                .await
                .unwrap_or_else(|_| vec![None; new.len()]);
            for ((conn, _), saved) in new.iter().zip(saved) {
                if let Some(loaded) = &mut self.doc {
                    loaded.sync.add_peer(&peer_key(*conn), saved.as_deref());
                }
            }
            for (p, who, _) in &messages {
                self.peers.entry(p.conn).or_insert_with(|| PeerState {
                    peer: p.clone(),
                    who: who.clone(),
                    refused: false,
                    waiting_since: None,
                });
            }
        }
        for (p, who, _) in &messages {
            if let Some(state) = self.peers.get_mut(&p.conn) {
                state.who = who.clone();
            }
        }
        let Some(loaded) = &mut self.doc else { return };
        let keys: Vec<String> = messages.iter().map(|(p, _, _)| peer_key(p.conn)).collect();
        let mut bindings: Vec<BindingsBatch<'_>> = messages
            .iter()
            .map(|_| BindingsBatch {
                shared: &self.state.bindings,
                added: Vec::new(),
            })
            .collect();
        let results = {
            let mut gates: Vec<PolicyGate<'_, BindingsBatch<'_>>> = messages
                .iter()
                .zip(bindings.iter_mut())
                .map(|((_, who, _), batch)| PolicyGate {
                    doc_id: self.id,
                    who,
                    bindings: batch,
                })
                .collect();
            let mut incoming: Vec<Incoming<'_>> = messages
                .iter()
                .zip(keys.iter())
                .zip(gates.iter_mut())
                .map(|(((_, _, data), key), gate)| Incoming {
                    peer: key,
                    data,
                    gate,
                })
                .collect();
            loaded.sync.receive_batch(&mut incoming)
        };
        // The messages' bytes are not needed past here: free them before waiting for the disk
        // (a batch can hold thousands of messages of tens of kilobytes in a reconnect storm).
        let messages: Vec<(Peer, Who)> = messages.into_iter().map(|(p, w, _)| (p, w)).collect();
        let added: Vec<(String, String)> = bindings.into_iter().flat_map(|b| b.added).collect();
        let changes: Vec<Vec<u8>> = results
            .iter()
            .flatten()
            .flat_map(|r| r.applied.iter().map(|c| c.raw_bytes().to_vec()))
            .collect();
        if !changes.is_empty()
            && let Err(e) = self.store(changes, added).await
        {
            tracing::error!(doc = %self.id, error = %e, "changes not stored");
            for ((peer, _), result) in messages.iter().zip(&results) {
                if result.as_ref().is_ok_and(|r| !r.applied.is_empty()) {
                    self.send_error(peer, STORE_FAILED.into());
                }
            }
            self.reload().await;
            return;
        }
        for ((peer, who), result) in messages.iter().zip(results) {
            let Received {
                applied, refused, ..
            } = match result {
                Ok(r) => r,
                Err(e) => {
                    self.send_error(peer, format!("bad sync message: {e}"));
                    continue;
                }
            };
            if let Some((_, refusal)) = refused.first() {
                let refusal = refusal.clone();
                self.audit_refusal(peer, who, &refusal, refused.len()).await;
                self.send_error(peer, format!("change refused: {refusal}"));
                if let Some(p) = self.peers.get_mut(&peer.conn) {
                    p.refused = true;
                }
            }
            self.answer(peer.conn, !applied.is_empty());
        }
        self.maybe_compact().await;
    }

    /// Notes that the sender needs an answer, and every other peer a forward if the document
    /// changed. [`DocumentTask::flush`] sends them once the queue is drained.
    fn answer(&mut self, from: ConnId, changed: bool) {
        self.to_answer.insert(from);
        self.changed |= changed;
    }

    /// Notes the peers that messages were held back from as owed an answer.
    fn release_held(&mut self) {
        self.held_since = None;
        let Some(loaded) = &mut self.doc else { return };
        let released: HashSet<String> = loaded.sync.release_held().into_iter().collect();
        tracing::debug!(doc = %self.id, peers = released.len(), "held messages released");
        for conn in self.peers.keys() {
            if released.contains(&peer_key(*conn)) {
                self.to_answer.insert(*conn);
            }
        }
    }

    /// Sends the sync messages noted by [`DocumentTask::answer`]: at most one per peer. Peers
    /// whose connection has a backlog ([`BACKLOG_LIMIT`]), or that would exceed the
    /// [`WINDOW`], stay noted for a later flush, which serves the longest put off first.
    fn flush(&mut self) {
        let (to_answer, changed) = (std::mem::take(&mut self.to_answer), self.changed);
        self.changed = false;
        let Some(loaded) = &mut self.doc else { return };
        // Read access is checked per peer before anything goes out: a member removed from the
        // case gets nothing more, even before its connection hears of the change.
        let meta = loaded.sync.record().meta();
        let mut due: Vec<(u64, ConnId)> = self
            .peers
            .iter()
            .filter(|(_, p)| meta.as_ref().is_some_and(|m| p.who.may_read(m)))
            .filter(|(conn, p)| !p.refused && (changed || to_answer.contains(conn)))
            .map(|(conn, p)| (p.waiting_since.unwrap_or(u64::MAX), *conn))
            .collect();
        due.sort_unstable();
        for (_, conn) in due {
            let Some(p) = self.peers.get_mut(&conn) else {
                continue;
            };
            let key = peer_key(conn);
            let window_full =
                loaded.sync.awaiting_answers() >= WINDOW && !loaded.sync.is_awaiting(&key);
            if window_full || p.peer.outbox.backlog() > BACKLOG_LIMIT {
                self.to_answer.insert(conn);
                if p.waiting_since.is_none() {
                    self.tickets += 1;
                    p.waiting_since = Some(self.tickets);
                }
                continue;
            }
            p.waiting_since = None;
            if let Some(data) = loaded.sync.generate(&key) {
                send_sync(&self.state.peer_id, self.id, &p.peer, data);
            }
        }
        if self.held_since.is_none() && loaded.sync.has_held() {
            self.held_since = Some(Instant::now());
        }
    }

    /// Stores new changes and updates the index entry.
    async fn store(
        &mut self,
        changes: Vec<Vec<u8>>,
        new_actors: Vec<(String, String)>,
    ) -> Result<(), StorageError> {
        let Some(loaded) = &mut self.doc else {
            return Ok(());
        };
        let count = changes.len();
        let mut row = loaded.row.clone();
        if let Ok(summary) = loaded.sync.record().read().summary() {
            row.title = summary.title;
            row.status = summary.meta.status.as_str().to_owned();
            row.has_conflicts = summary.has_conflicts;
        }
        row.updated_at = self.state.clock.now();
        let write = DocumentWrite {
            row: row.clone(),
            changes,
            new_actors,
        };
        self.state.db.run(move |s| s.append_changes(write)).await?;
        loaded.row = row;
        loaded.uncompacted += count;
        self.state.metrics.changes_stored(count);
        Ok(())
    }

    /// After a storage failure: the in-memory document is ahead of the disk. Reload it from
    /// storage and restart sync with every peer, so that nothing unstored is ever acknowledged.
    async fn reload(&mut self) {
        let peers: Vec<ConnId> = self.peers.keys().copied().collect();
        self.doc = None;
        if let Err(e) = self.load().await {
            tracing::error!(doc = %self.id, error = %e, "document could not be reloaded");
            self.broken = true;
            return;
        }
        if let Some(loaded) = &mut self.doc {
            for conn in peers {
                loaded.sync.add_peer(&peer_key(conn), None);
            }
        }
    }

    async fn maybe_compact(&mut self) {
        let threshold = self.state.config.compact_after_changes;
        let Some(loaded) = &mut self.doc else { return };
        if loaded.uncompacted < threshold {
            return;
        }
        let snapshot = loaded.sync.record().save();
        let id = self.id;
        match self.state.db.run(move |s| s.compact(&id, &snapshot)).await {
            Ok(()) => {
                tracing::debug!(doc = %self.id, chunks = loaded.uncompacted, "compacted");
                loaded.uncompacted = 0;
            }
            Err(e) => tracing::warn!(doc = %self.id, error = %e, "compaction failed"),
        }
    }

    async fn edit(&mut self, device: &str, editor: Editor, edit: EditFn) -> Result<(), EditError> {
        let now = self.state.clock.now();
        let Some(loaded) = &mut self.doc else {
            return Err(EditError::NotFound);
        };
        let actor = Self::server_actor();
        let heads = loaded.sync.record().heads();
        let record = loaded.sync.record_mut();
        record.set_actor(actor.clone());
        let Some(result) = guarded(|| edit(record, &editor, now)) else {
            tracing::error!(doc = %self.id, "an edit on the server panicked");
            self.reload().await;
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
            return Ok(());
        }
        let mut batch = BindingsBatch {
            shared: &self.state.bindings,
            added: Vec::new(),
        };
        saksi_shared::policy::ActorBindings::bind(&mut batch, &actor, device);
        if let Err(e) = self.store(changes, batch.added).await {
            self.reload().await;
            return Err(e.into());
        }
        self.changed = true;
        Ok(())
    }
}
