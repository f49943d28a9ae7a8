//! The `/sync` endpoint: the automerge-repo protocol over WebSocket.
//!
//! - [`connection`]: one task per WebSocket: authentication already done at the upgrade, the
//!   `join`/`peer` handshake, limits, heartbeats, revocation; routes each document's messages
//!   to that document's task.
//! - [`document`]: one task per document in use ([`Documents`] is the registry). It owns the
//!   automerge document and its sync state with every connected peer, checks each incoming
//!   change with the write policy, stores accepted changes durably *before* answering, and
//!   forwards them to the other peers. Idle documents are compacted and evicted.

pub mod connection;
pub mod document;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use saksi_shared::automerge::ActorId;
use saksi_shared::policy::{ActorBindings, Principal};
use tokio::sync::mpsc;

pub use document::Documents;

/// A connection's number, unique in this process.
pub type ConnId = u64;

/// A frame for a connection's writer, or an instruction to close.
#[derive(Debug)]
pub enum Outgoing {
    Frame(Vec<u8>),
    Close(String),
}

/// Where a document task sends frames for one connection.
#[derive(Debug, Clone)]
pub struct Peer {
    pub conn: ConnId,
    /// The peer id the client announced in `join`.
    pub peer_id: String,
    pub device: String,
    pub outbox: mpsc::Sender<Outgoing>,
}

impl Peer {
    /// Queues a frame. A connection whose queue is full reads too slowly; it is closed (the
    /// client reconnects and resumes), rather than letting its backlog grow without bound.
    pub fn send(&self, frame: Vec<u8>) {
        if let Err(mpsc::error::TrySendError::Full(_)) =
            self.outbox.try_send(Outgoing::Frame(frame))
        {
            tracing::warn!(conn = self.conn, device = %self.device, "slow connection closed");
            let _ = self.outbox.try_send(Outgoing::Close("too slow".into()));
        }
    }
}

/// What the server knows about who sent a message: refreshed by the connection.
pub type Who = Arc<Principal>;

/// Actor id → device bindings, shared by all documents (loaded at start, extended as new
/// actors appear; persisted with the first change that uses them).
#[derive(Debug, Default)]
pub struct Bindings(RwLock<HashMap<ActorId, String>>);

impl Bindings {
    pub fn load(pairs: Vec<(String, String)>) -> Bindings {
        let map = pairs
            .into_iter()
            .filter_map(|(actor, device)| {
                hex::decode(actor)
                    .ok()
                    .map(|bytes| (ActorId::from(bytes), device))
            })
            .collect();
        Bindings(RwLock::new(map))
    }

    pub fn len(&self) -> usize {
        self.0.read().expect("bindings lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A view of [`Bindings`] for one batch of changes, recording the bindings it adds.
#[derive(Debug)]
pub struct BindingsBatch<'a> {
    pub shared: &'a Bindings,
    pub added: Vec<(String, String)>,
}

impl ActorBindings for BindingsBatch<'_> {
    fn device_of(&self, actor: &ActorId) -> Option<String> {
        self.shared
            .0
            .read()
            .expect("bindings lock")
            .get(actor)
            .cloned()
    }

    fn bind(&mut self, actor: &ActorId, device: &str) {
        let mut map = self.shared.0.write().expect("bindings lock");
        // Another document may have bound it a moment ago; the first binding wins.
        if !map.contains_key(actor) {
            map.insert(actor.clone(), device.to_owned());
            self.added.push((actor.to_hex_string(), device.to_owned()));
        }
    }
}

/// The connections of one device.
type DeviceConnections = Vec<(ConnId, mpsc::Sender<Outgoing>)>;

/// Open connections per device, so that revoking a device closes its sockets at once.
#[derive(Debug, Default)]
pub struct Connections {
    by_device: Mutex<HashMap<String, DeviceConnections>>,
    next: std::sync::atomic::AtomicU64,
}

impl Connections {
    pub fn next_id(&self) -> ConnId {
        self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
    }

    pub fn register(&self, device: &str, conn: ConnId, outbox: mpsc::Sender<Outgoing>) {
        self.by_device
            .lock()
            .expect("connections lock")
            .entry(device.to_owned())
            .or_default()
            .push((conn, outbox));
    }

    pub fn unregister(&self, device: &str, conn: ConnId) {
        let mut map = self.by_device.lock().expect("connections lock");
        if let Some(list) = map.get_mut(device) {
            list.retain(|(c, _)| *c != conn);
            if list.is_empty() {
                map.remove(device);
            }
        }
    }

    /// Closes every connection of `device` with `reason`. Returns how many were open.
    pub fn close_device(&self, device: &str, reason: &str) -> usize {
        let list = self
            .by_device
            .lock()
            .expect("connections lock")
            .remove(device)
            .unwrap_or_default();
        for (_, outbox) in &list {
            // A full queue is fine: the connection checks revocation on its own too.
            let _ = outbox.try_send(Outgoing::Close(reason.to_owned()));
        }
        list.len()
    }

    /// Closes every connection (shutdown).
    pub fn close_all(&self, reason: &str) -> usize {
        let all: Vec<_> = self
            .by_device
            .lock()
            .expect("connections lock")
            .drain()
            .flat_map(|(_, list)| list)
            .collect();
        for (_, outbox) in &all {
            let _ = outbox.try_send(Outgoing::Close(reason.to_owned()));
        }
        all.len()
    }

    pub fn count(&self) -> usize {
        self.by_device
            .lock()
            .expect("connections lock")
            .values()
            .map(Vec::len)
            .sum()
    }
}
