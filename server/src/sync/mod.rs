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
pub mod socket;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::mpsc;

pub use document::Documents;

/// A connection's number, unique in this process.
pub type ConnId = u64;

/// A frame for a connection's writer, or an instruction to close.
#[derive(Debug)]
pub enum Outgoing {
    /// Counted in its [`Outbox`]'s backlog until it has been written to the connection's stream.
    Frame(Bytes),
    Close(String),
    /// What the user may read changed: reload it, and close the documents no longer readable.
    Refresh,
}

/// A connection's queue of outgoing frames, with the bytes of the frames that have not reached
/// its stream yet: queued here, or being written by the connection's [`socket::Writer`] (a frame
/// counts until the last copy of its bytes is dropped). Document tasks build a peer's next
/// message only once its backlog is small ([`Outbox::backlog`]): a sync message carries every
/// change the peer lacks, and in a 1,000-phone reconnect storm the messages built ahead of slow
/// TLS writes were the largest part of the server's memory.
#[derive(Debug, Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Outgoing>,
    backlog: Arc<AtomicUsize>,
}

/// A queued frame's bytes; dropping them takes them off the backlog.
struct Counted {
    bytes: Vec<u8>,
    backlog: Arc<AtomicUsize>,
}

impl AsRef<[u8]> for Counted {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.backlog.fetch_sub(self.bytes.len(), Ordering::Relaxed);
    }
}

/// The outbox did not take a frame: it is full (the connection reads too slowly) or closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxFull;

impl Outbox {
    /// An outbox of at most `frames` queued frames, and its receiving end.
    pub fn channel(frames: usize) -> (Outbox, mpsc::Receiver<Outgoing>) {
        let (tx, rx) = mpsc::channel(frames);
        let outbox = Outbox {
            tx,
            backlog: Arc::new(AtomicUsize::new(0)),
        };
        (outbox, rx)
    }

    /// Queues a frame (without waiting).
    pub fn frame(&self, frame: Vec<u8>) -> Result<(), OutboxFull> {
        self.backlog.fetch_add(frame.len(), Ordering::Relaxed);
        let frame = Bytes::from_owner(Counted {
            bytes: frame,
            backlog: self.backlog.clone(),
        });
        // A frame that does not fit is dropped here, which uncounts it.
        self.tx
            .try_send(Outgoing::Frame(frame))
            .map_err(|_| OutboxFull)
    }

    /// Asks the connection to close, with a reason for the client.
    pub fn close(&self, reason: &str) {
        let _ = self.tx.try_send(Outgoing::Close(reason.to_owned()));
    }

    /// Bytes of frames queued and not yet handed to the socket.
    pub fn backlog(&self) -> usize {
        self.backlog.load(Ordering::Relaxed)
    }
}

/// Where a document task sends frames for one connection.
#[derive(Debug, Clone)]
pub struct Peer {
    pub conn: ConnId,
    /// The peer id the client announced in `join`.
    pub peer_id: saksi_shared::protocol::PeerId,
    pub device: saksi_shared::DeviceId,
    pub outbox: Outbox,
}

impl Peer {
    /// Queues a frame. A connection whose queue is full reads too slowly; it is closed (the
    /// client reconnects and resumes), rather than letting its backlog grow without bound.
    pub fn send(&self, frame: Vec<u8>) {
        if self.outbox.frame(frame).is_err() && !self.outbox.tx.is_closed() {
            tracing::warn!(conn = self.conn, device = %self.device, "slow connection closed");
            self.outbox.close("too slow");
        }
    }
}

/// Actor → device bindings of the whole server, shared by every document (see
/// [`saksi_shared::served::SharedBindings`]).
pub use saksi_shared::served::{BindingsBatch, SharedBindings as Bindings};

/// The connections of one device (with its user's name).
type DeviceConnections = Vec<(ConnId, Outbox, String)>;

/// Open connections per device, so that revoking a device closes its sockets at once.
#[derive(Debug, Default)]
pub struct Connections {
    by_device: Mutex<HashMap<String, DeviceConnections>>,
    next: std::sync::atomic::AtomicU64,
}

impl Connections {
    pub fn next_id(&self) -> ConnId {
        self.next.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn register(&self, device: &str, user: &str, conn: ConnId, outbox: Outbox) {
        self.by_device
            .lock()
            .expect("connections lock")
            .entry(device.to_owned())
            .or_default()
            .push((conn, outbox, user.to_owned()));
    }

    /// Tells every connection of `user` that what the user may read changed. Returns how many.
    pub fn refresh_user(&self, user: &str) -> usize {
        let map = self.by_device.lock().expect("connections lock");
        let mut count = 0;
        for (_, outbox, _) in map.values().flatten().filter(|(_, _, u)| u == user) {
            // A full queue is fine: the connection refreshes on its heartbeat too.
            let _ = outbox.tx.try_send(Outgoing::Refresh);
            count += 1;
        }
        count
    }

    /// Sends `frame` to every connection of the users `users`. Returns how many.
    pub fn send_to_users(&self, users: &std::collections::HashSet<String>, frame: &[u8]) -> usize {
        let map = self.by_device.lock().expect("connections lock");
        let mut count = 0;
        for (_, outbox, _) in map.values().flatten().filter(|(_, _, u)| users.contains(u)) {
            // A full queue is fine: the phone learns it from `/api/records` at its next contact.
            let _ = outbox.frame(frame.to_vec());
            count += 1;
        }
        count
    }

    pub fn unregister(&self, device: &str, conn: ConnId) {
        let mut map = self.by_device.lock().expect("connections lock");
        if let Some(list) = map.get_mut(device) {
            list.retain(|(c, _, _)| *c != conn);
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
        for (_, outbox, _) in &list {
            // A full queue is fine: the connection checks revocation on its own too.
            outbox.close(reason);
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
        for (_, outbox, _) in &all {
            outbox.close(reason);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame counts in the backlog from when it is queued until every copy of its bytes
    /// (the fragments the writer sends are slices of it) is dropped; a frame the full queue
    /// refuses does not count.
    #[test]
    fn the_backlog_counts_frames_until_written() {
        let (outbox, mut rx) = Outbox::channel(2);
        outbox.frame(vec![0; 1_000]).expect("queued");
        outbox.frame("សាក្សី".as_bytes().to_vec()).expect("queued");
        assert_eq!(outbox.backlog(), 1_018);
        assert_eq!(outbox.frame(vec![0; 500]), Err(OutboxFull));
        assert_eq!(outbox.backlog(), 1_018, "a refused frame is not counted");

        let Some(Outgoing::Frame(first)) = rx.try_recv().ok() else {
            panic!("a frame");
        };
        let fragments = [first.slice(..600), first.slice(600..)];
        drop(first);
        assert_eq!(outbox.backlog(), 1_018, "its fragments are not written yet");
        drop(fragments);
        assert_eq!(outbox.backlog(), 18);
        let Some(Outgoing::Frame(second)) = rx.try_recv().ok() else {
            panic!("a frame");
        };
        assert_eq!(&second[..], "សាក្សី".as_bytes());
        drop(second);
        assert_eq!(outbox.backlog(), 0);

        outbox.close("bye");
        assert!(matches!(rx.try_recv(), Ok(Outgoing::Close(r)) if r == "bye"));
        drop(rx);
        assert_eq!(outbox.frame(vec![1; 10]), Err(OutboxFull));
        assert_eq!(
            outbox.backlog(),
            0,
            "frames for a closed connection are not counted"
        );
    }
}
