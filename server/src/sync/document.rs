//! One task per document in use.
//!
//! The task owns the document, so messages for one document are handled in order while
//! different documents proceed in parallel. What serving a document decides (read check,
//! creation, write policy, storing before answering, batching, hold-back, window) is
//! [`ServedDocument`] in `saksi-shared`, which the test hub drives too; this task only performs
//! its effects: frames to connections, writes and reads on the database, audit entries, and
//! the timers of held messages. When no peer has used the document for a while, the task
//! compacts it, saves sync states, and ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use saksi_shared::automerge::ActorId;
use saksi_shared::integrity::guarded;
use saksi_shared::policy::Principal;
use saksi_shared::record::{Editor, Record, RecordError};
use saksi_shared::served::{
    Effect, Loaded, PeerInfo, PeerMessage, ServedDocument, StoreRequest, Tuning,
};
use saksi_shared::{DeviceId, DocumentId, Timestamp};
use tokio::sync::{mpsc, oneshot};

use super::{ConnId, Peer};
use crate::app::AppState;
use crate::errors::Chain;
use crate::storage::{AuditAction, AuditEvent, DocumentRow, DocumentWrite, FileRef, StorageError};

/// A read of a document (absent if there is no such document).
pub type ReadFn = Box<dyn FnOnce(Option<&Record>) + Send>;
/// An edit made on the server for a signed-in user.
pub type EditFn =
    Box<dyn FnOnce(&mut Record, &Editor, Timestamp) -> Result<(), RecordError> + Send>;

/// A check of a record as it is at one moment in its task (see [`Command::Withdraw`]).
pub type RecordCheck = Box<dyn FnOnce(Option<&Record>) -> bool + Send>;

/// A request to a document task.
pub enum Command {
    /// A `sync` or `request` message from a connection.
    Sync {
        peer: Peer,
        who: Arc<Principal>,
        data: Vec<u8>,
        is_request: bool,
    },
    /// The connection closed.
    Close { conn: ConnId },
    /// What the connection's user may read changed: stop serving it if it may no longer read
    /// this document.
    Access { peer: Peer, who: Arc<Principal> },
    /// Read the document (console, exports).
    Read(ReadFn),
    /// An edit made on the server on behalf of a signed-in user (console review actions and
    /// conflict resolution); stored and forwarded like any change.
    Edit {
        device: DeviceId,
        editor: Editor,
        edit: EditFn,
        reply: oneshot::Sender<Result<(), EditError>>,
    },
    /// The record is destroyed: tell the peers, keep and write back nothing. With a `check`,
    /// only if it holds for the record as it is now (a discard: still a draft), so that nothing
    /// changes the record between the check and the withdrawal. Replies whether it was
    /// withdrawn.
    Withdraw {
        check: Option<RecordCheck>,
        reply: oneshot::Sender<bool>,
    },
    /// A purge is pending (`true`: only reviewers are served) or was undone.
    Hidden(bool),
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
            Command::Withdraw { .. } => "Withdraw",
            Command::Hidden(_) => "Hidden",
            Command::Shutdown(_) => "Shutdown",
        };
        f.write_str(name)
    }
}

/// Why a server-side edit failed: what the served document refused, or the store.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error(transparent)]
    Served(#[from] saksi_shared::served::EditError),
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
/// can take: too few and a reconnect storm never converged (docs/BENCHMARK-NOTES.md, "queue").
/// It counts messages, not bytes; a hostile device's flood is bounded by how fast the task
/// drains it (SECURITY.md, denial of service).
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
        device: &DeviceId,
        editor: Editor,
        edit: impl FnOnce(&mut Record, &Editor, Timestamp) -> Result<(), RecordError> + Send + 'static,
    ) -> Result<(), EditError> {
        let (reply, rx) = oneshot::channel();
        self.send(
            state,
            id,
            Command::Edit {
                device: device.clone(),
                editor,
                edit: Box::new(edit),
                reply,
            },
        )
        .await;
        rx.await
            .unwrap_or(Err(EditError::Storage(StorageError::Closed)))
    }

    /// Tells the record's task (if it is in memory) that the record is destroyed, and waits
    /// until it has told its peers and dropped it.
    pub async fn withdraw(&self, id: DocumentId) {
        let sender = self.tasks.lock().expect("documents lock").get(&id).cloned();
        let Some(sender) = sender else { return };
        let (reply, done) = oneshot::channel();
        let withdraw = Command::Withdraw { check: None, reply };
        if sender.send(withdraw).await.is_ok() {
            let _ = done.await;
        }
    }

    /// Withdraws the record (see [`Command::Withdraw`]) if `check` holds for it now, loading
    /// it if it is not in memory. Returns whether it was withdrawn.
    pub async fn withdraw_if(
        &self,
        state: &Arc<AppState>,
        id: DocumentId,
        check: RecordCheck,
    ) -> bool {
        let (reply, done) = oneshot::channel();
        let withdraw = Command::Withdraw {
            check: Some(check),
            reply,
        };
        self.send(state, id, withdraw).await;
        done.await.unwrap_or(false)
    }

    /// Tells the record's task (if it is in memory) that a purge is pending or was undone.
    pub async fn set_hidden(&self, id: DocumentId, hidden: bool) {
        let sender = self.tasks.lock().expect("documents lock").get(&id).cloned();
        if let Some(sender) = sender {
            let _ = sender.send(Command::Hidden(hidden)).await;
        }
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

/// Held messages go out anyway once the document has had no message for this long. Peers
/// answer within a round trip; this covers one that had the changes already and so had nothing
/// to say, without delaying it long when the server is not busy (docs/BENCHMARK-NOTES.md).
const HOLD_QUIET: Duration = Duration::from_secs(2);
/// ... or, on a busy document, after this long (a shorter limit made the reconnect storm
/// slower and costlier: docs/BENCHMARK-NOTES.md).
const HOLD_MAX: Duration = Duration::from_secs(10);
/// A peer whose connection has more than this many bytes of frames not yet handed to its socket
/// gets its next message once it has caught up ([`super::Outbox`]): building every peer's
/// message ahead of the TLS writes held hundreds of megabytes in a storm (docs/BENCHMARK-NOTES.md).
const BACKLOG_LIMIT: usize = 64 * 1024;
/// At most this many peers of a document are sent changes they have not answered yet; fewer
/// at a time converged a storm faster with less memory (docs/BENCHMARK-NOTES.md, window).
const WINDOW: usize = 16;
/// How soon a document looks again at the peers it put off for their backlog.
const BACKLOG_RETRY: Duration = Duration::from_millis(20);

/// What [`DocumentTask::load`] reads: the document and its index entry.
type Stored = (Loaded, DocumentRow);

struct DocumentTask {
    state: Arc<AppState>,
    id: DocumentId,
    served: ServedDocument,
    /// The connections the document has heard from (to send frames, and read their backlog).
    peers: HashMap<ConnId, Peer>,
    /// The index entry of the stored document.
    row: Option<DocumentRow>,
    /// The error of the last store that failed (for a server-side edit's caller).
    store_error: Option<StorageError>,
    /// A monotonic clock for held messages (the state's clock can be a test's hand-moved one).
    started: Instant,
}

fn server_actor() -> ActorId {
    ActorId::from(crate::accounts::random_16())
}

impl DocumentTask {
    fn new(state: Arc<AppState>, id: DocumentId) -> Self {
        let tuning = Self::tuning(&state);
        DocumentTask {
            served: ServedDocument::new(id, state.peer_id.clone(), tuning, None),
            state,
            id,
            peers: HashMap::new(),
            row: None,
            store_error: None,
            started: Instant::now(),
        }
    }

    fn tuning(state: &AppState) -> Tuning {
        let idle = Duration::from_secs(state.config.evict_idle_document_seconds);
        Tuning {
            hold: true,
            window: WINDOW,
            backlog_limit: BACKLOG_LIMIT,
            hold_quiet: HOLD_QUIET.min(idle),
            hold_max: HOLD_MAX,
            compact_after: state.config.compact_after_changes,
        }
    }

    /// Time since the task started, on the monotonic clock (for holding messages back).
    fn mono(&self) -> Duration {
        self.started.elapsed()
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let tuning = Self::tuning(&self.state);
        self.served = match self.load().await {
            // Destroyed: nothing is read, nothing served.
            _ if self.state.is_withdrawn(&self.id) => {
                ServedDocument::withdrawn(self.id, self.state.peer_id.clone(), tuning)
            }
            Ok(stored) => {
                let (stored, row) = split(stored);
                self.row = row;
                ServedDocument::new(self.id, self.state.peer_id.clone(), tuning, stored)
            }
            Err(e) => {
                tracing::error!(doc = %self.id, error = %e, "document could not be loaded");
                ServedDocument::broken(self.id, self.state.peer_id.clone(), tuning)
            }
        };
        if !self.served.is_withdrawn() {
            let id = self.id;
            if let Ok(Some(_)) = self.state.db.run(move |s| s.pending_purge(&id)).await {
                self.served.set_hidden(true);
            }
        }
        let idle = Duration::from_secs(self.state.config.evict_idle_document_seconds);
        let hold_quiet = HOLD_QUIET.min(idle);
        let mut last_command = Instant::now();
        loop {
            // Held messages wait for a quiet spell; answers put off for a backlog are retried.
            let hold_left = self
                .served
                .held_since()
                .map(|_| hold_quiet.saturating_sub(last_command.elapsed()));
            let wait = match (self.served.has_unanswered(), hold_left) {
                (false, None) => idle,
                (false, Some(left)) => left,
                (true, None) => BACKLOG_RETRY,
                (true, Some(left)) => left.min(BACKLOG_RETRY),
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
                    let now = self.mono();
                    self.served.tick(now, now);
                    self.flush().await;
                    if let Some(reply) = shutdown {
                        self.finish().await;
                        let _ = reply.send(());
                        return;
                    }
                }
                Ok(None) => break,
                Err(_) if self.served.held_since().is_some() || self.served.has_unanswered() => {
                    let now = self.mono();
                    let quiet = last_command.elapsed();
                    self.served.tick(now, now.saturating_sub(quiet));
                    self.flush().await;
                }
                Err(_) => {
                    if self.served.is_idle() && self.state.documents.retire(&self.id, &rx) {
                        // Nobody can reach this task any more; finish what was queued.
                        rx.close();
                        let mut rest = Vec::new();
                        while let Some(cmd) = rx.recv().await {
                            rest.push(cmd);
                        }
                        self.handle_all(rest).await;
                        self.flush().await;
                        break;
                    }
                }
            }
        }
        self.finish().await;
    }

    async fn load(&self) -> Result<Option<Stored>, String> {
        let id = self.id;
        let stored = self
            .state
            .db
            .run(move |s| match s.document(&id)? {
                None => Ok(None),
                Some(row) => Ok(Some((row, s.chunks(&id)?))),
            })
            .await
            .map_err(|e| Chain(&e).to_string())?;
        let Some((row, mut chunks)) = stored else {
            return Ok(None);
        };
        let uncompacted = chunks.len().saturating_sub(1);
        let record = Record::load(&chunks.concat(), server_actor()).map_err(|e| e.to_string())?;
        // A compacted document is one document chunk (type 0 after the magic bytes and the
        // checksum): a cold open sends it as it is instead of saving the document again.
        let snapshot = match chunks.as_mut_slice() {
            [snapshot] if snapshot.get(8) == Some(&0) => Some(std::mem::take(snapshot)),
            _ => None,
        };
        Ok(Some((
            Loaded {
                record,
                snapshot,
                uncompacted,
            },
            row,
        )))
    }

    /// Performs the served document's effects, in order, until there are none.
    async fn perform(&mut self) {
        while let Some(effect) = self.served.next_effect() {
            match effect {
                Effect::Send { conn, frame } => {
                    if let Some(peer) = self.peers.get(&conn) {
                        peer.send(frame);
                    }
                }
                Effect::Store(request) => {
                    let ok = self.store(request).await;
                    self.served.stored(ok);
                    if matches!(self.store_error, Some(StorageError::Withdrawn)) {
                        // Destroyed from the command line while in memory here: the database
                        // refused the write; the record is dropped and its peers are told.
                        self.store_error = None;
                        self.state
                            .withdrawn
                            .write()
                            .expect("withdrawn lock")
                            .insert(self.id);
                        self.served.withdraw();
                        self.row = None;
                    }
                }
                Effect::Refused {
                    peer,
                    user,
                    refusal,
                    changes,
                } => {
                    tracing::warn!(
                        doc = %self.id,
                        device = %peer.device,
                        code = ?refusal.code,
                        changes,
                        "change refused"
                    );
                    let event = AuditEvent {
                        at: self.state.clock.now(),
                        username: Some(user),
                        device_id: Some(peer.device),
                        action: AuditAction::ChangeRefused,
                        target: Some(self.id.to_string()),
                        detail: format!("{:?}: {} change(s)", refusal.code, changes),
                    };
                    // Counts changes, as its name says (one refusal can cover many).
                    self.state
                        .metrics
                        .changes_refused
                        .fetch_add(changes as u64, std::sync::atomic::Ordering::Relaxed);
                    self.state.audit(event).await;
                }
                Effect::SaveSyncState { device, state } => {
                    let id = self.id;
                    if let Err(e) = self
                        .state
                        .db
                        .run(move |s| s.save_sync_states(vec![(device, id, state)]))
                        .await
                    {
                        tracing::warn!(doc = %self.id, error = %Chain(&e), "sync state not saved");
                    }
                }
                Effect::Compact { snapshot } => {
                    let id = self.id;
                    match self.state.db.run(move |s| s.compact(&id, &snapshot)).await {
                        Ok(()) => {
                            tracing::debug!(doc = %self.id, "compacted");
                            self.served.compacted(true);
                        }
                        Err(e) => {
                            tracing::warn!(doc = %self.id, error = %Chain(&e), "compaction failed");
                            self.served.compacted(false);
                        }
                    }
                }
                Effect::Reload => match self.load().await {
                    Ok(stored) => {
                        let (stored, row) = split(stored);
                        self.row = row;
                        self.served.reload(stored);
                    }
                    Err(e) => {
                        tracing::error!(doc = %self.id, error = %e, "document could not be reloaded");
                        self.served.reload(None);
                    }
                },
            }
        }
    }

    /// Stores changes (and creates or updates the index entry); `false` if it failed.
    async fn store(&mut self, request: StoreRequest) -> bool {
        let now = self.state.clock.now();
        let count = request.changes.len();
        let mut row = match (&self.row, &request.summary) {
            (Some(row), _) if !request.created => row.clone(),
            (_, Some(summary)) => DocumentRow {
                id: self.id,
                kind: summary.meta.kind.as_str().to_owned(),
                case_id: summary.meta.case,
                created_by: summary.meta.created_by.clone(),
                title: String::new(),
                status: String::new(),
                has_conflicts: false,
                created_at: now,
                updated_at: now,
                consent_withdrawn: false,
            },
            (Some(row), None) => row.clone(),
            (None, None) => {
                tracing::error!(doc = %self.id, "changes for a document without an index entry");
                return false;
            }
        };
        if let Some(summary) = &request.summary {
            row.title = summary.title.clone();
            row.status = summary.meta.status.as_str().to_owned();
            row.has_conflicts = summary.has_conflicts;
            row.consent_withdrawn = summary.consent_withdrawn;
        }
        row.updated_at = now;
        let files = request.summary.as_ref().map(|summary| {
            summary
                .attachments
                .iter()
                .map(|a| FileRef {
                    doc_id: self.id,
                    attachment_id: a.id.clone(),
                    sha256: a.sha256.clone(),
                    size: a.size,
                    media_type: a.media_type.clone(),
                    device_id: a.device.as_str().into(),
                })
                .collect()
        });
        let write = DocumentWrite {
            row: row.clone(),
            changes: request.changes,
            new_actors: request.new_actors,
            files,
        };
        match self.state.db.run(move |s| s.append_changes(write)).await {
            Ok(()) => {
                if let Some(creator) = &request.creator {
                    tracing::info!(doc = %self.id, kind = %row.kind, device = %creator.device, changes = count, "document created");
                }
                self.state.metrics.changes_stored(count);
                self.row = Some(row);
                self.store_error = None;
                true
            }
            Err(e) => {
                if request.created {
                    tracing::error!(doc = %self.id, error = %Chain(&e), "new document not stored");
                } else {
                    tracing::error!(doc = %self.id, error = %Chain(&e), "changes not stored");
                }
                self.store_error = Some(e);
                false
            }
        }
    }

    /// Saves sync states and compacts before the task ends.
    async fn finish(&mut self) {
        self.served.finish();
        self.perform().await;
        self.peers.clear();
    }

    /// Sends what peers are owed.
    async fn flush(&mut self) {
        let now = self.mono();
        let peers = &self.peers;
        self.served.flush(now, |conn| {
            peers.get(&conn).map_or(0, |p| p.outbox.backlog())
        });
        self.perform().await;
    }

    /// Handles queued commands in order; consecutive sync messages go to the served document
    /// together (it batches those for the stored document).
    async fn handle_all(&mut self, commands: Vec<Command>) {
        let mut group: Vec<PeerMessage> = Vec::new();
        for cmd in commands {
            match cmd {
                Command::Sync {
                    peer,
                    who,
                    data,
                    is_request,
                } => {
                    let info = PeerInfo {
                        conn: peer.conn,
                        peer_id: peer.peer_id.clone(),
                        device: peer.device.clone(),
                    };
                    self.peers.insert(peer.conn, peer);
                    group.push(PeerMessage {
                        peer: info,
                        who,
                        data,
                        is_request,
                    });
                }
                other => {
                    if !group.is_empty() {
                        self.receive(std::mem::take(&mut group)).await;
                    }
                    self.handle(other).await;
                }
            }
        }
        if !group.is_empty() {
            self.receive(group).await;
        }
    }

    /// Hands sync messages to the served document, with the saved sync states of connections
    /// new to it, performing its effects (a store comes back before the next message).
    async fn receive(&mut self, mut messages: Vec<PeerMessage>) {
        while !messages.is_empty() {
            let resuming = self.served.resuming(&messages);
            let mut saved = HashMap::new();
            if !resuming.is_empty() {
                let id = self.id;
                let devices: Vec<DeviceId> = resuming.iter().map(|(_, d)| d.clone()).collect();
                let states = self
                    .state
                    .db
                    .run(move |s| {
                        devices
                            .iter()
                            .map(|d| s.sync_state(d, &id))
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .await
                    .unwrap_or_else(|_| vec![None; resuming.len()]);
                saved.extend(resuming.iter().map(|(conn, _)| *conn).zip(states));
            }
            messages = self.served.receive(messages, &saved, &self.state.bindings);
            self.perform().await;
        }
    }

    async fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Sync { .. } => unreachable!("sync messages are grouped by handle_all"),
            Command::Close { conn } => {
                self.served.peer_left(conn);
                self.perform().await;
                self.peers.remove(&conn);
            }
            Command::Access { peer, who } => {
                if self.served.access_changed(peer.conn, who) {
                    tracing::info!(doc = %self.id, conn = peer.conn, "access withdrawn: document closed");
                }
                self.perform().await;
            }
            // Only reached while draining a retired task's queue: `finish` follows anyway.
            Command::Shutdown(reply) => {
                let _ = reply.send(());
            }
            Command::Withdraw { check, reply } => {
                let ok = match check {
                    Some(check) => {
                        let record = self.served.record();
                        guarded(|| check(record)).unwrap_or(false)
                    }
                    None => true,
                };
                if ok {
                    self.served.withdraw();
                    self.perform().await;
                    self.row = None;
                    tracing::info!(doc = %self.id, "record withdrawn: its peers were told");
                }
                let _ = reply.send(ok);
            }
            Command::Hidden(hidden) => {
                self.served.set_hidden(hidden);
                self.perform().await;
            }
            Command::Read(f) => {
                // A read that panics (automerge on a record it cannot rebuild) ends that
                // request only: its reply is dropped, which the caller sees as "not found".
                let record = self.served.record();
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

    async fn edit(
        &mut self,
        device: &DeviceId,
        editor: Editor,
        edit: EditFn,
    ) -> Result<(), EditError> {
        let now = self.state.clock.now();
        let result = self.served.edit(
            device,
            &editor,
            now,
            server_actor(),
            &self.state.bindings,
            edit,
        );
        self.store_error = None;
        self.perform().await;
        match result {
            Err(e) => {
                tracing::warn!(doc = %self.id, error = %Chain(&e), "an edit on the server failed");
                Err(e.into())
            }
            Ok(_) => match self.store_error.take() {
                Some(e) => Err(EditError::Storage(e)),
                None => Ok(()),
            },
        }
    }
}

/// The document for the served document, and the index entry.
fn split(stored: Option<Stored>) -> (Option<Loaded>, Option<DocumentRow>) {
    match stored {
        None => (None, None),
        Some((loaded, row)) => (Some(loaded), Some(row)),
    }
}
