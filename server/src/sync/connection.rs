//! One WebSocket connection speaking the automerge-repo protocol.
//!
//! The client was authenticated at the upgrade. The connection then waits for `join`, answers
//! `peer`, and routes `request`/`sync` messages to document tasks. It enforces the limits
//! (frame size, documents per connection, idle time), pings the client, closes at once when the
//! device is revoked, and refreshes what the user may access (team membership can change while
//! a phone stays connected).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use saksi_shared::policy::Principal;
use saksi_shared::protocol::{Message, PROTOCOL_VERSION, PeerMetadata};
use saksi_shared::{DocumentId, Timestamp};

use super::document::Command;
use super::socket::{CloseCode, CloseReason, Closed, Incoming, Reader, Writer};
use super::{ConnId, Outbox, Outgoing, Peer};
use crate::app::{AppState, principal};
use crate::errors::Chain;
use crate::storage::User;

/// Frames queued for one connection before it counts as too slow.
const OUTBOX: usize = 4096;

/// Who is on the other end (user and device), as established at the upgrade.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user: User,
    pub device: saksi_shared::DeviceId,
    pub device_expires_at: Timestamp,
}

/// Runs the connection until either side closes it.
pub async fn run(
    state: Arc<AppState>,
    auth: Authenticated,
    mut session: Writer,
    mut stream: Reader,
) {
    let conn = state.connections.next_id();
    let (outbox, mut out_rx) = Outbox::channel(OUTBOX);
    state
        .connections
        .register(&auth.device, &auth.user.username, conn, outbox.clone());
    state.metrics.connection_opened();
    tracing::info!(conn, device = %auth.device, "sync connection opened");

    let mut c = Connection {
        state: state.clone(),
        conn,
        auth,
        outbox,
        who: None,
        peer_id: None,
        open: HashSet::new(),
        synced: false,
    };
    let idle = Duration::from_secs(state.config.idle_connection_seconds);
    let mut heartbeat = tokio::time::interval(idle / 3);
    heartbeat.tick().await;
    let mut last_heard = tokio::time::Instant::now();
    let close_reason: Option<CloseReason> = loop {
        tokio::select! {
            incoming = stream.next() => {
                last_heard = tokio::time::Instant::now();
                match incoming {
                    Some(Ok(Incoming::Binary(bytes))) => {
                        if let Err(reason) = c.frame(&bytes).await {
                            break Some(reason);
                        }
                        // Handing the frame over waits while its document's queue is full;
                        // that wait is the server's, not the client's silence. (Counting it
                        // closed about 700 of 1,000 connections as idle in a 1,000-phone storm.)
                        last_heard = tokio::time::Instant::now();
                    }
                    Some(Ok(Incoming::Ping(bytes))) => {
                        if let Err(closed) = session.pong(&bytes).await {
                            write_failed(conn, closed);
                            break None;
                        }
                    }
                    Some(Ok(Incoming::Pong)) => {}
                    Some(Ok(Incoming::Text)) => {
                        c.error("the sync protocol uses binary frames".into());
                        break Some(CloseReason { code: CloseCode::Unsupported, description: None });
                    }
                    Some(Ok(Incoming::Close)) | None => break None,
                    Some(Err(e)) => {
                        tracing::info!(conn, error = %Chain(&e), "sync connection protocol error");
                        let code = match e {
                            actix_http::ws::ProtocolError::Overflow => CloseCode::Size,
                            _ => CloseCode::Protocol,
                        };
                        break Some(CloseReason { code, description: Some(e.to_string()) });
                    }
                }
            }
            out = out_rx.recv() => {
                match out {
                    Some(Outgoing::Frame(frame)) => {
                        state.metrics.message_sent(frame.len());
                        if let Err(closed) = session.binary(&frame).await {
                            write_failed(conn, closed);
                            break None;
                        }
                    }
                    Some(Outgoing::Refresh) => {
                        if c.peer_id.is_some()
                            && let Err(reason) = c.refresh_access().await
                        {
                            break Some(reason);
                        }
                    }
                    Some(Outgoing::Close(reason)) => {
                        // Queued, it goes out before the close (below).
                        c.error(reason.clone());
                        break Some(CloseReason { code: CloseCode::Policy, description: Some(reason) });
                    }
                    None => break None,
                }
            }
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > idle {
                    tracing::info!(conn, "sync connection idle, closing");
                    break Some(CloseReason { code: CloseCode::Away, description: Some("idle".into()) });
                }
                if let Err(reason) = c.check_still_allowed().await {
                    c.error(reason.clone());
                    break Some(CloseReason { code: CloseCode::Policy, description: Some(reason) });
                }
                if let Err(closed) = session.ping(b"").await {
                    write_failed(conn, closed);
                    break None;
                }
            }
        }
    };
    // Anything still queued (an error explaining the close) goes out first.
    while let Ok(Outgoing::Frame(frame)) = out_rx.try_recv() {
        let _ = session.binary(&frame).await;
    }
    let _ = session.close(close_reason).await;
    for id in std::mem::take(&mut c.open) {
        state
            .documents
            .send(&state, id, Command::Close { conn })
            .await;
    }
    state.connections.unregister(&c.auth.device, conn);
    state.metrics.connection_closed();
    tracing::info!(conn, device = %c.auth.device, "sync connection closed");
}

/// A write failed, which ends the connection; one that timed out is worth a line in the log.
fn write_failed(conn: ConnId, closed: Closed) {
    if closed == Closed::Stalled {
        tracing::info!(conn, "sync connection not reading its frames, closed");
    }
}

struct Connection {
    state: Arc<AppState>,
    conn: ConnId,
    auth: Authenticated,
    outbox: Outbox,
    who: Option<Arc<Principal>>,
    /// The peer id from `join`; `None` until the handshake.
    peer_id: Option<saksi_shared::protocol::PeerId>,
    open: HashSet<DocumentId>,
    /// The client sent sync messages since its device's last-seen time was recorded.
    synced: bool,
}

impl Connection {
    /// Queues an `error` message (it goes out before the close).
    fn error(&self, message: String) {
        let frame = Message::Error {
            sender_id: Some(self.state.peer_id.clone()),
            target_id: self.peer_id.clone(),
            message,
            document_id: None,
        }
        .encode();
        let _ = self.outbox.frame(frame);
    }

    fn doc_error(&self, document: DocumentId, message: String) {
        let frame = Message::Error {
            sender_id: Some(self.state.peer_id.clone()),
            target_id: self.peer_id.clone(),
            message,
            document_id: Some(document),
        }
        .encode();
        let _ = self.outbox.frame(frame);
    }

    async fn refresh_who(&mut self) -> Result<Arc<Principal>, CloseReason> {
        match principal(&self.state, &self.auth.user, &self.auth.device).await {
            Ok(p) => {
                let who = Arc::new(p);
                self.who = Some(who.clone());
                Ok(who)
            }
            Err(e) => {
                tracing::error!(conn = self.conn, error = %Chain(&e), "cannot load permissions");
                self.error("the server cannot serve this connection right now".into());
                Err(CloseReason {
                    code: CloseCode::Error,
                    description: None,
                })
            }
        }
    }

    /// The device must still be valid (not revoked, not expired, user not disabled).
    async fn check_still_allowed(&mut self) -> Result<(), String> {
        let device = self.auth.device.clone();
        let now = self.state.clock.now();
        let found = self.state.db.run(move |s| s.device(&device)).await;
        match found {
            Ok(Some((d, u))) if d.revoked_at.is_none() && d.expires_at > now && !u.disabled => {
                self.auth.user = u;
                // A phone that syncs over an open socket makes no HTTP request: its last-seen
                // time follows its syncs here, at each heartbeat.
                if std::mem::take(&mut self.synced) {
                    let id = self.auth.device.clone();
                    if let Err(e) = self.state.db.run(move |s| s.touch_device(&id, now)).await {
                        tracing::warn!(conn = self.conn, error = %Chain(&e), "last-seen not recorded");
                    }
                }
            }
            Ok(Some((d, _))) if d.revoked_at.is_some() => return Err("device revoked".into()),
            Ok(_) => return Err("session ended".into()),
            Err(e) => {
                tracing::warn!(conn = self.conn, error = %Chain(&e), "device check failed");
                return Ok(());
            }
        }
        if self.peer_id.is_some() {
            self.refresh_access()
                .await
                .map_err(|_| "permissions unavailable".to_string())?;
        }
        Ok(())
    }

    /// Reloads what the user may read and tells every open document, which stops serving this
    /// connection if it may no longer read it (answering `doc-unavailable`).
    async fn refresh_access(&mut self) -> Result<(), CloseReason> {
        let who = self.refresh_who().await?;
        let Some(peer_id) = self.peer_id.clone() else {
            return Ok(());
        };
        let peer = Peer {
            conn: self.conn,
            peer_id,
            device: self.auth.device.clone(),
            outbox: self.outbox.clone(),
        };
        for id in self.open.iter().copied().collect::<Vec<_>>() {
            let cmd = Command::Access {
                peer: peer.clone(),
                who: who.clone(),
            };
            self.state.documents.send(&self.state, id, cmd).await;
        }
        Ok(())
    }

    /// Handles one binary frame. `Err` closes the connection.
    async fn frame(&mut self, bytes: &[u8]) -> Result<(), CloseReason> {
        self.state.metrics.message_received(bytes.len());
        let message = match Message::decode(bytes) {
            Ok(m) => m,
            Err(e) => {
                tracing::info!(conn = self.conn, error = %Chain(&e), "malformed sync message");
                self.error(format!("malformed message: {e}"));
                return Err(CloseReason {
                    code: CloseCode::Invalid,
                    description: Some("malformed message".into()),
                });
            }
        };
        let Some(peer_id) = self.peer_id.clone() else {
            return self.handshake(message).await;
        };
        match message {
            Message::Request {
                document_id, data, ..
            } => self.route(peer_id, document_id, data, true).await,
            Message::Sync {
                document_id, data, ..
            } => self.route(peer_id, document_id, data, false).await,
            Message::Leave { .. } => Err(CloseReason {
                code: CloseCode::Normal,
                description: None,
            }),
            Message::Join { .. } => {
                self.error("already joined".into());
                Err(CloseReason {
                    code: CloseCode::Protocol,
                    description: None,
                })
            }
            Message::Error { .. } => Err(CloseReason {
                code: CloseCode::Normal,
                description: None,
            }),
            // Presence and heads gossip are not relayed: nothing here needs them, and relaying
            // them would tell one team about another's activity.
            Message::Ephemeral { .. }
            | Message::DocUnavailable { .. }
            | Message::RemoteSubscriptionChange { .. }
            | Message::RemoteHeadsChanged { .. }
            | Message::Peer { .. } => Ok(()),
        }
    }

    async fn handshake(&mut self, message: Message) -> Result<(), CloseReason> {
        let Message::Join {
            sender_id,
            supported_protocol_versions,
            ..
        } = message
        else {
            self.error(format!("expected join, got {}", message.type_name()));
            return Err(CloseReason {
                code: CloseCode::Protocol,
                description: None,
            });
        };
        if !supported_protocol_versions
            .iter()
            .any(|v| v == PROTOCOL_VERSION)
        {
            self.error("unsupported protocol version".into());
            return Err(CloseReason {
                code: CloseCode::Protocol,
                description: Some("unsupported protocol version".into()),
            });
        }
        if sender_id.is_empty() || sender_id.len() > 256 {
            self.error("invalid peer id".into());
            return Err(CloseReason {
                code: CloseCode::Protocol,
                description: None,
            });
        }
        self.refresh_who().await?;
        let reply = Message::Peer {
            sender_id: self.state.peer_id.clone(),
            target_id: sender_id.clone(),
            selected_protocol_version: PROTOCOL_VERSION.to_owned(),
            metadata: Some(PeerMetadata {
                storage_id: Some(self.state.peer_id.to_string()),
                is_ephemeral: false,
            }),
        }
        .encode();
        let _ = self.outbox.frame(reply);
        self.peer_id = Some(sender_id);
        Ok(())
    }

    async fn route(
        &mut self,
        peer_id: saksi_shared::protocol::PeerId,
        document_id: DocumentId,
        data: Vec<u8>,
        is_request: bool,
    ) -> Result<(), CloseReason> {
        if !self.open.contains(&document_id) {
            if self.open.len() >= self.state.config.max_documents_per_connection {
                self.doc_error(
                    document_id,
                    format!(
                        "too many documents on one connection (limit {})",
                        self.state.config.max_documents_per_connection
                    ),
                );
                return Ok(());
            }
            self.open.insert(document_id);
        }
        self.synced = true;
        let who = match &self.who {
            Some(w) => w.clone(),
            None => self.refresh_who().await?,
        };
        let peer = Peer {
            conn: self.conn,
            peer_id,
            device: self.auth.device.clone(),
            outbox: self.outbox.clone(),
        };
        self.state
            .documents
            .send(
                &self.state,
                document_id,
                Command::Sync {
                    peer,
                    who,
                    data,
                    is_request,
                },
            )
            .await;
        Ok(())
    }
}
